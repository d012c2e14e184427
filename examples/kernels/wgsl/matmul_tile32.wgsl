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
// dispatches (⌈n/32⌉, ⌈m/32⌉) workgroups. Here WG × WG = 16 × 16 invocations share the tile,
// each writing PER × PER = 2 × 2 values of it (rows lid.y + WG·r, columns lid.x + WG·s), and the
// k loop stages TILE-deep slices of op(A) and op(B) in workgroup memory.
//
// Run it beside the built-in ladder, checked and timed:
//   kernelab bench --op matmul --backend wgpu --kernel examples/kernels/wgsl/matmul_tile32.wgsl
// To try another tile, change PER (or WG) below and the header's tile= to TILE = WG·PER on each
// side: PER = 4 is a 64 × 64 tile, PER = 1 a 16 × 16 one.

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

const WG: u32 = 16u;  // invocations along each side of the workgroup
const PER: u32 = 2u;  // values of C per invocation along each side
const TILE: u32 = WG * PER;
var<workgroup> slice_a: array<array<f32, TILE>, TILE>;  // op(A)[row0 + r, q0 + q] at [r][q]
var<workgroup> slice_b: array<array<f32, TILE>, TILE>;  // op(B)[q0 + q, col0 + j] at [q][j]

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

@compute @workgroup_size(WG, WG)
fn matmul_tile32(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let row0 = wid.y * TILE;
    let col0 = wid.x * TILE;
    var acc: array<f32, PER * PER>;  // [PER·r + s]: row lid.y + WG·r, column lid.x + WG·s of the tile
    for (var q0 = 0u; q0 < p.k; q0 += TILE) {
        // Each invocation stages PER × PER values of each slice.
        for (var r = 0u; r < PER; r++) {
            for (var s = 0u; s < PER; s++) {
                let y = lid.y + r * WG;
                let x = lid.x + s * WG;
                slice_a[y][x] = a_at(row0 + y, q0 + x);
                slice_b[y][x] = b_at(q0 + y, col0 + x);
            }
        }
        workgroupBarrier();
        for (var q = 0u; q < TILE; q++) {
            for (var r = 0u; r < PER; r++) {
                for (var s = 0u; s < PER; s++) {
                    acc[PER * r + s] += slice_a[lid.y + r * WG][q] * slice_b[q][lid.x + s * WG];
                }
            }
        }
        workgroupBarrier();
    }
    // Write this invocation's values, skipping what lies outside C (the bounds guard).
    for (var r = 0u; r < PER; r++) {
        for (var s = 0u; s < PER; s++) {
            let i = row0 + lid.y + r * WG;
            let j = col0 + lid.x + s * WG;
            if (i < p.m && j < p.n) {
                let at = i * p.n + j;
                var v = p.alpha * acc[PER * r + s];
                if (p.beta != 0.0) {
                    v += p.beta * c[at];
                }
                c[at] = v;
            }
        }
    }
}
