//! Held-out tasks as the CLI draws them, so Python evaluates on exactly the CLI's tasks.

use meta_train::eval::{held_out, EvalConfig};
use numpy::{PyArray1, PyArrayMethods};
use pyo3::prelude::*;
use pyo3::types::PyDict;

/// The held-out sinusoid tasks `meta-train eval` adapts on (the evaluation stream of `seed`,
/// never a training task): for each, a dict of `amplitude`, `phase`, `support_x`,
/// `support_y` (k × 1 float32 arrays) and `test_x`, `test_y` (test_points × 1).
///
/// >>> task = tinyadapt.sinusoid_tasks(1, k=10)[0]
/// >>> task["support_x"].shape
/// (10, 1)
#[pyfunction]
#[pyo3(signature = (count, k, seed=0, test_points=100))]
pub fn sinusoid_tasks(
    py: Python<'_>,
    count: usize,
    k: usize,
    seed: u64,
    test_points: usize,
) -> PyResult<Vec<Bound<'_, PyDict>>> {
    let cfg = EvalConfig {
        tasks: count,
        seed,
        test_points,
    };
    let column = |v: Vec<f32>| -> PyResult<Bound<'_, PyAny>> {
        let n = v.len();
        Ok(PyArray1::from_vec(py, v).reshape([n, 1])?.into_any())
    };
    (0..count)
        .map(|i| {
            let h = held_out(&cfg, i, k);
            let d = PyDict::new(py);
            d.set_item("amplitude", h.task.amplitude)?;
            d.set_item("phase", h.task.phase)?;
            d.set_item(
                "support_x",
                column(h.support.iter().map(|p| p.0).collect())?,
            )?;
            d.set_item(
                "support_y",
                column(h.support.iter().map(|p| p.1).collect())?,
            )?;
            d.set_item("test_x", column(h.test.iter().map(|p| p.0).collect())?)?;
            d.set_item("test_y", column(h.test.iter().map(|p| p.1).collect())?)?;
            Ok(d)
        })
        .collect()
}
