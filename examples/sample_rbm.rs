//! Draw digits from an RBM by block Gibbs sampling and save them as a PNG
//! grid: a checkpoint if one is given (e.g. from the `train_rbm` example),
//! else a model trained here for 15 epochs of PCD.
//!
//! `cargo run --release --example sample_rbm [MODEL.safetensors] [OUT.png]`

use ebmkit::prelude::*;
use ebmkit::viz::{save_grid, Norm};

fn main() -> ebmkit::Result<()> {
    let mut args = std::env::args().skip(1);
    let ckpt = args.next();
    let out = args
        .next()
        .unwrap_or_else(|| "out/examples/samples.png".into());
    let be = Cpu::new();

    let host = match ckpt {
        Some(p) => Checkpoint::load(&p)?.model::<RbmHost>(p.as_ref())?,
        None => {
            let mnist = Mnist::load_embedded()?;
            let recipe = Recipe::new(RbmSpec::new(200))
                .method(Method::Pcd)
                .epochs(15)
                .lr(0.05)
                .momentum(0.5);
            let mut t = RbmTrainer::new(&be, recipe, &mnist.train_images, None)?;
            t.fit(&be, None, &mut |_, _| {}, &mut |_, _| {})?;
            t.objective.rbm.to_host(&be)?
        }
    };
    let rbm = Rbm::from_host(&be, &host)?;

    // 20 chains from random bits, a snapshot of the visible means every 100
    // sweeps: one row of the picture per chain.
    let run = GibbsRun {
        start: None,
        chains: 20,
        steps: 500,
        every: Some(100),
    };
    let g = rbm.gibbs(&be, &run, &mut RngStream::new(7, 0))?;
    let cols = g.snapshots.len();
    let tiles = HostMat::from_fn(20 * cols, 784, |t, c| {
        g.snapshots[t % cols].get(t / cols, c)
    });

    if let Some(dir) = std::path::Path::new(&out).parent() {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    }
    save_grid(out.as_ref(), &tiles, (28, 28), cols, Norm::Unit, 2)?;
    println!("wrote {out}: {cols} snapshots of 20 chains");
    Ok(())
}
