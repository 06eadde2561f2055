//! The RBM code on the GPU backend against the CPU backend with the same
//! seeds: Gibbs chains, tempering, free energies and a few training epochs.
//!
//! Runs on any adapter (Mesa's lavapipe included; shapes are small). Without
//! an adapter these tests are skipped, or fail with `EBMKIT_REQUIRE_GPU=1`.
//!
//! Both backends draw the same Philox uniforms, but their sigmoid inputs can
//! differ in the last bits (GEMM summation order), so a Bernoulli draw with
//! a uniform within ~1e-6 of its probability may differ; such a chain then
//! goes its own way. The tests allow a few such rows and compare the rest
//! exactly.

#[macro_use]
mod common;
use ebmkit::backend::cpu::Cpu;
use ebmkit::backend::gpu::Gpu;
use ebmkit::energy::{FreeEnergy, Scratch};
use ebmkit::io::recipe::Recipe;
use ebmkit::models::rbm::{Rbm, RbmHost};
use ebmkit::prelude::*;
use ebmkit::sample::tempering::linear_betas;
use ebmkit::sample::{Chains, Tempering};
use ebmkit::train::rbm::RbmTrainer as Trainer;
use ebmkit::units::UnitKind;
use ebmkit::{Backend, HostMat, RngStream};
use std::path::Path;

fn model(nv: usize, nh: usize, vis: UnitKind, hid: UnitKind) -> RbmHost {
    let d = RngStream::new(9, 9).next_draw();
    RbmHost {
        w: HostMat::from_fn(nv, nh, |r, c| 0.5 * d.normal(r * nh + c)),
        b_v: HostMat::from_fn(1, nv, |_, c| 0.3 * d.normal(10_000 + c)),
        b_h: HostMat::from_fn(1, nh, |_, c| 0.3 * d.normal(20_000 + c)),
        visible: vis,
        hidden: hid,
        log_var_v: None,
    }
}

/// Rows that differ anywhere.
fn differing_rows(a: &HostMat, b: &HostMat, tol: f32) -> usize {
    (0..a.rows)
        .filter(|&r| {
            a.row(r)
                .iter()
                .zip(b.row(r))
                .any(|(x, y)| (x - y).abs() > tol)
        })
        .count()
}

fn start(n: usize, nv: usize) -> HostMat {
    let d = RngStream::new(5, 5).next_draw();
    HostMat::from_fn(n, nv, |r, c| (d.uniform(r * nv + c) < 0.5) as u8 as f32)
}

fn run_chains<B: Fused>(be: &B, h: &RbmHost, v0: &HostMat, steps: usize) -> (HostMat, HostMat) {
    let rbm = Rbm::from_host(be, h).unwrap();
    let mut c = Chains::new(be, v0.rows, h.n_visible(), h.n_hidden()).unwrap();
    let mut rng = RngStream::new(21, 3);
    let v0 = be.upload(v0).unwrap();
    c.start_from(be, &rbm, &v0, &mut rng).unwrap();
    c.sweep(be, &rbm, steps, &mut rng).unwrap();
    (be.download(&c.v).unwrap(), be.download(&c.ph).unwrap())
}

#[test]
fn gibbs_chains_agree_for_the_same_seed() {
    let g = gpu_or_skip!();
    let cpu = Cpu::new();
    for (vis, hid, variances) in [
        (UnitKind::Bernoulli, UnitKind::Bernoulli, false),
        (UnitKind::Gaussian, UnitKind::Bernoulli, false),
        (UnitKind::Gaussian, UnitKind::Bernoulli, true),
        (UnitKind::Bernoulli, UnitKind::Relu, false),
        (UnitKind::Bernoulli, UnitKind::Softmax { group: 23 }, false),
    ] {
        let mut h = model(37, 23, vis, hid);
        if variances {
            h.log_var_v = Some(HostMat::from_fn(1, 37, |_, i| (i % 5) as f32 * 0.3 - 0.6));
        }
        let v0 = start(64, 37);
        let (vc, pc) = run_chains(&cpu, &h, &v0, 10);
        let (vg, pg) = run_chains(g, &h, &v0, 10);
        let tol = if vis.is_binary() { 0.0 } else { 1e-3 };
        let dv = differing_rows(&vc, &vg, tol);
        let dp = differing_rows(&pc, &pg, 1e-3);
        eprintln!("{vis}-{hid}: {dv} of 64 chains differ in v, {dp} in E[h|v]");
        assert!(dv <= 2 && dp <= 2, "{vis}-{hid}: {dv} / {dp} rows differ");
    }
}

#[test]
fn free_energies_agree() {
    let g = gpu_or_skip!();
    let cpu = Cpu::new();
    for (vis, hid) in [
        (UnitKind::Bernoulli, UnitKind::Bernoulli),
        (UnitKind::Bernoulli, UnitKind::Gaussian),
        (UnitKind::Bernoulli, UnitKind::Relu),
        (UnitKind::Gaussian, UnitKind::Bernoulli),
    ] {
        let mut h = model(30, 20, vis, hid);
        if vis == UnitKind::Gaussian {
            h.log_var_v = Some(HostMat::from_fn(1, 30, |_, i| (i % 4) as f32 * 0.4 - 0.8));
        }
        let v = start(50, 30);
        let f = |be: &dyn Fn() -> HostMat| be();
        let fc = f(&|| {
            let rbm = Rbm::from_host(&cpu, &h).unwrap();
            let mut s = Scratch::new(&cpu, 50, 30, 20).unwrap();
            let mut out = cpu.zeros(50, 1).unwrap();
            rbm.free_energy(&cpu, &v, &mut s, &mut out).unwrap();
            out
        });
        let rbm = Rbm::from_host(g, &h).unwrap();
        let mut s = Scratch::new(g, 50, 30, 20).unwrap();
        let mut out = g.zeros(50, 1).unwrap();
        let vd = g.upload(&v).unwrap();
        rbm.free_energy(g, &vd, &mut s, &mut out).unwrap();
        let fg = g.download(&out).unwrap();
        let d = fc.max_abs_diff(&fg).unwrap();
        assert!(d < 1e-3, "{hid}: {d}");
    }
}

#[test]
fn tempering_agrees() {
    let g = gpu_or_skip!();
    let cpu = Cpu::new();
    let h = model(20, 12, UnitKind::Bernoulli, UnitKind::Bernoulli);
    let v0 = start(32, 20);
    let run = |be: &dyn Fn() -> (HostMat, Vec<f32>)| be();
    let c = run(&|| {
        let rbm = Rbm::from_host(&cpu, &h).unwrap();
        let mut pt = Tempering::new(&cpu, linear_betas(4, 0.2), 32, 20, 12).unwrap();
        let mut rng = RngStream::new(8, 1);
        pt.start_from(&cpu, &rbm, &v0, &mut rng).unwrap();
        for _ in 0..6 {
            pt.step(&cpu, &rbm, &mut rng).unwrap();
        }
        (pt.state(&cpu).unwrap().0, pt.swap_rates(&cpu).unwrap())
    });
    let rbm = Rbm::from_host(g, &h).unwrap();
    let mut pt = Tempering::new(g, linear_betas(4, 0.2), 32, 20, 12).unwrap();
    let mut rng = RngStream::new(8, 1);
    let v0d = g.upload(&v0).unwrap();
    pt.start_from(g, &rbm, &v0d, &mut rng).unwrap();
    for _ in 0..6 {
        pt.step(g, &rbm, &mut rng).unwrap();
    }
    let vg = pt.state(g).unwrap().0;
    let d = differing_rows(&c.0, &vg, 0.0);
    eprintln!(
        "tempering: {d} of {} stacked chains differ; swap rates cpu {:?} gpu {:?}",
        vg.rows,
        c.1,
        pt.swap_rates(g).unwrap()
    );
    assert!(d <= 6, "{d} rows differ");
}

#[test]
fn a_few_training_epochs_agree() {
    let g = gpu_or_skip!();
    let cpu = Cpu::new();
    let text = r#"
[model]
n_hidden = 16
init_std = 0.1
[data]
source = "mnist-small"
binarize = "stochastic"
[train]
method = "pcd"
epochs = 3
batch_size = 20
chains = 20
lr = 0.05
momentum = 0.5
weight_decay = 0.001
sparsity_target = 0.1
seed = 4
[monitor]
rows = 40
"#;
    // With momentum (the update through W_prev) and without (in place).
    // Without sparsity, both bias steps go in one dispatch.
    let plain = text.replace("sparsity_target = 0.1\n", "");
    for text in [
        text.to_string(),
        text.replace("momentum = 0.5\n", ""),
        plain,
    ] {
        epochs_agree(g, &cpu, &text);
    }
}

fn epochs_agree(g: &Gpu, cpu: &Cpu, text: &str) {
    let r = Recipe::parse(text, Path::new("gpu.toml")).unwrap();
    let d = RngStream::new(3, 3).next_draw();
    let x = HostMat::from_fn(200, 30, |i, j| d.uniform(i * 30 + j));
    let mut tc = Trainer::new(cpu, r.clone(), &x, Some(&x)).unwrap();
    tc.fit(cpu, None, &mut |_, _| {}, &mut |_, _| {}).unwrap();
    let mut tg = Trainer::new(g, r, &x, Some(&x)).unwrap();
    tg.fit(g, None, &mut |_, _| {}, &mut |_, _| {}).unwrap();
    let wc = tc.objective.rbm.to_host(cpu).unwrap();
    let wg = tg.objective.rbm.to_host(g).unwrap();
    let dw = wc.w.max_abs_diff(&wg.w).unwrap();
    let dh = wc.b_h.max_abs_diff(&wg.b_h).unwrap();
    let (ec, eg) = (
        tc.history.epochs.last().unwrap(),
        tg.history.epochs.last().unwrap(),
    );
    let (rc, rg) = (
        ec.metric("recon_error").unwrap(),
        eg.metric("recon_error").unwrap(),
    );
    eprintln!("after 3 epochs: max |W_cpu - W_gpu| {dw:.2e}, b_h {dh:.2e}; recon {rc} vs {rg}");
    assert!(dw < 0.02 && dh < 0.02, "W {dw} b_h {dh}");
    assert!((rc - rg).abs() < 0.05 * rc.abs().max(1.0));
}

#[test]
fn learned_variance_epochs_agree() {
    let g = gpu_or_skip!();
    let cpu = Cpu::new();
    let text = r#"
[model]
visible = "gaussian"
n_hidden = 12
init_std = 0.05
learn_variance = true
[data]
source = "mnist-small"
binarize = "none"
[train]
method = "cd"
epochs = 2
batch_size = 20
lr = 0.01
momentum = 0.5
seed = 6
[monitor]
rows = 40
"#;
    let r = Recipe::parse(text, Path::new("gpu-grbm.toml")).unwrap();
    let d = RngStream::new(4, 4).next_draw();
    let x = HostMat::from_fn(200, 24, |i, j| {
        (1 + j % 3) as f32 * 0.5 * d.normal(i * 24 + j)
    });
    let mut tc = Trainer::new(&cpu, r.clone(), &x, None).unwrap();
    tc.fit(&cpu, None, &mut |_, _| {}, &mut |_, _| {}).unwrap();
    let mut tg = Trainer::new(g, r, &x, None).unwrap();
    tg.fit(g, None, &mut |_, _| {}, &mut |_, _| {}).unwrap();
    let (hc, hg) = (
        tc.objective.rbm.to_host(&cpu).unwrap(),
        tg.objective.rbm.to_host(g).unwrap(),
    );
    let (zc, zg) = (hc.log_var_v.unwrap(), hg.log_var_v.unwrap());
    let dz = zc.max_abs_diff(&zg).unwrap();
    let dw = hc.w.max_abs_diff(&hg.w).unwrap();
    eprintln!("learned variances after 2 epochs: max |dz| {dz:.2e}, |dW| {dw:.2e}");
    assert!(
        zc.data.iter().any(|&z| z.abs() > 1e-3),
        "variances did not move"
    );
    assert!(dz < 1e-2 && dw < 1e-2, "dz {dz} dW {dw}");
}

#[test]
fn gaussian_ais_agrees() {
    use ebmkit::estimate::ais::Schedule;
    use ebmkit::estimate::rbm::ais::{self, GaussianBase};
    let g = gpu_or_skip!();
    let cpu = Cpu::new();
    let mut h = model(24, 10, UnitKind::Gaussian, UnitKind::Bernoulli);
    let z: Vec<f32> = (0..24).map(|i| (i % 4) as f32 * 0.3 - 0.5).collect();
    h.log_var_v = Some(HostMat::new(1, 24, z.clone()).unwrap());
    let base = GaussianBase {
        mean: h.b_v.data.clone(),
        log_var: z.clone(),
    };
    let schedule = Schedule::three_stage(100, 400, 1000).unwrap();
    let mut rng = RngStream::new(12, 1);
    let on_cpu = Rbm::from_host(&cpu, &h).unwrap();
    let lc = ais::forward(&cpu, &on_cpu, &base, &schedule, 64, &mut rng)
        .unwrap()
        .log_z;
    let on_gpu = Rbm::from_host(g, &h).unwrap();
    let mut rng = RngStream::new(12, 1);
    let lg = ais::forward(g, &on_gpu, &base, &schedule, 64, &mut rng)
        .unwrap()
        .log_z;
    let exact = ebmkit::estimate::rbm::exact::log_z(&cpu, &on_cpu).unwrap();
    eprintln!("Gaussian AIS 24x10: cpu {lc:.4}, gpu {lg:.4}, exact {exact:.4}");
    assert!((lc - lg).abs() < 0.02, "cpu {lc} gpu {lg}");
    // 64 runs of 1,500 temperatures scatter by about ±0.06 nats on this
    // model (200 runs of 14,500 land within 0.012 of the exact value).
    assert!((lg - exact).abs() < 0.15, "gpu {lg} exact {exact}");
}

/// The per-step dispatch counts the GPU speed rests on (a launch and a
/// barrier each; see the README's speed section): a PCD-1 minibatch of the
/// bench recipe (784x500, batch 100, no momentum) and an AIS temperature.
/// The split-K choices depend only on shapes, so any adapter counts the same.
/// Its own device, so that no other test's dispatches interleave.
#[test]
fn dispatches_per_step() {
    use ebmkit::estimate::ais::Schedule;
    use ebmkit::estimate::rbm::ais::{self, BaseRate};
    let _ = gpu_or_skip!();
    let g = Gpu::new().unwrap();
    let text = r#"
[model]
n_hidden = 500
init_std = 0.01
[data]
source = "mnist"
binarize = "fixed"
[train]
method = "pcd"
epochs = 1
batch_size = 100
lr = 0.05
seed = 0
[monitor]
rows = 100
"#;
    let r = Recipe::parse(text, Path::new("dispatch.toml")).unwrap();
    let d = RngStream::new(8, 8).next_draw();
    let x = HostMat::from_fn(400, 784, |i, j| (d.uniform(i * 784 + j) < 0.2) as u8 as f32);
    let mut t = Trainer::new(&g, r, &x, None).unwrap();
    let mut marks = Vec::new();
    t.run_epoch(&g, &mut |_| marks.push(g.dispatches()))
        .unwrap();
    let per_batch: Vec<u64> = marks.windows(2).map(|w| w[1] - w[0]).collect();
    eprintln!("PCD-1 dispatches per minibatch: {per_batch:?}");
    assert_eq!(per_batch, vec![10; 3]);

    let base = BaseRate::from_mean(&[0.2; 784]);
    let schedule = Schedule::linear(50).unwrap();
    let d0 = g.dispatches();
    let m = &t.objective.rbm;
    ais::forward(&g, m, &base, &schedule, 100, &mut RngStream::new(1, 1)).unwrap();
    let per_temp = (g.dispatches() - d0) as f64 / schedule.len() as f64;
    eprintln!("AIS dispatches per temperature: {per_temp:.2}");
    assert!(per_temp < 4.2, "{per_temp}");
}
