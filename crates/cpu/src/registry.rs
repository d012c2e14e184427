//! The CPU's kernel variants per op. The benchmark and the conformance suite read this list; the
//! first entry of each op is its default.

use kernelab_tensor::{Op, Variant};

/// The default variant of every op that has only one.
pub const PORTABLE: &str = "portable";

/// The variants of `op`, the default first.
pub fn variants(op: Op) -> Vec<Variant> {
    match op {
        Op::Matmul => vec![
            Variant::available("blocked", "packed op(A)/op(B), 4-row update, rayon over 32-row blocks"),
            Variant::available("naive", "textbook triple loop, one thread"),
        ],
        _ => vec![Variant::available(PORTABLE, "plain loops, vectorized by the compiler, rayon above 32K elements")],
    }
}
