//! Deep belief nets on models small enough to enumerate: the exact
//! marginal p(v) (summing every hidden layer in f64 on the host), the
//! variational bound's exact value and its Monte Carlo estimate, the bound
//! at or below log p(v) for every v, the complementary-prior identity (a
//! DBN whose top RBM is the first one transposed has that RBM's marginal,
//! and Q is then its exact posterior, so the bound is tight), and the
//! generated samples' distribution against the exact one.

#[macro_use]
mod common;

use ebmkit::estimate::dbn::bound_terms;
use ebmkit::estimate::rbm::exact;
use ebmkit::models::autoencoder::Arch;
use ebmkit::models::dbn::Dbn;
use ebmkit::models::rbm::GibbsRun;
use ebmkit::models::{AeHost, AnyModel, StackHost};
use ebmkit::prelude::*;

fn values(rows: usize, cols: usize, seed: u64, scale: f32) -> HostMat {
    let d = RngStream::new(seed, 77).next_draw();
    HostMat::from_fn(rows, cols, |r, c| {
        scale * (2.0 * d.uniform(r * cols + c) - 1.0)
    })
}

fn rbm(nv: usize, nh: usize, seed: u64, scale: f32) -> RbmHost {
    RbmHost::binary(
        values(nv, nh, seed, scale),
        values(1, nv, seed + 1, 1.0),
        values(1, nh, seed + 2, 1.0),
    )
}

fn stack(rbms: &[RbmHost]) -> StackHost {
    StackHost {
        layers: rbms.iter().cloned().map(AnyModel::Rbm).collect(),
    }
}

/// Every binary vector of length n, as rows.
fn all_states(n: usize) -> HostMat {
    HostMat::from_fn(1 << n, n, |r, c| ((r >> c) & 1) as f32)
}

fn softplus(x: f64) -> f64 {
    x.max(0.0) + (-x.abs()).exp().ln_1p()
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// The logit of visible unit i given hidden states h: (h Wᵀ + b_v)_i.
fn down_logit(r: &RbmHost, h: &[f32], i: usize) -> f64 {
    let w: f64 = (0..r.n_hidden())
        .map(|j| h[j] as f64 * r.w.get(i, j) as f64)
        .sum();
    r.b_v.data[i] as f64 + w
}

/// The logit of hidden unit j given visible states x: (x W + b_h)_j.
fn up_logit(r: &RbmHost, x: &[f32], j: usize) -> f64 {
    let w: f64 = (0..r.n_visible())
        .map(|i| x[i] as f64 * r.w.get(i, j) as f64)
        .sum();
    r.b_h.data[j] as f64 + w
}

/// log p(x | h) under RBM `r` read downwards: Σ x a − softplus(a).
fn log_down(r: &RbmHost, h: &[f32], x: &[f32]) -> f64 {
    (0..r.n_visible())
        .map(|i| {
            let a = down_logit(r, h, i);
            x[i] as f64 * a - softplus(a)
        })
        .sum()
}

/// Q(h | x) under RBM `r` read upwards.
fn q_up(r: &RbmHost, x: &[f32], h: &[f32]) -> f64 {
    (0..r.n_hidden())
        .map(|j| {
            let p = sigmoid(up_logit(r, x, j));
            if h[j] > 0.5 {
                p
            } else {
                1.0 - p
            }
        })
        .product()
}

/// The entropy of Q(· | x) under RBM `r`.
fn entropy_up(r: &RbmHost, x: &[f32]) -> f64 {
    (0..r.n_hidden())
        .map(|j| {
            let a = up_logit(r, x, j);
            softplus(a) - sigmoid(a) * a
        })
        .sum()
}

/// log Z of a binary RBM by enumerating its visible layer.
fn log_z(r: &RbmHost) -> f64 {
    let v = all_states(r.n_visible());
    let terms: Vec<f64> = (0..v.rows).map(|i| -r.free_energy_host(v.row(i))).collect();
    ebmkit::estimate::log_sum_exp(&terms)
}

/// Exact log p(v) of a DBN: the sum over every hidden layer below the top.
fn exact_log_p(rbms: &[RbmHost], v: &[f32]) -> f64 {
    let top = &rbms[rbms.len() - 1];
    let lz = log_z(top);
    // Sum over h¹ … hᴸ⁻¹ from the top down: log Σ_h p(x | h) p(h).
    fn rec(rbms: &[RbmHost], k: usize, x: &[f32], lz: f64) -> f64 {
        // x is the state of layer k; returns log p(x) of it.
        if k == rbms.len() - 1 {
            return -rbms[k].free_energy_host(x) - lz;
        }
        let r = &rbms[k];
        let hs = all_states(r.n_hidden());
        let terms: Vec<f64> = (0..hs.rows)
            .map(|i| log_down(r, hs.row(i), x) + rec(rbms, k + 1, hs.row(i), lz))
            .collect();
        ebmkit::estimate::log_sum_exp(&terms)
    }
    rec(rbms, 0, v, lz)
}

/// The exact value of the bound (Rao-Blackwellised entropies, as the
/// estimator), without − log Z.
fn exact_bound_terms(rbms: &[RbmHost], v: &[f32]) -> f64 {
    fn rec(rbms: &[RbmHost], k: usize, x: &[f32]) -> f64 {
        if k == rbms.len() - 1 {
            return -rbms[k].free_energy_host(x);
        }
        let r = &rbms[k];
        let hs = all_states(r.n_hidden());
        let e: f64 = (0..hs.rows)
            .map(|i| {
                let h = hs.row(i);
                q_up(r, x, h) * (log_down(r, h, x) + rec(rbms, k + 1, h))
            })
            .sum();
        entropy_up(r, x) + e
    }
    rec(rbms, 0, v)
}

fn check_bound(rbms: &[RbmHost], samples: usize, tol: f64) {
    let be = Cpu::new();
    let dbn = Dbn::from_stack(&be, &stack(rbms)).unwrap();
    let nv = rbms[0].n_visible();
    let v = all_states(nv);
    let lz = log_z(&rbms[rbms.len() - 1]);
    let est = bound_terms(&be, &dbn, &v, samples, &mut RngStream::new(3, 3)).unwrap();
    let mut total_p = 0.0;
    for (i, est) in est.iter().enumerate() {
        let lp = exact_log_p(rbms, v.row(i));
        let b = exact_bound_terms(rbms, v.row(i)) - lz;
        total_p += lp.exp();
        assert!(b <= lp + 1e-9, "v {i}: bound {b} above log p(v) {lp}");
        let e = est - lz;
        assert!((e - b).abs() < tol, "v {i}: estimate {e}, exact bound {b}");
    }
    assert!((total_p - 1.0).abs() < 1e-9, "Σ p(v) = {total_p}");
}

#[test]
fn the_bound_estimate_meets_its_exact_value_below_log_p_two_layers() {
    check_bound(&[rbm(5, 4, 1, 1.5), rbm(4, 3, 4, 1.5)], 20_000, 0.05);
}

#[test]
fn the_bound_estimate_meets_its_exact_value_below_log_p_three_layers() {
    check_bound(
        &[rbm(4, 3, 7, 1.5), rbm(3, 3, 10, 1.5), rbm(3, 2, 13, 1.5)],
        20_000,
        0.05,
    );
}

#[test]
fn a_top_rbm_that_is_the_first_transposed_gives_that_rbms_marginal_and_a_tight_bound() {
    let be = Cpu::new();
    let r1 = rbm(5, 4, 21, 1.5);
    let r2 = RbmHost::binary(r1.w.transpose(), r1.b_h.clone(), r1.b_v.clone());
    let rbms = [r1.clone(), r2];
    let v = all_states(5);
    let rbm1 = Rbm::from_host(&be, &r1).unwrap();
    let lp_rbm = exact::log_prob(&be, &rbm1, &be.upload(&v).unwrap()).unwrap();
    let dbn = Dbn::from_stack(&be, &stack(&rbms)).unwrap();
    let est = bound_terms(&be, &dbn, &v, 20_000, &mut RngStream::new(5, 5)).unwrap();
    let lz = log_z(&rbms[1]);
    for i in 0..v.rows {
        let lp = exact_log_p(&rbms, v.row(i));
        assert!(
            (lp - lp_rbm[i]).abs() < 1e-4,
            "v {i}: DBN {lp}, RBM {}",
            lp_rbm[i]
        );
        let b = exact_bound_terms(&rbms, v.row(i)) - lz;
        assert!(
            (b - lp).abs() < 1e-9,
            "v {i}: Q is the posterior, bound {b} vs {lp}"
        );
        assert!(
            (est[i] - lz - lp).abs() < 0.05,
            "v {i}: estimate {}",
            est[i] - lz
        );
    }
}

#[test]
fn generated_samples_follow_the_exact_marginal() {
    let be = Cpu::new();
    let rbms = [rbm(4, 3, 31, 1.5), rbm(3, 3, 34, 1.5)];
    let dbn = Dbn::from_stack(&be, &stack(&rbms)).unwrap();
    let n = 40_000;
    let run = GibbsRun {
        start: None,
        chains: n,
        steps: 100,
        every: None,
    };
    let out = dbn.sample(&be, &run, &mut RngStream::new(9, 9)).unwrap();
    let mut counts = [0usize; 16];
    for r in 0..n {
        let idx: usize = (0..4)
            .map(|c| (out.last_sample.get(r, c) as usize) << c)
            .sum();
        counts[idx] += 1;
    }
    let v = all_states(4);
    let kl: f64 = (0..16)
        .map(|i| {
            let p = exact_log_p(&rbms, v.row(i)).exp();
            let q = (counts[i] as f64 + 0.5) / (n as f64 + 8.0);
            p * (p / q).ln()
        })
        .sum();
    assert!(kl < 0.002, "KL(exact || samples) = {kl}, counts {counts:?}");
    // The means shown are p(v | h¹) of the drawn states: in [0, 1].
    assert!(out.last.data.iter().all(|&p| (0.0..=1.0).contains(&p)));
}

#[test]
fn stacks_that_are_not_dbns_are_named() {
    let be = Cpu::new();
    let msg = |s: StackHost| Dbn::from_stack(&be, &s).err().unwrap().to_string();
    assert!(msg(stack(&[rbm(4, 3, 1, 1.0)])).contains("at least two"));
    let arch = Arch::from_spec(3, &AeSpec::new(2));
    let params = arch
        .params()
        .iter()
        .map(|(_, (r, c))| HostMat::zeros(*r, *c))
        .collect();
    let ae = AnyModel::Autoencoder(AeHost { arch, params });
    let mut s = stack(&[rbm(4, 3, 1, 1.0)]);
    s.layers.push(ae);
    let e = msg(s);
    assert!(e.contains("layer 1 is of kind autoencoder"), "{e}");
    let mut gauss = rbm(3, 2, 2, 1.0);
    gauss.hidden = UnitKind::Gaussian;
    let e = msg(stack(&[
        rbm(4, 3, 1, 1.0),
        gauss.clone(),
        rbm(2, 2, 3, 1.0),
    ]));
    assert!(e.contains("layer 1") && e.contains("binary"), "{e}");
    // Gaussian hidden units on the top RBM are fine for generation.
    assert!(Dbn::from_stack(&be, &stack(&[rbm(4, 3, 1, 1.0), gauss])).is_ok());
}

#[test]
fn cpu_and_gpu_give_the_same_bound_and_samples() {
    let g = gpu_or_skip!();
    let rbms = [rbm(9, 7, 41, 1.0), rbm(7, 6, 44, 1.0), rbm(6, 5, 47, 1.0)];
    let s = stack(&rbms);
    let cpu = Cpu::new();
    let (dc, dg) = (
        Dbn::from_stack(&cpu, &s).unwrap(),
        Dbn::from_stack(g, &s).unwrap(),
    );
    let v = all_states(9);
    let bc = bound_terms(&cpu, &dc, &v, 50, &mut RngStream::new(2, 2)).unwrap();
    let bg = bound_terms(g, &dg, &v, 50, &mut RngStream::new(2, 2)).unwrap();
    // The same uniforms on both: a row's estimate moves only where a draw
    // lies within float rounding of its probability and flips a state.
    let moved: Vec<usize> = (0..v.rows)
        .filter(|&i| (bc[i] - bg[i]).abs() > 1e-3)
        .collect();
    assert!(
        moved.len() <= 5,
        "{} of {} rows differ: {moved:?}",
        moved.len(),
        v.rows
    );
    let run = GibbsRun {
        start: Some(&v),
        chains: v.rows,
        steps: 5,
        every: Some(5),
    };
    let sc = dc.sample(&cpu, &run, &mut RngStream::new(4, 4)).unwrap();
    let sg = dg.sample(g, &run, &mut RngStream::new(4, 4)).unwrap();
    let differ = (0..v.rows)
        .filter(|&r| sc.last_sample.row(r) != sg.last_sample.row(r))
        .count();
    // The same uniforms: a state flips only where one lies within float
    // rounding of its probability.
    assert!(differ <= 2, "{differ} of {} samples differ", v.rows);
    // The visible means follow the top-down states: equal to float rounding
    // but where a draw above flipped.
    let moved = (0..v.rows)
        .filter(|&r| {
            sc.last
                .row(r)
                .iter()
                .zip(sg.last.row(r))
                .any(|(a, b)| (a - b).abs() > 1e-4)
        })
        .count();
    assert!(moved <= 2, "{moved} of {} rows of means differ", v.rows);
}
