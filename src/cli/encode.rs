//! `ebmkit encode`: the codes of a data set as a .npy file (rows are
//! examples), for use outside ebmkit. A sparse-coding model gives its
//! optimal codes (inference as its recipe's `eval_tol` / `eval_iters`), or
//! with `--encoder` PSD's predicted codes; any other model its top
//! features (the hidden means of an RBM, auto-encoder or stack, the
//! outputs of a net).

use clap::Args;
use ebmkit::backend::Fused;
use ebmkit::data::npy::{read_npy, write_npy};
use ebmkit::data::EvalData;
use ebmkit::io::checkpoint::Checkpoint;
use ebmkit::models::sparse::{score, PsdArch, PsdEncoder};
use ebmkit::models::{AnyModel, Net, SparseHost};
use ebmkit::{Error, HostMat};
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct EncodeArgs {
    pub ckpt: PathBuf,
    /// The .npy file to write (float32, rows x code units).
    #[arg(long)]
    pub out: PathBuf,
    /// Rows to code (a 2-D .npy); without it, the checkpoint's recipe's
    /// data set (`--split`).
    #[arg(long)]
    pub input: Option<PathBuf>,
    /// With the recipe's data: "test" or "train".
    #[arg(long, default_value = "test")]
    pub split: String,
    /// Data folder for the full MNIST or the photographs.
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// PSD: the encoder's codes F(x) instead of optimal inference.
    #[arg(long)]
    pub encoder: bool,
}

pub fn run<B: Fused>(be: &B, a: &EncodeArgs) -> ebmkit::Result<()> {
    let (model, ck) = AnyModel::load(&a.ckpt)?;
    let x = match &a.input {
        Some(p) => read_npy(p)?,
        None => {
            let (data, _): (EvalData, _) =
                super::eval::checkpoint_data(&ck, &a.ckpt, a.data.as_deref(), None)?;
            match a.split.as_str() {
                "test" => data.test,
                "train" => data.train,
                other => {
                    return Err(Error::value(
                        "--split",
                        format!("'{other}' is not test or train"),
                    ))
                }
            }
        }
    };
    let codes = match &model {
        AnyModel::Sparse(h) => sparse_codes(be, a, h, &ck, &x)?,
        AnyModel::Lista(h) => {
            if x.cols != h.dict.cols {
                return Err(Error::shape(
                    "ebmkit encode",
                    format!(
                        "rows of {} values; {} reads {}",
                        x.cols,
                        a.ckpt.display(),
                        h.dict.cols
                    ),
                ));
            }
            ebmkit::models::sparse::Lista::from_host(be, h.arch(), &h.params)?
                .encode(be, &x, 500)?
        }
        other => {
            if a.encoder {
                return Err(Error::value(
                    "--encoder",
                    "only a PSD model (kind = \"sparse\", encoder = \"psd\") has an encoder apart from its features",
                ));
            }
            let host = other.as_net()?;
            let n_in = host.layers.first().map_or(0, |l| l.w.rows);
            if x.cols != n_in {
                return Err(Error::shape(
                    "ebmkit encode",
                    format!(
                        "rows of {} values; {} reads {n_in}",
                        x.cols,
                        a.ckpt.display()
                    ),
                ));
            }
            Net::from_host(be, &host)?.forward(be, &x)?
        }
    };
    write_npy(&a.out, &codes)?;
    eprintln!(
        "wrote {} ({} x {})",
        a.out.display(),
        codes.rows,
        codes.cols
    );
    Ok(())
}

/// A sparse-coding model's codes of `x`: optimal, or PSD's encoder's.
fn sparse_codes<B: Fused>(
    be: &B,
    a: &EncodeArgs,
    h: &SparseHost,
    ck: &Checkpoint,
    x: &HostMat,
) -> ebmkit::Result<HostMat> {
    if x.cols != h.dim() {
        return Err(Error::shape(
            "ebmkit encode",
            format!(
                "rows of {} values; the dictionary's atoms in {} have {}",
                x.cols,
                a.ckpt.display(),
                h.dim()
            ),
        ));
    }
    if a.encoder {
        let p = h.encoder.as_ref().ok_or_else(|| {
            Error::value(
                "--encoder",
                format!("{} has no PSD encoder", a.ckpt.display()),
            )
        })?;
        let arch = PsdArch {
            dim: h.dim(),
            atoms: h.atoms(),
        };
        PsdEncoder::from_host(be, arch, p)?.predict(be, x, 500)
    } else {
        let recipe = super::eval::stored_recipe(ck, &a.ckpt)?;
        let inf = ebmkit::train::sparse::eval_inference(recipe.sparse()?);
        let s = score(be, h, x, &inf)?;
        if let Some(w) = s.report.warning(&inf) {
            eprintln!("warning: {w}");
        }
        eprintln!(
            "energy {:.5} per row, {:.1} % of the codes non-zero",
            s.energy,
            100.0 * s.nonzero
        );
        Ok(s.codes)
    }
}
