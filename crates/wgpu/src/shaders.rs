//! The WGSL sources, embedded from `shaders/` at the workspace root, with the file each came from
//! (named in compile errors and in the validation test).

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

/// Every shader of the backend.
pub const ALL: [Shader; 4] = [ELEMENTWISE, ROWWISE, MATMUL, ADAM];
