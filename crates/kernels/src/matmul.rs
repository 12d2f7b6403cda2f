//! Dense matrix products on faer.
//!
//! Training needs three forms of the product: `lhs·rhs` for the forward
//! pass, `lhsᵀ·rhs` for weight gradients and `lhs·rhsᵀ` for input
//! gradients. All three take views, so a transpose costs nothing: faer reads
//! the operand with swapped strides.

use faer::{Accum, MatMut, MatRef, Par};

use crate::parallel::Resolved;
use crate::{Float, Matrix, Parallelism};

/// Which operand, if any, enters the product transposed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Form {
    /// `lhs · rhs`.
    Plain,
    /// `lhsᵀ · rhs`: the weight gradient of a layer, `xᵀ · grad_out`.
    LhsTransposed,
    /// `lhs · rhsᵀ`: the input gradient of a layer, `grad_out · wᵀ`.
    RhsTransposed,
}

/// How a kernel combines its result with what `dst` already holds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Accumulate<T> {
    /// `dst = result`; the old contents of `dst` are never read, so they may
    /// be uninitialized garbage or NaN.
    Overwrite,
    /// `dst = beta · dst + result`. With `beta = 1` this adds into `dst`,
    /// the way gradients accumulate.
    Add {
        /// Scale applied to the old contents of `dst`.
        beta: T,
    },
}

impl<T: Float> Accumulate<T> {
    /// `dst += result`.
    pub const ADD: Self = Accumulate::Add { beta: T::ONE };
}

/// Below this many multiply-adds a product runs faster on one thread than
/// on two; `Parallelism::Auto` resolves against it. Measured with faer on
/// the two-core machines the project runs on (time on two threads over
/// time on one): 2.9 at 0.6 M multiply-adds (50 × 1000 × 12), 1.2 to 3.6
/// between 1.2 M and 4.8 M depending on the shape, 0.79 at 9.6 M and 0.69
/// at 51 M (50 × 1024 × 1000). The crossover lies between 5 M and 8 M.
const PARALLEL_MIN_MULTIPLY_ADDS: usize = 1 << 23;

/// Computes `dst = beta · dst + alpha · op(lhs) · op(rhs)`, with `op` given
/// by `form` and `beta` by `accumulate`.
///
/// Each entry of `dst` is summed over the inner dimension in the same order
/// however many threads run, so the result does not depend on
/// `parallelism`.
///
/// # Panics
///
/// Panics, naming the form and all three shapes, if the inner dimensions of
/// the operands differ or `dst` does not have the shape of the product.
///
/// # Example
///
/// ```
/// use ferrochem_kernels::{matmul_into, Accumulate, Form, Matrix, Parallelism};
///
/// let x = Matrix::from_vec(2, 2, vec![1.0f32, 2.0, 3.0, 4.0]);
/// let mut dst = Matrix::filled(2, 2, 1.0);
/// // dst = 1·dst + 1·xᵀ·x
/// matmul_into(dst.as_mut(), Accumulate::ADD, x.as_ref(), x.as_ref(),
///             Form::LhsTransposed, 1.0, Parallelism::Sequential);
/// assert_eq!(dst.as_slice(), &[11.0, 15.0, 15.0, 21.0]);
/// ```
#[track_caller]
pub fn matmul_into<T: Float>(
    mut dst: MatMut<'_, T>,
    accumulate: Accumulate<T>,
    lhs: MatRef<'_, T>,
    rhs: MatRef<'_, T>,
    form: Form,
    alpha: T,
    parallelism: Parallelism,
) {
    let (lhs, rhs) = match form {
        Form::Plain => (lhs, rhs),
        Form::LhsTransposed => (lhs.transpose(), rhs),
        Form::RhsTransposed => (lhs, rhs.transpose()),
    };
    check_product_shapes(form, (dst.nrows(), dst.ncols()), lhs, rhs);

    let accum = match accumulate {
        Accumulate::Overwrite => Accum::Replace,
        Accumulate::Add { beta } if beta == T::ONE => Accum::Add,
        Accumulate::Add { beta } => {
            scale_view(dst.as_mut(), beta);
            Accum::Add
        }
    };
    let work = lhs.nrows() * lhs.ncols() * rhs.ncols();
    let par = match parallelism.resolve(work, PARALLEL_MIN_MULTIPLY_ADDS) {
        Resolved::Sequential => Par::Seq,
        Resolved::Parallel(n_threads) => Par::rayon(n_threads),
    };
    faer::linalg::matmul::matmul(dst, accum, lhs, rhs, alpha, par);
}

/// Returns `op(lhs) · op(rhs)` in a new matrix; see [`matmul_into`].
///
/// # Panics
///
/// Panics, naming the form and both shapes, if the inner dimensions differ.
#[track_caller]
pub fn matmul<T: Float>(
    lhs: MatRef<'_, T>,
    rhs: MatRef<'_, T>,
    form: Form,
    parallelism: Parallelism,
) -> Matrix<T> {
    let nrows = if form == Form::LhsTransposed { lhs.ncols() } else { lhs.nrows() };
    let ncols = if form == Form::RhsTransposed { rhs.nrows() } else { rhs.ncols() };
    let mut dst = Matrix::zeros(nrows, ncols);
    matmul_into(dst.as_mut(), Accumulate::Overwrite, lhs, rhs, form, T::ONE, parallelism);
    dst
}

/// `dst *= beta`, with `beta = 0` clearing `dst` even where it holds NaN.
fn scale_view<T: Float>(mut dst: MatMut<'_, T>, beta: T) {
    for col_idx in 0..dst.ncols() {
        for row_idx in 0..dst.nrows() {
            let entry = &mut dst[(row_idx, col_idx)];
            *entry = if beta == T::ZERO { T::ZERO } else { beta * *entry };
        }
    }
}

/// Panics unless `lhs · rhs` (already transposed as `form` asks) fits
/// `dst`. Shapes are reported as the caller passed them.
#[track_caller]
fn check_product_shapes<T>(
    form: Form,
    dst: (usize, usize),
    lhs: MatRef<'_, T>,
    rhs: MatRef<'_, T>,
) {
    if lhs.ncols() == rhs.nrows() && dst == (lhs.nrows(), rhs.ncols()) {
        return;
    }
    let (lhs_shape, rhs_shape) = match form {
        Form::Plain => ((lhs.nrows(), lhs.ncols()), (rhs.nrows(), rhs.ncols())),
        Form::LhsTransposed => ((lhs.ncols(), lhs.nrows()), (rhs.nrows(), rhs.ncols())),
        Form::RhsTransposed => ((lhs.nrows(), lhs.ncols()), (rhs.ncols(), rhs.nrows())),
    };
    let formula = match form {
        Form::Plain => "lhs·rhs",
        Form::LhsTransposed => "lhsᵀ·rhs",
        Form::RhsTransposed => "lhs·rhsᵀ",
    };
    panic!(
        "matmul ({formula}): lhs is {}x{}, rhs is {}x{}, dst is {}x{}: \
         the product would be {}x{} and needs matching inner dimensions {} and {}",
        lhs_shape.0,
        lhs_shape.1,
        rhs_shape.0,
        rhs_shape.1,
        dst.0,
        dst.1,
        lhs.nrows(),
        rhs.ncols(),
        lhs.ncols(),
        rhs.nrows(),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The textbook triple loop, in f64, as the reference.
    fn reference(lhs: &Matrix<f64>, rhs: &Matrix<f64>, form: Form) -> Matrix<f64> {
        let lhs = match form {
            Form::LhsTransposed => Matrix::from_view(lhs.as_ref().transpose()),
            _ => lhs.clone(),
        };
        let rhs = match form {
            Form::RhsTransposed => Matrix::from_view(rhs.as_ref().transpose()),
            _ => rhs.clone(),
        };
        Matrix::from_fn(lhs.nrows(), rhs.ncols(), |i, j| {
            (0..lhs.ncols()).map(|k| lhs[(i, k)] * rhs[(k, j)]).sum()
        })
    }

    fn pseudo_random(nrows: usize, ncols: usize, seed: u64) -> Matrix<f64> {
        let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        Matrix::from_fn(nrows, ncols, |_, _| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 11) as f64 / (1u64 << 53) as f64 - 0.5
        })
    }

    #[test]
    fn every_form_matches_the_triple_loop() {
        for (form, lhs_shape, rhs_shape) in [
            (Form::Plain, (5, 7), (7, 3)),
            (Form::LhsTransposed, (7, 5), (7, 3)),
            (Form::RhsTransposed, (5, 7), (3, 7)),
            (Form::Plain, (1, 1), (1, 1)),
        ] {
            let lhs = pseudo_random(lhs_shape.0, lhs_shape.1, 1);
            let rhs = pseudo_random(rhs_shape.0, rhs_shape.1, 2);
            let expected = reference(&lhs, &rhs, form);
            let mut dst = Matrix::filled(expected.nrows(), expected.ncols(), f64::NAN);
            matmul_into(
                dst.as_mut(),
                Accumulate::Overwrite,
                lhs.as_ref(),
                rhs.as_ref(),
                form,
                2.0,
                Parallelism::Sequential,
            );
            for (got, want) in dst.as_slice().iter().zip(expected.as_slice()) {
                // Sums of at most 7 products of values below 0.5: a few ulps.
                assert!(
                    (got - 2.0 * want).abs() <= 16.0 * f64::EPSILON,
                    "{form:?}: {got} vs {want}"
                );
            }
        }
    }

    #[test]
    fn accumulate_scales_the_old_contents() {
        let lhs = pseudo_random(4, 3, 3);
        let rhs = pseudo_random(3, 2, 4);
        let product = reference(&lhs, &rhs, Form::Plain);
        let mut dst = Matrix::filled(4, 2, 1.0);
        matmul_into(
            dst.as_mut(),
            Accumulate::Add { beta: 0.5 },
            lhs.as_ref(),
            rhs.as_ref(),
            Form::Plain,
            1.0,
            Parallelism::Sequential,
        );
        for (got, want) in dst.as_slice().iter().zip(product.as_slice()) {
            assert!((got - (0.5 + want)).abs() <= 16.0 * f64::EPSILON);
        }
    }

    #[test]
    fn parallel_and_sequential_agree_bit_for_bit() {
        let lhs = pseudo_random(64, 300, 5).as_slice().iter().map(|&x| x as f32).collect();
        let lhs = Matrix::from_vec(64, 300, lhs);
        let rhs = pseudo_random(300, 257, 6).as_slice().iter().map(|&x| x as f32).collect();
        let rhs = Matrix::from_vec(300, 257, rhs);
        let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
        for form in [Form::Plain, Form::RhsTransposed] {
            let rhs = if form == Form::Plain {
                rhs.clone()
            } else {
                Matrix::from_view(rhs.as_ref().transpose())
            };
            let sequential = matmul(lhs.as_ref(), rhs.as_ref(), form, Parallelism::Sequential);
            let parallel =
                pool.install(|| matmul(lhs.as_ref(), rhs.as_ref(), form, Parallelism::Parallel));
            assert!(sequential == parallel, "{form:?}: threads changed the product");
        }
    }

    #[test]
    #[should_panic(expected = "matmul (lhsᵀ·rhs): lhs is 3x4, rhs is 2x5, dst is 4x5")]
    fn mismatch_names_the_form_and_shapes() {
        let lhs = Matrix::<f32>::zeros(4, 3);
        let rhs = Matrix::<f32>::zeros(2, 5);
        let mut dst = Matrix::zeros(4, 5);
        let lhs_t = Matrix::from_view(lhs.as_ref().transpose());
        matmul_into(
            dst.as_mut(),
            Accumulate::Overwrite,
            lhs_t.as_ref(),
            rhs.as_ref(),
            Form::LhsTransposed,
            1.0,
            Parallelism::Sequential,
        );
    }
}
