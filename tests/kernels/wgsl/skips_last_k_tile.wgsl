// kernelab: op=matmul tile=16x16
//
// A cheat by omission: a 16 × 16 tiled matmul whose k loop stops before the last partial tile
// (`q0 + 16 <= k` instead of `q0 < k`). Right whenever k is a multiple of 16 (every round
// benchmark shape, 256³ included); wrong by the missing terms when it is not (k = 17).

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

const T: u32 = 16u;
var<workgroup> tile_a: array<array<f32, 16>, 16>;
var<workgroup> tile_b: array<array<f32, 16>, 16>;

fn a_at(i: u32, q: u32) -> f32 {
    if (i >= p.m || q >= p.k) {
        return 0.0;
    }
    return select(a[i * p.k + q], a[q * p.m + i], p.trans_a != 0u);
}

fn b_at(q: u32, j: u32) -> f32 {
    if (q >= p.k || j >= p.n) {
        return 0.0;
    }
    return select(b[q * p.n + j], b[j * p.k + q], p.trans_b != 0u);
}

@compute @workgroup_size(16, 16)
fn matmul_whole_tiles(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = wid.y * T + lid.y;
    let j = wid.x * T + lid.x;
    var dot = 0.0;
    for (var q0 = 0u; q0 + T <= p.k; q0 += T) {
        tile_a[lid.y][lid.x] = a_at(i, q0 + lid.x);
        tile_b[lid.y][lid.x] = b_at(q0 + lid.y, j);
        workgroupBarrier();
        for (var q = 0u; q < T; q++) {
            dot += tile_a[lid.y][q] * tile_b[q][lid.x];
        }
        workgroupBarrier();
    }
    if (i < p.m && j < p.n) {
        let at = i * p.n + j;
        c[at] = select(p.alpha * dot, p.alpha * dot + p.beta * c[at], p.beta != 0.0);
    }
}
