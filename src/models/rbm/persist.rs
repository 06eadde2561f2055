//! An RBM in a checkpoint (kind `rbm`): tensors `W` [n_visible, n_hidden],
//! `b_v` [n_visible], `b_h` [n_hidden] and, for Gaussian visible units,
//! `log_var_v` [n_visible] (log σ²; absent in older files: unit variance);
//! metadata `visible` and `hidden`, the unit types.
//!
//! The validation hook checks the tensors against each other
//! ([`RbmHost::validate`]) and, when the checkpoint carries its recipe, the
//! unit types and the layer size against it.

use std::path::Path;

use super::RbmHost;
use crate::error::{Error, Result};
use crate::io::checkpoint::{in_file, Checkpoint, Parts, Persist, Tensor};
use crate::io::recipe::Recipe;
use crate::units::UnitKind;

impl Persist for RbmHost {
    const KIND: &'static str = "rbm";

    fn to_parts(&self) -> Result<Parts> {
        self.validate()?;
        let mut p = Parts::default();
        let mut put = |name: &str, t: Tensor| {
            p.tensors.insert(name.to_string(), t);
        };
        put("W", Tensor::matrix(self.w.clone()));
        put("b_v", Tensor::vector(self.b_v.clone()));
        put("b_h", Tensor::vector(self.b_h.clone()));
        if let Some(z) = &self.log_var_v {
            put("log_var_v", Tensor::vector(z.clone()));
        }
        p.meta.insert("visible".into(), self.visible.name());
        p.meta.insert("hidden".into(), self.hidden.name());
        Ok(p)
    }

    fn from_checkpoint(ck: &Checkpoint, origin: &Path) -> Result<Self> {
        let p = &ck.model;
        let units = |key: &str| -> Result<UnitKind> {
            UnitKind::parse(p.meta(key, origin)?, key)
                .map_err(|e| Error::format(origin, format!("metadata: {e}")))
        };
        let (visible, hidden) = (units("visible")?, units("hidden")?);
        let w = p.tensor("W", 2, origin)?.clone();
        let b_v = p.tensor("b_v", 1, origin)?.clone();
        let b_h = p.tensor("b_h", 1, origin)?.clone();
        let log_var_v = match p.tensors.contains_key("log_var_v") {
            true => Some(p.tensor("log_var_v", 1, origin)?.clone()),
            false => None,
        };
        let host = RbmHost {
            w,
            b_v,
            b_h,
            visible,
            hidden,
            log_var_v,
        };
        host.validate().map_err(|e| in_file(origin, e))?;
        if !ck.recipe.trim().is_empty() {
            let r = Recipe::parse(&ck.recipe, origin)?;
            check_against_recipe(&host, &r, origin, "its recipe")?;
        }
        Ok(host)
    }
}

/// The unit types and the hidden layer size the recipe `r` declares
/// (`whose` names it in errors: the checkpoint's own, or the one a run
/// resumes under); `origin` names the model's file.
pub(crate) fn check_against_recipe(
    host: &RbmHost,
    r: &Recipe,
    origin: &Path,
    whose: &str,
) -> Result<()> {
    let spec = r.rbm()?;
    let (vis, hid) = (r.visible_units()?, r.hidden_units()?);
    let fault = |what: &str, file: String, recipe: String| {
        Err(Error::format(
            origin,
            format!("the model's {what} is {file} but {whose} says {recipe}"),
        ))
    };
    if vis != host.visible {
        return fault("visible unit type", host.visible.name(), vis.name());
    }
    if hid != host.hidden {
        return fault("hidden unit type", host.hidden.name(), hid.name());
    }
    if spec.n_hidden != host.n_hidden() {
        return fault(
            "hidden layer size",
            host.n_hidden().to_string(),
            spec.n_hidden.to_string(),
        );
    }
    Ok(())
}
