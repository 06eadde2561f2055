// Sampling kernels on the Philox streams of philox.wgsl (concatenated before
// this file). One Philox block per thread: four uniforms or two Gaussians.

struct SampleParams {
    // Elements of the output.
    len: u32,
    // Standard deviation (gaussian).
    std_dev: f32,
    // The draw (philox.wgsl).
    key0: u32,
    key1: u32,
    stream: u32,
    off_lo: u32,
    off_hi: u32,
}

@group(0) @binding(0) var<uniform> P: SampleParams;

@group(0) @binding(1) var<storage, read_write> s1: array<f32>;
@group(0) @binding(2) var<storage, read_write> s2: array<f32>;

// out(s2)[i] = 1 if u_i < p(s1)[i] else 0
@compute @workgroup_size(256)
fn bernoulli(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let t = flat_id(wid, nwg, lid);
    let base = t * 4u;
    if base >= P.len {
        return;
    }
    let w = draw_block(t);
    for (var j = 0u; j < 4u; j = j + 1u) {
        let i = base + j;
        if i < P.len {
            s2[i] = select(0.0, 1.0, unit01(w[j]) < s1[i]);
        }
    }
}

// out(s2)[i] = mean(s1)[i] + std_dev z_i; z_{2t}, z_{2t+1} from block t.
@compute @workgroup_size(256)
fn gaussian(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let t = flat_id(wid, nwg, lid);
    let base = t * 2u;
    if base >= P.len {
        return;
    }
    let w = draw_block(t);
    s2[base] = s1[base] + P.std_dev * box_muller(w.x, w.y);
    if base + 1u < P.len {
        s2[base + 1u] = s1[base + 1u] + P.std_dev * box_muller(w.z, w.w);
    }
}
