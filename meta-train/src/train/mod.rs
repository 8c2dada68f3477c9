//! The outer loop: sample a meta-batch of source tasks, compute their meta-gradients in
//! parallel, take an Adam step; log, checkpoint atomically, and write `w*`.
//!
//! The meta-batch is shared out in contiguous ranges, one per thread, and the threads relay
//! the running mean in task order ([`crate::train::relay`]): the bits do not depend on the thread
//! count, and a task's gradient never leaves the core that computed it.

pub mod csv;
pub mod images;
pub mod optim;
pub mod relay;
pub mod time_split;

use std::ops::Range;
use std::time::Instant;

use anyhow::{bail, Result};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use nalgebra::SMatrix;
use rand::Rng;
use serde::{Deserialize, Serialize};
use shared::loss::Loss;
use shared::model::{Layers, Params};
use shared::wstar::Meta;

use crate::algo::{task_meta_grad, task_reptile_grad, Algo, Inner, Task, Workspace};
use crate::run_dir::{self, RunDir};
use crate::tasks::sinusoid::Sinusoid;
use crate::tasks::{rng_for, Stream};
use crate::train::optim::Adam;
use crate::train::relay::{Aborted, Relay};

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
    /// The device guard's bound on the support loss (`w*`'s `loss_bound`; `None`: only
    /// non-finite losses). The inner loop of training undoes a step above it and stops, as
    /// the device does, so a task whose adaptation explodes trains from where it stopped.
    pub loss_bound: Option<f32>,
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
    /// `α`, stored as the algorithm's [`shared::wstar::AlphaKind`] says.
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
        if let Some(b) = self.loss_bound.filter(|b| b.is_nan() || *b <= 0.0) {
            bail!("--loss-bound must be positive, got {b}");
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
        meta.algorithm = self.algorithm;
        meta.alpha = self.algorithm.alpha_kind();
        meta.loss_bound = self.loss_bound.unwrap_or(f32::INFINITY);
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

/// One task's query loss and meta-gradients, kept by the thread that computed it.
struct Slot<M> {
    loss: f32,
    /// The meta-gradient of `θ0`.
    g: M,
    /// The meta-gradient of every stored `α` (when it is learned).
    ga: Option<Vec<f32>>,
}

impl<M: Params<f32>> Slot<M> {
    /// Adds `scale ×` this task to a running mean: the loss, then every value of the gradient
    /// (`θ0`'s, then `α`'s).
    fn add_to(&self, loss: &mut f32, grad: &mut [f32], scale: f32) {
        *loss += self.loss * scale;
        let mut k = 0;
        let mut add = |_: usize, s: &[f32]| {
            for (o, &x) in grad[k..k + s.len()].iter_mut().zip(s) {
                *o += scale * x;
            }
            k += s.len();
        };
        self.g.for_each(&mut add);
        if let Some(ga) = &self.ga {
            add(0, ga);
        }
    }
}

/// What the threads of a run hand each other ([`Relay`]).
struct Baton {
    /// The mean query loss so far.
    loss: f32,
    /// The mean meta-gradient so far: `θ0`'s, then `α`'s (Meta-SGD).
    grad: Vec<f32>,
    /// `θ0` of the iteration being computed.
    theta: Vec<f32>,
    /// `α` of the iteration being computed.
    alpha: Vec<f32>,
}

/// What does not change during a run.
struct Job<'a, S> {
    config: &'a TrainConfig,
    source: &'a S,
    inner: Inner,
    reptile: bool,
    second_order: bool,
    /// Values of `α` when it is learned, else 0.
    learned_alpha: usize,
    threads: usize,
}

/// One thread's share of every meta-batch and its buffers.
struct Part<M: Layers<f32, I, O>, const I: usize, const O: usize, const K: usize> {
    /// Index of the thread: its turn in the relay.
    t: usize,
    /// The tasks it computed of the current meta-batch.
    tasks: Range<usize>,
    ws: Workspace<f32, M, I, O, K>,
    theta: M,
    /// `θ`'s weights transposed, for the support passes of all its tasks.
    theta_t: M::Transposed,
    alpha: Vec<f32>,
    /// One slot per task of the meta-batch: which tasks this thread takes varies.
    slots: Vec<Slot<M>>,
    /// The first thread's running mean (loss, gradient). Its tasks come first and in order, so
    /// it adds each as soon as it is computed, and hands the sum over at its turn.
    sum: (f32, Vec<f32>),
}

impl<M: Layers<f32, I, O>, const I: usize, const O: usize, const K: usize> Part<M, I, O, K> {
    fn new<S>(job: &Job<'_, S>, t: usize) -> Self {
        let values = M::PARAMS + job.learned_alpha;
        Self {
            t,
            tasks: 0..0,
            ws: Workspace::with_samples(job.config.steps, job.config.k),
            theta: M::zeros(),
            theta_t: M::zeros().transposed(),
            alpha: Vec::new(),
            slots: (0..job.config.meta_batch)
                .map(|_| Slot {
                    loss: 0.0,
                    g: M::zeros(),
                    ga: (job.learned_alpha > 0).then(|| vec![0.0; job.learned_alpha]),
                })
                .collect(),
            sum: (0.0, vec![0.0; if t == 0 { values } else { 0 }]),
        }
    }

    /// Claims and computes this thread's tasks of iteration `it`, from the parameters in the
    /// baton.
    fn compute<S: TaskSource<I, O, K>>(&mut self, job: &Job<'_, S>, relay: &Relay<Baton>, it: u64) {
        {
            let baton = relay.lock();
            self.theta.fill_with(|k| baton.theta[k]);
            self.alpha.clone_from(&baton.alpha);
        }
        self.theta.transpose_to(&mut self.theta_t);
        let mb = job.config.meta_batch;
        let first = self.t == 0;
        if first {
            self.sum.0 = 0.0;
            self.sum.1.fill(0.0);
        }
        let mut claims = relay.claims(self.t);
        for j in &mut claims {
            let slot = &mut self.slots[j];
            let task = job.source.task(job.config.seed, it * mb as u64 + j as u64);
            slot.loss = if job.reptile {
                task_reptile_grad(
                    &self.theta,
                    Some(&self.theta_t),
                    &self.alpha,
                    &task,
                    job.inner,
                    &mut self.ws,
                    &mut slot.g,
                )
            } else {
                task_meta_grad(
                    &self.theta,
                    Some(&self.theta_t),
                    &self.alpha,
                    &task,
                    job.inner,
                    job.second_order,
                    &mut self.ws,
                    &mut slot.g,
                    slot.ga.as_deref_mut(),
                )
            };
            if first {
                slot.add_to(&mut self.sum.0, &mut self.sum.1, 1.0 / mb as f32);
            }
        }
        self.tasks = claims.range();
    }

    /// Adds this thread's tasks to the running mean in the baton (the first thread hands over
    /// the mean it started).
    fn add_to(&mut self, baton: &mut Baton, mb: usize) {
        if self.t == 0 {
            baton.loss = self.sum.0;
            std::mem::swap(&mut baton.grad, &mut self.sum.1);
            return;
        }
        for slot in &self.slots[self.tasks.clone()] {
            slot.add_to(&mut baton.loss, &mut baton.grad, 1.0 / mb as f32);
        }
    }

    /// The loop of every thread but the last: compute, wait for the turn, add, pass it on.
    fn run<S: TaskSource<I, O, K>>(
        &mut self,
        job: &Job<'_, S>,
        relay: &Relay<Baton>,
        iterations: Range<u64>,
    ) -> Result<(), Aborted> {
        let _guard = relay.guard(false);
        for it in iterations {
            relay.wait_for_params(it)?;
            self.compute(job, relay, it);
            relay.wait_for_turn(it, self.t)?;
            self.add_to(&mut relay.lock(), job.config.meta_batch);
            relay.done(it, self.t);
        }
        Ok(())
    }
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
{
    train_on::<M, _, 1, 1, K>(config, run, resume, progress, &Sinusoids)
}

/// Trains on the tasks of `source` from scratch, or from the run folder's checkpoint when
/// `resume`: the outer loop of every task family. It runs on as many threads as rayon's pool
/// has (`--threads`), and the result does not depend on how many.
pub fn train_on<M, S, const I: usize, const O: usize, const K: usize>(
    config: &TrainConfig,
    run: &RunDir,
    resume: bool,
    progress: Progress,
    source: &S,
) -> Result<Trained>
where
    M: Layers<f32, I, O> + Send + Sync,
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
        let kind = config.algorithm.alpha_kind();
        let alpha = vec![config.alpha; kind.len(M::PARAMS, M::LAYERS, config.steps)];
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

    let job = Job {
        config,
        source,
        inner: Inner {
            steps: config.steps,
            mask: config.algorithm.mask(M::LAYERS),
            loss: task_loss,
            alpha: config.algorithm.alpha_kind(),
            loss_bound: config.loss_bound.unwrap_or(f32::INFINITY),
        },
        reptile: config.algorithm == Algo::Reptile,
        second_order: config.algorithm.second_order(),
        learned_alpha: if config.algorithm.learns_alpha() {
            ck.alpha.len()
        } else {
            0
        },
        threads: rayon::current_num_threads().clamp(1, config.meta_batch),
    };
    let relay = Relay::new(
        job.threads,
        config.meta_batch,
        ck.iteration,
        Baton {
            loss: 0.0,
            grad: vec![0.0; M::PARAMS + job.learned_alpha],
            theta: ck.theta.clone(),
            alpha: ck.alpha.clone(),
        },
    );
    let iterations = ck.iteration..config.iterations;
    let start = Instant::now();
    let first = ck.iteration;
    std::thread::scope(|scope| {
        for t in 0..job.threads - 1 {
            let (job, relay, iterations) = (&job, &relay, iterations.clone());
            scope.spawn(move || Part::<M, I, O, K>::new(job, t).run(job, relay, iterations));
        }
        lead::<M, S, I, O, K>(&job, &relay, run, &mut ck, progress, &norm)
    })?;
    let blob = blob_with::<M, I, O>(&ck, task_loss, &norm)?;
    let secs = start.elapsed().as_secs_f64();
    Ok(Trained {
        iterations_per_s: (ck.iteration - first) as f64 / secs.max(1e-9),
        checkpoint: ck,
        blob,
    })
}

/// The last thread's loop: its tasks, then the mean, the outer step, the parameters for the
/// other threads, metrics and checkpoints.
fn lead<M, S, const I: usize, const O: usize, const K: usize>(
    job: &Job<'_, S>,
    relay: &Relay<Baton>,
    run: &RunDir,
    ck: &mut Checkpoint,
    progress: Progress,
    norm: &Norm<I, O>,
) -> Result<()>
where
    M: Layers<f32, I, O>,
    S: TaskSource<I, O, K>,
{
    let _guard = relay.guard(true);
    let config = job.config;
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
    let mut interval_loss = 0.0f64;
    let mut interval_n = 0u64;
    let n = M::PARAMS;
    let mut part = Part::<M, I, O, K>::new(job, job.threads - 1);
    while ck.iteration < config.iterations {
        let it = ck.iteration;
        part.compute(job, relay, it);
        if relay.wait_for_turn(it, part.t).is_err() {
            bail!("a training thread panicked at iteration {it}");
        }
        let loss = {
            let mut baton = relay.lock();
            part.add_to(&mut baton, config.meta_batch);
            let Baton {
                loss,
                grad,
                theta,
                alpha,
            } = &mut *baton;
            if !loss.is_finite() || !grad.iter().all(|g| g.is_finite()) {
                bail!(
                    "meta-loss became {loss} (or its gradient non-finite) at iteration {it}; the last checkpoint ({}) is intact — lower --meta-lr or --alpha, or bound the support loss with --loss-bound",
                    run.path(run_dir::CHECKPOINT).display()
                );
            }
            let step = |adam: &mut Adam, params: &mut [f32], grad: &[f32]| {
                if job.reptile {
                    // Reptile's outer step: θ0 ← θ0 + ε · mean(θ_S − θ0).
                    for (p, &g) in params.iter_mut().zip(grad) {
                        *p -= config.meta_lr * g;
                    }
                } else {
                    let u = adam.begin();
                    let (m, v) = adam.moments_mut();
                    u.apply(params, grad, m, v);
                }
            };
            step(&mut ck.adam_theta, &mut ck.theta, &grad[..n]);
            if let Some(adam) = ck.adam_alpha.as_mut() {
                step(adam, &mut ck.alpha, &grad[n..]);
            }
            theta.copy_from_slice(&ck.theta);
            alpha.copy_from_slice(&ck.alpha);
            *loss
        };
        ck.iteration += 1;
        relay.publish(ck.iteration);
        interval_loss += f64::from(loss);
        interval_n += 1;
        if ck.iteration.is_multiple_of(config.log_every) || ck.iteration == config.iterations {
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
        if ck.iteration.is_multiple_of(config.checkpoint_every) || ck.iteration == config.iterations
        {
            save(run, ck, &blob_with::<M, I, O>(ck, job.source.loss(), norm)?)?;
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(())
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
