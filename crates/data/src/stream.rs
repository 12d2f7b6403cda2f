//! Reading the SMILES of a CSV a chunk of rows at a time, so that a
//! prediction pipeline runs in memory bounded by the chunk, not the file.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read};

use crate::error::{DataError, DataErrorKind};
use crate::table::{Input, column_index, next_record, parse_number, trimmed_header};

/// How many rows are read ahead to decide which columns are identifiers.
pub const LOOKAHEAD_ROWS: usize = 4096;

/// One data row: its 1-based line, its SMILES and its identifier cells.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SmilesRecord {
    /// 1-based line in the input.
    pub line: u64,
    /// The SMILES cell, trimmed.
    pub smiles: String,
    /// One cell per [`SmilesStream::identifier_names`], trimmed.
    pub identifiers: Vec<String>,
}

/// A CSV read incrementally: the SMILES column and the identifier columns
/// of every row, in order.
///
/// Identifier columns are those, other than the SMILES one, with no
/// numeric cell in the first [`LOOKAHEAD_ROWS`] rows; a reader that sees
/// the whole file ([`crate::read_smiles_rows`]) looks at every row, so a
/// column numeric only after that many rows is an identifier here and
/// not there.
pub struct SmilesStream {
    name: String,
    reader: csv::Reader<Box<dyn Read>>,
    smiles_idx: usize,
    identifier_idx: Vec<usize>,
    identifier_names: Vec<String>,
    ahead: VecDeque<(u64, Vec<String>)>,
    finished: bool,
}

impl std::fmt::Debug for SmilesStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmilesStream")
            .field("name", &self.name)
            .field("identifier_names", &self.identifier_names)
            .field("rows_ahead", &self.ahead.len())
            .finish_non_exhaustive()
    }
}

impl SmilesStream {
    /// Opens `input` (plain or gzipped, with or without a byte-order mark,
    /// LF or CRLF) and reads its header and the look-ahead rows.
    ///
    /// # Errors
    ///
    /// Fails, naming the input, if it cannot be opened or parsed or has no
    /// column `smiles_column`.
    pub fn open(input: &Input<'_>, smiles_column: &str) -> Result<Self, DataError> {
        let name = input.display_name();
        let io_error = |err| DataError::new(&name, None, DataErrorKind::Io(err));
        let raw: Box<dyn Read> = match input {
            Input::Path(path) => Box::new(std::fs::File::open(path).map_err(io_error)?),
            Input::Stdin => Box::new(std::io::stdin()),
        };
        let mut buffered = BufReader::with_capacity(1 << 16, raw);
        let gzipped = buffered.fill_buf().map_err(io_error)?.starts_with(&[0x1f, 0x8b]);
        let decoded: Box<dyn Read> = if gzipped {
            Box::new(flate2::bufread::MultiGzDecoder::new(buffered))
        } else {
            Box::new(buffered)
        };
        let mut text = BufReader::with_capacity(1 << 16, decoded);
        if text.fill_buf().map_err(io_error)?.starts_with(b"\xEF\xBB\xBF") {
            text.consume(3);
        }
        let source: Box<dyn Read> = Box::new(CrlfToLf::new(text));
        let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(source);
        let header = trimmed_header(&mut reader, &name)?;
        let smiles_idx = column_index(&name, &header, smiles_column)?;
        let mut stream = SmilesStream {
            name,
            reader,
            smiles_idx,
            identifier_idx: Vec::new(),
            identifier_names: Vec::new(),
            ahead: VecDeque::new(),
            finished: false,
        };
        while stream.ahead.len() < LOOKAHEAD_ROWS
            && let Some(record) = stream.read_record()?
        {
            stream.ahead.push_back(record);
        }
        stream.identifier_idx = (0..header.len())
            .filter(|&c| {
                c != smiles_idx
                    && !stream
                        .ahead
                        .iter()
                        .any(|(_, cells)| cells.get(c).is_some_and(|v| parse_number(v).is_some()))
            })
            .collect();
        stream.identifier_names =
            stream.identifier_idx.iter().map(|&c| header[c].clone()).collect();
        Ok(stream)
    }

    /// The input's name in messages.
    pub fn source_name(&self) -> &str {
        &self.name
    }

    /// The names of the identifier columns, in file order.
    pub fn identifier_names(&self) -> &[String] {
        &self.identifier_names
    }

    /// Up to `max_rows` next rows; empty at the end of the input.
    ///
    /// # Errors
    ///
    /// Fails, naming the input and line, on a malformed record or a read
    /// error.
    pub fn next_chunk(&mut self, max_rows: usize) -> Result<Vec<SmilesRecord>, DataError> {
        let mut chunk = Vec::with_capacity(max_rows.min(LOOKAHEAD_ROWS));
        while chunk.len() < max_rows {
            let next = match self.ahead.pop_front() {
                Some(record) => Some(record),
                None => self.read_record()?,
            };
            let Some((line, cells)) = next else { break };
            let cell = |c: usize| cells.get(c).map_or(String::new(), |v| v.trim().to_owned());
            chunk.push(SmilesRecord {
                line,
                smiles: cell(self.smiles_idx),
                identifiers: self.identifier_idx.iter().map(|&c| cell(c)).collect(),
            });
        }
        Ok(chunk)
    }

    fn read_record(&mut self) -> Result<Option<(u64, Vec<String>)>, DataError> {
        if self.finished {
            return Ok(None);
        }
        let record = next_record(&mut self.reader, &self.name)?;
        self.finished = record.is_none();
        Ok(record)
    }
}

/// Drops the CR of every CRLF: the CSV reader takes either line ending,
/// but with CRLF it reports each record's line one short.
pub(crate) struct CrlfToLf<R> {
    inner: R,
    /// A CR that ended the inner buffer, not yet known to precede an LF.
    held_cr: bool,
}

impl<R: BufRead> CrlfToLf<R> {
    pub(crate) fn new(inner: R) -> Self {
        CrlfToLf { inner, held_cr: false }
    }
}

impl<R: BufRead> Read for CrlfToLf<R> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        if out.is_empty() {
            return Ok(0);
        }
        loop {
            let buf = self.inner.fill_buf()?;
            if std::mem::take(&mut self.held_cr) && buf.first() != Some(&b'\n') {
                out[0] = b'\r';
                return Ok(1);
            }
            if buf.is_empty() {
                return Ok(0);
            }
            if buf == b"\r" {
                // Whether it is dropped depends on the next byte, which the
                // inner reader shows only once this one is consumed.
                self.inner.consume(1);
                self.held_cr = true;
                continue;
            }
            let (mut written, mut consumed) = (0, 0);
            while consumed < buf.len() && written < out.len() {
                let byte = buf[consumed];
                if byte == b'\r' {
                    match buf.get(consumed + 1) {
                        Some(b'\n') => {
                            consumed += 1;
                            continue;
                        }
                        // Decided on the next call, with what follows in view.
                        None => break,
                        Some(_) => {}
                    }
                }
                out[written] = byte;
                written += 1;
                consumed += 1;
            }
            self.inner.consume(consumed);
            return Ok(written);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strip(input: &[u8], chunk: usize) -> Vec<u8> {
        struct Chunked<'a>(&'a [u8], usize);
        impl Read for Chunked<'_> {
            fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
                let n = self.1.min(out.len()).min(self.0.len());
                out[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let mut out = Vec::new();
        let inner = BufReader::with_capacity(chunk, Chunked(input, chunk));
        CrlfToLf::new(inner).read_to_end(&mut out).unwrap();
        out
    }

    #[test]
    fn crlf_becomes_lf_across_every_chunk_boundary() {
        let input = b"a,b\r\n1,2\r\n\rx\r\r\n3\r";
        for chunk in 1..input.len() + 1 {
            assert_eq!(strip(input, chunk), b"a,b\n1,2\n\rx\r\n3\r", "chunk {chunk}");
        }
    }

    #[test]
    fn chunks_agree_with_the_whole_file_reader() {
        use std::io::Write;
        let scratch = tempfile::Builder::new().prefix("ferrochem-stream-").tempdir().unwrap();
        let dir = scratch.path().to_path_buf();
        let mut csv = String::from("\u{feff}mol_id,smiles,label\r\n");
        for i in 0..10 {
            csv.push_str(&format!("M{i}, C{} ,{}\r\n", "C".repeat(i), i % 2));
        }
        let path = dir.join("rows.csv.gz");
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(csv.as_bytes()).unwrap();
        std::fs::write(&path, gz.finish().unwrap()).unwrap();

        let input = Input::Path(&path);
        let whole = crate::read_smiles_rows(&input, "smiles").unwrap();
        let mut stream = SmilesStream::open(&input, "smiles").unwrap();
        assert_eq!(stream.identifier_names(), ["mol_id"]);
        let mut rows = Vec::new();
        loop {
            let chunk = stream.next_chunk(3).unwrap();
            if chunk.is_empty() {
                break;
            }
            assert!(chunk.len() <= 3);
            rows.extend(chunk);
        }
        assert_eq!(rows.len(), 10);
        for (i, row) in rows.iter().enumerate() {
            assert_eq!((row.line, row.smiles.clone()), whole.smiles[i]);
            assert_eq!(row.identifiers, [whole.identifiers[0].values[i].clone()]);
        }
        assert_eq!(rows[0].line, 2);
        let missing = SmilesStream::open(&input, "SMILES").unwrap_err().to_string();
        assert!(missing.contains("rows.csv.gz") && missing.contains("SMILES"), "{missing}");
    }
}
