// Shared by every ebmkit kernel: the flat index of a thread in a possibly
// two-dimensional grid of 256-thread workgroups. Each kernel's file declares
// its own parameter struct (mirrored by a #[repr(C)] struct in
// src/backend/gpu/kernels.rs, field for field) and binds it as
// `@group(0) @binding(0) var<uniform> P`: one slot of the uniform ring,
// bound with a dynamic offset.

// Grids larger than 65535 workgroups are laid out as (x, y); the element a
// thread works on is (wid.y * nwg.x + wid.x) * 256 + lid.
fn flat_id(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 {
    return (wid.y * nwg.x + wid.x) * 256u + lid;
}
