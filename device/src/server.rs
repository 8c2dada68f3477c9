//! Serving the link: bytes from the UART in, one response frame per request out.
//!
//! [`LinkServer`] owns a [`Served`] model, an [`Adapter`] ([`Server`]) or an
//! [`ImageClassifier`] whose body stays in flash, and answers every [`Request`] with a
//! [`Response`]; nothing a host sends (a garbage or overlong frame, a wrong vector length, a
//! NaN, a full buffer, a half-staged image, no blob at all) stops it from answering the next
//! one. It is target-agnostic: the firmware feeds it UART bytes, the host tests feed it byte
//! slices.
//!
//! ```
//! use device::server::{Server, Untimed};
//! use shared::link::{Request, Response, MAX_FRAME};
//! type Net = shared::model::Mlp1<f32, 1, 4, 1>;
//! let erased = [0xFFu8; 256]; // nothing flashed in either slot
//! let mut server = Server::<Net, 1, 1, 4>::new([&erased, &erased]);
//! let mut frame = [0u8; MAX_FRAME];
//! let bytes = postcard::to_slice_cobs(&Request::Status, &mut frame).unwrap();
//! let mut reply = [0u8; MAX_FRAME];
//! let mut answered = 0;
//! for &b in bytes.iter() {
//!     if let Some(out) = server.feed(b, &mut reply, &mut Untimed) {
//!         let mut copy = out.to_vec();
//!         let r: Response = postcard::from_bytes_cobs(&mut copy).unwrap();
//!         assert!(matches!(r, Response::Status(s) if s.blob.is_err()));
//!         answered += 1;
//!     }
//! }
//! assert_eq!(answered, 1);
//! ```
//!
//! # Inputs larger than a frame
//!
//! An image does not fit a [`MAX_FRAME`]-byte frame, so it is staged in parts
//! ([`Request::Stage`], at most [`shared::link::STAGE_PER_FRAME`] values each) into a stage of
//! `X` values that the server holds, then used by [`Request::PushStaged`] or
//! [`Request::ClassifyStaged`]. The stage fills in order and each part's answer says how far
//! it is filled: the input is complete at [`Status::inputs`]. Using an incomplete stage is
//! refused ([`LinkError::Stage`]), and every use empties the stage, so a stale or half-restaged
//! input never gives an answer. [`Request::Rescan`] empties it too.
//!
//! The raw-vector requests ([`Request::Push`], [`Request::Predict`], [`Request::PredictMany`])
//! carry at most a frame: an image classifier answers them with [`LinkError::Length`] (an
//! image is [`Status::inputs`] values). Staged inputs work on an adapter too: a
//! [`Request::PushStaged`] label becomes a one-hot target and [`Request::ClassifyStaged`]
//! needs a `w*` trained with softmax cross-entropy.

use postcard::accumulator::{CobsAccumulator, FeedResult};
use shared::link::{
    floats, put_floats, LinkError, Memory, Request, Response, Status, MAX_FRAME, PARAMS_PER_FRAME,
};
use shared::math::Real;
use shared::model::{Dense, Layers, Params};
use shared::slots::{select_by, slot_blob_by, Selection};
use shared::wstar::{Blob, BlobError};

use crate::adapter::{Adapter, Sample};
use crate::classifier::ImageClassifier;
use crate::{AdaptError, AdaptReport, PushErrorKind, StepLimit};

/// What the server needs from the board.
pub trait Platform {
    /// Runs `f` and returns its result with the core clock ticks it took (under QEMU's
    /// `-icount`, a deterministic count that converts to instructions; see
    /// `shared::board::Board::qemu_icount_shift`). A board without a clock returns 0 ticks.
    fn measure<R>(&mut self, f: impl FnOnce() -> R) -> (R, u64);
    /// Stack use so far.
    fn memory(&self) -> Memory;
}

/// A [`Platform`] without a clock or a painted stack: the host running the server in-process
/// (the host simulation of a firmware). Every measurement is 0 ticks, the stack 0 bytes.
///
/// ```
/// use device::server::{Platform, Untimed};
/// assert_eq!(Untimed.measure(|| 6 * 7), (42, 0));
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct Untimed;

impl Platform for Untimed {
    fn measure<R>(&mut self, f: impl FnOnce() -> R) -> (R, u64) {
        (f(), 0)
    }

    fn memory(&self) -> Memory {
        Memory {
            stack_peak: 0,
            stack_size: 0,
        }
    }
}

/// What a model is, for [`Request::Status`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Facts {
    /// Values one input has (an image's pixels for an image classifier).
    pub inputs: usize,
    /// Inputs of the adapted part (the body's features for an image classifier).
    pub features: usize,
    /// Outputs (classes).
    pub outputs: usize,
    /// Sample capacity K.
    pub capacity: usize,
    /// Parameters that adapt (what [`Request::ReadParams`] reads).
    pub params: usize,
    /// Weights of a body kept in flash (0: none, or nothing loaded).
    pub body_params: usize,
    /// Bytes of RAM the model occupies.
    pub ram_bytes: usize,
}

/// A sample's target: the outputs, or a class (a one-hot target).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Target<'a> {
    /// Output values.
    Values(&'a [f32]),
    /// A class below the outputs.
    Label(usize),
}

/// A model the link serves: [`Adapter`] and [`ImageClassifier`] implement it. Inputs are
/// slices; a wrong length is refused, never a panic.
///
/// ```
/// use device::server::{Served, Target};
/// use device::Adapter;
/// type Net = shared::model::Mlp1<f32, 2, 4, 3>;
/// # use shared::model::Params;
/// # let meta = shared::wstar::Meta::new::<Net, 2, 3>(shared::loss::Loss::SoftmaxCrossEntropy, 1);
/// # let theta: Vec<f32> = (0..Net::PARAMS).map(|k| ((k * 7 % 5) as f32 - 2.0) / 4.0).collect();
/// # let blob = shared::wstar::encode(&meta, &theta, &[0.1], &[0.0; 2], &[1.0; 2], &[0.0; 3], &[1.0; 3]).unwrap();
/// let mut a = Adapter::<Net, 2, 3, 4>::UNLOADED;
/// Served::load(&mut a, &blob).unwrap();
/// assert_eq!(a.push_input(&[0.5, 1.0], Target::Label(2)), Ok(1));
/// assert!(a.push_input(&[0.5], Target::Label(2)).is_err()); // one value short
/// let (label, scores) = a.classify_input(&[0.5, 1.0]).unwrap();
/// assert!(label < 3 && scores.len() == 3);
/// ```
pub trait Served<'w> {
    /// One output vector (one score per class).
    type Output: AsRef<[f32]>;

    /// Checks `blob` for this model, every check loading it makes. It may load it: the server
    /// loads the blob it picks afterwards.
    fn check(&mut self, blob: &'w [u8]) -> Result<(), BlobError>;
    /// Validates `blob` and starts from its `θ0`; the samples are dropped. A refused blob
    /// leaves the model without one.
    fn load(&mut self, blob: &'w [u8]) -> Result<(), BlobError>;
    /// Drops the blob and the samples.
    fn unload(&mut self);
    /// The validated blob, if one is loaded.
    fn blob(&self) -> Option<&Blob<'w>>;
    /// What the model is.
    fn facts(&self) -> Facts;
    /// Samples held.
    fn samples(&self) -> usize;
    /// Inner steps since the last reset.
    fn steps_since_reset(&self) -> u32;
    /// Adds a sample; returns the samples held.
    fn push_input(&mut self, x: &[f32], y: Target<'_>) -> Result<usize, PushErrorKind>;
    /// Drops the samples.
    fn clear_samples(&mut self);
    /// Back to `θ0`.
    fn reset(&mut self);
    /// The trained steps left (`None`) or `n` steps under `limit`.
    fn adapt_by(&mut self, steps: Option<u16>, limit: StepLimit)
        -> Result<AdaptReport, AdaptError>;
    /// The outputs for `x`, in the user's units (a classifier's logits).
    fn predict_input(&mut self, x: &[f32]) -> Result<Self::Output, AdaptError>;
    /// The class of `x` and every class's score.
    fn classify_input(&mut self, x: &[f32]) -> Result<(usize, Self::Output), AdaptError>;
    /// Calls `f` with the live parameters that adapt, in order, slice by slice.
    fn visit_params(&self, f: &mut dyn FnMut(&[f32]));
}

/// The one-hot target of `label`, or the values.
fn target<const O: usize>(y: Target<'_>) -> Result<[f32; O], PushErrorKind> {
    let mut out = [0.0; O];
    match y {
        Target::Values(v) if v.len() == O => out.copy_from_slice(v),
        Target::Label(l) if l < O => out[l] = 1.0,
        _ => return Err(PushErrorKind::Shape),
    }
    Ok(out)
}

/// `x` as exactly `N` values.
fn exact<const N: usize>(x: &[f32]) -> Result<[f32; N], AdaptError> {
    x.try_into().map_err(|_| AdaptError::InputSize {
        expected: N as u32,
        found: x.len() as u32,
    })
}

impl<'w, M, const I: usize, const O: usize, const K: usize, T: Real> Served<'w>
    for Adapter<'w, M, I, O, K, T>
where
    M: Layers<T, I, O>,
{
    type Output = [f32; O];

    fn check(&mut self, blob: &'w [u8]) -> Result<(), BlobError> {
        let parsed = Blob::parse_for::<M, I, O>(blob)?;
        parsed.out_of_range::<T>().map_or(Ok(()), Err)
    }
    fn load(&mut self, blob: &'w [u8]) -> Result<(), BlobError> {
        Adapter::load(self, blob)
    }
    fn unload(&mut self) {
        Adapter::unload(self)
    }
    fn blob(&self) -> Option<&Blob<'w>> {
        Adapter::blob(self)
    }
    fn facts(&self) -> Facts {
        Facts {
            inputs: I,
            features: I,
            outputs: O,
            capacity: K,
            params: M::PARAMS,
            body_params: 0,
            ram_bytes: Self::RAM_BYTES,
        }
    }
    fn samples(&self) -> usize {
        self.len()
    }
    fn steps_since_reset(&self) -> u32 {
        Adapter::steps_since_reset(self)
    }
    fn push_input(&mut self, x: &[f32], y: Target<'_>) -> Result<usize, PushErrorKind> {
        let x = exact::<I>(x).map_err(|_| PushErrorKind::Shape)?;
        let y = target::<O>(y)?;
        self.push(Sample { x, y }).map_err(|e| e.kind)?;
        Ok(self.len())
    }
    fn clear_samples(&mut self) {
        Adapter::clear_samples(self)
    }
    fn reset(&mut self) {
        Adapter::reset(self)
    }
    fn adapt_by(
        &mut self,
        steps: Option<u16>,
        limit: StepLimit,
    ) -> Result<AdaptReport, AdaptError> {
        match steps {
            None => self.adapt(),
            Some(n) => self.adapt_steps(n, limit),
        }
    }
    fn predict_input(&mut self, x: &[f32]) -> Result<[f32; O], AdaptError> {
        self.predict(&exact::<I>(x)?)
    }
    fn classify_input(&mut self, x: &[f32]) -> Result<(usize, [f32; O]), AdaptError> {
        let c = self.classify(&exact::<I>(x)?)?;
        Ok((c.label, c.scores))
    }
    fn visit_params(&self, f: &mut dyn FnMut(&[f32])) {
        visit_as_f32(self.params(), f)
    }
}

/// Calls `f` on `params` converted to `f32` a few at a time (the identity for `f32`).
fn visit_as_f32<T: Real, P: Params<T>>(params: &P, f: &mut dyn FnMut(&[f32])) {
    let mut buf = [0.0f32; 16];
    params.for_each(&mut |_, s| {
        for chunk in s.chunks(buf.len()) {
            for (b, v) in buf.iter_mut().zip(chunk) {
                *b = v.to_f32();
            }
            f(&buf[..chunk.len()]);
        }
    });
}

impl<
        'w,
        const C: usize,
        const F: usize,
        const N: usize,
        const K: usize,
        const S: usize,
        T: Real,
    > Served<'w> for ImageClassifier<'w, C, F, N, K, S, T>
{
    type Output = [f32; N];

    fn check(&mut self, blob: &'w [u8]) -> Result<(), BlobError> {
        // The classifier keeps its body private: loading is its check.
        ImageClassifier::load(self, blob)
    }
    fn load(&mut self, blob: &'w [u8]) -> Result<(), BlobError> {
        ImageClassifier::load(self, blob)
    }
    fn unload(&mut self) {
        ImageClassifier::unload(self)
    }
    fn blob(&self) -> Option<&Blob<'w>> {
        ImageClassifier::blob(self)
    }
    fn facts(&self) -> Facts {
        let body = self.blob().and_then(|b| b.body());
        Facts {
            inputs: self.inputs(),
            features: F,
            outputs: N,
            capacity: K,
            params: <Dense<T, F, N> as Params<T>>::PARAMS,
            body_params: body.map_or(0, |(shape, _)| shape.params()),
            ram_bytes: Self::RAM_BYTES,
        }
    }
    fn samples(&self) -> usize {
        self.head().len()
    }
    fn steps_since_reset(&self) -> u32 {
        self.head().steps_since_reset()
    }
    fn push_input(&mut self, x: &[f32], y: Target<'_>) -> Result<usize, PushErrorKind> {
        let one_hot = target::<N>(y)?;
        let Some(label) = one_hot.iter().position(|&v| v == 1.0) else {
            return Err(PushErrorKind::Shape);
        };
        if one_hot.iter().filter(|&&v| v != 0.0).count() != 1 {
            return Err(PushErrorKind::Shape);
        }
        self.push(x, label)?;
        Ok(self.head().len())
    }
    fn clear_samples(&mut self) {
        ImageClassifier::clear_samples(self)
    }
    fn reset(&mut self) {
        ImageClassifier::reset(self)
    }
    fn adapt_by(
        &mut self,
        steps: Option<u16>,
        limit: StepLimit,
    ) -> Result<AdaptReport, AdaptError> {
        match steps {
            None => self.adapt(),
            Some(n) => self.adapt_steps(n, limit),
        }
    }
    fn predict_input(&mut self, x: &[f32]) -> Result<[f32; N], AdaptError> {
        let features = self.features(x)?;
        self.head().predict(&features)
    }
    fn classify_input(&mut self, x: &[f32]) -> Result<(usize, [f32; N]), AdaptError> {
        let c = self.classify(x)?;
        Ok((c.label, c.scores))
    }
    fn visit_params(&self, f: &mut dyn FnMut(&[f32])) {
        visit_as_f32(self.head().params(), f)
    }
}

/// The input stage: `X` values, filled in order (see the [module docs](self)).
struct Stage<const X: usize> {
    values: [f32; X],
    filled: u16,
}

/// The model behind the link, or why there is none, and the input stage of `X` values (at
/// least the model's inputs; see the [module docs](self)).
pub struct LinkServer<'w, T, const X: usize> {
    model: T,
    stage: Stage<X>,
    /// The two `w*` slots (`None` until [`LinkServer::load_slots`]).
    slots: Option<[&'w [u8]; 2]>,
    /// Which slot serves, and why the others were refused.
    selection: Selection,
    rx: CobsAccumulator<MAX_FRAME>,
    /// Bytes of the current frame seen so far (0: at a frame boundary).
    pending: usize,
    /// Dropping the rest of an overlong frame.
    skipping: bool,
}

/// The server of an [`Adapter`]: the sinusoid firmware's.
pub type Server<'w, M, const I: usize, const O: usize, const K: usize, T = f32> =
    LinkServer<'w, Adapter<'w, M, I, O, K, T>, I>;

impl<'w, M, const I: usize, const O: usize, const K: usize, T: Real> Server<'w, M, I, O, K, T>
where
    M: Layers<T, I, O>,
{
    /// A server with no `w*` loaded, as a constant: a firmware keeps it in a `static` and
    /// calls [`LinkServer::load_slots`], so the adapter is never built on the stack.
    ///
    /// ```
    /// type S = device::server::Server<'static, shared::model::Mlp1<f32, 1, 4, 1>, 1, 1, 3>;
    /// static SERVER: S = S::UNLOADED;
    /// assert!(SERVER.status().blob.is_err());
    /// ```
    pub const UNLOADED: Self = Self::unloaded(Adapter::UNLOADED);

    /// Serves the newest valid `w*` of the two `slots` (see [`shared::slots`]).
    pub fn new(slots: [&'w [u8]; 2]) -> Self {
        let mut s = Self::UNLOADED;
        s.load_slots(slots);
        s
    }

    /// The adapter.
    pub fn adapter(&self) -> &Adapter<'w, M, I, O, K, T> {
        &self.model
    }
}

impl<'w, T, const X: usize> LinkServer<'w, T, X> {
    /// A server of `model` with no `w*` loaded (call [`LinkServer::load_slots`]). A `const fn`,
    /// for a `static`; its bytes are not all zero (`None` of the refusal reasons is not), so
    /// such a `static` is in `.data`, its size in flash too. Built in place at boot instead
    /// (`static_cell::StaticCell::init_with`, as the Omniglot firmware does), it is in `.bss`.
    ///
    /// ```
    /// use device::server::LinkServer;
    /// use device::ImageClassifier;
    /// use shared::body::BodySpec;
    /// const BODY: BodySpec<2> = BodySpec { side: 4, channels: [1, 2] };
    /// type C = ImageClassifier<'static, 2, 8, 2, 4, { BODY.scratch_len() }>;
    /// let server = LinkServer::<C, 16>::unloaded(C::unloaded(BODY));
    /// let s = server.status();
    /// assert_eq!((s.inputs, s.features, s.outputs, s.capacity), (16, 8, 2, 4));
    /// ```
    pub const fn unloaded(model: T) -> Self {
        Self {
            model,
            stage: Stage {
                values: [0.0; X],
                filled: 0,
            },
            slots: None,
            selection: Selection {
                live: None,
                generation: 0,
                refused: [None, None],
            },
            rx: CobsAccumulator::new(),
            pending: 0,
            skipping: false,
        }
    }

    /// The model.
    pub fn model(&self) -> &T {
        &self.model
    }
}

impl<'w, T: Served<'w>, const X: usize> LinkServer<'w, T, X> {
    /// Checks both slots and loads the newest valid blob, in place; the samples and the stage
    /// are dropped. Returns which slot serves and why the others were refused.
    pub fn load_slots(&mut self, slots: [&'w [u8]; 2]) -> Selection {
        self.slots = Some(slots);
        self.selection = load(&mut self.model, &mut self.stage, slots);
        self.selection
    }

    /// What [`Request::Status`] answers.
    pub fn status(&self) -> Status {
        status_of(&self.model, self.stage.filled, &self.selection)
    }

    /// Takes one byte from the link; at the end of a frame, answers into `out` and returns
    /// the response frame to send. Empty frames (a lone delimiter) are ignored.
    pub fn feed<'o>(
        &mut self,
        byte: u8,
        out: &'o mut [u8; MAX_FRAME],
        board: &mut impl Platform,
    ) -> Option<&'o [u8]> {
        if self.skipping {
            if byte == 0 {
                self.skipping = false;
                return Some(encode(&Response::Error(LinkError::TooLong), out));
            }
            return None;
        }
        if byte == 0 && self.pending == 0 {
            return None;
        }
        self.pending += 1;
        let response = match self.rx.feed_ref::<Request<'_>>(&[byte]) {
            FeedResult::Consumed => return None,
            FeedResult::OverFull(_) => {
                self.pending = 0;
                if byte != 0 {
                    self.skipping = true;
                    return None;
                }
                Response::Error(LinkError::TooLong)
            }
            FeedResult::DeserError(_) => {
                self.pending = 0;
                Response::Error(LinkError::Frame)
            }
            FeedResult::Success { data, .. } => {
                self.pending = 0;
                let mut scratch = [0u8; 4 * PARAMS_PER_FRAME as usize];
                if matches!(data, Request::Rescan) {
                    let slots = self.slots.unwrap_or([&[], &[]]);
                    self.selection = load(&mut self.model, &mut self.stage, slots);
                }
                let status = status_of(&self.model, self.stage.filled, &self.selection);
                let r = answer(
                    &mut self.model,
                    &mut self.stage,
                    status,
                    &self.selection,
                    data,
                    &mut scratch,
                    board,
                );
                return Some(encode(&r, out));
            }
        };
        Some(encode(&response, out))
    }
}

/// Answers one request. `scratch` holds the floats a response carries.
fn answer<'w, 's, T: Served<'w>, const X: usize>(
    m: &mut T,
    stage: &mut Stage<X>,
    status: Status,
    selection: &Selection,
    request: Request<'_>,
    scratch: &'s mut [u8],
    board: &mut impl Platform,
) -> Response<'s> {
    let (inputs, outputs) = (usize::from(status.inputs), usize::from(status.outputs));
    match request {
        Request::Status | Request::Rescan => Response::Status(status),
        Request::Memory => Response::Memory(board.memory()),
        _ if m.blob().is_none() => Response::Error(LinkError::NoBlob(why_none(selection))),
        Request::Push { x, y } => {
            if x.len() != 4 * inputs || y.len() != 4 * outputs {
                return Response::Error(length_error(x.len(), y.len(), inputs, outputs));
            }
            let r = with_floats(x, |x| {
                with_floats(y, |y| m.push_input(x, Target::Values(y)))
            });
            match r {
                Ok(n) => Response::Pushed { samples: n as u16 },
                Err(e) => Response::Error(LinkError::Push(e)),
            }
        }
        Request::ClearSamples => {
            m.clear_samples();
            Response::Cleared
        }
        Request::Reset => {
            m.reset();
            Response::Reset
        }
        Request::Adapt { steps, limit } => {
            let (r, ticks) = board.measure(|| m.adapt_by(steps, limit));
            match r {
                Ok(report) => Response::Adapted { report, ticks },
                Err(e) => Response::Error(LinkError::Adapt(e)),
            }
        }
        Request::Predict { x } => {
            if x.len() != 4 * inputs {
                return Response::Error(LinkError::Length {
                    expected: inputs as u16,
                    found: (x.len() / 4) as u16,
                });
            }
            let (r, ticks) = with_floats(x, |x| board.measure(|| m.predict_input(x)));
            match r {
                Ok(y) => Response::Prediction {
                    y: put_floats(y.as_ref(), scratch),
                    ticks,
                },
                Err(e) => Response::Error(LinkError::Adapt(e)),
            }
        }
        Request::PredictMany { xs } => {
            let n = xs.len() / (4 * inputs).max(1);
            if xs.len() != 4 * inputs * n || 4 * outputs * n > scratch.len() {
                return Response::Error(LinkError::Batch {
                    max: (scratch.len() / (4 * outputs).max(1)) as u16,
                });
            }
            let (r, ticks) = board.measure(|| {
                for (k, xb) in xs.chunks_exact(4 * inputs).enumerate() {
                    let y = with_floats(xb, |x| m.predict_input(x))?;
                    put_floats(
                        y.as_ref(),
                        &mut scratch[4 * outputs * k..4 * outputs * (k + 1)],
                    );
                }
                Ok(())
            });
            match r {
                Ok(()) => Response::Predictions {
                    ys: &scratch[..4 * outputs * n],
                    ticks,
                },
                Err(e) => Response::Error(LinkError::Adapt(e)),
            }
        }
        Request::ReadParams { offset, count } => {
            let params = status.params as usize;
            let end = offset as usize + count as usize;
            if count > PARAMS_PER_FRAME || end > params {
                return Response::Error(LinkError::Range {
                    params: params as u32,
                });
            }
            let mut k = 0usize;
            let mut n = 0usize;
            m.visit_params(&mut |s| {
                for v in s {
                    if k >= offset as usize && k < end {
                        scratch[4 * n..4 * n + 4].copy_from_slice(&v.to_le_bytes());
                        n += 1;
                    }
                    k += 1;
                }
            });
            Response::Params {
                offset,
                values: &scratch[..4 * n],
            }
        }
        Request::Stage { offset, values } => match stage.put(offset, values, inputs) {
            Ok(filled) => Response::Staged { filled },
            Err(e) => Response::Error(e),
        },
        Request::PushStaged { label } => {
            let x = match stage.take(inputs) {
                Ok(x) => x,
                Err(e) => return Response::Error(e),
            };
            let (r, ticks) = board.measure(|| m.push_input(x, Target::Label(label.into())));
            match r {
                Ok(n) => Response::PushedStaged {
                    samples: n as u16,
                    ticks,
                },
                Err(e) => Response::Error(LinkError::Push(e)),
            }
        }
        Request::ClassifyStaged => {
            let x = match stage.take(inputs) {
                Ok(x) => x,
                Err(e) => return Response::Error(e),
            };
            let (r, ticks) = board.measure(|| m.classify_input(x));
            match r {
                Ok((label, scores)) => Response::Classified {
                    label: label as u16,
                    scores: put_floats(scores.as_ref(), scratch),
                    ticks,
                },
                Err(e) => Response::Error(LinkError::Adapt(e)),
            }
        }
    }
}

impl<const X: usize> Stage<X> {
    /// Values the stage can be filled to for a model with `inputs` values.
    fn limit(inputs: usize) -> usize {
        inputs.min(X)
    }

    /// Writes `values` (LE bytes) from `offset` (0 starts the stage over); returns how far
    /// the stage is filled. A refused part changes nothing.
    fn put(&mut self, offset: u16, values: &[u8], inputs: usize) -> Result<u16, LinkError> {
        let at = usize::from(offset);
        let n = values.len() / 4;
        let continues = at == 0 || at == usize::from(self.filled);
        if !continues || !values.len().is_multiple_of(4) || at + n > Self::limit(inputs) {
            return Err(LinkError::Stage {
                filled: self.filled,
                expected: inputs as u16,
            });
        }
        for (v, f) in self.values[at..at + n].iter_mut().zip(floats(values)) {
            *v = f;
        }
        self.filled = (at + n) as u16;
        Ok(self.filled)
    }

    /// The complete input, emptying the stage (whether it was complete or not).
    fn take(&mut self, inputs: usize) -> Result<&[f32], LinkError> {
        let filled = core::mem::take(&mut self.filled);
        if usize::from(filled) != inputs || inputs > X {
            return Err(LinkError::Stage {
                filled,
                expected: inputs as u16,
            });
        }
        Ok(&self.values[..inputs])
    }
}

/// Calls `f` with the floats of `bytes` (a vector from one frame: at most [`MAX_FRAME`] / 4
/// values), decoded into a buffer on the stack. Kept out of line, so the buffer is on the
/// stack only for the requests that carry vectors.
#[inline(never)]
fn with_floats<R>(bytes: &[u8], f: impl FnOnce(&[f32]) -> R) -> R {
    let mut buf = [0.0f32; MAX_FRAME / 4];
    let mut n = 0;
    for (v, x) in buf.iter_mut().zip(floats(bytes)) {
        *v = x;
        n += 1;
    }
    f(&buf[..n])
}

/// Loads the newest valid blob of `slots` into `model`, in place, and empties the stage.
fn load<'w, T: Served<'w>, const X: usize>(
    model: &mut T,
    stage: &mut Stage<X>,
    slots: [&'w [u8]; 2],
) -> Selection {
    stage.filled = 0;
    let mut selection = select_by(slots, |b| model.check(b));
    let loaded = match selection.live {
        Some(i) => slot_blob_by(slots[i], |b| model.load(b)).map(drop),
        None => Err(BlobError::Erased),
    };
    if let (Err(e), Some(i)) = (loaded, selection.live) {
        // Checked a moment ago; only a change under our feet gets here.
        selection.refused[i] = Some(e);
        selection.live = None;
    }
    if selection.live.is_none() {
        model.unload();
    }
    selection
}

fn status_of<'w, T: Served<'w>>(m: &T, staged: u16, selection: &Selection) -> Status {
    let f = m.facts();
    Status {
        blob: match m.blob() {
            Some(b) => Ok(b.signature),
            None => Err(why_none(selection)),
        },
        slot: selection.live.map(|i| i as u8),
        generation: selection.generation,
        refused: selection.refused,
        inputs: f.inputs as u16,
        outputs: f.outputs as u16,
        capacity: f.capacity as u16,
        samples: m.samples() as u16,
        params: f.params as u32,
        steps_since_reset: m.steps_since_reset(),
        adapter_bytes: f.ram_bytes as u32,
        features: f.features as u16,
        body_params: f.body_params as u32,
        staged,
    }
}

/// Why no slot serves: slot A's reason (the primary slot), else B's.
fn why_none(s: &Selection) -> BlobError {
    s.refused[0].or(s.refused[1]).unwrap_or(BlobError::Erased)
}

fn length_error(x_bytes: usize, y_bytes: usize, i: usize, o: usize) -> LinkError {
    let (expected, found) = if x_bytes != 4 * i {
        (i, x_bytes / 4)
    } else {
        (o, y_bytes / 4)
    };
    LinkError::Length {
        expected: expected as u16,
        found: found as u16,
    }
}

/// Encodes `r` as a COBS frame in `out`. Every response fits [`MAX_FRAME`] by construction;
/// should one not, the device still answers, with [`LinkError::TooLong`].
fn encode<'o>(r: &Response<'_>, out: &'o mut [u8; MAX_FRAME]) -> &'o [u8] {
    let n = match postcard::to_slice_cobs(r, out) {
        Ok(f) => f.len(),
        Err(_) => postcard::to_slice_cobs(&Response::Error(LinkError::TooLong), out)
            .map_or(0, |f| f.len()),
    };
    &out[..n]
}
