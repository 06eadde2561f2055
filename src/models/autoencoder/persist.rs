//! An auto-encoder in a checkpoint (kind `autoencoder`): tensors `W`
//! [n_visible, n_hidden], `W_dec` [n_visible, n_hidden] when untied, `b_h`
//! [n_hidden], `b_v` [n_visible]; metadata `encoder`, `decoder` (the
//! activations) and `tied`.

use std::path::Path;

use super::{AeHost, Arch};
use crate::autodiff::Activation;
use crate::error::{Error, Result};
use crate::io::checkpoint::{in_file, Checkpoint, Parts, Persist, Tensor};
use crate::io::recipe::Recipe;

impl Persist for AeHost {
    const KIND: &'static str = "autoencoder";

    fn to_parts(&self) -> Result<Parts> {
        self.validate()?;
        let mut p = Parts::default();
        for ((name, _), m) in self.arch.params().into_iter().zip(&self.params) {
            let t = match name.starts_with('W') {
                true => Tensor::matrix(m.clone()),
                false => Tensor::vector(m.clone()),
            };
            p.tensors.insert(name.to_string(), t);
        }
        p.meta
            .insert("encoder".into(), self.arch.encoder.name().into());
        p.meta
            .insert("decoder".into(), self.arch.decoder.name().into());
        p.meta.insert("tied".into(), self.arch.tied.to_string());
        Ok(p)
    }

    fn from_checkpoint(ck: &Checkpoint, origin: &Path) -> Result<Self> {
        let p = &ck.model;
        let act = |key: &str| -> Result<Activation> {
            Activation::parse(p.meta(key, origin)?, key)
                .map_err(|e| Error::format(origin, format!("metadata: {e}")))
        };
        let tied = match p.meta("tied", origin)? {
            "true" => true,
            "false" => false,
            other => {
                return Err(Error::format(
                    origin,
                    format!("metadata 'model.tied' is '{other}', not true or false"),
                ))
            }
        };
        let w = p.tensor("W", 2, origin)?;
        let arch = Arch {
            n_visible: w.rows,
            n_hidden: w.cols,
            encoder: act("encoder")?,
            decoder: act("decoder")?,
            tied,
        };
        let mut params = Vec::new();
        for (name, _) in arch.params() {
            let dims = if name.starts_with('W') { 2 } else { 1 };
            params.push(p.tensor(name, dims, origin)?.clone());
        }
        let host = AeHost { arch, params };
        host.validate().map_err(|e| in_file(origin, e))?;
        if !ck.recipe.trim().is_empty() {
            let r = Recipe::parse(&ck.recipe, origin)?;
            let spec = r.autoencoder().map_err(|e| in_file(origin, e))?;
            let want = Arch::from_spec(arch.n_visible, spec);
            if want != arch {
                return Err(Error::format(
                    origin,
                    format!("the model is {arch:?} but its recipe says {want:?}"),
                ));
            }
        }
        Ok(host)
    }
}
