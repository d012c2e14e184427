//! [`Dtype`], the type a buffer stores its values in, and [`Precision`], a kernel's storage and
//! accumulation types.
//!
//! Values enter and leave a device as f32. A narrow buffer (bf16, f16) rounds each value to the
//! nearest value of its type on the way in (ties to even, as IEEE 754 and every tensor-core
//! conversion do) and widens it exactly on the way out. Conversions go through the `half` crate.
//!
//! | dtype | bits | significand | unit roundoff `u` | largest finite |
//! |-------|------|-------------|-------------------|----------------|
//! | f32   | 32   | 24          | 2⁻²⁴              | 3.4·10³⁸       |
//! | bf16  | 16   | 8           | 2⁻⁸               | 3.4·10³⁸       |
//! | f16   | 16   | 11          | 2⁻¹¹              | 65504          |
//! | tf32  | 32   | 11          | 2⁻¹¹              | 3.4·10³⁸       |
//!
//! `u` bounds the relative error of one rounding to nearest: `|round(x) − x| ≤ u·|x|` for `x` in
//! the normal range (f16 overflows to ±∞ beyond 65504; below 2⁻¹⁴ its error is absolute).
//!
//! TF32 is no storage type of its own: its values live in f32 buffers ([`Dtype::buffer`]), and a
//! TF32 kernel (a tensor core's `mma.sync … .tf32`, cuBLAS's `CUBLAS_COMPUTE_32F_FAST_TF32`)
//! rounds its operands to f32's exponent and an 11-bit significand (10 bits stored) itself, as
//! it reads them (`cvt.rna.tf32.f32`: to nearest, ties away from zero). Data is never converted
//! to it on upload; only the budget of the kernel's result changes.

use std::fmt;
use std::str::FromStr;

use crate::{Error, Result};

/// The type a buffer stores its values in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Dtype {
    /// IEEE 754 binary32.
    F32,
    /// bfloat16: f32's exponent, 8 significand bits.
    Bf16,
    /// IEEE 754 binary16: 5 exponent bits, 11 significand bits.
    F16,
    /// NVIDIA's TensorFloat-32 operands: f32's exponent, 11 significand bits, stored in f32
    /// buffers (module doc).
    Tf32,
}

impl Dtype {
    /// Every dtype, f32 first.
    pub const ALL: [Dtype; 4] = [Dtype::F32, Dtype::Bf16, Dtype::F16, Dtype::Tf32];

    /// The name the CLI, the reports and the variant names spell: `f32`, `bf16`, `f16`.
    pub fn name(self) -> &'static str {
        match self {
            Dtype::F32 => "f32",
            Dtype::Bf16 => "bf16",
            Dtype::F16 => "f16",
            Dtype::Tf32 => "tf32",
        }
    }

    /// The dtype named `text`; an unknown name is [`Error::InvalidArgument`] listing the known ones.
    pub fn parse(text: &str) -> Result<Dtype> {
        Dtype::ALL.into_iter().find(|d| d.name() == text.trim()).ok_or_else(|| Error::InvalidArgument {
            op: "dtype",
            why: format!("unknown dtype `{text}`; known dtypes: {}", Dtype::ALL.map(Dtype::name).join(", ")),
        })
    }

    /// Bytes per stored value: 4, 2, 2, and 4 for TF32 (f32 buffers).
    pub fn bytes(self) -> usize {
        self.buffer().bytes_stored()
    }

    fn bytes_stored(self) -> usize {
        match self {
            Dtype::F32 | Dtype::Tf32 => 4,
            Dtype::Bf16 | Dtype::F16 => 2,
        }
    }

    /// The dtype of the buffers that hold values of this type: itself, f32 for TF32.
    pub fn buffer(self) -> Dtype {
        match self {
            Dtype::Tf32 => Dtype::F32,
            other => other,
        }
    }

    /// The unit roundoff `u = 2⁻ᵖ` of a type with a `p`-bit significand: 2⁻²⁴, 2⁻⁸, 2⁻¹¹, 2⁻¹¹.
    pub fn unit_roundoff(self) -> f64 {
        match self {
            Dtype::F32 => (-24f64).exp2(),
            Dtype::Bf16 => (-8f64).exp2(),
            Dtype::F16 | Dtype::Tf32 => (-11f64).exp2(),
        }
    }

    /// `x` rounded to the nearest value of this type (ties to even) and widened back to f32,
    /// exactly what a narrow buffer stores: f32 gives `x` itself; f16 overflows to ±∞; NaN stays
    /// NaN. TF32 gives what a TF32 kernel makes of an operand (`cvt.rna.tf32.f32`: ties away from
    /// zero, the 13 low bits cleared), though its buffer keeps `x`.
    pub fn round(self, x: f32) -> f32 {
        match self {
            Dtype::F32 => x,
            Dtype::Bf16 => half::bf16::from_f32(x).to_f32(),
            Dtype::F16 => half::f16::from_f32(x).to_f32(),
            Dtype::Tf32 if !x.is_finite() => x,
            Dtype::Tf32 => f32::from_bits(x.to_bits().wrapping_add(0x1000) & !0x1fff),
        }
    }

    /// `Ok` for a type with buffers of its own; for TF32, which lives in f32 buffers
    /// ([`Dtype::buffer`]), the [`Error::NoStorage`] every `alloc_as` answers on `backend`.
    pub fn storable(self, backend: &str) -> Result<()> {
        if self.buffer() == self {
            return Ok(());
        }
        let f32 = self.buffer();
        Err(Error::NoStorage {
            backend: backend.into(),
            dtype: self,
            why: format!(
                ": {self} values live in {f32} buffers and a {self} kernel rounds its operands itself; allocate \
                 {f32} and name a {self} variant"
            ),
        })
    }

    /// Whether values of the type are stored narrower than f32 (bf16, f16; not TF32).
    pub fn is_narrow(self) -> bool {
        self.buffer() != Dtype::F32
    }

    /// The largest finite value of the type: f32's and bf16's about 3.4·10³⁸, f16's 65504.
    pub fn max_finite(self) -> f64 {
        match self {
            Dtype::F32 | Dtype::Tf32 => f64::from(f32::MAX),
            Dtype::Bf16 => f64::from(half::bf16::MAX.to_f32()),
            Dtype::F16 => f64::from(half::f16::MAX.to_f32()),
        }
    }

    /// What a conversion of `values` to this type does to finite values past its range, for a
    /// person: `x: 2 of 100 finite values are beyond f16's range (±65504) and became ±∞`; `None`
    /// when no value overflows ([`Dtype::count_overflows`]). `what` names the values.
    pub fn overflow_note(self, values: &[f32], what: &str) -> Option<String> {
        let n = self.count_overflows(values);
        (n > 0).then(|| {
            format!(
                "{what}: {n} of {} finite values are beyond {self}'s range (±{}) and became ±∞",
                values.len(),
                self.max_finite()
            )
        })
    }

    /// How many of `values` are finite in f32 but become ±∞ when rounded to this type (f16
    /// beyond ±65504, bf16 within half an ulp of f32's largest values). A conversion reports
    /// this count instead of flushing silently; NaN and ±∞ already in `values` are not counted.
    pub fn count_overflows(self, values: &[f32]) -> usize {
        let Some(lowest) = self.lowest_overflowing_bits() else { return 0 };
        // |x| by its bits: finite values at or past `lowest` round to ±∞. A branch-free count
        // the compiler vectorises (this runs on every narrow upload, e.g. each training batch).
        values.iter().map(|x| x.to_bits() & 0x7fff_ffff).filter(|&bits| (lowest..0x7f80_0000).contains(&bits)).count()
    }

    /// The bits of the smallest positive f32 that rounds to +∞ in this type, for a narrow type:
    /// the midpoint between its largest finite value and the next power of two, as ties go to
    /// even and both largest values (bf16 `0x7f7f`, f16 `0x7bff`) have an odd last bit.
    fn lowest_overflowing_bits(self) -> Option<u32> {
        match self {
            Dtype::F32 | Dtype::Tf32 => None,
            Dtype::Bf16 => Some(0x7f7f_8000),
            Dtype::F16 => Some(65520f32.to_bits()),
        }
    }
}

impl fmt::Display for Dtype {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Dtype {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self> {
        Dtype::parse(text)
    }
}

/// Storage and accumulation of a kernel, e.g. `bf16→f32`: its buffers hold `storage` values, and
/// its sums and products are carried in `accumulate` before the result is rounded to `storage`.
/// Plain `f32` when both are f32. Serialized as its [name](Precision::name).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Precision {
    pub storage: Dtype,
    pub accumulate: Dtype,
}

impl Default for Precision {
    fn default() -> Self {
        Precision::F32
    }
}

impl Precision {
    /// f32 storage, f32 accumulation: every kernel before precision became an axis.
    pub const F32: Precision = Precision { storage: Dtype::F32, accumulate: Dtype::F32 };

    /// `tf32→f32`: f32 buffers, operands rounded to TF32 by the kernel, f32 sums (tensor cores'
    /// TF32 mode).
    pub const TF32: Precision = Precision { storage: Dtype::Tf32, accumulate: Dtype::F32 };

    pub fn new(storage: Dtype, accumulate: Dtype) -> Self {
        Self { storage, accumulate }
    }

    /// `f32` when both are f32, else `storage→accumulate` (`bf16→f32`).
    pub fn name(&self) -> String {
        if *self == Precision::F32 { "f32".into() } else { format!("{}→{}", self.storage, self.accumulate) }
    }

    /// The precision named `text`: a [name](Precision::name) (`->` may stand for `→`), or a dtype
    /// alone, which accumulates in f32 (`bf16` is `bf16→f32`).
    pub fn parse(text: &str) -> Result<Precision> {
        let text = text.trim();
        match text.split_once('→').or_else(|| text.split_once("->")) {
            Some((storage, accumulate)) => Ok(Precision::new(Dtype::parse(storage)?, Dtype::parse(accumulate)?)),
            None => Ok(Precision::new(Dtype::parse(text)?, Dtype::F32)),
        }
    }
}

impl fmt::Display for Precision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

impl serde::Serialize for Precision {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.name())
    }
}

impl<'de> serde::Deserialize<'de> for Precision {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Precision::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_back_and_unknown_ones_list_the_known() {
        for d in Dtype::ALL {
            assert_eq!(Dtype::parse(d.name()).unwrap(), d);
            assert_eq!(serde_json::to_string(&d).unwrap(), format!("\"{}\"", d.name()));
        }
        let err = Dtype::parse("fp8").unwrap_err().to_string();
        assert!(err.contains("`fp8`") && err.contains("f32, bf16, f16, tf32"), "{err}");
        assert_eq!(Dtype::ALL.map(Dtype::bytes), [4, 2, 2, 4]);
        assert_eq!(Dtype::ALL.map(Dtype::buffer), [Dtype::F32, Dtype::Bf16, Dtype::F16, Dtype::F32]);
        assert_eq!(Dtype::ALL.map(Dtype::is_narrow), [false, true, true, false]);
    }

    #[test]
    fn rounding_is_to_nearest_even_and_f16_overflows_to_infinity() {
        // 1 + 2⁻⁸ lies halfway between bf16's 1 and 1 + 2⁻⁷: ties go to the even 1.
        assert_eq!(Dtype::Bf16.round(1.0 + (-8f32).exp2()), 1.0);
        // 1 + 3·2⁻⁸ lies halfway between 1 + 2⁻⁷ and 1 + 2⁻⁶: the even one is 1 + 2⁻⁶.
        assert_eq!(Dtype::Bf16.round(1.0 + 3.0 * (-8f32).exp2()), 1.0 + (-6f32).exp2());
        assert_eq!(Dtype::F16.round(1.0 + (-11f32).exp2()), 1.0);
        assert_eq!(Dtype::F16.round(65504.0), 65504.0);
        assert_eq!(Dtype::F16.round(70000.0), f32::INFINITY);
        assert_eq!(Dtype::F16.round(-70000.0), f32::NEG_INFINITY);
        assert!(Dtype::Bf16.round(1e38).is_finite(), "bf16 keeps f32's exponent range");
        assert!(Dtype::Bf16.round(f32::NAN).is_nan());
        assert_eq!(Dtype::F32.round(0.1), 0.1);
        // TF32 keeps 10 stored significand bits: 1 + 2⁻¹¹ is a tie and goes away from zero (the
        // PTX rounding, not ties-to-even), just below it goes down; the range is f32's.
        let one = 1f32.to_bits();
        assert_eq!(Dtype::Tf32.round(f32::from_bits(one + 0x1000)), f32::from_bits(one + 0x2000));
        assert_eq!(Dtype::Tf32.round(f32::from_bits(one + 0x0fff)), 1.0);
        assert_eq!(Dtype::Tf32.round(-f32::from_bits(one + 0x1000)), -f32::from_bits(one + 0x2000));
        assert_eq!(Dtype::Tf32.round(f32::INFINITY), f32::INFINITY);
        assert!(Dtype::Tf32.round(f32::NAN).is_nan());
        let values = [1.0, 65504.0, 70000.0, -1e9, f32::INFINITY, f32::NAN, f32::MAX];
        assert_eq!(Dtype::F16.count_overflows(&values), 3, "70000, -1e9 and f32::MAX, not ∞ or NaN");
        assert_eq!(Dtype::Bf16.count_overflows(&values), 1, "f32::MAX rounds up past bf16's largest");
        assert_eq!(Dtype::F32.count_overflows(&values), 0);
        assert_eq!(Dtype::Tf32.count_overflows(&values[..6]), 0, "tf32 has f32's range");
        let note = Dtype::F16.overflow_note(&values, "x").unwrap();
        assert_eq!(note, "x: 3 of 7 finite values are beyond f16's range (±65504) and became ±∞");
        assert_eq!(Dtype::F16.overflow_note(&values[..2], "x"), None, "65504 itself is f16's largest");
        for d in Dtype::ALL {
            let x = 0.1f32;
            assert!(f64::from((d.round(x) - x).abs()) <= d.unit_roundoff() * 0.1, "{d}");
        }
    }

    #[test]
    fn the_overflow_threshold_is_where_rounding_reaches_infinity() {
        for dtype in [Dtype::Bf16, Dtype::F16] {
            let lowest = dtype.lowest_overflowing_bits().unwrap();
            for bits in lowest - 4096..lowest + 4096 {
                for x in [f32::from_bits(bits), -f32::from_bits(bits)] {
                    let by_rounding = usize::from(!dtype.round(x).is_finite());
                    assert_eq!(dtype.count_overflows(&[x]), by_rounding, "{dtype} at {x:e} ({bits:#x})");
                }
            }
            // A coarse walk over every finite f32 magnitude, the control far from the threshold.
            for bits in (0..0x7f80_0000u32).step_by(65_537) {
                let x = f32::from_bits(bits);
                assert_eq!(dtype.count_overflows(&[x]), usize::from(!dtype.round(x).is_finite()), "{dtype} {x:e}");
            }
        }
    }

    #[test]
    fn precisions_are_named_storage_then_accumulation() {
        assert_eq!(Precision::F32.name(), "f32");
        let bf16 = Precision::new(Dtype::Bf16, Dtype::F32);
        assert_eq!(bf16.name(), "bf16→f32");
        for text in ["bf16→f32", "bf16->f32", "bf16"] {
            assert_eq!(Precision::parse(text).unwrap(), bf16, "{text}");
        }
        assert_eq!(serde_json::to_string(&bf16).unwrap(), "\"bf16→f32\"");
        assert_eq!(serde_json::from_str::<Precision>("\"f32\"").unwrap(), Precision::F32);
        assert!(Precision::parse("bf16→int4").is_err());
        assert_eq!(Precision::parse("tf32").unwrap(), Precision::TF32);
        assert_eq!(Precision::TF32.name(), "tf32→f32");
    }
}
