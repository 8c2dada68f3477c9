//! Evaluation of an image classifier blob through the device runtime: every episode is
//! adapted and classified by `device::ImageClassifier`, the code the firmware runs; the
//! Omniglot evaluation setups next to nearest-neighbour baselines.

use anyhow::{bail, Result};
use device::ImageClassifier;
use rayon::prelude::*;
use shared::body::Weights;
use shared::catalogue::Arithmetic;
use shared::fixed::{Q10H, Q20};
use shared::math::Real;
use shared::wstar::Blob;

use crate::model::head::{FEATURES, OMNIGLOT_BODY};
use crate::tasks::episodes::{nn_accuracy_with, Episode, EpisodeSpec, NnRule, Sampler};
use crate::tasks::omniglot::Character;
use crate::tasks::Stream;
use crate::train::images::features;
use crate::with_episode_shape;

/// Forward scratch of [`OMNIGLOT_BODY`].
pub const SCRATCH: usize = OMNIGLOT_BODY.scratch_len();

/// The device's Omniglot classifier: `N` classes, up to `K` support images, the head in
/// arithmetic `T`.
pub type OmniglotClassifier<'w, const N: usize, const K: usize, T = f32> =
    ImageClassifier<'w, 5, FEATURES, N, K, SCRATCH, T>;

/// What the device answered on one episode.
#[derive(Clone, Debug, PartialEq)]
pub struct EpisodeResult {
    /// Predicted label of each query, in episode order.
    pub labels: Vec<usize>,
    /// Fraction of queries labelled correctly.
    pub accuracy: f64,
}

/// Adapts on `episode`'s support set and classifies its queries with the device runtime,
/// the head in arithmetic `T`.
pub fn run_episode<const N: usize, const K: usize, T: Real>(
    blob: &[u8],
    episode: &Episode,
) -> Result<EpisodeResult> {
    let mut c = Box::new(OmniglotClassifier::<N, K, T>::unloaded(OMNIGLOT_BODY));
    c.load(blob).map_err(|e| anyhow::anyhow!("{e}"))?;
    if episode.support.len() > K {
        bail!(
            "{} support images; this classifier holds {K}",
            episode.support.len()
        );
    }
    for (image, label) in &episode.support {
        c.push(image, *label)
            .map_err(|e| anyhow::anyhow!("support image of class {label} refused: {e}"))?;
    }
    c.adapt()
        .map_err(|e| anyhow::anyhow!("adaptation failed: {e}"))?;
    let mut labels = Vec::with_capacity(episode.query.len());
    let mut correct = 0;
    for (image, label) in &episode.query {
        let got = c
            .classify(image)
            .map_err(|e| anyhow::anyhow!("query refused: {e}"))?;
        correct += usize::from(got.label == *label);
        labels.push(got.label);
    }
    Ok(EpisodeResult {
        labels,
        accuracy: correct as f64 / episode.query.len().max(1) as f64,
    })
}

/// [`run_episode`] on every episode, in parallel, the head in `arithmetic`.
pub fn run_episodes<const N: usize, const K: usize>(
    blob: &[u8],
    episodes: &[Episode],
    arithmetic: Arithmetic,
) -> Result<Vec<EpisodeResult>> {
    episodes
        .par_iter()
        .map(|e| match arithmetic {
            Arithmetic::F32 => run_episode::<N, K, f32>(blob, e),
            Arithmetic::Q20 => run_episode::<N, K, Q20>(blob, e),
            Arithmetic::Q10H => run_episode::<N, K, Q10H>(blob, e),
        })
        .collect()
}

/// The body weights of a classifier blob, as `f32`s (for baselines on its features).
pub fn body_weights(blob: &[u8]) -> Result<Vec<f32>> {
    let b = Blob::parse(blob).map_err(|e| anyhow::anyhow!("{e}"))?;
    let Some((shape, w)) = b.body() else {
        bail!("this w* has no convolutional body: it is not an image classifier");
    };
    if !shape.is(&OMNIGLOT_BODY) {
        bail!("this w* has another body ({shape:?}) than the Omniglot classifier's");
    }
    let mut out = vec![0.0f32; w.len()];
    w.copy_to(0, &mut out);
    Ok(out)
}

/// One evaluation setup's accuracies (mean, 95% half-width).
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct SetupRow {
    /// The setup, e.g. "5-way 1-shot".
    pub setup: String,
    /// Episodes.
    pub episodes: usize,
    /// The blob, adapted and classifying on the device runtime (in `f32`).
    pub device: (f64, f64),
    /// The same with the head in fixed point, when asked for: accuracy, and the share of
    /// queries labelled as in `f32`.
    pub fixed_point: Option<FixedPointRow>,
    /// Nearest neighbour on raw pixels.
    pub nn_pixels: (f64, f64),
    /// Nearest neighbour on the body's features.
    pub nn_features: (f64, f64),
}

/// One setup's accuracy with the head in a fixed-point arithmetic, next to `f32`.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct FixedPointRow {
    /// The arithmetic.
    pub arithmetic: String,
    /// Accuracy (mean, 95% half-width).
    pub accuracy: (f64, f64),
    /// Share of queries given the same label as in `f32`.
    pub same_label: f64,
}

/// The blob's way decides the setups: 5-way 1- and 5-shot, or 20-way 1-shot within one
/// alphabet and across alphabets. With `arithmetic` other than `f32`, every episode also runs
/// with the head in it ([`SetupRow::fixed_point`]).
pub fn evaluate(
    blob: &[u8],
    eval: &[Character],
    seed: u64,
    episodes: u64,
    arithmetic: Arithmetic,
) -> Result<Vec<SetupRow>> {
    let parsed = shared::wstar::Blob::parse(blob).map_err(|e| anyhow::anyhow!("{e}"))?;
    let way = parsed.meta.shape.last().copied().unwrap_or(0) as usize;
    let body = body_weights(blob)?;
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
        let run = |a| {
            with_episode_shape!(spec.n_way, spec.k_shot, N, K => {
                run_episodes::<N, K>(blob, &eps, a)
            })
        };
        let results = run(Arithmetic::F32)?;
        let acc: Vec<f64> = results.iter().map(|r| r.accuracy).collect();
        let fixed_point = match arithmetic {
            Arithmetic::F32 => None,
            a => Some(fixed_point_row(a, &results, &run(a)?)),
        };
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
            device: super::stats::mean_ci95(&acc),
            fixed_point,
            nn_pixels: nn_accuracy_with(&eps, rule),
            nn_features: nn_accuracy_with(&feat_eps, rule),
        });
    }
    Ok(rows)
}

/// `fixed`'s accuracy and its agreement with `float`, episode by episode.
fn fixed_point_row(
    arithmetic: Arithmetic,
    float: &[EpisodeResult],
    fixed: &[EpisodeResult],
) -> FixedPointRow {
    let acc: Vec<f64> = fixed.iter().map(|r| r.accuracy).collect();
    let (same, all) = float.iter().zip(fixed).fold((0, 0), |(s, n), (f, q)| {
        let agree = f.labels.iter().zip(&q.labels).filter(|(a, b)| a == b);
        (s + agree.count(), n + f.labels.len())
    });
    FixedPointRow {
        arithmetic: arithmetic.to_string(),
        accuracy: super::stats::mean_ci95(&acc),
        same_label: same as f64 / all.max(1) as f64,
    }
}

/// The rows as a table.
pub fn table(rows: &[SetupRow]) -> String {
    let pct = |(m, h): (f64, f64)| format!("{:.1}% ± {:.1}", 100.0 * m, 100.0 * h);
    let fixed = rows.iter().find_map(|r| r.fixed_point.as_ref());
    let mut out = format!(
        "{:<32} {:>9} {:>16}",
        "setup", "episodes", "w* on device rt"
    );
    if let Some(f) = fixed {
        out += &format!(
            " {:>16} {:>11}",
            format!("head in {}", f.arithmetic),
            "same label"
        );
    }
    out += &format!(" {:>16} {:>16}\n", "NN on pixels", "NN on features");
    for r in rows {
        out += &format!("{:<32} {:>9} {:>16}", r.setup, r.episodes, pct(r.device));
        if let Some(f) = &r.fixed_point {
            out += &format!(" {:>16} {:>10.2}%", pct(f.accuracy), 100.0 * f.same_label);
        }
        out += &format!(" {:>16} {:>16}\n", pct(r.nn_pixels), pct(r.nn_features));
    }
    out
}
