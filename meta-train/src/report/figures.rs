//! The pictures of a run and of an evaluation, from their data to [`crate::report::plot`].

use std::path::Path;

use anyhow::{anyhow, Result};
use device::StepLimit;

use crate::eval::{self, EvalConfig, KResult};
use crate::model::SinusoidNet;
use crate::report::plot::{self, CurvePoint, StepSeries, TaskPanel};
use crate::run_dir::{self, RunDir};
use crate::tasks::sinusoid::X_RANGE;
use crate::train::Checkpoint;

/// Writes `learning_curve.png` into the run folder.
pub fn learning_curve(run: &RunDir, ck: &Checkpoint) -> Result<()> {
    let points: Vec<CurvePoint> = ck
        .metrics
        .iter()
        .map(|r| CurvePoint {
            iteration: r.iteration,
            meta_loss: r.meta_loss,
        })
        .collect();
    let c = &ck.config;
    let title = format!(
        "{:?} on {}, K = {}, {} step(s), seed {}",
        c.algorithm, c.family, c.k, c.steps, c.seed
    );
    plot::learning_curve(&run.path(run_dir::CURVE), &title, &points)
}

/// Steps after which the example panels show a prediction.
const PANEL_STEPS: [(u16, &str); 2] = [(1, "after 1 step"), (10, "after 10 steps")];

/// Writes the evaluation figure: MSE against steps per K, and three held-out tasks with K = 5.
pub fn eval_figure(path: &Path, blob: &[u8], cfg: &EvalConfig, results: &[KResult]) -> Result<()> {
    let series: Vec<StepSeries> = results
        .iter()
        .map(|r| StepSeries {
            label: format!("K = {}", r.k),
            steps: r.cells.iter().map(|c| c.steps).collect(),
            mean: r.cells.iter().map(|c| c.mean).collect(),
            ci95: r.cells.iter().map(|c| c.ci95).collect(),
        })
        .collect();
    let grid: Vec<f32> = (0..=200)
        .map(|i| -X_RANGE + 2.0 * X_RANGE * i as f32 / 200.0)
        .collect();
    let mut panels = Vec::new();
    for index in 0..3 {
        let eval::HeldOut { task, support, .. } = eval::held_out(cfg, index, 5);
        let mut a = eval::adapter_for::<SinusoidNet, f32, 5>(blob, &support)?;
        let predict = |a: &device::Adapter<'_, SinusoidNet, 1, 1, 5>| -> Result<Vec<(f32, f32)>> {
            grid.iter()
                .map(|&x| Ok((x, a.predict(&[x]).map_err(|e| anyhow!("{e}"))?[0])))
                .collect()
        };
        let mut predictions = vec![("pre-update".to_string(), predict(&a)?)];
        let mut done = 0;
        for (steps, label) in PANEL_STEPS {
            a.adapt_steps(steps - done, StepLimit::Unchecked)
                .map_err(|e| anyhow!("{e}"))?;
            done = steps;
            predictions.push((label.to_string(), predict(&a)?));
        }
        panels.push(TaskPanel {
            title: format!(
                "held-out task {index}: A = {:.2}, φ = {:.2}, K = 5",
                task.amplitude, task.phase
            ),
            truth: grid.iter().map(|&x| (x, task.eval(x))).collect(),
            support,
            predictions,
        });
    }
    plot::eval_figure(path, &series, &panels)
}
