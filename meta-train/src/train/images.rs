//! The outer loop of few-shot classification: meta-batches of N-way K-shot episodes from the
//! meta-training classes, their ANIL meta-gradients in parallel (body forward and backward on
//! every image, exact second order through the head's inner steps), one Adam step on the body,
//! the head's `θ0` and `α`; a progress bar with episodes/s and the running meta-validation
//! accuracy, metrics, and atomic checkpoints.
//!
//! After the first meta-iteration the loop allocates nothing ([`Trainer::step`]): each thread
//! keeps its body batch and episode buffers, each episode of the meta-batch its gradient, and
//! the loop runs on a worker of the thread pool, so handing out a meta-batch's episodes does
//! not go through the pool's allocating queue. `tests/no_alloc.rs` counts it.

use std::any::Any;
use std::cell::RefCell;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rand::Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use shared::body::Views;
use shared::loss::Loss;
use shared::model::Params;
use shared::wstar::{self, Algorithm, AlphaKind, BodyShape, HeadStart, Meta};

use crate::model::body::Batch;
use crate::model::head::{self, Head, HeadTask, MetaGrad, Order, FEATURES, OMNIGLOT_BODY};
use crate::run_dir::{self, RunDir};
use crate::tasks::augment::Distortion;
use crate::tasks::episodes::{EpisodeSpec, Picks, Sampler, Split};
use crate::tasks::index_sample::IndexSampler;
use crate::tasks::omniglot::Character;
use crate::tasks::{rng_for, Stream};
use crate::train::optim::Adam;
use crate::train::time_split::{Phase, TimeSplit};
use crate::train::Progress;

/// Everything that determines a few-shot training run's result.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FewShotConfig {
    /// Classes per episode (N).
    pub way: usize,
    /// Support images per class (K).
    pub shot: usize,
    /// Query images per class in training episodes.
    pub query: usize,
    /// Inner steps on the head.
    pub steps: usize,
    /// Initial inner step size.
    pub alpha: f32,
    /// Whether `α` is meta-learned.
    pub learn_alpha: bool,
    /// One `α` per head parameter (Meta-SGD on the head) instead of one for all.
    #[serde(default)]
    pub per_parameter_alpha: bool,
    /// Episodes per meta-batch.
    pub meta_batch: usize,
    /// Meta-iterations.
    pub iterations: u64,
    /// Adam learning rate.
    pub meta_lr: f32,
    /// Seed of everything random.
    pub seed: u64,
    /// Iterations between meta-validation passes (and metrics rows).
    pub val_every: u64,
    /// Meta-validation episodes per pass.
    pub val_episodes: u64,
    /// Iterations between checkpoints.
    pub checkpoint_every: u64,
    /// Iterations between learning-rate decays (by [`LR_DECAY`]); 0 never decays.
    #[serde(default)]
    pub decay_every: u64,
    /// Whether training images get random affine distortions ([`FewShotConfig::distortion`]).
    #[serde(default)]
    pub augment: bool,
    /// Where each adaptation starts: `θ0`, or `θ0` plus the support set's class prototypes.
    #[serde(default)]
    pub start: HeadStart,
    /// Whether each training episode draws its classes from one alphabet (the harder
    /// within-alphabet form), instead of across alphabets.
    #[serde(default)]
    pub within_alphabet: bool,
    /// Exact (ANIL) or first-order (FOMAML on the head) meta-gradients.
    #[serde(default)]
    pub order: Order,
    /// The background set learned from (its other set's new alphabets are evaluated on).
    #[serde(default)]
    pub split: Split,
    /// How strongly training images are distorted when `augment` is set.
    #[serde(default)]
    pub distortion: Distortion,
}

impl FewShotConfig {
    /// The Omniglot defaults for `way`-way `shot`-shot.
    pub fn omniglot(way: usize, shot: usize) -> Self {
        Self {
            way,
            shot,
            query: 5,
            steps: 5,
            alpha: 0.1,
            learn_alpha: true,
            per_parameter_alpha: false,
            meta_batch: 8,
            iterations: 6000,
            meta_lr: 1e-3,
            seed: 0,
            val_every: 250,
            val_episodes: 200,
            checkpoint_every: 500,
            augment: true,
            decay_every: 0,
            start: HeadStart::Theta0,
            within_alphabet: false,
            order: Order::Second,
            split: Split::Small1,
            distortion: Distortion::default(),
        }
    }
}

impl run_dir::RunConfig for FewShotConfig {
    fn iterations_mut(&mut self) -> &mut u64 {
        &mut self.iterations
    }
}

/// One `metrics.csv` row.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FewShotMetric {
    /// Iterations done.
    pub iteration: u64,
    /// Mean query loss over the interval.
    pub meta_loss: f32,
    /// Query accuracy on the meta-training episodes of the interval.
    pub train_accuracy: f32,
    /// Accuracy on the meta-validation episodes.
    pub val_accuracy: f32,
    /// Inner step size (the mean, for one per parameter).
    pub alpha: f32,
    /// Seconds since the run (or resume) started.
    pub elapsed_s: f64,
}

/// The resumable state of a few-shot run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FewShotCheckpoint {
    /// The run's config.
    pub config: FewShotConfig,
    /// Iterations done.
    pub iteration: u64,
    /// Body weights ([`OMNIGLOT_BODY`] layout).
    pub body: Vec<f32>,
    /// Head `θ0`, flat in parameter order.
    pub head: Vec<f32>,
    /// Inner step sizes: one, or one per head parameter (in the head's layout).
    pub alpha: Vec<f32>,
    /// Outer optimiser of body, head and `α` (in that order).
    pub adam: Adam,
    /// Metrics so far.
    pub metrics: Vec<FewShotMetric>,
}

impl FewShotCheckpoint {
    /// A fresh start: He-initialised body, zero biases and head.
    pub fn new(config: &FewShotConfig) -> Self {
        let mut rng = rng_for(config.seed, Stream::Init, 0);
        let mut body = vec![0.0f32; OMNIGLOT_BODY.params()];
        let offsets = OMNIGLOT_BODY.offsets();
        for (i, &at) in offsets.iter().take(offsets.len() - 1).enumerate() {
            let c = OMNIGLOT_BODY.conv(i);
            // He (Kaiming) uniform: variance 2 / fan-in keeps ReLU activations at scale.
            let bound = (6.0 / c.patch() as f32).sqrt();
            for w in &mut body[at..at + c.patch() * c.c_out] {
                *w = rng.gen_range(-bound..bound);
            }
        }
        let head = vec![0.0f32; FEATURES * config.way + config.way];
        let alpha = vec![
            config.alpha;
            if config.per_parameter_alpha {
                head.len()
            } else {
                1
            }
        ];
        let n = body.len() + head.len() + alpha.len();
        Self {
            config: config.clone(),
            iteration: 0,
            body,
            head,
            alpha,
            adam: Adam::new(config.meta_lr, n),
            metrics: Vec::new(),
        }
    }

    /// [`FewShotCheckpoint::blob_viewing`] for `way` classes (5 or 20).
    pub fn blob_for(&self, way: usize, views: Views) -> Result<Vec<u8>> {
        match way {
            5 => self.blob_viewing::<5>(views),
            20 => self.blob_viewing::<20>(views),
            w => bail!("{w}-way classifiers are not supported: 5 or 20"),
        }
    }

    /// The head's `θ0` for the first `n` classes, flat (weights column-major, then biases).
    /// Labels are shuffled in every episode, so the classes' rows are exchangeable and a
    /// 20-way run also gives a 5-way head: the same body and `α`, five of its rows.
    pub fn head_rows(&self, n: usize) -> Vec<f32> {
        self.rows(&self.head, n)
    }

    /// `α` for a head of the first `n` classes: the one value, or those rows of the
    /// per-parameter `α` (as [`FewShotCheckpoint::head_rows`]).
    pub fn alpha_rows(&self, n: usize) -> Vec<f32> {
        match self.alpha.len() {
            1 => self.alpha.clone(),
            _ => self.rows(&self.alpha, n),
        }
    }

    /// The mean inner step size.
    pub fn mean_alpha(&self) -> f32 {
        self.alpha.iter().sum::<f32>() / self.alpha.len().max(1) as f32
    }

    fn rows(&self, flat: &[f32], n: usize) -> Vec<f32> {
        let way = self.config.way;
        let (w, b) = flat.split_at(FEATURES * way);
        let mut out: Vec<f32> = w
            .chunks_exact(way)
            .flat_map(|col| &col[..n])
            .copied()
            .collect();
        out.extend_from_slice(&b[..n]);
        out
    }

    /// The head as a model.
    pub fn head_model<const N: usize>(&self) -> Head<N> {
        let mut h = Head::<N>::zeros();
        h.fill_with(|i| self.head[i]);
        h
    }
}

/// Factor of each learning-rate decay.
pub const LR_DECAY: f32 = 0.3;

thread_local! {
    /// Each thread's batch buffers, reused from episode to episode.
    static BODY: RefCell<Batch<5>> = RefCell::new(Batch::new(OMNIGLOT_BODY));
    /// Each thread's [`Work`] for the episode shape it last trained on.
    static WORK: RefCell<Option<Box<dyn Any>>> = const { RefCell::new(None) };
}

/// Mixed into the seed of the distortions' random stream.
const AUGMENT_SEED: u64 = 0xA0A0_5EED;

/// Body features of each image.
pub fn features(body: &[f32], images: &[(Vec<f32>, usize)]) -> Vec<(Vec<f32>, usize)> {
    features_viewing(body, images, Views::Single)
}

/// Body features of each image over `views`, as a device with such a blob computes them.
pub fn features_viewing(
    body: &[f32],
    images: &[(Vec<f32>, usize)],
    views: Views,
) -> Vec<(Vec<f32>, usize)> {
    let mut scratch = vec![0.0f32; OMNIGLOT_BODY.scratch_len()];
    images
        .iter()
        .map(|(px, label)| {
            let mut f = vec![0.0f32; FEATURES];
            OMNIGLOT_BODY
                .forward_views(body, px, views, &mut scratch, &mut f)
                .expect("sizes fixed by OMNIGLOT_BODY");
            (f, *label)
        })
        .collect()
}

/// One thread's buffers for an episode: its picks, images, head task and meta-gradient,
/// reused from episode to episode (like [`BODY`]), so that the training loop does not
/// allocate and each thread keeps working in memory that is already in its cache.
struct Work<const N: usize, const K: usize> {
    picks: Picks,
    indices: IndexSampler,
    /// The episode's images, support first, `OMNIGLOT_BODY.inputs()` values each.
    pixels: Vec<f32>,
    task: HeadTask<f32, FEATURES, N, K>,
    head: MetaGrad<f32, FEATURES, N, K>,
    /// `∂L/∂features` of every image, in image order.
    d_features: Vec<f32>,
}

impl<const N: usize, const K: usize> Work<N, K> {
    /// Calls `f` with this thread's buffers for `N`-way episodes of `K` support images,
    /// made on the thread's first such episode (sized for `sampler`'s draws).
    fn with<R>(sampler: &Sampler, f: impl FnOnce(&mut Self) -> R) -> R {
        WORK.with_borrow_mut(|work| {
            if !work.as_ref().is_some_and(|w| w.is::<Self>()) {
                *work = Some(Box::new(Self {
                    picks: Picks::default(),
                    indices: sampler.index_sampler(),
                    pixels: Vec::new(),
                    task: HeadTask::empty(),
                    head: MetaGrad::new(),
                    d_features: Vec::new(),
                }));
            }
            f(work
                .as_mut()
                .and_then(|w| w.downcast_mut())
                .expect("made above"))
        })
    }

    /// Training episode `index`: its picks, and its images (distorted when the run says so)
    /// into [`Work::pixels`].
    fn draw(&mut self, ck: &FewShotCheckpoint, sampler: &Sampler, index: u64) {
        let c = &ck.config;
        sampler.picks_into(
            c.seed,
            Stream::Train,
            index,
            &mut self.picks,
            &mut self.indices,
        );
        let picks = &self.picks;
        let n = OMNIGLOT_BODY.inputs();
        self.pixels
            .resize((picks.support.len() + picks.query.len()) * n, 0.0);
        // Its own stream, so the episode's picks do not depend on whether it is distorted.
        let mut rng = c
            .augment
            .then(|| rng_for(c.seed ^ AUGMENT_SEED, Stream::Train, index));
        let images = picks.support.iter().chain(&picks.query);
        for (out, &pick) in self.pixels.chunks_exact_mut(n).zip(images) {
            let px = sampler.image(picks, pick);
            match &mut rng {
                Some(rng) => c.distortion.distort_into(px, OMNIGLOT_BODY.side, rng, out),
                None => out.copy_from_slice(px),
            }
        }
    }
}

/// What one episode of the meta-batch gives the outer step, kept from meta-iteration to
/// meta-iteration.
#[derive(Default)]
struct Slot {
    loss: f32,
    correct: usize,
    queries: usize,
    /// `∂L/∂body`.
    body: Vec<f32>,
    /// `∂L/∂θ0` of the head, flat in parameter order.
    head: Vec<f32>,
    /// `∂L/∂α`.
    alpha: Vec<f32>,
}

impl Slot {
    /// The meta-gradient of training episode `index` of `ck` (whose head is `head0`).
    fn run<const N: usize, const K: usize>(
        &mut self,
        ck: &FewShotCheckpoint,
        head0: &Head<N>,
        sampler: &Sampler,
        index: u64,
        split: &TimeSplit,
    ) {
        Work::<N, K>::with(sampler, |w| {
            split.time(Phase::Episodes, || w.draw(ck, sampler, index));
            let n_support = w.picks.support.len();
            BODY.with_borrow_mut(|batch| {
                split.time(Phase::Forward, || {
                    batch.forward(&ck.body, w.pixels.chunks_exact(OMNIGLOT_BODY.inputs()))
                });
                split.time(Phase::Head, || {
                    let (support, query) = (&w.picks.support, &w.picks.query);
                    w.task.refill(
                        support
                            .iter()
                            .enumerate()
                            .map(|(i, &(label, _))| (batch.features(i), label)),
                        query
                            .iter()
                            .enumerate()
                            .map(|(i, &(label, _))| (batch.features(n_support + i), label)),
                    );
                    let c = &ck.config;
                    w.head
                        .compute(head0, c.start, &ck.alpha, c.steps, c.order, &w.task);
                });
                split.time(Phase::Backward, || {
                    let g = &w.head.grad;
                    let d = &mut w.d_features;
                    d.clear();
                    d.extend_from_slice(&g.xs.as_slice()[..n_support * FEATURES]);
                    for (chunk, (_, _, n)) in g.xq.iter().zip(&w.task.query) {
                        d.extend_from_slice(&chunk.as_slice()[..n * FEATURES]);
                    }
                    self.body.clear();
                    self.body.resize(ck.body.len(), 0.0);
                    batch.backward(&ck.body, d, &mut self.body);
                });
            });
            let g = &w.head.grad;
            (self.loss, self.correct, self.queries) = (g.loss, g.correct, w.task.n_query());
            self.head.clear();
            let flat = &mut self.head;
            g.head.for_each(&mut |_, s| flat.extend_from_slice(s));
            self.alpha.clear();
            self.alpha.extend_from_slice(&g.alpha);
        });
    }
}

/// What one meta-iteration's episodes added up to.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct IterationStats {
    /// Sum of the episodes' mean query losses.
    pub loss_sum: f64,
    /// Episodes.
    pub episodes: u64,
    /// Query images classified correctly after adaptation.
    pub correct: usize,
    /// Query images.
    pub queries: usize,
}

/// The meta-training step of a few-shot run: a meta-batch of episodes' meta-gradients in
/// parallel, then one Adam step. Its buffers are kept, so that after the first
/// meta-iteration a step allocates nothing.
pub struct Trainer<'p, const N: usize, const K: usize> {
    ck: FewShotCheckpoint,
    sampler: Sampler<'p>,
    slots: Vec<Slot>,
    /// The meta-batch's mean gradient: body, head, `α`.
    grad: Vec<f32>,
}

impl<'p, const N: usize, const K: usize> Trainer<'p, N, K> {
    /// A trainer continuing `ck` on episodes of `ck`'s config from `train_pool`.
    pub fn new(ck: FewShotCheckpoint, train_pool: &'p [Character]) -> Result<Self> {
        let config = &ck.config;
        if config.way != N || config.shot * N > K {
            bail!("internal: episode shape dispatch");
        }
        let spec = EpisodeSpec::new(config.way, config.shot).with_query(config.query);
        let sampler = if config.within_alphabet {
            Sampler::within_alphabet(train_pool, spec)
        } else {
            Sampler::across(train_pool, spec)
        }
        .context("meta-training classes")?;
        let slots = (0..config.meta_batch).map(|_| Slot::default()).collect();
        let grad = vec![0.0; ck.body.len() + ck.head.len() + ck.alpha.len()];
        Ok(Self {
            ck,
            sampler,
            slots,
            grad,
        })
    }

    /// The state so far.
    pub fn checkpoint(&self) -> &FewShotCheckpoint {
        &self.ck
    }

    /// The state, giving up the buffers.
    pub fn into_checkpoint(self) -> FewShotCheckpoint {
        self.ck
    }

    /// One meta-iteration; each phase's time is added to `split`. Fails if a parameter
    /// becomes NaN or infinite.
    pub fn step(&mut self, split: &TimeSplit) -> Result<IterationStats> {
        let Self {
            ck,
            sampler,
            slots,
            grad,
        } = self;
        let config = &ck.config;
        let it = ck.iteration;
        let head0 = ck.head_model::<N>();
        slots.par_iter_mut().enumerate().for_each(|(b, slot)| {
            let index = it * config.meta_batch as u64 + b as u64;
            slot.run::<N, K>(ck, &head0, sampler, index, split);
        });
        let stats = split.time(Phase::Outer, || -> Result<IterationStats> {
            // Summed in episode order, so the result does not depend on the thread count.
            let scale = 1.0 / config.meta_batch as f32;
            grad.fill(0.0);
            let (gb, rest) = grad.split_at_mut(ck.body.len());
            let (gh, ga) = rest.split_at_mut(ck.head.len());
            let mut stats = IterationStats::default();
            for slot in slots.iter() {
                for (a, b) in gb.iter_mut().zip(&slot.body) {
                    *a += b * scale;
                }
                for (a, b) in gh.iter_mut().zip(&slot.head) {
                    *a += b * scale;
                }
                if config.learn_alpha {
                    for (a, b) in ga.iter_mut().zip(&slot.alpha) {
                        *a += b * scale;
                    }
                }
                stats.loss_sum += f64::from(slot.loss);
                stats.episodes += 1;
                stats.correct += slot.correct;
                stats.queries += slot.queries;
            }
            // Step decay, by iteration number (so a resumed run follows the same schedule).
            ck.adam.lr = match config.decay_every {
                0 => config.meta_lr,
                every => config.meta_lr * LR_DECAY.powi((it / every).min(16) as i32),
            };
            // One Adam step over body, head and α, each range with its moments.
            let update = ck.adam.begin();
            let (m, v) = ck.adam.moments_mut();
            let (mb, m) = m.split_at_mut(ck.body.len());
            let (vb, v) = v.split_at_mut(ck.body.len());
            let (mh, ma) = m.split_at_mut(ck.head.len());
            let (vh, va) = v.split_at_mut(ck.head.len());
            update.apply(&mut ck.body, gb, mb, vb);
            update.apply(&mut ck.head, gh, mh, vh);
            update.apply(&mut ck.alpha, ga, ma, va);
            let params = ck.body.iter().chain(&ck.head).chain(&ck.alpha);
            if !params.into_iter().all(|v| v.is_finite()) {
                bail!(
                    "meta-training diverged at iteration {it}: a parameter became NaN or infinite"
                );
            }
            Ok(stats)
        })?;
        ck.iteration += 1;
        Ok(stats)
    }
}

/// Meta-validation episodes held as indices into their pool's images: every pass computes
/// each distinct image's features once (an image recurs in many episodes), then adapts the
/// head on each episode as the device does.
pub struct Validation<'p> {
    /// The distinct images the episodes draw.
    images: Vec<&'p [f32]>,
    /// Each episode's support and query as `(image, label)`, `image` indexing `images`.
    episodes: Vec<[Vec<(usize, usize)>; 2]>,
    /// The images' features in the last pass, [`FEATURES`] each.
    features: Vec<f32>,
}

impl<'p> Validation<'p> {
    /// Episodes `0..count` of `sampler` (drawn from `pool`) with `seed`, stream
    /// [`Stream::Eval`].
    pub fn new(sampler: &Sampler, pool: &'p [Character], seed: u64, count: u64) -> Self {
        let mut slot = std::collections::HashMap::new();
        let mut images = Vec::new();
        let episodes = (0..count)
            .map(|i| {
                let picks = sampler.picks(seed, Stream::Eval, i);
                let mut index = |list: &[(usize, usize)]| -> Vec<(usize, usize)> {
                    list.iter()
                        .map(|&(label, i)| {
                            let at = (picks.classes[label], i);
                            let next = images.len();
                            let s = *slot.entry(at).or_insert(next);
                            if s == next {
                                images.push(pool[at.0].images[at.1].pixels.as_slice());
                            }
                            (s, label)
                        })
                        .collect()
                };
                [index(&picks.support), index(&picks.query)]
            })
            .collect();
        Self {
            images,
            episodes,
            features: Vec::new(),
        }
    }

    /// Distinct images.
    pub fn distinct_images(&self) -> usize {
        self.images.len()
    }

    /// Query accuracy of `ck` over the episodes, adapting the head as the device does; the
    /// threads' time goes to [`Phase::Validation`]. The features are kept for the next pass.
    pub fn accuracy<const N: usize, const K: usize>(
        &mut self,
        ck: &FewShotCheckpoint,
        split: &TimeSplit,
    ) -> f64 {
        const CHUNK: usize = 64;
        self.features.resize(self.images.len() * FEATURES, 0.0);
        self.features
            .par_chunks_mut(CHUNK * FEATURES)
            .zip(self.images.par_chunks(CHUNK))
            .for_each(|(out, images)| {
                split.time(Phase::Validation, || {
                    BODY.with_borrow_mut(|batch| {
                        batch.forward(&ck.body, images.iter().copied());
                        for (i, f) in out.chunks_exact_mut(FEATURES).enumerate() {
                            f.copy_from_slice(batch.features(i));
                        }
                    })
                })
            });
        let features = &self.features;
        let at = |&(s, label): &(usize, usize)| (&features[s * FEATURES..][..FEATURES], label);
        let head0 = ck.head_model::<N>();
        let (correct, total) = self
            .episodes
            .par_iter()
            .map_init(
                HeadTask::<f32, FEATURES, N, K>::empty,
                |task, [support, query]| {
                    split.time(Phase::Validation, || {
                        task.refill(support.iter().map(at), query.iter().map(at));
                        let adapted =
                            head::adapt(&head0, ck.config.start, &ck.alpha, ck.config.steps, task);
                        (head::correct(&adapted, task), task.n_query())
                    })
                },
            )
            .reduce(|| (0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
        correct as f64 / total.max(1) as f64
    }
}

/// Meta-trains on episodes from `train_pool`, validating on `val_pool`; writes `config.json`,
/// `metrics.csv` and `checkpoint.bin` into `run` and returns the final state. Each phase's
/// time is added to `split`.
pub fn train<const N: usize, const K: usize>(
    config: &FewShotConfig,
    train_pool: &[Character],
    val_pool: &[Character],
    run: &RunDir,
    resume: bool,
    progress: Progress,
    split: &TimeSplit,
) -> Result<FewShotCheckpoint> {
    let val_spec = EpisodeSpec::new(config.way, config.shot);
    let val_sampler = Sampler::across(val_pool, val_spec).context("meta-validation classes")?;
    let mut val = Validation::new(&val_sampler, val_pool, config.seed, config.val_episodes);
    let ck = if resume {
        run.resume(
            "a few-shot checkpoint",
            config,
            |c: &mut FewShotCheckpoint| &mut c.config,
        )?
    } else {
        FewShotCheckpoint::new(config)
    };
    let mut trainer = Trainer::<N, K>::new(ck, train_pool)?;
    run.write_atomic(
        run_dir::CONFIG,
        serde_json::to_string_pretty(config)?.as_bytes(),
    )?;
    let bar = match progress {
        Progress::Bar => {
            ProgressBar::with_draw_target(Some(config.iterations), ProgressDrawTarget::stderr())
        }
        Progress::Quiet => ProgressBar::hidden(),
    };
    bar.set_style(
        ProgressStyle::with_template("{bar:25} {pos}/{len} it  {msg}  eta {eta}")
            .expect("static template"),
    );
    bar.set_position(trainer.checkpoint().iteration);
    let start = Instant::now();
    let mut last_val = trainer
        .checkpoint()
        .metrics
        .last()
        .map_or(f32::NAN, |m| m.val_accuracy);
    let mut interval = IterationStats::default();
    let mut done = 0u64;
    let mut tick = Instant::now();
    // On a worker thread of the pool, so that each meta-batch's episodes are handed to the
    // other workers without going through the pool's (allocating) injector queue.
    rayon::scope(|_| -> Result<()> {
        while trainer.checkpoint().iteration < config.iterations {
            let s = trainer.step(split)?;
            interval.loss_sum += s.loss_sum;
            interval.episodes += s.episodes;
            interval.correct += s.correct;
            interval.queries += s.queries;
            let ck = trainer.checkpoint();
            done += 1;
            bar.inc(1);
            if done.is_multiple_of(10) {
                let now = Instant::now();
                let rate = 10.0 * config.meta_batch as f64 / (now - tick).as_secs_f64();
                tick = now;
                bar.set_message(format!(
                    "{rate:>5.0} episodes/s  train acc {:>5.1}%  val acc {:>5.1}%  α {:.3}",
                    100.0 * interval.correct as f64 / interval.queries.max(1) as f64,
                    100.0 * last_val,
                    ck.mean_alpha()
                ));
            }
            let (iteration, mut metrics) = (ck.iteration, None);
            if iteration % config.val_every == 0 || iteration == config.iterations {
                last_val = val.accuracy::<N, K>(ck, split) as f32;
                metrics = Some(FewShotMetric {
                    iteration,
                    meta_loss: (interval.loss_sum / interval.episodes.max(1) as f64) as f32,
                    train_accuracy: interval.correct as f32 / interval.queries.max(1) as f32,
                    val_accuracy: last_val,
                    alpha: ck.mean_alpha(),
                    elapsed_s: start.elapsed().as_secs_f64(),
                });
                interval = IterationStats::default();
            }
            if let Some(m) = metrics {
                trainer.ck.metrics.push(m);
                write_metrics(run, &trainer.ck.metrics)?;
            }
            if iteration % config.checkpoint_every == 0 || iteration == config.iterations {
                split.time(Phase::Outer, || {
                    run.write_atomic(
                        run_dir::CHECKPOINT,
                        &postcard::to_allocvec(trainer.checkpoint())?,
                    )
                })?;
            }
        }
        Ok(())
    })?;
    bar.finish();
    Ok(trainer.into_checkpoint())
}

fn write_metrics(run: &RunDir, metrics: &[FewShotMetric]) -> Result<()> {
    let mut w = csv::Writer::from_writer(Vec::new());
    for m in metrics {
        w.serialize(m)?;
    }
    run.write_atomic(run_dir::METRICS, &w.into_inner()?)
}

impl FewShotCheckpoint {
    /// The `w*` blob: the head's `θ0` and `α` (ANIL: the device adapts the head only) on the
    /// body, whose weights the device reads from flash in place.
    pub fn blob<const N: usize>(&self) -> Result<Vec<u8>> {
        self.blob_viewing::<N>(Views::Single)
    }

    /// [`FewShotCheckpoint::blob`] whose device takes each image's features over `views`
    /// (test-time augmentation: training is the same, only the blob's flag differs).
    pub fn blob_viewing<const N: usize>(&self, views: Views) -> Result<Vec<u8>> {
        if N > self.config.way {
            bail!("a {N}-way blob from a {}-way run", self.config.way);
        }
        let mut meta =
            Meta::new::<Head<N>, FEATURES, N>(Loss::SoftmaxCrossEntropy, self.config.steps as u16);
        meta.algorithm = match (self.config.order, self.config.per_parameter_alpha) {
            (Order::First, _) => Algorithm::Fomaml,
            (Order::Second, true) => Algorithm::MetaSgd,
            (Order::Second, false) => Algorithm::Anil,
        };
        if self.config.per_parameter_alpha {
            meta.alpha = AlphaKind::PerParameter;
        }
        meta.trained_k = (self.config.way * self.config.shot) as u16;
        meta.seed = self.config.seed;
        let (zeros_f, ones_f) = (vec![0.0f32; FEATURES], vec![1.0f32; FEATURES]);
        let (zeros_n, ones_n) = (vec![0.0f32; N], vec![1.0f32; N]);
        wstar::encode_classifier(
            &meta,
            &self.head_rows(N),
            &self.alpha_rows(N),
            [&zeros_f, &ones_f, &zeros_n, &ones_n],
            (&BodyShape::of(&OMNIGLOT_BODY), &self.body),
            self.config.start,
            views,
        )
        .map_err(|e| anyhow::anyhow!("{e}"))
    }
}
