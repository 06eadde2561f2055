//! Image grids as greyscale PNG.

use std::path::Path;

use crate::error::{Error, Result};
use crate::host::HostMat;

/// How tile values map to grey levels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Norm {
    /// Values in [0, 1] (clamped): data, sample probabilities.
    Unit,
    /// Each tile stretched from its own min to max (receptive fields).
    PerTile,
    /// Each tile scaled symmetrically by its largest |value|, 0 = mid grey.
    PerTileSymmetric,
}

impl Norm {
    /// [`Unit`](Norm::Unit) for values that are probabilities or bits,
    /// else [`PerTile`](Norm::PerTile).
    pub fn for_values(in_unit_interval: bool) -> Norm {
        if in_unit_interval {
            Norm::Unit
        } else {
            Norm::PerTile
        }
    }
}

/// The first `n` units' receptive fields (columns of the inputs x units
/// weights `w`) as rows, ready for [`save_grid`].
pub fn receptive_fields(w: &HostMat, n: usize) -> Result<HostMat> {
    let wt = w.transpose();
    let n = n.clamp(1, wt.rows.max(1));
    wt.select_rows(&(0..n).collect::<Vec<_>>())
}

/// Pixel zoom of grid pictures of `(h, w)` tiles: 2 for MNIST digits, more
/// for small patches so that a tile is at least ~48 pixels across.
pub fn zoom_for((h, w): (usize, usize)) -> u32 {
    (48 / h.max(w).max(1)).max(2) as u32
}

/// Writes the rows of `images` (each `h * w` values, row-major) as a grid of
/// `cols` tiles per row with a 1-pixel border, scaled up by `zoom`.
pub fn save_grid(
    path: &Path,
    images: &HostMat,
    (h, w): (usize, usize),
    cols: usize,
    norm: Norm,
    zoom: u32,
) -> Result<()> {
    if h * w != images.cols {
        return Err(Error::shape(
            "save_grid",
            format!(
                "tiles of {h}x{w} need {} values per row, got {}",
                h * w,
                images.cols
            ),
        ));
    }
    let n = images.rows;
    if n == 0 {
        return Err(Error::value("save_grid", "no images to draw"));
    }
    let cols = cols.clamp(1, n);
    let rows = n.div_ceil(cols);
    let zoom = zoom.max(1) as usize;
    let (tw, th) = (w * zoom + 1, h * zoom + 1);
    let (iw, ih) = (cols * tw + 1, rows * th + 1);
    let mut img = image::GrayImage::from_pixel(iw as u32, ih as u32, image::Luma([40u8]));
    for t in 0..n {
        let x = images.row(t);
        let (lo, hi) = match norm {
            Norm::Unit => (0.0, 1.0),
            Norm::PerTile => {
                let lo = x.iter().cloned().fold(f32::INFINITY, f32::min);
                let hi = x.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
                (lo, if hi > lo { hi } else { lo + 1.0 })
            }
            Norm::PerTileSymmetric => {
                let m = x.iter().fold(0.0f32, |a, v| a.max(v.abs())).max(1e-12);
                (-m, m)
            }
        };
        let (gr, gc) = (t / cols, t % cols);
        for r in 0..h {
            for c in 0..w {
                let v = ((x[r * w + c] - lo) / (hi - lo)).clamp(0.0, 1.0);
                let v = if v.is_finite() { v } else { 0.0 };
                let g = (v * 255.0).round() as u8;
                for dy in 0..zoom {
                    for dx in 0..zoom {
                        let px = gc * tw + 1 + c * zoom + dx;
                        let py = gr * th + 1 + r * zoom + dy;
                        img.put_pixel(px as u32, py as u32, image::Luma([g]));
                    }
                }
            }
        }
    }
    write_png(
        path,
        img.as_raw(),
        (iw as u32, ih as u32),
        image::ExtendedColorType::L8,
    )
}

/// Encodes `pixels` (`w` x `h` of `color`) as PNG in memory and writes the
/// file with one checked write: the image crate's own path drops its
/// BufWriter unflushed, so that a picture smaller than the buffer that could
/// not be written (a full disk) was reported as written.
pub(crate) fn write_png(
    path: &Path,
    pixels: &[u8],
    (w, h): (u32, u32),
    color: image::ExtendedColorType,
) -> Result<()> {
    let mut bytes = Vec::new();
    image::write_buffer_with_format(
        &mut std::io::Cursor::new(&mut bytes),
        pixels,
        w,
        h,
        color,
        image::ImageFormat::Png,
    )
    .map_err(|e| Error::io(path, std::io::Error::other(e.to_string())))?;
    std::fs::write(path, &bytes).map_err(|e| Error::io(path, e))
}
