//! Did other processes compete for the cores while a run timed its rows?
//!
//! A row timed on `t` threads has the machine to itself only when `t` threads and whatever else
//! runs fit on the cores. Linux counts every core's time in `/proc/stat` (ticks of user, nice,
//! system, idle, iowait, irq, softirq and steal time) and this process's own in `/proc/self/stat`.
//! Between two readings, over `C` cores,
//!
//! ```text
//! others = C · (Δbusy − Δself) / Δtotal,     busy = total − idle − iowait
//! ```
//!
//! is how many cores' worth of time the rest of the machine took (steal, the time a hypervisor
//! gave to other guests, counts as taken). A run whose rows used `t` threads was
//! **oversubscribed** when `t + others > C + MARGIN_CORES`: some of its threads waited for a core
//! while the clock ran. A multi-threaded kernel is then timed at the pace of its slowest,
//! descheduled thread — 3× to 47× slower in one run and not in the next on a two-core VM with one
//! busy process — and [`crate::compare`] calls such rows `undecided`, whatever their times, rather
//! than finding a difference the kernels did not make. The machine probe ([`crate::probe`]) runs on
//! one thread and cannot see this.

use serde::{Deserialize, Serialize};

/// Cores' worth of others' time tolerated beyond a full machine: daemons and the kernel's own
/// threads take a few percent of a core on an idle machine.
pub const MARGIN_CORES: f64 = 0.25;

/// What the rest of the machine took of its cores during a run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Contention {
    /// Logical cores counted (the `cpuN` lines of `/proc/stat`).
    pub cores: usize,
    /// Cores' worth of time other processes (and steal) took, averaged over the run.
    pub others_busy_cores: f64,
    /// Seconds of wall time it was averaged over: `Δtotal / C` at Linux's 100 ticks a second (USER_HZ).
    pub seconds: f64,
}

impl Contention {
    /// Whether rows on `threads` threads had to share cores with the rest of the machine.
    pub fn oversubscribes(&self, threads: usize) -> bool {
        threads as f64 + self.others_busy_cores > self.cores as f64 + MARGIN_CORES
    }

    /// One line for people: how much the rest of the machine took.
    pub fn describe(&self) -> String {
        format!(
            "other processes kept {:.2} of {} cores busy over {:.0} s",
            self.others_busy_cores, self.cores, self.seconds
        )
    }
}

/// One reading of the machine's and this process's CPU time, in clock ticks.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Reading {
    cores: usize,
    total: u64,
    busy: u64,
    own: u64,
}

impl Reading {
    /// Reads `/proc/stat` and `/proc/self/stat`; `None` where they do not exist (not Linux) or
    /// cannot be read.
    pub fn now() -> Option<Reading> {
        let stat = std::fs::read_to_string("/proc/stat").ok()?;
        let own = std::fs::read_to_string("/proc/self/stat").ok()?;
        Reading::parse(&stat, &own)
    }

    /// A reading from the two files' text.
    pub fn parse(stat: &str, own: &str) -> Option<Reading> {
        let mut lines = stat.lines();
        let ticks: Vec<u64> = lines
            .next()?
            .strip_prefix("cpu ")?
            .split_whitespace()
            .take(8)
            .map(str::parse)
            .collect::<Result<_, _>>()
            .ok()?;
        let [user, nice, system, idle, iowait, irq, softirq, steal] = ticks[..] else { return None };
        let cores = lines
            .filter(|l| l.strip_prefix("cpu").is_some_and(|r| r.starts_with(|c: char| c.is_ascii_digit())))
            .count();
        let total = user + nice + system + idle + iowait + irq + softirq + steal;
        // The process's fields after its name in parentheses (which may hold spaces): field 3 is
        // the state, so utime (field 14) and stime (15) are the 12th and 13th after it.
        let fields: Vec<&str> = own.rsplit_once(')')?.1.split_whitespace().collect();
        let (utime, stime): (u64, u64) = (fields.get(11)?.parse().ok()?, fields.get(12)?.parse().ok()?);
        (cores > 0).then_some(Reading { cores, total, busy: total - idle - iowait, own: utime + stime })
    }

    /// What the rest of the machine took between `self` and the later reading `end`; `None` when
    /// no tick passed between them.
    pub fn until(&self, end: &Reading) -> Option<Contention> {
        let total = end.total.checked_sub(self.total).filter(|t| *t > 0)?;
        let busy = end.busy.saturating_sub(self.busy);
        let others = busy.saturating_sub(end.own.saturating_sub(self.own));
        let cores = self.cores as f64;
        Some(Contention {
            cores: self.cores,
            others_busy_cores: cores * others as f64 / total as f64,
            seconds: total as f64 / cores / 100.0,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `/proc/stat` of a two-core machine with the given aggregate user and idle ticks.
    fn stat(user: u64, idle: u64) -> String {
        format!("cpu  {user} 0 0 {idle} 0 0 0 0 0 0\ncpu0 1 0 0 1 0 0 0 0 0 0\ncpu1 1 0 0 1 0 0 0 0 0 0\nintr 5\n")
    }

    /// `/proc/self/stat` with these utime and stime ticks (and a name with a space and a paren).
    fn own(utime: u64, stime: u64) -> String {
        format!("42 (kern (lab) x) R 1 42 42 0 -1 4194304 100 0 0 0 {utime} {stime} 0 0 20 0 3 0 5 6 7")
    }

    #[test]
    fn a_reading_counts_the_cores_and_this_process_time() {
        let r = Reading::parse(&stat(300, 700), &own(40, 10)).unwrap();
        assert_eq!(r, Reading { cores: 2, total: 1000, busy: 300, own: 50 });
        assert!(Reading::parse("intr 5\n", &own(1, 1)).is_none());
        assert!(Reading::parse(&stat(1, 1), "42 (x) R").is_none());
    }

    #[test]
    fn a_busy_neighbour_takes_one_of_two_cores() {
        // 10 s on two cores: 2000 ticks; this process used 1000 (two threads half the time),
        // the machine was busy 1950 in all: the others took 950 ticks, 0.95 cores.
        let start = Reading::parse(&stat(0, 0), &own(0, 0)).unwrap();
        let end = Reading::parse(&stat(1950, 50), &own(900, 100)).unwrap();
        let c = start.until(&end).unwrap();
        assert!((c.others_busy_cores - 0.95).abs() < 1e-12, "{c:?}");
        assert!((c.seconds - 10.0).abs() < 1e-12);
        assert!(c.oversubscribes(2), "two threads and a busy neighbour on two cores");
        assert!(!c.oversubscribes(1), "one thread and a busy neighbour fit");
    }

    #[test]
    fn an_idle_machine_oversubscribes_nothing_it_has_cores_for() {
        let start = Reading::parse(&stat(0, 0), &own(0, 0)).unwrap();
        let end = Reading::parse(&stat(1040, 960), &own(1000, 0)).unwrap();
        let c = start.until(&end).unwrap();
        assert!((c.others_busy_cores - 0.04).abs() < 1e-12);
        assert!(!c.oversubscribes(2));
        assert!(c.oversubscribes(3), "three threads on two cores share them whatever else runs");
        assert!(start.until(&start).is_none(), "no tick passed");
    }

    #[test]
    fn this_machine_can_be_read() {
        if cfg!(target_os = "linux") {
            let start = Reading::now().expect("/proc/stat and /proc/self/stat");
            let spin = std::time::Instant::now();
            while spin.elapsed().as_millis() < 50 {
                std::hint::black_box(0);
            }
            let c = start.until(&Reading::now().unwrap()).unwrap();
            assert!(c.cores >= 1 && c.others_busy_cores >= 0.0 && c.others_busy_cores <= c.cores as f64, "{c:?}");
        }
    }
}
