//! Every GPU kernel against its CPU twin, on awkward shapes, plus the Philox
//! streams bit for bit and statistical checks of the GPU samplers.
//!
//! Runs on any adapter, Mesa's lavapipe included (shapes are kept small for
//! it). Without an adapter these tests are skipped, or fail with
//! `EBMKIT_REQUIRE_GPU=1`.

#[macro_use]
mod common;
use ebmkit::backend::cpu::Cpu;
use ebmkit::backend::gpu::Gpu;
use ebmkit::prelude::*;
use ebmkit::rng::{Draw, RngStream};
use ebmkit::{Backend, Binary, HostMat, Trans, Unary};

fn rand_mat(rows: usize, cols: usize, seed: u64, lo: f32, hi: f32) -> HostMat {
    let d = RngStream::new(seed, 77).next_draw();
    HostMat::from_fn(rows, cols, |r, c| lo + (hi - lo) * d.uniform(r * cols + c))
}

fn nan_mat(rows: usize, cols: usize) -> HostMat {
    HostMat::from_fn(rows, cols, |_, _| f32::NAN)
}

/// |got - want| <= tol (1 + |want|) everywhere (NaN only where both are).
fn assert_close(what: &str, got: &HostMat, want: &HostMat, tol: f32) {
    assert_eq!(got.shape(), want.shape(), "{what}: shapes");
    for (i, (g, w)) in got.data.iter().zip(&want.data).enumerate() {
        if g.is_nan() && w.is_nan() {
            continue;
        }
        if g == w {
            continue; // infinities
        }
        assert!(
            (g - w).abs() <= tol * (1.0 + w.abs()),
            "{what}: element {i} (row {}, col {}): gpu {g} vs cpu {w}",
            i / want.cols.max(1),
            i % want.cols.max(1)
        );
    }
}

const TRANS: [(Trans, Trans); 4] = [
    (Trans::N, Trans::N),
    (Trans::N, Trans::T),
    (Trans::T, Trans::N),
    (Trans::T, Trans::T),
];

fn check_gemm(g: &Gpu, cpu: &Cpu, (m, k, n): (usize, usize, usize), seed: u64, tag: &str) {
    for (ta, tb) in TRANS {
        let (ar, ac) = ta.apply((m, k));
        let (br, bc) = tb.apply((k, n));
        let a = rand_mat(ar, ac, seed, -1.0, 1.0);
        let b = rand_mat(br, bc, seed + 1, -1.0, 1.0);
        let c0 = rand_mat(m, n, seed + 2, -1.0, 1.0);
        let (ga, gb) = (g.upload(&a).unwrap(), g.upload(&b).unwrap());
        for &(alpha, beta) in &[(1.0f32, 0.0f32), (0.5, 2.0), (-1.5, 1.0)] {
            let init = if beta == 0.0 {
                nan_mat(m, n)
            } else {
                c0.clone()
            };
            let mut want = init.clone();
            cpu.gemm(
                alpha,
                Op { m: &a, t: ta },
                Op { m: &b, t: tb },
                beta,
                &mut want,
            )
            .unwrap();
            let mut gc = g.upload(&init).unwrap();
            g.gemm(
                alpha,
                Op { m: &ga, t: ta },
                Op { m: &gb, t: tb },
                beta,
                &mut gc,
            )
            .unwrap();
            let got = g.download(&gc).unwrap();
            assert_close(
                &format!("gemm {tag} {m}x{k}x{n} {ta:?}{tb:?} alpha {alpha} beta {beta}"),
                &got,
                &want,
                1e-4,
            );
        }
    }
}

const SHAPES: [(usize, usize, usize); 9] = [
    (37, 53, 29),
    (1, 1, 1),
    (65, 129, 33),
    (64, 32, 68),   // every operand vec4-aligned
    (130, 12, 131), // partial tiles in both directions
    (3, 0, 4),      // empty inner dimension: C = beta C
    (5, 7, 0),      // empty output
    (37, 300, 29),  // split-K in 2
    (65, 1030, 36), // split-K in 8, vec4 C
];

#[test]
fn gemm_auto_tile() {
    let g = gpu_or_skip!();
    let cpu = Cpu::new();
    for (i, &s) in SHAPES.iter().enumerate() {
        check_gemm(g, &cpu, s, 10 + i as u64, "auto");
    }
}

#[test]
fn gemm_every_tile() {
    let g = gpu_or_skip!();
    let cpu = Cpu::new();
    // Other tests may run GEMMs meanwhile; every tile is correct, so a forced
    // tile leaking into them changes nothing but speed.
    for tile in ["L", "L16", "M", "S"] {
        g.force_gemm_tile(Some(tile)).unwrap();
        for &s in &[(37, 53, 29), (129, 20, 132), (4, 8, 12)] {
            check_gemm(g, &cpu, s, 100, tile);
        }
    }
    g.force_gemm_tile(None).unwrap();
    assert!(g.force_gemm_tile(Some("XL")).is_err());
    // Forced split-K factors, including more splits than k has tiles.
    for splits in [1, 3, 40] {
        g.force_gemm_split(Some(splits));
        for &s in &[(37, 53, 29), (16, 100, 8), (1, 33, 1)] {
            check_gemm(g, &cpu, s, 200, &format!("split {splits}"));
        }
    }
    g.force_gemm_split(None);
}

#[test]
fn sigmoid_affine_probs_and_samples() {
    let g = gpu_or_skip!();
    let cpu = Cpu::new();
    // The last two are split-K on any adapter.
    for &(m, k, n) in &[
        (37, 53, 29),
        (16, 20, 64),
        (1, 3, 1),
        (70, 33, 130),
        (20, 700, 36),
        (13, 520, 7),
    ] {
        for (ta, tb) in TRANS {
            let a = rand_mat(ta.apply((m, k)).0, ta.apply((m, k)).1, 5, -1.0, 1.0);
            let b = rand_mat(tb.apply((k, n)).0, tb.apply((k, n)).1, 6, -1.0, 1.0);
            let bias = rand_mat(1, n, 7, -0.5, 0.5);
            let alpha = 1.7;
            let mut rng_c = RngStream::new(0xDEAD_BEEF_0000_0001, 3);
            rng_c.offset = 5;
            let mut rng_g = rng_c;
            let draw = rng_c; // the draw both will consume
            let (mut prob, mut samp) = (nan_mat(m, n), nan_mat(m, n));
            cpu.sigmoid_affine(
                alpha,
                Op { m: &a, t: ta },
                Op { m: &b, t: tb },
                &bias,
                &mut prob,
                Some(Sample {
                    out: &mut samp,
                    rng: &mut rng_c,
                }),
            )
            .unwrap();
            let (ga, gb, gbias) = (
                g.upload(&a).unwrap(),
                g.upload(&b).unwrap(),
                g.upload(&bias).unwrap(),
            );
            let mut gp = g.upload(&nan_mat(m, n)).unwrap();
            let mut gs = g.upload(&nan_mat(m, n)).unwrap();
            g.sigmoid_affine(
                alpha,
                Op { m: &ga, t: ta },
                Op { m: &gb, t: tb },
                &gbias,
                &mut gp,
                Some(Sample {
                    out: &mut gs,
                    rng: &mut rng_g,
                }),
            )
            .unwrap();
            assert_eq!(rng_c, rng_g, "both consume one draw");
            let what = format!("sigmoid_affine {m}x{k}x{n} {ta:?}{tb:?}");
            let gotp = g.download(&gp).unwrap();
            assert_close(&format!("{what} prob"), &gotp, &prob, 1e-5);
            let gots = g.download(&gs).unwrap();
            let d = draw.clone().next_draw();
            for i in 0..m * n {
                if gots.data[i] != samp.data[i] {
                    let u = d.uniform(i);
                    assert!(
                        (u - prob.data[i]).abs() < 1e-5,
                        "{what} sample {i}: gpu {} cpu {} u {u} p {}",
                        gots.data[i],
                        samp.data[i],
                        prob.data[i]
                    );
                }
            }
            // Without a sample matrix no draw is consumed.
            let before = rng_g;
            g.sigmoid_affine(
                alpha,
                Op { m: &ga, t: ta },
                Op { m: &gb, t: tb },
                &gbias,
                &mut gp,
                None,
            )
            .unwrap();
            assert_eq!(before, rng_g);
            assert_close(
                &format!("{what} prob only"),
                &g.download(&gp).unwrap(),
                &prob,
                1e-5,
            );
        }
    }
}

#[test]
fn bias_step_matches_cpu() {
    let g = gpu_or_skip!();
    let cpu = Cpu::new();
    for &(ra, rb, c) in &[
        (100, 100, 500),
        (37, 53, 29),
        (1, 300, 1),
        (300, 1, 130),
        (0, 5, 7),
    ] {
        let a = rand_mat(ra, c, 31, -1.0, 1.0);
        let b = rand_mat(rb, c, 32, 0.0, 1.0);
        let step0 = rand_mat(1, c, 33, -0.1, 0.1);
        let param0 = rand_mat(1, c, 34, -2.0, 2.0);
        let (mut sc, mut pc) = (step0.clone(), param0.clone());
        cpu.bias_step(
            BiasStep {
                a: &a,
                b: &b,
                step: &mut sc,
                param: &mut pc,
            },
            0.01,
            -0.02,
            0.9,
        )
        .unwrap();
        let (ga, gb) = (g.upload(&a).unwrap(), g.upload(&b).unwrap());
        let (mut sg, mut pg) = (g.upload(&step0).unwrap(), g.upload(&param0).unwrap());
        g.bias_step(
            BiasStep {
                a: &ga,
                b: &gb,
                step: &mut sg,
                param: &mut pg,
            },
            0.01,
            -0.02,
            0.9,
        )
        .unwrap();
        let what = format!("bias_step {ra}/{rb}x{c}");
        assert_close(&what, &g.download(&sg).unwrap(), &sc, 1e-5);
        assert_close(&what, &g.download(&pg).unwrap(), &pc, 1e-5);
    }
    let mut p = g.zeros(1, 4).unwrap();
    let e = g
        .bias_step(
            BiasStep {
                a: &g.zeros(2, 4).unwrap(),
                b: &g.zeros(2, 3).unwrap(),
                step: &mut g.zeros(1, 4).unwrap(),
                param: &mut p,
            },
            1.0,
            1.0,
            0.0,
        )
        .unwrap_err()
        .to_string();
    assert!(e.contains("bias_step") && e.contains("2x3"), "{e}");
}

/// Both layers' bias steps in one call: the same as two `bias_step`s on the
/// CPU, paired in one dispatch when the rows match, two otherwise.
#[test]
fn bias_steps_pair_matches_cpu() {
    use ebmkit::backend::BiasStep;
    let _ = gpu_or_skip!();
    let g = Gpu::new().unwrap(); // its own device: the dispatch count is checked
    let cpu = Cpu::new();
    // (rows of a for v, for h; rows of b for v, for h; columns v, h; dispatches)
    for &(rav, rah, rbv, rbh, cv, ch, want) in &[
        (
            100usize, 100usize, 100usize, 100usize, 784usize, 500usize, 1u64,
        ),
        (37, 37, 53, 53, 29, 130, 1),
        (3, 3, 1, 1, 1, 65, 1),
        (4, 5, 6, 6, 10, 12, 2),
        (0, 0, 2, 2, 64, 64, 1),
    ] {
        let host = |r: usize, c: usize, seed: u64, lo: f32, hi: f32| rand_mat(r, c, seed, lo, hi);
        let (av, bv) = (host(rav, cv, 41, -1.0, 1.0), host(rbv, cv, 42, 0.0, 1.0));
        let (ah, bh) = (host(rah, ch, 43, 0.0, 1.0), host(rbh, ch, 44, -1.0, 1.0));
        let (sv0, pv0) = (host(1, cv, 45, -0.1, 0.1), host(1, cv, 46, -2.0, 2.0));
        let (sh0, ph0) = (host(1, ch, 47, -0.1, 0.1), host(1, ch, 48, -2.0, 2.0));
        let (mut csv, mut cpv, mut csh, mut cph) =
            (sv0.clone(), pv0.clone(), sh0.clone(), ph0.clone());
        cpu.bias_steps(
            BiasStep {
                a: &av,
                b: &bv,
                step: &mut csv,
                param: &mut cpv,
            },
            BiasStep {
                a: &ah,
                b: &bh,
                step: &mut csh,
                param: &mut cph,
            },
            0.01,
            -0.02,
            0.9,
        )
        .unwrap();
        let u = |m: &HostMat| g.upload(m).unwrap();
        let (gav, gbv, gah, gbh) = (u(&av), u(&bv), u(&ah), u(&bh));
        let (mut gsv, mut gpv, mut gsh, mut gph) = (u(&sv0), u(&pv0), u(&sh0), u(&ph0));
        let d0 = g.dispatches();
        g.bias_steps(
            BiasStep {
                a: &gav,
                b: &gbv,
                step: &mut gsv,
                param: &mut gpv,
            },
            BiasStep {
                a: &gah,
                b: &gbh,
                step: &mut gsh,
                param: &mut gph,
            },
            0.01,
            -0.02,
            0.9,
        )
        .unwrap();
        let what = format!("bias_steps v {rav}/{rbv}x{cv}, h {rah}/{rbh}x{ch}");
        assert_eq!(g.dispatches() - d0, want, "{what}: dispatches");
        assert_close(&what, &g.download(&gsv).unwrap(), &csv, 1e-5);
        assert_close(&what, &g.download(&gpv).unwrap(), &cpv, 1e-5);
        assert_close(&what, &g.download(&gsh).unwrap(), &csh, 1e-5);
        assert_close(&what, &g.download(&gph).unwrap(), &cph, 1e-5);
    }
    // Shapes are checked for both layers.
    let z = |r, c| g.zeros(r, c).unwrap();
    let (a, b) = (z(2, 4), z(2, 4));
    let (ah, bh) = (z(2, 3), z(2, 3));
    let (mut s, mut p, mut sh, mut ph) = (z(1, 4), z(1, 4), z(1, 3), z(1, 2));
    let e = g
        .bias_steps(
            BiasStep {
                a: &a,
                b: &b,
                step: &mut s,
                param: &mut p,
            },
            BiasStep {
                a: &ah,
                b: &bh,
                step: &mut sh,
                param: &mut ph,
            },
            1.0,
            1.0,
            0.0,
        )
        .unwrap_err()
        .to_string();
    assert!(e.contains("bias_step") && e.contains("1x2"), "{e}");
}

#[test]
fn unary_every_op() {
    let g = gpu_or_skip!();
    let cpu = Cpu::new();
    let (r, c) = (37, 53);
    for op in Unary::ALL {
        let (lo, hi) = match op {
            Unary::Log | Unary::Sqrt => (1e-3, 50.0),
            Unary::Exp => (-30.0, 30.0),
            _ => (-40.0, 40.0),
        };
        let x = rand_mat(r, c, op as u64 + 1, lo, hi);
        let mut want = x.clone();
        cpu.unary_inplace(op, &mut want).unwrap();
        let gx = g.upload(&x).unwrap();
        let mut gout = g.upload(&nan_mat(r, c)).unwrap();
        g.unary(op, &gx, &mut gout).unwrap();
        assert_close(
            &format!("unary {op:?}"),
            &g.download(&gout).unwrap(),
            &want,
            1e-5,
        );
        let mut gx = gx;
        g.unary_inplace(op, &mut gx).unwrap();
        assert_close(
            &format!("unary_inplace {op:?}"),
            &g.download(&gx).unwrap(),
            &want,
            1e-5,
        );
    }
    // Softplus and sigmoid at the extremes: no overflow, full precision.
    let x = HostMat::new(1, 6, vec![-200.0, -30.0, -1e-8, 0.0, 30.0, 200.0]).unwrap();
    for op in [Unary::Softplus, Unary::Sigmoid, Unary::Tanh] {
        let mut want = x.clone();
        cpu.unary_inplace(op, &mut want).unwrap();
        let mut gx = g.upload(&x).unwrap();
        g.unary_inplace(op, &mut gx).unwrap();
        let got = g.download(&gx).unwrap();
        for (gv, wv) in got.data.iter().zip(&want.data) {
            assert!(gv.is_finite(), "{op:?} gave {gv}");
            // relative, also for tiny values such as softplus(-30) ~ 9.4e-14
            assert!(
                (gv - wv).abs() <= 1e-5 * wv.abs().max(1e-30),
                "{op:?}: {gv} vs {wv}"
            );
        }
    }
}

/// The tails, where an adapter's compiler or transcendentals can cost
/// relative precision (GL's llvmpipe once gave softplus(-30) = 0): every
/// quarter from -60 to 60 and both sides of the kernels' branch points,
/// relative to the CPU's value.
#[test]
fn unary_tails_keep_relative_precision() {
    let g = gpu_or_skip!();
    let cpu = Cpu::new();
    let mut xs: Vec<f32> = (-240..=240).map(|i| i as f32 * 0.25).collect();
    for t in [20.0f32, 0.25, 1e-3, 1e-8] {
        for x in [t, -t] {
            // x and its neighbours, one ulp either way
            let b = x.to_bits();
            xs.extend([x, f32::from_bits(b + 1), f32::from_bits(b - 1)]);
        }
    }
    let x = HostMat::new(1, xs.len(), xs).unwrap();
    let gx = g.upload(&x).unwrap();
    for op in [
        Unary::Softplus,
        Unary::Sigmoid,
        Unary::Tanh,
        Unary::NreluLogPartition,
    ] {
        let mut want = x.clone();
        cpu.unary_inplace(op, &mut want).unwrap();
        let mut gout = g.upload(&nan_mat(1, x.cols)).unwrap();
        g.unary(op, &gx, &mut gout).unwrap();
        let got = g.download(&gout).unwrap();
        for ((xv, gv), wv) in x.data.iter().zip(&got.data).zip(&want.data) {
            assert!(
                (gv - wv).abs() <= 1e-5 * wv.abs().max(1e-30),
                "{op:?}({xv}): gpu {gv} vs cpu {wv}"
            );
        }
    }
}

#[test]
fn binary_every_op() {
    let g = gpu_or_skip!();
    let cpu = Cpu::new();
    let (r, c) = (29, 41);
    let a = rand_mat(r, c, 1, -3.0, 3.0);
    let b = rand_mat(r, c, 2, 0.5, 2.0);
    let (ga, gb) = (g.upload(&a).unwrap(), g.upload(&b).unwrap());
    for op in Binary::ALL {
        let mut want = nan_mat(r, c);
        cpu.binary(op, &a, &b, &mut want).unwrap();
        let mut gout = g.upload(&nan_mat(r, c)).unwrap();
        g.binary(op, &ga, &gb, &mut gout).unwrap();
        assert_close(
            &format!("binary {op:?}"),
            &g.download(&gout).unwrap(),
            &want,
            1e-6,
        );
        let mut ga2 = g.upload(&a).unwrap();
        g.binary_inplace(op, &mut ga2, &gb).unwrap();
        assert_close(
            &format!("binary_inplace {op:?}"),
            &g.download(&ga2).unwrap(),
            &want,
            1e-6,
        );
    }
    // The same matrix on both sides.
    let mut want = nan_mat(r, c);
    cpu.binary(Binary::Mul, &a, &a, &mut want).unwrap();
    let mut gout = g.zeros(r, c).unwrap();
    g.binary(Binary::Mul, &ga, &ga, &mut gout).unwrap();
    assert_close("a * a", &g.download(&gout).unwrap(), &want, 1e-6);
}

#[test]
fn affine_axpby_fill_copy() {
    let g = gpu_or_skip!();
    let cpu = Cpu::new();
    let (r, c) = (33, 17);
    let x = rand_mat(r, c, 3, -2.0, 2.0);
    let y = rand_mat(r, c, 4, -2.0, 2.0);
    let mut want = x.clone();
    cpu.affine(&mut want, 1.5, -0.25).unwrap();
    let mut gx = g.upload(&x).unwrap();
    g.affine(&mut gx, 1.5, -0.25).unwrap();
    assert_close("affine", &g.download(&gx).unwrap(), &want, 1e-6);

    for (alpha, beta, y0) in [(0.7f32, 0.0f32, nan_mat(r, c)), (0.7, -1.3, y.clone())] {
        let mut want = y0.clone();
        cpu.axpby(alpha, &x, beta, &mut want).unwrap();
        let gx = g.upload(&x).unwrap();
        let mut gy = g.upload(&y0).unwrap();
        g.axpby(alpha, &gx, beta, &mut gy).unwrap();
        assert_close(
            &format!("axpby beta {beta}"),
            &g.download(&gy).unwrap(),
            &want,
            1e-6,
        );
    }

    let mut gy = g.upload(&nan_mat(r, c)).unwrap();
    g.fill(&mut gy, 3.25).unwrap();
    assert!(g.download(&gy).unwrap().data.iter().all(|&v| v == 3.25));

    let gx = g.upload(&x).unwrap();
    g.copy(&gx, &mut gy).unwrap();
    assert_eq!(g.download(&gy).unwrap(), x);
}

#[test]
fn broadcasts_and_reductions() {
    let g = gpu_or_skip!();
    let cpu = Cpu::new();
    for &(r, c) in &[(37, 53), (1, 1), (300, 3), (2, 700)] {
        let x = rand_mat(r, c, 8, -1.0, 1.0);
        let rv = rand_mat(1, c, 9, -1.0, 1.0);
        let cv = rand_mat(r, 1, 10, -1.0, 1.0);
        let gx = g.upload(&x).unwrap();
        let (grv, gcv) = (g.upload(&rv).unwrap(), g.upload(&cv).unwrap());

        // Each broadcast applied to a copy of x on both backends.
        let check = |what: &str,
                     on_cpu: &dyn Fn(&mut HostMat),
                     on_gpu: &dyn Fn(&mut ebmkit::backend::gpu::GpuMat)| {
            let mut want = x.clone();
            on_cpu(&mut want);
            let mut gm = g.upload(&x).unwrap();
            on_gpu(&mut gm);
            assert_close(
                &format!("{what} {r}x{c}"),
                &g.download(&gm).unwrap(),
                &want,
                1e-6,
            );
        };
        check(
            "add_row_vec",
            &|m| cpu.add_row_vec(m, &rv, -0.5).unwrap(),
            &|m| g.add_row_vec(m, &grv, -0.5).unwrap(),
        );
        check(
            "add_col_vec",
            &|m| cpu.add_col_vec(m, &cv, 2.0).unwrap(),
            &|m| g.add_col_vec(m, &gcv, 2.0).unwrap(),
        );
        check("mul_row_vec", &|m| cpu.mul_row_vec(m, &rv).unwrap(), &|m| {
            g.mul_row_vec(m, &grv).unwrap()
        });
        check("mul_col_vec", &|m| cpu.mul_col_vec(m, &cv).unwrap(), &|m| {
            g.mul_col_vec(m, &gcv).unwrap()
        });

        for &(alpha, beta) in &[(1.0f32, 0.0f32), (0.25, -2.0)] {
            let o = if beta == 0.0 {
                nan_mat(1, c)
            } else {
                rv.clone()
            };
            let mut want = o.clone();
            cpu.col_sums(&x, alpha, beta, &mut want).unwrap();
            let mut go = g.upload(&o).unwrap();
            g.col_sums(&gx, alpha, beta, &mut go).unwrap();
            assert_close(
                &format!("col_sums {r}x{c} {alpha} {beta}"),
                &g.download(&go).unwrap(),
                &want,
                1e-5,
            );

            let o = if beta == 0.0 {
                nan_mat(r, 1)
            } else {
                cv.clone()
            };
            let mut want = o.clone();
            cpu.row_sums(&x, alpha, beta, &mut want).unwrap();
            let mut go = g.upload(&o).unwrap();
            g.row_sums(&gx, alpha, beta, &mut go).unwrap();
            assert_close(
                &format!("row_sums {r}x{c} {alpha} {beta}"),
                &g.download(&go).unwrap(),
                &want,
                1e-5,
            );
        }
        let (s_cpu, s_gpu) = (cpu.sum(&x).unwrap(), g.sum(&gx).unwrap());
        assert!(
            (s_cpu - s_gpu).abs() <= 1e-4 * (1.0 + s_cpu.abs()),
            "sum {r}x{c}: {s_gpu} vs {s_cpu}"
        );
    }
    // A long sum: many partials.
    let x = rand_mat(1, 300_007, 11, 0.0, 1.0);
    let (s_cpu, s_gpu) = (cpu.sum(&x).unwrap(), g.sum(&g.upload(&x).unwrap()).unwrap());
    assert!(
        (s_cpu - s_gpu).abs() <= 1e-4 * s_cpu.abs(),
        "long sum: {s_gpu} vs {s_cpu}"
    );
}

#[test]
fn gather_rows_batched() {
    let g = gpu_or_skip!();
    let cpu = Cpu::new();
    let src = rand_mat(50, 13, 12, -1.0, 1.0);
    let gsrc = g.upload(&src).unwrap();
    // Several gathers queued in one batch must each see their own indices.
    let idxs: Vec<Vec<u32>> = vec![vec![0, 49, 7, 7, 3], vec![1, 2], vec![49; 9], vec![]];
    let mut outs = Vec::new();
    for idx in &idxs {
        let mut d = g.upload(&nan_mat(idx.len(), 13)).unwrap();
        g.gather_rows(&gsrc, idx, &mut d).unwrap();
        outs.push(d);
    }
    for (idx, d) in idxs.iter().zip(&outs) {
        let mut want = nan_mat(idx.len(), 13);
        cpu.gather_rows(&src, idx, &mut want).unwrap();
        assert_eq!(g.download(d).unwrap(), want, "gather {idx:?}");
    }
}

#[test]
fn many_ops_across_batches_and_writes() {
    let g = gpu_or_skip!();
    let (r, c) = (7, 9);
    let mut x = g.zeros(r, c).unwrap();
    // More dispatches than one batch holds: the parameter ring wraps.
    for _ in 0..300 {
        g.affine(&mut x, 1.0, 1.0).unwrap();
    }
    assert!(g.download(&x).unwrap().data.iter().all(|&v| v == 300.0));
    // write() after queued work: the work sees the old contents, later work the new.
    let mut y = g.zeros(r, c).unwrap();
    g.affine(&mut x, 1.0, 1.0).unwrap(); // 301
    g.copy(&x, &mut y).unwrap();
    g.write(&mut x, &HostMat::from_fn(r, c, |_, _| 5.0))
        .unwrap();
    g.affine(&mut x, 2.0, 0.0).unwrap(); // 10
    assert!(g.download(&y).unwrap().data.iter().all(|&v| v == 301.0));
    assert!(g.download(&x).unwrap().data.iter().all(|&v| v == 10.0));
    // Dropped matrices release their cached bind groups; new ones work.
    for i in 0..20 {
        let a = g.upload(&HostMat::from_fn(3, 3, |_, _| i as f32)).unwrap();
        let mut b = g.zeros(3, 3).unwrap();
        g.copy(&a, &mut b).unwrap();
        assert_eq!(g.sum(&b).unwrap(), 9.0 * i as f32);
    }
    g.sync().unwrap();
}

#[test]
fn more_than_65535_workgroups() {
    let g = gpu_or_skip!();
    let n = 65_535 * 256 + 1000; // > 65535 workgroups of 256 threads
    let mut x = g.zeros(1, n).unwrap();
    g.fill(&mut x, 0.5).unwrap();
    g.affine(&mut x, 2.0, 1.0).unwrap(); // 2
    let host = g.download(&x).unwrap();
    assert!(
        host.data.iter().all(|&v| v == 2.0),
        "every element written once"
    );
    assert_eq!(g.sum(&x).unwrap(), 2.0 * n as f32);
}

#[test]
fn philox_words_bit_identical() {
    let g = gpu_or_skip!();
    let draws = [
        Draw {
            key: [0, 0],
            stream: 0,
            offset: 0,
        },
        Draw {
            key: [u32::MAX, u32::MAX],
            stream: u32::MAX,
            offset: u64::MAX,
        },
        Draw {
            key: [0xa409_3822, 0x299f_31d0],
            stream: 7,
            offset: (3u64 << 32) | 11,
        },
        RngStream::new(0x0123_4567_89ab_cdef, 42).next_draw(),
    ];
    for d in draws {
        for n in [1usize, 3, 4, 7, 1000, 250_001] {
            let got = g.philox_words(d, n).unwrap();
            assert_eq!(got.len(), n);
            for (i, w) in got.iter().enumerate() {
                assert_eq!(*w, d.word(i), "draw {d:?}, word {i} of {n}");
            }
        }
    }
}

#[test]
fn bernoulli_and_gaussian_match_cpu() {
    let g = gpu_or_skip!();
    let cpu = Cpu::new();
    // 512 x 512: enough draws that some u1 lie within 1e-5 of 1, where a
    // native log(u1) may keep no relative precision.
    for &(r, c) in &[(37, 53), (1, 1), (1, 3), (3, 1001), (512, 512)] {
        let p = rand_mat(r, c, 20, 0.0, 1.0);
        let mut rc = RngStream::new(99, 1);
        let mut rg = rc;
        let d = rc.clone().next_draw();
        let mut want = nan_mat(r, c);
        cpu.bernoulli(&p, &mut want, &mut rc).unwrap();
        let gp = g.upload(&p).unwrap();
        let mut gout = g.upload(&nan_mat(r, c)).unwrap();
        g.bernoulli(&gp, &mut gout, &mut rg).unwrap();
        assert_eq!(rc, rg);
        let got = g.download(&gout).unwrap();
        for i in 0..r * c {
            if got.data[i] != want.data[i] {
                assert!((d.uniform(i) - p.data[i]).abs() < 1e-6, "bernoulli {i}");
            }
        }

        let mean = rand_mat(r, c, 21, -1.0, 1.0);
        let mut want = nan_mat(r, c);
        cpu.gaussian(&mean, 0.7, &mut want, &mut rc).unwrap();
        let gm = g.upload(&mean).unwrap();
        g.gaussian(&gm, 0.7, &mut gout, &mut rg).unwrap();
        assert_eq!(rc, rg);
        assert_close(
            &format!("gaussian {r}x{c}"),
            &g.download(&gout).unwrap(),
            &want,
            1e-4,
        );
    }
}

/// Standard normal CDF via erf (Abramowitz & Stegun 7.1.26, |error| < 1.5e-7).
fn normal_cdf(x: f64) -> f64 {
    let z = x.abs() / std::f64::consts::SQRT_2;
    let t = 1.0 / (1.0 + 0.3275911 * z);
    let poly = t
        * (0.254829592
            + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
    let erf = 1.0 - poly * (-z * z).exp();
    if x >= 0.0 {
        0.5 * (1.0 + erf)
    } else {
        0.5 * (1.0 - erf)
    }
}

#[test]
fn sampler_statistics() {
    let g = gpu_or_skip!();
    let n = 100_000;
    let mut rng = RngStream::new(2024, 5);

    let p = g.upload(&HostMat::from_fn(1, n, |_, _| 0.3)).unwrap();
    let mut s = g.zeros(1, n).unwrap();
    g.bernoulli(&p, &mut s, &mut rng).unwrap();
    let mean = g.sum(&s).unwrap() as f64 / n as f64;
    let sd = (0.3f64 * 0.7 / n as f64).sqrt();
    assert!((mean - 0.3).abs() < 5.0 * sd, "bernoulli mean {mean}");

    let zero = g.zeros(1, n).unwrap();
    g.gaussian(&zero, 1.0, &mut s, &mut rng).unwrap();
    let mut z: Vec<f64> = g
        .download(&s)
        .unwrap()
        .data
        .iter()
        .map(|&v| v as f64)
        .collect();
    let m = z.iter().sum::<f64>() / n as f64;
    let var = z.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / (n - 1) as f64;
    assert!(m.abs() < 5.0 / (n as f64).sqrt(), "gaussian mean {m}");
    // sd of the sample variance of a normal: sqrt(2 / (n - 1))
    assert!(
        (var - 1.0).abs() < 5.0 * (2.0 / (n as f64 - 1.0)).sqrt(),
        "gaussian variance {var}"
    );
    z.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let mut d = 0.0f64;
    for (i, &v) in z.iter().enumerate() {
        let f = normal_cdf(v);
        d = d
            .max((f - i as f64 / n as f64).abs())
            .max(((i + 1) as f64 / n as f64 - f).abs());
    }
    // Kolmogorov-Smirnov at the 0.1% level: 1.95 / sqrt(n).
    assert!(d < 1.95 / (n as f64).sqrt(), "KS statistic {d}");
}

#[test]
fn concurrent_sums_and_downloads() {
    let g = gpu_or_skip!();
    std::thread::scope(|s| {
        for t in 0..4 {
            s.spawn(move || {
                let x = g.upload(&HostMat::from_fn(9, 11, |_, _| t as f32)).unwrap();
                for _ in 0..25 {
                    assert_eq!(g.sum(&x).unwrap(), 99.0 * t as f32, "thread {t}");
                    assert!(g.download(&x).unwrap().data.iter().all(|&v| v == t as f32));
                }
            });
        }
    });
}

/// The fused annealing step against its CPU twin, and the CPU twin against
/// the same quantity composed from independent ops (so both cannot share a
/// mistake): log-weight increments, hidden samples, the linear last column
/// AIS uses, and the no-sample form that consumes no draw.
#[test]
fn tempered_hidden_matches_cpu_and_composition() {
    let g = gpu_or_skip!();
    let cpu = Cpu::new();
    for &(rows, n, linear) in &[
        (7usize, 300usize, None),
        (33, 17, None),
        (1, 1, None),
        (7, 301, Some(2.5f32)),
        (5, 1, Some(-1.0)),
    ] {
        let x = rand_mat(rows, n, 11, -6.0, 6.0);
        let bh = rand_mat(1, n, 12, -2.0, 2.0);
        let lw0 = rand_mat(rows, 1, 13, -1.0, 1.0);
        let (b0, b1) = (0.31f32, 0.47f32);
        let soft = if linear.is_some() { n - 1 } else { n };

        // Independent composition on the CPU: softplus(b y) per element, in f64.
        let want_lw = HostMat::from_fn(rows, 1, |r, _| {
            let mut s: f64 = (0..soft)
                .map(|j| {
                    let y = (x.get(r, j) + bh.get(0, j)) as f64;
                    let sp = |t: f64| t.max(0.0) + (-t.abs()).exp().ln_1p();
                    sp(b1 as f64 * y) - sp(b0 as f64 * y)
                })
                .sum();
            if linear.is_some() {
                s += (b1 - b0) as f64 * (x.get(r, soft) + bh.get(0, soft)) as f64;
            }
            lw0.get(r, 0) + s as f32
        });

        let mut c_lw = lw0.clone();
        let mut c_h = HostMat::zeros(rows, n);
        let mut c_rng = RngStream::new(3, 4);
        cpu.tempered_hidden(
            &x,
            &Tempered {
                b_h: &bh,
                beta0: b0,
                beta1: b1,
                linear_last: linear,
            },
            &mut c_lw,
            Some(Sample {
                out: &mut c_h,
                rng: &mut c_rng,
            }),
        )
        .unwrap();
        assert_close("cpu tempered_hidden lw", &c_lw, &want_lw, 1e-4);
        // Hidden samples follow the shared uniform stream at element r*n + j.
        let d = RngStream::new(3, 4).next_draw();
        for r in 0..rows {
            for j in 0..soft {
                let y = x.get(r, j) + bh.get(0, j);
                let p = 1.0 / (1.0 + (-(b1 * y)).exp());
                let u = d.uniform(r * n + j);
                if (u - p).abs() > 1e-5 {
                    assert_eq!(
                        c_h.get(r, j),
                        if u < p { 1.0 } else { 0.0 },
                        "cpu h[{r},{j}]"
                    );
                }
            }
            if let Some(c) = linear {
                assert_eq!(c_h.get(r, soft), c, "cpu h[{r}, linear]");
            }
        }

        let gx = g.upload(&x).unwrap();
        let gbh = g.upload(&bh).unwrap();
        let mut g_lw = g.upload(&lw0).unwrap();
        let mut g_h = g.upload(&nan_mat(rows, n)).unwrap();
        let mut g_rng = RngStream::new(3, 4);
        g.tempered_hidden(
            &gx,
            &Tempered {
                b_h: &gbh,
                beta0: b0,
                beta1: b1,
                linear_last: linear,
            },
            &mut g_lw,
            Some(Sample {
                out: &mut g_h,
                rng: &mut g_rng,
            }),
        )
        .unwrap();
        assert_eq!(g_rng, c_rng, "one draw on each backend");
        assert_close(
            "gpu tempered_hidden lw",
            &g.download(&g_lw).unwrap(),
            &c_lw,
            1e-4,
        );
        let gh = g.download(&g_h).unwrap();
        let differ = gh
            .data
            .iter()
            .zip(&c_h.data)
            .filter(|(a, b)| a != b)
            .count();
        assert!(differ <= 1, "{differ} hidden samples differ ({rows}x{n})");

        // Without a sample: no draw consumed, the same increment.
        let mut g_lw2 = g.upload(&lw0).unwrap();
        let rng2 = RngStream::new(3, 4);
        g.tempered_hidden(
            &gx,
            &Tempered {
                b_h: &gbh,
                beta0: b0,
                beta1: b1,
                linear_last: linear,
            },
            &mut g_lw2,
            None,
        )
        .unwrap();
        assert_eq!(rng2.offset, 0);
        assert_close(
            "gpu tempered_hidden lw (no sample)",
            &g.download(&g_lw2).unwrap(),
            &c_lw,
            1e-4,
        );
    }
    // Shapes are checked.
    let x = g.zeros(3, 4).unwrap();
    let bh = g.zeros(1, 5).unwrap();
    let mut lw = g.zeros(3, 1).unwrap();
    let e = g
        .tempered_hidden(
            &x,
            &Tempered {
                b_h: &bh,
                beta0: 0.0,
                beta1: 1.0,
                linear_last: None,
            },
            &mut lw,
            None,
        )
        .unwrap_err();
    assert!(e.to_string().contains("1x5"), "{e}");
}

/// `gemm_tempered_hidden` sums a split-K product's partials inside the
/// tempered pass: bit for bit what the GEMM (with its reduction pass) and
/// `tempered_hidden` give as two ops, one dispatch fewer, and the CPU's
/// composition within rounding. Its own device, so that no other test's
/// forced split or dispatches interleave.
#[test]
fn gemm_tempered_hidden_fuses_the_split_reduction() {
    let _ = gpu_or_skip!();
    let g = Gpu::new().unwrap();
    let cpu = Cpu::new();
    for &(rows, k, n, linear) in &[
        (7usize, 400usize, 301usize, Some(2.5f32)),
        (33, 200, 17, None),
        (100, 784, 501, Some(0.7)),
    ] {
        let v = rand_mat(rows, k, 21, 0.0, 1.0);
        let w = rand_mat(k, n, 22, -0.1, 0.1);
        let bh = rand_mat(1, n, 23, -1.0, 1.0);
        let lw0 = rand_mat(rows, 1, 24, -1.0, 1.0);
        let (b0, b1) = (0.62f32, 0.63f32);
        let mut c_x = HostMat::zeros(rows, n);
        let mut c_lw = lw0.clone();
        let mut c_h = HostMat::zeros(rows, n);
        cpu.gemm_tempered_hidden(
            &v,
            &w,
            &mut c_x,
            &Tempered {
                b_h: &bh,
                beta0: b0,
                beta1: b1,
                linear_last: linear,
            },
            &mut c_lw,
            Some(Sample {
                out: &mut c_h,
                rng: &mut RngStream::new(5, 6),
            }),
        )
        .unwrap();
        let (gv, gw, gbh) = (
            g.upload(&v).unwrap(),
            g.upload(&w).unwrap(),
            g.upload(&bh).unwrap(),
        );
        for split in [None, Some(1), Some(3), Some(7)] {
            g.force_gemm_split(split);
            let tag = format!("{rows}x{k}x{n} split {split:?}");
            // Two ops: the GEMM writes x, the tempered pass reads it.
            let mut x = g.zeros(rows, n).unwrap();
            let mut lw_two = g.upload(&lw0).unwrap();
            let mut h_two = g.zeros(rows, n).unwrap();
            let d0 = g.dispatches();
            g.gemm(1.0, gv.n(), gw.n(), 0.0, &mut x).unwrap();
            g.tempered_hidden(
                &x,
                &Tempered {
                    b_h: &gbh,
                    beta0: b0,
                    beta1: b1,
                    linear_last: linear,
                },
                &mut lw_two,
                Some(Sample {
                    out: &mut h_two,
                    rng: &mut RngStream::new(5, 6),
                }),
            )
            .unwrap();
            let two = g.dispatches() - d0;
            // Fused.
            let mut x2 = g.zeros(rows, n).unwrap();
            let mut lw_one = g.upload(&lw0).unwrap();
            let mut h_one = g.zeros(rows, n).unwrap();
            let d0 = g.dispatches();
            g.gemm_tempered_hidden(
                &gv,
                &gw,
                &mut x2,
                &Tempered {
                    b_h: &gbh,
                    beta0: b0,
                    beta1: b1,
                    linear_last: linear,
                },
                &mut lw_one,
                Some(Sample {
                    out: &mut h_one,
                    rng: &mut RngStream::new(5, 6),
                }),
            )
            .unwrap();
            let one = g.dispatches() - d0;
            let split_used = two == 3;
            eprintln!("{tag}: {two} dispatches as two ops, {one} fused");
            assert_eq!(one, 2, "{tag}: one GEMM pass and the tempered pass");
            if split == Some(3) || split == Some(7) {
                assert!(split_used, "{tag}: forced split not taken");
            }
            let (a, b) = (g.download(&lw_one).unwrap(), g.download(&lw_two).unwrap());
            assert_eq!(a.data, b.data, "{tag}: lw fused vs two ops");
            let (a, b) = (g.download(&h_one).unwrap(), g.download(&h_two).unwrap());
            assert_eq!(a.data, b.data, "{tag}: h fused vs two ops");
            assert_close(
                &format!("{tag}: lw gpu vs cpu"),
                &g.download(&lw_one).unwrap(),
                &c_lw,
                1e-4,
            );
        }
        g.force_gemm_split(None);
    }
    // Shapes are checked before anything is recorded.
    let v = g.zeros(3, 4).unwrap();
    let w = g.zeros(5, 6).unwrap();
    let mut x = g.zeros(3, 6).unwrap();
    let bh = g.zeros(1, 6).unwrap();
    let mut lw = g.zeros(3, 1).unwrap();
    let e = g
        .gemm_tempered_hidden(
            &v,
            &w,
            &mut x,
            &Tempered {
                b_h: &bh,
                beta0: 0.0,
                beta1: 1.0,
                linear_last: None,
            },
            &mut lw,
            None,
        )
        .unwrap_err();
    assert!(e.to_string().contains("gemm_tempered_hidden"), "{e}");
}

/// Row maxima and their columns (ties to the first, rows wider than a
/// workgroup, all-negative rows) and soft thresholding, against the CPU;
/// Step and Sign at exactly zero.
#[test]
fn row_max_argmax_shrink_step_sign() {
    let g = gpu_or_skip!();
    let cpu = Cpu::new();
    for &(r, c) in &[(5, 1), (7, 300), (64, 33), (3, 1025)] {
        let mut x = rand_mat(r, c, (r * c) as u64, -5.0, -1.0);
        // Ties: the row maximum twice, and a tie across workgroup lanes.
        if c > 2 {
            for row in 0..r {
                let (a, b) = ((row * 7) % c, (row * 7 + c / 2 + 1) % c);
                x.data[row * c + a] = 2.0;
                x.data[row * c + b] = 2.0;
            }
        }
        let gx = g.upload(&x).unwrap();
        for (name, argmax) in [("row_max", false), ("row_argmax", true)] {
            let mut want = HostMat::zeros(r, 1);
            let mut gout = g.upload(&nan_mat(r, 1)).unwrap();
            if argmax {
                cpu.row_argmax(&x, &mut want).unwrap();
                g.row_argmax(&gx, &mut gout).unwrap();
            } else {
                cpu.row_max(&x, &mut want).unwrap();
                g.row_max(&gx, &mut gout).unwrap();
            }
            let got = g.download(&gout).unwrap();
            assert_eq!(got.data, want.data, "{name} {r}x{c}");
        }
        let mut want = HostMat::zeros(r, c);
        cpu.shrink(&x, 2.5, &mut want).unwrap();
        let mut gout = g.upload(&nan_mat(r, c)).unwrap();
        g.shrink(&gx, 2.5, &mut gout).unwrap();
        assert_eq!(g.download(&gout).unwrap().data, want.data, "shrink {r}x{c}");
    }
    let x = HostMat::new(1, 5, vec![-2.0, -0.0, 0.0, 1e-30, 3.0]).unwrap();
    let gx = g.upload(&x).unwrap();
    for (op, want) in [
        (Unary::Step, [0.0, 0.0, 0.0, 1.0, 1.0]),
        (Unary::Sign, [-1.0, 0.0, 0.0, 1.0, 1.0]),
    ] {
        let mut c = HostMat::zeros(1, 5);
        cpu.unary(op, &x, &mut c).unwrap();
        assert_eq!(c.data, want, "cpu {op:?}");
        let mut gout = g.zeros(1, 5).unwrap();
        g.unary(op, &gx, &mut gout).unwrap();
        assert_eq!(g.download(&gout).unwrap().data, want, "gpu {op:?}");
    }
    let mut bad = cpu.zeros(3, 1).unwrap();
    let e = cpu
        .row_max(&HostMat::zeros(2, 4), &mut bad)
        .unwrap_err()
        .to_string();
    assert!(e.contains("row_max") && e.contains("2x1"), "{e}");
}
