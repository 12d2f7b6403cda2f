//! Sums, means and the norms used as weight penalties.

use ferrochem_kernels::reduce::{column_sums_into, row_sums_into, sum, sum_abs, sum_squares};
use ferrochem_kernels::{Accumulate, Float, Matrix, Parallelism};

use crate::error::Result;
use crate::tape::{Backward, BackwardContext, Tape, Var};

/// The axis a reduction removes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Axis {
    /// Reduce over the rows, leaving one value per column: `1 × ncols`.
    Rows,
    /// Reduce over the columns, leaving one value per row: `nrows × 1`.
    Cols,
}

impl<'p, T: Float> Tape<'p, T> {
    /// `Σ x`, as a 1 × 1 value.
    pub fn sum_all(&mut self, x: Var) -> Var {
        let total = sum(self.value(x).as_slice(), Parallelism::Auto);
        self.push_op(
            Matrix::scalar(total),
            &[x],
            ReduceBackward { x, kind: Reduce::Sum, scale: T::ONE },
        )
    }

    /// The mean of all entries, as a 1 × 1 value; 0 for an empty `x`.
    pub fn mean_all(&mut self, x: Var) -> Var {
        let scale = inverse_count(self.value(x).len());
        let total = sum(self.value(x).as_slice(), Parallelism::Auto);
        self.push_op(
            Matrix::scalar(scale * total),
            &[x],
            ReduceBackward { x, kind: Reduce::Sum, scale },
        )
    }

    /// Sums over `axis`: `Axis::Rows` gives the `1 × ncols` column totals,
    /// `Axis::Cols` the `nrows × 1` row totals.
    pub fn sum(&mut self, x: Var, axis: Axis) -> Var {
        self.reduce_axis(x, axis, T::ONE)
    }

    /// Means over `axis`; see [`Tape::sum`].
    pub fn mean(&mut self, x: Var, axis: Axis) -> Var {
        let (nrows, ncols) = self.shape(x);
        let count = if axis == Axis::Rows { nrows } else { ncols };
        self.reduce_axis(x, axis, inverse_count(count))
    }

    /// `‖x‖₁ = Σ |x|`. The derivative at an entry of exactly 0 is taken
    /// as 0.
    pub fn l1_norm(&mut self, x: Var) -> Var {
        let total = sum_abs(self.value(x).as_slice(), Parallelism::Auto);
        self.push_op(
            Matrix::scalar(total),
            &[x],
            ReduceBackward { x, kind: Reduce::Abs, scale: T::ONE },
        )
    }

    /// `‖x‖₂ = √(Σ x²)`. The derivative at `x = 0` is taken as 0.
    pub fn l2_norm(&mut self, x: Var) -> Var {
        let norm = sum_squares(self.value(x).as_slice(), Parallelism::Auto).sqrt();
        self.push_op(
            Matrix::scalar(norm),
            &[x],
            ReduceBackward { x, kind: Reduce::Norm(norm), scale: T::ONE },
        )
    }

    /// `Σ x²`, the squared L2 norm, whose gradient `2x` is the usual weight
    /// decay.
    pub fn sum_squares(&mut self, x: Var) -> Var {
        let total = sum_squares(self.value(x).as_slice(), Parallelism::Auto);
        self.push_op(
            Matrix::scalar(total),
            &[x],
            ReduceBackward { x, kind: Reduce::Squares, scale: T::ONE },
        )
    }

    fn reduce_axis(&mut self, x: Var, axis: Axis, scale: T) -> Var {
        let input = self.value(x);
        let mut value = match axis {
            Axis::Rows => Matrix::zeros(1, input.ncols()),
            Axis::Cols => Matrix::zeros(input.nrows(), 1),
        };
        match axis {
            Axis::Rows => column_sums_into(value.as_mut_slice(), Accumulate::Overwrite, input),
            Axis::Cols => row_sums_into(value.as_mut_slice(), Accumulate::Overwrite, input),
        }
        if scale != T::ONE {
            value.as_mut_slice().iter_mut().for_each(|v| *v *= scale);
        }
        self.push_op(value, &[x], ReduceBackward { x, kind: Reduce::Axis(axis), scale })
    }
}

fn inverse_count<T: Float>(count: usize) -> T {
    if count == 0 { T::ZERO } else { T::ONE / T::from_usize(count) }
}

#[derive(Clone, Copy)]
enum Reduce<T> {
    Sum,
    Axis(Axis),
    Abs,
    Norm(T),
    Squares,
}

struct ReduceBackward<T> {
    x: Var,
    kind: Reduce<T>,
    /// `1` for sums, `1 / count` for means.
    scale: T,
}

impl<'p, T: Float> Backward<'p, T> for ReduceBackward<T> {
    /// With `g` the gradient of the reduced value: sum: `g` broadcast back
    /// over the reduced axis (times `1/count` for a mean); L1:
    /// `g · sign(x)`; L2: `g · x / ‖x‖`; squares: `g · 2x`.
    fn backward(&self, ctx: &mut BackwardContext<'_, 'p, T>, grad_out: &Matrix<T>) -> Result<()> {
        if !ctx.wants(self.x) {
            return Ok(());
        }
        let x = ctx.value(self.x);
        let scale = self.scale;
        let g = grad_out.as_slice();
        let grad = match self.kind {
            Reduce::Sum => Matrix::filled(x.nrows(), x.ncols(), scale * g[0]),
            Reduce::Axis(Axis::Rows) => Matrix::from_fn(x.nrows(), x.ncols(), |_, j| scale * g[j]),
            Reduce::Axis(Axis::Cols) => Matrix::from_fn(x.nrows(), x.ncols(), |i, _| scale * g[i]),
            Reduce::Abs => map(x, |v| {
                let sign = if v > T::ZERO {
                    T::ONE
                } else if v < T::ZERO {
                    -T::ONE
                } else {
                    T::ZERO
                };
                g[0] * sign
            }),
            Reduce::Norm(norm) if norm == T::ZERO => Matrix::zeros(x.nrows(), x.ncols()),
            Reduce::Norm(norm) => map(x, |v| g[0] * v / norm),
            Reduce::Squares => {
                let two = T::ONE + T::ONE;
                map(x, |v| g[0] * two * v)
            }
        };
        ctx.accumulate(self.x, grad);
        Ok(())
    }
}

fn map<T: Float>(x: &Matrix<T>, f: impl Fn(T) -> T) -> Matrix<T> {
    let mut out = Matrix::zeros(x.nrows(), x.ncols());
    ferrochem_kernels::elementwise::map_into(out.as_mut_slice(), x.as_slice(), f);
    out
}
