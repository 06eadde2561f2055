// Reductions. Sums are tree reductions in workgroup memory.

struct ReduceParams {
    // Shape of x (col_sums, row_sums).
    rows: u32,
    cols: u32,
    // Elements to sum (sum_partial).
    len: u32,
    alpha: f32,
    beta: f32,
}

@group(0) @binding(0) var<uniform> P: ReduceParams;

@group(0) @binding(1) var<storage, read_write> s1: array<f32>;
@group(0) @binding(2) var<storage, read_write> s2: array<f32>;

var<workgroup> red: array<f32, 256>;
var<workgroup> arg: array<u32, 256>;

// out(s2)[c] = alpha * sum_r x(s1)[r, c] + beta * out[c]; x is P.rows x P.cols.
// A workgroup owns 64 columns; its 4 lanes per column split the rows.
@compute @workgroup_size(256)
fn col_sums(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let col = (wid.y * nwg.x + wid.x) * 64u + (lid & 63u);
    let lane = lid >> 6u;
    var acc = 0.0;
    if col < P.cols {
        for (var r = lane; r < P.rows; r = r + 4u) {
            acc = acc + s1[r * P.cols + col];
        }
    }
    red[lid] = acc;
    workgroupBarrier();
    if lane == 0u && col < P.cols {
        let s = red[lid] + red[lid + 64u] + red[lid + 128u] + red[lid + 192u];
        var o = P.alpha * s;
        if P.beta != 0.0 {
            o = o + P.beta * s2[col];
        }
        s2[col] = o;
    }
}

// out(s2)[r] = alpha * sum_c x(s1)[r, c] + beta * out[r]: one workgroup per row.
@compute @workgroup_size(256)
fn row_sums(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let row = wid.y * nwg.x + wid.x;
    var acc = 0.0;
    if row < P.rows {
        for (var c = lid; c < P.cols; c = c + 256u) {
            acc = acc + s1[row * P.cols + c];
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
        var o = P.alpha * red[0];
        if P.beta != 0.0 {
            o = o + P.beta * s2[row];
        }
        s2[row] = o;
    }
}

// partial(s2)[g] = sum of a grid-stride share of x(s1)[0..P.len]. Run with
// G workgroups, then again over the G partials with one workgroup.
@compute @workgroup_size(256)
fn sum_partial(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let stride = nwg.x * 256u;
    var acc = 0.0;
    for (var i = wid.x * 256u + lid; i < P.len; i = i + stride) {
        acc = acc + s1[i];
    }
    red[lid] = acc;
    workgroupBarrier();
    for (var s = 128u; s > 0u; s = s >> 1u) {
        if lid < s {
            red[lid] = red[lid] + red[lid + s];
        }
        workgroupBarrier();
    }
    if lid == 0u {
        s2[wid.x] = red[0];
    }
}

// out(s2)[r] = max_c x(s1)[r, c] (-inf for an empty row): one workgroup per row.
@compute @workgroup_size(256)
fn row_max(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let row = wid.y * nwg.x + wid.x;
    var acc = -3.40282347e38;
    if row < P.rows {
        for (var c = lid; c < P.cols; c = c + 256u) {
            acc = max(acc, s1[row * P.cols + c]);
        }
    }
    red[lid] = acc;
    workgroupBarrier();
    for (var s = 128u; s > 0u; s = s >> 1u) {
        if lid < s {
            red[lid] = max(red[lid], red[lid + s]);
        }
        workgroupBarrier();
    }
    if lid == 0u && row < P.rows {
        s2[row] = red[0];
    }
}

// out(s2)[r] = the first column of the largest entry of row r of x(s1), as
// f32 (0 for an empty row): one workgroup per row; each lane keeps its
// first maximum, and ties between lanes go to the smaller column.
@compute @workgroup_size(256)
fn row_argmax(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let row = wid.y * nwg.x + wid.x;
    var best = -3.40282347e38;
    var at = 0xffffffffu;
    if row < P.rows {
        for (var c = lid; c < P.cols; c = c + 256u) {
            let v = s1[row * P.cols + c];
            if v > best || at == 0xffffffffu {
                best = v;
                at = c;
            }
        }
    }
    red[lid] = best;
    arg[lid] = at;
    workgroupBarrier();
    for (var s = 128u; s > 0u; s = s >> 1u) {
        if lid < s {
            let o = lid + s;
            let take = arg[o] != 0xffffffffu && (arg[lid] == 0xffffffffu || red[o] > red[lid] || (red[o] == red[lid] && arg[o] < arg[lid]));
            if take {
                red[lid] = red[o];
                arg[lid] = arg[o];
            }
        }
        workgroupBarrier();
    }
    if lid == 0u && row < P.rows {
        s2[row] = select(f32(arg[0]), 0.0, arg[0] == 0xffffffffu);
    }
}
