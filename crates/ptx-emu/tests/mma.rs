//! The tensor-core rungs (kernels/matmul/7_mma_tf32.ptx, 8_mma_bf16.ptx, 9_mma_f16.ptx) run on
//! the interpreter against the f64 reference of the unrounded inputs, within their precision's
//! budget, on shapes past every tile and k slice in all four transpose forms, C poisoned with NaN,
//! the sanitizer on; and a kernel with its A fragment registers swapped is caught by its result.

mod common;

use common::cases::{MMA_RUNGS, matmul_in, matmul_wrong};
use common::source_of;

/// (m, n, k), A transposed, B transposed, β.
type Shape = ((usize, usize, usize), bool, bool, f32);

const SHAPES: [Shape; 6] = [
    ((67, 45, 73), false, false, 0.0),
    ((129, 65, 97), true, true, -1.0),
    ((33, 20, 36), true, false, 0.5),
    ((19, 24, 40), false, true, 0.0),
    ((1, 1, 1), false, false, 0.0),
    ((64, 64, 16), false, false, 0.0),
];

#[test]
fn every_mma_rung_within_its_precision_budget() {
    for (rung, storage) in &MMA_RUNGS {
        let text = source_of(rung.entry);
        for (shape, ta, tb, beta) in SHAPES {
            let (got, want, budget) = matmul_in(*storage, &text, rung, shape, ta, tb, beta, true)
                .unwrap_or_else(|f| panic!("{}: {f}", rung.entry));
            if let Some((i, g, w)) = matmul_wrong(&got, &want, &budget) {
                panic!("{} {shape:?} ta={ta} tb={tb} beta={beta}: C[{i}] = {g}, want {w} ± {}", rung.entry, budget[i]);
            }
        }
    }
}

/// The 16-bit rungs' error is the storage's, not f32's: measured against the reference, the
/// largest error on a 64³ product is many f32 budgets (so the test above is not passing an f32
/// kernel by accident), and within one bf16 or f16 budget.
#[test]
fn narrow_rungs_show_their_storage_rounding() {
    for (rung, storage) in &MMA_RUNGS[1..] {
        let text = source_of(rung.entry);
        let (got, want, budget) = matmul_in(*storage, &text, rung, (64, 64, 64), false, false, 0.0, true)
            .unwrap_or_else(|f| panic!("{}: {f}", rung.entry));
        let worst = (0..got.len()).map(|i| (got[i] as f64 - want[i]).abs() / budget[i]).fold(0.0, f64::max);
        let f32_budget =
            (0..got.len()).map(|i| (got[i] as f64 - want[i]).abs() / (budget[i] * 1e-3)).fold(0.0, f64::max);
        assert!(worst <= 1.0 && f32_budget > 1.0, "{}: worst {worst} of its budget", rung.entry);
    }
}

/// `text` with the first `from` after `.entry entry(` replaced by `to`.
fn mutate(text: &str, entry: &str, from: &str, to: &str) -> String {
    let start = text.find(&format!(".entry {entry}(")).unwrap_or_else(|| panic!("no entry {entry}"));
    let at = start + text[start..].find(from).unwrap_or_else(|| panic!("`{from}` not in {entry}"));
    format!("{}{to}{}", &text[..at], &text[at + from.len()..])
}

#[test]
fn swapped_a_fragment_registers_are_caught_by_the_result() {
    for (rung, storage) in &MMA_RUNGS {
        let text = source_of(rung.entry);
        // The first mma's A fragment with its first two registers swapped: rows g and g+8 of A
        // (the tf32 rung) or their low columns (the 16-bit rungs) trade places.
        let wrong = mutate(&text, rung.entry, "{%fa0, %fa1, %fa2, %fa3}", "{%fa1, %fa0, %fa2, %fa3}");
        assert_ne!(wrong, text);
        let (got, want, budget) = matmul_in(*storage, &wrong, rung, (67, 45, 73), false, false, 0.0, true)
            .unwrap_or_else(|f| panic!("{}: a fault, not a wrong result: {f}", rung.entry));
        let caught = matmul_wrong(&got, &want, &budget);
        assert!(caught.is_some(), "{}: the swapped fragment passed", rung.entry);
        println!("{}: swapped A fragment registers caught by a wrong result: {caught:?}", rung.entry);
    }
}

/// The fragments of the PTX ISA's tables for lane `l` = 4g + t, written out here independently
/// of the interpreter: (row, column) of A's, B's and C's elements, in register order (two 16-bit
/// elements per register, the first in the lower half).
fn isa_layout(tf32: bool, l: usize) -> [Vec<(usize, usize)>; 3] {
    let (g, t) = (l / 4, l % 4);
    let c = vec![(g, 2 * t), (g, 2 * t + 1), (g + 8, 2 * t), (g + 8, 2 * t + 1)];
    if tf32 {
        [vec![(g, t), (g + 8, t), (g, t + 4), (g + 8, t + 4)], vec![(t, g), (t + 4, g)], c]
    } else {
        let a = [(g, 2 * t), (g + 8, 2 * t), (g, 2 * t + 8), (g + 8, 2 * t + 8)];
        let a = a.iter().flat_map(|&(r, k)| [(r, k), (r, k + 1)]).collect();
        let b = [(2 * t, g), (2 * t + 8, g)].iter().flat_map(|&(k, n)| [(k, n), (k + 1, n)]).collect();
        [a, b, c]
    }
}

/// One warp's `mma.sync` through PTX: lane l reads its registers from a[4l..], b[2l..], c[4l..]
/// and writes D to d[4l..].
fn mma_kernel(shape: &str) -> String {
    format!(
        ".version 8.0\n.target sm_80\n.address_size 64\n\
         .visible .entry k(.param .u64 k_a, .param .u64 k_b, .param .u64 k_c, .param .u64 k_d)\n{{\n\
         .reg .b32 %a<4>, %b<2>, %l;\n.reg .f32 %c<4>;\n.reg .b64 %pa, %pb, %pc, %pd, %o;\n\
         ld.param.u64 %pa, [k_a];\nld.param.u64 %pb, [k_b];\nld.param.u64 %pc, [k_c];\nld.param.u64 %pd, [k_d];\n\
         mov.u32 %l, %tid.x;\nmul.wide.u32 %o, %l, 16;\nadd.u64 %pa, %pa, %o;\nadd.u64 %pc, %pc, %o;\nadd.u64 %pd, %pd, %o;\n\
         mul.wide.u32 %o, %l, 8;\nadd.u64 %pb, %pb, %o;\n\
         ld.global.v4.b32 {{%a0, %a1, %a2, %a3}}, [%pa];\nld.global.v2.b32 {{%b0, %b1}}, [%pb];\n\
         ld.global.v4.f32 {{%c0, %c1, %c2, %c3}}, [%pc];\n\
         mma.sync.aligned.{shape} {{%c0, %c1, %c2, %c3}}, {{%a0, %a1, %a2, %a3}}, {{%b0, %b1}}, {{%c0, %c1, %c2, %c3}};\n\
         st.global.v4.f32 [%pd], {{%c0, %c1, %c2, %c3}};\nret;\n}}\n"
    )
}

#[test]
fn mma_sync_through_ptx_on_the_isa_fragment_layouts() {
    use common::{Arg, Rng, download, run, upload};
    use kernelab_ptx_emu::Memory;
    use kernelab_ptx_emu::mma::{Half, narrow};
    for (shape, half, k) in [
        ("m16n8k16.row.col.f32.bf16.bf16.f32", Some(Half::Bf16), 16),
        ("m16n8k16.row.col.f32.f16.f16.f32", Some(Half::F16), 16),
        ("m16n8k8.row.col.f32.tf32.tf32.f32", None, 8),
    ] {
        let mut rng = Rng::new(k as u64 + half.is_some() as u64);
        // Multiples of 1/8 in [-4, 4): exact in every input format, products and sums exact in f32.
        let q = |v: Vec<f32>| v.into_iter().map(|x| (x * 8.0).floor() / 8.0).collect::<Vec<f32>>();
        let (a, b, c) = (q(rng.vec(16 * k, -4.0, 4.0)), q(rng.vec(k * 8, -4.0, 4.0)), q(rng.vec(128, -4.0, 4.0)));
        let (mut fa, mut fb, mut fc) = (vec![0u32; 128], vec![0u32; 64], vec![0f32; 128]);
        for l in 0..32 {
            let [la, lb, lc] = isa_layout(half.is_none(), l);
            let put = |regs: &mut [u32], i: usize, x: f32| match half {
                None => regs[i] = x.to_bits(),
                Some(h) => regs[i / 2] |= (narrow(h, x) as u32) << (16 * (i % 2)),
            };
            la.iter().enumerate().for_each(|(i, &(r, p))| put(&mut fa[4 * l..], i, a[r * k + p]));
            lb.iter().enumerate().for_each(|(i, &(p, n))| put(&mut fb[2 * l..], i, b[p * 8 + n]));
            lc.iter().enumerate().for_each(|(i, &(r, n))| fc[4 * l + i] = c[r * 8 + n]);
        }
        let bits = |v: &[u32]| v.iter().map(|&x| f32::from_bits(x)).collect::<Vec<f32>>();
        let mut mem = Memory::new(1 << 20);
        let (pa, pb, pc) = (upload(&mut mem, &bits(&fa)), upload(&mut mem, &bits(&fb)), upload(&mut mem, &fc));
        let pd = upload(&mut mem, &[f32::NAN; 128]);
        let args = [Arg::Ptr(pa), Arg::Ptr(pb), Arg::Ptr(pc), Arg::Ptr(pd)];
        run(&mma_kernel(shape), "k", [1, 1, 1], [32, 1, 1], &args, &mut mem, true).unwrap_or_else(|f| panic!("{f}"));
        let d = download(&mem, pd, 128);
        for l in 0..32 {
            for (i, &(r, n)) in isa_layout(half.is_none(), l)[2].iter().enumerate() {
                let want: f32 = (0..k).map(|p| a[r * k + p] * b[p * 8 + n]).sum::<f32>() + c[r * 8 + n];
                assert_eq!(d[4 * l + i], want, "{shape}: lane {l} d{i} = D({r}, {n})");
            }
        }
        // A partial warp cannot run an mma.sync.
        let f = run(&mma_kernel(shape), "k", [1, 1, 1], [16, 1, 1], &args, &mut mem, true).unwrap_err();
        assert!(f.to_string().contains("needs all 32 lanes"), "{f}");
    }
}
