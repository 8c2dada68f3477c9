//! `tinyadapt` for Python: `w*` blobs ([`blob::Blob`]), PyTorch state_dicts, and the device
//! runtime in this process or on a board over its link ([`device::Device`]), with numpy
//! arrays in and out. Every number comes from the same Rust code as the CLI's and the
//! firmware's (`shared`, `device`, `meta-train`'s link client), so what Python computes is
//! the device's bits.
//!
//! ```python
//! import tinyadapt as ta
//! blob = ta.Blob.read("runs/sinusoid-maml-k10-seed0/wstar.bin")
//! dev = ta.simulate(blob)
//! dev.push_many(xs, ys)
//! report = dev.adapt()
//! y = dev.predict(x_test)
//! ```
//!
//! Errors are Python exceptions carrying the CLI's words: [`BlobError`] (a blob, a
//! state_dict or arrays refused), [`DeviceError`] (a request the device refused, a link
//! that failed).

mod blob;
mod device;
mod tasks;

use numpy::{AllowTypeChange, PyArrayLikeDyn};
use pyo3::create_exception;
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;

create_exception!(
    tinyadapt,
    BlobError,
    PyValueError,
    "A w* blob, a state_dict or the arrays to make a blob were refused; the message says what and why, as the CLI does."
);
create_exception!(
    tinyadapt,
    DeviceError,
    PyRuntimeError,
    "The device refused a request (it goes on serving), or the link to it failed; the message says which, as the CLI does."
);

/// An error of the blob side as a Python `BlobError`, with its causes (`context: cause`).
pub(crate) fn blob_error(e: impl Into<anyhow::Error>) -> PyErr {
    BlobError::new_err(format!("{:#}", e.into()))
}

/// An error of the device side as a Python `DeviceError`, with its causes.
pub(crate) fn device_error(e: impl Into<anyhow::Error>) -> PyErr {
    DeviceError::new_err(format!("{:#}", e.into()))
}

/// Values of any array-like (numpy array of any float or int type, list), as float32 the way
/// the device receives them, with the array's shape.
pub(crate) fn floats(a: &PyArrayLikeDyn<'_, f32, AllowTypeChange>) -> (Vec<f32>, Vec<usize>) {
    let view = a.as_array();
    (view.iter().copied().collect(), view.shape().to_vec())
}

/// The `tinyadapt` module.
#[pymodule]
fn tinyadapt(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("BlobError", m.py().get_type::<BlobError>())?;
    m.add("DeviceError", m.py().get_type::<DeviceError>())?;
    m.add_class::<blob::Blob>()?;
    m.add_class::<device::Device>()?;
    m.add_class::<device::AdaptReport>()?;
    m.add_function(wrap_pyfunction!(device::simulate, m)?)?;
    m.add_function(wrap_pyfunction!(device::connect, m)?)?;
    m.add_function(wrap_pyfunction!(tasks::sinusoid_tasks, m)?)?;
    m.add("BOARDS", device::emulated_boards())?;
    Ok(())
}
