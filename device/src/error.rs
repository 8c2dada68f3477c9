//! The device's typed errors: every bad input ends here, never in a panic.

use core::fmt;

use crate::adapter::Sample;

/// Why a sample was not taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum PushErrorKind {
    /// The buffer already holds K samples.
    Full,
    /// A value is NaN or infinite (before or after normalisation).
    NonFinite,
}

/// A refused sample, handed back to the caller.
///
/// ```
/// use device::{PushError, PushErrorKind, Sample};
/// let e = PushError { kind: PushErrorKind::Full, sample: Sample { x: [1.0], y: [2.0] } };
/// assert_eq!(e.sample.y, [2.0]);
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PushError<const I: usize, const O: usize> {
    /// Why.
    pub kind: PushErrorKind,
    /// The sample, returned.
    pub sample: Sample<I, O>,
}

impl<const I: usize, const O: usize> fmt::Display for PushError<I, O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            PushErrorKind::Full => write!(f, "sample buffer full"),
            PushErrorKind::NonFinite => write!(f, "sample has a NaN or infinite value"),
        }
    }
}

/// Why adaptation or prediction did not run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum AdaptError {
    /// No samples have been pushed.
    NoSamples,
    /// More steps than `w*` was trained for, without [`StepLimit::Unchecked`](crate::StepLimit).
    TooManySteps {
        /// Steps asked for, counted since the last reset.
        requested: u32,
        /// Steps `w*` allows.
        allowed: u16,
    },
    /// The loss before any step is NaN or infinite.
    NonFiniteLoss,
    /// An input to `predict` is NaN or infinite.
    NonFiniteInput,
}

impl fmt::Display for AdaptError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            AdaptError::NoSamples => write!(f, "no samples to adapt on"),
            AdaptError::TooManySteps { requested, allowed } => {
                write!(
                    f,
                    "{requested} inner steps requested, w* was trained for {allowed}"
                )
            }
            AdaptError::NonFiniteLoss => write!(f, "the loss on the samples is not finite"),
            AdaptError::NonFiniteInput => write!(f, "input has a NaN or infinite value"),
        }
    }
}
