// The hidden half of an annealing / tempering step, one workgroup per row of
// x = v W (P.m x P.n), Philox from philox.wgsl:
//   y = x + b_h
//   lw[r] += sum_j softplus(beta1 y) - softplus(beta0 y)     (P.beta, P.alpha)
//   h = bernoulli(sigmoid(beta1 y))                          (if P.flags & 1)
// With P.flags & 2 the last column is a linear term, not a hidden unit:
//   lw[r] += (beta1 - beta0) y,  h = bitcast<f32>(P.aux2)    (Backend docs)
// With P.aux1 > 1, x is given as P.aux1 consecutive m x n partial products
// of a split-K GEMM (gemm.wgsl, flags bit 2), summed here in the order the
// split-K reduction would sum them, which saves that reduction's dispatch.
// Fusing these saves AIS eight dispatches per temperature; on a GPU the
// 14,500-step loop is bound by dispatch count, not arithmetic.

@group(0) @binding(1) var<storage, read_write> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> bh: array<f32>;
@group(0) @binding(3) var<storage, read_write> lw: array<f32>;
@group(0) @binding(4) var<storage, read_write> h: array<f32>;

var<workgroup> red: array<f32, 256>;

fn x_at(i: u32) -> f32 {
    if P.aux1 <= 1u {
        return x[i];
    }
    var s = 0.0;
    for (var z = 0u; z < P.aux1; z = z + 1u) {
        s = s + x[z * P.m * P.n + i];
    }
    return s;
}

fn softplus1(v: f32) -> f32 {
    // max(v, 0) + log1p(exp(-|v|)); log1p by the compensated form, as in
    // elementwise.wgsl, so small tails keep their precision.
    let e = exp(-abs(v));
    let u = 1.0 + e;
    var l = e;
    if u != 1.0 {
        l = log(u) * e / (u - 1.0);
    }
    return max(v, 0.0) + l;
}

@compute @workgroup_size(256)
fn tempered_hidden(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let row = wid.y * nwg.x + wid.x;
    var acc = 0.0;
    let linear = (P.flags & 2u) != 0u;
    if row < P.m {
        for (var c = lid; c < P.n; c = c + 256u) {
            let i = row * P.n + c;
            let y = x_at(i) + bh[c];
            if linear && c == P.n - 1u {
                acc = acc + (P.beta - P.alpha) * y;
                if (P.flags & 1u) != 0u {
                    h[i] = bitcast<f32>(P.aux2);
                }
                continue;
            }
            acc = acc + (softplus1(P.beta * y) - softplus1(P.alpha * y));
            if (P.flags & 1u) != 0u {
                let p = 1.0 / (1.0 + exp(-(P.beta * y)));
                h[i] = select(0.0, 1.0, uniform_at(i) < p);
            }
        }
    }
    red[lid] = acc;
    workgroupBarrier();
    for (var s = 128u; s > 0u; s = s >> 1u) {
        if lid < s {
            red[lid] = red[lid] + red[lid + s];
        }
        workgroupBarrier();
    }
    if lid == 0u && row < P.m {
        lw[row] = lw[row] + red[0];
    }
}
