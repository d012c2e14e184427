//! Narrow storage and the tensor-core rungs on whatever CUDA device opens (a GPU, or the emulated
//! device of `scripts/cuda-emu-root.sh`): bf16 and f16 buffers round on upload and widen on
//! download, the conversion kernels agree with the host's rounding, and every tensor-core rung
//! (bf16, f16, and TF32 on f32 buffers) computes C ← α·op(A)·op(B) + β·C within its precision's
//! budget against the f64 reference of the unrounded inputs, C poisoned first. Where no device opens, the tests return
//! (`KERNELAB_REQUIRE=cuda` makes that a failure).

#![cfg(feature = "cuda")]

mod common;

use common::cuda;

use kernelab_cuda::CudaBackend;
use kernelab_cuda::variants::MMA_RUNGS;
use kernelab_tensor::{Backend, DeviceBuffer, Dtype, Error, Gemm, Kernel};

fn upload(cuda: &CudaBackend, values: &[f32], dtype: Dtype) -> Box<dyn DeviceBuffer> {
    let mut buffer = cuda.alloc_as(values.len(), dtype).unwrap();
    cuda.upload(values, &mut *buffer).unwrap();
    buffer
}

fn download(cuda: &CudaBackend, buffer: &dyn DeviceBuffer) -> Vec<f32> {
    let mut out = vec![0.0; buffer.len()];
    cuda.download(buffer, &mut out).unwrap();
    out
}

/// Values spread over many binades, with ties, an f16 overflow, a subnormal and a NaN.
fn awkward() -> Vec<f32> {
    let mut v: Vec<f32> = (0..300).map(|i| ((i as f32) * 0.37 - 50.0) * 1.1f32.powi(i % 40 - 20)).collect();
    v.extend([1.0 + 1.0 / 256.0, 1.0 + 3.0 / 2048.0, 70000.0, -65520.0, 1e-7, f32::NAN, -0.0]);
    v
}

#[test]
fn narrow_buffers_round_on_upload_and_widen_on_download() {
    let Some(cuda) = cuda() else { return };
    let values = awkward();
    for dtype in [Dtype::Bf16, Dtype::F16] {
        let buffer = upload(&cuda, &values, dtype);
        assert_eq!(buffer.dtype(), dtype);
        let back = download(&cuda, &*buffer);
        for (i, (&v, &b)) in values.iter().zip(&back).enumerate() {
            let want = dtype.round(v);
            assert!(b == want || (b.is_nan() && want.is_nan()), "{dtype} [{i}]: {v} came back {b}, want {want}");
        }
    }
}

#[test]
fn narrow_and_widen_kernels_agree_with_the_host() {
    let Some(cuda) = cuda() else { return };
    let values = awkward();
    for dtype in [Dtype::Bf16, Dtype::F16] {
        let x = upload(&cuda, &values, Dtype::F32);
        let mut y = cuda.alloc_as(values.len(), dtype).unwrap();
        cuda.launch(Kernel::Narrow { x: &*x, y: &mut *y }, None).unwrap();
        let mut z = upload(&cuda, &vec![f32::NAN; values.len()], Dtype::F32);
        cuda.launch(Kernel::Widen { x: &*y, y: &mut *z }, None).unwrap();
        let back = download(&cuda, &*z);
        for (i, (&v, &b)) in values.iter().zip(&back).enumerate() {
            let want = dtype.round(v);
            assert!(b == want || (b.is_nan() && want.is_nan()), "{dtype} [{i}]: {v} became {b}, want {want}");
        }
    }
}

/// A small generator (xorshift) of values in [-2, 2).
fn values(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            ((s >> 11) as f64 / (1u64 << 53) as f64 * 4.0 - 2.0) as f32
        })
        .collect()
}

#[test]
fn mma_rungs_within_their_precision_budget_in_every_transpose_form() {
    let Some(cuda) = cuda() else { return };
    for rung in MMA_RUNGS.iter().filter(|r| r.unavailable.is_none()) {
        // TF32 operands live in f32 buffers; the rung rounds them (u = 2⁻¹¹) as it reads them.
        let dtype = rung.precision.storage.buffer();
        let u = rung.precision.storage.unit_roundoff();
        for ((m, n, k), ta, tb, beta) in [
            ((67, 45, 73), false, false, 0.0),
            ((65, 33, 40), true, true, -1.0),
            ((17, 70, 19), true, false, 0.5),
            ((33, 18, 24), false, true, 0.0),
        ] {
            let (a, b) = (values(m * k, 1), values(k * n, 2));
            let c0 = if beta == 0.0 { vec![f32::NAN; m * n] } else { values(m * n, 3) };
            let gemm = Gemm::new(m, n, k).trans(ta, tb).scaled(0.75, beta);
            let (da, db) = (upload(&cuda, &a, dtype), upload(&cuda, &b, dtype));
            let mut dc = upload(&cuda, &c0, dtype);
            cuda.launch(Kernel::Matmul { a: &*da, b: &*db, c: &mut *dc, gemm }, Some(rung.kernel.variant)).unwrap();
            let got = download(&cuda, &*dc);
            for i in 0..m {
                for j in 0..n {
                    let (mut acc, mut abs) = (0.0f64, 0.0f64);
                    for p in 0..k {
                        let x = if ta { a[p * m + i] } else { a[i * k + p] } as f64;
                        let y = if tb { b[j * k + p] } else { b[p * n + j] } as f64;
                        acc += x * y;
                        abs += (x * y).abs();
                    }
                    let c = if beta == 0.0 { 0.0 } else { beta as f64 * c0[i * n + j] as f64 };
                    let want = 0.75 * acc + c;
                    // Inputs and C rounded to the storage (u each), f32 sums, the result rounded.
                    let budget = (3.0 * u + k as f64 * 1.2e-7) * 0.75 * abs + 3.0 * u * c.abs() + 1e-6;
                    let g = got[i * n + j] as f64;
                    assert!(
                        (g - want).abs() <= budget,
                        "{} {m}x{n}x{k} ta={ta} tb={tb}: C[{i},{j}] = {g}, want {want}",
                        rung.kernel.variant
                    );
                }
            }
        }
    }
}

#[test]
fn a_narrow_launch_defaults_to_its_storage_and_refuses_another() {
    let Some(cuda) = cuda() else { return };
    let (m, n, k) = (5, 6, 7);
    let (a, b) = (upload(&cuda, &values(m * k, 4), Dtype::F16), upload(&cuda, &values(k * n, 5), Dtype::F16));
    let mut c = cuda.alloc_as(m * n, Dtype::F16).unwrap();
    cuda.launch(Kernel::Matmul { a: &*a, b: &*b, c: &mut *c, gemm: Gemm::new(m, n, k) }, None).unwrap();
    let err = cuda.launch(Kernel::Matmul { a: &*a, b: &*b, c: &mut *c, gemm: Gemm::new(m, n, k) }, Some("mma_bf16"));
    assert!(matches!(err, Err(Error::DtypeMismatch { .. })), "{err:?}");
}
