//! Fingerprints for many SMILES at once, in parallel, order kept.

use ferrochem_chem::{EcfpOptions, Molecule, ReadOptions, SmilesError, ecfp_bits, ecfp_counts};
use rayon::prelude::*;

use crate::error::{DataError, DataErrorKind};
use crate::table::{Input, read_input_bytes};

/// The ECFP bits (ascending) of every SMILES, or why it was rejected, in
/// input order. Work is spread over rayon's current pool.
pub fn featurize_bits(
    smiles: &[String],
    options: EcfpOptions,
    read: ReadOptions,
) -> Vec<Result<Vec<u32>, SmilesError>> {
    smiles
        .par_iter()
        .with_min_len(64)
        .map(|s| Molecule::from_smiles_with(s, read).map(|m| ecfp_bits(&m, options)))
        .collect()
}

/// Like [`featurize_bits`], with the count of each bit.
pub fn featurize_counts(
    smiles: &[String],
    options: EcfpOptions,
    read: ReadOptions,
) -> Vec<Result<Vec<(u32, u32)>, SmilesError>> {
    smiles
        .par_iter()
        .with_min_len(64)
        .map(|s| Molecule::from_smiles_with(s, read).map(|m| ecfp_counts(&m, options)))
        .collect()
}

/// One column of a CSV: the cell of every data row, in order, with its
/// 1-based line. A row too short to have the column gives an empty cell.
///
/// # Errors
///
/// Fails, naming the input, if it cannot be read or parsed, or has no such
/// column.
pub fn read_column(input: &Input<'_>, column: &str) -> Result<Vec<(u64, String)>, DataError> {
    let name = input.display_name();
    let bytes = read_input_bytes(input)?;
    let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(bytes.as_slice());
    let header: Vec<String> = reader
        .headers()
        .map_err(|err| DataError::new(&name, Some(1), DataErrorKind::Csv(err)))?
        .iter()
        .map(|h| h.trim().to_owned())
        .collect();
    let idx = header.iter().position(|h| h == column).ok_or_else(|| {
        DataError::new(
            &name,
            Some(1),
            DataErrorKind::MissingColumn { name: column.to_owned(), available: header.clone() },
        )
    })?;
    let mut cells = Vec::new();
    let mut record = csv::StringRecord::new();
    loop {
        match reader.read_record(&mut record) {
            Ok(true) => {
                let line = record.position().map_or(0, |p| p.line());
                cells.push((line, record.get(idx).unwrap_or("").to_owned()));
            }
            Ok(false) => break,
            Err(err) => {
                let line = err.position().map(|p| p.line());
                return Err(DataError::new(&name, line, DataErrorKind::Csv(err)));
            }
        }
    }
    Ok(cells)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_is_kept_and_errors_stay_in_place() {
        let smiles: Vec<String> = ["CCO", "C1CC", "CO"].iter().map(|s| s.to_string()).collect();
        let out = featurize_bits(&smiles, EcfpOptions::default(), ReadOptions::default());
        assert_eq!(out[0].as_ref().unwrap(), &vec![33, 80, 222, 294, 386, 807]);
        assert!(out[1].is_err());
        assert_eq!(out[2].as_ref().unwrap(), &vec![33, 131, 807]);
    }
}
