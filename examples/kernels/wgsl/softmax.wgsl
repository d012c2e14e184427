// kernelab: op=softmax rows=1
//
// A minimal row-wise softmax for kernelab's WGPU backend, one workgroup per row:
//   y[r, :] ← exp(x[r, :] − max) / Σ exp(x[r, :] − max), over a rows × cols matrix, row-major.
// Subtracting the row maximum keeps exp finite for any input.
//
// Calling convention of softmax (the built-in shaders/rowwise.wgsl uses the same):
//   @group(0) @binding(0) params, uniform: rows, cols, then words softmax does not use
//   (a shader may declare fewer than the eight words, as this one does)
//   @binding(1) x (read), @binding(2) y (read_write)
// Geometry: the header's rows=1 says one row per workgroup, so the host dispatches ⌈rows/1⌉
// workgroups, but never more than 65,535: each workgroup strides over the rows
// (r = wid.x, wid.x + num_workgroups.x, …) so any number of rows is covered.
//
// Run it beside the built-in kernel, checked and timed:
//   kernelab bench --op softmax --backend wgpu --kernel examples/kernels/wgsl/softmax.wgsl

struct Params {
    rows: u32,
    cols: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;

const WG: u32 = 256u;
var<workgroup> scratch: array<f32, 256>;

// The maximum (take_max) or the sum of `v` over the workgroup, returned to every invocation.
fn reduce(v: f32, lid: u32, take_max: bool) -> f32 {
    scratch[lid] = v;
    workgroupBarrier();
    for (var half = WG / 2u; half > 0u; half /= 2u) {
        if (lid < half) {
            let other = scratch[lid + half];
            scratch[lid] = select(scratch[lid] + other, max(scratch[lid], other), take_max);
        }
        workgroupBarrier();
    }
    let result = scratch[0];
    workgroupBarrier();
    return result;
}

@compute @workgroup_size(256)
fn softmax_rows(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    for (var r = wid.x; r < p.rows; r += groups.x) {
        let row = r * p.cols;
        var biggest = -3.402823e38;
        for (var col = lid; col < p.cols; col += WG) {
            biggest = max(biggest, x[row + col]);
        }
        biggest = reduce(biggest, lid, true);
        var total = 0.0;
        for (var col = lid; col < p.cols; col += WG) {
            total += exp(x[row + col] - biggest);
        }
        total = reduce(total, lid, false);
        for (var col = lid; col < p.cols; col += WG) {
            y[row + col] = exp(x[row + col] - biggest) / total;
        }
    }
}
