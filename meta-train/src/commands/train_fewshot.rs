//! `meta-train train-fewshot`: meta-train the Omniglot classifier from one of the two small
//! background sets, then evaluate it on alphabets it never saw, next to nearest-neighbour
//! baselines.

use std::path::PathBuf;

use anyhow::{Context, Result};
use meta_train::eval::images::{evaluate, table};
use meta_train::model::head::Order;
use meta_train::run_dir::{self, RunDir};
use meta_train::tasks::augment::Distortion;
use meta_train::tasks::episodes::{Pools, Split};
use meta_train::train::images::{train, FewShotConfig};
use meta_train::train::time_split::TimeSplit;
use meta_train::train::Progress;
use meta_train::with_episode_shape;
use shared::body::Views;
use shared::catalogue::Arithmetic;
use shared::wstar::HeadStart;

/// Options of `train-fewshot`.
#[derive(Debug, clap::Args)]
pub struct FewShotArgs {
    /// Folder holding images_background_small1.zip and images_background_small2.zip.
    #[arg(long, default_value = "../shared/data/omniglot")]
    pub data: PathBuf,
    /// The background set to learn from: small1 (evaluated on small2's Japanese (katakana),
    /// Sanskrit and Tagalog) or small2 (evaluated on small1's Balinese, Early Aramaic and
    /// Korean).
    #[arg(long, default_value_t = Split::Small1)]
    pub split: Split,
    /// Classes per training episode: 5 or 20, or 40 (1-shot; writes the 20- and 5-way
    /// classifiers: training on more classes than the device tells apart makes each episode
    /// harder).
    #[arg(long, default_value_t = 5)]
    pub way: usize,
    /// Support images per class (1 or 5).
    #[arg(long, default_value_t = 1)]
    pub shot: usize,
    /// Query images per class in training episodes.
    #[arg(long, default_value_t = 5)]
    pub query: usize,
    /// Inner steps on the head.
    #[arg(long, default_value_t = 5)]
    pub steps: usize,
    /// Initial inner step size.
    #[arg(long, default_value_t = 0.1)]
    pub alpha: f32,
    /// Keep α fixed instead of meta-learning it.
    #[arg(long)]
    pub fixed_alpha: bool,
    /// Episodes per meta-batch.
    #[arg(long, default_value_t = 8)]
    pub meta_batch: usize,
    /// Meta-iterations.
    #[arg(long, default_value_t = 6000)]
    pub iterations: u64,
    /// Adam learning rate.
    #[arg(long, default_value_t = 1e-3)]
    pub meta_lr: f32,
    /// Seed.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Iterations between meta-validation passes.
    #[arg(long, default_value_t = 250)]
    pub val_every: u64,
    /// Evaluation episodes per setup on the new alphabets; 0 skips the evaluation (to choose
    /// settings with `meta-train eval --validation` before looking at the new alphabets).
    #[arg(long, default_value_t = 600)]
    pub eval_episodes: u64,
    /// Run folder (default: runs/omniglot-<way>w<shot>s-seed<seed>, with -small2 after
    /// omniglot for that split).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Iterations between learning-rate decays (×0.3 each); 0: never.
    #[arg(long, default_value_t = 0)]
    pub decay_every: u64,
    /// No random distortions of the training images.
    #[arg(long)]
    pub no_augment: bool,
    /// Largest rotation of the distortions, in degrees.
    #[arg(long, default_value_t = Distortion::default().degrees)]
    pub max_rotation: f32,
    /// Largest change of scale of the distortions (0.15: ±15%).
    #[arg(long, default_value_t = Distortion::default().scale)]
    pub max_scale: f32,
    /// Largest shear of the distortions.
    #[arg(long, default_value_t = Distortion::default().shear)]
    pub max_shear: f32,
    /// Largest shift of the distortions, in pixels.
    #[arg(long, default_value_t = Distortion::default().shift)]
    pub max_shift: f32,
    /// Start each adaptation from θ0 plus the support set's class prototypes (Proto-MAML).
    #[arg(long)]
    pub prototypes: bool,
    /// Draw each training episode's classes from one alphabet (the evaluation's harder
    /// 20-way form) instead of across alphabets.
    #[arg(long)]
    pub within_alphabet: bool,
    /// One inner step size per head parameter, meta-learned (Meta-SGD on the head).
    #[arg(long)]
    pub per_parameter_alpha: bool,
    /// First-order meta-gradients (FOMAML on the head) instead of exact ones (ANIL).
    #[arg(long)]
    pub first_order: bool,
    /// Blobs whose device averages each image's features over shifted views of it (five
    /// body passes per image instead of one; training is unchanged, so a finished run can be
    /// re-exported with `--resume --shifted-views`).
    #[arg(long)]
    pub shifted_views: bool,
    /// Continue from the run folder's checkpoint.
    #[arg(long)]
    pub resume: bool,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}

/// Runs `train-fewshot`.
pub fn run(a: &FewShotArgs) -> Result<()> {
    let limits = [a.max_rotation, a.max_scale, a.max_shear, a.max_shift];
    if !limits.iter().all(|v| v.is_finite() && *v >= 0.0) || a.max_scale >= 1.0 {
        anyhow::bail!(
            "--max-rotation, --max-scale, --max-shear and --max-shift are limits of at least 0 (--max-scale below 1), not {limits:?}"
        );
    }
    let pools = Pools::load(&a.data, a.split, a.seed)?.with_rotations();
    let config = FewShotConfig {
        way: a.way,
        shot: a.shot,
        query: a.query,
        steps: a.steps,
        alpha: a.alpha,
        learn_alpha: !a.fixed_alpha,
        per_parameter_alpha: a.per_parameter_alpha,
        meta_batch: a.meta_batch,
        iterations: a.iterations,
        meta_lr: a.meta_lr,
        seed: a.seed,
        val_every: a.val_every,
        val_episodes: 200,
        checkpoint_every: 500,
        augment: !a.no_augment,
        decay_every: a.decay_every,
        start: if a.prototypes {
            HeadStart::Prototypes
        } else {
            HeadStart::Theta0
        },
        within_alphabet: a.within_alphabet,
        order: if a.first_order {
            Order::First
        } else {
            Order::Second
        },
        split: a.split,
        distortion: Distortion {
            degrees: a.max_rotation,
            scale: a.max_scale,
            shear: a.max_shear,
            shift: a.max_shift,
        },
    };
    let out = a.out.clone().unwrap_or_else(|| {
        let split = match a.split {
            Split::Small1 => String::new(),
            Split::Small2 => "-small2".to_string(),
        };
        PathBuf::from(format!(
            "runs/omniglot{split}-{}w{}s-seed{}",
            a.way, a.shot, a.seed
        ))
    });
    let run = RunDir::create(&out)?;
    eprintln!(
        "meta-training {}-way {}-shot on {} classes of {} ({} for validation), evaluating on {} characters never seen ({})",
        a.way,
        a.shot,
        pools.train.len(),
        a.split.background(),
        pools.val.len(),
        pools.eval.len(),
        pools.eval_alphabets().join(", ")
    );
    let progress = if a.quiet {
        Progress::Quiet
    } else {
        Progress::Bar
    };
    let ck = with_episode_shape!(a.way, a.shot, N, K => {
        let split = TimeSplit::default();
        train::<N, K>(&config, &pools.train, &pools.val, &run, a.resume, progress, &split)
    })
    .with_context(|| format!("training into {}", out.display()))?;
    // A 20- or 40-way run gives the 20- and the 5-way classifier (see
    // `FewShotCheckpoint::head_rows`).
    let way = a.way.min(20);
    let views = if a.shifted_views {
        Views::Shifted
    } else {
        Views::Single
    };
    let mut blobs = vec![(run_dir::WSTAR.to_string(), ck.blob_for(way, views)?)];
    if way == 20 {
        blobs.push(("wstar-5way.bin".to_string(), ck.blob_for(5, views)?));
    }
    for (name, blob) in &blobs {
        run.write_atomic(name, blob)?;
        eprintln!("w*: {} ({} bytes)", run.path(name).display(), blob.len());
    }
    if a.eval_episodes == 0 {
        eprintln!(
            "not evaluated (--eval-episodes 0): meta-train eval {} --validation",
            run.path(run_dir::WSTAR).display()
        );
        return Ok(());
    }
    for (_, blob) in blobs.iter().rev() {
        let rows = evaluate(blob, &pools.eval, a.seed, a.eval_episodes, Arithmetic::F32)?;
        println!("{}", table(&rows));
    }
    Ok(())
}
