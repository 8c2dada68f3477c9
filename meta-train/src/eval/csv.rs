//! Held-out evaluation of a `w*` trained on CSV tasks, through the device runtime: for each
//! held-out task of the file ([`crate::train::csv::split_tasks`]) and each of several draws of
//! its support set, the `device` crate's [`Adapter`] takes the K support samples in the user's
//! units, adapts, and predicts the task's other samples (its `test` rows when the file fixes
//! the split, its remaining rows otherwise). Classification reports the accuracy, regression
//! the MSE, each as a mean over the episodes (task × draw) with a 95% interval.

use anyhow::{anyhow, bail, Result};
use device::{Adapter, Guard, Sample, StepLimit};
use rand::seq::index::sample;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use shared::catalogue::Arithmetic;
use shared::fixed::{Q10H, Q20};
use shared::loss::Loss;
use shared::math::Real;
use shared::wstar::Blob;

use crate::eval::{cell, Cell, EVAL_STEPS};
use crate::model::{CsvNet, CSV_HIDDEN, CSV_MAX_K};
use crate::tasks::csv::{CsvTask, CsvTasks, Row, Target};
use crate::train::csv::{check_shape, dims, loss_of, split_tasks, target_values};

use crate::tasks::{rng_for, Stream};

/// Which held-out episodes to evaluate.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct CsvEvalConfig {
    /// The fraction of tasks held out, as in training (1: every task of the file).
    pub holdout: f64,
    /// Support sets drawn per held-out task.
    pub draws: usize,
    /// Seed of the draws (the evaluation stream).
    pub seed: u64,
}

/// The result of an evaluation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CsvEval {
    /// The task file.
    pub file: String,
    /// `accuracy` (classification) or `mse` (regression, in the user's units).
    pub metric: String,
    /// Support samples per episode (the blob's trained K).
    pub k: usize,
    /// The held-out tasks.
    pub tasks: Vec<String>,
    /// Support sets drawn per task.
    pub draws: usize,
    /// Accuracy of guessing uniformly (classification).
    pub chance: Option<f64>,
    /// The metric after each number of steps (0, 1, 5, 10 and the trained steps).
    pub cells: Vec<Cell>,
}

/// One episode's metric and guard after each number of steps.
pub(crate) struct Trace {
    /// The metric after each step count.
    pub metric: Vec<f64>,
    /// What stopped adaptation by then, if anything.
    pub guard: Vec<Option<Guard>>,
}

/// What an evaluation of a blob on a task file runs, checked: the blob fits the file.
pub(crate) struct Plan<'t> {
    /// Feature columns and outputs.
    pub inputs: usize,
    pub outputs: usize,
    /// Support samples per episode (the blob's trained K).
    pub k: usize,
    /// Step counts measured after (0, 1, 5, 10 and the trained steps).
    pub steps: Vec<u16>,
    /// The held-out tasks.
    pub held: &'t [CsvTask],
}

impl<'t> Plan<'t> {
    /// Checks `blob` against `tasks` (shape, loss, K) and picks the held-out tasks.
    pub fn new(blob: &[u8], tasks: &'t CsvTasks, cfg: &CsvEvalConfig) -> Result<Self> {
        let parsed = Blob::parse(blob).map_err(|e| anyhow!("{e}"))?;
        let meta = &parsed.meta;
        let (inputs, outputs) = dims(tasks);
        let shape: Vec<usize> = meta.shape.iter().map(|&w| w as usize).collect();
        if shape != [inputs, CSV_HIDDEN, CSV_HIDDEN, outputs] {
            let widths: Vec<String> = shape.iter().map(usize::to_string).collect();
            bail!(
                "{}: {inputs} feature columns and {outputs} outputs need a {inputs}-{CSV_HIDDEN}-{CSV_HIDDEN}-{outputs} model; the w* model is {}",
                tasks.file,
                widths.join("-")
            );
        }
        check_shape(tasks)?;
        if meta.loss != loss_of(tasks) {
            let kind = |l: Loss| match l {
                Loss::Mse => "regression (MSE)",
                Loss::SoftmaxCrossEntropy => "classification (softmax cross-entropy)",
            };
            bail!(
                "{} holds {} tasks; the w* was trained for {}",
                tasks.file,
                kind(loss_of(tasks)),
                kind(meta.loss)
            );
        }
        let k = usize::from(meta.trained_k);
        if k == 0 || k > CSV_MAX_K {
            bail!("the w* was trained with K = {k}; CSV models take K from 1 to {CSV_MAX_K}");
        }
        if cfg.draws == 0 {
            bail!("--draws must be at least 1");
        }
        tasks.require_episodes(k)?;
        let (_, held) = split_tasks(tasks, cfg.holdout)?;
        if held.is_empty() {
            bail!(
                "{}: --holdout {} holds out no task: nothing to evaluate on",
                tasks.file,
                cfg.holdout
            );
        }
        let mut steps: Vec<u16> = EVAL_STEPS.to_vec();
        steps.push(meta.steps);
        steps.sort_unstable();
        steps.dedup();
        Ok(Self {
            inputs,
            outputs,
            k,
            steps,
            held,
        })
    }

    /// The episodes: each held-out task `draws` times, numbered.
    pub fn episodes(&self, cfg: &CsvEvalConfig) -> Vec<(usize, &'t CsvTask)> {
        (0..self.held.len() * cfg.draws)
            .map(|e| (e, &self.held[e / cfg.draws]))
            .collect()
    }

    /// The result from each episode's metric and guard after each of [`Plan::steps`].
    pub fn summarise(&self, tasks: &CsvTasks, cfg: &CsvEvalConfig, traces: &[Trace]) -> CsvEval {
        let cells = self
            .steps
            .iter()
            .enumerate()
            .map(|(c, &steps)| {
                let v: Vec<f64> = traces.iter().map(|t| t.metric[c]).collect();
                let guards: Vec<Option<Guard>> = traces.iter().map(|t| t.guard[c]).collect();
                cell(steps, &v, &guards)
            })
            .collect();
        let classes = match &tasks.target {
            Target::Classification { classes } => Some(classes.len()),
            Target::Regression { .. } => None,
        };
        CsvEval {
            file: tasks.file.clone(),
            metric: if classes.is_some() { "accuracy" } else { "mse" }.into(),
            k: self.k,
            tasks: self.held.iter().map(|t| t.name.clone()).collect(),
            draws: cfg.draws,
            chance: classes.map(|c| 1.0 / c as f64),
            cells,
        }
    }
}

/// Evaluates `blob` on the held-out tasks of `tasks`.
pub fn evaluate_csv(blob: &[u8], tasks: &CsvTasks, cfg: &CsvEvalConfig) -> Result<CsvEval> {
    evaluate_csv_in(blob, tasks, cfg, Arithmetic::F32)
}

/// [`evaluate_csv`] by an adapter computing in `arithmetic`.
pub fn evaluate_csv_in(
    blob: &[u8],
    tasks: &CsvTasks,
    cfg: &CsvEvalConfig,
    arithmetic: Arithmetic,
) -> Result<CsvEval> {
    let plan = Plan::new(blob, tasks, cfg)?;
    let (inputs, outputs, k, steps) = (plan.inputs, plan.outputs, plan.k, &plan.steps);
    let episodes = plan.episodes(cfg);
    let traces: Vec<Trace> = crate::with_csv_shape!(inputs, outputs, I, O => {
        episodes
            .par_iter()
            .map(|&(e, task)| match arithmetic {
                Arithmetic::F32 => episode::<f32, I, O>(blob, tasks, task, k, steps, cfg.seed, e),
                Arithmetic::Q20 => episode::<Q20, I, O>(blob, tasks, task, k, steps, cfg.seed, e),
                Arithmetic::Q10H => episode::<Q10H, I, O>(blob, tasks, task, k, steps, cfg.seed, e),
            })
            .collect::<Result<Vec<_>>>()
    })?;
    Ok(plan.summarise(tasks, cfg, &traces))
}

/// Episode `index` on `task`: K support rows drawn from it, and the rows it is judged on
/// (its `test` rows with a fixed split, the rest of its rows otherwise).
pub(crate) fn draw<'t>(
    tasks: &CsvTasks,
    task: &'t CsvTask,
    k: usize,
    seed: u64,
    index: usize,
) -> (Vec<&'t Row>, Vec<&'t Row>) {
    let mut rng = rng_for(seed, Stream::Eval, index as u64);
    let picks = sample(&mut rng, task.train.len(), k).into_vec();
    let support = picks.iter().map(|&i| &task.train[i]).collect();
    let test = if tasks.has_split {
        task.test.iter().collect()
    } else {
        (0..task.train.len())
            .filter(|i| !picks.contains(i))
            .map(|i| &task.train[i])
            .collect()
    };
    (support, test)
}

/// Episode `index` on `task`, adapted by the device runtime in this process in `T`.
fn episode<T: Real, const I: usize, const O: usize>(
    blob: &[u8],
    tasks: &CsvTasks,
    task: &CsvTask,
    k: usize,
    steps: &[u16],
    seed: u64,
    index: usize,
) -> Result<Trace> {
    let (support, test) = draw(tasks, task, k, seed, index);
    let mut a =
        Adapter::<CsvNet<I, O, T>, I, O, CSV_MAX_K, T>::new(blob).map_err(|e| anyhow!("{e}"))?;
    for row in support {
        let mut s = Sample {
            x: [0.0; I],
            y: [0.0; O],
        };
        s.x.copy_from_slice(&row.x);
        s.y.copy_from_slice(&target_values(&tasks.target, row));
        a.push(s)
            .map_err(|e| anyhow!("{}:{}: {e}", tasks.file, row.line))?;
    }
    let (mut metric, mut guard, mut done, mut cause) = (Vec::new(), Vec::new(), 0u16, None);
    for &s in steps {
        if s > done && cause.is_none() {
            let r = a
                .adapt_steps(s - done, StepLimit::Unchecked)
                .map_err(|e| anyhow!("{e}"))?;
            cause = r.cause;
            done = s;
        }
        metric.push(score(&a, &tasks.target, &test)?);
        guard.push(cause);
    }
    Ok(Trace { metric, guard })
}

/// Accuracy (classification) or MSE (regression) of the adapter on `rows`.
fn score<T: Real, const I: usize, const O: usize>(
    a: &Adapter<'_, CsvNet<I, O, T>, I, O, CSV_MAX_K, T>,
    target: &Target,
    rows: &[&Row],
) -> Result<f64> {
    let mut total = 0.0f64;
    for row in rows {
        let mut x = [0.0; I];
        x.copy_from_slice(&row.x);
        total += match target {
            Target::Classification { .. } => {
                let c = a.classify(&x).map_err(|e| anyhow!("{e}"))?;
                f64::from(u8::from(c.label == row.y[0] as usize))
            }
            Target::Regression { .. } => {
                squared_error(&a.predict(&x).map_err(|e| anyhow!("{e}"))?, &row.y)
            }
        };
    }
    Ok(total / rows.len() as f64)
}

/// The squared error of prediction `p` against targets `y`, averaged over the outputs.
pub(crate) fn squared_error(p: &[f32], y: &[f32]) -> f64 {
    let se: f64 = p.iter().zip(y).map(|(p, y)| f64::from(p - y).powi(2)).sum();
    se / p.len() as f64
}

impl CsvEval {
    /// What was evaluated, for a table's first line: the tasks, draws and K.
    pub fn heading(&self) -> String {
        format!(
            "{} held-out task(s) of {}, {} support draw(s) each, K = {}",
            self.tasks.len(),
            self.file,
            self.draws,
            self.k
        )
    }

    /// The metric's name in a table.
    pub fn metric_name(&self) -> &'static str {
        if self.metric == "accuracy" {
            "accuracy"
        } else {
            "MSE"
        }
    }
}

/// The result as a text table.
pub fn table(r: &CsvEval) -> String {
    let mut s = format!("{}, adapted on the device runtime\n", r.heading());
    let name = r.metric_name();
    s.push_str(&format!(
        "steps  {name:>12} ± 95% CI      median  stopped  diverged\n"
    ));
    for c in &r.cells {
        s.push_str(&format!(
            "{:>5}  {:>12.4} ± {:<8.4}  {:>10.4}  {:>7}  {:>8}\n",
            c.steps, c.mean, c.ci95, c.median, c.stopped, c.diverged
        ));
    }
    if let Some(chance) = r.chance {
        s.push_str(&format!("chance (uniform guess): {chance:.4}\n"));
    }
    s.push_str("means and 95% intervals over the episodes (task × support draw)\n");
    s
}
