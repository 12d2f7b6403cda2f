//! Fingerprints for many SMILES at once, in parallel, order kept.

use ferrochem_chem::{EcfpOptions, Molecule, ReadOptions, SmilesError, ecfp_bits, ecfp_counts};
use rayon::prelude::*;

use crate::error::DataError;
use crate::table::{Input, read_csv};

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
    let file = read_csv(input)?;
    let idx = file.column(column)?;
    Ok(file
        .records
        .into_iter()
        .map(|(line, cells)| (line, cells.get(idx).cloned().unwrap_or_default()))
        .collect())
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
