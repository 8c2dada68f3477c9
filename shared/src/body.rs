//! A convolutional body: a stack of 3×3, stride-2, padding-1 convolutions, each followed by a
//! ReLU, that turns an image into the features a dense head classifies.
//!
//! The device only runs the body forward, one image at a time, with its weights read in place
//! from flash ([`LeBytes`]). [`BodySpec::trace`] and [`BodySpec::backward`] run it forward
//! and backward on `f32` or `f64` slices, one image at a time: the reference that the
//! finite-difference tests check, and that the host trainer's batched kernels
//! (`meta_train::model::body`) must equal bit for bit.
//!
//! Activations are stored pixel-major (height, width, channel): a pixel's channels are
//! contiguous. A layer's weights are a `c_out × 9·c_in` matrix, column-major (the `c_out`
//! weights of one patch entry are contiguous), then `c_out` biases. Patch entries run over
//! `(ky, kx, c_in)`, `c_in` fastest. Each output starts from its bias and adds the patch
//! entries in that order, on every target.
//!
//! ```
//! use shared::body::{BodySpec, Conv};
//! const NET: BodySpec<3> = BodySpec { side: 28, channels: [1, 8, 16] };
//! assert_eq!(NET.conv(0), Conv { side: 28, c_in: 1, c_out: 8 });
//! assert_eq!(NET.conv(1).out_side(), 7);
//! assert_eq!(NET.features(), 7 * 7 * 16);
//! assert_eq!(NET.params(), (9 * 8 + 8) + (9 * 8 * 16 + 16));
//! let w = vec![0.01f32; NET.params()];
//! let mut scratch = [0.0f32; NET.scratch_len()];
//! let features = NET.forward(&w[..], &[0.5; 28 * 28], &mut scratch).unwrap();
//! assert_eq!(features.len(), NET.features());
//! ```

use serde::{Deserialize, Serialize};

use crate::math::Real;

/// The Omniglot body: four 3×3 stride-2 convolutions, 28×28×1 → 14×14×16 → 7×7×32 → 4×4×32
/// → 2×2×32, i.e. 128 features, 23,296 weights (93 KB of flash) and 0.44 M multiply-adds per
/// image. Stride 2 instead of convolution-plus-pooling keeps every activation a quarter of the
/// size, so one image's forward pass needs 20 KB of scratch on the device. The firmware and
/// the host trainer name it from here.
///
/// ```
/// use shared::body::OMNIGLOT_BODY;
/// assert_eq!((OMNIGLOT_BODY.features(), OMNIGLOT_BODY.params()), (128, 23_296));
/// assert_eq!(OMNIGLOT_BODY.scratch_len(), 4_992);
/// ```
pub const OMNIGLOT_BODY: BodySpec<5> = BodySpec {
    side: 28,
    channels: [1, 16, 32, 32, 32],
};

/// Most convolutions a body may have.
pub const MAX_CONVS: usize = 6;

/// One 3×3 convolution with stride 2 and zero padding 1, then a ReLU: `side × side × c_in` in,
/// `out_side × out_side × c_out` out.
///
/// ```
/// use shared::body::Conv;
/// let c = Conv { side: 28, c_in: 1, c_out: 16 };
/// assert_eq!((c.out_side(), c.outputs(), c.params()), (14, 14 * 14 * 16, 9 * 16 + 16));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv {
    /// Input height and width.
    pub side: usize,
    /// Input channels.
    pub c_in: usize,
    /// Output channels.
    pub c_out: usize,
}

impl Conv {
    /// Output height and width: `⌈side / 2⌉`.
    pub const fn out_side(&self) -> usize {
        self.side.div_ceil(2)
    }
    /// Entries of one input patch (`9 · c_in`).
    pub const fn patch(&self) -> usize {
        9 * self.c_in
    }
    /// Input values.
    pub const fn inputs(&self) -> usize {
        self.side * self.side * self.c_in
    }
    /// Output values.
    pub const fn outputs(&self) -> usize {
        self.out_side() * self.out_side() * self.c_out
    }
    /// Weights and biases.
    pub const fn params(&self) -> usize {
        self.patch() * self.c_out + self.c_out
    }
    /// Multiply-adds of one forward pass.
    pub const fn macs(&self) -> usize {
        self.out_side() * self.out_side() * self.patch() * self.c_out
    }
}

/// Where a body's weights are read from: an `f32`/`f64` slice on the host, the bytes of `w*` in
/// flash on the device. Both implementations do the same arithmetic in the same order.
pub trait Weights<T: Real> {
    /// Number of values.
    fn len(&self) -> usize;
    /// No values.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// `out[i] = self[start + i]`.
    fn copy_to(&self, start: usize, out: &mut [T]);
    /// `acc[i] += self[start + i] · scale`.
    fn axpy(&self, start: usize, scale: T, acc: &mut [T]);
}

impl<T: Real> Weights<T> for [T] {
    fn len(&self) -> usize {
        <[T]>::len(self)
    }
    #[inline]
    fn copy_to(&self, start: usize, out: &mut [T]) {
        out.copy_from_slice(&self[start..start + out.len()]);
    }
    #[inline]
    fn axpy(&self, start: usize, scale: T, acc: &mut [T]) {
        let n = acc.len();
        for (a, &w) in acc.iter_mut().zip(&self[start..start + n]) {
            *a += w * scale;
        }
    }
}

/// `f32` values stored little-endian in bytes (as in a `w*` blob), read in place.
///
/// ```
/// use shared::body::{LeBytes, Weights};
/// let bytes: Vec<u8> = [1.5f32, -2.0].iter().flat_map(|v| v.to_le_bytes()).collect();
/// let mut acc = [1.0f32; 2];
/// LeBytes(&bytes).axpy(0, 2.0, &mut acc);
/// assert_eq!(acc, [4.0, -3.0]);
/// ```
#[derive(Clone, Copy, Debug)]
pub struct LeBytes<'a>(pub &'a [u8]);

impl Weights<f32> for LeBytes<'_> {
    fn len(&self) -> usize {
        self.0.len() / 4
    }
    #[inline]
    fn copy_to(&self, start: usize, out: &mut [f32]) {
        let bytes = &self.0[4 * start..4 * (start + out.len())];
        for (o, b) in out.iter_mut().zip(bytes.chunks_exact(4)) {
            *o = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        }
    }
    #[inline]
    fn axpy(&self, start: usize, scale: f32, acc: &mut [f32]) {
        let n = acc.len();
        let bytes = &self.0[4 * start..4 * (start + n)];
        for (a, b) in acc.iter_mut().zip(bytes.chunks_exact(4)) {
            *a += f32::from_le_bytes([b[0], b[1], b[2], b[3]]) * scale;
        }
    }
}

/// Writes the input patch of output pixel `(oy, ox)` into `patch` (`9 · c_in` values, zeros
/// where the window hangs over the edge).
#[inline]
fn gather<T: Real>(c: Conv, x: &[T], oy: usize, ox: usize, patch: &mut [T]) {
    let ci = c.c_in;
    for ky in 0..3 {
        for kx in 0..3 {
            let dst = &mut patch[(ky * 3 + kx) * ci..(ky * 3 + kx + 1) * ci];
            match in_bounds(c.side, oy, ox, ky, kx) {
                Some(at) => dst.copy_from_slice(&x[at * ci..(at + 1) * ci]),
                None => dst.fill(T::ZERO),
            }
        }
    }
}

/// The input pixel under kernel tap `(ky, kx)` of output pixel `(oy, ox)`, if inside the image.
#[inline]
fn in_bounds(side: usize, oy: usize, ox: usize, ky: usize, kx: usize) -> Option<usize> {
    let (y, x) = ((2 * oy + ky).checked_sub(1)?, (2 * ox + kx).checked_sub(1)?);
    (y < side && x < side).then_some(y * side + x)
}

/// One convolution and its ReLU: `out = relu(conv(x))`. `w` holds this layer's weights then
/// biases ([`Conv::params`] values from `at`); `patch` is scratch of at least [`Conv::patch`].
/// The caller sizes `x` ([`Conv::inputs`]) and `out` ([`Conv::outputs`]).
pub fn conv_forward<T: Real, W: Weights<T> + ?Sized>(
    c: Conv,
    w: &W,
    at: usize,
    x: &[T],
    out: &mut [T],
    patch: &mut [T],
) {
    let (p, co, so) = (c.patch(), c.c_out, c.out_side());
    let patch = &mut patch[..p];
    let bias = at + p * co;
    for oy in 0..so {
        for ox in 0..so {
            gather(c, x, oy, ox, patch);
            let o = &mut out[(oy * so + ox) * co..(oy * so + ox + 1) * co];
            w.copy_to(bias, o);
            for (l, &v) in patch.iter().enumerate() {
                w.axpy(at + l * co, v, o);
            }
            // ReLU; NaN passes through so a bad input stays visible.
            for v in o.iter_mut() {
                *v = if *v <= T::ZERO { T::ZERO } else { *v };
            }
        }
    }
}

/// The backward pass of [`conv_forward`] (the reference for the host trainer): given the layer's input `x`, its
/// output `out` and `d_out = ∂L/∂out`, adds `∂L/∂w` into `grad` (this layer's slice, laid out
/// as the weights) and, when given, writes `∂L/∂x` into `dx`. `patch` and `d_patch` are
/// scratch of [`Conv::patch`] values.
#[allow(clippy::too_many_arguments)]
pub fn conv_backward<T: Real>(
    c: Conv,
    w: &[T],
    x: &[T],
    out: &[T],
    d_out: &[T],
    grad: &mut [T],
    mut dx: Option<&mut [T]>,
    patch: &mut [T],
    d_patch: &mut [T],
) {
    let (p, co, so, ci) = (c.patch(), c.c_out, c.out_side(), c.c_in);
    let (patch, d_patch) = (&mut patch[..p], &mut d_patch[..p]);
    if let Some(dx) = dx.as_deref_mut() {
        dx[..c.inputs()].fill(T::ZERO);
    }
    let mut dz = [T::ZERO; MAX_CHANNELS];
    let dz = &mut dz[..co];
    for oy in 0..so {
        for ox in 0..so {
            let at = (oy * so + ox) * co;
            for ((d, &g), &a) in dz
                .iter_mut()
                .zip(&d_out[at..at + co])
                .zip(&out[at..at + co])
            {
                *d = if a <= T::ZERO { T::ZERO } else { g };
            }
            gather(c, x, oy, ox, patch);
            for (l, &v) in patch.iter().enumerate() {
                for (g, &d) in grad[l * co..(l + 1) * co].iter_mut().zip(dz.iter()) {
                    *g += d * v;
                }
            }
            for (g, &d) in grad[p * co..(p + 1) * co].iter_mut().zip(dz.iter()) {
                *g += d;
            }
            let Some(dx) = dx.as_deref_mut() else {
                continue;
            };
            for (l, dp) in d_patch.iter_mut().enumerate() {
                let mut s = T::ZERO;
                for (&wv, &d) in w[l * co..(l + 1) * co].iter().zip(dz.iter()) {
                    s += wv * d;
                }
                *dp = s;
            }
            for ky in 0..3 {
                for kx in 0..3 {
                    if let Some(px) = in_bounds(c.side, oy, ox, ky, kx) {
                        let src = &d_patch[(ky * 3 + kx) * ci..(ky * 3 + kx + 1) * ci];
                        for (d, &s) in dx[px * ci..(px + 1) * ci].iter_mut().zip(src) {
                            *d += s;
                        }
                    }
                }
            }
        }
    }
}

/// The largest channel count [`conv_backward`] takes.
pub const MAX_CHANNELS: usize = 256;

/// A body as constants: the input side and the channels of each stage, input first
/// (`C` = convolutions + 1). Scratch sizes are `const fn`s, so a firmware sizes its buffers at
/// compile time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BodySpec<const C: usize> {
    /// Input height and width.
    pub side: usize,
    /// Channels: input, then the output of each convolution.
    pub channels: [usize; C],
}

/// Why a body cannot run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum BodyError {
    /// The weights are not [`BodySpec::params`] values.
    Weights,
    /// The input is not [`BodySpec::inputs`] values.
    Input,
    /// The scratch is smaller than [`BodySpec::scratch_len`].
    Scratch,
    /// The output is not [`BodySpec::features`] values.
    Features,
}

/// The views of an image whose features the head sees (test-time augmentation).
///
/// ```
/// use shared::body::Views;
/// assert_eq!(Views::default(), Views::Single);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Views {
    /// The image as it is.
    #[default]
    Single,
    /// The mean of the features of the image moved by each of [`SHIFTS`]: a character drawn
    /// a little off-centre then looks more like its other drawings, for one forward pass per
    /// shift (the device's RAM does not change).
    Shifted,
}

/// The pixel offsets `(dx, dy)` of [`Views::Shifted`]: the image, and the image moved three
/// pixels left, right, up and down. Chosen on meta-validation characters (20-way 1-shot within
/// one alphabet: 81.4% with one view, 83.3% with offsets of one pixel, 83.6% of two, 84.1% of
/// three, 82.8% of four); the README gives what it does on alphabets never seen.
pub const SHIFTS: [(i8, i8); 5] = [(0, 0), (3, 0), (-3, 0), (0, 3), (0, -3)];

impl<const C: usize> BodySpec<C> {
    /// Number of convolutions.
    pub const CONVS: usize = C - 1;

    /// Convolution `i`.
    pub const fn conv(&self, i: usize) -> Conv {
        let mut side = self.side;
        let mut k = 0;
        while k < i {
            side = side.div_ceil(2);
            k += 1;
        }
        Conv {
            side,
            c_in: self.channels[i],
            c_out: self.channels[i + 1],
        }
    }
    /// Input values.
    pub const fn inputs(&self) -> usize {
        self.side * self.side * self.channels[0]
    }
    /// Feature values (the last convolution's outputs).
    pub const fn features(&self) -> usize {
        self.conv(C - 2).outputs()
    }
    /// Weights and biases of all convolutions.
    pub const fn params(&self) -> usize {
        let (mut i, mut n) = (0, 0);
        while i + 1 < C {
            n += self.conv(i).params();
            i += 1;
        }
        n
    }
    /// Multiply-adds of one forward pass.
    pub const fn macs(&self) -> usize {
        let (mut i, mut n) = (0, 0);
        while i + 1 < C {
            n += self.conv(i).macs();
            i += 1;
        }
        n
    }
    /// Scratch values [`BodySpec::forward`] needs: two activation buffers (even and odd
    /// stages) and one patch.
    pub const fn scratch_len(&self) -> usize {
        let (even, odd, patch) = self.buffers();
        even + odd + patch
    }
    const fn buffers(&self) -> (usize, usize, usize) {
        let (mut even, mut odd, mut patch) = (self.inputs(), 0, 0);
        let mut i = 0;
        while i + 1 < C {
            let c = self.conv(i);
            let out = c.outputs();
            if i % 2 == 0 && out > odd {
                odd = out;
            }
            if i % 2 == 1 && out > even {
                even = out;
            }
            if c.patch() > patch {
                patch = c.patch();
            }
            i += 1;
        }
        (even, odd, patch)
    }
    /// Weight offset of every convolution, and the total.
    pub fn offsets(&self) -> [usize; C] {
        let mut at = [0; C];
        for i in 0..C - 1 {
            at[i + 1] = at[i] + self.conv(i).params();
        }
        at
    }

    /// The features of one image, computed in `scratch` (no other memory): the device's
    /// inference path. Fails, without touching memory it was not given, when a size is wrong.
    pub fn forward<'s, T: Real, W: Weights<T> + ?Sized>(
        &self,
        w: &W,
        image: &[T],
        scratch: &'s mut [T],
    ) -> Result<&'s [T], BodyError> {
        self.forward_shifted(w, image, (0, 0), scratch)
    }

    /// [`BodySpec::forward`] on `image` moved by `(dx, dy)` pixels (right and down), with
    /// zeros moved in: one view of [`Views::Shifted`].
    ///
    /// ```
    /// use shared::body::BodySpec;
    /// const NET: BodySpec<2> = BodySpec { side: 4, channels: [1, 1] };
    /// let w = [1.0f32; NET.params()];
    /// let mut img = [0.0f32; 16];
    /// img[5] = 1.0; // (x 1, y 1)
    /// let mut scratch = [0.0f32; NET.scratch_len()];
    /// let here = NET.forward(&w[..], &img, &mut scratch).unwrap().to_vec();
    /// let moved = NET.forward_shifted(&w[..], &img, (3, 0), &mut scratch).unwrap().to_vec();
    /// assert!(here.iter().sum::<f32>() > moved.iter().sum::<f32>()); // moved out of the frame
    /// ```
    pub fn forward_shifted<'s, T: Real, W: Weights<T> + ?Sized>(
        &self,
        w: &W,
        image: &[T],
        (dx, dy): (i8, i8),
        scratch: &'s mut [T],
    ) -> Result<&'s [T], BodyError> {
        if w.len() != self.params() {
            return Err(BodyError::Weights);
        }
        if image.len() != self.inputs() {
            return Err(BodyError::Input);
        }
        if scratch.len() < self.scratch_len() {
            return Err(BodyError::Scratch);
        }
        let (even_len, odd_len, _) = self.buffers();
        let (even, rest) = scratch.split_at_mut(even_len);
        let (odd, patch) = rest.split_at_mut(odd_len);
        self.shift_into(image, (dx, dy), &mut even[..image.len()]);
        let offsets = self.offsets();
        for (i, &at) in offsets.iter().take(C - 1).enumerate() {
            let c = self.conv(i);
            let (src, dst) = if i % 2 == 0 {
                (&*even, &mut *odd)
            } else {
                (&*odd, &mut *even)
            };
            conv_forward(c, w, at, &src[..c.inputs()], &mut dst[..c.outputs()], patch);
        }
        let last: &'s [T] = if C.is_multiple_of(2) { odd } else { even };
        Ok(&last[..self.features()])
    }

    /// `image` moved by `(dx, dy)` pixels into `out` (same size), zeros where nothing moves in.
    fn shift_into<T: Real>(&self, image: &[T], (dx, dy): (i8, i8), out: &mut [T]) {
        let (side, c) = (self.side as isize, self.channels[0]);
        for y in 0..side {
            for x in 0..side {
                let (sx, sy) = (x - dx as isize, y - dy as isize);
                let to = (y * side + x) as usize * c;
                if (0..side).contains(&sx) && (0..side).contains(&sy) {
                    let from = (sy * side + sx) as usize * c;
                    out[to..to + c].copy_from_slice(&image[from..from + c]);
                } else {
                    out[to..to + c].fill(T::ZERO);
                }
            }
        }
    }

    /// The features `views` says an image has, written into `out` ([`BodySpec::features`]
    /// values): one forward pass, or the mean of one per shifted view, summed in the order of
    /// [`SHIFTS`] and then scaled, the same on every target.
    ///
    /// ```
    /// use shared::body::{Views, OMNIGLOT_BODY, SHIFTS};
    /// let w = vec![0.01f32; OMNIGLOT_BODY.params()];
    /// let mut scratch = vec![0.0f32; OMNIGLOT_BODY.scratch_len()];
    /// let mut one = vec![0.0f32; OMNIGLOT_BODY.features()];
    /// let mut mean = one.clone();
    /// let img = [0.5f32; 28 * 28];
    /// OMNIGLOT_BODY.forward_views(&w[..], &img, Views::Single, &mut scratch, &mut one).unwrap();
    /// OMNIGLOT_BODY.forward_views(&w[..], &img, Views::Shifted, &mut scratch, &mut mean).unwrap();
    /// assert_eq!(one, OMNIGLOT_BODY.forward(&w[..], &img, &mut scratch).unwrap());
    /// assert!(SHIFTS.len() > 1 && one != mean);
    /// ```
    pub fn forward_views<T: Real, W: Weights<T> + ?Sized>(
        &self,
        w: &W,
        image: &[T],
        views: Views,
        scratch: &mut [T],
        out: &mut [T],
    ) -> Result<(), BodyError> {
        if out.len() != self.features() {
            return Err(BodyError::Features);
        }
        let shifts: &[(i8, i8)] = match views {
            Views::Single => &[(0, 0)],
            Views::Shifted => &SHIFTS,
        };
        out.fill(T::ZERO);
        for &shift in shifts {
            let f = self.forward_shifted(w, image, shift, scratch)?;
            for (o, &v) in out.iter_mut().zip(f) {
                *o += v;
            }
        }
        if shifts.len() > 1 {
            let scale = T::ONE / T::from_usize(shifts.len());
            out.iter_mut().for_each(|o| *o *= scale);
        }
        Ok(())
    }
}

/// Every stage's activations of one image, kept for [`BodySpec::backward`] (host reference).
#[cfg(feature = "alloc")]
#[derive(Clone, Debug, PartialEq)]
pub struct Trace<T> {
    /// The image, then each convolution's output; the last is the features.
    pub stages: alloc::vec::Vec<alloc::vec::Vec<T>>,
}

#[cfg(feature = "alloc")]
impl<T> Trace<T> {
    /// The features (the last stage).
    pub fn features(&self) -> &[T] {
        self.stages.last().map_or(&[], |v| v.as_slice())
    }
}

#[cfg(feature = "alloc")]
impl<const C: usize> BodySpec<C> {
    /// [`BodySpec::forward`] keeping every stage (host reference). Panics if `w` or `image` has
    /// the wrong length.
    pub fn trace<T: Real>(&self, w: &[T], image: &[T]) -> Trace<T> {
        assert_eq!(w.len(), self.params(), "body weights");
        assert_eq!(image.len(), self.inputs(), "body input");
        let mut stages = alloc::vec::Vec::with_capacity(C);
        stages.push(image.to_vec());
        let mut patch = alloc::vec![T::ZERO; 9 * MAX_CHANNELS];
        for (i, &at) in self.offsets().iter().take(C - 1).enumerate() {
            let c = self.conv(i);
            let mut out = alloc::vec![T::ZERO; c.outputs()];
            conv_forward(c, w, at, &stages[i], &mut out, &mut patch);
            stages.push(out);
        }
        Trace { stages }
    }

    /// Adds `∂L/∂w` into `grad` given `d_features = ∂L/∂features` of the image `trace` came
    /// from (host reference).
    pub fn backward<T: Real>(&self, w: &[T], trace: &Trace<T>, d_features: &[T], grad: &mut [T]) {
        let offsets = self.offsets();
        let mut patch = alloc::vec![T::ZERO; 9 * MAX_CHANNELS];
        let mut d_patch = patch.clone();
        let mut d_out = d_features.to_vec();
        for i in (0..C - 1).rev() {
            let c = self.conv(i);
            let layer = offsets[i]..offsets[i + 1];
            let mut dx = (i > 0).then(|| alloc::vec![T::ZERO; c.inputs()]);
            conv_backward(
                c,
                &w[layer.clone()],
                &trace.stages[i],
                &trace.stages[i + 1],
                &d_out,
                &mut grad[layer],
                dx.as_deref_mut(),
                &mut patch,
                &mut d_patch,
            );
            if let Some(dx) = dx {
                d_out = dx;
            }
        }
    }
}
