//! `tinyadapt.Blob`: a validated `w*` blob, its header fields and arrays, made from arrays or
//! a PyTorch state_dict, and written back.

use std::path::PathBuf;

use meta_train::blob_spec::BlobSpec;
use meta_train::link::firmware;
use meta_train::pytorch::{self, ImportOptions, Layout, StateDict, Tensor};
use meta_train::report::inspect;
use meta_train::run_dir::write_atomic;
use numpy::{AllowTypeChange, PyArray1, PyArrayLikeDyn, PyArrayMethods};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};
use shared::body::Views;
use shared::wstar::{self, Algorithm, AlphaKind, HeadStart};

use crate::{blob_error, floats};

type Floats<'py> = PyArrayLikeDyn<'py, f32, AllowTypeChange>;

/// One layer as Python sees it: `(weight, bias)`, the weight outputs × inputs.
type PyLayer<'py> = (Bound<'py, PyAny>, Bound<'py, PyArray1<f32>>);

/// A w* blob: the learning algorithm meta-training found (θ0, the inner step sizes α, the
/// steps, which layers adapt) in the bytes that get flashed. Every check the device makes
/// was made when it was built.
///
/// >>> blob = tinyadapt.Blob.read("runs/sinusoid-maml-k10-seed0/wstar.bin")
/// >>> blob.shape, blob.algorithm, blob.steps
/// ([1, 40, 40, 1], 'maml', 1)
#[pyclass(frozen, module = "tinyadapt", eq)]
#[derive(PartialEq)]
pub struct Blob {
    pub(crate) bytes: Vec<u8>,
}

impl Blob {
    /// The blob's parsed view (it parsed when made).
    pub(crate) fn parsed(&self) -> wstar::Blob<'_> {
        wstar::Blob::parse(&self.bytes).expect("a Blob holds a valid w*")
    }

    fn spec(&self) -> PyResult<BlobSpec> {
        BlobSpec::of(&self.bytes).map_err(blob_error)
    }

    pub(crate) fn checked(bytes: Vec<u8>) -> PyResult<Self> {
        wstar::Blob::parse(&bytes).map_err(|e| blob_error(anyhow::anyhow!("{e}")))?;
        Ok(Self { bytes })
    }
}

fn vec1<'py>(py: Python<'py>, v: Vec<f32>) -> Bound<'py, PyArray1<f32>> {
    PyArray1::from_vec(py, v)
}

fn algorithm_arg(name: Option<&str>, per_parameter: bool) -> PyResult<Algorithm> {
    match name {
        Some(n) => n.parse().map_err(|e| blob_error(anyhow::anyhow!("{e}"))),
        None if per_parameter => Ok(Algorithm::MetaSgd),
        None => Ok(Algorithm::Maml),
    }
}

fn norm_arg(
    mean: Option<Floats<'_>>,
    std: Option<Floats<'_>>,
    what: &str,
) -> PyResult<Option<(Vec<f32>, Vec<f32>)>> {
    match (mean, std) {
        (Some(m), Some(s)) => Ok(Some((floats(&m).0, floats(&s).0))),
        (None, None) => Ok(None),
        _ => Err(blob_error(anyhow::anyhow!(
            "give both {what}_mean and {what}_std, or neither"
        ))),
    }
}

/// The state_dict `source` names: a safetensors file's path or bytes, or a mapping of key to
/// array (numpy, or CPU torch tensors).
fn state_dict_from(source: &Bound<'_, PyAny>) -> PyResult<StateDict> {
    if let Ok(bytes) = source.cast::<PyBytes>() {
        return StateDict::read(bytes.as_bytes()).map_err(blob_error);
    }
    if let Ok(dict) = source.cast::<PyDict>() {
        let mut tensors = Vec::new();
        for (k, v) in dict.iter() {
            let name: String = k.extract()?;
            let array: Floats<'_> = v.extract().map_err(|e| {
                blob_error(anyhow::anyhow!("state_dict[{name:?}] is not an array: {e}"))
            })?;
            let (values, shape) = floats(&array);
            tensors.push(Tensor {
                name,
                shape,
                values,
            });
        }
        return Ok(StateDict {
            tensors,
            metadata: Default::default(),
        });
    }
    let path: PathBuf = source.extract().map_err(|_| {
        blob_error(anyhow::anyhow!(
            "a state_dict is a safetensors file's path or bytes, or a dict of arrays"
        ))
    })?;
    let file = std::fs::read(&path)
        .map_err(|e| blob_error(anyhow::anyhow!("cannot read {}: {e}", path.display())))?;
    StateDict::read(&file).map_err(|e| blob_error(e.context(path.display().to_string())))
}

#[pymethods]
impl Blob {
    /// The blob in `data` (bytes), checked as the device checks it: magic, version,
    /// signature, length, CRC, sizes and finite values.
    #[new]
    fn new(data: &[u8]) -> PyResult<Self> {
        Self::checked(data.to_vec())
    }

    /// The blob in the file at `path`.
    #[staticmethod]
    fn read(path: PathBuf) -> PyResult<Self> {
        let bytes = std::fs::read(&path).map_err(|e| {
            blob_error(anyhow::anyhow!(
                "cannot read w* blob {}: {e}",
                path.display()
            ))
        })?;
        wstar::Blob::parse(&bytes)
            .map_err(|e| blob_error(anyhow::anyhow!("{}: {e}", path.display())))?;
        Ok(Self { bytes })
    }

    /// A blob from arrays: `shape` the layer widths (input, hidden…, output; one or two
    /// hidden layers), `theta0` the parameters in the blob's order (see `layers`), `alpha`
    /// one value or one per parameter (Meta-SGD), `steps` the inner steps, `k` the samples
    /// per task it was trained with. Every check of the CLI applies.
    #[staticmethod]
    #[pyo3(signature = (shape, theta0, alpha, *, steps, k, algorithm=None, loss="mse", x_mean=None, x_std=None, y_mean=None, y_std=None, loss_bound=None, seed=0))]
    #[allow(clippy::too_many_arguments)] // Python keyword arguments, one per blob field
    fn make(
        shape: Vec<u32>,
        theta0: Floats<'_>,
        alpha: Floats<'_>,
        steps: u16,
        k: u16,
        algorithm: Option<&str>,
        loss: &str,
        x_mean: Option<Floats<'_>>,
        x_std: Option<Floats<'_>>,
        y_mean: Option<Floats<'_>>,
        y_std: Option<Floats<'_>>,
        loss_bound: Option<f32>,
        seed: u64,
    ) -> PyResult<Self> {
        let alpha = floats(&alpha).0;
        let mut spec = BlobSpec::new(shape, algorithm_arg(algorithm, alpha.len() > 1)?, steps, k);
        spec.theta0 = floats(&theta0).0;
        spec.alpha = alpha;
        spec.loss = pytorch::parse_loss(loss).map_err(blob_error)?;
        if let Some((m, s)) = norm_arg(x_mean, x_std, "x")? {
            (spec.x_mean, spec.x_std) = (m, s);
        }
        if let Some((m, s)) = norm_arg(y_mean, y_std, "y")? {
            (spec.y_mean, spec.y_std) = (m, s);
        }
        spec.loss_bound = loss_bound.unwrap_or(f32::INFINITY);
        spec.seed = seed;
        Ok(Self {
            bytes: spec.encode().map_err(blob_error)?,
        })
    }

    /// A blob from a PyTorch MLP's state_dict (nn.Sequential of Linear and ReLU, plain or in
    /// learn2learn's MAML or MetaSGD): `source` is a safetensors file (path or bytes) or a
    /// dict of arrays such as `model.state_dict()`. Meta-SGD's `lrs.N` become per-parameter
    /// α; otherwise give `alpha`. `layers` names the Linear layers in order when they are
    /// not numbered as in nn.Sequential. What the file's tinyadapt metadata holds is the
    /// default, as for `meta-train import`.
    #[staticmethod]
    #[pyo3(signature = (source, *, steps=None, k=None, alpha=None, algorithm=None, loss=None, layers=None, x_mean=None, x_std=None, y_mean=None, y_std=None, loss_bound=None, seed=None))]
    #[allow(clippy::too_many_arguments)] // Python keyword arguments, as the CLI's options
    fn from_state_dict(
        source: &Bound<'_, PyAny>,
        steps: Option<u16>,
        k: Option<u16>,
        alpha: Option<f32>,
        algorithm: Option<&str>,
        loss: Option<&str>,
        layers: Option<Vec<String>>,
        x_mean: Option<Floats<'_>>,
        x_std: Option<Floats<'_>>,
        y_mean: Option<Floats<'_>>,
        y_std: Option<Floats<'_>>,
        loss_bound: Option<f32>,
        seed: Option<u64>,
    ) -> PyResult<Self> {
        let opts = ImportOptions {
            layers,
            steps,
            k,
            alpha,
            algorithm: algorithm
                .map(|a| algorithm_arg(Some(a), false))
                .transpose()?,
            loss: loss
                .map(|l| pytorch::parse_loss(l).map_err(blob_error))
                .transpose()?,
            x_norm: norm_arg(x_mean, x_std, "x")?,
            y_norm: norm_arg(y_mean, y_std, "y")?,
            loss_bound,
            seed,
        };
        let spec =
            pytorch::import_state_dict(state_dict_from(source)?, &opts).map_err(blob_error)?;
        Ok(Self {
            bytes: spec.encode().map_err(blob_error)?,
        })
    }

    /// The model as a PyTorch state_dict of numpy float32 arrays: `layout` "sequential"
    /// (`0.weight`, …) or "learn2learn" (`module.0.weight`, …); Meta-SGD's α as `lrs.N`.
    /// `{k: torch.from_numpy(v) for k, v in blob.state_dict().items()}` loads into the model.
    #[pyo3(signature = (layout="sequential"))]
    fn state_dict<'py>(&self, py: Python<'py>, layout: &str) -> PyResult<Bound<'py, PyDict>> {
        let layout: Layout = layout.parse().map_err(blob_error)?;
        let sd = pytorch::state_dict_of(&self.spec()?, layout);
        let dict = PyDict::new(py);
        for t in sd.tensors {
            dict.set_item(t.name, vec1(py, t.values).reshape(t.shape)?)?;
        }
        Ok(dict)
    }

    /// Writes `state_dict(layout)` to the safetensors file `path` (as
    /// `safetensors.torch.save_file` would, with the inner loop's settings in its metadata,
    /// so `Blob.from_state_dict(path)` gives this blob back byte for byte).
    #[pyo3(signature = (path, layout="sequential"))]
    fn save_state_dict(&self, path: PathBuf, layout: &str) -> PyResult<()> {
        let layout: Layout = layout.parse().map_err(blob_error)?;
        let file = pytorch::state_dict(&self.spec()?, layout).map_err(blob_error)?;
        write_atomic(&path, &file).map_err(blob_error)
    }

    /// The blob's bytes, as flashed.
    fn to_bytes<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.bytes)
    }

    fn __bytes__<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        self.to_bytes(py)
    }

    /// Writes the blob to `path`, atomically (a crash never leaves half a blob).
    fn write(&self, path: PathBuf) -> PyResult<()> {
        write_atomic(&path, &self.bytes).map_err(blob_error)
    }

    /// What `meta-train inspect` prints: header, shape, inner loop, α, sizes, device RAM.
    fn inspect(&self) -> String {
        inspect::report(&self.parsed(), self.bytes.len())
    }

    /// The dense layers in PyTorch's layout: a list of `(weight, bias)` with `weight` an
    /// outputs × inputs array, from θ0 (or, with `values`, from α of a Meta-SGD blob or from
    /// a device's adapted `params()`).
    #[pyo3(signature = (values=None))]
    fn layers<'py>(
        &self,
        py: Python<'py>,
        values: Option<Floats<'_>>,
    ) -> PyResult<Vec<PyLayer<'py>>> {
        let spec = self.spec()?;
        let values = match values {
            Some(v) => floats(&v).0,
            None => spec.theta0.clone(),
        };
        if values.len() != spec.params() {
            return Err(blob_error(anyhow::anyhow!(
                "{} values given; the {} model has {} parameters",
                values.len(),
                spec.shape_name(),
                spec.params()
            )));
        }
        spec.layers(&values)
            .into_iter()
            .map(|l| {
                let w = vec1(py, l.weight).reshape([l.outputs, l.inputs])?;
                Ok((w.into_any(), vec1(py, l.bias)))
            })
            .collect()
    }

    /// The firmware that serves this blob (`mlp-1-40-40-1-k10`): its model and how many
    /// samples it holds (default: the smallest capacity the host simulates that holds K).
    #[pyo3(signature = (capacity=None))]
    fn firmware(&self, capacity: Option<u16>) -> PyResult<String> {
        firmware::for_blob(&self.bytes, capacity)
            .map(|f| f.to_string())
            .map_err(blob_error)
    }

    /// Layer widths: input, hidden…, output (a classifier on a body: the head's).
    #[getter]
    fn shape(&self) -> Vec<u32> {
        self.parsed().meta.shape.to_vec()
    }

    /// Number of parameters of the (head) model.
    #[getter]
    fn params(&self) -> u32 {
        self.parsed().meta.params
    }

    /// The task loss: "mse" or "cross-entropy".
    #[getter]
    fn loss(&self) -> &'static str {
        pytorch::loss_name(self.parsed().meta.loss)
    }

    /// The algorithm that trained it: maml, fomaml, metasgd, anil, reptile or lslr.
    #[getter]
    fn algorithm(&self) -> &'static str {
        self.parsed().meta.algorithm.name()
    }

    /// How α is stored: "scalar", "per-parameter" or "per-layer-per-step" (step by step).
    #[getter]
    fn alpha_kind(&self) -> &'static str {
        match self.parsed().meta.alpha {
            AlphaKind::Scalar => "scalar",
            AlphaKind::PerParameter => "per-parameter",
            AlphaKind::PerLayerPerStep => "per-layer-per-step",
        }
    }

    /// Inner steps the device runs.
    #[getter]
    fn steps(&self) -> u16 {
        self.parsed().meta.steps
    }

    /// Samples per task it was trained with (K).
    #[getter]
    fn trained_k(&self) -> u16 {
        self.parsed().meta.trained_k
    }

    /// The layers (0-based) the inner loop adapts.
    #[getter]
    fn adapts(&self) -> Vec<usize> {
        let m = &self.parsed().meta;
        (0..m.shape.len() - 1)
            .filter(|&l| m.adapt.adapts(l))
            .collect()
    }

    /// A step whose loss on the samples rises above this is undone (inf: none).
    #[getter]
    fn loss_bound(&self) -> f32 {
        self.parsed().meta.loss_bound
    }

    /// Seed of the run that made it.
    #[getter]
    fn seed(&self) -> u64 {
        self.parsed().meta.seed
    }

    /// The model signature in the header (the device checks it against its own).
    #[getter]
    fn signature(&self) -> u32 {
        self.parsed().signature
    }

    /// Where an adaptation starts: "theta0", or "prototypes" (θ0 plus the support set's
    /// class prototypes in the output layer).
    #[getter]
    fn head_start(&self) -> &'static str {
        match self.parsed().start {
            HeadStart::Theta0 => "theta0",
            HeadStart::Prototypes => "prototypes",
        }
    }

    /// Whether a convolutional body (an image classifier's, kept in flash) is in the blob.
    #[getter]
    fn has_body(&self) -> bool {
        self.parsed().body().is_some()
    }

    /// What the head sees of an image: "single" (one view) or "shifted" (the mean over
    /// shifted views).
    #[getter]
    fn views(&self) -> &'static str {
        match self.parsed().views {
            Views::Single => "single",
            Views::Shifted => "shifted",
        }
    }

    /// θ0 in the blob's order: layer by layer, each layer's weights (outputs × inputs,
    /// column-major), then its biases. `layers()` gives them in PyTorch's layout.
    #[getter]
    fn theta0<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<f32>> {
        let b = self.parsed();
        vec1(
            py,
            (0..b.meta.params as usize).map(|k| b.theta0(k)).collect(),
        )
    }

    /// α as stored: one value, or one per parameter in θ0's order.
    #[getter]
    fn alpha<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<f32>> {
        let b = self.parsed();
        vec1(py, (0..b.alpha_len()).map(|k| b.alpha(k)).collect())
    }

    /// Per-input means the device subtracts from each sample.
    #[getter]
    fn x_mean<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<f32>> {
        let b = self.parsed();
        vec1(
            py,
            (0..b.meta.shape[0] as usize)
                .map(|i| b.input_norm(i).0)
                .collect(),
        )
    }

    /// Per-input standard deviations the device divides by.
    #[getter]
    fn x_std<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<f32>> {
        let b = self.parsed();
        vec1(
            py,
            (0..b.meta.shape[0] as usize)
                .map(|i| b.input_norm(i).1)
                .collect(),
        )
    }

    /// Per-output means of the targets.
    #[getter]
    fn y_mean<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<f32>> {
        let b = self.parsed();
        let o = b.meta.shape[b.meta.shape.len() - 1] as usize;
        vec1(py, (0..o).map(|i| b.output_norm(i).0).collect())
    }

    /// Per-output standard deviations of the targets.
    #[getter]
    fn y_std<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<f32>> {
        let b = self.parsed();
        let o = b.meta.shape[b.meta.shape.len() - 1] as usize;
        vec1(py, (0..o).map(|i| b.output_norm(i).1).collect())
    }

    fn __len__(&self) -> usize {
        self.bytes.len()
    }

    fn __repr__(&self) -> String {
        let b = self.parsed();
        let shape: Vec<String> = b.meta.shape.iter().map(u32::to_string).collect();
        format!(
            "<tinyadapt.Blob {}{} {} K={} steps={} alpha={} ({} bytes)>",
            shape.join("-"),
            if b.body().is_some() {
                " on a conv body"
            } else {
                ""
            },
            b.meta.algorithm.name(),
            b.meta.trained_k,
            b.meta.steps,
            self.alpha_kind(),
            self.bytes.len()
        )
    }
}
