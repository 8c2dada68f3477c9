//! Meta-training on the user's own CSV tasks ([`crate::tasks::csv`]): the file's tasks split
//! into meta-training tasks and held-out tasks, normalised, and drawn K support and K query
//! samples at a time for the outer loop of [`crate::train`].
//!
//! The held-out tasks are the last `round(holdout × tasks)` tasks of the file in order of first
//! appearance (at least one when `holdout > 0`); `meta-train train` and `meta-train eval` use the
//! same rule, so `eval BLOB --tasks FILE.csv` with the same `--holdout` sees exactly the tasks
//! training never saw, and `--holdout 1` evaluates on every task of a file of new tasks.
//!
//! A meta-training task gives its K support samples from its `train` rows and its K query
//! samples from its `test` rows when the file has a `split` column, and 2K distinct rows
//! otherwise. Inputs are standardised with the mean and standard deviation of the
//! meta-training rows (a constant column keeps a scale of 1); regression targets too;
//! class labels become one-hot columns, left as they are. The statistics go into `w*`, and the
//! device applies them to every sample it takes.

use std::path::Path;

use anyhow::{bail, Context, Result};
use rand::seq::index::sample;
use rand::Rng;
use serde::{Deserialize, Serialize};
use shared::loss::Loss;

use crate::algo::Task;
use crate::model::{unsupported_shape, CsvNet, CSV_HIDDEN, CSV_INPUTS, CSV_MAX_K, CSV_OUTPUTS};
use crate::run_dir::RunDir;
use crate::tasks::csv::{CsvTask, CsvTasks, Row, Target};
use crate::tasks::{rng_for, Stream};
use crate::train::{train_on, Norm, Progress, TaskSource, TrainConfig, Trained};

/// The `family` of a config trained on a CSV file.
pub const FAMILY: &str = "csv";

/// The run folder's record of the task file a CSV run trains on, checked on `--resume`.
pub const TASKS_RECORD: &str = "tasks.json";

/// Model inputs (feature columns) and outputs (y columns, or classes) of a task file.
///
/// ```
/// use meta_train::train::csv::dims;
/// use meta_train::tasks::csv::CsvTasks;
/// let t = CsvTasks::parse("t.csv", "# classes: a,b,c\ntask,x1,x2,label\nu,0,1,a\n").unwrap();
/// assert_eq!(dims(&t), (2, 3));
/// ```
pub fn dims(tasks: &CsvTasks) -> (usize, usize) {
    let outputs = match &tasks.target {
        Target::Regression { outputs } => *outputs,
        Target::Classification { classes } => classes.len(),
    };
    (tasks.features.len(), outputs)
}

/// The task loss of a file: softmax cross-entropy for classification, MSE for regression.
pub fn loss_of(tasks: &CsvTasks) -> Loss {
    match tasks.target {
        Target::Regression { .. } => Loss::Mse,
        Target::Classification { .. } => Loss::SoftmaxCrossEntropy,
    }
}

/// The name of the model for a file's shape in configs (`mlp-I-40-40-O`).
///
/// ```
/// assert_eq!(meta_train::train::csv::model_name(4, 3), "mlp-4-40-40-3");
/// ```
pub fn model_name(inputs: usize, outputs: usize) -> String {
    format!("mlp-{inputs}-{CSV_HIDDEN}-{CSV_HIDDEN}-{outputs}")
}

/// How many of `n` tasks `holdout` holds out: `round(holdout × n)`, at least one when
/// `holdout > 0`.
///
/// ```
/// use meta_train::train::csv::held_out_count;
/// assert_eq!(held_out_count(10, 0.2).unwrap(), 2);
/// assert_eq!(held_out_count(3, 0.2).unwrap(), 1);
/// assert_eq!(held_out_count(3, 0.0).unwrap(), 0);
/// assert!(held_out_count(3, 1.5).is_err());
/// ```
pub fn held_out_count(n: usize, holdout: f64) -> Result<usize> {
    if !(0.0..=1.0).contains(&holdout) {
        bail!("--holdout must be between 0 and 1, got {holdout}");
    }
    let held = (holdout * n as f64).round() as usize;
    Ok(if holdout > 0.0 { held.max(1) } else { held }.min(n))
}

/// The file's meta-training tasks and its held-out tasks (see the module documentation).
pub fn split_tasks(tasks: &CsvTasks, holdout: f64) -> Result<(&[CsvTask], &[CsvTask])> {
    let n = tasks.tasks.len();
    let held = held_out_count(n, holdout)?;
    Ok(tasks.tasks.split_at(n - held))
}

/// One task's rows, normalised, one-hot for classification, flat (`inputs` then `outputs`
/// values per row).
struct Rows {
    x: Vec<f32>,
    y: Vec<f32>,
}

/// A meta-training task: its support pool and, with a fixed split, its query pool.
struct Pool {
    support: Rows,
    query: Option<Rows>,
}

/// The meta-training tasks of a task file, ready for the outer loop.
pub struct CsvSource {
    loss: Loss,
    k: usize,
    inputs: usize,
    outputs: usize,
    norm: [Vec<f32>; 4],
    pools: Vec<Pool>,
}

/// A row's target as the model's outputs: the regression targets, or the one-hot class.
pub fn target_values(target: &Target, row: &Row) -> Vec<f32> {
    match target {
        Target::Regression { .. } => row.y.clone(),
        Target::Classification { classes } => {
            let mut v = vec![0.0; classes.len()];
            v[row.y[0] as usize] = 1.0;
            v
        }
    }
}

/// Mean and standard deviation of each of `width` columns over `values` (a constant column
/// keeps a scale of 1, so it is only centred).
fn moments(values: &[Vec<f32>], width: usize) -> (Vec<f32>, Vec<f32>) {
    let n = values.len().max(1) as f64;
    let mut mean = vec![0.0f64; width];
    for v in values {
        for (m, &x) in mean.iter_mut().zip(v) {
            *m += f64::from(x) / n;
        }
    }
    let mut var = vec![0.0f64; width];
    for v in values {
        for ((s, &x), m) in var.iter_mut().zip(v).zip(&mean) {
            *s += (f64::from(x) - m).powi(2) / n;
        }
    }
    let std = var
        .iter()
        .zip(&mean)
        .map(|(v, m)| {
            let s = v.sqrt();
            if s > 1e-6 * m.abs().max(1e-3) {
                s as f32
            } else {
                1.0
            }
        })
        .collect();
    (mean.into_iter().map(|m| m as f32).collect(), std)
}

impl CsvSource {
    /// The meta-training tasks of `tasks` under `holdout`, for K = `k`: checks that every
    /// task of the file can give K support and K query samples, and that a task is left to
    /// train on.
    pub fn new(tasks: &CsvTasks, holdout: f64, k: usize) -> Result<Self> {
        tasks.require_episodes(k)?;
        let (train, held) = split_tasks(tasks, holdout)?;
        if train.is_empty() {
            bail!(
                "{}: --holdout {holdout} holds out all {} tasks; keep at least one to meta-train on",
                tasks.file,
                held.len()
            );
        }
        let (inputs, outputs) = dims(tasks);
        let rows = || train.iter().flat_map(|t| t.train.iter().chain(&t.test));
        let xs: Vec<Vec<f32>> = rows().map(|r| r.x.clone()).collect();
        let (x_mean, x_std) = moments(&xs, inputs);
        let (y_mean, y_std) = match &tasks.target {
            Target::Regression { .. } => {
                let ys: Vec<Vec<f32>> = rows().map(|r| r.y.clone()).collect();
                moments(&ys, outputs)
            }
            Target::Classification { .. } => (vec![0.0; outputs], vec![1.0; outputs]),
        };
        let normalise = |rows: &[Row]| {
            let mut out = Rows {
                x: Vec::with_capacity(rows.len() * inputs),
                y: Vec::with_capacity(rows.len() * outputs),
            };
            for r in rows {
                for (i, &v) in r.x.iter().enumerate() {
                    out.x.push((v - x_mean[i]) / x_std[i]);
                }
                for (i, v) in target_values(&tasks.target, r).into_iter().enumerate() {
                    out.y.push((v - y_mean[i]) / y_std[i]);
                }
            }
            out
        };
        let pools = train
            .iter()
            .map(|t| Pool {
                support: normalise(&t.train),
                query: tasks.has_split.then(|| normalise(&t.test)),
            })
            .collect();
        Ok(Self {
            loss: loss_of(tasks),
            k,
            inputs,
            outputs,
            norm: [x_mean, x_std, y_mean, y_std],
            pools,
        })
    }
}

/// Copies rows `picks` of `rows` into the first columns of `x` and `y`.
fn fill<const I: usize, const O: usize, const K: usize>(
    rows: &Rows,
    picks: impl Iterator<Item = usize>,
    x: &mut nalgebra::SMatrix<f32, I, K>,
    y: &mut nalgebra::SMatrix<f32, O, K>,
) {
    for (j, r) in picks.enumerate() {
        x.column_mut(j).copy_from_slice(&rows.x[r * I..(r + 1) * I]);
        y.column_mut(j).copy_from_slice(&rows.y[r * O..(r + 1) * O]);
    }
}

impl<const I: usize, const O: usize, const K: usize> TaskSource<I, O, K> for CsvSource {
    fn family(&self) -> &str {
        FAMILY
    }

    fn loss(&self) -> Loss {
        self.loss
    }

    fn norm(&self) -> Norm<I, O> {
        let mut n = Norm::IDENTITY;
        n.x_mean.copy_from_slice(&self.norm[0]);
        n.x_std.copy_from_slice(&self.norm[1]);
        n.y_mean.copy_from_slice(&self.norm[2]);
        n.y_std.copy_from_slice(&self.norm[3]);
        n
    }

    /// A task drawn from the file's meta-training tasks, K support and K query samples in the
    /// first columns, padding after them.
    fn task(&self, seed: u64, index: u64) -> Task<f32, I, O, K> {
        debug_assert_eq!((self.inputs, self.outputs), (I, O), "the model's shape");
        let mut rng = rng_for(seed, Stream::Train, index);
        let pool = &self.pools[rng.gen_range(0..self.pools.len())];
        let mut t = Task {
            xs: nalgebra::SMatrix::zeros(),
            ys: nalgebra::SMatrix::zeros(),
            xq: nalgebra::SMatrix::zeros(),
            yq: nalgebra::SMatrix::zeros(),
        };
        let (k, support) = (self.k, &pool.support);
        let n_support = support.x.len() / I;
        match &pool.query {
            Some(query) => {
                let s = sample(&mut rng, n_support, k);
                let q = sample(&mut rng, query.x.len() / I, k);
                fill(support, s.into_iter(), &mut t.xs, &mut t.ys);
                fill(query, q.into_iter(), &mut t.xq, &mut t.yq);
            }
            None => {
                let picks = sample(&mut rng, n_support, 2 * k).into_vec();
                fill(support, picks[..k].iter().copied(), &mut t.xs, &mut t.ys);
                fill(support, picks[k..].iter().copied(), &mut t.xq, &mut t.yq);
            }
        }
        t
    }
}

/// What a CSV run trains on, in the run folder as [`TASKS_RECORD`]: a resume must find the
/// same.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TasksRecord {
    /// The task file, as given.
    pub file: String,
    /// FNV-1a hash of its bytes, in hex.
    pub fnv1a: String,
    /// `--holdout`.
    pub holdout: f64,
    /// Names of the meta-training tasks.
    pub meta_training: Vec<String>,
    /// Names of the held-out tasks.
    pub held_out: Vec<String>,
}

/// FNV-1a, 64 bits: a fingerprint of the task file (not a cryptographic hash).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

impl TasksRecord {
    /// The record of `file` (parsed as `tasks`) under `holdout`.
    pub fn of(file: &Path, tasks: &CsvTasks, holdout: f64) -> Result<Self> {
        let bytes =
            std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
        let (train, held) = split_tasks(tasks, holdout)?;
        let names = |t: &[CsvTask]| t.iter().map(|t| t.name.clone()).collect();
        Ok(Self {
            file: tasks.file.clone(),
            fnv1a: format!("{:016x}", fnv1a(&bytes)),
            holdout,
            meta_training: names(train),
            held_out: names(held),
        })
    }
}

/// Meta-trains the model for `file`'s shape on its meta-training tasks ([`train_on`]), from
/// scratch or, when `resume`, from the run folder's checkpoint of the same file and holdout.
/// `config.family` must be [`FAMILY`] and `config.model` [`model_name`] of the file's shape.
pub fn train_csv(
    config: &TrainConfig,
    file: &Path,
    holdout: f64,
    run: &RunDir,
    resume: bool,
    progress: Progress,
) -> Result<Trained> {
    let tasks = CsvTasks::load(file)?;
    check_shape(&tasks)?;
    let record = TasksRecord::of(file, &tasks, holdout)?;
    let path = run.path(TASKS_RECORD);
    if resume {
        let saved: TasksRecord = std::fs::read(&path)
            .map_err(anyhow::Error::from)
            .and_then(|b| Ok(serde_json::from_slice(&b)?))
            .with_context(|| format!("cannot resume: cannot read {}", path.display()))?;
        if (&saved.fnv1a, saved.holdout) != (&record.fnv1a, record.holdout) {
            bail!(
                "cannot resume: {} was written for another task file or --holdout\n  then: {} (FNV-1a {}), --holdout {}\n  now:  {} (FNV-1a {}), --holdout {}",
                path.display(),
                saved.file,
                saved.fnv1a,
                saved.holdout,
                record.file,
                record.fnv1a,
                record.holdout
            );
        }
    }
    let source = CsvSource::new(&tasks, holdout, config.k)?;
    run.write_atomic(
        TASKS_RECORD,
        serde_json::to_string_pretty(&record)?.as_bytes(),
    )?;
    let (inputs, outputs) = dims(&tasks);
    crate::with_csv_shape!(inputs, outputs, I, O => {
        train_on::<CsvNet<I, O>, _, I, O, CSV_MAX_K>(config, run, resume, progress, &source)
    })
}

/// Checks that this build includes the model for `tasks`' shape; the error names the file,
/// its shape, the supported shapes and where to add one.
pub fn check_shape(tasks: &CsvTasks) -> Result<()> {
    let (inputs, outputs) = dims(tasks);
    if CSV_INPUTS.contains(&inputs) && CSV_OUTPUTS.contains(&outputs) {
        return Ok(());
    }
    let what = match tasks.target {
        Target::Regression { .. } => "y column(s)",
        Target::Classification { .. } => "classes",
    };
    bail!(
        "{}: {inputs} feature column(s) and {outputs} {what}: {}",
        tasks.file,
        unsupported_shape(inputs, outputs)
    )
}
