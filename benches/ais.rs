//! One full AIS estimate (100 runs x 14,500 temperatures, Salakhutdinov &
//! Murray's schedule) on a 784 x 500 RBM, per available backend; prints the
//! seconds taken and the estimate.
//!
//! `cargo bench --bench ais [-- cpu|gpu] [--runs=N] [--temps=N]`: `--temps`
//! scales the three stages of the standard schedule together (for a quick
//! look; the targets are for the full 14,500). A software GPU adapter
//! (lavapipe) is skipped unless `gpu` is named.
//!
//! The RBM is random but shaped like a trained one: visible biases are the
//! MNIST base rates, weights N(0, 0.05²), hidden biases -1.

use ebmkit::backend::cpu::Cpu;
use ebmkit::backend::gpu::Gpu;
use ebmkit::data::{binarize_threshold, Mnist};
use ebmkit::estimate::ais::Schedule;
use ebmkit::estimate::rbm::ais::{self, BaseRate};
use ebmkit::models::rbm::{Rbm as Model, RbmHost};
use ebmkit::rng::RngStream;
use ebmkit::{Backend, Fused, HostMat};
use std::time::Instant;

struct Rbm {
    w: HostMat,
    b_v: HostMat,
    b_h: HostMat,
    base: BaseRate,
}

fn rbm() -> Rbm {
    let (nv, nh) = (784, 500);
    // The subset's compile-time path, else the same folder under the working directory.
    let base = match Mnist::load_embedded().or_else(|_| Mnist::load("data/mnist-small")) {
        Ok(m) => BaseRate::from_host(&binarize_threshold(&m.train_images, 0.5)).unwrap(),
        Err(e) => {
            eprintln!("no embedded MNIST ({e}); uniform base rates");
            BaseRate::uniform(nv)
        }
    };
    let d = RngStream::new(1, 1).next_draw();
    Rbm {
        w: HostMat::from_fn(nv, nh, |r, c| 0.05 * d.normal(r * nh + c)),
        b_v: HostMat::new(1, nv, base.b_a.clone()).unwrap(),
        b_h: HostMat::from_fn(1, nh, |_, _| -1.0),
        base,
    }
}

fn time_one<B: Fused>(be: &B, m: &Rbm, schedule: &Schedule, runs: usize) -> ebmkit::Result<()> {
    let host = RbmHost::binary(m.w.clone(), m.b_v.clone(), m.b_h.clone());
    let model = Model::from_host(be, &host)?;
    be.sync()?;
    let mut rng = RngStream::new(42, 0);
    let t = Instant::now();
    let e = ais::forward(be, &model, &m.base, schedule, runs, &mut rng)?;
    let s = t.elapsed().as_secs_f64();
    println!(
        "ais {}: {} runs x {} temperatures, 784x500: {:.2} s ({:.1} us/temperature); \
         log Z = {:.3} [{:.3}, {:.3}], ESS {:.1}",
        be.name(),
        runs,
        schedule.len(),
        s,
        s * 1e6 / schedule.len() as f64,
        e.log_z,
        e.log_z_lower,
        e.log_z_upper,
        e.ess
    );
    Ok(())
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let flag = |name: &str| -> Option<usize> {
        args.iter()
            .find_map(|a| a.strip_prefix(name).and_then(|v| v.parse().ok()))
    };
    let runs = flag("--runs=").unwrap_or(ais::DEFAULT_RUNS);
    let schedule = match flag("--temps=") {
        Some(n) => {
            let f = n as f64 / 14_500.0;
            let k = |c: f64| ((c * f).round() as usize).max(2);
            Schedule::three_stage(k(500.0), k(4000.0), k(10_000.0)).unwrap()
        }
        None => Schedule::standard(),
    };
    let named = |b: &str| args.iter().any(|a| a == b);
    let any_named = named("cpu") || named("gpu");
    let m = rbm();
    if !any_named || named("gpu") {
        match Gpu::new() {
            Ok(g) if named("gpu") || !g.is_software() => {
                let d0 = g.dispatches();
                if let Err(e) = time_one(&g, &m, &schedule, runs) {
                    eprintln!("ais on {}: {e}", g.name());
                }
                println!(
                    "ais {}: {:.2} dispatches per temperature",
                    g.name(),
                    (g.dispatches() - d0) as f64 / schedule.len() as f64
                );
            }
            Ok(g) => println!(
                "ais: skipping the software adapter {} (name `gpu` to run it)",
                g.name()
            ),
            Err(e) => println!("ais: no GPU ({e})"),
        }
    }
    if !any_named || named("cpu") {
        if let Err(e) = time_one(&Cpu::new(), &m, &schedule, runs) {
            eprintln!("ais on cpu: {e}");
        }
    }
}
