//! The adapter: `w*` in flash, the K samples and the adapted parameters in RAM.

use nalgebra::SMatrix;
use shared::body::BodySpec;
use shared::inner;
use shared::loss::{softmax, Loss};
use shared::math::Real;
use shared::model::{Layers, Params, Zeroed, MAX_LAYERS};
use shared::report::MAX_NORMALISED;
pub use shared::report::{AdaptReport, Guard, StepLimit};
use shared::wstar::{AlphaKind, Blob, BlobError, HeadStart};

use crate::error::{AdaptError, PushError, PushErrorKind};

/// How many times a step beyond the trained ones that raises the loss on the samples (or
/// diverges) is retried at half the length before the guard undoes it and ends the
/// adaptation (see [`Adapter::adapt_steps`]).
pub const BACKTRACKS: u8 = 8;

/// How the steps beyond the trained ones go (see [`Adapter::adapt_steps`]).
///
/// ```
/// use device::ExtraSteps;
/// assert_eq!(ExtraSteps::STOP.backtracks, 0);
/// assert_eq!(ExtraSteps::DEFAULT.backtracks, device::BACKTRACKS);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExtraSteps {
    /// Retries at half the length of an extra step that raises the loss on the samples (or
    /// diverges) before the guard undoes it and ends the adaptation; 0 stops at the first.
    pub backtracks: u8,
    /// At most this many doublings of an extra step's length: two extra steps in a row taken
    /// at their first length start the next one at twice that length (capped at `2^growth`
    /// times `α`'s), each retry halves it and the next starts there (a "bold driver" line
    /// search). 0: every extra step starts at `α`'s length; above 30 counts as 30.
    pub growth: u8,
}

impl ExtraSteps {
    /// The guard's default for one `α` for every parameter: [`BACKTRACKS`] retries, steps
    /// growing to [`GROWTH`] doublings.
    pub const DEFAULT: Self = Self {
        backtracks: BACKTRACKS,
        growth: GROWTH,
    };

    /// The guard's default for a blob whose step sizes are `alpha`: [`ExtraSteps::DEFAULT`]
    /// for one `α` and for one per parameter (both chosen on validation tasks, see
    /// `docs/results.md`); without growth for per-layer, per-step sizes (LSLR), whose extra
    /// steps were not validated with it.
    ///
    /// ```
    /// use device::ExtraSteps;
    /// use shared::wstar::AlphaKind;
    /// assert_eq!(ExtraSteps::default_for(AlphaKind::Scalar), ExtraSteps::DEFAULT);
    /// assert_eq!(ExtraSteps::default_for(AlphaKind::PerLayerPerStep).growth, 0);
    /// ```
    pub const fn default_for(alpha: AlphaKind) -> Self {
        match alpha {
            AlphaKind::Scalar | AlphaKind::PerParameter => Self::DEFAULT,
            AlphaKind::PerLayerPerStep => Self {
                backtracks: BACKTRACKS,
                growth: 0,
            },
        }
    }
    /// The first extra step that raises the loss is undone and ends the adaptation.
    pub const STOP: Self = Self {
        backtracks: 0,
        growth: 0,
    };
}

/// How many doublings of `α`'s length an extra step may grow to (see [`ExtraSteps::growth`]),
/// chosen on validation tasks of the sinusoid (`meta-train bench --quality`): from 2 on, the
/// mean MSE after 5 and 10 steps changed by at most 0.0001.
pub const GROWTH: u8 = 2;

/// One target-train sample, in the user's units (the adapter normalises it).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sample<const I: usize, const O: usize> {
    /// Inputs.
    pub x: [f32; I],
    /// Targets (for classification: one-hot).
    pub y: [f32; O],
}

/// A classifier's answer for one input.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Classified<const O: usize> {
    /// The class with the largest score.
    pub label: usize,
    /// Softmax probability of each class.
    pub scores: [f32; O],
}

/// Few-shot adaptation of model `M` (`I` inputs, `O` outputs) on up to `K` samples, in the
/// arithmetic `T` of `M`: `f32`, or fixed point on a core without an FPU (`Mlp2<Q20, 1, 40,
/// 40, 1>` adapted by an `Adapter<…, Q20>`, see [`shared::fixed`]).
///
/// Holds two parameter buffers (the live one and the candidate of the next step, so a
/// diverging step is undone exactly), the samples, and the forward-pass cache. `θ0` and `α`
/// are read from the blob in place (flash on a device), converted to `T` where they are used.
/// Samples and answers are `f32` in the user's units whatever `T` is.
///
/// ```
/// use device::{Adapter, Sample};
/// use shared::fixed::Q20;
/// use shared::model::{Mlp1, Params};
/// # let meta = shared::wstar::Meta::new::<Mlp1<f32, 1, 8, 1>, 1, 1>(shared::loss::Loss::Mse, 3);
/// # let theta: Vec<f32> = (0..Mlp1::<f32, 1, 8, 1>::PARAMS).map(|k| ((k * 37 % 11) as f32 - 5.0) / 10.0).collect();
/// # let flash = shared::wstar::encode(&meta, &theta, &[0.05], &[0.0], &[1.0], &[0.0], &[1.0]).unwrap();
/// // The same float w* as the f32 adapter's, adapted in integers.
/// let mut a = Adapter::<Mlp1<Q20, 1, 8, 1>, 1, 1, 5, Q20>::new(&flash).unwrap();
/// for x in [-1.0f32, -0.5, 0.0, 0.5, 1.0] {
///     a.push(Sample { x: [x], y: [2.0 * x] }).unwrap();
/// }
/// let report = a.adapt().unwrap();
/// assert!(report.loss_after < report.loss_before);
/// ```
pub struct Adapter<'w, M, const I: usize, const O: usize, const K: usize, T: Real = f32>
where
    M: Layers<T, I, O>,
{
    /// [`Blob::EMPTY`] while nothing is loaded.
    blob: Blob<'w>,
    params: [M; 2],
    live: usize,
    steps_since_reset: u32,
    /// The class prototypes were added since the last reset ([`HeadStart::Prototypes`]).
    primed: bool,
    /// The next extra step's length, `α`'s times `2^extra_log2` ([`ExtraSteps::growth`]).
    extra_log2: i8,
    /// The last extra step was taken at its first length.
    extra_streak: bool,
    /// The samples' inputs, normalised, one per column; columns from `n` on are zero. Kept as
    /// the batch itself, so adapting copies nothing onto the stack.
    xs: SMatrix<T, I, K>,
    /// Their targets, normalised, likewise.
    ys: SMatrix<T, O, K>,
    /// Samples held.
    n: usize,
    cache: M::Cache<K>,
    dy: SMatrix<T, O, K>,
}

impl<'w, M, const I: usize, const O: usize, const K: usize, T: Real> Adapter<'w, M, I, O, K, T>
where
    M: Layers<T, I, O>,
{
    /// No sum of the model's kernels has more terms than `T`'s accumulator holds: a compile
    /// error for a fixed-point adapter of a layer or capacity wider than
    /// [`Real::MAX_TERMS`].
    const SUMS_FIT: () = assert!(
        K <= T::MAX_TERMS && M::WIDEST <= T::MAX_TERMS,
        "a layer width or the capacity K is above the arithmetic's Real::MAX_TERMS"
    );

    /// Bytes of RAM the adapter itself occupies (two parameter buffers, the sample buffer,
    /// the forward cache and the blob view); the stack of `adapt` comes on top.
    ///
    /// ```
    /// type A = device::Adapter<'static, shared::model::Mlp2<f32, 1, 40, 40, 1>, 1, 1, 10>;
    /// assert!(A::RAM_BYTES > 2 * 1761 * 4);
    /// ```
    pub const RAM_BYTES: usize = core::mem::size_of::<Self>();

    /// An adapter with no `w*`: it refuses to adapt, predict or take samples until
    /// [`Adapter::load`] succeeds. A constant, so a firmware keeps its adapter in a `static`
    /// (zero-initialised RAM) and loads `w*` in place instead of building it on the stack.
    ///
    /// ```
    /// use device::{AdaptError, Adapter};
    /// type A = Adapter<'static, shared::model::Mlp1<f32, 1, 4, 1>, 1, 1, 3>;
    /// let a = A::UNLOADED;
    /// assert_eq!(a.predict(&[0.0]), Err(AdaptError::NoBlob));
    /// ```
    pub const UNLOADED: Self = {
        #[allow(clippy::let_unit_value)] // evaluates the check
        let () = Self::SUMS_FIT;
        Self {
            blob: Blob::EMPTY,
            params: [M::ZERO, M::ZERO],
            live: 0,
            steps_since_reset: 0,
            primed: false,
            extra_log2: 0,
            extra_streak: false,
            xs: SMatrix::ZERO,
            ys: SMatrix::ZERO,
            n: 0,
            cache: <M::Cache<K> as Zeroed>::ZERO,
            dy: SMatrix::ZERO,
        }
    };

    /// Validates `blob` (magic, version, signature, length, CRC, finite values, and for fixed
    /// point `θ0` and `α` inside its range) and starts at `θ0`.
    pub fn new(blob: &'w [u8]) -> Result<Self, BlobError> {
        let mut a = Self::UNLOADED;
        a.load(blob)?;
        Ok(a)
    }

    /// Validates `blob` as [`Adapter::new`] does and starts over from its `θ0`, in place: the
    /// samples are dropped. If the blob is refused the adapter is left without one.
    pub fn load(&mut self, blob: &'w [u8]) -> Result<(), BlobError> {
        self.unload();
        let parsed = Blob::parse_for::<M, I, O>(blob)?;
        self.serve(parsed)
    }

    /// As [`Adapter::load`], for a blob whose model `M` is the head on a convolutional `body`
    /// (its features are this adapter's inputs); the body's weights stay in the blob, in
    /// place.
    pub fn load_on<const C: usize>(
        &mut self,
        blob: &'w [u8],
        body: &BodySpec<C>,
    ) -> Result<(), BlobError> {
        self.unload();
        let parsed = Blob::parse_on::<M, I, O, C>(blob, body)?;
        self.serve(parsed)
    }

    /// Serves a parsed blob whose values `T` holds, from its `θ0`.
    fn serve(&mut self, blob: Blob<'w>) -> Result<(), BlobError> {
        if let Some(e) = blob.out_of_range::<T>() {
            return Err(e);
        }
        self.blob = blob;
        self.reset();
        Ok(())
    }

    /// Drops the blob and the samples: the adapter refuses everything until [`Adapter::load`].
    pub fn unload(&mut self) {
        self.blob = Blob::EMPTY;
        self.clear_samples();
    }

    /// The validated blob, if one is loaded.
    pub fn blob(&self) -> Option<&Blob<'w>> {
        loaded(&self.blob)
    }

    /// The live parameters.
    pub fn params(&self) -> &M {
        &self.params[self.live]
    }

    /// Samples held.
    pub fn len(&self) -> usize {
        self.n
    }

    /// No samples held.
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// Inner steps taken since the last reset.
    pub fn steps_since_reset(&self) -> u32 {
        self.steps_since_reset
    }

    /// Adds a target-train sample; a full buffer, a NaN/Inf value or a value far outside the
    /// training data (see [`shared::report::MAX_NORMALISED`]) hands it back.
    pub fn push(&mut self, sample: Sample<I, O>) -> Result<(), PushError<I, O>> {
        let Some(blob) = loaded(&self.blob) else {
            return Err(PushError {
                kind: PushErrorKind::NoBlob,
                sample,
            });
        };
        let finite = sample.x.iter().chain(&sample.y).all(|v| v.is_finite());
        // Normalised one value at a time, checked, then written into the sample's column: no
        // normalised copy of the sample on the stack (the 20-way classifier's stack peak).
        let mut values = normalised(blob, &sample);
        let kind = if !finite || !values.clone().all(|v| v.is_finite()) {
            Some(PushErrorKind::NonFinite)
        } else if values.any(|v| v.abs() > MAX_NORMALISED || !T::from_f32(v).is_finite()) {
            Some(PushErrorKind::OutOfRange)
        } else {
            None
        };
        if let Some(kind) = kind {
            return Err(PushError { kind, sample });
        }
        if self.n == K {
            return Err(PushError {
                kind: PushErrorKind::Full,
                sample,
            });
        }
        let column = self.xs.column_mut(self.n).into_iter();
        let targets = self.ys.column_mut(self.n).into_iter();
        for (to, v) in column.chain(targets).zip(normalised(blob, &sample)) {
            *to = T::from_f32(v);
        }
        self.n += 1;
        Ok(())
    }

    /// Drops the samples (the parameters stay as they are).
    pub fn clear_samples(&mut self) {
        // Zero, not stale: padding columns take part in the forward pass.
        self.xs.as_mut_slice().fill(T::ZERO);
        self.ys.as_mut_slice().fill(T::ZERO);
        self.n = 0;
    }

    /// Back to `θ0` from `w*`; the samples stay.
    pub fn reset(&mut self) {
        if let Some(blob) = loaded(&self.blob) {
            blob.load_theta0(&mut self.params[0]);
        }
        self.live = 0;
        self.steps_since_reset = 0;
        self.primed = false;
        self.extra_log2 = 0;
        self.extra_streak = false;
    }

    /// Runs the inner steps `w*` was trained for that have not run since the last reset.
    pub fn adapt(&mut self) -> Result<AdaptReport, AdaptError> {
        let trained = loaded(&self.blob).ok_or(AdaptError::NoBlob)?.meta.steps;
        let left = u32::from(trained).saturating_sub(self.steps_since_reset);
        self.adapt_steps(left.min(u32::from(u16::MAX)) as u16, StepLimit::Trained)
    }

    /// Runs `steps` inner steps from the live parameters.
    ///
    /// For a `w*` whose head starts from class prototypes ([`HeadStart::Prototypes`]), the
    /// first adaptation after a reset first adds the prototypes of the samples held to the
    /// output layer (even for zero steps); `loss_before` is the loss there. Samples pushed
    /// later count from the next reset on.
    ///
    /// The divergence guard undoes a step, exactly, and ends the adaptation (see
    /// [`AdaptReport::undone`] and [`AdaptReport::cause`]) when its loss on the samples is
    /// non-finite or above the bound in `w*`. The trained steps are kept even when they raise
    /// the loss on the samples, because meta-training optimised them for the loss on unseen
    /// points. A step beyond those is plain fine-tuning: when it raises the loss (or diverges)
    /// it is retried at half the length, up to [`BACKTRACKS`] times (a backtracking line
    /// search along the step, in the candidate's buffer), and only then undone, ending the
    /// adaptation. Full-batch gradient descent climbs only when its step is too long for the
    /// local curvature, so a shorter one goes on descending where stopping would not. Two
    /// extra steps in a row taken at their first length let the next start twice as long, up
    /// to [`GROWTH`] doublings of `α`'s length, and each retry halves it (not for LSLR's
    /// step sizes: [`ExtraSteps::default_for`]); the length carries over between calls until
    /// [`Adapter::reset`].
    pub fn adapt_steps(&mut self, steps: u16, limit: StepLimit) -> Result<AdaptReport, AdaptError> {
        let alpha = loaded(&self.blob).ok_or(AdaptError::NoBlob)?.meta.alpha;
        self.adapt_steps_with(steps, limit, ExtraSteps::default_for(alpha))
    }

    /// [`Adapter::adapt_steps`] with the extra steps as `extra` says: fewer retries bound an
    /// adaptation's worst case to fewer forward passes ([`ExtraSteps::STOP`]: the guard undoes
    /// the first extra step that raises the loss).
    ///
    /// ```
    /// use device::{Adapter, Sample, StepLimit};
    /// type Net = shared::model::Mlp1<f32, 1, 4, 1>;
    /// # use shared::model::Params;
    /// let meta = shared::wstar::Meta::new::<Net, 1, 1>(shared::loss::Loss::Mse, 1);
    /// let theta: Vec<f32> = (0..Net::PARAMS).map(|k| ((k * 7 % 5) as f32 - 2.0) / 4.0).collect();
    /// let blob = shared::wstar::encode(&meta, &theta, &[0.4], &[0.0], &[1.0], &[0.0], &[1.0]).unwrap();
    /// let mut a = Adapter::<Net, 1, 1, 4>::new(&blob).unwrap();
    /// for x in [-1.0, -0.5, 0.5, 1.0] {
    ///     a.push(Sample { x: [x], y: [x * x] }).unwrap();
    /// }
    /// let extra = device::ExtraSteps { backtracks: 2, growth: 1 };
    /// let r = a.adapt_steps_with(20, StepLimit::Unchecked, extra).unwrap();
    /// assert!(r.loss_after <= r.loss_before);
    /// ```
    pub fn adapt_steps_with(
        &mut self,
        steps: u16,
        limit: StepLimit,
        extra_steps: ExtraSteps,
    ) -> Result<AdaptReport, AdaptError> {
        let blob = loaded(&self.blob).ok_or(AdaptError::NoBlob)?;
        let requested = self.steps_since_reset + u32::from(steps);
        if limit == StepLimit::Trained && requested > u32::from(blob.meta.steps) {
            return Err(AdaptError::TooManySteps {
                requested,
                allowed: blob.meta.steps,
            });
        }
        let n = self.n;
        if n == 0 {
            return Err(AdaptError::NoSamples);
        }
        if blob.start == HeadStart::Prototypes && !self.primed {
            self.params[self.live].start_from_prototypes(&self.xs, &self.ys, &mut self.cache);
            self.primed = true;
        }
        let (x, y) = (&self.xs, &self.ys);
        let loss = blob.meta.loss;
        let bound = T::from_f32(blob.meta.loss_bound);
        loss.outputs_into(&self.params[self.live], x, &mut self.cache, &mut self.dy);
        let loss_before = loss.value_grad_in_place(&mut self.dy, y, n);
        if !loss_before.is_finite() {
            return Err(AdaptError::NonFiniteLoss);
        }
        let trained = u32::from(blob.meta.steps);
        let mut loss_after = loss_before;
        let mut report = AdaptReport {
            loss_before: loss_before.to_f32(),
            loss_after: loss_before.to_f32(),
            steps: 0,
            undone: None,
            cause: None,
        };
        for s in 0..steps {
            let [a, b] = &mut self.params;
            let (theta, next) = if self.live == 0 { (&*a, b) } else { (&*b, a) };
            theta.backward(x, &mut self.cache, &self.dy, next, None);
            StepAlpha::<T>::of(blob, self.steps_since_reset as usize).step(blob, theta, next);
            let extra = self.steps_since_reset >= trained;
            if extra && self.extra_log2 != 0 {
                inner::stretch_step(theta, next, T::from_f32(pow2(self.extra_log2)));
            }
            let mut halvings = 0;
            let cause = loop {
                loss.outputs_into(next, x, &mut self.cache, &mut self.dy);
                let l = loss.value_grad_in_place(&mut self.dy, y, n);
                // The guard: a step whose loss is non-finite or above w*'s bound, or, past the
                // steps w* was trained for, one that raises the loss, is not taken as it is.
                let cause = if !l.is_finite() {
                    Some(Guard::NonFinite)
                } else if l > bound {
                    Some(Guard::AboveBound)
                } else if extra && l > loss_after {
                    Some(Guard::Rose)
                } else {
                    loss_after = l;
                    None
                };
                if cause.is_none() || !extra || halvings == extra_steps.backtracks {
                    break cause;
                }
                inner::halve_step(theta, next);
                halvings += 1;
            };
            if cause.is_some() {
                report.undone = Some(s);
                report.cause = cause;
                break;
            }
            if extra && extra_steps.growth > 0 {
                // Twice as long after two steps in a row taken at their first length; as long
                // as the step just taken after a retry; within [-BACKTRACKS, growth].
                let taken = i16::from(self.extra_log2) - i16::from(halvings);
                let grow = halvings == 0 && self.extra_streak;
                self.extra_streak = halvings == 0 && !grow;
                // Longest: 2^growth, at most 2^30, and a factor T holds (2^4 in Q10H's ±32).
                let mut highest = i16::from(extra_steps.growth.min(30));
                while highest > 0 && !T::from_f32(pow2(highest as i8)).is_finite() {
                    highest -= 1;
                }
                let lowest = -(BACKTRACKS as i16);
                let next = taken + i16::from(grow);
                self.extra_log2 = next.clamp(lowest, highest) as i8;
            }
            self.live = 1 - self.live;
            self.steps_since_reset += 1;
            report.steps += 1;
        }
        report.loss_after = loss_after.to_f32();
        Ok(report)
    }

    /// The model's output for `x` with the live parameters, in the user's units (for a
    /// classifier in fixed point, its logits shifted so the largest is 0; [`Adapter::classify`]
    /// gives its probabilities).
    pub fn predict(&self, x: &[f32; I]) -> Result<[f32; O], AdaptError> {
        let (blob, out) = self.outputs(x)?;
        let mut y = [0.0; O];
        for (i, y) in y.iter_mut().enumerate() {
            let (mean, std) = blob.output_norm(i);
            *y = out[i].to_f32() * std + mean;
        }
        Ok(y)
    }

    /// The class of `x` (the largest score; the first on a tie) and every class's score
    /// (softmax probability), for a `w*` trained with softmax cross-entropy.
    ///
    /// ```
    /// use device::{AdaptError, Adapter};
    /// type Net = shared::model::Mlp1<f32, 2, 4, 3>;
    /// # use shared::model::Params;
    /// let meta = shared::wstar::Meta::new::<Net, 2, 3>(shared::loss::Loss::SoftmaxCrossEntropy, 1);
    /// let theta: Vec<f32> = (0..Net::PARAMS).map(|k| ((k * 7 % 5) as f32 - 2.0) / 4.0).collect();
    /// let blob = shared::wstar::encode(&meta, &theta, &[0.1], &[0.0; 2], &[1.0; 2], &[0.0; 3], &[1.0; 3]).unwrap();
    /// let a = Adapter::<Net, 2, 3, 5>::new(&blob).unwrap();
    /// let c = a.classify(&[0.5, -1.0]).unwrap();
    /// assert!(c.label < 3 && (c.scores.iter().sum::<f32>() - 1.0).abs() < 1e-6);
    /// ```
    pub fn classify(&self, x: &[f32; I]) -> Result<Classified<O>, AdaptError> {
        let (blob, out) = self.outputs(x)?;
        if blob.meta.loss != Loss::SoftmaxCrossEntropy {
            return Err(AdaptError::NotAClassifier);
        }
        let (scores, _) = softmax(&out, 0);
        let mut label = 0;
        for (i, &s) in scores.iter().enumerate() {
            if s > scores[label] {
                label = i;
            }
        }
        Ok(Classified {
            label,
            scores: scores.map(T::to_f32),
        })
    }

    /// The model's raw outputs for `x` (normalised as in training; a fixed-point classifier's
    /// logits shifted so the largest is 0: [`Loss::outputs_into`]), with the blob.
    fn outputs(&self, x: &[f32; I]) -> Result<(&Blob<'w>, SMatrix<T, O, 1>), AdaptError> {
        let blob = loaded(&self.blob).ok_or(AdaptError::NoBlob)?;
        let mut xn = SMatrix::<T, I, 1>::ZERO;
        for (i, v) in x.iter().enumerate() {
            let (mean, std) = blob.input_norm(i);
            // NaN and infinities saturate a fixed-point value: the check below catches them.
            xn[i] = T::from_f32((v - mean) / std);
        }
        if !xn.iter().all(|v| Real::is_finite(*v)) {
            return Err(AdaptError::NonFiniteInput);
        }
        let (mut cache, mut out) = (M::new_cache::<1>(), SMatrix::ZERO);
        let model = &self.params[self.live];
        blob.meta
            .loss
            .outputs_into(model, &xn, &mut cache, &mut out);
        Ok((blob, out))
    }
}

/// The step sizes of one inner step in `T`: one per layer (LSLR's, or MAML's one α in every
/// layer), converted once per step rather than once per parameter, or per parameter
/// (Meta-SGD), read from the blob as they are used.
enum StepAlpha<T: Real> {
    PerLayer([T::Scale; MAX_LAYERS]),
    PerParameter,
}

impl<T: Real> StepAlpha<T> {
    fn of(blob: &Blob<'_>, step: usize) -> Self {
        match blob.meta.alpha {
            AlphaKind::PerParameter => StepAlpha::PerParameter,
            // Scalar: index 0 for every layer.
            _ => StepAlpha::PerLayer(core::array::from_fn(|l| {
                if l < blob.meta.layers() {
                    T::scale_from_f32(blob.step_alpha(l, 0, step))
                } else {
                    T::scale_from_f32(0.0)
                }
            })),
        }
    }

    /// [`inner::step`] with these step sizes, their kind matched once rather than once per
    /// parameter (that match cost 6% of a step on the Cortex-M4F).
    #[inline(never)]
    fn step<P: Params<T>>(&self, blob: &Blob<'_>, theta: &P, next: &mut P) {
        let mask = blob.meta.adapt;
        match self {
            StepAlpha::PerLayer(a) => inner::step(
                theta,
                next,
                |l, _| a.get(l).copied().unwrap_or(T::scale_from_f32(0.0)),
                mask,
            ),
            StepAlpha::PerParameter => {
                inner::step(theta, next, |_, k| T::scale_from_f32(blob.alpha(k)), mask)
            }
        }
    }
}

/// The blob, unless it is the placeholder of an adapter with nothing loaded.
fn loaded<'a, 'w>(blob: &'a Blob<'w>) -> Option<&'a Blob<'w>> {
    (!blob.is_empty()).then_some(blob)
}

/// `s` in the units the model was trained in.
fn normalised<'a, const I: usize, const O: usize>(
    blob: &'a Blob<'_>,
    s: &'a Sample<I, O>,
) -> impl Iterator<Item = f32> + Clone + 'a {
    let x = s.x.iter().enumerate().map(|(i, &v)| {
        let (mean, std) = blob.input_norm(i);
        (v - mean) / std
    });
    let y = s.y.iter().enumerate().map(|(i, &v)| {
        let (mean, std) = blob.output_norm(i);
        (v - mean) / std
    });
    x.chain(y)
}

/// `2^e` for a small `e`, exactly.
fn pow2(e: i8) -> f32 {
    if e >= 0 {
        (1u32 << e.unsigned_abs().min(30)) as f32
    } else {
        1.0 / (1u32 << e.unsigned_abs().min(30)) as f32
    }
}
