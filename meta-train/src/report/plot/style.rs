//! The figures' look: fonts, sizes, colours, grid shades and series markers.

use plotters::coord::Shift;
use plotters::element::ComposedElement;
use plotters::prelude::*;

pub(super) const FONT: &str = "sans-serif";
pub(super) const CAPTION_SIZE: u32 = 26;
pub(super) const AXIS_DESC_SIZE: u32 = 20;
pub(super) const TICK_SIZE: u32 = 16;
pub(super) const LEGEND_SIZE: u32 = 17;

/// Colour-blind-friendly categorical palette (Tableau 10).
pub(super) const PALETTE: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
];
pub(super) const TRUTH_COLOR: RGBColor = RGBColor(200, 30, 30);
pub(super) const SUPPORT_COLOR: RGBColor = RGBColor(60, 60, 60);
/// Prediction colours for task panels (truth is red, so start away from red).
pub(super) const PRED_PALETTE: [RGBColor; 5] = [
    RGBColor(44, 160, 44),
    RGBColor(31, 119, 180),
    RGBColor(148, 103, 189),
    RGBColor(255, 127, 14),
    RGBColor(140, 86, 75),
];
pub(super) const GRID_LIGHT: RGBColor = RGBColor(235, 235, 235);
pub(super) const GRID_BOLD: RGBColor = RGBColor(205, 205, 205);

pub(super) fn caption_font() -> TextStyle<'static> {
    TextStyle::from((FONT, CAPTION_SIZE).into_font())
}

pub(super) fn axis_font() -> TextStyle<'static> {
    TextStyle::from((FONT, AXIS_DESC_SIZE).into_font())
}

pub(super) fn tick_font() -> TextStyle<'static> {
    TextStyle::from((FONT, TICK_SIZE).into_font())
}

pub(super) fn legend_font() -> TextStyle<'static> {
    TextStyle::from((FONT, LEGEND_SIZE).into_font())
}

/// Writes a grey "no data" note in the middle of a chart's plotting area.
pub(super) fn no_data_note<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
) -> DrawResult<(), DB> {
    let (w, h) = area.dim_in_pixel();
    let style = (FONT, 24).into_font().color(&RGBColor(130, 130, 130)).pos(
        plotters::style::text_anchor::Pos::new(
            plotters::style::text_anchor::HPos::Center,
            plotters::style::text_anchor::VPos::Center,
        ),
    );
    area.draw(&Text::new("no data", (w as i32 / 2, h as i32 / 2), style))
}

/// A marker: filled polygon plus outline, in pixel offsets around a guest coordinate.
pub(super) type MarkerElement<C, DB> =
    ComposedElement<C, DB, Polygon<(i32, i32)>, PathElement<(i32, i32)>>;

/// Marker shapes cycled through by series index.
#[derive(Clone, Copy)]
pub(super) enum Marker {
    Circle,
    Triangle,
    Square,
    Diamond,
}

impl Marker {
    pub(super) fn for_index(i: usize) -> Self {
        [Self::Circle, Self::Triangle, Self::Square, Self::Diamond][i % 4]
    }

    /// Marker outline in pixel offsets around the anchor, `size` ≈ radius.
    pub(super) fn vertices(self, size: i32) -> Vec<(i32, i32)> {
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
    pub(super) fn element<DB: DrawingBackend, C>(
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
