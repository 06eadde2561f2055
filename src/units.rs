//! Unit types: what a layer of units does given its total input.
//!
//! Every unit type is an exponential-family variable `u` coupled linearly to
//! the other layer. With total input `x = β (bias + W·other)` (β an inverse
//! temperature, 1 outside tempering) the conditional is
//! `p(u | x) ∝ exp(-q(u) + u x)` where `q` is the unit's own (not tempered)
//! base energy:
//!
//! | unit | q(u) | conditional mean | log-partition A(x) = log ∫ exp(-q(u) + u x) du |
//! | --- | --- | --- | --- |
//! | Bernoulli, u ∈ {0,1} | 0 | sigmoid(x) | softplus(x) |
//! | Gaussian, unit variance | u²/2 | x | x²/2 + ½ log 2π |
//! | noisy ReLU (Nair & Hinton 2010) | — | max(0, x) (approx.) | Σ_{i≥1} softplus(x - i + ½) |
//!
//! A noisy ReLU stands for infinitely many binary copies of one unit with
//! biases offset by -½, -1½, ...: its log-partition is that convergent
//! series, summed to f32 precision ([`crate::backend::nrelu_log_partition`]),
//! so free energies and likelihoods are those of the infinite-copies model.
//! Its exact mean Σ sigmoid(x - i + ½) and its sampler are replaced by Nair
//! & Hinton's approximations, max(0, x) and max(0, x + N(0, sigmoid(x))).
//!
//! The free energy of a layer summed out is `-Σ A(x)`; the gradient of the
//! log-partition with respect to `x` is the conditional mean, which is why
//! every learning rule below only needs means.
//!
//! Tempering scales only the linear terms (biases and weights), never `q`, so
//! Gaussian units keep unit variance at every temperature (Cho et al. 2011)
//! and swap acceptances need only the linear part of the energy.
//!
//! Softmax units (`"softmax:K"`) split the layer into consecutive groups of
//! `K` units of which exactly one is on: p(u = e_k | x) = exp(x_k) / Σ_group
//! exp(x), and the group's log-partition is log Σ_group exp(x) (spread as
//! 1/K of it over each unit of the group, so row sums stay correct). The
//! group sums are GEMMs with block matrices held in [`GroupOps`]; the
//! categorical draw is stick-breaking: unit k of a group is proposed with
//! probability p_k / Σ_{j≥k} p_j and the first proposal wins, so one
//! Bernoulli pass and two GEMMs draw every group at once, on either backend.
//! Exponentials are taken after subtracting the group mean (not the max:
//! there is no row-max kernel), so inputs whose spread within a group
//! exceeds ~80 would overflow.
//!
//! The table is for unit variance. A Gaussian *visible* layer may carry a
//! variance per unit, fixed or learned; the RBM scales its inputs and
//! energies by it (see [`crate::models::rbm`]).

use crate::backend::{Backend, Binary, Matrix, Unary};
use crate::error::{Error, Result};
use crate::rng::RngStream;

/// ½ log 2π.
pub const HALF_LN_2PI: f32 = 0.918_938_5;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UnitKind {
    /// Binary units in {0, 1}.
    Bernoulli,
    /// Real-valued units with unit variance (data should be standardised).
    Gaussian,
    /// Noisy rectified linear units: sample max(0, x + N(0, sigmoid(x))).
    Relu,
    /// One-hot groups of `group` consecutive units.
    Softmax { group: u32 },
}

/// Block matrices for softmax groups of size `k` in a layer of `n` units:
/// `same[i, j] = 1` if i and j share a group, `tail[i, j] = 1` if they share
/// a group and i ≥ j, `before[i, j] = 1` if they share a group and i < j.
pub struct GroupOps<B: Backend> {
    pub k: usize,
    pub same: B::Mat,
    pub tail: B::Mat,
    pub before: B::Mat,
}

impl<B: Backend> GroupOps<B> {
    pub fn new(be: &B, n: usize, k: usize) -> Result<Self> {
        if k < 2 || !n.is_multiple_of(k) {
            return Err(Error::value(
                "softmax units",
                format!("a layer of {n} units cannot be split into groups of {k} (need k >= 2 dividing {n})"),
            ));
        }
        let m = |f: &dyn Fn(usize, usize) -> bool| {
            crate::host::HostMat::from_fn(n, n, |i, j| (i / k == j / k && f(i, j)) as u8 as f32)
        };
        Ok(GroupOps {
            k,
            same: be.upload(&m(&|_, _| true))?,
            tail: be.upload(&m(&|i, j| i >= j))?,
            before: be.upload(&m(&|i, j| i < j))?,
        })
    }

    /// `mean = softmax per group of x`; `tmp` has the shape of x.
    pub fn mean(&self, be: &B, x: &B::Mat, mean: &mut B::Mat, tmp: &mut B::Mat) -> Result<()> {
        // e = exp(x - group mean), mean = e / Σ_group e
        be.gemm(1.0 / self.k as f32, x.n(), self.same.n(), 0.0, tmp)?;
        be.copy(x, mean)?;
        be.binary_inplace(Binary::Sub, mean, tmp)?;
        be.unary_inplace(Unary::Exp, mean)?;
        be.gemm(1.0, mean.n(), self.same.n(), 0.0, tmp)?;
        be.binary_inplace(Binary::Div, mean, tmp)
    }

    /// One-hot samples per group from the group probabilities `mean`.
    pub fn sample(
        &self,
        be: &B,
        mean: &B::Mat,
        out: &mut B::Mat,
        aux: &mut B::Mat,
        tmp: &mut B::Mat,
        rng: &mut RngStream,
    ) -> Result<()> {
        // Propose unit k with p_k / Σ_{j ≥ k} p_j (the last of a group: 1).
        be.gemm(1.0, mean.n(), self.tail.n(), 0.0, tmp)?;
        be.binary(Binary::Div, mean, tmp, aux)?;
        be.bernoulli(aux, out, rng)?;
        // Keep the first proposal of each group: out_k *= [no proposal before k].
        be.gemm(1.0, out.n(), self.before.n(), 0.0, tmp)?;
        be.affine(tmp, -1.0, 1.0)?;
        be.unary_inplace(Unary::Relu, tmp)?;
        be.binary_inplace(Binary::Mul, out, tmp)
    }

    /// `out[j] = log Σ_group(j) exp(x) / k`, so a row sum gives Σ over groups.
    pub fn log_partition(
        &self,
        be: &B,
        x: &B::Mat,
        out: &mut B::Mat,
        aux: &mut B::Mat,
    ) -> Result<()> {
        let inv_k = 1.0 / self.k as f32;
        be.gemm(inv_k, x.n(), self.same.n(), 0.0, aux)?; // m
        be.copy(x, out)?;
        be.binary_inplace(Binary::Sub, out, aux)?;
        be.unary_inplace(Unary::Exp, out)?;
        be.gemm(1.0, out.n(), self.same.n(), 0.0, aux)?; // Σ exp(x - m)
        be.unary_inplace(Unary::Log, aux)?;
        be.copy(aux, out)?;
        be.gemm(inv_k, x.n(), self.same.n(), 1.0, out)?; // + m
        be.affine(out, inv_k, 0.0)
    }
}

impl UnitKind {
    /// The name recipes and checkpoints use (`"softmax:K"` for softmax).
    pub fn name(self) -> String {
        match self {
            UnitKind::Bernoulli => "bernoulli".into(),
            UnitKind::Gaussian => "gaussian".into(),
            UnitKind::Relu => "relu".into(),
            UnitKind::Softmax { group } => format!("softmax:{group}"),
        }
    }

    /// The group size of softmax units.
    pub fn group(self) -> Option<usize> {
        match self {
            UnitKind::Softmax { group } => Some(group as usize),
            _ => None,
        }
    }

    /// Parses a unit name; `what` names the key in errors ("model.visible").
    pub fn parse(s: &str, what: &str) -> Result<UnitKind> {
        match s.to_ascii_lowercase().as_str() {
            "bernoulli" | "binary" => Ok(UnitKind::Bernoulli),
            "gaussian" => Ok(UnitKind::Gaussian),
            "relu" | "nrelu" => Ok(UnitKind::Relu),
            "softmax" => Err(Error::value(
                what,
                "softmax units need a group size: \"softmax:K\" (K >= 2 units per one-hot group)",
            )),
            other => match other.strip_prefix("softmax:").map(|k| k.parse::<u32>()) {
                Some(Ok(group)) if group >= 2 => Ok(UnitKind::Softmax { group }),
                Some(_) => Err(Error::value(
                    what,
                    format!("'{other}': the softmax group size must be an integer >= 2"),
                )),
                None => Err(Error::value(
                    what,
                    format!("'{other}' is not one of bernoulli, gaussian, relu, softmax:K"),
                )),
            },
        }
    }

    /// Checks that `x` holds values these units can take: finite everywhere,
    /// and within [0, 1] (intensities or bits) for Bernoulli and softmax
    /// units. `what` names the data set in errors.
    pub fn check_values(self, x: &crate::host::HostMat, what: &str) -> Result<()> {
        let unit_range = matches!(self, UnitKind::Bernoulli | UnitKind::Softmax { .. });
        for (i, &v) in x.data.iter().enumerate() {
            let (r, c) = (i / x.cols.max(1), i % x.cols.max(1));
            if !v.is_finite() {
                return Err(Error::value(
                    what,
                    format!("value {v} at row {r}, column {c} is not finite"),
                ));
            }
            if unit_range && !(0.0..=1.0).contains(&v) {
                return Err(Error::value(
                    what,
                    format!(
                        "value {v} at row {r}, column {c} is outside [0, 1] ({self} visible units)"
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Whether the units are binary (the fused sigmoid + Bernoulli path).
    pub fn is_binary(self) -> bool {
        self == UnitKind::Bernoulli
    }

    /// Whether `q(u)` is non-zero (else the energy is linear in the units).
    pub fn has_base_energy(self) -> bool {
        self == UnitKind::Gaussian
    }

    /// `mean = E[u | x]` from the total input `x`.
    pub fn mean<B: Backend>(self, be: &B, x: &B::Mat, mean: &mut B::Mat) -> Result<()> {
        match self {
            UnitKind::Bernoulli => be.unary(Unary::Sigmoid, x, mean),
            UnitKind::Gaussian => be.copy(x, mean),
            UnitKind::Relu => be.unary(Unary::Relu, x, mean),
            UnitKind::Softmax { .. } => Err(Error::value(
                "softmax units",
                "need their GroupOps (use Rbm, which holds them)",
            )),
        }
    }

    /// A sample of the units given their total input `x` and conditional
    /// mean `mean` (as computed by [`mean`](Self::mean)). `scratch` has the
    /// shape of `x`; only ReLU units use it.
    pub fn sample<B: Backend>(
        self,
        be: &B,
        x: &B::Mat,
        mean: &B::Mat,
        out: &mut B::Mat,
        scratch: &mut B::Mat,
        rng: &mut RngStream,
    ) -> Result<()> {
        match self {
            UnitKind::Bernoulli => be.bernoulli(mean, out, rng),
            UnitKind::Gaussian => be.gaussian(mean, 1.0, out, rng),
            UnitKind::Relu => {
                // out = max(0, x + sqrt(sigmoid(x)) z), z ~ N(0, 1)
                be.unary(Unary::Sigmoid, x, scratch)?;
                be.unary_inplace(Unary::Sqrt, scratch)?;
                be.gaussian(x, 1.0, out, rng)?; // x + z
                be.binary_inplace(Binary::Sub, out, x)?; // z
                be.binary_inplace(Binary::Mul, out, scratch)?; // s z
                be.binary_inplace(Binary::Add, out, x)?; // x + s z
                be.unary_inplace(Unary::Relu, out)
            }
            UnitKind::Softmax { .. } => Err(Error::value(
                "softmax units",
                "need their GroupOps (use Rbm, which holds them)",
            )),
        }
    }

    /// `out[r, j] = A(x[r, j])`, the per-unit log-partition (see the module
    /// table).
    pub fn log_partition<B: Backend>(self, be: &B, x: &B::Mat, out: &mut B::Mat) -> Result<()> {
        match self {
            UnitKind::Bernoulli => be.unary(Unary::Softplus, x, out),
            UnitKind::Gaussian => {
                be.unary(Unary::Square, x, out)?;
                be.affine(out, 0.5, HALF_LN_2PI)
            }
            UnitKind::Relu => be.unary(Unary::NreluLogPartition, x, out),
            UnitKind::Softmax { .. } => Err(Error::value(
                "softmax units",
                "need their GroupOps (use Rbm, which holds them)",
            )),
        }
    }

    /// `out[r, j] = q(u[r, j])`, the unit's own base energy (zero except for
    /// Gaussian units).
    pub fn base_energy<B: Backend>(self, be: &B, u: &B::Mat, out: &mut B::Mat) -> Result<()> {
        match self {
            UnitKind::Gaussian => {
                be.unary(Unary::Square, u, out)?;
                be.affine(out, 0.5, 0.0)
            }
            _ => be.fill(out, 0.0),
        }
    }

    /// Host reference of `A(x)` (tests, exact enumeration).
    pub fn log_partition_host(self, x: f64) -> f64 {
        match self {
            UnitKind::Bernoulli => softplus64(x),
            UnitKind::Gaussian => 0.5 * x * x + HALF_LN_2PI as f64,
            // Summed directly until the terms vanish in f64.
            UnitKind::Relu => (1..)
                .map(|i| softplus64(x - i as f64 + 0.5))
                .take_while(|&t| t > 1e-18)
                .sum(),
            // Per group, not per unit: see `log_partition_group_host`.
            UnitKind::Softmax { .. } => f64::NAN,
        }
    }

    /// Host reference: Σ over the layer of the log-partition of each unit
    /// (softmax: of each group) for total inputs `x`.
    pub fn log_partition_layer_host(self, x: &[f64]) -> f64 {
        match self {
            UnitKind::Softmax { group } => x
                .chunks(group as usize)
                .map(|g| {
                    let m = g.iter().cloned().fold(f64::MIN, f64::max);
                    m + g.iter().map(|v| (v - m).exp()).sum::<f64>().ln()
                })
                .sum(),
            k => x.iter().map(|&v| k.log_partition_host(v)).sum(),
        }
    }

    /// Host reference of the layer's conditional means.
    pub fn mean_layer_host(self, x: &[f64]) -> Vec<f64> {
        match self {
            UnitKind::Softmax { group } => x
                .chunks(group as usize)
                .flat_map(|g| {
                    let m = g.iter().cloned().fold(f64::MIN, f64::max);
                    let z: f64 = g.iter().map(|v| (v - m).exp()).sum();
                    g.iter().map(move |v| (v - m).exp() / z).collect::<Vec<_>>()
                })
                .collect(),
            k => x.iter().map(|&v| k.mean_host(v)).collect(),
        }
    }

    /// Host reference of the conditional mean.
    pub fn mean_host(self, x: f64) -> f64 {
        match self {
            UnitKind::Bernoulli => 1.0 / (1.0 + (-x).exp()),
            UnitKind::Gaussian => x,
            UnitKind::Relu => x.max(0.0),
            UnitKind::Softmax { .. } => f64::NAN,
        }
    }
}

impl std::fmt::Display for UnitKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name())
    }
}

/// `out = mean + sd ⊙ ε`, ε ~ N(0, 1): Gaussian units with a standard
/// deviation per unit (`sd` 1 x cols), as drawn by the RBM's conditional and
/// by AIS. One Gaussian draw, like [`Backend::gaussian`].
pub fn gaussian_per_unit<B: Backend>(
    be: &B,
    mean: &B::Mat,
    sd: &B::Mat,
    out: &mut B::Mat,
    rng: &mut RngStream,
) -> Result<()> {
    be.gaussian(mean, 1.0, out, rng)?;
    be.binary_inplace(Binary::Sub, out, mean)?;
    be.mul_row_vec(out, sd)?;
    be.binary_inplace(Binary::Add, out, mean)
}

/// log(1 + e^x) in f64 without overflow.
pub fn softplus64(x: f64) -> f64 {
    x.max(0.0) + (-x.abs()).exp().ln_1p()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::cpu::Cpu;
    use crate::host::HostMat;

    #[test]
    fn log_partition_matches_host_reference() {
        let be = Cpu::new();
        let x = HostMat::from_fn(3, 7, |r, c| (r as f32 - 1.0) * 2.0 + c as f32 * 0.7 - 2.0);
        for kind in [UnitKind::Bernoulli, UnitKind::Gaussian, UnitKind::Relu] {
            let mut out = HostMat::zeros(3, 7);
            kind.log_partition(&be, &x, &mut out).unwrap();
            for (o, xi) in out.data.iter().zip(&x.data) {
                let want = kind.log_partition_host(*xi as f64);
                assert!(
                    (*o as f64 - want).abs() < 1e-4 * (1.0 + want.abs()),
                    "{kind} {xi}"
                );
            }
        }
    }

    #[test]
    fn nrelu_log_partition_sums_the_whole_series() {
        use crate::backend::nrelu_log_partition;
        for x in [
            -30.0f32, -3.0, -0.5, 0.0, 0.49, 0.5, 0.51, 1.0, 7.3, 20.0, 25.5, 60.0,
        ] {
            let want = UnitKind::Relu.log_partition_host(x as f64);
            let got = nrelu_log_partition(x) as f64;
            assert!(
                (got - want).abs() <= 2e-6 * (1.0 + want.abs()),
                "x = {x}: {got} vs {want}"
            );
        }
        // Far above the kink the series grows like x²/2 (at x = 60: 1800 plus
        // 2 Σ_k log1p(e^-(k + ½)) ≈ 1.603); 20 fixed terms would stop near 20 x.
        let extra = UnitKind::Relu.log_partition_host(60.0) - 1800.0;
        assert!((extra - 1.603).abs() < 1e-3, "{extra}");
        // Its derivative is Σ sigmoid(x - i + ½), close to max(0, x).
        let h = 1e-4;
        for x in [-2.0f64, 0.3, 4.0] {
            let d = (UnitKind::Relu.log_partition_host(x + h)
                - UnitKind::Relu.log_partition_host(x - h))
                / (2.0 * h);
            let want: f64 = (1..200)
                .map(|i| 1.0 / (1.0 + (i as f64 - 0.5 - x).exp()))
                .sum();
            assert!((d - want).abs() < 1e-6, "x = {x}: {d} vs {want}");
        }
    }

    #[test]
    fn log_partition_derivative_is_mean() {
        for x in [-3.0, -0.2, 0.0, 1.5] {
            for kind in [UnitKind::Bernoulli, UnitKind::Gaussian] {
                let h = 1e-5;
                let d =
                    (kind.log_partition_host(x + h) - kind.log_partition_host(x - h)) / (2.0 * h);
                assert!((d - kind.mean_host(x)).abs() < 1e-6, "{kind} {x}");
            }
        }
    }

    #[test]
    fn relu_samples_are_rectified_noisy() {
        let be = Cpu::new();
        let n = 20000;
        let x = HostMat::from_fn(1, n, |_, _| 1.0);
        let mut mean = HostMat::zeros(1, n);
        let mut out = HostMat::zeros(1, n);
        let mut s = HostMat::zeros(1, n);
        let mut rng = RngStream::new(3, 0);
        UnitKind::Relu.mean(&be, &x, &mut mean).unwrap();
        UnitKind::Relu
            .sample(&be, &x, &mean, &mut out, &mut s, &mut rng)
            .unwrap();
        assert!(out.data.iter().all(|&v| v >= 0.0));
        // x = 1: noise variance sigmoid(1) = 0.731; rectification trims a little.
        let m: f64 = out.data.iter().map(|&v| v as f64).sum::<f64>() / n as f64;
        let var: f64 = out
            .data
            .iter()
            .map(|&v| (v as f64 - m).powi(2))
            .sum::<f64>()
            / n as f64;
        assert!((m - 1.03).abs() < 0.05, "mean {m}");
        assert!((var - 0.64).abs() < 0.1, "var {var}");
    }

    #[test]
    fn unit_names_parse_and_errors_name_the_key() {
        let e = UnitKind::parse("softmax", "model.hidden").unwrap_err();
        assert!(e.to_string().contains("model.hidden"));
        assert!(UnitKind::parse("softmax:1", "model.hidden").is_err());
        let k = UnitKind::parse("softmax:10", "model.hidden").unwrap();
        assert_eq!(k, UnitKind::Softmax { group: 10 });
        assert_eq!(UnitKind::parse(&k.name(), "x").unwrap(), k);
        assert!(UnitKind::parse("nope", "model.visible")
            .unwrap_err()
            .to_string()
            .contains("nope"));
    }
}
