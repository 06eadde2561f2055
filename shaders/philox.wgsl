// Philox4x32-10, the twin of src/rng.rs. WGSL has no 64-bit integers, so the
// 32x32->64 multiply is assembled from 16-bit halves.
// Layout of a draw: key = (P.key0, P.key1); counter = (block, P.stream,
// P.off_lo, P.off_hi). Uniform element i = word i % 4 of block i / 4.
// Every kernel that draws has these five u32 fields, under these names, in
// its parameter struct (DrawWords in src/backend/gpu/kernels.rs).

const PHILOX_M0: u32 = 0xD2511F53u;
const PHILOX_M1: u32 = 0xCD9E8D57u;
const PHILOX_W0: u32 = 0x9E3779B9u;
const PHILOX_W1: u32 = 0xBB67AE85u;

// (high, low) words of a * b.
fn mulhilo(a: u32, b: u32) -> vec2<u32> {
    let a_lo = a & 0xFFFFu;
    let a_hi = a >> 16u;
    let b_lo = b & 0xFFFFu;
    let b_hi = b >> 16u;
    let ll = a_lo * b_lo;
    let hl = a_hi * b_lo;
    let lh = a_lo * b_hi;
    let hh = a_hi * b_hi;
    // Cannot overflow: (2^16-1)^2 + 2 (2^16-1) < 2^32.
    let cross = (ll >> 16u) + (hl & 0xFFFFu) + lh;
    let hi = hh + (hl >> 16u) + (cross >> 16u);
    return vec2<u32>(hi, a * b);
}

fn philox4x32_10(ctr: vec4<u32>, key: vec2<u32>) -> vec4<u32> {
    var c = ctr;
    var k = key;
    for (var r = 0u; r < 10u; r = r + 1u) {
        if r > 0u {
            k = k + vec2<u32>(PHILOX_W0, PHILOX_W1);
        }
        let p0 = mulhilo(PHILOX_M0, c.x);
        let p1 = mulhilo(PHILOX_M1, c.z);
        c = vec4<u32>(p1.x ^ c.y ^ k.x, p1.y, p0.x ^ c.w ^ k.y, p0.y);
    }
    return c;
}

// Block `index` of the draw described by the parameter block.
fn draw_block(index: u32) -> vec4<u32> {
    return philox4x32_10(vec4<u32>(index, P.stream, P.off_lo, P.off_hi), vec2<u32>(P.key0, P.key1));
}

// [0, 1) with 24 bits, exactly as `rng::u32_to_unit`.
fn unit01(w: u32) -> f32 {
    return f32(w >> 8u) * (1.0 / 16777216.0);
}

// (0, 1], exactly as `rng::u32_to_unit_open0`.
fn unit01_open0(w: u32) -> f32 {
    return f32((w >> 8u) + 1u) * (1.0 / 16777216.0);
}

// Box-Muller on two words: sqrt(-2 ln u1) cos(2 pi u2), by log_unit and
// cos_turns of common.wgsl rather than the native log and cos, which some
// adapters are allowed to compute only to about 1e-3 of a sample here
// (log near 1, cos anywhere). cos(2 pi u) = -cos(2 pi (u - 1/2)), and
// u2 - 1/2 is exact.
fn box_muller(w1: u32, w2: u32) -> f32 {
    let u1 = unit01_open0(w1);
    let u2 = unit01(w2);
    let r = sqrt(max(-2.0 * log_unit(u1), 0.0));
    return -r * cos_turns(u2 - 0.5);
}

// Element `i` (row-major flat index) of a uniform draw.
fn uniform_at(i: u32) -> f32 {
    let b = draw_block(i >> 2u);
    return unit01(b[i & 3u]);
}
