//! Estimate the test log-likelihood of an RBM three ways and see them
//! agree: exactly (its 20 hidden units are few enough to enumerate), by
//! AIS (a stochastic lower bound on log Z) and by reverse AIS from exact
//! samples (an upper bound).
//!
//! `cargo run --release --example estimate_rbm`

use ebmkit::data::prepare::fixed;
use ebmkit::estimate::ais::Schedule;
use ebmkit::estimate::mean_log_prob;
use ebmkit::estimate::rbm::{ais, exact};
use ebmkit::prelude::*;

fn main() -> ebmkit::Result<()> {
    let be = Cpu::new();
    let mnist = Mnist::load_embedded()?;
    let recipe = Recipe::new(RbmSpec::new(20))
        .method(Method::Cd)
        .epochs(3)
        .lr(0.05);
    let mut t = RbmTrainer::new(&be, recipe, &mnist.train_images, None)?;
    t.fit(&be, None, &mut |_, _| {}, &mut |_, _| {})?;
    let rbm = &t.objective.rbm;

    // The test digits binarised once, as the training run binarised its own.
    let test = fixed(&mnist.test_images, Binarize::Stochastic, 1)?;
    let base = ais::BaseRate::from_host(&mnist.train_images)?;
    // A fifth of the standard 14,500 temperatures: quick, and accurate
    // enough for a 20-unit model.
    let schedule = Schedule::three_stage(100, 800, 2000)?;
    let mut rng = RngStream::new(11, 0);

    let lz = exact::log_z(&be, rbm)?;
    let fwd = ais::forward(&be, rbm, &base, &schedule, 100, &mut rng)?;
    let init = exact::sample(&be, rbm, 100, &mut rng)?;
    let rev = ais::reverse(&be, rbm, &base, &schedule, &init, &mut rng)?;
    for (what, z) in [
        ("exact", lz),
        ("AIS", fwd.log_z),
        ("reverse AIS", rev.log_z),
    ] {
        let ll = mean_log_prob(&be, rbm, &test, z)?;
        println!("{what:>11}: log Z = {z:9.3}, test log-likelihood {ll:8.3} nats");
    }
    Ok(())
}
