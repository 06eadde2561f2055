//! Recipes and checkpoints: every shipped recipe parses; bad recipes and
//! damaged checkpoints give errors naming the key, the file and the tensor.

use ebmkit::io::checkpoint::Checkpoint;
use ebmkit::io::recipe::Recipe;
use ebmkit::models::rbm::RbmHost;
use ebmkit::models::AnyModel;
use ebmkit::units::UnitKind;
use ebmkit::{HostMat, RngStream};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

const GOOD: &str = r#"
[model]
n_hidden = 16

[data]
source = "mnist-small"

[train]
method = "pcd"
epochs = 2
batch_size = 10
lr = 0.05
"#;

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("ebmkit-rbm-io-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d.join(name)
}

/// The recipes whose reproductions the README reports: 500 hidden units,
/// batches of 100.
const MNIST_500: [&str; 5] = [
    "rbm-mnist-small",
    "rbm500-cd1",
    "rbm500-cd3",
    "rbm500-cd25",
    "rbm500-pcd",
];

#[test]
fn shipped_recipes_parse_and_validate() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("models");
    let mut seen = std::collections::BTreeSet::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|x| x != "toml") {
            continue;
        }
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        let r = Recipe::load(&path).unwrap_or_else(|e| panic!("{e}"));
        let text = std::fs::read_to_string(&path).unwrap();
        let kind = format!("kind = \"{}\"", r.model.kind());
        assert!(
            text.contains(&kind),
            "{name}: every shipped recipe names its kind"
        );
        // What a checkpoint stores must come back as the same recipe.
        let again = Recipe::parse(&r.to_toml().unwrap(), &path).unwrap();
        assert_eq!(again, r, "{name}: the TOML round trip changed the recipe");
        if MNIST_500.contains(&name.as_str()) {
            assert_eq!(r.rbm().unwrap().n_hidden, 500, "{name}");
            assert_eq!(r.train.batch_size, 100, "{name}");
        }
        if name == "rbm500-cd25" {
            assert_eq!(r.train.k, 25);
        }
        seen.insert(name);
    }
    for name in
        MNIST_500
            .iter()
            .chain(&["rbm500-pcd-centered", "grbm20-patches", "dae-mnist-small"])
    {
        assert!(seen.contains(*name), "models/{name}.toml is missing");
    }
}

#[test]
fn a_recipe_without_a_kind_is_an_rbm_and_an_unknown_kind_is_named() {
    let p = Path::new("k.toml");
    let with_kind = GOOD.replace("[model]", "[model]\nkind = \"rbm\"");
    assert_eq!(
        Recipe::parse(GOOD, p).unwrap(),
        Recipe::parse(&with_kind, p).unwrap()
    );
    let e = Recipe::parse(&GOOD.replace("[model]", "[model]\nkind = \"dbn\""), p)
        .unwrap_err()
        .to_string();
    assert!(e.contains("dbn") && e.contains("k.toml"), "{e}");
    // Without a data section the data come from the caller.
    let no_data = GOOD.replace("[data]\nsource = \"mnist-small\"\n", "");
    let r = Recipe::parse(&no_data, p).unwrap();
    assert!(r.data.source.is_none());
    let e = r.data.load(None, 1).err().unwrap().to_string();
    assert!(e.contains("data.source"), "{e}");
}

#[test]
fn histories_load_from_old_checkpoints_and_bad_ones_are_errors() {
    use ebmkit::train::History;
    let p = Path::new("h.safetensors");
    // The layout of checkpoints written before model kinds existed.
    let old = r#"{"epochs":[{"epoch":1,"lr":0.01,"recon_error":50.5,"pseudo_ll":null,"fe_train":-3.0,"fe_heldout":null,"fe_gap":null,"seconds":0.25,"swap_rates":[0.5,0.25]}]}"#;
    let h = History::from_json(old, p).unwrap();
    let r = &h.epochs[0];
    assert_eq!((r.epoch, r.lr, r.seconds), (1, 0.01, 0.25));
    assert_eq!(r.metric("recon_error"), Some(50.5));
    assert_eq!(r.metric("pseudo_ll"), None);
    assert_eq!(r.series["swap_rates"], vec![0.5, 0.25]);
    assert_eq!(History::from_json(&h.to_json().unwrap(), p).unwrap(), h);
    assert!(History::from_json("", p).unwrap().epochs.is_empty());
    for bad in ["not json", r#"{"epochs":[{"epoch":"one"}]}"#] {
        let e = History::from_json(bad, p).unwrap_err().to_string();
        assert!(e.contains("h.safetensors") && e.contains("history"), "{e}");
    }
}

#[test]
fn checkpoints_of_the_first_format_still_load() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("experiments/results/h100-2026-11-27/rbm500-pcd-centered.safetensors");
    let (model, ck) = AnyModel::load(&path).unwrap();
    let AnyModel::Rbm(h) = model else {
        panic!("the file holds an RBM, loaded as {model:?}")
    };
    assert_eq!(ck.kind, "rbm");
    assert_eq!((h.n_visible(), h.n_hidden()), (784, 500));
    assert_eq!(
        (h.visible, h.hidden),
        (UnitKind::Bernoulli, UnitKind::Bernoulli)
    );
    assert_eq!(ck.epoch, 1000);
    assert_eq!(ck.state["chain_v"].shape(), (100, 784));
    assert!(
        ebmkit::train::History::from_json(&ck.history, &path)
            .unwrap()
            .epochs
            .len()
            > 1
    );
    // Written again, it is a current-format file with the same contents.
    let again = Checkpoint::from_bytes(&ck.to_bytes().unwrap(), &path).unwrap();
    assert_eq!(again, ck);
}

#[test]
fn recipe_errors_name_the_key() {
    let p = Path::new("bad.toml");
    let cases = [
        ("lr = 0.05", "lr = -0.1", "train.lr"),
        ("lr = 0.05", "lr = 0.0", "train.lr"),
        ("method = \"pcd\"", "method = \"pcd\"\nk = 0", "train.k"),
        ("n_hidden = 16", "n_hidden = 0", "model.n_hidden"),
        ("batch_size = 10", "batch_size = 0", "train.batch_size"),
        ("lr = 0.05", "lr = 0.05\nmomentum = 1.5", "train.momentum"),
        (
            "lr = 0.05",
            "lr = 0.05\nsparsity_target = 2.0",
            "train.sparsity_target",
        ),
        (
            "method = \"pcd\"",
            "method = \"pt\"\ntemperatures = 1",
            "train.temperatures",
        ),
        (
            "n_hidden = 16",
            "n_hidden = 16\nhidden = \"softmax\"",
            "model.hidden",
        ),
        (
            "n_hidden = 16",
            "n_hidden = 16\nvisible = \"gaussian\"",
            "data.binarize",
        ),
        (
            "lr = 0.05",
            "lr = 0.05\nlearning_rate = 0.1",
            "learning_rate",
        ),
        ("method = \"pcd\"", "method = \"cdk\"", "cdk"),
    ];
    for (from, to, key) in cases {
        let text = GOOD.replace(from, to);
        let e = Recipe::parse(&text, p).unwrap_err().to_string();
        assert!(e.contains(key) && e.contains("bad.toml"), "{to}: {e}");
    }
    assert!(Recipe::parse(GOOD, p).is_ok());
    let e = Recipe::load("/nonexistent/r.toml").unwrap_err().to_string();
    assert!(e.contains("/nonexistent/r.toml"), "{e}");
}

fn small_ckpt() -> Checkpoint {
    let d = RngStream::new(4, 4).next_draw();
    let rbm = RbmHost {
        w: HostMat::from_fn(6, 4, |r, c| d.normal(r * 4 + c)),
        b_v: HostMat::from_fn(1, 6, |_, c| c as f32),
        b_h: HostMat::from_fn(1, 4, |_, c| -(c as f32)),
        visible: UnitKind::Bernoulli,
        hidden: UnitKind::Relu,
        log_var_v: None,
    };
    let mut c = Checkpoint::of_model(&rbm).unwrap();
    c.recipe = GOOD.to_string();
    c.epoch = 7;
    c.rng = RngStream {
        seed: u64::MAX - 3,
        stream: 99,
        offset: 12345,
    };
    c.state.insert(
        "chain_v".into(),
        HostMat::from_fn(3, 6, |r, c| ((r + c) % 2) as f32),
    );
    c.history = "{\"epochs\":[]}".into();
    c
}

#[test]
fn checkpoint_round_trip_and_layout() {
    let c = small_ckpt();
    let p = tmp("round.safetensors");
    c.save(&p).unwrap();
    let back = Checkpoint::load(&p).unwrap();
    assert_eq!(back, c);
    // The standard layout: W [nv, nh], b_v [nv], b_h [nh], all F32.
    let bytes = std::fs::read(&p).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    assert_eq!(st.tensor("W").unwrap().shape(), &[6, 4]);
    assert_eq!(st.tensor("b_v").unwrap().shape(), &[6]);
    assert_eq!(st.tensor("b_h").unwrap().shape(), &[4]);
    assert_eq!(st.tensor("W").unwrap().dtype(), safetensors::Dtype::F32);
    // No temporary files left behind.
    let left: Vec<_> = std::fs::read_dir(p.parent().unwrap())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains(".tmp-"))
        .collect();
    assert!(left.is_empty());
}

/// A raw tensor: name, dtype, shape, bytes.
type Raw<'a> = (&'a str, safetensors::Dtype, Vec<usize>, Vec<u8>);

/// A safetensors file with the given tensors and the metadata of `small_ckpt`.
fn write_raw(p: &Path, tensors: Vec<Raw>, drop_meta: Option<&str>) {
    let c = small_ckpt();
    let bytes = c.to_bytes().unwrap();
    let (_, header) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    let mut meta: HashMap<String, String> = header.metadata().clone().unwrap();
    if let Some(k) = drop_meta {
        meta.remove(k);
    }
    let views: Vec<(&str, safetensors::tensor::TensorView)> = tensors
        .iter()
        .map(|(n, dt, s, b)| {
            (
                *n,
                safetensors::tensor::TensorView::new(*dt, s.clone(), b).unwrap(),
            )
        })
        .collect();
    std::fs::write(p, safetensors::serialize(views, Some(meta)).unwrap()).unwrap();
}

fn f32s(n: usize) -> Vec<u8> {
    vec![0u8; 4 * n]
}

fn ok_bv_for_nan() -> Raw<'static> {
    ("b_v", safetensors::Dtype::F32, vec![6], f32s(6))
}

fn ok_bh_for_nan() -> Raw<'static> {
    ("b_h", safetensors::Dtype::F32, vec![4], f32s(4))
}

#[test]
fn damaged_checkpoints_name_file_and_tensor() {
    use safetensors::Dtype::{F32, F64};
    let p = tmp("bad.safetensors");
    let ok_bh = ("b_h", F32, vec![4], f32s(4));
    let ok_bv = ("b_v", F32, vec![6], f32s(6));
    let ok_w = ("W", F32, vec![6, 4], f32s(24));
    let cases: Vec<(Vec<Raw>, Option<&str>, &str)> = vec![
        (vec![ok_bv.clone(), ok_bh.clone()], None, "'W' is missing"),
        (vec![ok_w.clone(), ok_bh.clone()], None, "'b_v' is missing"),
        (
            vec![
                ("W", F64, vec![6, 4], f32s(48)),
                ok_bv.clone(),
                ok_bh.clone(),
            ],
            None,
            "'W' has dtype",
        ),
        (
            vec![ok_w.clone(), ("b_v", F32, vec![5], f32s(5)), ok_bh.clone()],
            None,
            "'b_v' has shape [5]",
        ),
        (
            vec![
                ok_w.clone(),
                ok_bv.clone(),
                ("b_h", F32, vec![2, 2], f32s(4)),
            ],
            None,
            "'b_h' has shape",
        ),
        (
            vec![("W", F32, vec![24], f32s(24)), ok_bv.clone(), ok_bh.clone()],
            None,
            "'W' has shape [24]",
        ),
        (
            vec![ok_w.clone(), ok_bv.clone(), ok_bh.clone()],
            Some("rng_seed"),
            "'rng_seed' is missing",
        ),
        (
            vec![ok_w, ok_bv, ok_bh],
            Some("format"),
            "'format' is missing",
        ),
    ];
    for (tensors, drop, want) in cases {
        write_raw(&p, tensors, drop);
        let e = AnyModel::load(&p).unwrap_err().to_string();
        assert!(
            e.contains(want) && e.contains("bad.safetensors"),
            "want '{want}': {e}"
        );
    }
    // A non-finite parameter is named with its place.
    let mut w = f32s(24);
    w[4 * 9..4 * 10].copy_from_slice(&f32::NAN.to_le_bytes());
    let nan = vec![("W", F32, vec![6, 4], w), ok_bv_for_nan(), ok_bh_for_nan()];
    write_raw(&p, nan, None);
    let e = AnyModel::load(&p).unwrap_err().to_string();
    assert!(
        e.contains("'W' holds NaN at [2, 1]") && e.contains("bad.safetensors"),
        "{e}"
    );
    std::fs::write(&p, b"not a checkpoint").unwrap();
    let e = Checkpoint::load(&p).unwrap_err().to_string();
    assert!(
        e.contains("bad.safetensors") && e.contains("safetensors"),
        "{e}"
    );
    let e = Checkpoint::load(tmp("missing.safetensors"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("missing.safetensors"), "{e}");
    // A resume-time tensor of the wrong shape is named too.
    let c = small_ckpt();
    let e = c
        .state_tensor(&p, "chain_v", (4, 6))
        .unwrap_err()
        .to_string();
    assert!(e.contains("chain_v") && e.contains("3x6"), "{e}");
    let e = c.state_tensor(&p, "dW", (6, 4)).unwrap_err().to_string();
    assert!(e.contains("'dW' is missing"), "{e}");
}
