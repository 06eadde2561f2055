// Shared by every ebmkit kernel: the per-dispatch parameter block (one 256-byte
// slot of the uniform ring, bound with a dynamic offset) and the flat index of
// a thread in a possibly two-dimensional grid of 256-thread workgroups.
struct Params {
    m: u32,
    n: u32,
    k: u32,
    len: u32,
    alpha: f32,
    beta: f32,
    op: u32,
    flags: u32,
    key0: u32,
    key1: u32,
    stream: u32,
    off_lo: u32,
    off_hi: u32,
    aux0: u32,
    aux1: u32,
    aux2: u32,
}

@group(0) @binding(0) var<uniform> P: Params;

// Grids larger than 65535 workgroups are laid out as (x, y); the element a
// thread works on is (wid.y * nwg.x + wid.x) * 256 + lid.
fn flat_id(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 {
    return (wid.y * nwg.x + wid.x) * 256u + lid;
}
