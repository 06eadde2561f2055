//! `ebmkit viz filters`: the receptive fields of a trained model.

use clap::Subcommand;
use ebmkit::data::tile_shape;
use ebmkit::models::AnyModel;
use ebmkit::viz::{save_grid, zoom_for, Norm};
use std::path::PathBuf;

#[derive(Subcommand)]
pub enum VizWhat {
    /// Receptive fields (columns of W), each normalised to its own range.
    Filters {
        ckpt: PathBuf,
        #[arg(long)]
        out: PathBuf,
        /// How many filters (the first n hidden units).
        #[arg(long, default_value_t = 100)]
        n: usize,
    },
}

pub fn run(what: &VizWhat) -> ebmkit::Result<()> {
    let VizWhat::Filters { ckpt, out, n } = what;
    let (AnyModel::Rbm(host), _) = AnyModel::load(ckpt)?;
    let shape = tile_shape(host.n_visible());
    save_grid(
        out,
        &host.filters(*n)?,
        shape,
        10,
        Norm::PerTile,
        zoom_for(shape),
    )?;
    eprintln!("wrote {}", out.display());
    Ok(())
}
