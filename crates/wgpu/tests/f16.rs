//! f16 on the WGPU backend: storage (padded, rounded to nearest even on upload, widened exactly on
//! download), bf16 refused, the conversions against the host's rounding bit for bit, and the f16
//! variants listed unavailable with the reason where the adapter lacks `shader-f16`.

mod common;

use common::backend;

use kernelab_tensor::{Backend, Dtype, Error, Gemm, Kernel, Op};
use kernelab_wgpu::table_f16::LACKS_SHADER_F16;

/// Values whose f16 rounding is delicate: ties to even either way, the largest finite f16 and the
/// overflow threshold (65520) around it, subnormals and their ties, the underflow to zero, signed
/// zeros, ∞ and NaN.
fn awkward() -> Vec<f32> {
    let p = |e: i32| 2f32.powi(e);
    vec![
        1.0 + p(-11),
        1.0 + 3.0 * p(-11),
        -(1.0 + p(-11) + p(-20)),
        65504.0,
        65519.0,
        65520.0,
        -1e6,
        p(-14),
        p(-14) - p(-25),
        p(-24),
        1.5 * p(-24),
        2.5 * p(-24),
        p(-25),
        p(-25) + p(-40),
        p(-26),
        0.0,
        -0.0,
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::NAN,
        0.1,
        -2.375_1,
        1234.567,
    ]
}

fn host_f16(v: f32) -> f32 {
    half::f16::from_f32(v).to_f32()
}

/// Equal as values, NaN equal to NaN, and -0 told from +0.
fn same(a: f32, b: f32) -> bool {
    (a.is_nan() && b.is_nan()) || a.to_bits() == b.to_bits()
}

#[test]
fn f16_buffers_round_to_nearest_even_on_upload_and_widen_exactly() {
    let Some(b) = backend() else { return };
    for len in [1, 2, 7, awkward().len()] {
        let values: Vec<f32> = awkward().into_iter().cycle().take(len).collect();
        let mut buf = b.alloc_as(len, Dtype::F16).unwrap();
        assert_eq!((buf.len(), buf.dtype()), (len, Dtype::F16));
        b.upload(&values, &mut *buf).unwrap();
        let mut back = vec![0f32; len];
        b.download(&*buf, &mut back).unwrap();
        for (i, (&v, &got)) in values.iter().zip(&back).enumerate() {
            assert!(same(got, host_f16(v)), "len {len}, [{i}] = {v:e}: got {got:e}, want {:e}", host_f16(v));
        }
    }
}

#[test]
fn bf16_storage_is_refused_with_the_reason() {
    let Some(b) = backend() else { return };
    let err = b.alloc_as(16, Dtype::Bf16).unwrap_err();
    assert!(matches!(err, Error::NoStorage { dtype: Dtype::Bf16, .. }), "{err:?}");
    assert!(err.to_string().contains("WGSL has no bf16 type"), "{err}");
}

#[test]
fn narrow_and_widen_match_the_host_bit_for_bit() {
    let Some(b) = backend() else { return };
    for len in [1, 5, 600] {
        let values: Vec<f32> = awkward().into_iter().cycle().take(len).collect();
        let mut x = b.alloc(len).unwrap();
        b.upload(&values, &mut *x).unwrap();
        let mut half = b.alloc_as(len, Dtype::F16).unwrap();
        b.upload(&vec![f32::NAN; len], &mut *half).unwrap();
        b.launch(Kernel::Narrow { x: &*x, y: &mut *half }, None).unwrap();
        let mut wide = b.alloc(len).unwrap();
        b.upload(&vec![f32::NAN; len], &mut *wide).unwrap();
        b.launch(Kernel::Widen { x: &*half, y: &mut *wide }, None).unwrap();
        let (mut narrowed, mut widened) = (vec![0f32; len], vec![0f32; len]);
        b.download(&*half, &mut narrowed).unwrap();
        b.download(&*wide, &mut widened).unwrap();
        for (i, &v) in values.iter().enumerate() {
            let want = host_f16(v);
            assert!(same(narrowed[i], want), "narrow [{i}] {v:e}: got {:e}, want {want:e}", narrowed[i]);
            assert!(same(widened[i], want), "widen [{i}] {v:e}: got {:e}, want {want:e}", widened[i]);
        }
    }
}

#[test]
fn f16_variants_run_where_the_adapter_offers_shader_f16_and_say_why_not_elsewhere() {
    let Some(b) = backend() else { return };
    let offered = b.shader_f16();
    let detail = b.info().details.into_iter().find(|(k, _)| k == "shader-f16").map(|(_, v)| v).unwrap();
    eprintln!("{}: shader-f16 {detail}", b.info().name);
    assert_eq!(detail.starts_with("offered"), offered, "{detail}");
    let f16 = b.variants(Op::Matmul).into_iter().filter(|v| v.precision.storage == Dtype::F16).collect::<Vec<_>>();
    assert!(f16.len() >= 3);
    for v in &f16 {
        assert_eq!(v.unavailable.as_deref(), (!offered).then_some(LACKS_SHADER_F16), "{}", v.name);
    }
    // A 3×2 · 2×3 product over f16 buffers, by the default f16 variant: exact in f16.
    let (m, n, k) = (3, 3, 2);
    let (a, bm) = ([1.0, 2.0, 3.0, 4.0, 0.5, -1.0], [1.0, 0.0, 2.0, -1.0, 0.25, 8.0]);
    let mut bufs = [b.alloc_as(6, Dtype::F16).unwrap(), b.alloc_as(6, Dtype::F16).unwrap()];
    b.upload(&a, &mut *bufs[0]).unwrap();
    b.upload(&bm, &mut *bufs[1]).unwrap();
    let mut c = b.alloc_as(9, Dtype::F16).unwrap();
    b.upload(&[f32::NAN; 9], &mut *c).unwrap();
    let gemm = Gemm { m, n, k, trans_a: false, trans_b: false, alpha: 1.0, beta: 0.0 };
    let launched = b.launch(Kernel::Matmul { a: &*bufs[0], b: &*bufs[1], c: &mut *c, gemm }, None);
    if !offered {
        let err = launched.unwrap_err().to_string();
        assert!(err.contains(LACKS_SHADER_F16), "{err}");
        return;
    }
    launched.unwrap();
    let mut got = [0f32; 9];
    b.download(&*c, &mut got).unwrap();
    assert_eq!(got, [-1.0, 0.5, 18.0, -1.0, 1.0, 38.0, 1.5, -0.25, -7.0]);
}
