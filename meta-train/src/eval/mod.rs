//! Held-out evaluation through the device runtime: every adaptation and prediction runs in the
//! `device` crate compiled for the host, the same code the firmware runs.

use anyhow::{anyhow, Result};
use device::{Adapter, ExtraSteps, Guard, Sample, StepLimit};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use shared::catalogue::Arithmetic;
use shared::fixed::{Q10H, Q20};
use shared::math::Real;
use shared::model::{Layers, SinusoidNet};

pub mod csv;
pub mod csv_on_device;
pub mod images;
pub mod images_on_device;
pub mod sinusoid_on_device;
pub mod stats;

use crate::tasks::sinusoid::Sinusoid;
use crate::tasks::{rng_for, Stream};

/// Steps after which the error is measured.
pub const EVAL_STEPS: [u16; 4] = [0, 1, 5, 10];

/// How held-out tasks are drawn.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub struct EvalConfig {
    /// Held-out tasks.
    pub tasks: usize,
    /// Seed; tasks come from the evaluation stream, disjoint from the training stream.
    pub seed: u64,
    /// Target-test points per task.
    pub test_points: usize,
}

/// Statistics of one (K, steps) cell over all tasks.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Cell {
    /// Inner steps taken.
    pub steps: u16,
    /// Mean of the per-task MSE.
    pub mean: f64,
    /// Half-width of the 95% confidence interval of the mean (1.96 standard errors).
    pub ci95: f64,
    /// Median of the per-task MSE.
    pub median: f64,
    /// Tasks whose adaptation the guard stopped by then because an extra step raised the
    /// loss on the samples.
    pub stopped: usize,
    /// Tasks whose adaptation diverged by then (a step's loss was non-finite or above the
    /// blob's bound; the guard undid it).
    pub diverged: usize,
}

/// Results for one support size K.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct KResult {
    /// Target-train samples per task.
    pub k: usize,
    /// One cell per entry of [`EVAL_STEPS`].
    pub cells: Vec<Cell>,
}

/// The per-task record of one evaluation, for plots.
#[derive(Clone, Debug)]
pub struct TaskTrace {
    /// The task.
    pub task: Sinusoid,
    /// Its target-train samples.
    pub support: Vec<(f32, f32)>,
    /// MSE on the target-test points after each of [`EVAL_STEPS`].
    pub mse: Vec<f64>,
    /// Why adaptation stopped early, by each of [`EVAL_STEPS`] (`None`: it did not).
    pub guard: Vec<Option<Guard>>,
}

/// A held-out task with its target-train (support) and target-test points.
pub struct HeldOut {
    /// The task.
    pub task: Sinusoid,
    /// K target-train points.
    pub support: Vec<(f32, f32)>,
    /// Target-test points.
    pub test: Vec<(f32, f32)>,
}

/// Draws held-out task `index` with `k` support points.
pub fn held_out(cfg: &EvalConfig, index: usize, k: usize) -> HeldOut {
    let mut rng = rng_for(cfg.seed, Stream::Eval, index as u64);
    let task = Sinusoid::sample(&mut rng);
    let support = task.points(&mut rng, k).collect();
    let test = task.points(&mut rng, cfg.test_points).collect();
    HeldOut {
        task,
        support,
        test,
    }
}

/// An adapter for `blob` holding the support samples.
pub fn adapter_for<'b, M: Layers<T, 1, 1>, T: Real, const K: usize>(
    blob: &'b [u8],
    support: &[(f32, f32)],
) -> Result<Adapter<'b, M, 1, 1, K, T>> {
    let mut a = Adapter::<M, 1, 1, K, T>::new(blob).map_err(|e| anyhow!("{e}"))?;
    for &(x, y) in support {
        a.push(Sample { x: [x], y: [y] })
            .map_err(|e| anyhow!("{e}"))?;
    }
    Ok(a)
}

/// Mean squared error of the adapter's predictions on `points`.
pub fn mse<M: Layers<T, 1, 1>, T: Real, const K: usize>(
    a: &Adapter<'_, M, 1, 1, K, T>,
    points: &[(f32, f32)],
) -> Result<f64> {
    let mut s = 0.0f64;
    for &(x, y) in points {
        let p = a.predict(&[x]).map_err(|e| anyhow!("{e}"))?[0];
        s += f64::from(p - y).powi(2);
    }
    Ok(s / points.len() as f64)
}

/// Adapts on one held-out task and records the error after each of [`EVAL_STEPS`].
pub fn eval_task<M: Layers<T, 1, 1>, T: Real, const K: usize>(
    blob: &[u8],
    cfg: &EvalConfig,
    index: usize,
) -> Result<TaskTrace> {
    eval_task_with::<M, T, K>(blob, cfg, index, None)
}

/// [`eval_task`] with the extra steps as `extra` says (see
/// `device::Adapter::adapt_steps_with`; `None`: the device's default for the blob).
pub fn eval_task_with<M: Layers<T, 1, 1>, T: Real, const K: usize>(
    blob: &[u8],
    cfg: &EvalConfig,
    index: usize,
    extra: Option<ExtraSteps>,
) -> Result<TaskTrace> {
    let HeldOut {
        task,
        support,
        test,
    } = held_out(cfg, index, K);
    let mut a = adapter_for::<M, T, K>(blob, &support)?;
    let (mut mses, mut guards, mut done, mut guard) = (Vec::new(), Vec::new(), 0u16, None);
    for &s in &EVAL_STEPS {
        if s > done && guard.is_none() {
            let r = match extra {
                Some(extra) => a.adapt_steps_with(s - done, StepLimit::Unchecked, extra),
                None => a.adapt_steps(s - done, StepLimit::Unchecked),
            }
            .map_err(|e| anyhow!("{e}"))?;
            guard = r.cause;
            done = s;
        }
        mses.push(mse(&a, &test)?);
        guards.push(guard);
    }
    Ok(TaskTrace {
        task,
        support,
        mse: mses,
        guard: guards,
    })
}

/// Evaluates `blob` on `cfg.tasks` held-out tasks with K target-train samples each.
pub fn evaluate<M: Layers<T, 1, 1> + Send + Sync, T: Real, const K: usize>(
    blob: &[u8],
    cfg: &EvalConfig,
) -> Result<KResult>
where
    for<'b> Adapter<'b, M, 1, 1, K, T>: Send,
{
    evaluate_with::<M, T, K>(blob, cfg, None)
}

/// [`evaluate`] with the extra steps as `extra` says ([`ExtraSteps::STOP`]: the guard stops
/// at the first one that raises the loss; `None`: the device's default for the blob).
pub fn evaluate_with<M: Layers<T, 1, 1> + Send + Sync, T: Real, const K: usize>(
    blob: &[u8],
    cfg: &EvalConfig,
    extra: Option<ExtraSteps>,
) -> Result<KResult>
where
    for<'b> Adapter<'b, M, 1, 1, K, T>: Send,
{
    let traces: Vec<TaskTrace> = (0..cfg.tasks)
        .into_par_iter()
        .map(|i| eval_task_with::<M, T, K>(blob, cfg, i, extra))
        .collect::<Result<_>>()?;
    Ok(summarise(K, &traces))
}

/// The statistics of each of [`EVAL_STEPS`] over per-task traces.
pub fn summarise(k: usize, traces: &[TaskTrace]) -> KResult {
    let cells = EVAL_STEPS
        .iter()
        .enumerate()
        .map(|(c, &steps)| {
            let v: Vec<f64> = traces.iter().map(|t| t.mse[c]).collect();
            let guards: Vec<Option<Guard>> = traces.iter().map(|t| t.guard[c]).collect();
            cell(steps, &v, &guards)
        })
        .collect();
    KResult { k, cells }
}

/// One column of a table: the statistics of one value per task after `steps` steps, and
/// how many of those tasks the guard stopped or saw diverge (`guards`, one per task).
///
/// ```
/// use meta_train::eval::cell;
/// use shared::report::Guard;
/// let c = cell(5, &[1.0, 3.0], &[None, Some(Guard::NonFinite)]);
/// assert_eq!((c.mean, c.median, c.stopped, c.diverged), (2.0, 2.0, 0, 1));
/// ```
pub fn cell(steps: u16, values: &[f64], guards: &[Option<Guard>]) -> Cell {
    let (mean, ci95) = stats::mean_ci95(values);
    let median = stats::median(values);
    let count = |f: fn(&Option<Guard>) -> bool| guards.iter().filter(|g| f(g)).count();
    Cell {
        steps,
        mean,
        ci95,
        median,
        stopped: count(|g| *g == Some(Guard::Rose)),
        diverged: count(|g| matches!(g, Some(Guard::NonFinite | Guard::AboveBound))),
    }
}

/// A sinusoid-net blob adapted with K = 5 and K = 10 target-train samples, the two rows of
/// the MAML paper's regression table.
///
/// ```no_run
/// # fn main() -> anyhow::Result<()> {
/// use meta_train::eval::{evaluate_sinusoid, table, EvalConfig};
/// let blob = std::fs::read("runs/sinusoid-maml-k10-seed0/wstar.bin")?;
/// let cfg = EvalConfig { tasks: 600, seed: 0, test_points: 100 };
/// println!("{}", table(&evaluate_sinusoid(&blob, &cfg)?));
/// # Ok(())
/// # }
/// ```
pub fn evaluate_sinusoid(blob: &[u8], cfg: &EvalConfig) -> Result<Vec<KResult>> {
    evaluate_sinusoid_in(blob, cfg, Arithmetic::F32)
}

/// [`evaluate_sinusoid`] by an adapter computing in `arithmetic` (the fixed-point build of a
/// core without an FPU, or `f32`).
pub fn evaluate_sinusoid_in(
    blob: &[u8],
    cfg: &EvalConfig,
    arithmetic: Arithmetic,
) -> Result<Vec<KResult>> {
    Ok(match arithmetic {
        Arithmetic::F32 => vec![
            evaluate::<SinusoidNet, f32, 5>(blob, cfg)?,
            evaluate::<SinusoidNet, f32, 10>(blob, cfg)?,
        ],
        Arithmetic::Q20 => vec![
            evaluate::<SinusoidNet<Q20>, Q20, 5>(blob, cfg)?,
            evaluate::<SinusoidNet<Q20>, Q20, 10>(blob, cfg)?,
        ],
        Arithmetic::Q10H => vec![
            evaluate::<SinusoidNet<Q10H>, Q10H, 5>(blob, cfg)?,
            evaluate::<SinusoidNet<Q10H>, Q10H, 10>(blob, cfg)?,
        ],
    })
}

/// The ratio of the mean MSE of `results` to that of `reference` in each (K, steps) cell, as
/// `K=5/0: 1.000, …`: how an arithmetic compares with another on the same tasks.
///
/// ```
/// use meta_train::eval::{cell, ratios, KResult};
/// let r = |m: f64| vec![KResult { k: 5, cells: vec![cell(1, &[m], &[None])] }];
/// assert_eq!(ratios(&r(1.03), &r(1.0)), "K=5/1: 1.030");
/// ```
pub fn ratios(results: &[KResult], reference: &[KResult]) -> String {
    let mut parts = Vec::new();
    for (r, f) in results.iter().zip(reference) {
        for (c, fc) in r.cells.iter().zip(&f.cells) {
            parts.push(format!("K={}/{}: {:.3}", r.k, c.steps, c.mean / fc.mean));
        }
    }
    parts.join(", ")
}

/// The results as a text table.
pub fn table(results: &[KResult]) -> String {
    let mut s =
        String::from("   K  steps        mean MSE ± 95% CI      median  stopped  diverged\n");
    for r in results {
        for c in &r.cells {
            s.push_str(&format!(
                "{:>4}  {:>5}  {:>12.4} ± {:<8.4}  {:>10.4}  {:>7}  {:>8}\n",
                r.k, c.steps, c.mean, c.ci95, c.median, c.stopped, c.diverged
            ));
        }
    }
    s.push_str(
        "stopped: tasks where the device's guard undid an extra step that raised the loss on its samples even at a 256th of its length;\n\
         diverged: tasks where a step's loss went non-finite or above w*'s bound (undone too).\n",
    );
    s
}

/// Ticks of one inner step, from the first two adaptation calls that kept different numbers
/// of steps: a call costs `c + n·s`. An evaluation times a call of no step, then the trained
/// steps, so `s` is a step's cost without the retries an extra step may take.
///
/// ```
/// use meta_train::eval::step_ticks;
/// assert_eq!(step_ticks(&[(100, 0), (350, 1), (2000, 4)]), Some(250));
/// assert_eq!(step_ticks(&[(100, 0)]), None);
/// ```
pub fn step_ticks(calls: &[(u64, u16)]) -> Option<u64> {
    calls.windows(2).find_map(|w| {
        let ((t1, n1), (t2, n2)) = (w[0], w[1]);
        (n1 != n2 && n2 > 0).then(|| {
            let s = (t2 as i128 - t1 as i128) / (i128::from(n2) - i128::from(n1));
            s.max(0) as u64
        })
    })
}
