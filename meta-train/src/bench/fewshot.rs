//! The few-shot training benchmark: the README's Omniglot recipe for a number of
//! meta-iterations, timed, with the split of the time over the phases of a meta-iteration.

use std::path::Path;
use std::time::Instant;

use anyhow::Result;
use shared::wstar::HeadStart;

use crate::model::head::OMNIGLOT_BODY;
use crate::run_dir::RunDir;
use crate::tasks::episodes::Pools;
use crate::train::images::{train, FewShotConfig};
use crate::train::time_split::TimeSplit;
use crate::train::Progress;

/// The README's recipe: 20-way 1-shot within one alphabet, 2 queries per class, meta-batch 4
/// (240 images per meta-iteration), prototype start, 5 exact second-order inner steps of the
/// head, gradients into the body, random distortions, meta-validation every 250 iterations.
pub fn readme_recipe(iterations: u64) -> FewShotConfig {
    FewShotConfig {
        query: 2,
        meta_batch: 4,
        iterations,
        decay_every: 4000,
        start: HeadStart::Prototypes,
        within_alphabet: true,
        ..FewShotConfig::omniglot(20, 1)
    }
}

/// What one timed run gave.
#[derive(Debug)]
pub struct FewShotSpeed {
    /// The run's config.
    pub config: FewShotConfig,
    /// Wall seconds, meta-validation included.
    pub seconds: f64,
    /// Where the time went, summed over threads.
    pub split: TimeSplit,
}

impl FewShotSpeed {
    /// Meta-iterations per second.
    pub fn iterations_per_s(&self) -> f64 {
        self.config.iterations as f64 / self.seconds
    }
    /// Training images per meta-iteration.
    pub fn images_per_iteration(&self) -> usize {
        let c = &self.config;
        c.meta_batch * c.way * (c.shot + c.query)
    }
    /// Body FLOPs (forward and backward) per second.
    pub fn body_flops_per_s(&self) -> f64 {
        let per_image = super::flops::body_training_image(&OMNIGLOT_BODY) as f64;
        per_image * self.images_per_iteration() as f64 * self.iterations_per_s()
    }
}

/// Trains `config` on Omniglot from `data` (the folder of the small background zips) into a
/// temporary run folder and times it.
pub fn measure(data: &Path, config: FewShotConfig) -> Result<FewShotSpeed> {
    let pools = Pools::load(data, config.split, config.seed)?.with_rotations();
    let dir = tempfile::tempdir()?;
    let run = RunDir::create(dir.path().join("fewshot"))?;
    let split = TimeSplit::default();
    let start = Instant::now();
    crate::with_episode_shape!(config.way, config.shot, N, K => {
        train::<N, K>(&config, &pools.train, &pools.val, &run, false, Progress::Quiet, &split)
    })?;
    Ok(FewShotSpeed {
        config,
        seconds: start.elapsed().as_secs_f64(),
        split,
    })
}
