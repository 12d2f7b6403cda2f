//! Shape preconditions shared by the kernels.
//!
//! A shape mismatch inside the kernels is a bug in the caller, not bad user
//! input, so these checks panic. Each message names the operation and every
//! shape involved, and `#[track_caller]` points the panic at the call site.

/// Panics unless the slices `what` have the same length.
#[track_caller]
pub(crate) fn same_len(op: &str, what: &str, expected: usize, found: usize) {
    if expected != found {
        panic!("{op}: {what} has {found} entries, expected {expected}");
    }
}
