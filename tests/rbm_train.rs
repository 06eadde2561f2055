//! Training end to end on a tiny problem whose log-likelihood is exact:
//! every loss strategy must raise it; resuming from a checkpoint must give
//! bit-identical parameters; divergence and bad data must be typed errors.

use ebmkit::backend::cpu::Cpu;
use ebmkit::estimate::mean_log_prob;
use ebmkit::estimate::rbm::exact;
use ebmkit::io::checkpoint::Checkpoint;
use ebmkit::io::recipe::Recipe;
use ebmkit::train::rbm::RbmTrainer as Trainer;
use ebmkit::Error;
use ebmkit::{HostMat, RngStream};
use std::path::Path;

const NV: usize = 12;

/// Noisy copies of three prototypes.
fn data(n: usize, seed: u64) -> HostMat {
    let protos = [
        [1, 1, 1, 1, 0, 0, 0, 0, 1, 0, 1, 0],
        [0, 0, 0, 0, 1, 1, 1, 1, 0, 1, 0, 1],
        [1, 0, 1, 0, 1, 0, 1, 0, 1, 1, 0, 0],
    ];
    let d = RngStream::new(seed, 8).next_draw();
    HostMat::from_fn(n, NV, |r, c| {
        let p = protos[r % 3][c] as f32;
        if d.uniform(r * NV + c) < 0.05 {
            1.0 - p
        } else {
            p
        }
    })
}

fn recipe(method: &str, extra: &str) -> Recipe {
    let text = format!(
        r#"
[model]
n_hidden = 8
init_std = 0.1

[data]
source = "mnist-small"
binarize = "threshold"

[train]
method = "{method}"
k = 1
epochs = 30
batch_size = 20
lr = 0.1
momentum = 0.5
weight_decay = 0.0001
seed = 3
{extra}

[monitor]
rows = 100
"#
    );
    Recipe::parse(&text, Path::new("test.toml")).unwrap()
}

fn log_lik(be: &Cpu, t: &Trainer<Cpu>, x: &HostMat) -> f64 {
    let lz = exact::log_z(be, &t.objective.rbm).unwrap();
    mean_log_prob(be, &t.objective.rbm, x, lz).unwrap()
}

#[test]
fn every_strategy_raises_the_exact_log_likelihood() {
    let be = Cpu::new();
    let train = data(400, 1);
    let test = data(150, 2);
    // (method, extra recipe lines, k, lr)
    let cases = [
        ("cd", "", 1, 0.1),
        ("cd", "centering = true", 3, 0.1),
        ("pcd", "chains = 50", 1, 0.02),
        (
            "pcd",
            "sparsity_target = 0.2\nlr_schedule = \"linear\"\nlr_final = 0.002",
            1,
            0.02,
        ),
        ("fpcd", "chains = 50\nfast_lr = 0.02", 1, 0.02),
        ("pt", "chains = 20\ntemperatures = 4", 1, 0.02),
    ];
    for (method, extra, k, lr) in cases {
        let mut r = recipe(method, extra);
        r.train.k = k;
        r.train.lr = lr;
        let mut t = Trainer::new(&be, r, &train, Some(&test)).unwrap();
        let before = log_lik(&be, &t, &test);
        t.fit(&be, None, &mut |_, _| {}, &mut |_, _| {}).unwrap();
        let after = log_lik(&be, &t, &test);
        let last = t.history.epochs.last().unwrap().clone();
        eprintln!(
            "{method} [{}]: test log p {before:.3} -> {after:.3}; {last:?}",
            extra.replace('\n', ", ")
        );
        assert!(
            after > before + 2.0,
            "{method} {extra}: {before} -> {after}"
        );
        // Three noisy prototypes: the entropy is about 3 nats + 12 bits of 5% noise.
        assert!(after > -5.5, "{method} {extra}: final test log p {after}");
        assert!(
            last.metric("recon_error").unwrap().is_finite()
                && last.metric("pseudo_ll").unwrap() < 0.0
        );
        assert_eq!(t.history.epochs.len(), 30);
    }
}

#[test]
fn resume_from_checkpoint_is_exact() {
    let be = Cpu::new();
    let train = data(200, 5);
    let test = data(50, 6);
    let dir = std::env::temp_dir().join(format!("ebmkit-rbm-resume-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (method, extra) in [
        (
            "pcd",
            "chains = 30\nsparsity_target = 0.1\ncentering = true",
        ),
        ("fpcd", "chains = 30"),
        ("pt", "chains = 10\ntemperatures = 3"),
        ("cd", ""),
    ] {
        let mut r = recipe(method, extra);
        r.data.binarize = ebmkit::data::Binarize::Stochastic;
        r.train.epochs = 4;
        let mut whole = Trainer::new(&be, r.clone(), &train, Some(&test)).unwrap();
        whole
            .fit(&be, None, &mut |_, _| {}, &mut |_, _| {})
            .unwrap();

        // Two of the four epochs, then a checkpoint, as a run stopped there.
        let path = dir.join(format!("{method}.safetensors"));
        let mut first = Trainer::new(&be, r.clone(), &train, Some(&test)).unwrap();
        for _ in 0..2 {
            first.run_epoch(&be, &mut |_| {}).unwrap();
        }
        first.checkpoint(&be).unwrap().save(&path).unwrap();
        drop(first);
        let ck = Checkpoint::load(&path).unwrap();
        assert_eq!(ck.epoch, 2);
        let saved = Recipe::parse(&ck.recipe, &path).unwrap();
        assert_eq!(saved, r);
        let mut second = Trainer::resume(&be, saved, &ck, &path, (&train, Some(&test))).unwrap();
        second
            .fit(&be, None, &mut |_, _| {}, &mut |_, _| {})
            .unwrap();
        let (a, b) = (&second.objective.rbm, &whole.objective.rbm);
        assert_eq!(a.w, b.w, "{method}: W differs after resuming");
        assert_eq!(a.b_v, b.b_v, "{method}");
        assert_eq!(a.b_h, b.b_h, "{method}");
        assert_eq!(second.history.epochs.len(), 4);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn divergence_names_epoch_and_parameter_and_keeps_last_good_checkpoint() {
    let be = Cpu::new();
    let train = data(200, 7);
    let dir = std::env::temp_dir().join(format!("ebmkit-rbm-diverge-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("m.safetensors");
    let mut t = Trainer::new(&be, recipe("pcd", "chains = 20"), &train, None).unwrap();
    t.recipe.train.epochs = 1;
    t.fit(&be, Some(&path), &mut |_, _| {}, &mut |_, _| {})
        .unwrap();
    t.recipe.train.lr = 3e38;
    t.recipe.train.momentum = 0.0;
    t.recipe.train.epochs = 3;
    let e = t
        .fit(&be, Some(&path), &mut |_, _| {}, &mut |_, _| {})
        .unwrap_err();
    match &e {
        Error::Diverged {
            epoch,
            param,
            last_good,
        } => {
            assert_eq!(*epoch, 2);
            assert!(["W", "b_v", "b_h"].contains(&param.as_str()));
            assert_eq!(last_good.as_deref(), Some(path.as_path()));
        }
        other => panic!("expected divergence, got {other}"),
    }
    let msg = e.to_string();
    assert!(
        msg.contains("epoch 2") && msg.contains("m.safetensors"),
        "{msg}"
    );
    let ck = Checkpoint::load(&path).unwrap();
    assert_eq!(ck.epoch, 1);
    let host: ebmkit::models::RbmHost = ck.model(&path).unwrap();
    assert!(host.w.data.iter().all(|x| x.is_finite()));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_data_is_a_clear_error() {
    let be = Cpu::new();
    let mut x = data(100, 9);
    x.data[3 * NV + 5] = f32::NAN;
    let e = Trainer::new(&be, recipe("cd", ""), &x, None)
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("row 3") && e.contains("column 5") && e.contains("NaN"),
        "{e}"
    );
    let mut x = data(100, 9);
    x.data[7] = 1.5;
    let e = Trainer::new(&be, recipe("cd", ""), &x, None)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("outside [0, 1]"), "{e}");
    let x = data(10, 9);
    let e = Trainer::new(&be, recipe("cd", ""), &x, None)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("batch_size"), "{e}");
}

#[test]
fn gaussian_bernoulli_rbm_learns_real_valued_data() {
    // Two clusters in 8 dimensions with unit noise: the free energy of
    // held-out points must fall and the reconstructions must improve.
    let be = Cpu::new();
    let d = RngStream::new(12, 1).next_draw();
    let centers = [
        [2.0f32, 2.0, 0.0, 0.0, -2.0, -2.0, 0.0, 0.0],
        [-2.0, 0.0, 2.0, 0.0, 2.0, 0.0, -2.0, 0.0],
    ];
    let mk = |n: usize, off: usize| {
        HostMat::from_fn(n, 8, |r, c| {
            centers[r % 2][c] + 0.5 * d.normal(off + r * 8 + c)
        })
    };
    let (train, test) = (mk(400, 0), mk(100, 100_000));
    let text = r#"
[model]
visible = "gaussian"
n_hidden = 6
init_std = 0.05
[data]
source = "mnist-small"
binarize = "none"
[train]
method = "cd"
epochs = 30
batch_size = 20
lr = 0.01
momentum = 0.5
seed = 2
[monitor]
rows = 100
"#;
    let r = Recipe::parse(text, Path::new("gb.toml")).unwrap();
    let mut t = Trainer::new(&be, r, &train, Some(&test)).unwrap();
    t.fit(&be, None, &mut |_, _| {}, &mut |_, _| {}).unwrap();
    let h = &t.history.epochs;
    let (first, last) = (&h[0], h.last().unwrap());
    let m = |r: &ebmkit::train::EpochRecord, k: &str| r.metric(k);
    eprintln!(
        "GB-RBM: recon {:?} -> {:?}, F(test) {:?} -> {:?}",
        m(first, "recon_error"),
        m(last, "recon_error"),
        m(first, "fe_heldout"),
        m(last, "fe_heldout")
    );
    assert!(m(last, "recon_error").unwrap() < 0.7 * m(first, "recon_error").unwrap());
    assert!(m(last, "pseudo_ll").is_none());
    assert!(m(last, "fe_heldout").unwrap() < m(first, "fe_heldout").unwrap());
}

#[allow(clippy::needless_range_loop)] // the reference reads like the textbook sums
#[test]
fn sgd_steps_match_the_momentum_formula() {
    // Δ = μ Δ + ε (g - λ W), W += Δ, for two steps, against a host reference;
    // biases likewise (no decay), with and without the explicit-gradient path,
    // and without momentum through the in-place update (W_prev unused).
    use ebmkit::models::rbm::Rbm;
    use ebmkit::train::rbm::sgd::{Sgd, SgdConfig, Stats};
    use ebmkit::units::UnitKind;
    let be = Cpu::new();
    let d = RngStream::new(61, 2).next_draw();
    let m =
        |r: usize, c: usize, off: usize| HostMat::from_fn(r, c, |i, j| d.uniform(off + i * c + j));
    let (nv, nh) = (5, 3);
    let (vp, hp, vn, hn) = (m(4, nv, 0), m(4, nh, 100), m(6, nv, 200), m(6, nh, 300));
    let (lr, wd) = (0.1f32, 0.05f32);
    for (explicit, mom, momentum_free) in [
        (false, 0.7f32, false),
        (true, 0.7, false),
        (false, 0.0, true),
    ] {
        let host = ebmkit::models::rbm::RbmHost {
            w: m(nv, nh, 400),
            b_v: m(1, nv, 500),
            b_h: m(1, nh, 600),
            visible: UnitKind::Bernoulli,
            hidden: UnitKind::Bernoulli,
            log_var_v: None,
        };
        let mut rbm = Rbm::from_host(&be, &host).unwrap();
        let cfg = SgdConfig {
            weight_decay: wd,
            sparsity: None,
            centering: None,
            explicit,
            variance: None,
            momentum_free,
        };
        let mut opt = Sgd::new(&be, &rbm.w, cfg).unwrap();
        // Host reference in f64.
        let mut w: Vec<f64> = host.w.data.iter().map(|&x| x as f64).collect();
        let mut bv: Vec<f64> = host.b_v.data.iter().map(|&x| x as f64).collect();
        let mut dw = vec![0.0f64; nv * nh];
        let mut dbv = vec![0.0f64; nv];
        for _ in 0..2 {
            for i in 0..nv {
                for j in 0..nh {
                    let pos: f64 = (0..4)
                        .map(|r| (vp.get(r, i) * hp.get(r, j)) as f64)
                        .sum::<f64>()
                        / 4.0;
                    let neg: f64 = (0..6)
                        .map(|r| (vn.get(r, i) * hn.get(r, j)) as f64)
                        .sum::<f64>()
                        / 6.0;
                    let k = i * nh + j;
                    dw[k] = mom as f64 * dw[k] + lr as f64 * (pos - neg - wd as f64 * w[k]);
                }
                let g: f64 = (0..4).map(|r| vp.get(r, i) as f64).sum::<f64>() / 4.0
                    - (0..6).map(|r| vn.get(r, i) as f64).sum::<f64>() / 6.0;
                dbv[i] = mom as f64 * dbv[i] + lr as f64 * g;
            }
            for k in 0..nv * nh {
                w[k] += dw[k];
            }
            for i in 0..nv {
                bv[i] += dbv[i];
            }
            let st = Stats {
                v_pos: &vp,
                h_pos: &hp,
                v_neg: &vn,
                h_neg: &hn,
            };
            opt.step(&be, &mut rbm, st, lr, mom, None).unwrap();
        }
        for (a, b) in rbm.w.data.iter().zip(&w) {
            assert!(
                (*a as f64 - b).abs() < 1e-5,
                "explicit={explicit} mom={mom}: W {a} vs {b}"
            );
        }
        for (a, b) in rbm.b_v.data.iter().zip(&bv) {
            assert!(
                (*a as f64 - b).abs() < 1e-5,
                "explicit={explicit} mom={mom}: b_v {a} vs {b}"
            );
        }
    }
}

#[allow(clippy::needless_range_loop)] // the reference reads like the textbook sums
#[test]
fn centered_steps_match_the_centered_gradient() {
    // Melchior, Fischer & Wiskott (2016): with offsets μ (visible) and λ
    // (hidden), g_W = <(v - μ)ᵀ(h - λ)>⁺ - <(v - μ)ᵀ(h - λ)>⁻,
    // g_b_v = mean v⁺ - mean v⁻ - g_W λ, g_b_h = mean h⁺ - mean h⁻ - μ g_W,
    // then the offsets slide towards the positive means; two steps with
    // momentum and weight decay against an f64 host reference.
    use ebmkit::models::rbm::Rbm;
    use ebmkit::train::rbm::sgd::{Sgd, SgdConfig, Stats};
    use ebmkit::units::UnitKind;
    let be = Cpu::new();
    let d = RngStream::new(62, 2).next_draw();
    let m =
        |r: usize, c: usize, off: usize| HostMat::from_fn(r, c, |i, j| d.uniform(off + i * c + j));
    let (nv, nh, np, nn) = (5, 3, 4, 6);
    let (vp, hp, vn, hn) = (m(np, nv, 0), m(np, nh, 100), m(nn, nv, 200), m(nn, nh, 300));
    let (lr, mom, wd, rate) = (0.1f32, 0.7f32, 0.05f32, 0.2f32);
    let mu0: Vec<f32> = (0..nv).map(|i| 0.1 + 0.15 * i as f32).collect();
    let host = ebmkit::models::rbm::RbmHost {
        w: m(nv, nh, 400),
        b_v: m(1, nv, 500),
        b_h: m(1, nh, 600),
        visible: UnitKind::Bernoulli,
        hidden: UnitKind::Bernoulli,
        log_var_v: None,
    };
    let mut rbm = Rbm::from_host(&be, &host).unwrap();
    let cfg = SgdConfig {
        weight_decay: wd,
        sparsity: None,
        centering: Some((mu0.clone(), rate)),
        explicit: false,
        variance: None,
        momentum_free: false,
    };
    let mut opt = Sgd::new(&be, &rbm.w, cfg).unwrap();
    let f = |x: &HostMat| -> Vec<f64> { x.data.iter().map(|&v| v as f64).collect() };
    let (mut w, mut bv, mut bh) = (f(&host.w), f(&host.b_v), f(&host.b_h));
    let (mut dw, mut dbv, mut dbh) = (vec![0.0; nv * nh], vec![0.0; nv], vec![0.0; nh]);
    let mut mu: Vec<f64> = mu0.iter().map(|&x| x as f64).collect();
    let mut lam = vec![0.5f64; nh];
    let mean = |x: &HostMat, c: usize| {
        (0..x.rows).map(|r| x.get(r, c) as f64).sum::<f64>() / x.rows as f64
    };
    for _ in 0..2 {
        let mut gw = vec![0.0f64; nv * nh];
        for i in 0..nv {
            for j in 0..nh {
                let c = |v: &HostMat, h: &HostMat| {
                    (0..v.rows)
                        .map(|r| (v.get(r, i) as f64 - mu[i]) * (h.get(r, j) as f64 - lam[j]))
                        .sum::<f64>()
                        / v.rows as f64
                };
                gw[i * nh + j] = c(&vp, &hp) - c(&vn, &hn);
            }
        }
        for i in 0..nv {
            let g =
                mean(&vp, i) - mean(&vn, i) - (0..nh).map(|j| gw[i * nh + j] * lam[j]).sum::<f64>();
            dbv[i] = mom as f64 * dbv[i] + lr as f64 * g;
        }
        for j in 0..nh {
            let g =
                mean(&hp, j) - mean(&hn, j) - (0..nv).map(|i| mu[i] * gw[i * nh + j]).sum::<f64>();
            dbh[j] = mom as f64 * dbh[j] + lr as f64 * g;
        }
        for k in 0..nv * nh {
            dw[k] = mom as f64 * dw[k] + lr as f64 * (gw[k] - wd as f64 * w[k]);
            w[k] += dw[k];
        }
        for i in 0..nv {
            bv[i] += dbv[i];
            mu[i] = (1.0 - rate as f64) * mu[i] + rate as f64 * mean(&vp, i);
        }
        for j in 0..nh {
            bh[j] += dbh[j];
            lam[j] = (1.0 - rate as f64) * lam[j] + rate as f64 * mean(&hp, j);
        }
        let st = Stats {
            v_pos: &vp,
            h_pos: &hp,
            v_neg: &vn,
            h_neg: &hn,
        };
        opt.step(&be, &mut rbm, st, lr, mom, None).unwrap();
    }
    for (name, got, want) in [
        ("W", &rbm.w, &w),
        ("b_v", &rbm.b_v, &bv),
        ("b_h", &rbm.b_h, &bh),
    ] {
        for (a, b) in got.data.iter().zip(want.iter()) {
            assert!((*a as f64 - b).abs() < 1e-5, "{name}: {a} vs {b}");
        }
    }
}

/// A run extended past its recipe's epochs, or resumed with more epochs,
/// follows the recipe's momentum schedule exactly: here the momentum is 0
/// for the first three epochs and 0.5 after, and the recipe first asks for
/// only two (the earlier code updated the weights in place in that case,
/// keeping no previous weights, and then took the momentum step from them).
#[test]
fn extending_a_run_keeps_its_momentum_schedule() {
    let be = Cpu::new();
    let train = data(200, 13);
    let extra = "chains = 20\nfinal_momentum = 0.5\nmomentum_switch_epoch = 3";
    let mut r = recipe("pcd", extra);
    r.train.momentum = 0.0;
    r.train.epochs = 5;
    let mut straight = Trainer::new(&be, r.clone(), &train, None).unwrap();
    straight
        .fit(&be, None, &mut |_, _| {}, &mut |_, _| {})
        .unwrap();

    // Through the library: fit two epochs, raise the epoch count, fit on.
    let mut short = r.clone();
    short.train.epochs = 2;
    let mut extended = Trainer::new(&be, short.clone(), &train, None).unwrap();
    extended
        .fit(&be, None, &mut |_, _| {}, &mut |_, _| {})
        .unwrap();
    let dir = std::env::temp_dir().join(format!("ebmkit-extend-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("two.safetensors");
    extended.checkpoint(&be).unwrap().save(&path).unwrap();
    extended.recipe.train.epochs = 5;
    extended
        .fit(&be, None, &mut |_, _| {}, &mut |_, _| {})
        .unwrap();

    // Through a checkpoint: resume the two-epoch run with five epochs.
    let ck = Checkpoint::load(&path).unwrap();
    let mut resumed = Trainer::resume(&be, r.clone(), &ck, &path, (&train, None)).unwrap();
    resumed
        .fit(&be, None, &mut |_, _| {}, &mut |_, _| {})
        .unwrap();
    for (how, t) in [("extended", &extended), ("resumed", &resumed)] {
        let (a, b) = (&t.objective.rbm, &straight.objective.rbm);
        assert_eq!(a.w, b.w, "{how}: W differs from the straight run");
        assert_eq!(a.b_v, b.b_v, "{how}: b_v");
        assert_eq!(a.b_h, b.b_h, "{how}: b_h");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// An optimiser built momentum-free updates the weights in place and keeps
/// no previous weights: a momentum step is a typed error, never a wrong step.
#[test]
fn a_momentum_free_optimiser_refuses_momentum() {
    use ebmkit::models::rbm::{Rbm, RbmHost};
    use ebmkit::train::rbm::sgd::{Sgd, SgdConfig, Stats};
    let be = Cpu::new();
    let host = RbmHost::binary(
        HostMat::from_fn(4, 3, |r, c| (r + c) as f32 * 0.1),
        HostMat::zeros(1, 4),
        HostMat::zeros(1, 3),
    );
    let mut rbm = Rbm::from_host(&be, &host).unwrap();
    let cfg = SgdConfig {
        weight_decay: 0.0,
        sparsity: None,
        centering: None,
        explicit: false,
        variance: None,
        momentum_free: true,
    };
    let mut opt = Sgd::new(&be, &rbm.w, cfg).unwrap();
    let (v, h) = (HostMat::zeros(2, 4), HostMat::zeros(2, 3));
    let stats = || Stats {
        v_pos: &v,
        h_pos: &h,
        v_neg: &v,
        h_neg: &h,
    };
    opt.step(&be, &mut rbm, stats(), 0.1, 0.0, None).unwrap();
    let before = rbm.w.clone();
    let e = opt
        .step(&be, &mut rbm, stats(), 0.1, 0.5, None)
        .unwrap_err()
        .to_string();
    assert!(e.contains("train.momentum"), "{e}");
    assert_eq!(rbm.w, before, "the refused step changed the weights");
}

/// Evaluation and chain starts need rows: an empty split is an error that
/// says so, not a division by zero or a panic.
#[test]
fn an_empty_split_is_an_error() {
    use ebmkit::data::prepare::cycle;
    use ebmkit::data::EvalData;
    use ebmkit::estimate::rbm::{evaluate, EvalOptions};
    use ebmkit::models::rbm::RbmHost;
    let e = cycle(&HostMat::zeros(0, 5), 3, "test data")
        .unwrap_err()
        .to_string();
    assert!(e.contains("test data") && e.contains("no rows"), "{e}");
    let be = Cpu::new();
    let host = RbmHost::binary(
        HostMat::zeros(5, 30),
        HostMat::zeros(1, 5),
        HostMat::zeros(1, 30),
    );
    let data = EvalData {
        test: HostMat::zeros(0, 5),
        train: HostMat::zeros(4, 5),
    };
    let e = evaluate(&be, &host, &data, None, &EvalOptions::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("no rows"), "{e}");
}
