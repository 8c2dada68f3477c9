//! Legends: the corner box that covers the fewest data pixels, and the centred strip.

use super::style::{legend_font, Marker, LEGEND_SIZE};
use plotters::coord::{CoordTranslate, Shift};
use plotters::prelude::*;

pub(super) const LEGEND_MARGIN: u32 = 10;
pub(super) const LEGEND_AREA: u32 = 40;

/// Picks the plot corner whose legend box would cover the fewest data pixels.
///
/// `lines` are polylines in data coordinates (densified in pixel space so sparse lines count),
/// `labels` the legend entries. Ties prefer upper-right, upper-left, lower-right, lower-left.
pub(super) fn legend_corner<DB, CT>(
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
pub(super) fn draw_legend<'a, DB: DrawingBackend + 'a, CT: CoordTranslate>(
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

/// How a legend entry's sample is drawn in a [`draw_legend_strip`].
#[derive(Clone, Copy)]
pub(super) enum Swatch {
    Line(ShapeStyle),
    Dashed(ShapeStyle),
    Marker(Marker, RGBColor),
}

pub(super) const SWATCH_W: i32 = 30;
pub(super) const STRIP_GAP: i32 = 22;
pub(super) const STRIP_PAD: i32 = 6;

/// Lays out legend entries in centred rows that fit `width`; returns rows of
/// `(entry index, x offset)` plus each row's total width.
pub(super) fn strip_layout(
    width: i32,
    entries: &[(String, Swatch)],
) -> Vec<(Vec<(usize, i32)>, i32)> {
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

pub(super) fn strip_row_height() -> i32 {
    (f64::from(LEGEND_SIZE) * 1.45).ceil() as i32
}

/// Draws a horizontal legend (wrapping into rows) at the top of `area`; returns the area below it.
pub(super) fn draw_legend_strip<DB: DrawingBackend>(
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
