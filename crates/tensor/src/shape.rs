//! Shapes: up to four dimensions, row-major, always contiguous.

use std::fmt;

use crate::{Error, Result};

/// The most dimensions a tensor may have.
pub const MAX_RANK: usize = 4;

/// The dimensions of a row-major, contiguous tensor; a rank-0 shape is a scalar with one element.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Shape {
    dims: [usize; MAX_RANK],
    rank: u8,
}

impl Shape {
    /// A shape from its dimensions; more than [`MAX_RANK`] of them is an error.
    pub fn new(dims: &[usize]) -> Result<Self> {
        if dims.len() > MAX_RANK {
            return Err(Error::BadShape {
                op: "shape",
                shape: dims.to_vec(),
                why: format!("at most {MAX_RANK} dimensions are supported"),
            });
        }
        let mut all = [1; MAX_RANK];
        all[..dims.len()].copy_from_slice(dims);
        Ok(Self { dims: all, rank: dims.len() as u8 })
    }

    /// The shape of a scalar (rank 0, one element).
    pub const fn scalar() -> Self {
        Self { dims: [1; MAX_RANK], rank: 0 }
    }

    /// A rank-1 shape of `n` elements.
    pub const fn vector(n: usize) -> Self {
        Self { dims: [n, 1, 1, 1], rank: 1 }
    }

    /// A rank-2 shape of `rows × cols`.
    pub const fn matrix(rows: usize, cols: usize) -> Self {
        Self { dims: [rows, cols, 1, 1], rank: 2 }
    }

    pub fn dims(&self) -> &[usize] {
        &self.dims[..self.rank as usize]
    }

    pub fn rank(&self) -> usize {
        self.rank as usize
    }

    /// The number of elements: the product of the dimensions.
    pub fn numel(&self) -> usize {
        self.dims().iter().product()
    }

    /// The shape read as a matrix for row-wise ops: `(product of all but the last dim, last dim)`.
    /// A scalar or a vector of `n` is one row of `n`.
    pub fn rows_cols(&self) -> (usize, usize) {
        match self.dims().split_last() {
            None => (1, 1),
            Some((&cols, lead)) => (lead.iter().product(), cols),
        }
    }

    /// The shape as `(rows, cols)` when it is exactly rank 2, else a [`Error::BadShape`] for `op`.
    pub fn as_matrix(&self, op: &'static str) -> Result<(usize, usize)> {
        match *self.dims() {
            [r, c] => Ok((r, c)),
            _ => Err(Error::BadShape { op, shape: self.dims().to_vec(), why: "expected a matrix (rank 2)".into() }),
        }
    }
}

impl fmt::Display for Shape {
    /// `[64, 784]`, `[]` for a scalar.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.dims())
    }
}

impl fmt::Debug for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_rows() {
        let s = Shape::new(&[2, 3, 5]).unwrap();
        assert_eq!(s.numel(), 30);
        assert_eq!(s.rows_cols(), (6, 5));
        assert_eq!(Shape::scalar().numel(), 1);
        assert_eq!(Shape::vector(7).rows_cols(), (1, 7));
        assert_eq!(s.to_string(), "[2, 3, 5]");
    }

    #[test]
    fn rank_five_is_refused() {
        let err = Shape::new(&[1, 2, 3, 4, 5]).unwrap_err();
        assert!(err.to_string().contains("at most 4 dimensions"), "{err}");
    }
}
