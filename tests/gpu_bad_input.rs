//! Bad input to the GPU backend: clear errors, no panics.

#[macro_use]
mod common;
use ebmkit::prelude::*;
use ebmkit::{Backend, Binary, Error, HostMat, RngStream, Unary};

fn expect_shape<T: std::fmt::Debug>(r: ebmkit::Result<T>, needles: &[&str]) {
    match r {
        Err(e @ Error::Shape { .. }) => {
            let msg = e.to_string();
            for n in needles {
                assert!(msg.contains(n), "'{msg}' should mention '{n}'");
            }
        }
        other => panic!("expected a shape error mentioning {needles:?}, got {other:?}"),
    }
}

#[test]
fn shape_mismatches_name_the_shapes() {
    let g = gpu_or_skip!();
    let a = g.zeros(3, 4).unwrap();
    let b = g.zeros(5, 2).unwrap();
    let mut c = g.zeros(3, 2).unwrap();
    expect_shape(
        g.gemm(1.0, a.n(), b.n(), 0.0, &mut c),
        &["gemm", "3x4", "5x2"],
    );
    let mut rng = RngStream::new(1, 0);
    let bias = g.zeros(1, 7).unwrap();
    let b2 = g.zeros(4, 2).unwrap();
    expect_shape(
        g.sigmoid_affine(1.0, a.n(), b2.n(), &bias, &mut c, None),
        &["sigmoid_affine", "1x2", "1x7"],
    );
    let x = g.zeros(3, 4).unwrap();
    let mut y = g.zeros(4, 3).unwrap();
    expect_shape(g.binary(Binary::Add, &x, &x, &mut y), &["3x4", "4x3"]);
    expect_shape(g.unary(Unary::Exp, &x, &mut y), &["3x4", "4x3"]);
    expect_shape(g.copy(&x, &mut y), &["3x4", "4x3"]);
    expect_shape(g.axpby(1.0, &x, 1.0, &mut y), &["3x4", "4x3"]);
    let mut m = g.zeros(3, 4).unwrap();
    expect_shape(
        g.add_row_vec(&mut m, &g.zeros(1, 3).unwrap(), 1.0),
        &["1x4", "1x3"],
    );
    expect_shape(
        g.add_col_vec(&mut m, &g.zeros(4, 1).unwrap(), 1.0),
        &["3x1", "4x1"],
    );
    expect_shape(
        g.mul_row_vec(&mut m, &g.zeros(1, 3).unwrap()),
        &["1x4", "1x3"],
    );
    expect_shape(
        g.mul_col_vec(&mut m, &g.zeros(4, 1).unwrap()),
        &["3x1", "4x1"],
    );
    expect_shape(
        g.col_sums(&m, 1.0, 0.0, &mut g.zeros(3, 1).unwrap()),
        &["col_sums", "1x4"],
    );
    expect_shape(
        g.row_sums(&m, 1.0, 0.0, &mut g.zeros(1, 4).unwrap()),
        &["row_sums", "3x1"],
    );
    expect_shape(g.bernoulli(&x, &mut y, &mut rng), &["3x4", "4x3"]);
    expect_shape(g.gaussian(&x, 1.0, &mut y, &mut rng), &["3x4", "4x3"]);
    expect_shape(g.write(&mut m, &HostMat::zeros(2, 2)), &["3x4", "2x2"]);
    assert_eq!(rng, RngStream::new(1, 0), "failed calls consume no draws");
}

#[test]
fn huge_allocation_is_a_limit_error() {
    let g = gpu_or_skip!();
    match g.zeros(200_000, 200_000) {
        Err(e @ Error::Limit { .. }) => {
            let msg = e.to_string();
            assert!(msg.contains("200000x200000"), "{msg}");
            assert!(msg.contains("max_buffer_size"), "{msg}");
        }
        other => panic!("expected Error::Limit, got {other:?}"),
    }
    assert!(matches!(g.zeros(usize::MAX, 2), Err(Error::Limit { .. })));
    // The device is still usable afterwards.
    let x = g
        .upload(&HostMat::from_fn(2, 2, |r, c| (r + c) as f32))
        .unwrap();
    assert_eq!(g.sum(&x).unwrap(), 4.0);
}

#[test]
fn gather_index_out_of_range() {
    let g = gpu_or_skip!();
    let src = g.zeros(5, 3).unwrap();
    let mut dst = g.zeros(2, 3).unwrap();
    match g.gather_rows(&src, &[1, 5], &mut dst) {
        Err(e) => assert!(e.to_string().contains("5"), "{e}"),
        Ok(()) => panic!("index 5 of 5 rows accepted"),
    }
    let mut wrong = g.zeros(3, 3).unwrap();
    expect_shape(g.gather_rows(&src, &[1, 2], &mut wrong), &["2x3", "3x3"]);
    g.sync().unwrap();
}
