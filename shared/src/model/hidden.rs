//! A hidden layer: dense then ReLU, followed by the rest of the stack.

use nalgebra::SMatrix;

use super::kernels::{transpose, transpose_into};
use super::{Dense, Layers, Params, Shape, Zeroed};
use crate::math::Real;

/// `a = relu(W·x + b)`, then `rest` maps the `H` activations to the `O` outputs.
///
/// ```
/// use shared::model::{Hidden, Dense, Params};
/// type Net = Hidden<f32, 2, 3, 1, Dense<f32, 3, 1>>;
/// assert_eq!(Net::LAYERS, 2);
/// assert_eq!(Net::PARAMS, 2 * 3 + 3 + 3 + 1);
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Hidden<T: Real, const I: usize, const H: usize, const O: usize, R> {
    /// This layer's weights and biases.
    pub layer: Dense<T, I, H>,
    /// The layers after it.
    pub rest: R,
}

/// What a [`Hidden`] layer keeps between passes.
#[derive(Clone, Debug)]
pub struct HiddenCache<T: Real, const H: usize, const K: usize, C> {
    /// Activations after the ReLU (their sign is the ReLU's derivative).
    pub a: SMatrix<T, H, K>,
    /// `∂L/∂z` of this layer, from the backward pass.
    pub dz: SMatrix<T, H, K>,
    /// The rest of the stack's cache.
    pub rest: C,
}

/// `m ⊙ relu'(a)`, where `a = relu(z)` so `relu'(z) = [a > 0]`.
#[inline]
fn relu_mask<T: Real, const H: usize, const K: usize>(
    m: &mut SMatrix<T, H, K>,
    a: &SMatrix<T, H, K>,
) {
    // A select rather than a conditional store, so the host vectorises it.
    for (m, &a) in m.as_mut_slice().iter_mut().zip(a.as_slice()) {
        *m = if a <= T::ZERO { T::ZERO } else { *m };
    }
}

impl<T: Real, const I: usize, const H: usize, const O: usize, R: Zeroed> Zeroed
    for Hidden<T, I, H, O, R>
{
    const ZERO: Self = Self {
        layer: Dense::ZERO,
        rest: R::ZERO,
    };
}

impl<T: Real, const I: usize, const H: usize, const O: usize, R: Shape> Shape
    for Hidden<T, I, H, O, R>
{
    fn shape(f: &mut dyn FnMut(usize)) {
        // The rest of the stack starts at its input width, which is this layer's `H`.
        f(I);
        R::shape(f);
    }

    const WIDEST: usize = if I > R::WIDEST { I } else { R::WIDEST };
}

impl<T: Real, const H: usize, const K: usize, C: Zeroed> Zeroed for HiddenCache<T, H, K, C> {
    const ZERO: Self = Self {
        a: SMatrix::ZERO,
        dz: SMatrix::ZERO,
        rest: C::ZERO,
    };
}

impl<T: Real, const I: usize, const H: usize, const O: usize, R: Params<T>> Params<T>
    for Hidden<T, I, H, O, R>
{
    const LAYERS: usize = 1 + R::LAYERS;
    const PARAMS: usize = I * H + H + R::PARAMS;

    fn for_each(&self, f: &mut dyn FnMut(usize, &[T])) {
        self.layer.for_each(f);
        self.rest.for_each(&mut |l, s| f(l + 1, s));
    }
    fn for_each_mut(&mut self, f: &mut dyn FnMut(usize, &mut [T])) {
        self.layer.for_each_mut(f);
        self.rest.for_each_mut(&mut |l, s| f(l + 1, s));
    }
    fn zip_mut(&mut self, other: &Self, f: &mut dyn FnMut(usize, &mut [T], &[T])) {
        self.layer.zip_mut(&other.layer, f);
        self.rest
            .zip_mut(&other.rest, &mut |l, m, o| f(l + 1, m, o));
    }
}

impl<T: Real, const I: usize, const H: usize, const O: usize, R> Hidden<T, I, H, O, R> {
    /// `a = relu(W·x + b)`; NaN passes through so a diverging step stays visible.
    fn activations<const K: usize>(&self, x: &SMatrix<T, I, K>, a: &mut SMatrix<T, H, K>) {
        self.layer.affine_into(x, a);
        for v in a.as_mut_slice() {
            *v = if *v <= T::ZERO { T::ZERO } else { *v };
        }
    }
}

impl<T: Real, const I: usize, const H: usize, const O: usize, R: Layers<T, H, O>> Layers<T, I, O>
    for Hidden<T, I, H, O, R>
{
    type Cache<const K: usize> = HiddenCache<T, H, K, R::Cache<K>>;
    type Transposed = (SMatrix<T, I, H>, R::Transposed);

    fn transposed(&self) -> Self::Transposed {
        (transpose(&self.layer.w), self.rest.transposed())
    }

    fn transpose_to(&self, t: &mut Self::Transposed) {
        transpose_into::<T, I, H>(self.layer.w.as_slice(), t.0.as_mut_slice(), I);
        self.rest.transpose_to(&mut t.1);
    }

    fn forward<const K: usize>(
        &self,
        x: &SMatrix<T, I, K>,
        cache: &mut Self::Cache<K>,
    ) -> SMatrix<T, O, K> {
        self.activations(x, &mut cache.a);
        self.rest.forward(&cache.a, &mut cache.rest)
    }

    fn logits_into<const K: usize>(
        &self,
        x: &SMatrix<T, I, K>,
        cache: &mut Self::Cache<K>,
        out: &mut SMatrix<T, O, K>,
    ) {
        self.activations(x, &mut cache.a);
        self.rest.logits_into(&cache.a, &mut cache.rest, out);
    }

    fn backward_with<const K: usize>(
        &self,
        t: Option<&Self::Transposed>,
        x: &SMatrix<T, I, K>,
        cache: &mut Self::Cache<K>,
        dy: &SMatrix<T, O, K>,
        grad: &mut Self,
        dx: Option<&mut SMatrix<T, I, K>>,
    ) {
        self.rest.backward_with(
            t.map(|t| &t.1),
            &cache.a,
            &mut cache.rest,
            dy,
            &mut grad.rest,
            Some(&mut cache.dz),
        );
        relu_mask(&mut cache.dz, &cache.a);
        self.layer
            .affine_backward_with(t.map(|t| &t.0), x, &cache.dz, &mut grad.layer, dx);
    }

    fn start_from_prototypes<const K: usize>(
        &mut self,
        x: &SMatrix<T, I, K>,
        y: &SMatrix<T, O, K>,
        cache: &mut Self::Cache<K>,
    ) {
        self.activations(x, &mut cache.a);
        self.rest
            .start_from_prototypes(&cache.a, y, &mut cache.rest);
    }

    fn hvp<const K: usize>(
        &self,
        u: &Self,
        x: &SMatrix<T, I, K>,
        rx: Option<&SMatrix<T, I, K>>,
        cache: &Self::Cache<K>,
        r_loss: &mut dyn FnMut(&SMatrix<T, O, K>) -> SMatrix<T, O, K>,
        hv: &mut Self,
    ) -> SMatrix<T, I, K> {
        let mut ra = self.layer.affine_r(&u.layer, x, rx);
        relu_mask(&mut ra, &cache.a);
        let mut rdz = self.rest.hvp(
            &u.rest,
            &cache.a,
            Some(&ra),
            &cache.rest,
            r_loss,
            &mut hv.rest,
        );
        relu_mask(&mut rdz, &cache.a);
        self.layer.affine_backward_r(
            &u.layer,
            x,
            rx,
            &cache.dz,
            &rdz,
            &mut hv.layer,
            rx.is_some(),
        )
    }
}
