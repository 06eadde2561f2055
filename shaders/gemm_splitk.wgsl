// Second half of a split-K GEMM (see gemm.wgsl, flags bit 2): sums the
// P.aux1 partial products and applies the epilogue the one-pass kernel would
// have applied. One thread per 4 consecutive outputs, so sampling uses one
// Philox block per thread (output e takes word e % 4 of block e / 4).
// P.len = m n, P.n = columns; P.flags bit 0: sigmoid, bit 1: sample.

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
    if (P.flags & 2u) != 0u {
        w = draw_block(t);
    }
    for (var j = 0u; j < 4u; j = j + 1u) {
        let e = base + j;
        if e < P.len {
            var s = 0.0;
            for (var z = 0u; z < P.aux1; z = z + 1u) {
                s = s + part[z * P.len + e];
            }
            if (P.flags & 1u) == 0u {
                var o = P.alpha * s;
                if P.beta != 0.0 {
                    o = o + P.beta * C[e];
                }
                C[e] = o;
            } else {
                let p = 1.0 / (1.0 + exp(-(P.alpha * (s + bias[e % P.n]))));
                C[e] = p;
                if (P.flags & 2u) != 0u {
                    S[e] = select(0.0, 1.0, unit01(w[j]) < p);
                }
            }
        }
    }
}
