//! Synthetic multitask data: fingerprint-like inputs labelled by a random
//! teacher network, with rare positives and missing labels.

use ferrochem_data::{Features, InMemoryDataset};
use ferrochem_kernels::random::Rng;
use ferrochem_kernels::{Matrix, SparseBinary};
use ferrochem_nn::{ModelInput, MultitaskConfig};

pub const N_BITS: usize = 256;
pub const N_TASKS: usize = 5;
const N_ROWS: usize = 1500 + 500 + 500;
const ON_BITS: usize = 16;
const POSITIVE_SHARE: f64 = 0.12;
const MISSING_SHARE: f64 = 0.25;

/// Train (1500 rows), validation (500) and test (500) sets, the same on
/// every call.
pub fn teacher_data() -> (InMemoryDataset, InMemoryDataset, InMemoryDataset) {
    let mut rng = Rng::new(2024);
    let mut x = SparseBinary::with_ncols(N_BITS);
    for _ in 0..N_ROWS {
        let mut bits: Vec<u32> = (0..ON_BITS).map(|_| rng.below(N_BITS as u64) as u32).collect();
        bits.sort_unstable();
        bits.dedup();
        x.push_row(&bits).unwrap();
    }

    let teacher = MultitaskConfig {
        hidden_layers: vec![32],
        dropout: vec![],
        ..MultitaskConfig::regressor(N_BITS, N_TASKS)
    }
    .init::<f32>(99);
    let logits = teacher.predict(ModelInput::Sparse(&x)).unwrap();
    // Per task, the top 12 % of teacher outputs are the positives.
    let mut targets = Matrix::zeros(N_ROWS, N_TASKS);
    for task in 0..N_TASKS {
        let mut column: Vec<f32> = (0..N_ROWS).map(|i| logits[(i, task)]).collect();
        column.sort_by(f32::total_cmp);
        let threshold = column[((1.0 - POSITIVE_SHARE) * N_ROWS as f64) as usize];
        for i in 0..N_ROWS {
            targets[(i, task)] = if logits[(i, task)] >= threshold { 1.0 } else { 0.0 };
        }
    }
    let mask =
        Matrix::from_fn(
            N_ROWS,
            N_TASKS,
            |_, _| if rng.uniform_f64() < MISSING_SHARE { 0.0 } else { 1.0 },
        );

    let split = |rows: std::ops::Range<usize>| {
        let rows: Vec<usize> = rows.collect();
        InMemoryDataset::new(
            Features::Sparse(x.select_rows(&rows)),
            ferrochem_data::select_matrix_rows(&targets, &rows),
            Matrix::filled(rows.len(), N_TASKS, 1.0),
            ferrochem_data::select_matrix_rows(&mask, &rows),
        )
    };
    (split(0..1500), split(1500..2000), split(2000..2500))
}
