//! IDX reader and writer: round trips, and every kind of damaged file gives a
//! typed `Error::Format` that names the file and the fault.

use std::io::Write;
use std::path::{Path, PathBuf};

use ebmkit::data::idx::{read_images, read_labels, IdxArray};
use ebmkit::data::{data_dir, Mnist};
use ebmkit::Error;

/// A scratch folder, removed when dropped.
struct Tmp(PathBuf);

impl Tmp {
    fn join(&self, p: impl AsRef<Path>) -> PathBuf {
        self.0.join(p)
    }
}

impl Drop for Tmp {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn tmp(name: &str) -> Tmp {
    let d = std::env::temp_dir().join(format!("ebmkit-data-idx-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    Tmp(d)
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Read;
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_end(&mut out)
        .unwrap();
    out
}

/// The real 10k test images, decompressed (the damaged copies start here).
fn t10k_images_raw() -> Vec<u8> {
    let p = data_dir().join("mnist/t10k-images-idx3-ubyte.gz");
    gunzip(&std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display())))
}

/// Asserts a Format error that names `path` and contains every `needle`.
fn assert_format(r: ebmkit::Result<IdxArray>, path: &Path, needles: &[&str]) {
    match r {
        Err(e @ Error::Format { .. }) => {
            let msg = e.to_string();
            assert!(msg.contains(path.to_str().unwrap()), "no path in: {msg}");
            for n in needles {
                assert!(msg.contains(n), "{n:?} not in: {msg}");
            }
        }
        other => panic!(
            "expected Error::Format for {}, got {other:?}",
            path.display()
        ),
    }
}

#[test]
fn round_trip_raw_and_gzip_files() {
    let d = tmp("roundtrip");
    for dims in [vec![7], vec![3, 4], vec![2, 3, 5], vec![0, 28, 28]] {
        let n: usize = dims.iter().product();
        let a =
            IdxArray::new(dims.clone(), (0..n).map(|i| (i * 37 % 256) as u8).collect()).unwrap();
        for gz in [false, true] {
            let p = d.join(format!("a{}-{gz}", dims.len()));
            a.write(&p, gz).unwrap();
            let raw = std::fs::read(&p).unwrap();
            assert_eq!(raw.starts_with(&[0x1f, 0x8b]), gz);
            assert_eq!(IdxArray::read(&p).unwrap(), a);
        }
    }
    // Gzip output is reproducible: no timestamp in the header.
    let a = IdxArray::new(vec![4], vec![1, 2, 3, 4]).unwrap();
    a.write(d.join("x.gz"), true).unwrap();
    a.write(d.join("y.gz"), true).unwrap();
    assert_eq!(
        std::fs::read(d.join("x.gz")).unwrap(),
        std::fs::read(d.join("y.gz")).unwrap()
    );
}

#[test]
fn compression_is_detected_from_content_not_name() {
    let d = tmp("detect");
    let a = IdxArray::new(vec![2, 2], vec![9, 8, 7, 6]).unwrap();
    let gz_plain_name = d.join("labels-idx1-ubyte");
    let raw_gz_name = d.join("labels-idx1-ubyte.gz");
    std::fs::write(&gz_plain_name, gzip(&a.encode())).unwrap();
    std::fs::write(&raw_gz_name, a.encode()).unwrap();
    assert_eq!(IdxArray::read(&gz_plain_name).unwrap(), a);
    assert_eq!(IdxArray::read(&raw_gz_name).unwrap(), a);
}

#[test]
fn real_test_images_parse_raw_and_gzip() {
    let raw = t10k_images_raw();
    let d = tmp("real");
    let p = d.join("t10k-images-idx3-ubyte");
    std::fs::write(&p, &raw).unwrap();
    let a = read_images(&p).unwrap();
    assert_eq!(a.dims, vec![10000, 28, 28]);
    assert_eq!(a.encode(), raw);
    let g = read_images(data_dir().join("mnist/t10k-images-idx3-ubyte.gz")).unwrap();
    assert_eq!(g, a);
}

#[test]
fn wrong_magic() {
    let raw = t10k_images_raw();
    let d = tmp("magic");

    // An image file whose magic says labels.
    let mut b = raw.clone();
    b[3] = 1;
    let p = d.join("labels-magic");
    std::fs::write(&p, &b).unwrap();
    assert_format(
        read_images(&p),
        &p,
        &["bad IDX magic 2049", "expected 2051"],
    );

    // A label file read as images, and images read as labels.
    let lp = data_dir().join("mnist/t10k-labels-idx1-ubyte.gz");
    assert_format(
        read_images(&lp),
        &lp,
        &["bad IDX magic 2049", "expected 2051"],
    );
    let ip = data_dir().join("mnist/t10k-images-idx3-ubyte.gz");
    assert_format(
        read_labels(&ip),
        &ip,
        &["bad IDX magic 2051", "expected 2049"],
    );

    // Not IDX at all.
    let mut b = raw.clone();
    b[..4].copy_from_slice(b"\x89PNG");
    let p = d.join("png-magic");
    std::fs::write(&p, &b).unwrap();
    assert_format(IdxArray::read(&p), &p, &["two zero bytes"]);
    assert_format(read_images(&p), &p, &["bad IDX magic", "expected 2051"]);

    // An IDX type this reader does not handle (0x0D, float).
    let mut b = raw.clone();
    b[2] = 0x0D;
    let p = d.join("float-type");
    std::fs::write(&p, &b).unwrap();
    assert_format(IdxArray::read(&p), &p, &["unsupported IDX type code 0x0d"]);
}

#[test]
fn truncated() {
    let raw = t10k_images_raw();
    let d = tmp("trunc");
    let p = d.join("t10k-images-idx3-ubyte");
    std::fs::write(&p, &raw[..1000]).unwrap();
    assert_format(
        read_images(&p),
        &p,
        &["expected 7840016 bytes for 10000x28x28 images, found 1000"],
    );
    // The same, compressed: the count is of decompressed bytes.
    let pg = d.join("t10k-images-idx3-ubyte.gz");
    std::fs::write(&pg, gzip(&raw[..1000])).unwrap();
    assert_format(
        read_images(&pg),
        &pg,
        &["expected 7840016 decompressed bytes for 10000x28x28 images, found 1000"],
    );
    // Inside the header, and nothing at all.
    for (k, what) in [(10, "truncated header"), (2, "too short"), (0, "too short")] {
        std::fs::write(&p, &raw[..k]).unwrap();
        assert_format(read_images(&p), &p, &[what]);
    }
    // A gzip stream cut short.
    let gz = gzip(&raw);
    std::fs::write(&pg, &gz[..gz.len() / 2]).unwrap();
    assert_format(read_images(&pg), &pg, &["truncated gzip data"]);
}

#[test]
fn trailing_bytes() {
    let raw = t10k_images_raw();
    let d = tmp("trail");
    let mut b = raw.clone();
    b.extend_from_slice(b"garbage");
    let p = d.join("t10k-images-idx3-ubyte");
    std::fs::write(&p, &b).unwrap();
    assert_format(
        read_images(&p),
        &p,
        &[
            "trailing bytes",
            "expected 7840016 bytes for 10000x28x28 images, found 7840023",
        ],
    );
    let pg = d.join("t10k-images-idx3-ubyte.gz");
    std::fs::write(&pg, gzip(&b)).unwrap();
    assert_format(read_images(&pg), &pg, &["trailing bytes", "found 7840023"]);
}

#[test]
fn wrong_dimension_count() {
    let raw = t10k_images_raw();
    let d = tmp("ndims");
    // Magic 0x0802 with the original 3-D header behind it: as images, the
    // magic is wrong; as a generic array, the 28 rows of pixels become
    // unexpected bytes.
    let mut b = raw.clone();
    b[3] = 2;
    let p = d.join("two-dims");
    std::fs::write(&p, &b).unwrap();
    assert_format(
        read_images(&p),
        &p,
        &["bad IDX magic 2050", "expected 2051"],
    );
    assert_format(
        IdxArray::read(&p),
        &p,
        &["trailing bytes", "10000x28 values"],
    );
    // Zero dimensions.
    b[3] = 0;
    std::fs::write(&p, &b).unwrap();
    assert_format(IdxArray::read(&p), &p, &["zero dimensions"]);
    // Dimensions whose product overflows or is absurd.
    let mut h = vec![0, 0, 8, 3];
    for dim in [u32::MAX, u32::MAX, 2] {
        h.extend_from_slice(&dim.to_be_bytes());
    }
    std::fs::write(&p, &h).unwrap();
    assert_format(IdxArray::read(&p), &p, &["header is corrupt"]);
}

#[test]
fn gzip_with_garbage() {
    let raw = t10k_images_raw();
    let d = tmp("gzgarbage");
    // Gzip magic, then noise.
    let mut b = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255];
    b.extend((0..5000u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8));
    let p = d.join("noise.gz");
    std::fs::write(&p, &b).unwrap();
    assert_format(IdxArray::read(&p), &p, &["corrupt or truncated gzip data"]);
    // A valid stream with its compressed body damaged.
    let mut g = gzip(&raw);
    let mid = g.len() / 2;
    for x in &mut g[mid..mid + 64] {
        *x ^= 0x5a;
    }
    std::fs::write(&p, &g).unwrap();
    assert_format(read_images(&p), &p, &[]);
    // A valid stream followed by bytes that are not another gzip member.
    let small = IdxArray::new(vec![3], vec![1, 2, 3]).unwrap();
    let mut g = gzip(&small.encode());
    g.extend_from_slice(b"not gzip at all");
    std::fs::write(&p, &g).unwrap();
    assert_format(IdxArray::read(&p), &p, &["corrupt or truncated gzip data"]);
}

#[test]
fn missing_file_is_an_io_error() {
    let d = tmp("missing");
    let p = d.join("nope-idx1-ubyte.gz");
    match IdxArray::read(&p) {
        Err(e @ Error::Io { .. }) => assert!(e.to_string().contains("nope-idx1-ubyte.gz")),
        other => panic!("{other:?}"),
    }
}

#[test]
fn mnist_load_reports_the_damaged_file() {
    let d = tmp("mnistdir");
    let src = Mnist::embedded_dir();
    for n in ebmkit::data::mnist::FILE_NAMES {
        let f = format!("{n}.gz");
        std::fs::copy(src.join(&f), d.join(&f)).unwrap();
    }
    assert_eq!(Mnist::load(&d.0).unwrap().train_images.rows, 5000);
    // A raw file takes precedence only if no .gz exists; damage the .gz.
    let bad = d.join("t10k-labels-idx1-ubyte.gz");
    std::fs::write(&bad, gzip(&[0, 0, 8, 1, 0, 0, 3, 232, 1, 2])).unwrap();
    match Mnist::load(&d.0) {
        Err(e @ Error::Format { .. }) => {
            let m = e.to_string();
            assert!(
                m.contains("t10k-labels-idx1-ubyte.gz") && m.contains("truncated"),
                "{m}"
            );
        }
        other => panic!("{other:?}"),
    }
    // Labels outside 0-9.
    IdxArray::new(vec![1000], vec![10; 1000])
        .unwrap()
        .write(&bad, true)
        .unwrap();
    let m = Mnist::load(&d.0).unwrap_err().to_string();
    assert!(m.contains("label 10 at index 0"), "{m}");
    // Label count that does not match the image count.
    IdxArray::new(vec![999], vec![1; 999])
        .unwrap()
        .write(&bad, true)
        .unwrap();
    let m = Mnist::load(&d.0).unwrap_err().to_string();
    assert!(m.contains("999 labels for the 1000 images"), "{m}");
}

#[test]
fn mnist_load_missing_files_is_an_io_error() {
    let d = tmp("empty");
    match Mnist::load(&d.0) {
        Err(e @ Error::Io { .. }) => {
            assert!(e.to_string().contains("train-images-idx3-ubyte"), "{e}")
        }
        other => panic!("{other:?}"),
    }
}
