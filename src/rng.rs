//! Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3",
//! SC 2011): a counter-based generator, so every element of a random draw is a
//! pure function of (seed, stream, draw offset, element index). That is what
//! lets the CPU backend and the WGSL kernels in `shaders/` produce the same
//! numbers without sharing any state.
//!
//! The layout of one draw, shared with `shaders/philox.wgsl`:
//! - key     = (seed low 32 bits, seed high 32 bits)
//! - counter = (block index, stream, offset low 32 bits, offset high 32 bits)
//! - uniforms: element `i` takes word `i % 4` of block `i / 4`;
//!   u = (word >> 8) * 2^-24, in [0, 1).
//! - Gaussians: element `i` takes words (2(i%2), 2(i%2)+1) of block `i / 2`,
//!   u1 = ((w0 >> 8) + 1) * 2^-24 in (0, 1], u2 = (w1 >> 8) * 2^-24,
//!   z = sqrt(-2 ln u1) cos(2 pi u2)  (Box-Muller).
//!
//! Each draw consumes one offset, so a `RngStream` never repeats a block.

const M0: u32 = 0xD251_1F53;
const M1: u32 = 0xCD9E_8D57;
const W0: u32 = 0x9E37_79B9;
const W1: u32 = 0xBB67_AE85;

#[inline(always)]
fn mulhilo(a: u32, b: u32) -> (u32, u32) {
    let p = a as u64 * b as u64;
    ((p >> 32) as u32, p as u32)
}

/// One Philox4x32 block with 10 rounds.
#[inline]
pub fn philox4x32_10(ctr: [u32; 4], key: [u32; 2]) -> [u32; 4] {
    let mut c = ctr;
    let mut k = key;
    for round in 0..10 {
        if round > 0 {
            k[0] = k[0].wrapping_add(W0);
            k[1] = k[1].wrapping_add(W1);
        }
        let (hi0, lo0) = mulhilo(M0, c[0]);
        let (hi1, lo1) = mulhilo(M1, c[2]);
        c = [hi1 ^ c[1] ^ k[0], lo1, hi0 ^ c[3] ^ k[1], lo0];
    }
    c
}

/// `LANES` consecutive Philox blocks (`first..first + LANES`) of one key and
/// counter tail, as structure-of-arrays so the compiler can keep every lane
/// in one SIMD register (AVX-512: 16 lanes of `vpmuludq`). Identical, word for
/// word, to calling [`philox4x32_10`] per block.
pub const LANES: usize = 16;

#[inline(always)]
pub fn philox_lanes(first: u32, tail: [u32; 3], key: [u32; 2]) -> [[u32; LANES]; 4] {
    let mut c0 = [0u32; LANES];
    for (l, c) in c0.iter_mut().enumerate() {
        *c = first.wrapping_add(l as u32);
    }
    let mut c1 = [tail[0]; LANES];
    let mut c2 = [tail[1]; LANES];
    let mut c3 = [tail[2]; LANES];
    let mut k = key;
    for round in 0..10 {
        if round > 0 {
            k[0] = k[0].wrapping_add(W0);
            k[1] = k[1].wrapping_add(W1);
        }
        for l in 0..LANES {
            let p0 = M0 as u64 * c0[l] as u64;
            let p1 = M1 as u64 * c2[l] as u64;
            let (hi0, lo0) = ((p0 >> 32) as u32, p0 as u32);
            let (hi1, lo1) = ((p1 >> 32) as u32, p1 as u32);
            let n0 = hi1 ^ c1[l] ^ k[0];
            let n2 = hi0 ^ c3[l] ^ k[1];
            c0[l] = n0;
            c1[l] = lo1;
            c2[l] = n2;
            c3[l] = lo0;
        }
    }
    [c0, c1, c2, c3]
}

/// Maps a 32-bit word to [0, 1) with 24 bits, exactly representable in f32.
#[inline(always)]
pub fn u32_to_unit(w: u32) -> f32 {
    (w >> 8) as f32 * (1.0 / 16_777_216.0)
}

/// Maps a 32-bit word to (0, 1], safe for a logarithm.
#[inline(always)]
pub fn u32_to_unit_open0(w: u32) -> f32 {
    ((w >> 8) + 1) as f32 * (1.0 / 16_777_216.0)
}

/// The parameters of one draw: what a kernel needs to generate its numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Draw {
    pub key: [u32; 2],
    pub stream: u32,
    pub offset: u64,
}

impl Draw {
    #[inline]
    pub fn block(&self, index: u32) -> [u32; 4] {
        philox4x32_10(
            [
                index,
                self.stream,
                self.offset as u32,
                (self.offset >> 32) as u32,
            ],
            self.key,
        )
    }
    /// The raw word behind uniform element `i`.
    #[inline]
    pub fn word(&self, i: usize) -> u32 {
        self.block((i / 4) as u32)[i % 4]
    }
    #[inline]
    pub fn uniform(&self, i: usize) -> f32 {
        u32_to_unit(self.word(i))
    }
    #[inline]
    pub fn normal(&self, i: usize) -> f32 {
        let b = self.block((i / 2) as u32);
        let j = (i % 2) * 2;
        let u1 = u32_to_unit_open0(b[j]);
        let u2 = u32_to_unit(b[j + 1]);
        (-2.0 * u1.ln()).sqrt() * (std::f32::consts::TAU * u2).cos()
    }
    /// Fills `out` with uniforms, four per Philox block.
    pub fn fill_uniform(&self, out: &mut [f32]) {
        self.fill_uniform_at(0, out);
    }
    /// Uniform elements `start..start + out.len()`; `start % 4 == 0`.
    pub fn fill_uniform_at(&self, start: usize, out: &mut [f32]) {
        // The lanes vectorise to 8 or 16 `vpmuludq` lanes where the processor
        // has AVX2 / AVX-512; the crate's baseline target (SSE2) has 2.
        #[cfg(target_arch = "x86_64")]
        {
            #[target_feature(enable = "avx512f")]
            unsafe fn v4(d: &Draw, start: usize, out: &mut [f32]) {
                d.fill_uniform_at_generic(start, out)
            }
            #[target_feature(enable = "avx2")]
            unsafe fn v3(d: &Draw, start: usize, out: &mut [f32]) {
                d.fill_uniform_at_generic(start, out)
            }
            if std::arch::is_x86_feature_detected!("avx512f") {
                // SAFETY: the feature was just detected.
                return unsafe { v4(self, start, out) };
            }
            if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: the feature was just detected.
                return unsafe { v3(self, start, out) };
            }
        }
        self.fill_uniform_at_generic(start, out)
    }

    #[inline(always)]
    fn fill_uniform_at_generic(&self, start: usize, out: &mut [f32]) {
        debug_assert_eq!(start % 4, 0);
        let tail = [self.stream, self.offset as u32, (self.offset >> 32) as u32];
        let first = (start / 4) as u32;
        let mut chunks = out.chunks_exact_mut(4 * LANES);
        let mut block = first;
        for chunk in &mut chunks {
            let w = philox_lanes(block, tail, self.key);
            for l in 0..LANES {
                for j in 0..4 {
                    chunk[4 * l + j] = u32_to_unit(w[j][l]);
                }
            }
            block = block.wrapping_add(LANES as u32);
        }
        for (bi, chunk) in chunks.into_remainder().chunks_mut(4).enumerate() {
            let b = self.block(block.wrapping_add(bi as u32));
            for (o, w) in chunk.iter_mut().zip(b) {
                *o = u32_to_unit(w);
            }
        }
    }
}

/// A reproducible source of draws: (seed, stream) fixed, the offset advancing
/// by one per draw. Cheap to copy into checkpoints: three integers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RngStream {
    pub seed: u64,
    pub stream: u32,
    pub offset: u64,
}

impl RngStream {
    pub fn new(seed: u64, stream: u32) -> Self {
        RngStream {
            seed,
            stream,
            offset: 0,
        }
    }
    /// Reserves the next draw.
    pub fn next_draw(&mut self) -> Draw {
        let d = Draw {
            key: [self.seed as u32, (self.seed >> 32) as u32],
            stream: self.stream,
            offset: self.offset,
        };
        self.offset += 1;
        d
    }
    /// A host-side generator for small jobs (shuffles, initialisation), seeded
    /// from the next draw so it stays reproducible with the rest of the stream.
    pub fn host_rng(&mut self) -> rand::rngs::StdRng {
        use rand::SeedableRng;
        let d = self.next_draw();
        let b = d.block(0);
        rand::rngs::StdRng::seed_from_u64(((b[0] as u64) << 32) | b[1] as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Known-answer vectors from Random123's kat_vectors (philox4x32, 10 rounds).
    #[test]
    fn known_answers() {
        assert_eq!(
            philox4x32_10([0, 0, 0, 0], [0, 0]),
            [0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8]
        );
        assert_eq!(
            philox4x32_10([u32::MAX; 4], [u32::MAX; 2]),
            [0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd]
        );
        assert_eq!(
            philox4x32_10(
                [0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344],
                [0xa4093822, 0x299f31d0]
            ),
            [0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1]
        );
    }

    #[test]
    fn fill_matches_elementwise() {
        let d = RngStream::new(42, 3).next_draw();
        let mut v = vec![0.0; 11];
        d.fill_uniform(&mut v);
        for (i, x) in v.iter().enumerate() {
            assert_eq!(*x, d.uniform(i));
        }
    }

    #[test]
    #[allow(clippy::needless_range_loop)] // indices mirror the lane/word layout
    fn lanes_match_single_blocks() {
        let d = RngStream::new(0xdead_beef_1234, 7).next_draw();
        let tail = [d.stream, d.offset as u32, (d.offset >> 32) as u32];
        let w = philox_lanes(u32::MAX - 5, tail, d.key);
        for l in 0..LANES {
            let b = philox4x32_10(
                [
                    (u32::MAX - 5).wrapping_add(l as u32),
                    tail[0],
                    tail[1],
                    tail[2],
                ],
                d.key,
            );
            for j in 0..4 {
                assert_eq!(w[j][l], b[j]);
            }
        }
        // fill_uniform_at from an offset start, across the lane/remainder seam.
        let mut v = vec![0.0; 4 * LANES + 9];
        d.fill_uniform_at(8, &mut v);
        for (i, x) in v.iter().enumerate() {
            assert_eq!(*x, d.uniform(8 + i));
        }
    }

    #[test]
    fn draws_differ() {
        let mut s = RngStream::new(1, 0);
        let a = s.next_draw();
        let b = s.next_draw();
        assert_ne!(a.word(0), b.word(0));
        assert_ne!(a.word(0), RngStream::new(1, 1).next_draw().word(0));
    }
}
