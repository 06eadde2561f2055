//! Photographs as grey intensity matrices.

use std::path::Path;

use crate::error::{Error, Result};
use crate::host::HostMat;

/// ITU-R BT.601 luma weights for R, G, B. The `image` crate's own grey
/// conversion uses BT.709 weights; 601 is what MATLAB's `rgb2gray` and most
/// of the patch-model literature used.
pub const LUMA_601: [f32; 3] = [0.299, 0.587, 0.114];

/// Loads a PNG or JPEG (format detected from the contents) as a grey image:
/// one row of the matrix per image row, intensities in [0, 1]. Colour is
/// reduced with [`LUMA_601`]; an alpha channel is ignored; 16-bit images
/// keep their precision.
pub fn load_grey(path: impl AsRef<Path>) -> Result<HostMat> {
    let path = path.as_ref();
    let img = ::image::ImageReader::open(path)
        .map_err(|e| Error::io(path, e))?
        .with_guessed_format()
        .map_err(|e| Error::io(path, e))?
        .decode()
        .map_err(|e| match e {
            ::image::ImageError::IoError(e) => Error::io(path, e),
            e => Error::format(path, format!("cannot decode image: {e}")),
        })?;
    let (w, h) = (img.width() as usize, img.height() as usize);
    let data = if img.color().has_color() {
        img.to_rgb32f()
            .pixels()
            .map(|p| {
                let v = LUMA_601[0] * p[0] + LUMA_601[1] * p[1] + LUMA_601[2] * p[2];
                v.clamp(0.0, 1.0)
            })
            .collect()
    } else {
        img.to_luma32f().into_raw()
    };
    HostMat::new(h, w, data)
}
