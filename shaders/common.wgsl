// Shared by every ebmkit kernel: the flat index of a thread in a possibly
// two-dimensional grid of 256-thread workgroups, and the numerics below that
// must agree with the CPU on every adapter. Each kernel's file declares
// its own parameter struct (mirrored by a #[repr(C)] struct in
// src/backend/gpu/kernels.rs, field for field) and binds it as
// `@group(0) @binding(0) var<uniform> P`: one slot of the uniform ring,
// bound with a dynamic offset.

// Grids larger than 65535 workgroups are laid out as (x, y); the element a
// thread works on is (wid.y * nwg.x + wid.x) * 256 + lid.
fn flat_id(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 {
    return (wid.y * nwg.x + wid.x) * 256u + lid;
}

// The numerics near under- and overflow, written to hold on any adapter.
// What an adapter may take away, and so nothing here leans on:
// - the order of evaluation: Mesa folds (1 + y) - 1 into y (on Vulkan and
//   GL) and, on GL, 1 + y == 1 into y == 0, which undoes Goldberg's
//   compensated log1p (softplus(-30) came out 0 on llvmpipe, softplus(-16.5)
//   75 % high on lavapipe);
// - a native log with relative precision near 1: the Vulkan and GLSL specs
//   bound it only to 2^-21 absolutely on [0.5, 2], a relative 2^-21 / y for
//   log(1 + y);
// - a native cos: Vulkan allows 2^-11 absolutely on [-pi, pi], GLSL sets
//   no bound;
// - infinities (GLSL need not keep them), so no exp overflows on the way
//   to a finite result.
// Native exp (3 + 2|x| ulp) and log away from 1 (3 ulp) are within what the
// tests allow.

// log(1 + y) for -1/2 <= y <= 1 without log: 2 atanh(s) with
// s = y / (2 + y), |s| <= 1/3, whose series is summed past the f32
// precision (the first term left out, s^16 / 17, is below 1.4e-9 of the
// first). 2 + y has no cancellation and polynomial terms are all positive,
// so no reassociation can cost precision.
fn log1p_mid(y: f32) -> f32 {
    let s = y / (2.0 + y);
    let s2 = s * s;
    let p = 1.0 + s2 * (1.0 / 3.0 + s2 * (1.0 / 5.0 + s2 * (1.0 / 7.0 + s2 * (1.0 / 9.0
        + s2 * (1.0 / 11.0 + s2 * (1.0 / 13.0 + s2 * (1.0 / 15.0)))))));
    return 2.0 * s * p;
}

// log(u) for 0 < u <= 1: the native log where it has relative precision,
// log1p_mid(u - 1) near 1 (u - 1 is exact for u >= 1/2).
fn log_unit(u: f32) -> f32 {
    if u >= 0.5 {
        return log1p_mid(u - 1.0);
    }
    return log(u);
}

// 1 / (1 + e^-x) through e^-|x| <= 1, so nothing overflows for any x.
fn sigmoid(x: f32) -> f32 {
    let e = exp(-abs(x));
    let r = 1.0 / (1.0 + e);
    return select(e * r, r, x >= 0.0);
}

fn sigmoid4(x: vec4<f32>) -> vec4<f32> {
    let e = exp(-abs(x));
    let r = 1.0 / (1.0 + e);
    return select(e * r, r, x >= vec4<f32>(0.0));
}

// log(1 + e^x) = max(x, 0) + log1p(e^-|x|). Beyond |x| = 20, e^-|x| is below
// 2^-28: the log1p term is e^-|x| to f32 precision, which leaves e^x below
// and x above (the term is under half an ulp of x there), as the CPU's
// rounding does.
fn softplus(x: f32) -> f32 {
    if x > 20.0 {
        return x;
    }
    if x < -20.0 {
        return exp(x);
    }
    return max(x, 0.0) + log1p_mid(exp(-abs(x)));
}

// cos(2 pi t) for -1/2 <= t <= 1/2 by quadrant and Taylor polynomials on
// [-pi/4, pi/4] (remainders below 3e-8): t - q / 4 is exact for a t on the
// 2^-24 grid of the uniforms, so only the polynomials round.
fn cos_turns(t: f32) -> f32 {
    let q = round(4.0 * t);
    let a = 6.2831855 * (t - 0.25 * q);
    let a2 = a * a;
    let c = 1.0 + a2 * (-1.0 / 2.0 + a2 * (1.0 / 24.0 + a2 * (-1.0 / 720.0 + a2 * (1.0 / 40320.0))));
    let s = a * (1.0 + a2 * (-1.0 / 6.0 + a2 * (1.0 / 120.0 + a2 * (-1.0 / 5040.0 + a2 * (1.0 / 362880.0)))));
    // cos(a + q pi / 2), q mod 4 (two's complement: -1 & 3 = 3).
    switch i32(q) & 3 {
        case 0: { return c; }
        case 1: { return -s; }
        case 2: { return -c; }
        default: { return s; }
    }
}
