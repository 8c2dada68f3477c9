//! The convolutional body on a batch of images, forward and backward: the trainer's fast path.
//!
//! The device runs [`shared::body::BodySpec::forward`] one image at a time with its weights
//! in flash. The trainer runs the same convolutions on every image of an episode at once:
//! each layer gathers all the batch's input patches into one matrix (im2col), then small
//! register-blocked kernels multiply it by the weights, vectorised over output channels.
//! Every output value still starts from its bias and adds the patch entries in the device's
//! order, each product rounded before it is added (no fused multiply-add), so the features are
//! the device's bit for bit. The backward pass sums each weight's gradient over the batch's
//! pixels in image order, then pixel order, and each input gradient over output channels in
//! channel order: the same arithmetic as one image at a time, image after image.
//!
//! No sum is ever split across vector lanes, so the portable (SSE2) build, AVX2 and AVX-512
//! give the same bits; the kernels are compiled for each and picked at run time
//! ([`multiversion`]), so the default build uses the machine's widest vectors.
//!
//! ```
//! use meta_train::model::body::Batch;
//! use shared::body::OMNIGLOT_BODY;
//! let w = vec![0.01f32; OMNIGLOT_BODY.params()];
//! let images = [vec![0.5f32; 784], vec![0.25f32; 784]];
//! let mut batch = Batch::new(OMNIGLOT_BODY);
//! batch.forward(&w, images.iter().map(|i| i.as_slice()));
//! let mut scratch = vec![0.0f32; OMNIGLOT_BODY.scratch_len()];
//! let one = OMNIGLOT_BODY.forward(&w[..], &images[1], &mut scratch).unwrap();
//! assert_eq!(batch.features(1), one);
//! let mut grad = vec![0.0f32; w.len()];
//! batch.backward(&w, &vec![1.0; 2 * OMNIGLOT_BODY.features()], &mut grad);
//! assert!(grad.iter().any(|g| *g != 0.0));
//! ```

use multiversion::multiversion;
use shared::body::{BodySpec, Conv};

/// Output channels (or patch entries) one kernel call handles: two AVX2 vectors, one AVX-512
/// vector, four SSE2 vectors.
const LANES: usize = 16;
/// Rows (pixels, or weight rows) one kernel call keeps in registers.
const ROWS: usize = 6;

/// A batch's activations and the buffers its backward pass needs, kept from call to call
/// so that the training loop does not allocate.
#[derive(Clone, Debug)]
pub struct Batch<const C: usize> {
    spec: BodySpec<C>,
    images: usize,
    /// Stage `i`'s values for every image, image-major: the input, then each convolution's
    /// output (after its ReLU).
    stages: Vec<Vec<f32>>,
    /// Convolution `i`'s input patches: one row of [`Conv::patch`] values per output pixel.
    patches: Vec<Vec<f32>>,
    /// `∂L/∂z` of one convolution, then `∂L/∂patch`, then `∂L/∂input`.
    dz: Vec<f32>,
    d_patch: Vec<f32>,
    d_in: Vec<f32>,
    d_out: Vec<f32>,
    /// One layer's weights transposed (patch entries contiguous per output channel).
    w_t: Vec<f32>,
}

impl<const C: usize> Batch<C> {
    /// An empty batch of `spec`.
    pub fn new(spec: BodySpec<C>) -> Self {
        Self {
            spec,
            images: 0,
            stages: vec![Vec::new(); C],
            patches: vec![Vec::new(); C - 1],
            dz: Vec::new(),
            d_patch: Vec::new(),
            d_in: Vec::new(),
            d_out: Vec::new(),
            w_t: Vec::new(),
        }
    }

    /// Images in the batch.
    pub fn len(&self) -> usize {
        self.images
    }

    /// No images.
    pub fn is_empty(&self) -> bool {
        self.images == 0
    }

    /// Runs the body on `images` (each [`BodySpec::inputs`] values), keeping every stage for
    /// [`Batch::backward`]. Panics if `w` or an image has the wrong length.
    pub fn forward<'i>(&mut self, w: &[f32], images: impl IntoIterator<Item = &'i [f32]>) {
        let spec = self.spec;
        assert_eq!(w.len(), spec.params(), "body weights");
        let input = &mut self.stages[0];
        input.clear();
        for image in images {
            assert_eq!(image.len(), spec.inputs(), "body input");
            input.extend_from_slice(image);
        }
        self.images = input.len() / spec.inputs();
        let offsets = spec.offsets();
        for i in 0..C - 1 {
            let c = spec.conv(i);
            let (done, rest) = self.stages.split_at_mut(i + 1);
            let out = &mut rest[0];
            out.resize(self.images * c.outputs(), 0.0);
            let patches = &mut self.patches[i];
            im2col(c, &done[i], self.images, patches);
            conv_forward(c, &w[offsets[i]..offsets[i + 1]], patches, out);
        }
    }

    /// The features of image `i` of the batch.
    pub fn features(&self, i: usize) -> &[f32] {
        let f = self.spec.features();
        &self.stages[C - 1][i * f..(i + 1) * f]
    }

    /// Adds `∂L/∂w` into `grad` given `d_features` (the batch's [`BodySpec::features`]
    /// values per image, in image order) for the images of the last [`Batch::forward`].
    /// Panics on wrong lengths.
    pub fn backward(&mut self, w: &[f32], d_features: &[f32], grad: &mut [f32]) {
        let spec = self.spec;
        assert_eq!(w.len(), spec.params(), "body weights");
        assert_eq!(grad.len(), spec.params(), "body gradient");
        assert_eq!(
            d_features.len(),
            self.images * spec.features(),
            "feature gradients"
        );
        let offsets = spec.offsets();
        self.d_out.clear();
        self.d_out.extend_from_slice(d_features);
        for i in (0..C - 1).rev() {
            let c = spec.conv(i);
            let layer = offsets[i]..offsets[i + 1];
            let pixels = self.images * c.out_side() * c.out_side();
            self.dz.resize(pixels * c.c_out, 0.0);
            relu_backward(&self.stages[i + 1], &self.d_out, &mut self.dz);
            weight_grad(c, &self.patches[i], &self.dz, &mut grad[layer.clone()]);
            if i == 0 {
                break;
            }
            transpose(c, &w[layer], &mut self.w_t);
            self.d_patch.resize(pixels * c.patch(), 0.0);
            patch_grad(c, &self.w_t, &self.dz, &mut self.d_patch);
            self.d_in.resize(self.images * c.inputs(), 0.0);
            col2im(c, &self.d_patch, &mut self.d_in);
            std::mem::swap(&mut self.d_in, &mut self.d_out);
        }
    }
}

/// The input pixel under kernel tap `(ky, kx)` of output pixel `(oy, ox)`, if inside.
#[inline]
fn tap(side: usize, oy: usize, ox: usize, ky: usize, kx: usize) -> Option<usize> {
    let (y, x) = ((2 * oy + ky).checked_sub(1)?, (2 * ox + kx).checked_sub(1)?);
    (y < side && x < side).then_some(y * side + x)
}

/// Every output pixel's input patch, for `n` images, as rows of [`Conv::patch`] values
/// (zeros where the window hangs over the edge): the device's patch layout.
fn im2col(c: Conv, x: &[f32], n: usize, patches: &mut Vec<f32>) {
    let (ci, so, p) = (c.c_in, c.out_side(), c.patch());
    patches.resize(n * so * so * p, 0.0);
    let mut rows = patches.chunks_exact_mut(p);
    for img in x.chunks_exact(c.inputs()).take(n) {
        for oy in 0..so {
            for ox in 0..so {
                let row = rows.next().expect("sized above");
                for (t, dst) in row.chunks_exact_mut(ci).enumerate() {
                    match tap(c.side, oy, ox, t / 3, t % 3) {
                        Some(at) => dst.copy_from_slice(&img[at * ci..(at + 1) * ci]),
                        None => dst.fill(0.0),
                    }
                }
            }
        }
    }
}

/// Adds each patch row's gradient back onto the pixels it was gathered from, in output-pixel
/// then tap order, into `dx` (zeroed first).
fn col2im(c: Conv, d_patch: &[f32], dx: &mut [f32]) {
    let (ci, so, p) = (c.c_in, c.out_side(), c.patch());
    dx.fill(0.0);
    let mut rows = d_patch.chunks_exact(p);
    for img in dx.chunks_exact_mut(c.inputs()) {
        for oy in 0..so {
            for ox in 0..so {
                let row = rows.next().expect("one row per output pixel");
                for (t, src) in row.chunks_exact(ci).enumerate() {
                    if let Some(at) = tap(c.side, oy, ox, t / 3, t % 3) {
                        for (d, &s) in img[at * ci..(at + 1) * ci].iter_mut().zip(src) {
                            *d += s;
                        }
                    }
                }
            }
        }
    }
}

/// `w`'s `p × c_out` weight matrix as `c_out × p` (a channel's patch weights contiguous).
fn transpose(c: Conv, w: &[f32], w_t: &mut Vec<f32>) {
    let (p, co) = (c.patch(), c.c_out);
    w_t.resize(p * co, 0.0);
    for (l, row) in w[..p * co].chunks_exact(co).enumerate() {
        for (k, &v) in row.iter().enumerate() {
            w_t[k * p + l] = v;
        }
    }
}

/// `dz = d_out` where the ReLU passed its input, 0 where it clamped it.
fn relu_backward(out: &[f32], d_out: &[f32], dz: &mut [f32]) {
    for ((d, &g), &a) in dz.iter_mut().zip(d_out).zip(out) {
        *d = if a <= 0.0 { 0.0 } else { g };
    }
}

// The kernels index fixed-size arrays in loops on purpose: that form keeps the accumulators
// in vector registers across the whole sum.

/// The start of the columns past the last full block of [`LANES`].
fn full_blocks(n: usize) -> usize {
    n - n % LANES
}

/// `out = relu(bias + patches · W)`, each output summed over the patch in order.
#[multiversion(targets("x86_64+avx512f+avx512vl", "x86_64+avx2"))]
fn conv_forward(c: Conv, w: &[f32], patches: &[f32], out: &mut [f32]) {
    let (p, co) = (c.patch(), c.c_out);
    let (weights, bias) = w.split_at(p * co);
    let rows = patches.len() / p;
    let full = full_blocks(co);
    for j in (0..full).step_by(LANES) {
        let mut r = 0;
        while r + ROWS <= rows {
            forward_block::<ROWS>(c, j, weights, bias, patches, out, r);
            r += ROWS;
        }
        while r < rows {
            forward_block::<1>(c, j, weights, bias, patches, out, r);
            r += 1;
        }
    }
    for (q, row) in patches.chunks_exact(p).enumerate() {
        for j in full..co {
            let mut s = bias[j];
            for (l, &v) in row.iter().enumerate() {
                s += weights[l * co + j] * v;
            }
            out[q * co + j] = relu(s);
        }
    }
}

/// The ReLU; NaN passes through, as on the device.
#[inline(always)]
fn relu(s: f32) -> f32 {
    if s <= 0.0 {
        0.0
    } else {
        s
    }
}

/// `acc += x · v`, lane by lane.
#[inline(always)]
fn axpy(acc: &mut [f32; LANES], x: &[f32; LANES], v: f32) {
    for (a, &x) in acc.iter_mut().zip(x) {
        *a += x * v;
    }
}

/// [`conv_forward`] for output channels `j..j + LANES` of pixels `r..r + R`.
#[inline(always)]
#[allow(clippy::needless_range_loop)]
fn forward_block<const R: usize>(
    c: Conv,
    j: usize,
    weights: &[f32],
    bias: &[f32],
    patches: &[f32],
    out: &mut [f32],
    r: usize,
) {
    let (p, co) = (c.patch(), c.c_out);
    let rows: [&[f32]; R] = std::array::from_fn(|k| &patches[(r + k) * p..(r + k + 1) * p]);
    let b: [f32; LANES] = bias[j..j + LANES].try_into().expect("LANES wide");
    let mut acc = [b; R];
    for l in 0..p {
        let wl: &[f32; LANES] = weights[l * co + j..l * co + j + LANES]
            .try_into()
            .expect("LANES wide");
        for k in 0..R {
            axpy(&mut acc[k], wl, rows[k][l]);
        }
    }
    for (k, a) in acc.iter().enumerate() {
        let o = &mut out[(r + k) * co + j..(r + k) * co + j + LANES];
        for (o, &s) in o.iter_mut().zip(a) {
            *o = relu(s);
        }
    }
}

/// `grad += patchesᵀ · dz` (weights) and `Σ dz` (biases), summed over the pixels in order.
#[multiversion(targets("x86_64+avx512f+avx512vl", "x86_64+avx2"))]
fn weight_grad(c: Conv, patches: &[f32], dz: &[f32], grad: &mut [f32]) {
    let (p, co) = (c.patch(), c.c_out);
    let (gw, gb) = grad.split_at_mut(p * co);
    let full = full_blocks(co);
    for j in (0..full).step_by(LANES) {
        let mut l = 0;
        while l + ROWS <= p {
            weight_block::<ROWS>(c, j, patches, dz, gw, l);
            l += ROWS;
        }
        while l < p {
            weight_block::<1>(c, j, patches, dz, gw, l);
            l += 1;
        }
    }
    for l in 0..p {
        for j in full..co {
            let mut s = gw[l * co + j];
            for (row, d) in patches.chunks_exact(p).zip(dz.chunks_exact(co)) {
                s += d[j] * row[l];
            }
            gw[l * co + j] = s;
        }
    }
    for d in dz.chunks_exact(co) {
        for (g, &v) in gb[..co].iter_mut().zip(d) {
            *g += v;
        }
    }
}

/// [`weight_grad`] for weight rows `l..l + R`, output channels `j..j + LANES`.
#[inline(always)]
#[allow(clippy::needless_range_loop)]
fn weight_block<const R: usize>(
    c: Conv,
    j: usize,
    patches: &[f32],
    dz: &[f32],
    gw: &mut [f32],
    l: usize,
) {
    let (p, co) = (c.patch(), c.c_out);
    let mut acc = [[0.0f32; LANES]; R];
    for (b, a) in acc.iter_mut().enumerate() {
        *a = gw[(l + b) * co + j..(l + b) * co + j + LANES]
            .try_into()
            .expect("LANES wide");
    }
    let rows = patches.chunks_exact(p).zip(dz.chunks_exact(co));
    for (row, d) in rows {
        let d: &[f32; LANES] = d[j..j + LANES].try_into().expect("LANES wide");
        for b in 0..R {
            axpy(&mut acc[b], d, row[l + b]);
        }
    }
    for (b, a) in acc.iter().enumerate() {
        gw[(l + b) * co + j..(l + b) * co + j + LANES].copy_from_slice(a);
    }
}

/// `d_patch = dz · Wᵀ`: each entry summed over the output channels in order, from zero.
#[multiversion(targets("x86_64+avx512f+avx512vl", "x86_64+avx2"))]
fn patch_grad(c: Conv, w_t: &[f32], dz: &[f32], d_patch: &mut [f32]) {
    let (p, co) = (c.patch(), c.c_out);
    let rows = dz.len() / co;
    let full = full_blocks(p);
    for l in (0..full).step_by(LANES) {
        let mut r = 0;
        while r + ROWS <= rows {
            patch_block::<ROWS>(c, l, w_t, dz, d_patch, r);
            r += ROWS;
        }
        while r < rows {
            patch_block::<1>(c, l, w_t, dz, d_patch, r);
            r += 1;
        }
    }
    for (q, d) in dz.chunks_exact(co).enumerate() {
        for l in full..p {
            let mut s = 0.0f32;
            for (k, &dv) in d.iter().enumerate() {
                s += w_t[k * p + l] * dv;
            }
            d_patch[q * p + l] = s;
        }
    }
}

/// [`patch_grad`] for patch entries `l..l + LANES` of pixels `r..r + R`.
#[inline(always)]
#[allow(clippy::needless_range_loop)]
fn patch_block<const R: usize>(
    c: Conv,
    l: usize,
    w_t: &[f32],
    dz: &[f32],
    d_patch: &mut [f32],
    r: usize,
) {
    let (p, co) = (c.patch(), c.c_out);
    let rows: [&[f32]; R] = std::array::from_fn(|k| &dz[(r + k) * co..(r + k + 1) * co]);
    let mut acc = [[0.0f32; LANES]; R];
    for k in 0..co {
        let wk: &[f32; LANES] = w_t[k * p + l..k * p + l + LANES]
            .try_into()
            .expect("LANES wide");
        for i in 0..R {
            axpy(&mut acc[i], wk, rows[i][k]);
        }
    }
    for (i, a) in acc.iter().enumerate() {
        d_patch[(r + i) * p + l..(r + i) * p + l + LANES].copy_from_slice(a);
    }
}
