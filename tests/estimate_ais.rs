//! AIS and reverse AIS against the exact log Z of RBMs small enough to
//! enumerate: one with 20 hidden units trained by CD-1 on MNIST digits (so
//! the weights look like real ones), one random with 12. On the CPU, and on
//! the GPU when an adapter exists (skipped without one, a failure with
//! `EBMKIT_REQUIRE_GPU=1`).

#[macro_use]
mod common;
use ebmkit::backend::cpu::Cpu;
use ebmkit::data::{binarize_threshold, Mnist};
use ebmkit::estimate::ais::{AisEstimate, Schedule};
use ebmkit::estimate::rbm::ais::{self, BaseRate};
use ebmkit::estimate::rbm::exact;
use ebmkit::models::rbm::{Rbm, RbmHost};
use ebmkit::prelude::*;
use ebmkit::rng::RngStream;
use ebmkit::{Backend, HostMat};
use std::sync::OnceLock;

struct Params {
    w: HostMat,
    b_v: HostMat,
    b_h: HostMat,
    data: HostMat,
}

impl Params {
    fn rbm<B: Fused>(&self, be: &B) -> Rbm<B> {
        let host = RbmHost::binary(self.w.clone(), self.b_v.clone(), self.b_h.clone());
        Rbm::from_host(be, &host).unwrap()
    }
}

/// CD-1 on the first 2,000 embedded MNIST digits (binarised at 0.5).
fn train_mnist_rbm(nh: usize) -> &'static Params {
    static P: OnceLock<Params> = OnceLock::new();
    P.get_or_init(|| {
        let cpu = Cpu::new();
        let mnist = Mnist::load_embedded().expect("embedded MNIST subset");
        let n = 2000;
        let data = binarize_threshold(
            &mnist
                .train_images
                .select_rows(&(0..n).collect::<Vec<_>>())
                .unwrap(),
            0.5,
        );
        let nv = data.cols;
        let base = BaseRate::from_host(&data).unwrap();
        let x = cpu.upload(&data).unwrap();
        let mut rng = RngStream::new(2024, 0);
        let mut w = cpu.zeros(nv, nh).unwrap();
        let zeros = cpu.zeros(nv, nh).unwrap();
        cpu.gaussian(&zeros, 0.01, &mut w, &mut rng).unwrap();
        let mut b_v = cpu
            .upload(&HostMat::new(1, nv, base.b_a.clone()).unwrap())
            .unwrap();
        let mut b_h = cpu.zeros(1, nh).unwrap();
        let bs = 100;
        let lr = 0.1f32;
        let (mut v0, mut v1) = (cpu.zeros(bs, nv).unwrap(), cpu.zeros(bs, nv).unwrap());
        let mut pv1 = cpu.zeros(bs, nv).unwrap();
        let (mut ph0, mut h0, mut ph1) = (
            cpu.zeros(bs, nh).unwrap(),
            cpu.zeros(bs, nh).unwrap(),
            cpu.zeros(bs, nh).unwrap(),
        );
        let (mut dbv, mut dbh) = (cpu.zeros(1, nv).unwrap(), cpu.zeros(1, nh).unwrap());
        let s = lr / bs as f32;
        for epoch in 0..6u32 {
            for b in 0..n / bs {
                // A fixed stride permutation per epoch is shuffle enough here.
                let idx: Vec<u32> = (0..bs)
                    .map(|i| (((b * bs + i) * 7 + epoch as usize * 131) % n) as u32)
                    .collect();
                cpu.gather_rows(&x, &idx, &mut v0).unwrap();
                cpu.sigmoid_affine(
                    1.0,
                    v0.n(),
                    w.n(),
                    &b_h,
                    &mut ph0,
                    Some(Sample {
                        out: &mut h0,
                        rng: &mut rng,
                    }),
                )
                .unwrap();
                cpu.sigmoid_affine(
                    1.0,
                    h0.n(),
                    w.t(),
                    &b_v,
                    &mut pv1,
                    Some(Sample {
                        out: &mut v1,
                        rng: &mut rng,
                    }),
                )
                .unwrap();
                cpu.sigmoid_affine(1.0, v1.n(), w.n(), &b_h, &mut ph1, None)
                    .unwrap();
                cpu.gemm(s, v0.t(), ph0.n(), 1.0, &mut w).unwrap();
                cpu.gemm(-s, v1.t(), ph1.n(), 1.0, &mut w).unwrap();
                cpu.col_sums(&v0, s, 0.0, &mut dbv).unwrap();
                cpu.col_sums(&v1, -s, 1.0, &mut dbv).unwrap();
                cpu.axpby(1.0, &dbv, 1.0, &mut b_v).unwrap();
                cpu.col_sums(&ph0, s, 0.0, &mut dbh).unwrap();
                cpu.col_sums(&ph1, -s, 1.0, &mut dbh).unwrap();
                cpu.axpby(1.0, &dbh, 1.0, &mut b_h).unwrap();
            }
        }
        Params {
            w: cpu.download(&w).unwrap(),
            b_v: cpu.download(&b_v).unwrap(),
            b_h: cpu.download(&b_h).unwrap(),
            data,
        }
    })
}

struct Run {
    exact: f64,
    fwd: AisEstimate,
}

fn forward_on<B: Fused>(
    be: &B,
    p: &Params,
    schedule: &Schedule,
    runs: usize,
    seed: u64,
    want_exact: bool,
) -> (f64, AisEstimate) {
    let rbm = p.rbm(be);
    let exact = if want_exact {
        exact::log_z(be, &rbm).unwrap()
    } else {
        f64::NAN
    };
    let base = BaseRate::from_host(&p.data).unwrap();
    let mut rng = RngStream::new(seed, 0);
    let est = ais::forward(be, &rbm, &base, schedule, runs, &mut rng).unwrap();
    (exact, est)
}

fn report(what: &str, exact: f64, e: &AisEstimate) {
    eprintln!(
        "{what}: exact {exact:.4}, AIS {:.4} (error {:+.4}) [{:.4}, {:.4}], ESS {:.1}/{}, {} temperatures",
        e.log_z,
        e.log_z - exact,
        e.log_z_lower,
        e.log_z_upper,
        e.ess,
        e.runs(),
        e.temperatures
    );
}

/// A fifth of the standard schedule, same shape.
fn test_schedule() -> Schedule {
    Schedule::three_stage(100, 800, 2000).unwrap()
}

fn mnist_cpu_run() -> &'static Run {
    static R: OnceLock<Run> = OnceLock::new();
    R.get_or_init(|| {
        let p = train_mnist_rbm(20);
        let (exact, fwd) = forward_on(&Cpu::new(), p, &test_schedule(), 100, 7, true);
        Run { exact, fwd }
    })
}

#[test]
fn forward_ais_matches_exact_on_a_trained_mnist_rbm() {
    let r = mnist_cpu_run();
    report("MNIST 784x20, CPU, forward", r.exact, &r.fwd);
    assert!((r.fwd.log_z - r.exact).abs() < 0.2);
    assert!(r.fwd.log_z_lower <= r.fwd.log_z && r.fwd.log_z <= r.fwd.log_z_upper);
    assert!(r.fwd.ess > 1.0 && r.fwd.ess <= 100.0 + 1e-9);
}

#[test]
fn reverse_ais_matches_exact_on_a_trained_mnist_rbm() {
    let cpu = Cpu::new();
    let p = train_mnist_rbm(20);
    let r = mnist_cpu_run();
    let rbm = p.rbm(&cpu);
    let base = BaseRate::from_host(&p.data).unwrap();
    let mut rng = RngStream::new(99, 0);
    // Exact samples: the stochastic upper bound holds.
    let init = exact::sample(&cpu, &rbm, 100, &mut rng).unwrap();
    let rev = ais::reverse(&cpu, &rbm, &base, &test_schedule(), &init, &mut rng).unwrap();
    report(
        "MNIST 784x20, CPU, reverse from exact samples",
        r.exact,
        &rev,
    );
    assert!((rev.log_z - r.exact).abs() < 0.2);
    // Long Gibbs chains from the data: the usual approximation.
    let idx: Vec<usize> = (0..100).map(|i| i * 17).collect();
    let mut v = cpu.upload(&p.data.select_rows(&idx).unwrap()).unwrap();
    let (mut ph, mut h, mut pv) = (
        cpu.zeros(100, 20).unwrap(),
        cpu.zeros(100, 20).unwrap(),
        cpu.zeros(100, 784).unwrap(),
    );
    for _ in 0..1000 {
        cpu.sigmoid_affine(
            1.0,
            v.n(),
            rbm.w.n(),
            &rbm.b_h,
            &mut ph,
            Some(Sample {
                out: &mut h,
                rng: &mut rng,
            }),
        )
        .unwrap();
        cpu.sigmoid_affine(
            1.0,
            h.n(),
            rbm.w.t(),
            &rbm.b_v,
            &mut pv,
            Some(Sample {
                out: &mut v,
                rng: &mut rng,
            }),
        )
        .unwrap();
    }
    let rev_g = ais::reverse(&cpu, &rbm, &base, &test_schedule(), &v, &mut rng).unwrap();
    report(
        "MNIST 784x20, CPU, reverse from Gibbs chains",
        r.exact,
        &rev_g,
    );
    assert!((rev_g.log_z - r.exact).abs() < 0.2);
    // The two directions bracket the truth, up to their Monte Carlo noise.
    assert!(r.fwd.log_z <= r.exact + 0.05 && rev.log_z >= r.exact - 0.05);
}

fn random_rbm() -> Params {
    let (nv, nh) = (40, 12);
    let d = RngStream::new(5, 5).next_draw();
    let u = |i: usize| d.uniform(i) * 2.0 - 1.0;
    Params {
        w: HostMat::from_fn(nv, nh, |r, c| 0.8 * u(r * nh + c)),
        b_v: HostMat::from_fn(1, nv, |_, c| 0.5 * u(10_000 + c)),
        b_h: HostMat::from_fn(1, nh, |_, c| 0.5 * u(20_000 + c)),
        data: HostMat::from_fn(50, nv, |r, c| ((r * 3 + c * 5) % 4 == 0) as u8 as f32),
    }
}

#[test]
fn forward_and_reverse_on_a_random_rbm() {
    let cpu = Cpu::new();
    let p = random_rbm();
    let schedule = test_schedule();
    let (exact, fwd) = forward_on(&cpu, &p, &schedule, 100, 3, true);
    report("random 40x12, CPU, forward", exact, &fwd);
    assert!((fwd.log_z - exact).abs() < 0.2);
    let rbm = p.rbm(&cpu);
    let mut rng = RngStream::new(8, 0);
    let init = exact::sample(&cpu, &rbm, 100, &mut rng).unwrap();
    let base = BaseRate::from_host(&p.data).unwrap();
    let rev = ais::reverse(&cpu, &rbm, &base, &schedule, &init, &mut rng).unwrap();
    report("random 40x12, CPU, reverse", exact, &rev);
    assert!((rev.log_z - exact).abs() < 0.2);
}

#[test]
fn bad_input_is_refused() {
    let cpu = Cpu::new();
    let host = RbmHost::binary(
        HostMat::zeros(6, 3),
        HostMat::zeros(1, 6),
        HostMat::zeros(1, 3),
    );
    let rbm = Rbm::from_host(&cpu, &host).unwrap();
    let s = Schedule::linear(10).unwrap();
    let mut rng = RngStream::new(1, 1);
    let e = ais::forward(&cpu, &rbm, &BaseRate::uniform(5), &s, 10, &mut rng).unwrap_err();
    assert!(e.to_string().contains("5 base biases"), "{e}");
    assert!(ais::forward(&cpu, &rbm, &BaseRate::uniform(6), &s, 0, &mut rng).is_err());
    let init = cpu.zeros(4, 7).unwrap();
    assert!(ais::reverse(&cpu, &rbm, &BaseRate::uniform(6), &s, &init, &mut rng).is_err());
    // A model with no weights is its own base when b_v = b_A: AIS is exact.
    let e = ais::forward(&cpu, &rbm, &BaseRate::uniform(6), &s, 10, &mut rng).unwrap();
    assert!((e.log_z - 9.0 * 2f64.ln()).abs() < 1e-6, "{}", e.log_z);
}

#[test]
fn gpu_ais_agrees_with_cpu() {
    let g = gpu_or_skip!();
    let p = train_mnist_rbm(20);
    let r = mnist_cpu_run();
    // Same seed and schedule on both backends: the Philox streams agree, so
    // only rounding separates the chains. A short schedule, since a software
    // adapter (lavapipe) is slow; exact log Z on the GPU is checked on a
    // smaller model for the same reason.
    let short = Schedule::three_stage(20, 160, 400).unwrap();
    let (_, on_cpu) = forward_on(&Cpu::new(), p, &short, 100, 7, false);
    let (_, fwd) = forward_on(g, p, &short, 100, 7, false);
    report("MNIST 784x20, CPU, forward, short", r.exact, &on_cpu);
    report(
        &format!("MNIST 784x20, {}, forward, short", g.name()),
        r.exact,
        &fwd,
    );
    assert!((fwd.log_z - r.exact).abs() < 0.2);
    assert!(
        (fwd.log_z - on_cpu.log_z).abs() < 0.05,
        "GPU {} vs CPU {}",
        fwd.log_z,
        on_cpu.log_z
    );
    let small = random_rbm();
    let rbm = small.rbm(g);
    let cpu = Cpu::new();
    let want = exact::log_z(&cpu, &small.rbm(&cpu)).unwrap();
    let got = exact::log_z(g, &rbm).unwrap();
    assert!(
        (got - want).abs() < 1e-3,
        "exact log Z: GPU {got} vs CPU {want}"
    );
}
