//! PyTorch models and `w*`: a `state_dict` of an MLP (`nn.Sequential` of `Linear` and `ReLU`)
//! saved with `safetensors.torch.save_file` becomes a [`BlobSpec`] ([`import`]), and a dense
//! blob becomes such a file again ([`state_dict`]).
//!
//! The keys may be plain (`0.weight`, `0.bias`, `2.weight`, …), wrapped by learn2learn
//! (`module.0.weight`, …), or named (`hidden1.weight`, with the order given in
//! [`ImportOptions::layers`]). learn2learn's Meta-SGD keeps one learning-rate tensor per
//! parameter (`lrs.0`, `lrs.1`, … in `module.parameters()` order): they become the blob's
//! per-parameter `α`. `nn.Linear` stores `W` as outputs × inputs, row-major; the blob stores
//! each layer's `W` column-major, so every weight is transposed on the way.
//!
//! What the state_dict does not hold (the step count, K, a scalar `α`, the loss) comes from
//! the options, or from the `tinyadapt.*` metadata [`state_dict`] writes, so a blob survives
//! the round trip byte for byte.
//!
//! ```
//! use meta_train::blob_spec::BlobSpec;
//! use meta_train::pytorch::{import, state_dict, ImportOptions, Layout};
//! use shared::wstar::Algorithm;
//! let mut spec = BlobSpec::new(vec![1, 8, 8, 1], Algorithm::Maml, 5, 10);
//! spec.theta0 = (0..spec.params()).map(|k| k as f32 / 100.0).collect();
//! spec.alpha = vec![0.01];
//! let file = state_dict(&spec, Layout::Learn2learn)?;
//! assert_eq!(import(&file, &ImportOptions::default())?, spec);
//! # anyhow::Ok(())
//! ```

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::str::FromStr;

use anyhow::{anyhow, bail, Context, Result};
use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};
use shared::loss::Loss;
use shared::wstar::Algorithm;

use crate::blob_spec::{BlobSpec, Layer};

/// The names of the losses on the command line and in the metadata.
pub const LOSSES: [(&str, Loss); 2] = [
    ("mse", Loss::Mse),
    ("cross-entropy", Loss::SoftmaxCrossEntropy),
];

/// The name of `loss` (`mse`, `cross-entropy`).
pub fn loss_name(loss: Loss) -> &'static str {
    LOSSES
        .iter()
        .find(|(_, l)| *l == loss)
        .map_or("mse", |(n, _)| n)
}

/// The loss named `name`.
///
/// ```
/// assert_eq!(meta_train::pytorch::parse_loss("cross-entropy")?, shared::loss::Loss::SoftmaxCrossEntropy);
/// assert!(meta_train::pytorch::parse_loss("l1").is_err());
/// # anyhow::Ok(())
/// ```
pub fn parse_loss(name: &str) -> Result<Loss> {
    LOSSES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, l)| *l)
        .ok_or_else(|| anyhow!("the loss is mse or cross-entropy, not {name:?}"))
}

/// How [`state_dict`] names the tensors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// `nn.Sequential`'s own keys: `0.weight`, `0.bias`, `2.weight`, …
    Sequential,
    /// Wrapped in learn2learn's `MAML` or `MetaSGD`: `module.0.weight`, …
    Learn2learn,
}

impl Layout {
    /// Every layout.
    pub const ALL: [Layout; 2] = [Layout::Sequential, Layout::Learn2learn];

    /// Its name (`sequential`, `learn2learn`).
    pub fn name(self) -> &'static str {
        match self {
            Layout::Sequential => "sequential",
            Layout::Learn2learn => "learn2learn",
        }
    }

    fn prefix(self) -> &'static str {
        match self {
            Layout::Sequential => "",
            Layout::Learn2learn => "module.",
        }
    }
}

impl fmt::Display for Layout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Layout {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> Result<Self> {
        Layout::ALL
            .into_iter()
            .find(|l| l.name() == s)
            .ok_or_else(|| anyhow!("the layout is sequential or learn2learn, not {s:?}"))
    }
}

/// What a state_dict does not hold. `None` takes the file's `tinyadapt.*` metadata, then the
/// default where there is one.
#[derive(Clone, Debug, Default)]
pub struct ImportOptions {
    /// The `Linear` layers' names in order (`hidden1`, `hidden2`, …), for a module whose
    /// layers are not numbered as in `nn.Sequential`.
    pub layers: Option<Vec<String>>,
    /// Inner steps the device runs (required unless in the metadata).
    pub steps: Option<u16>,
    /// Samples per task the model was trained with (required unless in the metadata).
    pub k: Option<u16>,
    /// The scalar inner step size (required unless the file has `lrs.N` or the metadata has
    /// it).
    pub alpha: Option<f32>,
    /// The algorithm (default: metasgd with `lrs.N`, maml without).
    pub algorithm: Option<Algorithm>,
    /// The loss (default: mse).
    pub loss: Option<Loss>,
    /// Input mean and standard deviation the device normalises with (default: 0 and 1, the
    /// model takes its inputs as they come).
    pub x_norm: Option<(Vec<f32>, Vec<f32>)>,
    /// Output mean and standard deviation (default: 0 and 1).
    pub y_norm: Option<(Vec<f32>, Vec<f32>)>,
    /// Loss bound of the divergence guard (default: none).
    pub loss_bound: Option<f32>,
    /// Seed recorded in the blob (default: 0).
    pub seed: Option<u64>,
}

/// Metadata keys [`state_dict`] writes and [`import`] reads.
mod key {
    pub const STEPS: &str = "tinyadapt.steps";
    pub const K: &str = "tinyadapt.trained_k";
    pub const ALPHA: &str = "tinyadapt.alpha";
    pub const ALGORITHM: &str = "tinyadapt.algorithm";
    pub const LOSS: &str = "tinyadapt.loss";
    pub const X_MEAN: &str = "tinyadapt.x_mean";
    pub const X_STD: &str = "tinyadapt.x_std";
    pub const Y_MEAN: &str = "tinyadapt.y_mean";
    pub const Y_STD: &str = "tinyadapt.y_std";
    pub const LOSS_BOUND: &str = "tinyadapt.loss_bound";
    pub const SEED: &str = "tinyadapt.seed";
}

/// A tensor of a state_dict, as float32.
#[derive(Clone, Debug, PartialEq)]
pub struct Tensor {
    /// Its key (`0.weight`, `module.2.bias`, `lrs.3`).
    pub name: String,
    /// Its shape (`[outputs, inputs]` for a Linear layer's weight).
    pub shape: Vec<usize>,
    /// Its values, row-major.
    pub values: Vec<f32>,
}

/// A state_dict's tensors and the file's metadata (string pairs).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StateDict {
    /// The tensors, in the file's order.
    pub tensors: Vec<Tensor>,
    /// The metadata (`format`, `tinyadapt.*`).
    pub metadata: HashMap<String, String>,
}

impl StateDict {
    /// The tensors and metadata of a safetensors file; float32 and float64 tensors only.
    pub fn read(file: &[u8]) -> Result<Self> {
        let st =
            SafeTensors::deserialize(file).map_err(|e| anyhow!("not a safetensors file: {e}"))?;
        let (_, header) =
            SafeTensors::read_metadata(file).map_err(|e| anyhow!("not a safetensors file: {e}"))?;
        let tensors = st
            .tensors()
            .into_iter()
            .map(|(name, view)| read_tensor(name, &view))
            .collect::<Result<_>>()?;
        Ok(Self {
            tensors,
            metadata: header.metadata().clone().unwrap_or_default(),
        })
    }

    /// The safetensors file, as `safetensors.torch.save_file` writes it (float32).
    pub fn to_file(&self) -> Result<Vec<u8>> {
        let data: Vec<Vec<u8>> = self
            .tensors
            .iter()
            .map(|t| t.values.iter().flat_map(|x| x.to_le_bytes()).collect())
            .collect();
        let views = self
            .tensors
            .iter()
            .zip(&data)
            .map(|(t, d)| {
                TensorView::new(Dtype::F32, t.shape.clone(), d)
                    .map(|v| (t.name.clone(), v))
                    .map_err(|e| anyhow!("tensor {}: {e}", t.name))
            })
            .collect::<Result<Vec<_>>>()?;
        let meta = (!self.metadata.is_empty()).then(|| self.metadata.clone());
        safetensors::serialize(views, meta).map_err(|e| anyhow!("cannot write safetensors: {e}"))
    }
}

fn read_tensor(name: String, view: &TensorView<'_>) -> Result<Tensor> {
    let data = view.data();
    let values = match view.dtype() {
        Dtype::F32 => data
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect(),
        Dtype::F64 => data
            .chunks_exact(8)
            .map(|b| f64::from_le_bytes(b.try_into().expect("8 bytes")) as f32)
            .collect(),
        other => bail!(
            "tensor {name:?} is {other:?}: the device computes in float32; save the model \
             after `model.float()`"
        ),
    };
    Ok(Tensor {
        name,
        shape: view.shape().to_vec(),
        values,
    })
}

/// The `Linear` layers' names in order: `given`, or the numbered layers of an
/// `nn.Sequential` (with or without a wrapper's prefix), checked to alternate with
/// parameterless modules (the `ReLU`s).
fn layer_order(found: &[String], given: Option<&[String]>) -> Result<Vec<String>> {
    if let Some(given) = given {
        let mut order = Vec::new();
        for name in given {
            let hit = [name.clone(), format!("module.{name}")]
                .into_iter()
                .find(|n| found.contains(n))
                .ok_or_else(|| {
                    anyhow!(
                        "--layers names {name:?}, but the file's Linear layers are {}",
                        found.join(", ")
                    )
                })?;
            order.push(hit);
        }
        if let Some(extra) = found.iter().find(|f| !order.contains(f)) {
            bail!(
                "the file has a Linear layer {extra:?} that --layers ({}) does not name",
                given.join(",")
            );
        }
        return Ok(order);
    }
    let mut numbered = Vec::new();
    for name in found {
        let (prefix, index) = name.rsplit_once('.').unwrap_or(("", name));
        let Ok(index) = index.parse::<usize>() else {
            bail!(
                "the Linear layers are named {}, not numbered as in nn.Sequential: give their \
                 order (input first) with --layers (Python: layers=[…])",
                found.join(", ")
            );
        };
        numbered.push((prefix.to_string(), index, name.clone()));
    }
    numbered.sort_by_key(|(_, i, _)| *i);
    if let Some((p, _, n)) = numbered.iter().find(|(p, _, _)| *p != numbered[0].0) {
        bail!(
            "the Linear layers {:?} and {n:?} sit in different modules ({:?} and {p:?}): give \
             their order with --layers",
            numbered[0].2,
            numbered[0].0
        );
    }
    for w in numbered.windows(2) {
        if w[1].1 != w[0].1 + 2 {
            bail!(
                "nn.Sequential modules {} and {} are Linear layers with {} module(s) between \
                 them: the device runs Linear, ReLU, Linear, …, ReLU, Linear",
                w[0].2,
                w[1].2,
                w[1].1.saturating_sub(w[0].1 + 1)
            );
        }
    }
    Ok(numbered.into_iter().map(|(_, _, n)| n).collect())
}

fn metadata_value<T: FromStr>(meta: &HashMap<String, String>, key: &str) -> Result<Option<T>>
where
    T::Err: fmt::Display,
{
    meta.get(key)
        .map(|v| {
            v.parse::<T>()
                .map_err(|e| anyhow!("metadata {key} = {v:?}: {e}"))
        })
        .transpose()
}

fn metadata_floats(meta: &HashMap<String, String>, key: &str) -> Result<Option<Vec<f32>>> {
    meta.get(key)
        .map(|v| {
            v.split(',')
                .map(|x| {
                    x.trim()
                        .parse::<f32>()
                        .map_err(|e| anyhow!("metadata {key} = {v:?}: {e}"))
                })
                .collect()
        })
        .transpose()
}

/// The blob spec of the state_dict in `file` (the bytes of a `.safetensors` file). Errors
/// name the key and what was expected.
pub fn import(file: &[u8], opts: &ImportOptions) -> Result<BlobSpec> {
    import_state_dict(StateDict::read(file)?, opts)
}

/// The blob spec of `state_dict` (see [`import`]).
pub fn import_state_dict(state_dict: StateDict, opts: &ImportOptions) -> Result<BlobSpec> {
    let meta = state_dict.metadata;
    let mut weights = BTreeMap::new();
    let mut biases = BTreeMap::new();
    let mut lrs = BTreeMap::new();
    for t in state_dict.tensors {
        let name = t.name.clone();
        if let Some(n) = name
            .strip_prefix("lrs.")
            .and_then(|n| n.parse::<usize>().ok())
        {
            lrs.insert(n, (name, t));
        } else if let Some(layer) = name.strip_suffix(".weight") {
            weights.insert(layer.to_string(), t);
        } else if let Some(layer) = name.strip_suffix(".bias") {
            biases.insert(layer.to_string(), t);
        } else {
            bail!(
                "tensor {name:?} is not a Linear layer's weight or bias, nor a Meta-SGD \
                 learning rate (lrs.N): the device runs Linear and ReLU layers only"
            );
        }
    }
    if let Some(b) = biases.keys().find(|b| !weights.contains_key(*b)) {
        bail!("tensor \"{b}.bias\" has no \"{b}.weight\"");
    }
    let found: Vec<String> = weights.keys().cloned().collect();
    if found.is_empty() {
        bail!("the file holds no Linear layer (no tensor named LAYER.weight)");
    }
    let order = layer_order(&found, opts.layers.as_deref())?;
    let mut layers = Vec::new();
    let mut shape = Vec::new();
    for name in &order {
        let w = &weights[name];
        let &[outputs, inputs] = w.shape.as_slice() else {
            bail!(
                "tensor \"{name}.weight\" has shape {:?}: a Linear layer's weight is 2-D, \
                 [outputs, inputs]",
                w.shape
            );
        };
        if let Some(&prev) = shape.last() {
            if inputs != prev as usize {
                bail!(
                    "tensor \"{name}.weight\" has shape [{outputs}, {inputs}]: expected \
                     [_, {prev}], its inputs being the previous layer's {prev} outputs"
                );
            }
        } else {
            shape.push(inputs as u32);
        }
        let b = biases.get(name).ok_or_else(|| {
            anyhow!(
                "layer {name:?} has no bias (\"{name}.bias\"): the device's layers have \
                 biases; use nn.Linear(…, bias=True)"
            )
        })?;
        if b.shape != [outputs] {
            bail!(
                "tensor \"{name}.bias\" has shape {:?}: expected [{outputs}]",
                b.shape
            );
        }
        shape.push(outputs as u32);
        layers.push(Layer {
            inputs,
            outputs,
            weight: w.values.clone(),
            bias: b.values.clone(),
        });
    }
    let learned = !lrs.is_empty();
    let algorithm = match opts.algorithm {
        Some(a) => a,
        None => match metadata_value::<String>(&meta, key::ALGORITHM)? {
            Some(a) => a
                .parse()
                .map_err(|e| anyhow!("metadata {}: {e}", key::ALGORITHM))?,
            None if learned => Algorithm::MetaSgd,
            None => Algorithm::Maml,
        },
    };
    if algorithm == Algorithm::Lslr {
        bail!(
            "per-layer per-step step sizes (lslr) are not read from a PyTorch file: train them \
             with `meta-train train --algorithm lslr`, or import as maml or metasgd"
        );
    }
    if learned != algorithm.learns_alpha() {
        bail!(
            "the file {} Meta-SGD learning rates (lrs.N), and {} {}",
            if learned { "has" } else { "has no" },
            algorithm.name(),
            if algorithm.learns_alpha() {
                "needs one per parameter"
            } else {
                "stores one scalar α: give it with --alpha, or --algorithm metasgd"
            }
        );
    }
    let alpha = if learned {
        if opts.alpha.is_some() {
            bail!("the file has Meta-SGD learning rates (lrs.N): they are α, so --alpha does not apply");
        }
        let mut tensors = Vec::new();
        for (l, layer) in layers.iter().enumerate() {
            for (n, what, expected) in [
                (2 * l, "weight", vec![layer.outputs, layer.inputs]),
                (2 * l + 1, "bias", vec![layer.outputs]),
            ] {
                let (name, t) = lrs.remove(&n).ok_or_else(|| {
                    anyhow!(
                        "no tensor \"lrs.{n}\": Meta-SGD keeps one learning rate per parameter \
                         tensor, and parameter {n} is {:?}'s {what}",
                        order[l]
                    )
                })?;
                if t.shape != expected {
                    bail!(
                        "tensor {name:?} has shape {:?}: expected {expected:?}, that of {:?}'s \
                         {what}",
                        t.shape,
                        order[l]
                    );
                }
                tensors.push(t.values);
            }
        }
        if let Some((_, (name, _))) = lrs.into_iter().next() {
            bail!(
                "tensor {name:?} is a learning rate for parameter tensor the model does not \
                 have ({} Linear layers, {} parameter tensors)",
                layers.len(),
                2 * layers.len()
            );
        }
        let per_layer: Vec<Layer> = layers
            .iter()
            .zip(tensors.chunks(2))
            .map(|(l, t)| Layer {
                weight: t[0].clone(),
                bias: t[1].clone(),
                ..l.clone()
            })
            .collect();
        BlobSpec::flatten(&per_layer)
    } else {
        let a = match opts.alpha {
            Some(a) => a,
            None => metadata_value::<f32>(&meta, key::ALPHA)?.ok_or_else(|| {
                anyhow!(
                    "the inner step size α is not in a state_dict: give it with --alpha (the \
                     lr of learn2learn's MAML)"
                )
            })?,
        };
        vec![a]
    };
    let steps = match opts.steps {
        Some(s) => s,
        None => metadata_value(&meta, key::STEPS)?.ok_or_else(|| {
            anyhow!("the number of inner steps is not in a state_dict: give it with --steps")
        })?,
    };
    let k = match opts.k {
        Some(k) => k,
        None => metadata_value(&meta, key::K)?.ok_or_else(|| {
            anyhow!(
                "the samples per task (K) the model was trained with are not in a state_dict: \
                 give them with --k (the firmware holds that many)"
            )
        })?,
    };
    let mut spec = BlobSpec::new(shape, algorithm, steps, k);
    spec.theta0 = BlobSpec::flatten(&layers);
    spec.alpha = alpha;
    spec.loss = match opts.loss {
        Some(l) => l,
        None => match meta.get(key::LOSS) {
            Some(l) => parse_loss(l).with_context(|| format!("metadata {}", key::LOSS))?,
            None => Loss::Mse,
        },
    };
    let norm = |given: &Option<(Vec<f32>, Vec<f32>)>, mean: &str, std: &str| -> Result<_> {
        Ok(match given {
            Some(n) => Some(n.clone()),
            None => match (metadata_floats(&meta, mean)?, metadata_floats(&meta, std)?) {
                (Some(m), Some(s)) => Some((m, s)),
                _ => None,
            },
        })
    };
    if let Some((m, s)) = norm(&opts.x_norm, key::X_MEAN, key::X_STD)? {
        (spec.x_mean, spec.x_std) = (m, s);
    }
    if let Some((m, s)) = norm(&opts.y_norm, key::Y_MEAN, key::Y_STD)? {
        (spec.y_mean, spec.y_std) = (m, s);
    }
    if let Some(b) = opts.loss_bound.or(metadata_value(&meta, key::LOSS_BOUND)?) {
        spec.loss_bound = b;
    }
    spec.seed = match opts.seed {
        Some(s) => s,
        None => metadata_value(&meta, key::SEED)?.unwrap_or(0),
    };
    spec.encode()?;
    Ok(spec)
}

fn floats_text(values: &[f32]) -> String {
    // Printed as the f64 of the same value, which parses back to the exact f32.
    let v: Vec<String> = values.iter().map(|&x| f64::from(x).to_string()).collect();
    v.join(",")
}

/// The state_dict of `spec`'s model in `layout`: float32 tensors, `W` as outputs × inputs;
/// per-parameter `α` as Meta-SGD's `lrs.N`; the rest in `tinyadapt.*` metadata.
pub fn state_dict_of(spec: &BlobSpec, layout: Layout) -> StateDict {
    let mut tensors = Vec::new();
    let mut push = |name: String, shape: Vec<usize>, values: &[f32]| {
        tensors.push(Tensor {
            name,
            shape,
            values: values.to_vec(),
        })
    };
    for (l, layer) in spec.layers(&spec.theta0).iter().enumerate() {
        let name = format!("{}{}", layout.prefix(), 2 * l);
        push(
            format!("{name}.weight"),
            vec![layer.outputs, layer.inputs],
            &layer.weight,
        );
        push(format!("{name}.bias"), vec![layer.outputs], &layer.bias);
    }
    let mut metadata = HashMap::from([
        ("format".to_string(), "pt".to_string()),
        (key::STEPS.into(), spec.steps.to_string()),
        (key::K.into(), spec.trained_k.to_string()),
        (key::ALGORITHM.into(), spec.algorithm.name().into()),
        (key::LOSS.into(), loss_name(spec.loss).into()),
        (key::X_MEAN.into(), floats_text(&spec.x_mean)),
        (key::X_STD.into(), floats_text(&spec.x_std)),
        (key::Y_MEAN.into(), floats_text(&spec.y_mean)),
        (key::Y_STD.into(), floats_text(&spec.y_std)),
        (
            key::LOSS_BOUND.into(),
            f64::from(spec.loss_bound).to_string(),
        ),
        (key::SEED.into(), spec.seed.to_string()),
    ]);
    if spec.alpha.len() == 1 {
        metadata.insert(key::ALPHA.into(), floats_text(&spec.alpha));
    } else {
        for (l, layer) in spec.layers(&spec.alpha).iter().enumerate() {
            push(
                format!("lrs.{}", 2 * l),
                vec![layer.outputs, layer.inputs],
                &layer.weight,
            );
            push(
                format!("lrs.{}", 2 * l + 1),
                vec![layer.outputs],
                &layer.bias,
            );
        }
    }
    StateDict { tensors, metadata }
}

/// [`state_dict_of`] as a safetensors file, as `safetensors.torch.save_file` writes one.
pub fn state_dict(spec: &BlobSpec, layout: Layout) -> Result<Vec<u8>> {
    state_dict_of(spec, layout).to_file()
}

#[cfg(test)]
mod tests {
    use super::*;
    use device::Adapter;
    use shared::model::Mlp1;

    /// A safetensors file of `tensors` (name, shape, values), as `save_file` writes one.
    fn file(tensors: &[(&str, Vec<usize>, Vec<f32>)]) -> Vec<u8> {
        let tensors = tensors
            .iter()
            .map(|(n, s, v)| Tensor {
                name: n.to_string(),
                shape: s.clone(),
                values: v.clone(),
            })
            .collect();
        StateDict {
            tensors,
            metadata: HashMap::new(),
        }
        .to_file()
        .unwrap()
    }

    fn opts() -> ImportOptions {
        ImportOptions {
            steps: Some(1),
            k: Some(5),
            alpha: Some(0.1),
            ..Default::default()
        }
    }

    /// A 2-3-1 net in PyTorch's layout, weights numbered so a transposition shows.
    fn net(prefix: &str) -> Vec<(String, Vec<usize>, Vec<f32>)> {
        vec![
            (
                format!("{prefix}0.weight"),
                vec![3, 2],
                vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
            ),
            (format!("{prefix}0.bias"), vec![3], vec![0.1, -20.0, 0.3]),
            (
                format!("{prefix}2.weight"),
                vec![1, 3],
                vec![0.5, -1.0, 2.0],
            ),
            (format!("{prefix}2.bias"), vec![1], vec![0.25]),
        ]
    }

    fn as_refs(t: &[(String, Vec<usize>, Vec<f32>)]) -> Vec<(&str, Vec<usize>, Vec<f32>)> {
        t.iter()
            .map(|(n, s, v)| (n.as_str(), s.clone(), v.clone()))
            .collect()
    }

    #[test]
    fn the_device_computes_what_pytorch_computes() {
        let spec = import(&file(&as_refs(&net("module."))), &opts()).unwrap();
        assert_eq!(spec.shape, [2, 3, 1]);
        let blob = spec.encode().unwrap();
        let a = Adapter::<Mlp1<f32, 2, 3, 1>, 2, 1, 5>::new(&blob).unwrap();
        let x = [0.5f32, -0.25];
        // relu(W1 x + b1) with W1 = [[1, 2], [3, 4], [5, 6]] (outputs × inputs), then W2 h + b2.
        let h = [
            (1.0f32 * 0.5 + 2.0 * -0.25 + 0.1).max(0.0),
            (3.0f32 * 0.5 + 4.0 * -0.25 - 20.0).max(0.0),
            (5.0f32 * 0.5 + 6.0 * -0.25 + 0.3).max(0.0),
        ];
        let y = 0.5 * h[0] - 1.0 * h[1] + 2.0 * h[2] + 0.25;
        assert!((a.predict(&x).unwrap()[0] - y).abs() < 1e-6);
    }

    #[test]
    fn plain_and_wrapped_keys_give_the_same_blob() {
        let plain = import(&file(&as_refs(&net(""))), &opts()).unwrap();
        let wrapped = import(&file(&as_refs(&net("module."))), &opts()).unwrap();
        assert_eq!(plain, wrapped);
    }

    #[test]
    fn named_layers_need_their_order() {
        let mut t = net("");
        for (n, _, _) in &mut t {
            *n = n.replace("0.", "hidden.").replace("2.", "out.");
        }
        let e = import(&file(&as_refs(&t)), &opts())
            .unwrap_err()
            .to_string();
        assert!(e.contains("hidden, out") && e.contains("--layers"), "{e}");
        let o = ImportOptions {
            layers: Some(vec!["hidden".into(), "out".into()]),
            ..opts()
        };
        let named = import(&file(&as_refs(&t)), &o).unwrap();
        assert_eq!(named, import(&file(&as_refs(&net(""))), &opts()).unwrap());
    }

    #[test]
    fn errors_name_the_key_and_the_shape_expected() {
        let mut t = net("");
        t[2].1 = vec![1, 4];
        t[2].2 = vec![0.0; 4];
        let e = import(&file(&as_refs(&t)), &opts())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("\"2.weight\" has shape [1, 4]: expected [_, 3]"),
            "{e}"
        );
        let mut t = net("");
        t[3].1 = vec![2];
        t[3].2 = vec![0.0; 2];
        let e = import(&file(&as_refs(&t)), &opts())
            .unwrap_err()
            .to_string();
        assert!(e.contains("\"2.bias\" has shape [2]: expected [1]"), "{e}");
        let mut t = net("");
        t[2].0 = "3.weight".into();
        t[3].0 = "3.bias".into();
        let e = import(&file(&as_refs(&t)), &opts())
            .unwrap_err()
            .to_string();
        assert!(e.contains("2 module(s) between"), "{e}");
        let mut t = net("");
        t.push(("1.running_mean".into(), vec![3], vec![0.0; 3]));
        let e = import(&file(&as_refs(&t)), &opts())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("\"1.running_mean\" is not a Linear layer's"),
            "{e}"
        );
        let e = import(&file(&as_refs(&net("")[..3])), &opts())
            .unwrap_err()
            .to_string();
        assert!(e.contains("layer \"2\" has no bias"), "{e}");
    }

    #[test]
    fn meta_sgd_learning_rates_are_per_parameter_alpha_in_layout() {
        let mut t = net("module.");
        let lr = |n: usize| (0..n).map(|k| 0.01 * (k + 1) as f32).collect::<Vec<_>>();
        t.push(("lrs.0".into(), vec![3, 2], lr(6)));
        t.push(("lrs.1".into(), vec![3], lr(3)));
        t.push(("lrs.2".into(), vec![1, 3], lr(3)));
        let o = ImportOptions {
            alpha: None,
            ..opts()
        };
        let e = import(&file(&as_refs(&t)), &o).unwrap_err().to_string();
        assert!(e.contains("no tensor \"lrs.3\""), "{e}");
        t.push(("lrs.3".into(), vec![1], lr(1)));
        let e = import(&file(&as_refs(&t)), &opts())
            .unwrap_err()
            .to_string();
        assert!(e.contains("--alpha does not apply"), "{e}");
        let spec = import(&file(&as_refs(&t)), &o).unwrap();
        assert_eq!(spec.algorithm, Algorithm::MetaSgd);
        // α is laid out as θ0 is: lrs.0's [1][0] (output 1, input 0) is the second value.
        assert_eq!(spec.layers(&spec.alpha)[0].weight, lr(6));
        assert_eq!(spec.alpha[1], 0.03);
        let back = import(
            &state_dict(&spec, Layout::Sequential).unwrap(),
            &ImportOptions::default(),
        );
        assert_eq!(back.unwrap(), spec);
    }

    #[test]
    fn what_a_state_dict_lacks_must_be_given() {
        let t = file(&as_refs(&net("")));
        for (o, words) in [
            (
                ImportOptions {
                    steps: None,
                    ..opts()
                },
                "--steps",
            ),
            (ImportOptions { k: None, ..opts() }, "--k"),
            (
                ImportOptions {
                    alpha: None,
                    ..opts()
                },
                "--alpha",
            ),
        ] {
            let e = import(&t, &o).unwrap_err().to_string();
            assert!(e.contains(words), "{e}");
        }
    }
}
