//! Integration tests of the data layer on the bundled data sets and on
//! small files written by the tests: table reading and its errors, and
//! DeepChem parity of the split file and the balancing weights.

use std::io::Write;
use std::path::{Path, PathBuf};

use ferrochem_data::split::{
    Fractions, Split, random_split, read_split_file, split_file_text, split_from_assignments,
};
use ferrochem_data::weights::balancing_weights;
use ferrochem_data::{
    AbsentTasks, DataErrorKind, Input, TableOptions, read_smiles_rows, read_table,
};

fn repo_file(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").join(relative)
}

fn test_data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data").join(name)
}

/// A file named by the test in a directory of its own, removed with it
/// when the value drops.
struct TempFile {
    path: PathBuf,
    _dir: tempfile::TempDir,
}

impl std::ops::Deref for TempFile {
    type Target = Path;

    fn deref(&self) -> &Path {
        &self.path
    }
}

/// Writes `contents` to a fresh file called `name`.
fn write_temp(name: &str, contents: &[u8]) -> TempFile {
    let dir = tempfile::Builder::new().prefix("ferrochem-data-").tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::File::create(&path).unwrap().write_all(contents).unwrap();
    TempFile { path, _dir: dir }
}

#[test]
fn tox21_reads_with_masks_for_the_missing_labels() {
    let path = repo_file("datasets/tox21.csv.gz");
    let table = read_table(&Input::Path(&path), &TableOptions::default()).unwrap();
    assert_eq!(table.n_rows(), 7831);
    assert_eq!(table.task_names[0], "NR-AR");
    assert_eq!(table.task_names[11], "SR-p53");
    assert!(table.skipped.is_empty() && table.identifiers.is_empty());
    // First data row: 0,0,1,,,0,0,1,0,0,0,0
    assert_eq!(
        &table.mask.as_slice()[..12],
        &[1.0, 1.0, 1.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]
    );
    assert_eq!(table.targets[(0, 2)], 1.0);
    assert_eq!((table.data_rows[7830], table.lines[7830]), (7830, 7832));
}

#[test]
fn deepchem_split_file_and_balancing_weights_are_reproduced() {
    let path = repo_file("datasets/tox21.csv.gz");
    let table = read_table(&Input::Path(&path), &TableOptions::default()).unwrap();
    let split_path = test_data("tox21_random_split_seed0.tsv");
    let assignments = read_split_file(&split_path).unwrap();
    let split = split_from_assignments(&table.data_rows, &assignments, &split_path).unwrap();
    assert_eq!((split.train.len(), split.valid.len(), split.test.len()), (6258, 782, 783));

    let balance = balancing_weights(&table.targets, &table.mask, &split.train);
    let reference =
        std::fs::read_to_string(test_data("tox21_balancing_weights_train.tsv")).unwrap();
    let rows = reference.lines().filter(|l| !l.starts_with('#')).skip(1);
    let mut n_checked = 0;
    for (line, ours) in rows.zip(&balance) {
        let fields: Vec<&str> = line.split('\t').collect();
        let count = |i: usize| fields[i].parse::<usize>().unwrap();
        let weight = |i: usize| fields[i].parse::<f64>().unwrap();
        assert_eq!(
            (ours.n_labelled, ours.n_positive, ours.n_negative),
            (count(2), count(3), count(4)),
            "{}",
            fields[1]
        );
        // Both are one division of the same integers in f64.
        assert_eq!(ours.positive_weight, weight(5), "{}", fields[1]);
        assert_eq!(ours.negative_weight, weight(6), "{}", fields[1]);
        n_checked += 1;
    }
    assert_eq!(n_checked, 12);
}

#[test]
fn delaney_needs_its_task_named_and_keeps_the_compound_id() {
    let path = repo_file("datasets/delaney.csv.gz");
    let options = TableOptions {
        tasks: Some(vec!["measured log solubility in mols per litre".to_owned()]),
        ..TableOptions::default()
    };
    let table = read_table(&Input::Path(&path), &options).unwrap();
    assert_eq!((table.n_rows(), table.n_tasks()), (1128, 1));
    assert_eq!(table.identifiers.len(), 1);
    assert_eq!(table.identifiers[0].name, "Compound ID");
    assert_eq!(table.identifiers[0].values[0], "Amigdalin");
    assert!(!table.smiles[0].ends_with(' '), "blanks around SMILES are stripped");
    assert_eq!(table.targets[(0, 0)], -0.77);

    // Left to itself, every numeric column (ESOL's own prediction and the
    // descriptors) becomes a task, which is why the task must be named.
    let all = read_table(&Input::Path(&path), &TableOptions::default()).unwrap();
    assert_eq!(all.n_tasks(), 8);
}

#[test]
fn bad_rows_are_skipped_with_their_line_and_reason() {
    let csv = b"\xEF\xBB\xBFsmiles,a,b,mol_id\r\n\
CCO,1,0,m1\r\n\
CCN,1,x,m2\r\n\
CCC,0\r\n\
,1,1,m4\r\n\
c1ccccc1,,1,m5\r\n";
    let path = write_temp("bad.csv", csv);
    let table = read_table(&Input::Path(&path), &TableOptions::default()).unwrap();
    assert_eq!(table.smiles, vec!["CCO", "c1ccccc1"]);
    assert_eq!(table.task_names, vec!["a", "b"]);
    assert_eq!(table.identifiers[0].values, vec!["m1", "m5"]);
    let problems: Vec<(u64, &str)> =
        table.skipped.iter().map(|s| (s.line, s.problem.as_str())).collect();
    assert_eq!(
        problems,
        vec![
            (3, "the label 'x' for task 'b' is not a number"),
            (4, "it has 2 fields where the header has 4"),
            (5, "the 'smiles' cell is empty"),
        ]
    );
    assert_eq!(table.mask.as_slice(), &[1.0, 1.0, 0.0, 1.0]);
}

#[test]
fn named_tasks_the_file_lacks_fail_or_are_left_out_as_asked() {
    let path = write_temp("some_tasks.csv", b"smiles,c,a\nCCO,1,0\nCCN,0,1\n");
    let wanted = vec!["a".to_owned(), "b".to_owned(), "c".to_owned()];
    let strict = TableOptions { tasks: Some(wanted.clone()), ..TableOptions::default() };
    let err = read_table(&Input::Path(&path), &strict).unwrap_err();
    assert!(matches!(err.kind(), DataErrorKind::MissingColumn { name, .. } if name == "b"));

    let lenient = TableOptions { absent_tasks: AbsentTasks::Skip, ..strict };
    let table = read_table(&Input::Path(&path), &lenient).unwrap();
    // The given order, not the file's.
    assert_eq!(table.task_names, vec!["a", "c"]);
    assert_eq!(table.targets.as_slice(), &[0.0, 1.0, 1.0, 0.0]);

    let smiles =
        TableOptions { tasks: Some(vec!["a".to_owned(), "smiles".to_owned()]), ..lenient.clone() };
    let err = read_table(&Input::Path(&path), &smiles).unwrap_err();
    assert!(matches!(err.kind(), DataErrorKind::TaskColumnTaken { name } if name == "smiles"));

    let upper = TableOptions { tasks: Some(vec!["A".to_owned()]), ..TableOptions::default() };
    let err = read_table(&Input::Path(&path), &upper).unwrap_err();
    assert!(err.to_string().ends_with("the header has: smiles, c, a (did you mean 'a'?)"), "{err}");

    let none = TableOptions { tasks: Some(vec!["b".to_owned()]), ..lenient };
    let err = read_table(&Input::Path(&path), &none).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "{}:1: none of the task columns ('b') is in the file; the header has: smiles, c, a",
            path.display()
        )
    );
}

#[test]
fn a_task_or_column_name_that_is_not_unique_is_refused() {
    // Two tasks of one name could not be told apart in the model, its
    // predictions or its reports.
    let path = write_temp("repeated_task.csv", b"smiles,a,b\nCCO,1,0\nCCN,0,1\n");
    let twice = TableOptions {
        tasks: Some(vec!["a".to_owned(), "b".to_owned(), "a".to_owned()]),
        ..TableOptions::default()
    };
    let err = read_table(&Input::Path(&path), &twice).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("{}: task 'a' is named more than once in the list of tasks", path.display())
    );

    // Chosen as tasks because they hold numbers...
    let path = write_temp("duplicate_column.csv", b"smiles,a,b,a\nCCO,1,0,1\nCCN,0,1,1\n");
    let err = read_table(&Input::Path(&path), &TableOptions::default()).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "{}:1: the header has 2 columns named 'a' (columns 2, 4); rename all but one",
            path.display()
        )
    );
    // ... or named: the SMILES, a task.
    let named = TableOptions { tasks: Some(vec!["a".to_owned()]), ..TableOptions::default() };
    let err = read_table(&Input::Path(&path), &named).unwrap_err();
    assert!(matches!(err.kind(), DataErrorKind::DuplicateColumn { name, columns }
        if name == "a" && columns == &[2, 4]));
    let path = write_temp("duplicate_smiles.csv", b"smiles,a,smiles\nCCO,1,CCO\n");
    let err = read_table(&Input::Path(&path), &TableOptions::default()).unwrap_err();
    assert!(matches!(err.kind(), DataErrorKind::DuplicateColumn { name, .. } if name == "smiles"));
    let err = read_smiles_rows(&Input::Path(&path), "smiles").unwrap_err();
    assert!(matches!(err.kind(), DataErrorKind::DuplicateColumn { name, .. } if name == "smiles"));

    // A repeated name the reader does not need is no obstacle.
    let named = TableOptions { tasks: Some(vec!["b".to_owned()]), ..TableOptions::default() };
    let path = write_temp("duplicate_unused.csv", b"smiles,a,b,a\nCCO,1,0,1\nCCN,0,1,1\n");
    let table = read_table(&Input::Path(&path), &named).unwrap();
    assert_eq!(table.task_names, vec!["b"]);
}

#[test]
fn classes_are_0_or_1_and_a_file_of_values_is_refused_as_classes() {
    let classes = TableOptions { binary_labels: true, ..TableOptions::default() };
    let csv = b"smiles,a\nCCO,1\nCCN,2\nCCC,0.0\nCO,1e300\nCN,0\n";
    let path = write_temp("stray.csv", csv);
    let table = read_table(&Input::Path(&path), &classes).unwrap();
    assert_eq!(table.smiles, vec!["CCO", "CCC", "CN"]);
    let problems: Vec<(u64, &str)> =
        table.skipped.iter().map(|s| (s.line, s.problem.as_str())).collect();
    assert_eq!(
        problems,
        vec![
            (3, "the label '2' for task 'a' is not a class: classification takes 0 or 1"),
            // Finite as a double, infinite as the f32 a label is stored in.
            (5, "the label '1e300' for task 'a' is not a number"),
        ]
    );
    // As values the same labels are fine.
    let values = read_table(&Input::Path(&path), &TableOptions::default()).unwrap();
    assert_eq!(values.n_rows(), 4);

    // Solubilities, two of which happen to be 0 and 1, are not classes.
    let path = repo_file("datasets/delaney.csv.gz");
    let task = vec!["measured log solubility in mols per litre".to_owned()];
    let options = TableOptions { tasks: Some(task), ..classes };
    let err = read_table(&Input::Path(&path), &options).unwrap_err();
    assert!(matches!(err.kind(), DataErrorKind::NotClasses { n_rows: 1126, n_total: 1128, .. }));
    assert!(
        err.to_string().contains("(the first on line 2: '-0.77' for task 'measured log solubility in mols per litre'); these are values, not classes"),
        "{err}"
    );
}

#[test]
fn a_file_without_rows_is_reported_as_such() {
    let read = |name: &str, bytes: &[u8]| {
        let path = write_temp(name, bytes);
        let err = read_table(&Input::Path(&path), &TableOptions::default()).unwrap_err();
        (err.to_string(), path.display().to_string())
    };
    let (message, path) = read("nothing.csv", b"");
    assert_eq!(message, format!("{path}: the file is empty"));
    let (message, path) = read("header_only.csv", b"smiles,a\n");
    assert_eq!(message, format!("{path}: no usable rows: the file has a header but no data"));
}

#[test]
fn gzip_is_recognized_by_content_and_errors_name_the_file() {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(b"smiles,y\nCCO,1\n").unwrap();
    let path = write_temp("no-extension", &encoder.finish().unwrap());
    assert_eq!(read_table(&Input::Path(&path), &TableOptions::default()).unwrap().n_rows(), 1);

    let path = write_temp("wrong-column.csv", b"SMILES,y\nCCO,1\n");
    let err = read_table(&Input::Path(&path), &TableOptions::default()).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "{}:1: no column named 'smiles'; the header has: SMILES, y (did you mean 'SMILES'?)",
            path.display()
        )
    );

    let path = write_temp("nothing.csv", b"smiles,y\nCCO,bad\n");
    let err = read_table(&Input::Path(&path), &TableOptions::default()).unwrap_err();
    assert!(matches!(err.kind(), DataErrorKind::NoTasks), "{err}");

    let path = write_temp("all-bad.csv", b"smiles,y\nCCO,1,2\n");
    let err = read_table(&Input::Path(&path), &TableOptions::default()).unwrap_err();
    assert!(err.to_string().ends_with("no usable rows: all 1 were skipped; the first because line 2: it has 3 fields where the header has 2"), "{err}");

    let missing = Path::new("/nonexistent/file.csv");
    let err = read_table(&Input::Path(missing), &TableOptions::default()).unwrap_err();
    assert!(err.to_string().starts_with("/nonexistent/file.csv: "), "{err}");
}

#[test]
fn split_file_errors_name_the_line() {
    let path = write_temp("split.tsv", b"# comment\nrow\tsplit\n0\ttrain\n1\tholdout\n");
    let err = read_split_file(&path).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("{}:4: split 'holdout' is not one of train, valid, test, excluded", path.display())
    );
    let path = write_temp("split2.tsv", b"row\tsplit\n0\ttrain\n");
    let assignments = read_split_file(&path).unwrap();
    let err = split_from_assignments(&[0, 1], &assignments, &path).unwrap_err();
    assert!(err.to_string().ends_with("data row 1 has no entry"), "{err}");
}

#[test]
fn a_written_split_file_reads_back_as_the_same_split() {
    // Table positions 0..6 hold data rows 0, 1, 3, 4, 6, 7 (rows 2 and 5
    // were rejected); position 5 is in no part.
    let data_rows = [0, 1, 3, 4, 6, 7];
    let split = Split { train: vec![4, 0, 2], valid: vec![3], test: vec![1] };
    let text = split_file_text(&data_rows, &split, "made by a test\nsecond line");
    assert_eq!(
        text,
        "# made by a test\n# second line\nrow\tsplit\n0\ttrain\n1\ttest\n3\ttrain\n\
         4\tvalid\n6\ttrain\n7\texcluded\n"
    );
    let path = write_temp("written_split.tsv", text.as_bytes());
    let back = split_from_assignments(&data_rows, &read_split_file(&path).unwrap(), &path).unwrap();
    // The parts hold the same positions, in table order.
    assert_eq!(back, Split { train: vec![0, 2, 4], valid: vec![3], test: vec![1] });

    let split = random_split(500, Fractions::default(), 7);
    let data_rows: Vec<usize> = (0..500).map(|p| 2 * p + 1).collect();
    let path = write_temp("random_split.tsv", split_file_text(&data_rows, &split, "").as_bytes());
    let back = split_from_assignments(&data_rows, &read_split_file(&path).unwrap(), &path).unwrap();
    let sorted = |part: &[usize]| {
        let mut part = part.to_vec();
        part.sort_unstable();
        part
    };
    assert_eq!(back.train, sorted(&split.train));
    assert_eq!(back.valid, sorted(&split.valid));
    assert_eq!(back.test, sorted(&split.test));
}
