// Raw Philox words for the bit-exactness tests: word i = word i % 4 of block i / 4.

struct PhiloxWordsParams {
    // Words to write.
    len: u32,
    // The draw (philox.wgsl).
    key0: u32,
    key1: u32,
    stream: u32,
    off_lo: u32,
    off_hi: u32,
}

@group(0) @binding(0) var<uniform> P: PhiloxWordsParams;

@group(0) @binding(1) var<storage, read_write> words: array<u32>;

@compute @workgroup_size(256)
fn philox_words(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let t = flat_id(wid, nwg, lid);
    let base = t * 4u;
    if base >= P.len {
        return;
    }
    let w = draw_block(t);
    for (var j = 0u; j < 4u; j = j + 1u) {
        if base + j < P.len {
            words[base + j] = w[j];
        }
    }
}
