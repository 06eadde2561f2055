//! Writes the embedded MNIST subset `data/mnist-small/` (the first 5000
//! training and first 1000 test digits, gzipped IDX) from the full set, with
//! the library's own IDX reader and writer, and checks the result reloads.
//!
//! `cargo run --example make_subset [SOURCE_DIR] [OUT_DIR]`; the source
//! defaults to the data folder (`EBMKIT_DATA` or `../shared/data`).

use std::path::PathBuf;

use ebmkit::data::idx::{read_images, read_labels};
use ebmkit::data::mnist::{Mnist, FILE_NAMES};

const TRAIN: usize = 5000;
const TEST: usize = 1000;

fn main() -> ebmkit::Result<()> {
    let mut args = std::env::args().skip(1);
    let src = args
        .next()
        .map(PathBuf::from)
        .unwrap_or_else(ebmkit::data::data_dir);
    let src = if src.join("mnist").is_dir() {
        src.join("mnist")
    } else {
        src
    };
    let out = args
        .next()
        .map(PathBuf::from)
        .unwrap_or_else(Mnist::embedded_dir);
    std::fs::create_dir_all(&out).map_err(|e| ebmkit::Error::io(&out, e))?;

    for (i, stem) in FILE_NAMES.iter().enumerate() {
        let gz = src.join(format!("{stem}.gz"));
        let from = if gz.is_file() { gz } else { src.join(stem) };
        let keep = if i < 2 { TRAIN } else { TEST };
        let arr = if i % 2 == 0 {
            read_images(&from)?
        } else {
            read_labels(&from)?
        };
        let to = out.join(format!("{stem}.gz"));
        arr.head(keep)?.write(&to, true)?;
        println!(
            "{} -> {} ({keep} of {})",
            from.display(),
            to.display(),
            arr.len()
        );
    }
    let m = Mnist::load(&out)?;
    assert_eq!((m.train_images.rows, m.test_images.rows), (TRAIN, TEST));
    Ok(())
}
