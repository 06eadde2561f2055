// Tiled GEMM template: C = alpha op(A) op(B) + beta C, and the fused RBM
// epilogue prob = sigmoid(alpha (op(A) op(B) + bias + beta prob)), sample =
// bernoulli(prob) (prob read only when beta is not 0: a DBM layer's second
// neighbour).
//
// The Rust side (src/backend/gpu/gemm.rs) instantiates this template per
// variant: tile sizes, transposes and vec4-vs-scalar access are compile-time,
// and the {{...}} blocks are generated fully unrolled so accumulators live in
// registers. The source is prepended with common.wgsl and philox.wgsl.
//
// Block tile BM x BN, depth BK; 256 threads as 16 x 16, thread (tx, ty) owns
// rows {g*64 + ty*4 + i} and columns {h*64 + tx*4 + j} (i, j < 4) of the tile,
// so shared-memory reads are conflict-free vec4s. A is kept in shared memory
// as As[k][m] (k-major), B as Bs[k][n]; both are double-buffered and the next
// tile is prefetched into registers while the current one is multiplied, so a
// k-step costs one barrier.
//
// With P.partial (split-K), workgroup z multiplies the k range
// [z P.kc, (z+1) P.kc) and stores its raw sums in S[z m n + row n + col]
// for gemm_splitk.wgsl to reduce and finish.

struct GemmParams {
    // op(A) is m x k, op(B) k x n.
    m: u32,
    n: u32,
    k: u32,
    alpha: f32,
    beta: f32,
    // The slice of k per workgroup z (k itself without split-K).
    kc: u32,
    // 1: prob = sigmoid(alpha (op(A) op(B) + bias + beta C)) into C.
    sigmoid: u32,
    // 1: also S = bernoulli(prob).
    sample: u32,
    // 1: split-K first pass, raw sums into S.
    partial: u32,
    // The draw (philox.wgsl).
    key0: u32,
    key1: u32,
    stream: u32,
    off_lo: u32,
    off_hi: u32,
}

@group(0) @binding(0) var<uniform> P: GemmParams;

@group(0) @binding(1) var<storage, read> A: array<{{A_TYPE}}>;
@group(0) @binding(2) var<storage, read> B: array<{{B_TYPE}}>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> C: array<{{C_TYPE}}>;
@group(0) @binding(5) var<storage, read_write> S: array<{{C_TYPE}}>;

const BM: u32 = {{BM}}u;
const BN: u32 = {{BN}}u;
const BK: u32 = {{BK}}u;

var<workgroup> As: array<vec4<f32>, {{AS_LEN}}>;
var<workgroup> Bs: array<vec4<f32>, {{BS_LEN}}>;

{{STORE4}}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let M = P.m;
    let N = P.n;
    let K = P.k;
    let m0 = wid.y * BM;
    let n0 = wid.x * BN;
    let tx = lid & 15u;
    let ty = lid >> 4u;
    // This workgroup's k range [kbeg, KE); the whole of k without split-K.
    let kbeg = wid.z * P.kc;
    let KE = max(min(K, kbeg + P.kc), kbeg);
    let zoff = wid.z * M * N;
{{DECLS}}
    // Tile 0 into buffer 0.
    var k0 = kbeg;
{{LOAD}}
{{STORE_SHARED_0}}
    workgroupBarrier();
    let ntiles = (KE - kbeg + BK - 1u) / BK;
    var cur = 0u;
    for (var t = 0u; t < ntiles; t = t + 1u) {
        let has_next = t + 1u < ntiles;
        k0 = kbeg + (t + 1u) * BK;
        if has_next {
{{LOAD}}
        }
        let abase = cur * (BK * BM / 4u);
        let bbase = cur * (BK * BN / 4u);
{{COMPUTE}}
        if has_next {
            let nxt = cur ^ 1u;
{{STORE_SHARED}}
        }
        workgroupBarrier();
        cur = cur ^ 1u;
    }
{{EPILOGUE}}
}
