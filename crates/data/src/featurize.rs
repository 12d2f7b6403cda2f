//! Fingerprints for many SMILES at once, in parallel, order kept.

use ferrochem_chem::{EcfpOptions, Molecule, ReadOptions, SmilesError, ecfp_bits, ecfp_counts};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

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

/// Which fingerprint a row becomes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Fingerprint {
    /// Which bits are on (RDKit's `GetMorganFingerprintAsBitVect`).
    #[default]
    Bits,
    /// How many environments fold onto each bit (RDKit's
    /// `GetHashedMorganFingerprint`).
    Counts,
}

/// Everything that decides a row's features: the ECFP settings, how
/// SMILES are read, and bits or counts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Featurizer {
    /// Radius and length.
    pub ecfp: EcfpOptions,
    /// How SMILES are read (the valence table).
    pub read: ReadOptions,
    /// Bits or counts.
    pub fingerprint: Fingerprint,
}

impl Featurizer {
    /// The features of one SMILES as a multiset of bit indices, ascending:
    /// each on bit once for [`Fingerprint::Bits`], each bit as many times as
    /// its count for [`Fingerprint::Counts`]. One representation for both
    /// keeps the cache and the batch builders single.
    ///
    /// # Errors
    ///
    /// Fails when the SMILES is rejected.
    pub fn features(&self, smiles: &str) -> Result<Vec<u32>, SmilesError> {
        let molecule = Molecule::from_smiles_with(smiles, self.read)?;
        Ok(match self.fingerprint {
            Fingerprint::Bits => ecfp_bits(&molecule, self.ecfp),
            Fingerprint::Counts => ecfp_counts(&molecule, self.ecfp)
                .into_iter()
                .flat_map(|(bit, count)| std::iter::repeat_n(bit, count as usize))
                .collect(),
        })
    }

    /// [`Featurizer::features`] of every SMILES in input order, spread over
    /// rayon's current pool; `progress` is told of each finished molecule,
    /// from whichever thread finished it.
    pub fn features_of_all(
        &self,
        smiles: &[String],
        progress: &(dyn Fn() + Sync),
    ) -> Vec<Result<Vec<u32>, SmilesError>> {
        smiles
            .par_iter()
            .with_min_len(64)
            .map(|s| {
                let features = self.features(s);
                progress();
                features
            })
            .collect()
    }
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
