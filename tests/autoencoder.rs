//! Auto-encoders: the full gradient of every configuration's loss against
//! finite differences in f64, the contractive penalty against a Jacobian
//! computed numerically, the CPU and the GPU taking the same steps, exact
//! resume, checkpoints, and bad recipes, data and divergence as typed errors.

#[macro_use]
mod common;

use ebmkit::autodiff::check::check;
use ebmkit::autodiff::{Activation, Bindings, Noise, Plan};
use ebmkit::backend::reference::F64;
use ebmkit::io::checkpoint::Checkpoint;
use ebmkit::io::recipe::Recipe;
use ebmkit::models::autoencoder::{AeHost, Arch, Penalties};
use ebmkit::prelude::*;
use ebmkit::train::autoencoder::AeTrainer;
use ebmkit::Error;
use std::path::Path;

fn values(rows: usize, cols: usize, seed: u64, (lo, hi): (f32, f32)) -> HostMat {
    let d = RngStream::new(seed, 77).next_draw();
    HostMat::from_fn(rows, cols, |r, c| lo + (hi - lo) * d.uniform(r * cols + c))
}

/// Parameters for `arch`, in graph order.
fn params(arch: &Arch, seed: u64) -> Vec<HostMat> {
    arch.params()
        .iter()
        .enumerate()
        .map(|(k, (_, (r, c)))| values(*r, *c, seed + k as u64, (-0.6, 0.6)))
        .collect()
}

fn arch(encoder: Activation, decoder: Activation, tied: bool) -> Arch {
    Arch {
        n_visible: 6,
        n_hidden: 4,
        encoder,
        decoder,
        tied,
    }
}

const ACTS: [Activation; 4] = [
    Activation::Sigmoid,
    Activation::Tanh,
    Activation::Relu,
    Activation::Linear,
];

#[test]
fn every_configuration_passes_the_gradient_check() {
    let x = values(5, 6, 1, (0.0, 1.0));
    let mut worst = 0f64;
    let mut cases = 0;
    for enc in ACTS {
        for dec in [Activation::Sigmoid, Activation::Linear] {
            for tied in [true, false] {
                let a = arch(enc, dec, tied);
                let mut pens = vec![
                    Penalties::default(),
                    Penalties {
                        noise: Some(Noise::Masking(0.3)),
                        l1: 0.2,
                        ..Default::default()
                    },
                    Penalties {
                        noise: Some(Noise::SaltPepper(0.2)),
                        ..Default::default()
                    },
                    Penalties {
                        noise: Some(Noise::Gaussian(0.3)),
                        ..Default::default()
                    },
                ];
                if enc != Activation::Relu {
                    pens.push(Penalties {
                        contractive: 0.7,
                        ..Default::default()
                    });
                }
                if enc == Activation::Sigmoid {
                    pens.push(Penalties {
                        sparsity: Some((0.1, 2.0)),
                        contractive: 0.3,
                        ..Default::default()
                    });
                }
                for pen in pens {
                    let g = a.graph(x.rows, &pen).unwrap();
                    let rep = check(
                        &g.graph,
                        g.loss,
                        &params(&a, 10),
                        &[x.clone(), x.clone()],
                        3,
                    )
                    .unwrap();
                    assert!(rep.checked > 0);
                    assert!(
                        rep.max_rel_err < 1e-4,
                        "{a:?} {pen:?}: rel err {:.2e} at {}",
                        rep.max_rel_err,
                        rep.worst
                    );
                    worst = worst.max(rep.max_rel_err);
                    cases += 1;
                }
            }
        }
    }
    eprintln!("{cases} auto-encoder losses, worst relative error {worst:.2e}");
}

/// `h_j(x) = f(Σ_i x_i W_ij + b_j)` in f64.
fn encode(a: &Arch, w: &HostMat, b: &HostMat, x: &[f64]) -> Vec<f64> {
    (0..a.n_hidden)
        .map(|j| {
            let pre: f64 = b.data[j] as f64
                + (0..a.n_visible)
                    .map(|i| x[i] * w.get(i, j) as f64)
                    .sum::<f64>();
            match a.encoder {
                Activation::Sigmoid => 1.0 / (1.0 + (-pre).exp()),
                Activation::Tanh => pre.tanh(),
                _ => pre,
            }
        })
        .collect()
}

/// The loss of `pen` on the f64 backend.
fn loss64(a: &Arch, pen: &Penalties, p: &[HostMat], x: &HostMat) -> f64 {
    let g = a.graph(x.rows, pen).unwrap();
    let mut plan = Plan::new(&F64, &g.graph, g.loss, &[]).unwrap();
    let pv: Vec<_> = p.iter().map(|m| F64.upload(m).unwrap()).collect();
    let xv = F64.upload(x).unwrap();
    let pr: Vec<_> = pv.iter().collect();
    let b = Bindings {
        params: &pr,
        inputs: &[&xv, &xv],
    };
    plan.forward(&F64, &b, &mut RngStream::new(0, 0)).unwrap();
    plan.loss_value().unwrap().data[0]
}

#[test]
fn the_contractive_penalty_is_the_squared_norm_of_the_numerical_jacobian() {
    let x = values(4, 6, 2, (0.0, 1.0));
    for enc in [Activation::Sigmoid, Activation::Tanh, Activation::Linear] {
        let a = arch(enc, Activation::Sigmoid, true);
        let p = params(&a, 20);
        let lambda = 0.5;
        let with = Penalties {
            contractive: lambda,
            ..Default::default()
        };
        let graph_pen = loss64(&a, &with, &p, &x) - loss64(&a, &Penalties::default(), &p, &x);
        // ‖∂h/∂x‖²_F by central differences, averaged over the rows.
        let (w, b_h) = (&p[0], &p[1]);
        let h = 1e-5;
        let mut frob = 0.0;
        for r in 0..x.rows {
            let row: Vec<f64> = x.row(r).iter().map(|&v| v as f64).collect();
            for i in 0..a.n_visible {
                let (mut up, mut dn) = (row.clone(), row.clone());
                up[i] += h;
                dn[i] -= h;
                let (hu, hd) = (encode(&a, w, b_h, &up), encode(&a, w, b_h, &dn));
                for j in 0..a.n_hidden {
                    frob += ((hu[j] - hd[j]) / (2.0 * h)).powi(2);
                }
            }
        }
        let numeric = lambda as f64 * frob / x.rows as f64;
        let rel = (graph_pen - numeric).abs() / numeric;
        eprintln!(
            "{enc:?}: penalty {graph_pen:.8} vs numerical Jacobian {numeric:.8} (rel {rel:.1e})"
        );
        assert!(rel < 1e-7, "{enc:?}: {graph_pen} vs {numeric}");
    }
}

/// Three prototypes with flipped pixels, in [0, 1].
fn data(n: usize, nv: usize, seed: u64) -> HostMat {
    let d = RngStream::new(seed, 9).next_draw();
    HostMat::from_fn(n, nv, |r, c| {
        let on = (c + r % 3) % 3 == 0;
        let flip = d.uniform(r * nv + c) < 0.1;
        if on != flip {
            0.9
        } else {
            0.1
        }
    })
}

fn recipe(extra_model: &str, extra_train: &str) -> Recipe {
    let lr = if extra_train.contains("lr =") {
        ""
    } else {
        "lr = 0.2"
    };
    let text = format!(
        r#"
[model]
kind = "autoencoder"
n_hidden = 8
{extra_model}

[train]
epochs = 4
batch_size = 10
{lr}
momentum = 0.5
seed = 3
{extra_train}

[monitor]
rows = 20
"#
    );
    Recipe::parse(&text, Path::new("test.toml")).unwrap()
}

fn train_to_end<B: Fused>(be: &B, r: Recipe, x: &HostMat, held: &HostMat) -> AeTrainer<B> {
    let mut t = AeTrainer::new(be, r, x, Some(held)).unwrap();
    t.fit(be, None, &mut |_, _| {}, &mut |_, _| {}).unwrap();
    t
}

#[test]
fn training_lowers_the_clean_reconstruction_error() {
    let (x, held) = (data(60, 12, 1), data(30, 12, 2));
    for (model, train) in [
        ("noise = \"masking\"\nnoise_level = 0.2", ""),
        (
            "tied = false\nencoder = \"tanh\"\ncontractive = 0.05",
            "optimizer = \"adam\"\nlr = 0.01",
        ),
        (
            "decoder = \"linear\"\nencoder = \"relu\"\nnoise = \"gaussian\"\nnoise_level = 0.1",
            "optimizer = \"nesterov\"\nlr = 0.02",
        ),
        (
            "sparsity_target = 0.1\nsparsity_cost = 0.5\nl1 = 0.01",
            "clip_norm = 1.0",
        ),
    ] {
        let mut r = recipe(model, train);
        r.train.epochs = 30;
        let t = train_to_end(&Cpu::new(), r, &x, &held);
        let h = &t.history.epochs;
        let (first, last) = (
            h[0].metric("recon_heldout").unwrap(),
            h.last().unwrap().metric("recon_heldout").unwrap(),
        );
        eprintln!("{model} / {train}: held-out recon {first:.3} -> {last:.3}");
        assert!(last < 0.7 * first, "{model}: {first} -> {last}");
    }
}

#[test]
fn resuming_continues_bit_for_bit() {
    let be = Cpu::new();
    let (x, held) = (data(50, 12, 3), data(20, 12, 4));
    for (model, train) in [
        (
            "noise = \"salt-pepper\"\nnoise_level = 0.2\ntied = false",
            "optimizer = \"adam\"\nlr = 0.01",
        ),
        (
            "noise = \"masking\"\nnoise_level = 0.3",
            "optimizer = \"nesterov\"",
        ),
        ("noise = \"masking\"\nnoise_level = 0.3\nwalkback = 3", ""),
    ] {
        let r = recipe(model, train);
        let straight = train_to_end(&be, r.clone(), &x, &held);
        let mut half = r.clone();
        half.train.epochs = 2;
        let first = train_to_end(&be, half, &x, &held);
        let bytes = first.checkpoint(&be).unwrap().to_bytes().unwrap();
        let origin = Path::new("mem.safetensors");
        let ck = Checkpoint::from_bytes(&bytes, origin).unwrap();
        let mut resumed = AeTrainer::resume(&be, r, &ck, origin, (&x, Some(&held))).unwrap();
        resumed
            .fit(&be, None, &mut |_, _| {}, &mut |_, _| {})
            .unwrap();
        let (a, b) = (
            straight.objective.ae.to_host(&be).unwrap(),
            resumed.objective.ae.to_host(&be).unwrap(),
        );
        assert_eq!(a, b, "{model}: resumed parameters differ");
        let m = |t: &AeTrainer<Cpu>| {
            t.history
                .epochs
                .iter()
                .map(|e| e.metric("loss"))
                .collect::<Vec<_>>()
        };
        assert_eq!(m(&straight), m(&resumed), "{model}: losses differ");
    }
}

#[test]
fn cpu_and_gpu_take_the_same_steps() {
    let g = gpu_or_skip!();
    let (x, held) = (data(40, 12, 5), data(20, 12, 6));
    for model in [
        "noise = \"masking\"\nnoise_level = 0.25",
        "tied = false\nnoise = \"salt-pepper\"\nnoise_level = 0.1\ncontractive = 0.1",
        "decoder = \"linear\"\nnoise = \"gaussian\"\nnoise_level = 0.2\nsparsity_target = 0.2",
        "noise = \"salt-pepper\"\nnoise_level = 0.2\nwalkback = 2",
    ] {
        let mut r = recipe(model, "optimizer = \"adam\"\nlr = 0.01");
        r.train.epochs = 2;
        let cpu = train_to_end(&Cpu::new(), r.clone(), &x, &held);
        let gpu = train_to_end(g, r, &x, &held);
        let (a, b) = (
            cpu.objective.ae.to_host(&Cpu::new()).unwrap(),
            gpu.objective.ae.to_host(g).unwrap(),
        );
        for ((name, _), (pa, pb)) in a.arch.params().iter().zip(a.params.iter().zip(&b.params)) {
            let d = pa.max_abs_diff(pb).unwrap();
            assert!(d < 2e-5, "{model}: {name} differs by {d}");
        }
        let (la, lb) = (
            cpu.history.epochs[1].metric("loss").unwrap(),
            gpu.history.epochs[1].metric("loss").unwrap(),
        );
        assert!(
            (la - lb).abs() < 1e-4 * la.abs(),
            "{model}: loss {la} vs {lb}"
        );
    }
}

#[test]
fn checkpoints_round_trip_and_name_what_is_wrong() {
    let a = arch(Activation::Tanh, Activation::Linear, false);
    let host = AeHost {
        arch: a,
        params: params(&a, 30),
    };
    let origin = Path::new("ae.safetensors");
    let ck = Checkpoint::of_model(&host).unwrap();
    let back = Checkpoint::from_bytes(&ck.to_bytes().unwrap(), origin).unwrap();
    assert_eq!(back.kind, "autoencoder");
    assert_eq!(back.model::<AeHost>(origin).unwrap(), host);
    let fault = |ck: Checkpoint| {
        let b = Checkpoint::from_bytes(&ck.to_bytes().unwrap(), origin).unwrap();
        match b.model::<AeHost>(origin) {
            Err(Error::Format { path, msg }) => {
                assert_eq!(path, origin);
                msg
            }
            other => panic!("expected a format error, got {other:?}"),
        }
    };
    let mut missing = ck.clone();
    missing.model.tensors.remove("W_dec");
    assert!(fault(missing).contains("W_dec"));
    let mut tied = ck.clone();
    tied.model.meta.insert("tied".into(), "maybe".into());
    assert!(fault(tied).contains("tied"));
    let mut act = ck.clone();
    act.model.meta.insert("encoder".into(), "softsign".into());
    assert!(fault(act).contains("softsign"));
    let mut shape = ck.clone();
    let t = shape.model.tensors.get_mut("b_v").unwrap();
    t.mat = HostMat::zeros(1, 5);
    assert!(fault(shape).contains("b_v"));
    let mut nan = ck;
    nan.model.tensors.get_mut("W").unwrap().mat.data[3] = f32::NAN;
    assert!(fault(nan).contains("'W'"));
}

fn recipe_error(model: &str, train: &str) -> String {
    let text = format!(
        "[model]\nkind = \"autoencoder\"\nn_hidden = 4\n{model}\n[train]\nepochs = 1\nbatch_size = 2\nlr = 0.1\n{train}\n"
    );
    match Recipe::parse(&text, Path::new("bad.toml")) {
        Ok(r) => panic!("{model} / {train} was accepted: {r:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn bad_recipes_name_the_key() {
    for (model, train, key) in [
        (
            "noise = \"masking\"\nnoise_level = 1.0",
            "",
            "model.noise_level",
        ),
        (
            "noise = \"salt-pepper\"\nnoise_level = -0.1",
            "",
            "model.noise_level",
        ),
        (
            "noise = \"gaussian\"\nnoise_level = 0.0",
            "",
            "model.noise_level",
        ),
        ("encoder = \"softsign\"", "", "softsign"),
        ("decoder = \"tanh\"", "", "model.decoder"),
        ("noise = \"pink\"", "", "pink"),
        (
            "encoder = \"relu\"\ncontractive = 0.1",
            "",
            "model.contractive",
        ),
        (
            "encoder = \"tanh\"\nsparsity_target = 0.1",
            "",
            "model.sparsity_target",
        ),
        ("sparsity_target = 1.5", "", "model.sparsity_target"),
        ("walkback = 2", "", "model.walkback"),
        ("walkback = 0", "", "model.walkback"),
        (
            "decoder = \"linear\"\nnoise = \"masking\"\nnoise_level = 0.2\nwalkback = 2",
            "",
            "model.walkback",
        ),
        ("", "method = \"pcd\"", "train.method"),
        ("", "centering = true", "train.centering"),
        ("", "optimizer = \"rmsprop\"", "rmsprop"),
        ("", "clip_norm = 0.0", "train.clip_norm"),
        ("", "adam_beta1 = 1.0", "train.adam_beta1"),
    ] {
        let e = recipe_error(model, train);
        assert!(
            e.contains(key),
            "{model} / {train}: '{e}' does not name {key}"
        );
    }
}

#[test]
fn bad_data_and_divergence_are_typed_errors() {
    let be = Cpu::new();
    let (x, held) = (data(20, 12, 7), data(10, 12, 8));
    let mut nan = x.clone();
    nan.data[30] = f32::NAN;
    let e = AeTrainer::new(&be, recipe("", ""), &nan, Some(&held))
        .err()
        .unwrap();
    assert!(
        e.to_string().contains("training data") && e.to_string().contains("NaN"),
        "{e}"
    );
    let mut big = held.clone();
    big.data[5] = 1.5;
    let e = AeTrainer::new(&be, recipe("", ""), &x, Some(&big))
        .err()
        .unwrap();
    assert!(
        e.to_string().contains("held-out data") && e.to_string().contains("1.5"),
        "{e}"
    );
    // Values outside [0, 1] are fine for squared error.
    assert!(AeTrainer::new(&be, recipe("decoder = \"linear\"", ""), &x, Some(&big)).is_ok());

    // A linear auto-encoder with a learning rate growing to 1e6 blows up;
    // the last good checkpoint stays on disk.
    let dir = std::env::temp_dir().join(format!("ebmkit-ae-diverge-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("model.safetensors");
    let mut r = recipe(
        "encoder = \"linear\"\ndecoder = \"linear\"\ninit_std = 0.5",
        "lr_schedule = \"linear\"\nlr_final = 1e6",
    );
    r.train.epochs = 40;
    r.train.lr = 1e-3;
    r.train.momentum = 0.0;
    let mut t = AeTrainer::new(&be, r, &x, Some(&held)).unwrap();
    match t.fit(&be, Some(&path), &mut |_, _| {}, &mut |_, _| {}) {
        Err(Error::Diverged {
            epoch,
            param,
            last_good,
        }) => {
            assert!(epoch > 1, "diverged at epoch {epoch}");
            assert!(["W", "b_h", "b_v"].contains(&param.as_str()), "{param}");
            assert_eq!(last_good.as_deref(), Some(path.as_path()));
            let ck = Checkpoint::load(&path).unwrap();
            assert_eq!(ck.epoch, epoch - 1);
            ck.model::<AeHost>(&path).unwrap();
        }
        other => panic!("expected divergence, got {:?}", other.map(|_| t.epoch)),
    }
    std::fs::remove_dir_all(&dir).ok();
}

/// `n` draws of N(μ, Σ) for μ = (0.5, -0.3), Σ = [[0.5, 0.3], [0.3, 0.4]].
fn gaussian_2d(n: usize, seed: u64) -> HostMat {
    let d = RngStream::new(seed, 12).next_draw();
    // Cholesky factor of Σ.
    let (l11, l21) = (0.5f32.sqrt(), 0.3 / 0.5f32.sqrt());
    let l22 = (0.4 - l21 * l21).sqrt();
    HostMat::from_fn(n, 2, |r, c| {
        let (z1, z2) = (d.normal(2 * r), d.normal(2 * r + 1));
        match c {
            0 => 0.5 + l11 * z1,
            _ => -0.3 + l21 * z1 + l22 * z2,
        }
    })
}

fn mean_cov(x: &HostMat) -> ([f64; 2], [f64; 3]) {
    let n = x.rows as f64;
    let m = [0, 1].map(|c| (0..x.rows).map(|r| x.get(r, c) as f64).sum::<f64>() / n);
    let cov = |a: usize, b: usize| {
        (0..x.rows)
            .map(|r| (x.get(r, a) as f64 - m[a]) * (x.get(r, b) as f64 - m[b]))
            .sum::<f64>()
            / n
    };
    (m, [cov(0, 0), cov(0, 1), cov(1, 1)])
}

#[test]
fn the_generalized_dae_chain_samples_a_2d_gaussian() {
    chain_matches_a_2d_gaussian(1);
}

fn chain_matches_a_2d_gaussian(walkback: usize) {
    use ebmkit::models::autoencoder::DaeChain;
    let be = Cpu::new();
    let (x, held) = (gaussian_2d(2000, 1), gaussian_2d(200, 2));
    let mut r = recipe(
        "encoder = \"tanh\"\ndecoder = \"linear\"\ntied = false\nnoise = \"gaussian\"\nnoise_level = 0.3",
        "optimizer = \"adam\"\nlr = 0.01\nlr_schedule = \"linear\"\nlr_final = 0.0",
    );
    r.autoencoder_mut().unwrap().n_hidden = 32;
    r.autoencoder_mut().unwrap().walkback = walkback;
    r.train.epochs = 40;
    r.train.batch_size = 50;
    let t = train_to_end(&be, r, &x, &held);
    // 2000 chains started at data points (and, as a second check, at one
    // point far from the mass) run 200 steps.
    let mut rng = RngStream::new(9, 9);
    let far = HostMat::from_fn(2000, 2, |_, c| [2.5, 1.5][c]);
    for (what, start) in [("data", &x), ("(2.5, 1.5)", &far)] {
        let run = DaeChain {
            start,
            steps: 200,
            every: None,
        };
        let s = t
            .objective
            .ae
            .sample_chain(&be, &run, Noise::Gaussian(0.3), &mut rng)
            .unwrap();
        let ((md, cd), (ms, cs)) = (mean_cov(&x), mean_cov(&s.last));
        eprintln!("walkback {walkback}, from {what}: data mean {md:.3?} cov {cd:.3?}; chain mean {ms:.3?} cov {cs:.3?}");
        // Means within 0.1 (the data's standard deviations are 0.7 and 0.63);
        // covariances within 0.06 (σ² = 0.09 too much or too little noise
        // per step fails it).
        for i in 0..2 {
            assert!(
                (md[i] - ms[i]).abs() < 0.1,
                "from {what}: mean {ms:?} vs {md:?}"
            );
        }
        for i in 0..3 {
            assert!(
                (cd[i] - cs[i]).abs() < 0.06,
                "from {what}: cov {cs:?} vs {cd:?}"
            );
        }
    }
}
