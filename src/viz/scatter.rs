//! Scatter plots of 2-D points coloured by class: the codes of a deep
//! auto-encoder with a 2-unit bottleneck, coloured by digit (Hinton &
//! Salakhutdinov 2006, Fig. 3).

use std::path::Path;

use plotters::prelude::*;

use super::curves::{register_font, FONT};
use crate::error::{Error, Result};
use crate::host::HostMat;

/// Ten distinguishable colours (matplotlib's tab10), one per class.
const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// Writes the rows of `points` (n x 2) as a PNG scatter plot, each point
/// coloured by its class in `classes` (cycling through ten colours), with a
/// legend of the classes.
pub fn save_scatter(path: &Path, title: &str, points: &HostMat, classes: &[u8]) -> Result<()> {
    if points.cols != 2 || points.rows != classes.len() || points.rows == 0 {
        return Err(Error::shape(
            "save_scatter",
            format!(
                "{}x{} points with {} classes: need n x 2 points and n classes",
                points.rows,
                points.cols,
                classes.len()
            ),
        ));
    }
    register_font();
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for r in 0..points.rows {
        let (x, y) = (points.get(r, 0) as f64, points.get(r, 1) as f64);
        if x.is_finite() && y.is_finite() {
            (x0, x1, y0, y1) = (x0.min(x), x1.max(x), y0.min(y), y1.max(y));
        }
    }
    if x0 > x1 {
        return Err(Error::value("save_scatter", "no finite point to draw"));
    }
    let (px, py) = (0.05 * (x1 - x0).max(1e-6), 0.05 * (y1 - y0).max(1e-6));
    let err = |e: String| Error::io(path, std::io::Error::other(e));
    // Drawn in memory and written by write_png, which reports a failed
    // write (plotters' own file path loses it).
    let size = (720u32, 640u32);
    let mut pixels = vec![0u8; 720 * 640 * 3];
    {
        let root = BitMapBackend::with_buffer(&mut pixels, size).into_drawing_area();
        root.fill(&WHITE).map_err(|e| err(e.to_string()))?;
        let mut chart = ChartBuilder::on(&root)
            .margin(12)
            .caption(title, (FONT, 18))
            .x_label_area_size(36)
            .y_label_area_size(56)
            .build_cartesian_2d((x0 - px)..(x1 + px), (y0 - py)..(y1 + py))
            .map_err(|e| err(e.to_string()))?;
        chart
            .configure_mesh()
            .label_style((FONT, 13))
            .draw()
            .map_err(|e| err(e.to_string()))?;
        let mut seen: Vec<u8> = classes.to_vec();
        seen.sort_unstable();
        seen.dedup();
        for &c in &seen {
            let color = PALETTE[c as usize % PALETTE.len()];
            let pts = (0..points.rows)
                .filter(|&r| classes[r] == c)
                .map(|r| (points.get(r, 0) as f64, points.get(r, 1) as f64));
            chart
                .draw_series(pts.map(|p| Circle::new(p, 2, color.mix(0.6).filled())))
                .map_err(|e| err(e.to_string()))?
                .label(c.to_string())
                .legend(move |(x, y)| Circle::new((x, y), 4, color.filled()));
        }
        chart
            .configure_series_labels()
            .label_font((FONT, 13))
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(|e| err(e.to_string()))?;
        root.present().map_err(|e| err(e.to_string()))?;
    }
    super::grid::write_png(path, &pixels, size, image::ExtendedColorType::Rgb8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_a_png_and_refuses_mismatched_classes() {
        let dir = std::env::temp_dir().join(format!("ebmkit-scatter-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("codes.png");
        let pts = HostMat::from_fn(30, 2, |r, c| (r * (c + 1)) as f32);
        let classes: Vec<u8> = (0..30).map(|r| (r % 10) as u8).collect();
        save_scatter(&path, "codes", &pts, &classes).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(&bytes[1..4], b"PNG");
        let e = save_scatter(&path, "codes", &pts, &classes[..29]).unwrap_err();
        assert!(e.to_string().contains("29 classes"), "{e}");
        std::fs::remove_dir_all(&dir).ok();
    }
}
