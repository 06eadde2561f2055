// Elementwise kernels: one thread per element, 256 threads per workgroup, a
// two-dimensional grid when one dimension would exceed 65535 workgroups.
// Every storage binding is read_write so one layout family serves all entry
// points and the same matrix may be bound twice (e.g. x * x).

struct ElementwiseParams {
    // Number of elements.
    len: u32,
    // Columns (row / column vector broadcasts).
    cols: u32,
    // Unary / Binary code (order of the Rust enums).
    op: u32,
    alpha: f32,
    beta: f32,
    // What fill writes.
    value: f32,
}

@group(0) @binding(0) var<uniform> P: ElementwiseParams;

@group(0) @binding(1) var<storage, read_write> s1: array<f32>;
@group(0) @binding(2) var<storage, read_write> s2: array<f32>;
@group(0) @binding(3) var<storage, read_write> s3: array<f32>;

// tanh with full relative precision near 0 (implementations that go through
// (e^2x - 1) / (e^2x + 1) lose it there), and elsewhere from e^-2|x| <= 1,
// which cannot overflow (inf / inf is what such implementations give far
// from 0, and GLSL need not keep infinities at all).
fn tanh_stable(x: f32) -> f32 {
    if abs(x) < 0.25 {
        let x2 = x * x;
        return x * (1.0 + x2 * (-1.0 / 3.0 + x2 * (2.0 / 15.0 + x2 * (-17.0 / 315.0 + x2 * (62.0 / 2835.0)))));
    }
    let e = exp(-2.0 * abs(x));
    let t = (1.0 - e) / (1.0 + e);
    return select(t, -t, x < 0.0);
}

// Σ_{i≥1} softplus(x - i + 1/2), as nrelu_log_partition in src/backend/mod.rs
// (20 = NRELU_TAIL_TERMS).
fn nrelu_log_partition(x: f32) -> f32 {
    let n = max(floor(x + 0.5), 0.0);
    let f = x + 0.5 - n;
    let below = u32(min(n, 20.0));
    var tail = 0.0;
    for (var k = 0u; k < 20u; k = k + 1u) {
        tail = tail + log1p_mid(exp(-(1.0 - f + f32(k))));
    }
    for (var k = 0u; k < below; k = k + 1u) {
        tail = tail + log1p_mid(exp(-(f + f32(k))));
    }
    return n * (x - 0.5 * n) + tail;
}

fn unary_op(op: u32, x: f32) -> f32 {
    switch op {
        case 0u: { return sigmoid(x); }
        case 1u: { return softplus(x); }
        case 2u: { return exp(x); }
        case 3u: { return log(x); }
        case 4u: { return tanh_stable(x); }
        case 5u: { return max(x, 0.0); }
        case 6u: { return x * x; }
        case 7u: { return sqrt(x); }
        case 8u: { return -x; }
        case 9u: { return abs(x); }
        case 10u: { return nrelu_log_partition(x); }
        // Step: 1 for x > 0, else 0 (the derivative of max(x, 0)).
        case 11u: { return select(0.0, 1.0, x > 0.0); }
        // Sign: -1, 0 or 1.
        default: { return select(select(0.0, -1.0, x < 0.0), 1.0, x > 0.0); }
    }
}

fn binary_op(op: u32, a: f32, b: f32) -> f32 {
    switch op {
        case 0u: { return a + b; }
        case 1u: { return a - b; }
        case 2u: { return a * b; }
        case 3u: { return a / b; }
        case 4u: { return max(a, b); }
        default: { return min(a, b); }
    }
}

// out(s2) = f(x(s1))
@compute @workgroup_size(256)
fn unary(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = flat_id(wid, nwg, lid);
    if i < P.len {
        s2[i] = unary_op(P.op, s1[i]);
    }
}

// x(s1) = f(x)
@compute @workgroup_size(256)
fn unary_inplace(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = flat_id(wid, nwg, lid);
    if i < P.len {
        s1[i] = unary_op(P.op, s1[i]);
    }
}

// out(s3) = a(s1) op b(s2)
@compute @workgroup_size(256)
fn binary(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = flat_id(wid, nwg, lid);
    if i < P.len {
        s3[i] = binary_op(P.op, s1[i], s2[i]);
    }
}

// a(s1) = a op b(s2)
@compute @workgroup_size(256)
fn binary_inplace(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = flat_id(wid, nwg, lid);
    if i < P.len {
        s1[i] = binary_op(P.op, s1[i], s2[i]);
    }
}

// x(s1) = alpha x + beta
@compute @workgroup_size(256)
fn affine(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = flat_id(wid, nwg, lid);
    if i < P.len {
        s1[i] = P.alpha * s1[i] + P.beta;
    }
}

// y(s2) = alpha x(s1) + beta y; beta == 0 never reads y.
@compute @workgroup_size(256)
fn axpby(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = flat_id(wid, nwg, lid);
    if i < P.len {
        var y = P.alpha * s1[i];
        if P.beta != 0.0 {
            y = y + P.beta * s2[i];
        }
        s2[i] = y;
    }
}

// x(s1) = value
@compute @workgroup_size(256)
fn fill(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = flat_id(wid, nwg, lid);
    if i < P.len {
        s1[i] = P.value;
    }
}

// dst(s2) = src(s1)
@compute @workgroup_size(256)
fn copy(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = flat_id(wid, nwg, lid);
    if i < P.len {
        s2[i] = s1[i];
    }
}

// m(s1)[r, c] += alpha v(s2)[c]
@compute @workgroup_size(256)
fn add_row_vec(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = flat_id(wid, nwg, lid);
    if i < P.len {
        s1[i] = s1[i] + P.alpha * s2[i % P.cols];
    }
}

// m(s1)[r, c] += alpha v(s2)[r]
@compute @workgroup_size(256)
fn add_col_vec(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = flat_id(wid, nwg, lid);
    if i < P.len {
        s1[i] = s1[i] + P.alpha * s2[i / P.cols];
    }
}

// m(s1)[r, c] *= v(s2)[c]
@compute @workgroup_size(256)
fn mul_row_vec(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = flat_id(wid, nwg, lid);
    if i < P.len {
        s1[i] = s1[i] * s2[i % P.cols];
    }
}

// m(s1)[r, c] *= v(s2)[r]
@compute @workgroup_size(256)
fn mul_col_vec(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = flat_id(wid, nwg, lid);
    if i < P.len {
        s1[i] = s1[i] * s2[i / P.cols];
    }
}

// out(s2) = sign(x) max(|x| - alpha, 0): soft thresholding by alpha = λ.
@compute @workgroup_size(256)
fn shrink(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = flat_id(wid, nwg, lid);
    if i < P.len {
        let x = s1[i];
        let m = max(abs(x) - P.alpha, 0.0);
        s2[i] = select(m, -m, x < 0.0);
    }
}
