//! Dividing a table's rows into training, validation and test parts.
//!
//! Every splitter returns positions into the table's kept rows. The seeded
//! ones draw from a stream of their own, so the same seed splits the same
//! way whatever else the run does with it.

use std::collections::HashMap;
use std::path::Path;
use std::str::FromStr;

use ferrochem_kernels::Matrix;
use ferrochem_kernels::random::Rng;
use serde::{Deserialize, Serialize};

use crate::error::{DataError, DataErrorKind};

/// The parts of a split, as positions into a table.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Split {
    /// Rows to train on.
    pub train: Vec<usize>,
    /// Rows to select models on.
    pub valid: Vec<usize>,
    /// Rows held out for the final score.
    pub test: Vec<usize>,
}

/// The shares of the three parts, summing to one.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Fractions {
    /// Share of training rows.
    pub train: f64,
    /// Share of validation rows.
    pub valid: f64,
    /// Share of test rows.
    pub test: f64,
}

impl Default for Fractions {
    fn default() -> Self {
        Fractions { train: 0.8, valid: 0.1, test: 0.1 }
    }
}

impl FromStr for Fractions {
    type Err = DataError;

    /// Parses `train,valid,test`, such as `0.8,0.1,0.1`.
    fn from_str(text: &str) -> Result<Self, DataError> {
        let bad = |problem: String| DataError::new("", None, DataErrorKind::BadFractions(problem));
        let parts: Vec<f64> = text
            .split(',')
            .map(|p| {
                p.trim()
                    .parse::<f64>()
                    .map_err(|_| bad(format!("split fraction '{}' is not a number", p.trim())))
            })
            .collect::<Result<_, _>>()?;
        let [train, valid, test] = parts[..] else {
            return Err(bad(format!(
                "split fractions need three values (train,valid,test), got '{text}'"
            )));
        };
        if [train, valid, test].iter().any(|f| !(0.0..=1.0).contains(f))
            || (train + valid + test - 1.0).abs() > 1e-6
        {
            return Err(bad(format!(
                "split fractions must lie in [0, 1] and sum to 1, got '{text}'"
            )));
        }
        Ok(Fractions { train, valid, test })
    }
}

impl Fractions {
    /// Sizes of the train and validation parts for `n` rows, rounding down
    /// as DeepChem does; the test part takes the rest.
    fn sizes(&self, n: usize) -> (usize, usize) {
        let n_train = (self.train * n as f64) as usize;
        let n_train_valid = ((self.train + self.valid) * n as f64) as usize;
        (n_train, n_train_valid.max(n_train).min(n) - n_train)
    }

    fn cut(&self, order: &[usize]) -> Split {
        let (n_train, n_valid) = self.sizes(order.len());
        Split {
            train: order[..n_train].to_vec(),
            valid: order[n_train..n_train + n_valid].to_vec(),
            test: order[n_train + n_valid..].to_vec(),
        }
    }
}

const SPLIT_STREAM: u64 = 0x5911;

/// A uniformly random split.
pub fn random_split(n_rows: usize, fractions: Fractions, seed: u64) -> Split {
    let mut order: Vec<usize> = (0..n_rows).collect();
    Rng::from_key(&[SPLIT_STREAM, seed]).shuffle(&mut order);
    fractions.cut(&order)
}

/// The rows in file order: the first share trains, the next validates, the
/// rest tests.
pub fn index_split(n_rows: usize, fractions: Fractions) -> Split {
    fractions.cut(&(0..n_rows).collect::<Vec<_>>())
}

/// A random split that keeps the label balance in every part.
///
/// For classification, rows are grouped by their number of positive
/// labels (0, 1, 2, …), so the rare actives of multitask data spread
/// evenly, and each group is split by `fractions`. For regression, rows are
/// sorted by their first labelled target and dealt out in blocks of ten.
pub fn stratified_split(
    targets: &Matrix<f32>,
    mask: &Matrix<f32>,
    fractions: Fractions,
    seed: u64,
    classification: bool,
) -> Split {
    let mut rng = Rng::from_key(&[SPLIT_STREAM, seed, 1]);
    let mut strata: Vec<Vec<usize>> = Vec::new();
    if classification {
        let mut by_count: HashMap<usize, Vec<usize>> = HashMap::new();
        for row in 0..targets.nrows() {
            let n_pos = (0..targets.ncols())
                .filter(|&t| mask[(row, t)] != 0.0 && targets[(row, t)] > 0.5)
                .count();
            by_count.entry(n_pos).or_default().push(row);
        }
        let mut counts: Vec<usize> = by_count.keys().copied().collect();
        counts.sort_unstable();
        strata.extend(counts.into_iter().map(|c| by_count.remove(&c).unwrap_or_default()));
    } else {
        let first_label = |row: usize| {
            (0..targets.ncols()).find(|&t| mask[(row, t)] != 0.0).map(|t| targets[(row, t)])
        };
        let mut rows: Vec<usize> = (0..targets.nrows()).collect();
        rows.sort_by(|&a, &b| {
            first_label(a)
                .unwrap_or(f32::NEG_INFINITY)
                .total_cmp(&first_label(b).unwrap_or(f32::NEG_INFINITY))
        });
        strata.extend(rows.chunks(10).map(<[usize]>::to_vec));
    }
    let mut split = Split::default();
    for mut stratum in strata {
        rng.shuffle(&mut stratum);
        let part = fractions.cut(&stratum);
        split.train.extend(part.train);
        split.valid.extend(part.valid);
        split.test.extend(part.test);
    }
    for part in [&mut split.train, &mut split.valid, &mut split.test] {
        rng.shuffle(part);
    }
    split
}

/// DeepChem's scaffold split: molecules are grouped by Bemis–Murcko
/// scaffold (`scaffold_keys[i]` for row `i`, equal keys meaning the same
/// scaffold), groups are taken largest first (ties: the group whose first
/// row comes later first, as DeepChem sorts), and each whole group goes to
/// train while it fits under the train share, else to validation while that
/// fits, else to test. No scaffold is split between parts.
pub fn scaffold_split(scaffold_keys: &[u64], fractions: Fractions) -> Split {
    let mut groups: HashMap<u64, Vec<usize>> = HashMap::new();
    for (row, &key) in scaffold_keys.iter().enumerate() {
        groups.entry(key).or_default().push(row);
    }
    let mut groups: Vec<Vec<usize>> = groups.into_values().collect();
    groups.sort_by(|a, b| (b.len(), b[0]).cmp(&(a.len(), a[0])));
    let n = scaffold_keys.len() as f64;
    let (train_cutoff, valid_cutoff) =
        (fractions.train * n, (fractions.train + fractions.valid) * n);
    let mut split = Split::default();
    for group in groups {
        if (split.train.len() + group.len()) as f64 > train_cutoff {
            if (split.train.len() + split.valid.len() + group.len()) as f64 > valid_cutoff {
                split.test.extend(group);
            } else {
                split.valid.extend(group);
            }
        } else {
            split.train.extend(group);
        }
    }
    split
}

/// `k` folds for cross-validation: fold `i` validates on every `k`-th row of
/// a seeded shuffle, starting at `i`, and trains on the rest; no test part.
///
/// # Panics
///
/// Panics if `k < 2`.
pub fn k_fold(n_rows: usize, k: usize, seed: u64) -> Vec<Split> {
    assert!(k >= 2, "cross-validation needs at least two folds");
    let mut order: Vec<usize> = (0..n_rows).collect();
    Rng::from_key(&[SPLIT_STREAM, seed, 2]).shuffle(&mut order);
    (0..k)
        .map(|fold| {
            let mut split = Split::default();
            for (idx, &row) in order.iter().enumerate() {
                if idx % k == fold { split.valid.push(row) } else { split.train.push(row) }
            }
            split
        })
        .collect()
}

/// Where a split file puts a row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Assignment {
    /// The training part.
    Train,
    /// The validation part.
    Valid,
    /// The test part.
    Test,
    /// Left out of every part.
    Excluded,
}

/// Reads a split file: tab-separated with a header naming at least the
/// columns `row` (0-based data row of the CSV) and `split` (`train`,
/// `valid`, `test` or `excluded`); lines starting with `#` are comments.
///
/// # Errors
///
/// Fails, naming the file and line, on a missing column, a row that is not
/// a number or appears twice, or an unknown split value.
pub fn read_split_file(path: &Path) -> Result<HashMap<usize, Assignment>, DataError> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path)
        .map_err(|err| DataError::new(&name, None, DataErrorKind::Io(err)))?;
    let bad = |line: usize, problem: String| {
        DataError::new(&name, Some(line as u64 + 1), DataErrorKind::SplitFile(problem))
    };
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim_start().starts_with('#') && !l.trim().is_empty());
    let (header_line, header) =
        lines.next().ok_or_else(|| bad(0, "the split file has no header".to_owned()))?;
    let columns: Vec<&str> = header.split('\t').map(str::trim).collect();
    let find = |wanted: &str| {
        columns.iter().position(|c| *c == wanted).ok_or_else(|| {
            bad(
                header_line,
                format!("the header needs a '{wanted}' column, found: {}", columns.join(", ")),
            )
        })
    };
    let (row_col, split_col) = (find("row")?, find("split")?);
    let mut assignments = HashMap::new();
    for (line_idx, line) in lines {
        let fields: Vec<&str> = line.split('\t').map(str::trim).collect();
        let (Some(row), Some(split)) = (fields.get(row_col), fields.get(split_col)) else {
            return Err(bad(
                line_idx,
                format!("expected at least {} tab-separated fields", row_col.max(split_col) + 1),
            ));
        };
        let row: usize =
            row.parse().map_err(|_| bad(line_idx, format!("row '{row}' is not a row number")))?;
        let assignment = match *split {
            "train" => Assignment::Train,
            "valid" => Assignment::Valid,
            "test" => Assignment::Test,
            "excluded" => Assignment::Excluded,
            other => {
                return Err(bad(
                    line_idx,
                    format!("split '{other}' is not one of train, valid, test, excluded"),
                ));
            }
        };
        if assignments.insert(row, assignment).is_some() {
            return Err(bad(line_idx, format!("row {row} appears twice")));
        }
    }
    Ok(assignments)
}

/// The text of a split file that [`read_split_file`] reads back as
/// `split`: `data_rows[p]` is the 0-based data row of table position `p`.
/// Each line of `comment` becomes a `#` line at the top; then come the
/// header and a line per data row in file order, rows in no part marked
/// `excluded`. Data rows the table does not hold (rejected SMILES) are
/// not listed.
///
/// # Panics
///
/// Panics if a position of `split` is outside `data_rows`.
#[track_caller]
pub fn split_file_text(data_rows: &[usize], split: &Split, comment: &str) -> String {
    let mut assigned = vec!["excluded"; data_rows.len()];
    for (part, name) in [(&split.train, "train"), (&split.valid, "valid"), (&split.test, "test")] {
        for &position in part {
            assigned[position] = name;
        }
    }
    let mut lines: Vec<(usize, &str)> = data_rows.iter().copied().zip(assigned).collect();
    lines.sort_unstable_by_key(|&(row, _)| row);
    let mut text: String = comment.lines().map(|line| format!("# {line}\n")).collect();
    text.push_str("row\tsplit\n");
    for (row, name) in lines {
        text.push_str(&format!("{row}\t{name}\n"));
    }
    text
}

/// Applies split-file assignments to a table's rows, given the data row of
/// each kept row. Positions keep the table's order within each part.
///
/// # Errors
///
/// Fails, naming the split file, if a kept row has no assignment.
pub fn split_from_assignments(
    data_rows: &[usize],
    assignments: &HashMap<usize, Assignment>,
    split_file: &Path,
) -> Result<Split, DataError> {
    let mut split = Split::default();
    for (position, row) in data_rows.iter().enumerate() {
        let assignment = assignments.get(row).ok_or_else(|| {
            DataError::new(
                &split_file.display().to_string(),
                None,
                DataErrorKind::SplitFile(format!("data row {row} has no entry")),
            )
        })?;
        match assignment {
            Assignment::Train => split.train.push(position),
            Assignment::Valid => split.valid.push(position),
            Assignment::Test => split.test.push(position),
            Assignment::Excluded => {}
        }
    }
    Ok(split)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_partition(split: &Split, n: usize) -> bool {
        let mut all: Vec<usize> =
            split.train.iter().chain(&split.valid).chain(&split.test).copied().collect();
        all.sort_unstable();
        all == (0..n).collect::<Vec<_>>()
    }

    #[test]
    fn random_and_index_splits_partition_by_the_fractions() {
        let split = random_split(101, Fractions::default(), 3);
        assert_eq!((split.train.len(), split.valid.len(), split.test.len()), (80, 10, 11));
        assert!(is_partition(&split, 101));
        assert_eq!(split, random_split(101, Fractions::default(), 3));
        assert_ne!(split, random_split(101, Fractions::default(), 4));
        let index = index_split(10, "0.6,0.2,0.2".parse().unwrap());
        assert_eq!(
            (index.train, index.valid, index.test),
            ((0..6).collect(), vec![6, 7], vec![8, 9])
        );
    }

    #[test]
    fn fractions_are_validated() {
        assert!("0.8,0.1".parse::<Fractions>().unwrap_err().to_string().contains("three values"));
        assert!("0.8,0.3,0.1".parse::<Fractions>().unwrap_err().to_string().contains("sum to 1"));
        assert!(
            "a,0.1,0.1"
                .parse::<Fractions>()
                .unwrap_err()
                .to_string()
                .contains("'a' is not a number")
        );
    }

    #[test]
    fn stratified_split_spreads_the_rare_positives() {
        // 1000 rows, one task, 50 positives.
        let targets = Matrix::from_fn(1000, 1, |i, _| if i % 20 == 0 { 1.0 } else { 0.0 });
        let mask = Matrix::filled(1000, 1, 1.0);
        let split = stratified_split(&targets, &mask, Fractions::default(), 0, true);
        assert!(is_partition(&split, 1000));
        let positives = |part: &[usize]| part.iter().filter(|&&r| targets[(r, 0)] > 0.5).count();
        assert_eq!(
            (positives(&split.train), positives(&split.valid), positives(&split.test)),
            (40, 5, 5)
        );
    }

    #[test]
    fn scaffold_split_keeps_groups_whole_and_largest_first() {
        // Scaffold 7 has 6 rows, 3 has 2, 5 has 1 and 9 has 1.
        let keys = [7, 7, 3, 7, 5, 7, 3, 7, 9, 7];
        let split = scaffold_split(&keys, "0.6,0.2,0.2".parse().unwrap());
        assert_eq!(split.train, vec![0, 1, 3, 5, 7, 9]);
        assert_eq!(split.valid, vec![2, 6]);
        assert_eq!(split.test, vec![8, 4]);
        assert!(is_partition(&split, 10));
    }

    #[test]
    fn folds_cover_every_row_once() {
        let folds = k_fold(23, 5, 1);
        let mut valid: Vec<usize> = folds.iter().flat_map(|f| f.valid.clone()).collect();
        valid.sort_unstable();
        assert_eq!(valid, (0..23).collect::<Vec<_>>());
        assert!(folds.iter().all(|f| f.train.len() + f.valid.len() == 23 && f.test.is_empty()));
    }
}
