//! The CPU's measured roofline: the FMA peak (one thread and every logical core) and the bandwidth
//! of every memory level (L1, L2, L3 from the OS's cache description, then DRAM), each with one
//! thread and with every core.
//!
//! It is measured once per machine and build optimization level and kept in a cache file
//! ([`cache`]) keyed by the CPU model, the core count, the kernel release and the opt-level, so
//! that two runs on one machine hold their rows against the same ceilings and an unoptimized
//! (debug) build's far lower ceilings never reach an optimized build; `kernelab devices
//! --remeasure` renews it. The thread pool's size
//! (`--threads`) never changes what is measured.

pub mod cache;
pub mod probe;

use kernelab_tensor::{MemoryLevel, Roofline};

use crate::topology::{self, CacheLevel};

/// Bumped whenever the probes change what they measure, so that older cache files are re-measured.
pub const PROBE_VERSION: u32 = 6;

/// The opt-level this crate (and so the probes) was built at: `0` for a debug build, `3` for a
/// release build (cargo's `OPT_LEVEL`, recorded by the build script).
pub const OPT_LEVEL: &str = env!("KERNELAB_OPT_LEVEL");

/// What a roofline's description says of the build that measured it: at opt-level `0` a warning
/// that the ceilings are an unoptimized build's, else the level.
pub fn build_note(opt_level: &str) -> String {
    if opt_level == "0" {
        "UNOPTIMIZED BUILD (opt-level 0, a debug build): these ceilings are far below an optimized build's \
         and hold for unoptimized builds only; build with --release to measure the machine"
            .into()
    } else {
        format!("measured by a build at opt-level {opt_level}")
    }
}

/// Sizes assumed when the OS describes no caches (a container without sysfs, another OS).
fn assumed_caches(cores: usize) -> Vec<CacheLevel> {
    let level = |level, size_bytes, shared_by: usize| CacheLevel {
        level,
        kind: "Unified".into(),
        size_bytes,
        shared_by,
        instances: cores.div_ceil(shared_by),
    };
    vec![level(1, 32 << 10, 1), level(2, 1 << 20, 1), level(3, 8 << 20, cores)]
}

/// Measures the roofline now (a few seconds): every probe in [`probe`].
pub fn measure() -> Roofline {
    let cores = topology::logical_cores();
    let described = topology::caches();
    let caches = if described.is_empty() { assumed_caches(cores) } else { described.clone() };
    let mut levels: Vec<MemoryLevel> = caches
        .iter()
        .map(|c| {
            let one = c.size_bytes;
            let all = c.size_bytes.saturating_mul(c.instances as u64);
            // Half of the level, so the working set stays clear of its edge; beyond the level
            // below, so it is really this level that serves it.
            MemoryLevel {
                name: format!("L{}", c.level),
                capacity_one_thread: Some(one),
                capacity_all: Some(all),
                gbps_one_thread: probe::stream_gbps(1, one / 2),
                gbps_all: probe::stream_gbps(cores, all / 2 / cores as u64),
            }
        })
        .collect();
    // Main memory: far beyond every cache (four times the outermost, at least 256 MiB).
    let outer = caches.iter().map(|c| c.size_bytes.saturating_mul(c.instances as u64)).max().unwrap_or(0);
    let dram = (4 * outer).max(256 << 20);
    levels.push(MemoryLevel {
        name: "DRAM".into(),
        capacity_one_thread: None,
        capacity_all: None,
        gbps_one_thread: probe::stream_gbps(1, dram),
        gbps_all: probe::stream_gbps(cores, dram / cores as u64),
    });
    let sizes = if described.is_empty() { "assumed (the OS describes none)" } else { "from sysfs" };
    Roofline {
        threads: cores,
        peak_gflops: probe::fma_peak_gflops(cores),
        peak_gflops_one_thread: probe::fma_peak_gflops(1),
        levels,
        how: format!(
            "{}; FMA: {} independent {} FMA chains per thread, best of 3; bandwidth: the best of read, copy, add, \
             update and triple-update streams (bytes read + written), their arrays allocated apart and skewed in one buffer, \
             over half of each level (cache sizes {sizes}) and {} MiB for DRAM, best of 9; {cores} threads = every logical core",
            build_note(OPT_LEVEL),
            probe::CHAINS,
            probe::fma_isa(),
            dram >> 20
        ),
        peaks: narrow_peaks(cores),
    }
}

/// The compute peaks of the narrow dtypes this CPU has a probe for, with `cores` threads and one:
/// the hook for a bf16 dot-product probe (a `vdpbf16ps` loop, like [`probe::fma_peak_gflops`]),
/// which adds `Dtype::Bf16` here. None yet: narrow rows are held against the FMA peak, and their
/// ceiling says so.
pub fn narrow_peaks(cores: usize) -> std::collections::BTreeMap<kernelab_tensor::Dtype, kernelab_tensor::Peak> {
    let _ = cores;
    std::collections::BTreeMap::new()
}

/// This process's copy of the machine's roofline, shared by every CPU device.
static MACHINE: std::sync::Mutex<Option<Roofline>> = std::sync::Mutex::new(None);

/// The machine's roofline: from this process's copy, else the cache file, else measured now.
pub fn machine() -> Roofline {
    let mut held = MACHINE.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    held.get_or_insert_with(|| cache::load_or_measure(false)).clone()
}

/// Measures the roofline again, whatever the cache holds, and keeps the result.
pub fn renew() -> Roofline {
    let fresh = cache::load_or_measure(true);
    *MACHINE.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(fresh.clone());
    fresh
}
