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
//!
//! `u` bounds the relative error of one rounding to nearest: `|round(x) − x| ≤ u·|x|` for `x` in
//! the normal range (f16 overflows to ±∞ beyond 65504; below 2⁻¹⁴ its error is absolute).

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
}

impl Dtype {
    /// Every dtype, f32 first.
    pub const ALL: [Dtype; 3] = [Dtype::F32, Dtype::Bf16, Dtype::F16];

    /// The name the CLI, the reports and the variant names spell: `f32`, `bf16`, `f16`.
    pub fn name(self) -> &'static str {
        match self {
            Dtype::F32 => "f32",
            Dtype::Bf16 => "bf16",
            Dtype::F16 => "f16",
        }
    }

    /// The dtype named `text`; an unknown name is [`Error::InvalidArgument`] listing the known ones.
    pub fn parse(text: &str) -> Result<Dtype> {
        Dtype::ALL.into_iter().find(|d| d.name() == text.trim()).ok_or_else(|| Error::InvalidArgument {
            op: "dtype",
            why: format!("unknown dtype `{text}`; known dtypes: {}", Dtype::ALL.map(Dtype::name).join(", ")),
        })
    }

    /// Bytes per stored value: 4, 2, 2.
    pub fn bytes(self) -> usize {
        match self {
            Dtype::F32 => 4,
            Dtype::Bf16 | Dtype::F16 => 2,
        }
    }

    /// The unit roundoff `u = 2⁻ᵖ` of a type with a `p`-bit significand: 2⁻²⁴, 2⁻⁸, 2⁻¹¹.
    pub fn unit_roundoff(self) -> f64 {
        match self {
            Dtype::F32 => (-24f64).exp2(),
            Dtype::Bf16 => (-8f64).exp2(),
            Dtype::F16 => (-11f64).exp2(),
        }
    }

    /// `x` rounded to the nearest value of this type (ties to even) and widened back to f32,
    /// exactly what a narrow buffer stores: f32 gives `x` itself; f16 overflows to ±∞; NaN stays
    /// NaN.
    pub fn round(self, x: f32) -> f32 {
        match self {
            Dtype::F32 => x,
            Dtype::Bf16 => half::bf16::from_f32(x).to_f32(),
            Dtype::F16 => half::f16::from_f32(x).to_f32(),
        }
    }

    /// Whether the type is narrower than f32.
    pub fn is_narrow(self) -> bool {
        self != Dtype::F32
    }

    /// How many of `values` are finite in f32 but become ±∞ when rounded to this type (f16
    /// beyond ±65504, bf16 within half an ulp of f32's largest values). A conversion reports
    /// this count instead of flushing silently; NaN and ±∞ already in `values` are not counted.
    pub fn count_overflows(self, values: &[f32]) -> usize {
        if !self.is_narrow() {
            return 0;
        }
        values.iter().filter(|&&x| x.is_finite() && !self.round(x).is_finite()).count()
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
        assert!(err.contains("`fp8`") && err.contains("f32, bf16, f16"), "{err}");
        assert_eq!([Dtype::F32.bytes(), Dtype::Bf16.bytes(), Dtype::F16.bytes()], [4, 2, 2]);
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
        let values = [1.0, 65504.0, 70000.0, -1e9, f32::INFINITY, f32::NAN, f32::MAX];
        assert_eq!(Dtype::F16.count_overflows(&values), 3, "70000, -1e9 and f32::MAX, not ∞ or NaN");
        assert_eq!(Dtype::Bf16.count_overflows(&values), 1, "f32::MAX rounds up past bf16's largest");
        assert_eq!(Dtype::F32.count_overflows(&values), 0);
        for d in Dtype::ALL {
            let x = 0.1f32;
            assert!(f64::from((d.round(x) - x).abs()) <= d.unit_roundoff() * 0.1, "{d}");
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
    }
}
