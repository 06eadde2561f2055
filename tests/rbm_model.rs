//! The RBM's energy, free energy and gradient against the mathematics:
//! finite differences of F(v), enumeration of the hidden layer, and the
//! model expectation of the gradient against exact enumeration.

use ebmkit::backend::cpu::Cpu;
use ebmkit::backend::Sample;
use ebmkit::energy::{Bipartite, FreeEnergy, LayerScratch, Scratch};
use ebmkit::models::rbm::{Rbm, RbmHost};
use ebmkit::units::UnitKind;
use ebmkit::{Backend, HostMat, RngStream};

fn rand_host(rows: usize, cols: usize, seed: u64, scale: f32) -> HostMat {
    let d = RngStream::new(seed, 99).next_draw();
    HostMat::from_fn(rows, cols, |r, c| scale * d.normal(r * cols + c))
}

fn model(nv: usize, nh: usize, vis: UnitKind, hid: UnitKind, seed: u64, scale: f32) -> RbmHost {
    RbmHost {
        w: rand_host(nv, nh, seed, scale),
        b_v: rand_host(1, nv, seed + 1, scale),
        b_h: rand_host(1, nh, seed + 2, scale),
        visible: vis,
        hidden: hid,
        log_var_v: None,
    }
}

fn visible_data(n: usize, nv: usize, vis: UnitKind, seed: u64) -> HostMat {
    let d = RngStream::new(seed, 5).next_draw();
    HostMat::from_fn(n, nv, |r, c| match vis {
        UnitKind::Bernoulli => (d.uniform(r * nv + c) < 0.4) as u8 as f32,
        _ => d.normal(r * nv + c),
    })
}

fn mean_free_energy(be: &Cpu, h: &RbmHost, v: &HostMat) -> f64 {
    let rbm = Rbm::from_host(be, h).unwrap();
    let mut s = Scratch::new(be, v.rows, h.n_visible(), h.n_hidden()).unwrap();
    let mut out = be.zeros(v.rows, 1).unwrap();
    rbm.free_energy(be, v, &mut s, &mut out).unwrap();
    out.data.iter().map(|&x| x as f64).sum::<f64>() / v.rows as f64
}

#[test]
fn free_energy_matches_host_reference_for_every_unit_pair() {
    let be = Cpu::new();
    for (vis, variances) in [
        (UnitKind::Bernoulli, false),
        (UnitKind::Gaussian, false),
        (UnitKind::Gaussian, true),
    ] {
        for hid in [UnitKind::Bernoulli, UnitKind::Gaussian, UnitKind::Relu] {
            // Gaussian-Gaussian needs small weights to be normalisable; F is defined anyway.
            let mut h = model(7, 5, vis, hid, 3, 0.3);
            if variances {
                h.log_var_v = Some(HostMat::from_fn(1, 7, |_, i| 0.8 - i as f32 * 0.3));
            }
            let v = visible_data(9, 7, vis, 4);
            let rbm = Rbm::from_host(&be, &h).unwrap();
            let mut s = Scratch::new(&be, 9, 7, 5).unwrap();
            let mut out = be.zeros(9, 1).unwrap();
            rbm.free_energy(&be, &v, &mut s, &mut out).unwrap();
            for r in 0..9 {
                let want = h.free_energy_host(v.row(r));
                let got = out.data[r] as f64;
                assert!(
                    (got - want).abs() < 1e-4 * (1.0 + want.abs()),
                    "{vis}-{hid} row {r}: {got} vs {want}"
                );
            }
        }
    }
}

#[test]
fn softmax_layers_match_host_reference() {
    let be = Cpu::new();
    let sm3 = UnitKind::Softmax { group: 3 };
    let sm4 = UnitKind::Softmax { group: 4 };
    for (vis, hid, nv, nh) in [
        (UnitKind::Bernoulli, sm4, 7, 8),
        (sm3, UnitKind::Bernoulli, 9, 5),
        (sm3, sm4, 9, 8),
    ] {
        let h = model(nv, nh, vis, hid, 51, 1.0);
        // One-hot visible rows for softmax visible layers.
        let v = match vis.group() {
            Some(k) => {
                let d = RngStream::new(52, 5).next_draw();
                let picks: Vec<usize> = (0..6 * nv / k)
                    .map(|i| (d.word(i) % k as u32) as usize)
                    .collect();
                HostMat::from_fn(6, nv, |r, c| {
                    (picks[r * nv / k + c / k] == c % k) as u8 as f32
                })
            }
            None => visible_data(6, nv, vis, 53),
        };
        let rbm = Rbm::from_host(&be, &h).unwrap();
        let mut s = Scratch::new(&be, 6, nv, nh).unwrap();
        let mut out = be.zeros(6, 1).unwrap();
        rbm.free_energy(&be, &v, &mut s, &mut out).unwrap();
        let mut ph = be.zeros(6, nh).unwrap();
        rbm.hidden_given_visible(&be, &v, None, &mut ph, None, &mut s.h)
            .unwrap();
        for r in 0..6 {
            let want = h.free_energy_host(v.row(r));
            assert!(
                (out.data[r] as f64 - want).abs() < 1e-4 * (1.0 + want.abs()),
                "{vis}-{hid} F row {r}"
            );
            for (j, w) in h.hidden_mean_host(v.row(r)).iter().enumerate() {
                assert!(
                    (ph.get(r, j) as f64 - w).abs() < 1e-5,
                    "{vis}-{hid} E[h|v] row {r}"
                );
            }
        }
        // Samples are one-hot per group.
        if let Some(k) = hid.group() {
            let mut hs = be.zeros(6, nh).unwrap();
            rbm.hidden_given_visible(
                &be,
                &v,
                None,
                &mut ph,
                Some(Sample {
                    out: &mut hs,
                    rng: &mut RngStream::new(1, 0),
                }),
                &mut s.h,
            )
            .unwrap();
            for r in 0..6 {
                for g in hs.row(r).chunks(k) {
                    assert_eq!(g.iter().sum::<f32>(), 1.0, "{g:?}");
                }
            }
        }
    }
    assert!(Rbm::from_host(
        &be,
        &model(
            7,
            8,
            UnitKind::Bernoulli,
            UnitKind::Softmax { group: 3 },
            1,
            1.0
        )
    )
    .is_err());
}

#[test]
fn free_energy_gradient_matches_finite_differences() {
    let be = Cpu::new();
    for (vis, hid, variances) in [
        (UnitKind::Bernoulli, UnitKind::Bernoulli, false),
        (UnitKind::Gaussian, UnitKind::Bernoulli, false),
        (UnitKind::Gaussian, UnitKind::Bernoulli, true),
        (UnitKind::Gaussian, UnitKind::Gaussian, true),
        (UnitKind::Bernoulli, UnitKind::Gaussian, false),
        (UnitKind::Bernoulli, UnitKind::Softmax { group: 2 }, false),
    ] {
        let mut h = model(6, 4, vis, hid, 11, 0.5);
        if variances {
            // σ² between e^-1 and e^1.
            h.log_var_v = Some(HostMat::from_fn(1, 6, |_, i| i as f32 * 0.4 - 1.0));
        }
        let v = visible_data(8, 6, vis, 12);
        let rbm = Rbm::from_host(&be, &h).unwrap();
        let g = rbm.free_energy_grad(&be, &v).unwrap();
        let (gw, gbv, gbh) = (g.w, g.b_v, g.b_h);
        assert_eq!(g.log_var.is_some(), vis == UnitKind::Gaussian);
        let eps = 1e-2f32;
        let fd = |perturb: &dyn Fn(&mut RbmHost, f32)| {
            let mut p = h.clone();
            perturb(&mut p, eps);
            let up = mean_free_energy(&be, &p, &v);
            let mut m = h.clone();
            perturb(&mut m, -eps);
            let down = mean_free_energy(&be, &m, &v);
            (up - down) / (2.0 * eps as f64)
        };
        for i in 0..6 {
            for j in 0..4 {
                let d = fd(&|p, e| p.w.data[i * 4 + j] += e);
                let g = gw.data[i * 4 + j] as f64;
                assert!(
                    (d - g).abs() < 2e-3 * (1.0 + g.abs()),
                    "{vis}-{hid} dF/dW[{i},{j}]: fd {d} vs {g}"
                );
            }
            let d = fd(&|p, e| p.b_v.data[i] += e);
            assert!(
                (d - gbv.data[i] as f64).abs() < 2e-3,
                "{vis}-{hid} dF/db_v[{i}]"
            );
            if let (Some(gz), true) = (&g.log_var, variances) {
                let d = fd(&|p, e| p.log_var_v.as_mut().unwrap().data[i] += e);
                let gz = gz.data[i] as f64;
                assert!(
                    (d - gz).abs() < 2e-3 * (1.0 + gz.abs()),
                    "{vis}-{hid} dF/dlog σ²[{i}]: fd {d} vs {gz}"
                );
            }
        }
        for j in 0..4 {
            let d = fd(&|p, e| p.b_h.data[j] += e);
            assert!(
                (d - gbh.data[j] as f64).abs() < 2e-3,
                "{vis}-{hid} dF/db_h[{j}]"
            );
        }
    }
}

#[test]
fn free_energy_sums_out_the_hidden_layer_and_energy_agrees() {
    // F(v) = -log Σ_h exp(-E(v, h)) with h enumerated: binary visible units,
    // and Gaussian ones with per-unit variances.
    let be = Cpu::new();
    for vis in [UnitKind::Bernoulli, UnitKind::Gaussian] {
        let mut h = model(5, 6, vis, UnitKind::Bernoulli, 21, 1.0);
        if vis == UnitKind::Gaussian {
            h.log_var_v = Some(HostMat::from_fn(1, 5, |_, i| i as f32 * 0.5 - 1.0));
        }
        let rbm = Rbm::from_host(&be, &h).unwrap();
        let v = visible_data(3, 5, vis, 22);
        let hs = HostMat::from_fn(64, 6, |r, c| ((r >> c) & 1) as f32);
        let mut s = Scratch::new(&be, 64, 5, 6).unwrap();
        let mut e = be.zeros(64, 1).unwrap();
        for r in 0..3 {
            let vr = HostMat::from_fn(64, 5, |_, c| v.get(r, c));
            rbm.energy(&be, &vr, &hs, &mut s, &mut e).unwrap();
            let m = e.data.iter().map(|&x| -x as f64).fold(f64::MIN, f64::max);
            let lse = m + e
                .data
                .iter()
                .map(|&x| (-x as f64 - m).exp())
                .sum::<f64>()
                .ln();
            let f = h.free_energy_host(v.row(r));
            assert!(
                (f + lse).abs() < 1e-4 * (1.0 + f.abs()),
                "{vis} row {r}: F {f} vs -logsumexp {}",
                -lse
            );
        }
    }
}

/// Exact model expectations <v_i E[h_j|v]>, <v_i>, <E[h_j|v]> of a binary RBM.
fn exact_moments(h: &RbmHost) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let (nv, nh) = (h.n_visible(), h.n_hidden());
    let states: Vec<Vec<f32>> = (0..1usize << nv)
        .map(|s| (0..nv).map(|i| ((s >> i) & 1) as f32).collect())
        .collect();
    let lp: Vec<f64> = states.iter().map(|v| -h.free_energy_host(v)).collect();
    let m = lp.iter().cloned().fold(f64::MIN, f64::max);
    let z: f64 = lp.iter().map(|x| (x - m).exp()).sum();
    let (mut vh, mut mv, mut mh) = (vec![0.0; nv * nh], vec![0.0; nv], vec![0.0; nh]);
    for (v, l) in states.iter().zip(&lp) {
        let p = (l - m).exp() / z;
        let ph = h.hidden_mean_host(v);
        for i in 0..nv {
            mv[i] += p * v[i] as f64;
            for j in 0..nh {
                vh[i * nh + j] += p * v[i] as f64 * ph[j];
            }
        }
        for j in 0..nh {
            mh[j] += p * ph[j];
        }
    }
    (vh, mv, mh)
}

#[test]
fn persistent_chain_statistics_match_the_exact_model_expectation() {
    // The negative phase of the sampled gradient, -<∂F/∂θ>_model, estimated
    // by many long block-Gibbs chains, against enumeration of all 2^10 states.
    let be = Cpu::new();
    let h = model(10, 8, UnitKind::Bernoulli, UnitKind::Bernoulli, 31, 0.7);
    let (vh, mv, mh) = exact_moments(&h);
    let rbm = Rbm::from_host(&be, &h).unwrap();
    let n = 4000;
    let mut chains = ebmkit::sample::Chains::new(&be, n, 10, 8).unwrap();
    let mut rng = RngStream::new(5, 1);
    let half = HostMat::from_fn(n, 10, |_, _| 0.5);
    let mut v0 = be.zeros(n, 10).unwrap();
    be.bernoulli(&half, &mut v0, &mut rng).unwrap();
    chains.start_from(&be, &rbm, &v0, &mut rng).unwrap();
    chains.sweep(&be, &rbm, 100, &mut rng).unwrap();
    let (mut avh, mut av, mut ah) = (vec![0.0; 80], vec![0.0; 10], vec![0.0; 8]);
    let steps = 50;
    for _ in 0..steps {
        chains.sweep(&be, &rbm, 2, &mut rng).unwrap();
        // The same GEMM the trainer uses for its negative statistics: -∂F/∂W = vᵀ E[h|v] / n.
        let g = rbm.free_energy_grad(&be, &chains.v).unwrap();
        for (a, g) in avh.iter_mut().zip(&g.w.data) {
            *a -= *g as f64 / steps as f64;
        }
        for (a, g) in av.iter_mut().zip(&g.b_v.data) {
            *a -= *g as f64 / steps as f64;
        }
        for (a, g) in ah.iter_mut().zip(&g.b_h.data) {
            *a -= *g as f64 / steps as f64;
        }
        let _ = &chains.ph;
    }
    let worst = |a: &[f64], b: &[f64]| {
        a.iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f64::max)
    };
    assert!(
        worst(&avh, &vh) < 0.01,
        "<v h>: worst error {}",
        worst(&avh, &vh)
    );
    assert!(
        worst(&av, &mv) < 0.01,
        "<v>: worst error {}",
        worst(&av, &mv)
    );
    assert!(
        worst(&ah, &mh) < 0.01,
        "<h>: worst error {}",
        worst(&ah, &mh)
    );
}

#[test]
fn cd_positive_phase_is_the_exact_data_term() {
    // The positive statistics are exact: vᵀ E[h|v] / n equals the host sum.
    let be = Cpu::new();
    let h = model(10, 8, UnitKind::Bernoulli, UnitKind::Bernoulli, 41, 0.7);
    let rbm = Rbm::from_host(&be, &h).unwrap();
    let v = visible_data(50, 10, UnitKind::Bernoulli, 42);
    let mut ph = be.zeros(50, 8).unwrap();
    let mut s = LayerScratch::new(&be, 50, 8).unwrap();
    rbm.hidden_given_visible(&be, &v, None, &mut ph, None, &mut s)
        .unwrap();
    for r in 0..50 {
        let want = h.hidden_mean_host(v.row(r));
        for (j, w) in want.iter().enumerate() {
            assert!((ph.get(r, j) as f64 - w).abs() < 1e-5);
        }
    }
}
