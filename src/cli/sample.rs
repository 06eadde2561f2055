//! `ebmkit sample`: chains of a trained model as a PNG grid (block Gibbs
//! for an RBM, the generalized-DAE chain for a denoising auto-encoder,
//! Gibbs in the top RBM and a top-down pass for a stack of RBMs: a DBN),
//! from random states or from test rows, optionally one row of snapshots
//! per chain.

use clap::Args;
use ebmkit::autodiff::Activation;
use ebmkit::backend::Fused;
use ebmkit::data::prepare::cycle;
use ebmkit::data::tile_shape;
use ebmkit::io::checkpoint::Checkpoint;
use ebmkit::io::recipe::Recipe;
use ebmkit::models::autoencoder::DaeChain;
use ebmkit::models::dbn::Dbn;
use ebmkit::models::rbm::{GibbsRun, Rbm};
use ebmkit::models::{AeHost, AnyModel, AutoEncoder};
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
    match AnyModel::load(&a.ckpt)? {
        (AnyModel::Rbm(h), ck) => rbm(be, a, &h, &ck),
        (AnyModel::Autoencoder(h), ck) => autoencoder(be, a, &h, &ck),
        (AnyModel::Stack(s), ck) => dbn(be, a, &s, &ck),
        (AnyModel::Dbm(h), ck) => dbm(be, a, &h, &ck),
        (other, _) => Err(Error::value(
            "ebmkit sample",
            format!(
                "{} holds a {}, which has no sampler",
                a.ckpt.display(),
                other.kind()
            ),
        )),
    }
}

/// `n` test rows when `--from-data`, with the shape of a row as an image.
fn start_rows(
    a: &SampleArgs,
    ck: &Checkpoint,
    nv: usize,
) -> ebmkit::Result<(Option<HostMat>, (usize, usize))> {
    if !a.from_data {
        return Ok((None, tile_shape(nv)));
    }
    let (d, sh) = super::eval::checkpoint_data(ck, &a.ckpt, a.data.as_deref(), Some(a.n))?;
    Ok((Some(cycle(&d.test, a.n, "test data")?), sh))
}

/// The last states as a grid, or with `--chain-every` one grid row per
/// chain, one column per snapshot.
fn save_states(
    a: &SampleArgs,
    last: &HostMat,
    snapshots: &[HostMat],
    shape: (usize, usize),
    norm: Norm,
) -> ebmkit::Result<()> {
    match a.chain_every {
        Some(_) => {
            let cols = snapshots.len().max(1);
            let nv = last.cols;
            let tiles = HostMat::from_fn(a.n * cols, nv, |t, c| {
                snapshots.get(t % cols).unwrap_or(last).get(t / cols, c)
            });
            save_grid(&a.out, &tiles, shape, cols, norm, zoom_for(shape))?;
        }
        None => save_grid(&a.out, last, shape, 10, norm, zoom_for(shape))?,
    }
    eprintln!("wrote {}", a.out.display());
    Ok(())
}

/// The chains, sweeps and snapshots the flags ask for, from `start`.
fn gibbs_run<'a>(a: &SampleArgs, start: Option<&'a HostMat>) -> GibbsRun<'a> {
    GibbsRun {
        start,
        chains: a.n,
        steps: a.steps,
        every: a.chain_every,
    }
}

fn sample_rng(a: &SampleArgs) -> RngStream {
    RngStream::new(a.seed, SAMPLE_STREAM)
}

/// Block Gibbs chains of an RBM.
fn rbm<B: Fused>(
    be: &B,
    a: &SampleArgs,
    host: &ebmkit::models::RbmHost,
    ck: &Checkpoint,
) -> ebmkit::Result<()> {
    let rbm = Rbm::from_host(be, host)?;
    let (start, shape) = start_rows(a, ck, host.n_visible())?;
    let g = rbm.gibbs(be, &gibbs_run(a, start.as_ref()), &mut sample_rng(a))?;
    let norm = Norm::for_values(host.visible.is_binary());
    save_states(a, &g.last, &g.snapshots, shape, norm)
}

/// A stack of RBMs as a deep belief net: `--steps` sweeps in the top RBM
/// (from the recognition means of test rows with `--from-data`), each
/// snapshot carried down to the visible layer.
fn dbn<B: Fused>(
    be: &B,
    a: &SampleArgs,
    stack: &ebmkit::models::StackHost,
    ck: &Checkpoint,
) -> ebmkit::Result<()> {
    let dbn = Dbn::from_stack(be, stack).map_err(|e| {
        Error::value(
            "ebmkit sample",
            format!("{}: a stack samples as a DBN: {e}", a.ckpt.display()),
        )
    })?;
    let (start, shape) = start_rows(a, ck, dbn.n_visible())?;
    let g = dbn.sample(be, &gibbs_run(a, start.as_ref()), &mut sample_rng(a))?;
    let norm = Norm::for_values(dbn.rbms[0].visible.is_binary());
    save_states(a, &g.last, &g.snapshots, shape, norm)
}

/// Block Gibbs chains of every layer of a DBM (from test rows with
/// `--from-data`).
fn dbm<B: Fused>(
    be: &B,
    a: &SampleArgs,
    host: &ebmkit::models::DbmHost,
    ck: &Checkpoint,
) -> ebmkit::Result<()> {
    let dbm = ebmkit::models::Dbm::from_host(be, host)?;
    let (start, shape) = start_rows(a, ck, host.widths()[0])?;
    let g = dbm.sample(be, &gibbs_run(a, start.as_ref()), &mut sample_rng(a))?;
    save_states(a, &g.last, &g.snapshots, shape, Norm::for_values(true))
}

/// The generalized-DAE chain of a denoising auto-encoder, with the
/// corruption of its recipe; random starts are uniform in [0, 1]
/// (sigmoid decoder) or standard normal.
fn autoencoder<B: Fused>(
    be: &B,
    a: &SampleArgs,
    host: &AeHost,
    ck: &Checkpoint,
) -> ebmkit::Result<()> {
    let recipe = Recipe::parse(&ck.recipe, &a.ckpt)?;
    let noise = recipe.autoencoder()?.corruption().ok_or_else(|| {
        Error::format(&a.ckpt, "the auto-encoder was trained without corruption: its chain needs the noise it denoises")
    })?;
    let ae = AutoEncoder::from_host(be, host)?;
    let nv = host.arch.n_visible;
    let (start, shape) = start_rows(a, ck, nv)?;
    let mut rng = sample_rng(a);
    let unit = host.arch.decoder == Activation::Sigmoid;
    let start = match start {
        Some(s) => s,
        None => {
            let d = rng.next_draw();
            HostMat::from_fn(a.n, nv, |r, c| {
                if unit {
                    d.uniform(r * nv + c)
                } else {
                    d.normal(r * nv + c)
                }
            })
        }
    };
    let run = DaeChain {
        start: &start,
        steps: a.steps,
        every: a.chain_every,
    };
    let g = ae.sample_chain(be, &run, noise, &mut rng)?;
    save_states(a, &g.last, &g.snapshots, shape, Norm::for_values(unit))
}
