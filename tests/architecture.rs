//! The layering of the library, checked on its source: a module may use
//! only modules of lower layers (README, "Tour"). A `crate::x` path in code
//! (not in comments) of a file of module `m` is an arrow from `m` to `x`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Bottom to top; modules of one layer do not use each other.
const LAYERS: &[&[&str]] = &[
    &["error"],
    &["host", "rng"],
    &["backend", "data", "viz"],
    &["bench", "autodiff"],
    &["units"],
    &["energy"],
    &["sample", "io"],
    &["models"],
    &["estimate"],
    &["train"],
];

fn layer(m: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&m))
}

/// The module behind a name the crate root re-exports (`crate::Error`, ...).
fn home(name: &str) -> &str {
    match name {
        "Error" | "Result" => "error",
        "HostMat" => "host",
        "RngStream" => "rng",
        "AnyBackend" | "Backend" | "Binary" | "Choice" | "Fused" | "Matrix" | "Op" | "Trans"
        | "Unary" | "with_backend" => "backend",
        other => other,
    }
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The module names that follow `crate::` in the code of `text`.
fn arrows(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for line in text.lines() {
        let code = line.split("//").next().unwrap_or("");
        let mut rest = code;
        while let Some(i) = rest.find("crate::") {
            let after = &rest[i + 7..];
            let name: String = after
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                out.insert(name);
            }
            rest = after;
        }
    }
    out
}

#[test]
fn no_module_uses_a_module_above_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut checked = 0;
    let mut faults = Vec::new();
    for f in &files {
        let rel = f.strip_prefix(&src).unwrap();
        let first = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy();
        let module = first.trim_end_matches(".rs").to_string();
        // The crate root (re-exports, prelude) and the binary sit above all.
        if matches!(module.as_str(), "lib" | "main" | "cli") {
            continue;
        }
        let own = layer(&module)
            .unwrap_or_else(|| panic!("{}: module '{module}' has no layer", rel.display()));
        for target in arrows(&std::fs::read_to_string(f).unwrap()) {
            let target = home(&target).to_string();
            if target == module {
                continue;
            }
            let Some(t) = layer(&target) else {
                faults.push(format!(
                    "{}: uses crate::{target}, which has no layer",
                    rel.display()
                ));
                continue;
            };
            checked += 1;
            if t >= own {
                faults.push(format!(
                    "{}: module {module} (layer {own}) uses crate::{target} (layer {t})",
                    rel.display()
                ));
            }
        }
    }
    assert!(
        checked > 50,
        "only {checked} arrows found: is the scan broken?"
    );
    assert!(
        faults.is_empty(),
        "upward or sideways arrows:\n{}",
        faults.join("\n")
    );
}

#[test]
fn the_scan_sees_an_upward_arrow() {
    let a = arrows("use crate::train::Trainer; // crate::viz in a comment\nlet x = crate::io::recipe::Recipe::new;");
    assert_eq!(
        a.into_iter().collect::<Vec<_>>(),
        vec!["io".to_string(), "train".to_string()]
    );
}
