//! The error type of the data layer.

use std::fmt;

/// A problem with an input file: which file, which line if one, and what.
#[derive(Debug)]
pub struct DataError {
    source_name: String,
    line: Option<u64>,
    kind: DataErrorKind,
}

/// The ways reading data can fail.
#[derive(Debug)]
#[non_exhaustive]
pub enum DataErrorKind {
    /// The file could not be opened or read.
    Io(std::io::Error),
    /// The CSV layer refused the file.
    Csv(csv::Error),
    /// A column the caller named is not in the header.
    MissingColumn {
        /// The column asked for.
        name: String,
        /// The columns the header has.
        available: Vec<String>,
    },
    /// None of the task columns the caller named is in the header.
    NoTaskColumns {
        /// The columns asked for.
        wanted: Vec<String>,
        /// The columns the header has.
        available: Vec<String>,
    },
    /// The header has more than one column by a name the reader needs, so
    /// which one is meant is unclear.
    DuplicateColumn {
        /// The name.
        name: String,
        /// The 1-based positions of the columns so named.
        columns: Vec<usize>,
    },
    /// The list of tasks names one more than once.
    RepeatedTask {
        /// The task.
        name: String,
    },
    /// A column named as a task is the SMILES or the weights column.
    TaskColumnTaken {
        /// The column.
        name: String,
    },
    /// The input holds nothing, not even a header.
    Empty,
    /// No row could be used.
    NoUsableRows {
        /// How many rows were skipped, and why the first one was.
        n_skipped: usize,
        /// The first problem found, if any row was there at all.
        first_problem: Option<String>,
    },
    /// Labels read as classes are mostly neither 0 nor 1: the file holds
    /// values.
    NotClasses {
        /// Rows skipped for such a label.
        n_rows: usize,
        /// Rows read in all.
        n_total: usize,
        /// The first such label: its line, task and cell.
        first: (u64, String, String),
    },
    /// No column could serve as a task.
    NoTasks,
    /// A split file line is malformed.
    SplitFile(String),
    /// Split fractions that do not describe a split.
    BadFractions(String),
}

impl DataError {
    pub(crate) fn new(source_name: &str, line: Option<u64>, kind: DataErrorKind) -> Self {
        DataError { source_name: source_name.to_owned(), line, kind }
    }

    /// The file (or `<stdin>`) concerned.
    pub fn source_name(&self) -> &str {
        &self.source_name
    }

    /// The 1-based line, when the problem is on one.
    pub fn line(&self) -> Option<u64> {
        self.line
    }

    /// What went wrong.
    pub fn kind(&self) -> &DataErrorKind {
        &self.kind
    }
}

impl fmt::Display for DataError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{line}: ", self.source_name)?,
            None if self.source_name.is_empty() => {}
            None => write!(f, "{}: ", self.source_name)?,
        }
        match &self.kind {
            DataErrorKind::Io(err) => write!(f, "{err}"),
            DataErrorKind::Csv(err) => write!(f, "{err}"),
            DataErrorKind::MissingColumn { name, available } => {
                write!(f, "no column named '{name}'; the header has: {}", available.join(", "))?;
                // Headers differ in case more often than in anything else.
                match available.iter().find(|a| a.eq_ignore_ascii_case(name)) {
                    Some(near) => write!(f, " (did you mean '{near}'?)"),
                    None => Ok(()),
                }
            }
            DataErrorKind::NoTaskColumns { wanted, available } => {
                let wanted: Vec<String> = wanted.iter().map(|w| format!("'{w}'")).collect();
                write!(
                    f,
                    "none of the task columns ({}) is in the file; the header has: {}",
                    wanted.join(", "),
                    available.join(", ")
                )
            }
            DataErrorKind::DuplicateColumn { name, columns } => {
                let positions: Vec<String> = columns.iter().map(usize::to_string).collect();
                write!(
                    f,
                    "the header has {} columns named '{name}' (columns {}); rename all but one",
                    columns.len(),
                    positions.join(", ")
                )
            }
            DataErrorKind::RepeatedTask { name } => {
                write!(f, "task '{name}' is named more than once in the list of tasks")
            }
            DataErrorKind::TaskColumnTaken { name } => write!(
                f,
                "column '{name}' cannot be a task: it holds the SMILES or the row weights"
            ),
            DataErrorKind::Empty => write!(f, "the file is empty"),
            DataErrorKind::NoUsableRows { n_skipped, first_problem } => match first_problem {
                Some(problem) => write!(
                    f,
                    "no usable rows: all {n_skipped} were skipped; the first because {problem}"
                ),
                None => write!(f, "no usable rows: the file has a header but no data"),
            },
            DataErrorKind::NotClasses { n_rows, n_total, first: (line, task, cell) } => write!(
                f,
                "{n_rows} of {n_total} rows have a label that is neither 0 nor 1 (the first on line {line}: '{cell}' for task '{task}'); these are values, not classes"
            ),
            DataErrorKind::NoTasks => {
                write!(f, "no label columns: every column besides the SMILES holds no numbers")
            }
            DataErrorKind::SplitFile(problem) => write!(f, "{problem}"),
            DataErrorKind::BadFractions(problem) => write!(f, "{problem}"),
        }
    }
}

// No `source`: the message above already ends with the underlying I/O or
// CSV error, and reporters that walk the chain (anyhow's `{:#}`) would
// print it twice. `kind()` hands out the inner error to callers who want it.
impl std::error::Error for DataError {}
