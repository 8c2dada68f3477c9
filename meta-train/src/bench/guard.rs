//! The guard's extra steps: backtracking retries against the guard that stops at the first
//! extra step that raises the loss (0 retries), and steps that grow while they descend, on
//! the sinusoid net, K = 5 and 10, after 5 and 10 steps. `meta-train bench --quality` prints
//! it on validation tasks (seed 1, never the seed of the reported tables) to choose
//! `device::BACKTRACKS` and `device::GROWTH`.

use anyhow::Result;
use device::ExtraSteps;
use std::fmt::Write;

use crate::eval::{evaluate_with, EvalConfig, EVAL_STEPS};
use crate::model::SinusoidNet;

/// The extra-step rules compared: retries without growth (0 is the guard that stops), then
/// growth with [`device::BACKTRACKS`] retries.
pub fn rules() -> Vec<ExtraSteps> {
    let retries = [0, 1, 2, 4, 8].map(|backtracks| ExtraSteps {
        backtracks,
        growth: 0,
    });
    let growth = [1, 2, 3, 4, 6].map(|growth| ExtraSteps {
        backtracks: device::BACKTRACKS,
        growth,
    });
    retries.into_iter().chain(growth).collect()
}

/// The table of mean MSE (and tasks stopped) after 5 and 10 steps for each of [`rules`].
pub fn table(blob: &[u8], cfg: &EvalConfig) -> Result<String> {
    let mut s = String::from(
        "retries growth   K=5 5 steps  K=5 10 steps   K=10 5 steps  K=10 10 steps   (mean MSE, tasks stopped)\n",
    );
    for r in rules() {
        let five = evaluate_with::<SinusoidNet, f32, 5>(blob, cfg, Some(r))?;
        let ten = evaluate_with::<SinusoidNet, f32, 10>(blob, cfg, Some(r))?;
        let _ = write!(s, "{:>7} {:>6}", r.backtracks, r.growth);
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
