// The momentum steps of biases (Backend::bias_step / bias_steps): column
// sums of two statistics, laid out as col_sums in reduce.wgsl.

struct BiasStepParams {
    // Rows of a and b, columns of the (first) step.
    rows_a: u32,
    rows_b: u32,
    cols: u32,
    alpha_a: f32,
    alpha_b: f32,
    mom: f32,
    // bias_step_pair: columns of the second step, and the workgroups of the
    // first (those below it do the first step's work).
    cols_h: u32,
    groups_v: u32,
}

@group(0) @binding(0) var<uniform> P: BiasStepParams;

@group(0) @binding(1) var<storage, read_write> s1: array<f32>;
@group(0) @binding(2) var<storage, read_write> s2: array<f32>;
@group(0) @binding(3) var<storage, read_write> s3: array<f32>;
@group(0) @binding(4) var<storage, read_write> s4: array<f32>;
// Only bias_step_pair binds these.
@group(0) @binding(5) var<storage, read_write> s5: array<f32>;
@group(0) @binding(6) var<storage, read_write> s6: array<f32>;
@group(0) @binding(7) var<storage, read_write> s7: array<f32>;
@group(0) @binding(8) var<storage, read_write> s8: array<f32>;

var<workgroup> red: array<f32, 256>;

// A bias's momentum step (Backend::bias_step): with a(s1) P.rows_a x P.cols
// and b(s2) P.rows_b x P.cols, step(s3)[c] = mom * step[c] + alpha_a *
// sum_r a[r, c] + alpha_b * sum_r b[r, c], then param(s4)[c] += step[c].
// Laid out as col_sums: 64 columns per workgroup, 4 lanes per column.
@compute @workgroup_size(256)
fn bias_step(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let col = (wid.y * nwg.x + wid.x) * 64u + (lid & 63u);
    let lane = lid >> 6u;
    var acc_a = 0.0;
    var acc_b = 0.0;
    if col < P.cols {
        for (var r = lane; r < P.rows_a; r = r + 4u) {
            acc_a = acc_a + s1[r * P.cols + col];
        }
        for (var r = lane; r < P.rows_b; r = r + 4u) {
            acc_b = acc_b + s2[r * P.cols + col];
        }
    }
    red[lid] = P.alpha_a * acc_a + P.alpha_b * acc_b;
    workgroupBarrier();
    if lane == 0u && col < P.cols {
        let g = red[lid] + red[lid + 64u] + red[lid + 128u] + red[lid + 192u];
        let st = P.mom * s3[col] + g;
        s3[col] = st;
        s4[col] = s4[col] + st;
    }
}

// Two bias steps in one dispatch (Backend::bias_steps): workgroups below
// P.groups_v do bias_step's work on s1..s4 (P.cols columns), the rest on
// s5..s8 (P.cols_h columns); both pairs of statistics have P.rows_a and
// P.rows_b rows.
@compute @workgroup_size(256)
fn bias_step_pair(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let g = wid.y * nwg.x + wid.x;
    let first = g < P.groups_v;
    let n = select(P.cols_h, P.cols, first);
    let col = select(g - P.groups_v, g, first) * 64u + (lid & 63u);
    let lane = lid >> 6u;
    var acc_a = 0.0;
    var acc_b = 0.0;
    if col < n {
        if first {
            for (var r = lane; r < P.rows_a; r = r + 4u) {
                acc_a = acc_a + s1[r * n + col];
            }
            for (var r = lane; r < P.rows_b; r = r + 4u) {
                acc_b = acc_b + s2[r * n + col];
            }
        } else {
            for (var r = lane; r < P.rows_a; r = r + 4u) {
                acc_a = acc_a + s5[r * n + col];
            }
            for (var r = lane; r < P.rows_b; r = r + 4u) {
                acc_b = acc_b + s6[r * n + col];
            }
        }
    }
    red[lid] = P.alpha_a * acc_a + P.alpha_b * acc_b;
    workgroupBarrier();
    if lane == 0u && col < n {
        let g = red[lid] + red[lid + 64u] + red[lid + 128u] + red[lid + 192u];
        let mom = P.mom;
        if first {
            let st = mom * s3[col] + g;
            s3[col] = st;
            s4[col] = s4[col] + st;
        } else {
            let st = mom * s7[col] + g;
            s7[col] = st;
            s8[col] = s8[col] + st;
        }
    }
}
