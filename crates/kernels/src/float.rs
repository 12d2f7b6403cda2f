//! The scalar types the kernels work in.
//!
//! Training runs in `f32`; gradient checks run the same code in `f64`, where
//! finite differences are accurate enough to compare against. [`Float`]
//! gathers what the kernels need from either type, on top of the bounds
//! faer's matmul asks for.

use std::fmt::{Debug, Display};
use std::iter::Sum;

/// A real floating-point scalar: `f32` or `f64`.
///
/// The methods mirror the inherent methods of the primitive types, so that
/// generic kernels can call them without importing anything else.
pub trait Float:
    faer::traits::RealField + Copy + Default + Debug + Display + Send + Sync + Sum + 'static
{
    /// Additive identity.
    const ZERO: Self;
    /// Multiplicative identity.
    const ONE: Self;
    /// Machine epsilon: the gap between 1 and the next larger value.
    const EPSILON: Self;

    /// Converts from `f64`, rounding to nearest.
    fn from_f64(value: f64) -> Self;
    /// Widens to `f64`, exactly.
    fn to_f64(self) -> f64;
    /// Converts a count, rounding to nearest.
    fn from_usize(value: usize) -> Self {
        Self::from_f64(value as f64)
    }
    /// Square root.
    fn sqrt(self) -> Self;
    /// `e` raised to `self`.
    fn exp(self) -> Self;
    /// Natural logarithm.
    fn ln(self) -> Self;
    /// `ln(1 + self)`, accurate near zero.
    fn ln_1p(self) -> Self;
    /// Hyperbolic tangent.
    fn tanh(self) -> Self;
    /// Absolute value.
    fn abs(self) -> Self;
    /// `self` raised to an integer power.
    fn powi(self, exponent: i32) -> Self;
    /// The larger of two values; NaN loses to a number, as in `f32::max`.
    fn max(self, other: Self) -> Self;
    /// The smaller of two values; NaN loses to a number, as in `f32::min`.
    fn min(self, other: Self) -> Self;
    /// Whether the value is neither infinite nor NaN.
    fn is_finite(self) -> bool;
}

macro_rules! impl_float {
    ($ty:ty) => {
        impl Float for $ty {
            const ZERO: Self = 0.0;
            const ONE: Self = 1.0;
            const EPSILON: Self = <$ty>::EPSILON;

            #[inline(always)]
            fn from_f64(value: f64) -> Self {
                value as $ty
            }
            #[inline(always)]
            fn to_f64(self) -> f64 {
                self as f64
            }
            #[inline(always)]
            fn sqrt(self) -> Self {
                <$ty>::sqrt(self)
            }
            #[inline(always)]
            fn exp(self) -> Self {
                <$ty>::exp(self)
            }
            #[inline(always)]
            fn ln(self) -> Self {
                <$ty>::ln(self)
            }
            #[inline(always)]
            fn ln_1p(self) -> Self {
                <$ty>::ln_1p(self)
            }
            #[inline(always)]
            fn tanh(self) -> Self {
                <$ty>::tanh(self)
            }
            #[inline(always)]
            fn abs(self) -> Self {
                <$ty>::abs(self)
            }
            #[inline(always)]
            fn powi(self, exponent: i32) -> Self {
                <$ty>::powi(self, exponent)
            }
            #[inline(always)]
            fn max(self, other: Self) -> Self {
                <$ty>::max(self, other)
            }
            #[inline(always)]
            fn min(self, other: Self) -> Self {
                <$ty>::min(self, other)
            }
            #[inline(always)]
            fn is_finite(self) -> bool {
                <$ty>::is_finite(self)
            }
        }
    };
}

impl_float!(f32);
impl_float!(f64);
