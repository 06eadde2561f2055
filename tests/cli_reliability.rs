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

use ebmkit::io::checkpoint::Checkpoint;

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
        .env("EBMKIT_DATA", "/work/shared/data")
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
