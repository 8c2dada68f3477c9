//! The held-out evaluation of a `w*` trained on CSV tasks, run on a device over the link and,
//! request for request, on the host simulation of its firmware ([`Loopback`]): the same
//! episodes as [`super::csv::evaluate_csv`] draws, their metrics side by side, the parity
//! verdict, the instructions per inner step and per prediction, and the device's RAM.

use anyhow::{anyhow, Result};
use device::{Guard, StepLimit};
use serde::Serialize;
use shared::catalogue::Firmware;
use shared::slots::slot_image;

use super::csv::{draw, squared_error, CsvEval, CsvEvalConfig, Plan, Trace};
use crate::link::parity::{run_both, Parity, Workload};
use crate::link::{Link, Loopback, Port};
use crate::tasks::csv::{CsvTasks, Row, Target};
use crate::train::csv::target_values;

/// The evaluation on a device next to its host simulation.
#[derive(Clone, Debug, Serialize)]
pub struct CsvOnDevice {
    /// What the device is.
    pub device: String,
    /// The firmware's catalogue name.
    pub firmware: String,
    /// The metrics on the device.
    pub on_device: CsvEval,
    /// The metrics of the host simulation.
    pub on_host: CsvEval,
    /// Bit-for-bit comparison, episode by episode.
    pub parity: Parity,
    /// Cost of one inner step (instructions under QEMU, clock ticks on hardware).
    pub per_step: Option<u64>,
    /// Cost of one prediction, likewise.
    pub per_prediction: Option<u64>,
    /// Whether the costs are exact instruction counts (QEMU's `-icount`) or clock ticks.
    pub instructions: bool,
    /// Bytes of RAM the device's adapter occupies.
    pub adapter_bytes: u32,
    /// The device's stack high-water mark after the evaluation.
    pub stack_peak: u32,
}

/// One episode as link requests.
struct Episode<'a> {
    xs: Vec<f32>,
    ys: Vec<f32>,
    test_x: Vec<f32>,
    test: Vec<&'a Row>,
    target: &'a Target,
    steps: &'a [u16],
    inputs: usize,
    outputs: usize,
    params: usize,
}

/// What an episode gives on one device.
struct Run {
    trace: Trace,
    /// Ticks of each adaptation call and the steps it kept.
    adapt_ticks: Vec<(u64, u16)>,
    /// Ticks of the first prediction.
    predict_ticks: u64,
}

impl Workload for Episode<'_> {
    type Out = Run;

    fn run<P: Port>(&mut self, link: &mut Link<P>) -> Result<Run> {
        link.clear()?;
        link.reset()?;
        for (x, y) in self
            .xs
            .chunks(self.inputs)
            .zip(self.ys.chunks(self.outputs))
        {
            link.push(x, y)?;
        }
        let first = self
            .test_x
            .get(..self.inputs)
            .ok_or_else(|| anyhow!("an episode with no row to predict"))?;
        let (_, predict_ticks) = link.predict(first)?;
        let (mut metric, mut guard, mut adapt_ticks) = (Vec::new(), Vec::new(), Vec::new());
        // No step: what every adaptation call costs besides its steps (eval::step_ticks).
        let (report, ticks) = link.adapt(Some(0), StepLimit::Unchecked)?;
        adapt_ticks.push((ticks, report.steps));
        let (mut done, mut cause): (u16, Option<Guard>) = (0, None);
        for &s in self.steps {
            if s > done && cause.is_none() {
                let (report, ticks) = link.adapt(Some(s - done), StepLimit::Unchecked)?;
                cause = report.cause;
                adapt_ticks.push((ticks, report.steps));
                done = s;
            }
            let ys = link.predict_many(&self.test_x, self.inputs, self.outputs)?;
            metric.push(score(self.target, &self.test, &ys, self.outputs));
            guard.push(cause);
        }
        link.params(self.params)?;
        Ok(Run {
            trace: Trace { metric, guard },
            adapt_ticks,
            predict_ticks,
        })
    }
}

/// Accuracy (classification: the largest output, the first on a tie) or MSE (regression) of
/// the outputs `ys` (`outputs` per row) on `rows`.
fn score(target: &Target, rows: &[&Row], ys: &[f32], outputs: usize) -> f64 {
    let total: f64 = rows
        .iter()
        .zip(ys.chunks(outputs))
        .map(|(row, y)| match target {
            Target::Classification { .. } => {
                let label = (0..y.len()).fold(0, |best, c| if y[c] > y[best] { c } else { best });
                f64::from(u8::from(label == row.y[0] as usize))
            }
            Target::Regression { .. } => squared_error(y, &row.y),
        })
        .sum();
    total / rows.len() as f64
}

/// Evaluates `blob` on the held-out tasks of `tasks` on the device behind `device`, which
/// serves `firmware`, and on the host simulation of that firmware; `progress` is told how
/// many episodes are done.
pub fn evaluate_on<P: Port>(
    device: &mut Link<P>,
    firmware: &Firmware,
    blob: &[u8],
    tasks: &CsvTasks,
    cfg: &CsvEvalConfig,
    mut progress: impl FnMut(usize, usize),
) -> Result<CsvOnDevice> {
    let plan = Plan::new(blob, tasks, cfg)?;
    let status = device.status()?;
    let device_name = device.port().name();
    if let Err(e) = status.blob {
        return Err(anyhow!("{device_name}: no usable w*: {e}"));
    }
    let image = slot_image(blob, 1);
    let mut host = Link::new(Loopback::open(firmware, [&image, &[]])?);
    let expected = host.status()?;
    let shape = |s: &shared::link::Status| (s.blob.ok(), s.inputs, s.outputs, s.capacity);
    if shape(&status) != shape(&expected) {
        return Err(anyhow!(
            "{device_name} serves a different model or w*: (signature, inputs, outputs, capacity) {:?}, the firmware {firmware} with this w* is {:?}; flash the firmware `meta-train firmware` builds for this w*, and the w*",
            shape(&status),
            shape(&expected)
        ));
    }
    let episodes = plan.episodes(cfg);
    let mut parity = Parity::default();
    let (mut on_device, mut on_host) = (Vec::new(), Vec::new());
    let (mut per_step, mut per_prediction) = (None, None);
    for (n, &(e, task)) in episodes.iter().enumerate() {
        let (support, test) = draw(tasks, task, plan.k, cfg.seed, e);
        let mut episode = Episode {
            xs: support.iter().flat_map(|r| r.x.iter().copied()).collect(),
            ys: support
                .iter()
                .flat_map(|r| target_values(&tasks.target, r))
                .collect(),
            test_x: test.iter().flat_map(|r| r.x.iter().copied()).collect(),
            test,
            target: &tasks.target,
            steps: &plan.steps,
            inputs: plan.inputs,
            outputs: plan.outputs,
            params: status.params as usize,
        };
        let (d, h) = run_both(&mut episode, device, &mut host, &mut parity)?;
        per_step = per_step.or_else(|| super::step_ticks(&d.adapt_ticks));
        per_prediction.get_or_insert(d.predict_ticks);
        on_device.push(d.trace);
        on_host.push(h.trace);
        progress(n + 1, episodes.len());
    }
    let memory = device.memory()?;
    let exact = device.instructions(0).is_some();
    let cost = |t: Option<u64>| t.map(|t| device.instructions(t).unwrap_or(t));
    Ok(CsvOnDevice {
        device: device_name,
        firmware: firmware.to_string(),
        on_device: plan.summarise(tasks, cfg, &on_device),
        on_host: plan.summarise(tasks, cfg, &on_host),
        parity,
        per_step: cost(per_step),
        per_prediction: cost(per_prediction),
        instructions: exact,
        adapter_bytes: status.adapter_bytes,
        stack_peak: memory.stack_peak,
    })
}

/// The evaluation as text: device and host side by side, the parity verdict, the costs.
pub fn report(r: &CsvOnDevice) -> String {
    let d = &r.on_device;
    let mut s = format!(
        "{}: adapted on {} (firmware {}) and in the host simulation\n",
        d.heading(),
        r.device,
        r.firmware
    );
    let name = d.metric_name();
    s.push_str(&format!(
        "steps  device {name:>8} ± 95% CI    host {name:>8} ± 95% CI  stopped  diverged\n"
    ));
    for (c, h) in d.cells.iter().zip(&r.on_host.cells) {
        s.push_str(&format!(
            "{:>5}  {:>15.4} ± {:<8.4}  {:>13.4} ± {:<8.4}  {:>7}  {:>8}\n",
            c.steps, c.mean, c.ci95, h.mean, h.ci95, c.stopped, c.diverged
        ));
    }
    if let Some(chance) = d.chance {
        s.push_str(&format!("chance (uniform guess): {chance:.4}\n"));
    }
    s.push_str(&r.parity.verdict());
    s.push('\n');
    let unit = if r.instructions {
        "instructions (QEMU -icount)"
    } else {
        "clock ticks"
    };
    if let (Some(step), Some(pred)) = (r.per_step, r.per_prediction) {
        s.push_str(&format!(
            "{unit}: {step} per inner step (K = {}), {pred} per prediction\n",
            d.k
        ));
    }
    s.push_str(&format!(
        "RAM: adapter {} B, stack high-water mark {} B\n",
        r.adapter_bytes, r.stack_peak
    ));
    s
}

/// [`evaluate_on`] the device `on` names: for an emulated board, the firmware for `blob` in
/// `arithmetic` is built (or `elf` taken) and booted under QEMU with `blob` in its `w*` slot
/// A; a serial port is opened, its board already flashed with that firmware and `blob`.
pub fn evaluate(
    on: &crate::link::On,
    arithmetic: shared::catalogue::Arithmetic,
    elf: Option<&std::path::Path>,
    blob: &[u8],
    tasks: &CsvTasks,
    cfg: &CsvEvalConfig,
) -> Result<CsvOnDevice> {
    use crate::link::{device::Device, firmware};
    let fw = firmware::for_blob(blob, None)?
        .in_arithmetic(arithmetic)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    // The episodes are checked before any firmware is built.
    Plan::new(blob, tasks, cfg)?;
    let bar = indicatif::ProgressBar::new(0).with_style(
        indicatif::ProgressStyle::with_template(
            "{msg} {bar:30} {pos}/{len} episodes [{elapsed}<{eta}]",
        )
        .expect("valid template"),
    );
    let progress = |done: usize, of: usize| {
        bar.set_length(of as u64);
        bar.set_position(done as u64);
    };
    let mut device = Device::open(on, &fw, elf, blob)?;
    bar.set_message(format!("on {}", device.name()));
    let r = crate::with_link!(device, link => evaluate_on(link, &fw, blob, tasks, cfg, progress));
    bar.finish_and_clear();
    r
}
