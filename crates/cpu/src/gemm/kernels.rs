//! Microkernels: `C[MR × NR] += A_sliver · B_sliver` over a depth of `kc`, with the whole tile of
//! `C` held in registers. Each reads one packed `A` sliver (`kc × MR`, see `pack.rs`) and one
//! packed `B` sliver (`kc × NR`) and adds its tile into `C` at row stride `ldc`.
//!
//! | kernel   | MR × NR | accumulators            | per depth step                       |
//! |----------|---------|-------------------------|--------------------------------------|
//! | avx512   | 8 × 32  | 16 zmm (of 32)          | 2 loads of B, 8 broadcasts, 16 FMAs  |
//! | avx2     | 6 × 16  | 12 ymm (of 16)          | 2 loads of B, 6 broadcasts, 12 FMAs  |
//! | portable | 4 × 16  | 64 f32 the compiler vectorizes                                  |

/// A register-blocked microkernel (see the module header).
#[derive(Clone, Copy, Debug)]
pub struct MicroKernel {
    pub name: &'static str,
    pub mr: usize,
    pub nr: usize,
    /// Depth of one pass of the packed loops (see the measurements in `gemm/mod.rs`).
    pub kc: usize,
    /// # Safety
    /// `a` holds `kc·mr` values, `b` holds `kc·nr`, `c` points at an `mr × nr` tile with row
    /// stride `ldc`, and the CPU has the kernel's instruction set (checked by [`MicroKernel::detect`]).
    pub run: unsafe fn(kc: usize, a: *const f32, b: *const f32, c: *mut f32, ldc: usize),
}

/// The largest tile of any kernel, for edge tiles computed into a scratch buffer.
pub const MAX_TILE: usize = 8 * 32;

pub const PORTABLE: MicroKernel = MicroKernel { name: "portable", mr: 4, nr: 16, kc: 256, run: portable_4x16 };

#[cfg(target_arch = "x86_64")]
pub const AVX2: MicroKernel = MicroKernel { name: "avx2", mr: 6, nr: 16, kc: 256, run: x86::avx2_6x16 };

#[cfg(target_arch = "x86_64")]
pub const AVX512: MicroKernel = MicroKernel { name: "avx512", mr: 8, nr: 32, kc: 1024, run: x86::avx512_8x32 };

impl MicroKernel {
    /// The kernel named `name` if this CPU can run it, else why not.
    pub fn detect(name: &str) -> Result<MicroKernel, String> {
        match name {
            "portable" => Ok(PORTABLE),
            #[cfg(target_arch = "x86_64")]
            "avx2" if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") => Ok(AVX2),
            #[cfg(target_arch = "x86_64")]
            "avx512" if is_x86_feature_detected!("avx512f") => Ok(AVX512),
            "avx2" if cfg!(target_arch = "x86_64") => Err("the CPU lacks AVX2 or FMA".into()),
            "avx512" if cfg!(target_arch = "x86_64") => Err("the CPU lacks AVX-512F".into()),
            "avx2" | "avx512" => Err(format!("an x86_64 kernel; this is {}", std::env::consts::ARCH)),
            other => Err(format!("no microkernel `{other}`")),
        }
    }

    /// The fastest kernel this CPU runs.
    pub fn best() -> MicroKernel {
        ["avx512", "avx2"].into_iter().find_map(|n| Self::detect(n).ok()).unwrap_or(PORTABLE)
    }
}

/// Plain Rust, 4 × 16: the compiler vectorizes the 16-wide rows with whatever the target has.
unsafe fn portable_4x16(kc: usize, a: *const f32, b: *const f32, c: *mut f32, ldc: usize) {
    // SAFETY: the caller guarantees the extents documented on `MicroKernel::run`.
    let (a, b) = unsafe { (std::slice::from_raw_parts(a, kc * 4), std::slice::from_raw_parts(b, kc * 16)) };
    let mut acc = [[0.0f32; 16]; 4];
    for (ap, bp) in a.chunks_exact(4).zip(b.chunks_exact(16)) {
        for (row, &ai) in acc.iter_mut().zip(ap) {
            row.iter_mut().zip(bp).for_each(|(x, &bj)| *x += ai * bj);
        }
    }
    for (i, row) in acc.iter().enumerate() {
        // SAFETY: row i of the tile lies at c + i·ldc and holds 16 values.
        let c_row = unsafe { std::slice::from_raw_parts_mut(c.add(i * ldc), 16) };
        c_row.iter_mut().zip(row).for_each(|(x, &v)| *x += v);
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    /// AVX2 + FMA, 6 × 16: twelve ymm accumulators.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn avx2_6x16(kc: usize, a: *const f32, b: *const f32, c: *mut f32, ldc: usize) {
        let mut acc = [[_mm256_setzero_ps(); 2]; 6];
        for p in 0..kc {
            // SAFETY: p < kc, so every load stays inside the packed slivers.
            unsafe {
                let b0 = _mm256_loadu_ps(b.add(p * 16));
                let b1 = _mm256_loadu_ps(b.add(p * 16 + 8));
                for (i, row) in acc.iter_mut().enumerate() {
                    let ai = _mm256_broadcast_ss(&*a.add(p * 6 + i));
                    row[0] = _mm256_fmadd_ps(ai, b0, row[0]);
                    row[1] = _mm256_fmadd_ps(ai, b1, row[1]);
                }
            }
        }
        for (i, row) in acc.iter().enumerate() {
            // SAFETY: row i of the tile holds 16 values at c + i·ldc.
            unsafe {
                let c_row = c.add(i * ldc);
                _mm256_storeu_ps(c_row, _mm256_add_ps(_mm256_loadu_ps(c_row), row[0]));
                _mm256_storeu_ps(c_row.add(8), _mm256_add_ps(_mm256_loadu_ps(c_row.add(8)), row[1]));
            }
        }
    }

    /// AVX-512F, 8 × 32: sixteen zmm accumulators. (A 12 × 32 tile measured no faster at 1024³
    /// and wastes a third of a sliver on the MLP's 64-row batches.)
    #[target_feature(enable = "avx512f")]
    pub unsafe fn avx512_8x32(kc: usize, a: *const f32, b: *const f32, c: *mut f32, ldc: usize) {
        // The tile of C is read only after the whole depth, but in a large product its rows (a
        // row of C apart) are out of cache: ask for them now. Zen 5, one thread, medians of
        // alternating runs: 2048³ 223 → 231 GFLOP/s, 2048³:TN 221 → 226, 1024³ 238 → 242.
        for i in 0..8 {
            _mm_prefetch::<_MM_HINT_T0>(c.wrapping_add(i * ldc) as *const i8);
            _mm_prefetch::<_MM_HINT_T0>(c.wrapping_add(i * ldc + 16) as *const i8);
        }
        let mut acc = [[_mm512_setzero_ps(); 2]; 8];
        for p in 0..kc {
            // SAFETY: p < kc, so every load stays inside the packed slivers.
            unsafe {
                let b0 = _mm512_loadu_ps(b.add(p * 32));
                let b1 = _mm512_loadu_ps(b.add(p * 32 + 16));
                for (i, row) in acc.iter_mut().enumerate() {
                    let ai = _mm512_set1_ps(*a.add(p * 8 + i));
                    row[0] = _mm512_fmadd_ps(ai, b0, row[0]);
                    row[1] = _mm512_fmadd_ps(ai, b1, row[1]);
                }
            }
        }
        for (i, row) in acc.iter().enumerate() {
            // SAFETY: row i of the tile holds 32 values at c + i·ldc.
            unsafe {
                let c_row = c.add(i * ldc);
                _mm512_storeu_ps(c_row, _mm512_add_ps(_mm512_loadu_ps(c_row), row[0]));
                _mm512_storeu_ps(c_row.add(16), _mm512_add_ps(_mm512_loadu_ps(c_row.add(16)), row[1]));
            }
        }
    }
}
