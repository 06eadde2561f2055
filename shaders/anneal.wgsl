// The hidden half of an annealing / tempering step, one workgroup per row of
// x = v W (P.rows x P.cols), Philox from philox.wgsl:
//   y = x + b_h
//   lw[r] += sum_j softplus(beta1 y) - softplus(beta0 y)
//   h = bernoulli(sigmoid(beta1 y))                          (if P.sample)
// With P.linear_last the last column is a linear term, not a hidden unit:
//   lw[r] += (beta1 - beta0) y,  h = P.linear_value          (Backend docs)
// With P.splits > 1, x is given as P.splits consecutive rows x cols partial
// products of a split-K GEMM (gemm.wgsl, P.partial), summed here in the
// order the split-K reduction would sum them, which saves that reduction's
// dispatch.
// Fusing these saves AIS eight dispatches per temperature; on a GPU the
// 14,500-step loop is bound by dispatch count, not arithmetic.

struct TemperedParams {
    // Shape of x.
    rows: u32,
    cols: u32,
    beta0: f32,
    beta1: f32,
    // Partial products that make x (1: x itself).
    splits: u32,
    // 1: draw h.
    sample: u32,
    // 1: the last column is the linear term; its h entry is linear_value.
    linear_last: u32,
    linear_value: f32,
    // The draw (philox.wgsl).
    key0: u32,
    key1: u32,
    stream: u32,
    off_lo: u32,
    off_hi: u32,
}

@group(0) @binding(0) var<uniform> P: TemperedParams;

@group(0) @binding(1) var<storage, read_write> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> bh: array<f32>;
@group(0) @binding(3) var<storage, read_write> lw: array<f32>;
@group(0) @binding(4) var<storage, read_write> h: array<f32>;

var<workgroup> red: array<f32, 256>;

fn x_at(i: u32) -> f32 {
    if P.splits <= 1u {
        return x[i];
    }
    var s = 0.0;
    for (var z = 0u; z < P.splits; z = z + 1u) {
        s = s + x[z * P.rows * P.cols + i];
    }
    return s;
}

@compute @workgroup_size(256)
fn tempered_hidden(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let row = wid.y * nwg.x + wid.x;
    var acc = 0.0;
    let linear = P.linear_last != 0u;
    if row < P.rows {
        for (var c = lid; c < P.cols; c = c + 256u) {
            let i = row * P.cols + c;
            let y = x_at(i) + bh[c];
            if linear && c == P.cols - 1u {
                acc = acc + (P.beta1 - P.beta0) * y;
                if P.sample != 0u {
                    h[i] = P.linear_value;
                }
                continue;
            }
            acc = acc + (softplus(P.beta1 * y) - softplus(P.beta0 * y));
            if P.sample != 0u {
                let p = sigmoid(P.beta1 * y);
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
    if lid == 0u && row < P.rows {
        lw[row] = lw[row] + red[0];
    }
}
