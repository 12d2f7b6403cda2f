//! Entry-wise operations over slices, and the bias broadcast.
//!
//! Every loop here is a plain zipped iterator that the compiler vectorizes.
//! `multiversion` compiles each one again for AVX-512 and AVX2 and picks the
//! widest the running processor has, so a portable binary still reaches wide
//! vectors. Rust never contracts `a * b + c` into a fused multiply-add on its
//! own, so the wide and narrow versions round identically and results do not
//! depend on the processor.
//!
//! Transcendental functions (`exp`, `ln`, `tanh`) go through [`map_into`]
//! and the standard library's scalar implementations: they only touch the
//! small output layer of a network, where vector width does not matter.

use multiversion::multiversion;

use crate::check::same_len;
use crate::{Float, Matrix};

/// `dst = lhs + rhs`.
///
/// # Panics
///
/// Panics if the three slices differ in length.
#[track_caller]
pub fn add_into<T: Float>(dst: &mut [T], lhs: &[T], rhs: &[T]) {
    same_len("add", "lhs", dst.len(), lhs.len());
    same_len("add", "rhs", dst.len(), rhs.len());
    add_kernel(dst, lhs, rhs);
}

#[multiversion(targets("x86_64+avx512f+avx512vl", "x86_64+avx2+fma", "aarch64+neon"))]
fn add_kernel<T: Float>(dst: &mut [T], lhs: &[T], rhs: &[T]) {
    for ((d, &l), &r) in dst.iter_mut().zip(lhs).zip(rhs) {
        *d = l + r;
    }
}

/// `dst = lhs - rhs`.
///
/// # Panics
///
/// Panics if the three slices differ in length.
#[track_caller]
pub fn sub_into<T: Float>(dst: &mut [T], lhs: &[T], rhs: &[T]) {
    same_len("sub", "lhs", dst.len(), lhs.len());
    same_len("sub", "rhs", dst.len(), rhs.len());
    sub_kernel(dst, lhs, rhs);
}

#[multiversion(targets("x86_64+avx512f+avx512vl", "x86_64+avx2+fma", "aarch64+neon"))]
fn sub_kernel<T: Float>(dst: &mut [T], lhs: &[T], rhs: &[T]) {
    for ((d, &l), &r) in dst.iter_mut().zip(lhs).zip(rhs) {
        *d = l - r;
    }
}

/// `dst = lhs ⊙ rhs`, the entry-wise product (also how a dropout mask is
/// applied).
///
/// # Panics
///
/// Panics if the three slices differ in length.
#[track_caller]
pub fn mul_into<T: Float>(dst: &mut [T], lhs: &[T], rhs: &[T]) {
    same_len("mul", "lhs", dst.len(), lhs.len());
    same_len("mul", "rhs", dst.len(), rhs.len());
    mul_kernel(dst, lhs, rhs);
}

#[multiversion(targets("x86_64+avx512f+avx512vl", "x86_64+avx2+fma", "aarch64+neon"))]
fn mul_kernel<T: Float>(dst: &mut [T], lhs: &[T], rhs: &[T]) {
    for ((d, &l), &r) in dst.iter_mut().zip(lhs).zip(rhs) {
        *d = l * r;
    }
}

/// `dst = alpha · src`.
///
/// # Panics
///
/// Panics if the slices differ in length.
#[track_caller]
pub fn scale_into<T: Float>(dst: &mut [T], alpha: T, src: &[T]) {
    same_len("scale", "src", dst.len(), src.len());
    scale_kernel(dst, alpha, src);
}

#[multiversion(targets("x86_64+avx512f+avx512vl", "x86_64+avx2+fma", "aarch64+neon"))]
fn scale_kernel<T: Float>(dst: &mut [T], alpha: T, src: &[T]) {
    for (d, &s) in dst.iter_mut().zip(src) {
        *d = alpha * s;
    }
}

/// `dst += alpha · src`, the BLAS `axpy`; with `alpha = 1` it is how
/// gradients accumulate.
///
/// # Panics
///
/// Panics if the slices differ in length.
#[track_caller]
pub fn axpy<T: Float>(dst: &mut [T], alpha: T, src: &[T]) {
    same_len("axpy", "src", dst.len(), src.len());
    if alpha == T::ONE {
        add_assign_kernel(dst, src);
    } else {
        axpy_kernel(dst, alpha, src);
    }
}

#[multiversion(targets("x86_64+avx512f+avx512vl", "x86_64+avx2+fma", "aarch64+neon"))]
fn axpy_kernel<T: Float>(dst: &mut [T], alpha: T, src: &[T]) {
    for (d, &s) in dst.iter_mut().zip(src) {
        *d += alpha * s;
    }
}

/// `dst += src` without the multiply, for the sparse gather and gradient
/// sums, where `alpha` is always one.
#[multiversion(targets("x86_64+avx512f+avx512vl", "x86_64+avx2+fma", "aarch64+neon"))]
pub(crate) fn add_assign_kernel<T: Float>(dst: &mut [T], src: &[T]) {
    for (d, &s) in dst.iter_mut().zip(src) {
        *d += s;
    }
}

/// `dst = max(src, 0)`.
///
/// # Panics
///
/// Panics if the slices differ in length.
#[track_caller]
pub fn relu_into<T: Float>(dst: &mut [T], src: &[T]) {
    same_len("relu", "src", dst.len(), src.len());
    relu_kernel(dst, src);
}

#[multiversion(targets("x86_64+avx512f+avx512vl", "x86_64+avx2+fma", "aarch64+neon"))]
fn relu_kernel<T: Float>(dst: &mut [T], src: &[T]) {
    for (d, &s) in dst.iter_mut().zip(src) {
        *d = if s > T::ZERO { s } else { T::ZERO };
    }
}

/// `dst = grad_out` where `input > 0`, else 0: the gradient of ReLU. The
/// derivative at exactly 0 is taken as 0, as PyTorch does.
///
/// # Panics
///
/// Panics if the slices differ in length.
#[track_caller]
pub fn relu_backward_into<T: Float>(dst: &mut [T], grad_out: &[T], input: &[T]) {
    same_len("relu_backward", "grad_out", dst.len(), grad_out.len());
    same_len("relu_backward", "input", dst.len(), input.len());
    relu_backward_kernel(dst, grad_out, input);
}

#[multiversion(targets("x86_64+avx512f+avx512vl", "x86_64+avx2+fma", "aarch64+neon"))]
fn relu_backward_kernel<T: Float>(dst: &mut [T], grad_out: &[T], input: &[T]) {
    for ((d, &g), &x) in dst.iter_mut().zip(grad_out).zip(input) {
        *d = if x > T::ZERO { g } else { T::ZERO };
    }
}

/// `dst = max(src, 0) ⊙ mask`: ReLU and then dropout in one pass, which is
/// how a hidden layer ends. Every entry is rounded exactly as by
/// [`relu_into`] followed by [`mul_into`].
///
/// # Panics
///
/// Panics if the slices differ in length.
#[track_caller]
pub fn relu_mul_into<T: Float>(dst: &mut [T], src: &[T], mask: &[T]) {
    same_len("relu_mul", "src", dst.len(), src.len());
    same_len("relu_mul", "mask", dst.len(), mask.len());
    relu_mul_kernel(dst, src, mask);
}

#[multiversion(targets("x86_64+avx512f+avx512vl", "x86_64+avx2+fma", "aarch64+neon"))]
fn relu_mul_kernel<T: Float>(dst: &mut [T], src: &[T], mask: &[T]) {
    for ((d, &s), &k) in dst.iter_mut().zip(src).zip(mask) {
        let relu = if s > T::ZERO { s } else { T::ZERO };
        *d = relu * k;
    }
}

/// `dst = grad_out ⊙ mask` where `input > 0`, else 0: the gradient of
/// [`relu_mul_into`] with respect to its input, the same bits as
/// [`mul_into`] followed by [`relu_backward_into`].
///
/// # Panics
///
/// Panics if the slices differ in length.
#[track_caller]
pub fn relu_mul_backward_into<T: Float>(dst: &mut [T], grad_out: &[T], input: &[T], mask: &[T]) {
    same_len("relu_mul_backward", "grad_out", dst.len(), grad_out.len());
    same_len("relu_mul_backward", "input", dst.len(), input.len());
    same_len("relu_mul_backward", "mask", dst.len(), mask.len());
    relu_mul_backward_kernel(dst, grad_out, input, mask);
}

#[multiversion(targets("x86_64+avx512f+avx512vl", "x86_64+avx2+fma", "aarch64+neon"))]
fn relu_mul_backward_kernel<T: Float>(dst: &mut [T], grad_out: &[T], input: &[T], mask: &[T]) {
    for (((d, &g), &x), &k) in dst.iter_mut().zip(grad_out).zip(input).zip(mask) {
        *d = if x > T::ZERO { g * k } else { T::ZERO };
    }
}

/// `dst = f(src)` entry by entry, for the functions without a vector form.
///
/// # Panics
///
/// Panics if the slices differ in length.
#[track_caller]
pub fn map_into<T: Float>(dst: &mut [T], src: &[T], f: impl Fn(T) -> T) {
    same_len("map", "src", dst.len(), src.len());
    for (d, &s) in dst.iter_mut().zip(src) {
        *d = f(s);
    }
}

/// `dst = f(lhs, rhs)` entry by entry, for gradients that combine two
/// operands.
///
/// # Panics
///
/// Panics if the slices differ in length.
#[track_caller]
pub fn zip_map_into<T: Float>(dst: &mut [T], lhs: &[T], rhs: &[T], f: impl Fn(T, T) -> T) {
    same_len("zip_map", "lhs", dst.len(), lhs.len());
    same_len("zip_map", "rhs", dst.len(), rhs.len());
    for ((d, &l), &r) in dst.iter_mut().zip(lhs).zip(rhs) {
        *d = f(l, r);
    }
}

/// The logistic function `1 / (1 + e^-x)`, without overflow for large
/// `|x|`.
#[inline]
pub fn sigmoid<T: Float>(x: T) -> T {
    if x >= T::ZERO {
        T::ONE / (T::ONE + (-x).exp())
    } else {
        let e = x.exp();
        e / (T::ONE + e)
    }
}

/// `ln σ(x) = -ln(1 + e^-x)`, finite for every finite `x`.
#[inline]
pub fn log_sigmoid<T: Float>(x: T) -> T {
    // min(x, 0) - ln(1 + e^-|x|) never exponentiates a positive number.
    x.min(T::ZERO) - (-x.abs()).exp().ln_1p()
}

/// Adds `bias` to every row of `dst`: `dst[i, j] += bias[j]`.
///
/// # Panics
///
/// Panics if `bias.len()` differs from `dst.ncols()`.
#[track_caller]
pub fn add_bias_rows<T: Float>(dst: &mut Matrix<T>, bias: &[T]) {
    same_len("add_bias_rows", "bias", dst.ncols(), bias.len());
    if bias.is_empty() {
        return;
    }
    for row in dst.as_mut_slice().chunks_exact_mut(bias.len()) {
        add_assign_kernel(row, bias);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_ops_on_odd_lengths() {
        // 37 entries exercise both the vector body and the scalar tail.
        let lhs: Vec<f32> = (0..37).map(|i| i as f32).collect();
        let rhs: Vec<f32> = (0..37).map(|i| 0.5 * i as f32).collect();
        let mut dst = vec![0.0; 37];
        add_into(&mut dst, &lhs, &rhs);
        assert_eq!(dst[36], 54.0);
        sub_into(&mut dst, &lhs, &rhs);
        assert_eq!(dst[36], 18.0);
        mul_into(&mut dst, &lhs, &rhs);
        assert_eq!(dst[36], 648.0);
        axpy(&mut dst, -2.0, &rhs);
        assert_eq!(dst[36], 612.0);
        scale_into(&mut dst, 3.0, &lhs);
        assert_eq!(dst[36], 108.0);
    }

    #[test]
    fn relu_and_its_gradient_treat_zero_as_inactive() {
        let input = [-1.0f64, 0.0, 2.0];
        let mut out = [9.0; 3];
        relu_into(&mut out, &input);
        assert_eq!(out, [0.0, 0.0, 2.0]);
        relu_backward_into(&mut out, &[5.0, 5.0, 5.0], &input);
        assert_eq!(out, [0.0, 0.0, 5.0]);
    }

    fn bits(values: &[f32]) -> Vec<u32> {
        values.iter().map(|v| v.to_bits()).collect()
    }

    #[test]
    fn fused_relu_dropout_rounds_like_the_two_passes() {
        let input: Vec<f32> = (0..37).map(|i| (i as f32 - 18.0) * 0.37).collect();
        let mask: Vec<f32> = (0..37).map(|i| if i % 3 == 0 { 0.0 } else { 4.0 / 3.0 }).collect();
        let grad: Vec<f32> = (0..37).map(|i| (i as f32).sin()).collect();
        let (mut relu, mut two_pass, mut fused) = (vec![0.0; 37], vec![0.0; 37], vec![0.0; 37]);
        relu_into(&mut relu, &input);
        mul_into(&mut two_pass, &relu, &mask);
        relu_mul_into(&mut fused, &input, &mask);
        assert_eq!(bits(&fused), bits(&two_pass));

        let mut masked = vec![0.0; 37];
        mul_into(&mut masked, &grad, &mask);
        relu_backward_into(&mut two_pass, &masked, &input);
        relu_mul_backward_into(&mut fused, &grad, &input, &mask);
        assert_eq!(bits(&fused), bits(&two_pass));
        assert_eq!(fused[18], 0.0, "the derivative at exactly 0 is 0");
    }

    #[test]
    fn logistic_functions_stay_finite_at_extremes() {
        for x in [-1e4f32, -50.0, 0.0, 50.0, 1e4] {
            assert!(sigmoid(x).is_finite() && log_sigmoid(x).is_finite(), "{x}");
        }
        assert_eq!(log_sigmoid(-1e4f32), -1e4);
        assert!((sigmoid(0.3f64) - 1.0 / (1.0 + (-0.3f64).exp())).abs() < 1e-15);
    }

    #[test]
    fn bias_goes_to_every_row() {
        let mut m = Matrix::<f32>::zeros(3, 2);
        add_bias_rows(&mut m, &[1.0, -1.0]);
        assert_eq!(m.as_slice(), &[1.0, -1.0, 1.0, -1.0, 1.0, -1.0]);
    }

    #[test]
    #[should_panic(expected = "add: rhs has 2 entries, expected 3")]
    fn length_mismatch_names_the_operand() {
        add_into(&mut [0.0f32; 3], &[0.0; 3], &[0.0; 2]);
    }
}
