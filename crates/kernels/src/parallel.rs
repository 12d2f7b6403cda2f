//! How a kernel spreads its work over threads.

/// Whether a kernel runs on the calling thread or on rayon's current pool.
///
/// Results never depend on this choice: every kernel in this crate splits
/// its work so that each output entry is computed by one thread in a fixed
/// order, so the same inputs give bit-identical outputs on any number of
/// threads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Parallelism {
    /// Run on the calling thread.
    Sequential,
    /// Run on every thread of the current rayon pool (`RAYON_NUM_THREADS`,
    /// or the pool installed by the caller).
    Parallel,
    /// Run in parallel only when the work is large enough to repay the
    /// cost of waking other threads; small products run sequentially.
    #[default]
    Auto,
}

impl Parallelism {
    /// Resolves `Auto` against a work estimate and a kernel's break-even
    /// point, and `Parallel` against a pool of one thread.
    pub(crate) fn resolve(self, work: usize, min_parallel_work: usize) -> Resolved {
        let n_threads = rayon::current_num_threads();
        match self {
            _ if n_threads < 2 => Resolved::Sequential,
            Parallelism::Sequential => Resolved::Sequential,
            Parallelism::Parallel => Resolved::Parallel(n_threads),
            Parallelism::Auto if work >= min_parallel_work => Resolved::Parallel(n_threads),
            Parallelism::Auto => Resolved::Sequential,
        }
    }
}

/// [`Parallelism`] after `Auto` has been decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Resolved {
    Sequential,
    Parallel(usize),
}
