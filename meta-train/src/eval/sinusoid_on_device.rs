//! The held-out sinusoid evaluation run on a device over the link, next to the host's
//! simulation of that device: the same requests, the same `device` code, compared bit for bit.
//!
//! The device is any [`Link`]: the firmware under QEMU or on a serial port, and the host
//! simulation, the sinusoid firmware's server in-process ([`host_sim`]). [`run_task`] drives
//! either through one held-out task exactly as [`eval::eval_task`] does; [`TaskRun`] is that
//! task as a parity [`Workload`], so both transcripts are compared by [`run_both`].

use std::path::Path;

use anyhow::{bail, Result};
use device::{AdaptReport, StepLimit};
use serde::Serialize;
use shared::catalogue::{Arithmetic, Firmware};
use shared::model::{Params, SinusoidNet};

use crate::eval::{self, EvalConfig, HeldOut, KResult, TaskTrace, EVAL_STEPS};
use crate::link::device::Device;
use crate::link::parity::{run_both, Parity, Workload};
use crate::link::{Link, Loopback, On, Port};

/// The host's simulation of `firmware` (the sinusoid firmware, [`Firmware::SINUSOID`], in
/// some arithmetic) serving `slot` (a slot image, see `shared::slots::slot_image`): its
/// server, in this process.
///
/// ```
/// use meta_train::eval::sinusoid_on_device::host_sim;
/// use shared::catalogue::Firmware;
/// let erased = [0xFFu8; 64];
/// let mut sim = host_sim(&Firmware::SINUSOID, &erased)?;
/// assert!(sim.reset().is_err()); // nothing flashed: refused
/// # anyhow::Ok(())
/// ```
pub fn host_sim<'s>(firmware: &Firmware, slot: &'s [u8]) -> Result<Link<Loopback<'s>>> {
    Ok(Link::new(Loopback::open(firmware, [slot, &[]])?))
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

/// Adapts on one held-out task with K = `held.support.len()` and measures after each of
/// [`EVAL_STEPS`], as [`eval::eval_task`] does: clear, reset, push the support set, one single
/// prediction and an adaptation of no step (for their costs), then after each step count a
/// batch of predictions.
pub fn run_task<P: Port>(link: &mut Link<P>, held: &HeldOut) -> Result<DeviceTrace> {
    link.clear()?;
    link.reset()?;
    for &(x, y) in &held.support {
        link.push(&[x], &[y])?;
    }
    let (mut mse, mut guards, mut done, mut guard) = (Vec::new(), Vec::new(), 0u16, None);
    let (mut predictions, mut reports, mut adapt_ticks) = (Vec::new(), Vec::new(), Vec::new());
    let xs: Vec<f32> = held.test.iter().map(|&(x, _)| x).collect();
    let (first, predict_ticks) = link.predict(&[xs.first().copied().unwrap_or(0.0)])?;
    let Some(&first) = first.first() else {
        bail!("{}: an empty prediction", link.port().name());
    };
    predictions.push(first.to_bits());
    // No step: what every adaptation call costs besides its steps (eval::step_ticks).
    let (r, ticks) = link.adapt(Some(0), StepLimit::Unchecked)?;
    adapt_ticks.push((ticks, r.steps));
    reports.push(r);
    for &s in &EVAL_STEPS {
        if s > done && guard.is_none() {
            let (r, ticks) = link.adapt(Some(s - done), StepLimit::Unchecked)?;
            guard = r.cause;
            adapt_ticks.push((ticks, r.steps));
            reports.push(r);
            done = s;
        }
        let mut sum = 0.0f64;
        for (p, &(_, y)) in link.predict_many(&xs, 1, 1)?.into_iter().zip(&held.test) {
            predictions.push(p.to_bits());
            sum += f64::from(p - y).powi(2);
        }
        mse.push(sum / held.test.len() as f64);
        guards.push(guard);
    }
    let params = link
        .params(<SinusoidNet>::PARAMS)?
        .iter()
        .map(|v| v.to_bits())
        .collect();
    Ok(DeviceTrace {
        trace: TaskTrace {
            task: held.task,
            support: held.support.clone(),
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

/// One held-out task as a parity [`Workload`]: [`run_task`] on each device.
///
/// ```no_run
/// use meta_train::eval::sinusoid_on_device::{host_sim, TaskRun};
/// use meta_train::eval::{held_out, EvalConfig};
/// use meta_train::link::parity::{run_both, Parity};
/// let blob = std::fs::read("runs/sinusoid-maml-k10-seed0/wstar.bin")?;
/// let image = shared::slots::slot_image(&blob, 1);
/// let fw = shared::catalogue::Firmware::SINUSOID;
/// let (mut a, mut b) = (host_sim(&fw, &image)?, host_sim(&fw, &image)?);
/// let cfg = EvalConfig { tasks: 1, seed: 0, test_points: 10 };
/// let mut parity = Parity::default();
/// run_both(&mut TaskRun(held_out(&cfg, 0, 10)), &mut a, &mut b, &mut parity)?;
/// assert!(parity.holds(), "{}", parity.verdict());
/// # anyhow::Ok(())
/// ```
pub struct TaskRun(pub HeldOut);

impl Workload for TaskRun {
    type Out = DeviceTrace;

    fn run<P: Port>(&mut self, link: &mut Link<P>) -> Result<DeviceTrace> {
        run_task(link, &self.0)
    }
}

/// Instruction counts the device reported, with `-icount` under QEMU.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Cost {
    /// Instructions of one inner step (difference of two adaptation calls).
    pub per_step: Option<u64>,
    /// Instructions of one prediction.
    pub per_prediction: Option<u64>,
    /// Whether the counts are instructions (QEMU's `-icount`) rather than clock ticks.
    pub instructions: bool,
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

/// Evaluates `blob` on `device`, which runs `firmware`, for K = 5 and 10, and the host
/// simulation of that firmware alongside, task by task.
pub fn evaluate_on<P: Port>(
    device: &mut Link<P>,
    firmware: &Firmware,
    board: &str,
    blob: &[u8],
    cfg: &EvalConfig,
    mut progress: impl FnMut(usize),
) -> Result<OnDevice> {
    check_serving(device)?;
    let image = shared::slots::slot_image(blob, 1);
    let mut sim = host_sim(firmware, &image)?;
    let mut parity = Parity::default();
    let mut cost = Cost::default();
    let (mut results, mut host) = (Vec::new(), Vec::new());
    let mut done = 0;
    for k in [5, 10] {
        let mut traces = Vec::with_capacity(cfg.tasks);
        let mut host_traces = Vec::with_capacity(cfg.tasks);
        for i in 0..cfg.tasks {
            let mut task = TaskRun(eval::held_out(cfg, i, k));
            let (on_device, on_host) = run_both(&mut task, device, &mut sim, &mut parity)?;
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

/// [`evaluate_on`] the device `on` names ([`Device::open`]: the sinusoid firmware in
/// `arithmetic`, or `elf` built as that firmware, booted under QEMU with `blob`, or a board on
/// a serial port flashed with both); also returns the firmware's decoded log (under QEMU).
pub fn evaluate(
    on: &On,
    arithmetic: Arithmetic,
    elf: Option<&Path>,
    blob: &[u8],
    cfg: &EvalConfig,
) -> Result<(OnDevice, Vec<String>)> {
    let firmware = Firmware::SINUSOID
        .in_arithmetic(arithmetic)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut device = Device::open(on, &firmware, elf, blob)?;
    let name = device.name();
    let bar = indicatif::ProgressBar::new(2 * cfg.tasks as u64).with_style(
        indicatif::ProgressStyle::with_template(
            "{msg} {bar:30} {pos}/{len} tasks [{elapsed}<{eta}]",
        )
        .expect("valid template"),
    );
    bar.set_message(format!("on {name}"));
    let progress = |n: usize| bar.set_position(n as u64);
    let r = crate::with_link!(device, link => evaluate_on(link, &firmware, &name, blob, cfg, progress))?;
    bar.finish_and_clear();
    Ok((r, device.logs()?))
}

/// Per-step and per-prediction instructions from a trace whose adaptation ran 1, 4 and 5
/// steps: a call costs `c + n·s`, so two calls that kept `n1 ≠ n2` steps give `s`.
/// On a device whose port knows instructions (QEMU); the clock ticks otherwise.
pub fn cost_of<P: Port>(device: &Link<P>, t: &DeviceTrace) -> Cost {
    let count = |ticks: u64| device.instructions(ticks).unwrap_or(ticks);
    Cost {
        per_step: eval::step_ticks(&t.adapt_ticks).map(count),
        per_prediction: Some(count(t.predict_ticks)),
        instructions: device.instructions(0).is_some(),
    }
}

/// The on-device evaluation as text: device and host simulation side by side, parity and
/// instruction counts.
pub fn report(r: &OnDevice, cfg: &EvalConfig) -> String {
    let mut s = format!(
        "{} held-out tasks, {} target-test points each: adapted in the firmware on {} and in the host simulation\n",
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
    s.push_str(&r.parity.verdict());
    s.push('\n');
    if let (Some(step), Some(pred)) = (r.cost.per_step, r.cost.per_prediction) {
        s.push_str(&format!(
            "{}: {step} per inner step (K = 10), {pred} per prediction\n",
            if r.cost.instructions {
                "instructions (QEMU -icount)"
            } else {
                "clock ticks"
            }
        ));
    }
    s.push_str(&format!(
        "RAM: adapter {} B, stack high-water mark {} B\n",
        r.memory.adapter_bytes, r.memory.stack_peak
    ));
    s
}
