//! Greedy layer-wise stacks: the recipe (shared and per-layer training
//! keys, bad layers named), the checkpoint (layers under prefixes, widths
//! that must chain), and training: layer k learns from layer k-1's codes,
//! and a run resumed in the middle of a layer ends where a straight run
//! does.

use ebmkit::data::Binarize;
use ebmkit::io::checkpoint::Checkpoint;
use ebmkit::io::recipe::{Codes, ModelSpec, Recipe};
use ebmkit::models::{AnyModel, StackHost};
use ebmkit::prelude::*;
use ebmkit::train::autoencoder::AeTrainer;
use ebmkit::train::stack::{encode, LayerStart, Progress, StackTrainer};
use std::path::Path;

const STACK: &str = r#"
[model]
kind = "stack"

[train]
epochs = 4
batch_size = 10
lr = 0.1
momentum = 0.5
seed = 5

[monitor]
rows = 20

[[layer]]
model = { kind = "rbm", n_hidden = 8, init_std = 0.1 }
train = { method = "cd", lr = 0.05 }

[[layer]]
model = { kind = "autoencoder", n_hidden = 5, noise = "masking", noise_level = 0.2 }
train = { optimizer = "adam", lr = 0.01 }
"#;

fn parse(text: &str) -> ebmkit::Result<Recipe> {
    Recipe::parse(text, Path::new("stack.toml"))
}

#[test]
fn layers_take_the_shared_keys_and_their_own() {
    let r = parse(STACK).unwrap();
    assert_eq!(r.layers.len(), 2);
    let (l0, l1) = (r.layer(0).unwrap(), r.layer(1).unwrap());
    assert!(matches!(l0.model, ModelSpec::Rbm(_)));
    assert_eq!(
        (l0.train.lr, l0.train.epochs, l0.train.momentum),
        (0.05, 4, 0.5)
    );
    assert_eq!(
        (l1.train.lr, l1.train.batch_size, l1.train.seed),
        (0.01, 10, 5)
    );
    // Layer 0 reads the stack's data (an RBM's default binarisation);
    // layer 1 the codes in memory, as means.
    assert_eq!(l0.data.binarize, Binarize::Stochastic);
    assert_eq!((l1.data.source, l1.data.binarize), (None, Binarize::None));
    // The stored recipe parses back to the same stack.
    assert_eq!(parse(&r.to_toml().unwrap()).unwrap(), r);
    let s =
        parse(&STACK.replace("kind = \"stack\"", "kind = \"stack\"\ncodes = \"samples\"")).unwrap();
    assert_eq!(s.stack().unwrap().codes, Codes::Samples);
    assert_eq!(s.layer(1).unwrap().data.binarize, Binarize::Stochastic);
}

#[test]
fn bad_stacks_name_the_layer_and_the_key() {
    let cases = [
        (STACK.replace("noise_level = 0.2", "noise_level = 1.5"), "layer 1: model.noise_level"),
        (STACK.replace("optimizer = \"adam\"", "method = \"pcd\""), "layer 1: train.method"),
        (
            STACK.replace(
                "model = { kind = \"autoencoder\", n_hidden = 5, noise = \"masking\", noise_level = 0.2 }",
                "model = { kind = \"net\", hidden = [3] }",
            ),
            "stack layers are rbm, autoencoder or sparse with encoder = \"psd\"",
        ),
        (STACK.split("[[layer]]").next().unwrap().to_string(), "at least one [[layer]]"),
        (
            STACK.replace("kind = \"stack\"", "kind = \"stack\"\ncodes = \"samples\"")
                .replace("kind = \"rbm\", n_hidden = 8", "kind = \"rbm\", n_hidden = 8, hidden = \"gaussian\""),
            "model.codes",
        ),
        (
            "[model]\nkind = \"rbm\"\nn_hidden = 3\n[train]\nepochs = 1\nbatch_size = 1\nlr = 0.1\n[[layer]]\nmodel = { kind = \"rbm\", n_hidden = 2 }\n".to_string(),
            "belong to kind = \"stack\"",
        ),
    ];
    for (text, want) in cases {
        let e = parse(&text).unwrap_err().to_string();
        assert!(e.contains(want), "'{e}' does not say {want}");
    }
}

/// Noisy copies of three binary prototypes.
fn data(n: usize, seed: u64) -> HostMat {
    let d = RngStream::new(seed, 6).next_draw();
    HostMat::from_fn(n, 12, |r, c| {
        let on = (c + r % 3) % 3 == 0;
        (on != (d.uniform(r * 12 + c) < 0.1)) as u8 as f32
    })
}

type EpochRecordAlias = ebmkit::train::EpochRecord;

/// The stack, and each layer's (index, first epoch, batches per epoch,
/// batches reported).
type Starts = Vec<(usize, u64, usize, usize)>;

fn fit_reporting(
    recipe: Recipe,
    dir: &Path,
    resume: bool,
    x: &HostMat,
    h: &HostMat,
) -> (StackHost, Starts) {
    let starts = std::cell::RefCell::new(Starts::new());
    let mut a = |s: LayerStart<'_>| {
        starts
            .borrow_mut()
            .push((s.k, s.from, s.batches_per_epoch, 0))
    };
    let mut n = |_: u64, _: usize| {
        if let Some(last) = starts.borrow_mut().last_mut() {
            last.3 += 1;
        }
    };
    let mut b = |_: usize, _: &EpochRecordAlias, _: String| {};
    let stack = StackTrainer::new(recipe, dir)
        .unwrap()
        .fit(
            &Cpu::new(),
            (x, Some(h)),
            resume,
            Progress {
                on_layer: &mut a,
                on_batch: &mut n,
                on_epoch: &mut b,
            },
        )
        .unwrap();
    (stack, starts.into_inner())
}

fn fit(recipe: Recipe, dir: &Path, resume: bool, x: &HostMat, h: &HostMat) -> StackHost {
    fit_reporting(recipe, dir, resume, x, h).0
}

/// The epochs in a layer's curves.csv.
fn curve_epochs(dir: &Path, k: usize) -> Vec<u64> {
    let csv = std::fs::read_to_string(dir.join(format!("layer-{k}/curves.csv"))).unwrap();
    csv.lines()
        .skip(1)
        .map(|l| l.split(',').next().unwrap().parse().unwrap())
        .collect()
}

fn temp(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("ebmkit-stack-{name}-{}", std::process::id()));
    std::fs::remove_dir_all(&d).ok();
    d
}

#[test]
fn each_layer_learns_from_the_codes_below_and_resumes_where_it_stopped() {
    let be = Cpu::new();
    let (x, h) = (data(40, 1), data(20, 2));
    let r = parse(STACK).unwrap();
    let a = temp("a");
    let stack = fit(r.clone(), &a, false, &x, &h);
    assert_eq!(stack.sizes().unwrap(), [12, 8, 5]);

    // Layer 1 is the auto-encoder its own recipe trains on layer 0's means.
    let codes = encode(&be, &stack.layers[0], &x, 1.0).unwrap();
    let held = encode(&be, &stack.layers[0], &h, 1.0).unwrap();
    let mut t = AeTrainer::new(&be, r.layer(1).unwrap(), &codes, Some(&held)).unwrap();
    t.fit(&be, None, &mut |_, _| {}, &mut |_, _| {}).unwrap();
    assert_eq!(
        AnyModel::Autoencoder(t.objective.ae.to_host(&be).unwrap()),
        stack.layers[1]
    );

    // Stopped after 2 of layer 1's 4 epochs, then resumed with the full
    // recipe: layer 0 is kept, layer 1 continues, the stack is the same.
    let b = temp("b");
    let mut short = r.clone();
    short.layers[1].train.epochs = 2;
    fit(short, &b, false, &x, &h);
    assert_eq!(curve_epochs(&b, 1), [1, 2]);
    let (resumed, starts) = fit_reporting(r.clone(), &b, true, &x, &h);
    assert_eq!(resumed, stack);
    // Layer 0 was done; layer 1 went on from epoch 2, every batch reported.
    let e0 = r.layer(0).unwrap().train.epochs as u64;
    let (bpe, left) = (starts[1].2, (4 - 2) as usize);
    assert_eq!(starts[0], (0, e0, 0, 0));
    assert_eq!(starts[1], (1, 2, bpe, bpe * left));
    assert!(bpe > 0);
    // The resumed layer's curves hold its whole history.
    assert_eq!(curve_epochs(&b, 1), [1, 2, 3, 4]);
    // Without --resume every layer starts again, from the same seeds.
    assert_eq!(fit(r.clone(), &b, false, &x, &h), stack);

    // One checkpoint holds the stack; a layer that does not fit is named.
    let origin = Path::new("stack.safetensors");
    let mut ck = Checkpoint::of_model(&stack).unwrap();
    ck.recipe = r.to_toml().unwrap();
    let back = Checkpoint::from_bytes(&ck.to_bytes().unwrap(), origin).unwrap();
    assert_eq!(back.model::<StackHost>(origin).unwrap(), stack);
    let mut bad = ck.clone();
    bad.recipe.clear();
    // Layer 1 a valid auto-encoder by itself, of 7 inputs.
    bad.model.tensors.get_mut("1.W").unwrap().mat = HostMat::zeros(7, 5);
    bad.model.tensors.get_mut("1.b_v").unwrap().mat = HostMat::zeros(1, 7);
    let e = Checkpoint::from_bytes(&bad.to_bytes().unwrap(), origin)
        .unwrap()
        .model::<StackHost>(origin);
    let e = e.unwrap_err().to_string();
    assert!(
        e.contains("layer 1 reads 7 values but layer 0 gives 8"),
        "{e}"
    );
    let mut bad = ck;
    bad.model.meta.remove("0.kind");
    let e = Checkpoint::from_bytes(&bad.to_bytes().unwrap(), origin)
        .unwrap()
        .model::<StackHost>(origin);
    assert!(e.unwrap_err().to_string().contains("model.0.kind"));
    std::fs::remove_dir_all(&a).ok();
    std::fs::remove_dir_all(&b).ok();
}
