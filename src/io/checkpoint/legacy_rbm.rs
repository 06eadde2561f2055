//! The first checkpoint format, `ebmkit-rbm` (version 1), written before
//! model kinds existed: an RBM's tensors `W`, `b_v`, `b_h` (and
//! `log_var_v` for Gaussian visible units) beside unprefixed training-state
//! tensors, and the unit types as plain metadata keys `visible` / `hidden`.
//! Such files (e.g. those under `experiments/results/`) load as kind `rbm`.

use std::collections::{BTreeMap, HashMap};

use super::{Parts, Tensor};
use crate::host::HostMat;

pub const FORMAT: &str = "ebmkit-rbm";

/// The model tensors of the format; every other tensor was training state.
const MODEL_TENSORS: [&str; 4] = ["W", "b_v", "b_h", "log_var_v"];
const MODEL_META: [&str; 2] = ["visible", "hidden"];

pub(super) fn split(
    tensors: BTreeMap<String, Tensor>,
    meta: &HashMap<String, String>,
) -> (Option<String>, Parts, BTreeMap<String, HostMat>) {
    let mut model = Parts::default();
    let mut state = BTreeMap::new();
    for (name, t) in tensors {
        if MODEL_TENSORS.contains(&name.as_str()) {
            model.tensors.insert(name, t);
        } else {
            state.insert(name, t.mat);
        }
    }
    for k in MODEL_META {
        if let Some(v) = meta.get(k) {
            model.meta.insert(k.to_string(), v.clone());
        }
    }
    (Some("rbm".to_string()), model, state)
}
