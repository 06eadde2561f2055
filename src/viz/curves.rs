//! Line plots of plain series (training curves: one PNG per monitored
//! quantity; the caller writes the numbers beside them).
//!
//! Each plot has a title and labelled axes, drawn with the DejaVu Sans Mono
//! font shipped in `assets/fonts` (so no system font is needed).

use std::path::{Path, PathBuf};

use plotters::prelude::*;
// The trait behind `filled` / `stroke_width`; `Color` here names a line colour.
use plotters::style::Color as _;

use crate::error::{Error, Result};

/// Points of one line and its colour.
type Series = (Vec<(f64, f64)>, RGBColor);

pub(super) const FONT: &str = "ebmkit-sans";
static FONT_BYTES: &[u8] = include_bytes!("../../assets/fonts/DejaVuSansMono.ttf");

pub(super) fn register_font() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // The bytes are compiled in and parsed in tests; a failure here
        // would only drop the labels.
        let _ = plotters::style::register_font(FONT, FontStyle::Normal, FONT_BYTES);
    });
}

fn plot(path: &Path, title: &str, y_desc: &str, series: &[Series]) -> Result<()> {
    plot_xy(path, title, ("epoch", y_desc), series)
}

fn plot_xy(
    path: &Path,
    title: &str,
    (x_desc, y_desc): (&str, &str),
    series: &[Series],
) -> Result<()> {
    register_font();
    let pts: Vec<&(f64, f64)> = series
        .iter()
        .flat_map(|(s, _)| s.iter())
        .filter(|p| p.1.is_finite())
        .collect();
    if pts.is_empty() {
        return Ok(());
    }
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for p in &pts {
        x0 = x0.min(p.0);
        x1 = x1.max(p.0);
        y0 = y0.min(p.1);
        y1 = y1.max(p.1);
    }
    if x1 <= x0 {
        x1 = x0 + 1.0;
    }
    if y1 <= y0 {
        y1 = y0 + 1.0;
    }
    let pad = 0.05 * (y1 - y0);
    let err = |e: String| Error::io(path, std::io::Error::other(e));
    // Drawn in memory and written by write_png, which reports a failed
    // write (plotters' own file path loses it).
    let size = (640u32, 400u32);
    let mut pixels = vec![0u8; 640 * 400 * 3];
    {
        let root = BitMapBackend::with_buffer(&mut pixels, size).into_drawing_area();
        root.fill(&WHITE).map_err(|e| err(e.to_string()))?;
        let mut chart = ChartBuilder::on(&root)
            .margin(12)
            .caption(title, (FONT, 18))
            .x_label_area_size(40)
            .y_label_area_size(70)
            .build_cartesian_2d(x0..x1, (y0 - pad)..(y1 + pad))
            .map_err(|e| err(e.to_string()))?;
        chart
            .configure_mesh()
            .x_desc(x_desc)
            .y_desc(y_desc)
            .label_style((FONT, 13))
            .axis_desc_style((FONT, 14))
            .draw()
            .map_err(|e| err(e.to_string()))?;
        for (s, color) in series {
            let s: Vec<(f64, f64)> = s.iter().cloned().filter(|p| p.1.is_finite()).collect();
            chart
                .draw_series(LineSeries::new(s.clone(), color.stroke_width(2)))
                .map_err(|e| err(e.to_string()))?;
            chart
                .draw_series(s.iter().map(|p| Circle::new(*p, 3, color.filled())))
                .map_err(|e| err(e.to_string()))?;
        }
        root.present().map_err(|e| err(e.to_string()))?;
    }
    super::grid::write_png(path, &pixels, size, image::ExtendedColorType::Rgb8)
}

/// A line's colour.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Color {
    Blue,
    Red,
    Green,
    Black,
}

impl Color {
    fn rgb(self) -> RGBColor {
        match self {
            Color::Blue => RGBColor(30, 90, 200),
            Color::Red => RGBColor(200, 40, 40),
            Color::Green => RGBColor(40, 150, 60),
            Color::Black => RGBColor(20, 20, 20),
        }
    }
}

/// One line of a plot: (x, y) points, non-finite values skipped.
pub struct Line {
    pub points: Vec<(f64, f64)>,
    pub color: Color,
}

/// One plot, written as `curve-<name>.png` (x axis: epoch).
pub struct Plot {
    pub name: String,
    pub title: String,
    pub y_desc: String,
    pub lines: Vec<Line>,
}

/// Writes every plot that has a point into `dir`; returns the files written.
pub fn save_plots(dir: &Path, plots: &[Plot]) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for p in plots {
        if p.lines.iter().all(|l| l.points.is_empty()) {
            continue;
        }
        let series: Vec<Series> = p
            .lines
            .iter()
            .map(|l| (l.points.clone(), l.color.rgb()))
            .collect();
        let path = dir.join(format!("curve-{}.png", p.name));
        plot(&path, &p.title, &p.y_desc, &series)?;
        out.push(path);
    }
    Ok(out)
}

/// Writes one plot of `lines` against any x axis (not epochs) to `path`.
pub fn save_xy_plot(
    path: &Path,
    title: &str,
    (x_desc, y_desc): (&str, &str),
    lines: &[Line],
) -> Result<()> {
    let series: Vec<Series> = lines
        .iter()
        .map(|l| (l.points.clone(), l.color.rgb()))
        .collect();
    plot_xy(path, title, (x_desc, y_desc), &series)
}
