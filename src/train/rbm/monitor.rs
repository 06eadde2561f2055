//! What an RBM training run watches at the end of each epoch, on fixed
//! subsets of the training and held-out data (read back: a few numbers per
//! epoch), recorded under these names:
//!
//! - `recon_error`: mean over rows of `Σ_i (v_i - E[v_i | E[h | v]])²`;
//! - `pseudo_ll` (binary visible units): the stochastic pseudo-log-likelihood
//!   of [`crate::estimate::pseudo_log_likelihood`] on the training subset;
//! - `fe_train`, `fe_heldout` and `fe_gap`: mean free energies of the two
//!   subsets and their difference (held-out minus train), which grows when
//!   the model overfits (Hinton, "A practical guide to training RBMs", §6).

use crate::backend::{Binary, Fused, Unary};
use crate::energy::{Bipartite, FreeEnergy, LayerScratch, Scratch};
use crate::error::Result;
use crate::estimate::pseudo_log_likelihood;
use crate::host::HostMat;
use crate::models::rbm::Rbm;
use crate::rng::RngStream;
use crate::train::EpochRecord;

/// The monitor's own Philox stream ("MONI"), apart from training's.
pub const MONITOR_STREAM: u32 = 0x4d4f_4e49;

/// Fixed monitoring subsets and the buffers to evaluate them.
pub struct Monitor<B: Fused> {
    train: B::Mat,
    heldout: Option<B::Mat>,
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
            ph: be.zeros(rows, n_hidden)?,
            pv: be.zeros(rows, nv)?,
            f: be.zeros(rows, 1)?,
            sh: LayerScratch::new(be, rows, n_hidden)?,
            sv: LayerScratch::new(be, rows, nv)?,
            s: Scratch::new(be, rows, nv, n_hidden)?,
            rows,
        })
    }

    /// Fills the monitored values of `rec`; its epoch seeds the
    /// pseudo-likelihood's choice of bits.
    pub fn evaluate(&mut self, be: &B, rbm: &Rbm<B>, rec: &mut EpochRecord) -> Result<()> {
        let mut rng = RngStream {
            seed: 0x6d6f6e,
            stream: MONITOR_STREAM,
            offset: rec.epoch * 4,
        };
        let n = self.rows as f64;
        // Reconstruction through the means.
        rbm.hidden_given_visible(be, &self.train, None, &mut self.ph, None, &mut self.sh)?;
        rbm.visible_given_hidden(be, &self.ph, None, &mut self.pv, None, &mut self.sv)?;
        be.binary_inplace(Binary::Sub, &mut self.pv, &self.train)?;
        be.unary_inplace(Unary::Square, &mut self.pv)?;
        rec.set("recon_error", Some(be.sum(&self.pv)? as f64 / n));

        rbm.free_energy(be, &self.train, &mut self.s, &mut self.f)?;
        let f_train = be.download(&self.f)?;
        let fe_train = f_train.data.iter().map(|&x| x as f64).sum::<f64>() / n;
        rec.set("fe_train", Some(fe_train));
        let fe_heldout = match &self.heldout {
            Some(h) => {
                rbm.free_energy(be, h, &mut self.s, &mut self.f)?;
                Some(be.sum(&self.f)? as f64 / n)
            }
            None => None,
        };
        rec.set("fe_heldout", fe_heldout);
        rec.set("fe_gap", fe_heldout.map(|h| h - fe_train));
        if rbm.visible.is_binary() {
            let pl = pseudo_log_likelihood(be, rbm, &self.train, &mut rng)?;
            rec.set("pseudo_ll", Some(pl));
        }
        Ok(())
    }
}
