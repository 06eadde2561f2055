//! Feed-forward nets: the loss gradients of every output against f64
//! finite differences, the PyTorch layout of checkpoints and exports
//! (checked from Python with numpy), nets built from pretrained layers, and
//! supervised training with model selection, early stopping, exact resume
//! and bad labels.

use ebmkit::autodiff::check::check;
use ebmkit::autodiff::Activation;
use ebmkit::backend::reference::F64;
use ebmkit::io::checkpoint::Checkpoint;
use ebmkit::io::recipe::{NetSpec, Output, Recipe};
use ebmkit::models::net::{build, export_torch, one_hot, Dense, Dropout, Net, NetHost, Pretrained};
use ebmkit::prelude::*;
use ebmkit::train::fit::Rows;
use ebmkit::train::net::NetTrainer;
use ebmkit::Error;
use std::path::Path;

fn values(rows: usize, cols: usize, seed: u64, (lo, hi): (f32, f32)) -> HostMat {
    let d = RngStream::new(seed, 55).next_draw();
    HostMat::from_fn(rows, cols, |r, c| lo + (hi - lo) * d.uniform(r * cols + c))
}

fn dense(n_in: usize, n_out: usize, act: Activation, seed: u64) -> Dense {
    Dense {
        w: values(n_in, n_out, seed, (-0.8, 0.8)),
        b: values(1, n_out, seed + 100, (-0.5, 0.5)),
        act,
    }
}

fn net(output: Output, last: Activation) -> NetHost {
    NetHost {
        layers: vec![
            dense(6, 5, Activation::Sigmoid, 1),
            dense(5, 4, Activation::Tanh, 2),
            dense(4, 4, Activation::Relu, 3),
            dense(4, 3, last, 4),
        ],
        output,
    }
}

#[test]
fn every_output_passes_the_gradient_check() {
    let x = values(5, 6, 9, (0.0, 1.0));
    let labels = one_hot(&[0, 2, 1, 1, 0], 3, "labels").unwrap();
    let cases = [
        (Output::Softmax, Activation::Linear, labels),
        (
            Output::Sigmoid,
            Activation::Sigmoid,
            values(5, 3, 10, (0.0, 1.0)),
        ),
        (
            Output::Linear,
            Activation::Tanh,
            values(5, 3, 11, (-1.0, 1.0)),
        ),
    ];
    for (output, last, t) in cases {
        let host = net(output, last);
        let n = Net::from_host(&F64, &host).unwrap();
        for dropout in [
            Dropout::default(),
            Dropout {
                input: 0.2,
                hidden: 0.3,
            },
        ] {
            let g = n.graph(x.rows, dropout).unwrap();
            let params: Vec<HostMat> = host
                .layers
                .iter()
                .flat_map(|l| [l.w.clone(), l.b.clone()])
                .collect();
            let rep = check(&g.graph, g.loss, &params, &[x.clone(), t.clone()], 4).unwrap();
            eprintln!(
                "{output:?} {dropout:?}: {} entries, max rel err {:.2e}",
                rep.checked, rep.max_rel_err
            );
            // Rounding of the differences (about 1e-10 absolute at a step of
            // 1e-6) is all that remains on the smallest entries.
            assert!(
                rep.max_rel_err < 1e-4,
                "{output:?} {dropout:?}: {}",
                rep.worst
            );
        }
    }
}

#[test]
fn checkpoints_hold_the_pytorch_layout() {
    let host = net(Output::Softmax, Activation::Linear);
    let ck = Checkpoint::of_model(&host).unwrap();
    let names: Vec<&String> = ck.model.tensors.keys().collect();
    assert_eq!(
        names,
        ["0.bias", "0.weight", "2.bias", "2.weight", "4.bias", "4.weight", "6.bias", "6.weight"]
    );
    // nn.Linear keeps [out, in].
    let w2 = &ck.model.tensors["2.weight"].mat;
    assert_eq!(w2.shape(), (4, 5));
    assert_eq!(w2.get(3, 1), host.layers[1].w.get(1, 3));
    let origin = Path::new("net.safetensors");
    let back = Checkpoint::from_bytes(&ck.to_bytes().unwrap(), origin).unwrap();
    assert_eq!(back.model::<NetHost>(origin).unwrap(), host);
    // A missing layer, a bias of the wrong width and a bad activation are
    // format errors naming the file.
    let fault = |c: Checkpoint| -> String {
        let b = Checkpoint::from_bytes(&c.to_bytes().unwrap(), origin).unwrap();
        match b.model::<NetHost>(origin) {
            Err(Error::Format { path, msg }) => {
                assert_eq!(path, origin);
                msg
            }
            other => panic!("expected a format error, got {other:?}"),
        }
    };
    let mut c = ck.clone();
    c.model.tensors.remove("4.bias");
    assert!(fault(c).contains("tensors for 4 layers"));
    let mut c = ck.clone();
    c.model.tensors.get_mut("2.bias").unwrap().mat = HostMat::zeros(1, 7);
    assert!(fault(c).contains("layer 1"));
    let mut c = ck;
    c.model
        .meta
        .insert("activations".into(), "sigmoid,tanh,swish,linear".into());
    assert!(fault(c).contains("swish"));
}

#[test]
fn exported_nets_give_ebmkits_outputs_in_numpy() {
    let dir = std::env::temp_dir().join(format!("ebmkit-export-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (k, (output, last)) in [
        (Output::Softmax, Activation::Linear),
        (Output::Sigmoid, Activation::Sigmoid),
        (Output::Linear, Activation::Relu),
    ]
    .into_iter()
    .enumerate()
    {
        let host = net(output, last);
        let x = values(7, 6, 20 + k as u64, (0.0, 1.0));
        let out = Net::from_host(&Cpu::new(), &host)
            .unwrap()
            .forward(&Cpu::new(), &x)
            .unwrap();
        let path = dir.join(format!("net{k}.safetensors"));
        export_torch(&host, "", &path).unwrap();
        let (xi, xo) = (dir.join(format!("x{k}.npy")), dir.join(format!("y{k}.npy")));
        ebmkit::data::write_npy(&xi, &x).unwrap();
        ebmkit::data::write_npy(&xo, &out).unwrap();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/check_export.py");
        let run = std::process::Command::new("python3")
            .arg(&script)
            .args([&path, &xi, &xo])
            .output()
            .expect("python3 runs (CI installs numpy and safetensors)");
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&run.stdout),
            String::from_utf8_lossy(&run.stderr)
        );
        eprintln!("{said}");
        assert!(run.status.success(), "the Python check failed: {said}");
    }
    std::fs::remove_dir_all(&dir).ok();
}

fn rbm(nv: usize, nh: usize, seed: u64) -> RbmHost {
    RbmHost::binary(
        values(nv, nh, seed, (-0.5, 0.5)),
        values(1, nv, seed + 1, (-0.5, 0.5)),
        values(1, nh, seed + 2, (-0.5, 0.5)),
    )
}

#[test]
fn stacks_unroll_into_deep_autoencoders_and_classifiers() {
    let (r0, r1) = (rbm(6, 4, 1), rbm(4, 3, 2));
    let layers: [&dyn ebmkit::models::net::Layerwise; 2] = [&r0, &r1];
    let mut spec = NetSpec::classifier(&[], 5);
    let mut rng = RngStream::new(1, 1);
    let pre = Pretrained::of(&layers, false).unwrap();
    let clf = build(&spec, 6, Some(&pre), &mut rng).unwrap();
    assert_eq!(clf.sizes(), [6, 4, 3, 5]);
    assert_eq!(clf.layers[1].w, r1.w);
    assert_eq!(clf.layers[1].b, r1.b_h);

    spec.autoencoder = true;
    spec.output = Output::Sigmoid;
    let pre = Pretrained::of(&layers, true).unwrap();
    let dae = build(&spec, 6, Some(&pre), &mut rng).unwrap();
    assert_eq!(dae.sizes(), [6, 4, 3, 4, 6]);
    assert_eq!(dae.layers[2].w, r1.w.transpose());
    assert_eq!(dae.layers[2].b, r1.b_v);
    assert_eq!(dae.layers[3].w, r0.w.transpose());
    assert_eq!(dae.layers[3].act, Activation::Sigmoid);

    // Widths the recipe states must be the stack's; rows must fit its input.
    spec.hidden = vec![4, 2];
    let e = build(&spec, 6, Some(&pre), &mut rng)
        .unwrap_err()
        .to_string();
    assert!(e.contains("model.hidden") && e.contains("[4, 3]"), "{e}");
    spec.hidden = vec![];
    let e = build(&spec, 7, Some(&pre), &mut rng)
        .unwrap_err()
        .to_string();
    assert!(e.contains("7"), "{e}");
    // A linear output cannot unroll onto a sigmoid visible layer.
    spec.output = Output::Linear;
    let e = build(&spec, 6, Some(&pre), &mut rng)
        .unwrap_err()
        .to_string();
    assert!(e.contains("decoder"), "{e}");
}

/// Three noisy prototypes of 12 pixels, labelled by prototype.
fn labelled(n: usize, seed: u64) -> (HostMat, Vec<u8>) {
    let d = RngStream::new(seed, 4).next_draw();
    let x = HostMat::from_fn(n, 12, |r, c| {
        let on = (c % 3) == r % 3;
        let noise = 0.3 * d.uniform(r * 12 + c);
        if on {
            0.7 + noise
        } else {
            noise
        }
    });
    (x, (0..n).map(|r| (r % 3) as u8).collect())
}

fn recipe(extra: &str) -> Recipe {
    let hidden = if extra.starts_with("hidden =") {
        ""
    } else {
        "hidden = [8]"
    };
    let text = format!(
        "[model]\nkind = \"net\"\n{hidden}\nclasses = 3\n{extra}\n[train]\nepochs = 30\nbatch_size = 10\nlr = 0.5\nmomentum = 0.5\nseed = 2\n[monitor]\nrows = 1000\n"
    );
    Recipe::parse(&text, Path::new("net.toml")).unwrap()
}

fn trainer(
    r: Recipe,
    (x, t): (&HostMat, &HostMat),
    (vx, vt): (&HostMat, &HostMat),
) -> NetTrainer<Cpu> {
    NetTrainer::new_supervised(
        &Cpu::new(),
        r,
        Rows { x, t: Some(t) },
        Some(Rows { x: vx, t: Some(vt) }),
    )
    .unwrap()
}

#[test]
fn a_classifier_learns_keeps_its_best_epoch_and_stops_early() {
    let be = Cpu::new();
    let ((x, l), (vx, vl)) = (labelled(60, 1), labelled(30, 2));
    let (t, vt) = (one_hot(&l, 3, "l").unwrap(), one_hot(&vl, 3, "l").unwrap());
    let mut tr = trainer(recipe("patience = 3"), (&x, &t), (&vx, &vt));
    tr.recipe.train.epochs = 500;
    tr.fit(&be, None, &mut |_, _| {}, &mut |_, _| {}).unwrap();
    let h = &tr.history.epochs;
    let errs: Vec<f64> = h.iter().map(|e| e.metric("valid_error").unwrap()).collect();
    let first_best = errs
        .iter()
        .enumerate()
        .fold(0, |b, (i, &e)| if e < errs[b] { i } else { b });
    let (epoch, score) = tr.objective.best_epoch().unwrap();
    assert_eq!(epoch as usize, first_best + 1, "errors {errs:?}");
    assert_eq!(score, (errs[first_best] / 100.0 * 30.0).round() as f32);
    assert!(
        h.len() < 500 && h.len() == first_best + 1 + 3,
        "stopped after {} epochs, best {}",
        h.len(),
        first_best + 1
    );
    assert_eq!(errs[first_best], 0.0, "{errs:?}");
    // The best net scores what its epoch recorded.
    let best = tr.objective.best(&be).unwrap();
    let s = Net::from_host(&be, &best)
        .unwrap()
        .evaluate(&be, &vx, &vt)
        .unwrap();
    assert_eq!(100.0 * s.error_rate.unwrap(), errs[first_best]);
    // A stopped run stays stopped, fitted again or resumed from its
    // checkpoint.
    let n = tr.history.epochs.len();
    tr.fit(&be, None, &mut |_, _| {}, &mut |_, _| {}).unwrap();
    assert_eq!(tr.history.epochs.len(), n);
    let origin = Path::new("stopped.safetensors");
    let ck = tr.checkpoint(&be).unwrap();
    let rows = (
        Rows { x: &x, t: Some(&t) },
        Some(Rows {
            x: &vx,
            t: Some(&vt),
        }),
    );
    let mut again =
        NetTrainer::resume_supervised(&be, tr.recipe.clone(), &ck, origin, rows).unwrap();
    again
        .fit(&be, None, &mut |_, _| {}, &mut |_, _| {})
        .unwrap();
    assert_eq!(again.history.epochs.len(), n);
}

#[test]
fn resuming_a_net_continues_bit_for_bit() {
    let be = Cpu::new();
    let ((x, l), (vx, vl)) = (labelled(50, 3), labelled(20, 4));
    let (t, vt) = (one_hot(&l, 3, "l").unwrap(), one_hot(&vl, 3, "l").unwrap());
    for extra in [
        "dropout_hidden = 0.2\ndropout_input = 0.1",
        "hidden = [6, 5]\nactivations = [\"tanh\", \"relu\"]",
    ] {
        let r = recipe(extra);
        let mut straight = trainer(r.clone(), (&x, &t), (&vx, &vt));
        straight.recipe.train.epochs = 6;
        straight
            .fit(&be, None, &mut |_, _| {}, &mut |_, _| {})
            .unwrap();
        let mut half = trainer(r.clone(), (&x, &t), (&vx, &vt));
        half.recipe.train.epochs = 3;
        half.fit(&be, None, &mut |_, _| {}, &mut |_, _| {}).unwrap();
        let origin = Path::new("mem.safetensors");
        let ck = Checkpoint::from_bytes(&half.checkpoint(&be).unwrap().to_bytes().unwrap(), origin)
            .unwrap();
        let mut r6 = r.clone();
        r6.train.epochs = 6;
        let rows = (
            Rows { x: &x, t: Some(&t) },
            Some(Rows {
                x: &vx,
                t: Some(&vt),
            }),
        );
        let mut resumed = NetTrainer::resume_supervised(&be, r6, &ck, origin, rows).unwrap();
        resumed
            .fit(&be, None, &mut |_, _| {}, &mut |_, _| {})
            .unwrap();
        assert_eq!(
            straight.objective.net.to_host(&be).unwrap(),
            resumed.objective.net.to_host(&be).unwrap(),
            "{extra}"
        );
        assert_eq!(
            straight.objective.best_epoch(),
            resumed.objective.best_epoch(),
            "{extra}"
        );
        assert_eq!(
            straight.objective.best(&be).unwrap(),
            resumed.objective.best(&be).unwrap(),
            "{extra}"
        );
    }
}

#[test]
fn bad_labels_and_recipes_are_typed_errors() {
    let e = one_hot(&[0, 1, 10], 10, "training labels")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("training labels") && e.contains("label 10 at row 2"),
        "{e}"
    );
    let be = Cpu::new();
    let ((x, l), (vx, vl)) = (labelled(30, 5), labelled(10, 6));
    let t = one_hot(&l, 3, "l").unwrap();
    let vt = one_hot(&vl, 3, "l").unwrap();
    // Targets whose count differs from the rows'.
    let short = one_hot(&l[..20], 3, "l").unwrap();
    let e = NetTrainer::new_supervised(
        &be,
        recipe(""),
        Rows {
            x: &x,
            t: Some(&short),
        },
        Some(Rows {
            x: &vx,
            t: Some(&vt),
        }),
    )
    .err()
    .unwrap()
    .to_string();
    assert!(e.contains("20 training targets for 30 rows"), "{e}");
    // A classifier without labels.
    let e = NetTrainer::new(&be, recipe(""), &x, Some(&vx))
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("needs labels"), "{e}");
    // NaN in the data.
    let mut nan = x.clone();
    nan.data[7] = f32::NAN;
    let e = NetTrainer::new_supervised(
        &be,
        recipe(""),
        Rows {
            x: &nan,
            t: Some(&t),
        },
        None,
    )
    .err()
    .unwrap()
    .to_string();
    assert!(e.contains("training data") && e.contains("NaN"), "{e}");
    for (extra, key) in [
        ("output = \"softmax\"\nautoencoder = true", "model.output"),
        ("dropout_hidden = 1.0", "model.dropout_hidden"),
        ("activations = [\"relu\", \"tanh\"]", "model.activations"),
        ("activation = \"gelu\"", "gelu"),
        ("output = \"probit\"", "probit"),
        ("patience = 0", "model.patience"),
        ("classes = 1", "model.classes"),
    ] {
        let text = format!("[model]\nkind = \"net\"\nhidden = [8]\n{extra}\n[train]\nepochs = 1\nbatch_size = 2\nlr = 0.1\n");
        let e = Recipe::parse(&text, Path::new("bad.toml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains(key), "{extra}: '{e}' does not name {key}");
    }
    // No hidden layers and nothing pretrained to take them from.
    let spec = NetSpec::classifier(&[], 3);
    let e = build(&spec, 12, None, &mut RngStream::new(1, 1))
        .unwrap_err()
        .to_string();
    assert!(e.contains("model.hidden"), "{e}");
}
