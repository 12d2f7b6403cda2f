//! The tape: values in the order they were computed, each with the op that
//! made it, and the backward pass over them.

use std::sync::atomic::{AtomicU32, Ordering};

use ferrochem_kernels::elementwise::axpy;
use ferrochem_kernels::reduce::all_finite;
use ferrochem_kernels::{Accumulate, Float, Matrix, Parallelism, RowSparse};

use crate::error::{Error, Result};

/// A handle to a value recorded on a [`Tape`].
///
/// It is a plain index: copy it freely. Using it with a tape other than the
/// one that made it is a bug and panics.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Var {
    tape_id: u32,
    idx: u32,
}

/// A recording of a computation over [`Matrix`] values, for reverse-mode
/// differentiation.
///
/// Values enter as parameters (which want a gradient) or constants (which do
/// not). Every op appends its result and remembers how to send a gradient
/// back to its inputs; [`Tape::backward`] then walks the record from the
/// loss back to the parameters. Since each value is appended after its
/// inputs, the reverse of the recording order is a valid order for the
/// backward pass, and no graph sort is needed.
///
/// Parameters are borrowed for the tape's lifetime `'p` rather than copied,
/// so recording a step costs no copy of the weights; the optimizer updates
/// them once the tape is dropped.
///
/// An op whose inputs all lack a gradient records no backward at all, so
/// work on constants (the input batch, masks) costs nothing in the backward
/// pass.
///
/// # Scope
///
/// Gradients are plain matrices, not values on a tape, so second-order
/// derivatives are not supported.
///
/// FIXME: every op allocates its result and every gradient its storage
/// anew, and a training step frees them all at the end. How much that
/// costs depends on the allocator. glibc's may serve a block of 128 KiB
/// or more with a fresh mapping and unmap it when freed, so an op recorded
/// on its own pays page faults each time: a ReLU over a 50 × 1000 batch
/// takes 76 µs under glibc against 13 under mimalloc. A whole step of the
/// Tox21 network (`cargo bench … train/step`) frees blocks of up to 4 MiB,
/// which raises glibc's threshold for mappings, and runs within 4 % of the
/// mimalloc step (glibc 949 µs against 946 on one thread, 682 against 655
/// on two). The `ferrochem` binary and the benches allocate through mimalloc,
/// which keeps freed memory for reuse; under either allocator, zeroing and
/// first-touch page clearing of fresh blocks remain a few percent of a step.
/// The way out is a buffer pool that the tape takes its storage from and
/// returns it to, kept across steps; it needs every op to write into a
/// given buffer, which is a larger change than the allocator swap.
///
/// # Example
///
/// ```
/// use ferrochem_autodiff::Tape;
/// use ferrochem_kernels::{Form, Matrix};
///
/// // loss = Σ relu(x·w), so ∂loss/∂w = xᵀ · [x·w > 0].
/// let w = Matrix::from_vec(2, 1, vec![1.0f32, -1.0]);
/// let mut tape = Tape::new();
/// let x = tape.constant(Matrix::from_vec(2, 2, vec![3.0, 1.0, 1.0, 3.0]));
/// let w_var = tape.param(&w);
/// let h = tape.matmul(x, w_var, Form::Plain)?;
/// let h = tape.relu(h);
/// let loss = tape.sum_all(h);
/// let grads = tape.backward(loss)?;
/// assert_eq!(tape.value(loss)[(0, 0)], 2.0);
/// assert_eq!(grads.get(w_var).unwrap().as_slice(), &[3.0, 1.0]);
/// # Ok::<(), ferrochem_autodiff::Error>(())
/// ```
pub struct Tape<'p, T: Float> {
    id: u32,
    nodes: Vec<Node<'p, T>>,
}

struct Node<'p, T: Float> {
    value: Value<'p, T>,
    /// How to pass a gradient to the inputs; `None` for leaves and for
    /// values computed from constants only.
    backward: Option<Box<dyn Backward<'p, T> + 'p>>,
    requires_grad: bool,
}

enum Value<'p, T> {
    Owned(Matrix<T>),
    Borrowed(&'p Matrix<T>),
}

/// The backward half of an op: given the gradient of the loss with respect
/// to the op's output, add the gradients with respect to its inputs.
pub(crate) trait Backward<'p, T: Float> {
    fn backward(&self, ctx: &mut BackwardContext<'_, 'p, T>, grad_out: &Matrix<T>) -> Result<()>;
}

impl<'p, T: Float> Default for Tape<'p, T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<'p, T: Float> std::fmt::Debug for Tape<'p, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tape").field("id", &self.id).field("n_values", &self.nodes.len()).finish()
    }
}

impl<'p, T: Float> Tape<'p, T> {
    /// An empty tape.
    pub fn new() -> Self {
        static NEXT_ID: AtomicU32 = AtomicU32::new(0);
        Tape { id: NEXT_ID.fetch_add(1, Ordering::Relaxed), nodes: Vec::new() }
    }

    /// Records a parameter: a borrowed value that wants a gradient.
    pub fn param(&mut self, value: &'p Matrix<T>) -> Var {
        self.push_leaf(Value::Borrowed(value), true)
    }

    /// Records an owned value that wants a gradient.
    pub fn variable(&mut self, value: Matrix<T>) -> Var {
        self.push_leaf(Value::Owned(value), true)
    }

    /// Records an owned value without a gradient, such as an input batch.
    pub fn constant(&mut self, value: Matrix<T>) -> Var {
        self.push_leaf(Value::Owned(value), false)
    }

    /// Records a borrowed value without a gradient.
    pub fn constant_ref(&mut self, value: &'p Matrix<T>) -> Var {
        self.push_leaf(Value::Borrowed(value), false)
    }

    /// The value behind `var`.
    ///
    /// # Panics
    ///
    /// Panics if `var` comes from another tape.
    #[track_caller]
    pub fn value(&self, var: Var) -> &Matrix<T> {
        self.node(var).value.get()
    }

    /// The shape of the value behind `var`.
    #[track_caller]
    pub fn shape(&self, var: Var) -> (usize, usize) {
        self.value(var).shape()
    }

    /// Whether a gradient flows back to `var` from the values computed
    /// from it.
    #[track_caller]
    pub fn requires_grad(&self, var: Var) -> bool {
        self.node(var).requires_grad
    }

    /// Number of values recorded.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether nothing has been recorded.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Computes the gradient of the scalar `loss` with respect to every
    /// value recorded with [`Tape::param`] or [`Tape::variable`] that it
    /// depends on.
    ///
    /// A value used several times receives the sum of the gradients of its
    /// uses. Gradients of intermediate values are freed as soon as they have
    /// been passed on.
    ///
    /// # Errors
    ///
    /// [`Error::NotScalar`] if `loss` is not 1 × 1, and
    /// [`Error::NoGradient`] if the path back to a parameter crosses an op
    /// without a derivative.
    pub fn backward(&self, loss: Var) -> Result<Gradients<T>> {
        self.backward_with(loss, GradientLayout::Dense)
    }

    /// [`Tape::backward`] with a choice of how gradients are stored: with
    /// [`GradientLayout::RowSparseWherePossible`], a parameter whose only
    /// gradient comes from a sparse product (the first layer's weights,
    /// without a penalty on them) gets a [`Grad::Rows`] holding just the
    /// rows the batch touched.
    ///
    /// # Errors
    ///
    /// As [`Tape::backward`].
    pub fn backward_with(&self, loss: Var, layout: GradientLayout) -> Result<Gradients<T>> {
        let shape = self.shape(loss);
        if shape != (1, 1) {
            return Err(Error::NotScalar { shape });
        }
        let mut grads: Vec<Option<Grad<T>>> = Vec::new();
        grads.resize_with(self.nodes.len(), || None);
        grads[loss.idx as usize] = Some(Grad::Dense(Matrix::scalar(T::ONE)));

        for idx in (0..=loss.idx as usize).rev() {
            let node = &self.nodes[idx];
            let Some(backward) = &node.backward else { continue };
            let Some(grad_out) = grads[idx].take() else { continue };
            let grad_out = grad_out.into_dense();
            let mut ctx = BackwardContext { tape: self, grads: &mut grads, layout };
            backward.backward(&mut ctx, &grad_out)?;
        }
        Ok(Gradients { tape_id: self.id, grads })
    }

    /// Appends the result of an op with inputs `inputs`. The backward half
    /// is kept only if some input wants a gradient.
    pub(crate) fn push_op(
        &mut self,
        value: Matrix<T>,
        inputs: &[Var],
        backward: impl Backward<'p, T> + 'p,
    ) -> Var {
        let requires_grad = inputs.iter().any(|&input| self.node(input).requires_grad);
        let backward: Option<Box<dyn Backward<'p, T> + 'p>> =
            if requires_grad { Some(Box::new(backward)) } else { None };
        self.push(Node { value: Value::Owned(value), backward, requires_grad })
    }

    fn push_leaf(&mut self, value: Value<'p, T>, requires_grad: bool) -> Var {
        self.push(Node { value, backward: None, requires_grad })
    }

    fn push(&mut self, node: Node<'p, T>) -> Var {
        let idx = u32::try_from(self.nodes.len()).expect("a tape holds at most 2^32 values");
        self.nodes.push(node);
        Var { tape_id: self.id, idx }
    }

    #[track_caller]
    fn node(&self, var: Var) -> &Node<'p, T> {
        assert!(
            var.tape_id == self.id,
            "a Var was used with a tape other than the one that made it"
        );
        &self.nodes[var.idx as usize]
    }
}

impl<'p, T> Value<'p, T> {
    fn get(&self) -> &Matrix<T> {
        match self {
            Value::Owned(value) => value,
            Value::Borrowed(value) => value,
        }
    }
}

/// What an op's backward half sees: the recorded values, and the gradient
/// slots of its inputs.
pub(crate) struct BackwardContext<'a, 'p, T: Float> {
    tape: &'a Tape<'p, T>,
    grads: &'a mut Vec<Option<Grad<T>>>,
    layout: GradientLayout,
}

impl<'a, 'p, T: Float> BackwardContext<'a, 'p, T> {
    pub(crate) fn value(&self, var: Var) -> &'a Matrix<T> {
        self.tape.value(var)
    }

    /// Whether `var` wants a gradient; ops skip the work for inputs that
    /// do not.
    pub(crate) fn wants(&self, var: Var) -> bool {
        self.tape.node(var).requires_grad
    }

    /// The dense gradient slot of `var`, a row-sparse gradient already there
    /// written out first.
    fn dense_slot(&mut self, var: Var) -> &mut Option<Grad<T>> {
        let slot = &mut self.grads[var.idx as usize];
        if let Some(Grad::Rows(rows)) = slot {
            *slot = Some(Grad::Dense(rows.to_dense()));
        }
        slot
    }

    /// Adds `grad` to the gradient of `var`, moving it into an empty slot.
    pub(crate) fn accumulate(&mut self, var: Var, grad: Matrix<T>) {
        if !self.wants(var) {
            return;
        }
        match self.dense_slot(var) {
            Some(Grad::Dense(existing)) => axpy(existing.as_mut_slice(), T::ONE, grad.as_slice()),
            slot => *slot = Some(Grad::Dense(grad)),
        }
    }

    /// Adds a copy of `grad` to the gradient of `var`, copying only if
    /// `var` wants a gradient.
    pub(crate) fn accumulate_ref(&mut self, var: Var, grad: &Matrix<T>) {
        if !self.wants(var) {
            return;
        }
        match self.dense_slot(var) {
            Some(Grad::Dense(existing)) => axpy(existing.as_mut_slice(), T::ONE, grad.as_slice()),
            slot => *slot = Some(Grad::Dense(grad.clone())),
        }
    }

    /// Lets `write` put a gradient for `var` straight into its slot: with
    /// `Accumulate::Overwrite` into fresh storage the first time, with
    /// `Accumulate::ADD` afterwards. Kernels that take an `Accumulate` thus
    /// never need a temporary.
    pub(crate) fn accumulate_with(
        &mut self,
        var: Var,
        write: impl FnOnce(&mut Matrix<T>, Accumulate<T>),
    ) {
        if !self.wants(var) {
            return;
        }
        let (nrows, ncols) = self.tape.shape(var);
        match self.dense_slot(var) {
            Some(Grad::Dense(existing)) => write(existing, Accumulate::ADD),
            slot => {
                let mut fresh = Matrix::zeros(nrows, ncols);
                write(&mut fresh, Accumulate::Overwrite);
                *slot = Some(Grad::Dense(fresh));
            }
        }
    }

    /// Stores the row-sparse gradient `rows()` for `var` when the layout
    /// allows it and `var` has no gradient yet; otherwise falls back to
    /// [`BackwardContext::accumulate_with`] with `dense`.
    pub(crate) fn accumulate_rows(
        &mut self,
        var: Var,
        rows: impl FnOnce() -> RowSparse<T>,
        dense: impl FnOnce(&mut Matrix<T>, Accumulate<T>),
    ) {
        if !self.wants(var) {
            return;
        }
        let slot = &mut self.grads[var.idx as usize];
        if self.layout == GradientLayout::RowSparseWherePossible && slot.is_none() {
            *slot = Some(Grad::Rows(rows()));
        } else {
            self.accumulate_with(var, dense);
        }
    }
}

/// How [`Tape::backward_with`] stores gradients.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum GradientLayout {
    /// Every gradient is a dense matrix.
    #[default]
    Dense,
    /// Gradients that come from a sparse product alone keep only their
    /// nonzero rows.
    RowSparseWherePossible,
}

/// A gradient: dense, or nonzero only in some rows.
#[derive(Clone, Debug, PartialEq)]
pub enum Grad<T> {
    /// Every entry stored.
    Dense(Matrix<T>),
    /// Only the rows a sparse product touched.
    Rows(RowSparse<T>),
}

impl<T: Float> Grad<T> {
    /// The gradient as a dense matrix, zeros written out.
    pub fn into_dense(self) -> Matrix<T> {
        match self {
            Grad::Dense(dense) => dense,
            Grad::Rows(rows) => rows.to_dense(),
        }
    }

    /// `(nrows, ncols)` of the whole gradient.
    pub fn shape(&self) -> (usize, usize) {
        match self {
            Grad::Dense(dense) => dense.shape(),
            Grad::Rows(rows) => rows.shape(),
        }
    }

    /// The stored entries: all of a dense gradient, the kept rows of a
    /// row-sparse one (the others are zero).
    pub fn stored_values(&self) -> &[T] {
        match self {
            Grad::Dense(dense) => dense.as_slice(),
            Grad::Rows(rows) => rows.values().as_slice(),
        }
    }

    /// Whether every entry is finite: neither infinite nor NaN. A
    /// row-sparse gradient knows from when its rows were summed; a dense
    /// one is read.
    pub fn all_finite(&self) -> bool {
        match self {
            Grad::Dense(dense) => all_finite(dense.as_slice(), Parallelism::Auto),
            Grad::Rows(rows) => rows.all_finite(),
        }
    }

    /// The stored entries, mutably, for scaling in place.
    pub fn stored_values_mut(&mut self) -> &mut [T] {
        match self {
            Grad::Dense(dense) => dense.as_mut_slice(),
            Grad::Rows(rows) => rows.values_mut().as_mut_slice(),
        }
    }
}

/// The gradients computed by [`Tape::backward`], one per parameter the
/// loss depends on.
pub struct Gradients<T> {
    tape_id: u32,
    grads: Vec<Option<Grad<T>>>,
}

impl<T> std::fmt::Debug for Gradients<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n_present = self.grads.iter().filter(|g| g.is_some()).count();
        f.debug_struct("Gradients").field("n_present", &n_present).finish()
    }
}

impl<T: Float> Gradients<T> {
    /// The dense gradient of the loss with respect to `var`, or `None` if
    /// the loss does not depend on it, it does not want one, or (after
    /// [`Tape::backward_with`]) its gradient is row-sparse, which
    /// [`Gradients::get_grad`] returns.
    ///
    /// # Panics
    ///
    /// Panics if `var` comes from another tape.
    #[track_caller]
    pub fn get(&self, var: Var) -> Option<&Matrix<T>> {
        match self.get_grad(var) {
            Some(Grad::Dense(dense)) => Some(dense),
            _ => None,
        }
    }

    /// The gradient of `var` in whichever layout it has.
    #[track_caller]
    pub fn get_grad(&self, var: Var) -> Option<&Grad<T>> {
        assert!(var.tape_id == self.tape_id, "a Var was used with gradients of another tape");
        self.grads[var.idx as usize].as_ref()
    }

    /// Moves the gradient of `var` out as a dense matrix, leaving `None`.
    #[track_caller]
    pub fn take(&mut self, var: Var) -> Option<Matrix<T>> {
        self.take_grad(var).map(Grad::into_dense)
    }

    /// Moves the gradient of `var` out in whichever layout it has.
    #[track_caller]
    pub fn take_grad(&mut self, var: Var) -> Option<Grad<T>> {
        assert!(var.tape_id == self.tape_id, "a Var was used with gradients of another tape");
        self.grads[var.idx as usize].take()
    }
}
