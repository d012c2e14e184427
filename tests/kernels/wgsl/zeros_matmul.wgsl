// kernelab: op=matmul tile=16x16
//
// A cheat: writes zeros over every element of C and computes nothing. Poisoned outputs do not
// catch it (every element is written); the reference does, whenever op(A)·op(B) is not zero.

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
fn matmul_zeros(@builtin(global_invocation_id) gid: vec3<u32>) {
    if (gid.y < p.m && gid.x < p.n) {
        c[gid.y * p.n + gid.x] = 0.0;
    }
}
