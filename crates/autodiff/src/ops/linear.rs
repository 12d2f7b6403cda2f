//! Matrix products and the bias broadcast: the linear part of a layer.

use ferrochem_kernels::reduce::column_sums_into;
use ferrochem_kernels::{
    Float, Form, Matrix, Parallelism, SparseBinary, matmul, matmul_into, sparse_matmul_into,
    sparse_transpose_matmul_into, sparse_transpose_matmul_rows,
};

use crate::error::{Result, require};
use crate::tape::{Backward, BackwardContext, Tape, Var};

impl<'p, T: Float> Tape<'p, T> {
    /// `op(lhs) · op(rhs)`, with `form` saying which operand is transposed.
    ///
    /// # Errors
    ///
    /// Fails if the inner dimensions differ.
    pub fn matmul(&mut self, lhs: Var, rhs: Var, form: Form) -> Result<Var> {
        let (lhs_shape, rhs_shape) = (self.shape(lhs), self.shape(rhs));
        let (lhs_inner, rhs_inner) = match form {
            Form::Plain => (lhs_shape.1, rhs_shape.0),
            Form::LhsTransposed => (lhs_shape.0, rhs_shape.0),
            Form::RhsTransposed => (lhs_shape.1, rhs_shape.1),
        };
        let requirement = match form {
            Form::Plain => "lhs·rhs needs lhs.ncols == rhs.nrows",
            Form::LhsTransposed => "lhsᵀ·rhs needs lhs.nrows == rhs.nrows",
            Form::RhsTransposed => "lhs·rhsᵀ needs lhs.ncols == rhs.ncols",
        };
        require(
            lhs_inner == rhs_inner,
            "matmul",
            ("lhs", lhs_shape),
            ("rhs", rhs_shape),
            requirement,
        )?;

        let value =
            matmul(self.value(lhs).as_ref(), self.value(rhs).as_ref(), form, Parallelism::Auto);
        Ok(self.push_op(value, &[lhs, rhs], MatmulBackward { lhs, rhs, form }))
    }

    /// `x · w + bias` for a sparse binary `x` (a fingerprint batch) and a
    /// dense `w`; `bias`, if given, is a `1 × w.ncols` row added to every
    /// row. `x` has no gradient.
    ///
    /// # Errors
    ///
    /// Fails if `x.ncols() != w.nrows()` or `bias` is not `1 × w.ncols()`.
    pub fn sparse_matmul(&mut self, x: &'p SparseBinary, w: Var, bias: Option<Var>) -> Result<Var> {
        let w_shape = self.shape(w);
        require(
            x.ncols() == w_shape.0,
            "sparse_matmul",
            ("x", x.shape()),
            ("w", w_shape),
            "x.ncols must equal w.nrows",
        )?;
        if let Some(bias) = bias {
            let bias_shape = self.shape(bias);
            require(
                bias_shape == (1, w_shape.1),
                "sparse_matmul",
                ("bias", bias_shape),
                ("w", w_shape),
                "bias must be 1 x w.ncols",
            )?;
        }

        let mut value = Matrix::zeros(x.nrows(), w_shape.1);
        let bias_row = bias.map(|bias| self.value(bias).as_slice());
        sparse_matmul_into(&mut value, x, self.value(w), bias_row, Parallelism::Auto);
        let inputs: Vec<Var> = std::iter::once(w).chain(bias).collect();
        Ok(self.push_op(value, &inputs, SparseMatmulBackward { x, w, bias }))
    }

    /// Adds the `1 × ncols` row `bias` to every row of `x`.
    ///
    /// # Errors
    ///
    /// Fails unless `bias` is `1 × x.ncols()`.
    pub fn add_bias(&mut self, x: Var, bias: Var) -> Result<Var> {
        let (x_shape, bias_shape) = (self.shape(x), self.shape(bias));
        require(
            bias_shape == (1, x_shape.1),
            "add_bias",
            ("x", x_shape),
            ("bias", bias_shape),
            "bias must be 1 x x.ncols",
        )?;

        let mut value = self.value(x).clone();
        ferrochem_kernels::elementwise::add_bias_rows(&mut value, self.value(bias).as_slice());
        Ok(self.push_op(value, &[x, bias], AddBiasBackward { x, bias }))
    }
}

struct MatmulBackward {
    lhs: Var,
    rhs: Var,
    form: Form,
}

impl<'p, T: Float> Backward<'p, T> for MatmulBackward {
    /// With `G` the output gradient:
    /// - `C = A·B`:  `dA = G·Bᵀ`, `dB = Aᵀ·G`;
    /// - `C = Aᵀ·B`: `dA = B·Gᵀ`, `dB = A·G`;
    /// - `C = A·Bᵀ`: `dA = G·B`,  `dB = Gᵀ·A`.
    fn backward(&self, ctx: &mut BackwardContext<'_, 'p, T>, grad_out: &Matrix<T>) -> Result<()> {
        let (a, b) = (ctx.value(self.lhs), ctx.value(self.rhs));
        let g = grad_out;
        let (grad_lhs, grad_rhs) = match self.form {
            Form::Plain => ((g, b, Form::RhsTransposed), (a, g, Form::LhsTransposed)),
            Form::LhsTransposed => ((b, g, Form::RhsTransposed), (a, g, Form::Plain)),
            Form::RhsTransposed => ((g, b, Form::Plain), (g, a, Form::LhsTransposed)),
        };
        for (var, (lhs, rhs, form)) in [(self.lhs, grad_lhs), (self.rhs, grad_rhs)] {
            ctx.accumulate_with(var, |dst, accumulate| {
                matmul_into(
                    dst.as_mut(),
                    accumulate,
                    lhs.as_ref(),
                    rhs.as_ref(),
                    form,
                    T::ONE,
                    Parallelism::Auto,
                )
            });
        }
        Ok(())
    }
}

struct SparseMatmulBackward<'p> {
    x: &'p SparseBinary,
    w: Var,
    bias: Option<Var>,
}

impl<'p, T: Float> Backward<'p, T> for SparseMatmulBackward<'p> {
    /// `dW = xᵀ·G` by scattering rows of `G`; `dbias = Σ_rows G`.
    fn backward(&self, ctx: &mut BackwardContext<'_, 'p, T>, grad_out: &Matrix<T>) -> Result<()> {
        ctx.accumulate_rows(
            self.w,
            || sparse_transpose_matmul_rows(self.x, grad_out, Parallelism::Auto),
            |dst, accumulate| {
                sparse_transpose_matmul_into(dst, accumulate, self.x, grad_out, Parallelism::Auto)
            },
        );
        if let Some(bias) = self.bias {
            ctx.accumulate_with(bias, |dst, accumulate| {
                column_sums_into(dst.as_mut_slice(), accumulate, grad_out)
            });
        }
        Ok(())
    }
}

struct AddBiasBackward {
    x: Var,
    bias: Var,
}

impl<'p, T: Float> Backward<'p, T> for AddBiasBackward {
    /// `dx = G`; `dbias = Σ_rows G`.
    fn backward(&self, ctx: &mut BackwardContext<'_, 'p, T>, grad_out: &Matrix<T>) -> Result<()> {
        ctx.accumulate_ref(self.x, grad_out);
        ctx.accumulate_with(self.bias, |dst, accumulate| {
            column_sums_into(dst.as_mut_slice(), accumulate, grad_out)
        });
        Ok(())
    }
}
