//! Parsing the CLI's values: shapes (`1024x1024x1024`), op and backend lists.

use kernelab_tensor::{Error, Op, Result};

/// `1024x1024x1024` → `[1024, 1024, 1024]`; `16777216` → `[16777216]`; `4096x1000` → `[4096, 1000]`.
pub fn parse_shape(text: &str) -> std::result::Result<Vec<usize>, String> {
    let dims: Vec<usize> = text
        .split(['x', 'X', '×'])
        .map(|d| {
            d.trim()
                .parse::<usize>()
                .map_err(|_| format!("`{text}` is not a shape like 1024x1024x1024, 4096x1000 or 16777216"))
        })
        .collect::<std::result::Result<_, _>>()?;
    if dims.contains(&0) {
        return Err(format!("`{text}` has an empty dimension"));
    }
    Ok(dims)
}

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

/// The given shapes that fit `op` (by rank), or an error when shapes were given and none fits.
pub fn shapes_for(op: Op, given: &[Vec<usize>]) -> Result<Vec<Vec<usize>>> {
    if given.is_empty() {
        return Ok(default_shapes(op));
    }
    let rank = default_shapes(op)[0].len();
    let fitting: Vec<_> = given.iter().filter(|s| s.len() == rank).cloned().collect();
    if fitting.is_empty() {
        let form = ["N", "RxC", "MxNxK"][rank - 1];
        return Err(Error::BadShape {
            op: op.name(),
            shape: given[0].clone(),
            why: format!("no --shape fits {op}, which takes {form}"),
        });
    }
    Ok(fitting)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_parse() {
        assert_eq!(parse_shape("1024x1024x1024").unwrap(), vec![1024, 1024, 1024]);
        assert_eq!(parse_shape("16777216").unwrap(), vec![16777216]);
        assert_eq!(parse_shape("4096x1000").unwrap(), vec![4096, 1000]);
        assert!(parse_shape("4096xx1000").is_err());
        assert!(parse_shape("0x3").unwrap_err().contains("empty dimension"));
    }

    #[test]
    fn shapes_are_matched_to_ops_by_rank() {
        let given = vec![vec![64, 64, 64], vec![100]];
        assert_eq!(shapes_for(Op::Matmul, &given).unwrap(), vec![vec![64, 64, 64]]);
        assert_eq!(shapes_for(Op::Relu, &given).unwrap(), vec![vec![100]]);
        let err = shapes_for(Op::Softmax, &given).unwrap_err().to_string();
        assert!(err.contains("no --shape fits softmax, which takes RxC"), "{err}");
    }
}
