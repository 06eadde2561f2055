//! Parallel tempering for RBMs (Desjardins, Courville, Bengio, Vincent and
//! Delalleau, AISTATS 2010).
//!
//! `T` groups of `n` chains run at inverse temperatures
//! `1 = β_0 > β_1 > ... > β_{T-1} ≥ 0`, where `p_β(v, h) ∝ exp(-q_v - q_h - β E_lin)`
//! (see [`crate::energy`]). Each step is a round of swaps between
//! neighbouring temperatures, alternating the pairs (0,1),(2,3),... and
//! (1,2),(3,4),..., then a block Gibbs sweep of every chain at its own
//! temperature. Chain `c` at temperature `t` swaps its state with chain `c`
//! at `t + 1` with the Metropolis probability
//! `min(1, exp((β_t - β_{t+1}) (E_lin(x_t) - E_lin(x_{t+1}))))`.
//!
//! All temperatures are stacked as row blocks of one matrix (block `t` =
//! rows `t n .. (t+1) n`), so a sweep is one GEMM per layer; the swap is a
//! row gather of the partner states, an energy difference, one Bernoulli
//! draw per pair and a masked blend. Nothing is read back.

use crate::backend::{Backend, Binary, Sample, Unary};
use crate::energy::{Bipartite, LayerScratch, Scratch};
use crate::error::{Error, Result};
use crate::host::HostMat;
use crate::rng::RngStream;

pub struct Tempering<B: Backend> {
    pub betas: Vec<f32>,
    /// Chains per temperature.
    pub n: usize,
    /// Stacked states and conditional means, (T n) x width.
    pub v: B::Mat,
    pub h: B::Mat,
    pub pv: B::Mat,
    pub ph: B::Mat,
    /// Each row's inverse temperature, (T n) x 1.
    beta: B::Mat,
    sv: LayerScratch<B>,
    sh: LayerScratch<B>,
    s: Scratch<B>,
    // Per phase: partner row of each row, the row whose draw decides the
    // pair, β_row - β_partner, and the rows that count acceptances.
    partner: [Vec<u32>; 2],
    lower: [Vec<u32>; 2],
    dbeta: [B::Mat; 2],
    count_mask: [B::Mat; 2],
    phase: usize,
    e: B::Mat,
    e_p: B::Mat,
    logr: B::Mat,
    accept: B::Mat,
    accept_pair: B::Mat,
    accepted: B::Mat,
    attempts: Vec<u64>,
    dv: B::Mat,
    dh: B::Mat,
    first_block: Vec<u32>,
}

/// `t` inverse temperatures evenly spaced from 1 down to `beta_min`.
pub fn linear_betas(t: usize, beta_min: f32) -> Vec<f32> {
    if t <= 1 {
        return vec![1.0];
    }
    (0..t)
        .map(|i| 1.0 - (1.0 - beta_min) * i as f32 / (t - 1) as f32)
        .collect()
}

/// The ladder starts at 1, decreases and stays >= 0; at least one chain.
fn check_ladder(betas: &[f32], n: usize) -> Result<()> {
    if betas.is_empty() || (betas[0] - 1.0).abs() > 1e-6 {
        return Err(Error::value(
            "temperatures",
            "the first inverse temperature must be 1",
        ));
    }
    for w in betas.windows(2) {
        if w[1] >= w[0] || w[1] < 0.0 {
            return Err(Error::value(
                "temperatures",
                format!("inverse temperatures must decrease and stay >= 0: {betas:?}"),
            ));
        }
    }
    if n == 0 {
        return Err(Error::value(
            "chains",
            "need at least one chain per temperature",
        ));
    }
    Ok(())
}

/// Per swap phase and chain row: the partner row, the lower row of the
/// pair, β_row - β_partner, and 1 where the row counts the pair's attempt.
struct SwapTables {
    partner: [Vec<u32>; 2],
    lower: [Vec<u32>; 2],
    dbeta: [HostMat; 2],
    cmask: [HostMat; 2],
}

fn swap_tables(betas: &[f32], n: usize) -> SwapTables {
    let t = betas.len();
    let r = t * n;
    let mut partner = [vec![0u32; r], vec![0u32; r]];
    let mut lower = [vec![0u32; r], vec![0u32; r]];
    let mut dbeta = [HostMat::zeros(r, 1), HostMat::zeros(r, 1)];
    let mut cmask = [HostMat::zeros(r, 1), HostMat::zeros(r, 1)];
    for phase in 0..2 {
        for ti in 0..t {
            // Phase p pairs (p, p+1), (p+2, p+3), ...
            let p = if ti >= phase && (ti - phase) % 2 == 0 {
                if ti + 1 < t {
                    ti + 1
                } else {
                    ti
                }
            } else if ti > phase {
                ti - 1
            } else {
                ti
            };
            for c in 0..n {
                let row = ti * n + c;
                partner[phase][row] = (p * n + c) as u32;
                lower[phase][row] = (ti.min(p) * n + c) as u32;
                dbeta[phase].data[row] = betas[ti] - betas[p];
                cmask[phase].data[row] = if p == ti + 1 { 1.0 } else { 0.0 };
            }
        }
    }
    SwapTables {
        partner,
        lower,
        dbeta,
        cmask,
    }
}

impl<B: Backend> Tempering<B> {
    /// `n` chains per temperature (all zero until [`start_from`](Self::start_from)).
    pub fn new(
        be: &B,
        betas: Vec<f32>,
        n: usize,
        n_visible: usize,
        n_hidden: usize,
    ) -> Result<Self> {
        check_ladder(&betas, n)?;
        let r = betas.len() * n;
        let SwapTables {
            partner,
            lower,
            dbeta,
            cmask,
        } = swap_tables(&betas, n);
        Ok(Tempering {
            n,
            v: be.zeros(r, n_visible)?,
            h: be.zeros(r, n_hidden)?,
            pv: be.zeros(r, n_visible)?,
            ph: be.zeros(r, n_hidden)?,
            beta: be.upload(&HostMat::from_fn(r, 1, |i, _| betas[i / n]))?,
            sv: LayerScratch::new(be, r, n_visible)?,
            sh: LayerScratch::new(be, r, n_hidden)?,
            s: Scratch::new(be, r, n_visible, n_hidden)?,
            partner,
            lower,
            dbeta: [be.upload(&dbeta[0])?, be.upload(&dbeta[1])?],
            count_mask: [be.upload(&cmask[0])?, be.upload(&cmask[1])?],
            phase: 0,
            e: be.zeros(r, 1)?,
            e_p: be.zeros(r, 1)?,
            logr: be.zeros(r, 1)?,
            accept: be.zeros(r, 1)?,
            accept_pair: be.zeros(r, 1)?,
            accepted: be.zeros(r, 1)?,
            attempts: vec![0; betas.len()],
            dv: be.zeros(r, n_visible)?,
            dh: be.zeros(r, n_hidden)?,
            first_block: (0..n as u32).collect(),
            betas,
        })
    }

    pub fn temperatures(&self) -> usize {
        self.betas.len()
    }

    /// Which pairs the next swap round tries (0: (0,1),(2,3)...; 1: (1,2),...).
    pub fn phase(&self) -> usize {
        self.phase
    }
    pub fn set_phase(&mut self, p: usize) {
        self.phase = p % 2;
    }

    /// Starts every temperature's chains at `v0` (n x n_visible).
    pub fn start_from<E: Bipartite<B>>(
        &mut self,
        be: &B,
        model: &E,
        v0: &B::Mat,
        rng: &mut RngStream,
    ) -> Result<()> {
        let idx: Vec<u32> = (0..self.temperatures() * self.n)
            .map(|r| (r % self.n) as u32)
            .collect();
        be.gather_rows(v0, &idx, &mut self.v)?;
        self.sample_hidden(be, model, rng)
    }

    /// `h ~ p_β(h | v)` at every row's temperature.
    fn sample_hidden<E: Bipartite<B>>(
        &mut self,
        be: &B,
        model: &E,
        rng: &mut RngStream,
    ) -> Result<()> {
        let sample = Sample {
            out: &mut self.h,
            rng,
        };
        model.hidden_given_visible(
            be,
            &self.v,
            Some(&self.beta),
            &mut self.ph,
            Some(sample),
            &mut self.sh,
        )
    }

    /// One Gibbs sweep at every temperature: `v ~ p_β(v | h)`, `h ~ p_β(h | v)`.
    pub fn sweep<E: Bipartite<B>>(&mut self, be: &B, model: &E, rng: &mut RngStream) -> Result<()> {
        let sample = Sample {
            out: &mut self.v,
            rng,
        };
        model.visible_given_hidden(
            be,
            &self.h,
            Some(&self.beta),
            &mut self.pv,
            Some(sample),
            &mut self.sv,
        )?;
        self.sample_hidden(be, model, rng)
    }

    /// One round of neighbour swaps (the pairs alternate between calls).
    pub fn swap<E: Bipartite<B>>(&mut self, be: &B, model: &E, rng: &mut RngStream) -> Result<()> {
        let p = self.phase;
        self.phase ^= 1;
        if self.temperatures() < 2 {
            return Ok(());
        }
        // log r = (β_row - β_partner)(E(x_row) - E(x_partner)), the same for both rows of a pair.
        model.linear_energy(be, &self.v, &self.h, &mut self.s, &mut self.e)?;
        be.gather_rows(&self.e, &self.partner[p], &mut self.e_p)?;
        be.binary(Binary::Sub, &self.e, &self.e_p, &mut self.logr)?;
        be.binary_inplace(Binary::Mul, &mut self.logr, &self.dbeta[p])?;
        be.unary_inplace(Unary::Exp, &mut self.logr)?;
        be.bernoulli(&self.logr, &mut self.accept, rng)?;
        // Both rows of a pair follow the draw of its lower row.
        be.gather_rows(&self.accept, &self.lower[p], &mut self.accept_pair)?;
        be.binary(
            Binary::Mul,
            &self.accept_pair,
            &self.count_mask[p],
            &mut self.e_p,
        )?;
        be.axpby(1.0, &self.e_p, 1.0, &mut self.accepted)?;
        for (t, a) in self.attempts.iter_mut().enumerate() {
            if t + 1 < self.betas.len() && t % 2 == p {
                *a += 1;
            }
        }
        // x ← x + a (x_partner - x)
        be.gather_rows(&self.v, &self.partner[p], &mut self.dv)?;
        be.binary_inplace(Binary::Sub, &mut self.dv, &self.v)?;
        be.mul_col_vec(&mut self.dv, &self.accept_pair)?;
        be.binary_inplace(Binary::Add, &mut self.v, &self.dv)?;
        be.gather_rows(&self.h, &self.partner[p], &mut self.dh)?;
        be.binary_inplace(Binary::Sub, &mut self.dh, &self.h)?;
        be.mul_col_vec(&mut self.dh, &self.accept_pair)?;
        be.binary_inplace(Binary::Add, &mut self.h, &self.dh)
    }

    /// A tempering step: swap, then sweep (so `v`, `ph` of the β = 1 block
    /// are consistent negative statistics afterwards).
    pub fn step<E: Bipartite<B>>(&mut self, be: &B, model: &E, rng: &mut RngStream) -> Result<()> {
        self.swap(be, model, rng)?;
        self.sweep(be, model, rng)
    }

    /// Copies the β = 1 chains' `v` and `E[h | v]` into `v_out`, `ph_out` (n rows).
    pub fn cold(&self, be: &B, v_out: &mut B::Mat, ph_out: &mut B::Mat) -> Result<()> {
        be.gather_rows(&self.v, &self.first_block, v_out)?;
        be.gather_rows(&self.ph, &self.first_block, ph_out)
    }

    /// Swap acceptance rate of each neighbour pair (t, t+1) so far (reads back).
    pub fn swap_rates(&self, be: &B) -> Result<Vec<f32>> {
        let acc = be.download(&self.accepted)?;
        Ok((0..self.betas.len().saturating_sub(1))
            .map(|t| {
                let s: f32 = acc.data[t * self.n..(t + 1) * self.n].iter().sum();
                s / (self.attempts[t].max(1) * self.n as u64) as f32
            })
            .collect())
    }

    /// The persistent state for checkpoints: stacked v and h.
    pub fn state(&self, be: &B) -> Result<(HostMat, HostMat)> {
        Ok((be.download(&self.v)?, be.download(&self.h)?))
    }

    pub fn set_state(&mut self, be: &B, v: &HostMat, h: &HostMat) -> Result<()> {
        be.write(&mut self.v, v)?;
        be.write(&mut self.h, h)
    }
}
