//! The `[model]` section of a feed-forward net (`kind = "net"`): the MLP
//! classifier a pretrained stack is handed to, or the deep auto-encoder
//! unrolled from one, fine-tuned by backpropagation; and its validation
//! hook. With `init` (or `ebmkit finetune STACK`) the hidden layers start
//! from a pretrained stack; without it from Glorot's initialisation, the
//! randomly initialised twin.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::{finite_nonneg, ModelSpec, Recipe};
use crate::autodiff::Activation;
use crate::error::{Error, Result};

/// What a net's last layer computes, and its loss.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Output {
    /// Class logits (the last layer is linear); softmax cross-entropy
    /// against the labels.
    #[default]
    Softmax,
    /// Probabilities (the last layer is sigmoid); binary cross-entropy from
    /// the logits.
    Sigmoid,
    /// The last layer's values (any activation: linear for a deep
    /// auto-encoder of real values); squared error.
    Linear,
}

impl Output {
    pub fn name(self) -> &'static str {
        match self {
            Output::Softmax => "softmax",
            Output::Sigmoid => "sigmoid",
            Output::Linear => "linear",
        }
    }

    pub fn parse(s: &str, what: &str) -> Result<Output> {
        match s {
            "softmax" => Ok(Output::Softmax),
            "sigmoid" => Ok(Output::Sigmoid),
            "linear" => Ok(Output::Linear),
            other => Err(Error::value(
                what,
                format!("'{other}' is not one of softmax, sigmoid, linear"),
            )),
        }
    }

    /// The activation of the last layer.
    pub fn activation(self) -> Activation {
        match self {
            Output::Sigmoid => Activation::Sigmoid,
            _ => Activation::Linear,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetSpec {
    /// Hidden layer widths, input side first (with `init`: checked against
    /// the stack's; may be left empty to take them).
    #[serde(default)]
    pub hidden: Vec<usize>,
    /// The hidden layers' activation, or one per hidden layer in
    /// `activations`.
    #[serde(default = "sigmoid")]
    pub activation: Activation,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub activations: Vec<Activation>,
    /// softmax: a classifier with `classes` outputs; sigmoid / linear with
    /// `autoencoder`: the input reconstructed.
    #[serde(default)]
    pub output: Output,
    #[serde(default = "ten")]
    pub classes: usize,
    /// A deep auto-encoder: the hidden layers are the encoder, mirrored by
    /// a decoder back to the input (Hinton & Salakhutdinov 2006); the
    /// targets are the inputs.
    #[serde(default)]
    pub autoencoder: bool,
    /// A pretrained stack (any checkpoint of rbm, autoencoder, stack or
    /// net kind) whose encoder (and, for `autoencoder`, decoder) layers
    /// start the net.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init: Option<PathBuf>,
    /// Dropout rates of the input and of every hidden layer (training only).
    #[serde(default)]
    pub dropout_input: f32,
    #[serde(default)]
    pub dropout_hidden: f32,
    /// Initial weights of the layers not taken from `init`: N(0, std²),
    /// else Glorot's uniform range.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init_std: Option<f32>,
    /// Stop after this many epochs without a better validation score
    /// (the best epoch's parameters are the result either way).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patience: Option<usize>,
}

fn sigmoid() -> Activation {
    Activation::Sigmoid
}
fn ten() -> usize {
    10
}

impl NetSpec {
    /// A sigmoid MLP classifier with these hidden widths.
    pub fn classifier(hidden: &[usize], classes: usize) -> NetSpec {
        NetSpec {
            hidden: hidden.to_vec(),
            activation: Activation::Sigmoid,
            activations: vec![],
            output: Output::Softmax,
            classes,
            autoencoder: false,
            init: None,
            dropout_input: 0.0,
            dropout_hidden: 0.0,
            init_std: None,
            patience: None,
        }
    }

    /// The activation of hidden layer `k`.
    pub fn hidden_activation(&self, k: usize) -> Activation {
        self.activations.get(k).copied().unwrap_or(self.activation)
    }
}

impl From<NetSpec> for ModelSpec {
    fn from(m: NetSpec) -> ModelSpec {
        ModelSpec::Net(m)
    }
}

impl Recipe {
    /// The net section.
    pub fn net(&self) -> Result<&NetSpec> {
        match &self.model {
            ModelSpec::Net(m) => Ok(m),
            other => Err(Error::value(
                "model.kind",
                format!("the recipe is for a {}, not a net", other.kind()),
            )),
        }
    }
    pub fn net_mut(&mut self) -> Result<&mut NetSpec> {
        match &mut self.model {
            ModelSpec::Net(m) => Ok(m),
            other => Err(Error::value(
                "model.kind",
                format!("the recipe is for a {}, not a net", other.kind()),
            )),
        }
    }
}

/// What a net recipe must satisfy beyond the generic checks.
pub(super) fn validate(r: &Recipe, m: &NetSpec) -> Result<()> {
    if let Some(method) = r.train.method {
        return Err(Error::value(
            "train.method",
            format!("{method:?}: a net is trained by backpropagation; remove the key"),
        ));
    }
    if let Some(k) = m.hidden.iter().position(|&w| w == 0) {
        return Err(Error::value(
            "model.hidden",
            format!("layer {k} has width 0"),
        ));
    }
    if !m.activations.is_empty() && !m.hidden.is_empty() && m.activations.len() != m.hidden.len() {
        return Err(Error::value(
            "model.activations",
            format!(
                "{} activations for {} hidden layers",
                m.activations.len(),
                m.hidden.len()
            ),
        ));
    }
    match (m.autoencoder, m.output) {
        (true, Output::Softmax) => {
            return Err(Error::value(
                "model.output",
                "a deep auto-encoder reconstructs its input: sigmoid or linear",
            ))
        }
        (false, Output::Softmax) if m.classes < 2 => {
            return Err(Error::value(
                "model.classes",
                format!("{} classes: need at least 2", m.classes),
            ))
        }
        _ => {}
    }
    for (key, p) in [
        ("model.dropout_input", m.dropout_input),
        ("model.dropout_hidden", m.dropout_hidden),
    ] {
        if !(0.0..1.0).contains(&p) {
            return Err(Error::value(key, format!("{p} is not in [0, 1)")));
        }
    }
    if let Some(s) = m.init_std {
        finite_nonneg("model.init_std", s)?;
    }
    if m.patience == Some(0) {
        return Err(Error::value("model.patience", "must be at least 1"));
    }
    Ok(())
}
