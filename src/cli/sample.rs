//! `ebmkit sample`: block Gibbs chains of a trained RBM as a PNG grid,
//! from random states or from test rows, optionally one row of snapshots
//! per chain.

use clap::Args;
use ebmkit::backend::Fused;
use ebmkit::data::prepare::cycle;
use ebmkit::data::tile_shape;
use ebmkit::models::rbm::{GibbsRun, Rbm};
use ebmkit::models::AnyModel;
use ebmkit::viz::{save_grid, zoom_for, Norm};
use ebmkit::{Error, HostMat, RngStream};
use std::path::PathBuf;

#[derive(Args)]
pub struct SampleArgs {
    /// A checkpoint written by `train`.
    pub ckpt: PathBuf,
    /// Gibbs sweeps.
    #[arg(long, default_value_t = 1000)]
    pub steps: usize,
    /// Number of chains.
    #[arg(long, default_value_t = 100)]
    pub n: usize,
    /// Start the chains at (binarised) test rows instead of random states.
    #[arg(long)]
    pub from_data: bool,
    /// Data folder when --from-data needs the full MNIST or the photographs.
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Also draw every s-th sweep: one row of the grid per chain.
    #[arg(long)]
    pub chain_every: Option<usize>,
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    #[arg(long)]
    pub out: PathBuf,
}

/// The Philox stream of `ebmkit sample` ("SAMP").
const SAMPLE_STREAM: u32 = 0x5341_4d50;

pub fn run<B: Fused>(be: &B, a: &SampleArgs) -> ebmkit::Result<()> {
    if a.n == 0 {
        return Err(Error::value("--n", "must be at least 1"));
    }
    if a.chain_every == Some(0) {
        return Err(Error::value("--chain-every", "must be at least 1"));
    }
    let (host, ck) = match AnyModel::load(&a.ckpt)? {
        (AnyModel::Rbm(h), ck) => (h, ck),
        (AnyModel::Net(_) | AnyModel::Stack(_), _) => {
            return Err(Error::value(
                "ebmkit sample",
                format!("{} holds a feed-forward net or a stack, which has no sampler (yet: a DBN's arrives with its issue)", a.ckpt.display()),
            ))
        }
        (AnyModel::Autoencoder(_), _) => {
            return Err(Error::value(
                "ebmkit sample",
                format!(
                    "{} holds an auto-encoder: sampling one by the generalized-DAE chain is not built yet",
                    a.ckpt.display()
                ),
            ))
        }
    };
    let rbm = Rbm::from_host(be, &host)?;
    let mut shape = tile_shape(host.n_visible());
    let start = if a.from_data {
        let (d, sh) = super::eval::checkpoint_data(&ck, &a.ckpt, a.data.as_deref(), Some(a.n))?;
        shape = sh;
        Some(cycle(&d.test, a.n, "test data")?)
    } else {
        None
    };
    let mut rng = RngStream::new(a.seed, SAMPLE_STREAM);
    let run = GibbsRun {
        start: start.as_ref(),
        chains: a.n,
        steps: a.steps,
        every: a.chain_every,
    };
    let g = rbm.gibbs(be, &run, &mut rng)?;
    let norm = Norm::for_values(host.visible.is_binary());
    match a.chain_every {
        Some(_) => {
            // One grid row per chain, one column per snapshot.
            let cols = g.snapshots.len();
            let nv = g.last.cols;
            let tiles = HostMat::from_fn(a.n * cols, nv, |t, c| {
                g.snapshots[t % cols].get(t / cols, c)
            });
            save_grid(&a.out, &tiles, shape, cols, norm, zoom_for(shape))?;
        }
        None => save_grid(&a.out, &g.last, shape, 10, norm, zoom_for(shape))?,
    }
    eprintln!("wrote {}", a.out.display());
    Ok(())
}
