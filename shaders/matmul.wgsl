// Matrix multiply of kernelab's WGPU backend: C ← α·op(A)·op(B) + β·C, row-major. op(A) is m × k
// (A is k × m when trans_a), op(B) is k × n (B is n × k when trans_b); β = 0 writes C unread.
//
// Variants (entry points), slowest first:
//   matmul_naive     one invocation per element of C, the dot product straight from memory;
//                    workgroups of 16 × 16, dispatch (⌈n/16⌉, ⌈m/16⌉).
//   matmul_tiled     16 × 16 tiles of op(A) and op(B) staged in workgroup memory, one element of C
//                    per invocation; workgroups of 16 × 16, dispatch (⌈n/16⌉, ⌈m/16⌉).
//   matmul_regblock  a 64 × 64 tile of C per workgroup of 16 × 16, each invocation a 4 × 4 block
//                    held in registers, depth staged 16 at a time; dispatch (⌈n/64⌉, ⌈m/64⌉).
//   matmul_vec4      matmul_regblock whose tile loads are one 128-bit vec4 per invocation: for
//                    op(A) when A is not transposed and k % 4 = 0, for op(B) when B is not
//                    transposed and n % 4 = 0 (then every vec4 lies wholly inside or outside the
//                    matrix); otherwise that operand falls back to scalar loads. Same dispatch.
// Bindings (group 0): 0 params (uniform), 1 A (read), 3 B (read), 2 C (read_write); matmul_vec4
// also reads A as vec4 at 5 and B as vec4 at 6 (the same buffers, 16-byte multiples).
// Precision: `S` is the storage type of A, B and C, `Acc` the type the products are summed in.
// This file is the f32→f32 ladder as written; the backend derives the f16→f32 ladder (S = f16,
// operands widened as they are staged) and the f16→f16 one (S = Acc = f16) by changing only
// the two alias lines below and putting `enable f16;` first (crates/wgpu/src/shaders.rs). α, β
// and the final α·dot + β·C are f32 in every precision.

alias S = f32;
alias Acc = f32;

struct Params {
    m: u32,
    n: u32,
    k: u32,
    trans_a: u32,
    trans_b: u32,
    alpha: f32,
    beta: f32,
    pad0: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<S>;
@group(0) @binding(2) var<storage, read_write> c: array<S>;
@group(0) @binding(3) var<storage, read> b: array<S>;
@group(0) @binding(5) var<storage, read> a4: array<vec4<S>>;
@group(0) @binding(6) var<storage, read> b4: array<vec4<S>>;

// op(A)[i, q], zero outside the matrix
fn a_at(i: u32, q: u32) -> Acc {
    if (i >= p.m || q >= p.k) {
        return 0.0;
    }
    return Acc(select(a[i * p.k + q], a[q * p.m + i], p.trans_a != 0u));
}

// op(B)[q, j], zero outside the matrix
fn b_at(q: u32, j: u32) -> Acc {
    if (q >= p.k || j >= p.n) {
        return 0.0;
    }
    return Acc(select(b[q * p.n + j], b[j * p.k + q], p.trans_b != 0u));
}

// C[i, j] ← α·dot + β·C[i, j], in f32, rounded once to S
fn store(i: u32, j: u32, dot: Acc) {
    let at = i * p.n + j;
    let v = p.alpha * f32(dot);
    c[at] = S(select(v, v + p.beta * f32(c[at]), p.beta != 0.0));
}

@compute @workgroup_size(16, 16)
fn matmul_naive(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.y;
    let j = gid.x;
    if (i >= p.m || j >= p.n) {
        return;
    }
    var dot = Acc(0.0);
    for (var q = 0u; q < p.k; q++) {
        dot += a_at(i, q) * b_at(q, j);
    }
    store(i, j, dot);
}

const T: u32 = 16u;
var<workgroup> tile_a: array<array<Acc, 16>, 16>;
var<workgroup> tile_b: array<array<Acc, 16>, 16>;

@compute @workgroup_size(16, 16)
fn matmul_tiled(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = wid.y * T + lid.y;
    let j = wid.x * T + lid.x;
    var dot = Acc(0.0);
    for (var q0 = 0u; q0 < p.k; q0 += T) {
        tile_a[lid.y][lid.x] = a_at(i, q0 + lid.x);
        tile_b[lid.y][lid.x] = b_at(q0 + lid.y, j);
        workgroupBarrier();
        for (var q = 0u; q < T; q++) {
            dot += tile_a[lid.y][q] * tile_b[q][lid.x];
        }
        workgroupBarrier();
    }
    if (i < p.m && j < p.n) {
        store(i, j, dot);
    }
}

const BM: u32 = 64u;
const BK: u32 = 16u;
var<workgroup> block_a: array<array<Acc, 16>, 64>;  // BM × BK
var<workgroup> block_b: array<array<Acc, 64>, 16>;  // BK × BM

// Scalar loads of the 64 × 16 block of op(A) and the 16 × 64 block of op(B) at depth q0, four
// values of each per invocation.
fn load_a_block(flat: u32, row0: u32, q0: u32) {
    for (var e = 0u; e < 4u; e++) {
        let idx = flat + e * 256u;
        block_a[idx / BK][idx % BK] = a_at(row0 + idx / BK, q0 + idx % BK);
    }
}

fn load_b_block(flat: u32, col0: u32, q0: u32) {
    for (var e = 0u; e < 4u; e++) {
        let idx = flat + e * 256u;
        block_b[idx / BM][idx % BM] = b_at(q0 + idx / BM, col0 + idx % BM);
    }
}

// acc += this invocation's 4 × 4 share of block_a · block_b.
fn accumulate(lid: vec3<u32>, acc: ptr<function, array<array<Acc, 4>, 4>>) {
    for (var q = 0u; q < BK; q++) {
        var ar: array<Acc, 4>;
        var br: array<Acc, 4>;
        for (var r = 0u; r < 4u; r++) {
            ar[r] = block_a[lid.y * 4u + r][q];
            br[r] = block_b[q][lid.x * 4u + r];
        }
        for (var r = 0u; r < 4u; r++) {
            for (var s = 0u; s < 4u; s++) {
                (*acc)[r][s] += ar[r] * br[s];
            }
        }
    }
}

// Writes this invocation's 4 × 4 block of C, skipping what lies outside the matrix.
fn store_block(row0: u32, col0: u32, lid: vec3<u32>, acc: array<array<Acc, 4>, 4>) {
    for (var r = 0u; r < 4u; r++) {
        for (var s = 0u; s < 4u; s++) {
            let i = row0 + lid.y * 4u + r;
            let j = col0 + lid.x * 4u + s;
            if (i < p.m && j < p.n) {
                store(i, j, acc[r][s]);
            }
        }
    }
}

@compute @workgroup_size(16, 16)
fn matmul_regblock(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) flat: u32, @builtin(local_invocation_id) lid: vec3<u32>) {
    let row0 = wid.y * BM;
    let col0 = wid.x * BM;
    var acc: array<array<Acc, 4>, 4>;
    for (var q0 = 0u; q0 < p.k; q0 += BK) {
        load_a_block(flat, row0, q0);
        load_b_block(flat, col0, q0);
        workgroupBarrier();
        accumulate(lid, &acc);
        workgroupBarrier();
    }
    store_block(row0, col0, lid, acc);
}

// op(A)[i, q..q+4] as a vec4 (A not transposed, k % 4 = 0, q % 4 = 0): zeros outside the matrix
fn a_vec(i: u32, q: u32) -> vec4<Acc> {
    if (i >= p.m || q >= p.k) {
        return vec4<Acc>(0.0);
    }
    return vec4<Acc>(a4[(i * p.k + q) / 4u]);
}

// op(B)[q, j..j+4] as a vec4 (B not transposed, n % 4 = 0, j % 4 = 0): zeros outside the matrix
fn b_vec(q: u32, j: u32) -> vec4<Acc> {
    if (q >= p.k || j >= p.n) {
        return vec4<Acc>(0.0);
    }
    return vec4<Acc>(b4[(q * p.n + j) / 4u]);
}

@compute @workgroup_size(16, 16)
fn matmul_vec4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) flat: u32, @builtin(local_invocation_id) lid: vec3<u32>) {
    let row0 = wid.y * BM;
    let col0 = wid.x * BM;
    let a_wide = p.trans_a == 0u && p.k % 4u == 0u;
    let b_wide = p.trans_b == 0u && p.n % 4u == 0u;
    var acc: array<array<Acc, 4>, 4>;
    for (var q0 = 0u; q0 < p.k; q0 += BK) {
        if (a_wide) {
            // 64 rows × 4 vec4 per row: invocation `flat` loads row flat / 4, vec4 flat % 4.
            let r = flat / 4u;
            let q = (flat % 4u) * 4u;
            let v = a_vec(row0 + r, q0 + q);
            block_a[r][q] = v.x;
            block_a[r][q + 1u] = v.y;
            block_a[r][q + 2u] = v.z;
            block_a[r][q + 3u] = v.w;
        } else {
            load_a_block(flat, row0, q0);
        }
        if (b_wide) {
            // 16 rows × 16 vec4 per row: invocation `flat` loads row flat / 16, vec4 flat % 16.
            let r = flat / 16u;
            let j = (flat % 16u) * 4u;
            let v = b_vec(q0 + r, col0 + j);
            block_b[r][j] = v.x;
            block_b[r][j + 1u] = v.y;
            block_b[r][j + 2u] = v.z;
            block_b[r][j + 3u] = v.w;
        } else {
            load_b_block(flat, col0, q0);
        }
        workgroupBarrier();
        accumulate(lid, &acc);
        workgroupBarrier();
    }
    store_block(row0, col0, lid, acc);
}
