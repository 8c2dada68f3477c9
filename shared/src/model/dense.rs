//! A dense (fully connected) layer, `z = W·x + b`, used as the linear output layer of a stack
//! and inside every [`Hidden`](super::Hidden) layer.

use nalgebra::{SMatrix, SVector};

use super::kernels::{
    add_mul, add_mul_at, add_mul_bt, mul_at, mul_at_transposed, mul_bt, transpose, transpose_into,
    zeros,
};
use super::{Layers, Params, Shape, Zeroed};
use crate::math::{Centre, Real};

/// Weights `w` (`O × I`) and biases `b` (`O`).
///
/// ```
/// use nalgebra::SMatrix;
/// use shared::model::{Dense, Layers};
/// let mut d = Dense::<f32, 2, 1>::default();
/// d.w[(0, 0)] = 2.0;
/// d.b[0] = 1.0;
/// let y = d.forward(&SMatrix::<f32, 2, 1>::new(3.0, 5.0), &mut Dense::<f32, 2, 1>::new_cache::<1>());
/// assert_eq!(y[(0, 0)], 7.0);
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Dense<T: Real, const I: usize, const O: usize> {
    /// Weights, output × input, column-major.
    pub w: SMatrix<T, O, I>,
    /// Biases.
    pub b: SVector<T, O>,
}

impl<T: Real, const I: usize, const O: usize> Default for Dense<T, I, O> {
    fn default() -> Self {
        Self::zeros()
    }
}

impl<T: Real, const I: usize, const O: usize> Dense<T, I, O> {
    /// `z = W·x + b` for each column of `x`.
    #[inline]
    pub fn affine<const K: usize>(&self, x: &SMatrix<T, I, K>) -> SMatrix<T, O, K> {
        let mut z = zeros::<T, O, K>();
        self.affine_into(x, &mut z);
        z
    }

    /// [`Dense::affine`] written into `z`.
    #[inline]
    pub fn affine_into<const K: usize>(&self, x: &SMatrix<T, I, K>, z: &mut SMatrix<T, O, K>) {
        for c in z.as_mut_slice().chunks_exact_mut(O) {
            c.copy_from_slice(self.b.as_slice());
        }
        add_mul(z, &self.w, x);
    }

    /// [`Dense::affine_into`] for logits, the outputs a softmax reads: in an arithmetic that
    /// saturates ([`Real::SATURATES`]) each column is summed in the accumulator and shifted
    /// so that its largest logit is 0 before it is rounded ([`Centre::Top`]), which changes
    /// no probability, loss or gradient and keeps logits of any size in the range; otherwise
    /// [`Dense::affine_into`], to the bit.
    ///
    /// ```
    /// use nalgebra::SMatrix;
    /// use shared::fixed::Q10H;
    /// use shared::math::Real;
    /// use shared::model::Dense;
    /// let mut d = Dense::<Q10H, 1, 2>::default();
    /// (d.w[(0, 0)], d.w[(1, 0)]) = (Q10H::from_f32(8.0), Q10H::from_f32(7.0));
    /// let x = SMatrix::<Q10H, 1, 1>::new(Q10H::from_f32(6.0));
    /// let mut z = SMatrix::<Q10H, 2, 1>::zeros();
    /// d.logits_into(&x, &mut z); // 48 and 42, beyond ±32
    /// assert_eq!((z[0].to_f32(), z[1].to_f32()), (0.0, -6.0));
    /// ```
    pub fn logits_into<const K: usize>(&self, x: &SMatrix<T, I, K>, z: &mut SMatrix<T, O, K>) {
        if !T::SATURATES {
            return self.affine_into(x, z);
        }
        let (w, x) = (self.w.as_slice(), x.as_slice());
        for (column, xj) in z.as_mut_slice().chunks_exact_mut(O).zip(x.chunks_exact(I)) {
            let mut acc = [T::ACC_ZERO; O];
            for (a, b) in acc.iter_mut().zip(self.b.iter()) {
                *a = b.widen();
            }
            for (wl, &xl) in w.chunks_exact(O).zip(xj) {
                for (a, &wv) in acc.iter_mut().zip(wl) {
                    *a = T::mac(*a, wv, xl);
                }
            }
            T::narrow_centred(&acc, column, Centre::Top);
        }
    }

    /// Writes `∂L/∂W`, `∂L/∂b` into `grad` from `dz = ∂L/∂z`, and `∂L/∂x` into `dx` when given
    /// (both overwritten).
    ///
    /// ```
    /// use nalgebra::SMatrix;
    /// use shared::model::Dense;
    /// let mut d = Dense::<f32, 2, 1>::default();
    /// d.w[(0, 1)] = 3.0;
    /// let (x, dz) = (SMatrix::<f32, 2, 1>::new(1.0, 2.0), SMatrix::<f32, 1, 1>::new(0.5));
    /// let (mut g, mut dx) = (Dense::default(), SMatrix::<f32, 2, 1>::zeros());
    /// d.affine_backward(&x, &dz, &mut g, Some(&mut dx));
    /// assert_eq!((g.w[(0, 1)], g.b[0], dx[1]), (1.0, 0.5, 1.5));
    /// ```
    #[inline]
    pub fn affine_backward<const K: usize>(
        &self,
        x: &SMatrix<T, I, K>,
        dz: &SMatrix<T, O, K>,
        grad: &mut Self,
        dx: Option<&mut SMatrix<T, I, K>>,
    ) {
        self.affine_backward_with(None, x, dz, grad, dx);
    }

    /// [`Dense::affine_backward`] given `wt = Wᵀ` when the caller keeps it (the same bits).
    #[inline]
    pub fn affine_backward_with<const K: usize>(
        &self,
        wt: Option<&SMatrix<T, I, O>>,
        x: &SMatrix<T, I, K>,
        dz: &SMatrix<T, O, K>,
        grad: &mut Self,
        dx: Option<&mut SMatrix<T, I, K>>,
    ) {
        mul_bt(&mut grad.w, dz, x);
        grad.b = column_sum(dz);
        match (dx, wt) {
            (Some(dx), Some(wt)) => mul_at_transposed(dx, wt, dz),
            (Some(dx), None) => mul_at(dx, &self.w, dz),
            (None, _) => {}
        }
    }

    /// The R-operator of `z = W·x + b` in direction `u` (with input direction `rx`).
    #[inline]
    pub fn affine_r<const K: usize>(
        &self,
        u: &Self,
        x: &SMatrix<T, I, K>,
        rx: Option<&SMatrix<T, I, K>>,
    ) -> SMatrix<T, O, K> {
        let mut rz = u.affine(x);
        if let Some(rx) = rx {
            add_mul(&mut rz, &self.w, rx);
        }
        rz
    }

    /// The R-operator of [`Dense::affine_backward`]: writes `R{∂L/∂W}`, `R{∂L/∂b}` into `hv`
    /// and returns `R{∂L/∂x}`.
    #[allow(clippy::too_many_arguments)]
    #[inline]
    pub fn affine_backward_r<const K: usize>(
        &self,
        u: &Self,
        x: &SMatrix<T, I, K>,
        rx: Option<&SMatrix<T, I, K>>,
        dz: &SMatrix<T, O, K>,
        rdz: &SMatrix<T, O, K>,
        hv: &mut Self,
        need_dx: bool,
    ) -> SMatrix<T, I, K> {
        mul_bt(&mut hv.w, rdz, x);
        if let Some(rx) = rx {
            add_mul_bt(&mut hv.w, dz, rx);
        }
        hv.b = column_sum(rdz);
        let mut rdx = zeros::<T, I, K>();
        if need_dx {
            add_mul_at(&mut rdx, &u.w, dz);
            add_mul_at(&mut rdx, &self.w, rdz);
        }
        rdx
    }
}

/// `Σ_j m[:, j]`, `j` ascending.
#[inline]
fn column_sum<T: Real, const O: usize, const K: usize>(m: &SMatrix<T, O, K>) -> SVector<T, O> {
    let mut s = [T::ZERO; O];
    for c in m.as_slice().chunks_exact(O) {
        for (s, &v) in s.iter_mut().zip(c) {
            *s += v;
        }
    }
    SVector::from(s)
}

impl<T: Real, const I: usize, const O: usize> Shape for Dense<T, I, O> {
    fn shape(f: &mut dyn FnMut(usize)) {
        f(I);
        f(O);
    }

    const WIDEST: usize = if I > O { I } else { O };
}

impl<T: Real, const I: usize, const O: usize> Zeroed for Dense<T, I, O> {
    const ZERO: Self = Self {
        w: SMatrix::ZERO,
        b: SMatrix::ZERO,
    };
}

impl<T: Real, const I: usize, const O: usize> Params<T> for Dense<T, I, O> {
    const LAYERS: usize = 1;
    const PARAMS: usize = I * O + O;

    fn for_each(&self, f: &mut dyn FnMut(usize, &[T])) {
        f(0, self.w.as_slice());
        f(0, self.b.as_slice());
    }
    fn for_each_mut(&mut self, f: &mut dyn FnMut(usize, &mut [T])) {
        f(0, self.w.as_mut_slice());
        f(0, self.b.as_mut_slice());
    }
    fn zip_mut(&mut self, other: &Self, f: &mut dyn FnMut(usize, &mut [T], &[T])) {
        f(0, self.w.as_mut_slice(), other.w.as_slice());
        f(0, self.b.as_mut_slice(), other.b.as_slice());
    }
}

/// As the last layer of a stack: linear outputs. Its cache is `∂L/∂z` from the backward pass.
impl<T: Real, const I: usize, const O: usize> Layers<T, I, O> for Dense<T, I, O> {
    type Cache<const K: usize> = SMatrix<T, O, K>;
    type Transposed = SMatrix<T, I, O>;

    fn transposed(&self) -> Self::Transposed {
        transpose(&self.w)
    }

    fn transpose_to(&self, t: &mut Self::Transposed) {
        transpose_into::<T, O, I>(self.w.as_slice(), t.as_mut_slice(), I);
    }

    fn forward<const K: usize>(
        &self,
        x: &SMatrix<T, I, K>,
        _cache: &mut Self::Cache<K>,
    ) -> SMatrix<T, O, K> {
        self.affine(x)
    }

    fn forward_into<const K: usize>(
        &self,
        x: &SMatrix<T, I, K>,
        _cache: &mut Self::Cache<K>,
        out: &mut SMatrix<T, O, K>,
    ) {
        self.affine_into(x, out);
    }

    fn logits_into<const K: usize>(
        &self,
        x: &SMatrix<T, I, K>,
        _cache: &mut Self::Cache<K>,
        out: &mut SMatrix<T, O, K>,
    ) {
        Dense::logits_into(self, x, out);
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
        cache.as_mut_slice().copy_from_slice(dy.as_slice());
        self.affine_backward_with(t, x, dy, grad, dx);
    }

    fn start_from_prototypes<const K: usize>(
        &mut self,
        x: &SMatrix<T, I, K>,
        y: &SMatrix<T, O, K>,
        _cache: &mut Self::Cache<K>,
    ) {
        self.add_prototypes(x, y);
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
        let rz = self.affine_r(u, x, rx);
        let rdz = r_loss(&rz);
        self.affine_backward_r(u, x, rx, cache, &rdz, hv, rx.is_some())
    }
}
