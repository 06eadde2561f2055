//! What the benches that run a Python peer in the same run share: finding
//! and running the peer script, reading its JSON, the median.

use std::path::{Path, PathBuf};
use std::process::Command;

pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// The peer script `name` under `benches/`: from the working folder
/// first (a bench binary copied to another machine runs from a checkout
/// there, experiments/gpu_speed.sh), else from this crate.
fn script(name: &str) -> Option<PathBuf> {
    [Path::new("benches").join(name)]
        .into_iter()
        .chain([Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("benches")
            .join(name)])
        .find(|p| p.exists())
}

/// Runs `python3 benches/<name> <args>` and returns the numbers under
/// `keys` in its JSON and its `peer` description, or None with the reason
/// printed (also when `EBMKIT_BENCH_PEER=0`).
pub fn run_peer(name: &str, args: &[&str], keys: &[&str]) -> Option<(Vec<f64>, String)> {
    if std::env::var("EBMKIT_BENCH_PEER").as_deref() == Ok("0") {
        return None;
    }
    let out = Command::new("python3")
        .arg(script(name)?)
        .args(args)
        .output()
        .ok()?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        println!("peer {name} failed: {}", err.lines().last().unwrap_or(""));
        return None;
    }
    let s = String::from_utf8_lossy(&out.stdout).to_string();
    let num = |key: &str| -> Option<f64> {
        let i = s.find(&format!("\"{key}\""))? + key.len() + 2;
        let rest = s[i..].trim_start_matches([':', ' ']);
        let end = rest.find([',', '}']).unwrap_or(rest.len());
        rest[..end].trim().parse().ok()
    };
    let peer = s
        .split("\"peer\": \"")
        .nth(1)?
        .split('"')
        .next()?
        .to_string();
    let values = keys.iter().map(|k| num(k)).collect::<Option<Vec<_>>>()?;
    Some((values, peer))
}

/// The training images of the MNIST folder, as the peers read them.
pub fn mnist_images(dir: &Path) -> Option<PathBuf> {
    [
        "mnist/train-images-idx3-ubyte.gz",
        "train-images-idx3-ubyte.gz",
    ]
    .iter()
    .map(|p| dir.join(p))
    .find(|p| p.exists())
}
