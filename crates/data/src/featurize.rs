//! Fingerprints for many SMILES at once, in parallel, order kept, and the
//! encodings a network reads them in.

use ferrochem_chem::{EcfpOptions, Molecule, ReadOptions, SmilesError, ecfp_bits, ecfp_counts};
use ferrochem_kernels::{SparseBinary, SparseBinaryError};
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

/// How a network reads a fingerprint row: the columns of its input.
///
/// Rows come as multisets of bit indices (see [`Featurizer::features`]);
/// an encoding turns a batch of them into a sparse matrix whose entries
/// are small integers, a column repeated for each unit of its entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Encoding {
    /// One column per bit, 1 where it is on.
    Bits,
    /// One column per bit holding its count.
    Counts,
    /// One column per bit and level for `levels` levels, then one column
    /// per bit holding its count: `(levels + 1) · n_bits` columns, in
    /// blocks of `n_bits`. Block `l` (counting from 0) is 1 where the
    /// bit's count is above `l`.
    ///
    /// A first layer on plain counts gives every occurrence of an
    /// environment the same weight, so an atom environment seen once and
    /// one seen five times differ only in scale. On these columns it
    /// learns a weight of its own for each of the first `levels`
    /// occurrences and one slope for the rest, while a missing bit still
    /// contributes nothing.
    Thermometer {
        /// How many occurrences get a column of their own.
        levels: u32,
    },
}

impl From<Fingerprint> for Encoding {
    /// The encoding that reads `fingerprint` as it is.
    fn from(fingerprint: Fingerprint) -> Encoding {
        match fingerprint {
            Fingerprint::Bits => Encoding::Bits,
            Fingerprint::Counts => Encoding::Counts,
        }
    }
}

impl Encoding {
    /// The fingerprint rows must be computed in: bits for
    /// [`Encoding::Bits`], counts for the others.
    pub fn fingerprint(self) -> Fingerprint {
        match self {
            Encoding::Bits => Fingerprint::Bits,
            Encoding::Counts | Encoding::Thermometer { .. } => Fingerprint::Counts,
        }
    }

    /// How many input columns a fingerprint of `n_bits` becomes.
    pub fn n_columns(self, n_bits: u32) -> usize {
        let blocks = match self {
            Encoding::Bits | Encoding::Counts => 1,
            Encoding::Thermometer { levels } => levels as usize + 1,
        };
        blocks * n_bits as usize
    }

    /// The input matrix of `rows`, each a multiset of bit indices below
    /// `n_bits` in ascending order. Count rows serve [`Encoding::Bits`]
    /// too: a repeated bit is kept once.
    ///
    /// # Errors
    ///
    /// Fails if a row descends or names a bit not below `n_bits`.
    ///
    /// # Panics
    ///
    /// If [`Encoding::n_columns`] of `n_bits` is above `u32::MAX`.
    pub fn encode<R: AsRef<[u32]>>(
        self,
        n_bits: u32,
        rows: &[R],
    ) -> Result<SparseBinary, SparseBinaryError> {
        let n_columns = self.n_columns(n_bits);
        assert!(u32::try_from(n_columns).is_ok(), "{n_columns} input columns do not fit u32");
        let rows = rows.iter().map(AsRef::as_ref);
        match self {
            Encoding::Bits => SparseBinary::from_rows(
                n_columns,
                rows.map(|row| {
                    let mut bits = row.to_vec();
                    bits.dedup();
                    bits
                }),
            ),
            Encoding::Counts => SparseBinary::from_count_rows(n_columns, rows),
            Encoding::Thermometer { levels } => {
                // Checked as plain counts first, so that an error names the
                // bit as the row gave it rather than a column of a block.
                let counts = SparseBinary::from_count_rows(n_bits as usize, rows)?;
                let encoded = (0..counts.nrows()).map(|i| {
                    let row = counts.row(i);
                    let mut columns = Vec::with_capacity(2 * row.len());
                    for level in 0..levels {
                        let mut run = 0;
                        for (j, &bit) in row.iter().enumerate() {
                            run = if j > 0 && row[j - 1] == bit { run + 1 } else { 0 };
                            if run == level {
                                columns.push(level * n_bits + bit);
                            }
                        }
                    }
                    columns.extend(row.iter().map(|&bit| levels * n_bits + bit));
                    columns
                });
                SparseBinary::from_count_rows(n_columns, encoded)
            }
        }
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
    use ferrochem_kernels::SparseBinaryErrorKind;

    use super::*;

    #[test]
    fn order_is_kept_and_errors_stay_in_place() {
        let smiles: Vec<String> = ["CCO", "C1CC", "CO"].iter().map(|s| s.to_string()).collect();
        let out = featurize_bits(&smiles, EcfpOptions::default(), ReadOptions::default());
        assert_eq!(out[0].as_ref().unwrap(), &vec![33, 80, 222, 294, 386, 807]);
        assert!(out[1].is_err());
        assert_eq!(out[2].as_ref().unwrap(), &vec![33, 131, 807]);
    }

    #[test]
    fn each_encoding_spells_a_count_row_its_own_way() {
        let rows = [vec![1, 3, 3, 3], vec![], vec![0, 0]];
        let dense = |encoding: Encoding| encoding.encode(4, &rows).unwrap().to_dense::<f32>();

        let bits = dense(Encoding::Bits);
        assert_eq!(bits.row(0), &[0.0, 1.0, 0.0, 1.0]);
        assert_eq!(bits.row(2), &[1.0, 0.0, 0.0, 0.0]);

        let counts = dense(Encoding::Counts);
        assert_eq!(counts.row(0), &[0.0, 1.0, 0.0, 3.0]);
        assert_eq!(counts.row(2), &[2.0, 0.0, 0.0, 0.0]);

        let thermometer = dense(Encoding::Thermometer { levels: 2 });
        assert_eq!(Encoding::Thermometer { levels: 2 }.n_columns(4), 12);
        #[rustfmt::skip]
        assert_eq!(thermometer.row(0), &[
            0.0, 1.0, 0.0, 1.0, // on
            0.0, 0.0, 0.0, 1.0, // more than once
            0.0, 1.0, 0.0, 3.0, // the count
        ]);
        assert!(thermometer.row(1).iter().all(|&v| v == 0.0));
        #[rustfmt::skip]
        assert_eq!(thermometer.row(2), &[
            1.0, 0.0, 0.0, 0.0,
            1.0, 0.0, 0.0, 0.0,
            2.0, 0.0, 0.0, 0.0,
        ]);

        assert_eq!(dense(Encoding::Thermometer { levels: 0 }), counts);
    }

    #[test]
    fn a_bad_row_is_reported_as_the_fingerprint_gave_it() {
        let err =
            Encoding::Thermometer { levels: 2 }.encode(4, &[vec![0], vec![2, 5]]).unwrap_err();
        assert_eq!(err.row_idx(), 1);
        assert_eq!(err.kind(), &SparseBinaryErrorKind::OutOfRange { col: 5, ncols: 4 });
        let err = Encoding::Counts.encode(4, &[vec![2, 1]]).unwrap_err();
        assert_eq!(err.kind(), &SparseBinaryErrorKind::NotAscending { before: 2, after: 1 });
    }
}
