//! The `w*` blob: what meta-training found, in the bytes that get flashed.
//!
//! ```text
//! offset size field
//!      0    4 magic            b"TAW*"
//!      4    2 format version   u16 LE: 1, or 2 for a blob with per-layer per-step α
//!                              (AlphaKind::PerLayerPerStep, Algorithm::Lslr); see
//!                              Meta::format_version
//!      6    2 flags            u16 LE: bit 0 set when a convolutional body follows (FLAG_BODY);
//!                              bit 1 set when the head starts from the support set's class
//!                              prototypes (FLAG_PROTOTYPES); bit 2 set when an image's
//!                              features are the mean over shifted views of it
//!                              (FLAG_SHIFTED_VIEWS, with FLAG_BODY only); other bits
//!                              reserved, 0
//!      8    4 signature        u32 LE: CRC-32 of the schema text and the model's layer widths
//!     12    4 payload length   u32 LE
//!     16    4 CRC-32           u32 LE over bytes 4..16 and the payload
//!     20    … payload          postcard 1.x: Meta, then the f32 arrays θ0, α, x_mean, x_std,
//!                              y_mean, y_std, each value 4 bytes LE (postcard's encoding of a
//!                              fixed-size array)
//!      …    … body (FLAG_BODY)  postcard BodyShape, then the body's f32 weights, 4 bytes LE each
//! ```
//! The body (an ANIL classifier's frozen feature extractor, `crate::body`) is part of the
//! signature and the CRC like everything else; a blob without it is byte-for-byte a blob of
//! the first layout.
//! The f32 arrays are read in place, so on the device `θ0` and `α` stay in flash.
//!
//! ```
//! use shared::model::{Mlp1, Params};
//! use shared::wstar::{Blob, BlobError, Meta};
//! type Net = Mlp1<f32, 1, 4, 1>;
//! let meta = Meta::new::<Net, 1, 1>(shared::loss::Loss::Mse, 1);
//! let theta = vec![0.25f32; Net::PARAMS];
//! let bytes = shared::wstar::encode(&meta, &theta, &[0.01], &[0.0], &[1.0], &[0.0], &[1.0]).unwrap();
//! let blob = Blob::parse_for::<Net, 1, 1>(&bytes).unwrap();
//! assert_eq!(blob.theta0(3), 0.25);
//! let mut bad = bytes.clone();
//! bad[30] ^= 1;
//! assert!(matches!(Blob::parse_for::<Net, 1, 1>(&bad), Err(BlobError::CrcMismatch { .. })));
//! ```

use core::fmt;

use crc::{Crc, CRC_32_ISO_HDLC};
use serde::{Deserialize, Serialize};

use crate::body::{BodySpec, Conv, LeBytes, Views, MAX_CONVS};
use crate::inner::AdaptMask;
use crate::loss::Loss;
use crate::math::Real;
use crate::model::{Params, Shape, MAX_LAYERS};

/// The first four bytes of every blob.
pub const MAGIC: [u8; 4] = *b"TAW*";
/// The newest format version this code reads and writes. A blob is written in the oldest
/// version that holds it ([`Meta::format_version`]), so a device built before version 2
/// still reads every blob it can serve and refuses the others by their version.
pub const FORMAT_VERSION: u16 = 2;
/// Header bytes before the payload.
pub const HEADER_LEN: usize = 20;
/// Describes the serialised types; part of the signature, so a change to them on one side is
/// detected on the other. Change it whenever `Meta` or the array layout changes.
pub const SCHEMA: &str =
    "tinyadapt.wstar.v1 Meta{shape:[u32],params:u32,loss,algorithm,alpha,steps:u16,\
adapt:u32,trained_k:u16,loss_bound:f32,seed:u64} f32[theta0,alpha,x_mean,x_std,y_mean,y_std]";

pub(crate) const CRC32: Crc<u32> = Crc::<u32>::new(&CRC_32_ISO_HDLC);

/// Header flag: a convolutional body follows the arrays.
pub const FLAG_BODY: u16 = 1;
/// Header flag: each adaptation from `θ0` first adds the support set's class prototypes to
/// the output layer ([`HeadStart::Prototypes`]).
pub const FLAG_PROTOTYPES: u16 = 2;
/// Header flag: the head sees the mean of the body's features over the shifted views of each
/// image ([`Views::Shifted`]); only with [`FLAG_BODY`].
pub const FLAG_SHIFTED_VIEWS: u16 = 4;

/// Where an adaptation starts.
///
/// ```
/// use shared::wstar::HeadStart;
/// assert_eq!(HeadStart::default(), HeadStart::Theta0);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum HeadStart {
    /// From `θ0` as stored.
    #[default]
    Theta0,
    /// From `θ0` plus the class prototypes of the samples in the output layer (Proto-MAML;
    /// see [`crate::model::Layers::start_from_prototypes`]). Softmax classifiers only.
    Prototypes,
}

/// The shape of a convolutional body as stored in a blob: the input side and the channels of
/// each stage, input first (see [`BodySpec`]).
///
/// ```
/// use shared::body::BodySpec;
/// use shared::wstar::BodyShape;
/// const NET: BodySpec<3> = BodySpec { side: 28, channels: [1, 8, 16] };
/// let shape = BodyShape::of(&NET);
/// assert_eq!((shape.params(), shape.features()), (NET.params(), NET.features()));
/// assert!(shape.is(&NET));
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BodyShape {
    /// Input height and width.
    pub side: u16,
    /// Channels: input, then each convolution's output.
    pub channels: heapless::Vec<u16, { MAX_CONVS + 1 }>,
}

impl BodyShape {
    /// The shape of `spec`.
    pub fn of<const C: usize>(spec: &BodySpec<C>) -> Self {
        let mut channels = heapless::Vec::new();
        for &c in spec.channels.iter().take(MAX_CONVS + 1) {
            let _ = channels.push(c as u16);
        }
        Self {
            side: spec.side as u16,
            channels,
        }
    }

    /// Whether this is `spec`.
    pub fn is<const C: usize>(&self, spec: &BodySpec<C>) -> bool {
        usize::from(self.side) == spec.side
            && self.channels.len() == C
            && self
                .channels
                .iter()
                .zip(&spec.channels)
                .all(|(&a, &b)| usize::from(a) == b)
    }

    fn convs(&self) -> impl Iterator<Item = Conv> + '_ {
        let mut side = usize::from(self.side);
        self.channels.windows(2).map(move |c| {
            let conv = Conv {
                side,
                c_in: usize::from(c[0]),
                c_out: usize::from(c[1]),
            };
            side = conv.out_side();
            conv
        })
    }

    /// Weights and biases (saturating, so a corrupt shape never overflows).
    pub fn params(&self) -> usize {
        self.convs().fold(0usize, |n, c| {
            n.saturating_add(c.patch().saturating_mul(c.c_out).saturating_add(c.c_out))
        })
    }

    /// Feature values (0 for a shape with no convolution; saturating, so a corrupt shape
    /// never overflows).
    pub fn features(&self) -> usize {
        self.convs().last().map_or(0, |c| {
            let side = c.out_side();
            side.saturating_mul(side).saturating_mul(c.c_out)
        })
    }

    fn signature_bytes(&self, d: &mut crc::Digest<'_, u32>) {
        d.update(b"body");
        d.update(&u32::from(self.side).to_le_bytes());
        for &c in &self.channels {
            d.update(&u32::from(c).to_le_bytes());
        }
    }
}

/// The meta-learning algorithm: what the trainer runs and what the blob records (the device
/// only reports it). One enum for both, so a run's config and its blob cannot disagree.
///
/// ```
/// use shared::wstar::Algorithm;
/// assert_eq!("metasgd".parse(), Ok(Algorithm::MetaSgd));
/// assert_eq!(Algorithm::Reptile.name(), "reptile");
/// assert!(Algorithm::Maml.second_order() && !Algorithm::Fomaml.second_order());
/// assert!("sgd".parse::<Algorithm>().is_err());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[serde(rename_all = "lowercase")]
pub enum Algorithm {
    /// MAML, second order through all inner steps.
    Maml,
    /// First-order MAML: the query gradient at the adapted parameters.
    Fomaml,
    /// Meta-SGD: MAML with learned per-parameter inner step sizes (second order).
    MetaSgd,
    /// ANIL: MAML whose inner loop adapts only the last layer (second order); the device
    /// adapts only the head.
    Anil,
    /// Reptile: several inner SGD steps, then `θ0 ← θ0 + ε (θ_S − θ0)` with meta step size `ε`,
    /// averaged over the meta-batch.
    Reptile,
    /// MAML with learned per-layer, per-step inner step sizes (MAML++'s LSLR, second order):
    /// [`AlphaKind::PerLayerPerStep`]. Format version 2.
    Lslr,
}

impl Algorithm {
    /// Every algorithm.
    pub const ALL: [Algorithm; 6] = [
        Algorithm::Maml,
        Algorithm::Fomaml,
        Algorithm::MetaSgd,
        Algorithm::Anil,
        Algorithm::Reptile,
        Algorithm::Lslr,
    ];

    /// Its name on the command line and in configs.
    pub const fn name(self) -> &'static str {
        match self {
            Algorithm::Maml => "maml",
            Algorithm::Fomaml => "fomaml",
            Algorithm::MetaSgd => "metasgd",
            Algorithm::Anil => "anil",
            Algorithm::Reptile => "reptile",
            Algorithm::Lslr => "lslr",
        }
    }

    /// Whether the second-order term is computed.
    pub const fn second_order(self) -> bool {
        !matches!(self, Algorithm::Fomaml | Algorithm::Reptile)
    }

    /// Which layers the inner loop adapts, for a model of `layers` layers.
    pub fn mask(self, layers: usize) -> crate::inner::AdaptMask {
        match self {
            Algorithm::Anil => crate::inner::AdaptMask::head_only(layers),
            _ => crate::inner::AdaptMask::ALL,
        }
    }

    /// Whether the inner step sizes are learned.
    pub const fn learns_alpha(self) -> bool {
        !matches!(self.alpha_kind(), AlphaKind::Scalar)
    }

    /// How the blobs it trains store `α`.
    ///
    /// ```
    /// use shared::wstar::{Algorithm, AlphaKind};
    /// assert_eq!(Algorithm::Maml.alpha_kind(), AlphaKind::Scalar);
    /// assert_eq!(Algorithm::MetaSgd.alpha_kind(), AlphaKind::PerParameter);
    /// assert_eq!(Algorithm::Lslr.alpha_kind(), AlphaKind::PerLayerPerStep);
    /// ```
    pub const fn alpha_kind(self) -> AlphaKind {
        match self {
            Algorithm::MetaSgd => AlphaKind::PerParameter,
            Algorithm::Lslr => AlphaKind::PerLayerPerStep,
            _ => AlphaKind::Scalar,
        }
    }
}

/// A name that is no algorithm's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnknownAlgorithm;

impl core::fmt::Display for UnknownAlgorithm {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "the algorithm is one of maml, fomaml, metasgd, anil, reptile, lslr"
        )
    }
}

impl core::str::FromStr for Algorithm {
    type Err = UnknownAlgorithm;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Algorithm::ALL
            .into_iter()
            .find(|a| a.name() == s)
            .ok_or(UnknownAlgorithm)
    }
}

/// How the inner step sizes `α` are stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum AlphaKind {
    /// One scalar for every parameter (MAML).
    Scalar,
    /// One per parameter, in parameter order (Meta-SGD).
    PerParameter,
    /// One per layer and trained inner step (MAML++'s LSLR), step by step: `α[s · L + l]` for
    /// step `s` and layer `l` of `L`. A step beyond the trained ones takes the last one's.
    /// Format version 2.
    PerLayerPerStep,
}

impl AlphaKind {
    /// Where the step size of parameter `index` (in layer `layer`) at inner step `step` is
    /// stored, for a model of `layers` layers trained for `steps` steps (at least 1 with
    /// [`AlphaKind::PerLayerPerStep`]).
    ///
    /// ```
    /// use shared::wstar::AlphaKind;
    /// assert_eq!(AlphaKind::Scalar.index(2, 40, 3, 3, 5), 0);
    /// assert_eq!(AlphaKind::PerParameter.index(2, 40, 3, 3, 5), 40);
    /// assert_eq!(AlphaKind::PerLayerPerStep.index(2, 40, 3, 3, 5), 3 * 3 + 2);
    /// // Past the trained steps: the last step's.
    /// assert_eq!(AlphaKind::PerLayerPerStep.index(2, 40, 9, 3, 5), 4 * 3 + 2);
    /// ```
    #[inline]
    pub const fn index(
        self,
        layer: usize,
        index: usize,
        step: usize,
        layers: usize,
        steps: usize,
    ) -> usize {
        match self {
            AlphaKind::Scalar => 0,
            AlphaKind::PerParameter => index,
            AlphaKind::PerLayerPerStep => {
                let s = if step < steps {
                    step
                } else {
                    steps.saturating_sub(1)
                };
                s * layers + layer
            }
        }
    }

    /// Values stored for a model of `params` parameters in `layers` layers trained for
    /// `steps` steps (saturating).
    pub const fn len(self, params: usize, layers: usize, steps: usize) -> usize {
        match self {
            AlphaKind::Scalar => 1,
            AlphaKind::PerParameter => params,
            AlphaKind::PerLayerPerStep => layers.saturating_mul(steps),
        }
    }
}

/// Everything in `w*` except the arrays.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Meta {
    /// Layer widths: input, hidden…, output.
    pub shape: heapless::Vec<u32, { MAX_LAYERS + 1 }>,
    /// Number of parameters.
    pub params: u32,
    /// The task loss.
    pub loss: Loss,
    /// The algorithm that trained it.
    pub algorithm: Algorithm,
    /// How `α` is stored.
    pub alpha: AlphaKind,
    /// Inner steps it was trained for; the device runs no more unless told to.
    pub steps: u16,
    /// Which layers adapt.
    pub adapt: AdaptMask,
    /// Samples per task it was trained with (K).
    pub trained_k: u16,
    /// A step whose loss rises above this is undone (`f32::INFINITY`: only non-finite losses).
    pub loss_bound: f32,
    /// Seed of the training run.
    pub seed: u64,
}

impl Meta {
    /// Meta for model `M` with defaults: MAML, scalar α, all layers adapt, no loss bound.
    pub fn new<M: Shape, const I: usize, const O: usize>(loss: Loss, steps: u16) -> Self {
        let mut shape = heapless::Vec::new();
        M::shape(&mut |w| {
            // The Layers impls have at most MAX_LAYERS layers, so this always fits.
            let _ = shape.push(w as u32);
        });
        Self {
            shape,
            params: M::params() as u32,
            loss,
            algorithm: Algorithm::Maml,
            alpha: AlphaKind::Scalar,
            steps,
            adapt: AdaptMask::ALL,
            trained_k: 0,
            loss_bound: f32::INFINITY,
            seed: 0,
        }
    }

    /// Number of α values stored.
    pub fn alpha_len(&self) -> usize {
        self.alpha
            .len(self.params as usize, self.layers(), usize::from(self.steps))
    }

    /// Layers of the dense model (or head).
    pub fn layers(&self) -> usize {
        self.shape.len().saturating_sub(1)
    }

    /// The format version a blob with this meta is written in: the oldest that holds it (2
    /// for per-layer per-step `α`, else 1).
    ///
    /// ```
    /// use shared::model::Mlp1;
    /// use shared::wstar::{Algorithm, AlphaKind, Meta};
    /// let mut m = Meta::new::<Mlp1<f32, 1, 4, 1>, 1, 1>(shared::loss::Loss::Mse, 5);
    /// assert_eq!(m.format_version(), 1);
    /// (m.algorithm, m.alpha) = (Algorithm::Lslr, AlphaKind::PerLayerPerStep);
    /// assert_eq!(m.format_version(), 2);
    /// ```
    pub fn format_version(&self) -> u16 {
        if self.alpha == AlphaKind::PerLayerPerStep || self.algorithm == Algorithm::Lslr {
            2
        } else {
            1
        }
    }

    fn inputs(&self) -> usize {
        self.shape.first().copied().unwrap_or(0) as usize
    }

    fn outputs(&self) -> usize {
        self.shape.last().copied().unwrap_or(0) as usize
    }

    /// Bytes of the f32 arrays that follow the meta (saturating: on a 32-bit target a corrupt
    /// meta's sizes could overflow, and a saturated length never matches a real slice).
    pub fn arrays_len(&self) -> usize {
        (self.params as usize)
            .saturating_add(self.alpha_len())
            .saturating_add(self.inputs().saturating_mul(2))
            .saturating_add(self.outputs().saturating_mul(2))
            .saturating_mul(4)
    }
}

/// Signature of a shape (layer widths) under [`SCHEMA`].
pub fn signature_of_shape(widths: impl IntoIterator<Item = u32>) -> u32 {
    let mut d = CRC32.digest();
    d.update(SCHEMA.as_bytes());
    for w in widths {
        d.update(&w.to_le_bytes());
    }
    d.finalize()
}

/// Signature of a head shape (layer widths) on a body.
pub fn signature_with_body(widths: impl IntoIterator<Item = u32>, body: Option<&BodyShape>) -> u32 {
    let mut d = CRC32.digest();
    d.update(SCHEMA.as_bytes());
    for w in widths {
        d.update(&w.to_le_bytes());
    }
    if let Some(body) = body {
        body.signature_bytes(&mut d);
    }
    d.finalize()
}

/// Signature of model `M`.
pub fn signature<M: Shape, const I: usize, const O: usize>() -> u32 {
    let mut d = CRC32.digest();
    d.update(SCHEMA.as_bytes());
    M::shape(&mut |w| d.update(&(w as u32).to_le_bytes()));
    d.finalize()
}

/// Signature of head `M` on `body`.
pub fn signature_on<M: Shape, const I: usize, const O: usize, const C: usize>(
    body: &BodySpec<C>,
) -> u32 {
    let mut widths = heapless::Vec::<u32, { MAX_LAYERS + 1 }>::new();
    M::shape(&mut |w| {
        let _ = widths.push(w as u32);
    });
    signature_with_body(widths, Some(&BodyShape::of(body)))
}

/// Why a blob was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
// Tags from 1, so `None::<BlobError>` takes the free tag 0: a server with no blob is then all
// zero bytes, and a firmware's `static` server sits in `.bss` instead of copying an initial
// image out of flash (21 KB for the sinusoid server).
#[repr(u8)]
pub enum BlobError {
    /// Fewer bytes than a header.
    TooShort {
        /// Bytes given.
        len: usize,
    } = 1,
    /// The region is blank (all `0xFF` as erased flash reads, or all `0x00` as never-written
    /// memory reads): nothing was flashed.
    Erased,
    /// The first four bytes are not [`MAGIC`].
    BadMagic,
    /// A format version this code does not read.
    UnsupportedVersion {
        /// Version in the blob.
        found: u16,
    },
    /// The blob is for another model shape or schema.
    SignatureMismatch {
        /// This model's signature.
        expected: u32,
        /// The blob's.
        found: u32,
    },
    /// The declared payload length does not match the bytes given.
    LengthMismatch {
        /// Length in the header.
        declared: u32,
        /// Payload bytes present.
        actual: usize,
    },
    /// The CRC does not match: the blob is corrupt.
    CrcMismatch {
        /// CRC in the header.
        stored: u32,
        /// CRC of the bytes.
        computed: u32,
    },
    /// The meta record does not decode, needs another format version than the header's, or
    /// is inconsistent (per-step `α` with no step, a NaN loss bound).
    BadMeta,
    /// The meta describes another model than the one asked for.
    ModelMismatch,
    /// The arrays are not the size the meta says.
    ArraysLength {
        /// Bytes the meta implies.
        expected: usize,
        /// Bytes present.
        found: usize,
    },
    /// A stored value is NaN or infinite (or a scale is not positive).
    NonFinite {
        /// Index of the value among all stored f32s.
        index: usize,
    },
    /// Header flags this code does not know.
    UnknownFlags {
        /// The flags.
        flags: u16,
    },
    /// The body record does not decode, its weights are not the size it implies, or its
    /// features are not the head's inputs.
    BadBody,
    /// The header asks for a head started from class prototypes, but the model is not a
    /// softmax classifier.
    BadPrototypes,
    /// A stored `θ0` or `α` value is beyond the range of the device's fixed-point arithmetic
    /// (see [`Blob::out_of_range`]).
    OutOfRange {
        /// Index of the value among all stored f32s.
        index: usize,
    },
}

impl fmt::Display for BlobError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            BlobError::TooShort { len } => write!(f, "w* blob too short: {len} bytes, a header is {HEADER_LEN}"),
            BlobError::Erased => write!(f, "no w* flashed: the region is blank (erased flash)"),
            BlobError::BadMagic => write!(f, "not a w* blob: bad magic (expected \"TAW*\")"),
            BlobError::UnsupportedVersion { found } => {
                write!(f, "unsupported w* format version {found} (this build reads 1 to {FORMAT_VERSION})")
            }
            BlobError::SignatureMismatch { expected, found } => write!(
                f,
                "w* signature mismatch: blob is for another model shape or schema (expected {expected:#010x}, found {found:#010x})"
            ),
            BlobError::LengthMismatch { declared, actual } => {
                write!(f, "w* length mismatch: header says {declared} payload bytes, {actual} present (truncated?)")
            }
            BlobError::CrcMismatch { stored, computed } => {
                write!(f, "w* CRC mismatch: stored {stored:#010x}, computed {computed:#010x} (corrupt blob)")
            }
            BlobError::BadMeta => write!(f, "w* meta record does not decode"),
            BlobError::ModelMismatch => write!(f, "w* meta describes another model"),
            BlobError::ArraysLength { expected, found } => {
                write!(f, "w* arrays are {found} bytes, the meta implies {expected}")
            }
            BlobError::NonFinite { index } => write!(f, "w* value {index} is NaN, infinite or an invalid scale"),
            BlobError::UnknownFlags { flags } => write!(f, "w* header flags {flags:#06x} are not known to this build"),
            BlobError::BadBody => write!(f, "w* body record does not decode, its weights are not the size it implies, or its features are not the head's inputs"),
            BlobError::BadPrototypes => write!(f, "w* starts its head from class prototypes, but the model is not a softmax classifier"),
            BlobError::OutOfRange { index } => write!(f, "w* value {index} is beyond the range of this device's fixed-point arithmetic"),
        }
    }
}

/// A validated blob, read in place.
#[derive(Clone, Debug)]
pub struct Blob<'a> {
    /// The decoded meta record.
    pub meta: Meta,
    /// The header's signature.
    pub signature: u32,
    /// `None` only in [`Blob::EMPTY`] (a null niche, so the placeholder's bytes are zero).
    arrays: Option<Arrays<'a>>,
    /// The convolutional body, when the blob has one.
    body: Option<(BodyShape, &'a [u8])>,
    /// Where an adaptation starts.
    pub start: HeadStart,
    /// Which views of an image the body's features average.
    pub views: Views,
}

/// The blob's `f32` arrays, in place.
#[derive(Clone, Copy, Debug)]
struct Arrays<'a> {
    theta0: &'a [u8],
    alpha: &'a [u8],
    norm: &'a [u8],
}

impl Arrays<'_> {
    const NONE: Arrays<'static> = Arrays {
        theta0: &[],
        alpha: &[],
        norm: &[],
    };
}

/// The blob at the start of a flash region: the region cut to the length its header declares.
///
/// A region is larger than the blob it holds; this reads the declared length so the blob can
/// then be checked with [`Blob::parse_for`]. A blank header (all `0xFF` or all `0x00`) is
/// [`BlobError::Erased`]; a length past the region's end is [`BlobError::LengthMismatch`].
///
/// ```
/// use shared::wstar::{in_region, BlobError};
/// assert_eq!(in_region(&[0xFF; 64]), Err(BlobError::Erased));
/// assert_eq!(in_region(&[0x00; 64]), Err(BlobError::Erased));
/// let mut region = [0u8; 64];
/// region[..4].copy_from_slice(b"TAW*");
/// region[12] = 8; // 8 payload bytes declared
/// assert_eq!(in_region(&region).unwrap().len(), 28);
/// ```
pub fn in_region(region: &[u8]) -> Result<&[u8], BlobError> {
    let blank = |b: u8| region.len() >= HEADER_LEN && region[..HEADER_LEN].iter().all(|&v| v == b);
    if blank(0xFF) || blank(0x00) {
        return Err(BlobError::Erased);
    }
    if region.len() < HEADER_LEN {
        return Err(BlobError::TooShort { len: region.len() });
    }
    if region[..4] != MAGIC {
        return Err(BlobError::BadMagic);
    }
    let declared = le_u32(region, 12);
    let end = (declared as usize).checked_add(HEADER_LEN);
    match end {
        Some(end) if end <= region.len() => Ok(&region[..end]),
        _ => Err(BlobError::LengthMismatch {
            declared,
            actual: region.len() - HEADER_LEN,
        }),
    }
}

fn le_u16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn le_u32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn f32_at(b: &[u8], i: usize) -> f32 {
    f32::from_le_bytes([b[4 * i], b[4 * i + 1], b[4 * i + 2], b[4 * i + 3]])
}

impl<'a> Blob<'a> {
    /// A blob that holds no model: a placeholder for a buffer that is loaded later (its bytes
    /// are all zero, so it can sit in `.bss`). [`Blob::is_empty`] tells it apart; its arrays
    /// are empty and must not be read.
    pub const EMPTY: Blob<'static> = Blob {
        meta: Meta {
            shape: heapless::Vec::new(),
            params: 0,
            loss: Loss::Mse,
            algorithm: Algorithm::Maml,
            alpha: AlphaKind::Scalar,
            steps: 0,
            adapt: AdaptMask(0),
            trained_k: 0,
            loss_bound: 0.0,
            seed: 0,
        },
        signature: 0,
        arrays: None,
        body: None,
        start: HeadStart::Theta0,
        views: Views::Single,
    };

    fn arrays(&self) -> &Arrays<'a> {
        self.arrays.as_ref().unwrap_or(&Arrays::NONE)
    }

    /// This is [`Blob::EMPTY`]: no model (a parsed blob always has parameters).
    pub fn is_empty(&self) -> bool {
        self.arrays.is_none()
    }

    /// Parses and checks a blob for model `M`: header, signature, CRC, meta, sizes, and that
    /// every value is finite.
    pub fn parse_for<M: Shape, const I: usize, const O: usize>(
        bytes: &'a [u8],
    ) -> Result<Self, BlobError> {
        let blob = Self::parse_with(bytes, Some(signature::<M, I, O>()))?;
        Self::check_model::<M, I, O>(blob)
    }

    /// Parses and checks a blob for head `M` on `body` (an ANIL classifier whose body stays
    /// in the blob): as [`Blob::parse_for`], and the body's shape and weights too.
    pub fn parse_on<M: Shape, const I: usize, const O: usize, const C: usize>(
        bytes: &'a [u8],
        body: &BodySpec<C>,
    ) -> Result<Self, BlobError> {
        let blob = Self::parse_with(bytes, Some(signature_on::<M, I, O, C>(body)))?;
        match &blob.body {
            Some((shape, _)) if shape.is(body) => Self::check_model::<M, I, O>(blob),
            _ => Err(BlobError::ModelMismatch),
        }
    }

    fn check_model<M: Shape, const I: usize, const O: usize>(
        blob: Self,
    ) -> Result<Self, BlobError> {
        let mut widths = blob.meta.shape.iter();
        let mut same = blob.meta.params as usize == M::params();
        M::shape(&mut |w| same &= widths.next() == Some(&(w as u32)));
        if !same || widths.next().is_some() {
            return Err(BlobError::ModelMismatch);
        }
        Ok(blob)
    }

    /// Parses and checks a blob for whatever model it describes (for tools such as `inspect`).
    pub fn parse(bytes: &'a [u8]) -> Result<Self, BlobError> {
        Self::parse_with(bytes, None)
    }

    fn parse_with(bytes: &'a [u8], expected: Option<u32>) -> Result<Self, BlobError> {
        if bytes.len() < HEADER_LEN {
            return Err(if !bytes.is_empty() && bytes.iter().all(|&b| b == 0xFF) {
                BlobError::Erased
            } else {
                BlobError::TooShort { len: bytes.len() }
            });
        }
        if bytes[..4] != MAGIC {
            return Err(if bytes[..HEADER_LEN].iter().all(|&b| b == 0xFF) {
                BlobError::Erased
            } else {
                BlobError::BadMagic
            });
        }
        let version = le_u16(bytes, 4);
        if !(1..=FORMAT_VERSION).contains(&version) {
            return Err(BlobError::UnsupportedVersion { found: version });
        }
        let found = le_u32(bytes, 8);
        if let Some(expected) = expected {
            if found != expected {
                return Err(BlobError::SignatureMismatch { expected, found });
            }
        }
        let declared = le_u32(bytes, 12);
        let payload = &bytes[HEADER_LEN..];
        if declared as usize != payload.len() {
            return Err(BlobError::LengthMismatch {
                declared,
                actual: payload.len(),
            });
        }
        let stored = le_u32(bytes, 16);
        let mut d = CRC32.digest();
        d.update(&bytes[4..16]);
        d.update(payload);
        let computed = d.finalize();
        if stored != computed {
            return Err(BlobError::CrcMismatch { stored, computed });
        }
        let flags = le_u16(bytes, 6);
        if flags & !(FLAG_BODY | FLAG_PROTOTYPES | FLAG_SHIFTED_VIEWS) != 0 {
            return Err(BlobError::UnknownFlags { flags });
        }
        let (meta, mut arrays): (Meta, &[u8]) =
            postcard::take_from_bytes(payload).map_err(|_| BlobError::BadMeta)?;
        // A version-2 record under a version-1 header, or per-step α with no trained step.
        let no_steps = meta.alpha == AlphaKind::PerLayerPerStep && meta.steps == 0;
        if meta.format_version() != version || no_steps {
            return Err(BlobError::BadMeta);
        }
        let start = if flags & FLAG_PROTOTYPES == 0 {
            HeadStart::Theta0
        } else if meta.loss == Loss::SoftmaxCrossEntropy {
            HeadStart::Prototypes
        } else {
            return Err(BlobError::BadPrototypes);
        };
        let views = match (flags & FLAG_SHIFTED_VIEWS != 0, flags & FLAG_BODY != 0) {
            (false, _) => Views::Single,
            (true, true) => Views::Shifted,
            (true, false) => return Err(BlobError::BadBody),
        };
        let mut body = None;
        if flags & FLAG_BODY != 0 {
            if arrays.len() < meta.arrays_len() {
                return Err(BlobError::ArraysLength {
                    expected: meta.arrays_len(),
                    found: arrays.len(),
                });
            }
            let (head, rest) = arrays.split_at(meta.arrays_len());
            let (shape, weights): (BodyShape, &[u8]) =
                postcard::take_from_bytes(rest).map_err(|_| BlobError::BadBody)?;
            let convs_fit = shape.channels.len() >= 2 && shape.channels.iter().all(|&c| c > 0);
            let feeds_head = meta.shape.first().map(|&w| w as usize) == Some(shape.features());
            if !convs_fit
                || !feeds_head
                || shape.side == 0
                || weights.len() != shape.params().saturating_mul(4)
            {
                return Err(BlobError::BadBody);
            }
            arrays = head;
            body = Some((shape, weights));
        }
        let expected_sig =
            signature_with_body(meta.shape.iter().copied(), body.as_ref().map(|b| &b.0));
        if meta.shape.len() < 2 || expected_sig != found {
            return Err(BlobError::SignatureMismatch {
                expected: expected_sig,
                found,
            });
        }
        if arrays.len() != meta.arrays_len() {
            return Err(BlobError::ArraysLength {
                expected: meta.arrays_len(),
                found: arrays.len(),
            });
        }
        let (theta0, rest) = arrays.split_at(4 * meta.params as usize);
        let (alpha, norm) = rest.split_at(4 * meta.alpha_len());
        let blob = Blob {
            meta,
            signature: found,
            arrays: Some(Arrays {
                theta0,
                alpha,
                norm,
            }),
            body,
            start,
            views,
        };
        blob.check_values()?;
        Ok(blob)
    }

    fn check_values(&self) -> Result<(), BlobError> {
        let a = self.arrays();
        let all = (a.theta0.len() + a.alpha.len() + a.norm.len()) / 4;
        let (i, o) = (self.meta.inputs(), self.meta.outputs());
        for k in 0..all {
            let v = self.value(k);
            let k_norm = k.wrapping_sub((a.theta0.len() + a.alpha.len()) / 4);
            let is_scale =
                (i..2 * i).contains(&k_norm) || (2 * i + o..2 * i + 2 * o).contains(&k_norm);
            if !v.is_finite() || (is_scale && v <= 0.0) {
                return Err(BlobError::NonFinite { index: k });
            }
        }
        if let Some((_, weights)) = &self.body {
            for (k, b) in weights.chunks_exact(4).enumerate() {
                if !f32::from_le_bytes([b[0], b[1], b[2], b[3]]).is_finite() {
                    return Err(BlobError::NonFinite { index: all + k });
                }
            }
        }
        if self.meta.loss_bound.is_nan() {
            return Err(BlobError::BadMeta);
        }
        Ok(())
    }

    /// The convolutional body, when the blob has one: its shape and its weights, read in place.
    pub fn body(&self) -> Option<(&BodyShape, LeBytes<'a>)> {
        self.body.as_ref().map(|(s, w)| (s, LeBytes(w)))
    }

    /// Stored value `k` among θ0, α and the normalisation arrays, in that order.
    fn value(&self, k: usize) -> f32 {
        let arrays = self.arrays();
        let (t, a) = (arrays.theta0.len() / 4, arrays.alpha.len() / 4);
        if k < t {
            f32_at(arrays.theta0, k)
        } else if k < t + a {
            f32_at(arrays.alpha, k - t)
        } else {
            f32_at(arrays.norm, k - t - a)
        }
    }

    /// `θ0[index]`.
    pub fn theta0(&self, index: usize) -> f32 {
        f32_at(self.arrays().theta0, index)
    }

    /// Copies `θ0` into `params`, converted to their scalar (see [`Real::from_f32`]).
    pub fn load_theta0<T: Real, P: Params<T>>(&self, params: &mut P) {
        params.fill_with(|k| T::from_f32(self.theta0(k)));
    }

    /// The first stored `θ0` or `α` value that `T` cannot hold (a fixed-point format's range;
    /// never for `f32`), as the flat index among all stored values, like
    /// [`BlobError::NonFinite`].
    ///
    /// ```
    /// use shared::fixed::Q20;
    /// use shared::model::{Mlp1, Params};
    /// use shared::wstar::{encode, Blob, BlobError, Meta};
    /// type Net = Mlp1<f32, 1, 4, 1>;
    /// let meta = Meta::new::<Net, 1, 1>(shared::loss::Loss::Mse, 1);
    /// let mut theta = vec![0.5; Net::PARAMS];
    /// theta[3] = 300.0; // beyond Q20's ±128
    /// let bytes = encode(&meta, &theta, &[0.1], &[0.0], &[1.0], &[0.0], &[1.0]).unwrap();
    /// let blob = Blob::parse(&bytes).unwrap();
    /// assert_eq!(blob.out_of_range::<f32>(), None);
    /// assert_eq!(blob.out_of_range::<Q20>(), Some(BlobError::OutOfRange { index: 3 }));
    /// ```
    pub fn out_of_range<T: Real>(&self) -> Option<BlobError> {
        let a = self.arrays();
        let values = a.theta0.chunks_exact(4).chain(a.alpha.chunks_exact(4));
        values
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .position(|v| !T::from_f32(v).is_finite())
            .map(|index| BlobError::OutOfRange { index })
    }

    /// The `k`-th stored α value (see [`AlphaKind`] for their order).
    pub fn alpha(&self, k: usize) -> f32 {
        f32_at(self.arrays().alpha, k)
    }

    /// The step size of the parameter at flat `index`, in layer `layer`, at inner step `step`
    /// (counted from the adaptation's start; see [`AlphaKind::index`]).
    ///
    /// ```
    /// use shared::model::{Mlp1, Params};
    /// use shared::wstar::{encode, Algorithm, AlphaKind, Blob, Meta};
    /// type Net = Mlp1<f32, 1, 2, 1>;
    /// let mut meta = Meta::new::<Net, 1, 1>(shared::loss::Loss::Mse, 2);
    /// (meta.algorithm, meta.alpha) = (Algorithm::Lslr, AlphaKind::PerLayerPerStep);
    /// let alpha = [0.1, 0.2, 0.3, 0.4]; // step 0: layers 0, 1; step 1: layers 0, 1
    /// let bytes = encode(&meta, &[0.5; Net::PARAMS], &alpha, &[0.0], &[1.0], &[0.0], &[1.0]).unwrap();
    /// let blob = Blob::parse(&bytes).unwrap();
    /// assert_eq!(blob.step_alpha(1, 6, 0), 0.2);
    /// assert_eq!(blob.step_alpha(0, 0, 1), 0.3);
    /// assert_eq!(blob.step_alpha(1, 6, 7), 0.4);
    /// ```
    pub fn step_alpha(&self, layer: usize, index: usize, step: usize) -> f32 {
        let m = &self.meta;
        let k = m
            .alpha
            .index(layer, index, step, m.layers(), usize::from(m.steps));
        self.alpha(k)
    }

    /// Number of stored α values.
    pub fn alpha_len(&self) -> usize {
        self.arrays().alpha.len() / 4
    }

    /// `(mean, std)` of input feature `i`: the model sees `(x − mean) / std`.
    pub fn input_norm(&self, i: usize) -> (f32, f32) {
        let n = self.meta.inputs();
        (
            f32_at(self.arrays().norm, i),
            f32_at(self.arrays().norm, n + i),
        )
    }

    /// `(mean, std)` of output `i`: the model predicts `(y − mean) / std`.
    pub fn output_norm(&self, i: usize) -> (f32, f32) {
        let (n, o) = (self.meta.inputs(), self.meta.outputs());
        (
            f32_at(self.arrays().norm, 2 * n + i),
            f32_at(self.arrays().norm, 2 * n + o + i),
        )
    }
}

/// Why a blob could not be written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum EncodeError {
    /// An array's length does not match the meta.
    WrongLength {
        /// Which array.
        what: &'static str,
        /// Length the meta implies.
        expected: usize,
        /// Length given.
        found: usize,
    },
    /// The meta did not serialise.
    Meta,
    /// A head started from class prototypes needs a softmax classifier.
    Prototypes,
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EncodeError::WrongLength {
                what,
                expected,
                found,
            } => {
                write!(
                    f,
                    "cannot write w*: {what} has {found} values, the meta implies {expected}"
                )
            }
            EncodeError::Meta => write!(f, "cannot write w*: meta does not serialise"),
            EncodeError::Prototypes => write!(
                f,
                "cannot write w*: a head started from class prototypes needs softmax cross-entropy"
            ),
        }
    }
}

/// Writes a blob (host side).
#[cfg(feature = "alloc")]
pub fn encode(
    meta: &Meta,
    theta0: &[f32],
    alpha: &[f32],
    x_mean: &[f32],
    x_std: &[f32],
    y_mean: &[f32],
    y_std: &[f32],
) -> Result<alloc::vec::Vec<u8>, EncodeError> {
    encode_with_body(meta, theta0, alpha, [x_mean, x_std, y_mean, y_std], None)
}

/// Writes a blob whose head sits on a convolutional body (host side): `norms` are `x_mean`,
/// `x_std`, `y_mean`, `y_std` of the head, `body` the body's shape and weights.
#[cfg(feature = "alloc")]
pub fn encode_with_body(
    meta: &Meta,
    theta0: &[f32],
    alpha: &[f32],
    norms: [&[f32]; 4],
    body: Option<(&BodyShape, &[f32])>,
) -> Result<alloc::vec::Vec<u8>, EncodeError> {
    encode_starting(meta, theta0, alpha, norms, body, HeadStart::Theta0)
}

/// [`encode_with_body`] for a head that starts each adaptation as `start` says.
///
/// ```
/// use shared::model::{Dense, Params};
/// use shared::wstar::{encode_starting, Blob, HeadStart, Meta};
/// type Head = Dense<f32, 4, 3>;
/// let meta = Meta::new::<Head, 4, 3>(shared::loss::Loss::SoftmaxCrossEntropy, 5);
/// let norms: [&[f32]; 4] = [&[0.0; 4], &[1.0; 4], &[0.0; 3], &[1.0; 3]];
/// let bytes = encode_starting(&meta, &[0.0; Head::PARAMS], &[0.1], norms, None, HeadStart::Prototypes).unwrap();
/// assert_eq!(Blob::parse(&bytes).unwrap().start, HeadStart::Prototypes);
/// ```
#[cfg(feature = "alloc")]
pub fn encode_starting(
    meta: &Meta,
    theta0: &[f32],
    alpha: &[f32],
    norms: [&[f32]; 4],
    body: Option<(&BodyShape, &[f32])>,
    start: HeadStart,
) -> Result<alloc::vec::Vec<u8>, EncodeError> {
    encode_views(meta, theta0, alpha, norms, body, start, Views::Single)
}

/// An image classifier's blob: [`encode_starting`] with its body, whose features of an image
/// are taken over `views`.
///
/// ```
/// use shared::body::{BodySpec, Views};
/// use shared::model::{Dense, Params};
/// use shared::wstar::{encode_classifier, Blob, BodyShape, HeadStart, Meta};
/// const NET: BodySpec<2> = BodySpec { side: 4, channels: [1, 2] };
/// type Head = Dense<f32, 8, 3>;
/// let meta = Meta::new::<Head, 8, 3>(shared::loss::Loss::SoftmaxCrossEntropy, 5);
/// let norms: [&[f32]; 4] = [&[0.0; 8], &[1.0; 8], &[0.0; 3], &[1.0; 3]];
/// let body = (&BodyShape::of(&NET), &[0.1f32; NET.params()][..]);
/// let bytes = encode_classifier(&meta, &[0.0; Head::PARAMS], &[0.1], norms, body,
///     HeadStart::Prototypes, Views::Shifted).unwrap();
/// assert_eq!(Blob::parse(&bytes).unwrap().views, Views::Shifted);
/// ```
#[cfg(feature = "alloc")]
pub fn encode_classifier(
    meta: &Meta,
    theta0: &[f32],
    alpha: &[f32],
    norms: [&[f32]; 4],
    body: (&BodyShape, &[f32]),
    start: HeadStart,
    views: Views,
) -> Result<alloc::vec::Vec<u8>, EncodeError> {
    encode_views(meta, theta0, alpha, norms, Some(body), start, views)
}

#[cfg(feature = "alloc")]
fn encode_views(
    meta: &Meta,
    theta0: &[f32],
    alpha: &[f32],
    norms: [&[f32]; 4],
    body: Option<(&BodyShape, &[f32])>,
    start: HeadStart,
    views: Views,
) -> Result<alloc::vec::Vec<u8>, EncodeError> {
    if start == HeadStart::Prototypes && meta.loss != Loss::SoftmaxCrossEntropy {
        return Err(EncodeError::Prototypes);
    }
    let [x_mean, x_std, y_mean, y_std] = norms;
    let (i, o) = (meta.inputs(), meta.outputs());
    let arrays: [(&'static str, &[f32], usize); 6] = [
        ("theta0", theta0, meta.params as usize),
        ("alpha", alpha, meta.alpha_len()),
        ("x_mean", x_mean, i),
        ("x_std", x_std, i),
        ("y_mean", y_mean, o),
        ("y_std", y_std, o),
    ];
    let mut payload = postcard::to_allocvec(meta).map_err(|_| EncodeError::Meta)?;
    for (what, values, expected) in arrays {
        if values.len() != expected {
            return Err(EncodeError::WrongLength {
                what,
                expected,
                found: values.len(),
            });
        }
        payload.extend(values.iter().flat_map(|v| v.to_le_bytes()));
    }
    if let Some((shape, weights)) = body {
        if i != shape.features() {
            return Err(EncodeError::WrongLength {
                what: "head inputs (the body's features)",
                expected: shape.features(),
                found: i,
            });
        }
        if weights.len() != shape.params() {
            return Err(EncodeError::WrongLength {
                what: "body",
                expected: shape.params(),
                found: weights.len(),
            });
        }
        payload.extend(postcard::to_allocvec(shape).map_err(|_| EncodeError::Meta)?);
        payload.extend(weights.iter().flat_map(|v| v.to_le_bytes()));
    }
    let mut flags = if body.is_some() { FLAG_BODY } else { 0 };
    if start == HeadStart::Prototypes {
        flags |= FLAG_PROTOTYPES;
    }
    if views == Views::Shifted {
        flags |= FLAG_SHIFTED_VIEWS;
    }
    let sig = signature_with_body(meta.shape.iter().copied(), body.map(|b| b.0));
    let mut out = alloc::vec::Vec::with_capacity(HEADER_LEN + payload.len());
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&meta.format_version().to_le_bytes());
    out.extend_from_slice(&flags.to_le_bytes());
    out.extend_from_slice(&sig.to_le_bytes());
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    let mut d = CRC32.digest();
    d.update(&out[4..16]);
    d.update(&payload);
    out.extend_from_slice(&d.finalize().to_le_bytes());
    out.extend_from_slice(&payload);
    Ok(out)
}
