//! The guard's extra steps: backtracking retries against the guard that stops at the first
//! extra step that raises the loss (0 retries), on the sinusoid net, K = 5 and 10, after 5
//! and 10 steps. `meta-train bench --quality` prints it on validation tasks (seed 1, never
//! the seed of the reported tables) to choose `device::BACKTRACKS`.

use anyhow::Result;
use std::fmt::Write;

use crate::eval::{evaluate_with, EvalConfig, EVAL_STEPS};
use crate::model::SinusoidNet;

/// Retry counts compared; 0 is the guard that stops.
pub const RETRIES: [u8; 5] = [0, 1, 2, 4, 8];

/// The table of mean MSE (and tasks stopped) after 5 and 10 steps for each of [`RETRIES`].
pub fn table(blob: &[u8], cfg: &EvalConfig) -> Result<String> {
    let mut s = String::from(
        "retries   K=5 5 steps  K=5 10 steps   K=10 5 steps  K=10 10 steps   (mean MSE, tasks stopped)\n",
    );
    for r in RETRIES {
        let five = evaluate_with::<SinusoidNet, f32, 5>(blob, cfg, r)?;
        let ten = evaluate_with::<SinusoidNet, f32, 10>(blob, cfg, r)?;
        let _ = write!(s, "{r:>7}");
        for k in [&five, &ten] {
            for steps in [5, 10] {
                let c = &k.cells[EVAL_STEPS
                    .iter()
                    .position(|&e| e == steps)
                    .expect("5 and 10")];
                let _ = write!(s, "  {:>7.4} ({:>3})", c.mean, c.stopped);
            }
        }
        s.push('\n');
    }
    Ok(s)
}
