//! An RBM run's training state in checkpoints, so that `--resume`
//! continues bit for bit: the momentum (`W_prev`, the weights before the
//! last update, and the bias steps `db_v`, `db_h`, with `dlog_var_v` for
//! learned variances), the sparsity and centering running averages (`q_h`,
//! `mu_v`, `lambda_h`), the persistent chains (`chain_v`, `chain_h`, or the
//! stacked tempering chains `pt_v`, `pt_h` and `pt_phase`) and the fast
//! weights of FPCD (`fast_W`, `fast_b_v`, `fast_b_h`).

use std::path::Path;

use super::negative::Negative;
use super::RbmObjective;
use crate::backend::Fused;
use crate::energy::{Bipartite, FreeEnergy};
use crate::error::Result;
use crate::host::HostMat;
use crate::io::checkpoint::Checkpoint;

pub(super) fn export<B: Fused>(o: &RbmObjective<B>, be: &B, c: &mut Checkpoint) -> Result<()> {
    let s = &mut c.state;
    let mut put = |name: &str, m: HostMat| {
        s.insert(name.to_string(), m);
    };
    put("W_prev", be.download(o.opt.prev_weights(&o.rbm.w))?);
    put("db_v", be.download(&o.opt.momentum.db_v)?);
    put("db_h", be.download(&o.opt.momentum.db_h)?);
    if let Some(sp) = &o.opt.sparsity {
        put("q_h", be.download(&sp.q_h)?);
    }
    if let Some(st) = o.opt.variance_step_ref() {
        put("dlog_var_v", be.download(&st.dz)?);
    }
    if let Some(ce) = &o.opt.centering {
        put("mu_v", be.download(&ce.mu_v)?);
        put("lambda_h", be.download(&ce.lambda_h)?);
    }
    match &o.neg {
        Negative::Cd { .. } => {}
        Negative::Pcd { chains, .. } | Negative::Fpcd { chains, .. } => {
            put("chain_v", be.download(&chains.v)?);
            put("chain_h", be.download(&chains.h)?);
        }
        Negative::Pt { pt, .. } => {
            let (v, h) = pt.state(be)?;
            put("pt_v", v);
            put("pt_h", h);
            put("pt_phase", HostMat::new(1, 1, vec![pt.phase() as f32])?);
        }
    }
    if let Negative::Fpcd { fast, .. } = &o.neg {
        put("fast_W", be.download(&fast.fast.w)?);
        put("fast_b_v", be.download(&fast.fast.b_v)?);
        put("fast_b_h", be.download(&fast.fast.b_h)?);
    }
    Ok(())
}

pub(super) fn import<B: Fused>(
    o: &mut RbmObjective<B>,
    be: &B,
    c: &Checkpoint,
    path: &Path,
) -> Result<()> {
    let nv = o.rbm.n_visible();
    let nh = o.rbm.n_hidden();
    let t = |name: &str, shape: (usize, usize)| c.state_tensor(path, name, shape);
    be.write(&mut o.opt.momentum.w_prev, t("W_prev", (nv, nh))?)?;
    be.write(&mut o.opt.momentum.db_v, t("db_v", (1, nv))?)?;
    be.write(&mut o.opt.momentum.db_h, t("db_h", (1, nh))?)?;
    if let Some(sp) = &mut o.opt.sparsity {
        be.write(&mut sp.q_h, t("q_h", (1, nh))?)?;
    }
    if let Some(st) = o.opt.variance_step() {
        be.write(&mut st.dz, t("dlog_var_v", (1, nv))?)?;
    }
    if let Some(ce) = &mut o.opt.centering {
        be.write(&mut ce.mu_v, t("mu_v", (1, nv))?)?;
        be.write(&mut ce.lambda_h, t("lambda_h", (1, nh))?)?;
    }
    match &mut o.neg {
        Negative::Cd { .. } => {}
        Negative::Pcd { chains, .. } | Negative::Fpcd { chains, .. } => {
            let nc = chains.rows();
            be.write(&mut chains.v, t("chain_v", (nc, nv))?)?;
            be.write(&mut chains.h, t("chain_h", (nc, nh))?)?;
        }
        Negative::Pt { pt, .. } => {
            let r = pt.temperatures() * pt.n;
            pt.set_state(be, t("pt_v", (r, nv))?, t("pt_h", (r, nh))?)?;
            pt.set_phase(t("pt_phase", (1, 1))?.data[0] as usize);
        }
    }
    if let Negative::Fpcd { fast, .. } = &mut o.neg {
        be.write(&mut fast.fast.w, t("fast_W", (nv, nh))?)?;
        be.write(&mut fast.fast.b_v, t("fast_b_v", (1, nv))?)?;
        be.write(&mut fast.fast.b_h, t("fast_b_h", (1, nh))?)?;
    }
    Ok(())
}
