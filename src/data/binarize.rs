//! Turning intensities in [0, 1] into binary data for Bernoulli visible units.

use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::host::HostMat;
use crate::rng::{u32_to_unit, RngStream};

/// Each value `x` becomes 1 with probability `x`, else 0 (values outside
/// [0, 1] act as clamped). This is the convention of Salakhutdinov & Murray
/// (2008) for binarised MNIST, where a fresh draw per epoch or a single
/// fixed draw are both in use; this takes one draw from `rng`.
///
/// Element `i` is 1 exactly when uniform `i` of the draw is below `x`, the
/// same rule as the backends' Bernoulli sampler, so a GPU binarisation with
/// the same stream gives the same bits.
pub fn binarize_stochastic(x: &HostMat, rng: &mut RngStream) -> Result<HostMat> {
    if x.data.len() / 4 > u32::MAX as usize {
        return Err(Error::value(
            "binarize_stochastic",
            format!("{} values exceed one draw's 2^34", x.data.len()),
        ));
    }
    let draw = rng.next_draw();
    let mut data = vec![0.0f32; x.data.len()];
    const CHUNK: usize = 1 << 14; // a multiple of 4: chunks start on a block
    data.par_chunks_mut(CHUNK)
        .zip(x.data.par_chunks(CHUNK))
        .enumerate()
        .for_each(|(ci, (out, src))| {
            let first_block = ci * CHUNK / 4;
            for (bi, (o4, x4)) in out.chunks_mut(4).zip(src.chunks(4)).enumerate() {
                let words = draw.block((first_block + bi) as u32);
                for ((o, &p), w) in o4.iter_mut().zip(x4).zip(words) {
                    *o = if u32_to_unit(w) < p { 1.0 } else { 0.0 };
                }
            }
        });
    Ok(HostMat {
        rows: x.rows,
        cols: x.cols,
        data,
    })
}

/// Each value becomes 1 if it is strictly above `threshold`, else 0
/// (0.5 is the usual choice for MNIST).
pub fn binarize_threshold(x: &HostMat, threshold: f32) -> HostMat {
    HostMat {
        rows: x.rows,
        cols: x.cols,
        data: x
            .data
            .iter()
            .map(|&v| if v > threshold { 1.0 } else { 0.0 })
            .collect(),
    }
}
