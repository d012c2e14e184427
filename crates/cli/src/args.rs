//! Parsing the CLI's values: shapes (`1024x1024x1024`), op and backend lists.

use kernelab_tensor::{Error, Op, Result};

use crate::sweep::{self, Shape, ShapeSpec};

/// Splits a comma-separated list, dropping empty items.
pub fn list(items: &[String]) -> Vec<String> {
    items.iter().flat_map(|s| s.split(',')).map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect()
}

/// Parses storage dtype names (`--dtype f32,bf16,f16`); none given is f32 alone. An unknown name
/// is refused listing the known ones.
pub fn dtypes(items: &[String]) -> Result<Vec<kernelab_tensor::Dtype>> {
    let mut dtypes: Vec<kernelab_tensor::Dtype> =
        list(items).iter().map(|name| kernelab_tensor::Dtype::parse(name)).collect::<Result<_>>()?;
    if dtypes.is_empty() {
        dtypes.push(kernelab_tensor::Dtype::F32);
    }
    dtypes.dedup();
    Ok(dtypes)
}

/// Parses op names.
pub fn ops(items: &[String]) -> Result<Vec<Op>> {
    list(items).iter().map(|name| name.parse::<Op>()).collect()
}

/// The shapes the benchmark uses for `op` when none is given.
pub fn default_shapes(op: Op) -> Vec<Vec<usize>> {
    use kernelab_tensor::OpFamily;
    match op.family() {
        OpFamily::Matmul => vec![vec![256, 256, 256], vec![1024, 1024, 1024]],
        OpFamily::Rowwise => vec![vec![256, 1000], vec![4096, 1000]],
        OpFamily::Elementwise => vec![vec![1 << 20], vec![1 << 24]],
    }
}

/// The given shapes that fit `op` (by rank; a lone range is a square matmul), or the op's
/// defaults when none were given; an error when shapes were given and none fits, when a layout
/// (`:NT`) is given to an op other than matmul, or when they are more than [`sweep::MAX_SHAPES`].
pub fn shapes_for(op: Op, given: &[ShapeSpec]) -> Result<Vec<Shape>> {
    if given.is_empty() {
        return Ok(default_shapes(op).into_iter().map(|dims| Shape { dims, trans_a: false, trans_b: false }).collect());
    }
    let rank = default_shapes(op)[0].len();
    let fitting: Vec<&ShapeSpec> = given.iter().filter(|s| s.fits_rank(rank)).collect();
    let bad = |why: String, spec: &ShapeSpec| Error::BadShape {
        op: op.name(),
        shape: spec.dims.iter().map(sweep::Dim::first).collect(),
        why,
    };
    if fitting.is_empty() {
        let form = ["N", "RxC", "MxNxK"][rank - 1];
        return Err(bad(format!("no --shape fits {op}, which takes {form}"), &given[0]));
    }
    if let Some(spec) =
        fitting.iter().find(|s| op.family() != kernelab_tensor::OpFamily::Matmul && (s.trans_a || s.trans_b))
    {
        return Err(bad(
            format!(
                "a layout (:NT, :TN, :TT) is for matmul only, and {op} would ignore it: give {op} a --shape without one"
            ),
            spec,
        ));
    }
    let total = fitting.iter().try_fold(0u64, |sum, s| s.count().and_then(|n| sum.checked_add(n)));
    if total.is_none_or(|n| n > sweep::MAX_SHAPES) {
        return Err(bad(
            format!(
                "the --shape items give {op} {} shapes; one run sweeps at most {}",
                total.map_or_else(|| "too many".to_string(), |n| n.to_string()),
                sweep::MAX_SHAPES
            ),
            fitting[0],
        ));
    }
    Ok(fitting.iter().flat_map(|s| s.expand_for_rank(rank)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sweep;

    #[test]
    fn shapes_are_matched_to_ops_by_rank() {
        let given = vec![sweep::parse("64x64x64").unwrap(), sweep::parse("100").unwrap()];
        assert_eq!(shapes_for(Op::Matmul, &given).unwrap()[0].dims, vec![64, 64, 64]);
        assert_eq!(shapes_for(Op::Relu, &given).unwrap()[0].dims, vec![100]);
        let err = shapes_for(Op::Softmax, &given).unwrap_err().to_string();
        assert!(err.contains("no --shape fits softmax, which takes RxC"), "{err}");
    }

    #[test]
    fn a_layout_is_for_matmul_only() {
        let given = vec![sweep::parse("64..256:NT").unwrap()];
        assert_eq!(shapes_for(Op::Matmul, &given).unwrap().len(), 3);
        let err = shapes_for(Op::Relu, &given).unwrap_err().to_string();
        assert!(err.contains("a layout (:NT, :TN, :TT) is for matmul only, and relu would ignore it"), "{err}");
    }

    #[test]
    fn the_shapes_of_all_items_together_are_bounded() {
        let given = vec![sweep::parse("1..6000+1").unwrap(), sweep::parse("1..6000+1").unwrap()];
        let err = shapes_for(Op::Relu, &given[..1]).map(|s| s.len());
        assert_eq!(err.unwrap(), 6000, "every size asked for, none dropped");
        let err = shapes_for(Op::Relu, &given).unwrap_err().to_string();
        assert!(err.contains("give relu 12000 shapes; one run sweeps at most 10000"), "{err}");
    }
}
