// kernelab: op=matmul entry=matmul_tile32 tile=32x32
//
// A complete, minimal matmul for kernelab's WGPU backend, to copy and change:
//   C ← α·op(A)·op(B) + β·C, all row-major; op(A) is m × k (A holds k × m when trans_a),
//   op(B) is k × n (B holds n × k when trans_b); β = 0 writes C without reading it.
//
// Calling convention of matmul (the built-in shaders/matmul.wgsl uses the same):
//   @group(0) @binding(0) params, uniform: m, n, k, trans_a, trans_b, alpha (f32), beta (f32), unused
//   @binding(1) A (read), @binding(3) B (read), @binding(2) C (read_write)
//   (optionally A and B again as array<vec4<f32>> at 5 and 6)
// Geometry: the header's tile=32x32 says one workgroup writes a 32 × 32 tile of C, so the host
// dispatches (⌈n/32⌉, ⌈m/32⌉) workgroups. Here 16 × 16 invocations share the tile, each writing a
// 2 × 2 block of it (rows lid.y and lid.y + 16, columns lid.x and lid.x + 16), and the k loop
// stages 32-deep slices of op(A) and op(B) in workgroup memory.
//
// Run it beside the built-in ladder, checked and timed:
//   kernelab bench --op matmul --backend wgpu --kernel examples/kernels/wgsl/matmul_tile32.wgsl
// Change TILE (and the tile= of the header, and the arrays below) to try another tile size.

struct Params {
    m: u32,
    n: u32,
    k: u32,
    trans_a: u32,
    trans_b: u32,
    alpha: f32,
    beta: f32,
    unused: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read_write> c: array<f32>;
@group(0) @binding(3) var<storage, read> b: array<f32>;

const TILE: u32 = 32u;
const HALF: u32 = 16u;
var<workgroup> slice_a: array<array<f32, 32>, 32>;  // op(A)[row0 + r, q0 + q] at [r][q]
var<workgroup> slice_b: array<array<f32, 32>, 32>;  // op(B)[q0 + q, col0 + j] at [q][j]

// op(A)[i, q], zero outside the matrix: a partial tile adds nothing.
fn a_at(i: u32, q: u32) -> f32 {
    if (i >= p.m || q >= p.k) {
        return 0.0;
    }
    if (p.trans_a != 0u) {
        return a[q * p.m + i];
    }
    return a[i * p.k + q];
}

// op(B)[q, j], zero outside the matrix.
fn b_at(q: u32, j: u32) -> f32 {
    if (q >= p.k || j >= p.n) {
        return 0.0;
    }
    if (p.trans_b != 0u) {
        return b[j * p.k + q];
    }
    return b[q * p.n + j];
}

@compute @workgroup_size(16, 16)
fn matmul_tile32(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let row0 = wid.y * TILE;
    let col0 = wid.x * TILE;
    var acc: array<f32, 4>;  // [2·r + s]: row lid.y + 16·r, column lid.x + 16·s of the tile
    for (var q0 = 0u; q0 < p.k; q0 += TILE) {
        // Each invocation stages four values of each slice.
        for (var r = 0u; r < 2u; r++) {
            for (var s = 0u; s < 2u; s++) {
                let y = lid.y + r * HALF;
                let x = lid.x + s * HALF;
                slice_a[y][x] = a_at(row0 + y, q0 + x);
                slice_b[y][x] = b_at(q0 + y, col0 + x);
            }
        }
        workgroupBarrier();
        for (var q = 0u; q < TILE; q++) {
            for (var r = 0u; r < 2u; r++) {
                for (var s = 0u; s < 2u; s++) {
                    acc[2u * r + s] += slice_a[lid.y + r * HALF][q] * slice_b[q][lid.x + s * HALF];
                }
            }
        }
        workgroupBarrier();
    }
    // Write the 2 × 2 block, skipping what lies outside C (the bounds guard).
    for (var r = 0u; r < 2u; r++) {
        for (var s = 0u; s < 2u; s++) {
            let i = row0 + lid.y + r * HALF;
            let j = col0 + lid.x + s * HALF;
            if (i < p.m && j < p.n) {
                let at = i * p.n + j;
                var v = p.alpha * acc[2u * r + s];
                if (p.beta != 0.0) {
                    v += p.beta * c[at];
                }
                c[at] = v;
            }
        }
    }
}
