// Elementwise kernels of kernelab's WGPU backend.
//
// Entry points (one variant each, `wgsl`): fill, relu, relu_backward, bias_add, bias_relu, add,
// scale, scale_by, axpy.
// Bindings (group 0): 0 params (uniform), 1 `x` (read), 2 `y` (read_write, the output),
// 3 `z` (read, the second input: dy, bias, b, s). Each entry point uses a subset.
// Params: n = elements, cols = row length (bias ops), alpha = scale factor or fill value.
// Launch: workgroups of 256 invocations, at most 65535 of them; every invocation strides over the
// elements by the grid size, so any n fits one dispatch.
// Precision: `S` is the storage type of every buffer; every value is widened to f32 as it is read,
// computed on in f32 and rounded once to S as it is written. This file is the f32 version as
// written; the backend derives the f16 one by changing only the alias line below and putting
// `enable f16;` first (crates/wgpu/src/shaders.rs).

alias S = f32;

struct Params {
    n: u32,
    cols: u32,
    alpha: f32,
    pad0: u32,
    pad1: u32,
    pad2: u32,
    pad3: u32,
    pad4: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<S>;
@group(0) @binding(2) var<storage, read_write> y: array<S>;
@group(0) @binding(3) var<storage, read> z: array<S>;

const WG: u32 = 256u;

// y = alpha
@compute @workgroup_size(256)
fn fill(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    for (var i = gid.x; i < p.n; i += groups.x * WG) {
        y[i] = S(p.alpha);
    }
}

// NaN by its bits: a shader compiler may assume that `v != v` never holds and fold it away.
fn is_nan(v: f32) -> bool {
    return (bitcast<u32>(v) & 0x7fffffffu) > 0x7f800000u;
}

// y = max(0, x), NaN kept
@compute @workgroup_size(256)
fn relu(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    for (var i = gid.x; i < p.n; i += groups.x * WG) {
        let v = f32(x[i]);
        y[i] = S(select(0.0, v, v > 0.0 || is_nan(v)));
    }
}

// dx = dy · [x > 0]   (x in `x`, dy in `z`, dx in `y`)
@compute @workgroup_size(256)
fn relu_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    for (var i = gid.x; i < p.n; i += groups.x * WG) {
        y[i] = S(select(0.0, f32(z[i]), f32(x[i]) > 0.0));
    }
}

// y[r, c] = x[r, c] + bias[c]   (bias in `z`)
@compute @workgroup_size(256)
fn bias_add(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    for (var i = gid.x; i < p.n; i += groups.x * WG) {
        y[i] = S(f32(x[i]) + f32(z[i % p.cols]));
    }
}

// y[r, c] = max(0, x[r, c] + bias[c]), NaN kept (as in relu)
@compute @workgroup_size(256)
fn bias_relu(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    for (var i = gid.x; i < p.n; i += groups.x * WG) {
        let v = f32(x[i]) + f32(z[i % p.cols]);
        y[i] = S(select(0.0, v, v > 0.0 || is_nan(v)));
    }
}

// y = a + b   (a in `x`, b in `z`)
@compute @workgroup_size(256)
fn add(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    for (var i = gid.x; i < p.n; i += groups.x * WG) {
        y[i] = S(f32(x[i]) + f32(z[i]));
    }
}

// y = alpha · x
@compute @workgroup_size(256)
fn scale(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    for (var i = gid.x; i < p.n; i += groups.x * WG) {
        y[i] = S(p.alpha * f32(x[i]));
    }
}

// y = alpha · s[0] · x   (the scalar s in `z`)
@compute @workgroup_size(256)
fn scale_by(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let a = p.alpha * f32(z[0]);
    for (var i = gid.x; i < p.n; i += groups.x * WG) {
        y[i] = S(a * f32(x[i]));
    }
}

// y = y + alpha · x
@compute @workgroup_size(256)
fn axpy(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    for (var i = gid.x; i < p.n; i += groups.x * WG) {
        y[i] = S(f32(y[i]) + p.alpha * f32(x[i]));
    }
}
