//! `tinyadapt.Device`: the device runtime, in this process (`simulate`, the host simulation
//! the CLI compares firmware against) or in a firmware under QEMU or on a board's serial port
//! (`connect`). One API over the link protocol for all three, so a notebook that works on the
//! simulation works on the board.

use meta_train::link::device::Device as Connected;
use meta_train::link::qemu::Emulated;
use meta_train::link::{firmware, Link, Loopback, On};
use numpy::{AllowTypeChange, PyArray1, PyArrayLikeDyn, PyArrayMethods};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use shared::catalogue::Firmware;
use shared::link::Status;
use shared::report::{Guard, StepLimit};
use shared::slots::slot_image;

use crate::blob::Blob;
use crate::{device_error, floats};

type Floats<'py> = PyArrayLikeDyn<'py, f32, AllowTypeChange>;

/// The link to the in-process server and the slot image it serves from.
type SimLink<'a> = Link<Loopback<'a>>;

self_cell::self_cell!(
    /// The device runtime in this process, serving from its own copy of slot A.
    struct Simulated {
        owner: Vec<u8>,
        #[covariant]
        dependent: SimLink,
    }
);

enum Transport {
    Simulated(Simulated),
    Connected(Box<Connected>),
}

/// Slot B of the simulation: blank, as erased flash reads.
static ERASED: [u8; 64] = [0xFF; 64];

impl Transport {
    fn simulated(firmware: &Firmware, blob: &[u8], generation: u32) -> anyhow::Result<Self> {
        let sim = Simulated::try_new(slot_image(blob, generation), |slot| {
            Loopback::open(firmware, [slot, &ERASED]).map(Link::new)
        })?;
        Ok(Transport::Simulated(sim))
    }
}

/// Calls `$body` with `$link` bound to the device's `&mut Link<_>`, whatever the transport.
macro_rules! on_link {
    ($device:expr, $link:ident => $body:expr) => {
        match $device.transport()? {
            Transport::Simulated(s) => s.with_dependent_mut(|_, $link| $body),
            Transport::Connected(d) => meta_train::with_link!(**d, $link => $body),
        }
    };
}

/// What one adaptation did.
#[pyclass(frozen, module = "tinyadapt", get_all)]
pub struct AdaptReport {
    /// Loss on the samples before the first step.
    loss_before: f32,
    /// Loss on the samples after the last step kept.
    loss_after: f32,
    /// Steps taken and kept.
    steps: u16,
    /// The step (0-based, in this call) the divergence guard undid, if any; adaptation
    /// stopped there.
    undone: Option<u16>,
    /// Why: "non-finite" (the loss was NaN or infinite), "above-bound" (above the blob's
    /// loss bound) or "rose" (an extra step raised the loss on the samples); None if no step
    /// was undone.
    cause: Option<&'static str>,
    /// The device's clock ticks for the call (instructions under QEMU's -icount; 0 in the
    /// simulation).
    ticks: u64,
}

#[pymethods]
impl AdaptReport {
    fn __repr__(&self) -> String {
        format!(
            "<tinyadapt.AdaptReport loss {} -> {} in {} step(s){}>",
            self.loss_before,
            self.loss_after,
            self.steps,
            self.cause.map_or(String::new(), |c| format!(
                ", step {} undone ({c})",
                self.undone.unwrap_or(0)
            ))
        )
    }
}

fn guard_name(g: Guard) -> &'static str {
    match g {
        Guard::NonFinite => "non-finite",
        Guard::AboveBound => "above-bound",
        Guard::Rose => "rose",
    }
}

/// A device that adapts: the runtime in this process (`simulate`) or a firmware over its
/// link (`connect`). Samples go in with `push`, `adapt` runs the inner steps the blob was
/// trained for, `predict` and `classify` answer with the adapted model, `reset` goes back
/// to θ0. Answers are the device's bits.
///
/// >>> dev = tinyadapt.simulate(blob)
/// >>> for x, y in zip(xs, ys):
/// ...     dev.push(x, y)
/// >>> dev.adapt().steps
/// 1
#[pyclass(unsendable, module = "tinyadapt")]
pub struct Device {
    transport: Option<Transport>,
    firmware: Firmware,
    name: String,
}

impl Device {
    fn transport(&mut self) -> PyResult<&mut Transport> {
        self.transport
            .as_mut()
            .ok_or_else(|| device_error(anyhow::anyhow!("the device was closed")))
    }

    fn status_of(&mut self) -> PyResult<Status> {
        on_link!(self, link => link.status()).map_err(device_error)
    }
}

/// The device runtime in this process, serving `blob` as a firmware for it would, with
/// `capacity` samples (default: the smallest of 1, 2, 5, 10, 20, 32 that holds the K it was
/// trained with). This is the host simulation the CLI checks firmware against.
#[pyfunction]
#[pyo3(signature = (blob, capacity=None))]
pub fn simulate(blob: &Blob, capacity: Option<u16>) -> PyResult<Device> {
    let fw = firmware::for_blob(&blob.bytes, capacity).map_err(device_error)?;
    let transport = Transport::simulated(&fw, &blob.bytes, 1).map_err(device_error)?;
    Ok(Device {
        transport: Some(transport),
        name: format!("the host simulation of {fw}"),
        firmware: fw,
    })
}

/// A device over its link. `on` is an emulated board (see `tinyadapt.BOARDS`; its firmware
/// is built for `blob` from this source tree, or `firmware` is the ELF, and boots under QEMU
/// with `blob` in slot A), a board file (FILE.toml, emulated), or a serial port
/// (/dev/ttyACM0, COM3) of a board already flashed with the firmware and the blob.
#[pyfunction]
#[pyo3(signature = (on, blob=None, *, firmware=None, capacity=None))]
pub fn connect(
    on: &str,
    blob: Option<&Blob>,
    firmware: Option<std::path::PathBuf>,
    capacity: Option<u16>,
) -> PyResult<Device> {
    let on = On::parse(on).map_err(device_error)?;
    let fw = match (blob, &on) {
        (Some(b), _) => firmware::for_blob(&b.bytes, capacity).map_err(device_error)?,
        // A board on a serial port serves what it was flashed with.
        (None, On::Serial(_)) => Firmware::SINUSOID,
        (None, _) => {
            return Err(device_error(anyhow::anyhow!(
                "an emulated board boots with a w*: connect(on, blob)"
            )))
        }
    };
    let bytes = blob.map_or(&[][..], |b| &b.bytes);
    let device = Connected::open(&on, &fw, firmware.as_deref(), bytes).map_err(device_error)?;
    Ok(Device {
        name: device.name(),
        transport: Some(Transport::Connected(Box::new(device))),
        firmware: fw,
    })
}

/// The emulated boards' names, for `connect`.
pub fn emulated_boards() -> Vec<&'static str> {
    Emulated::ALL.iter().map(|e| e.name()).collect()
}

#[pymethods]
impl Device {
    /// The board's name, the serial port's path, or which firmware this process simulates.
    #[getter]
    fn name(&self) -> &str {
        &self.name
    }

    /// What the device serves and holds: the blob's signature (or why it was refused), the
    /// slot and generation serving, the model's inputs, outputs and parameters, its sample
    /// capacity, the samples held, steps since reset, and the adapter's RAM in bytes.
    fn status<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let s = self.status_of()?;
        let d = PyDict::new(py);
        match s.blob {
            Ok(sig) => d.set_item("blob", sig)?,
            Err(e) => d.set_item("blob", e.to_string())?,
        }
        d.set_item("slot", s.slot.map(|i| if i == 0 { "A" } else { "B" }))?;
        d.set_item("generation", s.generation)?;
        let refused: Vec<Option<String>> =
            s.refused.iter().map(|r| r.map(|e| e.to_string())).collect();
        d.set_item("refused", refused)?;
        d.set_item("inputs", s.inputs)?;
        d.set_item("outputs", s.outputs)?;
        d.set_item("capacity", s.capacity)?;
        d.set_item("samples", s.samples)?;
        d.set_item("params", s.params)?;
        d.set_item("steps_since_reset", s.steps_since_reset)?;
        d.set_item("adapter_bytes", s.adapter_bytes)?;
        d.set_item("features", s.features)?;
        d.set_item("body_params", s.body_params)?;
        Ok(d)
    }

    /// Bytes of RAM the adapter occupies on the device (its stack comes on top: `memory()`).
    #[getter]
    fn ram(&mut self) -> PyResult<u32> {
        Ok(self.status_of()?.adapter_bytes)
    }

    /// Stack use measured on the device since reset: `stack_peak` and `stack_size` in bytes.
    fn memory<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let m = on_link!(self, link => link.memory()).map_err(device_error)?;
        let d = PyDict::new(py);
        d.set_item("stack_peak", m.stack_peak)?;
        d.set_item("stack_size", m.stack_size)?;
        Ok(d)
    }

    /// Adds one target-train sample: inputs `x` and targets `y` in your units (the device
    /// normalises them), or for a classifier `label`, the class. Returns the samples held.
    /// A full buffer, a NaN/Inf or a value far outside the training data is refused.
    #[pyo3(signature = (x, y=None, *, label=None))]
    fn push(&mut self, x: Floats<'_>, y: Option<Floats<'_>>, label: Option<u16>) -> PyResult<u16> {
        let x = floats(&x).0;
        match (y, label) {
            (Some(y), None) => {
                let y = floats(&y).0;
                on_link!(self, link => link.push(&x, &y)).map_err(device_error)
            }
            (None, Some(label)) => on_link!(self, link => link.push_input(&x, label))
                .map(|(n, _)| n)
                .map_err(device_error),
            _ => Err(device_error(anyhow::anyhow!(
                "push takes the targets y or, for a classifier, a label: one of them"
            ))),
        }
    }

    /// Adds each row of `xs` with the matching row of `ys` (or entry of `labels`); returns
    /// the samples held.
    #[pyo3(signature = (xs, ys=None, *, labels=None))]
    fn push_many(
        &mut self,
        xs: Floats<'_>,
        ys: Option<Floats<'_>>,
        labels: Option<Vec<u16>>,
    ) -> PyResult<u16> {
        let (x, shape) = floats(&xs);
        let rows = shape.first().copied().unwrap_or(0);
        if rows == 0 {
            return Err(device_error(anyhow::anyhow!(
                "push_many takes at least one row"
            )));
        }
        let width = x.len() / rows;
        let mut held = 0;
        match (ys, labels) {
            (Some(ys), None) => {
                let (y, yshape) = floats(&ys);
                if yshape.first() != Some(&rows) {
                    return Err(device_error(anyhow::anyhow!(
                        "xs has {rows} rows and ys {}",
                        yshape.first().unwrap_or(&0)
                    )));
                }
                let yw = y.len() / rows;
                for r in 0..rows {
                    let (xr, yr) = (&x[r * width..(r + 1) * width], &y[r * yw..(r + 1) * yw]);
                    held = on_link!(self, link => link.push(xr, yr)).map_err(device_error)?;
                }
            }
            (None, Some(labels)) => {
                if labels.len() != rows {
                    return Err(device_error(anyhow::anyhow!(
                        "xs has {rows} rows and labels {}",
                        labels.len()
                    )));
                }
                for (r, &label) in labels.iter().enumerate() {
                    let xr = &x[r * width..(r + 1) * width];
                    held = on_link!(self, link => link.push_input(xr, label))
                        .map_err(device_error)?
                        .0;
                }
            }
            _ => {
                return Err(device_error(anyhow::anyhow!(
                    "push_many takes ys or, for a classifier, labels: one of them"
                )))
            }
        }
        Ok(held)
    }

    /// Drops the samples (the parameters stay as they are).
    fn clear(&mut self) -> PyResult<()> {
        on_link!(self, link => link.clear()).map_err(device_error)
    }

    /// Back to θ0 from the blob; the samples stay.
    fn reset(&mut self) -> PyResult<()> {
        on_link!(self, link => link.reset()).map_err(device_error)
    }

    /// Runs the inner steps the blob was trained for that have not run since the last reset
    /// or, with `steps`, that many more (beyond the trained ones only with `unchecked=True`;
    /// the divergence guard still undoes a step that diverges or, beyond the trained steps,
    /// raises the loss).
    #[pyo3(signature = (steps=None, *, unchecked=false))]
    fn adapt(&mut self, steps: Option<u16>, unchecked: bool) -> PyResult<AdaptReport> {
        let limit = if unchecked {
            StepLimit::Unchecked
        } else {
            StepLimit::Trained
        };
        let (r, ticks) = on_link!(self, link => link.adapt(steps, limit)).map_err(device_error)?;
        Ok(AdaptReport {
            loss_before: r.loss_before,
            loss_after: r.loss_after,
            steps: r.steps,
            undone: r.undone,
            cause: r.cause.map(guard_name),
            ticks,
        })
    }

    /// The adapted model's outputs for `x` (one input: a 1-D array), or for each row of a
    /// 2-D array; in your units (a classifier's: its logits).
    fn predict<'py>(&mut self, py: Python<'py>, x: Floats<'_>) -> PyResult<Bound<'py, PyAny>> {
        let (values, shape) = floats(&x);
        match shape.len() {
            1 => {
                let (y, _) = on_link!(self, link => link.predict(&values)).map_err(device_error)?;
                Ok(PyArray1::from_vec(py, y).into_any())
            }
            2 => {
                let (rows, inputs) = (shape[0], shape[1]);
                let outputs = usize::from(self.status_of()?.outputs);
                let y = on_link!(self, link => link.predict_many(&values, inputs, outputs))
                    .map_err(device_error)?;
                Ok(PyArray1::from_vec(py, y)
                    .reshape([rows, outputs])?
                    .into_any())
            }
            n => Err(device_error(anyhow::anyhow!(
                "predict takes one input (1-D) or one per row (2-D), not a {n}-D array"
            ))),
        }
    }

    /// A classifier's answer for the input `x`: `(label, scores)`, the class with the
    /// largest softmax probability and every class's.
    fn classify<'py>(
        &mut self,
        py: Python<'py>,
        x: Floats<'_>,
    ) -> PyResult<(u16, Bound<'py, PyArray1<f32>>)> {
        let x = floats(&x).0;
        let (label, scores, _) =
            on_link!(self, link => link.classify_input(&x)).map_err(device_error)?;
        Ok((label, PyArray1::from_vec(py, scores)))
    }

    /// The live parameters that adapt, in the blob's order (`Blob.layers(values)` lays them
    /// out as PyTorch does).
    fn params<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyArray1<f32>>> {
        let n = self.status_of()?.params as usize;
        let p = on_link!(self, link => link.params(n)).map_err(device_error)?;
        Ok(PyArray1::from_vec(py, p))
    }

    /// Serves `blob` from now on, as an update does: it is written to the slot not serving
    /// with a newer generation and the device rescans its slots (the samples are dropped).
    /// On a board on a serial port, flash the slot instead (`meta-train export`).
    fn load(&mut self, blob: &Blob) -> PyResult<()> {
        let status = self.status_of()?;
        let generation = status.generation.saturating_add(1);
        let fw =
            firmware::for_blob(&blob.bytes, Some(self.firmware.capacity)).map_err(device_error)?;
        match self.transport()? {
            Transport::Simulated(_) => {
                self.transport =
                    Some(Transport::simulated(&fw, &blob.bytes, generation).map_err(device_error)?);
            }
            Transport::Connected(device) => match &mut **device {
                Connected::Emulated { qemu, .. } => {
                    let slot = usize::from(status.slot != Some(1));
                    let origin = qemu.board().slot(slot).origin;
                    qemu.write_memory(origin, &slot_image(&blob.bytes, generation))
                        .map_err(device_error)?;
                    qemu.link().rescan().map_err(device_error)?;
                }
                Connected::Serial(_) => {
                    return Err(device_error(anyhow::anyhow!(
                        "a board on a serial port is updated by flashing its inactive slot: \
                         `meta-train export BLOB --board BOARD --slot b --generation {generation}`"
                    )))
                }
            },
        }
        let now = self.status_of()?;
        if now.blob.is_err() || now.generation != generation {
            return Err(device_error(anyhow::anyhow!(
                "the device did not take the new w*: it serves generation {}{}",
                now.generation,
                now.refused
                    .iter()
                    .flatten()
                    .map(|e| format!(" (a slot was refused: {e})"))
                    .collect::<String>()
            )));
        }
        self.firmware = fw;
        Ok(())
    }

    /// The firmware's defmt log so far, decoded (under QEMU; empty otherwise).
    fn logs(&mut self) -> PyResult<Vec<String>> {
        match self.transport()? {
            Transport::Connected(d) => d.logs().map_err(device_error),
            Transport::Simulated(_) => Ok(Vec::new()),
        }
    }

    /// Clock ticks the device reported (`AdaptReport.ticks`) as instructions, where known
    /// (under QEMU's -icount).
    fn instructions(&mut self, ticks: u64) -> PyResult<Option<u64>> {
        on_link!(self, link => Ok::<_, anyhow::Error>(link.instructions(ticks)))
            .map_err(device_error)
    }

    /// Ends the connection (QEMU exits); the device refuses everything afterwards.
    fn close(&mut self) {
        self.transport = None;
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    #[pyo3(signature = (*_args))]
    fn __exit__(&mut self, _args: &Bound<'_, pyo3::types::PyTuple>) -> bool {
        self.close();
        false
    }

    fn __repr__(&self) -> String {
        format!("<tinyadapt.Device {} serving {}>", self.name, self.firmware)
    }
}
