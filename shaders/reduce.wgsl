// Reductions. Sums are tree reductions in workgroup memory.

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

// out(s2)[c] = alpha * sum_r x(s1)[r, c] + beta * out[c]; x is P.m x P.n.
// A workgroup owns 64 columns; its 4 lanes per column split the rows.
@compute @workgroup_size(256)
fn col_sums(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let col = (wid.y * nwg.x + wid.x) * 64u + (lid & 63u);
    let lane = lid >> 6u;
    var acc = 0.0;
    if col < P.n {
        for (var r = lane; r < P.m; r = r + 4u) {
            acc = acc + s1[r * P.n + col];
        }
    }
    red[lid] = acc;
    workgroupBarrier();
    if lane == 0u && col < P.n {
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
    if row < P.m {
        for (var c = lid; c < P.n; c = c + 256u) {
            acc = acc + s1[row * P.n + c];
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

// A bias's momentum step (Backend::bias_step): with a(s1) P.m x P.n and
// b(s2) P.k x P.n, step(s3)[c] = mom * step[c] + alpha * sum_r a[r, c]
// + beta * sum_r b[r, c], then param(s4)[c] += step[c]. mom = bitcast(P.flags).
// Laid out as col_sums: 64 columns per workgroup, 4 lanes per column.
@compute @workgroup_size(256)
fn bias_step(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let col = (wid.y * nwg.x + wid.x) * 64u + (lid & 63u);
    let lane = lid >> 6u;
    var acc_a = 0.0;
    var acc_b = 0.0;
    if col < P.n {
        for (var r = lane; r < P.m; r = r + 4u) {
            acc_a = acc_a + s1[r * P.n + col];
        }
        for (var r = lane; r < P.k; r = r + 4u) {
            acc_b = acc_b + s2[r * P.n + col];
        }
    }
    red[lid] = P.alpha * acc_a + P.beta * acc_b;
    workgroupBarrier();
    if lane == 0u && col < P.n {
        let g = red[lid] + red[lid + 64u] + red[lid + 128u] + red[lid + 192u];
        let st = bitcast<f32>(P.flags) * s3[col] + g;
        s3[col] = st;
        s4[col] = s4[col] + st;
    }
}

// Two bias steps in one dispatch (Backend::bias_steps): workgroups below
// P.aux1 do bias_step's work on s1..s4 (P.n columns), the rest on s5..s8
// (P.aux0 columns); both pairs of statistics have P.m and P.k rows.
@compute @workgroup_size(256)
fn bias_step_pair(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let g = wid.y * nwg.x + wid.x;
    let first = g < P.aux1;
    let n = select(P.aux0, P.n, first);
    let col = select(g - P.aux1, g, first) * 64u + (lid & 63u);
    let lane = lid >> 6u;
    var acc_a = 0.0;
    var acc_b = 0.0;
    if col < n {
        if first {
            for (var r = lane; r < P.m; r = r + 4u) {
                acc_a = acc_a + s1[r * n + col];
            }
            for (var r = lane; r < P.k; r = r + 4u) {
                acc_b = acc_b + s2[r * n + col];
            }
        } else {
            for (var r = lane; r < P.m; r = r + 4u) {
                acc_a = acc_a + s5[r * n + col];
            }
            for (var r = lane; r < P.k; r = r + 4u) {
                acc_b = acc_b + s6[r * n + col];
            }
        }
    }
    red[lid] = P.alpha * acc_a + P.beta * acc_b;
    workgroupBarrier();
    if lane == 0u && col < n {
        let g = red[lid] + red[lid + 64u] + red[lid + 128u] + red[lid + 192u];
        let mom = bitcast<f32>(P.flags);
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
