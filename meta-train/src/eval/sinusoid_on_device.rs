//! The held-out sinusoid evaluation run on a device over the link, next to the host's
//! simulation of that device: the same requests, the same `device` code, compared bit for bit.
//!
//! A [`Target`] is anything that adapts like the firmware; every [`Link`] is one: the firmware
//! under QEMU or on a serial port, and the host simulation, the sinusoid firmware's server
//! in-process ([`host_sim`]). [`run_task`] drives either through one held-out task exactly as
//! [`eval::eval_task`] does, and keeps every prediction and the final parameters as bits.

use anyhow::{bail, Result};
use device::{AdaptReport, StepLimit};
use serde::Serialize;
use shared::catalogue::Firmware;
use shared::model::{Params, SinusoidNet};

use crate::eval::{self, EvalConfig, HeldOut, KResult, TaskTrace, EVAL_STEPS};
use crate::link::{Link, Loopback, Port};

/// Something that adapts like the firmware.
pub trait Target {
    /// Starts a task: drops the samples, resets to `θ0`, pushes `support`.
    fn begin(&mut self, support: &[(f32, f32)]) -> Result<()>;
    /// Runs `steps` more inner steps (unchecked: the guard decides); returns the report and the
    /// clock ticks it took.
    fn adapt(&mut self, steps: u16) -> Result<(AdaptReport, u64)>;
    /// Predicts `y` at `x`, and the ticks it took.
    fn predict(&mut self, x: f32) -> Result<(f32, u64)>;
    /// Predicts `y` at each of `xs`.
    fn predict_many(&mut self, xs: &[f32]) -> Result<Vec<f32>>;
    /// The live parameters.
    fn params(&mut self) -> Result<Vec<f32>>;
}

/// The host's simulation of the sinusoid firmware serving `slot` (a slot image, see
/// `shared::slots::slot_image`): its server, in this process.
///
/// ```
/// use meta_train::eval::sinusoid_on_device::{host_sim, Target};
/// let erased = [0xFFu8; 64];
/// let mut sim = host_sim(&erased)?;
/// assert!(sim.begin(&[(0.5, 1.0)]).is_err()); // nothing flashed: refused
/// # anyhow::Ok(())
/// ```
pub fn host_sim(slot: &[u8]) -> Result<Link<Loopback<'_>>> {
    Ok(Link::new(Loopback::open(&Firmware::SINUSOID, [slot, &[]])?))
}

impl<P: Port> Target for Link<P> {
    fn begin(&mut self, support: &[(f32, f32)]) -> Result<()> {
        self.clear()?;
        self.reset()?;
        for &(x, y) in support {
            self.push(&[x], &[y])?;
        }
        Ok(())
    }

    fn adapt(&mut self, steps: u16) -> Result<(AdaptReport, u64)> {
        Link::adapt(self, Some(steps), StepLimit::Unchecked)
    }

    fn predict(&mut self, x: f32) -> Result<(f32, u64)> {
        let (y, ticks) = Link::predict(self, &[x])?;
        match y.first() {
            Some(&y) => Ok((y, ticks)),
            None => bail!("{}: an empty prediction", self.port().name()),
        }
    }

    fn predict_many(&mut self, xs: &[f32]) -> Result<Vec<f32>> {
        Link::predict_many(self, xs, 1, 1)
    }

    fn params(&mut self) -> Result<Vec<f32>> {
        Link::params(self, SinusoidNet::PARAMS)
    }
}

/// Checks that the device serves a blob for the sinusoid net with the capacity of the
/// sinusoid firmware, which the host simulation has.
pub fn check_serving<P: Port>(device: &mut Link<P>) -> Result<()> {
    let s = device.status()?;
    if let Err(e) = s.blob {
        bail!("{}: no usable w*: {e}", device.port().name());
    }
    if s.capacity != Firmware::SINUSOID.capacity {
        bail!(
            "{} holds {} samples, the sinusoid firmware {}",
            device.port().name(),
            s.capacity,
            Firmware::SINUSOID.capacity
        );
    }
    Ok(())
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
    /// Ticks of each adaptation call and the steps it kept.
    pub adapt_ticks: Vec<(u64, u16)>,
    /// Ticks of the first prediction.
    pub predict_ticks: u64,
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
            adapt_ticks.push((ticks, r.steps));
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

/// Stack high-water mark and the adapter's size, as the device reports them.
pub fn memory<P: Port>(device: &mut Link<P>) -> Result<DeviceMemory> {
    Ok(DeviceMemory {
        stack_peak: device.memory()?.stack_peak,
        adapter_bytes: device.status()?.adapter_bytes,
    })
}

/// Evaluates `blob` on `device` for K = 5 and 10, and the host simulation alongside, task by
/// task.
pub fn evaluate<P: Port>(
    device: &mut Link<P>,
    board: &str,
    blob: &[u8],
    cfg: &EvalConfig,
    mut progress: impl FnMut(usize),
) -> Result<OnDevice> {
    check_serving(device)?;
    let image = shared::slots::slot_image(blob, 1);
    let mut sim = host_sim(&image)?;
    let mut parity = Parity::default();
    let mut cost = Cost::default();
    let (mut results, mut host) = (Vec::new(), Vec::new());
    let mut done = 0;
    for k in [5, 10] {
        let mut traces = Vec::with_capacity(cfg.tasks);
        let mut host_traces = Vec::with_capacity(cfg.tasks);
        for i in 0..cfg.tasks {
            let on_device = run_task(device, eval::held_out(cfg, i, k))?;
            let on_host = run_task(&mut sim, eval::held_out(cfg, i, k))?;
            parity.tasks += 1;
            parity.predictions += on_device.predictions.len();
            parity.params += on_device.params.len();
            parity.identical += usize::from(on_device.same_as(&on_host));
            if k == 10 && cost.per_step.is_none() {
                cost = cost_of(device, &on_device);
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
        board: board.into(),
        results,
        host,
        parity,
        cost,
        memory: memory(device)?,
    })
}

/// Per-step and per-prediction instructions from a trace whose adaptation ran 1, 4 and 5
/// steps: a call costs `c + n·s`, so two calls that kept `n1 ≠ n2` steps give `s`.
/// On a device whose port knows instructions (QEMU); the clock ticks otherwise.
pub fn cost_of<P: Port>(device: &Link<P>, t: &DeviceTrace) -> Cost {
    let count = |ticks: u64| device.instructions(ticks).unwrap_or(ticks);
    Cost {
        per_step: eval::step_ticks(&t.adapt_ticks).map(count),
        per_prediction: Some(count(t.predict_ticks)),
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
