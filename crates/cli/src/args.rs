//! Parsing the CLI's values: shapes (`1024x1024x1024`), op and backend lists.

use kernelab_tensor::{Error, Op, Result};

use crate::sweep::{Shape, ShapeSpec};

/// Splits a comma-separated list, dropping empty items.
pub fn list(items: &[String]) -> Vec<String> {
    items.iter().flat_map(|s| s.split(',')).map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect()
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
/// defaults when none were given; an error when shapes were given and none fits.
pub fn shapes_for(op: Op, given: &[ShapeSpec]) -> Result<Vec<Shape>> {
    if given.is_empty() {
        return Ok(default_shapes(op).into_iter().map(|dims| Shape { dims, trans_a: false, trans_b: false }).collect());
    }
    let rank = default_shapes(op)[0].len();
    let fitting: Vec<Shape> = given.iter().flat_map(|s| s.expand_for_rank(rank)).collect();
    if fitting.is_empty() {
        let form = ["N", "RxC", "MxNxK"][rank - 1];
        return Err(Error::BadShape {
            op: op.name(),
            shape: given[0].expand().first().map(|s| s.dims.clone()).unwrap_or_default(),
            why: format!("no --shape fits {op}, which takes {form}"),
        });
    }
    Ok(fitting)
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
}
