//! The host↔device link: requests and responses as postcard messages in COBS frames (a zero
//! byte ends each frame), over a UART on hardware and under QEMU alike.
//!
//! Floats travel as little-endian `f32` bytes, so values cross the link bit for bit and the
//! device decodes frames in place, without copies.
//!
//! ```
//! use shared::link::{floats, put_floats, Request, MAX_FRAME};
//! let mut xb = [0u8; 4];
//! let req = Request::Predict { x: put_floats(&[1.5], &mut xb) };
//! let mut buf = [0u8; MAX_FRAME];
//! let frame = postcard::to_slice_cobs(&req, &mut buf).unwrap();
//! assert_eq!(frame.last(), Some(&0)); // the delimiter
//! let back: Request = postcard::from_bytes_cobs(frame).unwrap();
//! let Request::Predict { x } = back else { panic!() };
//! assert_eq!(floats(x).collect::<Vec<_>>(), [1.5]);
//! ```

use serde::{Deserialize, Serialize};

use crate::report::{AdaptError, AdaptReport, PushErrorKind, StepLimit};
use crate::wstar::BlobError;

/// Largest frame either side sends: COBS overhead and the delimiter included.
pub const MAX_FRAME: usize = 512;

/// Parameters per [`Response::Params`] frame.
pub const PARAMS_PER_FRAME: u16 = 96;

/// Values one [`Request::Stage`] frame carries at most (any offset fits [`MAX_FRAME`]): a
/// 28×28 image is staged in 7 frames.
///
/// ```
/// use shared::link::{put_floats, Request, MAX_FRAME, STAGE_PER_FRAME};
/// let values = [f32::MAX; STAGE_PER_FRAME as usize];
/// let mut bytes = [0u8; 4 * STAGE_PER_FRAME as usize];
/// let req = Request::Stage { offset: u16::MAX, values: put_floats(&values, &mut bytes) };
/// let mut frame = [0u8; MAX_FRAME];
/// assert!(postcard::to_slice_cobs(&req, &mut frame).is_ok());
/// assert_eq!(784 % STAGE_PER_FRAME, 0);
/// ```
pub const STAGE_PER_FRAME: u16 = 112;

/// What the host asks.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Request<'a> {
    /// Which model and blob the device serves, and what it holds.
    Status,
    /// Add a target-train sample (`x` then `y`, as `f32` LE bytes).
    Push {
        /// Inputs.
        x: &'a [u8],
        /// Targets.
        y: &'a [u8],
    },
    /// Drop the samples.
    ClearSamples,
    /// Back to `θ0`.
    Reset,
    /// Adapt: `None` runs the trained steps left, `Some(n)` runs `n` steps under `limit`.
    Adapt {
        /// Steps to run.
        steps: Option<u16>,
        /// How far past the trained steps it may go.
        limit: StepLimit,
    },
    /// Predict the outputs for `x`.
    Predict {
        /// Inputs.
        x: &'a [u8],
    },
    /// Read `count` (at most [`PARAMS_PER_FRAME`]) live parameters from `offset`.
    ReadParams {
        /// First parameter.
        offset: u32,
        /// How many.
        count: u16,
    },
    /// Stack use so far.
    Memory,
    /// Predict the outputs for several inputs (`x` vectors back to back; at most
    /// [`PARAMS_PER_FRAME`] output values in all): one round trip instead of many.
    PredictMany {
        /// Inputs.
        xs: &'a [u8],
    },
    /// Check both `w*` slots again and serve the newest valid one (after an update was
    /// written to the inactive slot); the samples and the stage are dropped.
    Rescan,
    /// Write `values` (`f32` LE bytes) into the input stage from value `offset`: how an input
    /// larger than a frame (an image: [`Status::inputs`] values) reaches the device, in parts.
    ///
    /// The stage fills in order: a part must start where the stage is filled to
    /// ([`Response::Staged`] says where), or at 0, which starts it over. A part that starts
    /// elsewhere, runs past [`Status::inputs`] or ends in a partial value is refused with
    /// [`LinkError::Stage`] and changes nothing. The input is complete when the stage is filled
    /// to [`Status::inputs`].
    Stage {
        /// Index of the first value (0 starts the stage over).
        offset: u16,
        /// Values, as `f32` LE bytes.
        values: &'a [u8],
    },
    /// Add the staged input as a sample of class `label` (target: the one-hot vector).
    /// Refused with [`LinkError::Stage`] unless the stage is complete. Every `PushStaged` and
    /// [`Request::ClassifyStaged`] empties the stage, whether it succeeds or not, so an input is
    /// used once and a partly restaged input never mixes with the last one.
    PushStaged {
        /// The sample's class, below [`Status::outputs`].
        label: u16,
    },
    /// Classify the staged input (see [`Request::PushStaged`] for the stage's rules).
    ClassifyStaged,
}

/// What the device answers: one response per request.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Response<'a> {
    /// Answer to [`Request::Status`].
    Status(Status),
    /// The sample was taken; this many are held.
    Pushed {
        /// Samples held.
        samples: u16,
    },
    /// Samples dropped.
    Cleared,
    /// Parameters back at `θ0`.
    Reset,
    /// Adaptation ran.
    Adapted {
        /// What it did.
        report: AdaptReport,
        /// Core clock ticks it took (instructions under QEMU's `-icount`).
        ticks: u64,
    },
    /// The prediction.
    Prediction {
        /// Outputs as `f32` LE bytes.
        y: &'a [u8],
        /// Core clock ticks it took.
        ticks: u64,
    },
    /// Live parameters.
    Params {
        /// First parameter.
        offset: u32,
        /// Values as `f32` LE bytes.
        values: &'a [u8],
    },
    /// Stack use.
    Memory(Memory),
    /// The request was refused; the device goes on serving.
    Error(LinkError),
    /// Answer to [`Request::PredictMany`].
    Predictions {
        /// Outputs, one vector per input, as `f32` LE bytes.
        ys: &'a [u8],
        /// Core clock ticks they took.
        ticks: u64,
    },
    /// Answer to [`Request::Stage`]: the stage now holds values `0..filled`.
    Staged {
        /// Values staged; the input is complete at [`Status::inputs`].
        filled: u16,
    },
    /// Answer to [`Request::PushStaged`].
    PushedStaged {
        /// Samples held.
        samples: u16,
        /// Core clock ticks the push took (for an image classifier: the body's forward pass
        /// and the push of its features).
        ticks: u64,
    },
    /// Answer to [`Request::ClassifyStaged`].
    Classified {
        /// The class with the largest score (the first on a tie).
        label: u16,
        /// Every class's score (softmax probability), as `f32` LE bytes.
        scores: &'a [u8],
        /// Core clock ticks it took.
        ticks: u64,
    },
}

/// The device's state.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Status {
    /// The blob's model signature, or why the blob was refused.
    pub blob: Result<u32, BlobError>,
    /// The slot serving (0: A, 1: B), if any.
    pub slot: Option<u8>,
    /// Its generation.
    pub generation: u32,
    /// Why each refused slot was refused.
    pub refused: [Option<BlobError>; 2],
    /// Model inputs.
    pub inputs: u16,
    /// Model outputs.
    pub outputs: u16,
    /// Sample capacity K.
    pub capacity: u16,
    /// Samples held.
    pub samples: u16,
    /// Model parameters.
    pub params: u32,
    /// Inner steps since the last reset.
    pub steps_since_reset: u32,
    /// Bytes of RAM the adapter (or image classifier) occupies.
    pub adapter_bytes: u32,
    /// Inputs of the adapted model: [`Status::inputs`] for an adapter, the body's features
    /// for an image classifier (whose body turns an input image into them).
    pub features: u16,
    /// Weights of the body kept in flash (0: no body; the blob's, when one is loaded).
    pub body_params: u32,
    /// Values staged so far (see [`Request::Stage`]).
    pub staged: u16,
}

/// Stack use measured on the device (the stack is painted at reset).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Memory {
    /// Most stack bytes ever used since reset.
    pub stack_peak: u32,
    /// Stack bytes available.
    pub stack_size: u32,
}

/// Why a request was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum LinkError {
    /// The frame did not decode (bad COBS or not a request).
    Frame,
    /// The frame was longer than [`MAX_FRAME`] bytes; it was dropped.
    TooLong,
    /// No usable `w*`: why the blob was refused.
    NoBlob(BlobError),
    /// A vector had the wrong number of values.
    Length {
        /// Values expected.
        expected: u16,
        /// Values sent.
        found: u16,
    },
    /// The sample was refused.
    Push(PushErrorKind),
    /// Adaptation or prediction was refused.
    Adapt(AdaptError),
    /// Parameters asked for past the end (or more than one frame holds).
    Range {
        /// Parameters the model has.
        params: u32,
    },
    /// A [`Request::PredictMany`] whose inputs are not whole vectors or whose outputs would
    /// not fit one frame.
    Batch {
        /// Most inputs one request may carry.
        max: u16,
    },
    /// A [`Request::Stage`] that does not continue the stage at `filled` (nor restarts it at
    /// 0), runs past `expected` or ends in a partial value; or a [`Request::PushStaged`] or
    /// [`Request::ClassifyStaged`] whose stage is not complete.
    Stage {
        /// Values staged.
        filled: u16,
        /// Values a complete input has.
        expected: u16,
    },
}

impl core::fmt::Display for LinkError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            LinkError::Frame => write!(f, "the device could not decode the frame"),
            LinkError::TooLong => write!(f, "frame longer than {MAX_FRAME} bytes"),
            LinkError::NoBlob(e) => write!(f, "no usable w*: {e}"),
            LinkError::Length { expected, found } => {
                write!(f, "{found} values sent, the model takes {expected}")
            }
            LinkError::Push(e) => write!(f, "sample refused: {e}"),
            LinkError::Adapt(e) => write!(f, "{e}"),
            LinkError::Batch { max } => {
                write!(
                    f,
                    "a batch of predictions takes whole input vectors, at most {max}"
                )
            }
            LinkError::Stage { filled, expected } => write!(
                f,
                "staged input refused: {filled} of {expected} values staged (a part must continue at {filled} or restart at 0; a staged input is used when complete)"
            ),
            LinkError::Range { params } => {
                write!(
                    f,
                    "parameter range outside 0..{params} or over {PARAMS_PER_FRAME} per frame"
                )
            }
        }
    }
}

/// The `f32`s in little-endian bytes (a trailing partial value is ignored).
pub fn floats(bytes: &[u8]) -> impl Iterator<Item = f32> + '_ {
    bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
}

/// Writes `values` as little-endian bytes into the front of `buf` and returns that part (as
/// many values as fit).
pub fn put_floats<'b>(values: &[f32], buf: &'b mut [u8]) -> &'b [u8] {
    let mut n = 0;
    for (c, v) in buf.chunks_exact_mut(4).zip(values) {
        c.copy_from_slice(&v.to_le_bytes());
        n += 4;
    }
    &buf[..n]
}
