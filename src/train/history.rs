//! What a training run records at each epoch end, and its curves.
//!
//! An [`EpochRecord`] holds the epoch, its learning rate and wall time, and
//! the objective's monitored values by name (an RBM: `recon_error`,
//! `pseudo_ll`, `fe_train`, `fe_heldout`, `fe_gap`; parallel tempering adds
//! the `swap_rates` series). Checkpoints store the [`History`] as JSON, one
//! flat object per epoch, the layout earlier versions wrote too.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::viz::curves::{save_plots, Color, Line, Plot};

/// One epoch's monitored values.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EpochRecord {
    /// 1-based: the number of epochs completed.
    pub epoch: u64,
    pub lr: f32,
    /// Wall-clock seconds of the epoch's updates (monitors excluded).
    pub seconds: f64,
    /// Monitored scalars by name; absent where undefined for the model.
    pub metrics: BTreeMap<String, f64>,
    /// Monitored vectors by name (e.g. swap rates per temperature pair).
    pub series: BTreeMap<String, Vec<f32>>,
}

impl EpochRecord {
    pub fn metric(&self, name: &str) -> Option<f64> {
        self.metrics.get(name).copied()
    }
    /// Records `value` under `name` (None: leaves it absent).
    pub fn set(&mut self, name: &str, value: Option<f64>) {
        if let Some(v) = value {
            self.metrics.insert(name.to_string(), v);
        }
    }
}

const EPOCH: &str = "epoch";
const LR: &str = "lr";
const SECONDS: &str = "seconds";

impl Serialize for EpochRecord {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(3 + self.metrics.len() + self.series.len()))?;
        m.serialize_entry(EPOCH, &self.epoch)?;
        m.serialize_entry(LR, &self.lr)?;
        m.serialize_entry(SECONDS, &self.seconds)?;
        for (k, v) in &self.metrics {
            m.serialize_entry(k, v)?;
        }
        for (k, v) in &self.series {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

impl<'de> Deserialize<'de> for EpochRecord {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        use serde::de::Error as _;
        use serde_json::Value;
        let map = serde_json::Map::<String, Value>::deserialize(d)?;
        let mut r = EpochRecord::default();
        let number = |k: &str, v: &Value| {
            v.as_f64()
                .ok_or_else(|| D::Error::custom(format!("'{k}' = {v} is not a number")))
        };
        for (k, v) in &map {
            match (k.as_str(), v) {
                (EPOCH, v) => {
                    r.epoch = v
                        .as_u64()
                        .ok_or_else(|| D::Error::custom(format!("'epoch' = {v} is not a count")))?
                }
                (LR, v) => r.lr = number(k, v)? as f32,
                (SECONDS, v) => r.seconds = number(k, v)?,
                (_, Value::Null) => {}
                (_, Value::Array(xs)) => {
                    let xs = xs
                        .iter()
                        .map(|x| number(k, x).map(|x| x as f32))
                        .collect::<std::result::Result<Vec<_>, _>>()?;
                    r.series.insert(k.clone(), xs);
                }
                (_, v) => {
                    r.metrics.insert(k.clone(), number(k, v)?);
                }
            }
        }
        Ok(r)
    }
}

/// The curves of a run.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct History {
    pub epochs: Vec<EpochRecord>,
}

impl History {
    pub fn to_json(&self) -> Result<String> {
        serde_json::to_string(self).map_err(|e| Error::value("training history", e.to_string()))
    }

    /// An empty history for empty text (a checkpoint without curves); text
    /// that is not a history is an error naming `origin`.
    pub fn from_json(s: &str, origin: &Path) -> Result<History> {
        if s.trim().is_empty() {
            return Ok(History::default());
        }
        serde_json::from_str(s)
            .map_err(|e| Error::format(origin, format!("metadata 'history': {e}")))
    }

    /// The points (epoch, value) of metric `name`.
    pub fn points(&self, name: &str) -> Vec<(f64, f64)> {
        self.epochs
            .iter()
            .filter_map(|r| r.metric(name).map(|y| (r.epoch as f64, y)))
            .collect()
    }
}

/// One plot of a run's curves: `curve-<name>.png`, a line per metric.
pub struct CurveSpec {
    pub name: &'static str,
    pub title: &'static str,
    pub y_desc: &'static str,
    pub lines: &'static [(&'static str, Color)],
}

/// Writes the plots of `specs` (skipping those with no points) and
/// `curves.csv` with the columns epoch, lr, seconds and `columns` into
/// `dir`; returns the files written.
pub fn save_curves(
    dir: &Path,
    h: &History,
    specs: &[CurveSpec],
    columns: &[&str],
) -> Result<Vec<PathBuf>> {
    let plots: Vec<Plot> = specs
        .iter()
        .map(|s| Plot {
            name: s.name.to_string(),
            title: s.title.to_string(),
            y_desc: s.y_desc.to_string(),
            lines: s
                .lines
                .iter()
                .map(|&(m, color)| Line {
                    points: h.points(m),
                    color,
                })
                .collect(),
        })
        .collect();
    let mut out = save_plots(dir, &plots)?;
    let mut csv = format!("{EPOCH},{LR},{SECONDS}");
    for c in columns {
        csv.push(',');
        csv.push_str(c);
    }
    csv.push('\n');
    for r in &h.epochs {
        csv.push_str(&format!("{},{},{}", r.epoch, r.lr, r.seconds));
        for c in columns {
            csv.push(',');
            if let Some(v) = r.metric(c) {
                csv.push_str(&v.to_string());
            }
        }
        csv.push('\n');
    }
    let p = dir.join("curves.csv");
    std::fs::write(&p, csv).map_err(|e| Error::io(&p, e))?;
    out.push(p);
    Ok(out)
}
