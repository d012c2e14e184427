//! The processor's caches as the operating system describes them (Linux sysfs), for the roofline's
//! memory levels and the benchmark's record of the machine.

use serde::{Deserialize, Serialize};

/// One data (or unified) cache level as seen from CPU 0.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheLevel {
    /// 1, 2, 3, …
    pub level: u8,
    /// `Data` or `Unified`.
    pub kind: String,
    /// The size of one instance, in bytes.
    pub size_bytes: u64,
    /// Logical CPUs that share one instance (1 or 2 for a private cache, every core for a shared one).
    pub shared_by: usize,
    /// Instances on the machine: `ceil(logical cores / shared_by)`.
    pub instances: usize,
}

impl CacheLevel {
    /// `L2 1 MiB ×2` — the level, one instance's size and how many there are.
    pub fn describe(&self) -> String {
        let size = if self.size_bytes >= 1 << 20 {
            format!("{} MiB", self.size_bytes >> 20)
        } else {
            format!("{} KiB", self.size_bytes >> 10)
        };
        format!("L{} {size} ×{}", self.level, self.instances)
    }
}

/// Where sysfs describes CPU 0's caches.
const SYSFS_CACHE: &str = "/sys/devices/system/cpu/cpu0/cache";

/// The data and unified caches of this machine, innermost first; empty when the OS does not say.
pub fn caches() -> Vec<CacheLevel> {
    caches_from(std::path::Path::new(SYSFS_CACHE), logical_cores())
}

/// Logical cores the process may run on.
pub fn logical_cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Reads `index*/{level,type,size,shared_cpu_list}` under `dir`.
pub fn caches_from(dir: &std::path::Path, cores: usize) -> Vec<CacheLevel> {
    let read = |index: &std::path::Path, name: &str| std::fs::read_to_string(index.join(name)).ok();
    let mut found: Vec<CacheLevel> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("index"))
        .filter_map(|e| {
            let index = e.path();
            let kind = read(&index, "type")?.trim().to_string();
            if kind == "Instruction" {
                return None;
            }
            let level = read(&index, "level")?.trim().parse().ok()?;
            let size_bytes = parse_size(read(&index, "size")?.trim())?;
            let shared_by = read(&index, "shared_cpu_list").and_then(|l| count_cpus(l.trim())).unwrap_or(1).max(1);
            Some(CacheLevel { level, kind, size_bytes, shared_by, instances: cores.div_ceil(shared_by).max(1) })
        })
        .collect();
    found.sort_by_key(|c| c.level);
    found.dedup_by_key(|c| c.level);
    found
}

/// `48K` → 49152, `32768K` → 33554432, `2M` → 2097152, `512` → 512.
pub fn parse_size(text: &str) -> Option<u64> {
    let (digits, scale) = match text.as_bytes().last()? {
        b'K' | b'k' => (&text[..text.len() - 1], 1 << 10),
        b'M' | b'm' => (&text[..text.len() - 1], 1 << 20),
        b'G' | b'g' => (&text[..text.len() - 1], 1 << 30),
        _ => (text, 1),
    };
    digits.trim().parse::<u64>().ok()?.checked_mul(scale)
}

/// `0-3,8,10-11` → 7 CPUs.
pub fn count_cpus(list: &str) -> Option<usize> {
    list.split(',').filter(|p| !p.trim().is_empty()).try_fold(0usize, |n, part| {
        let count = match part.trim().split_once('-') {
            Some((a, b)) => b.trim().parse::<usize>().ok()?.checked_sub(a.trim().parse::<usize>().ok()?)? + 1,
            None => part.trim().parse::<usize>().map(|_| 1).ok()?,
        };
        n.checked_add(count)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_cpu_lists_parse() {
        assert_eq!(parse_size("48K"), Some(48 << 10));
        assert_eq!(parse_size("32768K"), Some(32 << 20));
        assert_eq!(parse_size("2M"), Some(2 << 20));
        assert_eq!(parse_size("512"), Some(512));
        assert_eq!(parse_size("lots"), None);
        assert_eq!(count_cpus("0"), Some(1));
        assert_eq!(count_cpus("0-1"), Some(2));
        assert_eq!(count_cpus("0-3,8,10-11"), Some(7));
        assert_eq!(count_cpus("3-1"), None);
    }

    #[test]
    fn a_sysfs_tree_reads_as_levels_with_instances() {
        let dir = tempfile::tempdir().unwrap();
        let index = |i: u8, level: &str, kind: &str, size: &str, shared: &str| {
            let d = dir.path().join(format!("index{i}"));
            std::fs::create_dir_all(&d).unwrap();
            for (name, value) in [("level", level), ("type", kind), ("size", size), ("shared_cpu_list", shared)] {
                std::fs::write(d.join(name), format!("{value}\n")).unwrap();
            }
        };
        index(0, "1", "Data", "48K", "0,4");
        index(1, "1", "Instruction", "32K", "0,4");
        index(2, "2", "Unified", "2048K", "0,4");
        index(3, "3", "Unified", "105M", "0-7");
        let caches = caches_from(dir.path(), 8);
        let got: Vec<_> = caches.iter().map(|c| (c.level, c.size_bytes, c.shared_by, c.instances)).collect();
        assert_eq!(got, vec![(1, 48 << 10, 2, 4), (2, 2 << 20, 2, 4), (3, 105 << 20, 8, 1)]);
        assert_eq!(caches[1].describe(), "L2 2 MiB ×4");
        assert!(caches_from(&dir.path().join("missing"), 8).is_empty());
    }
}
