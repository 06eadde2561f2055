//! `ebmkit info`: version, backends and the GPU adapter with its limits.

use ebmkit::backend::gpu::Gpu;

pub fn run() -> ebmkit::Result<()> {
    println!("ebmkit {}", env!("CARGO_PKG_VERSION"));
    println!(
        "backends: cpu (rayon, {} threads), gpu (wgpu)",
        rayon::current_num_threads()
    );
    match Gpu::new() {
        Ok(g) => println!("{}", g.info()),
        Err(e) => println!("gpu: none ({e}); the CPU backend will be used"),
    }
    Ok(())
}
