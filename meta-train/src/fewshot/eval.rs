//! Evaluation of a few-shot classifier blob through the device runtime: every episode is
//! adapted and classified by `device::ImageClassifier`, the code the firmware runs.

use anyhow::{bail, Result};
use device::ImageClassifier;
use rayon::prelude::*;
use shared::body::Weights;
use shared::wstar::Blob;

use super::{FEATURES, OMNIGLOT_BODY};
use crate::tasks::episodes::Episode;

/// Forward scratch of [`OMNIGLOT_BODY`].
pub const SCRATCH: usize = OMNIGLOT_BODY.scratch_len();

/// The device's Omniglot classifier: `N` classes, up to `K` support images.
pub type OmniglotClassifier<'w, const N: usize, const K: usize> =
    ImageClassifier<'w, 5, FEATURES, N, K, SCRATCH>;

/// What the device answered on one episode.
#[derive(Clone, Debug, PartialEq)]
pub struct EpisodeResult {
    /// Predicted label of each query, in episode order.
    pub labels: Vec<usize>,
    /// Fraction of queries labelled correctly.
    pub accuracy: f64,
}

/// Adapts on `episode`'s support set and classifies its queries with the device runtime.
pub fn run_episode<const N: usize, const K: usize>(
    blob: &[u8],
    episode: &Episode,
) -> Result<EpisodeResult> {
    let mut c = Box::new(OmniglotClassifier::<N, K>::unloaded(OMNIGLOT_BODY));
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

/// [`run_episode`] on every episode, in parallel.
pub fn run_episodes<const N: usize, const K: usize>(
    blob: &[u8],
    episodes: &[Episode],
) -> Result<Vec<EpisodeResult>> {
    episodes
        .par_iter()
        .map(|e| run_episode::<N, K>(blob, e))
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
