//! The CPU's kernel variants as data: one table for matmul, one for every other op, each entry a
//! [`Variant`] and the kernel that runs it. The tables are built once per backend (that is where
//! the processor's features are detected), and every launch finds its entry with
//! [`kernelab_tensor::resolve`]: an unknown name is an error listing the known ones, a variant
//! this processor cannot run says why, and no name falls back to another kernel. The benchmark,
//! the conformance suite and `kernelab devices` read the same tables. The first entry of a table
//! is its default.
//!
//! To add a built-in variant, in order:
//! 1. Write the kernel. A matmul: a function `fn(a, b, c, &Gemm)` over row-major host slices in
//!    [`crate::matmul`] (plain loops), or a strategy of [`crate::gemm`] (a new microkernel is a
//!    [`MicroKernel`] constant in `gemm/kernels.rs`, with its detection in `MicroKernel::detect`).
//!    The other ops' variants are instruction sets: their loop bodies in [`crate::elementwise`],
//!    [`crate::rowwise`] and [`crate::adam`] are compiled once per [`Isa`] by `multiversion!`
//!    ([`crate::simd`]); a new one is an `Isa` with its name, its detection in
//!    `Isa::unavailable` and its copy in `multiversion!`, listed in `Isa::ALL`.
//! 2. Name it in the header comment of that module (what it does differently).
//! 3. Add one entry to [`matmul_table`] (a new `Isa` joins [`simd_table`] by itself): its name,
//!    a one-line summary, `.one_thread()` if it ignores the thread pool, `.as_baseline()` for a
//!    library, and its [`MatmulKernel`] — or the reason it cannot run here (feature detection, a
//!    cargo feature not compiled in).
//! 4. Nothing else dispatches by name: `CpuBackend::launch`, `kernelab bench`, `kernelab check`,
//!    `kernelab devices` and the conformance suite pick the entry up. Check it with
//!    `cargo test -p kernelab-cpu registry`, `kernelab check --backend cpu --variant NAME` and
//!    `cargo test --test conformance`.

use kernelab_tensor::{BackendKind, Dtype, Error, Gemm, Op, Precision, Result, Variant, VariantEntry, resolve_for};

use crate::gemm::{self, MicroKernel, Strategy, direct::Nt};
use crate::narrow::NarrowKernel;
use crate::simd::Isa;

/// A matmul over row-major host slices: `C ← α·op(A)·op(B) + β·C` (see [`Gemm`]); the slices'
/// lengths were checked against `g`.
pub type MatmulFn = fn(a: &[f32], b: &[f32], c: &mut [f32], g: &Gemm) -> Result<()>;

/// How a matmul variant computes `C`.
#[derive(Clone, Copy, Debug)]
pub enum MatmulKernel {
    /// A function of the operands: the simple rungs, the libraries, the default's per-shape choice.
    Fn(MatmulFn),
    /// [`gemm::gemm`] with this strategy, on the calling thread.
    Gemm(Strategy),
}

impl MatmulKernel {
    /// Runs the kernel on the operands.
    pub fn run(self, a: &[f32], b: &[f32], c: &mut [f32], g: &Gemm) -> Result<()> {
        match self {
            MatmulKernel::Fn(f) => f(a, b, c, g),
            MatmulKernel::Gemm(strategy) => {
                gemm::gemm(a, b, c, g, strategy, false);
                Ok(())
            }
        }
    }
}

/// One row of a table: the variant, and its kernel where this machine can run it.
#[derive(Clone, Debug)]
pub struct Entry<K> {
    pub variant: Variant,
    /// `None` exactly when `variant.unavailable` says why not.
    kernel: Option<K>,
}

impl<K> VariantEntry for Entry<K> {
    fn variant(&self) -> &Variant {
        &self.variant
    }
}

impl<K: Copy> Entry<K> {
    /// An entry that runs `kernel`, or is unavailable for the reason `kernel` gives.
    fn new(variant: Variant, kernel: std::result::Result<K, String>) -> Self {
        match kernel {
            Ok(kernel) => Self { variant, kernel: Some(kernel) },
            Err(reason) => Self { variant: variant.unavailable_if(Some(reason)), kernel: None },
        }
    }
}

/// The kernel of the entry of `table` named `requested` (the default when `None`), found by
/// [`resolve`]: unknown and unavailable names are errors, never another kernel.
pub fn lookup<K: Copy>(table: &[Entry<K>], op: Op, requested: Option<&str>) -> Result<K> {
    lookup_for(table, op, requested, Dtype::F32)
}

/// [`lookup`] for a launch whose buffers hold `storage`: the default is the table's first
/// entry of that storage, a named entry of another storage is an error naming both.
pub fn lookup_for<K: Copy>(table: &[Entry<K>], op: Op, requested: Option<&str>, storage: Dtype) -> Result<K> {
    let entry = resolve_for(BackendKind::Cpu, op, table, requested, Some(storage))?;
    // `resolve` returns available entries only, and those have a kernel.
    let kernel = entry.kernel.ok_or_else(|| Error::VariantUnavailable {
        backend: BackendKind::Cpu.name().into(),
        op: op.name(),
        name: entry.variant.name.into(),
        reason: entry.variant.unavailable.clone().unwrap_or_default(),
    })?;
    Ok(kernel)
}

/// Every CPU variant: the matmul ladder and the instruction sets of the other ops.
#[derive(Clone, Debug)]
pub struct Registry {
    pub matmul: Vec<Entry<MatmulKernel>>,
    /// The variants of every op but matmul: one copy of its loop body per instruction set.
    pub simd: Vec<Entry<Isa>>,
    /// The narrow (bf16, f16) variants of matmul.
    pub narrow_matmul: Vec<Entry<NarrowKernel>>,
    /// The narrow variants of `narrow` and `widen`.
    pub narrow_convert: Vec<Entry<NarrowKernel>>,
    /// The narrow variants of every other op.
    pub narrow_other: Vec<Entry<NarrowKernel>>,
}

impl Registry {
    /// The tables for this processor and build.
    pub fn detect() -> Self {
        Self {
            matmul: matmul_table(),
            simd: simd_table(),
            narrow_matmul: narrow_table(Op::Matmul),
            narrow_convert: narrow_table(Op::Narrow),
            narrow_other: narrow_table(Op::Relu),
        }
    }

    /// The narrow variants of `op`.
    pub fn narrow(&self, op: Op) -> &[Entry<NarrowKernel>] {
        match op {
            Op::Matmul => &self.narrow_matmul,
            Op::Narrow | Op::Widen => &self.narrow_convert,
            _ => &self.narrow_other,
        }
    }

    /// The variants of `op`, the default first: the f32 ones, then the narrow ones (`narrow` and
    /// `widen` have narrow ones only).
    pub fn variants(&self, op: Op) -> Vec<Variant> {
        let f32s: Vec<Variant> = match op {
            Op::Matmul => self.matmul.iter().map(|e| e.variant.clone()).collect(),
            Op::Narrow | Op::Widen => Vec::new(),
            _ => self.simd.iter().map(|e| e.variant.clone()).collect(),
        };
        f32s.into_iter().chain(self.narrow(op).iter().map(|e| e.variant.clone())).collect()
    }
}

/// The portable narrow variants of `op` (see [`crate::narrow`]): one per narrow dtype, storing it
/// and accumulating in f32.
pub fn narrow_table(op: Op) -> Vec<Entry<NarrowKernel>> {
    let of = |dtype: Dtype, name: &'static str, summary: &'static str, kernel: NarrowKernel| {
        Entry::new(Variant::available(name, summary).with_precision(Precision::new(dtype, Dtype::F32)), Ok(kernel))
    };
    // A variant that runs only where `unavailable` is `None` (else it says why).
    let only = |entry: Entry<NarrowKernel>, unavailable: Option<String>| match unavailable {
        None => entry,
        Some(why) => Entry { variant: entry.variant.unavailable_if(Some(why)), kernel: None },
    };
    let blocked = NarrowKernel::Matmul(crate::narrow::blocked);
    let widened = NarrowKernel::Widened(Isa::Portable);
    let mut table = narrow_table_in_order(op, of, only, blocked, widened);
    // A launch without a variant name takes its dtype's first entry: the first that runs here.
    table.sort_by_key(|e| e.kernel.is_none());
    table
}

/// [`narrow_table`]'s entries, fastest first, before the unavailable ones are moved last.
fn narrow_table_in_order(
    op: Op,
    of: impl Fn(Dtype, &'static str, &'static str, NarrowKernel) -> Entry<NarrowKernel>,
    only: impl Fn(Entry<NarrowKernel>, Option<String>) -> Entry<NarrowKernel>,
    blocked: NarrowKernel,
    widened: NarrowKernel,
) -> Vec<Entry<NarrowKernel>> {
    use crate::gemm::bf16::variants as bf;
    let strips = |dtype, name, summary, needs: Option<String>| {
        only(of(dtype, name, summary, NarrowKernel::Strips(Isa::Avx512)), Isa::Avx512.unavailable().or(needs))
    };
    #[cfg(target_arch = "x86_64")]
    let f16c = (!is_x86_feature_detected!("f16c")).then(|| "the CPU lacks F16C".to_string());
    #[cfg(not(target_arch = "x86_64"))]
    let f16c = Some("F16C is x86_64 only".to_string());
    match op {
        Op::Matmul => vec![
            only(
                of(
                    Dtype::Bf16,
                    "bf16-dpbf16",
                    "bf16 on vdpbf16ps (AVX512-BF16): pair-packed slivers, 8×32 kernel, f32 sums, threads over column blocks; C rounded to bf16",
                    NarrowKernel::Matmul(bf::dpbf16_threaded),
                ),
                bf::dpbf16_unavailable(),
            ),
            only(
                Entry::new(
                    Variant::available("bf16-dpbf16-1t", "bf16 on vdpbf16ps, as bf16-dpbf16, one thread")
                        .with_precision(Precision::new(Dtype::Bf16, Dtype::F32))
                        .one_thread(),
                    Ok(NarrowKernel::Matmul(bf::dpbf16_one_thread)),
                ),
                bf::dpbf16_unavailable(),
            ),
            only(
                of(
                    Dtype::Bf16,
                    "bf16-widen",
                    "bf16 widened to f32 (AVX-512F), the packed f32 GEMM's 8×32 kernel, threaded; C rounded to bf16",
                    NarrowKernel::Matmul(bf::widened),
                ),
                bf::widen_unavailable(),
            ),
            only(
                of(
                    Dtype::F16,
                    "f16-f16c",
                    "f16 widened to f32 (F16C), the packed f32 GEMM's AVX-512F 8×32 kernel, threaded; C rounded to f16",
                    NarrowKernel::Matmul(bf::widened),
                ),
                bf::f16c_unavailable(),
            ),
            only(of(Dtype::F16, "f16-avx512fp16", "f16 arithmetic on AVX512-FP16", blocked), Some(bf::avx512fp16())),
            only(of(Dtype::Bf16, "bf16-amx", "bf16 on AMX-BF16 tiles (tdpbf16ps)", blocked), Some(bf::amx())),
            only(
                Entry::new(
                    Variant::available(
                        "openblas-sbgemm",
                        "baseline: OpenBLAS cblas_sbgemm (bf16, f32 C) on OpenBLAS's threads; C rounded to bf16",
                    )
                    .with_precision(Precision::new(Dtype::Bf16, Dtype::F32))
                    .as_baseline(),
                    Ok(sbgemm_kernel()),
                ),
                bf::openblas_sbgemm_unavailable(),
            ),
            of(
                Dtype::Bf16,
                "bf16-blocked",
                "bf16 operands widened to f32, the blocked GEMM, C rounded to bf16",
                blocked,
            ),
            of(Dtype::F16, "f16-blocked", "f16 operands widened to f32, the blocked GEMM, C rounded to f16", blocked),
        ],
        Op::Narrow | Op::Widen => vec![
            of(Dtype::Bf16, "bf16-portable", "f32 ↔ bf16, round to nearest even (half crate)", NarrowKernel::Convert),
            of(Dtype::F16, "f16-portable", "f32 ↔ f16, round to nearest even, overflow to ±∞", NarrowKernel::Convert),
        ],
        _ => vec![
            strips(
                Dtype::Bf16,
                "bf16-avx512",
                "relu, softmax, elementwise, bias, col_sum: 256-value strips widened in L1 (AVX-512), the AVX-512 f32 body, vcvtneps2bf16 back; other ops: widened copies, AVX-512 body",
                None,
            ),
            strips(
                Dtype::F16,
                "f16-avx512",
                "relu, softmax, elementwise, bias, col_sum: 256-value strips widened in L1 (F16C), the AVX-512 f32 body, vcvtps2ph back; other ops: widened copies, AVX-512 body",
                f16c,
            ),
            of(Dtype::Bf16, "bf16-portable", "bf16 widened to f32, the portable f32 loop body, rounded back", widened),
            of(Dtype::F16, "f16-portable", "f16 widened to f32, the portable f32 loop body, rounded back", widened),
        ],
    }
}

/// The variants of `op` on this processor, the default first (builds the tables; a backend keeps
/// its own [`Registry`]).
pub fn variants(op: Op) -> Vec<Variant> {
    Registry::detect().variants(op)
}

/// The reason a cargo feature's variant is missing from this build.
#[cfg(not(all(feature = "openblas", feature = "rust-baselines")))]
fn not_built(feature: &str, needs: &str) -> String {
    format!("not compiled in; rebuild with `--features {feature}`{needs}")
}

/// The matmul ladder: the default (`threaded`), the single-threaded SIMD rungs, the simple rungs,
/// then the baseline libraries.
pub fn matmul_table() -> Vec<Entry<MatmulKernel>> {
    let simd = |name, summary, kernel: std::result::Result<MatmulKernel, String>| {
        Entry::new(Variant::available(name, summary).one_thread(), kernel)
    };
    let avx512 = MicroKernel::detect("avx512");
    let packed =
        |kernel: std::result::Result<MicroKernel, String>| kernel.map(|k| MatmulKernel::Gemm(Strategy::Packed(k)));
    // The direct rungs need AVX-512F for their own kernels (TT products take the packed path).
    let direct = |nt| avx512.clone().map(|_| MatmulKernel::Gemm(Strategy::Direct(nt)));
    vec![
        Entry::new(
            Variant::available(
                "threaded",
                "direct where the re-read operand fits half the L2, else packed; column blocks over the threads",
            ),
            Ok(MatmulKernel::Fn(by_shape_threaded)),
        ),
        simd(
            "direct_avx512",
            "no packing: NN/TN broadcast 8×32, NT broadcast over transposed strips of Bᵀ or dot 4×4 by shape (TT packed), one thread",
            direct(Nt::ByShape),
        ),
        simd(
            "direct_dot_avx512",
            "no packing: NN/TN broadcast 8×32, NT always dot 4×4 (TT packed), one thread",
            direct(Nt::Dot),
        ),
        simd("packed_avx512", "packed GEMM, AVX-512F 8×32 microkernel, one thread", packed(avx512.clone())),
        simd("packed_avx2", "packed GEMM, AVX2+FMA 6×16 microkernel, one thread", packed(MicroKernel::detect("avx2"))),
        simd(
            "packed_portable",
            "packed GEMM, plain-Rust 4×16 microkernel, one thread",
            packed(MicroKernel::detect("portable")),
        ),
        Entry::new(
            Variant::available("blocked", "packed rows, 4-row unit-stride update, rayon over 32-row blocks"),
            Ok(MatmulKernel::Fn(blocked)),
        ),
        Entry::new(
            Variant::available("naive", "textbook triple loop, one thread").one_thread(),
            Ok(MatmulKernel::Fn(naive)),
        ),
        Entry::new(
            Variant::available("openblas", "baseline: OpenBLAS cblas_sgemm on OpenBLAS's threads").as_baseline(),
            openblas(),
        ),
        Entry::new(
            Variant::available("gemm-crate", "baseline: the gemm crate (candle, faer) on the thread pool")
                .as_baseline(),
            gemm_crate(),
        ),
        Entry::new(
            Variant::available("matrixmultiply", "baseline: the matrixmultiply crate (ndarray), one thread")
                .as_baseline()
                .one_thread(),
            matrixmultiply(),
        ),
    ]
}

/// The variants of every op but matmul: the widest instruction set this processor runs first (the
/// default), then the others, each unavailable where the processor lacks it.
pub fn simd_table() -> Vec<Entry<Isa>> {
    let best = Isa::best();
    std::iter::once(best)
        .chain(Isa::ALL.into_iter().filter(|&i| i != best))
        .map(|isa| {
            let summary = match isa {
                Isa::Avx512 => "one loop body compiled for AVX-512F, split over the threads above 32K elements",
                Isa::Avx2 => "one loop body compiled for AVX2+FMA, split over the threads above 32K elements",
                Isa::Portable => {
                    "one loop body compiled for the baseline target, split over the threads above 32K elements"
                }
            };
            Entry::new(Variant::available(isa.name(), summary), isa.unavailable().map_or(Ok(isa), Err))
        })
        .collect()
}

/// What `openblas-sbgemm` runs where it is compiled in (elsewhere it is never run: it is
/// unavailable, and the portable GEMM stands in the entry).
fn sbgemm_kernel() -> NarrowKernel {
    #[cfg(feature = "openblas")]
    {
        NarrowKernel::Matmul(crate::gemm::bf16::variants::openblas_sbgemm)
    }
    #[cfg(not(feature = "openblas"))]
    {
        NarrowKernel::Matmul(crate::narrow::blocked)
    }
}

/// The default: [`Strategy::choose`] for the shape, column blocks over the kernels' threads.
fn by_shape_threaded(a: &[f32], b: &[f32], c: &mut [f32], g: &Gemm) -> Result<()> {
    gemm::gemm(a, b, c, g, Strategy::choose(g), true);
    Ok(())
}

fn naive(a: &[f32], b: &[f32], c: &mut [f32], g: &Gemm) -> Result<()> {
    crate::matmul::naive(a, b, c, g);
    Ok(())
}

fn blocked(a: &[f32], b: &[f32], c: &mut [f32], g: &Gemm) -> Result<()> {
    crate::matmul::blocked(a, b, c, g);
    Ok(())
}

/// OpenBLAS's `cblas_sgemm`, where it is linked.
fn openblas() -> std::result::Result<MatmulKernel, String> {
    #[cfg(feature = "openblas")]
    {
        Ok(MatmulKernel::Fn(crate::openblas::sgemm))
    }
    #[cfg(not(feature = "openblas"))]
    {
        Err(not_built("openblas", " (needs libopenblas-dev)"))
    }
}

/// The `gemm` crate on the whole thread pool, where it is compiled in.
fn gemm_crate() -> std::result::Result<MatmulKernel, String> {
    #[cfg(feature = "rust-baselines")]
    {
        Ok(MatmulKernel::Fn(|a, b, c, g| {
            crate::peers::gemm_crate(a, b, c, g, rayon::current_num_threads());
            Ok(())
        }))
    }
    #[cfg(not(feature = "rust-baselines"))]
    {
        Err(not_built("rust-baselines", ""))
    }
}

/// The `matrixmultiply` crate, where it is compiled in.
fn matrixmultiply() -> std::result::Result<MatmulKernel, String> {
    #[cfg(feature = "rust-baselines")]
    {
        Ok(MatmulKernel::Fn(|a, b, c, g| {
            crate::peers::matrixmultiply(a, b, c, g);
            Ok(())
        }))
    }
    #[cfg(not(feature = "rust-baselines"))]
    {
        Err(not_built("rust-baselines", ""))
    }
}

#[cfg(test)]
mod tests {
    use kernelab_tensor::{Device, Kernel};

    use super::*;
    use crate::CpuBackend;

    fn cpu() -> Device {
        Device::new(CpuBackend::new())
    }

    /// `C ← A·B` of a 2×3 by a 3×2 matrix of ones by `variant`: `Ok` holds C (poisoned first).
    fn ones_product(cpu: &Device, variant: &str) -> Result<Vec<f32>> {
        let (a, b) = (cpu.upload(&[1.0; 6])?, cpu.upload(&[1.0; 6])?);
        let mut c = cpu.upload(&[f32::NAN; 4])?;
        let launched =
            cpu.launch(Kernel::Matmul { a: &*a, b: &*b, c: &mut *c, gemm: Gemm::new(2, 2, 3) }, Some(variant));
        let c = cpu.download(&*c)?;
        if launched.is_err() {
            assert!(c.iter().all(|v| v.is_nan()), "{variant} was refused but wrote {c:?}");
        }
        launched.map(|()| c)
    }

    #[test]
    fn an_unknown_name_runs_nothing_and_lists_the_known_ones() {
        let cpu = cpu();
        let err = ones_product(&cpu, "regblock").unwrap_err();
        assert!(matches!(err, Error::UnknownVariant { .. }), "{err:?}");
        let known = "threaded, direct_avx512, direct_dot_avx512, packed_avx512, packed_avx2, packed_portable, \
                     blocked, naive, openblas, gemm-crate, matrixmultiply";
        assert!(err.to_string().contains("`regblock`") && err.to_string().contains(known), "{err}");
        // A matmul name is no name of the other ops.
        let (x, mut y) = (cpu.upload(&[-1.0, 2.0]).unwrap(), cpu.upload(&[f32::NAN; 2]).unwrap());
        let err = cpu.launch(Kernel::Relu { x: &*x, y: &mut *y }, Some("threaded")).unwrap_err().to_string();
        assert!(err.contains("`threaded`") && err.contains(&Isa::best().name().to_string()), "{err}");
        assert!(cpu.download(&*y).unwrap().iter().all(|v| v.is_nan()));
    }

    #[test]
    fn every_available_entry_runs_and_every_other_one_says_why_not() {
        let (cpu, registry) = (cpu(), Registry::detect());
        for entry in &registry.matmul {
            let name = entry.variant.name;
            match (&entry.variant.unavailable, ones_product(&cpu, name)) {
                (None, Ok(c)) => assert_eq!(c, [3.0; 4], "{name}"),
                (Some(reason), Err(Error::VariantUnavailable { name: refused, reason: why, .. })) => {
                    assert_eq!((refused.as_str(), &why), (name, reason));
                    assert!(entry.kernel.is_none(), "{name}");
                }
                (expected, got) => panic!("{name}: unavailable {expected:?}, launch {got:?}"),
            }
        }
        #[cfg(not(feature = "openblas"))]
        assert!(ones_product(&cpu, "openblas").unwrap_err().to_string().contains("--features openblas"));
    }

    #[test]
    fn the_tables_name_each_variant_once_the_default_first() {
        let registry = Registry::detect();
        let matmul: Vec<&str> = registry.matmul.iter().map(|e| e.variant.name).collect();
        let simd: Vec<&str> = registry.simd.iter().map(|e| e.variant.name).collect();
        for names in [&matmul, &simd] {
            let mut unique = names.to_vec();
            unique.sort_unstable();
            unique.dedup();
            assert_eq!(unique.len(), names.len(), "{names:?}");
        }
        assert_eq!(matmul[0], "threaded");
        assert_eq!(simd[0], Isa::best().name());
        assert_eq!(simd.len(), Isa::ALL.len());
        for isa in Isa::ALL {
            let entry = registry.simd.iter().find(|e| e.variant.name == isa.name()).unwrap();
            assert_eq!(entry.variant.unavailable, isa.unavailable());
            assert_eq!(entry.kernel, isa.unavailable().is_none().then_some(isa));
        }
        assert_eq!(variants(Op::Relu), registry.variants(Op::Adam));
    }
}
