//! `.npy` reading and writing: the shared LFW subset, hand-built headers of
//! every supported flavour, round trips, and damaged files.

use std::path::{Path, PathBuf};

use ebmkit::data::npy::{encode_f32, write_npy_shape};
use ebmkit::data::{data_dir, read_npy, write_npy, NpyArray};
use ebmkit::{Error, HostMat};

struct Tmp(PathBuf);

impl Drop for Tmp {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn tmp(name: &str) -> Tmp {
    let d = std::env::temp_dir().join(format!("ebmkit-data-npy-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    Tmp(d)
}

/// A .npy file with the given version, header dict and raw data.
fn npy(major: u8, dict: &str, body: &[u8]) -> Vec<u8> {
    let mut h = dict.to_string();
    let pre = if major == 1 { 10 } else { 12 };
    while !(pre + h.len() + 1).is_multiple_of(64) {
        h.push(' ');
    }
    h.push('\n');
    let mut b = b"\x93NUMPY".to_vec();
    b.extend_from_slice(&[major, 0]);
    if major == 1 {
        b.extend_from_slice(&(h.len() as u16).to_le_bytes());
    } else {
        b.extend_from_slice(&(h.len() as u32).to_le_bytes());
    }
    b.extend_from_slice(h.as_bytes());
    b.extend_from_slice(body);
    b
}

fn parse(bytes: &[u8]) -> ebmkit::Result<NpyArray> {
    NpyArray::from_bytes(bytes, Path::new("mem.npy"))
}

#[test]
fn lfw_subset() {
    let p = data_dir().join("images/lfw_subset.npy");
    let a = NpyArray::read(&p).unwrap();
    assert_eq!(a.shape, vec![200, 25, 25]);
    let m = read_npy(&p).unwrap();
    assert_eq!(m.shape(), (200, 625));
    assert!(m.data.iter().all(|v| (0.0..=1.0).contains(v)));
    // Reference values from numpy.load.
    let mean = m.data.iter().map(|&v| v as f64).sum::<f64>() / m.data.len() as f64;
    assert!((mean - 0.377_105_917_058_917_7).abs() < 1e-6, "{mean}");
    assert_eq!(&m.row(0)[..3], &[0.288_888_87, 0.329_411_77, 0.380_392_16]);
    assert_eq!(m.get(199, 624), 0.047_712_419_182_062_205_f64 as f32);
}

#[test]
fn f32_round_trip_2d_and_nd() {
    let d = tmp("rt");
    let m = HostMat::from_fn(7, 5, |r, c| (r as f32 - 3.0) * 0.25 + c as f32 * 1e-3);
    let p = d.0.join("m.npy");
    write_npy(&p, &m).unwrap();
    assert_eq!(read_npy(&p).unwrap(), m);
    let raw = std::fs::read(&p).unwrap();
    assert!(std::str::from_utf8(&raw[10..74])
        .unwrap()
        .contains("'shape': (7, 5)"));

    let data: Vec<f32> = (0..24).map(|i| i as f32 * 0.5).collect();
    write_npy_shape(&p, &[2, 3, 4], &data).unwrap();
    let a = NpyArray::read(&p).unwrap();
    assert_eq!(a.shape, vec![2, 3, 4]);
    assert_eq!(a.data, data);
    let m = a.into_mat();
    assert_eq!(m.shape(), (2, 12));
    assert!(write_npy_shape(&p, &[5], &data).is_err());
}

#[test]
fn dtypes_versions_and_orders() {
    let vals = [1.5f64, -2.25, 3.0, 0.125, 1e-3, 7.0];
    let f8: Vec<u8> = vals.iter().flat_map(|v| v.to_le_bytes()).collect();
    let f4: Vec<u8> = vals
        .iter()
        .flat_map(|&v| (v as f32).to_le_bytes())
        .collect();
    let f4be: Vec<u8> = vals
        .iter()
        .flat_map(|&v| (v as f32).to_be_bytes())
        .collect();
    let want: Vec<f32> = vals.iter().map(|&v| v as f32).collect();
    for (major, descr, body) in [
        (1, "<f8", &f8),
        (2, "<f8", &f8),
        (3, "<f4", &f4),
        (1, ">f4", &f4be),
    ] {
        let dict = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': (2, 3), }}");
        let a = parse(&npy(major, &dict, body)).unwrap();
        assert_eq!((a.shape.clone(), a.data), (vec![2, 3], want.clone()));
    }
    // uint8 keeps its 0..=255 values.
    let a = parse(&npy(
        1,
        "{'descr': '|u1', 'fortran_order': False, 'shape': (3,), }",
        &[0, 128, 255],
    ))
    .unwrap();
    assert_eq!(a.data, vec![0.0, 128.0, 255.0]);
    assert_eq!(a.into_mat().shape(), (3, 1));
    // Fortran order: numpy writes the column-major bytes of [[1,2,3],[4,5,6]]
    // as 1 4 2 5 3 6.
    let fo: Vec<u8> = [1.0f32, 4.0, 2.0, 5.0, 3.0, 6.0]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    let a = parse(&npy(
        1,
        "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }",
        &fo,
    ))
    .unwrap();
    assert_eq!(a.data, vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    // Spacing and quoting variants; a scalar.
    let a = parse(&npy(
        1,
        "{\"shape\":(),\"fortran_order\":False,\"descr\":\"<f8\"}",
        &2.5f64.to_le_bytes(),
    ))
    .unwrap();
    assert_eq!((a.shape.clone(), a.into_mat().data), (vec![], vec![2.5]));
}

fn assert_err(bytes: &[u8], needle: &str) {
    match parse(bytes) {
        Err(e @ Error::Format { .. }) => {
            let m = e.to_string();
            assert!(
                m.contains("mem.npy") && m.contains(needle),
                "{needle:?} not in {m}"
            );
        }
        other => panic!("expected a format error with {needle:?}, got {other:?}"),
    }
}

#[test]
fn damaged_files() {
    let good = encode_f32(&[2, 2], &[1.0, 2.0, 3.0, 4.0]).unwrap();
    assert_err(b"PK\x03\x04 not npy", "not a .npy file");
    assert_err(
        &good[..good.len() - 1],
        "truncated: shape [2, 2] of '<f4' needs 16",
    );
    let mut t = good.clone();
    t.push(0);
    assert_err(&t, "trailing bytes");
    let mut v = good.clone();
    v[6] = 9;
    assert_err(&v, "unsupported .npy format version 9.0");
    let dict = |d: &str| npy(1, d, &[0; 16]);
    assert_err(
        &dict("{'descr': '<i8', 'fortran_order': False, 'shape': (2,), }"),
        "unsupported dtype '<i8'",
    );
    assert_err(&dict("{'descr': '<f8', 'shape': (2,), }"), "fortran_order");
    assert_err(&dict("{'descr': '<f8', 'fortran_order': False}"), "shape");
    assert_err(
        &dict("{'descr': '<f8', 'fortran_order': False, 'shape': (2,"),
        "cannot parse",
    );
    assert_err(
        &dict("{'descr': '<f8', 'fortran_order': False, 'shape': (99999999999, 99999999999, 99999999999), }"),
        "overflows",
    );
    let mut h = good.clone();
    h[8] = 0xff;
    h[9] = 0xff;
    assert_err(&h, "header claims 65535 bytes");
    // A missing file is an I/O error, not a format error.
    assert!(matches!(
        read_npy("/nonexistent/ebmkit.npy"),
        Err(Error::Io { .. })
    ));
}
