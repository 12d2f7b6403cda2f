//! Integration tests of the tape: one gradient property per op and per
//! composite, checked against central finite differences in f64, plus the
//! error paths.

mod errors;
mod gradients;
mod support;
