//! A cache of fingerprints keyed by the data file's contents and the
//! featurizer's settings, so that training twice on one file featurizes it
//! once.
//!
//! The key is the SHA-256 of the file's (decompressed) bytes, the SMILES
//! column, every featurizer setting (including a version number of the
//! featurizer itself) and the SMILES of the rows the reader accepted; any
//! change makes a new key, and stale entries are never read. The rows
//! belong in the key because which rows a file yields depends on more than
//! its bytes: choosing other task columns can skip other rows, the same
//! number of them, and the cached fingerprints would then sit beside the
//! wrong labels. A cache file that cannot be read back is ignored (with a
//! warning) and rewritten.

use std::path::{Path, PathBuf};

use ferrochem_chem::ValenceTable;
use sha2::{Digest, Sha256};

use crate::container::{self, FileKind};
use crate::featurize::{Featurizer, Fingerprint};

/// Bumped whenever the featurizer's output can change for the same input.
pub const FEATURIZER_VERSION: u32 = 1;

/// The features of every data row (see [`Featurizer::features`]), or the
/// reason it was rejected.
pub type RowFeatures = Vec<Result<Vec<u32>, String>>;

/// Whether the features came from the cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CacheOutcome {
    /// Read from a cache file.
    Hit,
    /// Computed (and written to the cache, if one is given).
    Computed,
}

/// The hexadecimal SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// The cache file inside `dir` for the rows `smiles` of a file whose
/// contents hash to `content_sha256` ([`sha256_hex`]), with these settings.
pub fn cache_path(
    dir: &Path,
    content_sha256: &str,
    smiles_column: &str,
    smiles: &[String],
    featurizer: &Featurizer,
) -> PathBuf {
    let mut hasher = Sha256::new();
    hasher.update(content_sha256.as_bytes());
    let table = match featurizer.read.valence_table {
        ValenceTable::Current => "current",
        ValenceTable::Legacy => "legacy",
    };
    let fingerprint = match featurizer.fingerprint {
        Fingerprint::Bits => "bits",
        Fingerprint::Counts => "counts",
    };
    let settings = format!(
        "\0featurizer={FEATURIZER_VERSION};column={smiles_column};radius={};bits={};valences={table};fingerprint={fingerprint}",
        featurizer.ecfp.radius, featurizer.ecfp.n_bits
    );
    hasher.update(settings.as_bytes());
    // Each SMILES with its length before it, so that no two lists of rows
    // run together into the same bytes.
    hasher.update(b"\0rows");
    for row in smiles {
        hasher.update((row.len() as u64).to_le_bytes());
        hasher.update(row.as_bytes());
    }
    let key: String = hasher.finalize().iter().map(|b| format!("{b:02x}")).collect();
    dir.join(format!("ecfp-{key}.bin"))
}

/// The fingerprints of `smiles` (the rows of a file whose contents hash to
/// `content_sha256`), from `cache_dir` when it holds them, else computed
/// and stored there. Without a cache folder they are always computed.
/// `progress` is told of each molecule featurized (not of cache hits).
pub fn featurize_cached(
    cache_dir: Option<&Path>,
    content_sha256: &str,
    smiles_column: &str,
    smiles: &[String],
    featurizer: &Featurizer,
    progress: &(dyn Fn() + Sync),
) -> (RowFeatures, CacheOutcome) {
    let path =
        cache_dir.map(|dir| cache_path(dir, content_sha256, smiles_column, smiles, featurizer));
    if let Some(path) = &path
        && path.exists()
    {
        match container::load::<RowFeatures>(FileKind::Features, path) {
            Ok(features) if features.len() == smiles.len() => return (features, CacheOutcome::Hit),
            Ok(_) => log::warn!(
                "{}: cached features do not match the data; featurizing again",
                path.display()
            ),
            Err(err) => log::warn!("{err}; featurizing again"),
        }
    }
    let features: RowFeatures = featurizer
        .features_of_all(smiles, progress)
        .into_iter()
        .map(|r| r.map_err(|err| err.to_string()))
        .collect();
    if let Some(path) = &path {
        let written = std::fs::create_dir_all(path.parent().unwrap_or(Path::new(".")))
            .map_err(|err| err.to_string())
            .and_then(|()| {
                container::save(FileKind::Features, &features, path).map_err(|err| err.to_string())
            });
        match written {
            Ok(()) => log::debug!("features cached in {}", path.display()),
            Err(err) => log::warn!("cannot cache features: {err}"),
        }
    }
    (features, CacheOutcome::Computed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrochem_chem::EcfpOptions;

    #[test]
    fn a_second_run_hits_and_any_change_misses() {
        let scratch = tempfile::Builder::new().prefix("ferrochem-cache-").tempdir().unwrap();
        let dir = scratch.path().to_path_buf();
        let smiles: Vec<String> =
            ["CCO", "C1CC", "c1ccccc1"].iter().map(|s| s.to_string()).collect();
        let bytes = b"smiles\nCCO\nC1CC\nc1ccccc1\n";
        let options = Featurizer::default();
        let run_rows = |bytes: &[u8], smiles: &[String], options: Featurizer| {
            featurize_cached(Some(&dir), &sha256_hex(bytes), "smiles", smiles, &options, &|| ())
        };
        let run = |bytes: &[u8], options: Featurizer| run_rows(bytes, &smiles, options);

        let (first, outcome) = run(bytes, options);
        assert_eq!(outcome, CacheOutcome::Computed);
        assert!(first[1].as_ref().unwrap_err().contains("never closed"));
        let (second, outcome) = run(bytes, options);
        assert_eq!((outcome, &second), (CacheOutcome::Hit, &first));

        assert_eq!(run(b"smiles\nCCO\nC1CC\nc1ccccc1\n\n", options).1, CacheOutcome::Computed);
        let longer = Featurizer { ecfp: EcfpOptions { n_bits: 2048, radius: 2 }, ..options };
        assert_eq!(run(bytes, longer).1, CacheOutcome::Computed);
        let counts = Featurizer { fingerprint: Fingerprint::Counts, ..options };
        let (counted, outcome) = run(bytes, counts);
        assert_eq!(outcome, CacheOutcome::Computed);
        assert!(counted[0].as_ref().unwrap().len() >= first[0].as_ref().unwrap().len());

        // The same file read with other task columns can yield other rows,
        // as many of them: their fingerprints are their own.
        let other_rows: Vec<String> =
            ["CCO", "CCN", "c1ccccc1"].iter().map(|s| s.to_string()).collect();
        let (other, outcome) = run_rows(bytes, &other_rows, options);
        assert_eq!(outcome, CacheOutcome::Computed);
        assert!(other[1].is_ok(), "{other:?}");

        // A damaged cache file is ignored and replaced.
        let path = cache_path(&dir, &sha256_hex(bytes), "smiles", &smiles, &options);
        std::fs::write(&path, b"garbage").unwrap();
        assert_eq!(run(bytes, options), (first.clone(), CacheOutcome::Computed));
        assert_eq!(run(bytes, options).1, CacheOutcome::Hit);
    }
}
