//! The f16 variants of the WGPU backend, added to the op tables after the f32 ones (so an f32
//! launch's default stays the f32 kernel, and an f16 launch's default is the first f16 entry).
//!
//! Every f16 kernel but the conversions is an f32 shader of `shaders/` narrowed
//! ([`crate::shaders::narrowed`]): f16 buffers, `enable f16;`, which WGSL allows only where the
//! adapter offers `shader-f16`. Where it does not, these variants are listed unavailable with
//! [`LACKS_SHADER_F16`], never compiled. `narrow` and `widen` convert in integer arithmetic on the
//! bits (`shaders/convert.wgsl`) and run on every adapter.
//!
//! | variant | precision | what it is |
//! |---------|-----------|------------|
//! | matmul `f16-regblock`, `f16-vec4`, `f16-tiled`, `f16-naive` | f16→f32 | the f32 rung over f16 A, B, C; operands widened to f32 as they are staged, f32 sums, C rounded once |
//! | matmul `f16-regblock-f16acc` | f16→f16 | regblock summing in f16 (its budget grows with K·2⁻¹¹, not K·2⁻²⁴) |
//! | elementwise and row-wise ops `f16-wgsl` | f16→f32 | the f32 entry over f16 buffers, computing in f32 |
//! | `narrow`, `widen` `f16-wgsl` | f16→f32 | f32 ↔ f16 by bit arithmetic, round to nearest even |
//! | `adam` `f16-wgsl` | unavailable | [`ADAM_F16`] |

use kernelab_tensor::{Dtype, Geometry, Op, Precision, Variant};

use crate::shaders::{self, CONVERT, Shader};
use crate::table::{Code, Entry, ONE_ENTRY_GEOMETRY};

/// Why the f16 variants cannot run on an adapter without the feature.
pub const LACKS_SHADER_F16: &str = "the adapter lacks shader-f16";

/// Why Adam has no f16 variant.
pub const ADAM_F16: &str = "Adam's second moment v = g² underflows f16 below 6·10⁻⁸ (gradients under 2.4·10⁻⁴), so \
                            mixed-precision training keeps Adam's state and master weights in f32";

/// The name of every f16 variant of an op with one kernel.
pub const F16_VARIANT: &str = "f16-wgsl";

/// A narrowed module, made on first use ([`crate::shaders`]).
pub type Narrowed = fn() -> Shader;

/// f16 storage, f32 accumulation.
pub const F16_F32: Precision = Precision { storage: Dtype::F16, accumulate: Dtype::F32 };
/// f16 storage, f16 accumulation.
pub const F16_F16: Precision = Precision { storage: Dtype::F16, accumulate: Dtype::F16 };

/// One f16 rung of the matmul ladder: its name, precision, the module (the f32 `matmul.wgsl`
/// narrowed), the entry point and tile of the f32 rung it is, and one line on what it does.
pub struct F16Rung {
    pub variant: &'static str,
    pub precision: Precision,
    pub shader: Narrowed,
    pub entry: &'static str,
    pub tile: u32,
    pub summary: &'static str,
}

/// The f16 matmul ladder, its default (the fastest f16→f32 rung) first.
pub const MATMUL_F16_LADDER: [F16Rung; 5] = [
    F16Rung {
        variant: "f16-regblock",
        precision: F16_F32,
        shader: shaders::matmul_f16,
        entry: "matmul_regblock",
        tile: 64,
        summary: "regblock over f16 A, B, C: operands widened to f32 when staged, f32 sums",
    },
    F16Rung {
        variant: "f16-vec4",
        precision: F16_F32,
        shader: shaders::matmul_f16,
        entry: "matmul_vec4",
        tile: 64,
        summary: "vec4 over f16: 64-bit vec4<f16> tile loads, f32 sums",
    },
    F16Rung {
        variant: "f16-tiled",
        precision: F16_F32,
        shader: shaders::matmul_f16,
        entry: "matmul_tiled",
        tile: 16,
        summary: "tiled over f16 A, B, C, f32 sums",
    },
    F16Rung {
        variant: "f16-naive",
        precision: F16_F32,
        shader: shaders::matmul_f16,
        entry: "matmul_naive",
        tile: 16,
        summary: "naive over f16 A, B, C, f32 sums",
    },
    F16Rung {
        variant: "f16-regblock-f16acc",
        precision: F16_F16,
        shader: shaders::matmul_f16_acc,
        entry: "matmul_regblock",
        tile: 64,
        summary: "regblock summing in f16 (staged tiles and 4×4 sums f16; α·sum + β·C in f32)",
    },
];

/// Every op with one f16 kernel: the narrowed module holding it and its entry point (the f32
/// entry's name).
pub const F16_ONE_ENTRY: [(Op, Narrowed, &str); 16] = [
    (Op::Fill, shaders::elementwise_f16, "fill"),
    (Op::BiasAdd, shaders::elementwise_f16, "bias_add"),
    (Op::BiasRelu, shaders::elementwise_f16, "bias_relu"),
    (Op::ColSum, shaders::rowwise_f16, "col_sum"),
    (Op::Relu, shaders::elementwise_f16, "relu"),
    (Op::ReluBackward, shaders::elementwise_f16, "relu_backward"),
    (Op::Softmax, shaders::rowwise_f16, "softmax"),
    (Op::SoftmaxBackward, shaders::rowwise_f16, "softmax_backward"),
    (Op::LogSoftmax, shaders::rowwise_f16, "log_softmax"),
    (Op::LogSoftmaxBackward, shaders::rowwise_f16, "log_softmax_backward"),
    (Op::SoftmaxCrossEntropy, shaders::rowwise_f16, "softmax_cross_entropy"),
    (Op::KlDiv, shaders::rowwise_f16, "kl_div"),
    (Op::Add, shaders::elementwise_f16, "add"),
    (Op::Scale, shaders::elementwise_f16, "scale"),
    (Op::ScaleBy, shaders::elementwise_f16, "scale_by"),
    (Op::Axpy, shaders::elementwise_f16, "axpy"),
];

/// The conversions: op and entry point in `shaders/convert.wgsl`.
pub const CONVERSIONS: [(Op, &str); 2] = [(Op::Narrow, "narrow_f16"), (Op::Widen, "widen_f16")];

/// What `kernelab devices` says about `shader-f16` on this adapter.
pub fn shader_f16_detail(offered: bool) -> String {
    if offered {
        "offered (requested): f16 variants run".into()
    } else {
        "not offered: the f16 variants are unavailable; f16 storage, narrow and widen still work".into()
    }
}

/// Appends the f16 entries to `tables` (indexed by [`Op::index`]); without `shader_f16` every one
/// but the conversions is unavailable.
pub fn add_f16(tables: &mut [Vec<Entry>], shader_f16: bool) {
    let lacking = (!shader_f16).then(|| LACKS_SHADER_F16.to_string());
    for r in &MATMUL_F16_LADDER {
        tables[Op::Matmul.index()].push(Entry {
            variant: Variant::available(r.variant, r.summary)
                .with_precision(r.precision)
                .unavailable_if(lacking.clone()),
            code: Code {
                shader: (r.shader)(),
                entry: r.entry,
                geometry: Geometry { tile: Some((r.tile, r.tile)), ..Geometry::default() },
            },
        });
    }
    for (op, shader, entry) in F16_ONE_ENTRY {
        tables[op.index()].push(Entry {
            variant: Variant::available(F16_VARIANT, "the f32 entry point over f16 buffers, computing in f32")
                .with_precision(F16_F32)
                .unavailable_if(lacking.clone()),
            code: Code { shader: shader(), entry, geometry: ONE_ENTRY_GEOMETRY },
        });
    }
    for (op, entry) in CONVERSIONS {
        tables[op.index()].push(Entry {
            variant: Variant::available(F16_VARIANT, "bit arithmetic on u32 words, two halves each; no shader-f16")
                .with_precision(F16_F32),
            code: Code { shader: CONVERT, entry, geometry: ONE_ENTRY_GEOMETRY },
        });
    }
    tables[Op::Adam.index()].push(Entry {
        variant: Variant::available(F16_VARIANT, "Adam over f16 state")
            .with_precision(F16_F32)
            .unavailable_if(Some(ADAM_F16.into())),
        code: Code { shader: shaders::ADAM, entry: "adam", geometry: ONE_ENTRY_GEOMETRY },
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_op_has_an_f16_entry_unavailable_without_the_feature() {
        for offered in [true, false] {
            let tables = crate::table::builtin(offered);
            for op in Op::ALL {
                let f16: Vec<&Entry> =
                    tables[op.index()].iter().filter(|e| e.variant.precision.storage == Dtype::F16).collect();
                assert!(!f16.is_empty(), "{op} has no f16 entry");
                for e in f16 {
                    let convert = matches!(op, Op::Narrow | Op::Widen);
                    let reason = e.variant.unavailable.as_deref();
                    match (op, offered) {
                        (Op::Adam, _) => assert_eq!(reason, Some(ADAM_F16)),
                        _ if convert || offered => assert_eq!(reason, None, "{op} {}", e.variant.name),
                        _ => assert_eq!(reason, Some(LACKS_SHADER_F16), "{op} {}", e.variant.name),
                    }
                }
            }
        }
    }
}
