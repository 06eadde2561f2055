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

#[test]
fn shipped_recipes_parse_and_validate() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("models");
    let mut n = 0;
    for name in [
        "rbm-mnist-small",
        "rbm500-cd1",
        "rbm500-cd3",
        "rbm500-cd25",
        "rbm500-pcd",
    ] {
        let r = Recipe::load(dir.join(format!("{name}.toml"))).unwrap();
        assert_eq!(r.rbm().n_hidden, 500, "{name}");
        assert_eq!(r.train.batch_size, 100, "{name}");
        n += 1;
    }
    assert_eq!(n, 5);
    let cd25 = Recipe::load(dir.join("rbm500-cd25.toml")).unwrap();
    assert_eq!(cd25.train.k, 25);
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
