//! The IDX format of MNIST-style datasets: a big-endian header (`0, 0, type, ndims`, then one u32
//! per dimension) followed by the values. Files may be raw or gzip-compressed (`.gz`, detected by
//! content, not by name).

use std::io::Read;
use std::path::Path;

use kernelab_tensor::{Error, Result};

/// The IDX type code of unsigned bytes, the only one MNIST-style data uses.
const U8: u8 = 0x08;

/// An IDX array of bytes.
#[derive(Clone, Debug, PartialEq)]
pub struct Idx {
    pub dims: Vec<usize>,
    pub data: Vec<u8>,
}

fn format_error(path: &Path, why: String) -> Error {
    Error::Format { path: path.display().to_string(), why }
}

/// The most bytes a gzip-compressed IDX file may expand to (a "gzip bomb" stops here with an
/// error instead of filling the memory): 4 GiB, beyond any MNIST-format dataset.
pub const MAX_DECOMPRESSED: u64 = 4 << 30;

/// Reads a whole file, gunzipping it when it starts with the gzip magic bytes.
fn read_maybe_gz(path: &Path) -> Result<Vec<u8>> {
    read_maybe_gz_up_to(path, MAX_DECOMPRESSED)
}

/// [`read_maybe_gz`] with the cap on the decompressed size given.
pub fn read_maybe_gz_up_to(path: &Path, cap: u64) -> Result<Vec<u8>> {
    let io = |source| Error::Io { path: path.display().to_string(), source };
    if path.is_dir() {
        return Err(format_error(path, "is a directory, not an IDX file".into()));
    }
    let raw = std::fs::read(path).map_err(io)?;
    if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(raw.as_slice())
            .take(cap + 1)
            .read_to_end(&mut out)
            .map_err(|e| format_error(path, format!("corrupt gzip stream: {e}")))?;
        if out.len() as u64 > cap {
            return Err(format_error(
                path,
                format!("expands past {cap} bytes when decompressed; not an MNIST-format file (a gzip bomb?)"),
            ));
        }
        Ok(out)
    } else {
        Ok(raw)
    }
}

/// Parses IDX bytes read from `path` (named in errors), expecting `rank` dimensions of u8.
pub fn parse(bytes: &[u8], rank: usize, path: &Path) -> Result<Idx> {
    let expected_magic = 0x0800 | rank as u32;
    if bytes.len() < 4 {
        return Err(format_error(path, format!("truncated: {} bytes, not even an IDX header", bytes.len())));
    }
    let magic = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
    if bytes[0] != 0 || bytes[1] != 0 || bytes[2] != U8 || bytes[3] as usize != rank {
        return Err(format_error(
            path,
            format!(
                "bad magic number 0x{magic:08x}, expected 0x{expected_magic:08x} (IDX, u8 values, {rank} dimensions)"
            ),
        ));
    }
    let header = 4 + 4 * rank;
    if bytes.len() < header {
        return Err(format_error(path, format!("truncated header: {} bytes, need {header}", bytes.len())));
    }
    let dims: Vec<usize> =
        bytes[4..header].chunks_exact(4).map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize).collect();
    let len = dims.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d));
    let len = len.ok_or_else(|| format_error(path, format!("dimensions {dims:?} overflow")))?;
    let data = &bytes[header..];
    if data.len() != len {
        let what = if data.len() < len { "truncated" } else { "too long" };
        return Err(format_error(
            path,
            format!("{what}: the header promises {dims:?} = {len} values, the file holds {}", data.len()),
        ));
    }
    Ok(Idx { dims, data: data.to_vec() })
}

/// Reads an IDX file of u8 values with `rank` dimensions, raw or gzipped.
pub fn read(path: &Path, rank: usize) -> Result<Idx> {
    parse(&read_maybe_gz(path)?, rank, path)
}

/// Writes an IDX file of u8 values (used to make test fixtures and small datasets).
pub fn write(path: &Path, dims: &[usize], data: &[u8]) -> Result<()> {
    let mut bytes = vec![0, 0, U8, dims.len() as u8];
    for &d in dims {
        bytes.extend_from_slice(&(d as u32).to_be_bytes());
    }
    bytes.extend_from_slice(data);
    std::fs::write(path, bytes).map_err(|source| Error::Io { path: path.display().to_string(), source })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(rank: u8, dims: &[u32]) -> Vec<u8> {
        let mut b = vec![0, 0, 8, rank];
        dims.iter().for_each(|d| b.extend_from_slice(&d.to_be_bytes()));
        b
    }

    #[test]
    fn parses_a_well_formed_file() {
        let mut bytes = header(3, &[2, 2, 3]);
        bytes.extend(0..12u8);
        let idx = parse(&bytes, 3, Path::new("x")).unwrap();
        assert_eq!(idx.dims, vec![2, 2, 3]);
        assert_eq!(idx.data, (0..12).collect::<Vec<u8>>());
    }

    #[test]
    fn bad_magic_and_truncation_are_named() {
        let p = Path::new("images.idx");
        let err = parse(&header(1, &[3]), 3, p).unwrap_err().to_string();
        assert!(err.contains("images.idx: bad magic number 0x00000801, expected 0x00000803"), "{err}");
        let mut short = header(1, &[5]);
        short.extend([1, 2, 3]);
        let err = parse(&short, 1, p).unwrap_err().to_string();
        assert!(err.contains("truncated: the header promises [5] = 5 values, the file holds 3"), "{err}");
        assert!(parse(&[0, 0], 1, p).unwrap_err().to_string().contains("not even an IDX header"));
        assert!(parse(&[0, 0, 8, 3, 0, 0], 3, p).unwrap_err().to_string().contains("truncated header"));
    }
}
