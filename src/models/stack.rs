//! A stack of layer-wise pretrained models (kind `stack`): each layer an
//! RBM or an auto-encoder reading the codes of the one below. In a
//! checkpoint, layer k's tensors and metadata carry the prefix `k.` (its
//! kind as `k.kind`), with the layer count as `layers`; each layer goes
//! through its own kind's validation, and the widths must chain.

use std::collections::BTreeMap;
use std::path::Path;

use super::net::{Layerwise, Pretrained};
use super::{AeHost, AnyModel, RbmHost};
use crate::error::{Error, Result};
use crate::io::checkpoint::{Checkpoint, Parts, Persist};
use crate::io::recipe::Recipe;

/// The layers of a stack, input side first.
#[derive(Clone, Debug, PartialEq)]
pub struct StackHost {
    pub layers: Vec<AnyModel>,
}

impl AnyModel {
    /// The model as one layer of a stack.
    pub fn layerwise(&self) -> Result<&dyn Layerwise> {
        match self {
            AnyModel::Rbm(m) => Ok(m),
            AnyModel::Autoencoder(m) => Ok(m),
            AnyModel::Sparse(m) if m.encoder.is_some() => Ok(m),
            other => Err(Error::value(
                "stack layer",
                format!(
                    "a {} is not a layer-wise model (rbm, autoencoder or PSD)",
                    other.kind()
                ),
            )),
        }
    }

    /// The model kind's name.
    pub fn kind(&self) -> &'static str {
        match self {
            AnyModel::Rbm(_) => RbmHost::KIND,
            AnyModel::Autoencoder(_) => AeHost::KIND,
            AnyModel::Net(_) => super::NetHost::KIND,
            AnyModel::Stack(_) => StackHost::KIND,
            AnyModel::Dbm(_) => super::DbmHost::KIND,
            AnyModel::Sparse(_) => super::SparseHost::KIND,
            AnyModel::Lista(_) => super::ListaHost::KIND,
        }
    }
}

impl StackHost {
    /// Layer widths, input first.
    pub fn sizes(&self) -> Result<Vec<usize>> {
        let mut s = Vec::new();
        for l in &self.layers {
            let d = l.layerwise()?.encoder()?;
            if s.is_empty() {
                s.push(d.w.rows);
            }
            s.push(d.w.cols);
        }
        Ok(s)
    }

    /// Every layer is layer-wise and reads what the one below gives.
    pub fn validate(&self) -> Result<()> {
        if self.layers.is_empty() {
            return Err(Error::shape(
                "stack",
                "a stack needs at least one layer".to_string(),
            ));
        }
        let mut below: Option<usize> = None;
        for (k, l) in self.layers.iter().enumerate() {
            let d = l.layerwise()?.encoder()?;
            if let Some(n) = below.filter(|&n| n != d.w.rows) {
                return Err(Error::shape(
                    "stack",
                    format!(
                        "layer {k} reads {} values but layer {} gives {n}",
                        d.w.rows,
                        k - 1
                    ),
                ));
            }
            below = Some(d.w.cols);
        }
        Ok(())
    }

    /// The encoders (and decoders) a net starts from.
    pub fn pretrained(&self, with_decoders: bool) -> Result<Pretrained> {
        self.validate()?;
        let layers = self
            .layers
            .iter()
            .map(|l| l.layerwise())
            .collect::<Result<Vec<_>>>()?;
        Pretrained::of(&layers, with_decoders)
    }
}

/// The entries of `m` under `prefix`, with it removed.
fn with_prefix<V: Clone>(m: &BTreeMap<String, V>, prefix: &str) -> BTreeMap<String, V> {
    m.iter()
        .filter_map(|(k, v)| k.strip_prefix(prefix).map(|s| (s.to_string(), v.clone())))
        .collect()
}

impl Persist for StackHost {
    const KIND: &'static str = "stack";

    fn to_parts(&self) -> Result<Parts> {
        self.validate()?;
        let mut p = Parts::default();
        for (k, l) in self.layers.iter().enumerate() {
            let parts = match l {
                AnyModel::Rbm(m) => m.to_parts()?,
                AnyModel::Autoencoder(m) => m.to_parts()?,
                AnyModel::Sparse(m) => m.to_parts()?,
                _ => unreachable!("validate admits layer-wise models only"),
            };
            for (name, t) in parts.tensors {
                p.tensors.insert(format!("{k}.{name}"), t);
            }
            for (key, v) in parts.meta {
                p.meta.insert(format!("{k}.{key}"), v);
            }
            p.meta.insert(format!("{k}.kind"), l.kind().to_string());
        }
        p.meta
            .insert("layers".into(), self.layers.len().to_string());
        Ok(p)
    }

    fn from_checkpoint(ck: &Checkpoint, origin: &Path) -> Result<Self> {
        let p = &ck.model;
        let n: usize = p
            .meta("layers", origin)?
            .parse()
            .map_err(|_| Error::format(origin, "metadata 'model.layers' is not a layer count"))?;
        let recipe = match ck.recipe.trim().is_empty() {
            true => None,
            false => Some(Recipe::parse(&ck.recipe, origin)?),
        };
        let mut layers = Vec::new();
        for k in 0..n {
            let prefix = format!("{k}.");
            let mut parts = Parts {
                tensors: with_prefix(&p.tensors, &prefix),
                meta: with_prefix(&p.meta, &prefix),
            };
            let kind = parts.meta.remove("kind").ok_or_else(|| {
                Error::format(origin, format!("metadata 'model.{k}.kind' is missing"))
            })?;
            let layer_recipe = match &recipe {
                Some(r) if r.layers.len() == n => r.layer(k)?.to_toml()?,
                Some(r) => {
                    return Err(Error::format(
                        origin,
                        format!("{n} layers, but its recipe has {}", r.layers.len()),
                    ))
                }
                None => String::new(),
            };
            let sub = Checkpoint {
                kind,
                model: parts,
                recipe: layer_recipe,
                epoch: 0,
                rng: crate::rng::RngStream::new(0, 0),
                state: BTreeMap::new(),
                history: String::new(),
            };
            layers.push(
                AnyModel::from_checkpoint(&sub, origin).map_err(|e| match e {
                    Error::Format { msg, .. } => Error::format(origin, format!("layer {k}: {msg}")),
                    other => other,
                })?,
            );
        }
        let host = StackHost { layers };
        host.validate()
            .map_err(|e| crate::io::checkpoint::in_file(origin, e))?;
        Ok(host)
    }
}
