//! Where a training run's time goes: seconds of each phase, summed over the threads that ran
//! it, so that `bench --fewshot` can print the split and the cores' idle time.
//!
//! ```
//! use meta_train::train::time_split::{Phase, TimeSplit};
//! let split = TimeSplit::default();
//! let n = split.time(Phase::Head, || (0..1000u64).sum::<u64>());
//! assert_eq!(n, 499_500);
//! assert!(split.seconds(Phase::Head) >= 0.0 && split.seconds(Phase::Forward) == 0.0);
//! ```

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// A phase of a meta-iteration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Drawing the episodes and distorting their images.
    Episodes,
    /// The body forward on every image.
    Forward,
    /// The head: the inner steps and their exact meta-gradient.
    Head,
    /// The body backward on every image.
    Backward,
    /// Summing the episodes' gradients, the Adam step, checkpoints and metrics.
    Outer,
    /// Meta-validation passes.
    Validation,
}

impl Phase {
    /// Every phase, in the order of a meta-iteration.
    pub const ALL: [Phase; 6] = [
        Phase::Episodes,
        Phase::Forward,
        Phase::Head,
        Phase::Backward,
        Phase::Outer,
        Phase::Validation,
    ];

    /// What `bench` calls it.
    pub fn name(self) -> &'static str {
        match self {
            Phase::Episodes => "episodes and distortions",
            Phase::Forward => "body forward",
            Phase::Head => "head (inner steps, meta-gradient)",
            Phase::Backward => "body backward",
            Phase::Outer => "outer step (sum, Adam, checkpoints)",
            Phase::Validation => "meta-validation",
        }
    }
}

/// Nanoseconds per [`Phase`], added to from any thread.
#[derive(Debug, Default)]
pub struct TimeSplit {
    nanos: [AtomicU64; Phase::ALL.len()],
}

impl TimeSplit {
    /// Runs `f`, adding its time to `phase`.
    pub fn time<R>(&self, phase: Phase, f: impl FnOnce() -> R) -> R {
        let start = Instant::now();
        let r = f();
        let ns = u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.nanos[phase as usize].fetch_add(ns, Ordering::Relaxed);
        r
    }

    /// Seconds spent in `phase`, summed over threads.
    pub fn seconds(&self, phase: Phase) -> f64 {
        self.nanos[phase as usize].load(Ordering::Relaxed) as f64 * 1e-9
    }

    /// Seconds spent in all phases, summed over threads.
    pub fn total(&self) -> f64 {
        Phase::ALL.iter().map(|&p| self.seconds(p)).sum()
    }
}
