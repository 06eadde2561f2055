//! Random square patches from grey images, the training data of the
//! image-patch models (sparse coding, PSD, Gaussian RBMs, gated MRFs).

use rand::RngExt;

use crate::error::{Error, Result};
use crate::host::HostMat;
use crate::rng::RngStream;

/// What to cut: `count` patches of `size` x `size` pixels.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PatchSpec {
    pub count: usize,
    pub size: usize,
    /// Subtract each patch's own mean (its DC component), as is usual before
    /// whitening natural-image patches.
    pub remove_mean: bool,
}

/// Cuts `spec.count` patches, one row each (pixels in row-major order).
///
/// Each patch picks an image uniformly among those at least `size` x `size`
/// (so small images are not under-represented per image), then a position
/// uniformly within it. Reproducible: one host generator from `rng`.
pub fn extract_patches(
    images: &[HostMat],
    spec: &PatchSpec,
    rng: &mut RngStream,
) -> Result<HostMat> {
    let p = spec.size;
    if p == 0 {
        return Err(Error::value("patch size", "must be at least 1"));
    }
    let usable: Vec<&HostMat> = images
        .iter()
        .filter(|m| m.rows >= p && m.cols >= p)
        .collect();
    if usable.is_empty() {
        return Err(Error::value(
            "patch size",
            format!(
                "{p}x{p} patches do not fit in any of the {} images",
                images.len()
            ),
        ));
    }
    let len = spec
        .count
        .checked_mul(p * p)
        .ok_or_else(|| Error::value("patch count", "count x size^2 overflows"))?;
    let mut data = Vec::with_capacity(len);
    let mut r = rng.host_rng();
    for _ in 0..spec.count {
        let img = usable[r.random_range(0..usable.len())];
        let y = r.random_range(0..=img.rows - p);
        let x = r.random_range(0..=img.cols - p);
        for dy in 0..p {
            data.extend_from_slice(&img.row(y + dy)[x..x + p]);
        }
    }
    let mut out = HostMat::new(spec.count, p * p, data)?;
    if spec.remove_mean {
        remove_row_means(&mut out);
    }
    Ok(out)
}

/// Subtracts from each row its own mean.
pub fn remove_row_means(m: &mut HostMat) {
    if m.cols == 0 {
        return;
    }
    for r in 0..m.rows {
        let row = m.row_mut(r);
        let mean = row.iter().map(|&v| v as f64).sum::<f64>() / row.len() as f64;
        for v in row {
            *v -= mean as f32;
        }
    }
}
