//! Shapes and sweeps for `--shape`: a fixed shape (`1024x1024x1024`, `4096x1000`, `16777216`, a
//! matmul layout `:NT`), or ranges in any dimension:
//!
//! - `64..2048`: powers of two from 64 to 2048 (each value twice the last);
//! - `64..2048:x1.5`: each value 1.5 times the last (rounded), up to 2048;
//! - `128..1024+128`: 128, 256, …, 1024;
//! - `64..1024x128x784`: the range in `M`, the other dimensions fixed; several ranged dimensions
//!   sweep their product.
//!
//! A range alone (`64..2048`) stands for square shapes of matmul (`n×n×n`) and for `N` of an
//! elementwise op. `--preset mlp` gives the seed models' products (see [`mlp_preset`]).

/// One dimension: a size, or a range of sizes.
#[derive(Clone, Debug, PartialEq)]
pub enum Dim {
    Fixed(usize),
    Range { from: usize, to: usize, step: Step },
}

/// How a range advances.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Step {
    /// Multiply by a factor (2 when none is given), rounding to the nearest size.
    Times(f64),
    /// Add a constant.
    Plus(usize),
}

/// What one `--shape` item says: dimensions (maybe ranged) and matmul's transposes.
#[derive(Clone, Debug, PartialEq)]
pub struct ShapeSpec {
    pub dims: Vec<Dim>,
    pub trans_a: bool,
    pub trans_b: bool,
}

/// One concrete shape.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Shape {
    pub dims: Vec<usize>,
    pub trans_a: bool,
    pub trans_b: bool,
}

/// The most shapes one run sweeps: every `--shape` item of every op together. An item is counted
/// before it is expanded, so a sweep of 4096³ shapes is refused, not built.
pub const MAX_SHAPES: u64 = 10_000;

impl Dim {
    /// The first (or only) size.
    pub fn first(&self) -> usize {
        match *self {
            Dim::Fixed(n) | Dim::Range { from: n, .. } => n,
        }
    }

    /// The size after `last`, or `None` past the end (or past the largest `usize`).
    fn after(&self, last: usize) -> Option<usize> {
        let Dim::Range { to, step, .. } = *self else { return None };
        let next = match step {
            Step::Times(f) => {
                let grown = (last as f64 * f).round();
                if grown >= usize::MAX as f64 {
                    return None;
                }
                (grown as usize).max(last.checked_add(1)?)
            }
            Step::Plus(s) => last.checked_add(s)?,
        };
        (next <= to).then_some(next)
    }

    /// Every size of the dimension, in order. Call it on a parsed dimension: [`parse`] refuses
    /// one of more than [`MAX_SHAPES`] sizes.
    pub fn sizes(&self) -> Vec<usize> {
        std::iter::successors(Some(self.first()), |&last| self.after(last)).collect()
    }

    /// How many sizes the dimension has, never counting past `cap + 1`.
    fn count_up_to(&self, cap: u64) -> u64 {
        match *self {
            Dim::Fixed(_) => 1,
            Dim::Range { from, to, step: Step::Plus(s) } => ((to - from) / s) as u64 + 1,
            Dim::Range { .. } => std::iter::successors(Some(self.first()), |&last| self.after(last))
                .take(usize::try_from(cap.saturating_add(1)).unwrap_or(usize::MAX))
                .count() as u64,
        }
    }

    fn is_range(&self) -> bool {
        matches!(self, Dim::Range { .. })
    }
}

impl ShapeSpec {
    /// How many shapes the item expands to, counted without expanding it: `None` when it is more
    /// than [`MAX_SHAPES`] and the exact number is not known (a 64-bit overflow, or a range by a
    /// factor, which is counted only up to the cap).
    pub fn count(&self) -> Option<u64> {
        let mut total: u64 = 1;
        for dim in &self.dims {
            let n = dim.count_up_to(MAX_SHAPES);
            total = total.checked_mul(n)?;
            if n > MAX_SHAPES && !matches!(dim, Dim::Range { step: Step::Plus(_), .. }) {
                return None;
            }
        }
        Some(total)
    }

    /// Every shape: the product of the dimensions' sizes, the first dimension slowest.
    pub fn expand(&self) -> Vec<Shape> {
        let mut shapes: Vec<Vec<usize>> = vec![Vec::new()];
        for dim in &self.dims {
            shapes = shapes
                .iter()
                .flat_map(|s| dim.sizes().into_iter().map(move |n| [s.clone(), vec![n]].concat()))
                .collect();
        }
        shapes.into_iter().map(|dims| Shape { dims, trans_a: self.trans_a, trans_b: self.trans_b }).collect()
    }

    /// Whether the item gives shapes to an op taking `rank` dimensions: one of that rank, or a
    /// lone range for matmul (its cubes).
    pub fn fits_rank(&self, rank: usize) -> bool {
        self.dims.len() == rank || (rank == 3 && self.dims.len() == 1 && self.dims[0].is_range())
    }

    /// The shapes for an op taking `rank` dimensions: those of that rank, or the square (cubic)
    /// shapes of a lone range.
    pub fn expand_for_rank(&self, rank: usize) -> Vec<Shape> {
        if self.dims.len() == rank {
            return self.expand();
        }
        if self.fits_rank(rank) {
            return self.dims[0]
                .sizes()
                .into_iter()
                .map(|n| Shape { dims: vec![n; 3], trans_a: self.trans_a, trans_b: self.trans_b })
                .collect();
        }
        Vec::new()
    }
}

/// Parses one `--shape` item; the error names the part it could not read.
pub fn parse(text: &str) -> Result<ShapeSpec, String> {
    let (body, trans_a, trans_b) = split_transpose(text)?;
    let mut dims = Vec::new();
    let mut rest = body;
    loop {
        let (dim, after) = parse_dim(rest, text)?;
        dims.push(dim);
        match after.chars().next() {
            None => break,
            Some('x' | 'X' | '×') => {
                let sep = after.chars().next().map_or(1, char::len_utf8);
                rest = &after[sep..];
            }
            Some(_) => return Err(format!("`{after}` in `{text}`: expected `x` between dimensions")),
        }
    }
    if dims.iter().any(|d| matches!(d, Dim::Fixed(0))) {
        return Err(format!("`{text}` has an empty dimension"));
    }
    if (trans_a || trans_b) && !(dims.len() == 3 || (dims.len() == 1 && dims[0].is_range())) {
        return Err(format!("`{text}`: only a matmul shape MxNxK takes transposes"));
    }
    let spec = ShapeSpec { dims, trans_a, trans_b };
    match spec.count() {
        Some(n) if n <= MAX_SHAPES => Ok(spec),
        count => Err(format!(
            "`{text}` sweeps {} shapes; one run sweeps at most {MAX_SHAPES}: narrow a range or take larger steps",
            count.map_or_else(|| format!("more than {MAX_SHAPES}"), |n| n.to_string())
        )),
    }
}

/// `…:NT` → (`…`, false, true); a `:x1.5` range factor is not a layout.
fn split_transpose(text: &str) -> Result<(&str, bool, bool), String> {
    if let Some((body, flags)) = text.rsplit_once(':')
        && !flags.starts_with(['x', 'X'])
    {
        let f = flags.to_ascii_uppercase();
        if f.len() == 2 && f.chars().all(|c| c == 'N' || c == 'T') {
            return Ok((body, f.starts_with('T'), f.ends_with('T')));
        }
        return Err(format!("`{flags}` in `{text}`: transposes are two letters of N and T, e.g. 64x128x784:NT"));
    }
    Ok((text, false, false))
}

/// One dimension at the start of `s`; returns it and what follows.
fn parse_dim<'a>(s: &'a str, whole: &str) -> Result<(Dim, &'a str), String> {
    let (from, rest) = number(s).ok_or_else(|| {
        format!(
            "`{s}` in `{whole}`: expected a size; shapes look like 1024x1024x1024, 4096x1000, 64..2048, 128..1024+128"
        )
    })?;
    let Some(rest) = rest.strip_prefix("..") else { return Ok((Dim::Fixed(from), rest)) };
    let (to, rest) =
        number(rest).ok_or_else(|| format!("`..{rest}` in `{whole}`: a range needs an end, e.g. 64..2048"))?;
    if to < from || from == 0 {
        return Err(format!("`{from}..{to}` in `{whole}`: a range runs from a positive size up to a larger one"));
    }
    if let Some(rest) = rest.strip_prefix(":x").or_else(|| rest.strip_prefix(":X")) {
        let end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        let factor: f64 = rest[..end].parse().ok().filter(|f: &f64| f.is_finite() && *f > 1.0).ok_or_else(|| {
            format!("`:x{}` in `{whole}`: the factor must be a number above 1, e.g. :x1.5", &rest[..end])
        })?;
        return Ok((Dim::Range { from, to, step: Step::Times(factor) }, &rest[end..]));
    }
    if let Some(rest) = rest.strip_prefix('+') {
        let (step, rest) = number(rest)
            .filter(|(s, _)| *s > 0)
            .ok_or_else(|| format!("`+{rest}` in `{whole}`: the step must be a positive size, e.g. 128..1024+128"))?;
        return Ok((Dim::Range { from, to, step: Step::Plus(step) }, rest));
    }
    Ok((Dim::Range { from, to, step: Step::Times(2.0) }, rest))
}

/// A leading decimal number and what follows it.
fn number(s: &str) -> Option<(usize, &str)> {
    let end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    Some((s[..end].parse().ok()?, &s[end..]))
}

/// The seed models' matmul products at the training batch of 64: for each layer `in → out`, the
/// forward `x·Wᵀ` (`64×out×in`, NT), the weight gradient `dzᵀ·x` (`out×in×64`, TN) and, past the
/// first layer, the input gradient `dz·W` (`64×in×out`, NN); for 784-128-10 and 784-512-256-10.
pub fn mlp_preset() -> Vec<Shape> {
    let batch = 64;
    let mut shapes: Vec<Shape> = Vec::new();
    for widths in [&[784, 128, 10][..], &[784, 512, 256, 10][..]] {
        for (layer, w) in widths.windows(2).enumerate() {
            let (inputs, outputs) = (w[0], w[1]);
            let mut add = |dims: [usize; 3], trans_a, trans_b| {
                let shape = Shape { dims: dims.to_vec(), trans_a, trans_b };
                if !shapes.contains(&shape) {
                    shapes.push(shape);
                }
            };
            add([batch, outputs, inputs], false, true);
            add([outputs, inputs, batch], true, false);
            if layer > 0 {
                add([batch, inputs, outputs], false, false);
            }
        }
    }
    shapes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sizes(text: &str) -> Vec<Vec<usize>> {
        parse(text).unwrap().expand().into_iter().map(|s| s.dims).collect()
    }

    #[test]
    fn fixed_shapes_parse_as_before() {
        assert_eq!(sizes("1024x1024x1024"), vec![vec![1024, 1024, 1024]]);
        assert_eq!(sizes("16777216"), vec![vec![16777216]]);
        assert_eq!(sizes("4096×1000"), vec![vec![4096, 1000]]);
        let nt = parse("64x128x784:NT").unwrap();
        assert_eq!((nt.trans_a, nt.trans_b), (false, true));
    }

    #[test]
    fn ranges_step_by_doubling_a_factor_or_a_constant() {
        assert_eq!(sizes("64..1024").concat(), vec![64, 128, 256, 512, 1024]);
        assert_eq!(sizes("64..300:x1.5").concat(), vec![64, 96, 144, 216]);
        assert_eq!(sizes("128..640+128").concat(), vec![128, 256, 384, 512, 640]);
        assert_eq!(sizes("100..100").concat(), vec![100]);
        assert_eq!(
            sizes("64..128x10x2..4"),
            vec![vec![64, 10, 2], vec![64, 10, 4], vec![128, 10, 2], vec![128, 10, 4]]
        );
        let spec = parse("64..256:NT").unwrap();
        let cubes: Vec<_> = spec.expand_for_rank(3).into_iter().map(|s| (s.dims, s.trans_b)).collect();
        assert_eq!(cubes, vec![(vec![64; 3], true), (vec![128; 3], true), (vec![256; 3], true)]);
        assert!(parse("1000").unwrap().expand_for_rank(3).is_empty(), "a plain size is not a cube");
    }

    #[test]
    fn malformed_ranges_name_the_part_they_could_not_read() {
        let err = |t: &str| parse(t).unwrap_err();
        assert!(err("64..").contains("`..` in `64..`: a range needs an end"), "{}", err("64.."));
        assert!(err("2048..64").contains("`2048..64`"));
        assert!(err("64..2048:x0.5").contains("`:x0.5` in `64..2048:x0.5`"));
        assert!(err("64..2048+0").contains("`+0` in `64..2048+0`"));
        assert!(err("64..2048:NX").contains("`NX` in"));
        assert!(err("64..2048:XY").contains("the factor must be a number above 1"));
        assert!(err("64y128").contains("`y128` in `64y128`"));
        assert!(err("abc").contains("`abc` in `abc`: expected a size"));
        assert!(err("0x3").contains("empty dimension"));
        assert!(err("100:TT").contains("only a matmul shape"));
    }

    #[test]
    fn sweeps_are_counted_before_they_are_built_and_never_cut_short() {
        assert_eq!(sizes("1..5000+1").len(), 5000, "every size asked for (4096 once was a silent cap)");
        assert_eq!(parse("1..5000+1").unwrap().count(), Some(5000));
        assert_eq!(parse("64..2048:x1.5x3x1..4+1").unwrap().count(), Some(9 * 4));
        let err = parse("1..4096+1x1..4096+1x1..4096+1").unwrap_err();
        assert!(err.contains("sweeps 68719476736 shapes; one run sweeps at most 10000"), "{err}");
        let err = parse("1..18446744073709551615+1x1..18446744073709551615+1").unwrap_err();
        assert!(err.contains("sweeps more than 10000 shapes"), "{err}");
        let err = parse("1..18446744073709551615:x1.0001").unwrap_err();
        assert!(err.contains("sweeps more than 10000 shapes"), "{err}");
        let top = usize::MAX;
        assert_eq!(
            sizes(&format!("{}..{top}+7", top - 10)).concat(),
            vec![top - 10, top - 3],
            "no overflow at the top"
        );
        assert_eq!(sizes(&format!("{}..{top}", top / 2 + 1)).concat(), vec![top / 2 + 1]);
    }

    #[test]
    fn the_mlp_preset_holds_every_product_of_both_models() {
        let shapes = mlp_preset();
        let has = |d: [usize; 3], ta, tb| shapes.contains(&Shape { dims: d.to_vec(), trans_a: ta, trans_b: tb });
        assert!(has([64, 128, 784], false, true) && has([128, 784, 64], true, false));
        assert!(has([64, 10, 128], false, true) && has([10, 128, 64], true, false) && has([64, 128, 10], false, false));
        assert!(
            has([64, 512, 784], false, true) && has([64, 256, 512], false, true) && has([64, 512, 256], false, false)
        );
        assert_eq!(shapes.len(), 5 + 8);
    }
}
