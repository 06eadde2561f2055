//! Sparse coding and PSD through the binary, on patches of the shared
//! photographs: training with its monitors and pictures, an exact resume,
//! `ebmkit eval` and `ebmkit encode`, and recipes refused by name.

use std::path::{Path, PathBuf};
use std::process::Command;

use ebmkit::data::npy::read_npy;
use ebmkit::io::checkpoint::Checkpoint;

fn ebmkit(args: &[&str]) -> (bool, String) {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data");
    let out = Command::new(env!("CARGO_BIN_EXE_ebmkit"))
        .args(args)
        .env("EBMKIT_BACKEND", "cpu")
        .env("EBMKIT_DATA", data)
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

fn recipe(extra_model: &str, epochs: usize) -> String {
    format!(
        r#"
[model]
kind = "sparse"
atoms = 24
lambda = 0.1
iters = 30
{extra_model}
[data]
source = "patches"
patch_size = 6
patches = 1000
test_patches = 200
whiten = "zca-relative"
whiten_epsilon = 0.001
[train]
epochs = {epochs}
batch_size = 100
optimizer = "adam"
lr = 0.001
seed = 3
[monitor]
rows = 200
checkpoint_every = 1
"#
    )
}

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("ebmkit-cli-sparse-{}-{name}", std::process::id()));
    std::fs::remove_dir_all(&d).ok();
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn tensors(p: &Path) -> Vec<(String, Vec<f32>)> {
    let ck = Checkpoint::load(p).unwrap();
    let mut v: Vec<_> = ck
        .model
        .tensors
        .iter()
        .map(|(k, t)| (k.clone(), t.mat.data.clone()))
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

#[test]
fn psd_trains_resumes_exactly_evaluates_and_encodes() {
    let d = dir("psd");
    let r2 = d.join("psd2.toml");
    std::fs::write(&r2, recipe("encoder = \"psd\"", 2)).unwrap();
    let r1 = d.join("psd1.toml");
    std::fs::write(&r1, recipe("encoder = \"psd\"", 1)).unwrap();
    let (a, b) = (d.join("a"), d.join("b"));
    let (ok, text) = ebmkit(&[
        "train",
        r2.to_str().unwrap(),
        "--out",
        a.to_str().unwrap(),
        "--quiet",
    ]);
    assert!(ok, "{text}");
    assert!(
        text.contains("PSD encoder") && text.contains("encoder energy"),
        "{text}"
    );
    assert!(text.contains("test: energy of the optimal codes"), "{text}");
    for f in [
        "dictionary.png",
        "filters.png",
        "curve-energy.png",
        "curves.csv",
    ] {
        assert!(a.join(f).exists(), "{f} missing");
    }
    // One epoch, then resumed to two: the same dictionary and encoder.
    let (ok, text) = ebmkit(&[
        "train",
        r1.to_str().unwrap(),
        "--out",
        b.to_str().unwrap(),
        "--quiet",
        "--no-eval",
    ]);
    assert!(ok, "{text}");
    let bm = b.join("model.safetensors");
    let (ok, text) = ebmkit(&[
        "train",
        r1.to_str().unwrap(),
        "--out",
        b.to_str().unwrap(),
        "--quiet",
        "--no-eval",
        "--resume",
        bm.to_str().unwrap(),
        "--epochs",
        "2",
    ]);
    assert!(ok, "{text}");
    let (ta, tb) = (tensors(&a.join("model.safetensors")), tensors(&bm));
    assert_eq!(ta.len(), 4);
    assert_eq!(ta, tb, "a resumed run differs from an uninterrupted one");

    // Codes: optimal ones and the encoder's, one row per test patch.
    let model = a.join("model.safetensors");
    let codes = d.join("codes.npy");
    let (ok, text) = ebmkit(&[
        "encode",
        model.to_str().unwrap(),
        "--out",
        codes.to_str().unwrap(),
    ]);
    assert!(ok, "{text}");
    let z = read_npy(&codes).unwrap();
    assert_eq!(z.shape(), (200, 24));
    let nz = z.data.iter().filter(|&&v| v != 0.0).count();
    assert!(
        nz > 0 && nz < z.data.len() / 2,
        "{nz} non-zero of {}",
        z.data.len()
    );
    let (ok, text) = ebmkit(&[
        "encode",
        model.to_str().unwrap(),
        "--encoder",
        "--out",
        codes.to_str().unwrap(),
    ]);
    assert!(ok, "{text}");
    assert_eq!(read_npy(&codes).unwrap().shape(), (200, 24));
    let (ok, text) = ebmkit(&["eval", model.to_str().unwrap()]);
    assert!(ok && text.contains("PSD encoder's codes alone"), "{text}");
    std::fs::remove_dir_all(&d).ok();
}

#[test]
fn bad_sparse_recipes_and_requests_are_refused_by_name() {
    let d = dir("bad");
    for (model, key) in [
        ("lambda = 0.0", "model.lambda"),
        ("update = \"newton\"", "model.update"),
        ("encoder = \"lista\"", "model.encoder"),
        ("algorithm = \"cd\"", "model.algorithm"),
    ] {
        let line = if key == "model.lambda" {
            model.to_string()
        } else {
            format!("lambda = 0.1\n{model}")
        };
        let text = recipe("", 1).replace("lambda = 0.1", &line);
        let p = d.join("bad.toml");
        std::fs::write(&p, text).unwrap();
        let (ok, out) = ebmkit(&[
            "train",
            p.to_str().unwrap(),
            "--out",
            d.join("o").to_str().unwrap(),
        ]);
        assert!(!ok && out.contains(key), "{model}: {out}");
        assert!(!out.contains("panicked"), "{out}");
    }
    // A plain dictionary has no encoder to ask for.
    let p = d.join("sc.toml");
    std::fs::write(&p, recipe("", 1)).unwrap();
    let o = d.join("sc");
    let (ok, out) = ebmkit(&[
        "train",
        p.to_str().unwrap(),
        "--out",
        o.to_str().unwrap(),
        "--quiet",
        "--no-eval",
    ]);
    assert!(ok, "{out}");
    let m = o.join("model.safetensors");
    let (ok, out) = ebmkit(&[
        "encode",
        m.to_str().unwrap(),
        "--encoder",
        "--out",
        d.join("z.npy").to_str().unwrap(),
    ]);
    assert!(!ok && out.contains("no PSD encoder"), "{out}");
    let (ok, out) = ebmkit(&[
        "encode",
        m.to_str().unwrap(),
        "--split",
        "valid",
        "--out",
        d.join("z.npy").to_str().unwrap(),
    ]);
    assert!(!ok && out.contains("--split"), "{out}");
    std::fs::remove_dir_all(&d).ok();
}

#[test]
fn lista_trains_on_a_learned_dictionary_and_improves_with_epochs() {
    let d = dir("lista");
    let sc = d.join("sc.toml");
    std::fs::write(&sc, recipe("", 2)).unwrap();
    let dict_out = d.join("dict");
    let (ok, text) = ebmkit(&[
        "train",
        sc.to_str().unwrap(),
        "--out",
        dict_out.to_str().unwrap(),
        "--quiet",
        "--no-eval",
    ]);
    assert!(ok, "{text}");
    let dict = dict_out.join("model.safetensors");
    let lista = |steps: usize, epochs: usize| {
        format!(
            r#"
[model]
kind = "lista"
dictionary = "{}"
steps = {steps}
[data]
source = "patches"
patch_size = 6
patches = 1000
test_patches = 200
whiten = "zca-relative"
whiten_epsilon = 0.001
[train]
epochs = {epochs}
batch_size = 100
optimizer = "adam"
lr = 0.001
seed = 3
[monitor]
rows = 200
"#,
            dict.display()
        )
    };
    let r = d.join("lista.toml");
    std::fs::write(&r, lista(3, 1)).unwrap();
    // One epoch, then six: more training must lower the test code error.
    let start = d.join("start");
    let (ok, text) = ebmkit(&[
        "train",
        r.to_str().unwrap(),
        "--out",
        start.to_str().unwrap(),
        "--quiet",
    ]);
    assert!(ok, "{text}");
    let error_of = |text: &str| -> f64 {
        let line = text
            .lines()
            .find(|l| l.starts_with("test: LISTA"))
            .unwrap_or_else(|| panic!("no test line: {text}"));
        let w: Vec<&str> = line.split_whitespace().collect();
        let i = w.iter().position(|&x| x == "error").unwrap();
        w[i + 1].trim_end_matches(',').parse().unwrap()
    };
    let e1 = error_of(&text);
    std::fs::write(&r, lista(3, 6)).unwrap();
    let longer = d.join("longer");
    let (ok, text) = ebmkit(&[
        "train",
        r.to_str().unwrap(),
        "--out",
        longer.to_str().unwrap(),
        "--quiet",
    ]);
    assert!(ok, "{text}");
    assert!(text.contains("code error"), "{text}");
    let e6 = error_of(&text);
    assert!(
        e6 < e1 && e6 < 1.0,
        "LISTA's test code error went {e1} → {e6}"
    );
    let codes = d.join("z.npy");
    let m = longer.join("model.safetensors");
    let (ok, text) = ebmkit(&[
        "encode",
        m.to_str().unwrap(),
        "--out",
        codes.to_str().unwrap(),
    ]);
    assert!(ok, "{text}");
    assert_eq!(read_npy(&codes).unwrap().shape(), (200, 24));
    // T = 0, and a dictionary that is not one.
    std::fs::write(&r, lista(0, 1)).unwrap();
    let (ok, text) = ebmkit(&[
        "train",
        r.to_str().unwrap(),
        "--out",
        d.join("bad").to_str().unwrap(),
    ]);
    assert!(
        !ok && text.contains("model.steps") && text.contains("T >= 1"),
        "{text}"
    );
    std::fs::write(
        &r,
        lista(3, 1).replace(&dict.display().to_string(), &codes.display().to_string()),
    )
    .unwrap();
    let (ok, text) = ebmkit(&[
        "train",
        r.to_str().unwrap(),
        "--out",
        d.join("bad2").to_str().unwrap(),
    ]);
    assert!(!ok && !text.contains("panicked"), "{text}");
    std::fs::remove_dir_all(&d).ok();
}

#[test]
fn psd_layers_stack_and_hand_their_features_up() {
    let d = dir("stack");
    let text = recipe("", 2);
    let head = &text[text.find("[data]").unwrap()..];
    let stack = format!(
        "[model]\nkind = \"stack\"\n{head}\n[[layer]]\nmodel = {{ kind = \"sparse\", atoms = 24, lambda = 0.1, iters = 30, encoder = \"psd\" }}\n\
         [[layer]]\nmodel = {{ kind = \"sparse\", atoms = 16, lambda = 0.05, iters = 30, encoder = \"psd\" }}\n"
    );
    let p = d.join("stack.toml");
    std::fs::write(&p, &stack).unwrap();
    let o = d.join("o");
    let (ok, out) = ebmkit(&[
        "train",
        p.to_str().unwrap(),
        "--out",
        o.to_str().unwrap(),
        "--quiet",
    ]);
    assert!(ok, "{out}");
    assert!(
        out.contains("layer 1 of 2: sparse (16 hidden units)"),
        "{out}"
    );
    let z = d.join("z.npy");
    let m = o.join("model.safetensors");
    let (ok, out) = ebmkit(&["encode", m.to_str().unwrap(), "--out", z.to_str().unwrap()]);
    assert!(ok, "{out}");
    let f = read_npy(&z).unwrap();
    assert_eq!(f.shape(), (200, 16));
    assert!(f.data.iter().all(|v| v.abs() <= 1.0), "tanh features");
    // A plain dictionary has no one-pass features to hand up.
    std::fs::write(&p, stack.replacen(", encoder = \"psd\" }", " }", 1)).unwrap();
    let (ok, out) = ebmkit(&[
        "train",
        p.to_str().unwrap(),
        "--out",
        d.join("o2").to_str().unwrap(),
    ]);
    assert!(!ok && out.contains("without an encoder"), "{out}");
    std::fs::remove_dir_all(&d).ok();
}
