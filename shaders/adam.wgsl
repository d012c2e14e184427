// The Adam update of kernelab's WGPU backend, PyTorch's order of operations:
//   m ← β₁·m + (1−β₁)·g;  v ← β₂·v + (1−β₂)·g²;  p ← p − step_size·m / (√v·inv_sqrt_bc2 + ε)
// with step_size = lr/(1−β₁ᵗ) and inv_sqrt_bc2 = 1/√(1−β₂ᵗ) computed on the host.
//
// Entry point (variant `wgsl`): adam.
// Bindings (group 0): 0 params (uniform), 1 grad (read), 2 param (read_write), 4 m (read_write),
// 5 v (read_write).
// Launch: workgroups of 256, at most 65535, grid-stride over n.

struct Params {
    n: u32,
    step_size: f32,
    inv_sqrt_bc2: f32,
    beta1: f32,
    beta2: f32,
    eps: f32,
    pad0: u32,
    pad1: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> grad: array<f32>;
@group(0) @binding(2) var<storage, read_write> param: array<f32>;
@group(0) @binding(4) var<storage, read_write> m: array<f32>;
@group(0) @binding(5) var<storage, read_write> v: array<f32>;

@compute @workgroup_size(256)
fn adam(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    for (var i = gid.x; i < p.n; i += groups.x * 256u) {
        let g = grad[i];
        let mi = p.beta1 * m[i] + (1.0 - p.beta1) * g;
        let vi = p.beta2 * v[i] + (1.0 - p.beta2) * g * g;
        m[i] = mi;
        v[i] = vi;
        param[i] = param[i] - p.step_size * mi / (sqrt(vi) * p.inv_sqrt_bc2 + p.eps);
    }
}
