//! Parsing the CLI's values: shapes (`1024x1024x1024`), op and backend lists.

use kernelab_tensor::{Error, Op, Result};

/// A benchmark shape: dimensions, and for matmul which operands are transposed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShapeArg {
    pub dims: Vec<usize>,
    pub trans_a: bool,
    pub trans_b: bool,
}

/// `1024x1024x1024` → `[1024, 1024, 1024]`; `16777216` → `[16777216]`; `4096x1000` → `[4096, 1000]`;
/// a matmul shape may end in `:NT` (or `:TN`, `:TT`, `:NN`): `A` as is, `B` transposed.
pub fn parse_shape(text: &str) -> std::result::Result<ShapeArg, String> {
    let (dims_text, flags) = match text.split_once(':') {
        Some((d, f)) => (d, Some(f)),
        None => (text, None),
    };
    let (trans_a, trans_b) = match flags.map(|f| f.to_ascii_uppercase()) {
        None => (false, false),
        Some(f) if f.len() == 2 && f.chars().all(|c| c == 'N' || c == 'T') => (f.starts_with('T'), f.ends_with('T')),
        Some(f) => return Err(format!("`{f}` in `{text}`: transposes are two letters of N and T, e.g. 64x128x784:NT")),
    };
    let dims: Vec<usize> = dims_text
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
    if (trans_a || trans_b) && dims.len() != 3 {
        return Err(format!("`{text}`: only a matmul shape MxNxK takes transposes"));
    }
    Ok(ShapeArg { dims, trans_a, trans_b })
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
pub fn shapes_for(op: Op, given: &[ShapeArg]) -> Result<Vec<ShapeArg>> {
    if given.is_empty() {
        return Ok(default_shapes(op)
            .into_iter()
            .map(|dims| ShapeArg { dims, trans_a: false, trans_b: false })
            .collect());
    }
    let rank = default_shapes(op)[0].len();
    let fitting: Vec<_> = given.iter().filter(|s| s.dims.len() == rank).cloned().collect();
    if fitting.is_empty() {
        let form = ["N", "RxC", "MxNxK"][rank - 1];
        return Err(Error::BadShape {
            op: op.name(),
            shape: given[0].dims.clone(),
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
        let dims = |t: &str| parse_shape(t).unwrap().dims;
        assert_eq!(dims("1024x1024x1024"), vec![1024, 1024, 1024]);
        assert_eq!(dims("16777216"), vec![16777216]);
        assert_eq!(dims("4096x1000"), vec![4096, 1000]);
        assert!(parse_shape("4096xx1000").is_err());
        assert!(parse_shape("0x3").unwrap_err().contains("empty dimension"));
        let nt = parse_shape("64x128x784:NT").unwrap();
        assert_eq!((nt.dims, nt.trans_a, nt.trans_b), (vec![64, 128, 784], false, true));
        assert!(parse_shape("64x128x784:TX").unwrap_err().contains("two letters of N and T"));
        assert!(parse_shape("100:TT").unwrap_err().contains("only a matmul shape"));
    }

    #[test]
    fn shapes_are_matched_to_ops_by_rank() {
        let given = vec![parse_shape("64x64x64").unwrap(), parse_shape("100").unwrap()];
        assert_eq!(shapes_for(Op::Matmul, &given).unwrap()[0].dims, vec![64, 64, 64]);
        assert_eq!(shapes_for(Op::Relu, &given).unwrap()[0].dims, vec![100]);
        let err = shapes_for(Op::Softmax, &given).unwrap_err().to_string();
        assert!(err.contains("no --shape fits softmax, which takes RxC"), "{err}");
    }
}
