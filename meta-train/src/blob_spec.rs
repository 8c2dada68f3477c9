//! A dense `w*` as plain values: the model's shape, the inner loop's settings and the arrays,
//! with every check the trainer's blobs pass. [`BlobSpec::encode`] makes the blob (for the
//! PyTorch importer and Python's `Blob.make`), [`BlobSpec::of`] reads one back; the layers in
//! PyTorch's order (`W` as outputs × inputs, row-major) come from [`BlobSpec::layers`].
//!
//! ```
//! use meta_train::blob_spec::BlobSpec;
//! use shared::wstar::Algorithm;
//! let mut spec = BlobSpec::new(vec![1, 4, 1], Algorithm::Maml, 1, 10);
//! spec.theta0 = vec![0.5; spec.params()];
//! spec.alpha = vec![0.01];
//! let bytes = spec.encode()?;
//! assert_eq!(BlobSpec::of(&bytes)?, spec);
//! spec.alpha = vec![0.01; 3];
//! assert!(spec.encode().unwrap_err().to_string().contains("α has 3 values"));
//! # anyhow::Ok(())
//! ```

use anyhow::{bail, Result};
use shared::loss::Loss;
use shared::wstar::{self, Algorithm, AlphaKind, Blob, Meta};

use crate::link::firmware;

/// A dense `w*`: everything it stores, in the blob's order.
#[derive(Clone, Debug, PartialEq)]
pub struct BlobSpec {
    /// Layer widths: input, hidden…, output.
    pub shape: Vec<u32>,
    /// The task loss.
    pub loss: Loss,
    /// The algorithm that trained it (the device only reports it); Meta-SGD stores one `α`
    /// per parameter, the others one scalar, and ANIL adapts the last layer only.
    pub algorithm: Algorithm,
    /// Inner steps the device runs.
    pub steps: u16,
    /// Samples per task it was trained with (the firmware holds at least as many).
    pub trained_k: u16,
    /// `θ0`, layer by layer: each layer's weights (outputs × inputs, column-major), then its
    /// biases.
    pub theta0: Vec<f32>,
    /// `α`: one value, or one per parameter in the order of `theta0`.
    pub alpha: Vec<f32>,
    /// Per-input mean and standard deviation the device normalises samples with.
    pub x_mean: Vec<f32>,
    /// See `x_mean`.
    pub x_std: Vec<f32>,
    /// Per-output mean and standard deviation (regression targets; 0 and 1 for a classifier).
    pub y_mean: Vec<f32>,
    /// See `y_mean`.
    pub y_std: Vec<f32>,
    /// A step whose loss on the samples rises above this is undone (infinite: only
    /// non-finite losses).
    pub loss_bound: f32,
    /// Seed of the run that made it.
    pub seed: u64,
}

/// One dense layer in PyTorch's layout: `weight` is outputs × inputs, row-major.
#[derive(Clone, Debug, PartialEq)]
pub struct Layer {
    /// Inputs.
    pub inputs: usize,
    /// Outputs.
    pub outputs: usize,
    /// `outputs × inputs` weights, row-major (`nn.Linear.weight`).
    pub weight: Vec<f32>,
    /// `outputs` biases.
    pub bias: Vec<f32>,
}

/// Parameters of a dense model of layer widths `shape` (saturating).
fn params_of(shape: &[u32]) -> usize {
    shape.windows(2).fold(0usize, |n, w| {
        let (i, o) = (w[0] as usize, w[1] as usize);
        n.saturating_add(i.saturating_mul(o).saturating_add(o))
    })
}

impl BlobSpec {
    /// A spec for `shape` with zero `θ0`, no `α` yet, identity normalisation, MSE loss, no
    /// loss bound and seed 0.
    pub fn new(shape: Vec<u32>, algorithm: Algorithm, steps: u16, trained_k: u16) -> Self {
        let (i, o) = (
            shape.first().copied().unwrap_or(0) as usize,
            shape.last().copied().unwrap_or(0) as usize,
        );
        Self {
            theta0: vec![0.0; params_of(&shape)],
            shape,
            loss: Loss::Mse,
            algorithm,
            steps,
            trained_k,
            alpha: Vec::new(),
            x_mean: vec![0.0; i],
            x_std: vec![1.0; i],
            y_mean: vec![0.0; o],
            y_std: vec![1.0; o],
            loss_bound: f32::INFINITY,
            seed: 0,
        }
    }

    /// Parameters of the model.
    pub fn params(&self) -> usize {
        params_of(&self.shape)
    }

    /// The blob, after the checks: one or two hidden layers (what the device's firmware is
    /// built for), every length as the shape implies, finite values, positive scales, at
    /// least one step, a K the firmware can hold, a classifier with two classes or more, and
    /// `α`'s kind as the algorithm stores it.
    pub fn encode(&self) -> Result<Vec<u8>> {
        let layers = self.shape.len().saturating_sub(1);
        if !(2..=3).contains(&layers) {
            bail!(
                "the device runs dense models with one or two hidden layers (3 or 4 layer \
                 widths); this one has {} widths {:?}",
                self.shape.len(),
                self.shape
            );
        }
        if let Some(w) = self
            .shape
            .iter()
            .find(|&&w| w == 0 || w > u32::from(u16::MAX))
        {
            bail!(
                "layer width {w} in {:?}: widths are 1 to {}",
                self.shape,
                u16::MAX
            );
        }
        let params = self.params();
        let (inputs, outputs) = (self.shape[0] as usize, self.shape[layers] as usize);
        let alpha_kind = self.algorithm.alpha_kind();
        let alpha_len = alpha_kind.len(params, layers, usize::from(self.steps));
        let shape = self.shape_name();
        let alpha_says = match alpha_kind {
            AlphaKind::Scalar => format!("{} stores one α", self.algorithm.name()),
            AlphaKind::PerParameter => format!(
                "{} stores one α per parameter ({params})",
                self.algorithm.name()
            ),
            AlphaKind::PerLayerPerStep => format!(
                "{} stores one α per layer and step ({layers} layers × {} steps, step by step)",
                self.algorithm.name(),
                self.steps
            ),
        };
        let lengths = [
            (
                "θ0",
                &self.theta0,
                params,
                format!("the {shape} model has {params} parameters"),
            ),
            ("α", &self.alpha, alpha_len, alpha_says),
            (
                "x_mean",
                &self.x_mean,
                inputs,
                format!("the {shape} model has {inputs} inputs"),
            ),
            (
                "x_std",
                &self.x_std,
                inputs,
                format!("the {shape} model has {inputs} inputs"),
            ),
            (
                "y_mean",
                &self.y_mean,
                outputs,
                format!("the {shape} model has {outputs} outputs"),
            ),
            (
                "y_std",
                &self.y_std,
                outputs,
                format!("the {shape} model has {outputs} outputs"),
            ),
        ];
        for (name, values, expected, why) in lengths {
            if values.len() != expected {
                bail!("{name} has {} values; {why}", values.len());
            }
            if let Some(k) = values.iter().position(|v| !v.is_finite()) {
                bail!("{name}[{k}] is {}: every value must be finite", values[k]);
            }
        }
        for (name, values) in [("x_std", &self.x_std), ("y_std", &self.y_std)] {
            if let Some(k) = values.iter().position(|&v| v <= 0.0) {
                bail!("{name}[{k}] is {}: a scale must be positive", values[k]);
            }
        }
        if self.steps == 0 {
            bail!("steps is 0: the device runs at least one inner step");
        }
        if self.trained_k == 0 {
            bail!("K is 0: a w* is trained for at least one sample per task");
        }
        if self.loss == Loss::SoftmaxCrossEntropy && outputs < 2 {
            bail!("a softmax cross-entropy classifier needs two outputs (classes) or more, not {outputs}");
        }
        if self.loss_bound.is_nan() || self.loss_bound <= 0.0 {
            bail!(
                "the loss bound is {}: it is a positive loss, or infinite for none",
                self.loss_bound
            );
        }
        let meta = Meta {
            // At most four widths, checked above.
            shape: self.shape.iter().copied().collect(),
            params: params as u32,
            loss: self.loss,
            algorithm: self.algorithm,
            alpha: alpha_kind,
            steps: self.steps,
            adapt: self.algorithm.mask(layers),
            trained_k: self.trained_k,
            loss_bound: self.loss_bound,
            seed: self.seed,
        };
        let bytes = wstar::encode(
            &meta,
            &self.theta0,
            &self.alpha,
            &self.x_mean,
            &self.x_std,
            &self.y_mean,
            &self.y_std,
        )
        .map_err(|e| anyhow::anyhow!("{e}"))?;
        Blob::parse(&bytes).map_err(|e| anyhow::anyhow!("{e}"))?;
        firmware::for_blob(&bytes, None)?;
        Ok(bytes)
    }

    /// The spec of a dense blob (an image classifier's, with a convolutional body, has none).
    pub fn of(bytes: &[u8]) -> Result<Self> {
        let blob = Blob::parse(bytes).map_err(|e| anyhow::anyhow!("{e}"))?;
        if blob.body().is_some() {
            bail!(
                "this w* is an image classifier with a convolutional body: only dense models \
                 have a plain-array form"
            );
        }
        let m = &blob.meta;
        let (inputs, outputs) = (m.shape[0] as usize, m.shape[m.shape.len() - 1] as usize);
        let expected_mask = m.algorithm.mask(m.shape.len() - 1);
        if m.adapt != expected_mask {
            bail!(
                "this w* adapts layers {:#x}, not those its algorithm {} adapts",
                m.adapt.0,
                m.algorithm.name()
            );
        }
        Ok(Self {
            shape: m.shape.to_vec(),
            loss: m.loss,
            algorithm: m.algorithm,
            steps: m.steps,
            trained_k: m.trained_k,
            theta0: (0..m.params as usize).map(|k| blob.theta0(k)).collect(),
            alpha: (0..blob.alpha_len()).map(|k| blob.alpha(k)).collect(),
            x_mean: (0..inputs).map(|i| blob.input_norm(i).0).collect(),
            x_std: (0..inputs).map(|i| blob.input_norm(i).1).collect(),
            y_mean: (0..outputs).map(|i| blob.output_norm(i).0).collect(),
            y_std: (0..outputs).map(|i| blob.output_norm(i).1).collect(),
            loss_bound: m.loss_bound,
            seed: m.seed,
        })
    }

    /// The shape as `1-40-40-1`.
    pub fn shape_name(&self) -> String {
        let w: Vec<String> = self.shape.iter().map(u32::to_string).collect();
        w.join("-")
    }

    /// `values` (θ0, or per-parameter α) cut into layers in PyTorch's layout.
    ///
    /// ```
    /// use meta_train::blob_spec::BlobSpec;
    /// use shared::wstar::Algorithm;
    /// let mut spec = BlobSpec::new(vec![2, 3], Algorithm::Maml, 1, 1);
    /// // W (3 × 2) column-major, then b.
    /// spec.theta0 = vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0];
    /// let l = &spec.layers(&spec.theta0)[0];
    /// assert_eq!(l.weight, [1.0, 4.0, 2.0, 5.0, 3.0, 6.0]); // row o: W[o][i]
    /// assert_eq!(l.bias, [7.0, 8.0, 9.0]);
    /// ```
    pub fn layers(&self, values: &[f32]) -> Vec<Layer> {
        let mut at = 0;
        self.shape
            .windows(2)
            .map(|w| {
                let (inputs, outputs) = (w[0] as usize, w[1] as usize);
                let block = &values[at..at + inputs * outputs];
                let weight = (0..outputs * inputs)
                    .map(|k| block[(k % inputs) * outputs + k / inputs])
                    .collect();
                at += inputs * outputs;
                let bias = values[at..at + outputs].to_vec();
                at += outputs;
                Layer {
                    inputs,
                    outputs,
                    weight,
                    bias,
                }
            })
            .collect()
    }

    /// The flat values (the blob's order) of `layers` in PyTorch's layout: the inverse of
    /// [`BlobSpec::layers`].
    pub fn flatten(layers: &[Layer]) -> Vec<f32> {
        let mut out = Vec::new();
        for l in layers {
            out.extend(
                (0..l.inputs * l.outputs)
                    .map(|k| l.weight[(k % l.outputs) * l.inputs + k / l.outputs]),
            );
            out.extend_from_slice(&l.bias);
        }
        out
    }
}
