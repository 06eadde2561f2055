//! Exact log Z, log-probabilities, free energies, exact samples,
//! pseudo-likelihood and reconstruction error of small RBMs against brute
//! force in f64 on the host.

use ebmkit::backend::cpu::Cpu;
use ebmkit::estimate::{self, rbm::exact};
use ebmkit::models::rbm::{Rbm, RbmHost};
use ebmkit::rng::RngStream;
use ebmkit::{Backend, Error, HostMat};

struct Tiny {
    w: HostMat,
    b_v: HostMat,
    b_h: HostMat,
}

impl Tiny {
    fn host(&self) -> RbmHost {
        RbmHost::binary(self.w.clone(), self.b_v.clone(), self.b_h.clone())
    }
}

fn tiny(nv: usize, nh: usize, scale: f32, seed: u64) -> Tiny {
    let mut rng = RngStream::new(seed, 1);
    let d = rng.next_draw();
    let mut k = 0;
    let mut u = || {
        k += 1;
        (d.uniform(k) * 2.0 - 1.0) * scale
    };
    Tiny {
        w: HostMat::from_fn(nv, nh, |_, _| u()),
        b_v: HostMat::from_fn(1, nv, |_, _| u()),
        b_h: HostMat::from_fn(1, nh, |_, _| u()),
    }
}

fn bits(s: usize, n: usize) -> Vec<f64> {
    (0..n).map(|j| ((s >> j) & 1) as f64).collect()
}

/// -E(v, h) in f64.
fn neg_energy(m: &Tiny, v: &[f64], h: &[f64]) -> f64 {
    let mut e = 0.0;
    for (i, vi) in v.iter().enumerate() {
        e += vi * m.b_v.get(0, i) as f64;
        for (j, hj) in h.iter().enumerate() {
            e += vi * hj * m.w.get(i, j) as f64;
        }
    }
    for (j, hj) in h.iter().enumerate() {
        e += hj * m.b_h.get(0, j) as f64;
    }
    e
}

/// log Σ_v exp(-F(v)) and each -F(v), by enumerating both layers.
fn brute(m: &Tiny) -> (f64, Vec<f64>) {
    let (nv, nh) = m.w.shape();
    let nf: Vec<f64> = (0..1usize << nv)
        .map(|s| {
            let v = bits(s, nv);
            let terms: Vec<f64> = (0..1usize << nh)
                .map(|t| neg_energy(m, &v, &bits(t, nh)))
                .collect();
            estimate::log_sum_exp(&terms)
        })
        .collect();
    (estimate::log_sum_exp(&nf), nf)
}

fn all_states(nv: usize) -> HostMat {
    HostMat::from_fn(1 << nv, nv, |s, j| ((s >> j) & 1) as f32)
}

#[test]
fn log_z_matches_double_enumeration_either_layer() {
    let cpu = Cpu::new();
    // Hidden enumerated (nh < nv), visible enumerated (nv < nh), and equal.
    for &(nv, nh, scale, seed) in &[
        (7, 4, 1.5, 1),
        (3, 9, 2.0, 2),
        (6, 6, 1.0, 3),
        (1, 1, 3.0, 4),
    ] {
        let m = tiny(nv, nh, scale, seed);
        let (want, nf) = brute(&m);
        let rbm = Rbm::from_host(&cpu, &m.host()).unwrap();
        let got = exact::log_z(&cpu, &rbm).unwrap();
        assert!((got - want).abs() < 1e-4, "{nv}x{nh}: {got} vs {want}");

        let states = cpu.upload(&all_states(nv)).unwrap();
        let lp = exact::log_prob(&cpu, &rbm, &states).unwrap();
        let total: f64 = lp.iter().map(|l| l.exp()).sum();
        assert!(
            (total - 1.0).abs() < 1e-4,
            "{nv}x{nh}: probabilities sum to {total}"
        );
        let fe = estimate::free_energy(&cpu, &rbm, &states).unwrap();
        for (f, n) in fe.iter().zip(&nf) {
            assert!((f + n).abs() < 1e-4, "free energy {f} vs {}", -n);
        }
        let mlp = estimate::mean_log_prob(&cpu, &rbm, &states, got).unwrap();
        let want_mlp = nf.iter().sum::<f64>() / nf.len() as f64 - want;
        assert!((mlp - want_mlp).abs() < 1e-4);
    }
}

#[test]
fn batched_paths_agree_with_one_batch() {
    // 2,500 rows: two full batches of 1,000 and a remainder of 500.
    let cpu = Cpu::new();
    let m = tiny(5, 3, 1.0, 7);
    let (want, nf) = brute(&m);
    let rows = HostMat::from_fn(2500, 5, |r, j| ((((r * 7 + 3) % 32) >> j) & 1) as f32);
    let rbm = Rbm::from_host(&cpu, &m.host()).unwrap();
    let data = cpu.upload(&rows).unwrap();
    let fe = estimate::free_energy(&cpu, &rbm, &data).unwrap();
    assert_eq!(fe.len(), 2500);
    for (r, f) in fe.iter().enumerate() {
        let s = (r * 7 + 3) % 32;
        assert!((f + nf[s]).abs() < 1e-4, "row {r}");
    }
    let mlp = estimate::mean_log_prob(&cpu, &rbm, &data, want).unwrap();
    let want_mlp = (0..2500).map(|r| nf[(r * 7 + 3) % 32]).sum::<f64>() / 2500.0 - want;
    assert!((mlp - want_mlp).abs() < 1e-4);
}

#[test]
fn exact_samples_follow_the_model() {
    let cpu = Cpu::new();
    for &(nv, nh, seed) in &[(4, 3, 11), (3, 5, 12)] {
        let m = tiny(nv, nh, 1.5, seed);
        let (lz, nf) = brute(&m);
        let rbm = Rbm::from_host(&cpu, &m.host()).unwrap();
        let n = 40_000;
        let mut rng = RngStream::new(5, 0);
        let s = exact::sample(&cpu, &rbm, n, &mut rng).unwrap();
        let s = cpu.download(&s).unwrap();
        assert_eq!(s.shape(), (n, nv));
        let mut counts = vec![0usize; 1 << nv];
        for r in 0..n {
            let idx = s
                .row(r)
                .iter()
                .enumerate()
                .map(|(j, &x)| (x as usize) << j)
                .sum::<usize>();
            counts[idx] += 1;
        }
        let tv: f64 = counts
            .iter()
            .zip(&nf)
            .map(|(&c, &f)| (c as f64 / n as f64 - (f - lz).exp()).abs())
            .sum::<f64>()
            / 2.0;
        assert!(tv < 0.015, "{nv}x{nh}: total variation {tv}");
    }
}

#[test]
fn too_big_to_enumerate_names_the_sizes() {
    let cpu = Cpu::new();
    let host = RbmHost::binary(
        HostMat::zeros(30, 26),
        HostMat::zeros(1, 30),
        HostMat::zeros(1, 26),
    );
    let rbm = Rbm::from_host(&cpu, &host).unwrap();
    let e = exact::log_z(&cpu, &rbm).unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, Error::Limit { .. }), "{msg}");
    assert!(
        msg.contains("30") && msg.contains("26") && msg.contains("25"),
        "{msg}"
    );
}

#[test]
fn bad_shapes_are_errors() {
    let cpu = Cpu::new();
    let (w, bv, bh) = (
        HostMat::zeros(4, 3),
        HostMat::zeros(1, 4),
        HostMat::zeros(1, 3),
    );
    let bad = HostMat::zeros(1, 5);
    // Every model, and so every estimator, is built through one check of the
    // tensors against each other.
    assert!(matches!(
        Rbm::from_host(&cpu, &RbmHost::binary(w.clone(), bad.clone(), bh.clone())),
        Err(Error::Shape { .. })
    ));
    assert!(matches!(
        Rbm::from_host(&cpu, &RbmHost::binary(w.clone(), bv.clone(), bad)),
        Err(Error::Shape { .. })
    ));
    let rbm = Rbm::from_host(&cpu, &RbmHost::binary(w, bv, bh)).unwrap();
    let data = cpu.zeros(10, 5).unwrap();
    let e = estimate::mean_log_prob(&cpu, &rbm, &data, 0.0).unwrap_err();
    assert!(
        e.to_string().contains("5 values") && e.to_string().contains("4 visible"),
        "{e}"
    );
    let mut rng = RngStream::new(1, 1);
    assert!(estimate::pseudo_log_likelihood(&cpu, &rbm, &data, &mut rng).is_err());
    assert!(estimate::reconstruction_error(&cpu, &rbm, &data).is_err());
}

#[test]
fn pseudo_likelihood_is_unbiased_for_the_full_one() {
    let cpu = Cpu::new();
    let nv = 6;
    let m = tiny(nv, 4, 1.5, 21);
    let (_, nf) = brute(&m);
    // Exact pseudo-log-likelihood of a few states.
    let picks = [0usize, 13, 42, 63];
    let exact_pl = |s: usize| -> f64 {
        (0..nv)
            .map(|i| {
                let t = s ^ (1 << i);
                nf[s] - estimate::log_sum_exp(&[nf[s], nf[t]])
            })
            .sum()
    };
    let want: f64 = picks.iter().map(|&s| exact_pl(s)).sum::<f64>() / picks.len() as f64;
    let reps = 5000;
    let rows = HostMat::from_fn(picks.len() * reps, nv, |r, j| {
        ((picks[r % picks.len()] >> j) & 1) as f32
    });
    let rbm = Rbm::from_host(&cpu, &m.host()).unwrap();
    let data = cpu.upload(&rows).unwrap();
    let mut rng = RngStream::new(3, 3);
    let got = estimate::pseudo_log_likelihood(&cpu, &rbm, &data, &mut rng).unwrap();
    assert!(
        (got - want).abs() < 0.05 * want.abs().max(1.0),
        "PL {got} vs exact {want}"
    );
}

#[test]
fn reconstruction_error_matches_the_host() {
    let cpu = Cpu::new();
    let (nv, nh) = (7, 5);
    let m = tiny(nv, nh, 1.0, 31);
    let rows = HostMat::from_fn(1234, nv, |r, j| (((r * 5 + j * 3) % 7) < 3) as u8 as f32);
    let sig = |x: f64| 1.0 / (1.0 + (-x).exp());
    let (mut se, mut ce) = (0.0, 0.0);
    for r in 0..rows.rows {
        let v = rows.row(r);
        let ph: Vec<f64> = (0..nh)
            .map(|j| {
                sig(m.b_h.get(0, j) as f64
                    + (0..nv)
                        .map(|i| v[i] as f64 * m.w.get(i, j) as f64)
                        .sum::<f64>())
            })
            .collect();
        for (i, &x) in v.iter().enumerate() {
            let p =
                sig(m.b_v.get(0, i) as f64
                    + (0..nh).map(|j| ph[j] * m.w.get(i, j) as f64).sum::<f64>());
            let x = x as f64;
            se += (x - p).powi(2);
            ce -= x * p.ln() + (1.0 - x) * (1.0 - p).ln();
        }
    }
    let n = rows.rows as f64;
    let rbm = Rbm::from_host(&cpu, &m.host()).unwrap();
    let data = cpu.upload(&rows).unwrap();
    let got = estimate::reconstruction_error(&cpu, &rbm, &data).unwrap();
    assert!(
        (got.squared_error - se / n).abs() < 1e-4,
        "{got:?} vs {}",
        se / n
    );
    assert!(
        (got.cross_entropy - ce / n).abs() < 1e-3,
        "{got:?} vs {}",
        ce / n
    );
}
