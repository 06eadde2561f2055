//! Out-of-bounds canary for the GEMM kernels. Their shader modules are
//! compiled without wgpu's runtime bounds checks (the index checks written
//! into the generated code are trusted instead), so an index bug there would
//! read or write memory next to a matrix and nothing else would notice.
//!
//! Every matrix a GEMM binds is placed between guard regions of sentinel
//! words (`Gpu::upload_guarded`), bound from its first element through the
//! trailing guard, so an overrun lands in sentinels even on a device that
//! clamps accesses to the bound range. Operands that are only read get a
//! NaN sentinel, so a stray read poisons the result; outputs get a finite
//! pattern that no kernel writes by accident. For every tile, transpose
//! combination, vec4 and scalar access, split-K on and off, plain GEMM (with
//! and without reading C) and the fused sigmoid epilogue (with and without
//! a sample), on shapes that cross tile edges in every dimension, each case
//! checks that (a) every guard word is unchanged and (b) the result matches
//! the CPU backend within `gpu_vs_cpu::check_gemm`'s tolerance.

#[macro_use]
mod common;
use ebmkit::backend::cpu::Cpu;
use ebmkit::backend::gpu::{Gpu, GpuMat};
use ebmkit::prelude::*;
use ebmkit::rng::RngStream;

/// Guard words on each side of a matrix (more than an A or B row of any
/// shape below, so an overrun by a row lands inside the guard).
const GUARD: usize = 1024;
/// A quiet NaN with a payload: the guard of matrices that are read.
const READ_SENTINEL: u32 = 0x7FC0_DEAD;
/// A finite value (about -6.3e18): the guard of matrices that are written.
const WRITE_SENTINEL: u32 = 0xDEAD_BEEF;
/// `gpu_vs_cpu::check_gemm`'s tolerance.
const TOL: f32 = 1e-4;

const TRANS: [(Trans, Trans); 4] = [
    (Trans::N, Trans::N),
    (Trans::N, Trans::T),
    (Trans::T, Trans::N),
    (Trans::T, Trans::T),
];

/// (m, k, n). The first four have odd stored row lengths for every
/// transpose (scalar access of A, B and C), the last two have m, k and n
/// multiples of 4 (vec4 access of all three). 130 and 132 cross the 128
/// tiles, 65, 67 and 68 the 64 tiles, 9, 13, 20 and 129 the k-tiles of 8
/// and 16 (and, split, the slices of k).
const SHAPES: [(usize, usize, usize); 6] = [
    (1, 1, 1),
    (7, 13, 5),
    (65, 129, 67),
    (130, 9, 131),
    (4, 4, 4),
    (132, 20, 136),
];

fn rand_mat(rows: usize, cols: usize, seed: u64, lo: f32, hi: f32) -> HostMat {
    let d = RngStream::new(seed, 91).next_draw();
    HostMat::from_fn(rows, cols, |r, c| lo + (hi - lo) * d.uniform(r * cols + c))
}

/// |got - want| <= TOL (1 + |want|) everywhere; a NaN anywhere fails.
fn assert_close(what: &str, got: &HostMat, want: &HostMat) {
    assert_eq!(got.shape(), want.shape(), "{what}: shapes");
    for (i, (g, w)) in got.data.iter().zip(&want.data).enumerate() {
        assert!(
            (g - w).abs() <= TOL * (1.0 + w.abs()),
            "{what}: element {i} (row {}, col {}): gpu {g} vs cpu {w}",
            i / want.cols.max(1),
            i % want.cols.max(1)
        );
    }
}

/// Reads `m` back, checks its guards (at least `GUARD` words of
/// `sentinel` on each side) and returns its values.
fn checked(g: &Gpu, m: &GpuMat, sentinel: u32, what: &str) -> HostMat {
    checked_with(g, m, (GUARD, sentinel), what)
}

fn checked_with(g: &Gpu, m: &GpuMat, (guard, sentinel): (usize, u32), what: &str) -> HostMat {
    let r = g.read_guarded(m).unwrap();
    for (side, words) in [("before", &r.before), ("after", &r.after)] {
        assert!(
            words.len() >= guard,
            "{what}: {} guard words {side}",
            words.len()
        );
        if let Some(i) = words.iter().position(|&w| w != sentinel) {
            panic!(
                "{what}: guard word {i} {side} the matrix overwritten: {:#010x} (of {} words)",
                words[i],
                words.len()
            );
        }
    }
    r.values
}

/// The operands of one product, on the host and guarded on the device.
struct Operands {
    a: HostMat,
    b: HostMat,
    bias: HostMat,
    ga: GpuMat,
    gb: GpuMat,
    gbias: GpuMat,
    ta: Trans,
    tb: Trans,
}

impl Operands {
    fn new(g: &Gpu, (m, k, n): (usize, usize, usize), (ta, tb): (Trans, Trans)) -> Operands {
        let (ar, ac) = ta.apply((m, k));
        let (br, bc) = tb.apply((k, n));
        let a = rand_mat(ar, ac, 1 + m as u64, -1.0, 1.0);
        let b = rand_mat(br, bc, 2 + n as u64, -1.0, 1.0);
        let bias = rand_mat(1, n, 3 + k as u64, -0.5, 0.5);
        let up = |h: &HostMat| g.upload_guarded(h, GUARD, READ_SENTINEL).unwrap();
        let (ga, gb, gbias) = (up(&a), up(&b), up(&bias));
        Operands {
            a,
            b,
            bias,
            ga,
            gb,
            gbias,
            ta,
            tb,
        }
    }

    fn check_guards(&self, g: &Gpu, what: &str) {
        checked(g, &self.ga, READ_SENTINEL, &format!("{what}: A"));
        checked(g, &self.gb, READ_SENTINEL, &format!("{what}: B"));
        checked(g, &self.gbias, READ_SENTINEL, &format!("{what}: bias"));
    }
}

/// Dispatches of one product: two when split-K applies (k longer than the
/// tile's k-step with a forced split), else one.
fn dispatches_for(tile: &str, split: usize, k: usize) -> u64 {
    let bk = if tile == "L" { 8 } else { 16 };
    if split > 1 && k > bk {
        2
    } else {
        1
    }
}

/// `C = alpha op(A) op(B) + beta C` into a guarded C; with beta = 0 the
/// old C is NaN, which must never be read.
fn plain_gemm(g: &Gpu, o: &Operands, (alpha, beta): (f32, f32), want_dispatches: u64, what: &str) {
    let (m, n) = (o.ta.apply(o.a.shape()).0, o.tb.apply(o.b.shape()).1);
    let init = if beta == 0.0 {
        HostMat::from_fn(m, n, |_, _| f32::NAN)
    } else {
        rand_mat(m, n, 4, -1.0, 1.0)
    };
    let mut want = init.clone();
    let cpu = Cpu::new();
    cpu.gemm(
        alpha,
        Op { m: &o.a, t: o.ta },
        Op { m: &o.b, t: o.tb },
        beta,
        &mut want,
    )
    .unwrap();
    let mut gc = g.upload_guarded(&init, GUARD, WRITE_SENTINEL).unwrap();
    let d0 = g.dispatches();
    g.gemm(
        alpha,
        Op { m: &o.ga, t: o.ta },
        Op { m: &o.gb, t: o.tb },
        beta,
        &mut gc,
    )
    .unwrap();
    assert_eq!(g.dispatches() - d0, want_dispatches, "{what}: dispatches");
    let what = format!("{what} alpha {alpha} beta {beta}");
    let got = checked(g, &gc, WRITE_SENTINEL, &format!("{what}: C"));
    assert_close(&what, &got, &want);
}

/// `prob = sigmoid(alpha (op(A) op(B) + bias))`, and with `sample` its
/// Bernoulli draw, into guarded outputs.
fn fused_gemm(g: &Gpu, o: &Operands, sample: bool, what: &str) {
    let (m, n) = (o.ta.apply(o.a.shape()).0, o.tb.apply(o.b.shape()).1);
    let alpha = 1.7;
    let nan = HostMat::from_fn(m, n, |_, _| f32::NAN);
    let (mut prob, mut samp) = (nan.clone(), nan.clone());
    let rng0 = RngStream::new(0xC0FF_EE00, 7);
    let (mut rng_c, mut rng_g) = (rng0, rng0);
    let (a, b) = (Op { m: &o.a, t: o.ta }, Op { m: &o.b, t: o.tb });
    let s = sample.then_some(Sample {
        out: &mut samp,
        rng: &mut rng_c,
    });
    Cpu::new()
        .sigmoid_affine(alpha, a, b, &o.bias, &mut prob, s)
        .unwrap();
    let up = |h: &HostMat| g.upload_guarded(h, GUARD, WRITE_SENTINEL).unwrap();
    let (mut gp, mut gs) = (up(&nan), up(&nan));
    let (ga, gb) = (Op { m: &o.ga, t: o.ta }, Op { m: &o.gb, t: o.tb });
    let s = sample.then_some(Sample {
        out: &mut gs,
        rng: &mut rng_g,
    });
    g.sigmoid_affine(alpha, ga, gb, &o.gbias, &mut gp, s)
        .unwrap();
    let what = format!("{what} sigmoid_affine (sample: {sample})");
    let got = checked(g, &gp, WRITE_SENTINEL, &format!("{what}: prob"));
    assert_close(&what, &got, &prob);
    let got_s = checked(g, &gs, WRITE_SENTINEL, &format!("{what}: sample"));
    if !sample {
        assert!(
            got_s.data.iter().all(|v| v.is_nan()),
            "{what}: sample written"
        );
        return;
    }
    let d = rng0.clone().next_draw();
    for (i, (gv, cv)) in got_s.data.iter().zip(&samp.data).enumerate() {
        assert!(*gv == 0.0 || *gv == 1.0, "{what}: sample {i} is {gv}");
        // Only where the uniform falls between the two backends' probabilities.
        let u = d.uniform(i);
        assert!(
            gv == cv || (u - prob.data[i]).abs() <= 2.0 * TOL,
            "{what}: sample {i}: gpu {gv} cpu {cv} (u {u}, p {})",
            prob.data[i]
        );
    }
}

/// Every case for one tile, on a device of its own (the forced tile and
/// split are per device, and the dispatch counts are checked).
fn canary(tile: &str) {
    let _ = gpu_or_skip!();
    let g = Gpu::new().unwrap();
    g.force_gemm_tile(Some(tile)).unwrap();
    for split in [1, 3] {
        g.force_gemm_split(Some(split));
        for &(m, k, n) in &SHAPES {
            let want = dispatches_for(tile, split, k);
            for trans in TRANS {
                let what = format!("tile {tile} split {split} {m}x{k}x{n} {trans:?}");
                let o = Operands::new(&g, (m, k, n), trans);
                plain_gemm(&g, &o, (1.5, 0.0), want, &what);
                plain_gemm(&g, &o, (-0.5, 0.5), want, &what);
                fused_gemm(&g, &o, false, &what);
                fused_gemm(&g, &o, true, &what);
                o.check_guards(&g, &what);
            }
        }
    }
}

#[test]
fn canary_tile_l() {
    canary("L");
}

#[test]
fn canary_tile_l16() {
    canary("L16");
}

#[test]
fn canary_tile_m() {
    canary("M");
}

#[test]
fn canary_tile_s() {
    canary("S");
}

/// The guarded path itself: the matrix reads back as uploaded, ops see
/// only the matrix (the offset is honoured), and writes stay inside it.
#[test]
fn guarded_upload_round_trips() {
    let g = gpu_or_skip!();
    let h = rand_mat(3, 5, 9, -1.0, 1.0);
    let mut m = g.upload_guarded(&h, 10, READ_SENTINEL).unwrap();
    assert_eq!(g.download(&m).unwrap().data, h.data);
    assert_eq!(g.sum(&m).unwrap(), g.sum(&g.upload(&h).unwrap()).unwrap());
    g.affine(&mut m, 2.0, 1.0).unwrap();
    let got = checked_with(g, &m, (10, READ_SENTINEL), "affine on a guarded matrix");
    let want: Vec<f32> = h.data.iter().map(|v| 2.0 * v + 1.0).collect();
    assert_eq!(got.data, want);
    let plain = g.read_guarded(&g.upload(&h).unwrap()).unwrap();
    assert!(plain.before.is_empty() && plain.after.len() == 1);
}
