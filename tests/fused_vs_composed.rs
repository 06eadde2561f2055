//! Every fused op against its default composition in core ops
//! (`backend::fused::composed`), on the CPU and on the GPU: the fused
//! kernels are speed-ups of the compositions, never other mathematics, and a
//! backend with no fused kernel gets the same answers.

#[macro_use]
mod common;

use ebmkit::backend::fused::composed;
use ebmkit::prelude::*;

fn rand_mat(rows: usize, cols: usize, seed: u64, lo: f32, hi: f32) -> HostMat {
    let d = RngStream::new(seed, 17).next_draw();
    HostMat::from_fn(rows, cols, |r, c| lo + (hi - lo) * d.uniform(r * cols + c))
}

fn assert_close(what: &str, got: &HostMat, want: &HostMat, tol: f32) {
    assert_eq!(got.shape(), want.shape(), "{what}");
    for (i, (a, b)) in got.data.iter().zip(&want.data).enumerate() {
        assert!(
            (a - b).abs() <= tol * (1.0 + b.abs()),
            "{what}: element {i}: {a} vs {b}"
        );
    }
}

/// Samples from nearly equal probabilities: they may differ only where the
/// uniform fell between the two.
fn assert_samples_agree(what: &str, got: &HostMat, want: &HostMat) {
    let differ = got
        .data
        .iter()
        .zip(&want.data)
        .filter(|(a, b)| a != b)
        .count();
    assert!(
        differ * 1000 <= got.data.len().max(1000),
        "{what}: {differ} of {} samples differ",
        got.data.len()
    );
}

/// `sigmoid_affine`, or with `acc` `sigmoid_affine_acc` on a prefilled
/// output.
fn check_sigmoid_affine<B: Fused>(be: &B, tag: &str, acc: bool) {
    for &(m, k, n) in &[(7, 13, 5), (33, 64, 40), (1, 1, 1)] {
        for (ta, tb) in [
            (Trans::N, Trans::N),
            (Trans::T, Trans::N),
            (Trans::N, Trans::T),
        ] {
            let a = rand_mat(ta.apply((m, k)).0, ta.apply((m, k)).1, 1, -1.0, 1.0);
            let b = rand_mat(tb.apply((k, n)).0, tb.apply((k, n)).1, 2, -1.0, 1.0);
            let bias = rand_mat(1, n, 3, -0.5, 0.5);
            let (a, b, bias) = (
                be.upload(&a).unwrap(),
                be.upload(&b).unwrap(),
                be.upload(&bias).unwrap(),
            );
            let (oa, ob) = (Op { m: &a, t: ta }, Op { m: &b, t: tb });
            let run = |fused: bool| -> (HostMat, HostMat, u64) {
                // The accumulated input is wide enough to move the result.
                let mut prob = be.upload(&rand_mat(m, n, 8, -2.0, 2.0)).unwrap();
                let mut s = be.zeros(m, n).unwrap();
                let mut rng = RngStream::new(9, 9);
                let sample = Some(Sample {
                    out: &mut s,
                    rng: &mut rng,
                });
                match (fused, acc) {
                    (true, false) => be.sigmoid_affine(0.7, oa, ob, &bias, &mut prob, sample),
                    (false, false) => {
                        composed::sigmoid_affine(be, 0.7, oa, ob, &bias, &mut prob, sample)
                    }
                    (true, true) => be.sigmoid_affine_acc(0.7, oa, ob, &bias, &mut prob, sample),
                    (false, true) => {
                        composed::sigmoid_affine_acc(be, 0.7, oa, ob, &bias, &mut prob, sample)
                    }
                }
                .unwrap();
                (
                    be.download(&prob).unwrap(),
                    be.download(&s).unwrap(),
                    rng.offset,
                )
            };
            let (pf, sf, of) = run(true);
            let (pc, sc, oc) = run(false);
            let op = if acc {
                "sigmoid_affine_acc"
            } else {
                "sigmoid_affine"
            };
            let what = format!("{tag} {op} {m}x{k}x{n} {ta:?}{tb:?}");
            assert_close(&what, &pf, &pc, 2e-6);
            assert_samples_agree(&what, &sf, &sc);
            assert_eq!(of, oc, "{what}: draws consumed");
        }
    }
}

fn check_bias_steps<B: Fused>(be: &B, tag: &str) {
    for &(ra, rb, c) in &[(10, 6, 5), (100, 100, 300), (1, 3, 1)] {
        let a = be.upload(&rand_mat(ra, c, 4, 0.0, 1.0)).unwrap();
        let b = be.upload(&rand_mat(rb, c, 5, 0.0, 1.0)).unwrap();
        let step0 = rand_mat(1, c, 6, -0.1, 0.1);
        let param0 = rand_mat(1, c, 7, -1.0, 1.0);
        let run = |fused: bool| -> (HostMat, HostMat) {
            let mut step = be.upload(&step0).unwrap();
            let mut param = be.upload(&param0).unwrap();
            let s = BiasStep {
                a: &a,
                b: &b,
                step: &mut step,
                param: &mut param,
            };
            if fused {
                be.bias_step(s, 0.01, -0.02, 0.9).unwrap();
            } else {
                composed::bias_step(be, s, 0.01, -0.02, 0.9).unwrap();
            }
            (be.download(&step).unwrap(), be.download(&param).unwrap())
        };
        let (sf, pf) = run(true);
        let (sc, pc) = run(false);
        let what = format!("{tag} bias_step {ra}/{rb}x{c}");
        assert_close(&what, &sf, &sc, 1e-5);
        assert_close(&what, &pf, &pc, 1e-5);
    }
}

fn check_tempered<B: Fused>(be: &B, tag: &str) {
    for &(rows, n) in &[(5, 9), (64, 301), (3, 1)] {
        let x = be.upload(&rand_mat(rows, n, 8, -4.0, 4.0)).unwrap();
        let b_h = be.upload(&rand_mat(1, n, 9, -1.0, 1.0)).unwrap();
        let lw0 = rand_mat(rows, 1, 10, -2.0, 2.0);
        for linear_last in [None, Some(0.25f32)] {
            if linear_last.is_some() && n < 2 {
                continue;
            }
            let p = Tempered {
                b_h: &b_h,
                beta0: 0.3,
                beta1: 0.35,
                linear_last,
            };
            let run = |fused: bool, sample: bool| -> (HostMat, HostMat) {
                let mut lw = be.upload(&lw0).unwrap();
                let mut h = be.zeros(rows, n).unwrap();
                let mut rng = RngStream::new(2, 2);
                let s = sample.then_some(Sample {
                    out: &mut h,
                    rng: &mut rng,
                });
                if fused {
                    be.tempered_hidden(&x, &p, &mut lw, s).unwrap();
                } else {
                    composed::tempered_hidden(be, &x, &p, &mut lw, s).unwrap();
                }
                (be.download(&lw).unwrap(), be.download(&h).unwrap())
            };
            for sample in [true, false] {
                let (lf, hf) = run(true, sample);
                let (lc, hc) = run(false, sample);
                let what = format!("{tag} tempered_hidden {rows}x{n} {linear_last:?} {sample}");
                assert_close(&what, &lf, &lc, 1e-5);
                assert_samples_agree(&what, &hf, &hc);
                if let (Some(c), true) = (linear_last, sample) {
                    for r in 0..rows {
                        assert_eq!(hf.get(r, n - 1), c, "{what}: linear column");
                        assert_eq!(hc.get(r, n - 1), c, "{what}: linear column");
                    }
                }
            }
        }
    }
}

#[test]
fn cpu_fused_ops_match_their_compositions() {
    let cpu = Cpu::new();
    check_sigmoid_affine(&cpu, "cpu", false);
    check_sigmoid_affine(&cpu, "cpu", true);
    check_bias_steps(&cpu, "cpu");
    check_tempered(&cpu, "cpu");
}

#[test]
fn gpu_fused_ops_match_their_compositions() {
    let g = gpu_or_skip!();
    check_sigmoid_affine(g, "gpu", false);
    check_sigmoid_affine(g, "gpu", true);
    // The split-K reduction carries the same epilogue.
    g.force_gemm_split(Some(3));
    check_sigmoid_affine(g, "gpu split-K", false);
    check_sigmoid_affine(g, "gpu split-K", true);
    g.force_gemm_split(None);
    check_bias_steps(g, "gpu");
    check_tempered(g, "gpu");
}

#[test]
fn compositions_check_shapes() {
    let cpu = Cpu::new();
    let a = cpu.zeros(3, 4).unwrap();
    let b = cpu.zeros(5, 2).unwrap();
    let bias = cpu.zeros(1, 2).unwrap();
    let mut prob = cpu.zeros(3, 2).unwrap();
    let e = composed::sigmoid_affine(&cpu, 1.0, a.n(), b.n(), &bias, &mut prob, None)
        .unwrap_err()
        .to_string();
    assert!(e.contains("sigmoid_affine") && e.contains("3x4"), "{e}");
    let x = cpu.zeros(3, 4).unwrap();
    let bad = cpu.zeros(1, 3).unwrap();
    let mut lw = cpu.zeros(3, 1).unwrap();
    let p = Tempered {
        b_h: &bad,
        beta0: 0.0,
        beta1: 1.0,
        linear_last: None,
    };
    let e = composed::tempered_hidden(&cpu, &x, &p, &mut lw, None)
        .unwrap_err()
        .to_string();
    assert!(e.contains("tempered_hidden (b_h)"), "{e}");
}
