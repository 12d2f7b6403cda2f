//! Parsing and fingerprinting every Tox21 SMILES (the file already read),
//! on one and two threads; `cargo xtask bench` sets it beside RDKit's time
//! for the same work when a Python with RDKit is present. Throughput counts
//! molecules.

use std::hint::black_box;
use std::io::Read;

use criterion::{BenchmarkId, Criterion, Throughput};
use ferrochem_chem::{EcfpOptions, ReadOptions};
use ferrochem_data::featurize::featurize_bits;

use crate::pool;

fn tox21_smiles() -> Vec<String> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../datasets/tox21.csv.gz");
    let mut text = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(path).expect("datasets/tox21.csv.gz"))
        .read_to_string(&mut text)
        .expect("gzip");
    text.lines().skip(1).map(|line| line.split(',').next().unwrap_or("").to_owned()).collect()
}

pub fn bench(c: &mut Criterion) {
    let smiles = tox21_smiles();
    let mut group = c.benchmark_group("featurize/ecfp4");
    group.throughput(Throughput::Elements(smiles.len() as u64));
    group.sample_size(10);
    for n_threads in [1, 2] {
        let pool = pool(n_threads);
        group.bench_function(BenchmarkId::new("tox21/ours", format!("t{n_threads}")), |b| {
            pool.install(|| {
                b.iter(|| {
                    black_box(featurize_bits(
                        &smiles,
                        EcfpOptions::default(),
                        ReadOptions::default(),
                    ))
                })
            })
        });
    }
    group.finish();
}
