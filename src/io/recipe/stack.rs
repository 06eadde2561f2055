//! A stack for greedy layer-wise pretraining (`kind = "stack"`): one
//! recipe, one `[[layer]]` section per layer, each with its own `model`
//! (rbm, autoencoder or PSD) and `train` keys; the top-level `[train]` holds
//! what the layers share (a layer's own keys win). Layer k trains on layer
//! k-1's codes: the means of its hidden units, or, with `codes =
//! "samples"`, binary samples of them drawn afresh at each presentation.
//!
//! ```toml
//! [model]
//! kind = "stack"
//!
//! [train]            # every layer's defaults
//! epochs = 50
//! batch_size = 100
//! lr = 0.1
//!
//! [[layer]]
//! model = { kind = "rbm", n_hidden = 1000 }
//! train = { method = "cd" }
//!
//! [[layer]]
//! model = { kind = "autoencoder", n_hidden = 500, noise = "masking", noise_level = 0.25 }
//! ```

use serde::{Deserialize, Serialize};

use super::{ModelSpec, Recipe, TrainSpec};
use crate::autodiff::Activation;
use crate::data::{Binarize, DataSpec};
use crate::error::{Error, Result};
use crate::units::UnitKind;

/// What layer k + 1 trains on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Codes {
    /// The mean activations of layer k's hidden units.
    #[default]
    Means,
    /// Binary samples of them, drawn afresh whenever a row is presented
    /// (Hinton et al. 2006); layer k's units must be binary.
    Samples,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StackSpec {
    #[serde(default)]
    pub codes: Codes,
}

/// One layer of a stack: its model and its training keys.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LayerSpec {
    pub model: ModelSpec,
    pub train: TrainSpec,
}

impl From<StackSpec> for ModelSpec {
    fn from(m: StackSpec) -> ModelSpec {
        ModelSpec::Stack(m)
    }
}

/// Overlays every `[[layer]]`'s `train` table on the top-level `[train]`
/// (the layers' shared defaults) in a stack recipe's raw TOML.
pub(super) fn merge_layer_defaults(raw: &mut toml::Table) {
    let base = raw
        .get("train")
        .and_then(|t| t.as_table())
        .cloned()
        .unwrap_or_default();
    if let Some(layers) = raw.get_mut("layer").and_then(|l| l.as_array_mut()) {
        for layer in layers.iter_mut().filter_map(|l| l.as_table_mut()) {
            let mut train = base.clone();
            if let Some(own) = layer.get("train").and_then(|t| t.as_table()) {
                for (k, v) in own {
                    train.insert(k.clone(), v.clone());
                }
            }
            layer.insert("train".into(), toml::Value::Table(train));
        }
    }
}

impl Recipe {
    /// The stack section.
    pub fn stack(&self) -> Result<&StackSpec> {
        match &self.model {
            ModelSpec::Stack(m) => Ok(m),
            other => Err(Error::value(
                "model.kind",
                format!("the recipe is for a {}, not a stack", other.kind()),
            )),
        }
    }

    /// Layer `k` of a stack as a recipe of its own: its model and training
    /// keys, the stack's data (layer 0) or the codes of the layer below
    /// (passed in memory), the stack's monitors.
    pub fn layer(&self, k: usize) -> Result<Recipe> {
        let codes = self.stack()?.codes;
        let l = self.layers.get(k).ok_or_else(|| {
            Error::value(
                "layer",
                format!("the stack has {} layers, not {}", self.layers.len(), k + 1),
            )
        })?;
        let data = match k {
            0 => self.data.clone(),
            _ => DataSpec {
                binarize: match codes {
                    Codes::Means => Binarize::None,
                    Codes::Samples => Binarize::Stochastic,
                },
                ..Default::default()
            },
        };
        Ok(Recipe {
            description: format!("layer {k} of: {}", self.description),
            model: l.model.clone(),
            data,
            train: l.train.clone(),
            monitor: self.monitor.clone(),
            layers: vec![],
        })
    }
}

/// Whether a layer's codes lie in [0, 1] (binary or sigmoid units).
fn binary_codes(m: &ModelSpec) -> bool {
    match m {
        ModelSpec::Rbm(r) => r.hidden_units().is_ok_and(|u| u == UnitKind::Bernoulli),
        ModelSpec::Autoencoder(a) => a.encoder == Activation::Sigmoid,
        _ => false,
    }
}

/// What a stack recipe must satisfy: at least one layer, each an rbm, an
/// autoencoder or a PSD (sparse with its encoder) whose own recipe is
/// valid, binary codes under `samples`.
pub(super) fn validate(r: &Recipe, m: &StackSpec) -> Result<()> {
    if r.layers.is_empty() {
        return Err(Error::value(
            "layer",
            "a stack needs at least one [[layer]] section",
        ));
    }
    for (k, l) in r.layers.iter().enumerate() {
        let layerwise = match &l.model {
            ModelSpec::Rbm(_) | ModelSpec::Autoencoder(_) => true,
            // PSD's encoder gives the next layer its features in one pass.
            ModelSpec::Sparse(s) => s.psd(),
            _ => false,
        };
        if !layerwise {
            return Err(Error::value(
                "layer.model.kind",
                format!(
                    "layer {k} is a {}{}: stack layers are rbm, autoencoder or sparse with \
                     encoder = \"psd\"",
                    l.model.kind(),
                    if matches!(l.model, ModelSpec::Sparse(_)) {
                        " without an encoder"
                    } else {
                        ""
                    }
                ),
            ));
        }
        r.layer(k)?.validate().map_err(|e| match e {
            Error::Value { name, msg } => Error::value(format!("layer {k}: {name}"), msg),
            other => other,
        })?;
        if k > 0 && m.codes == Codes::Samples && !binary_codes(&r.layers[k - 1].model) {
            return Err(Error::value(
                "model.codes",
                format!(
                    "samples of layer {}'s codes need binary (or sigmoid) units",
                    k - 1
                ),
            ));
        }
    }
    Ok(())
}
