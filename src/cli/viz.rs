//! `ebmkit viz filters`: the receptive fields of a trained model.

use clap::Subcommand;
use ebmkit::data::tile_shape;
use ebmkit::models::AnyModel;
use ebmkit::viz::{receptive_fields, save_grid, zoom_for, Norm};
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
    if *n == 0 {
        // As `sample --n 0`: drawing one filter instead would hide the typo.
        return Err(ebmkit::Error::value("--n", "must be at least 1"));
    }
    let w = match AnyModel::load(ckpt)?.0 {
        AnyModel::Rbm(h) => h.w,
        AnyModel::Autoencoder(h) => h.params[0].clone(),
        AnyModel::Net(h) => h.layers[0].w.clone(),
        AnyModel::Stack(s) => AnyModel::Stack(s).pretrained(false)?.encoders.remove(0).w,
        AnyModel::Dbm(h) => h.w[0].clone(),
        AnyModel::Sparse(h) => h.dict.transpose(),
        AnyModel::Lista(h) => h.params[0].transpose(),
    };
    let shape = tile_shape(w.rows);
    save_grid(
        out,
        &receptive_fields(&w, *n)?,
        shape,
        10,
        Norm::PerTile,
        zoom_for(shape),
    )?;
    eprintln!("wrote {}", out.display());
    Ok(())
}
