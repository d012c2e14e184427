// Row-wise kernels of kernelab's WGPU backend, over a rows × cols matrix.
//
// Entry points (one variant each, `wgsl`): softmax, log_softmax, softmax_backward,
// log_softmax_backward, softmax_cross_entropy, kl_div, col_sum.
// Bindings (group 0): 0 params (uniform), 1 `x` (read: x, y, or logits), 2 `y` (read_write: the
// main output: y, dx, or grad), 3 `z` (read: dy or target; `labels`, always f32, for
// softmax_cross_entropy), 4 `w` (read_write: per-row loss). Each entry point uses a subset.
// Params: rows, cols, alpha (col_sum's α, kl_div's temperature), accumulate (col_sum).
// Launch: one workgroup of 256 invocations per row (per column for col_sum), at most 65535
// workgroups striding over the rows; reductions go through workgroup memory. Every softmax
// subtracts the row maximum before exponentiating.
// Precision: `S` is the storage type of every buffer; every value is widened to f32 as it is read,
// computed on in f32 and rounded once to S as it is written. This file is the f32 version as
// written; the backend derives the f16 one by changing only the alias line below and putting
// `enable f16;` first (crates/wgpu/src/shaders.rs).

alias S = f32;

struct Params {
    rows: u32,
    cols: u32,
    alpha: f32,
    accumulate: u32,
    pad0: u32,
    pad1: u32,
    pad2: u32,
    pad3: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<S>;
@group(0) @binding(2) var<storage, read_write> y: array<S>;
@group(0) @binding(3) var<storage, read> z: array<S>;
@group(0) @binding(4) var<storage, read_write> w: array<S>;
// softmax_cross_entropy's labels at 3 instead of `z`: class indices, f32 in every precision
@group(0) @binding(3) var<storage, read> labels: array<f32>;

const WG: u32 = 256u;
const LOWEST: f32 = -3.402823e38;

var<workgroup> partial: array<f32, 256>;

// The maximum of `v` over the workgroup (every invocation gets it).
fn reduce_max(v: f32, lid: u32) -> f32 {
    partial[lid] = v;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s = s / 2u) {
        if (lid < s) {
            partial[lid] = max(partial[lid], partial[lid + s]);
        }
        workgroupBarrier();
    }
    let r = partial[0];
    workgroupBarrier();
    return r;
}

// The sum of `v` over the workgroup (every invocation gets it).
fn reduce_sum(v: f32, lid: u32) -> f32 {
    partial[lid] = v;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s = s / 2u) {
        if (lid < s) {
            partial[lid] = partial[lid] + partial[lid + s];
        }
        workgroupBarrier();
    }
    let r = partial[0];
    workgroupBarrier();
    return r;
}

// max over the row of scale·x
fn row_max(base: u32, scale: f32, lid: u32) -> f32 {
    var m = LOWEST;
    for (var c = lid; c < p.cols; c += WG) {
        m = max(m, scale * f32(x[base + c]));
    }
    return reduce_max(m, lid);
}

// Σ over the row of exp(scale·x − m)
fn row_sum_exp(base: u32, scale: f32, m: f32, lid: u32) -> f32 {
    var s = 0.0;
    for (var c = lid; c < p.cols; c += WG) {
        s += exp(scale * f32(x[base + c]) - m);
    }
    return reduce_sum(s, lid);
}

// y = exp(x − max) / Σ exp(x − max)
@compute @workgroup_size(256)
fn softmax(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32, @builtin(num_workgroups) groups: vec3<u32>) {
    for (var row = wid.x; row < p.rows; row += groups.x) {
        let base = row * p.cols;
        let m = row_max(base, 1.0, lid);
        let inv = 1.0 / row_sum_exp(base, 1.0, m, lid);
        for (var c = lid; c < p.cols; c += WG) {
            y[base + c] = S(exp(f32(x[base + c]) - m) * inv);
        }
    }
}

// y = x − max − ln Σ exp(x − max)
@compute @workgroup_size(256)
fn log_softmax(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32, @builtin(num_workgroups) groups: vec3<u32>) {
    for (var row = wid.x; row < p.rows; row += groups.x) {
        let base = row * p.cols;
        let m = row_max(base, 1.0, lid);
        let shift = m + log(row_sum_exp(base, 1.0, m, lid));
        for (var c = lid; c < p.cols; c += WG) {
            y[base + c] = S(f32(x[base + c]) - shift);
        }
    }
}

// dx = y ⊙ (dy − Σ dy·y)   (y in `x`, dy in `z`, dx in `y`)
@compute @workgroup_size(256)
fn softmax_backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32, @builtin(num_workgroups) groups: vec3<u32>) {
    for (var row = wid.x; row < p.rows; row += groups.x) {
        let base = row * p.cols;
        var d = 0.0;
        for (var c = lid; c < p.cols; c += WG) {
            d += f32(x[base + c]) * f32(z[base + c]);
        }
        let dot = reduce_sum(d, lid);
        for (var c = lid; c < p.cols; c += WG) {
            y[base + c] = S(f32(x[base + c]) * (f32(z[base + c]) - dot));
        }
    }
}

// dx = dy − exp(y)·Σ dy   (y in `x`, dy in `z`, dx in `y`)
@compute @workgroup_size(256)
fn log_softmax_backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32, @builtin(num_workgroups) groups: vec3<u32>) {
    for (var row = wid.x; row < p.rows; row += groups.x) {
        let base = row * p.cols;
        var t = 0.0;
        for (var c = lid; c < p.cols; c += WG) {
            t += f32(z[base + c]);
        }
        let total = reduce_sum(t, lid);
        for (var c = lid; c < p.cols; c += WG) {
            y[base + c] = S(f32(z[base + c]) - exp(f32(x[base + c])) * total);
        }
    }
}

// loss[r] = ln Σ exp(z − max) + max − z[label];  grad = (softmax(z) − onehot(label)) / rows
// (logits in `x`, labels in `labels`, grad in `y`, loss in `w`). A label ≥ cols (the host checks
// labels when they are made; a direct launch might not) makes the row's loss and gradient NaN.
@compute @workgroup_size(256)
fn softmax_cross_entropy(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32, @builtin(num_workgroups) groups: vec3<u32>) {
    let inv_rows = 1.0 / f32(p.rows);
    for (var row = wid.x; row < p.rows; row += groups.x) {
        let base = row * p.cols;
        let label = u32(labels[row]);
        let valid = labels[row] >= 0.0 && label < p.cols;
        let nan = bitcast<f32>(0x7fc00000u);
        let m = row_max(base, 1.0, lid);
        let s = row_sum_exp(base, 1.0, m, lid);
        if (lid == 0u) {
            w[row] = S(select(nan, log(s) + m - f32(x[base + min(label, p.cols - 1u)]), valid));
        }
        let scale = inv_rows / s;
        for (var c = lid; c < p.cols; c += WG) {
            let g = exp(f32(x[base + c]) - m) * scale - select(0.0, inv_rows, c == label);
            y[base + c] = S(select(nan, g, valid));
        }
    }
}

// With s = z/T and p = softmax(s): loss[r] = Σ q·(ln q − ln p) (q = 0 terms are 0) and
// grad = (p − q) / (T·rows)   (logits in `x`, target q in `z`, grad in `y`, loss in `w`, T = alpha)
@compute @workgroup_size(256)
fn kl_div(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32, @builtin(num_workgroups) groups: vec3<u32>) {
    let inv_t = 1.0 / p.alpha;
    let grad_scale = 1.0 / (p.alpha * f32(p.rows));
    for (var row = wid.x; row < p.rows; row += groups.x) {
        let base = row * p.cols;
        let m = row_max(base, inv_t, lid);
        let lse = m + log(row_sum_exp(base, inv_t, m, lid));
        var kl = 0.0;
        for (var c = lid; c < p.cols; c += WG) {
            let q = f32(z[base + c]);
            let log_p = inv_t * f32(x[base + c]) - lse;
            if (q > 0.0) {
                kl += q * (log(q) - log_p);
            }
            y[base + c] = S((exp(log_p) - q) * grad_scale);
        }
        let total = reduce_sum(kl, lid);
        if (lid == 0u) {
            w[row] = S(total);
        }
    }
}

// y[c] = alpha · Σ_r x[r, c] (+ y[c] when accumulate): one workgroup per column
@compute @workgroup_size(256)
fn col_sum(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32, @builtin(num_workgroups) groups: vec3<u32>) {
    for (var col = wid.x; col < p.cols; col += groups.x) {
        var s = 0.0;
        for (var r = lid; r < p.rows; r += WG) {
            s += f32(x[r * p.cols + col]);
        }
        let total = reduce_sum(s, lid);
        if (lid == 0u) {
            y[col] = S(p.alpha * total + select(0.0, f32(y[col]), p.accumulate != 0u));
        }
    }
}
