// dst[i, :] = src[idx[i], :]. The indices live in a per-batch arena buffer
// (written once per submit).

struct GatherParams {
    // Elements of dst.
    len: u32,
    // Columns of src and dst.
    cols: u32,
    // Where this op's indices start in the arena.
    first_index: u32,
}

@group(0) @binding(0) var<uniform> P: GatherParams;

@group(0) @binding(1) var<storage, read_write> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> idx: array<u32>;
@group(0) @binding(3) var<storage, read_write> dst: array<f32>;

@compute @workgroup_size(256)
fn gather_rows(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = flat_id(wid, nwg, lid);
    if i < P.len {
        let r = i / P.cols;
        let c = i - r * P.cols;
        dst[i] = src[idx[P.first_index + r] * P.cols + c];
    }
}
