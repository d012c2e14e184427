//! The WGSL sources, embedded from `shaders/` at the workspace root, with the file each came from
//! (named in compile errors and in the validation test).
//!
//! The f16 shaders are not files of their own: each family's file is written once over the type
//! aliases `S` (storage) and, in matmul, `Acc` (accumulation), both `f32` as written, and the f16
//! modules are that same text with the alias lines changed and `enable f16;` put after the
//! header ([`narrowed`]). A kernel and its f16 twin therefore cannot drift apart.

use std::sync::LazyLock;

/// One WGSL file.
#[derive(Clone, Copy, Debug)]
pub struct Shader {
    pub file: &'static str,
    pub source: &'static str,
}

pub const ELEMENTWISE: Shader =
    Shader { file: "shaders/elementwise.wgsl", source: include_str!("../../../shaders/elementwise.wgsl") };
pub const ROWWISE: Shader =
    Shader { file: "shaders/rowwise.wgsl", source: include_str!("../../../shaders/rowwise.wgsl") };
pub const MATMUL: Shader = Shader { file: "shaders/matmul.wgsl", source: include_str!("../../../shaders/matmul.wgsl") };
pub const ADAM: Shader = Shader { file: "shaders/adam.wgsl", source: include_str!("../../../shaders/adam.wgsl") };
pub const CONVERT: Shader =
    Shader { file: "shaders/convert.wgsl", source: include_str!("../../../shaders/convert.wgsl") };

/// Every shader of the backend as written (f32, and the f32 ↔ f16 conversions).
pub const ALL: [Shader; 5] = [ELEMENTWISE, ROWWISE, MATMUL, ADAM, CONVERT];

/// The storage alias line every precision-generic shader declares, as written.
pub const STORAGE_F32: &str = "alias S = f32;";
/// The accumulation alias line of `shaders/matmul.wgsl`, as written.
pub const ACCUMULATE_F32: &str = "alias Acc = f32;";

/// `source` with each `(from, to)` line replaced and `enable f16;` inserted before its first line
/// that is not a comment (WGSL wants directives before any declaration; the header stays first).
/// Each `from` must occur in `source`: the test `f16_shaders_are_the_f32_text_narrowed` holds
/// every shader to it.
pub fn narrowed(source: &str, lines: &[(&str, &str)]) -> String {
    let mut text = source.to_string();
    for (from, to) in lines {
        debug_assert!(text.contains(from), "the shader lacks the line `{from}`");
        text = text.replacen(from, to, 1);
    }
    let header: usize = text.lines().take_while(|l| l.starts_with("//")).map(|l| l.len() + 1).sum();
    text.insert_str(header.min(text.len()), "enable f16;\n");
    text
}

static ELEMENTWISE_F16_TEXT: LazyLock<String> =
    LazyLock::new(|| narrowed(ELEMENTWISE.source, &[(STORAGE_F32, "alias S = f16;")]));
static ROWWISE_F16_TEXT: LazyLock<String> =
    LazyLock::new(|| narrowed(ROWWISE.source, &[(STORAGE_F32, "alias S = f16;")]));
static MATMUL_F16_TEXT: LazyLock<String> =
    LazyLock::new(|| narrowed(MATMUL.source, &[(STORAGE_F32, "alias S = f16;")]));
static MATMUL_F16_ACC_TEXT: LazyLock<String> =
    LazyLock::new(|| narrowed(MATMUL.source, &[(STORAGE_F32, "alias S = f16;"), (ACCUMULATE_F32, "alias Acc = f16;")]));

/// `shaders/elementwise.wgsl` over f16 buffers (computing in f32).
pub fn elementwise_f16() -> Shader {
    Shader { file: "shaders/elementwise.wgsl (S = f16)", source: ELEMENTWISE_F16_TEXT.as_str() }
}

/// `shaders/rowwise.wgsl` over f16 buffers (computing in f32).
pub fn rowwise_f16() -> Shader {
    Shader { file: "shaders/rowwise.wgsl (S = f16)", source: ROWWISE_F16_TEXT.as_str() }
}

/// `shaders/matmul.wgsl` over f16 A, B and C, the products summed in f32 (f16→f32).
pub fn matmul_f16() -> Shader {
    Shader { file: "shaders/matmul.wgsl (S = f16, Acc = f32)", source: MATMUL_F16_TEXT.as_str() }
}

/// `shaders/matmul.wgsl` over f16 A, B and C, the products summed in f16 (f16→f16).
pub fn matmul_f16_acc() -> Shader {
    Shader { file: "shaders/matmul.wgsl (S = f16, Acc = f16)", source: MATMUL_F16_ACC_TEXT.as_str() }
}

/// Every f16 module the backend derives.
pub fn all_f16() -> [Shader; 4] {
    [elementwise_f16(), rowwise_f16(), matmul_f16(), matmul_f16_acc()]
}
