//! Reading a labelled CSV of molecules: a SMILES column, label columns,
//! and any identifier columns, from a file (plain or gzipped) or standard
//! input.

use std::io::Read;
use std::path::Path;

use ferrochem_kernels::Matrix;

use crate::error::{DataError, DataErrorKind};

/// Where a table comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input<'a> {
    /// A file; gzip is recognized by its magic bytes, whatever the name.
    Path(&'a Path),
    /// Standard input (`-` on the command line).
    Stdin,
}

impl Input<'_> {
    /// How the input is named in messages.
    pub fn display_name(&self) -> String {
        match self {
            Input::Path(path) => path.display().to_string(),
            Input::Stdin => "<stdin>".to_owned(),
        }
    }
}

/// Which columns to read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableOptions {
    /// The column holding SMILES (default `smiles`).
    pub smiles_column: String,
    /// The label columns, in order; `None` takes every column but the
    /// SMILES one that holds at least one number.
    pub tasks: Option<Vec<String>>,
    /// What to do when a column named in `tasks` is not in the header.
    pub absent_tasks: AbsentTasks,
    /// A column of per-row weights, applied to every task of the row.
    pub weights_column: Option<String>,
    /// Whether every label must be 0 or 1, as classes are; a row with
    /// another label is skipped like one whose label is not a number
    /// (default false, for values).
    pub binary_labels: bool,
}

impl Default for TableOptions {
    fn default() -> Self {
        TableOptions {
            smiles_column: "smiles".to_owned(),
            tasks: None,
            absent_tasks: AbsentTasks::Error,
            weights_column: None,
            binary_labels: false,
        }
    }
}

/// What [`read_table`] does with a task column that the file lacks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AbsentTasks {
    /// Fail, naming the column and those the file has (the default).
    #[default]
    Error,
    /// Read the tasks the file has, in their given order, and fail only if
    /// it has none of them; [`Table::task_names`] says which were read.
    Skip,
}

/// A row that was left out, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Skipped {
    /// 1-based line in the file.
    pub line: u64,
    /// 0-based data row (the header excluded).
    pub row: usize,
    /// What was wrong, in words.
    pub problem: String,
}

/// A column carried along without being a task, such as a compound id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identifier {
    /// The header name.
    pub name: String,
    /// One value per kept row.
    pub values: Vec<String>,
}

/// The usable rows of a labelled CSV.
#[derive(Clone, Debug, PartialEq)]
pub struct Table {
    /// The input's name, for messages.
    pub source_name: String,
    /// SMILES of each kept row, surrounding blanks removed.
    pub smiles: Vec<String>,
    /// 0-based data row of each kept row in the file.
    pub data_rows: Vec<usize>,
    /// 1-based line of each kept row in the file.
    pub lines: Vec<u64>,
    /// Label column names, in task order.
    pub task_names: Vec<String>,
    /// `n_rows × n_tasks` labels; 0 where missing.
    pub targets: Matrix<f32>,
    /// `n_rows × n_tasks`: 1 where a label is present, 0 where the cell was
    /// empty.
    pub mask: Matrix<f32>,
    /// Per-row weights from the weights column, if one was named.
    pub row_weights: Option<Vec<f32>>,
    /// Columns that hold no numbers at all, carried along.
    pub identifiers: Vec<Identifier>,
    /// Rows left out, with the reason.
    pub skipped: Vec<Skipped>,
    /// SHA-256 of the file's (decompressed) contents, hexadecimal: the
    /// identity of the data for caches and reports.
    pub content_sha256: String,
}

impl Table {
    /// Number of kept rows.
    pub fn n_rows(&self) -> usize {
        self.smiles.len()
    }

    /// Number of tasks.
    pub fn n_tasks(&self) -> usize {
        self.task_names.len()
    }

    /// Keeps only the rows at `positions` (indices into the kept rows), in
    /// that order.
    pub fn select(&self, positions: &[usize]) -> Table {
        let pick = |values: &Vec<String>| positions.iter().map(|&p| values[p].clone()).collect();
        Table {
            source_name: self.source_name.clone(),
            smiles: pick(&self.smiles),
            data_rows: positions.iter().map(|&p| self.data_rows[p]).collect(),
            lines: positions.iter().map(|&p| self.lines[p]).collect(),
            task_names: self.task_names.clone(),
            targets: crate::select_matrix_rows(&self.targets, positions),
            mask: crate::select_matrix_rows(&self.mask, positions),
            row_weights: self
                .row_weights
                .as_ref()
                .map(|w| positions.iter().map(|&p| w[p]).collect()),
            identifiers: self
                .identifiers
                .iter()
                .map(|id| Identifier { name: id.name.clone(), values: pick(&id.values) })
                .collect(),
            skipped: Vec::new(),
            content_sha256: self.content_sha256.clone(),
        }
    }
}

/// Reads the whole input, gunzipping it when it starts with gzip's magic
/// bytes, dropping a UTF-8 byte-order mark and turning CRLF line ends into
/// LF.
///
/// # Errors
///
/// Fails, naming the input, if it cannot be read or decompressed.
pub fn read_input_bytes(input: &Input<'_>) -> Result<Vec<u8>, DataError> {
    let name = input.display_name();
    let io_error = |err| DataError::new(&name, None, DataErrorKind::Io(err));
    let mut raw = Vec::new();
    match input {
        Input::Path(path) => {
            std::fs::File::open(path)
                .and_then(|mut file| file.read_to_end(&mut raw))
                .map_err(io_error)?;
        }
        Input::Stdin => {
            std::io::stdin().lock().read_to_end(&mut raw).map_err(io_error)?;
        }
    }
    let mut bytes = if raw.starts_with(&[0x1f, 0x8b]) {
        let mut decoded = Vec::new();
        flate2::read::MultiGzDecoder::new(raw.as_slice())
            .read_to_end(&mut decoded)
            .map_err(io_error)?;
        decoded
    } else {
        raw
    };
    if bytes.starts_with(b"\xEF\xBB\xBF") {
        bytes.drain(..3);
    }
    // The CSV reader takes either line ending, but with CRLF it reports a
    // record's line before the previous line's LF is consumed, one short;
    // plain LF keeps reported lines right.
    if bytes.contains(&b'\r') {
        let mut lf = Vec::with_capacity(bytes.len());
        let mut reader = crate::stream::CrlfToLf::new(bytes.as_slice());
        reader.read_to_end(&mut lf).map_err(io_error)?;
        bytes = lf;
    }
    Ok(bytes)
}

/// A whole CSV in memory: its trimmed header and every record with its
/// 1-based line.
pub(crate) struct CsvFile {
    pub(crate) name: String,
    /// SHA-256 of the decompressed bytes, hexadecimal.
    pub(crate) sha256: String,
    pub(crate) header: Vec<String>,
    pub(crate) records: Vec<(u64, Vec<String>)>,
}

impl CsvFile {
    /// The index of the column named `wanted`.
    pub(crate) fn column(&self, wanted: &str) -> Result<usize, DataError> {
        column_index(&self.name, &self.header, wanted)
    }
}

/// The index of the column named `wanted` in `header`, or an error naming
/// the input and the columns it has; a name that several columns share is
/// an error too, as nothing says which of them is meant.
pub(crate) fn column_index(
    name: &str,
    header: &[String],
    wanted: &str,
) -> Result<usize, DataError> {
    let idx = header.iter().position(|h| h == wanted).ok_or_else(|| {
        DataError::new(
            name,
            Some(1),
            DataErrorKind::MissingColumn { name: wanted.to_owned(), available: header.to_vec() },
        )
    })?;
    unique_name(name, header, idx)?;
    Ok(idx)
}

/// Checks that column `idx` is the only one in `header` with its name.
fn unique_name(name: &str, header: &[String], idx: usize) -> Result<(), DataError> {
    let columns: Vec<usize> =
        (0..header.len()).filter(|&c| header[c] == header[idx]).map(|c| c + 1).collect();
    if columns.len() == 1 {
        return Ok(());
    }
    Err(DataError::new(
        name,
        Some(1),
        DataErrorKind::DuplicateColumn { name: header[idx].clone(), columns },
    ))
}

/// The header of `reader`, each name trimmed.
pub(crate) fn trimmed_header<R: Read>(
    reader: &mut csv::Reader<R>,
    name: &str,
) -> Result<Vec<String>, DataError> {
    Ok(reader
        .headers()
        .map_err(|err| DataError::new(name, Some(1), DataErrorKind::Csv(err)))?
        .iter()
        .map(|h| h.trim().to_owned())
        .collect())
}

/// The next record of `reader` with its 1-based line, or `None` at the end.
pub(crate) fn next_record<R: Read>(
    reader: &mut csv::Reader<R>,
    name: &str,
) -> Result<Option<(u64, Vec<String>)>, DataError> {
    let mut record = csv::StringRecord::new();
    match reader.read_record(&mut record) {
        Ok(true) => {
            let line = record.position().map_or(0, |p| p.line());
            Ok(Some((line, record.iter().map(str::to_owned).collect())))
        }
        Ok(false) => Ok(None),
        Err(err) => {
            let line = err.position().map(|p| p.line());
            Err(DataError::new(name, line, DataErrorKind::Csv(err)))
        }
    }
}

/// Reads every record of a CSV, rows of any length (the callers judge
/// ragged rows themselves).
pub(crate) fn read_csv(input: &Input<'_>) -> Result<CsvFile, DataError> {
    let name = input.display_name();
    let bytes = read_input_bytes(input)?;
    let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(bytes.as_slice());
    let header = trimmed_header(&mut reader, &name)?;
    let mut records = Vec::new();
    while let Some(record) = next_record(&mut reader, &name)? {
        records.push(record);
    }
    let sha256 = crate::cache::sha256_hex(&bytes);
    Ok(CsvFile { name, sha256, header, records })
}

/// What `predict` reads: every data row's SMILES with its line, and the
/// identifier columns (those holding no numbers) to carry into the output.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SmilesRows {
    /// The input's name, for messages.
    pub source_name: String,
    /// `(line, SMILES)` of every data row, in order.
    pub smiles: Vec<(u64, String)>,
    /// Columns other than the SMILES one that hold no numbers.
    pub identifiers: Vec<Identifier>,
}

/// Reads the SMILES column and the identifier columns of a CSV, keeping
/// every row (a short row gives empty cells).
///
/// # Errors
///
/// Fails, naming the input, if it cannot be read or parsed, or has no such
/// column.
pub fn read_smiles_rows(input: &Input<'_>, smiles_column: &str) -> Result<SmilesRows, DataError> {
    let file = read_csv(input)?;
    let smiles_idx = file.column(smiles_column)?;
    let cell =
        |cells: &Vec<String>, c: usize| cells.get(c).map_or(String::new(), |v| v.trim().to_owned());
    let holds_numbers = |c: usize| {
        file.records
            .iter()
            .any(|(_, cells)| cells.get(c).is_some_and(|v| parse_number(v).is_some()))
    };
    let identifiers = (0..file.header.len())
        .filter(|&c| c != smiles_idx && !holds_numbers(c))
        .map(|c| Identifier {
            name: file.header[c].clone(),
            values: file.records.iter().map(|(_, cells)| cell(cells, c)).collect(),
        })
        .collect();
    let smiles =
        file.records.iter().map(|(line, cells)| (*line, cell(cells, smiles_idx))).collect();
    Ok(SmilesRows { source_name: file.name, smiles, identifiers })
}

/// Reads a labelled table.
///
/// Empty label cells are missing labels (mask 0). A row whose SMILES cell
/// is empty, whose length differs from the header's, or whose label or
/// weight cell is not a finite number is skipped and recorded in
/// [`Table::skipped`] with its line; the caller decides how to warn.
///
/// # Errors
///
/// Fails, naming the input, if it cannot be read or parsed as CSV, is
/// empty, has no data rows, lacks a named column (under
/// [`AbsentTasks::Skip`], every named task column), has no column that can
/// serve as a task, or has no usable row.
pub fn read_table(input: &Input<'_>, options: &TableOptions) -> Result<Table, DataError> {
    let file = read_csv(input)?;
    let (name, header, records) = (&file.name, &file.header, &file.records);
    // Without rows, a missing SMILES column or a lack of numeric columns
    // would be the wrong thing to report.
    if records.is_empty() {
        let kind = if header.iter().all(String::is_empty) {
            DataErrorKind::Empty
        } else {
            DataErrorKind::NoUsableRows { n_skipped: 0, first_problem: None }
        };
        return Err(DataError::new(name, None, kind));
    }
    let column = |wanted: &str| file.column(wanted);
    let smiles_idx = column(&options.smiles_column)?;
    let weights_idx = options.weights_column.as_deref().map(column).transpose()?;
    if let Some(tasks) = &options.tasks {
        if let Some(repeated) = tasks.iter().enumerate().find(|(i, t)| tasks[..*i].contains(*t)) {
            return Err(DataError::new(
                name,
                None,
                DataErrorKind::RepeatedTask { name: repeated.1.clone() },
            ));
        }
        let claimed = [Some(&options.smiles_column), options.weights_column.as_ref()];
        if let Some(task) = tasks.iter().find(|t| claimed.contains(&Some(*t))) {
            return Err(DataError::new(
                name,
                None,
                DataErrorKind::TaskColumnTaken { name: task.clone() },
            ));
        }
    }

    let others: Vec<usize> =
        (0..header.len()).filter(|&c| c != smiles_idx && Some(c) != weights_idx).collect();
    let holds_numbers = |c: usize| {
        records
            .iter()
            .any(|(_, cells)| cells.get(c).is_some_and(|cell| parse_number(cell).is_some()))
    };
    let task_idx: Vec<usize> = match &options.tasks {
        Some(tasks) => match options.absent_tasks {
            AbsentTasks::Error => tasks.iter().map(|t| column(t)).collect::<Result<_, _>>()?,
            AbsentTasks::Skip => {
                let present: Vec<usize> = tasks.iter().filter_map(|t| column(t).ok()).collect();
                if present.is_empty() {
                    return Err(DataError::new(
                        name,
                        Some(1),
                        DataErrorKind::NoTaskColumns {
                            wanted: tasks.clone(),
                            available: header.clone(),
                        },
                    ));
                }
                present
            }
        },
        None => others.iter().copied().filter(|&c| holds_numbers(c)).collect(),
    };
    if task_idx.is_empty() {
        return Err(DataError::new(name, None, DataErrorKind::NoTasks));
    }
    // Named tasks were checked as they were looked up; chosen ones are
    // checked here, as two tasks of one name could not be told apart in
    // the model, its predictions or its reports.
    for &c in &task_idx {
        unique_name(name, header, c)?;
    }
    let identifier_idx: Vec<usize> =
        others.iter().copied().filter(|c| !task_idx.contains(c) && !holds_numbers(*c)).collect();
    if !identifier_idx.is_empty() {
        let names: Vec<&str> = identifier_idx.iter().map(|&c| header[c].as_str()).collect();
        log::info!(
            "{name}: column(s) {} hold no numbers and are carried along as identifiers, not tasks",
            names.join(", ")
        );
    }

    let n_tasks = task_idx.len();
    let mut table = Table {
        source_name: name.clone(),
        smiles: Vec::new(),
        data_rows: Vec::new(),
        lines: Vec::new(),
        task_names: task_idx.iter().map(|&c| header[c].clone()).collect(),
        targets: Matrix::zeros(0, n_tasks),
        mask: Matrix::zeros(0, n_tasks),
        row_weights: weights_idx.map(|_| Vec::new()),
        identifiers: identifier_idx
            .iter()
            .map(|&c| Identifier { name: header[c].clone(), values: Vec::new() })
            .collect(),
        skipped: Vec::new(),
        content_sha256: file.sha256.clone(),
    };
    let (mut targets, mut mask) = (Vec::new(), Vec::new());
    let mut not_classes: Vec<(u64, String, String)> = Vec::new();
    for (row, (line, cells)) in records.iter().enumerate() {
        let parsed = parse_row(
            cells,
            header.len(),
            smiles_idx,
            &task_idx,
            weights_idx,
            &table.task_names,
            options,
        );
        let (smiles, labels, weight) = match parsed {
            Ok(parsed) => parsed,
            Err(RowProblem::NotAClass { task, cell }) => {
                let problem = format!(
                    "the label '{cell}' for task '{task}' is not a class: classification takes 0 or 1"
                );
                table.skipped.push(Skipped { line: *line, row, problem });
                not_classes.push((*line, task, cell));
                continue;
            }
            Err(RowProblem::Other(problem)) => {
                table.skipped.push(Skipped { line: *line, row, problem });
                continue;
            }
        };
        table.smiles.push(smiles);
        table.data_rows.push(row);
        table.lines.push(*line);
        for label in labels {
            targets.push(label.unwrap_or(0.0));
            mask.push(if label.is_some() { 1.0 } else { 0.0 });
        }
        if let (Some(weights), Some(weight)) = (&mut table.row_weights, weight) {
            weights.push(weight);
        }
        for (identifier, &c) in table.identifiers.iter_mut().zip(&identifier_idx) {
            identifier.values.push(cells[c].trim().to_owned());
        }
    }
    // A few stray labels are typing errors, and their rows are skipped;
    // more of them than good rows mean values read as classes.
    if not_classes.len() > table.smiles.len() {
        return Err(DataError::new(
            name,
            None,
            DataErrorKind::NotClasses {
                n_rows: not_classes.len(),
                n_total: records.len(),
                first: not_classes.swap_remove(0),
            },
        ));
    }
    if table.smiles.is_empty() {
        let first_problem =
            table.skipped.first().map(|s| format!("line {}: {}", s.line, s.problem));
        return Err(DataError::new(
            name,
            None,
            DataErrorKind::NoUsableRows { n_skipped: table.skipped.len(), first_problem },
        ));
    }
    let n_rows = table.smiles.len();
    table.targets = Matrix::from_vec(n_rows, n_tasks, targets);
    table.mask = Matrix::from_vec(n_rows, n_tasks, mask);
    Ok(table)
}

type ParsedRow = (String, Vec<Option<f32>>, Option<f32>);

/// Why a row is skipped.
enum RowProblem {
    /// A label other than 0 or 1 where labels are classes.
    NotAClass {
        /// The label's task.
        task: String,
        /// The cell as written.
        cell: String,
    },
    /// Anything else, in words.
    Other(String),
}

impl From<String> for RowProblem {
    fn from(problem: String) -> Self {
        RowProblem::Other(problem)
    }
}

fn parse_row(
    cells: &[String],
    n_columns: usize,
    smiles_idx: usize,
    task_idx: &[usize],
    weights_idx: Option<usize>,
    task_names: &[String],
    options: &TableOptions,
) -> Result<ParsedRow, RowProblem> {
    if cells.len() != n_columns {
        return Err(
            format!("it has {} fields where the header has {n_columns}", cells.len()).into()
        );
    }
    let smiles = cells[smiles_idx].trim();
    if smiles.is_empty() {
        return Err(format!("the '{}' cell is empty", options.smiles_column).into());
    }
    let mut labels = Vec::with_capacity(task_idx.len());
    for (&c, task) in task_idx.iter().zip(task_names) {
        let cell = cells[c].trim();
        if cell.is_empty() {
            labels.push(None);
            continue;
        }
        match parse_number(cell) {
            Some(value) if options.binary_labels && value != 0.0 && value != 1.0 => {
                return Err(RowProblem::NotAClass { task: task.clone(), cell: cell.to_owned() });
            }
            Some(value) => labels.push(Some(value)),
            None => {
                return Err(format!("the label '{cell}' for task '{task}' is not a number").into());
            }
        }
    }
    let weight = match weights_idx {
        None => None,
        Some(c) => match parse_number(cells[c].trim()) {
            Some(w) if w >= 0.0 => Some(w),
            _ => {
                return Err(format!(
                    "the weight '{}' is not a non-negative number",
                    cells[c].trim()
                )
                .into());
            }
        },
    };
    Ok((smiles.to_owned(), labels, weight))
}

/// A finite number, or `None`.
pub(crate) fn parse_number(cell: &str) -> Option<f32> {
    // Finite as f32, not just as f64: 1e300 would become infinity.
    let value = cell.trim().parse::<f64>().ok()? as f32;
    value.is_finite().then_some(value)
}
