// dst[i, :] = src[idx[i], :]. The indices live in a per-batch arena buffer
// (written once per submit); P.aux0 is where this op's indices start.
// P.len = elements of dst, P.n = columns.

@group(0) @binding(1) var<storage, read_write> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> idx: array<u32>;
@group(0) @binding(3) var<storage, read_write> dst: array<f32>;

@compute @workgroup_size(256)
fn gather_rows(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = flat_id(wid, nwg, lid);
    if i < P.len {
        let r = i / P.n;
        let c = i - r * P.n;
        dst[i] = src[idx[P.aux0 + r] * P.n + c];
    }
}
