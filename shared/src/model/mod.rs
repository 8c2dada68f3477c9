//! Models whose shapes are const generics: parameters, forward, backward and the
//! Hessian-vector product the host needs for second-order meta-gradients.
//!
//! A model is a stack of layers: [`Hidden`] (dense + ReLU) layers ending in a linear [`Dense`]
//! output layer. The MAML sinusoid net 1-40-40-1 is `Hidden<f32, 1, 40, 1, Hidden<f32, 40, 40,
//! 1, Dense<f32, 40, 1>>>`, written [`Mlp2`]`<f32, 1, 40, 40, 1>`.
//!
//! ```
//! use nalgebra::SMatrix;
//! use shared::model::{Layers, Mlp2, Params};
//! type Net = Mlp2<f32, 1, 8, 8, 1>;
//! let net = Net::zeros();
//! let x = SMatrix::<f32, 1, 4>::from_element(0.5);
//! let mut cache = Net::new_cache::<4>();
//! let y = net.forward(&x, &mut cache);
//! assert_eq!(y, SMatrix::<f32, 1, 4>::zeros());
//! assert_eq!(Net::PARAMS, 8 + 8 + 64 + 8 + 8 + 1);
//! ```

mod dense;
mod hidden;
pub mod kernels;
mod prototypes;

pub use dense::Dense;
pub use hidden::{Hidden, HiddenCache};

use nalgebra::SMatrix;

use crate::math::Real;

/// A multilayer perceptron with one ReLU hidden layer: `I`-`H`-`O`.
pub type Mlp1<T, const I: usize, const H: usize, const O: usize> =
    Hidden<T, I, H, O, Dense<T, H, O>>;

/// A multilayer perceptron with two ReLU hidden layers: `I`-`H1`-`H2`-`O`.
pub type Mlp2<T, const I: usize, const H1: usize, const H2: usize, const O: usize> =
    Hidden<T, I, H1, O, Hidden<T, H1, H2, O, Dense<T, H2, O>>>;

/// The MAML paper's sinusoid regressor: 1-40-40-1, ReLU (1,761 parameters), in `f32` unless
/// named with another scalar (`SinusoidNet<Q20>`). The firmware and the host trainer name it
/// from here.
pub type SinusoidNet<T = f32> = Mlp2<T, 1, 40, 40, 1>;

/// A value with every number zero, as a constant: buffers built from it can sit in a
/// `static` in zero-initialised RAM (`.bss`) instead of being built on a small stack.
///
/// ```
/// use shared::model::{Mlp1, Zeroed};
/// static NET: Mlp1<f32, 1, 8, 1> = Mlp1::ZERO;
/// assert_eq!(NET.layer.w[(3, 0)], 0.0);
/// ```
pub trait Zeroed {
    /// All zeros.
    const ZERO: Self;
}

impl<T: Real, const R: usize, const C: usize> Zeroed for SMatrix<T, R, C> {
    const ZERO: Self = SMatrix::from_array_storage(nalgebra::ArrayStorage([[T::ZERO; R]; C]));
}

/// The most layers a model may have (bits of the adapt mask, entries of the shape list).
pub const MAX_LAYERS: usize = 16;

/// A model's parameters, visited as flat slices in one fixed order: layer by layer, each
/// layer's weights (column-major) then its biases. That order is the order of `θ0` and `α` in
/// the `w*` blob.
pub trait Params<T: Real>: Clone + Zeroed {
    /// Number of weight layers.
    const LAYERS: usize;
    /// Number of scalar parameters.
    const PARAMS: usize;
    /// All parameters zero.
    fn zeros() -> Self {
        Self::ZERO
    }
    /// Calls `f(layer, slice)` on every parameter slice, in order.
    fn for_each(&self, f: &mut dyn FnMut(usize, &[T]));
    /// Calls `f(layer, slice)` on every parameter slice, in order, mutably.
    fn for_each_mut(&mut self, f: &mut dyn FnMut(usize, &mut [T]));
    /// Calls `f(layer, mine, theirs)` on matching slices of `self` and `other`.
    #[allow(clippy::type_complexity)] // a plain callback; an alias would only hide it
    fn zip_mut(&mut self, other: &Self, f: &mut dyn FnMut(usize, &mut [T], &[T]));

    /// Fills every parameter from `f(flat_index)`.
    fn fill_with(&mut self, mut f: impl FnMut(usize) -> T) {
        let mut k = 0;
        self.for_each_mut(&mut |_, s| {
            for v in s.iter_mut() {
                *v = f(k);
                k += 1;
            }
        });
    }
    /// `self += a · other`.
    fn add_scaled(&mut self, a: T, other: &Self) {
        self.zip_mut(other, &mut |_, m, o| {
            for (m, &o) in m.iter_mut().zip(o) {
                *m += a * o;
            }
        });
    }
    /// Index of the first non-finite parameter, if any.
    fn first_non_finite(&self) -> Option<usize> {
        let (mut k, mut found) = (0, None);
        self.for_each(&mut |_, s| {
            for &v in s {
                if found.is_none() && !v.is_finite() {
                    found = Some(k);
                }
                k += 1;
            }
        });
        found
    }
}

/// A model's layer widths, whatever its scalar: what the `w*` format's signature and shape
/// checks read, so a blob is checked the same way for an `f32` and a fixed-point adapter.
///
/// ```
/// use shared::fixed::Q20;
/// use shared::model::{Mlp2, Shape, SinusoidNet};
/// let mut widths = vec![];
/// <SinusoidNet>::shape(&mut |w| widths.push(w));
/// assert_eq!(widths, [1, 40, 40, 1]);
/// assert_eq!(Mlp2::<Q20, 1, 40, 40, 1>::WIDEST, 40);
/// ```
pub trait Shape {
    /// Calls `f(width)` for the input width, each hidden width and the output width.
    fn shape(f: &mut dyn FnMut(usize));

    /// The largest of those widths: the most terms a sum over one layer's inputs or outputs
    /// has (see [`Real::MAX_TERMS`]).
    const WIDEST: usize;

    /// Parameters of the dense layers between those widths ([`Params::PARAMS`] of any
    /// scalar).
    fn params() -> usize {
        let (mut prev, mut n) = (None, 0);
        Self::shape(&mut |w| {
            if let Some(p) = prev {
                n += p * w + w;
            }
            prev = Some(w);
        });
        n
    }
}

/// A stack of layers mapping `I` inputs to `O` outputs, batched over `K` samples (the columns
/// of the input matrix).
pub trait Layers<T: Real, const I: usize, const O: usize>: Params<T> + Shape {
    /// What the forward pass keeps for the backward pass and the Hessian-vector product.
    type Cache<const K: usize>: Clone + Zeroed;

    /// A fresh cache.
    fn new_cache<const K: usize>() -> Self::Cache<K> {
        Self::Cache::<K>::ZERO
    }

    /// The forward pass: returns the outputs and fills `cache`.
    fn forward<const K: usize>(
        &self,
        x: &SMatrix<T, I, K>,
        cache: &mut Self::Cache<K>,
    ) -> SMatrix<T, O, K>;

    /// [`Layers::forward`] written into `out`.
    fn forward_into<const K: usize>(
        &self,
        x: &SMatrix<T, I, K>,
        cache: &mut Self::Cache<K>,
        out: &mut SMatrix<T, O, K>,
    ) {
        *out = self.forward(x, cache);
    }

    /// [`Layers::forward_into`] for a classifier's logits (its output layer's
    /// [`Dense::logits_into`]): in an arithmetic that saturates, each sample's are shifted so
    /// the largest is 0, which no softmax sees; otherwise the same bits as `forward_into`.
    ///
    /// ```
    /// use nalgebra::SMatrix;
    /// use shared::model::{Layers, Mlp1, Params};
    /// type Net = Mlp1<f32, 1, 2, 2>;
    /// let mut net = Net::zeros();
    /// net.fill_with(|k| k as f32 * 0.5);
    /// let x = SMatrix::<f32, 1, 3>::new(-1.0, 0.5, 2.0);
    /// let mut z = SMatrix::zeros();
    /// net.logits_into(&x, &mut Net::new_cache::<3>(), &mut z);
    /// assert_eq!(z, net.forward(&x, &mut Net::new_cache::<3>()));
    /// ```
    fn logits_into<const K: usize>(
        &self,
        x: &SMatrix<T, I, K>,
        cache: &mut Self::Cache<K>,
        out: &mut SMatrix<T, O, K>,
    );

    /// The backward pass after [`Layers::forward`] on the same `x`: writes `∂L/∂θ` into `grad`
    /// given `dy = ∂L/∂output`, and `∂L/∂x` into `dx` when given (both overwritten); keeps what
    /// [`Layers::hvp`] needs in `cache`.
    fn backward<const K: usize>(
        &self,
        x: &SMatrix<T, I, K>,
        cache: &mut Self::Cache<K>,
        dy: &SMatrix<T, O, K>,
        grad: &mut Self,
        dx: Option<&mut SMatrix<T, I, K>>,
    ) {
        self.backward_with(None, x, cache, dy, grad, dx);
    }

    /// Every layer's weights transposed, `Wᵀ`: what a backward pass needs for `∂L/∂x`, kept by
    /// a caller that runs many backward passes through the same parameters (the trainer's
    /// support passes through `θ0`) so each does not transpose them again.
    type Transposed: Clone + core::fmt::Debug + PartialEq;

    /// `Wᵀ` of every layer.
    fn transposed(&self) -> Self::Transposed;

    /// [`Layers::transposed`] written into `t`, for a caller that keeps the buffer.
    ///
    /// ```
    /// use shared::model::{Layers, Params, SinusoidNet};
    /// let mut net = <SinusoidNet>::zeros();
    /// net.fill_with(|k| k as f32);
    /// let mut t = <SinusoidNet>::zeros().transposed();
    /// net.transpose_to(&mut t);
    /// assert_eq!(t, net.transposed());
    /// ```
    fn transpose_to(&self, t: &mut Self::Transposed);

    /// [`Layers::backward`], given `t = self.transposed()` when the caller keeps it: the same
    /// bits either way.
    ///
    /// ```
    /// use nalgebra::SMatrix;
    /// use shared::model::{Layers, Params, SinusoidNet};
    /// let mut net = <SinusoidNet>::zeros();
    /// net.fill_with(|k| ((k * 7 % 13) as f32 - 6.0) * 0.05);
    /// let x = SMatrix::<f32, 1, 3>::new(-1.0, 0.5, 2.0);
    /// let dy = SMatrix::<f32, 1, 3>::new(0.3, -0.2, 0.1);
    /// let (mut c1, mut c2) = (<SinusoidNet>::new_cache::<3>(), <SinusoidNet>::new_cache::<3>());
    /// let (mut g1, mut g2) = (<SinusoidNet>::zeros(), <SinusoidNet>::zeros());
    /// net.forward(&x, &mut c1);
    /// net.forward(&x, &mut c2);
    /// let (mut dx1, mut dx2) = (SMatrix::zeros(), SMatrix::zeros());
    /// net.backward(&x, &mut c1, &dy, &mut g1, Some(&mut dx1));
    /// net.backward_with(Some(&net.transposed()), &x, &mut c2, &dy, &mut g2, Some(&mut dx2));
    /// assert_eq!((g1, dx1), (g2, dx2));
    /// ```
    fn backward_with<const K: usize>(
        &self,
        t: Option<&Self::Transposed>,
        x: &SMatrix<T, I, K>,
        cache: &mut Self::Cache<K>,
        dy: &SMatrix<T, O, K>,
        grad: &mut Self,
        dx: Option<&mut SMatrix<T, I, K>>,
    );

    /// Adds to the output layer the class prototypes of the samples `x` (one per column,
    /// targets `y`) in the space of its inputs (see [`Dense::add_prototypes`]): the head then
    /// starts as a nearest-prototype classifier on the features the layers before it compute.
    /// Uses `cache` for those features.
    ///
    /// ```
    /// use nalgebra::SMatrix;
    /// use shared::model::{Layers, Mlp1, Params};
    /// type Net = Mlp1<f32, 1, 2, 2>;
    /// let mut net = Net::zeros();
    /// net.layer.w[(0, 0)] = 1.0; // feature 0 = relu(x)
    /// let x = SMatrix::<f32, 1, 2>::new(1.0, 3.0);
    /// let y = SMatrix::<f32, 2, 2>::new(1.0, 0.0, 0.0, 1.0);
    /// net.start_from_prototypes(&x, &y, &mut Net::new_cache::<2>());
    /// // prototypes 1 and 3: the output layer's weights are 2 and 6, its biases −1 and −9
    /// assert_eq!((net.rest.w[(0, 0)], net.rest.w[(1, 0)]), (2.0, 6.0));
    /// assert_eq!((net.rest.b[0], net.rest.b[1]), (-1.0, -9.0));
    /// ```
    fn start_from_prototypes<const K: usize>(
        &mut self,
        x: &SMatrix<T, I, K>,
        y: &SMatrix<T, O, K>,
        cache: &mut Self::Cache<K>,
    );

    /// The Hessian-vector product `H·u` of the loss after [`Layers::backward`] (Pearlmutter's
    /// R-operator): `rx` is the directional derivative of the input (`None` for data),
    /// `r_loss(r_out)` maps the directional derivative of the outputs to that of `dy`.
    /// Writes `H·u` into `hv` and returns the directional derivative of `∂L/∂x`.
    fn hvp<const K: usize>(
        &self,
        u: &Self,
        x: &SMatrix<T, I, K>,
        rx: Option<&SMatrix<T, I, K>>,
        cache: &Self::Cache<K>,
        r_loss: &mut dyn FnMut(&SMatrix<T, O, K>) -> SMatrix<T, O, K>,
        hv: &mut Self,
    ) -> SMatrix<T, I, K>;
}

/// Multiply-adds of one forward pass over `k` samples (`2 ×` this is its FLOPs).
///
/// ```
/// use shared::model::{forward_macs, Mlp2};
/// assert_eq!(forward_macs::<Mlp2<f32, 1, 40, 40, 1>, 1, 1>(1), 40 + 1600 + 40);
/// ```
pub fn forward_macs<M: Shape, const I: usize, const O: usize>(k: usize) -> usize {
    let (mut prev, mut macs) = (0usize, 0usize);
    M::shape(&mut |w| {
        macs += prev * w;
        prev = w;
    });
    macs * k
}
