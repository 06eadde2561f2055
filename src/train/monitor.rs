//! What a training run watches at the end of each epoch, on fixed subsets of
//! the training and held-out data (read back: a few numbers per epoch).
//!
//! - reconstruction error: mean over rows of `Σ_i (v_i - E[v_i | E[h | v]])²`;
//! - stochastic pseudo-log-likelihood (binary visible units): per row one
//!   random bit `i` is flipped, `PL ≈ n_v log σ(F(ṽ) - F(v))`;
//! - free-energy gap: mean F on held-out data minus mean F on a training
//!   subset of the same size; it grows when the model overfits
//!   (Hinton, "A practical guide to training RBMs", §6).

use serde::{Deserialize, Serialize};

use crate::backend::{Backend, Binary, Fused, Unary};
use crate::energy::{Bipartite, LayerScratch, Scratch};
use crate::error::Result;
use crate::host::HostMat;
use crate::models::rbm::Rbm;
use crate::rng::RngStream;

/// The monitor's own Philox stream ("MONI"), apart from training's.
pub const MONITOR_STREAM: u32 = 0x4d4f_4e49;

/// One epoch's monitored values.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    /// 1-based: the number of epochs completed.
    pub epoch: u64,
    pub lr: f32,
    pub recon_error: f64,
    /// None unless the visible units are binary.
    pub pseudo_ll: Option<f64>,
    pub fe_train: f64,
    /// None without held-out data.
    pub fe_heldout: Option<f64>,
    pub fe_gap: Option<f64>,
    /// Wall-clock seconds of the epoch's updates (monitors excluded).
    pub seconds: f64,
    /// Parallel tempering: swap acceptance per neighbour pair.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub swap_rates: Vec<f32>,
}

/// The curves of a run.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct History {
    pub epochs: Vec<EpochRecord>,
}

impl History {
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
    /// An empty history if `s` is empty or not a history.
    pub fn from_json(s: &str) -> History {
        serde_json::from_str(s).unwrap_or_default()
    }
}

/// Fixed monitoring subsets and the buffers to evaluate them.
pub struct Monitor<B: Backend> {
    train: B::Mat,
    heldout: Option<B::Mat>,
    flipped: B::Mat,
    mask: HostMat,
    mask_dev: B::Mat,
    ph: B::Mat,
    pv: B::Mat,
    f: B::Mat,
    sh: LayerScratch<B>,
    sv: LayerScratch<B>,
    s: Scratch<B>,
    rows: usize,
}

impl<B: Fused> Monitor<B> {
    /// `train` and `heldout` are preprocessed subsets; `heldout` is cut or
    /// repeated to the row count of `train`.
    pub fn new(
        be: &B,
        train: &HostMat,
        heldout: Option<&HostMat>,
        n_hidden: usize,
    ) -> Result<Self> {
        let rows = train.rows;
        let nv = train.cols;
        let heldout = match heldout {
            Some(h) if h.rows > 0 => {
                Some(be.upload(&HostMat::from_fn(rows, nv, |r, c| h.get(r % h.rows, c)))?)
            }
            _ => None,
        };
        Ok(Monitor {
            train: be.upload(train)?,
            heldout,
            flipped: be.zeros(rows, nv)?,
            mask: HostMat::zeros(rows, nv),
            mask_dev: be.zeros(rows, nv)?,
            ph: be.zeros(rows, n_hidden)?,
            pv: be.zeros(rows, nv)?,
            f: be.zeros(rows, 1)?,
            sh: LayerScratch::new(be, rows, n_hidden)?,
            sv: LayerScratch::new(be, rows, nv)?,
            s: Scratch::new(be, rows, nv, n_hidden)?,
            rows,
        })
    }

    /// Fills the monitored fields of `rec` (epoch, lr and seconds are the
    /// caller's). `epoch` seeds the pseudo-likelihood's choice of bits.
    pub fn evaluate(
        &mut self,
        be: &B,
        rbm: &Rbm<B>,
        epoch: u64,
        rec: &mut EpochRecord,
    ) -> Result<()> {
        let mut rng = RngStream {
            seed: 0x6d6f6e,
            stream: MONITOR_STREAM,
            offset: epoch * 4,
        };
        let n = self.rows as f64;
        // Reconstruction through the means.
        rbm.hidden_given_visible(
            be,
            &self.train,
            None,
            &mut self.ph,
            None,
            &mut self.sh,
            &mut rng,
        )?;
        rbm.visible_given_hidden(
            be,
            &self.ph,
            None,
            &mut self.pv,
            None,
            &mut self.sv,
            &mut rng,
        )?;
        be.binary_inplace(Binary::Sub, &mut self.pv, &self.train)?;
        be.unary_inplace(Unary::Square, &mut self.pv)?;
        rec.recon_error = be.sum(&self.pv)? as f64 / n;

        rbm.free_energy(be, &self.train, &mut self.s, &mut self.f)?;
        let f_train = be.download(&self.f)?;
        rec.fe_train = f_train.data.iter().map(|&x| x as f64).sum::<f64>() / n;
        rec.fe_heldout = match &self.heldout {
            Some(h) => {
                rbm.free_energy(be, h, &mut self.s, &mut self.f)?;
                Some(be.sum(&self.f)? as f64 / n)
            }
            None => None,
        };
        rec.fe_gap = rec.fe_heldout.map(|h| h - rec.fe_train);

        rec.pseudo_ll = if rbm.visible.is_binary() {
            // ṽ = v + m (1 - 2v), m one-hot per row.
            let nv = self.mask.cols;
            let d = rng.next_draw();
            self.mask.data.iter_mut().for_each(|x| *x = 0.0);
            for r in 0..self.rows {
                let i = ((d.word(r) as u64 * nv as u64) >> 32) as usize;
                self.mask.data[r * nv + i] = 1.0;
            }
            be.write(&mut self.mask_dev, &self.mask)?;
            be.copy(&self.train, &mut self.flipped)?;
            be.affine(&mut self.flipped, -2.0, 1.0)?;
            be.binary_inplace(Binary::Mul, &mut self.flipped, &self.mask_dev)?;
            be.binary_inplace(Binary::Add, &mut self.flipped, &self.train)?;
            rbm.free_energy(be, &self.flipped, &mut self.s, &mut self.f)?;
            let f_flip = be.download(&self.f)?;
            // log σ(F(ṽ) - F(v)) = -softplus(F(v) - F(ṽ))
            let pl: f64 = f_train
                .data
                .iter()
                .zip(&f_flip.data)
                .map(|(a, b)| -crate::units::softplus64(*a as f64 - *b as f64))
                .sum();
            Some(nv as f64 * pl / n)
        } else {
            None
        };
        Ok(())
    }
}
