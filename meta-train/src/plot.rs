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

use std::ops::Range;
use std::path::Path;
use std::sync::OnceLock;

use anyhow::{anyhow, bail, Result};
use plotters::coord::{CoordTranslate, Shift};
use plotters::element::ComposedElement;
use plotters::prelude::*;
use plotters::style::register_font;

/// One point of a learning curve.
///
/// ```
/// use meta_train::plot::CurvePoint;
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
/// use meta_train::plot::StepSeries;
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
/// use meta_train::plot::TaskPanel;
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

/// Smallest value ever placed on the log-scale axis (the clamp for losses <= 0 when no positive
/// loss exists to scale from).
const LOG_FLOOR: f64 = 1e-12;

const FONT: &str = "sans-serif";
const CAPTION_SIZE: u32 = 26;
const AXIS_DESC_SIZE: u32 = 20;
const TICK_SIZE: u32 = 16;
const LEGEND_SIZE: u32 = 17;

/// Colour-blind-friendly categorical palette (Tableau 10).
const PALETTE: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
];
const TRUTH_COLOR: RGBColor = RGBColor(200, 30, 30);
const SUPPORT_COLOR: RGBColor = RGBColor(60, 60, 60);
/// Prediction colours for task panels (truth is red, so start away from red).
const PRED_PALETTE: [RGBColor; 5] = [
    RGBColor(44, 160, 44),
    RGBColor(31, 119, 180),
    RGBColor(148, 103, 189),
    RGBColor(255, 127, 14),
    RGBColor(140, 86, 75),
];
const GRID_LIGHT: RGBColor = RGBColor(235, 235, 235);
const GRID_BOLD: RGBColor = RGBColor(205, 205, 205);

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
/// use meta_train::plot::{learning_curve, CurvePoint};
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
/// use meta_train::plot::{eval_figure, StepSeries};
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

fn caption_font() -> TextStyle<'static> {
    TextStyle::from((FONT, CAPTION_SIZE).into_font())
}

fn axis_font() -> TextStyle<'static> {
    TextStyle::from((FONT, AXIS_DESC_SIZE).into_font())
}

fn tick_font() -> TextStyle<'static> {
    TextStyle::from((FONT, TICK_SIZE).into_font())
}

fn legend_font() -> TextStyle<'static> {
    TextStyle::from((FONT, LEGEND_SIZE).into_font())
}

/// Writes a grey "no data" note in the middle of a chart's plotting area.
fn no_data_note<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>) -> DrawResult<(), DB> {
    let (w, h) = area.dim_in_pixel();
    let style = (FONT, 24).into_font().color(&RGBColor(130, 130, 130)).pos(
        plotters::style::text_anchor::Pos::new(
            plotters::style::text_anchor::HPos::Center,
            plotters::style::text_anchor::VPos::Center,
        ),
    );
    area.draw(&Text::new("no data", (w as i32 / 2, h as i32 / 2), style))
}

/// Range covering `lo..hi` with `frac` padding on both sides; degenerate ranges are widened.
fn padded(lo: f64, hi: f64, frac: f64) -> Range<f64> {
    if !(lo.is_finite() && hi.is_finite()) || lo > hi {
        return 0.0..1.0;
    }
    let span = hi - lo;
    if span <= f64::EPSILON * lo.abs().max(1.0) {
        let d = (lo.abs() * 0.1).max(0.5);
        return (lo - d)..(hi + d);
    }
    (lo - span * frac)..(hi + span * frac)
}

/// Min and max of the finite values, if any.
fn finite_bounds(values: impl IntoIterator<Item = f64>) -> Option<(f64, f64)> {
    values
        .into_iter()
        .filter(|v| v.is_finite())
        .fold(None, |acc, v| match acc {
            None => Some((v, v)),
            Some((lo, hi)) => Some((lo.min(v), hi.max(v))),
        })
}

/// Tick label for a log axis: plain decimal for moderate magnitudes, scientific otherwise.
fn log_tick_label(v: &f64) -> String {
    let v = *v;
    if !(1e-3..1e4).contains(&v.abs()) {
        return format!("{v:.0e}");
    }
    trim_float(v, 4)
}

/// Formats `v` with up to `sig` significant digits and no trailing zeros.
fn trim_float(v: f64, sig: usize) -> String {
    if v == 0.0 {
        return "0".to_string();
    }
    if !(1e-4..1e6).contains(&v.abs()) {
        return format!("{v:.1e}");
    }
    let mag = v.abs().log10().floor() as i32;
    let decimals = (sig as i32 - 1 - mag).clamp(0, 12) as usize;
    let s = format!("{v:.decimals$}");
    let s = if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s.as_str()
    };
    // Rounding can leave a negative zero (e.g. a tick at -1e-17): print it as "0".
    if s == "-0" {
        "0".to_string()
    } else {
        s.to_string()
    }
}

/// Tick label on a linear axis spanning `span`: 3 significant digits, and ticks that are zero up
/// to rounding noise (e.g. -2.2e-16) print as "0".
fn axis_label(v: f64, span: f64) -> String {
    if v.abs() <= span.abs() * 1e-9 {
        "0".to_string()
    } else {
        trim_float(v, 3)
    }
}

/// Tick label for an iteration axis: integers with k/M suffixes for large values.
fn iteration_label(v: &f64) -> String {
    let v = v.round();
    let a = v.abs();
    if a >= 1e6 {
        format!("{}M", trim_float(v / 1e6, 3))
    } else if a >= 1e4 {
        format!("{}k", trim_float(v / 1e3, 3))
    } else {
        format!("{v:.0}")
    }
}

/// Number of axis labels for an integer-valued axis: at most `max`, and never more than one per
/// integer, so rounded labels are never duplicated.
fn integer_ticks(range: &Range<f64>, max: usize) -> usize {
    let span = (range.end - range.start).max(0.0).floor() as usize;
    (span + 1).clamp(2, max)
}

/// Centred moving average in log space with a window of about 5% of the points (odd, ≥ 5).
fn smooth_log(ys: &[f64]) -> Vec<f64> {
    let n = ys.len();
    let half = (n / 40).max(2);
    let logs: Vec<f64> = ys.iter().map(|y| y.ln()).collect();
    let mut prefix = Vec::with_capacity(n + 1);
    prefix.push(0.0);
    for l in &logs {
        prefix.push(prefix.last().copied().unwrap_or(0.0) + l);
    }
    (0..n)
        .map(|i| {
            let a = i.saturating_sub(half);
            let b = (i + half + 1).min(n);
            ((prefix[b] - prefix[a]) / (b - a) as f64).exp()
        })
        .collect()
}

const LEGEND_MARGIN: u32 = 10;
/// Outer margin of each panel of the evaluation figure.
const PANEL_MARGIN: u32 = 18;
const LEGEND_AREA: u32 = 40;

/// Picks the plot corner whose legend box would cover the fewest data pixels.
///
/// `lines` are polylines in data coordinates (densified in pixel space so sparse lines count),
/// `labels` the legend entries. Ties prefer upper-right, upper-left, lower-right, lower-left.
fn legend_corner<DB, CT>(
    area: &DrawingArea<DB, CT>,
    lines: &[Vec<(f64, f64)>],
    labels: &[&str],
) -> SeriesLabelPosition
where
    DB: DrawingBackend,
    CT: CoordTranslate<From = (f64, f64)>,
{
    let font = legend_font();
    let text_w = labels
        .iter()
        .map(|l| font.font.box_size(l).map_or(0, |(w, _)| w as i32))
        .max()
        .unwrap_or(0);
    let line_h = (f64::from(LEGEND_SIZE) * 1.25).ceil() as i32;
    let (bw, bh) = (
        text_w + (LEGEND_AREA + 2 * LEGEND_MARGIN) as i32 + 8,
        labels.len() as i32 * line_h + 2 * LEGEND_MARGIN as i32 + 8,
    );
    let (xr, yr) = area.get_pixel_range();
    let (x0, x1, y0, y1) = (xr.start, xr.end, yr.start, yr.end);
    let corners = [
        (SeriesLabelPosition::UpperRight, (x1 - bw, y0)),
        (SeriesLabelPosition::UpperLeft, (x0, y0)),
        (SeriesLabelPosition::LowerRight, (x1 - bw, y1 - bh)),
        (SeriesLabelPosition::LowerLeft, (x0, y1 - bh)),
    ];
    let mut counts = [0usize; 4];
    let mut hit = |(px, py): (i32, i32)| {
        for (c, (_, (cx, cy))) in counts.iter_mut().zip(&corners) {
            if (*cx..cx + bw).contains(&px) && (*cy..cy + bh).contains(&py) {
                *c += 1;
            }
        }
    };
    for line in lines {
        let px: Vec<(i32, i32)> = line
            .iter()
            .filter(|p| p.0.is_finite() && p.1.is_finite())
            .map(|p| area.map_coordinate(p))
            .collect();
        if let [only] = px.as_slice() {
            hit(*only);
        }
        for w in px.windows(2) {
            let (a, b) = (w[0], w[1]);
            let dist = (b.0 - a.0).abs().max((b.1 - a.1).abs()).min(4000);
            let n = (dist / 3).max(1);
            for i in 0..n {
                let t = f64::from(i) / f64::from(n);
                hit((
                    a.0 + (f64::from(b.0 - a.0) * t) as i32,
                    a.1 + (f64::from(b.1 - a.1) * t) as i32,
                ));
            }
        }
        if let Some(&last) = px.last() {
            hit(last);
        }
    }
    let best = (0..4).min_by_key(|&i| (counts[i], i)).unwrap_or(0);
    match corners[best].0 {
        SeriesLabelPosition::UpperLeft => SeriesLabelPosition::UpperLeft,
        SeriesLabelPosition::LowerRight => SeriesLabelPosition::LowerRight,
        SeriesLabelPosition::LowerLeft => SeriesLabelPosition::LowerLeft,
        _ => SeriesLabelPosition::UpperRight,
    }
}

/// Draws the series legend at `position` in the common style.
fn draw_legend<'a, DB: DrawingBackend + 'a, CT: CoordTranslate>(
    chart: &mut ChartContext<'a, DB, CT>,
    position: SeriesLabelPosition,
) -> DrawResult<(), DB> {
    chart
        .configure_series_labels()
        .position(position)
        .label_font(legend_font())
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .margin(LEGEND_MARGIN)
        .legend_area_size(LEGEND_AREA)
        .draw()
}

fn draw_learning_curve<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    points: &[CurvePoint],
) -> DrawResult<(), DB> {
    // Losses <= 0 cannot go on a log axis: clamp them to a tenth of the smallest positive loss
    // (or LOG_FLOOR if there is none), so they show at the bottom without stretching the axis.
    let floor = points
        .iter()
        .map(|p| f64::from(p.meta_loss))
        .filter(|v| v.is_finite() && *v > 0.0)
        .fold(f64::INFINITY, f64::min);
    let floor = if floor.is_finite() {
        (floor / 10.0).max(LOG_FLOOR)
    } else {
        LOG_FLOOR
    };
    let mut pts: Vec<(f64, f64)> = points
        .iter()
        .filter(|p| p.meta_loss.is_finite())
        .map(|p| (p.iteration as f64, f64::from(p.meta_loss).max(floor)))
        .collect();
    pts.sort_by(|a, b| a.0.total_cmp(&b.0));

    let x_range = match finite_bounds(pts.iter().map(|p| p.0)) {
        Some((lo, hi)) if hi > lo => lo..hi,
        Some((lo, _)) => (lo - 1.0).max(0.0)..lo + 1.0,
        None => 0.0..1.0,
    };
    // Round the y range outward to whole decades so the log axis always has labelled ticks.
    let (ylo, yhi, decades) = match finite_bounds(pts.iter().map(|p| p.1)) {
        Some((lo, hi)) => {
            // 5% multiplicative headroom keeps data off the frame (e.g. a loss of exactly 1.0),
            // then round outward to whole decades.
            let lo_exp = (lo / 1.05).log10().floor();
            let hi_exp = (hi * 1.05).log10().ceil().max(lo_exp + 1.0);
            // Nudge outward so rounding in powf/log10 cannot drop the end decades' ticks.
            (
                10f64.powf(lo_exp) * 0.999,
                10f64.powf(hi_exp) * 1.001,
                hi_exp - lo_exp,
            )
        }
        None => (1e-2, 1e1, 3.0),
    };
    // Within a single decade plotters labels every multiple (0.1, 0.2, ..., 0.9, 1), which crowds
    // the top; keep only the 1-2-3-5 multiples there.
    let y_formatter = move |v: &f64| {
        let mantissa = *v / 10f64.powf(v.log10().floor());
        let keep = decades > 1.5
            || [1.0, 2.0, 3.0, 5.0, 10.0]
                .iter()
                .any(|m| (mantissa - m).abs() < 1e-6 * m);
        if keep {
            log_tick_label(v)
        } else {
            String::new()
        }
    };

    let title = if title.is_empty() {
        "learning curve"
    } else {
        title
    };
    let mut chart = ChartBuilder::on(root)
        .caption(title, caption_font())
        .margin(20)
        .x_label_area_size(55)
        .y_label_area_size(90)
        .build_cartesian_2d(x_range.clone(), (ylo..yhi).log_scale())?;

    chart
        .configure_mesh()
        .x_desc("meta-iteration")
        .y_desc("meta-loss (MSE)")
        .axis_desc_style(axis_font())
        .label_style(tick_font())
        .x_labels(integer_ticks(&x_range, 10))
        .y_labels(12)
        .x_label_formatter(&iteration_label)
        .y_label_formatter(&y_formatter)
        .light_line_style(GRID_LIGHT)
        .bold_line_style(GRID_BOLD)
        .draw()?;

    if pts.is_empty() {
        return no_data_note(&chart.plotting_area().strip_coord_spec());
    }

    let raw_color = PALETTE[0];
    let smooth = pts.len() >= 20;
    let mut lines = vec![pts.clone()];
    let mut labels = vec![if smooth {
        "meta-loss (raw)"
    } else {
        "meta-loss"
    }];
    let raw_style = if smooth {
        raw_color.mix(0.35).stroke_width(1)
    } else {
        raw_color.stroke_width(2)
    };
    chart
        .draw_series(LineSeries::new(pts.iter().copied(), raw_style))?
        .label(labels[0])
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], raw_style));
    if pts.len() == 1 {
        chart.draw_series(std::iter::once(Circle::new(pts[0], 5, raw_color.filled())))?;
    }

    if smooth {
        let ys: Vec<f64> = pts.iter().map(|p| p.1).collect();
        let sm: Vec<(f64, f64)> = pts
            .iter()
            .zip(smooth_log(&ys))
            .map(|(p, y)| (p.0, y))
            .collect();
        let style = PALETTE[1].stroke_width(3);
        lines.push(sm.clone());
        labels.push("moving average");
        chart
            .draw_series(LineSeries::new(sm, style))?
            .label("moving average")
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], style));
    }

    let pos = legend_corner(chart.plotting_area(), &lines, &labels);
    draw_legend(&mut chart, pos)
}

fn draw_eval_figure<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    series: &[StepSeries],
    tasks: &[TaskPanel],
) -> DrawResult<(), DB> {
    let tasks = &tasks[..tasks.len().min(MAX_TASK_PANELS)];
    let grid = match 1 + tasks.len() {
        1 => (1, 1),
        2 => (1, 2),
        _ => (2, 2),
    };
    let panels = root.split_evenly(grid);
    draw_step_panel(&panels[0], series)?;
    for (area, task) in panels[1..].iter().zip(tasks) {
        draw_task_panel(area, task)?;
    }
    Ok(())
}

/// A marker: filled polygon plus outline, in pixel offsets around a guest coordinate.
type MarkerElement<C, DB> = ComposedElement<C, DB, Polygon<(i32, i32)>, PathElement<(i32, i32)>>;

/// Marker shapes cycled through by series index.
#[derive(Clone, Copy)]
enum Marker {
    Circle,
    Triangle,
    Square,
    Diamond,
}

impl Marker {
    fn for_index(i: usize) -> Self {
        [Self::Circle, Self::Triangle, Self::Square, Self::Diamond][i % 4]
    }

    /// Marker outline in pixel offsets around the anchor, `size` ≈ radius.
    fn vertices(self, size: i32) -> Vec<(i32, i32)> {
        let s = f64::from(size);
        let poly = |n: usize, r: f64, rot: f64| -> Vec<(i32, i32)> {
            (0..n)
                .map(|i| {
                    let a = rot + std::f64::consts::TAU * i as f64 / n as f64;
                    ((r * a.cos()).round() as i32, (r * a.sin()).round() as i32)
                })
                .collect()
        };
        match self {
            Marker::Circle => poly(16, s, 0.0),
            // Point up (screen y grows downwards); slightly larger so areas look alike.
            Marker::Triangle => poly(3, s * 1.35, -std::f64::consts::FRAC_PI_2),
            Marker::Square => poly(4, s * 1.2, std::f64::consts::FRAC_PI_4),
            Marker::Diamond => poly(4, s * 1.35, 0.0),
        }
    }

    /// The marker (filled, with a darker outline) anchored at a guest coordinate.
    fn element<DB: DrawingBackend, C>(
        self,
        at: C,
        size: i32,
        color: RGBColor,
    ) -> MarkerElement<C, DB> {
        let verts = self.vertices(size);
        let mut outline = verts.clone();
        outline.push(verts[0]);
        let dark = RGBColor(color.0 / 2, color.1 / 2, color.2 / 2);
        EmptyElement::at(at)
            + Polygon::new(verts, color)
            + PathElement::new(outline, dark.stroke_width(1))
    }
}

/// One cleaned-up point of a [`StepSeries`].
#[derive(Clone, Copy)]
struct StepPoint {
    step: f64,
    mean: f64,
    /// Lower CI bound (clamped at 0 for a non-negative mean: an MSE cannot be negative).
    lo: f64,
    /// Upper CI bound.
    hi: f64,
}

impl StepPoint {
    fn has_ci(&self) -> bool {
        self.hi > self.lo
    }
}

/// The finite points of `s` (a missing or non-finite CI becomes a zero-width interval).
fn series_points(s: &StepSeries) -> Vec<StepPoint> {
    s.steps
        .iter()
        .zip(&s.mean)
        .enumerate()
        .filter(|(_, (_, m))| m.is_finite())
        .map(|(i, (&k, &m))| {
            let ci = s
                .ci95
                .get(i)
                .copied()
                .filter(|c| c.is_finite())
                .map_or(0.0, f64::abs);
            let lo = if m >= 0.0 { (m - ci).max(0.0) } else { m - ci };
            StepPoint {
                step: f64::from(k),
                mean: m,
                lo,
                hi: m + ci,
            }
        })
        .collect()
}

fn draw_step_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    series: &[StepSeries],
) -> DrawResult<(), DB> {
    let cleaned: Vec<Vec<StepPoint>> = series.iter().map(series_points).collect();
    let all = || cleaned.iter().flatten();

    let mut steps: Vec<f64> = all().map(|p| p.step).collect();
    steps.sort_by(f64::total_cmp);
    steps.dedup();
    let x_range = match (steps.first(), steps.last()) {
        (Some(&lo), Some(&hi)) => {
            let pad = ((hi - lo) * 0.05).max(0.3);
            (lo - pad)..(hi + pad)
        }
        _ => -0.5..10.5,
    };
    // One tick per integer step for short ranges; plotters picks round numbers beyond that.
    let x_labels = integer_ticks(&x_range, 12);
    let y_hi = finite_bounds(all().map(|p| p.hi)).map_or(1.0, |(_, hi)| hi);
    let y_lo = finite_bounds(all().map(|p| p.lo)).map_or(0.0, |(lo, _)| lo);
    // MSE is non-negative: anchor the axis at 0 unless the data says otherwise.
    let y_lo = y_lo.min(0.0);
    let y_hi = if y_hi > y_lo { y_hi } else { y_lo + 1.0 };
    let y_range = y_lo..(y_hi + (y_hi - y_lo) * 0.08);

    let y_span = y_range.end - y_range.start;
    let body = area
        .margin(PANEL_MARGIN, PANEL_MARGIN, PANEL_MARGIN, PANEL_MARGIN)
        .titled("MSE vs inner steps (mean, 95% CI)", caption_font())?;
    let mut chart = ChartBuilder::on(&body)
        .margin_top(6)
        .x_label_area_size(50)
        .y_label_area_size(75)
        .build_cartesian_2d(x_range, y_range)?;

    chart
        .configure_mesh()
        .x_desc("inner steps")
        .y_desc("MSE on target-test points")
        .axis_desc_style(axis_font())
        .label_style(tick_font())
        .x_labels(x_labels)
        .x_label_formatter(&|v| format!("{v:.0}"))
        .y_label_formatter(&|v| axis_label(*v, y_span))
        .y_labels(8)
        .light_line_style(GRID_LIGHT)
        .bold_line_style(GRID_BOLD)
        .draw()?;

    if cleaned.iter().all(|c| c.is_empty()) {
        return no_data_note(&chart.plotting_area().strip_coord_spec());
    }

    let mut lines: Vec<Vec<(f64, f64)>> = Vec::new();
    let mut labels: Vec<&str> = Vec::new();
    for (idx, (s, pts)) in series.iter().zip(&cleaned).enumerate() {
        if pts.is_empty() {
            continue;
        }
        labels.push(s.label.as_str());
        lines.push(pts.iter().map(|p| (p.step, p.mean)).collect());
        lines.push(pts.iter().map(|p| (p.step, p.hi)).collect());
        for p in pts.iter().filter(|p| p.has_ci()) {
            lines.push(vec![(p.step, p.lo), (p.step, p.hi)]);
        }
        let color = PALETTE[idx % PALETTE.len()];
        let marker = Marker::for_index(idx);

        // Shaded CI band.
        if pts.len() >= 2 && pts.iter().any(StepPoint::has_ci) {
            let mut band: Vec<(f64, f64)> = pts.iter().map(|p| (p.step, p.hi)).collect();
            band.extend(pts.iter().rev().map(|p| (p.step, p.lo)));
            chart.draw_series(std::iter::once(Polygon::new(
                band,
                color.mix(0.15).filled(),
            )))?;
        }
        // Error bars with caps (caps are drawn in pixel space so they keep a fixed width).
        chart.draw_series(pts.iter().filter(|p| p.has_ci()).map(|p| {
            PathElement::new(vec![(p.step, p.lo), (p.step, p.hi)], color.stroke_width(2))
        }))?;
        for p in pts.iter().filter(|p| p.has_ci()) {
            for y in [p.lo, p.hi] {
                chart.draw_series(std::iter::once(
                    EmptyElement::at((p.step, y))
                        + PathElement::new(vec![(-6, 0), (6, 0)], color.stroke_width(2)),
                ))?;
            }
        }
        // Mean line + markers.
        let line_style = color.stroke_width(3);
        chart
            .draw_series(LineSeries::new(
                pts.iter().map(|p| (p.step, p.mean)),
                line_style,
            ))?
            .label(s.label.as_str())
            .legend(move |(x, y)| {
                EmptyElement::at((x, y))
                    + PathElement::new(vec![(0, 0), (28, 0)], line_style)
                    + marker.element::<DB, (i32, i32)>((14, 0), 5, color)
            });
        chart.draw_series(
            pts.iter()
                .map(|p| marker.element::<DB, (f64, f64)>((p.step, p.mean), 5, color)),
        )?;
    }

    let pos = legend_corner(chart.plotting_area(), &lines, &labels);
    draw_legend(&mut chart, pos)
}

fn finite_pt(p: &&(f32, f32)) -> bool {
    p.0.is_finite() && p.1.is_finite()
}

fn to_f64(p: &(f32, f32)) -> (f64, f64) {
    (f64::from(p.0), f64::from(p.1))
}

/// How a legend entry's sample is drawn in a [`draw_legend_strip`].
#[derive(Clone, Copy)]
enum Swatch {
    Line(ShapeStyle),
    Dashed(ShapeStyle),
    Marker(Marker, RGBColor),
}

const SWATCH_W: i32 = 30;
const STRIP_GAP: i32 = 22;
const STRIP_PAD: i32 = 6;

/// Lays out legend entries in centred rows that fit `width`; returns rows of
/// `(entry index, x offset)` plus each row's total width.
fn strip_layout(width: i32, entries: &[(String, Swatch)]) -> Vec<(Vec<(usize, i32)>, i32)> {
    let font = legend_font();
    let mut rows: Vec<(Vec<(usize, i32)>, i32)> = Vec::new();
    let mut row: Vec<(usize, i32)> = Vec::new();
    let mut x = 0;
    for (i, (label, _)) in entries.iter().enumerate() {
        let text_w = font.font.box_size(label).map_or(0, |(w, _)| w as i32);
        let w = SWATCH_W + 8 + text_w;
        if !row.is_empty() && x + STRIP_GAP + w > width {
            rows.push((std::mem::take(&mut row), x));
            x = 0;
        }
        if !row.is_empty() {
            x += STRIP_GAP;
        }
        row.push((i, x));
        x += w;
    }
    if !row.is_empty() {
        rows.push((row, x));
    }
    rows
}

fn strip_row_height() -> i32 {
    (f64::from(LEGEND_SIZE) * 1.45).ceil() as i32
}

/// Draws a horizontal legend (wrapping into rows) at the top of `area`; returns the area below it.
fn draw_legend_strip<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    entries: &[(String, Swatch)],
) -> DrawResult<DrawingArea<DB, Shift>, DB> {
    if entries.is_empty() {
        return Ok(area.clone());
    }
    let (w, _) = area.dim_in_pixel();
    let rows = strip_layout(w as i32 - 2 * STRIP_PAD, entries);
    let row_h = strip_row_height();
    let strip_h = rows.len() as i32 * row_h + 2 * STRIP_PAD;
    let (strip, rest) = area.split_vertically(strip_h);
    let text_style = legend_font().pos(plotters::style::text_anchor::Pos::new(
        plotters::style::text_anchor::HPos::Left,
        plotters::style::text_anchor::VPos::Center,
    ));
    for (r, (row, row_w)) in rows.iter().enumerate() {
        let x0 = (w as i32 - row_w) / 2;
        let y = STRIP_PAD + r as i32 * row_h + row_h / 2;
        for &(i, dx) in row {
            let (label, swatch) = &entries[i];
            let x = x0 + dx;
            match *swatch {
                Swatch::Line(style) => {
                    strip.draw(&PathElement::new(vec![(x, y), (x + SWATCH_W, y)], style))?;
                }
                Swatch::Dashed(style) => {
                    strip.draw(&PathElement::new(vec![(x, y), (x + 11, y)], style))?;
                    strip.draw(&PathElement::new(
                        vec![(x + 19, y), (x + SWATCH_W, y)],
                        style,
                    ))?;
                }
                Swatch::Marker(marker, color) => {
                    strip.draw(&marker.element::<DB, (i32, i32)>(
                        (x + SWATCH_W / 2, y),
                        6,
                        color,
                    ))?;
                }
            }
            strip.draw(&Text::new(
                label.as_str(),
                (x + SWATCH_W + 8, y),
                text_style.clone(),
            ))?;
        }
    }
    Ok(rest)
}

fn draw_task_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    task: &TaskPanel,
) -> DrawResult<(), DB> {
    let all = || {
        task.truth
            .iter()
            .chain(&task.support)
            .chain(task.predictions.iter().flat_map(|(_, p)| p))
            .filter(finite_pt)
    };
    let x_range = finite_bounds(all().map(|p| f64::from(p.0)))
        .map_or(-5.0..5.0, |(lo, hi)| padded(lo, hi, 0.02));
    let y_range = finite_bounds(all().map(|p| f64::from(p.1)))
        .map_or(-1.0..1.0, |(lo, hi)| padded(lo, hi, 0.08));

    // Collect what will be drawn first, so the legend strip can be laid out above the chart.
    let truth: Vec<(f64, f64)> = task.truth.iter().filter(finite_pt).map(to_f64).collect();
    let support: Vec<(f64, f64)> = task.support.iter().filter(finite_pt).map(to_f64).collect();
    let mut entries: Vec<(String, Swatch)> = Vec::new();
    let truth_style = TRUTH_COLOR.stroke_width(3);
    if !truth.is_empty() {
        entries.push(("ground truth".into(), Swatch::Line(truth_style)));
    }
    let mut preds: Vec<(Vec<(f64, f64)>, Swatch)> = Vec::new();
    for (i, (label, pred)) in task.predictions.iter().enumerate() {
        let style = PRED_PALETTE[i % PRED_PALETTE.len()].stroke_width(2);
        let pts: Vec<(f64, f64)> = pred.iter().filter(finite_pt).map(to_f64).collect();
        if pts.is_empty() {
            continue;
        }
        // The first prediction (pre-update) is dashed, like the MAML paper's figure.
        let swatch = if i == 0 && task.predictions.len() > 1 {
            Swatch::Dashed(style)
        } else {
            Swatch::Line(style)
        };
        entries.push((label.clone(), swatch));
        preds.push((pts, swatch));
    }
    if !support.is_empty() {
        entries.push((
            format!("support points (K={})", support.len()),
            Swatch::Marker(Marker::Triangle, SUPPORT_COLOR),
        ));
    }

    let title = if task.title.is_empty() {
        "example task"
    } else {
        task.title.as_str()
    };
    let (x_span, y_span) = (x_range.end - x_range.start, y_range.end - y_range.start);
    let body = area
        .margin(PANEL_MARGIN, PANEL_MARGIN, PANEL_MARGIN, PANEL_MARGIN)
        .titled(title, caption_font())?;
    let body = draw_legend_strip(&body, &entries)?;
    let mut chart = ChartBuilder::on(&body)
        .margin_top(6)
        .x_label_area_size(50)
        .y_label_area_size(65)
        .build_cartesian_2d(x_range, y_range)?;

    chart
        .configure_mesh()
        .x_desc("x")
        .y_desc("y")
        .axis_desc_style(axis_font())
        .label_style(tick_font())
        .x_label_formatter(&|v| axis_label(*v, x_span))
        .y_label_formatter(&|v| axis_label(*v, y_span))
        .light_line_style(GRID_LIGHT)
        .bold_line_style(GRID_BOLD)
        .draw()?;

    if all().next().is_none() {
        return no_data_note(&chart.plotting_area().strip_coord_spec());
    }

    // Draw order: truth underneath, then predictions, support points on top.
    if truth.len() == 1 {
        chart.draw_series(std::iter::once(Circle::new(
            truth[0],
            4,
            TRUTH_COLOR.filled(),
        )))?;
    }
    chart.draw_series(LineSeries::new(truth, truth_style))?;
    for (pts, swatch) in preds {
        match swatch {
            Swatch::Dashed(style) => {
                chart.draw_series(DashedLineSeries::new(pts, 10, 6, style))?;
            }
            Swatch::Line(style) => {
                if pts.len() == 1 {
                    chart.draw_series(std::iter::once(Circle::new(
                        pts[0],
                        4,
                        style.color.filled(),
                    )))?;
                }
                chart.draw_series(LineSeries::new(pts, style))?;
            }
            Swatch::Marker(..) => {}
        }
    }
    chart.draw_series(
        support
            .into_iter()
            .map(|p| Marker::Triangle.element::<DB, (f64, f64)>(p, 7, SUPPORT_COLOR)),
    )?;
    Ok(())
}

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
    fn tick_labels_are_tidy() {
        assert_eq!(axis_label(-2.2e-16, 2.0), "0");
        assert_eq!(axis_label(0.25, 2.0), "0.25");
        assert_eq!(trim_float(-1e-17, 3), "-1.0e-17");
        assert_eq!(trim_float(1e30, 3), "1.0e30");
        assert_eq!(trim_float(2.5, 3), "2.5");
        assert_eq!(log_tick_label(&1e-5), "1e-5");
        assert_eq!(log_tick_label(&0.01), "0.01");
        assert_eq!(iteration_label(&25000.0), "25k");
        assert_eq!(iteration_label(&900.0), "900");
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
