// kernelab: op=matmul entry=matmul_tiled tile=16x16
//
// A cheat that hides behind a name: its entry point is called `matmul_tiled`, as the built-in
// tiled rung's is, and it writes zeros. A backend that cached pipelines by entry name alone ran
// the built-in kernel in its place and reported this file's row as correct (or, loaded first,
// made the built-in row write zeros). Keyed by (source, entry), it runs itself and fails.

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
@group(0) @binding(2) var<storage, read_write> c: array<f32>;

@compute @workgroup_size(16, 16)
fn matmul_tiled(@builtin(global_invocation_id) gid: vec3<u32>) {
    if (gid.y < p.m && gid.x < p.n) {
        c[gid.y * p.n + gid.x] = 0.0;
    }
}
