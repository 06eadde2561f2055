//! The linear baseline of the deep auto-encoder (Hinton & Salakhutdinov
//! 2006, Fig. 2): PCA with `k` components fitted on the 60,000 MNIST
//! training digits, and the mean squared reconstruction error per test
//! digit (Σ over the 784 pixels) of projecting onto them and back.
//!
//! `cargo run --release --example pca_mnist [k] [--data DIR]` (default 30
//! components; the data folder defaults to $EBMKIT_DATA, else
//! ../shared/data).

use ebmkit::data::{WhitenConfig, Whitener};
use ebmkit::prelude::*;

fn main() -> ebmkit::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let k: usize = match args.first().filter(|a| !a.starts_with("--")) {
        Some(a) => a
            .parse()
            .map_err(|_| Error::value("k", format!("'{a}' is not a component count")))?,
        None => 30,
    };
    let mnist = match args.iter().position(|a| a == "--data") {
        Some(i) => {
            let dir = args
                .get(i + 1)
                .ok_or_else(|| Error::value("--data", "needs a folder"))?;
            Mnist::load(dir)?
        }
        None => Mnist::load_default()?,
    };
    let t0 = std::time::Instant::now();
    // The whitening scale and its inverse cancel: the round trip is the
    // projection onto the top k principal directions.
    let pca = Whitener::fit(&mnist.train_images, &WhitenConfig::pca(Some(k), 1e-9))?;
    let test = &mnist.test_images;
    let rec = pca.inverse_transform(&pca.transform(test)?)?;
    let se: f64 = rec
        .data
        .iter()
        .zip(&test.data)
        .map(|(a, b)| ((a - b) as f64).powi(2))
        .sum::<f64>()
        / test.rows as f64;
    let kept: f64 = pca.eigenvalues()[..k].iter().sum();
    let total: f64 = pca.eigenvalues().iter().sum();
    println!(
        "PCA, {k} components: test squared reconstruction error {se:.3} per digit ({} digits; {:.1} % of the training variance kept; {:.1} s)",
        test.rows,
        100.0 * kept / total,
        t0.elapsed().as_secs_f64()
    );
    Ok(())
}
