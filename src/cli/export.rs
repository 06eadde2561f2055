//! `ebmkit export`: a checkpoint as a net other frameworks load: the
//! layers in PyTorch's `nn.Sequential` layout (safetensors) and a JSON
//! manifest of the modules.

use clap::Args;
use ebmkit::models::net::export_torch;
use ebmkit::models::AnyModel;
use ebmkit::Error;
use std::path::PathBuf;

#[derive(Args)]
pub struct ExportArgs {
    /// A checkpoint: a net (as trained or fine-tuned), or an rbm,
    /// autoencoder or stack (their encoder layers).
    pub ckpt: PathBuf,
    /// The safetensors file to write; the manifest goes beside it (.json).
    #[arg(long)]
    pub out: PathBuf,
}

pub fn run(a: &ExportArgs) -> ebmkit::Result<()> {
    let (model, ck) = AnyModel::load(&a.ckpt)?;
    let net = model.as_net().map_err(|e| match e {
        Error::Value { msg, .. } | Error::Shape { detail: msg, .. } => Error::format(&a.ckpt, msg),
        other => other,
    })?;
    let manifest = export_torch(&net, &ck.recipe, &a.out)?;
    let sizes: Vec<String> = net.sizes().iter().map(|w| w.to_string()).collect();
    eprintln!(
        "wrote {} ({} net, {} output) and {}",
        a.out.display(),
        sizes.join("-"),
        net.output.name(),
        manifest.display()
    );
    Ok(())
}
