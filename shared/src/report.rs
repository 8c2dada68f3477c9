//! What adaptation reports and why it refuses: the device's results and errors, in `shared` so
//! the host↔device link carries them as they are.
//!
//! ```
//! use shared::report::{AdaptError, Guard};
//! let e = AdaptError::TooManySteps { requested: 3, allowed: 1 };
//! assert_eq!(e.to_string(), "3 inner steps requested, w* was trained for 1");
//! assert_ne!(Guard::Rose, Guard::NonFinite);
//! ```

use core::fmt;

use serde::{Deserialize, Serialize};

/// How many inner steps an adaptation may run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum StepLimit {
    /// At most the steps `w*` was trained for, counted since the last reset.
    Trained,
    /// Any number; the divergence guard still undoes a bad step.
    Unchecked,
}

/// What an adaptation did.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct AdaptReport {
    /// Loss on the samples before the first step.
    pub loss_before: f32,
    /// Loss on the samples after the last kept step.
    pub loss_after: f32,
    /// Steps taken and kept.
    pub steps: u16,
    /// The step (0-based, within this call) that the divergence guard undid; adaptation
    /// stopped there.
    pub undone: Option<u16>,
    /// Why that step was undone.
    pub cause: Option<Guard>,
}

/// Why the divergence guard undid a step.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Guard {
    /// The loss became NaN or infinite.
    NonFinite,
    /// The loss rose above the bound stored in `w*`.
    AboveBound,
    /// A step beyond those `w*` was trained for raised the loss.
    Rose,
}

/// Why a sample was not taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum PushErrorKind {
    /// The buffer already holds K samples.
    Full,
    /// A value is NaN or infinite (before or after normalisation).
    NonFinite,
    /// No `w*` is loaded.
    NoBlob,
    /// A value is far outside the training data: more than
    /// [`MAX_NORMALISED`] after normalisation with the statistics in `w*`.
    OutOfRange,
    /// The sample has the wrong number of values, or a label outside the classes.
    Shape,
}

/// Largest magnitude a sample value may have after normalisation with `w*`'s statistics (in
/// training standard deviations when `w*` carries them): beyond it a reading is a fault, not
/// a sample, and adapting on it would wreck the model.
pub const MAX_NORMALISED: f32 = 64.0;

impl fmt::Display for PushErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PushErrorKind::Full => write!(f, "sample buffer full"),
            PushErrorKind::NonFinite => write!(f, "sample has a NaN or infinite value"),
            PushErrorKind::NoBlob => write!(f, "no w* loaded"),
            PushErrorKind::OutOfRange => write!(
                f,
                "sample value more than {MAX_NORMALISED} from the training data's mean, in its standard deviations"
            ),
            PushErrorKind::Shape => write!(
                f,
                "sample has the wrong number of values or a label outside the classes"
            ),
        }
    }
}

/// Why adaptation or prediction did not run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum AdaptError {
    /// No `w*` is loaded.
    NoBlob,
    /// No samples have been pushed.
    NoSamples,
    /// More steps than `w*` was trained for, without [`StepLimit::Unchecked`].
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
    /// `classify` on a `w*` not trained with softmax cross-entropy.
    NotAClassifier,
    /// An input with another number of values than the model takes.
    InputSize {
        /// Values the model takes.
        expected: u32,
        /// Values given.
        found: u32,
    },
}

impl fmt::Display for AdaptError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            AdaptError::NoBlob => write!(f, "no w* loaded"),
            AdaptError::NoSamples => write!(f, "no samples to adapt on"),
            AdaptError::TooManySteps { requested, allowed } => {
                write!(
                    f,
                    "{requested} inner steps requested, w* was trained for {allowed}"
                )
            }
            AdaptError::NonFiniteLoss => write!(f, "the loss on the samples is not finite"),
            AdaptError::NonFiniteInput => write!(f, "input has a NaN or infinite value"),
            AdaptError::InputSize { expected, found } => {
                write!(f, "input has {found} values, the model takes {expected}")
            }
            AdaptError::NotAClassifier => {
                write!(
                    f,
                    "this w* is a regressor (trained with MSE), not a classifier"
                )
            }
        }
    }
}
