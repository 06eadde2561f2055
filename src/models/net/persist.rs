//! A net in a checkpoint (kind `net`) in the layout of PyTorch's
//! `nn.Sequential` of alternating `nn.Linear` and activation modules:
//! layer k's weights as `{2k}.weight` [n_out, n_in] and its bias as
//! `{2k}.bias` [n_out]; metadata `activations` (one name per layer, comma
//! separated) and `output`. [`export_torch`] writes that file without
//! training state, with a JSON manifest beside it, so that
//! `model.load_state_dict(safetensors.torch.load_file(path))` loads it
//! strictly.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{Dense, NetHost, Output};
use crate::autodiff::Activation;
use crate::error::{Error, Result};
use crate::io::checkpoint::{in_file, write_atomic, Checkpoint, Parts, Persist, Tensor};

impl Persist for NetHost {
    const KIND: &'static str = "net";

    fn to_parts(&self) -> Result<Parts> {
        self.validate()?;
        let mut p = Parts::default();
        for (k, l) in self.layers.iter().enumerate() {
            let i = 2 * k;
            p.tensors
                .insert(format!("{i}.weight"), Tensor::matrix(l.w.transpose()));
            p.tensors
                .insert(format!("{i}.bias"), Tensor::vector(l.b.clone()));
        }
        let acts: Vec<&str> = self.layers.iter().map(|l| l.act.name()).collect();
        p.meta.insert("activations".into(), acts.join(","));
        p.meta.insert("output".into(), self.output.name().into());
        Ok(p)
    }

    fn from_checkpoint(ck: &Checkpoint, origin: &Path) -> Result<Self> {
        let p = &ck.model;
        let meta = |e: Error| Error::format(origin, format!("metadata: {e}"));
        let output = Output::parse(p.meta("output", origin)?, "model.output").map_err(meta)?;
        let acts = p
            .meta("activations", origin)?
            .split(',')
            .map(|a| Activation::parse(a.trim(), "model.activations"))
            .collect::<Result<Vec<_>>>()
            .map_err(meta)?;
        let expected = 2 * acts.len();
        if p.tensors.len() != expected {
            return Err(Error::format(
                origin,
                format!(
                    "{} tensors for {} layers (expected {expected}: i.weight and i.bias for i = 0, 2, ...)",
                    p.tensors.len(),
                    acts.len()
                ),
            ));
        }
        let mut layers = Vec::new();
        for (k, act) in acts.into_iter().enumerate() {
            let i = 2 * k;
            layers.push(Dense {
                w: p.tensor(&format!("{i}.weight"), 2, origin)?.transpose(),
                b: p.tensor(&format!("{i}.bias"), 1, origin)?.clone(),
                act,
            });
        }
        let host = NetHost { layers, output };
        host.validate().map_err(|e| in_file(origin, e))?;
        Ok(host)
    }
}

/// The JSON beside an exported net: how to build the `nn.Sequential` it
/// loads into.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TorchManifest {
    pub format: String,
    /// Layer widths, input first.
    pub sizes: Vec<usize>,
    /// One per layer: sigmoid, tanh, relu or linear (`nn.Identity`).
    pub activations: Vec<String>,
    /// softmax (the last layer gives logits), sigmoid or linear.
    pub output: String,
    /// The modules in order, as PyTorch prints them.
    pub modules: Vec<String>,
}

impl TorchManifest {
    pub fn of(net: &NetHost) -> TorchManifest {
        let sizes = net.sizes();
        let mut modules = Vec::new();
        for (k, l) in net.layers.iter().enumerate() {
            modules.push(format!(
                "Linear(in_features={}, out_features={})",
                sizes[k],
                sizes[k + 1]
            ));
            modules.push(
                match l.act {
                    Activation::Sigmoid => "Sigmoid()",
                    Activation::Tanh => "Tanh()",
                    Activation::Relu => "ReLU()",
                    Activation::Linear => "Identity()",
                }
                .to_string(),
            );
        }
        TorchManifest {
            format: "torch.nn.Sequential".into(),
            sizes,
            activations: net
                .layers
                .iter()
                .map(|l| l.act.name().to_string())
                .collect(),
            output: net.output.name().into(),
            modules,
        }
    }
}

/// Writes `net` to `path` (safetensors, PyTorch layout, no training
/// state; `recipe`, the TOML that trained it, in the metadata so that
/// `ebmkit eval` finds its data) and its manifest to `path` with the
/// extension `.json`; returns the manifest's path.
pub fn export_torch(net: &NetHost, recipe: &str, path: &Path) -> Result<std::path::PathBuf> {
    let mut ck = Checkpoint::of_model(net)?;
    ck.recipe = recipe.to_string();
    ck.save(path)?;
    let manifest = path.with_extension("json");
    let text = serde_json::to_string_pretty(&TorchManifest::of(net))
        .map_err(|e| Error::value("export manifest", e.to_string()))?;
    write_atomic(&manifest, text.as_bytes())?;
    Ok(manifest)
}
