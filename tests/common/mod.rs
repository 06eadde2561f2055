//! What the GPU test files share: the one adapter of the test binary.

use ebmkit::backend::gpu::Gpu;
use std::sync::OnceLock;

/// The GPU backend, made once per test binary. Without an adapter the GPU
/// tests fail, unless `EBMKIT_SKIP_GPU=1` (then they return early).
pub fn gpu() -> Option<&'static Gpu> {
    static GPU: OnceLock<Option<Gpu>> = OnceLock::new();
    GPU.get_or_init(|| match Gpu::new() {
        Ok(g) => {
            eprintln!("{}", g.info());
            Some(g)
        }
        Err(e) if std::env::var("EBMKIT_SKIP_GPU").as_deref() == Ok("1") => {
            eprintln!("EBMKIT_SKIP_GPU=1: skipping GPU tests ({e})");
            None
        }
        Err(e) => panic!("{e}; set EBMKIT_SKIP_GPU=1 to skip the GPU tests"),
    })
    .as_ref()
}

/// The GPU, or return from the test when GPU tests are skipped.
#[allow(unused_macros)]
macro_rules! gpu_or_skip {
    () => {
        match common::gpu() {
            Some(g) => g,
            None => return,
        }
    };
}
