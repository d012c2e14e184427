// kernelab: op=matmul tile=16x16
//
// A cheat by omission: one invocation per element of C with no bounds guard anywhere. Right
// when m and n are multiples of 16 (every invocation lies inside C); on a partial tile the
// invocations past column n - 1 read past the rows of A and B and write row i + 1 of C
// (i·n + j with j ≥ n), over values other invocations computed.

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

@compute @workgroup_size(16, 16)
fn matmul_unguarded(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.y;
    let j = gid.x;
    var dot = 0.0;
    for (var q = 0u; q < p.k; q++) {
        let x = select(a[i * p.k + q], a[q * p.m + i], p.trans_a != 0u);
        let y = select(b[q * p.n + j], b[j * p.k + q], p.trans_b != 0u);
        dot += x * y;
    }
    let at = i * p.n + j;
    c[at] = select(p.alpha * dot, p.alpha * dot + p.beta * c[at], p.beta != 0.0);
}
