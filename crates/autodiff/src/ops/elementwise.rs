//! Entry-wise arithmetic, activations and the dropout mask.
//!
//! Each op's gradient is written with `G` for the gradient of the output and
//! `y` for the output itself.

use ferrochem_kernels::elementwise::{
    add_into, log_sigmoid, map_into, mul_into, relu_backward_into, relu_into,
    relu_mul_backward_into, relu_mul_into, scale_into, sigmoid, sub_into, zip_map_into,
};
use ferrochem_kernels::{Float, Matrix};

use crate::error::{Error, Result, require};
use crate::tape::{Backward, BackwardContext, Tape, Var};

impl<'p, T: Float> Tape<'p, T> {
    /// `lhs + rhs`, entry-wise.
    ///
    /// # Errors
    ///
    /// Fails unless the shapes are equal.
    pub fn add(&mut self, lhs: Var, rhs: Var) -> Result<Var> {
        self.binary("add", lhs, rhs, add_into, BinaryBackward::Add)
    }

    /// `lhs − rhs`, entry-wise.
    ///
    /// # Errors
    ///
    /// Fails unless the shapes are equal.
    pub fn sub(&mut self, lhs: Var, rhs: Var) -> Result<Var> {
        self.binary("sub", lhs, rhs, sub_into, BinaryBackward::Sub)
    }

    /// `lhs ⊙ rhs`, the entry-wise product.
    ///
    /// # Errors
    ///
    /// Fails unless the shapes are equal.
    pub fn mul(&mut self, lhs: Var, rhs: Var) -> Result<Var> {
        self.binary("mul", lhs, rhs, mul_into, BinaryBackward::Mul)
    }

    /// `alpha · x`.
    pub fn scale(&mut self, x: Var, alpha: T) -> Var {
        let value = self.unary_value(x, |dst, src| scale_into(dst, alpha, src));
        self.push_op(value, &[x], UnaryBackward { x, kind: Unary::Scale(alpha) })
    }

    /// `x ⊙ mask` for a dropout `mask` that holds `0` for dropped entries
    /// and `1 / (1 − rate)` for kept ones (inverted dropout), so that no
    /// rescaling is needed at evaluation. The mask itself has no gradient.
    ///
    /// # Errors
    ///
    /// Fails unless `mask` has the shape of `x`.
    pub fn dropout(&mut self, x: Var, mask: Matrix<T>) -> Result<Var> {
        self.masked("dropout", x, mask, Gate::None)
    }

    /// `max(x, 0) ⊙ mask`: [`relu`](Self::relu) and then
    /// [`dropout`](Self::dropout) as one op, the way a hidden layer ends
    /// in training. Values and gradient are those of the two ops bit for
    /// bit; the tape holds one matrix fewer and each direction makes one
    /// pass over the batch instead of two.
    ///
    /// # Errors
    ///
    /// Fails unless `mask` has the shape of `x`.
    pub fn relu_dropout(&mut self, x: Var, mask: Matrix<T>) -> Result<Var> {
        self.masked("relu_dropout", x, mask, Gate::Relu)
    }

    fn masked(&mut self, op: &'static str, x: Var, mask: Matrix<T>, gate: Gate) -> Result<Var> {
        let x_shape = self.shape(x);
        require(
            x_shape == mask.shape(),
            op,
            ("x", x_shape),
            ("mask", mask.shape()),
            "the mask must have the shape of x",
        )?;
        let mut value = Matrix::zeros(x_shape.0, x_shape.1);
        let (dst, src) = (value.as_mut_slice(), self.value(x).as_slice());
        match gate {
            Gate::None => mul_into(dst, src, mask.as_slice()),
            Gate::Relu => relu_mul_into(dst, src, mask.as_slice()),
        }
        Ok(self.push_op(value, &[x], MaskedBackward { x, mask, gate }))
    }

    /// `max(x, 0)`. The derivative at exactly 0 is taken as 0.
    pub fn relu(&mut self, x: Var) -> Var {
        let value = self.unary_value(x, relu_into);
        self.push_op(value, &[x], UnaryBackward { x, kind: Unary::Relu })
    }

    /// The logistic function `1 / (1 + e^−x)`.
    pub fn sigmoid(&mut self, x: Var) -> Var {
        let value = self.unary_value(x, |dst, src| map_into(dst, src, sigmoid));
        self.push_op(value, &[x], UnaryBackward { x, kind: Unary::Sigmoid })
    }

    /// `tanh(x)`.
    pub fn tanh(&mut self, x: Var) -> Var {
        let value = self.unary_value(x, |dst, src| map_into(dst, src, T::tanh));
        self.push_op(value, &[x], UnaryBackward { x, kind: Unary::Tanh })
    }

    /// `e^x`.
    pub fn exp(&mut self, x: Var) -> Var {
        let value = self.unary_value(x, |dst, src| map_into(dst, src, T::exp));
        self.push_op(value, &[x], UnaryBackward { x, kind: Unary::Exp })
    }

    /// `ln(x)`; NaN for negative entries and −∞ at 0, as in IEEE arithmetic.
    pub fn log(&mut self, x: Var) -> Var {
        let value = self.unary_value(x, |dst, src| map_into(dst, src, T::ln));
        self.push_op(value, &[x], UnaryBackward { x, kind: Unary::Log })
    }

    /// `ln σ(x) = −ln(1 + e^−x)`, finite for every finite `x`.
    pub fn log_sigmoid(&mut self, x: Var) -> Var {
        let value = self.unary_value(x, |dst, src| map_into(dst, src, log_sigmoid));
        self.push_op(value, &[x], UnaryBackward { x, kind: Unary::LogSigmoid })
    }

    /// The Heaviside step, `1` where `x > 0` and `0` elsewhere. It has no
    /// useful derivative: backward through it fails with
    /// [`Error::NoGradient`] (thresholded predictions are for metrics, not
    /// for losses).
    pub fn step(&mut self, x: Var) -> Var {
        let value = self.unary_value(x, |dst, src| {
            map_into(dst, src, |v| if v > T::ZERO { T::ONE } else { T::ZERO })
        });
        self.push_op(value, &[x], NoGradient { op: "step" })
    }

    fn binary(
        &mut self,
        op: &'static str,
        lhs: Var,
        rhs: Var,
        kernel: fn(&mut [T], &[T], &[T]),
        backward: fn(Var, Var) -> BinaryBackward,
    ) -> Result<Var> {
        let (lhs_shape, rhs_shape) = (self.shape(lhs), self.shape(rhs));
        require(
            lhs_shape == rhs_shape,
            op,
            ("lhs", lhs_shape),
            ("rhs", rhs_shape),
            "entry-wise ops need equal shapes",
        )?;
        let mut value = Matrix::zeros(lhs_shape.0, lhs_shape.1);
        kernel(value.as_mut_slice(), self.value(lhs).as_slice(), self.value(rhs).as_slice());
        Ok(self.push_op(value, &[lhs, rhs], backward(lhs, rhs)))
    }

    fn unary_value(&self, x: Var, kernel: impl FnOnce(&mut [T], &[T])) -> Matrix<T> {
        let (nrows, ncols) = self.shape(x);
        let mut value = Matrix::zeros(nrows, ncols);
        kernel(value.as_mut_slice(), self.value(x).as_slice());
        value
    }
}

enum BinaryBackward {
    Add(Var, Var),
    Sub(Var, Var),
    Mul(Var, Var),
}

impl<'p, T: Float> Backward<'p, T> for BinaryBackward {
    /// add: `dl = G`, `dr = G`; sub: `dl = G`, `dr = −G`;
    /// mul: `dl = G ⊙ r`, `dr = G ⊙ l`.
    fn backward(&self, ctx: &mut BackwardContext<'_, 'p, T>, grad_out: &Matrix<T>) -> Result<()> {
        let (nrows, ncols) = grad_out.shape();
        let product = |ctx: &mut BackwardContext<'_, 'p, T>, target: Var, other: Var| {
            if ctx.wants(target) {
                let mut grad = Matrix::zeros(nrows, ncols);
                mul_into(grad.as_mut_slice(), grad_out.as_slice(), ctx.value(other).as_slice());
                ctx.accumulate(target, grad);
            }
        };
        match *self {
            BinaryBackward::Add(lhs, rhs) => {
                ctx.accumulate_ref(lhs, grad_out);
                ctx.accumulate_ref(rhs, grad_out);
            }
            BinaryBackward::Sub(lhs, rhs) => {
                ctx.accumulate_ref(lhs, grad_out);
                if ctx.wants(rhs) {
                    let mut grad = Matrix::zeros(nrows, ncols);
                    scale_into(grad.as_mut_slice(), -T::ONE, grad_out.as_slice());
                    ctx.accumulate(rhs, grad);
                }
            }
            BinaryBackward::Mul(lhs, rhs) => {
                product(ctx, lhs, rhs);
                product(ctx, rhs, lhs);
            }
        }
        Ok(())
    }
}

#[derive(Clone, Copy)]
enum Unary<T> {
    Scale(T),
    Relu,
    Sigmoid,
    Tanh,
    Exp,
    Log,
    LogSigmoid,
}

struct UnaryBackward<T> {
    x: Var,
    kind: Unary<T>,
}

impl<'p, T: Float> Backward<'p, T> for UnaryBackward<T> {
    /// scale: `G·α`; relu: `G·[x > 0]`; sigmoid: `G·y(1 − y)`;
    /// tanh: `G·(1 − y²)`; exp: `G·y`; log: `G / x`;
    /// log-sigmoid: `G·σ(−x)`.
    fn backward(&self, ctx: &mut BackwardContext<'_, 'p, T>, grad_out: &Matrix<T>) -> Result<()> {
        if !ctx.wants(self.x) {
            return Ok(());
        }
        let x = ctx.value(self.x).as_slice();
        let (nrows, ncols) = grad_out.shape();
        let mut grad = Matrix::zeros(nrows, ncols);
        let (dst, g) = (grad.as_mut_slice(), grad_out.as_slice());
        match self.kind {
            Unary::Scale(alpha) => scale_into(dst, alpha, g),
            Unary::Relu => relu_backward_into(dst, g, x),
            Unary::Sigmoid => zip_map_into(dst, g, x, |g, x| {
                let y = sigmoid(x);
                g * y * (T::ONE - y)
            }),
            Unary::Tanh => zip_map_into(dst, g, x, |g, x| {
                let y = x.tanh();
                g * (T::ONE - y * y)
            }),
            Unary::Exp => zip_map_into(dst, g, x, |g, x| g * x.exp()),
            Unary::Log => zip_map_into(dst, g, x, |g, x| g / x),
            Unary::LogSigmoid => zip_map_into(dst, g, x, |g, x| g * sigmoid(-x)),
        }
        ctx.accumulate(self.x, grad);
        Ok(())
    }
}

/// What a masked op applies to its input before the mask.
#[derive(Clone, Copy)]
enum Gate {
    /// Nothing: dropout alone.
    None,
    /// ReLU, fused with the dropout that follows it.
    Relu,
}

struct MaskedBackward<T> {
    x: Var,
    mask: Matrix<T>,
    gate: Gate,
}

impl<'p, T: Float> Backward<'p, T> for MaskedBackward<T> {
    /// dropout: `dx = G ⊙ mask`; relu-dropout: `dx = G ⊙ mask ⊙ [x > 0]`.
    fn backward(&self, ctx: &mut BackwardContext<'_, 'p, T>, grad_out: &Matrix<T>) -> Result<()> {
        if !ctx.wants(self.x) {
            return Ok(());
        }
        let (nrows, ncols) = grad_out.shape();
        let mut grad = Matrix::zeros(nrows, ncols);
        let (dst, g, mask) = (grad.as_mut_slice(), grad_out.as_slice(), self.mask.as_slice());
        match self.gate {
            Gate::None => mul_into(dst, g, mask),
            Gate::Relu => relu_mul_backward_into(dst, g, ctx.value(self.x).as_slice(), mask),
        }
        ctx.accumulate(self.x, grad);
        Ok(())
    }
}

/// The backward half of an op without a derivative.
pub(crate) struct NoGradient {
    pub(crate) op: &'static str,
}

impl<'p, T: Float> Backward<'p, T> for NoGradient {
    fn backward(&self, _: &mut BackwardContext<'_, 'p, T>, _: &Matrix<T>) -> Result<()> {
        Err(Error::NoGradient { op: self.op })
    }
}
