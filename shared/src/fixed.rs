//! Fixed-point numbers for cores without an FPU: the model math in integers, the same bits
//! on every core and on the host.
//!
//! [`Fixed<F, W>`] holds `value · 2^F` in the integer `W`: an `i32` limited to 28 bits
//! (`±2^27`, so ±128 at `F = 20`: [`Q20`]), or an `i16` (`±2^15`, so ±32 at `F = 10`:
//! [`Q10H`], half the RAM). Every operation rounds to nearest and saturates: a result beyond
//! the range is the range's end, which counts as not finite ([`Real::is_finite`]), so the
//! adapter's divergence guard and sample checks treat an overflow as they treat an infinity
//! in float. Nothing wraps around and nothing panics.
//!
//! Sums of products (the matrix kernels) accumulate in an `i64` ([`Real::mac`]) and round once
//! at the end: a product of two 28-bit values has 54 bits, so up to [`Real::MAX_TERMS`] = 511
//! of them (plus the value the sum starts from) fit, and every layer width and the sample
//! capacity must be at most that. On a Cortex-M3/M4 a product-accumulate is one `smlal`. A
//! product of two `i16` values fits a 32-bit word, so on a Cortex-M0, whose multiplier gives
//! only the low 32 bits, it is one `muls` instead of a call to `__aeabi_lmul`.
//!
//! Conversions from and to `f32` work on the bits (no floating-point instruction, so no soft
//! float library call on a core without an FPU), rounding to nearest.
//!
//! ```
//! use shared::fixed::{Q10H, Q20};
//! use shared::math::Real;
//! let a = Q20::from_f32(1.5);
//! let b = Q20::from_f32(-0.25);
//! assert_eq!((a * b).to_f32(), -0.375);
//! assert_eq!((a / b).to_f32(), -6.0);
//! assert_eq!(Q20::from_f32(1e9), Q20::MAX); // saturated: not finite
//! assert!(!Q20::MAX.is_finite() && a.is_finite());
//! assert_eq!(core::mem::size_of::<Q10H>(), 2);
//! assert_eq!((Q10H::from_f32(1.5) * Q10H::from_f32(-0.25)).to_f32(), -0.375);
//! assert_eq!(Q10H::from_f32(40.0), Q10H::MAX); // beyond ±32
//! ```

use core::fmt;
use core::ops::{Add, AddAssign, Div, Mul, MulAssign, Neg, Sub, SubAssign};

use crate::math::{Centre, Real};

/// `value · 2^F` in the integer `W` (`i32` or `i16`), saturating (see the
/// [module docs](self)).
#[derive(Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Fixed<const F: u32, W = i32>(W);

/// The format the fixed-point firmware uses: 20 fractional bits (resolution 2^-20 ≈ 9.5e-7,
/// range ±128). Chosen from the sinusoid net's adaptation: its smallest non-zero updates
/// `α · g` (1% quantile 4.6e-6) are still about five steps of the resolution, while its
/// parameters (at most 5.7) and normalised inputs (at most 64, see
/// [`MAX_NORMALISED`](crate::report::MAX_NORMALISED)) are well inside the range.
pub type Q20 = Fixed<20>;

/// The half-word format: 10 fractional bits in an `i16` (resolution 2^-10 ≈ 9.8e-4, range
/// ±32), for an adapter in half the RAM of [`Q20`]'s or `f32`'s. Samples beyond ±32 once
/// normalised are refused, and updates `α · g` below half the resolution round to nothing:
/// the price of the RAM, measured in `docs/results.md`.
pub type Q10H = Fixed<10, i16>;

/// The operations of [`Fixed`] stored in `$word`, whose magnitude bits are `$bits`, with step
/// sizes `$scale_extra` fractional bits finer than the values and `$product` the exact
/// product of two raw values as an `i64`.
macro_rules! fixed_in {
    ($word:ty, $bits:expr, $scale_extra:expr, $product:expr) => {
        impl<const F: u32> Fixed<F, $word> {
            const HI: i32 = (1 << $bits) - 1;
            const LO: i32 = -(1 << $bits);
            /// The largest value: a result that saturated upwards (not finite).
            pub const MAX: Self = Self(Self::HI as $word);
            /// The smallest value: a result that saturated downwards (not finite).
            pub const MIN: Self = Self(Self::LO as $word);
            const HALF_LSB: i64 = 1 << (F - 1);

            /// `v` limited to the range (a compare and a select each way; `ssat` on a
            /// Cortex-M3/M4).
            #[inline(always)]
            fn clamp(v: i64) -> Self {
                Self(v.clamp(Self::LO as i64, Self::HI as i64) as $word)
            }

            /// `v` limited to the range, for a sum or difference of two values, which an `i32`
            /// holds: a 32-bit compare (`ssat`), where an `i64` one took the Cortex-M4F's Q20
            /// step from 283,990 instructions to 335,308.
            #[inline(always)]
            fn clamp_word(v: i32) -> Self {
                Self(v.clamp(Self::LO, Self::HI) as $word)
            }

            /// `v` (an `i64` of the format's scale) limited to the range: most fit a word, and
            /// then the clamp is 32-bit.
            #[inline(always)]
            fn saturate(v: i64) -> Self {
                let low = v as i32;
                if low as i64 == v {
                    Self::clamp_word(low)
                } else if v < 0 {
                    Self::MIN
                } else {
                    Self::MAX
                }
            }

            /// The value whose raw integer is `raw` (saturated to the range).
            ///
            /// ```
            /// use shared::fixed::{Q10H, Q20};
            /// assert_eq!(Q20::from_raw(1 << 19).to_raw(), 1 << 19); // 0.5
            /// assert_eq!(Q20::from_raw(i32::MAX), Q20::MAX);
            /// assert_eq!(Q10H::from_raw(1 << 20), Q10H::MAX);
            /// ```
            pub const fn from_raw(raw: i32) -> Self {
                Self(if raw > Self::HI {
                    Self::HI
                } else if raw < Self::LO {
                    Self::LO
                } else {
                    raw
                } as $word)
            }

            /// The raw integer, `value · 2^F`.
            pub const fn to_raw(self) -> i32 {
                self.0 as i32
            }

            /// The largest magnitude a finite value has, as an `f32` (128 for [`Q20`], 32 for
            /// [`Q10H`]).
            pub const fn range() -> f32 {
                (1u32 << ($bits - F)) as f32
            }

            /// Whether `v` converts to a finite value (it is finite and inside the range).
            pub fn fits(v: f32) -> bool {
                v.is_finite() && Self::from_f32(v).is_finite()
            }
        }

        impl<const F: u32> fmt::Debug for Fixed<F, $word> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{:?}", self.to_f64())
            }
        }

        impl<const F: u32> Add for Fixed<F, $word> {
            type Output = Self;
            #[inline(always)]
            fn add(self, o: Self) -> Self {
                Self::clamp_word(self.0 as i32 + o.0 as i32)
            }
        }

        impl<const F: u32> Sub for Fixed<F, $word> {
            type Output = Self;
            #[inline(always)]
            fn sub(self, o: Self) -> Self {
                Self::clamp_word(self.0 as i32 - o.0 as i32)
            }
        }

        impl<const F: u32> Mul for Fixed<F, $word> {
            type Output = Self;
            #[inline(always)]
            fn mul(self, o: Self) -> Self {
                Self::narrow($product(self.0, o.0))
            }
        }

        impl<const F: u32> Div for Fixed<F, $word> {
            type Output = Self;
            /// Rounded to nearest (halves away from zero); a division by zero saturates by the
            /// sign of the dividend (and `0 / 0` is 0).
            #[inline]
            fn div(self, o: Self) -> Self {
                let n = (self.0 as i64) << F;
                if o.0 == 0 {
                    return match n.signum() {
                        1 => Self::MAX,
                        -1 => Self::MIN,
                        _ => Self::ZERO,
                    };
                }
                let d = o.0 as i64;
                let (q, r) = (n / d, n % d);
                let away = 2 * r.abs() >= d.abs();
                let q = if away {
                    q + (n.signum() * d.signum())
                } else {
                    q
                };
                Self::clamp(q)
            }
        }

        impl<const F: u32> Neg for Fixed<F, $word> {
            type Output = Self;
            #[inline(always)]
            fn neg(self) -> Self {
                Self::clamp_word(-(self.0 as i32))
            }
        }

        impl<const F: u32> AddAssign for Fixed<F, $word> {
            #[inline(always)]
            fn add_assign(&mut self, o: Self) {
                *self = *self + o;
            }
        }

        impl<const F: u32> SubAssign for Fixed<F, $word> {
            #[inline(always)]
            fn sub_assign(&mut self, o: Self) {
                *self = *self - o;
            }
        }

        impl<const F: u32> MulAssign for Fixed<F, $word> {
            #[inline(always)]
            fn mul_assign(&mut self, o: Self) {
                *self = *self * o;
            }
        }

        impl<const F: u32> num_traits::Zero for Fixed<F, $word> {
            fn zero() -> Self {
                Self(0)
            }
            fn is_zero(&self) -> bool {
                self.0 == 0
            }
        }

        impl<const F: u32> num_traits::One for Fixed<F, $word> {
            fn one() -> Self {
                Self(1 << F)
            }
        }

        impl<const F: u32> Real for Fixed<F, $word> {
            const ZERO: Self = Self(0);
            const ONE: Self = Self(1 << F);
            type Acc = i64;
            const ACC_ZERO: i64 = 0;
            const ACC_WORDS: usize = 2;
            // Products of 2·$bits bits and the start: no overflow of the i64 (at most 65,535,
            // which no layer comes near).
            const MAX_TERMS: usize = if 63 - 2 * $bits >= 16 {
                65_535
            } else {
                (1 << (63 - 2 * $bits)) - 1
            };
            #[inline(always)]
            fn widen(self) -> i64 {
                (self.0 as i64) << F
            }
            #[inline(always)]
            fn mac(acc: i64, a: Self, b: Self) -> i64 {
                // At most MAX_TERMS products: no overflow (wrapping only so that a debug
                // build has no overflow check in the innermost loop).
                acc.wrapping_add($product(a.0, b.0))
            }
            #[inline(always)]
            fn narrow(acc: i64) -> Self {
                Self::saturate(acc.wrapping_add(Self::HALF_LSB) >> F)
            }
            #[inline(always)]
            fn add_narrow(self, acc: i64) -> Self {
                Self::narrow(self.widen().wrapping_add(acc))
            }
            const SATURATES: bool = true;
            fn narrow_centred(accs: &[i64], out: &mut [Self], centre: Centre) {
                let (lo, hi) = accs
                    .iter()
                    .fold((i64::MAX, i64::MIN), |(lo, hi), &a| (lo.min(a), hi.max(a)));
                let shift = match centre {
                    Centre::Top => hi,
                    Centre::Middle => (lo >> 1) + (hi >> 1),
                };
                for (o, &a) in out.iter_mut().zip(accs) {
                    // Both within MAX_TERMS products of the range: no overflow.
                    *o = Self::narrow(a.wrapping_sub(shift));
                }
            }
            /// In 128 bits (a library call on a microcontroller, once per loss), then
            /// rounded and saturated as [`Real::narrow`] does.
            fn narrow_mul(acc: i64, scale: Self) -> Self {
                let wide = i128::from(acc) * i128::from(scale.0);
                let v = (wide + (1i128 << (2 * F - 1))) >> (2 * F);
                Self(v.clamp(Self::LO.into(), Self::HI.into()) as $word)
            }
            /// Rounded to nearest (halves away from zero) from the bits: NaN and values beyond
            /// the range saturate (NaN upwards), values below half the resolution are 0.
            #[inline]
            fn from_f32(v: f32) -> Self {
                Self(raw_from_f32(v, F, $bits) as $word)
            }
            /// `F + $scale_extra` fractional bits in an `i32` of 28 magnitude bits.
            type Scale = i32;
            #[inline]
            fn scale_from_f32(v: f32) -> i32 {
                raw_from_f32(v, F + $scale_extra, 27) as i32
            }
            #[inline(always)]
            fn to_scale(self) -> i32 {
                (self.0 as i32) << $scale_extra
            }
            #[inline(always)]
            fn sub_scaled(self, alpha: i32, g: Self) -> Self {
                let bits = F + $scale_extra;
                let p = (alpha as i64 * g.0 as i64 + (1 << (bits - 1))) >> bits;
                self - Self::saturate(p)
            }
            #[inline]
            fn to_f32(self) -> f32 {
                // The i32 → f32 conversion rounds to nearest (even); the power of two is exact.
                self.0 as i32 as f32 * (1.0 / (1u32 << F) as f32)
            }
            fn to_f64(self) -> f64 {
                self.0 as f64 / (1u64 << F) as f64
            }
            fn from_usize(v: usize) -> Self {
                Self::clamp((v.min(1 << $bits) as i64) << F)
            }
            /// Through `f32` ([`Real::exp`] of `f32`: the same bits everywhere).
            fn exp(self) -> Self {
                Self::from_f32(Real::exp(self.to_f32()))
            }
            /// Through `f32`; saturates downwards at 0 and below.
            fn ln(self) -> Self {
                if self.0 <= 0 {
                    return Self::MIN;
                }
                Self::from_f32(Real::ln(self.to_f32()))
            }
            /// Through `f32` (correctly rounded there); 0 below 0.
            fn sqrt(self) -> Self {
                Self::from_f32(Real::sqrt(self.to_f32().max(0.0)))
            }
            #[inline(always)]
            fn is_finite(self) -> bool {
                let v = self.0 as i32;
                v > Self::LO && v < Self::HI
            }
        }
    };
}

// 28 of the 32 bits: the sum of two values cannot overflow, and 511 products fit an i64.
/// `v · 2^frac` rounded to nearest (halves away from zero) from the bits of `v`, saturated to
/// `±2^bits` (NaN upwards, −∞ downwards): no floating-point instruction.
#[inline]
fn raw_from_f32(v: f32, frac: u32, bits: u32) -> i64 {
    let (lo, hi) = (-(1i64 << bits), (1i64 << bits) - 1);
    let raw = v.to_bits();
    let exp = ((raw >> 23) & 0xff) as i32;
    let negative = raw >> 31 != 0;
    if exp == 0xff {
        let nan = raw & 0x7f_ffff != 0;
        return if negative && !nan { lo } else { hi };
    }
    if exp == 0 {
        return 0; // zero or subnormal: far below the resolution
    }
    // v = ±m · 2^(exp − 150), so raw = ±m · 2^(exp − 150 + frac).
    let m = ((raw & 0x7f_ffff) | 0x80_0000) as i64;
    let shift = exp - 150 + frac as i32;
    let magnitude = if shift >= 0 {
        if shift > 8 {
            1 << 32 // beyond the range whatever the mantissa
        } else {
            m << shift
        }
    } else if shift < -25 {
        0
    } else {
        let s = (-shift) as u32;
        (m + (1 << (s - 1))) >> s
    };
    (if negative { -magnitude } else { magnitude }).clamp(lo, hi)
}

fixed_in!(i32, 27, 0, |a: i32, b: i32| a as i64 * b as i64);
// All 16 bits; 16 × 16 bits fit a word: one 32-bit multiply, then widened.
// Step sizes in 20 fractional bits, as Q20's: an `α · g` of one parameter is then an `i64`
// product (a library call on a Cortex-M0, once per parameter and step).
fixed_in!(i16, 15, 10, |a: i16, b: i16| (a as i32 * b as i32) as i64);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversions_round_to_nearest() {
        let lsb = 1.0 / (1u32 << 20) as f32;
        for v in [
            0.0f32,
            1.0,
            -1.0,
            0.1,
            -0.1,
            5.67,
            -127.9,
            lsb,
            0.4 * lsb,
            0.6 * lsb,
        ] {
            let q = Q20::from_f32(v);
            let exact = (v as f64 * (1u64 << 20) as f64).round();
            assert_eq!(q.to_raw() as f64, exact, "{v}");
            assert!((q.to_f64() - v as f64).abs() <= 0.5 * lsb as f64);
        }
        assert_eq!(Q20::from_f32(1.5 * lsb).to_raw(), 2); // half away from zero
        assert_eq!(Q20::from_f32(-1.5 * lsb).to_raw(), -2);
        assert_eq!(Q20::from_f32(f32::NAN), Q20::MAX);
        assert_eq!(Q20::from_f32(f32::NEG_INFINITY), Q20::MIN);
        assert_eq!(Q20::from_f32(-200.0), Q20::MIN);
        assert_eq!(Q20::from_f32(1e-30), Q20::ZERO);
        assert!(Q20::fits(127.0) && !Q20::fits(128.5) && !Q20::fits(f32::NAN));
        assert_eq!(Q20::range(), 128.0);
    }

    #[test]
    fn arithmetic_rounds_and_saturates() {
        let q = Q20::from_f32;
        assert_eq!(q(3.0) * q(-0.5), q(-1.5));
        assert_eq!(q(100.0) * q(100.0), Q20::MAX);
        assert_eq!(q(-100.0) - q(100.0), Q20::MIN);
        assert_eq!(-Q20::MIN, Q20::MAX);
        assert_eq!(q(1.0) / q(3.0), Q20::from_raw(349525)); // 2^20 / 3 = 349525.33
        assert_eq!(q(2.0) / q(3.0), Q20::from_raw(699051)); // 699050.67
        assert_eq!(q(-2.0) / q(3.0), Q20::from_raw(-699051));
        assert_eq!(q(1.0) / Q20::ZERO, Q20::MAX);
        assert_eq!(q(-1.0) / Q20::ZERO, Q20::MIN);
        assert_eq!(Q20::ZERO / Q20::ZERO, Q20::ZERO);
        // A product rounds to nearest: 1.5 · lsb · 0.5 = 0.75 lsb → 1 lsb.
        assert_eq!(Q20::from_raw(3) * q(0.25), Q20::from_raw(1));
        assert_eq!(Q20::from_raw(1) * q(0.25), Q20::ZERO);
    }

    #[test]
    fn a_sum_of_products_rounds_once() {
        // Ten products of a quarter of the resolution each: rounded one by one they vanish,
        // summed wide they are 2.5 → 3 steps.
        let (a, b) = (Q20::from_raw(1), Q20::from_f32(0.25));
        let mut acc = Q20::ACC_ZERO;
        for _ in 0..10 {
            acc = Q20::mac(acc, a, b);
        }
        assert_eq!(Q20::narrow(acc), Q20::from_raw(3));
        assert_eq!(Q20::from_raw(5).add_narrow(acc), Q20::from_raw(8));
        // The most terms allowed, each the largest product: no overflow.
        let mut acc = Q20::MAX.widen();
        for _ in 0..Q20::MAX_TERMS {
            acc = Q20::mac(acc, Q20::MAX, Q20::MAX);
        }
        assert_eq!(Q20::narrow(acc), Q20::MAX);
    }

    #[test]
    fn functions_go_through_f32() {
        let q = Q20::from_f32;
        assert!((Real::exp(q(1.0)).to_f64() - core::f64::consts::E).abs() < 3e-3);
        assert!((Real::ln(q(0.5)).to_f64() - 0.5f64.ln()).abs() < 3e-3);
        assert_eq!(Real::ln(Q20::ZERO), Q20::MIN);
        assert_eq!(Real::sqrt(q(2.25)), q(1.5));
        assert_eq!(Q20::from_usize(3), q(3.0));
    }

    #[test]
    fn the_half_word_format_rounds_saturates_and_sums_wide() {
        let q = Q10H::from_f32;
        assert_eq!(Q10H::range(), 32.0);
        assert_eq!(q(0.1).to_raw(), 102); // 102.4
        assert_eq!(q(-0.1).to_raw(), -102);
        assert_eq!(q(31.99).to_raw(), 32_758);
        assert!(q(31.99).is_finite() && !q(32.5).is_finite() && !q(f32::NAN).is_finite());
        assert_eq!(q(-40.0), Q10H::MIN);
        assert_eq!(q(6.0) * q(6.0), Q10H::MAX); // 36: beyond the range
        assert_eq!(q(3.0) * q(-0.5), q(-1.5));
        assert_eq!(q(1.0) / q(3.0), Q10H::from_raw(341)); // 341.33
        assert_eq!(-Q10H::MIN, Q10H::MAX);
        // The largest products, as many as a layer may have: still no overflow.
        let mut acc = Q10H::MAX.widen();
        for _ in 0..Q10H::MAX_TERMS {
            acc = Q10H::mac(acc, Q10H::MAX, Q10H::MIN);
        }
        assert_eq!(Q10H::narrow(acc), Q10H::MIN);
        // Its products are the exact ones.
        let (a, b) = (Q10H::from_raw(-32_767), Q10H::from_raw(32_767));
        assert_eq!(Q10H::mac(0, a, b), -32_767i64 * 32_767);
    }
}
