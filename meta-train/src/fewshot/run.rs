//! `meta-train train-fewshot`: meta-train the Omniglot classifier from the small background
//! split, then evaluate it on alphabets it never saw, next to nearest-neighbour baselines.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use shared::body::Views;
use shared::wstar::HeadStart;

use super::eval::run_episodes;
use super::head::Order;
use super::train::{features, train, FewShotConfig};
use super::OMNIGLOT_BODY;
use crate::run_dir::{self, RunDir};
use crate::tasks::episode_dir::UserEpisode;
use crate::tasks::episodes::{
    mean_ci95, nn_accuracy_with, Episode, EpisodeSpec, NnRule, Pools, Sampler,
};
use crate::tasks::omniglot::{Character, Omniglot};
use crate::tasks::Stream;
use crate::train::Progress;
use crate::with_episode_shape;

/// Options of `train-fewshot`.
#[derive(Debug)]
#[cfg_attr(feature = "cli", derive(clap::Args))]
pub struct FewShotArgs {
    /// Folder holding images_background_small1.zip and images_background_small2.zip.
    #[cfg_attr(feature = "cli", arg(long, default_value = "../shared/data/omniglot"))]
    pub data: PathBuf,
    /// Classes per training episode: 5 or 20, or 40 (1-shot; writes the 20- and 5-way
    /// classifiers: training on more classes than the device tells apart makes each episode
    /// harder).
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 5))]
    pub way: usize,
    /// Support images per class (1 or 5).
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 1))]
    pub shot: usize,
    /// Query images per class in training episodes.
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 5))]
    pub query: usize,
    /// Inner steps on the head.
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 5))]
    pub steps: usize,
    /// Initial inner step size.
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 0.1))]
    pub alpha: f32,
    /// Keep α fixed instead of meta-learning it.
    #[cfg_attr(feature = "cli", arg(long))]
    pub fixed_alpha: bool,
    /// Episodes per meta-batch.
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 8))]
    pub meta_batch: usize,
    /// Meta-iterations.
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 6000))]
    pub iterations: u64,
    /// Adam learning rate.
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 1e-3))]
    pub meta_lr: f32,
    /// Seed.
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 0))]
    pub seed: u64,
    /// Iterations between meta-validation passes.
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 250))]
    pub val_every: u64,
    /// Evaluation episodes per setup.
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 600))]
    pub eval_episodes: u64,
    /// Run folder (default: runs/omniglot-<way>w<shot>s-seed<seed>).
    #[cfg_attr(feature = "cli", arg(long))]
    pub out: Option<PathBuf>,
    /// Iterations between learning-rate decays (×0.3 each); 0: never.
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 0))]
    pub decay_every: u64,
    /// No random distortions of the training images.
    #[cfg_attr(feature = "cli", arg(long))]
    pub no_augment: bool,
    /// Start each adaptation from θ0 plus the support set's class prototypes (Proto-MAML).
    #[cfg_attr(feature = "cli", arg(long))]
    pub prototypes: bool,
    /// Draw each training episode's classes from one alphabet (the evaluation's harder
    /// 20-way form) instead of across alphabets.
    #[cfg_attr(feature = "cli", arg(long))]
    pub within_alphabet: bool,
    /// One inner step size per head parameter, meta-learned (Meta-SGD on the head).
    #[cfg_attr(feature = "cli", arg(long))]
    pub per_parameter_alpha: bool,
    /// First-order meta-gradients (FOMAML on the head) instead of exact ones (ANIL).
    #[cfg_attr(feature = "cli", arg(long))]
    pub first_order: bool,
    /// Blobs whose device averages each image's features over shifted views of it (five
    /// body passes per image instead of one; training is unchanged, so a finished run can be
    /// re-exported with `--resume --shifted-views`).
    #[cfg_attr(feature = "cli", arg(long))]
    pub shifted_views: bool,
    /// Continue from the run folder's checkpoint.
    #[cfg_attr(feature = "cli", arg(long))]
    pub resume: bool,
    /// No progress bar.
    #[cfg_attr(feature = "cli", arg(long))]
    pub quiet: bool,
}

/// Runs `train-fewshot`.
pub fn run(a: &FewShotArgs) -> Result<()> {
    let small1 = Omniglot::load(a.data.join("images_background_small1.zip"))?;
    let small2 = Omniglot::load(a.data.join("images_background_small2.zip"))?;
    let pools = Pools::from_small(&small1, &small2, 0.2, a.seed).with_rotations();
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
    };
    let out = a.out.clone().unwrap_or_else(|| {
        PathBuf::from(format!(
            "runs/omniglot-{}w{}s-seed{}",
            a.way, a.shot, a.seed
        ))
    });
    let run = RunDir::create(&out)?;
    eprintln!(
        "meta-training {}-way {}-shot on {} classes ({} for validation), evaluating on {} characters never seen",
        a.way,
        a.shot,
        pools.train.len(),
        pools.val.len(),
        pools.eval.len()
    );
    let progress = if a.quiet {
        Progress::Quiet
    } else {
        Progress::Bar
    };
    let ck = with_episode_shape!(a.way, a.shot, N, K => {
        train::<N, K>(&config, &pools.train, &pools.val, &run, a.resume, progress)
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
    for (_, blob) in blobs.iter().rev() {
        let rows = evaluate(blob, &pools.eval, a.seed, a.eval_episodes)?;
        println!("{}", table(&rows));
    }
    Ok(())
}

/// One evaluation setup's accuracies (mean, 95% half-width).
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct SetupRow {
    /// The setup, e.g. "5-way 1-shot".
    pub setup: String,
    /// Episodes.
    pub episodes: usize,
    /// The blob, adapted and classifying on the device runtime.
    pub device: (f64, f64),
    /// Nearest neighbour on raw pixels.
    pub nn_pixels: (f64, f64),
    /// Nearest neighbour on the body's features.
    pub nn_features: (f64, f64),
}

/// The blob's way decides the setups: 5-way 1- and 5-shot, or 20-way 1-shot within one
/// alphabet and across alphabets.
pub fn evaluate(
    blob: &[u8],
    eval: &[Character],
    seed: u64,
    episodes: u64,
) -> Result<Vec<SetupRow>> {
    let parsed = shared::wstar::Blob::parse(blob).map_err(|e| anyhow::anyhow!("{e}"))?;
    let way = parsed.meta.shape.last().copied().unwrap_or(0) as usize;
    let body = super::eval::body_weights(blob)?;
    let setups: Vec<(&str, EpisodeSpec, bool)> = match way {
        5 => vec![
            ("5-way 1-shot", EpisodeSpec::new(5, 1), false),
            ("5-way 5-shot", EpisodeSpec::new(5, 5), false),
        ],
        20 => vec![
            (
                "20-way 1-shot, within alphabet",
                EpisodeSpec::new(20, 1),
                true,
            ),
            (
                "20-way 1-shot, across alphabets",
                EpisodeSpec::new(20, 1),
                false,
            ),
        ],
        w => anyhow::bail!("a {w}-way classifier: evaluation setups exist for 5 and 20 ways"),
    };
    let mut rows = Vec::new();
    for (name, spec, within) in setups {
        let sampler = if within {
            Sampler::within_alphabet(eval, spec)?
        } else {
            Sampler::across(eval, spec)?
        };
        let eps: Vec<Episode> = sampler.episodes(seed, Stream::Eval, episodes).collect();
        let results = with_episode_shape!(spec.n_way, spec.k_shot, N, K => {
            run_episodes::<N, K>(blob, &eps)
        })?;
        let acc: Vec<f64> = results.iter().map(|r| r.accuracy).collect();
        let rule = if spec.k_shot == 1 {
            NnRule::NearestImage
        } else {
            NnRule::NearestClassMean
        };
        let feat_eps: Vec<Episode> = eps
            .iter()
            .map(|e| Episode {
                support: features(&body, &e.support),
                query: features(&body, &e.query),
            })
            .collect();
        rows.push(SetupRow {
            setup: name.to_string(),
            episodes: eps.len(),
            device: mean_ci95(&acc),
            nn_pixels: nn_accuracy_with(&eps, rule),
            nn_features: nn_accuracy_with(&feat_eps, rule),
        });
    }
    Ok(rows)
}

/// The rows as a table.
pub fn table(rows: &[SetupRow]) -> String {
    let pct = |(m, h): (f64, f64)| format!("{:.1}% ± {:.1}", 100.0 * m, 100.0 * h);
    let mut out = format!(
        "{:<32} {:>9} {:>16} {:>16} {:>16}\n",
        "setup", "episodes", "w* on device rt", "NN on pixels", "NN on features"
    );
    for r in rows {
        out += &format!(
            "{:<32} {:>9} {:>16} {:>16} {:>16}\n",
            r.setup,
            r.episodes,
            pct(r.device),
            pct(r.nn_pixels),
            pct(r.nn_features)
        );
    }
    out
}

/// `meta-train eval` on a classifier blob: the user's own episode (a folder or CSV, see
/// [`crate::tasks::episode_dir`]) when given, else the Omniglot evaluation setups.
pub fn eval_blob(
    blob: &[u8],
    data: &Path,
    episode: Option<&Path>,
    seed: u64,
    episodes: u64,
) -> Result<()> {
    let Some(path) = episode else {
        let small1 = Omniglot::load(data.join("images_background_small1.zip"))?;
        let small2 = Omniglot::load(data.join("images_background_small2.zip"))?;
        let pools = Pools::from_small(&small1, &small2, 0.2, seed);
        println!(
            "{} episodes per setup on the {} characters of alphabets never seen in training",
            episodes,
            pools.eval.len()
        );
        println!("{}", table(&evaluate(blob, &pools.eval, seed, episodes)?));
        return Ok(());
    };
    let user = UserEpisode::load(path)?;
    let parsed = shared::wstar::Blob::parse(blob).map_err(|e| anyhow::anyhow!("{e}"))?;
    let way = parsed.meta.shape.last().copied().unwrap_or(0) as usize;
    if user.features() != OMNIGLOT_BODY.inputs() {
        anyhow::bail!(
            "{}: samples have {} values; this w* classifies {}x{} images ({} values)",
            path.display(),
            user.features(),
            OMNIGLOT_BODY.side,
            OMNIGLOT_BODY.side,
            OMNIGLOT_BODY.inputs()
        );
    }
    if user.n_way() > way {
        anyhow::bail!(
            "{}: {} classes; this w* has {way}",
            path.display(),
            user.n_way()
        );
    }
    let support = user.episode.support.len();
    let result = match (way, support) {
        (5, 0..=5) => run_episodes::<5, 5>(blob, std::slice::from_ref(&user.episode)),
        (5, 6..=25) => run_episodes::<5, 25>(blob, std::slice::from_ref(&user.episode)),
        (20, 0..=20) => run_episodes::<20, 20>(blob, std::slice::from_ref(&user.episode)),
        (20, 21..=100) => run_episodes::<20, 100>(blob, std::slice::from_ref(&user.episode)),
        _ => anyhow::bail!(
            "{}: {support} support samples; at most {} for a {way}-way w*",
            path.display(),
            5 * way
        ),
    }?;
    let r = &result[0];
    println!(
        "{}: {} classes, {} support, {} query samples; adapted on the device runtime",
        user.source,
        user.n_way(),
        support,
        user.episode.query.len()
    );
    println!("{:<24} {:>8} {:>8}", "class", "queries", "correct");
    for (c, name) in user.classes.iter().enumerate() {
        let mine: Vec<_> = user
            .episode
            .query
            .iter()
            .zip(&r.labels)
            .filter(|((_, l), _)| *l == c)
            .collect();
        let ok = mine.iter().filter(|((_, l), got)| *l == **got).count();
        println!("{name:<24} {:>8} {:>8}", mine.len(), ok);
    }
    println!(
        "accuracy {:.1}% ({} queries)",
        100.0 * r.accuracy,
        user.episode.query.len()
    );
    Ok(())
}
