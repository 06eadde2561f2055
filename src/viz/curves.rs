//! Training curves: one PNG per monitored quantity, plus `curves.csv`.
//!
//! Each plot has a title and labelled axes, drawn with the DejaVu Sans Mono
//! font shipped in `assets/fonts` (so no system font is needed). In
//! `curve-free_energy.png` the training subset is blue and the held-out set
//! red.

use std::path::{Path, PathBuf};

use plotters::prelude::*;

use crate::error::{Error, Result};
use crate::train::History;

/// Points of one line and its colour.
type Series = (Vec<(f64, f64)>, RGBColor);

const FONT: &str = "ebmkit-sans";
static FONT_BYTES: &[u8] = include_bytes!("../../assets/fonts/DejaVuSansMono.ttf");

fn register_font() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // The bytes are compiled in and parsed in tests; a failure here
        // would only drop the labels.
        let _ = plotters::style::register_font(FONT, FontStyle::Normal, FONT_BYTES);
    });
}

fn plot(path: &Path, title: &str, y_desc: &str, series: &[Series]) -> Result<()> {
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
    let root = BitMapBackend::new(path, (640, 400)).into_drawing_area();
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
        .x_desc("epoch")
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
    Ok(())
}

/// Writes the curves of `h` into `dir`; returns the files written.
pub fn save_curves(dir: &Path, h: &History) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let e = |f: &dyn Fn(&crate::train::EpochRecord) -> Option<f64>| -> Vec<(f64, f64)> {
        h.epochs
            .iter()
            .filter_map(|r| f(r).map(|y| (r.epoch as f64, y)))
            .collect()
    };
    let blue = RGBColor(30, 90, 200);
    let red = RGBColor(200, 40, 40);
    let plots: Vec<(&str, &str, &str, Vec<Series>)> = vec![
        (
            "recon_error",
            "reconstruction error",
            "squared error per example",
            vec![(e(&|r| Some(r.recon_error)), blue)],
        ),
        (
            "pseudo_ll",
            "pseudo-log-likelihood (training subset)",
            "nats per example",
            vec![(e(&|r| r.pseudo_ll), blue)],
        ),
        (
            "fe_gap",
            "free-energy gap: held-out - train",
            "nats",
            vec![(e(&|r| r.fe_gap), blue)],
        ),
        (
            "free_energy",
            "mean free energy: train (blue), held-out (red)",
            "F(v)",
            vec![
                (e(&|r| Some(r.fe_train)), blue),
                (e(&|r| r.fe_heldout), red),
            ],
        ),
    ];
    for (name, title, y_desc, series) in plots {
        if series.iter().all(|(s, _)| s.is_empty()) {
            continue;
        }
        let p = dir.join(format!("curve-{name}.png"));
        plot(&p, title, y_desc, &series)?;
        out.push(p);
    }
    let mut csv =
        String::from("epoch,lr,seconds,recon_error,pseudo_ll,fe_train,fe_heldout,fe_gap\n");
    let o = |x: Option<f64>| x.map(|v| v.to_string()).unwrap_or_default();
    for r in &h.epochs {
        csv.push_str(&format!(
            "{},{},{},{},{},{},{},{}\n",
            r.epoch,
            r.lr,
            r.seconds,
            r.recon_error,
            o(r.pseudo_ll),
            r.fe_train,
            o(r.fe_heldout),
            o(r.fe_gap)
        ));
    }
    let p = dir.join("curves.csv");
    std::fs::write(&p, csv).map_err(|e| Error::io(&p, e))?;
    out.push(p);
    Ok(out)
}
