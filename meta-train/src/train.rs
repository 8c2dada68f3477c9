//! The outer loop: sample a meta-batch of source tasks, compute their meta-gradients in
//! parallel, take an Adam step; log, checkpoint atomically, and write `w*`.

use std::sync::Mutex;
use std::time::Instant;

use anyhow::{bail, Result};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use nalgebra::SMatrix;
use rand::Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use shared::loss::Loss;
use shared::model::{Layers, Params};
use shared::wstar::{AlphaKind, Meta};

use crate::algo::{task_meta_grad, task_reptile_grad, Algo, Inner, Task, Workspace};
use crate::optim::Adam;
use crate::run_dir::{self, RunDir};
use crate::tasks::sinusoid::Sinusoid;
use crate::tasks::{rng_for, Stream};

/// Everything that determines a training run's result.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    /// Task family (`sinusoid`, or `csv` for the user's task file).
    pub family: String,
    /// Model name.
    pub model: String,
    /// Meta-learning algorithm.
    pub algorithm: Algo,
    /// Support (and query) samples per task, K (at most the batch size the model is compiled
    /// for; the columns after them are padding).
    pub k: usize,
    /// Inner steps.
    pub steps: usize,
    /// Inner step size (the initial one for Meta-SGD).
    pub alpha: f32,
    /// Tasks per meta-batch.
    pub meta_batch: usize,
    /// Meta-iterations.
    pub iterations: u64,
    /// Adam learning rate of the outer loop.
    pub meta_lr: f32,
    /// Seed of everything random.
    pub seed: u64,
    /// Iterations per metrics row.
    pub log_every: u64,
    /// Iterations per checkpoint.
    pub checkpoint_every: u64,
}

impl run_dir::RunConfig for TrainConfig {
    fn iterations_mut(&mut self) -> &mut u64 {
        &mut self.iterations
    }
}

/// One row of `metrics.csv`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MetricRow {
    /// Iterations done.
    pub iteration: u64,
    /// Mean query loss after adaptation over the interval.
    pub meta_loss: f32,
    /// Wall-clock seconds since the run (or resume) started.
    pub elapsed_s: f64,
}

/// The resumable state of a run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// The run's config.
    pub config: TrainConfig,
    /// Iterations done.
    pub iteration: u64,
    /// `θ0`, flat.
    pub theta: Vec<f32>,
    /// `α`: one value, or one per parameter.
    pub alpha: Vec<f32>,
    /// Outer optimiser of `θ0`.
    pub adam_theta: Adam,
    /// Outer optimiser of `α` (Meta-SGD).
    pub adam_alpha: Option<Adam>,
    /// Metrics so far.
    pub metrics: Vec<MetricRow>,
}

/// What a run ends with.
pub struct Trained {
    /// The final state.
    pub checkpoint: Checkpoint,
    /// The `w*` blob.
    pub blob: Vec<u8>,
    /// Meta-iterations per second of this invocation.
    pub iterations_per_s: f64,
}

/// How `train` reports progress.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Progress {
    /// A progress bar on stderr (hidden when stderr is not a terminal).
    Bar,
    /// Nothing.
    Quiet,
}

fn flatten<M: Params<f32>>(m: &M) -> Vec<f32> {
    let mut v = Vec::with_capacity(M::PARAMS);
    m.for_each(&mut |_, s| v.extend_from_slice(s));
    v
}

fn unflatten<M: Params<f32>>(v: &[f32]) -> M {
    let mut m = M::zeros();
    m.fill_with(|k| v[k]);
    m
}

/// PyTorch-style initialisation: every weight and bias of a layer with fan-in `n` from
/// `U(−1/√n, 1/√n)`.
pub fn init_theta<M: Layers<f32, I, O>, const I: usize, const O: usize>(seed: u64) -> Vec<f32> {
    let mut widths = Vec::new();
    M::shape(&mut |w| widths.push(w));
    let mut rng = rng_for(seed, Stream::Init, 0);
    let mut m = M::zeros();
    m.for_each_mut(&mut |layer, s| {
        let bound = 1.0 / (widths[layer] as f32).sqrt();
        for v in s {
            *v = rng.gen_range(-bound..bound);
        }
    });
    flatten(&m)
}

/// A sinusoid task for the trainer: K support and K query points.
pub fn sinusoid_task<const K: usize>(seed: u64, index: u64) -> Task<f32, 1, 1, K> {
    let mut rng = rng_for(seed, Stream::Train, index);
    let s = Sinusoid::sample(&mut rng);
    let mut task = Task {
        xs: SMatrix::zeros(),
        ys: SMatrix::zeros(),
        xq: SMatrix::zeros(),
        yq: SMatrix::zeros(),
    };
    for (j, (x, y)) in s.points(&mut rng, K).enumerate() {
        task.xs[j] = x;
        task.ys[j] = y;
    }
    for (j, (x, y)) in s.points(&mut rng, K).enumerate() {
        task.xq[j] = x;
        task.yq[j] = y;
    }
    task
}

/// The normalisation a model is trained in, stored in `w*`: the model sees
/// `(x − x_mean) / x_std` and predicts `(y − y_mean) / y_std`.
///
/// ```
/// use meta_train::train::Norm;
/// let n = Norm::<2, 1>::IDENTITY;
/// assert_eq!((n.x_mean, n.x_std, n.y_std), ([0.0; 2], [1.0; 2], [1.0]));
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Norm<const I: usize, const O: usize> {
    /// Mean of each input.
    pub x_mean: [f32; I],
    /// Standard deviation of each input.
    pub x_std: [f32; I],
    /// Mean of each output.
    pub y_mean: [f32; O],
    /// Standard deviation of each output.
    pub y_std: [f32; O],
}

impl<const I: usize, const O: usize> Norm<I, O> {
    /// Values as they are.
    pub const IDENTITY: Self = Self {
        x_mean: [0.0; I],
        x_std: [1.0; I],
        y_mean: [0.0; O],
        y_std: [1.0; O],
    };
}

/// Where the outer loop's tasks come from: a task family with `I` inputs and `O` outputs, its
/// loss, and the units its values are in.
///
/// ```
/// use meta_train::train::{Sinusoids, TaskSource};
/// let t = TaskSource::<1, 1, 5>::task(&Sinusoids, 0, 3);
/// assert_eq!(t.xs, meta_train::train::sinusoid_task::<5>(0, 3).xs);
/// ```
pub trait TaskSource<const I: usize, const O: usize, const K: usize>: Sync {
    /// The `family` a config must name to train on these tasks.
    fn family(&self) -> &str;
    /// The task loss.
    fn loss(&self) -> Loss;
    /// The normalisation the tasks' values are in (written into `w*`).
    fn norm(&self) -> Norm<I, O>;
    /// Meta-training task `index` of a run seeded `seed`, in normalised units.
    fn task(&self, seed: u64, index: u64) -> Task<f32, I, O, K>;
}

/// The sinusoid family ([`sinusoid_task`]): MSE, values as they are.
#[derive(Clone, Copy, Debug)]
pub struct Sinusoids;

impl<const K: usize> TaskSource<1, 1, K> for Sinusoids {
    fn family(&self) -> &str {
        "sinusoid"
    }

    fn loss(&self) -> Loss {
        Loss::Mse
    }

    fn norm(&self) -> Norm<1, 1> {
        Norm::IDENTITY
    }

    fn task(&self, seed: u64, index: u64) -> Task<f32, 1, 1, K> {
        sinusoid_task::<K>(seed, index)
    }
}

/// The name of model `M` in configs: `mlp-` and its layer widths.
///
/// ```
/// use meta_train::train::model_name;
/// use shared::model::SinusoidNet;
/// assert_eq!(model_name::<SinusoidNet, 1, 1>(), meta_train::model::SINUSOID_NET);
/// ```
pub fn model_name<M: Layers<f32, I, O>, const I: usize, const O: usize>() -> String {
    let mut widths = Vec::new();
    M::shape(&mut |w| widths.push(w.to_string()));
    format!("mlp-{}", widths.join("-"))
}

impl TrainConfig {
    fn check(&self, family: &str, model: &str, capacity: usize) -> Result<()> {
        if self.family != family {
            bail!("unknown task family {:?}: expected {family:?}", self.family);
        }
        if self.model != model {
            bail!("unknown model {:?}: expected {model:?}", self.model);
        }
        if self.k == 0 || self.k > capacity {
            bail!(
                "--k must be between 1 and {capacity} for this model, got {}",
                self.k
            );
        }
        if self.steps == 0 || self.steps > u16::MAX as usize {
            bail!(
                "--steps must be between 1 and {}, got {}",
                u16::MAX,
                self.steps
            );
        }
        if self.meta_batch == 0
            || self.iterations == 0
            || self.log_every == 0
            || self.checkpoint_every == 0
        {
            bail!(
                "--meta-batch, --iterations, --log-every and --checkpoint-every must be at least 1"
            );
        }
        if !(self.alpha.is_finite() && self.meta_lr.is_finite() && self.meta_lr > 0.0) {
            bail!("--alpha must be finite and --meta-lr positive");
        }
        Ok(())
    }

    /// The blob's meta record for this run (MSE).
    pub fn meta<M: Layers<f32, I, O>, const I: usize, const O: usize>(&self) -> Meta {
        self.meta_for::<M, I, O>(Loss::Mse)
    }

    /// The blob's meta record for this run, trained with `loss`.
    pub fn meta_for<M: Layers<f32, I, O>, const I: usize, const O: usize>(
        &self,
        loss: Loss,
    ) -> Meta {
        let mut meta = Meta::new::<M, I, O>(loss, self.steps as u16);
        meta.algorithm = self.algorithm.blob_algorithm();
        meta.alpha = if self.algorithm.learns_alpha() {
            AlphaKind::PerParameter
        } else {
            AlphaKind::Scalar
        };
        meta.adapt = self.algorithm.mask(M::LAYERS);
        meta.trained_k = self.k as u16;
        meta.seed = self.seed;
        meta
    }
}

/// The `w*` blob of a sinusoid state (MSE, identity normalisation).
pub fn blob_of<M: Layers<f32, I, O>, const I: usize, const O: usize>(
    ck: &Checkpoint,
) -> Result<Vec<u8>> {
    blob_with::<M, I, O>(ck, Loss::Mse, &Norm::IDENTITY)
}

/// The `w*` blob of a state trained with `loss` on values normalised by `norm`.
pub fn blob_with<M: Layers<f32, I, O>, const I: usize, const O: usize>(
    ck: &Checkpoint,
    loss: Loss,
    norm: &Norm<I, O>,
) -> Result<Vec<u8>> {
    let meta = ck.config.meta_for::<M, I, O>(loss);
    shared::wstar::encode(
        &meta,
        &ck.theta,
        &ck.alpha,
        &norm.x_mean,
        &norm.x_std,
        &norm.y_mean,
        &norm.y_std,
    )
    .map_err(|e| anyhow::anyhow!("{e}"))
}

/// One task's meta-gradient, reused across iterations.
struct Slot {
    loss: f32,
    /// The meta-gradient of `θ0`, then that of `α` (Meta-SGD), flat.
    flat: Vec<f32>,
}

/// One thread's buffers: the inner-loop workspace and the task's meta-gradients (kept hot in
/// cache; each task copies them out flat into its slot).
struct Worker<M: Layers<f32, I, O>, const I: usize, const O: usize, const K: usize> {
    ws: Workspace<f32, M, I, O, K>,
    g: M,
    ga: Option<M>,
}

/// Trains on sinusoid tasks from scratch, or from the run folder's checkpoint when `resume`.
pub fn train<M, const K: usize>(
    config: &TrainConfig,
    run: &RunDir,
    resume: bool,
    progress: Progress,
) -> Result<Trained>
where
    M: Layers<f32, 1, 1> + Send + Sync,
    M::Cache<K>: Send,
{
    train_on::<M, _, 1, 1, K>(config, run, resume, progress, &Sinusoids)
}

/// Trains on the tasks of `source` from scratch, or from the run folder's checkpoint when
/// `resume`: the outer loop of every task family.
pub fn train_on<M, S, const I: usize, const O: usize, const K: usize>(
    config: &TrainConfig,
    run: &RunDir,
    resume: bool,
    progress: Progress,
    source: &S,
) -> Result<Trained>
where
    M: Layers<f32, I, O> + Send + Sync,
    M::Cache<K>: Send,
    S: TaskSource<I, O, K>,
{
    // The loop runs on a pool thread, so each meta-batch is shared out without waking the
    // caller's thread and putting it back to sleep every iteration.
    rayon::scope(|_| train_on_pool::<M, S, I, O, K>(config, run, resume, progress, source))
}

fn train_on_pool<M, S, const I: usize, const O: usize, const K: usize>(
    config: &TrainConfig,
    run: &RunDir,
    resume: bool,
    progress: Progress,
    source: &S,
) -> Result<Trained>
where
    M: Layers<f32, I, O> + Send + Sync,
    M::Cache<K>: Send,
    S: TaskSource<I, O, K>,
{
    config.check(source.family(), &model_name::<M, I, O>(), K)?;
    let (task_loss, norm) = (source.loss(), source.norm());
    let mut ck = if resume {
        run.resume(
            "a checkpoint of this version",
            config,
            |c: &mut Checkpoint| &mut c.config,
        )?
    } else {
        let theta = init_theta::<M, I, O>(config.seed);
        let alpha = if config.algorithm.learns_alpha() {
            vec![config.alpha; M::PARAMS]
        } else {
            vec![config.alpha]
        };
        Checkpoint {
            config: config.clone(),
            iteration: 0,
            adam_theta: Adam::new(config.meta_lr, theta.len()),
            adam_alpha: config
                .algorithm
                .learns_alpha()
                .then(|| Adam::new(config.meta_lr, alpha.len())),
            theta,
            alpha,
            metrics: Vec::new(),
        }
    };
    run.write_atomic(
        run_dir::CONFIG,
        serde_json::to_string_pretty(config)?.as_bytes(),
    )?;

    let inner = Inner {
        steps: config.steps,
        mask: config.algorithm.mask(M::LAYERS),
        loss: task_loss,
    };
    let reptile = config.algorithm == Algo::Reptile;
    let second_order = config.algorithm.second_order();
    let learns_alpha = config.algorithm.learns_alpha();
    let bar = match progress {
        Progress::Bar => {
            ProgressBar::with_draw_target(Some(config.iterations), ProgressDrawTarget::stderr())
        }
        Progress::Quiet => ProgressBar::hidden(),
    };
    bar.set_style(
        ProgressStyle::with_template(
            "{bar:30} {pos}/{len} it  {per_sec:>12}  meta-loss {msg}  eta {eta}",
        )
        .expect("static template"),
    );
    bar.set_position(ck.iteration);
    let start = Instant::now();
    let first = ck.iteration;
    let mut interval_loss = 0.0f64;
    let mut interval_n = 0u64;
    let mb = config.meta_batch;
    let workers: Vec<Mutex<Worker<M, I, O, K>>> = (0..rayon::current_num_threads().max(1))
        .map(|_| {
            Mutex::new(Worker {
                ws: Workspace::with_samples(config.steps, config.k),
                g: M::zeros(),
                ga: learns_alpha.then(M::zeros),
            })
        })
        .collect();
    let mut slots: Vec<Slot> = (0..mb)
        .map(|_| Slot {
            loss: 0.0,
            flat: Vec::with_capacity(2 * M::PARAMS),
        })
        .collect();
    let mut grad = vec![0.0f32; M::PARAMS];
    while ck.iteration < config.iterations {
        let it = ck.iteration;
        let theta: M = unflatten(&ck.theta);
        // Each task writes its own slot; the sum below runs in task order, so the result does
        // not depend on how rayon schedules the tasks.
        slots.par_iter_mut().enumerate().for_each(|(j, slot)| {
            let mut guard = workers[rayon::current_thread_index().unwrap_or(0) % workers.len()]
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            let w = &mut *guard;
            let task = source.task(config.seed, it * mb as u64 + j as u64);
            slot.loss = if reptile {
                task_reptile_grad(&theta, &ck.alpha, &task, inner, &mut w.ws, &mut w.g)
            } else {
                task_meta_grad(
                    &theta,
                    &ck.alpha,
                    &task,
                    inner,
                    second_order,
                    &mut w.ws,
                    &mut w.g,
                    w.ga.as_mut(),
                )
            };
            slot.flat.clear();
            w.g.for_each(&mut |_, s| slot.flat.extend_from_slice(s));
            if let Some(ga) = &w.ga {
                ga.for_each(&mut |_, s| slot.flat.extend_from_slice(s));
            }
        });
        // The mean over tasks, each value summed in task order, so the bits do not depend on
        // the thread count.
        let scale = 1.0 / mb as f32;
        let n = M::PARAMS;
        let loss = slots.iter().fold(0.0f32, |l, slot| l + slot.loss * scale);
        if !loss.is_finite() {
            bail!(
                "meta-loss became {loss} at iteration {it}; the last checkpoint ({}) is intact — lower --meta-lr or --alpha",
                run.path(run_dir::CHECKPOINT).display()
            );
        }
        // Mean over tasks and Adam on this thread: cheaper than waking the pool once more.
        let mut update = |adam: &mut Adam, params: &mut [f32], offset: usize| {
            grad.fill(0.0);
            for slot in &slots {
                for (o, &x) in grad.iter_mut().zip(&slot.flat[offset..offset + n]) {
                    *o += scale * x;
                }
            }
            if reptile {
                // Reptile's outer step: θ0 ← θ0 + ε · mean(θ_S − θ0).
                for (p, &g) in params.iter_mut().zip(&grad) {
                    *p -= config.meta_lr * g;
                }
            } else {
                let u = adam.begin();
                let (m, v) = adam.moments_mut();
                u.apply(params, &grad, m, v);
            }
        };
        update(&mut ck.adam_theta, &mut ck.theta, 0);
        if let Some(adam) = ck.adam_alpha.as_mut() {
            update(adam, &mut ck.alpha, n);
        }
        ck.iteration += 1;
        interval_loss += f64::from(loss);
        interval_n += 1;
        if ck.iteration % config.log_every == 0 || ck.iteration == config.iterations {
            let row = MetricRow {
                iteration: ck.iteration,
                meta_loss: (interval_loss / interval_n as f64) as f32,
                elapsed_s: start.elapsed().as_secs_f64(),
            };
            bar.set_message(format!("{:.4}", row.meta_loss));
            ck.metrics.push(row);
            interval_loss = 0.0;
            interval_n = 0;
        }
        if ck.iteration % config.checkpoint_every == 0 || ck.iteration == config.iterations {
            save(run, &ck, &blob_with::<M, I, O>(&ck, task_loss, &norm)?)?;
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    let blob = blob_with::<M, I, O>(&ck, task_loss, &norm)?;
    let secs = start.elapsed().as_secs_f64();
    Ok(Trained {
        iterations_per_s: (ck.iteration - first) as f64 / secs.max(1e-9),
        checkpoint: ck,
        blob,
    })
}

/// Writes the checkpoint, the metrics and the current `w*` (`blob`), each atomically.
fn save(run: &RunDir, ck: &Checkpoint, blob: &[u8]) -> Result<()> {
    run.write_atomic(run_dir::CHECKPOINT, &postcard::to_allocvec(ck)?)?;
    let mut csv = String::from("iteration,meta_loss,elapsed_s\n");
    for r in &ck.metrics {
        csv.push_str(&format!(
            "{},{},{:.3}\n",
            r.iteration, r.meta_loss, r.elapsed_s
        ));
    }
    run.write_atomic(run_dir::METRICS, csv.as_bytes())?;
    run.write_atomic(run_dir::WSTAR, blob)?;
    Ok(())
}
