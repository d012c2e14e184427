//! Tensor cores as the PTX ISA defines them for the shapes kernelab's mma rungs use, and the
//! narrow floating-point formats around them:
//!
//! - `mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32` and the same with `.f16` inputs:
//!   `D (16×8, f32) = A (16×16) · B (16×8) + C (16×8, f32)`, two 16-bit inputs per `.b32`
//!   register, the element with the lower index in the lower half;
//! - `mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32`: `A` 16×8, `B` 8×8, one tf32 (an f32
//!   whose 13 low mantissa bits the tensor core ignores) per register.
//!
//! The 32 lanes of a warp hold the fragments; with `g = lane / 4` (the group) and `t = lane % 4`
//! (the thread in the group), the ISA's tables ("Matrix Fragments for mma.m16n8k16 / m16n8k8")
//! place them as [`a_at`], [`b_at`] and [`c_at`] do. Products of the narrow inputs are exact in
//! f64; the interpreter sums them and `C` in f64 and rounds once to f32. PTX does not specify the
//! order or the internal precision of a tensor core's sum (real ones truncate partial sums), so a
//! GPU's result may differ from this one in the last bit or two of f32: the error budgets of the
//! rungs are in the storage type's precision, far above that.

/// The input type of an `mma.sync`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MmaKind {
    Bf16,
    F16,
    Tf32,
}

impl MmaKind {
    /// The depth of one product: 16 for the 16-bit inputs, 8 for tf32.
    pub fn k(self) -> usize {
        match self {
            MmaKind::Tf32 => 8,
            _ => 16,
        }
    }
    /// Input elements per lane: A's and B's.
    fn per_lane(self) -> (usize, usize) {
        match self {
            MmaKind::Tf32 => (4, 2),
            _ => (8, 4),
        }
    }
}

/// A 16-bit float format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Half {
    Bf16,
    F16,
}

/// The (row, column) of A that element `i` of lane `lane`'s A fragment holds.
pub fn a_at(kind: MmaKind, lane: usize, i: usize) -> (usize, usize) {
    let (g, t) = (lane / 4, lane % 4);
    match kind {
        // a0 (g, t), a1 (g+8, t), a2 (g, t+4), a3 (g+8, t+4)
        MmaKind::Tf32 => (g + 8 * (i % 2), t + 4 * (i / 2)),
        // a0,a1 (g, 2t..), a2,a3 (g+8, 2t..), a4,a5 (g, 2t+8..), a6,a7 (g+8, 2t+8..)
        _ => (g + 8 * ((i / 2) % 2), 2 * t + i % 2 + 8 * (i / 4)),
    }
}

/// The (row, column) of B (k × 8) that element `i` of lane `lane`'s B fragment holds.
pub fn b_at(kind: MmaKind, lane: usize, i: usize) -> (usize, usize) {
    let (g, t) = (lane / 4, lane % 4);
    match kind {
        // b0 (t, g), b1 (t+4, g)
        MmaKind::Tf32 => (t + 4 * i, g),
        // b0,b1 (2t.., g), b2,b3 (2t+8.., g)
        _ => (2 * t + i % 2 + 8 * (i / 2), g),
    }
}

/// The (row, column) of C and D (16 × 8) that element `i` of lane `lane`'s fragment holds:
/// c0,c1 (g, 2t..), c2,c3 (g+8, 2t..).
pub fn c_at(lane: usize, i: usize) -> (usize, usize) {
    let (g, t) = (lane / 4, lane % 4);
    (g + 8 * (i / 2), 2 * t + i % 2)
}

/// Input element `i` of a fragment held in `regs`, as the tensor core reads it.
fn element(kind: MmaKind, regs: &[u32], i: usize) -> f64 {
    let half = |i: usize| (regs[i / 2] >> (16 * (i % 2))) as u16;
    match kind {
        MmaKind::Tf32 => f32::from_bits(regs[i] & !0x1fff) as f64,
        MmaKind::Bf16 => widen(Half::Bf16, half(i)) as f64,
        MmaKind::F16 => widen(Half::F16, half(i)) as f64,
    }
}

/// One warp's `mma.sync`: `a[lane]`, `b[lane]`, `c[lane]` are each lane's fragment registers
/// (A: 4, B: 2, C: 4 f32 bits); returns each lane's D fragment (f32 bits).
pub fn mma(kind: MmaKind, a: &[[u32; 4]; 32], b: &[[u32; 2]; 32], c: &[[u32; 4]; 32]) -> [[u32; 4]; 32] {
    let (na, nb) = kind.per_lane();
    let mut am = [[0f64; 16]; 16];
    let mut bm = [[0f64; 8]; 16];
    for lane in 0..32 {
        for i in 0..na {
            let (r, col) = a_at(kind, lane, i);
            am[r][col] = element(kind, &a[lane], i);
        }
        for i in 0..nb {
            let (r, col) = b_at(kind, lane, i);
            bm[r][col] = element(kind, &b[lane], i);
        }
    }
    let mut d = [[0u32; 4]; 32];
    for lane in 0..32 {
        for i in 0..4 {
            let (r, col) = c_at(lane, i);
            let sum: f64 = (0..kind.k()).map(|p| am[r][p] * bm[p][col]).sum();
            d[lane][i] = ((sum + f32::from_bits(c[lane][i]) as f64) as f32).to_bits();
        }
    }
    d
}

/// f32 to a 16-bit format, rounded to nearest even (`cvt.rn.bf16.f32`, `cvt.rn.f16.f32`): past
/// the largest finite value it gives infinity, NaN gives the canonical NaN `0x7fff`, f16
/// subnormals are kept.
pub fn narrow(to: Half, x: f32) -> u16 {
    let bits = x.to_bits();
    if x.is_nan() {
        return 0x7fff;
    }
    match to {
        Half::Bf16 => ((bits + 0x7fff + ((bits >> 16) & 1)) >> 16) as u16,
        Half::F16 => {
            let sign = ((bits >> 16) & 0x8000) as u16;
            let a = bits & 0x7fff_ffff;
            if a >= 0x477f_f000 {
                // 65520 and above round to infinity.
                sign | 0x7c00
            } else if a >= 0x3880_0000 {
                // A normal f16 (at least 2^-14): rebias the exponent, round off 13 bits.
                let m = a - (112 << 23);
                sign | ((m + 0x0fff + ((m >> 13) & 1)) >> 13) as u16
            } else {
                // Subnormal: a multiple of 2^-24 (exact in f64), rounded to nearest even.
                sign | (f32::from_bits(a) as f64 * 16_777_216.0).round_ties_even() as u16
            }
        }
    }
}

/// A 16-bit float to f32 (exact): `cvt.f32.bf16`, `cvt.f32.f16`.
pub fn widen(from: Half, h: u16) -> f32 {
    match from {
        Half::Bf16 => f32::from_bits((h as u32) << 16),
        Half::F16 => {
            let sign = if h & 0x8000 != 0 { -1.0f32 } else { 1.0 };
            let (e, m) = ((h >> 10) & 0x1f, (h & 0x3ff) as u32);
            match e {
                0 => sign * m as f32 / 16_777_216.0,
                31 if m == 0 => sign * f32::INFINITY,
                31 => f32::NAN,
                _ => f32::from_bits(((h as u32 & 0x8000) << 16) | ((e as u32 + 112) << 23) | (m << 13)),
            }
        }
    }
}

/// `cvt.rna.tf32.f32`: f32 rounded to tf32's 10 mantissa bits, ties away from zero; the 13 low
/// bits of the result are zero. NaN and infinity stay.
pub fn tf32(x: f32) -> u32 {
    if !x.is_finite() {
        return x.to_bits();
    }
    (x.to_bits() + 0x1000) & !0x1fff
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small generator of values exact in every input format (multiples of 1/8 in [-4, 4)).
    fn values(n: usize, seed: u64) -> Vec<f32> {
        let mut s = seed | 1;
        (0..n)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                ((s >> 40) % 64) as f32 / 8.0 - 4.0
            })
            .collect()
    }

    /// The fragments of a (16 × k) and b (k × 8), placed by `a_place` and `b_place`.
    fn fragments(
        kind: MmaKind,
        a: &[f32],
        b: &[f32],
        a_place: impl Fn(usize, usize) -> (usize, usize),
        b_place: impl Fn(usize, usize) -> (usize, usize),
    ) -> ([[u32; 4]; 32], [[u32; 2]; 32]) {
        let k = kind.k();
        let encode = |x: f32| match kind {
            MmaKind::Tf32 => x.to_bits(),
            MmaKind::Bf16 => narrow(Half::Bf16, x) as u32,
            MmaKind::F16 => narrow(Half::F16, x) as u32,
        };
        let (na, nb) = kind.per_lane();
        let mut fa = [[0u32; 4]; 32];
        let mut fb = [[0u32; 2]; 32];
        let put = |regs: &mut [u32], i: usize, v: u32| match kind {
            MmaKind::Tf32 => regs[i] = v,
            _ => regs[i / 2] |= v << (16 * (i % 2)),
        };
        for lane in 0..32 {
            for i in 0..na {
                let (r, c) = a_place(lane, i);
                put(&mut fa[lane], i, encode(a[r * k + c]));
            }
            for i in 0..nb {
                let (r, c) = b_place(lane, i);
                put(&mut fb[lane], i, encode(b[r * 8 + c]));
            }
        }
        (fa, fb)
    }

    /// D of the plain product a·b + c, element (r, col).
    fn plain(k: usize, a: &[f32], b: &[f32], c: &[f32], r: usize, col: usize) -> f32 {
        ((0..k).map(|p| a[r * k + p] as f64 * b[p * 8 + col] as f64).sum::<f64>() + c[r * 8 + col] as f64) as f32
    }

    fn run(kind: MmaKind, transposed_a: bool) -> usize {
        let k = kind.k();
        let (a, b, c) = (values(16 * k, 3), values(k * 8, 5), values(128, 7));
        let a_place = |lane, i| {
            let (r, col) = a_at(kind, lane, i);
            // The mutation: A's fragment read as if A were stored column-major (16×16 only, so
            // the transpose stays inside A; for tf32 the columns swap halves instead).
            match (transposed_a, kind) {
                (false, _) => (r, col),
                (true, MmaKind::Tf32) => (r, col ^ 4),
                (true, _) => (col, r),
            }
        };
        let (fa, fb) = fragments(kind, &a, &b, a_place, |lane, i| b_at(kind, lane, i));
        let mut fc = [[0u32; 4]; 32];
        for (lane, regs) in fc.iter_mut().enumerate() {
            for (i, reg) in regs.iter_mut().enumerate() {
                let (r, col) = c_at(lane, i);
                *reg = c[r * 8 + col].to_bits();
            }
        }
        let d = mma(kind, &fa, &fb, &fc);
        let mut wrong = 0;
        for (lane, regs) in d.iter().enumerate() {
            for (i, reg) in regs.iter().enumerate() {
                let (r, col) = c_at(lane, i);
                wrong += (f32::from_bits(*reg) != plain(k, &a, &b, &c, r, col)) as usize;
            }
        }
        wrong
    }

    #[test]
    fn every_fragment_layout_gives_the_plain_product() {
        for kind in [MmaKind::Bf16, MmaKind::F16, MmaKind::Tf32] {
            assert_eq!(run(kind, false), 0, "{kind:?}: elements of D unlike the plain product");
        }
    }

    #[test]
    fn a_transposed_fragment_layout_fails() {
        for kind in [MmaKind::Bf16, MmaKind::F16, MmaKind::Tf32] {
            let wrong = run(kind, true);
            assert!(wrong > 100, "{kind:?}: only {wrong} of 128 elements differ with A's layout transposed");
        }
    }

    #[test]
    fn every_lane_holds_distinct_elements_covering_each_matrix() {
        for kind in [MmaKind::Bf16, MmaKind::F16, MmaKind::Tf32] {
            let (na, nb) = kind.per_lane();
            let mut seen_a = vec![0; 16 * kind.k()];
            let mut seen_b = vec![0; kind.k() * 8];
            let mut seen_c = [0; 128];
            for lane in 0..32 {
                (0..na).for_each(|i| seen_a[a_at(kind, lane, i).0 * kind.k() + a_at(kind, lane, i).1] += 1);
                (0..nb).for_each(|i| seen_b[b_at(kind, lane, i).0 * 8 + b_at(kind, lane, i).1] += 1);
                (0..4).for_each(|i| seen_c[c_at(lane, i).0 * 8 + c_at(lane, i).1] += 1);
            }
            assert!(seen_a.iter().chain(&seen_b).chain(&seen_c).all(|&n| n == 1), "{kind:?}");
        }
        // Spot checks from the ISA's figures: lane 5 is group 1, thread 1.
        assert_eq!(
            [a_at(MmaKind::Bf16, 5, 0), a_at(MmaKind::Bf16, 5, 3), a_at(MmaKind::Bf16, 5, 7)],
            [(1, 2), (9, 3), (9, 11)]
        );
        assert_eq!([b_at(MmaKind::Bf16, 5, 1), b_at(MmaKind::Bf16, 5, 2)], [(3, 1), (10, 1)]);
        assert_eq!(
            [a_at(MmaKind::Tf32, 5, 1), a_at(MmaKind::Tf32, 5, 2), b_at(MmaKind::Tf32, 5, 1)],
            [(9, 1), (1, 5), (5, 1)]
        );
        assert_eq!(c_at(5, 3), (9, 3));
    }

    #[test]
    fn narrow_formats_round_to_nearest_even() {
        // bf16: 1 + 2^-8 is a tie between 1 and 1 + 2^-7: even (1); 1 + 3·2^-8 goes up.
        assert_eq!(narrow(Half::Bf16, 1.0 + 1.0 / 256.0), 0x3f80);
        assert_eq!(narrow(Half::Bf16, 1.0 + 3.0 / 256.0), 0x3f82);
        assert_eq!(narrow(Half::Bf16, f32::MAX), 0x7f80);
        assert_eq!(narrow(Half::Bf16, f32::NAN), 0x7fff);
        assert_eq!(narrow(Half::Bf16, -2.5), 0xc020);
        // f16: 1 + 2^-11 ties to 1, 1 + 3·2^-11 to 1 + 2^-9; 65504 is the largest, 65520 overflows.
        assert_eq!(narrow(Half::F16, 1.0 + 1.0 / 2048.0), 0x3c00);
        assert_eq!(narrow(Half::F16, 1.0 + 3.0 / 2048.0), 0x3c02);
        assert_eq!(narrow(Half::F16, 65504.0), 0x7bff);
        assert_eq!(narrow(Half::F16, 65519.0), 0x7bff);
        assert_eq!(narrow(Half::F16, 65520.0), 0x7c00);
        assert_eq!(narrow(Half::F16, -1e9), 0xfc00);
        // Subnormals: 2^-24 is the smallest; half of it ties to 0, 1.5 of it to 2.
        assert_eq!(narrow(Half::F16, 2f32.powi(-24)), 0x0001);
        assert_eq!(narrow(Half::F16, 2f32.powi(-25)), 0x0000);
        assert_eq!(narrow(Half::F16, 3.0 * 2f32.powi(-25)), 0x0002);
        assert_eq!(narrow(Half::F16, -2f32.powi(-14)), 0x8400);
        for h in (0..=0xffffu32).map(|h| h as u16) {
            for half in [Half::Bf16, Half::F16] {
                let x = widen(half, h);
                if !x.is_nan() {
                    assert_eq!(narrow(half, x), h, "{half:?} {h:#06x} round trip");
                }
            }
        }
        assert_eq!(widen(Half::F16, 0x7c00), f32::INFINITY);
        assert!(widen(Half::F16, 0x7e00).is_nan());
    }

    #[test]
    fn tf32_rounds_ties_away_and_clears_thirteen_bits() {
        let one = 1f32.to_bits();
        assert_eq!(tf32(f32::from_bits(one + 0x1000)), one + 0x2000, "a tie goes away from zero");
        assert_eq!(tf32(f32::from_bits(one + 0x0fff)), one);
        assert_eq!(tf32(-f32::from_bits(one + 0x1000)), (-f32::from_bits(one + 0x2000)).to_bits());
        assert_eq!(tf32(f32::INFINITY), f32::INFINITY.to_bits());
        assert!(f32::from_bits(tf32(f32::NAN)).is_nan());
    }
}
