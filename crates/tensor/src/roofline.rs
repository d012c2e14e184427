//! A device's measured roofline: the FMA peak and the bandwidth of every level of its memory
//! hierarchy, and the ceiling a kernel is held against.
//!
//! A kernel that runs `F` flops and moves `B` bytes in time `t` is bounded by
//! `t ≥ max(F / peak, B / bandwidth(level))`, where `level` is the smallest memory level that holds
//! its working set (every input read once, every output written once). So the fraction of the
//! ceiling it reaches is `max((F/t) / peak, (B/t) / bandwidth(level))`; a fraction above 1 means
//! the ceiling or the count is wrong, and is flagged, never shown as a plain figure.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::Dtype;

/// The compute peak of one narrow dtype, measured by a probe of its dot-product instruction
/// (a `vdpbf16ps` loop for bf16 on a CPU), in GFLOP/s.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Peak {
    /// With every thread (or the whole GPU).
    pub gflops: f64,
    /// With one thread.
    pub gflops_one_thread: f64,
}

/// One level of the memory hierarchy: how much it holds and the fastest that streaming kernels
/// were measured to move bytes through it (bytes read + bytes written, per second).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MemoryLevel {
    /// `L1`, `L2`, `L3`, `DRAM` on a CPU; `L2`, `HBM` (or `VRAM`) on a GPU.
    pub name: String,
    /// Bytes one thread's working set may take and still live here (a private cache's size; a
    /// shared cache's whole size); `None` for main memory, which holds everything.
    pub capacity_one_thread: Option<u64>,
    /// Bytes the working set of every thread together may take (private caches add up).
    pub capacity_all: Option<u64>,
    /// GB/s with one thread.
    pub gbps_one_thread: f64,
    /// GB/s with every thread (or the whole GPU).
    pub gbps_all: f64,
}

impl MemoryLevel {
    /// The capacity for a kernel on `threads` of the roofline's `all` threads: private caches
    /// add one share per thread, a shared level holds the same for any count.
    fn capacity(&self, threads: usize) -> Option<u64> {
        let (one, every) = (self.capacity_one_thread?, self.capacity_all?);
        Some(if every > one { one.saturating_mul(threads as u64).min(every) } else { every })
    }

    /// GB/s with `threads` threads: one thread's figure times the threads, up to every thread's.
    fn gbps(&self, threads: usize, all: usize) -> f64 {
        if threads >= all { self.gbps_all } else { (self.gbps_one_thread * threads as f64).min(self.gbps_all) }
    }
}

/// A device's measured roofline: what no kernel can beat.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Roofline {
    /// The threads (CPU logical cores) the `all` figures were measured with; 1 on a GPU, where
    /// "one thread" means the whole device.
    pub threads: usize,
    /// The FMA peak with every thread (or every SM), in GFLOP/s.
    pub peak_gflops: f64,
    /// The FMA peak of one thread, in GFLOP/s (a GPU: the same as `peak_gflops`).
    pub peak_gflops_one_thread: f64,
    /// The memory levels, fastest first; the last one holds everything.
    pub levels: Vec<MemoryLevel>,
    /// How it was measured.
    pub how: String,
    /// The compute peaks of narrow dtypes where they were measured; a row of a dtype without one
    /// is held against the f32 FMA peak, and its ceiling says so.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub peaks: BTreeMap<Dtype, Peak>,
}

/// The ceiling one benchmark row is held against.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Ceiling {
    /// The memory level the row's working set lives in (`DRAM` for a cold run).
    pub level: String,
    /// The FMA peak for the row's thread count.
    pub gflops: f64,
    /// That level's bandwidth for the row's thread count.
    pub gbps: f64,
    /// Which compute peak `gflops` is, for a row of a narrow dtype: `bf16 peak`, or the f32 FMA
    /// peak where none was measured for it; absent for f32 rows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peak: Option<String>,
}

impl Ceiling {
    /// The fraction of this ceiling a kernel reached: `max(gflops / peak, gbps / bandwidth)`.
    pub fn fraction(&self, gflops: f64, gbps: f64) -> f64 {
        (gflops / self.gflops).max(gbps / self.gbps)
    }
}

impl Roofline {
    /// The ceiling of a kernel on `threads` threads (`None`: the whole device) whose working set is
    /// `working_set` bytes: the FMA peak for that many threads and the bandwidth of the smallest
    /// level that holds the working set; main memory when `cold` (the caches were evicted).
    pub fn ceiling(&self, threads: Option<usize>, working_set: f64, cold: bool) -> Option<Ceiling> {
        let all = self.threads.max(1);
        let threads = threads.unwrap_or(all).clamp(1, all);
        let last = self.levels.last()?;
        let level = if cold {
            last
        } else {
            self.levels.iter().find(|l| l.capacity(threads).is_none_or(|c| working_set <= c as f64)).unwrap_or(last)
        };
        let gflops = if threads >= all {
            self.peak_gflops
        } else {
            (self.peak_gflops_one_thread * threads as f64).min(self.peak_gflops)
        };
        Some(Ceiling { level: level.name.clone(), gflops, gbps: level.gbps(threads, all), peak: None })
    }

    /// [`Roofline::ceiling`] for a row storing `dtype`: held against that dtype's peak where one
    /// was measured ([`Roofline::peaks`]), else the f32 FMA peak, the ceiling naming which.
    pub fn ceiling_as(&self, threads: Option<usize>, working_set: f64, cold: bool, dtype: Dtype) -> Option<Ceiling> {
        let mut ceiling = self.ceiling(threads, working_set, cold)?;
        if !dtype.is_narrow() {
            return Some(ceiling);
        }
        match self.peaks.get(&dtype) {
            Some(p) => {
                let all = self.threads.max(1);
                let threads = threads.unwrap_or(all).clamp(1, all);
                ceiling.gflops =
                    if threads >= all { p.gflops } else { (p.gflops_one_thread * threads as f64).min(p.gflops) };
                ceiling.peak = Some(format!("{dtype} peak"));
            }
            None => ceiling.peak = Some(format!("f32 FMA peak; no {dtype} peak measured")),
        }
        Some(ceiling)
    }

    /// The bandwidth of the last level (main memory) with every thread, in GB/s.
    pub fn memory_gbps(&self) -> f64 {
        self.levels.last().map_or(f64::NAN, |l| l.gbps_all)
    }

    /// `FMA 363 GFLOP/s (177 on 1 thread) · L1 1.2 TB/s · L2 610 GB/s · L3 180 GB/s · DRAM 31 GB/s`.
    pub fn summary(&self) -> String {
        let mut s = format!("FMA {:.0} GFLOP/s", self.peak_gflops);
        if self.threads > 1 {
            s += &format!(" ({:.0} on 1 thread)", self.peak_gflops_one_thread);
        }
        for l in &self.levels {
            s += &format!(" · {} {:.1} GB/s", l.name, l.gbps_all);
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn level(name: &str, one: Option<u64>, all: Option<u64>, gbps_one: f64, gbps_all: f64) -> MemoryLevel {
        MemoryLevel {
            name: name.into(),
            capacity_one_thread: one,
            capacity_all: all,
            gbps_one_thread: gbps_one,
            gbps_all,
        }
    }

    /// Two cores, private 48 KiB L1 and 1 MiB L2, a shared 32 MiB L3.
    fn two_cores() -> Roofline {
        Roofline {
            threads: 2,
            peak_gflops: 360.0,
            peak_gflops_one_thread: 180.0,
            levels: vec![
                level("L1", Some(48 << 10), Some(96 << 10), 500.0, 1000.0),
                level("L2", Some(1 << 20), Some(2 << 20), 200.0, 400.0),
                level("L3", Some(32 << 20), Some(32 << 20), 100.0, 150.0),
                level("DRAM", None, None, 20.0, 30.0),
            ],
            how: String::new(),
            peaks: BTreeMap::new(),
        }
    }

    #[test]
    fn the_working_set_picks_the_smallest_level_that_holds_it() {
        let r = two_cores();
        let at = |threads, bytes: f64| r.ceiling(threads, bytes, false).unwrap();
        assert_eq!(at(Some(1), 40e3).level, "L1");
        assert_eq!(at(Some(1), 60e3).level, "L2", "one thread has one core's L1");
        assert_eq!(at(Some(2), 60e3).level, "L1", "two threads have both cores' L1");
        assert_eq!(at(None, 1.5e6).level, "L2");
        assert_eq!(at(Some(1), 1.5e6).level, "L3");
        assert_eq!(at(Some(1), 30e6).level, "L3", "a shared level holds the same for one thread");
        assert_eq!(at(None, 40e6).level, "DRAM");
        assert_eq!(at(Some(1), 1e3).gbps, 500.0);
        assert_eq!(at(None, 1e3).gbps, 1000.0);
    }

    #[test]
    fn cold_runs_are_held_against_main_memory() {
        let c = two_cores().ceiling(Some(1), 1e3, true).unwrap();
        assert_eq!((c.level.as_str(), c.gbps, c.gflops), ("DRAM", 20.0, 180.0));
    }

    #[test]
    fn thread_counts_scale_the_peak_up_to_every_thread() {
        let r = two_cores();
        assert_eq!(r.ceiling(Some(1), 1.0, false).unwrap().gflops, 180.0);
        assert_eq!(r.ceiling(Some(2), 1.0, false).unwrap().gflops, 360.0);
        assert_eq!(r.ceiling(Some(64), 1.0, false).unwrap().gflops, 360.0, "more threads than measured: every thread");
    }

    #[test]
    fn the_fraction_is_the_tighter_of_compute_and_memory() {
        let c = Ceiling { level: "L3".into(), gflops: 100.0, gbps: 50.0, peak: None };
        assert_eq!(c.fraction(80.0, 10.0), 0.8);
        assert_eq!(c.fraction(1.0, 45.0), 0.9);
        assert!(c.fraction(1.0, 60.0) > 1.0);
    }
}
