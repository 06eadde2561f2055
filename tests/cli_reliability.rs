//! What the `ebmkit` binary does when something around a run goes wrong:
//! a second run into a folder in use, a finished checkpoint resumed, NaN or
//! out-of-range values in a checkpoint's tensors or training state, a
//! picture or checkpoint that cannot be written, unit types that disagree
//! with the recipe, leftovers of a killed run, and flags out of range. Every
//! model is a tiny RBM on the shipped MNIST subset, trained on the CPU.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use ebmkit::autodiff::Activation;
use ebmkit::io::checkpoint::Checkpoint;
use ebmkit::models::autoencoder::Arch;
use ebmkit::models::{AeHost, AnyModel, DbmHost, NetHost, RbmHost, StackHost};
use ebmkit::units::UnitKind;
use ebmkit::HostMat;

/// A fresh scratch folder for one test.
fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("ebmkit-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Runs the binary on the CPU backend.
fn ebmkit<S: AsRef<OsStr>>(args: &[S]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_ebmkit"))
        .arg("--backend")
        .arg("cpu")
        .args(args)
        .env(
            "EBMKIT_DATA",
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data"),
        )
        .output()
        .expect("the ebmkit binary runs");
    eprintln!(
        "ebmkit {:?}: {}\n{}{}",
        args.iter()
            .map(|a| a.as_ref().to_owned())
            .collect::<Vec<_>>(),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// An error exit whose message holds every one of `words`.
fn assert_fails_naming(o: &Output, words: &[&str]) {
    let e = stderr(o);
    assert!(
        !o.status.success(),
        "expected a failure, got {}: {e}",
        o.status
    );
    for w in words {
        assert!(e.contains(w), "the error does not name '{w}': {e}");
    }
}

/// A tiny RBM recipe: `n_hidden` units of `hidden` over `visible` ones.
fn recipe(dir: &Path, name: &str, visible: &str, hidden: &str, epochs: usize) -> PathBuf {
    let binarize = if visible == "gaussian" {
        "none"
    } else {
        "stochastic"
    };
    let text = format!(
        "[model]\nkind = \"rbm\"\nvisible = \"{visible}\"\nhidden = \"{hidden}\"\nn_hidden = 8\n\
         init_std = 0.01\n\n[data]\nsource = \"mnist-small\"\nbinarize = \"{binarize}\"\n\n\
         [train]\nmethod = \"pcd\"\nk = 1\nchains = 10\nepochs = {epochs}\nbatch_size = 100\n\
         lr = 0.01\nmomentum = 0.5\nseed = 1\n\n[monitor]\nrows = 100\n"
    );
    let p = dir.join(format!("{name}.toml"));
    std::fs::write(&p, text).unwrap();
    p
}

/// One epoch of the binary tiny RBM, trained once for the tests that need
/// a checkpoint: its folder (recipe `rbm.toml`, `out/model.safetensors`).
fn trained() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let d = scratch("trained");
        let r = recipe(&d, "rbm", "bernoulli", "bernoulli", 1);
        let o = ebmkit(&[
            "train".as_ref(),
            r.as_os_str(),
            "--out".as_ref(),
            d.join("out").as_os_str(),
            "--quiet".as_ref(),
            "--no-eval".as_ref(),
        ]);
        assert!(
            o.status.success(),
            "training the base model: {}",
            stderr(&o)
        );
        d
    })
}

fn trained_ckpt() -> PathBuf {
    trained().join("out/model.safetensors")
}

fn train_args<'a>(r: &'a Path, out: &'a Path) -> Vec<&'a OsStr> {
    vec![
        "train".as_ref(),
        r.as_os_str(),
        "--out".as_ref(),
        out.as_os_str(),
        "--quiet".as_ref(),
        "--no-eval".as_ref(),
    ]
}

#[test]
fn a_second_run_into_a_folder_in_use_fails_naming_the_holder() {
    let d = scratch("lock");
    let r = recipe(&d, "rbm", "bernoulli", "bernoulli", 1);
    let out = d.join("out");
    std::fs::create_dir_all(&out).unwrap();
    // Another run holds the folder (as a running `ebmkit train` would).
    let lock_path = out.join(ebmkit::io::outdir::LOCK_FILE);
    let mut held = std::fs::File::create(&lock_path).unwrap();
    held.try_lock().unwrap();
    std::io::Write::write_all(&mut held, b"424242\n").unwrap();
    let o = ebmkit(&train_args(&r, &out));
    assert_fails_naming(&o, &["in use", "pid 424242", out.to_str().unwrap()]);
    assert!(!out.join("model.safetensors").exists());
    // Released, the folder is the next run's, which writes its own pid.
    drop(held);
    let o = ebmkit(&train_args(&r, &out));
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(out.join("model.safetensors").exists());
    let pid = std::fs::read_to_string(&lock_path).unwrap();
    assert!(pid.trim().parse::<u32>().is_ok(), "lock file holds '{pid}'");
}

#[test]
fn resuming_a_finished_checkpoint_writes_it_and_evaluates_it() {
    let d = scratch("finished");
    let r = trained().join("rbm.toml");
    let out = d.join("new");
    let o = ebmkit(&[
        "train".as_ref(),
        r.as_os_str(),
        "--resume".as_ref(),
        trained_ckpt().as_os_str(),
        "--out".as_ref(),
        out.as_os_str(),
        "--quiet".as_ref(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let ck = Checkpoint::load(out.join("model.safetensors")).unwrap();
    assert_eq!(ck.epoch, 1);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("test"), "no closing evaluation: {stdout}");
}

/// The trained checkpoint with `edit` applied, saved as `name` in `dir`.
fn edited(dir: &Path, name: &str, edit: impl FnOnce(&mut Checkpoint)) -> PathBuf {
    let mut ck = Checkpoint::load(trained_ckpt()).unwrap();
    edit(&mut ck);
    let p = dir.join(name);
    std::fs::write(&p, ck.to_bytes().unwrap()).unwrap();
    p
}

#[test]
fn nan_or_inf_in_a_parameter_is_refused_by_eval_sample_and_viz() {
    let d = scratch("nan-params");
    for (tensor, v, at) in [
        ("W", f32::NAN, "[0, 3]"),
        ("b_v", f32::INFINITY, "[3]"),
        ("b_h", f32::NEG_INFINITY, "[3]"),
    ] {
        let p = edited(&d, &format!("{tensor}.safetensors"), |ck| {
            ck.model.tensors.get_mut(tensor).unwrap().mat.data[3] = v;
        });
        let file = p.to_str().unwrap();
        let named = [file, &format!("tensor '{tensor}'"), &v.to_string(), at];
        assert_fails_naming(&ebmkit(&["eval".as_ref(), p.as_os_str()]), &named);
        let png = d.join("x.png");
        let png = png.to_str().unwrap();
        let sample = ["sample", file, "--n", "10", "--steps", "1", "--out", png];
        assert_fails_naming(&ebmkit(&sample), &named);
        assert_fails_naming(&ebmkit(&["viz", "filters", file, "--out", png]), &named);
        assert!(!Path::new(png).exists());
    }
}

#[test]
fn nan_in_the_training_state_is_refused_on_resume() {
    let d = scratch("nan-state");
    let r = trained().join("rbm.toml");
    for state in ["chain_v", "W_prev", "db_h"] {
        let p = edited(&d, &format!("{state}.safetensors"), |ck| {
            ck.state.get_mut(state).unwrap().data[0] = f32::NAN;
        });
        let out = d.join(format!("out-{state}"));
        let mut args = train_args(&r, &out);
        args.extend([OsStr::new("--resume"), p.as_os_str()]);
        args.extend([OsStr::new("--epochs"), OsStr::new("2")]);
        let o = ebmkit(&args);
        let want = format!("tensor 'state.{state}' holds NaN at [0, 0]");
        assert_fails_naming(&o, &[p.to_str().unwrap(), &want]);
        assert!(!stderr(&o).contains("diverged"));
    }
    // The chains start reverse AIS in eval too.
    let p = d.join("chain_v.safetensors");
    let o = ebmkit(&["eval".as_ref(), p.as_os_str()]);
    assert_fails_naming(&o, &["tensor 'state.chain_v' holds NaN"]);
}

/// Small models of every kind, each in a checkpoint of its own.
fn every_kind() -> Vec<Checkpoint> {
    let m = |r, c, s: f32| HostMat::from_fn(r, c, |i, j| s * (i as f32 - j as f32));
    let rbm = RbmHost::binary(m(4, 3, 0.1), m(1, 4, 0.1), m(1, 3, 0.1));
    let ae = |n_visible, n_hidden| {
        let arch = Arch {
            n_visible,
            n_hidden,
            encoder: Activation::Sigmoid,
            decoder: Activation::Sigmoid,
            tied: false,
        };
        let params = arch
            .params()
            .iter()
            .map(|(_, (r, c))| m(*r, *c, 0.1))
            .collect();
        AeHost { arch, params }
    };
    let net = AnyModel::Rbm(rbm.clone()).as_net().unwrap();
    let stack = StackHost {
        layers: vec![AnyModel::Rbm(rbm.clone()), AnyModel::Autoencoder(ae(3, 2))],
    };
    let dbm = DbmHost {
        w: vec![m(4, 3, 0.1), m(3, 2, 0.1)],
        b: vec![m(1, 4, 0.1), m(1, 3, 0.1), m(1, 2, 0.1)],
    };
    vec![
        Checkpoint::of_model(&rbm).unwrap(),
        Checkpoint::of_model(&ae(4, 3)).unwrap(),
        Checkpoint::of_model::<NetHost>(&net).unwrap(),
        Checkpoint::of_model(&stack).unwrap(),
        Checkpoint::of_model(&dbm).unwrap(),
    ]
}

#[test]
fn every_tensor_of_every_kind_must_be_finite_on_load() {
    let origin = Path::new("poisoned.safetensors");
    for ck in every_kind() {
        let bytes = ck.to_bytes().unwrap();
        let back = Checkpoint::from_bytes(&bytes, origin).unwrap();
        AnyModel::from_checkpoint(&back, origin).unwrap();
        for name in ck.model.tensors.keys() {
            for v in [f32::NAN, f32::INFINITY] {
                let mut bad = ck.clone();
                let t = bad.model.tensors.get_mut(name).unwrap();
                let last = t.mat.data.len() - 1;
                t.mat.data[last] = v;
                let bytes = bad.to_bytes().unwrap();
                let back = Checkpoint::from_bytes(&bytes, origin).unwrap();
                let e = AnyModel::from_checkpoint(&back, origin)
                    .expect_err(&format!("{} with {v} in '{name}' loaded", ck.kind))
                    .to_string();
                // A stack's layer names its tensors without the layer prefix.
                let short = name.split_once('.').map_or(name.as_str(), |(_, s)| s);
                let short = if ck.kind == "stack" { short } else { name };
                for w in [
                    "poisoned.safetensors",
                    &format!("'{short}'"),
                    &v.to_string(),
                ] {
                    assert!(e.contains(w), "{}: '{e}' does not name {w}", ck.kind);
                }
            }
        }
    }
}

#[test]
fn log_variances_out_of_range_are_refused_on_load() {
    let origin = Path::new("variances.safetensors");
    let mut rbm = RbmHost::binary(
        HostMat::zeros(3, 2),
        HostMat::zeros(1, 3),
        HostMat::zeros(1, 2),
    );
    rbm.visible = UnitKind::Gaussian;
    rbm.log_var_v = Some(HostMat::zeros(1, 3));
    let ck = Checkpoint::of_model(&rbm).unwrap();
    for v in [-100.0f32, 100.0, f32::NAN] {
        let mut bad = ck.clone();
        bad.model.tensors.get_mut("log_var_v").unwrap().mat.data[1] = v;
        let back = Checkpoint::from_bytes(&bad.to_bytes().unwrap(), origin).unwrap();
        let e = AnyModel::from_checkpoint(&back, origin)
            .expect_err(&format!("log_var_v = {v} loaded"))
            .to_string();
        for w in [
            "variances.safetensors",
            "'log_var_v'",
            &v.to_string(),
            "[1]",
        ] {
            assert!(e.contains(w), "'{e}' does not name {w}");
        }
    }
    // Within range: loads.
    let mut ok = ck.clone();
    ok.model.tensors.get_mut("log_var_v").unwrap().mat.data[1] = -60.0;
    let back = Checkpoint::from_bytes(&ok.to_bytes().unwrap(), origin).unwrap();
    AnyModel::from_checkpoint(&back, origin).unwrap();
}

#[test]
fn pictures_that_cannot_be_written_are_errors() {
    if !Path::new("/dev/full").exists() {
        return;
    }
    let ck = trained_ckpt();
    let ck = ck.to_str().unwrap();
    let sample = [
        "sample",
        ck,
        "--n",
        "10",
        "--steps",
        "1",
        "--out",
        "/dev/full",
    ];
    assert_fails_naming(&ebmkit(&sample), &["/dev/full"]);
    let viz = ["viz", "filters", ck, "--n", "1", "--out", "/dev/full"];
    assert_fails_naming(&ebmkit(&viz), &["/dev/full"]);
}

#[test]
fn a_checkpoint_that_cannot_be_written_is_the_error_reported() {
    let d = scratch("ckpt-unwritable");
    let r = recipe(&d, "rbm", "bernoulli", "bernoulli", 1);
    let out = d.join("out");
    // Neither the checkpoint nor a curve can be written where a folder
    // stands, as in a folder that turned read-only.
    std::fs::create_dir_all(out.join("model.safetensors")).unwrap();
    std::fs::create_dir_all(out.join("curve-recon_error.png")).unwrap();
    let o = ebmkit(&train_args(&r, &out));
    assert_fails_naming(&o, &["model.safetensors"]);
    assert!(!stderr(&o).contains("curve-"), "{}", stderr(&o));
}

#[test]
fn resume_refuses_a_checkpoint_of_other_unit_types() {
    let d = scratch("units");
    let bernoulli = trained().join("rbm.toml");
    for (visible, hidden, named) in [
        ("gaussian", "bernoulli", "gaussian"),
        ("bernoulli", "relu", "relu"),
        ("bernoulli", "softmax:2", "softmax"),
    ] {
        let r = recipe(&d, "other", visible, hidden, 1);
        let out = d.join(format!("out-{visible}-{}", hidden.replace(':', "")));
        let o = ebmkit(&train_args(&r, &out));
        assert!(o.status.success(), "{}", stderr(&o));
        let ck = out.join("model.safetensors");
        let resumed = d.join("resumed");
        let mut args = train_args(&bernoulli, &resumed);
        args.extend([OsStr::new("--resume"), ck.as_os_str()]);
        args.extend([OsStr::new("--epochs"), OsStr::new("2")]);
        assert_fails_naming(&ebmkit(&args), &[ck.to_str().unwrap(), named, "bernoulli"]);
    }
}

#[test]
fn a_run_removes_the_temporaries_of_dead_writers_only() {
    let d = scratch("stale");
    let r = recipe(&d, "rbm", "bernoulli", "bernoulli", 1);
    let out = d.join("out");
    std::fs::create_dir_all(out.join("layers")).unwrap();
    // 4194304 is the largest pid_max Linux allows: no process has it.
    let dead = out.join(".model.safetensors.tmp-4194304");
    let dead_layer = out.join("layers/.layer-0.safetensors.tmp-4194304");
    let live = out.join(format!(".model.safetensors.tmp-{}", std::process::id()));
    for p in [&dead, &dead_layer, &live] {
        std::fs::write(p, b"partial").unwrap();
    }
    let o = ebmkit(&train_args(&r, &out));
    assert!(o.status.success(), "{}", stderr(&o));
    if Path::new("/proc/self").exists() {
        assert!(!dead.exists() && !dead_layer.exists());
    }
    assert!(live.exists(), "a live writer's temporary was removed");
}

#[test]
fn out_naming_a_file_says_not_a_directory() {
    let d = scratch("out-file");
    let r = recipe(&d, "rbm", "bernoulli", "bernoulli", 1);
    let file = d.join("a-file");
    std::fs::write(&file, b"x").unwrap();
    let o = ebmkit(&train_args(&r, &file));
    assert_fails_naming(&o, &[file.to_str().unwrap(), "not a directory"]);
}

#[test]
fn viz_filters_of_none_is_an_error() {
    let d = scratch("viz-n0");
    let ck = trained_ckpt();
    let png = d.join("f.png");
    let o = ebmkit(&[
        "viz".as_ref(),
        "filters".as_ref(),
        ck.as_os_str(),
        "--n".as_ref(),
        "0".as_ref(),
        "--out".as_ref(),
        png.as_os_str(),
    ]);
    assert_fails_naming(&o, &["--n", "at least 1"]);
    assert!(!png.exists());
}

/// Mesa's "XDG_RUNTIME_DIR is invalid or not set" line, printed by its
/// window-system code on every adapter probe of a headless machine, does
/// not reach the user.
#[test]
fn the_gpu_probe_prints_no_mesa_runtime_dir_noise() {
    let out = Command::new(env!("CARGO_BIN_EXE_ebmkit"))
        .arg("info")
        .env_remove("XDG_RUNTIME_DIR")
        .output()
        .expect("the binary runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(!err.contains("XDG_RUNTIME_DIR"), "{err}");
}
