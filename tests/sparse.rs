//! Sparse coding, PSD and LISTA against independent truths: the lasso's
//! optimality conditions, scikit-learn's coordinate descent, FISTA against
//! ISTA, LISTA at its ISTA start against ISTA itself, gradients against
//! finite differences in f64, the GPU against the CPU, and bad input.

#[macro_use]
mod common;

use ebmkit::autodiff::check::check;
use ebmkit::backend::Backend;
use ebmkit::data::npy::write_npy;
use ebmkit::models::sparse::lista::{relative_error, Lista};
use ebmkit::models::sparse::{
    encode_all, initial_dictionary, kkt_violation, lasso_objective, Algorithm, DictLearner,
    DictUpdate, Inference, ListaArch, PsdArch, Solver,
};
use ebmkit::prelude::*;

fn normal(rows: usize, cols: usize, seed: u64) -> HostMat {
    let d = RngStream::new(seed, 7).next_draw();
    HostMat::from_fn(rows, cols, |r, c| d.normal(r * cols + c))
}

/// `atoms` unit-norm random atoms of `dim` values.
fn dictionary(atoms: usize, dim: usize, seed: u64) -> HostMat {
    let mut d = normal(atoms, dim, seed);
    for j in 0..atoms {
        let row = d.row_mut(j);
        let n = row.iter().map(|v| v * v).sum::<f32>().sqrt();
        row.iter_mut().for_each(|v| *v /= n);
    }
    d
}

/// Rows made of a few atoms each, plus a little noise: data a dictionary
/// explains sparsely.
fn sparse_data(dict: &HostMat, rows: usize, seed: u64) -> HostMat {
    let (k, dim) = dict.shape();
    let d = RngStream::new(seed, 9).next_draw();
    HostMat::from_fn(rows, dim, |r, c| {
        let mut v = 0.05 * d.normal(r * dim + c);
        for a in 0..3 {
            let atom = (d.word(rows * dim + r * 3 + a) as usize) % k;
            let w = 1.0 + d.uniform(2 * rows * dim + r * 3 + a);
            v += w * dict.get(atom, c);
        }
        v
    })
}

fn codes<B: Backend>(be: &B, dict: &HostMat, x: &HostMat, inf: &Inference) -> HostMat {
    let d = be.upload(dict).unwrap();
    let mut solver = Solver::new(be, &d, x.rows).unwrap();
    let xb = be.upload(x).unwrap();
    let mut z = be.zeros(x.rows, dict.rows).unwrap();
    solver
        .solve(be, (&d, &xb), &mut z, inf, false, None)
        .unwrap();
    be.download(&z).unwrap()
}

#[test]
fn converged_codes_meet_the_lasso_optimality_conditions() {
    let be = Cpu::new();
    let dict = dictionary(48, 16, 1);
    let x = sparse_data(&dict, 40, 2);
    for nonneg in [false, true] {
        let inf = Inference {
            nonneg,
            ..Inference::converge(0.1, 1e-5, 20_000)
        };
        let z = codes(&be, &dict, &x, &inf);
        let v = kkt_violation(&x, &dict, &z, 0.1, nonneg).unwrap();
        // |d_iᵀ(x − zD)| ≤ λ, with equality and the code's sign on the support.
        assert!(v < 1e-4, "KKT violated by {v} (nonneg {nonneg})");
        let support = z.data.iter().filter(|&&v| v != 0.0).count();
        assert!(
            support > 0 && support < z.data.len() / 2,
            "support {support}"
        );
        if nonneg {
            assert!(z.data.iter().all(|&v| v >= 0.0));
        }
        // The conditions are not met by chance: a perturbed code breaks them.
        let mut off = z.clone();
        off.data[0] += 0.05;
        assert!(kkt_violation(&x, &dict, &off, 0.1, nonneg).unwrap() > 1e-3);
    }
}

#[test]
fn codes_are_as_good_as_scikit_learns_coordinate_descent() {
    let be = Cpu::new();
    let dict = dictionary(32, 12, 3);
    let x = sparse_data(&dict, 30, 4);
    let dir = std::env::temp_dir().join(format!("ebmkit-sparse-sk-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    write_npy(dir.join("d.npy"), &dict).unwrap();
    write_npy(dir.join("x.npy"), &x).unwrap();
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/sparse_encode.py");
    for (lambda, positive) in [(0.1f32, false), (0.3, false), (0.1, true)] {
        let mut cmd = std::process::Command::new("python3");
        cmd.arg(&script)
            .arg(dir.join("d.npy"))
            .arg(dir.join("x.npy"))
            .arg(lambda.to_string());
        if positive {
            cmd.arg("positive");
        }
        let out = cmd
            .output()
            .expect("python3 runs (CI installs numpy and scikit-learn)");
        assert!(
            out.status.success(),
            "sparse_encode.py failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let line = String::from_utf8_lossy(&out.stdout);
        let nums: Vec<f64> = line
            .split_whitespace()
            .filter_map(|w| w.parse().ok())
            .collect();
        assert_eq!(nums.len(), 2, "{line}");
        let best_sk = nums[0].min(nums[1]);
        let inf = Inference {
            nonneg: positive,
            ..Inference::converge(lambda, 1e-6, 50_000)
        };
        let z = codes(&be, &dict, &x, &inf);
        let ours = lasso_objective(&x, &dict, &z, lambda as f64).unwrap();
        assert!(
            ours <= best_sk * (1.0 + 1e-5),
            "λ {lambda} positive {positive}: ebmkit {ours:.10} against scikit-learn {best_sk:.10} ({line})"
        );
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn fista_ends_below_ista_at_10_20_and_50_iterations() {
    let be = Cpu::new();
    // Overcomplete and correlated atoms: where momentum matters.
    let dict = dictionary(64, 16, 5);
    let x = sparse_data(&dict, 50, 6);
    for t in [10, 20, 50] {
        let obj = |a| {
            let z = codes(&be, &dict, &x, &Inference::fixed(a, 0.1, t));
            lasso_objective(&x, &dict, &z, 0.1).unwrap()
        };
        let (ista, fista) = (obj(Algorithm::Ista), obj(Algorithm::Fista));
        assert!(fista < ista, "T = {t}: FISTA {fista} not below ISTA {ista}");
    }
}

#[test]
fn stopping_rules_end_early_and_the_cap_warns() {
    let be = Cpu::new();
    let dict = dictionary(32, 12, 7);
    let x = sparse_data(&dict, 20, 8);
    let d = be.upload(&dict).unwrap();
    let xb = be.upload(&x).unwrap();
    let mut solver = Solver::new(&be, &d, 20).unwrap();
    let mut z = be.zeros(20, 32).unwrap();
    let inf = Inference::converge(0.1, 1e-4, 100_000);
    let rep = solver
        .solve(&be, (&d, &xb), &mut z, &inf, false, None)
        .unwrap();
    assert!(rep.converged && rep.iters < 100_000, "{rep:?}");
    assert!(rep.residual.unwrap() <= 1e-4);
    assert!(rep.warning(&inf).is_none());
    // A warm start from the solution stops at the first check.
    let again = solver
        .solve(&be, (&d, &xb), &mut z, &inf, true, None)
        .unwrap();
    assert_eq!(again.iters, inf.check_every, "{again:?}");
    // Objective rule.
    let inf_o = Inference {
        tol_objective: 1e-7,
        tol_residual: 0.0,
        ..inf
    };
    let rep_o = solver
        .solve(&be, (&d, &xb), &mut z, &inf_o, false, None)
        .unwrap();
    assert!(rep_o.converged, "{rep_o:?}");
    // A cap too low for the tolerance: not converged, and a warning naming the residual.
    let capped = Inference {
        max_iters: 3,
        tol_residual: 1e-9,
        ..inf
    };
    let rep = solver
        .solve(&be, (&d, &xb), &mut z, &capped, false, None)
        .unwrap();
    assert!(!rep.converged);
    let w = rep.warning(&capped).expect("a warning");
    assert!(
        w.contains("did not converge in 3 iterations") && w.contains("residual"),
        "{w}"
    );
}

#[test]
fn lista_at_its_ista_start_computes_the_ista_codes() {
    let be = Cpu::new();
    let dict = dictionary(24, 10, 9);
    let x = sparse_data(&dict, 16, 10);
    let d = be.upload(&dict).unwrap();
    let solver = Solver::new(&be, &d, 16).unwrap();
    let l = solver.lipschitz();
    for steps in [1, 2, 5] {
        let arch = ListaArch {
            dim: 10,
            atoms: 24,
            steps,
        };
        let p = arch.ista_params(&dict, 0.1, l).unwrap();
        let net = Lista::from_host(&be, arch, &p).unwrap();
        let ours = net.encode(&be, &x, 7).unwrap();
        let ista = codes(
            &be,
            &dict,
            &x,
            &Inference::fixed(Algorithm::Ista, 0.1, steps),
        );
        let diff = ours.max_abs_diff(&ista).unwrap();
        assert!(diff < 1e-5, "T = {steps}: LISTA and ISTA differ by {diff}");
    }
}

#[test]
fn lista_and_psd_gradients_match_finite_differences() {
    // LISTA: W_e, S (shared by the steps) and θ, in f64.
    let arch = ListaArch {
        dim: 5,
        atoms: 6,
        steps: 3,
    };
    let g = arch.graph(4).unwrap();
    let dict = dictionary(6, 5, 11);
    let mut p = arch.ista_params(&dict, 0.05, 3.0).unwrap().to_vec();
    // Off the ISTA start, so every entry of S matters.
    for (m, s) in p.iter_mut().zip([12u64, 13, 14]) {
        let n = normal(m.rows, m.cols, s);
        for (v, e) in m.data.iter_mut().zip(&n.data) {
            *v += 0.05 * e;
        }
    }
    let inputs = [normal(4, 5, 15), normal(4, 6, 16)];
    let rep = check(&g.graph, g.loss, &p, &inputs, 1).unwrap();
    assert!(rep.max_rel_err < 1e-5, "LISTA: {rep:?}");
    assert!(rep.checked >= 6 * 5 + 36 + 6);

    let arch = PsdArch { dim: 5, atoms: 6 };
    let g = arch.graph(4).unwrap();
    let mut p = arch.initial(&dict, 0.5).unwrap().to_vec();
    p[1] = normal(1, 6, 17);
    p[2] = normal(1, 6, 18);
    let rep = check(
        &g.graph,
        g.loss,
        &p,
        &[normal(4, 5, 19), normal(4, 6, 20)],
        1,
    )
    .unwrap();
    assert!(rep.max_rel_err < 1e-5, "PSD encoder: {rep:?}");
}

#[test]
fn dictionary_learning_lowers_the_held_out_objective_with_either_update() {
    let be = Cpu::new();
    let truth = dictionary(20, 16, 21);
    let train = sparse_data(&truth, 2000, 22);
    let test = sparse_data(&truth, 200, 23);
    let mut rng = RngStream::new(1, 1);
    let start = initial_dictionary(&train, 20, &mut rng).unwrap();
    let inf = Inference::fixed(Algorithm::Fista, 0.1, 50);
    let held_out = |dict: &HostMat| {
        let d = be.upload(dict).unwrap();
        let mut s = Solver::new(&be, &d, 100).unwrap();
        let (z, _) = encode_all(
            &be,
            &mut s,
            &d,
            &test,
            &Inference::fixed(Algorithm::Fista, 0.1, 300),
        )
        .unwrap();
        lasso_objective(&test, dict, &z, 0.1).unwrap()
    };
    let before = held_out(&start);
    for update in [DictUpdate::Sgd { lr: 0.5 }, DictUpdate::Bcd] {
        let mut dl = DictLearner::new(&be, &start, 100).unwrap();
        for epoch in 0..5 {
            for b in 0..20 {
                let idx: Vec<usize> = (0..100)
                    .map(|i| (b * 100 + i * 7 + epoch * 13) % 2000)
                    .collect();
                let xb = be.upload(&train.select_rows(&idx).unwrap()).unwrap();
                dl.step(&be, &xb, &inf, update, None, &mut rng).unwrap();
            }
        }
        let learned = dl.dictionary(&be).unwrap();
        for j in 0..20 {
            let n: f32 = learned.row(j).iter().map(|v| v * v).sum::<f32>().sqrt();
            assert!(
                n <= 1.0 + 1e-4 && n > 0.5,
                "{update:?}: atom {j} has norm {n}"
            );
        }
        let after = held_out(&learned);
        assert!(
            after < 0.8 * before,
            "{update:?}: held-out objective {before} → {after}"
        );
    }
}

#[test]
fn psd_inference_with_the_prediction_term_meets_its_own_optimality() {
    // The minimiser of ½‖x − zD‖² + λ‖z‖₁ + α‖z − p‖², checked on the host
    // in f64: c_i = d_iᵀ(x − zD) − 2α(z_i − p_i) equals λ sign z_i on the
    // support and is at most λ in size off it.
    let be = Cpu::new();
    let dict = dictionary(24, 10, 24);
    let x = sparse_data(&dict, 12, 25);
    let d = be.upload(&dict).unwrap();
    let xb = be.upload(&x).unwrap();
    let p_host = normal(12, 24, 26);
    let p = be.upload(&p_host).unwrap();
    let mut solver = Solver::new(&be, &d, 12).unwrap();
    let inf = Inference::converge(0.1, 1e-5, 50_000);
    for alpha in [0.5f32, 5.0] {
        let mut z = be.zeros(12, 24).unwrap();
        let rep = solver
            .solve(&be, (&d, &xb), &mut z, &inf, false, Some((&p, alpha)))
            .unwrap();
        assert!(rep.converged, "α {alpha}: {rep:?}");
        let z = be.download(&z).unwrap();
        let mut worst = 0.0f64;
        for r in 0..12 {
            let resid: Vec<f64> = (0..10)
                .map(|c| {
                    x.get(r, c) as f64
                        - (0..24)
                            .map(|a| z.get(r, a) as f64 * dict.get(a, c) as f64)
                            .sum::<f64>()
                })
                .collect();
            for a in 0..24 {
                let corr: f64 = (0..10).map(|c| dict.get(a, c) as f64 * resid[c]).sum();
                let zi = z.get(r, a) as f64;
                let ci = corr - 2.0 * alpha as f64 * (zi - p_host.get(r, a) as f64);
                let v = if zi != 0.0 {
                    (ci - 0.1 * zi.signum()).abs()
                } else {
                    (ci.abs() - 0.1).max(0.0)
                };
                worst = worst.max(v);
            }
        }
        assert!(worst < 1e-4, "α {alpha}: optimality violated by {worst}");
        // The plain lasso optimum is not this one.
        assert!(kkt_violation(&x, &dict, &z, 0.1, false).unwrap() > 1e-2);
    }
}

#[test]
fn gpu_codes_match_the_cpu() {
    let gpu = gpu_or_skip!();
    let cpu = Cpu::new();
    let dict = dictionary(40, 16, 27);
    let x = sparse_data(&dict, 32, 28);
    for alg in [Algorithm::Ista, Algorithm::Fista] {
        let inf = Inference::fixed(alg, 0.1, 30);
        let a = codes(&cpu, &dict, &x, &inf);
        let b = codes(gpu, &dict, &x, &inf);
        let diff = a.max_abs_diff(&b).unwrap();
        assert!(diff < 1e-4, "{alg:?}: GPU and CPU codes differ by {diff}");
    }
    // The stopping rules read back the same residuals.
    let inf = Inference::converge(0.1, 1e-4, 5000);
    let a = codes(&cpu, &dict, &x, &inf);
    let b = codes(gpu, &dict, &x, &inf);
    assert!(kkt_violation(&x, &dict, &b, 0.1, false).unwrap() < 1e-3);
    assert!(relative_error(&b, &a).unwrap() < 1e-6);
    // One dictionary step each.
    let mut rng = (RngStream::new(2, 2), RngStream::new(2, 2));
    let mut lc = DictLearner::new(&cpu, &dict, 32).unwrap();
    let mut lg = DictLearner::new(gpu, &dict, 32).unwrap();
    let (xc, xg) = (cpu.upload(&x).unwrap(), gpu.upload(&x).unwrap());
    let fixed = Inference::fixed(Algorithm::Fista, 0.1, 30);
    for update in [DictUpdate::Sgd { lr: 0.1 }, DictUpdate::Bcd] {
        lc.step(&cpu, &xc, &fixed, update, None, &mut rng.0)
            .unwrap();
        lg.step(gpu, &xg, &fixed, update, None, &mut rng.1).unwrap();
        let diff = lc
            .dictionary(&cpu)
            .unwrap()
            .max_abs_diff(&lg.dictionary(gpu).unwrap())
            .unwrap();
        assert!(diff < 1e-4, "{update:?}: dictionaries differ by {diff}");
    }
}

#[test]
fn bad_input_is_refused_by_name() {
    let be = Cpu::new();
    let dict = dictionary(8, 6, 29);
    let d = be.upload(&dict).unwrap();
    let mut solver = Solver::new(&be, &d, 4).unwrap();
    let x = be.upload(&normal(4, 6, 30)).unwrap();
    let mut z = be.zeros(4, 8).unwrap();
    for lambda in [0.0, -1.0, f32::NAN] {
        let e = solver
            .solve(
                &be,
                (&d, &x),
                &mut z,
                &Inference::fixed(Algorithm::Fista, lambda, 5),
                false,
                None,
            )
            .unwrap_err()
            .to_string();
        assert!(e.contains("lambda"), "{e}");
    }
    // Data of the wrong width.
    let wide = be.upload(&normal(4, 7, 31)).unwrap();
    let e = solver
        .solve(
            &be,
            (&d, &wide),
            &mut z,
            &Inference::fixed(Algorithm::Fista, 0.1, 5),
            false,
            None,
        )
        .unwrap_err()
        .to_string();
    assert!(e.contains("6 values") && e.contains("(4, 7)"), "{e}");
    // A zero atom.
    let mut zero = dict.clone();
    zero.row_mut(3).iter_mut().for_each(|v| *v = 0.0);
    let e = Solver::new(&be, &be.upload(&zero).unwrap(), 4)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("atom 3"), "{e}");
    // LISTA with no steps.
    let e = ListaArch {
        dim: 6,
        atoms: 8,
        steps: 0,
    }
    .graph(4)
    .err()
    .unwrap()
    .to_string();
    assert!(e.contains("T >= 1"), "{e}");
}
