//! The learned-inference table (issue 12, item 6): how close the codes of
//! ISTA, FISTA, PSD's encoder and LISTA come to the optimal sparse codes
//! after T iterations, on whitened natural-image patches.
//!
//! The setting: 12x12 grey patches of the photographs in `<data>/images`
//! (every fifth photograph held out for the test patches), mean removed per
//! patch, ZCA whitening with ε = 1e-3 times the largest eigenvalue, scaled
//! to unit mean squared norm; 256 atoms learned with λ = 0.1 (Mairal et
//! al.'s online update, FISTA codes); the optimal codes h* by FISTA to a
//! residual of 1e-4. For every T in {1, 2, 5, 10, 20, 50}: ISTA and FISTA
//! from zero, and a LISTA of T steps started at the ISTA values and trained
//! (Adam) to predict h* of the training patches; PSD's encoder (T = 0)
//! trained the same way. Then a PSD run proper (dictionary, codes with the
//! prediction term and encoder learned together) reports the energy its
//! encoder reaches alone against optimal inference.
//!
//! `cargo run --release --example learned_inference -- --out DIR [--data DIR]
//!  [--patches N] [--test-patches N] [--dict-epochs N] [--lista-epochs N]
//!  [--lista-rows N] [--lista-lr LR] [--psd-epochs N]`
//!
//! Writes `DIR/table.md`, `DIR/table.json`, `DIR/curve-prediction_error.png`,
//! `DIR/dictionary.png` and `DIR/psd-dictionary.png`.

use std::path::{Path, PathBuf};
use std::time::Instant;

use ebmkit::autodiff::{Bindings, Graph, Plan, Var};
use ebmkit::backend::cpu::Cpu;
use ebmkit::backend::Backend;
use ebmkit::data::natural::{natural_patches, NaturalPatches};
use ebmkit::data::{data_dir, zca_relative_unit_norm};
use ebmkit::io::recipe::{Recipe, SparseSpec};
use ebmkit::models::sparse::lista::relative_error;
use ebmkit::models::sparse::{
    encode_all, initial_dictionary, lasso_objective, score as score_model, Algorithm, DictLearner,
    DictUpdate, Inference, Lista, ListaArch, PsdArch, PsdEncoder, Solver,
};
use ebmkit::models::SparseHost;
use ebmkit::train::optim::{OptimConfig, Optimizer, Rule};
use ebmkit::train::sparse::SparseTrainer;
use ebmkit::train::Objective;
use ebmkit::viz::{save_grid, save_xy_plot, Color, Line, Norm};
use ebmkit::{Error, HostMat, Result, RngStream};

const LAMBDA: f32 = 0.1;
const ATOMS: usize = 256;
const SIZE: usize = 12;
const BATCH: usize = 100;
const STEPS: [usize; 6] = [1, 2, 5, 10, 20, 50];

struct Args {
    data: PathBuf,
    out: PathBuf,
    patches: usize,
    test_patches: usize,
    dict_epochs: usize,
    lista_epochs: usize,
    lista_rows: usize,
    psd_epochs: usize,
    lista_lr: f32,
    /// SGD with momentum 0.9 instead of Adam.
    sgd: bool,
    lista_steps: Vec<usize>,
    seed: u64,
}

fn parse() -> Result<Args> {
    let mut a = Args {
        data: data_dir(),
        out: PathBuf::from("out/learned-inference"),
        patches: 50_000,
        test_patches: 5_000,
        dict_epochs: 5,
        lista_epochs: 20,
        lista_rows: 20_000,
        psd_epochs: 5,
        lista_lr: 1e-4,
        sgd: false,
        lista_steps: STEPS.to_vec(),
        seed: 1,
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let mut v = || {
            it.next()
                .ok_or_else(|| Error::value(k.clone(), "needs a value"))
        };
        let num = |s: String, k: &str| -> Result<usize> {
            s.parse()
                .map_err(|_| Error::value(k, format!("'{s}' is not a count")))
        };
        match k.as_str() {
            "--data" => a.data = PathBuf::from(v()?),
            "--out" => a.out = PathBuf::from(v()?),
            "--patches" => a.patches = num(v()?, &k)?,
            "--test-patches" => a.test_patches = num(v()?, &k)?,
            "--dict-epochs" => a.dict_epochs = num(v()?, &k)?,
            "--lista-epochs" => a.lista_epochs = num(v()?, &k)?,
            "--lista-rows" => a.lista_rows = num(v()?, &k)?,
            "--psd-epochs" => a.psd_epochs = num(v()?, &k)?,
            "--lista-lr" => {
                let t = v()?;
                a.lista_lr = t
                    .parse()
                    .map_err(|_| Error::value("--lista-lr", format!("'{t}' is not a number")))?
            }
            "--sgd" => a.sgd = true,
            "--lista-steps" => {
                a.lista_steps = v()?
                    .split(',')
                    .map(|t| num(t.to_string(), "--lista-steps"))
                    .collect::<Result<_>>()?
            }
            "--seed" => a.seed = num(v()?, &k)? as u64,
            other => return Err(Error::value(other, "unknown option (see the file's doc)")),
        }
    }
    Ok(a)
}

/// The rows of `x` in a random order per epoch, `BATCH` at a time.
fn batches(n: usize, epoch: usize, seed: u64) -> Vec<Vec<usize>> {
    use rand::RngExt;
    let mut r = RngStream::new(seed, 0x4241_5443 + epoch as u32).host_rng();
    let mut order: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        order.swap(i, r.random_range(0..=i));
    }
    order.chunks_exact(BATCH).map(<[usize]>::to_vec).collect()
}

/// Trains `params` of `graph` (inputs: rows, target codes) to regress
/// `target` from `x` with Adam, the learning rate decaying by 0.9 per
/// epoch. The last tenth of the rows is held out: the parameters kept are
/// those of the epoch (the start included) with the lowest loss on it.
/// Returns that held-out loss and its epoch.
fn regress(
    be: &Cpu,
    (graph, loss): (&Graph, Var),
    params: &mut [HostMat],
    (x_all, t_all): (&HostMat, &HostMat),
    (epochs, lr, seed, sgd): (usize, f32, u64, bool),
) -> Result<(f64, usize)> {
    let n_val = (x_all.rows / 10).max(BATCH);
    let n_fit = x_all.rows - n_val;
    let x = &x_all.select_rows(&(0..n_fit).collect::<Vec<_>>())?;
    let target = &t_all.select_rows(&(0..n_fit).collect::<Vec<_>>())?;
    let xv = x_all.select_rows(&(n_fit..x_all.rows).collect::<Vec<_>>())?;
    let tv = t_all.select_rows(&(n_fit..x_all.rows).collect::<Vec<_>>())?;
    let mut plan = Plan::new(be, graph, loss, &[])?;
    let shapes: Vec<_> = params.iter().map(HostMat::shape).collect();
    let decay = vec![false; shapes.len()];
    let cfg = OptimConfig {
        rule: if sgd {
            Rule::Sgd { nesterov: false }
        } else {
            Rule::Adam {
                beta1: 0.9,
                beta2: 0.999,
                eps: 1e-8,
            }
        },
        weight_decay: 0.0,
        clip_norm: None,
    };
    let momentum = if sgd { 0.9 } else { 0.0 };
    let mut opt = Optimizer::new(be, &shapes, &decay, cfg)?;
    let mut dev: Vec<HostMat> = params.to_vec();
    let (mut xb, mut tb) = (be.zeros(BATCH, x.cols)?, be.zeros(BATCH, target.cols)?);
    let mut rng = RngStream::new(seed, 1);
    let val_loss = |plan: &mut Plan<Cpu>, dev: &[HostMat], rng: &mut RngStream| -> Result<f64> {
        let p: Vec<&HostMat> = dev.iter().collect();
        let mut sum = 0.0;
        let chunks = xv.rows / BATCH;
        for c in 0..chunks {
            let idx: Vec<usize> = (c * BATCH..(c + 1) * BATCH).collect();
            let (xb, tb) = (xv.select_rows(&idx)?, tv.select_rows(&idx)?);
            plan.forward(
                be,
                &Bindings {
                    params: &p,
                    inputs: &[&xb, &tb],
                },
                rng,
            )?;
            sum += plan.loss_value()?.data[0] as f64;
        }
        Ok(sum / chunks.max(1) as f64)
    };
    let mut best = (val_loss(&mut plan, &dev, &mut rng)?, 0usize, dev.clone());
    for e in 0..epochs {
        let lr = lr * 0.9f32.powi(e as i32);
        let (mut sum, mut n) = (0.0f64, 0usize);
        for idx in batches(x.rows, e, seed) {
            be.write(&mut xb, &x.select_rows(&idx)?)?;
            be.write(&mut tb, &target.select_rows(&idx)?)?;
            {
                let p: Vec<&HostMat> = dev.iter().collect();
                plan.step(
                    be,
                    &Bindings {
                        params: &p,
                        inputs: &[&xb, &tb],
                    },
                    &mut rng,
                )?;
            }
            sum += plan.loss_value()?.data[0] as f64;
            n += 1;
            // (A one-step LISTA never reads S: its gradient is zero.)
            let grads: Vec<HostMat> = (0..dev.len())
                .map(|i| {
                    plan.param_grad(i)
                        .cloned()
                        .unwrap_or_else(|_| HostMat::zeros(shapes[i].0, shapes[i].1))
                })
                .collect();
            let g: Vec<&HostMat> = grads.iter().collect();
            let mut p: Vec<&mut HostMat> = dev.iter_mut().collect();
            opt.step(be, &mut p, &g, lr, momentum)?;
        }
        let train_loss = sum / n.max(1) as f64;
        if !train_loss.is_finite() {
            return Err(Error::value(
                "regression",
                format!("loss {train_loss} at epoch {e}"),
            ));
        }
        let v = val_loss(&mut plan, &dev, &mut rng)?;
        if std::env::var_os("LI_DEBUG").is_some() {
            eprintln!(
                "    epoch {} train {train_loss:.6} held-out {v:.6} (start {:.6})",
                e + 1,
                best.0
            );
        }
        if v < best.0 {
            best = (v, e + 1, dev.clone());
        }
    }
    params.clone_from_slice(&best.2);
    Ok((best.0, best.1))
}

struct Row {
    method: &'static str,
    steps: usize,
    error: f64,
    gap: f64,
}

fn main() -> Result<()> {
    let a = parse()?;
    std::fs::create_dir_all(&a.out).map_err(|e| Error::io(&a.out, e))?;
    let be = Cpu::new();
    let t0 = Instant::now();
    let stamp = |what: &str| println!("[{:7.1} s] {what}", t0.elapsed().as_secs_f64());

    // Patches.
    let spec = NaturalPatches {
        size: SIZE,
        train: a.patches,
        test: a.test_patches,
        whiten: None,
        seed: a.seed,
    };
    let set = natural_patches(&a.data.join("images"), &spec)?;
    let (train, test, scale) = zca_relative_unit_norm(&set.train, &set.test, 1e-3)?;
    stamp(&format!(
        "{} training patches from {} photographs, {} test patches from {} held out (scale {scale:.3})",
        train.rows,
        set.train_images.len(),
        test.rows,
        set.test_images.len()
    ));

    // The dictionary.
    let mut rng = RngStream::new(a.seed, 0x5350_4152);
    let start = initial_dictionary(&train, ATOMS, &mut rng)?;
    let mut dl = DictLearner::new(&be, &start, BATCH)?;
    let learn = Inference::fixed(Algorithm::Fista, LAMBDA, 100);
    let probe = test.select_rows(&(0..test.rows.min(1000)).collect::<Vec<_>>())?;
    let held_out = |dict: &HostMat| -> Result<f64> {
        let d = be.upload(dict)?;
        let mut s = Solver::new(&be, &d, BATCH)?;
        let (z, _) = encode_all(
            &be,
            &mut s,
            &d,
            &probe,
            &Inference::fixed(Algorithm::Fista, LAMBDA, 300),
        )?;
        lasso_objective(&probe, dict, &z, LAMBDA as f64)
    };
    let mut xb = be.zeros(BATCH, train.cols)?;
    let mut curve = vec![format!(
        "epoch 0 held-out objective {:.5}",
        held_out(&start)?
    )];
    for e in 0..a.dict_epochs {
        for idx in batches(train.rows, e, a.seed) {
            be.write(&mut xb, &train.select_rows(&idx)?)?;
            dl.step(&be, &xb, &learn, DictUpdate::Bcd, None, &mut rng)?;
        }
        let dict = dl.dictionary(&be)?;
        curve.push(format!(
            "epoch {} held-out objective {:.5}",
            e + 1,
            held_out(&dict)?
        ));
        stamp(curve.last().expect("pushed"));
    }
    let dict = dl.dictionary(&be)?;
    save_grid(
        &a.out.join("dictionary.png"),
        &dict,
        (SIZE, SIZE),
        16,
        Norm::PerTileSymmetric,
        4,
    )?;

    // The optimal codes.
    let d = be.upload(&dict)?;
    let mut solver = Solver::new(&be, &d, BATCH)?;
    let optimal = Inference::converge(LAMBDA, 1e-4, 20_000);
    let (zs_test, rep) = encode_all(&be, &mut solver, &d, &test, &optimal)?;
    if let Some(w) = rep.warning(&optimal) {
        eprintln!("warning (test codes): {w}");
    }
    let lista_x = train.select_rows(&(0..a.lista_rows.min(train.rows)).collect::<Vec<_>>())?;
    let (zs_train, rep_t) = encode_all(&be, &mut solver, &d, &lista_x, &optimal)?;
    if let Some(w) = rep_t.warning(&optimal) {
        eprintln!("warning (training codes): {w}");
    }
    let e_star = lasso_objective(&test, &dict, &zs_test, LAMBDA as f64)?;
    let density =
        zs_test.data.iter().filter(|&&v| v != 0.0).count() as f64 / zs_test.data.len() as f64;
    stamp(&format!(
        "optimal codes: energy {e_star:.5} per test patch, {:.1} % non-zero, at most {} iterations, residual {:.2e}",
        100.0 * density,
        rep.iters.max(rep_t.iters),
        rep.residual.unwrap_or(f64::NAN).max(rep_t.residual.unwrap_or(0.0))
    ));

    let score = |z: &HostMat| -> Result<(f64, f64)> {
        Ok((
            relative_error(z, &zs_test)?,
            lasso_objective(&test, &dict, z, LAMBDA as f64)? - e_star,
        ))
    };
    let mut rows = Vec::new();
    for &t in &STEPS {
        for (name, alg) in [("ISTA", Algorithm::Ista), ("FISTA", Algorithm::Fista)] {
            let (z, _) = encode_all(
                &be,
                &mut solver,
                &d,
                &test,
                &Inference::fixed(alg, LAMBDA, t),
            )?;
            let (error, gap) = score(&z)?;
            rows.push(Row {
                method: name,
                steps: t,
                error,
                gap,
            });
        }
    }
    stamp("ISTA and FISTA rows");

    // PSD's encoder (T = 0), fitted to h*.
    let parch = PsdArch {
        dim: train.cols,
        atoms: ATOMS,
    };
    let pg = parch.graph(BATCH)?;
    let mut pp = parch.initial(&dict, 0.1)?.to_vec();
    regress(
        &be,
        (&pg.graph, pg.loss),
        &mut pp,
        (&lista_x, &zs_train),
        (a.lista_epochs, 1e-3, a.seed, false),
    )?;
    let enc = PsdEncoder::from_host(&be, parch, &pp)?;
    let (error, gap) = score(&enc.predict(&be, &test, 500)?)?;
    rows.push(Row {
        method: "PSD encoder",
        steps: 0,
        error,
        gap,
    });
    stamp(&format!("PSD encoder: error {error:.4}"));

    // LISTA, one network per T.
    for &t in &a.lista_steps {
        let arch = ListaArch {
            dim: train.cols,
            atoms: ATOMS,
            steps: t,
        };
        let g = arch.graph(BATCH)?;
        let mut p = arch
            .ista_params(&dict, LAMBDA, solver.lipschitz())?
            .to_vec();
        let (val, at) = regress(
            &be,
            (&g.graph, g.loss),
            &mut p,
            (&lista_x, &zs_train),
            (a.lista_epochs, a.lista_lr, a.seed, a.sgd),
        )?;
        let net = Lista::from_host(&be, arch, &p)?;
        let (error, gap) = score(&net.encode(&be, &test, 500)?)?;
        rows.push(Row {
            method: "LISTA",
            steps: t,
            error,
            gap,
        });
        stamp(&format!(
            "LISTA T = {t}: error {error:.4} (held-out training loss {val:.5}, epoch {at})"
        ));
    }

    // PSD proper: dictionary, codes and encoder together.
    let psd = train_psd(&be, &a, &train, &test)?;
    let s = score_model(&be, &psd, &test, &optimal)?;
    let (e_opt, e_enc) = (s.energy, s.encoder_energy.unwrap_or(f64::NAN));
    let psd_dict = psd.dict.clone();
    let e_zero = lasso_objective(
        &test,
        &psd_dict,
        &HostMat::zeros(test.rows, ATOMS),
        LAMBDA as f64,
    )?;
    save_grid(
        &a.out.join("psd-dictionary.png"),
        &psd_dict,
        (SIZE, SIZE),
        16,
        Norm::PerTileSymmetric,
        4,
    )?;
    stamp(&format!(
        "PSD: energy of F(x) {e_enc:.5}, optimal {e_opt:.5}, z = 0 {e_zero:.5}"
    ));

    write_results(&a, &rows, (e_star, density), &curve, (e_enc, e_opt, e_zero))?;
    stamp(&format!("wrote {}", a.out.display()));
    Ok(())
}

/// PSD (Kavukcuoglu et al. 2008) through the library's training loop
/// (`kind = "sparse"`, `encoder = "psd"`): per batch the encoder's
/// prediction, the codes minimising the energy with α‖z − F(x)‖² from it
/// (FISTA, 50 iterations), a block-coordinate dictionary step and an Adam
/// step of the encoder toward those codes.
fn train_psd(be: &Cpu, a: &Args, train: &HostMat, test: &HostMat) -> Result<SparseHost> {
    let mut spec = SparseSpec::new(ATOMS, LAMBDA);
    spec.encoder = "psd".into();
    spec.iters = 50;
    let mut recipe = Recipe::new(spec)
        .epochs(a.psd_epochs.max(1))
        .lr(1e-3)
        .seed(a.seed);
    recipe.train.optimizer = ebmkit::io::recipe::Optimizer::Adam;
    recipe.monitor.rows = 1000;
    let mut t = SparseTrainer::new(be, recipe, train, Some(test))?;
    t.fit(be, None, &mut |_, _| {}, &mut |rec, o| {
        println!("  PSD {}", o.describe(rec))
    })?;
    t.objective.to_host(be)
}

fn write_results(
    a: &Args,
    rows: &[Row],
    (e_star, density): (f64, f64),
    curve: &[String],
    (e_enc, e_opt, e_zero): (f64, f64, f64),
) -> Result<()> {
    let find = |m: &str, t: usize| rows.iter().find(|r| r.method == m && r.steps == t);
    let mut md = String::new();
    md.push_str(&format!(
        "# Learned inference: code prediction error ‖h_T − h*‖² / ‖h*‖² (energy gap per patch)\n\n\
         12x12 patches, ZCA (ε = 1e-3 λ_max), unit mean squared norm; {} training / {} test patches \
         (test from held-out photographs); {ATOMS} atoms, λ = {LAMBDA}; dictionary {} epochs, \
         LISTA / PSD encoder {} epochs on {} patches. Optimal energy {e_star:.5} per test patch, \
         {:.1} % of code entries non-zero.\n\n| T | ISTA | FISTA | LISTA |\n| --- | --- | --- | --- |\n",
        a.patches, a.test_patches, a.dict_epochs, a.lista_epochs, a.lista_rows, 100.0 * density
    ));
    if let Some(p) = find("PSD encoder", 0) {
        md.push_str(&format!(
            "| 0 (PSD encoder) | | | {:.4} ({:.4}) |\n",
            p.error, p.gap
        ));
    }
    for &t in &STEPS {
        let cell = |m| {
            find(m, t)
                .map(|r| format!("{:.4} ({:.4})", r.error, r.gap))
                .unwrap_or_default()
        };
        md.push_str(&format!(
            "| {t} | {} | {} | {} |\n",
            cell("ISTA"),
            cell("FISTA"),
            cell("LISTA")
        ));
    }
    if let (Some(l5), Some(f20)) = (find("LISTA", 5), find("FISTA", 20)) {
        md.push_str(&format!(
            "\nLISTA at T = 5: {:.4}; FISTA at T = 20: {:.4} ({}).\n",
            l5.error,
            f20.error,
            if l5.error <= f20.error {
                "LISTA at or below"
            } else {
                "LISTA above"
            }
        ));
    }
    md.push_str(&format!(
        "\nPSD trained jointly ({} epochs, α = 1): energy of the encoder's codes F(x) alone {e_enc:.5} \
         per test patch, optimal inference {e_opt:.5}, all-zero codes {e_zero:.5}.\n\n\
         Dictionary learning (held-out objective on 1000 test patches, FISTA 300):\n\n",
        a.psd_epochs
    ));
    for c in curve {
        md.push_str(&format!("- {c}\n"));
    }
    write(&a.out.join("table.md"), &md)?;
    let json: Vec<String> = rows
        .iter()
        .map(|r| {
            format!(
                "  {{\"method\": \"{}\", \"T\": {}, \"error\": {:e}, \"energy_gap\": {:e}}}",
                r.method, r.steps, r.error, r.gap
            )
        })
        .collect();
    write(
        &a.out.join("table.json"),
        &format!("[\n{}\n]\n", json.join(",\n")),
    )?;
    let line = |m: &str, color| Line {
        points: rows
            .iter()
            .filter(|r| r.method == m)
            .map(|r| ((r.steps as f64).log10(), r.error.log10()))
            .collect(),
        color,
    };
    let mut lines = vec![
        line("ISTA", Color::Blue),
        line("FISTA", Color::Red),
        line("LISTA", Color::Green),
    ];
    if let Some(p) = find("PSD encoder", 0) {
        lines.push(Line {
            points: vec![(0.0, p.error.log10()), (50f64.log10(), p.error.log10())],
            color: Color::Black,
        });
    }
    save_xy_plot(
        &a.out.join("curve-prediction_error.png"),
        "ISTA blue, FISTA red, LISTA green, PSD encoder black",
        ("log10 T", "log10 ‖h_T − h*‖² / ‖h*‖²"),
        &lines,
    )
}

fn write(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text).map_err(|e| Error::io(path, e))?;
    println!("{text}");
    Ok(())
}
