//! Annealed importance sampling (Neal 2001; Salakhutdinov & Murray, "On
//! the quantitative analysis of deep belief networks", ICML 2008), forward
//! and reverse, for any model that can anneal a batch of runs between a
//! tractable base model (β = 0) and itself (β = 1).
//!
//! **Forward** AIS starts `M` runs from the base model and anneals to β = 1;
//! `Ẑ_B = Z_A · mean(w)` is unbiased, so `log Ẑ_B` is a stochastic *lower*
//! bound on `log Z_B` (Jensen) and the log-likelihood it implies tends to be
//! too *high*.
//!
//! **Reverse** AIS (Burda, Grosse & Salakhutdinov, "Accurate and
//! conservative estimates of MRF log-likelihood using reverse annealing",
//! AISTATS 2015; Grosse et al. 2015 on bidirectional sandwiching) starts from
//! samples of the target and anneals toward the base: `mean(w_rev)` is an
//! unbiased estimate of `Z_A / Z_B`, so `log Ẑ_B = log Z_A - log mean(w_rev)`
//! is a stochastic *upper* bound on `log Z_B`, and the log-likelihood it
//! implies a conservative (too low) one. The bound holds only when the
//! starting points are exact samples; persistent chains or long Gibbs chains
//! from the data are the usual approximation, and a poorly mixed chain that
//! misses modes makes the estimate too low again. Run both: the truth is
//! bracketed between them when both are accurate, and their gap says how
//! far to trust either.
//!
//! A model provides its [`Path`] (the device state of all runs and one step
//! between two temperatures); [`anneal`] walks the schedule in either
//! direction and [`AisEstimate`] turns the log weights into the estimate and
//! its spread. RBMs: [`crate::estimate::rbm::ais`].

use super::log_mean_exp;
use crate::error::{Error, Result};
use crate::rng::RngStream;

/// Steps between flushes of a path's short-range log-weight accumulator:
/// adding 14,500 small terms in f32 into one large sum would round away
/// the small ones, so a path sums a few dozen at a time, then folds them in.
pub const FLUSH_EVERY: usize = 64;

/// The inverse temperatures `0 = β_0 <= β_1 <= ... <= β_K = 1`.
///
/// ```
/// use ebmkit::estimate::ais::Schedule;
/// assert_eq!(Schedule::standard().len(), 14_500);
/// assert_eq!(Schedule::linear(3).unwrap().betas(), &[0.0, 0.5, 1.0]);
/// assert!(Schedule::from_betas(vec![0.0, 0.7, 0.5, 1.0]).is_err());
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Schedule {
    betas: Vec<f64>,
}

/// `n` points from `a` to `b` inclusive, as numpy's `linspace`.
fn linspace(a: f64, b: f64, n: usize) -> impl Iterator<Item = f64> {
    (0..n).map(move |i| {
        if n == 1 {
            a
        } else if i == n - 1 {
            b
        } else {
            a + (b - a) * i as f64 / (n - 1) as f64
        }
    })
}

impl Schedule {
    /// The 14,500 temperatures of Salakhutdinov & Murray (2008): steps of
    /// 1e-3 on [0, 0.5), 1e-4 on [0.5, 0.9) and 10,000 points on [0.9, 1]
    /// (as `torch_rbm.py` builds them).
    pub fn standard() -> Schedule {
        Schedule::three_stage(500, 4000, 10000).expect("the standard counts are valid")
    }

    /// The standard shape with other counts: `n1` points on [0, 0.5), `n2` on
    /// [0.5, 0.9), `n3` on [0.9, 1] (`n1 + n2 + n3` temperatures in all).
    /// Scaling the three counts together gives shorter schedules for tests.
    pub fn three_stage(n1: usize, n2: usize, n3: usize) -> Result<Schedule> {
        if n1 == 0 || n2 == 0 || n3 < 2 {
            return Err(Error::value(
                "AIS schedule",
                format!("three_stage({n1}, {n2}, {n3}) needs n1, n2 >= 1 and n3 >= 2"),
            ));
        }
        let mut betas = Vec::with_capacity(n1 + n2 + n3);
        betas.extend(linspace(0.0, 0.5, n1 + 1).take(n1));
        betas.extend(linspace(0.5, 0.9, n2 + 1).take(n2));
        betas.extend(linspace(0.9, 1.0, n3));
        Schedule::from_betas(betas)
    }

    /// `n` evenly spaced temperatures from 0 to 1.
    pub fn linear(n: usize) -> Result<Schedule> {
        Schedule::from_betas(linspace(0.0, 1.0, n).collect())
    }

    /// Any schedule: at least two temperatures, starting at exactly 0,
    /// ending at exactly 1, never decreasing.
    pub fn from_betas(betas: Vec<f64>) -> Result<Schedule> {
        let bad = |msg: String| Err(Error::value("AIS schedule", msg));
        if betas.len() < 2 {
            return bad(format!(
                "needs at least 2 temperatures, got {}",
                betas.len()
            ));
        }
        if betas[0] != 0.0 || betas[betas.len() - 1] != 1.0 {
            return bad(format!(
                "must start at 0 and end at 1, got {} ... {}",
                betas[0],
                betas[betas.len() - 1]
            ));
        }
        if let Some(i) =
            (1..betas.len()).find(|&i| !betas[i].is_finite() || betas[i] < betas[i - 1])
        {
            return bad(format!(
                "must be finite and non-decreasing; beta[{}] = {} follows beta[{}] = {}",
                i,
                betas[i],
                i - 1,
                betas[i - 1]
            ));
        }
        Ok(Schedule { betas })
    }

    pub fn betas(&self) -> &[f64] {
        &self.betas
    }

    /// Number of temperatures (transitions are one fewer).
    pub fn len(&self) -> usize {
        self.betas.len()
    }

    pub fn is_empty(&self) -> bool {
        self.betas.is_empty()
    }
}

impl Default for Schedule {
    fn default() -> Self {
        Schedule::standard()
    }
}

/// Which way the chain was annealed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Base → target: a stochastic lower bound on log Z.
    Forward,
    /// Target → base: a stochastic upper bound on log Z (given exact starts).
    Reverse,
}

/// The result of one AIS estimate, in nats.
#[derive(Clone, Debug)]
pub struct AisEstimate {
    pub direction: Direction,
    /// The estimate of log Z_B.
    pub log_z: f64,
    /// `log(Ẑ - 3σ̂)` and `log(Ẑ + 3σ̂)` (Salakhutdinov & Murray's ±3 standard
    /// deviations of the mean importance weight, mapped to log Z; for reverse
    /// AIS the bounds of `Z_A / Z_B` inverted). The lower end is `-inf`
    /// (forward) or the upper `+inf` (reverse) when 3σ̂ exceeds the mean.
    pub log_z_lower: f64,
    pub log_z_upper: f64,
    /// log Z of the base model.
    pub log_z_base: f64,
    /// Per-run log importance weights (of Z_B/Z_A forward, Z_A/Z_B reverse).
    pub log_weights: Vec<f64>,
    /// Effective sample size `(Σ w)² / Σ w²`, between 1 and the number of runs.
    pub ess: f64,
    /// Temperatures in the schedule.
    pub temperatures: usize,
}

impl AisEstimate {
    pub fn new(
        direction: Direction,
        log_z_base: f64,
        log_weights: Vec<f64>,
        temperatures: usize,
    ) -> AisEstimate {
        let m = log_weights
            .iter()
            .copied()
            .fold(f64::NEG_INFINITY, f64::max);
        let n = log_weights.len() as f64;
        let w: Vec<f64> = log_weights.iter().map(|&l| (l - m).exp()).collect();
        let mean = w.iter().sum::<f64>() / n;
        let var = if w.len() > 1 {
            w.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)
        } else {
            0.0
        };
        let se3 = 3.0 * (var / n).sqrt();
        let ess = w.iter().sum::<f64>().powi(2) / w.iter().map(|x| x * x).sum::<f64>();
        let lme = log_mean_exp(&log_weights);
        let lo = m + (mean - se3).max(0.0).ln();
        let hi = m + (mean + se3).ln();
        let (log_z, log_z_lower, log_z_upper) = match direction {
            Direction::Forward => (log_z_base + lme, log_z_base + lo, log_z_base + hi),
            Direction::Reverse => (log_z_base - lme, log_z_base - hi, log_z_base - lo),
        };
        AisEstimate {
            direction,
            log_z,
            log_z_lower,
            log_z_upper,
            log_z_base,
            log_weights,
            ess,
            temperatures,
        }
    }

    /// Number of AIS runs.
    pub fn runs(&self) -> usize {
        self.log_weights.len()
    }
}

/// The device state of a batch of annealing runs.
pub trait Path {
    /// Adds `log p*_{b1}(x) - log p*_{b0}(x)` to each run's log weight and,
    /// if `transition`, moves each run by a transition that leaves `p_{b1}`
    /// invariant.
    fn step(&mut self, b0: f64, b1: f64, transition: bool, rng: &mut RngStream) -> Result<()>;
    /// Folds the recent log weights into the running totals.
    fn flush(&mut self) -> Result<()>;
    /// The runs' log weights so far (read back from the device).
    fn log_weights(&mut self) -> Result<Vec<f64>>;
}

/// Walks `betas` in the order given (ascending: forward, descending:
/// reverse), one [`Path::step`] per pair of neighbours, and returns the
/// per-run log weights. The transition after the last ratio would be thrown
/// away, so it is skipped.
pub fn anneal(
    path: &mut impl Path,
    betas: impl Iterator<Item = f64> + Clone,
    rng: &mut RngStream,
) -> Result<Vec<f64>> {
    let steps = betas.clone().count().saturating_sub(1);
    let mut prev = None;
    let mut k = 0;
    for b in betas {
        if let Some(b0) = prev {
            k += 1;
            path.step(b0, b, k < steps, rng)?;
            if k % FLUSH_EVERY == 0 {
                path.flush()?;
            }
        }
        prev = Some(b);
    }
    path.flush()?;
    path.log_weights()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_schedule_matches_the_reference() {
        let s = Schedule::standard();
        assert_eq!(s.len(), 14_500);
        let b = s.betas();
        assert_eq!(b[0], 0.0);
        assert!((b[1] - 1e-3).abs() < 1e-15);
        assert!((b[499] - 0.499).abs() < 1e-12);
        assert_eq!(b[500], 0.5);
        assert!((b[501] - 0.5001).abs() < 1e-12);
        assert_eq!(b[4500], 0.9);
        assert_eq!(b[14_499], 1.0);
        assert!(b.windows(2).all(|p| p[1] > p[0]));
    }

    #[test]
    fn bad_schedules_are_refused() {
        assert!(Schedule::from_betas(vec![0.0]).is_err());
        assert!(Schedule::from_betas(vec![0.1, 1.0]).is_err());
        assert!(Schedule::from_betas(vec![0.0, 0.9]).is_err());
        assert!(Schedule::from_betas(vec![0.0, 0.6, 0.5, 1.0]).is_err());
        assert!(Schedule::from_betas(vec![0.0, f64::NAN, 1.0]).is_err());
        assert!(Schedule::three_stage(0, 1, 2).is_err());
        assert_eq!(Schedule::linear(3).unwrap().betas(), &[0.0, 0.5, 1.0]);
    }

    #[test]
    fn spread_and_ess() {
        let e = AisEstimate::new(Direction::Forward, 1.0, vec![0.0; 4], 10);
        assert!((e.log_z - 1.0).abs() < 1e-12);
        assert!((e.ess - 4.0).abs() < 1e-12);
        assert_eq!(e.log_z_lower, e.log_z_upper);
        let e = AisEstimate::new(Direction::Reverse, 1.0, vec![0.0, 2f64.ln()], 10);
        assert!((e.log_z - (1.0 - 1.5f64.ln())).abs() < 1e-12);
        assert!(e.log_z_lower < e.log_z && e.log_z < e.log_z_upper);
        assert!((e.ess - 9.0 / 5.0).abs() < 1e-12);
    }
}
