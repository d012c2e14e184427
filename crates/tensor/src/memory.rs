//! How much memory this machine can still give: the guard that a size from the command line (a
//! benchmark shape, a model spec) is checked against before anything is allocated, so that a size
//! too large is a clear error with the numbers instead of an allocator's abort.

/// Bytes the system can still give without swapping, from `MemAvailable` in `/proc/meminfo`
/// (`None` where it does not say, e.g. on a system without `/proc`).
pub fn available() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    parse_available(&info)
}

/// `MemAvailable:  N kB` of a `/proc/meminfo` text, in bytes.
fn parse_available(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemAvailable:"))?;
    line.split_whitespace().nth(1)?.parse::<u64>().ok()?.checked_mul(1024)
}

/// Bytes as a person reads them: `381.6 GB`, `12.0 MB`, `512 bytes` (decimal units).
pub fn human(bytes: u64) -> String {
    let b = bytes as f64;
    match bytes {
        0..1_000_000 => format!("{bytes} bytes"),
        1_000_000..1_000_000_000 => format!("{:.1} MB", b / 1e6),
        _ => format!("{:.1} GB", b / 1e9),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_mem_available_in_bytes() {
        let info = "MemTotal:       24000000 kB\nMemFree:  100 kB\nMemAvailable:   21000000 kB\n";
        assert_eq!(parse_available(info), Some(21_000_000 * 1024));
        assert_eq!(parse_available("MemTotal: 5 kB\n"), None);
        assert_eq!(parse_available("MemAvailable: lots kB\n"), None);
    }

    #[test]
    fn sizes_read_in_decimal_units() {
        assert_eq!(human(512), "512 bytes");
        assert_eq!(human(12_000_000), "12.0 MB");
        assert_eq!(human(381_600_000_000), "381.6 GB");
    }
}
