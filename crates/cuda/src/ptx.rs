//! The hand-written PTX modules of `kernels/`, embedded in the binary, and what can be read from
//! their text without a GPU: the entry points and their parameter types, in order.

/// One PTX file: its name under `kernels/` (`matmul/3_tiled.ptx`), or a loaded file's path, and
/// its text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PtxModule {
    pub file: &'static str,
    pub source: &'static str,
}

/// The identity of a module's text: see [`PtxModule::id`].
pub type ModuleId = (usize, usize);

impl PtxModule {
    /// The identity of the module's text, for caches: its address and length. Two texts alive at
    /// once differ in it (a loaded file's text is leaked, so it stays alive), whatever their
    /// names; hashing the text itself would cost a pass over it per launch.
    pub fn id(&self) -> ModuleId {
        (self.source.as_ptr() as usize, self.source.len())
    }

    /// Where a person finds this module's text: see [`path`].
    pub fn path(&self) -> String {
        path(self.file, self.source)
    }
}

/// The module `kernels/$file`, its path written once for its name and for the text it embeds.
macro_rules! embedded {
    ($file:literal) => {
        PtxModule { file: $file, source: include_str!(concat!("../../../kernels/", $file)) }
    };
}

pub const ELEMENTWISE: PtxModule = embedded!("elementwise.ptx");
pub const ROWWISE: PtxModule = embedded!("rowwise.ptx");
pub const ADAM: PtxModule = embedded!("adam.ptx");
pub const CONVERT: PtxModule = embedded!("convert.ptx");
pub const PROBE: PtxModule = embedded!("probe.ptx");

/// The matmul ladder, one module per rung (`kernels/matmul/`, whose README tells the ladder).
pub const MATMUL_NAIVE: PtxModule = embedded!("matmul/1_naive.ptx");
pub const MATMUL_COALESCED: PtxModule = embedded!("matmul/2_coalesced.ptx");
pub const MATMUL_TILED: PtxModule = embedded!("matmul/3_tiled.ptx");
pub const MATMUL_REGBLOCK: PtxModule = embedded!("matmul/4_regblock.ptx");
pub const MATMUL_VEC4: PtxModule = embedded!("matmul/5_vec4.ptx");
pub const MATMUL_WARPTILE: PtxModule = embedded!("matmul/6_warptile.ptx");

/// The tensor-core rungs, one module each: TF32 products on f32 storage, bf16 and f16 storage.
pub const MATMUL_MMA_TF32: PtxModule = embedded!("matmul/7_mma_tf32.ptx");
pub const MATMUL_MMA_BF16: PtxModule = embedded!("matmul/8_mma_bf16.ptx");
pub const MATMUL_MMA_F16: PtxModule = embedded!("matmul/9_mma_f16.ptx");

/// Every module, for checks that go over them all.
pub const ALL: [PtxModule; 14] = [
    ELEMENTWISE,
    CONVERT,
    ROWWISE,
    MATMUL_NAIVE,
    MATMUL_COALESCED,
    MATMUL_TILED,
    MATMUL_REGBLOCK,
    MATMUL_VEC4,
    MATMUL_WARPTILE,
    MATMUL_MMA_TF32,
    MATMUL_MMA_BF16,
    MATMUL_MMA_F16,
    ADAM,
    PROBE,
];

/// The built-in module that holds entry point `entry`, if one does.
pub fn module_of(entry: &str) -> Option<PtxModule> {
    ALL.into_iter().find(|m| entries(*m).contains(&entry))
}

/// The path a person finds a module's text at: `kernels/FILE` for a built-in module (the same
/// name and text as one of [`ALL`]), the file's own path for one loaded at run time.
pub fn path(file: &str, source: &str) -> String {
    if ALL.iter().any(|m| m.file == file && m.source == source) { format!("kernels/{file}") } else { file.to_string() }
}

/// The type of one kernel parameter as PTX declares it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParamType {
    /// `.u64`: a device address.
    U64,
    U32,
    F32,
}

/// The parameter types of entry point `entry`, in order, as `.visible .entry entry(...)` in
/// `module` declares them; `None` if the module has no such entry.
pub fn entry_params(module: PtxModule, entry: &str) -> Option<Vec<ParamType>> {
    let header = format!(".visible .entry {entry}(");
    let start = module.source.find(&header)? + header.len();
    let end = start + module.source[start..].find(')')?;
    module.source[start..end]
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_whitespace().nth(1) {
            Some(".u64") => Some(ParamType::U64),
            Some(".u32") => Some(ParamType::U32),
            Some(".f32") => Some(ParamType::F32),
            _ => None,
        })
        .collect()
}

/// Every entry point of `module`, in file order.
pub fn entries(module: PtxModule) -> Vec<&'static str> {
    module
        .source
        .match_indices(".visible .entry ")
        .filter_map(|(at, marker)| {
            let rest = &module.source[at + marker.len()..];
            rest.find('(').map(|end| rest[..end].trim())
        })
        .collect()
}
