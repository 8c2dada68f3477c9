//! The learning curve: meta-loss against meta-iteration, raw and smoothed, on a log axis.

use super::axes::{
    finite_bounds, integer_ticks, iteration_label, log_tick_label, smooth_log, LOG_FLOOR,
};
use super::legend::{draw_legend, legend_corner};
use super::style::{
    axis_font, caption_font, no_data_note, tick_font, GRID_BOLD, GRID_LIGHT, PALETTE,
};
use super::CurvePoint;
use plotters::coord::Shift;
use plotters::prelude::*;

pub(super) fn draw_learning_curve<DB: DrawingBackend>(
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
