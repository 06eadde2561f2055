//! Deep Boltzmann machines on models small enough to enumerate: log Z with
//! the even layers summed out against a brute-force sum over every layer's
//! states; p(v) normalised; the mean-field bound at or below the exact
//! log p(v) for every v; the block Gibbs sampler's visible marginal
//! against the exact p(v); AIS against the exact log Z; a one-layer DBM
//! against the library's RBM enumeration; the CPU and the GPU giving the
//! same sweep and mean-field iteration; composition from a pretraining
//! stack, checkpoints and bad input.

#[macro_use]
mod common;

use ebmkit::estimate::dbm::{
    ais_log_z, bound_terms, exact_log_prob, exact_log_z, reverse_ais_log_z, reverse_starts,
    MfSummary, MAX_ENUMERATED,
};
use ebmkit::estimate::rbm::ais::BaseRate;
use ebmkit::estimate::rbm::exact;
use ebmkit::estimate::Schedule;
use ebmkit::io::recipe::Recipe;
use ebmkit::models::dbm::{Dbm, DbmHost, MeanField};
use ebmkit::models::{AnyModel, StackHost};
use ebmkit::prelude::*;

fn values(rows: usize, cols: usize, seed: u64, scale: f32) -> HostMat {
    let d = RngStream::new(seed, 77).next_draw();
    HostMat::from_fn(rows, cols, |r, c| {
        scale * (2.0 * d.uniform(r * cols + c) - 1.0)
    })
}

/// A DBM of these widths with weights uniform in ±`scale`, biases in ±1.
fn dbm(widths: &[usize], seed: u64, scale: f32) -> DbmHost {
    DbmHost {
        w: widths
            .windows(2)
            .enumerate()
            .map(|(k, p)| values(p[0], p[1], seed + k as u64, scale))
            .collect(),
        b: widths
            .iter()
            .enumerate()
            .map(|(l, &n)| values(1, n, seed + 100 + l as u64, 1.0))
            .collect(),
    }
}

/// Every binary vector of length n, as rows.
fn all_states(n: usize) -> HostMat {
    HostMat::from_fn(1 << n, n, |r, c| ((r >> c) & 1) as f32)
}

fn log_sum_exp(x: &[f64]) -> f64 {
    let m = x.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    m + x.iter().map(|v| (v - m).exp()).sum::<f64>().ln()
}

/// -E(h⁰, …, hᴸ) for one joint state (f64), straight from the energy.
fn neg_energy(h: &DbmHost, s: &[Vec<f64>]) -> f64 {
    let mut t = 0.0;
    for (l, b) in h.b.iter().enumerate() {
        t += s[l]
            .iter()
            .zip(&b.data)
            .map(|(x, b)| x * *b as f64)
            .sum::<f64>();
    }
    for (k, w) in h.w.iter().enumerate() {
        for i in 0..w.rows {
            for j in 0..w.cols {
                t += s[k][i] * w.get(i, j) as f64 * s[k + 1][j];
            }
        }
    }
    t
}

/// log Σ over every state of every layer (the visible one fixed to `v` if
/// given) of e^{-E}: the brute force the closed forms must match.
fn brute_log_sum(h: &DbmHost, v: Option<&[f32]>) -> f64 {
    let widths = h.widths();
    let free: Vec<usize> = (0..widths.len())
        .filter(|&l| l > 0 || v.is_none())
        .collect();
    let bits: usize = free.iter().map(|&l| widths[l]).sum();
    let mut terms = Vec::new();
    for code in 0u64..(1 << bits) {
        let mut s: Vec<Vec<f64>> = widths.iter().map(|&n| vec![0.0; n]).collect();
        if let Some(v) = v {
            s[0] = v.iter().map(|&x| x as f64).collect();
        }
        let mut bit = 0;
        for &l in &free {
            for x in s[l].iter_mut() {
                *x = ((code >> bit) & 1) as f64;
                bit += 1;
            }
        }
        terms.push(neg_energy(h, &s));
    }
    log_sum_exp(&terms)
}

#[test]
fn closed_forms_match_brute_force() {
    for (widths, seed) in [
        (vec![4, 3, 3], 1),
        (vec![3, 3, 2, 3], 2),
        (vec![3, 2, 2, 2, 2], 3),
        (vec![5, 4], 4),
    ] {
        let h = dbm(&widths, seed, 1.5);
        let want = brute_log_sum(&h, None);
        let got = exact_log_z(&h).unwrap();
        assert!(
            (got - want).abs() < 1e-9,
            "{widths:?}: log Z {got} vs {want}"
        );
        let x = all_states(widths[0]);
        let lp = exact_log_prob(&h, &x).unwrap();
        for (r, &l) in lp.iter().enumerate() {
            let want = brute_log_sum(&h, Some(x.row(r))) - want;
            assert!((l - want).abs() < 1e-9, "{widths:?} row {r}: {l} vs {want}");
        }
        let total: f64 = lp.iter().map(|l| l.exp()).sum();
        assert!((total - 1.0).abs() < 1e-9, "{widths:?}: Σ p(v) = {total}");
    }
}

#[test]
fn one_layer_dbm_is_an_rbm() {
    let h = dbm(&[7, 5], 5, 1.0);
    let rbm = RbmHost::binary(h.w[0].clone(), h.b[0].clone(), h.b[1].clone());
    let be = Cpu::new();
    let want = exact::log_z(&be, &Rbm::from_host(&be, &rbm).unwrap()).unwrap();
    let got = exact_log_z(&h).unwrap();
    assert!((got - want).abs() < 1e-4, "{got} vs {want}");
}

#[test]
fn mean_field_bound_is_below_log_p_for_every_v() {
    let be = Cpu::new();
    for (widths, seed) in [(vec![8, 6, 4], 11), (vec![6, 4, 4, 3], 12)] {
        let h = dbm(&widths, seed, 1.0);
        let d = Dbm::from_host(&be, &h).unwrap();
        let x = all_states(widths[0]);
        let log_z = exact_log_z(&h).unwrap();
        let lp = exact_log_prob(&h, &x).unwrap();
        let cfg = MeanField {
            iters: 200,
            tol: 1e-7,
            damping: 0.0,
        };
        let mut s = MfSummary::default();
        let terms = bound_terms(&be, &d, &x, cfg, &mut s).unwrap();
        assert_eq!(s.unconverged, 0, "{widths:?}: {s:?}");
        let mut gap = 0.0;
        for (r, (&t, &l)) in terms.iter().zip(&lp).enumerate() {
            let bound = t - log_z;
            // f32 products: a bound may exceed log p by rounding only.
            assert!(
                bound <= l + 1e-4,
                "{widths:?} v = {r}: bound {bound} > log p {l}"
            );
            gap += (l - bound) / lp.len() as f64;
        }
        // Mean field is a good posterior here, not a vacuous bound.
        assert!(gap < 0.5, "{widths:?}: mean gap {gap}");
        // Damped sweeps reach the same fixed point.
        let damped = MeanField {
            damping: 0.5,
            iters: 400,
            ..cfg
        };
        let t2 = bound_terms(&be, &d, &x, damped, &mut MfSummary::default()).unwrap();
        for (a, b) in terms.iter().zip(&t2) {
            assert!((a - b).abs() < 1e-3, "{widths:?}: damped {b} vs {a}");
        }
    }
}

/// The means mean field returns satisfy the fixed-point equations
/// μ_l = σ(μ_{l-1} W_{l-1} + μ_{l+1} W_lᵀ + b_l), checked on the host.
#[test]
fn mean_field_reaches_its_fixed_point() {
    let be = Cpu::new();
    let h = dbm(&[8, 6, 5, 4], 14, 1.0);
    let d = Dbm::from_host(&be, &h).unwrap();
    let x = all_states(8);
    let mut st = d.mf_state(&be, 256).unwrap();
    let cfg = MeanField {
        iters: 300,
        tol: 1e-8,
        damping: 0.0,
    };
    let r = d
        .mean_field(&be, &be.upload(&x).unwrap(), &mut st, cfg, false)
        .unwrap();
    assert!(r.converged, "{r:?}");
    let mu: Vec<HostMat> = st.mu.iter().map(|m| be.download(m).unwrap()).collect();
    assert_eq!(mu[0], x);
    let widths = h.widths();
    for row in 0..256 {
        for l in 1..widths.len() {
            for j in 0..widths[l] {
                let mut t = h.b[l].data[j] as f64;
                for i in 0..widths[l - 1] {
                    t += mu[l - 1].get(row, i) as f64 * h.w[l - 1].get(i, j) as f64;
                }
                if l < h.depth() {
                    for k in 0..widths[l + 1] {
                        t += mu[l + 1].get(row, k) as f64 * h.w[l].get(j, k) as f64;
                    }
                }
                let want = 1.0 / (1.0 + (-t).exp());
                let got = mu[l].get(row, j) as f64;
                assert!(
                    (got - want).abs() < 1e-5,
                    "row {row} layer {l} unit {j}: {got} vs {want}"
                );
            }
        }
    }
}

#[test]
fn mean_field_reports_its_cap() {
    let be = Cpu::new();
    let h = dbm(&[8, 6, 4], 13, 2.0);
    let d = Dbm::from_host(&be, &h).unwrap();
    let v = be.upload(&all_states(8)).unwrap();
    let mut st = d.mf_state(&be, 256).unwrap();
    let cfg = MeanField {
        iters: 1,
        tol: 1e-9,
        damping: 0.0,
    };
    let r = d.mean_field(&be, &v, &mut st, cfg, false).unwrap();
    assert_eq!(r.sweeps, 1);
    assert!(!r.converged && r.residual.unwrap() > 1e-9, "{r:?}");
    let bad = MeanField { iters: 0, ..cfg };
    assert!(d.mean_field(&be, &v, &mut st, bad, false).is_err());
    let bad = MeanField {
        damping: 1.0,
        ..cfg
    };
    assert!(d.mean_field(&be, &v, &mut st, bad, false).is_err());
}

/// KL(exact ‖ empirical) of the visible states the Gibbs sweeps visit.
#[test]
fn gibbs_sampler_matches_the_exact_marginal() {
    let be = Cpu::new();
    let h = dbm(&[8, 6, 4], 21, 1.0);
    let d = Dbm::from_host(&be, &h).unwrap();
    let exact_p: Vec<f64> = exact_log_prob(&h, &all_states(8))
        .unwrap()
        .iter()
        .map(|l| l.exp())
        .collect();
    let (chains, burn, sweeps) = (5000, 50, 200);
    let mut rng = RngStream::new(3, 3);
    let mut x = d.particles(&be, chains).unwrap();
    let start = values(chains, 8, 99, 1.0);
    let v0 = HostMat::from_fn(chains, 8, |r, c| (start.get(r, c) > 0.0) as u8 as f32);
    d.start_particles(&be, &be.upload(&v0).unwrap(), &mut x, &mut rng)
        .unwrap();
    let mut counts = vec![0f64; 256];
    for t in 0..burn + sweeps {
        d.gibbs_sweep(&be, &mut x, &mut rng).unwrap();
        if t >= burn {
            let v = be.download(&x.s[0]).unwrap();
            for r in 0..chains {
                let code: usize = (0..8).map(|c| (v.get(r, c) as usize) << c).sum();
                counts[code] += 1.0;
            }
        }
    }
    let n: f64 = counts.iter().sum();
    assert_eq!(n, 1e6);
    let kl: f64 = exact_p
        .iter()
        .zip(&counts)
        .map(|(&p, &c)| p * (p / (c / n).max(1e-12)).ln())
        .sum();
    assert!(kl < 0.01, "KL(exact ‖ empirical) = {kl}");
}

#[test]
fn ais_matches_the_exact_log_z() {
    let be = Cpu::new();
    for (widths, seed) in [(vec![20, 10, 12], 31), (vec![10, 8, 10, 6], 32)] {
        let h = dbm(&widths, seed, 0.6);
        let odd: usize = widths.iter().skip(1).step_by(2).sum();
        assert!(odd <= MAX_ENUMERATED);
        let want = exact_log_z(&h).unwrap();
        let d = Dbm::from_host(&be, &h).unwrap();
        let base = BaseRate::from_mean(&vec![0.3; widths[0]]);
        let sched = Schedule::three_stage(100, 400, 1500).unwrap();
        let mut rng = RngStream::new(7, 7);
        let e = ais_log_z(&be, &d, &base, 100, &sched, &mut rng).unwrap();
        assert!(
            (e.log_z - want).abs() < 0.2,
            "{widths:?}: AIS {} vs exact {want} (ESS {:.1})",
            e.log_z,
            e.ess
        );
        // From the other side, started at the DBM's own samples.
        let x = values(100, widths[0], 5, 1.0);
        let starts = reverse_starts(&be, &d, &x, 100, &mut rng).unwrap();
        let r = reverse_ais_log_z(&be, &d, &base, &starts, &sched, &mut rng).unwrap();
        assert!(
            (r.log_z - want).abs() < 0.2,
            "{widths:?}: reverse AIS {} vs exact {want}",
            r.log_z
        );
        assert!(r.log_z_upper >= want - 0.05, "{widths:?}: {r:?}");
        let short = starts[..1].to_vec();
        assert!(reverse_ais_log_z(&be, &d, &base, &short, &sched, &mut rng).is_err());
    }
}

/// States and probabilities after one Gibbs sweep from chains started at
/// `v`, and the means after one mean-field iteration on `v`.
type Run = (Vec<HostMat>, Vec<HostMat>, Vec<HostMat>);
fn sweep_and_iteration<B: Fused>(be: &B, h: &DbmHost, v: &HostMat) -> Run {
    let d = Dbm::from_host(be, h).unwrap();
    let mut rng = RngStream::new(5, 5);
    let mut x = d.particles(be, v.rows).unwrap();
    let vd = be.upload(v).unwrap();
    d.start_particles(be, &vd, &mut x, &mut rng).unwrap();
    d.gibbs_sweep(be, &mut x, &mut rng).unwrap();
    let mut st = d.mf_state(be, v.rows).unwrap();
    let cfg = MeanField {
        iters: 1,
        tol: 0.0,
        damping: 0.0,
    };
    d.mean_field(be, &vd, &mut st, cfg, false).unwrap();
    let dl = |m: &[B::Mat]| -> Vec<HostMat> { m.iter().map(|m| be.download(m).unwrap()).collect() };
    (dl(&x.s), dl(&x.p), dl(&st.mu))
}

/// One Gibbs sweep and one mean-field iteration from the same state with
/// the same random numbers: the same probabilities on both backends, the
/// same samples but where a uniform falls between the two probabilities.
#[test]
fn cpu_and_gpu_agree() {
    let g = gpu_or_skip!();
    let h = dbm(&[30, 20, 25, 10], 41, 0.5);
    let v = HostMat::from_fn(64, 30, |r, c| ((r * 7 + c * 3) % 5 < 2) as u8 as f32);
    let (sc, pc, mc) = sweep_and_iteration(&Cpu::new(), &h, &v);
    let (sg, pg, mg) = sweep_and_iteration(g, &h, &v);
    let mut moved = 0;
    for l in 0..4 {
        for (a, b) in mc[l].data.iter().zip(&mg[l].data) {
            assert!((a - b).abs() < 1e-5, "mean field layer {l}: {a} vs {b}");
        }
        // Until a state differs (a uniform between the two
        // probabilities), everything downstream is the same.
        if moved == 0 {
            for (a, b) in pc[l].data.iter().zip(&pg[l].data) {
                assert!((a - b).abs() < 1e-5, "sweep layer {l}: {a} vs {b}");
            }
        }
        moved += sc[l]
            .data
            .iter()
            .zip(&sg[l].data)
            .filter(|(a, b)| a != b)
            .count();
    }
    assert!(moved <= 3, "{moved} states differ");
}

fn stack_recipe(roles: &[&str]) -> Recipe {
    let layers: String = roles
        .iter()
        .map(|r| {
            let role = match *r {
                "" => String::new(),
                r => format!(", dbm_layer = \"{r}\""),
            };
            format!("\n[[layer]]\nmodel = {{ kind = \"rbm\", n_hidden = 3{role} }}\n")
        })
        .collect();
    let text = format!(
        "[model]\nkind = \"stack\"\n[data]\nsource = \"mnist-small\"\n[train]\nmethod = \"cd\"\nepochs = 1\nbatch_size = 10\nlr = 0.1\n{layers}"
    );
    Recipe::parse(&text, std::path::Path::new("stack.toml")).unwrap()
}

#[test]
fn composed_from_a_pretraining_stack() {
    let r = |nv, nh, seed| {
        RbmHost::binary(
            values(nv, nh, seed, 1.0),
            values(1, nv, seed + 1, 1.0),
            values(1, nh, seed + 2, 1.0),
        )
    };
    let rbms = [r(6, 3, 1), r(3, 3, 4), r(3, 3, 7)];
    let s = StackHost {
        layers: rbms.iter().cloned().map(AnyModel::Rbm).collect(),
    };
    let roles = stack_recipe(&["first", "middle", "last"]);
    let d = DbmHost::from_stack(&s, Some(&roles)).unwrap();
    assert_eq!(d.widths(), vec![6, 3, 3, 3]);
    assert_eq!(d.w[0], rbms[0].w);
    assert_eq!(d.w[2], rbms[2].w);
    for (a, b) in d.w[1].data.iter().zip(&rbms[1].w.data) {
        assert_eq!(*a, 0.5 * b, "the middle RBM's weights are halved");
    }
    assert_eq!(d.b[0], rbms[0].b_v);
    for j in 0..3 {
        let want1 = 0.5 * (rbms[0].b_h.data[j] + 0.5 * rbms[1].b_v.data[j]);
        assert!((d.b[1].data[j] - want1).abs() < 1e-6);
        let want2 = 0.5 * (0.5 * rbms[1].b_h.data[j] + rbms[2].b_v.data[j]);
        assert!((d.b[2].data[j] - want2).abs() < 1e-6);
    }
    assert_eq!(d.b[3], rbms[2].b_h);
    // Pretrained in the wrong roles: named.
    let wrong = stack_recipe(&["first", "", "last"]);
    let e = DbmHost::from_stack(&s, Some(&wrong))
        .unwrap_err()
        .to_string();
    assert!(e.contains("layer 1") && e.contains("middle"), "{e}");
    // Widths that do not chain.
    let bad = StackHost {
        layers: vec![AnyModel::Rbm(r(6, 3, 1)), AnyModel::Rbm(r(4, 3, 2))],
    };
    assert!(DbmHost::from_stack(&bad, None).is_err());
}

#[test]
fn checkpoints_round_trip_and_bad_ones_are_named() {
    let h = dbm(&[5, 4, 3], 51, 1.0);
    let origin = std::path::Path::new("dbm.safetensors");
    let bytes = Checkpoint::of_model(&h).unwrap().to_bytes().unwrap();
    let back = Checkpoint::from_bytes(&bytes, origin).unwrap();
    assert_eq!(back.kind, "dbm");
    assert_eq!(back.model::<DbmHost>(origin).unwrap(), h);
    // A missing and a mis-shaped layer.
    let mut ck = back.clone();
    ck.model.tensors.remove("W_1");
    let e = ck.model::<DbmHost>(origin).unwrap_err().to_string();
    assert!(e.contains("W_1") && e.contains("dbm.safetensors"), "{e}");
    let mut bad = h.clone();
    bad.w[1] = values(3, 3, 1, 1.0);
    let e = bad.validate().unwrap_err().to_string();
    assert!(e.contains("W_1 is 3x3"), "{e}");
    bad = h.clone();
    bad.b[2].data[0] = f32::NAN;
    let e = bad.validate().unwrap_err().to_string();
    assert!(e.contains("b_2") && e.contains("NaN"), "{e}");
    assert!(exact_log_z(&dbm(&[4, 21, 2], 1, 1.0)).is_err());
}

fn dbm_recipe(extra_model: &str, extra_train: &str) -> Recipe {
    let text = format!(
        "[model]\nkind = \"dbm\"\nhidden = [6, 4]\ninit_std = 0.1\nmf_iters = 10\n{extra_model}\n\
         [data]\nsource = \"mnist-small\"\nbinarize = \"none\"\n\
         [train]\nmethod = \"pcd\"\nk = 2\nchains = 40\nepochs = 40\nbatch_size = 20\nlr = 0.02\n\
         momentum = 0.5\nweight_decay = 0.0001\nseed = 3\n{extra_train}\n[monitor]\nrows = 100\n"
    );
    Recipe::parse(&text, std::path::Path::new("dbm.toml")).unwrap()
}

/// Rows of four 8-bit prototypes with each bit flipped with probability
/// 0.05, and the exact mean log-probability of those rows under that
/// mixture: structure an independent model cannot capture.
const PROTOTYPES: [u8; 4] = [0b0000_1111, 0b1111_0000, 0b0011_0011, 0b1100_1100];
fn noisy_prototypes(n: usize, seed: u64) -> (HostMat, f64) {
    let d = RngStream::new(seed, 1).next_draw();
    let x = HostMat::from_fn(n, 8, |r, c| {
        let bit = (PROTOTYPES[r % 4] >> c) & 1;
        let flip = d.uniform(r * 8 + c) < 0.05;
        (bit ^ flip as u8) as f32
    });
    let log_p = (0..n)
        .map(|r| {
            let p: f64 = PROTOTYPES
                .iter()
                .map(|&q| {
                    (0..8)
                        .map(|c| match ((q >> c) & 1) as f32 == x.get(r, c) {
                            true => 0.95f64,
                            false => 0.05,
                        })
                        .product::<f64>()
                        / 4.0
                })
                .sum();
            p.ln()
        })
        .sum::<f64>()
        / n as f64;
    (x, log_p)
}

fn mean_log_p(h: &DbmHost, x: &HostMat) -> f64 {
    let lp = exact_log_prob(h, x).unwrap();
    lp.iter().sum::<f64>() / lp.len() as f64
}

/// Training raises the exact log-likelihood of held-out rows most of the
/// way from a random start to that of the distribution they come from.
#[test]
fn training_learns_a_small_dbm() {
    let be = Cpu::new();
    let (train, _) = noisy_prototypes(2000, 1);
    let (test, truth) = noisy_prototypes(1000, 2);
    let mut t: ebmkit::train::dbm::DbmTrainer<Cpu> =
        Trainer::new(&be, dbm_recipe("", ""), &train, Some(&test)).unwrap();
    let start = mean_log_p(&t.objective.dbm.to_host(&be).unwrap(), &test);
    t.fit(&be, None, &mut |_, _| {}, &mut |_, _| {}).unwrap();
    let end = mean_log_p(&t.objective.dbm.to_host(&be).unwrap(), &test);
    assert!(truth - start > 2.0, "truth {truth}, start {start}");
    assert!(
        end > start + 0.85 * (truth - start),
        "start {start}, trained {end}, truth {truth}"
    );
    let rec = t.history.epochs.last().unwrap();
    assert!(rec.metric("recon_train").is_some() && rec.metric("mf_score_heldout").is_some());
}

/// Four epochs, or two, a checkpoint and two more: the same parameters to
/// the bit (the particles and the optimiser's momentum are in the
/// checkpoint).
#[test]
fn resume_is_bit_identical() {
    let be = Cpu::new();
    let (train, _) = noisy_prototypes(400, 3);
    let mut r = dbm_recipe("", "");
    r.train.epochs = 4;
    let mut whole: ebmkit::train::dbm::DbmTrainer<Cpu> =
        Trainer::new(&be, r.clone(), &train, None).unwrap();
    whole
        .fit(&be, None, &mut |_, _| {}, &mut |_, _| {})
        .unwrap();
    let dir = std::env::temp_dir().join(format!("ebmkit-dbm-resume-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("dbm.safetensors");
    let mut first: ebmkit::train::dbm::DbmTrainer<Cpu> =
        Trainer::new(&be, r.clone(), &train, None).unwrap();
    for _ in 0..2 {
        first.run_epoch(&be, &mut |_| {}).unwrap();
    }
    first.checkpoint(&be).unwrap().save(&path).unwrap();
    let ck = Checkpoint::load(&path).unwrap();
    let saved = Recipe::parse(&ck.recipe, &path).unwrap();
    let mut second: ebmkit::train::dbm::DbmTrainer<Cpu> =
        Trainer::resume(&be, saved, &ck, &path, (&train, None)).unwrap();
    second
        .fit(&be, None, &mut |_, _| {}, &mut |_, _| {})
        .unwrap();
    assert_eq!(
        second.objective.dbm.to_host(&be).unwrap(),
        whole.objective.dbm.to_host(&be).unwrap()
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_recipes_and_data_are_named() {
    let be = Cpu::new();
    let x = HostMat::from_fn(40, 8, |r, c| ((r + c) % 2) as f32);
    let e = Recipe::parse(
        "[model]\nkind = \"dbm\"\n[data]\nsource = \"mnist-small\"\n[train]\nepochs = 1\nbatch_size = 10\nlr = 0.1\n",
        std::path::Path::new("bad.toml"),
    )
    .and_then(|r| r.validate().map(|_| r))
    .unwrap_err()
    .to_string();
    assert!(e.contains("model.hidden"), "{e}");
    let mut r = dbm_recipe("", "");
    r.train.method = Some(ebmkit::io::recipe::Method::Cd);
    let e = r.validate().unwrap_err().to_string();
    assert!(e.contains("pcd"), "{e}");
    let mut r = dbm_recipe("", "");
    r.dbm_mut().unwrap().mf_damping = 1.5;
    let e = r.validate().unwrap_err().to_string();
    assert!(e.contains("mf_damping") && e.contains("1.5"), "{e}");
    // Values outside [0, 1] are not binary units' data.
    let half = HostMat::from_fn(40, 8, |_, _| 1.5);
    let e = Trainer::<Cpu, ebmkit::train::dbm::DbmObjective<Cpu>>::new(
        &be,
        dbm_recipe("", ""),
        &half,
        None,
    )
    .err()
    .unwrap()
    .to_string();
    assert!(e.contains("training data"), "{e}");
    // An init that is not a stack.
    let dir = std::env::temp_dir().join(format!("ebmkit-dbm-init-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join("not-a-stack.safetensors");
    Checkpoint::of_model(&dbm(&[8, 6, 4], 1, 1.0))
        .unwrap()
        .save(&p)
        .unwrap();
    let r = dbm_recipe(&format!("init = \"{}\"", p.display()), "");
    let e = Trainer::<Cpu, ebmkit::train::dbm::DbmObjective<Cpu>>::new(&be, r, &x, None)
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("not-a-stack") && e.contains("stack of RBMs"),
        "{e}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A DBM's first RBM passes its doubled-input means up the stack.
#[test]
fn pretraining_stacks_pass_doubled_means_up() {
    let be = Cpu::new();
    let r = RbmHost::binary(
        values(5, 3, 1, 1.0),
        values(1, 5, 2, 1.0),
        values(1, 3, 3, 1.0),
    );
    let x = HostMat::from_fn(4, 5, |i, j| ((i + j) % 2) as f32);
    let codes = ebmkit::train::stack::encode(&be, &AnyModel::Rbm(r.clone()), &x, 2.0).unwrap();
    for i in 0..4 {
        for j in 0..3 {
            let t: f64 = r.b_h.data[j] as f64
                + (0..5)
                    .map(|k| x.get(i, k) as f64 * r.w.get(k, j) as f64)
                    .sum::<f64>();
            let want = 1.0 / (1.0 + (-2.0 * t).exp());
            assert!((codes.get(i, j) as f64 - want).abs() < 1e-6);
        }
    }
    // The RBM's own conditional agrees.
    let rbm = Rbm::from_host(&be, &r)
        .unwrap()
        .with_multipliers(2.0, 1.0)
        .unwrap();
    let mut ph = be.zeros(4, 3).unwrap();
    let mut s = ebmkit::energy::LayerScratch::new(&be, 4, 3).unwrap();
    ebmkit::energy::Bipartite::hidden_given_visible(&rbm, &be, &x, None, &mut ph, None, &mut s)
        .unwrap();
    for (a, b) in ph.data.iter().zip(&codes.data) {
        assert!((a - b).abs() < 1e-6);
    }
    let g = RbmHost {
        visible: UnitKind::Gaussian,
        ..r
    };
    assert!(Rbm::from_host(&be, &g)
        .unwrap()
        .with_multipliers(2.0, 1.0)
        .is_err());
}

/// The net a DBM initialises, fed the data with the mean-field posterior
/// of h² appended, reproduces the posteriors at mean field's fixed point:
/// its first layer gives μ_1 = σ(v W_0 + μ_2 W_1ᵀ + b_1), its second μ_2.
#[test]
fn the_dbm_net_reproduces_the_posteriors() {
    use ebmkit::models::net::{Net, NetHost, Output};
    let be = Cpu::new();
    let h = dbm(&[8, 6, 5], 71, 1.0);
    let d = Dbm::from_host(&be, &h).unwrap();
    let x = all_states(8);
    let cfg = MeanField {
        iters: 300,
        tol: 1e-8,
        damping: 0.0,
    };
    let input = d.with_posteriors(&be, &x, cfg).unwrap();
    assert_eq!(input.shape(), (256, 13));
    let mut st = d.mf_state(&be, 256).unwrap();
    d.mean_field(&be, &be.upload(&x).unwrap(), &mut st, cfg, false)
        .unwrap();
    let mu2 = be.download(&st.mu[2]).unwrap();
    for r in 0..256 {
        assert_eq!(&input.row(r)[..8], x.row(r));
        assert_eq!(&input.row(r)[8..], mu2.row(r));
    }
    let net = NetHost {
        layers: h.net_layers().unwrap(),
        output: Output::Sigmoid,
    };
    assert_eq!(net.sizes(), vec![13, 6, 5]);
    let out = Net::from_host(&be, &net)
        .unwrap()
        .forward(&be, &input)
        .unwrap();
    for (a, b) in out.data.iter().zip(&mu2.data) {
        assert!((a - b).abs() < 1e-4, "{a} vs {b}");
    }
    assert!(dbm(&[8, 6], 1, 1.0).net_layers().is_err());
}
