//! The device's typed errors: every bad input ends here, never in a panic.

use core::fmt;

pub use shared::report::{AdaptError, PushErrorKind};

use crate::adapter::Sample;

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
        self.kind.fmt(f)
    }
}
