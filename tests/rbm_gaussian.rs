//! Gaussian visible units with per-unit variances, against exact answers:
//! log Z against numerical integration, Gibbs moments against the exact
//! mixture of Gaussians, and learned variances against the maximum-likelihood
//! fit of data whose pixels have different spreads.

use ebmkit::backend::cpu::Cpu;
use ebmkit::energy::{FreeEnergy, Scratch};
use ebmkit::estimate::rbm::exact;
use ebmkit::io::checkpoint::Checkpoint;
use ebmkit::io::recipe::Recipe;
use ebmkit::models::rbm::{Rbm, RbmHost};
use ebmkit::sample::Chains;
use ebmkit::train::rbm::RbmTrainer as Trainer;
use ebmkit::units::UnitKind;
use ebmkit::{Backend, HostMat, RngStream};
use std::path::Path;

fn grbm(nv: usize, nh: usize, seed: u64, w_std: f32, log_var: &[f32]) -> RbmHost {
    let d = RngStream::new(seed, 3).next_draw();
    RbmHost {
        w: HostMat::from_fn(nv, nh, |i, j| w_std * d.normal(i * nh + j)),
        b_v: HostMat::from_fn(1, nv, |_, i| 0.5 * d.normal(100 + i)),
        b_h: HostMat::from_fn(1, nh, |_, j| 0.5 * d.normal(200 + j)),
        visible: UnitKind::Gaussian,
        hidden: UnitKind::Bernoulli,
        log_var_v: Some(HostMat::new(1, nv, log_var.to_vec()).unwrap()),
    }
}

fn log_z(be: &Cpu, h: &RbmHost) -> f64 {
    assert!(h.log_var_v.is_some(), "a model with its variances");
    exact::log_z(be, &Rbm::from_host(be, h).unwrap()).unwrap()
}

/// `(p(h), μ(h))` for every hidden state of a Gaussian-visible RBM, from
/// p(h) ∝ exp(h·b_h + Σ_i μ_i²/(2σ_i²)), μ = W h + b_v.
fn hidden_mixture(h: &RbmHost) -> Vec<(f64, Vec<f64>)> {
    let (nv, nh) = (h.n_visible(), h.n_hidden());
    let mut out: Vec<(f64, Vec<f64>)> = (0..1usize << nh)
        .map(|s| {
            let hs: Vec<f64> = (0..nh).map(|j| ((s >> j) & 1) as f64).collect();
            let mu: Vec<f64> = (0..nv)
                .map(|i| {
                    h.b_v.data[i] as f64
                        + (0..nh)
                            .map(|j| h.w.data[i * nh + j] as f64 * hs[j])
                            .sum::<f64>()
                })
                .collect();
            let lw = (0..nh).map(|j| hs[j] * h.b_h.data[j] as f64).sum::<f64>()
                + (0..nv)
                    .map(|i| 0.5 * mu[i] * mu[i] * h.precision_host(i))
                    .sum::<f64>();
            (lw, mu)
        })
        .collect();
    let m = out.iter().map(|x| x.0).fold(f64::MIN, f64::max);
    let z: f64 = out.iter().map(|x| (x.0 - m).exp()).sum();
    for x in &mut out {
        x.0 = (x.0 - m).exp() / z;
    }
    out
}

#[test]
fn log_z_matches_numerical_integration() {
    // Z = ∫ exp(-F(v)) dv over a fine grid of the 2-d visible space.
    let be = Cpu::new();
    let h = grbm(2, 3, 1, 0.8, &[-0.7, 0.4]);
    let (lo, hi, n) = (-14.0f64, 14.0f64, 1400usize);
    let dv = (hi - lo) / n as f64;
    let mut fs = Vec::with_capacity(n * n);
    for a in 0..n {
        for b in 0..n {
            let v = [
                (lo + (a as f64 + 0.5) * dv) as f32,
                (lo + (b as f64 + 0.5) * dv) as f32,
            ];
            fs.push(-h.free_energy_host(&v));
        }
    }
    let m = fs.iter().cloned().fold(f64::MIN, f64::max);
    let numeric = m + (fs.iter().map(|x| (x - m).exp()).sum::<f64>() * dv * dv).ln();
    let exact = log_z(&be, &h);
    assert!(
        (numeric - exact).abs() < 1e-4,
        "log Z: grid {numeric} vs enumeration {exact}"
    );
}

#[test]
fn gibbs_chains_match_the_exact_moments() {
    // E[v_i] = Σ_h p(h) μ_i(h) and E[v_i²] = Σ_h p(h) (μ_i(h)² + σ_i²).
    let be = Cpu::new();
    // Weights small enough that 200 sweeps mix between the modes (strong
    // ones with a small variance leave chains stuck for thousands).
    let h = grbm(3, 4, 2, 0.5, &[-1.2, 0.0, 0.6]);
    let mix = hidden_mixture(&h);
    let nv = 3;
    let mean: Vec<f64> = (0..nv)
        .map(|i| mix.iter().map(|(p, mu)| p * mu[i]).sum())
        .collect();
    let second: Vec<f64> = (0..nv)
        .map(|i| {
            let s2 = 1.0 / h.precision_host(i);
            mix.iter().map(|(p, mu)| p * (mu[i] * mu[i] + s2)).sum()
        })
        .collect();
    let rbm = Rbm::from_host(&be, &h).unwrap();
    let n = 4000;
    let mut chains = Chains::new(&be, n, nv, 4).unwrap();
    let mut rng = RngStream::new(9, 1);
    chains
        .start_from(&be, &rbm, &HostMat::zeros(n, nv), &mut rng)
        .unwrap();
    chains.sweep(&be, &rbm, 200, &mut rng).unwrap();
    let (mut m1, mut m2) = (vec![0.0f64; nv], vec![0.0f64; nv]);
    let draws = 20;
    for _ in 0..draws {
        chains.sweep(&be, &rbm, 3, &mut rng).unwrap();
        for r in 0..n {
            for i in 0..nv {
                let x = chains.v.get(r, i) as f64;
                m1[i] += x / (n * draws) as f64;
                m2[i] += x * x / (n * draws) as f64;
            }
        }
    }
    for i in 0..nv {
        assert!(
            (m1[i] - mean[i]).abs() < 0.03 * (1.0 + mean[i].abs()),
            "E[v_{i}]: chains {} vs exact {}",
            m1[i],
            mean[i]
        );
        assert!(
            (m2[i] - second[i]).abs() < 0.04 * (1.0 + second[i]),
            "E[v_{i}²]: chains {} vs exact {}",
            m2[i],
            second[i]
        );
    }
}

const SD: [f32; 4] = [0.3, 0.6, 1.0, 2.0];
const MEAN: [f32; 4] = [1.0, -1.0, 0.0, 0.5];

/// Independent pixels N(MEAN_i, SD_i²).
fn spread_data(n: usize, seed: u64) -> HostMat {
    let d = RngStream::new(seed, 4).next_draw();
    HostMat::from_fn(n, 4, |r, c| MEAN[c] + SD[c] * d.normal(r * 4 + c))
}

fn recipe(learn: bool) -> Recipe {
    recipe_with(learn, "")
}

/// The recipe with `model_extra` added to its `[model]` table.
fn recipe_with(learn: bool, model_extra: &str) -> Recipe {
    let text = format!(
        r#"
[model]
visible = "gaussian"
n_hidden = 4
init_std = 0.01
learn_variance = {learn}
{model_extra}

[data]
source = "mnist-small"
binarize = "none"

[train]
method = "pcd"
k = 1
chains = 100
epochs = 20
batch_size = 50
lr = 0.01
momentum = 0.9
seed = 4

[monitor]
rows = 200
"#
    );
    Recipe::parse(&text, Path::new("grbm.toml")).unwrap()
}

/// Exact mean log p(v) of `data` under a Gaussian-visible RBM.
fn mean_log_prob(be: &Cpu, rbm: &Rbm<Cpu>, data: &HostMat) -> f64 {
    let h = rbm.to_host(be).unwrap();
    let lz = log_z(be, &h);
    let mut s = Scratch::new(be, data.rows, 4, 4).unwrap();
    let mut f = be.zeros(data.rows, 1).unwrap();
    rbm.free_energy(be, data, &mut s, &mut f).unwrap();
    -f.data.iter().map(|&x| x as f64).sum::<f64>() / data.rows as f64 - lz
}

#[test]
fn learned_variances_reach_the_maximum_likelihood_fit() {
    let be = Cpu::new();
    let train = spread_data(3000, 1);
    let test = spread_data(2000, 2);
    // The best any model can do on independent Gaussians: Σ -½ log(2πe s²).
    let best: f64 = SD
        .iter()
        .map(|&s| {
            -0.5 * (2.0 * std::f64::consts::PI * std::f64::consts::E * (s as f64).powi(2)).ln()
        })
        .sum();
    let mut lls = Vec::new();
    for learn in [false, true] {
        let mut t = Trainer::new(&be, recipe(learn), &train, Some(&test)).unwrap();
        t.fit(&be, None, &mut |_, _| {}, &mut |_, _| {}).unwrap();
        let ll = mean_log_prob(&be, &t.objective.rbm, &test);
        let var: Vec<f64> = be
            .download(&t.objective.rbm.var_v.as_ref().unwrap().log_var)
            .unwrap()
            .data
            .iter()
            .map(|&z| (z as f64).exp())
            .collect();
        eprintln!("learn_variance = {learn}: test log p(v) {ll:.4} (best {best:.4}), σ² {var:.3?}");
        if learn {
            for (i, (&v, &s)) in var.iter().zip(&SD).enumerate() {
                let want = (s as f64).powi(2);
                assert!(
                    (v / want - 1.0).abs() < 0.25,
                    "σ²[{i}] = {v}, the data's variance is {want}"
                );
            }
        } else {
            assert!(
                var.iter().all(|&v| v == 1.0),
                "fixed variances moved: {var:?}"
            );
        }
        lls.push(ll);
    }
    assert!(lls[1] > best - 0.1, "learned: {} vs best {best}", lls[1]);
    assert!(
        lls[0] < best - 0.5,
        "fixed unit variance: {} vs best {best}",
        lls[0]
    );
}

/// `model.min_variance` is a floor, not a penalty: the pixel whose variance
/// (0.09) lies below it ends exactly on it, the others are still fitted.
#[test]
fn the_variance_floor_holds_exactly() {
    let be = Cpu::new();
    let train = spread_data(3000, 1);
    let r = recipe_with(true, "min_variance = 0.25");
    assert_eq!(
        r.rbm().unwrap().min_variance,
        0.25,
        "the floor did not reach the recipe"
    );
    let mut t = Trainer::new(&be, r, &train, None).unwrap();
    t.fit(&be, None, &mut |_, _| {}, &mut |_, _| {}).unwrap();
    let z = be
        .download(&t.objective.rbm.var_v.as_ref().unwrap().log_var)
        .unwrap()
        .data;
    eprintln!(
        "σ² with a floor of 0.25: {:?}",
        z.iter().map(|z| z.exp()).collect::<Vec<_>>()
    );
    assert_eq!(
        z[0],
        0.25f32.ln(),
        "σ²[0] (data variance 0.09) is not on the floor"
    );
    for (i, (&zi, &s)) in z.iter().zip(&SD).enumerate().skip(1) {
        let (v, want) = ((zi as f64).exp(), (s as f64).powi(2));
        assert!(
            (v / want - 1.0).abs() < 0.25,
            "σ²[{i}] = {v}, the data's variance is {want}"
        );
    }
}

#[test]
fn variances_survive_a_checkpoint_and_resume_identically() {
    let be = Cpu::new();
    let train = spread_data(600, 3);
    let dir = std::env::temp_dir().join(format!("ebmkit-grbm-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("g.safetensors");
    let mut r = recipe(true);
    r.train.epochs = 4;
    let mut a = Trainer::new(&be, r.clone(), &train, None).unwrap();
    for _ in 0..2 {
        a.run_epoch(&be, &mut |_| {}).unwrap();
    }
    a.checkpoint(&be).unwrap().save(&path).unwrap();
    a.fit(&be, None, &mut |_, _| {}, &mut |_, _| {}).unwrap();
    let ck = Checkpoint::load(&path).unwrap();
    let saved: RbmHost = ck.model(&path).unwrap();
    assert!(saved.log_var_v.is_some());
    assert!(ck.state.contains_key("dlog_var_v"));
    let mut b = Trainer::resume(&be, r, &ck, &path, (&train, None)).unwrap();
    b.fit(&be, None, &mut |_, _| {}, &mut |_, _| {}).unwrap();
    let (ha, hb) = (
        a.objective.rbm.to_host(&be).unwrap(),
        b.objective.rbm.to_host(&be).unwrap(),
    );
    assert_eq!(ha, hb, "resumed run differs");
    let z = ha.log_var_v.unwrap();
    assert!(z.data.iter().any(|&x| x != 0.0), "variances did not move");
    // Variances on a binary model are refused, naming the tensor.
    let mut bad = saved.clone();
    bad.visible = UnitKind::Bernoulli;
    let err = Checkpoint::of_model(&bad).unwrap_err().to_string();
    assert!(err.contains("log_var_v"), "{err}");
    std::fs::remove_dir_all(&dir).ok();
}

/// A 64 x 16 Gaussian-binary RBM with learned variances, trained with the recipe's settings on
/// whitened natural-image patches (so the weights look like real ones), and
/// its training patches.
fn patch_grbm(be: &Cpu) -> (RbmHost, HostMat) {
    let mut r = Recipe::load(Path::new("models/grbm20-patches.toml")).unwrap();
    r.rbm_mut().unwrap().n_hidden = 16;
    r.data.patches = 5000;
    r.data.test_patches = 100;
    r.train.epochs = 30;
    r.monitor.rows = 100;
    let d = r.data.load(None, r.train.seed).unwrap();
    let mut t = Trainer::new(be, r, &d.train, None).unwrap();
    t.fit(be, None, &mut |_, _| {}, &mut |_, _| {}).unwrap();
    (t.objective.rbm.to_host(be).unwrap(), d.train)
}

/// `n` exact samples of a Gaussian-visible RBM: h from its exact marginal,
/// then v ~ N(μ(h), σ²).
fn exact_samples(h: &RbmHost, n: usize, seed: u64) -> HostMat {
    let mix = hidden_mixture(h);
    let nv = h.n_visible();
    let d = RngStream::new(seed, 12).next_draw();
    let mut cdf = Vec::with_capacity(mix.len());
    let mut acc = 0.0;
    for (p, _) in &mix {
        acc += p;
        cdf.push(acc);
    }
    let mut out = HostMat::zeros(n, nv);
    for r in 0..n {
        let u = d.uniform(r) as f64 * acc;
        let k = cdf.partition_point(|&c| c < u).min(mix.len() - 1);
        let mu = &mix[k].1;
        for (i, (x, m)) in out.row_mut(r).iter_mut().zip(mu).enumerate() {
            let sd = (1.0 / h.precision_host(i)).sqrt();
            let z = d.normal(n + r * nv + i) as f64;
            *x = (m + sd * z) as f32;
        }
    }
    out
}

#[test]
fn ais_matches_the_exact_log_z_of_a_patch_model() {
    use ebmkit::estimate::ais::Schedule;
    use ebmkit::estimate::rbm::ais::{self, GaussianBase};
    let be = Cpu::new();
    let (h, train) = patch_grbm(&be);
    let lz = log_z(&be, &h);
    let z = h.log_var_v.as_ref().unwrap().data.clone();
    let base = GaussianBase::from_host(&train, &z).unwrap();
    let schedule = Schedule::three_stage(100, 800, 2000).unwrap();
    let mut rng = RngStream::new(17, 2);
    let rbm = Rbm::from_host(&be, &h).unwrap();
    let fwd = ais::forward(&be, &rbm, &base, &schedule, 100, &mut rng).unwrap();
    let init = exact_samples(&h, 100, 5);
    let rev = ais::reverse(&be, &rbm, &base, &schedule, &init, &mut rng).unwrap();
    eprintln!(
        "Gaussian-visible 64x16: exact log Z {lz:.4}, AIS {:.4} (ESS {:.1}), reverse AIS {:.4}; base log Z {:.2}",
        fwd.log_z, fwd.ess, rev.log_z, fwd.log_z_base
    );
    assert!(
        (fwd.log_z - lz).abs() < 0.2,
        "forward {} vs {lz}",
        fwd.log_z
    );
    assert!(
        (rev.log_z - lz).abs() < 0.2,
        "reverse {} vs {lz}",
        rev.log_z
    );
    // The path must actually matter: the base model alone is far off.
    assert!(
        (fwd.log_z_base - lz).abs() > 1.0,
        "base {} vs {lz}",
        fwd.log_z_base
    );
}
