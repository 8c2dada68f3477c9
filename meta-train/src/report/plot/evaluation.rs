//! The evaluation figure: error against inner steps with its interval, and example tasks
//! before and after adaptation.

use super::axes::{axis_label, finite_bounds, integer_ticks, padded};
use super::legend::{draw_legend, draw_legend_strip, legend_corner, Swatch};
use super::style::{
    axis_font, caption_font, no_data_note, tick_font, Marker, GRID_BOLD, GRID_LIGHT, PALETTE,
    PRED_PALETTE, SUPPORT_COLOR, TRUTH_COLOR,
};
use super::{StepSeries, TaskPanel, MAX_TASK_PANELS};
use plotters::coord::Shift;
use plotters::prelude::*;

/// Outer margin of each panel of the evaluation figure.
pub(super) const PANEL_MARGIN: u32 = 18;
pub(super) fn draw_eval_figure<DB: DrawingBackend>(
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

/// One cleaned-up point of a [`StepSeries`].
#[derive(Clone, Copy)]
pub(super) struct StepPoint {
    pub(super) step: f64,
    pub(super) mean: f64,
    /// Lower CI bound (clamped at 0 for a non-negative mean: an MSE cannot be negative).
    pub(super) lo: f64,
    /// Upper CI bound.
    pub(super) hi: f64,
}

impl StepPoint {
    pub(super) fn has_ci(&self) -> bool {
        self.hi > self.lo
    }
}

/// The finite points of `s` (a missing or non-finite CI becomes a zero-width interval).
pub(super) fn series_points(s: &StepSeries) -> Vec<StepPoint> {
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

pub(super) fn draw_step_panel<DB: DrawingBackend>(
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

pub(super) fn finite_pt(p: &&(f32, f32)) -> bool {
    p.0.is_finite() && p.1.is_finite()
}

pub(super) fn to_f64(p: &(f32, f32)) -> (f64, f64) {
    (f64::from(p.0), f64::from(p.1))
}

pub(super) fn draw_task_panel<DB: DrawingBackend>(
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
