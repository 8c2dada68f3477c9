//! The held-out evaluation run on a device over the link, next to the host's simulation of
//! that device: the same requests, the same `device` code, compared bit for bit.
//!
//! A [`Target`] is anything that adapts like the firmware: the firmware under QEMU ([`Qemu`])
//! or the `device` crate compiled for the host ([`HostSim`], an adapter with the firmware's
//! capacity). [`run_task`] drives either through one held-out task exactly as
//! [`eval::eval_task`] does, and keeps every prediction and the final parameters as bits.

use anyhow::{anyhow, bail, Result};
use device::{AdaptReport, Adapter, Sample, StepLimit};
use serde::Serialize;
use shared::link::{
    floats, put_floats, LinkError, Request, Response, FIRMWARE_K, PARAMS_PER_FRAME,
};
use shared::model::{Params, SinusoidNet};

use crate::eval::{self, EvalConfig, HeldOut, KResult, TaskTrace, EVAL_STEPS};
use crate::link::qemu::Qemu;

/// Something that adapts like the firmware.
pub trait Target {
    /// Starts a task: drops the samples, resets to `θ0`, pushes `support`.
    fn begin(&mut self, support: &[(f32, f32)]) -> Result<()>;
    /// Runs `steps` more inner steps (unchecked: the guard decides); returns the report and the
    /// clock ticks it took, when the target counts them.
    fn adapt(&mut self, steps: u16) -> Result<(AdaptReport, Option<u64>)>;
    /// Predicts `y` at `x`, and the ticks it took.
    fn predict(&mut self, x: f32) -> Result<(f32, Option<u64>)>;
    /// Predicts `y` at each of `xs`.
    fn predict_many(&mut self, xs: &[f32]) -> Result<Vec<f32>> {
        xs.iter().map(|&x| Ok(self.predict(x)?.0)).collect()
    }
    /// The live parameters.
    fn params(&mut self) -> Result<Vec<f32>>;
}

/// The host's simulation of the firmware: the `device` adapter with the firmware's capacity.
pub struct HostSim<'b> {
    adapter: Adapter<'b, SinusoidNet, 1, 1, FIRMWARE_K>,
}

impl<'b> HostSim<'b> {
    /// Loads `blob`.
    pub fn new(blob: &'b [u8]) -> Result<Self> {
        Ok(Self {
            adapter: Adapter::new(blob).map_err(|e| anyhow!("{e}"))?,
        })
    }
}

impl Target for HostSim<'_> {
    fn begin(&mut self, support: &[(f32, f32)]) -> Result<()> {
        self.adapter.clear_samples();
        self.adapter.reset();
        for &(x, y) in support {
            self.adapter
                .push(Sample { x: [x], y: [y] })
                .map_err(|e| anyhow!("{e}"))?;
        }
        Ok(())
    }

    fn adapt(&mut self, steps: u16) -> Result<(AdaptReport, Option<u64>)> {
        let r = self
            .adapter
            .adapt_steps(steps, StepLimit::Unchecked)
            .map_err(|e| anyhow!("{e}"))?;
        Ok((r, None))
    }

    fn predict(&mut self, x: f32) -> Result<(f32, Option<u64>)> {
        let y = self.adapter.predict(&[x]).map_err(|e| anyhow!("{e}"))?;
        Ok((y[0], None))
    }

    fn params(&mut self) -> Result<Vec<f32>> {
        let mut v = Vec::with_capacity(SinusoidNet::PARAMS);
        self.adapter
            .params()
            .for_each(&mut |_, s| v.extend_from_slice(s));
        Ok(v)
    }
}

fn refused(e: LinkError) -> anyhow::Error {
    anyhow!("the device refused: {e}")
}

fn unexpected(r: &Response<'_>) -> anyhow::Error {
    anyhow!("unexpected response from the device: {r:?}")
}

impl Qemu {
    /// Checks that the firmware serves a blob for the sinusoid net with the capacity the host
    /// simulation has.
    pub fn check_serving(&mut self) -> Result<()> {
        let mut buf = Vec::new();
        match self.call(&Request::Status, &mut buf)? {
            Response::Status(s) => {
                if let Err(e) = s.blob {
                    bail!("{}: no usable w*: {e}", self.board().name);
                }
                if usize::from(s.capacity) != FIRMWARE_K {
                    bail!(
                        "the firmware holds {} samples, the host simulation {FIRMWARE_K}",
                        s.capacity
                    );
                }
                Ok(())
            }
            r => Err(unexpected(&r)),
        }
    }
}

impl Target for Qemu {
    fn begin(&mut self, support: &[(f32, f32)]) -> Result<()> {
        let mut buf = Vec::new();
        for req in [Request::ClearSamples, Request::Reset] {
            match self.call(&req, &mut buf)? {
                Response::Cleared | Response::Reset => {}
                Response::Error(e) => return Err(refused(e)),
                r => return Err(unexpected(&r)),
            }
        }
        for &(x, y) in support {
            let (mut xb, mut yb) = ([0u8; 4], [0u8; 4]);
            let req = Request::Push {
                x: put_floats(&[x], &mut xb),
                y: put_floats(&[y], &mut yb),
            };
            match self.call(&req, &mut buf)? {
                Response::Pushed { .. } => {}
                Response::Error(e) => return Err(refused(e)),
                r => return Err(unexpected(&r)),
            }
        }
        Ok(())
    }

    fn adapt(&mut self, steps: u16) -> Result<(AdaptReport, Option<u64>)> {
        let mut buf = Vec::new();
        let req = Request::Adapt {
            steps: Some(steps),
            limit: StepLimit::Unchecked,
        };
        match self.call(&req, &mut buf)? {
            Response::Adapted { report, ticks } => Ok((report, Some(ticks))),
            Response::Error(e) => Err(refused(e)),
            r => Err(unexpected(&r)),
        }
    }

    fn predict(&mut self, x: f32) -> Result<(f32, Option<u64>)> {
        let mut buf = Vec::new();
        let mut xb = [0u8; 4];
        let req = Request::Predict {
            x: put_floats(&[x], &mut xb),
        };
        match self.call(&req, &mut buf)? {
            Response::Prediction { y, ticks } => {
                let y = floats(y)
                    .next()
                    .ok_or_else(|| anyhow!("empty prediction"))?;
                Ok((y, Some(ticks)))
            }
            Response::Error(e) => Err(refused(e)),
            r => Err(unexpected(&r)),
        }
    }

    fn predict_many(&mut self, xs: &[f32]) -> Result<Vec<f32>> {
        let mut ys = Vec::with_capacity(xs.len());
        let mut buf = Vec::new();
        for chunk in xs.chunks(usize::from(PARAMS_PER_FRAME)) {
            let mut xb = vec![0u8; 4 * chunk.len()];
            let req = Request::PredictMany {
                xs: put_floats(chunk, &mut xb),
            };
            match self.call(&req, &mut buf)? {
                Response::Predictions { ys: y, .. } => ys.extend(floats(y)),
                Response::Error(e) => return Err(refused(e)),
                r => return Err(unexpected(&r)),
            }
        }
        Ok(ys)
    }

    fn params(&mut self) -> Result<Vec<f32>> {
        let mut v = Vec::with_capacity(SinusoidNet::PARAMS);
        let mut buf = Vec::new();
        while v.len() < SinusoidNet::PARAMS {
            let count = (SinusoidNet::PARAMS - v.len()).min(usize::from(PARAMS_PER_FRAME));
            let req = Request::ReadParams {
                offset: v.len() as u32,
                count: count as u16,
            };
            match self.call(&req, &mut buf)? {
                Response::Params { values, .. } => v.extend(floats(values)),
                Response::Error(e) => return Err(refused(e)),
                r => return Err(unexpected(&r)),
            }
        }
        Ok(v)
    }
}

/// One task run through a target.
#[derive(Clone, Debug)]
pub struct DeviceTrace {
    /// MSE and guard after each of [`EVAL_STEPS`].
    pub trace: TaskTrace,
    /// Bits of every prediction, in order.
    pub predictions: Vec<u32>,
    /// Bits of the parameters after the last step.
    pub params: Vec<u32>,
    /// Every adaptation report, in order.
    pub reports: Vec<AdaptReport>,
    /// Ticks of each adaptation call and the steps it kept (when the target counts ticks).
    pub adapt_ticks: Vec<(u64, u16)>,
    /// Ticks of the first prediction.
    pub predict_ticks: Option<u64>,
}

impl DeviceTrace {
    /// Same predictions, parameters and reports, bit for bit.
    pub fn same_as(&self, other: &DeviceTrace) -> bool {
        self.predictions == other.predictions
            && self.params == other.params
            && self.reports.len() == other.reports.len()
            && self.reports.iter().zip(&other.reports).all(|(a, b)| {
                a.loss_before.to_bits() == b.loss_before.to_bits()
                    && a.loss_after.to_bits() == b.loss_after.to_bits()
                    && (a.steps, a.undone, a.cause) == (b.steps, b.undone, b.cause)
            })
    }
}

/// Adapts on one held-out task with K = `held.support.len()` and measures after each of
/// [`EVAL_STEPS`], as [`eval::eval_task`] does.
pub fn run_task(target: &mut impl Target, held: HeldOut) -> Result<DeviceTrace> {
    target.begin(&held.support)?;
    let (mut mse, mut guards, mut done, mut guard) = (Vec::new(), Vec::new(), 0u16, None);
    let (mut predictions, mut reports, mut adapt_ticks) = (Vec::new(), Vec::new(), Vec::new());
    // One single prediction first, for its instruction count; the rest go in batches.
    let xs: Vec<f32> = held.test.iter().map(|&(x, _)| x).collect();
    let (first, predict_ticks) = target.predict(xs.first().copied().unwrap_or(0.0))?;
    predictions.push(first.to_bits());
    for &s in &EVAL_STEPS {
        if s > done && guard.is_none() {
            let (r, ticks) = target.adapt(s - done)?;
            guard = r.cause;
            if let Some(t) = ticks {
                adapt_ticks.push((t, r.steps));
            }
            reports.push(r);
            done = s;
        }
        let mut sum = 0.0f64;
        for (p, &(_, y)) in target.predict_many(&xs)?.into_iter().zip(&held.test) {
            predictions.push(p.to_bits());
            sum += f64::from(p - y).powi(2);
        }
        mse.push(sum / held.test.len() as f64);
        guards.push(guard);
    }
    let params = target.params()?.iter().map(|v| v.to_bits()).collect();
    Ok(DeviceTrace {
        trace: TaskTrace {
            task: held.task,
            support: held.support,
            mse,
            guard: guards,
        },
        predictions,
        params,
        reports,
        adapt_ticks,
        predict_ticks,
    })
}

/// How the device compared with the host simulation.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Parity {
    /// Tasks compared.
    pub tasks: usize,
    /// Tasks whose predictions, adapted parameters and reports are bit-identical.
    pub identical: usize,
    /// Predictions compared.
    pub predictions: usize,
    /// Parameters compared.
    pub params: usize,
}

impl Parity {
    /// Every task identical.
    pub fn holds(&self) -> bool {
        self.tasks > 0 && self.identical == self.tasks
    }
}

/// Instruction counts the device reported, with `-icount` under QEMU.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Cost {
    /// Instructions of one inner step (difference of two adaptation calls).
    pub per_step: Option<u64>,
    /// Instructions of one prediction.
    pub per_prediction: Option<u64>,
}

/// The on-device evaluation: the table, the parity with the host simulation, the costs.
#[derive(Clone, Debug, Serialize)]
pub struct OnDevice {
    /// Board name.
    pub board: String,
    /// One result per K.
    pub results: Vec<KResult>,
    /// The host simulation's results on the same tasks.
    pub host: Vec<KResult>,
    /// Against the host simulation.
    pub parity: Parity,
    /// Instructions.
    pub cost: Cost,
    /// Stack use after the whole evaluation, and the adapter's RAM.
    pub memory: DeviceMemory,
}

/// RAM the firmware used.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct DeviceMemory {
    /// Stack high-water mark (bytes), from the painted stack.
    pub stack_peak: u32,
    /// Bytes the adapter itself occupies (in `.bss`).
    pub adapter_bytes: u32,
}

impl Qemu {
    /// Stack high-water mark and the adapter's size, as the firmware reports them.
    pub fn memory(&mut self) -> Result<DeviceMemory> {
        let mut buf = Vec::new();
        let stack_peak = match self.call(&Request::Memory, &mut buf)? {
            Response::Memory(m) => m.stack_peak,
            r => return Err(unexpected(&r)),
        };
        let adapter_bytes = match self.call(&Request::Status, &mut buf)? {
            Response::Status(s) => s.adapter_bytes,
            r => return Err(unexpected(&r)),
        };
        Ok(DeviceMemory {
            stack_peak,
            adapter_bytes,
        })
    }
}

/// Evaluates `blob` on the device behind `qemu` for K = 5 and 10, and the host simulation
/// alongside, task by task.
pub fn evaluate(
    qemu: &mut Qemu,
    blob: &[u8],
    cfg: &EvalConfig,
    mut progress: impl FnMut(usize),
) -> Result<OnDevice> {
    qemu.check_serving()?;
    let mut sim = HostSim::new(blob)?;
    let mut parity = Parity::default();
    let mut cost = Cost::default();
    let (mut results, mut host) = (Vec::new(), Vec::new());
    let mut done = 0;
    for k in [5, 10] {
        let mut traces = Vec::with_capacity(cfg.tasks);
        let mut host_traces = Vec::with_capacity(cfg.tasks);
        for i in 0..cfg.tasks {
            let on_device = run_task(qemu, eval::held_out(cfg, i, k))?;
            let on_host = run_task(&mut sim, eval::held_out(cfg, i, k))?;
            parity.tasks += 1;
            parity.predictions += on_device.predictions.len();
            parity.params += on_device.params.len();
            parity.identical += usize::from(on_device.same_as(&on_host));
            if k == 10 && cost.per_step.is_none() {
                cost = cost_of(qemu, &on_device);
            }
            traces.push(on_device.trace);
            host_traces.push(on_host.trace);
            done += 1;
            progress(done);
        }
        results.push(eval::summarise(k, &traces));
        host.push(eval::summarise(k, &host_traces));
    }
    Ok(OnDevice {
        board: qemu.board().name.into(),
        results,
        host,
        parity,
        cost,
        memory: qemu.memory()?,
    })
}

/// Per-step and per-prediction instructions from a trace whose adaptation ran 1, 4 and 5
/// steps: a call costs `c + n·s`, so two calls that kept `n1 ≠ n2` steps give `s`.
pub fn cost_of(qemu: &Qemu, t: &DeviceTrace) -> Cost {
    let per_step = t.adapt_ticks.windows(2).find_map(|w| {
        let ((t1, n1), (t2, n2)) = (w[0], w[1]);
        (n1 != n2 && n1 > 0 && n2 > 0).then(|| {
            let s = (t2 as i128 - t1 as i128) / (i128::from(n2) - i128::from(n1));
            qemu.instructions(s.max(0) as u64)
        })
    });
    Cost {
        per_step,
        per_prediction: t.predict_ticks.map(|p| qemu.instructions(p)),
    }
}

/// The on-device evaluation as text: device and host simulation side by side, parity and
/// instruction counts.
pub fn report(r: &OnDevice, cfg: &EvalConfig) -> String {
    let mut s = format!(
        "{} held-out tasks, {} target-test points each: adapted in the firmware on {} (QEMU) and in the host simulation\n",
        cfg.tasks, cfg.test_points, r.board
    );
    s.push_str(
        "   K  steps    device mean MSE ± 95% CI    host mean MSE ± 95% CI  stopped  diverged\n",
    );
    for (d, h) in r.results.iter().zip(&r.host) {
        for (c, hc) in d.cells.iter().zip(&h.cells) {
            s.push_str(&format!(
                "{:>4}  {:>5}  {:>14.4} ± {:<8.4}  {:>14.4} ± {:<8.4}  {:>7}  {:>8}\n",
                d.k, c.steps, c.mean, c.ci95, hc.mean, hc.ci95, c.stopped, c.diverged
            ));
        }
    }
    let p = &r.parity;
    s.push_str(&format!(
        "parity with the host simulation: {}/{} tasks bit-identical ({} predictions, {} adapted parameters compared): {}\n",
        p.identical,
        p.tasks,
        p.predictions,
        p.params,
        if p.holds() { "PASS" } else { "FAIL" }
    ));
    if let (Some(step), Some(pred)) = (r.cost.per_step, r.cost.per_prediction) {
        s.push_str(&format!(
            "instructions (QEMU -icount): {step} per inner step (K = 10), {pred} per prediction\n"
        ));
    }
    s.push_str(&format!(
        "RAM: adapter {} B, stack high-water mark {} B\n",
        r.memory.adapter_bytes, r.memory.stack_peak
    ));
    s
}
