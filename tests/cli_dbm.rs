//! The DBM through the binary, end to end on the shipped digits: a
//! pretraining stack with the DBM roles, the DBM composed from it
//! (`--init`), its evaluation (exact log Z: 12 odd-layer units), samples,
//! a resumed run, and the net it initialises; each step's exit status and
//! the lines a user reads.

use std::path::Path;
use std::process::Command;

fn ebmkit(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_ebmkit"))
        .args(args)
        .env("EBMKIT_BACKEND", "cpu")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("the binary runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

const STACK: &str = r#"
[model]
kind = "stack"
[data]
source = "mnist-small"
binarize = "fixed"
[train]
method = "cd"
k = 1
epochs = 2
batch_size = 100
lr = 0.05
seed = 1
[monitor]
rows = 100
[[layer]]
model = { kind = "rbm", n_hidden = 12, dbm_layer = "first" }
[[layer]]
model = { kind = "rbm", n_hidden = 30, dbm_layer = "last" }
"#;

const DBM: &str = r#"
[model]
kind = "dbm"
hidden = [12, 30]
mf_iters = 5
[data]
source = "mnist-small"
binarize = "fixed"
[train]
method = "pcd"
k = 1
chains = 50
epochs = 2
batch_size = 100
lr = 0.001
momentum = 0.5
seed = 1
[monitor]
rows = 100
"#;

const NET: &str = r#"
[model]
kind = "net"
hidden = [12, 30]
output = "softmax"
classes = 10
[data]
source = "mnist-small"
binarize = "none"
validation = 500
[train]
epochs = 2
batch_size = 100
lr = 0.1
momentum = 0.9
seed = 1
[monitor]
rows = 200
"#;

#[test]
fn a_dbm_from_pretraining_to_a_classifier() {
    let dir = std::env::temp_dir().join(format!("ebmkit-cli-dbm-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = |name: &str, text: &str| {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p.display().to_string()
    };
    let (stack, dbm, net) = (
        file("stack.toml", STACK),
        file("dbm.toml", DBM),
        file("net.toml", NET),
    );
    let out = |name: &str| dir.join(name).display().to_string();

    let (ok, text) = ebmkit(&[
        "train",
        &stack,
        "--out",
        &out("stack"),
        "--quiet",
        "--no-eval",
    ]);
    assert!(ok, "{text}");
    let stack_ck = out("stack/model.safetensors");
    let (ok, text) = ebmkit(&[
        "train",
        &dbm,
        "--init",
        &stack_ck,
        "--out",
        &out("dbm"),
        "--quiet",
    ]);
    assert!(ok, "{text}");
    assert!(text.contains("784-12-30 DBM, composed from"), "{text}");
    // The closing evaluation: 12 odd-layer units, so log Z is exact.
    assert!(
        text.contains("DBM variational lower bound, log Z =") && text.contains("(exact)"),
        "{text}"
    );
    for png in ["filters.png", "samples.png", "curve-recon.png"] {
        assert!(Path::new(&out(&format!("dbm/{png}"))).exists(), "{png}");
    }
    let dbm_ck = out("dbm/model.safetensors");
    let (ok, text) = ebmkit(&["eval", &dbm_ck]);
    assert!(ok && text.contains("mean log p(v) >= test"), "{text}");
    let (ok, text) = ebmkit(&[
        "sample",
        &dbm_ck,
        "--n",
        "4",
        "--steps",
        "10",
        "--out",
        &out("s.png"),
    ]);
    assert!(ok && Path::new(&out("s.png")).exists(), "{text}");
    // Two more epochs from the checkpoint.
    let (ok, text) = ebmkit(&[
        "train",
        &dbm,
        "--resume",
        &dbm_ck,
        "--epochs",
        "4",
        "--out",
        &out("dbm"),
        "--quiet",
        "--no-eval",
    ]);
    assert!(ok && text.contains("epochs 2..4"), "{text}");
    // The net reads the digits with the DBM's posteriors appended.
    let (ok, text) = ebmkit(&[
        "finetune",
        &dbm_ck,
        "--recipe",
        &net,
        "--out",
        &out("net"),
        "--quiet",
    ]);
    assert!(ok, "{text}");
    assert!(text.contains("814-12-30-10 net softmax"), "{text}");
    assert!(text.contains("test: error"), "{text}");
    // A DBM cannot be composed from a stack pretrained without the roles.
    let plain = file("plain.toml", &STACK.replace(", dbm_layer = \"first\"", ""));
    let (ok, text) = ebmkit(&[
        "train",
        &plain,
        "--out",
        &out("plain"),
        "--quiet",
        "--no-eval",
    ]);
    assert!(ok, "{text}");
    let (ok, text) = ebmkit(&[
        "train",
        &dbm,
        "--init",
        &out("plain/model.safetensors"),
        "--out",
        &out("bad"),
    ]);
    assert!(!ok && text.contains("dbm_layer"), "{text}");
    let _ = std::fs::remove_dir_all(&dir);
}
