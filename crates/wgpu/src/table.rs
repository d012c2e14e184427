//! The WGPU backend's variants as data: one table per op of entries that say which WGSL module,
//! which entry point and which launch geometry run each variant. The built-in ones come from
//! [`MATMUL_LADDER`] and [`ONE_ENTRY`]; kernels loaded from files are appended after them. Every
//! launch looks its entry up with [`kernelab_tensor::resolve_for`] (by name, or the first entry of
//! the launch's storage dtype); nothing else matches names.
//!
//! To add a built-in variant: write its entry point in the shader of its family (`shaders/*.wgsl`,
//! and its line in that file's header), add a [`Rung`] to [`MATMUL_LADDER`] (or, for another op,
//! its line in [`ONE_ENTRY`]), and run the conformance suite (`KERNELAB_REQUIRE=wgpu cargo test
//! --test conformance`); the entry's bindings must follow [`crate::convention`], which the test
//! `builtin_entries_follow_the_convention` checks.
//!
//! Its f16 twin is one more line, in [`crate::table_f16`]: the same entry point in the family's
//! file narrowed to f16 storage (`shaders.rs`), listed after the f32 entries.

use kernelab_tensor::{Geometry, Op, Variant, VariantEntry};

use crate::shaders::{ADAM, ELEMENTWISE, MATMUL, ROWWISE, Shader};

/// One variant of one op: what it is, and the code that runs it.
#[derive(Clone, Debug)]
pub struct Entry {
    pub variant: Variant,
    pub code: Code,
}

/// The code of a variant: an entry point of a WGSL module and its launch geometry.
#[derive(Clone, Copy, Debug)]
pub struct Code {
    /// The module: a built-in shader, or a loaded file's text.
    pub shader: Shader,
    pub entry: &'static str,
    pub geometry: Geometry,
}

impl VariantEntry for Entry {
    fn variant(&self) -> &Variant {
        &self.variant
    }
}

/// One rung of the matmul ladder: its variant name, entry point in `shaders/matmul.wgsl`, the
/// square tile of C one workgroup writes, and one line on what it does differently.
pub struct Rung {
    pub variant: &'static str,
    pub entry: &'static str,
    pub tile: u32,
    pub summary: &'static str,
}

/// The matmul ladder, the default first.
pub const MATMUL_LADDER: [Rung; 4] = [
    Rung {
        variant: "regblock",
        entry: "matmul_regblock",
        tile: 64,
        summary: "64×64 tile per workgroup, 4×4 per invocation in registers",
    },
    Rung {
        variant: "vec4",
        entry: "matmul_vec4",
        tile: 64,
        summary: "regblock with 128-bit tile loads where the layout allows",
    },
    Rung { variant: "tiled", entry: "matmul_tiled", tile: 16, summary: "16×16 tiles staged in workgroup memory" },
    Rung {
        variant: "naive",
        entry: "matmul_naive",
        tile: 16,
        summary: "one invocation per element, dot product from memory",
    },
];

/// The variant name of every op with a single built-in kernel.
pub const ONE_VARIANT: &str = "wgsl";

/// Every op but matmul: its one built-in entry point and the shader holding it.
pub const ONE_ENTRY: [(Op, Shader, &str); 17] = [
    (Op::Fill, ELEMENTWISE, "fill"),
    (Op::BiasAdd, ELEMENTWISE, "bias_add"),
    (Op::BiasRelu, ELEMENTWISE, "bias_relu"),
    (Op::ColSum, ROWWISE, "col_sum"),
    (Op::Relu, ELEMENTWISE, "relu"),
    (Op::ReluBackward, ELEMENTWISE, "relu_backward"),
    (Op::Softmax, ROWWISE, "softmax"),
    (Op::SoftmaxBackward, ROWWISE, "softmax_backward"),
    (Op::LogSoftmax, ROWWISE, "log_softmax"),
    (Op::LogSoftmaxBackward, ROWWISE, "log_softmax_backward"),
    (Op::SoftmaxCrossEntropy, ROWWISE, "softmax_cross_entropy"),
    (Op::KlDiv, ROWWISE, "kl_div"),
    (Op::Add, ELEMENTWISE, "add"),
    (Op::Scale, ELEMENTWISE, "scale"),
    (Op::ScaleBy, ELEMENTWISE, "scale_by"),
    (Op::Axpy, ELEMENTWISE, "axpy"),
    (Op::Adam, ADAM, "adam"),
];

/// The built-in shaders' geometry for ops of one entry: 256 elements or one row per workgroup.
pub(crate) const ONE_ENTRY_GEOMETRY: Geometry = Geometry { tile: None, items: Some(256), rows: Some(1), block: None };

/// The built-in entries of every op, indexed by [`Op::index`]: the f32 ones, the default of each
/// first, then the f16 ones ([`crate::table_f16`]), unavailable unless the adapter offers
/// `shader-f16`.
pub fn builtin(shader_f16: bool) -> Vec<Vec<Entry>> {
    let mut tables: Vec<Vec<Entry>> = Op::ALL.iter().map(|_| Vec::new()).collect();
    tables[Op::Matmul.index()] = MATMUL_LADDER
        .iter()
        .map(|r| Entry {
            variant: Variant::available(r.variant, r.summary),
            code: Code {
                shader: MATMUL,
                entry: r.entry,
                geometry: Geometry { tile: Some((r.tile, r.tile)), ..Geometry::default() },
            },
        })
        .collect();
    for (op, shader, entry) in ONE_ENTRY {
        tables[op.index()].push(Entry {
            variant: Variant::available(ONE_VARIANT, "one WGSL entry point, grid-stride over elements or rows"),
            code: Code { shader, entry, geometry: ONE_ENTRY_GEOMETRY },
        });
    }
    crate::table_f16::add_f16(&mut tables, shader_f16);
    tables
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_op_has_a_builtin_variant() {
        let tables = builtin(true);
        for op in Op::ALL {
            assert!(!tables[op.index()].is_empty(), "{op} has no built-in variant");
        }
        let names: Vec<&str> = tables[Op::Matmul.index()].iter().map(|e| e.variant.name).collect();
        assert_eq!(
            names,
            [
                "regblock",
                "vec4",
                "tiled",
                "naive",
                "f16-regblock",
                "f16-vec4",
                "f16-tiled",
                "f16-naive",
                "f16-regblock-f16acc"
            ]
        );
    }
}
