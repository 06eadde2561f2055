//! What the GPU test files share: the one adapter of the test binary, and
//! what a GPU test does without one. `cargo test` has to pass on a machine
//! with no adapter at all, so there a GPU test returns early and counts
//! itself; at exit the binary says how many it skipped, in one line.
//! `EBMKIT_REQUIRE_GPU=1` (CI, which installs lavapipe) makes a missing
//! adapter fail every GPU test instead, so no kernel goes untested unseen.

use ebmkit::backend::gpu::Gpu;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Once, OnceLock};

/// Set to 1, a missing GPU adapter fails the GPU tests instead of skipping them.
pub const REQUIRE_GPU_ENV: &str = "EBMKIT_REQUIRE_GPU";

fn required() -> bool {
    match std::env::var(REQUIRE_GPU_ENV) {
        Err(std::env::VarError::NotPresent) => false,
        Ok(v) if matches!(v.trim(), "" | "0" | "false") => false,
        Ok(v) if matches!(v.trim(), "1" | "true") => true,
        Ok(v) => panic!("{REQUIRE_GPU_ENV}={v}: expected 1 (require a GPU adapter) or 0"),
        Err(e) => panic!("{REQUIRE_GPU_ENV}: {e}"),
    }
}

/// The GPU backend, made once per test binary, or why there is none.
fn gpu() -> &'static Result<Gpu, String> {
    static GPU: OnceLock<Result<Gpu, String>> = OnceLock::new();
    GPU.get_or_init(|| match Gpu::new() {
        Ok(g) => {
            eprintln!("{}", g.info());
            Ok(g)
        }
        Err(e) => Err(e.to_string()),
    })
}

static SKIPPED: AtomicUsize = AtomicUsize::new(0);

extern "C" fn skip_notice() {
    let n = SKIPPED.load(Ordering::SeqCst);
    if n > 0 {
        let why = match gpu() {
            Err(e) => e.as_str(),
            Ok(_) => "",
        };
        eprintln!(
            "no GPU adapter: {n} GPU test{} skipped; set {REQUIRE_GPU_ENV}=1 to make this an error\n  ({why})",
            if n == 1 { "" } else { "s" }
        );
    }
}

extern "C" {
    fn atexit(f: extern "C" fn()) -> std::ffi::c_int;
}

/// Counts a skipped GPU test. The harness has no hook after its last test,
/// so the one notice is printed by the C runtime's `atexit`, after libtest's
/// summary; should registering fail, each skip says so itself.
fn count_skip() {
    static REGISTER: Once = Once::new();
    static REGISTERED: AtomicUsize = AtomicUsize::new(0);
    REGISTER.call_once(|| {
        // SAFETY: `skip_notice` is a plain `extern "C" fn()` that touches
        // only statics, which live until the process ends.
        if unsafe { atexit(skip_notice) } == 0 {
            REGISTERED.store(1, Ordering::SeqCst);
        }
    });
    let n = SKIPPED.fetch_add(1, Ordering::SeqCst) + 1;
    if REGISTERED.load(Ordering::SeqCst) == 0 {
        eprintln!(
            "no GPU adapter: GPU test {n} skipped; set {REQUIRE_GPU_ENV}=1 to make this an error"
        );
    }
}

/// The GPU for a GPU test: `None` (counted) when there is no adapter,
/// a panic naming the missing adapter when `EBMKIT_REQUIRE_GPU=1`.
pub fn test_gpu() -> Option<&'static Gpu> {
    match gpu() {
        Ok(g) => Some(g),
        Err(e) if required() => panic!("{e} ({REQUIRE_GPU_ENV}=1: a missing adapter is an error)"),
        Err(_) => {
            count_skip();
            None
        }
    }
}

/// The GPU, or return from the test (counted as skipped) when there is none.
#[allow(unused_macros)]
macro_rules! gpu_or_skip {
    () => {
        match common::test_gpu() {
            Some(g) => g,
            None => return,
        }
    };
}
