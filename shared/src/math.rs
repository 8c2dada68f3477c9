//! The one home of transcendental math.
//!
//! Every `exp`, `ln` and `sqrt` the model code needs goes through [`Real`], so the host and the
//! firmware compute the same bits: `f32` uses `micromath` for `exp` and `ln` (pure software,
//! identical on x86 and on Cortex-M, called by path so the host's inherent `f32` methods never
//! shadow it) and `libm` for the correctly rounded `sqrt`, and `f64` (used on the host for
//! finite-difference oracles) uses `libm`.
//!
//! ```
//! use shared::math::Real;
//! assert_eq!(Real::exp(0.0f32), 1.0);
//! assert!((Real::ln(core::f32::consts::E) - 1.0).abs() < 1e-3);
//! ```

use core::fmt::Debug;
use core::ops::{Add, AddAssign, Div, Mul, MulAssign, Neg, Sub, SubAssign};

/// The scalar the model math is generic over: `f32` on a device with an FPU, [`Fixed`]
/// (integer arithmetic) on one without, `f32`, `f64` or [`Fixed`] on the host.
///
/// [`Fixed`]: crate::fixed::Fixed
pub trait Real:
    Copy
    + Debug
    + PartialEq
    + PartialOrd
    + Default
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + Neg<Output = Self>
    + AddAssign
    + SubAssign
    + MulAssign
    + nalgebra::Scalar
    + num_traits::Zero
    + num_traits::One
{
    /// `0`.
    const ZERO: Self;
    /// `1`.
    const ONE: Self;
    /// What a sum of products accumulates in ([`Real::mac`]): the scalar itself for a float
    /// (a sum is rounded at every addition), a wider integer for fixed point (rounded once,
    /// by [`Real::narrow`]).
    type Acc: Copy;
    /// The empty sum.
    const ACC_ZERO: Self::Acc;
    /// Machine words (32-bit registers) one accumulator takes: the kernels keep fewer sums
    /// side by side on a microcontroller when it is more than one.
    const ACC_WORDS: usize;
    /// Most products one sum may add up without its accumulator overflowing: every layer width
    /// and the sample capacity must be at most this (unbounded for a float).
    const MAX_TERMS: usize;
    /// Whether values saturate at the ends of a range a classifier's logits and prototype
    /// biases can leave (fixed point: ±32 in [`crate::fixed::Q10H`]; a float's range is far
    /// beyond them). A head in such an arithmetic keeps them centred
    /// ([`Real::narrow_centred`]).
    const SATURATES: bool;
    /// `self` as the start of a sum.
    fn widen(self) -> Self::Acc;
    /// `acc + a · b`. For a float, `acc + a * b` (two roundings, never fused).
    fn mac(acc: Self::Acc, a: Self, b: Self) -> Self::Acc;
    /// The sum, rounded to a scalar.
    fn narrow(acc: Self::Acc) -> Self;
    /// `self` plus the sum `acc`, rounded once: for a float `self + acc`, so a sum that starts
    /// from zero and is added at the end keeps the bits it always had.
    fn add_narrow(self, acc: Self::Acc) -> Self;
    /// `out[i] = accs[i] − s`, each rounded as by [`Real::narrow`], for one shift `s` common
    /// to all the sums (see [`Centre`]); for a float, no shift (`s = 0`, so the bits are
    /// [`Real::narrow`]'s). Softmax, its cross-entropy and their gradients do not change
    /// when all the logits of a sample move together, so a shifted sample's logits, or a
    /// head's biases all shifted alike, classify and adapt as the unshifted ones do, while
    /// their values stay in the range whatever size the features give them.
    ///
    /// ```
    /// use shared::fixed::Q10H;
    /// use shared::math::{Centre, Real};
    /// // Sums of products beyond the range, as the accumulator holds them (2^20 is 1 there):
    /// let logits = [50i64, 40, -30].map(|v| v << 20);
    /// let mut out = [Q10H::ZERO; 3];
    /// Q10H::narrow_centred(&logits, &mut out, Centre::Top);
    /// assert_eq!(out.map(Q10H::to_f32), [0.0, -10.0, -32.0]); // -80 saturates: e^-80 is 0
    /// // Prototype biases −‖μ‖² beyond −32, around their midpoint −36:
    /// let biases = [-60i64, -20, -12].map(|v| v << 20);
    /// Q10H::narrow_centred(&biases, &mut out, Centre::Middle);
    /// assert_eq!(out.map(Q10H::to_f32), [-24.0, 16.0, 24.0]);
    /// // f32 keeps its values (and bits):
    /// let mut f = [0.0f32; 2];
    /// f32::narrow_centred(&[50.0, 40.0], &mut f, Centre::Top);
    /// assert_eq!(f, [50.0, 40.0]);
    /// ```
    fn narrow_centred(accs: &[Self::Acc], out: &mut [Self], centre: Centre);
    /// The sum `acc` times `scale`, rounded once: a mean of many terms, which fits the scalar
    /// even where their sum does not (for a float `acc * scale`).
    fn narrow_mul(acc: Self::Acc, scale: Self) -> Self;
    /// A step size (`α`): the scalar itself for a float, a value with more fractional bits
    /// for fixed point, so that a small `α` keeps its precision (`α = 0.01` is 2.3% short in
    /// the 10 fractional bits of [`crate::fixed::Q10H`]).
    type Scale: Copy;
    /// `v` as a step size (rounded to nearest, and saturated, for fixed point).
    fn scale_from_f32(v: f32) -> Self::Scale;
    /// `self` as a step size (exact).
    fn to_scale(self) -> Self::Scale;
    /// `self − alpha · g`, the inner step of one parameter (for a float
    /// `self - alpha * g`, two roundings).
    ///
    /// ```
    /// use shared::fixed::Q10H;
    /// use shared::math::Real;
    /// let t = Q10H::from_f32(1.0);
    /// let g = Q10H::from_f32(0.5);
    /// // α = 0.001 is one step of Q10H's resolution, kept to 20 bits as a step size.
    /// assert_eq!(t.sub_scaled(Q10H::scale_from_f32(0.01), g).to_f32(), 0.9951172);
    /// assert_eq!(1.0f32.sub_scaled(0.01, 0.5), 0.995);
    /// ```
    fn sub_scaled(self, alpha: Self::Scale, g: Self) -> Self;
    /// Converts from `f32` (exact for `f32` and `f64`; rounded to nearest, and saturated, for
    /// fixed point).
    fn from_f32(v: f32) -> Self;
    /// Converts to `f32` (rounded to nearest for `f64` and fixed point).
    fn to_f32(self) -> f32;
    /// Converts to `f64` (exact).
    fn to_f64(self) -> f64;
    /// Converts from a count.
    fn from_usize(v: usize) -> Self;
    /// `e^self`.
    fn exp(self) -> Self;
    /// Natural logarithm.
    fn ln(self) -> Self;
    /// Square root.
    fn sqrt(self) -> Self;
    /// Neither NaN nor infinite (for fixed point: not saturated).
    fn is_finite(self) -> bool;
    /// `rows` transposed: `out[c][r] = rows[r][c]`. Values are moved, never computed, so every
    /// way of doing it gives the same bits; the host's `f32` uses vector shuffles.
    ///
    /// ```
    /// use shared::math::Real;
    /// let rows: [[f32; 8]; 8] = core::array::from_fn(|r| core::array::from_fn(|c| (8 * r + c) as f32));
    /// assert_eq!(f32::transpose8(rows)[3][5], 43.0);
    /// ```
    #[inline]
    fn transpose8(rows: [[Self; 8]; 8]) -> [[Self; 8]; 8] {
        core::array::from_fn(|c| core::array::from_fn(|r| rows[r][c]))
    }
}

/// The shift [`Real::narrow_centred`] takes from every sum of a set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Centre {
    /// The largest sum, which becomes 0: a sample's logits, whose top ones are all a softmax
    /// sees (one 32 below the top has a probability below 1e-13).
    Top,
    /// The midpoint of the largest and the smallest: biases, all of which matter, centred in
    /// the range.
    Middle,
}

/// The accumulator items of a float: the float itself, rounded at every addition.
macro_rules! float_accumulator {
    () => {
        type Acc = Self;
        const ACC_ZERO: Self = 0.0;
        const ACC_WORDS: usize = 1;
        const MAX_TERMS: usize = usize::MAX;
        #[inline(always)]
        fn widen(self) -> Self {
            self
        }
        #[inline(always)]
        fn mac(acc: Self, a: Self, b: Self) -> Self {
            acc + a * b
        }
        #[inline(always)]
        fn narrow(acc: Self) -> Self {
            acc
        }
        #[inline(always)]
        fn add_narrow(self, acc: Self) -> Self {
            self + acc
        }
        #[inline(always)]
        fn narrow_mul(acc: Self, scale: Self) -> Self {
            acc * scale
        }
        const SATURATES: bool = false;
        #[inline]
        fn narrow_centred(accs: &[Self], out: &mut [Self], _: Centre) {
            out.copy_from_slice(accs);
        }
        type Scale = Self;
        #[inline(always)]
        fn scale_from_f32(v: f32) -> Self {
            Self::from_f32(v)
        }
        #[inline(always)]
        fn to_scale(self) -> Self {
            self
        }
        #[inline(always)]
        fn sub_scaled(self, alpha: Self, g: Self) -> Self {
            self - alpha * g
        }
    };
}

impl Real for f32 {
    const ZERO: Self = 0.0;
    const ONE: Self = 1.0;
    float_accumulator!();
    #[inline]
    fn to_f32(self) -> f32 {
        self
    }
    #[inline]
    fn from_f32(v: f32) -> Self {
        v
    }
    #[inline]
    fn to_f64(self) -> f64 {
        self as f64
    }
    #[inline]
    fn from_usize(v: usize) -> Self {
        v as f32
    }
    #[inline]
    fn exp(self) -> Self {
        micromath::F32Ext::exp(self)
    }
    #[inline]
    fn ln(self) -> Self {
        // micromath inverts x < 1 with a fast reciprocal that is up to 8% off (ln(0.01) comes
        // out as -4.70); invert exactly instead. x >= 1 (all the loss ever takes) is unchanged.
        let r = 1.0 / self;
        if self > 0.0 && self < 1.0 && f32::is_finite(r) {
            -micromath::F32Ext::ln(r)
        } else {
            micromath::F32Ext::ln(self)
        }
    }
    #[inline]
    fn sqrt(self) -> Self {
        // Not micromath's (a bit trick, ~5% off): IEEE square root is correctly rounded, so
        // libm's software `sqrtf` gives the same bits on every target.
        libm::sqrtf(self)
    }
    #[inline]
    fn is_finite(self) -> bool {
        f32::is_finite(self)
    }
    #[cfg(not(target_os = "none"))]
    #[inline]
    fn transpose8(rows: [[f32; 8]; 8]) -> [[f32; 8]; 8] {
        wide::f32x8::transpose(rows.map(wide::f32x8::from)).map(|v| v.to_array())
    }
}

impl Real for f64 {
    const ZERO: Self = 0.0;
    const ONE: Self = 1.0;
    float_accumulator!();
    #[inline]
    fn to_f32(self) -> f32 {
        self as f32
    }
    #[inline]
    fn from_f32(v: f32) -> Self {
        v as f64
    }
    #[inline]
    fn to_f64(self) -> f64 {
        self
    }
    #[inline]
    fn from_usize(v: usize) -> Self {
        v as f64
    }
    #[inline]
    fn exp(self) -> Self {
        libm::exp(self)
    }
    #[inline]
    fn ln(self) -> Self {
        libm::log(self)
    }
    #[inline]
    fn sqrt(self) -> Self {
        libm::sqrt(self)
    }
    #[inline]
    fn is_finite(self) -> bool {
        f64::is_finite(self)
    }
}

#[cfg(test)]
mod tests {
    use super::Real;

    #[test]
    fn f32_functions_are_close_to_exact() {
        for &x in &[-5.0f32, -1.0, -0.1, 0.0, 0.3, 1.0, 4.0, 10.0] {
            let e = Real::exp(x) as f64;
            assert!(
                (e - (x as f64).exp()).abs() <= 1e-3 * (x as f64).exp(),
                "exp({x})"
            );
        }
        for &x in &[0.01f32, 0.5, 1.0, 2.0, 100.0] {
            let l = Real::ln(x) as f64;
            assert!((l - (x as f64).ln()).abs() <= 2e-3, "ln({x}) = {l}");
            assert!(((Real::sqrt(x) as f64) - (x as f64).sqrt()).abs() <= 1e-3 * (x as f64).sqrt());
        }
    }
}
