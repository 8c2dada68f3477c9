//! An image classifier whose convolutional body stays in flash: only the dense head adapts,
//! so only the head's two parameter buffers, the K samples' features and one image's forward
//! pass take RAM (ANIL on a microcontroller).

use shared::body::{BodySpec, LeBytes};
use shared::math::Real;
use shared::model::Dense;
use shared::wstar::{Blob, BlobError};

use crate::adapter::{Adapter, Classified, Sample};
use crate::error::{AdaptError, PushErrorKind};
use crate::{AdaptReport, StepLimit};

/// Few-shot classification of images into `N` classes with a body of `C − 1` convolutions
/// (`F` features, `S` values of forward scratch) and a dense head adapted on up to `K`
/// support images in arithmetic `T`: the body always runs in `f32` (from flash); the head
/// adapts in `f32` or, on a core without an FPU, in fixed point ([`shared::fixed::Q20`]), its
/// features converted once per image.
///
/// ```
/// use device::ImageClassifier;
/// use shared::body::BodySpec;
/// use shared::model::{Dense, Params};
/// use shared::wstar::{encode_with_body, BodyShape, Meta};
/// const BODY: BodySpec<3> = BodySpec { side: 8, channels: [1, 4, 4] };
/// const F: usize = BODY.features();
/// type Head = Dense<f32, F, 2>;
/// # let meta = Meta::new::<Head, F, 2>(shared::loss::Loss::SoftmaxCrossEntropy, 5);
/// # let weights: Vec<f32> = (0..BODY.params()).map(|k| ((k * 13 % 7) as f32 - 3.0) / 5.0).collect();
/// # let blob = encode_with_body(&meta, &vec![0.0; Head::PARAMS], &[0.5],
/// #     [&[0.0; F], &[1.0; F], &[0.0; 2], &[1.0; 2]], Some((&BodyShape::of(&BODY), &weights))).unwrap();
/// // `blob` holds the body's weights and the head's θ0.
/// let mut c = ImageClassifier::<3, F, 2, 4, { BODY.scratch_len() }>::unloaded(BODY);
/// c.load(&blob).unwrap();
/// let (dark, light) = ([0.9f32; 64], [0.1f32; 64]);
/// c.push(&dark, 0).unwrap();
/// c.push(&light, 1).unwrap();
/// c.adapt().unwrap();
/// assert_eq!(c.classify(&dark).unwrap().label, 0);
/// assert_eq!(c.classify(&light).unwrap().label, 1);
/// assert!(c.push(&[f32::NAN; 64], 0).is_err());
/// // The head in fixed point, for a core without an FPU: the same blob, the same answers.
/// let mut q = ImageClassifier::<3, F, 2, 4, { BODY.scratch_len() }, device::fixed::Q20>::unloaded(BODY);
/// q.load(&blob).unwrap();
/// q.push(&dark, 0).unwrap();
/// q.push(&light, 1).unwrap();
/// q.adapt().unwrap();
/// assert_eq!(q.classify(&light).unwrap().label, 1);
/// ```
pub struct ImageClassifier<
    'w,
    const C: usize,
    const F: usize,
    const N: usize,
    const K: usize,
    const S: usize,
    T: Real = f32,
> {
    body: BodySpec<C>,
    head: Adapter<'w, Dense<T, F, N>, F, N, K, T>,
    scratch: [f32; S],
}

impl<
        'w,
        const C: usize,
        const F: usize,
        const N: usize,
        const K: usize,
        const S: usize,
        T: Real,
    > ImageClassifier<'w, C, F, N, K, S, T>
{
    /// Bytes of RAM the classifier occupies: the head's adapter (two head parameter buffers,
    /// K samples' features, its cache) and one image's forward scratch. The body's weights
    /// are not in it: they are read from the blob in place.
    pub const RAM_BYTES: usize = core::mem::size_of::<Self>();

    /// A classifier with no `w*` for `body`. A `const fn`, so a firmware keeps it in a
    /// `static`. Sizes are checked when it is evaluated (at compile time in a constant): `F`
    /// must be the body's features and `S` at least its scratch.
    pub const fn unloaded(body: BodySpec<C>) -> Self {
        assert!(body.features() == F, "F must be the body's feature count");
        assert!(body.scratch_len() <= S, "S must hold the body's scratch");
        Self {
            body,
            head: Adapter::UNLOADED,
            scratch: [0.0; S],
        }
    }

    /// Validates `blob` (as [`Adapter::load`], and that it carries this body) and starts
    /// from its `θ0`; the samples are dropped. A refused blob leaves the classifier empty.
    pub fn load(&mut self, blob: &'w [u8]) -> Result<(), BlobError> {
        self.head.load_on(blob, &self.body)
    }

    /// Drops the blob and the samples.
    pub fn unload(&mut self) {
        self.head.unload();
    }

    /// The validated blob, if one is loaded.
    pub fn blob(&self) -> Option<&Blob<'w>> {
        self.head.blob()
    }

    /// The head's adapter (its parameters, samples and steps).
    pub fn head(&self) -> &Adapter<'w, Dense<T, F, N>, F, N, K, T> {
        &self.head
    }

    /// Values an image has.
    pub const fn inputs(&self) -> usize {
        self.body.inputs()
    }

    /// The body's features of `image` (the mean over its shifted views when `w*` says so:
    /// [`shared::body::Views`]).
    pub fn features(&mut self, image: &[f32]) -> Result<[f32; F], AdaptError> {
        let blob = self.head.blob().ok_or(AdaptError::NoBlob)?;
        if image.len() != self.body.inputs() {
            return Err(AdaptError::InputSize {
                expected: self.body.inputs() as u32,
                found: image.len() as u32,
            });
        }
        if !image.iter().all(|v| v.is_finite()) {
            return Err(AdaptError::NonFiniteInput);
        }
        let weights = blob.body().map_or(LeBytes(&[]), |(_, w)| w);
        let mut out = [0.0; F];
        self.body
            .forward_views(&weights, image, blob.views, &mut self.scratch, &mut out)
            // Sizes were checked at load and above; a body that still refuses has no model.
            .map_err(|_| AdaptError::NoBlob)?;
        Ok(out)
    }

    /// Adds a support image with its class.
    pub fn push(&mut self, image: &[f32], label: usize) -> Result<(), PushErrorKind> {
        if label >= N {
            return Err(PushErrorKind::Shape);
        }
        let x = self.features(image).map_err(|e| match e {
            AdaptError::NoBlob => PushErrorKind::NoBlob,
            AdaptError::NonFiniteInput => PushErrorKind::NonFinite,
            _ => PushErrorKind::Shape,
        })?;
        let mut y = [0.0; N];
        y[label] = 1.0;
        self.head.push(Sample { x, y }).map_err(|e| e.kind)
    }

    /// Drops the support images (the head stays as it is).
    pub fn clear_samples(&mut self) {
        self.head.clear_samples();
    }

    /// Back to the head's `θ0`; the samples stay.
    pub fn reset(&mut self) {
        self.head.reset();
    }

    /// The inner steps `w*` was trained for (see [`Adapter::adapt`]).
    pub fn adapt(&mut self) -> Result<AdaptReport, AdaptError> {
        self.head.adapt()
    }

    /// `steps` inner steps (see [`Adapter::adapt_steps`]).
    pub fn adapt_steps(&mut self, steps: u16, limit: StepLimit) -> Result<AdaptReport, AdaptError> {
        self.head.adapt_steps(steps, limit)
    }

    /// The class of `image` and every class's score.
    pub fn classify(&mut self, image: &[f32]) -> Result<Classified<N>, AdaptError> {
        let x = self.features(image)?;
        self.head.classify(&x)
    }
}
