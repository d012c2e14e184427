//! The kernels the tests run: the matmul ladder and the softmax family, launched as
//! crates/cuda/src/variants.rs launches them, with f64 references.

use kernelab_ptx_emu::mma::{Half, narrow, widen};
use kernelab_ptx_emu::{Fault, Memory};

use super::{Arg, Rng, download, run, upload};

/// A matmul rung: entry, block, and the grid over (m, n) (launch shapes of crates/cuda/src/variants.rs).
pub struct Rung {
    pub entry: &'static str,
    pub block: [u32; 3],
    /// The tile side one block covers.
    pub tile: u32,
    /// `grid.x` runs over rows of C (only the naive rung).
    pub rows_along_x: bool,
}

pub const RUNGS: [Rung; 6] = [
    Rung { entry: "matmul_naive", block: [16, 16, 1], tile: 16, rows_along_x: true },
    Rung { entry: "matmul_coalesced", block: [16, 16, 1], tile: 16, rows_along_x: false },
    Rung { entry: "matmul_tiled", block: [16, 16, 1], tile: 16, rows_along_x: false },
    Rung { entry: "matmul_regblock", block: [256, 1, 1], tile: 64, rows_along_x: false },
    Rung { entry: "matmul_vec4", block: [256, 1, 1], tile: 64, rows_along_x: false },
    Rung { entry: "matmul_warptile", block: [256, 1, 1], tile: 128, rows_along_x: false },
];

/// The tensor-core rungs and how each stores its operands.
pub const MMA_RUNGS: [(Rung, Storage); 3] = [
    (Rung { entry: "matmul_mma_tf32", block: [128, 1, 1], tile: 64, rows_along_x: false }, TF32),
    (Rung { entry: "matmul_mma_bf16", block: [128, 1, 1], tile: 64, rows_along_x: false }, BF16),
    (Rung { entry: "matmul_mma_f16", block: [128, 1, 1], tile: 64, rows_along_x: false }, F16),
];

/// A matmul's result, its f64 reference and the error budget of each element.
pub type Product = (Vec<f32>, Vec<f64>, Vec<f64>);

/// How a rung stores A, B and C and rounds its products: `u_in` is the relative rounding of an
/// input, `u_out` of the result (unit roundoffs), `bytes` an element's size in memory.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Storage {
    pub half: Option<Half>,
    pub bytes: usize,
    pub u_in: f64,
    pub u_out: f64,
}

/// f32 storage and products (rungs 1 to 6).
pub const F32: Storage = Storage { half: None, bytes: 4, u_in: 0.0, u_out: 0.0 };
/// f32 storage, TF32 products (inputs rounded to 10 mantissa bits).
pub const TF32: Storage = Storage { half: None, bytes: 4, u_in: 1.0 / 2048.0, u_out: 0.0 };
pub const BF16: Storage = Storage { half: Some(Half::Bf16), bytes: 2, u_in: 1.0 / 256.0, u_out: 1.0 / 256.0 };
pub const F16: Storage = Storage { half: Some(Half::F16), bytes: 2, u_in: 1.0 / 2048.0, u_out: 1.0 / 2048.0 };

impl Storage {
    fn upload(self, mem: &mut Memory, v: &[f32]) -> u64 {
        let Some(half) = self.half else { return upload(mem, v) };
        let bytes: Vec<u8> = v.iter().flat_map(|&x| narrow(half, x).to_le_bytes()).collect();
        let p = mem.alloc(bytes.len()).unwrap();
        mem.write(p, &bytes).unwrap();
        p
    }
    fn download(self, mem: &Memory, p: u64, n: usize) -> Vec<f32> {
        let Some(half) = self.half else { return download(mem, p, n) };
        let mut bytes = vec![0u8; n * 2];
        mem.read(p, &mut bytes).unwrap();
        bytes.chunks_exact(2).map(|c| widen(half, u16::from_le_bytes([c[0], c[1]]))).collect()
    }
}

/// C ← α·op(A)·op(B) + β·C through `rung` of `text` with f32 buffers; see [`matmul_in`].
pub fn matmul(
    text: &str,
    rung: &Rung,
    shape: (usize, usize, usize),
    ta: bool,
    tb: bool,
    beta: f32,
    sanitize: bool,
) -> Result<Product, Fault> {
    matmul_in(F32, text, rung, shape, ta, tb, beta, sanitize)
}

/// C ← α·op(A)·op(B) + β·C through `rung` of `text`, A, B and C in `storage` (rounded on the way
/// in, widened on the way out); returns the result, the f64 reference of the unrounded f32 inputs,
/// and the per-element error budget: (2·u_in + 4·k·2⁻²⁴)·|α|·Σ|a||b| for the inputs and the f32
/// sums, u_out·(|α|·Σ|a||b| + 2·|β·c|) for the result and the stored C, |β·c|·2⁻²³, and 1e-6.
#[allow(clippy::too_many_arguments)]
pub fn matmul_in(
    storage: Storage,
    text: &str,
    rung: &Rung,
    (m, n, k): (usize, usize, usize),
    ta: bool,
    tb: bool,
    beta: f32,
    sanitize: bool,
) -> Result<Product, Fault> {
    let mut rng = Rng::new((m * 31 + n * 7 + k) as u64);
    let (a, b) = (rng.vec(m * k, -2.0, 2.0), rng.vec(k * n, -2.0, 2.0));
    let c0 = if beta == 0.0 { vec![f32::NAN; m * n] } else { rng.vec(m * n, -1.0, 1.0) };
    let alpha = 0.75f32;
    let (sam, sak) = if ta { (1, m) } else { (k, 1) };
    let (sbk, sbn) = if tb { (1, k) } else { (n, 1) };
    let mut want = vec![0.0; m * n];
    let mut budget = vec![0.0; m * n];
    let u = f32::EPSILON as f64 / 2.0;
    for i in 0..m {
        for j in 0..n {
            let (mut acc, mut abs) = (0.0f64, 0.0f64);
            for p in 0..k {
                let t = a[i * sam + p * sak] as f64 * b[p * sbk + j * sbn] as f64;
                acc += t;
                abs += t.abs();
            }
            let c = if beta == 0.0 { 0.0 } else { beta as f64 * c0[i * n + j] as f64 };
            let abs = alpha as f64 * abs;
            want[i * n + j] = alpha as f64 * acc + c;
            budget[i * n + j] = (2.0 * storage.u_in + 4.0 * k as f64 * u) * abs
                + storage.u_out * (abs + 2.0 * c.abs())
                + c.abs() * f32::EPSILON as f64
                + 1e-6;
        }
    }
    let mut mem = Memory::new(1 << 30);
    let (pa, pb, pc) = (storage.upload(&mut mem, &a), storage.upload(&mut mem, &b), storage.upload(&mut mem, &c0));
    let (gm, gn) = ((m as u32).div_ceil(rung.tile), (n as u32).div_ceil(rung.tile));
    let grid = if rung.rows_along_x { [gm, gn, 1] } else { [gn, gm, 1] };
    let u = |v: usize| Arg::U32(v as u32);
    let args = [
        Arg::Ptr(pa),
        Arg::Ptr(pb),
        Arg::Ptr(pc),
        u(m),
        u(n),
        u(k),
        u(sam),
        u(sak),
        u(sbk),
        u(sbn),
        Arg::F32(alpha),
        Arg::F32(beta),
    ];
    run(text, rung.entry, grid, rung.block, &args, &mut mem, sanitize)?;
    Ok((storage.download(&mem, pc, m * n), want, budget))
}

/// The first element outside its budget.
pub fn matmul_wrong(got: &[f32], want: &[f64], budget: &[f64]) -> Option<(usize, f32, f64)> {
    // NaN is never within its budget.
    let within = |i: usize| (got[i] as f64 - want[i]).abs() <= budget[i];
    (0..got.len()).find(|&i| !within(i)).map(|i| (i, got[i], want[i]))
}

/// softmax and log_softmax of `rows × cols` through `entry`, one block of 256 per row but at most
/// `max_blocks` (the kernels stride over the rest); every third row shifted by 80 so an
/// unstabilised exp would overflow.
pub fn softmax(
    text: &str,
    entry: &str,
    rows: usize,
    cols: usize,
    max_blocks: u32,
    sanitize: bool,
) -> Result<(Vec<f32>, Vec<f64>), Fault> {
    let mut rng = Rng::new((rows * 1000 + cols) as u64);
    let mut x = rng.vec(rows * cols, -3.0, 3.0);
    for r in (2..rows).step_by(3) {
        x[r * cols..(r + 1) * cols].iter_mut().for_each(|v| *v += 80.0);
    }
    let mut want = Vec::new();
    for row in x.chunks(cols) {
        let mx = row.iter().fold(f64::NEG_INFINITY, |m, &v| m.max(v as f64));
        let sum: f64 = row.iter().map(|&v| (v as f64 - mx).exp()).sum();
        let log = entry.starts_with("log");
        want.extend(row.iter().map(|&v| if log { v as f64 - mx - sum.ln() } else { (v as f64 - mx).exp() / sum }));
    }
    let mut mem = Memory::new(1 << 26);
    let px = upload(&mut mem, &x);
    let py = upload(&mut mem, &vec![f32::NAN; rows * cols]);
    let grid = [(rows as u32).min(max_blocks), 1, 1];
    run(
        text,
        entry,
        grid,
        [256, 1, 1],
        &[Arg::Ptr(px), Arg::Ptr(py), Arg::U32(rows as u32), Arg::U32(cols as u32)],
        &mut mem,
        sanitize,
    )?;
    Ok((download(&mem, py, rows * cols), want))
}
