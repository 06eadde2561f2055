// Second half of a split-K GEMM (see gemm.wgsl, P.partial): sums the
// P.splits partial products and applies the epilogue the one-pass kernel
// would have applied. One thread per 4 consecutive outputs, so sampling uses
// one Philox block per thread (output e takes word e % 4 of block e / 4).

struct SplitKParams {
    // Elements of C (m n) and its columns.
    len: u32,
    cols: u32,
    // Partial products to sum.
    splits: u32,
    alpha: f32,
    beta: f32,
    // 1: C = sigmoid(alpha (sum + bias + beta C)) instead of alpha sum + beta C.
    sigmoid: u32,
    // 1: also S = bernoulli(C).
    sample: u32,
    // The draw (philox.wgsl).
    key0: u32,
    key1: u32,
    stream: u32,
    off_lo: u32,
    off_hi: u32,
}

@group(0) @binding(0) var<uniform> P: SplitKParams;

@group(0) @binding(1) var<storage, read_write> part: array<f32>;
@group(0) @binding(2) var<storage, read_write> bias: array<f32>;
@group(0) @binding(3) var<storage, read_write> C: array<f32>;
@group(0) @binding(4) var<storage, read_write> S: array<f32>;

@compute @workgroup_size(256)
fn splitk_reduce(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let t = flat_id(wid, nwg, lid);
    let base = t * 4u;
    if base >= P.len {
        return;
    }
    var w = vec4<u32>(0u);
    if P.sample != 0u {
        w = draw_block(t);
    }
    for (var j = 0u; j < 4u; j = j + 1u) {
        let e = base + j;
        if e < P.len {
            var s = 0.0;
            for (var z = 0u; z < P.splits; z = z + 1u) {
                s = s + part[z * P.len + e];
            }
            if P.sigmoid == 0u {
                var o = P.alpha * s;
                if P.beta != 0.0 {
                    o = o + P.beta * C[e];
                }
                C[e] = o;
            } else {
                var t = s + bias[e % P.cols];
                if P.beta != 0.0 {
                    t = t + P.beta * C[e];
                }
                let p = sigmoid(P.alpha * t);
                C[e] = p;
                if P.sample != 0u {
                    S[e] = select(0.0, 1.0, unit01(w[j]) < p);
                }
            }
        }
    }
}
