//! The one data-preparation path that training and evaluation share: fixed
//! binarisations (with the same seeds and stream, so an evaluation sees the
//! bits its training run monitored), row cuts, and the resident training set
//! and monitoring subsets of a run.

use super::{binarize_stochastic, binarize_threshold, Binarize};
use crate::error::{Error, Result};
use crate::host::HostMat;
use crate::rng::RngStream;

/// The stream of every fixed binarisation ("HELD"): monitoring subsets,
/// `binarize = "fixed"` training sets and evaluation sets.
pub const HELDOUT_STREAM: u32 = 0x4845_4c44;

/// `x` binarised once, as `how` says (`Stochastic` and `Fixed` both draw one
/// fixed sample from `seed`; `None` keeps the values).
pub fn fixed(x: &HostMat, how: Binarize, seed: u64) -> Result<HostMat> {
    Ok(match how {
        Binarize::None => x.clone(),
        Binarize::Threshold => binarize_threshold(x, 0.5),
        Binarize::Stochastic | Binarize::Fixed => {
            binarize_stochastic(x, &mut RngStream::new(seed, HELDOUT_STREAM))?
        }
    })
}

/// The first `n` rows of `x` (all of them if it has fewer).
pub fn head(x: &HostMat, n: usize) -> Result<HostMat> {
    if n >= x.rows {
        return Ok(x.clone());
    }
    x.select_rows(&(0..n).collect::<Vec<_>>())
}

/// `n` rows cycling through the rows of `x` (a start for `n` chains):
/// an error naming `what` if `x` has none.
pub fn cycle(x: &HostMat, n: usize, what: &str) -> Result<HostMat> {
    if x.rows == 0 {
        return Err(Error::value(
            what,
            "has no rows to start from (an empty data split?)",
        ));
    }
    x.select_rows(&(0..n).map(|r| r % x.rows).collect::<Vec<_>>())
}

/// What a training run keeps of its data.
pub struct TrainingData {
    /// The training set as uploaded once: intensities when binarised per
    /// batch (`Stochastic`), else with the fixed preprocessing applied.
    pub resident: HostMat,
    /// Whether each presentation of a row draws a fresh binarisation.
    pub stochastic: bool,
    /// The column means of the whole training set as given (raw values,
    /// before any cut or binarisation): what data-driven initial biases use.
    pub raw_means: Vec<f32>,
    /// The epoch-end monitors' training and held-out subsets, fixed.
    pub monitor_train: HostMat,
    pub monitor_heldout: Option<HostMat>,
    /// Per-row targets of supervised training, cut like the rows.
    pub targets: Option<Targets>,
}

/// The targets of [`TrainingData`]'s rows, row for row.
pub struct Targets {
    pub resident: HostMat,
    pub monitor_train: HostMat,
    pub monitor_heldout: Option<HostMat>,
}

impl TrainingData {
    /// The first `n_train` training rows (all if None), preprocessed as
    /// `how` says, and monitoring subsets of `monitor_rows` rows.
    pub fn prepare(
        train: &HostMat,
        heldout: Option<&HostMat>,
        (how, seed): (Binarize, u64),
        n_train: Option<usize>,
        monitor_rows: usize,
    ) -> Result<TrainingData> {
        let used = head(train, n_train.unwrap_or(train.rows))?;
        let stochastic = how == Binarize::Stochastic;
        let resident = match how {
            Binarize::Threshold | Binarize::Fixed => fixed(&used, how, seed)?,
            _ => used,
        };
        let rows = monitor_rows.min(resident.rows);
        let monitor_how = if stochastic {
            Binarize::Stochastic
        } else {
            Binarize::None
        };
        let monitor_train = fixed(&head(&resident, rows)?, monitor_how, seed)?;
        let monitor_heldout = match heldout {
            Some(h) => Some(fixed(&head(h, rows)?, how, seed ^ 1)?),
            None => None,
        };
        Ok(TrainingData {
            raw_means: train.column_means(),
            resident,
            stochastic,
            monitor_train,
            monitor_heldout,
            targets: None,
        })
    }

    /// Attaches targets for the training rows `t` and the held-out rows
    /// `heldout` (row counts must match the sets as given), cut as the rows
    /// were by [`prepare`](Self::prepare) with the same `n_train` and
    /// `monitor_rows`.
    pub fn with_targets(
        mut self,
        (t, heldout): (&HostMat, Option<&HostMat>),
        (train_rows, heldout_rows): (usize, Option<usize>),
        n_train: Option<usize>,
        monitor_rows: usize,
    ) -> Result<TrainingData> {
        let count = |what: &str, got: usize, want: usize| {
            if got != want {
                return Err(Error::shape(
                    "targets",
                    format!("{got} {what} targets for {want} rows"),
                ));
            }
            Ok(())
        };
        count("training", t.rows, train_rows)?;
        let resident = head(t, n_train.unwrap_or(t.rows))?;
        let rows = monitor_rows.min(resident.rows);
        let monitor_heldout = match (heldout, heldout_rows) {
            (Some(h), Some(n)) => {
                count("held-out", h.rows, n)?;
                Some(head(h, rows)?)
            }
            (None, None) => None,
            _ => {
                return Err(Error::value(
                    "targets",
                    "held-out rows and held-out targets come together",
                ))
            }
        };
        self.targets = Some(Targets {
            monitor_train: head(&resident, rows)?,
            resident,
            monitor_heldout,
        });
        Ok(self)
    }
}

/// The rows an evaluation scores, preprocessed as its training run saw them
/// (the held-out split with the monitors' seed).
pub struct EvalData {
    pub test: HostMat,
    pub train: HostMat,
}

impl EvalData {
    /// The first `n` rows of each split (all if None), binarised as `how`
    /// says with the seeds of the training run that used `seed`.
    pub fn prepare(
        train: &HostMat,
        test: &HostMat,
        (how, seed): (Binarize, u64),
        n: Option<usize>,
    ) -> Result<EvalData> {
        let cut = |x: &HostMat| head(x, n.unwrap_or(x.rows));
        Ok(EvalData {
            test: fixed(&cut(test)?, how, seed ^ 1)?,
            train: fixed(&cut(train)?, how, seed)?,
        })
    }
}
