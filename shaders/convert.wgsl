// Conversions between f32 and f16 buffers of kernelab's WGPU backend, in integer arithmetic on the
// bits, so that they need no `shader-f16` and round exactly as the host does (WGSL leaves the
// rounding of f16(x) to the implementation).
//
// Entry points (variant `f16-wgsl`):
//   narrow_f16  y ← round(x): f32 x to f16 y, to nearest, ties to even; beyond 65504 (from 65520,
//               the halfway point to 2¹⁶, up) ±∞; NaN stays NaN (quiet); below 2⁻¹⁴ subnormal.
//   widen_f16   y ← x: f16 x to f32 y, exactly.
// Bindings (group 0): 0 params (uniform), 1 `x` (read), 2 `y` (read_write). The f16 side is read
// or written as u32 words, two halves each, the element of even index in the low half.
// Params: n = elements.
// Launch: workgroups of 256 invocations, at most 65535 of them, each invocation one word (two
// elements) at a time, striding over the words by the grid size. The half past an odd n is
// written 0 (the buffer is padded to 16 bytes, so that word exists).

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
@group(0) @binding(1) var<storage, read> x32: array<f32>;
@group(0) @binding(2) var<storage, read_write> y16: array<u32>;
@group(0) @binding(1) var<storage, read> x16: array<u32>;
@group(0) @binding(2) var<storage, read_write> y32: array<f32>;

const WG: u32 = 256u;

// The f16 bits (in the low 16) of the f32 `v` rounded to nearest, ties to even.
fn f16_bits(v: f32) -> u32 {
    let bits = bitcast<u32>(v);
    let sign = (bits >> 16u) & 0x8000u;
    let a = bits & 0x7fffffffu;
    if (a > 0x7f800000u) {
        return sign | 0x7e00u | ((a >> 13u) & 0x3ffu);  // NaN, quiet
    }
    if (a >= 0x477ff000u) {
        return sign | 0x7c00u;  // ≥ 65520 (or ∞): ∞
    }
    if (a >= 0x38800000u) {
        // normal: rebias the exponent (127 − 15 = 112), round the 13 dropped bits to even
        let r = a - 0x38000000u;
        return sign | ((r + 0xfffu + ((r >> 13u) & 1u)) >> 13u);
    }
    if (a <= 0x33000000u) {
        return sign;  // ≤ 2⁻²⁵, half the smallest subnormal: ±0 (the tie goes to even 0)
    }
    // subnormal: the significand in units of 2⁻²⁴, rounded to even
    let e = a >> 23u;
    let m = (a & 0x7fffffu) | 0x800000u;
    let shift = 126u - e;
    let q = m >> shift;
    let rest = m & ((1u << shift) - 1u);
    let half = 1u << (shift - 1u);
    return sign | (q + select(0u, 1u, rest > half || (rest == half && (q & 1u) == 1u)));
}

// The f32 of the f16 bits `h` (low 16), exactly.
fn f32_of(h: u32) -> f32 {
    let sign = (h & 0x8000u) << 16u;
    let e = (h >> 10u) & 0x1fu;
    let m = h & 0x3ffu;
    if (e == 31u) {
        return bitcast<f32>(sign | 0x7f800000u | (m << 13u));  // ∞, NaN
    }
    if (e == 0u) {
        let magnitude = f32(m) * 5.9604644775390625e-8;  // m · 2⁻²⁴, exact
        return select(magnitude, -magnitude, sign != 0u);
    }
    return bitcast<f32>(sign | ((e + 112u) << 23u) | (m << 13u));
}

@compute @workgroup_size(256)
fn narrow_f16(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let words = (p.n + 1u) / 2u;
    for (var w = gid.x; w < words; w += groups.x * WG) {
        let lo = f16_bits(x32[2u * w]);
        let hi = select(0u, f16_bits(x32[2u * w + 1u]), 2u * w + 1u < p.n);
        y16[w] = lo | (hi << 16u);
    }
}

@compute @workgroup_size(256)
fn widen_f16(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let words = (p.n + 1u) / 2u;
    for (var w = gid.x; w < words; w += groups.x * WG) {
        let pair = x16[w];
        y32[2u * w] = f32_of(pair & 0xffffu);
        if (2u * w + 1u < p.n) {
            y32[2u * w + 1u] = f32_of(pair >> 16u);
        }
    }
}
