//! PNG figures for meta-training runs: the learning curve and the evaluation figure.
//!
//! Rendering uses `plotters`' bitmap backend with the pure-Rust `ab_glyph` text renderer and the
//! DejaVu Sans font embedded in the binary (via the `dejavu` crate), so no system fonts or
//! fontconfig are needed. Fonts are registered once per process on the first plot.
//!
//! Robustness rules shared by every function here:
//! - non-finite values (NaN / ±inf) are skipped, never plotted and never a panic;
//! - empty inputs draw an empty, labelled chart with a "no data" note;
//! - any I/O or drawing failure is an [`anyhow::Error`] that names the output path.

mod axes;
mod curve;
mod evaluation;
mod legend;
mod style;

use anyhow::{anyhow, bail, Result};
use curve::draw_learning_curve;
use evaluation::draw_eval_figure;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::register_font;
use std::path::Path;
use std::sync::OnceLock;
use style::FONT;

/// One point of a learning curve.
///
/// ```
/// use meta_train::report::plot::CurvePoint;
/// let p = CurvePoint { iteration: 100, meta_loss: 0.42 };
/// assert_eq!(p.iteration, 100);
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CurvePoint {
    /// Meta-iteration (outer-loop step) at which the loss was recorded.
    pub iteration: u64,
    /// Meta-loss (post-adaptation MSE on the query set), averaged over the meta-batch.
    pub meta_loss: f32,
}

/// Error-vs-steps series for one K: x = steps (e.g. 0, 1, 5, 10), y = mean MSE with a 95% CI
/// half-width.
///
/// `steps`, `mean` and `ci95` are parallel vectors; if their lengths differ, the extra entries of
/// the longer ones are ignored (a missing `ci95` entry is treated as 0). Points whose step or mean
/// is non-finite are skipped; a non-finite CI draws no error bar.
///
/// ```
/// use meta_train::report::plot::StepSeries;
/// let s = StepSeries {
///     label: "K=5".into(),
///     steps: vec![0, 1, 5, 10],
///     mean: vec![3.1, 1.2, 0.6, 0.4],
///     ci95: vec![0.3, 0.1, 0.05, 0.04],
/// };
/// assert_eq!(s.steps.len(), s.mean.len());
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct StepSeries {
    /// Legend label, e.g. `"K=5"`.
    pub label: String,
    /// Number of inner adaptation steps for each point.
    pub steps: Vec<u16>,
    /// Mean MSE on target-test points after `steps[i]` steps.
    pub mean: Vec<f64>,
    /// 95% confidence-interval half-width of `mean[i]`.
    pub ci95: Vec<f64>,
}

/// One example task panel (the MAML paper's sinusoid figure): the true curve, the K support
/// points, and the model's prediction before adaptation and after some steps.
///
/// ```
/// use meta_train::report::plot::TaskPanel;
/// let xs: Vec<f32> = (0..=100).map(|i| -5.0 + 0.1 * i as f32).collect();
/// let panel = TaskPanel {
///     title: "amplitude 2.0, phase 0.5".into(),
///     truth: xs.iter().map(|&x| (x, 2.0 * (x - 0.5).sin())).collect(),
///     support: vec![(-3.0, 2.0 * (-3.5f32).sin()), (1.0, 2.0 * 0.5f32.sin())],
///     predictions: vec![
///         ("pre-update".into(), xs.iter().map(|&x| (x, 0.0)).collect()),
///         ("after 10 steps".into(), xs.iter().map(|&x| (x, 1.8 * (x - 0.4).sin())).collect()),
///     ],
/// };
/// assert_eq!(panel.predictions.len(), 2);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct TaskPanel {
    /// Panel title (e.g. the task parameters).
    pub title: String,
    /// Dense `(x, y)` samples of the true function, drawn as a line.
    pub truth: Vec<(f32, f32)>,
    /// The K target-train (support) points, drawn as markers.
    pub support: Vec<(f32, f32)>,
    /// Model predictions as `(label, dense (x, y) samples)`, e.g. `("pre-update", ..)`,
    /// `("1 step", ..)`, `("10 steps", ..)`.
    pub predictions: Vec<(String, Vec<(f32, f32)>)>,
}

/// Size of the learning-curve PNG in pixels.
pub const LEARNING_CURVE_SIZE: (u32, u32) = (1000, 600);
/// Size of the evaluation-figure PNG in pixels.
pub const EVAL_FIGURE_SIZE: (u32, u32) = (1400, 1000);
/// Maximum number of [`TaskPanel`]s drawn by [`eval_figure`]; extra panels are ignored.
pub const MAX_TASK_PANELS: usize = 3;

/// Registers the embedded DejaVu Sans faces under `"sans-serif"` exactly once per process.
fn ensure_fonts() -> Result<()> {
    static REGISTERED: OnceLock<std::result::Result<(), String>> = OnceLock::new();
    REGISTERED
        .get_or_init(|| {
            let faces: [(FontStyle, &'static [u8]); 3] = [
                (FontStyle::Normal, dejavu::sans::regular()),
                (FontStyle::Bold, dejavu::sans::bold()),
                (FontStyle::Oblique, dejavu::sans::oblique()),
            ];
            for (style, bytes) in faces {
                register_font(FONT, style, bytes).map_err(|_| {
                    format!(
                        "failed to register embedded DejaVu Sans font ({})",
                        style.as_str()
                    )
                })?;
            }
            Ok(())
        })
        .clone()
        .map_err(|e| anyhow!(e))
}

/// Checks the output path is something the PNG encoder will accept, before drawing anything.
fn check_png_path(path: &Path) -> Result<()> {
    let is_png = path
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("png"));
    if !is_png {
        bail!(
            "plot output path {} must have a .png extension",
            path.display()
        );
    }
    Ok(())
}

/// Renders `draw` into a PNG of `size` at `path`, attaching the path to any error.
fn render<F>(path: &Path, size: (u32, u32), what: &str, draw: F) -> Result<()>
where
    F: FnOnce(&DrawingArea<BitMapBackend<'_>, Shift>) -> std::result::Result<(), String>,
{
    check_png_path(path)?;
    ensure_fonts()?;
    let root = BitMapBackend::new(path, size).into_drawing_area();
    let result = root
        .fill(&WHITE)
        .map_err(|e| e.to_string())
        .and_then(|()| draw(&root))
        .and_then(|()| root.present().map_err(|e| e.to_string()));
    result.map_err(|e| anyhow!("failed to write {what} to {}: {e}", path.display()))
}

/// Writes the learning curve PNG (meta-loss vs meta-iteration, log-scale y) to `path`.
///
/// The image is [`LEARNING_CURVE_SIZE`] pixels. Raw losses are drawn as a thin line; with 20 or
/// more points a moving average (in log space) is overlaid as a bold line. Points are plotted in
/// iteration order. Non-finite losses are skipped and losses ≤ 0 are clamped to a small positive
/// value (a tenth of the smallest positive loss) so the log axis stays valid. An empty `points`
/// slice produces an empty chart.
///
/// # Errors
/// Fails if `path` does not end in `.png` or the file cannot be written; the error names `path`.
///
/// # Example
/// ```no_run
/// use meta_train::report::plot::{learning_curve, CurvePoint};
/// let points: Vec<CurvePoint> = (0..1000)
///     .map(|i| CurvePoint { iteration: i, meta_loss: 3.0 / (1.0 + i as f32 / 50.0) })
///     .collect();
/// learning_curve("run/learning_curve.png".as_ref(), "MAML, sinusoid, K=10", &points)?;
/// # Ok::<(), anyhow::Error>(())
/// ```
pub fn learning_curve(path: &Path, title: &str, points: &[CurvePoint]) -> Result<()> {
    render(path, LEARNING_CURVE_SIZE, "learning curve", |root| {
        draw_learning_curve(root, title, points).map_err(|e| e.to_string())
    })
}

/// Writes the evaluation figure PNG to `path`.
///
/// Left/top panel: MSE on target-test points vs inner steps, one line per [`StepSeries`] with a
/// shaded 95% CI band, error bars, a marker at each step and a legend. Then one panel per
/// [`TaskPanel`] (at most [`MAX_TASK_PANELS`]; extras are ignored) showing the true function,
/// the support points and each prediction. Panels are laid out as 1x1, 1x2 or 2x2 depending on
/// how many there are. The image is [`EVAL_FIGURE_SIZE`] pixels.
///
/// Empty `series` draws an empty MSE chart; non-finite values are skipped.
///
/// # Errors
/// Fails if `path` does not end in `.png` or the file cannot be written; the error names `path`.
///
/// # Example
/// ```no_run
/// use meta_train::report::plot::{eval_figure, StepSeries};
/// let series = vec![StepSeries {
///     label: "K=10".into(),
///     steps: vec![0, 1, 5, 10],
///     mean: vec![3.0, 0.9, 0.4, 0.3],
///     ci95: vec![0.2, 0.08, 0.04, 0.03],
/// }];
/// eval_figure("run/eval.png".as_ref(), &series, &[])?;
/// # Ok::<(), anyhow::Error>(())
/// ```
pub fn eval_figure(path: &Path, series: &[StepSeries], tasks: &[TaskPanel]) -> Result<()> {
    render(path, EVAL_FIGURE_SIZE, "evaluation figure", |root| {
        draw_eval_figure(root, series, tasks).map_err(|e| e.to_string())
    })
}

// ---------------------------------------------------------------------------------------------
// Drawing (generic over the backend so it can also be exercised in memory).
// ---------------------------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;

    const PNG_SIG: [u8; 8] = [0x89, b'P', b'N', b'G', b'\r', b'\n', 0x1a, b'\n'];

    /// Asserts `path` is a PNG and returns its (width, height) from the IHDR chunk.
    fn png_size(path: &Path) -> (u32, u32) {
        let bytes = std::fs::read(path).expect("PNG written");
        assert!(bytes.len() > 24, "PNG too short");
        assert_eq!(bytes[..8], PNG_SIG, "not a PNG");
        assert_eq!(&bytes[12..16], b"IHDR");
        let w = u32::from_be_bytes(bytes[16..20].try_into().unwrap());
        let h = u32::from_be_bytes(bytes[20..24].try_into().unwrap());
        (w, h)
    }

    /// Where test images go: `PLOT_TEST_OUT` (to keep them for inspection) or a temp dir.
    fn out_dir() -> (Option<tempfile::TempDir>, std::path::PathBuf) {
        match std::env::var_os("PLOT_TEST_OUT") {
            Some(d) => {
                std::fs::create_dir_all(&d).unwrap();
                (None, d.into())
            }
            None => {
                let t = tempfile::tempdir().unwrap();
                let p = t.path().to_path_buf();
                (Some(t), p)
            }
        }
    }

    fn sine(amp: f32, phase: f32, x: f32) -> f32 {
        amp * (x - phase).sin()
    }

    fn demo_task(i: usize) -> TaskPanel {
        let amp = 1.0 + i as f32 * 1.5;
        let phase = 0.7 * i as f32;
        let xs: Vec<f32> = (0..=200).map(|j| -5.0 + 0.05 * j as f32).collect();
        let support = [-4.1f32, -2.7, -0.9, 0.4, 1.6, 2.2, 3.3, 4.6]
            .iter()
            .take(5 + i)
            .map(|&x| (x, sine(amp, phase, x)))
            .collect();
        TaskPanel {
            title: format!("held-out task {i}: A = {amp:.2}, φ = {phase:.2}, K = 5"),
            truth: xs.iter().map(|&x| (x, sine(amp, phase, x))).collect(),
            support,
            predictions: vec![
                (
                    "pre-update".into(),
                    xs.iter().map(|&x| (x, 0.3 * (x * 0.8).sin())).collect(),
                ),
                (
                    "after 1 step".into(),
                    xs.iter()
                        .map(|&x| (x, 0.7 * sine(amp, phase + 0.3, x)))
                        .collect(),
                ),
                (
                    "after 10 steps".into(),
                    xs.iter()
                        .map(|&x| (x, 0.97 * sine(amp, phase + 0.05, x)))
                        .collect(),
                ),
            ],
        }
    }

    fn demo_series() -> Vec<StepSeries> {
        [(5u16, 1.0f64), (10, 0.6), (20, 0.4)]
            .iter()
            .map(|&(k, f)| StepSeries {
                label: format!("K={k}"),
                steps: vec![0, 1, 5, 10],
                mean: vec![3.2, 1.4 * f, 0.7 * f, 0.5 * f],
                ci95: vec![0.25, 0.12 * f, 0.06 * f, 0.05 * f],
            })
            .collect()
    }

    #[test]
    fn learning_curve_writes_png() {
        let (_guard, dir) = out_dir();
        let path = dir.join("learning_curve.png");
        let points: Vec<CurvePoint> = (0..2000u64)
            .map(|i| {
                let base = 3.5 / (1.0 + i as f32 / 80.0) + 0.05;
                let noise = 1.0 + 0.4 * ((i as f32 * 12.9898).sin() * 43758.547).fract();
                CurvePoint {
                    iteration: i * 5,
                    meta_loss: base * noise,
                }
            })
            .collect();
        learning_curve(&path, "MAML, sinusoid regression, K=10", &points).unwrap();
        assert_eq!(png_size(&path), LEARNING_CURVE_SIZE);
    }

    #[test]
    fn eval_figure_writes_png() {
        let (_guard, dir) = out_dir();
        let path = dir.join("eval_figure.png");
        let tasks: Vec<TaskPanel> = (0..3).map(demo_task).collect();
        eval_figure(&path, &demo_series(), &tasks).unwrap();
        assert_eq!(png_size(&path), EVAL_FIGURE_SIZE);
    }

    #[test]
    fn eval_figure_single_task_and_extra_tasks() {
        let (_guard, dir) = out_dir();
        let one = dir.join("eval_one_task.png");
        eval_figure(&one, &demo_series()[..1], &[demo_task(0)]).unwrap();
        assert_eq!(png_size(&one), EVAL_FIGURE_SIZE);
        let many = dir.join("eval_many_tasks.png");
        let tasks: Vec<TaskPanel> = (0..5).map(demo_task).collect();
        eval_figure(&many, &demo_series(), &tasks).unwrap();
        assert_eq!(png_size(&many), EVAL_FIGURE_SIZE);
    }

    #[test]
    fn edge_cases_do_not_panic() {
        let (_guard, dir) = out_dir();

        // Empty inputs: empty charts.
        let p = dir.join("lc_empty.png");
        learning_curve(&p, "", &[]).unwrap();
        assert_eq!(png_size(&p), LEARNING_CURVE_SIZE);
        let p = dir.join("eval_empty.png");
        eval_figure(&p, &[], &[]).unwrap();
        assert_eq!(png_size(&p), EVAL_FIGURE_SIZE);

        // Non-finite and non-positive losses, a single point, a constant curve.
        let weird = [
            CurvePoint {
                iteration: 0,
                meta_loss: f32::NAN,
            },
            CurvePoint {
                iteration: 1,
                meta_loss: 0.0,
            },
            CurvePoint {
                iteration: 2,
                meta_loss: -1.0,
            },
            CurvePoint {
                iteration: 3,
                meta_loss: f32::INFINITY,
            },
            CurvePoint {
                iteration: 4,
                meta_loss: 0.5,
            },
        ];
        let p = dir.join("lc_weird.png");
        learning_curve(&p, "weird", &weird).unwrap();
        assert_eq!(png_size(&p), LEARNING_CURVE_SIZE);
        for (name, pts) in [
            (
                "lc_nan_only.png",
                vec![CurvePoint {
                    iteration: 7,
                    meta_loss: f32::NAN,
                }],
            ),
            (
                "lc_single.png",
                vec![CurvePoint {
                    iteration: 7,
                    meta_loss: 0.3,
                }],
            ),
            (
                "lc_const.png",
                (0..50)
                    .map(|i| CurvePoint {
                        iteration: i,
                        meta_loss: 1.0,
                    })
                    .collect(),
            ),
        ] {
            let p = dir.join(name);
            learning_curve(&p, name, &pts).unwrap();
            assert_eq!(png_size(&p), LEARNING_CURVE_SIZE);
        }

        // NaN/inf MSE, mismatched lengths, empty series, degenerate task panels.
        let series = vec![
            StepSeries {
                label: "NaN".into(),
                steps: vec![0, 1, 5, 10],
                mean: vec![f64::NAN, 1.0, f64::INFINITY, 0.5],
                ci95: vec![0.1, f64::NAN],
            },
            StepSeries {
                label: "huge, CI wider than mean".into(),
                steps: vec![0, 1, 2],
                mean: vec![1e30, 2.0, 1.0],
                ci95: vec![5e30, -3.0, 0.0],
            },
            StepSeries {
                label: "empty".into(),
                steps: vec![],
                mean: vec![],
                ci95: vec![],
            },
            StepSeries {
                label: "all NaN".into(),
                steps: vec![0, 1],
                mean: vec![f64::NAN, f64::NEG_INFINITY],
                ci95: vec![f64::INFINITY, 0.0],
            },
        ];
        let tasks = vec![
            TaskPanel {
                title: String::new(),
                truth: vec![],
                support: vec![],
                predictions: vec![],
            },
            TaskPanel {
                title: "NaN task".into(),
                truth: vec![(0.0, f32::NAN), (1.0, 1.0), (f32::INFINITY, 2.0)],
                support: vec![(0.5, 0.5)],
                predictions: vec![("nan".into(), vec![(f32::NAN, f32::NAN)])],
            },
        ];
        let p = dir.join("eval_weird.png");
        eval_figure(&p, &series, &tasks).unwrap();
        assert_eq!(png_size(&p), EVAL_FIGURE_SIZE);
        let p = dir.join("eval_all_nan.png");
        eval_figure(&p, &series[2..], &tasks[..1]).unwrap();
        assert_eq!(png_size(&p), EVAL_FIGURE_SIZE);
    }

    #[test]
    fn errors_mention_the_path() {
        let (_guard, dir) = out_dir();
        let bad = dir.join("no_such_dir").join("curve.png");
        let err = learning_curve(&bad, "t", &[]).unwrap_err();
        assert!(err.to_string().contains("no_such_dir"), "{err:#}");
        let err = eval_figure(&bad, &[], &[]).unwrap_err();
        assert!(err.to_string().contains("no_such_dir"), "{err:#}");
        let not_png = dir.join("curve.txt");
        let err = learning_curve(&not_png, "t", &[]).unwrap_err();
        assert!(err.to_string().contains("curve.txt"), "{err:#}");
    }
}
