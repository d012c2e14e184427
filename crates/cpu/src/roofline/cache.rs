//! The per-machine roofline cache: one JSON file per build opt-level (`roofline-cpu-O3.json` for a
//! release build, `-O0` for a debug build), keyed by what makes a measurement valid (CPU model,
//! logical cores, kernel release, probe version, opt-level). A file that is corrupt, from another
//! machine, an older probe or a build at another opt-level is measured again and replaced, never
//! trusted, so an unoptimized build's ceilings never reach an optimized build; the file is written
//! atomically (a unique temporary file in the same directory, renamed over it).

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use kernelab_tensor::Roofline;

/// What a cached roofline is valid for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MachineKey {
    pub cpu: String,
    pub logical_cores: usize,
    /// The kernel release (`uname -r`): a new kernel or VM host may change what the probes see.
    pub kernel: String,
    pub probe_version: u32,
    /// The opt-level of the build that measured it ([`super::OPT_LEVEL`]); empty in a file written
    /// before it was recorded, which matches no build.
    #[serde(default)]
    pub opt_level: String,
}

impl MachineKey {
    /// This machine's key.
    pub fn here() -> Self {
        Self {
            cpu: crate::cpu_model(),
            logical_cores: crate::topology::logical_cores(),
            kernel: kernel_release(),
            probe_version: super::PROBE_VERSION,
            opt_level: super::OPT_LEVEL.into(),
        }
    }
}

/// `6.1.0-27-amd64`, or `unknown`.
pub fn kernel_release() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease").map_or_else(|_| "unknown".into(), |s| s.trim().to_string())
}

/// The file's contents.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CacheFile {
    pub key: MachineKey,
    /// Seconds since the Unix epoch when it was measured.
    pub measured_unix_time: u64,
    pub roofline: Roofline,
}

/// Where the cache lives: `$KERNELAB_CACHE_DIR`, else `$XDG_CACHE_HOME/kernelab`, else
/// `$HOME/.cache/kernelab`, else the temporary directory's `kernelab`.
pub fn dir() -> PathBuf {
    let env = |name| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    env("KERNELAB_CACHE_DIR")
        .or_else(|| env("XDG_CACHE_HOME").map(|d| d.join("kernelab")))
        .or_else(|| env("HOME").map(|d| d.join(".cache").join("kernelab")))
        .unwrap_or_else(|| std::env::temp_dir().join("kernelab"))
}

/// The CPU roofline's file in [`dir`] for this build's opt-level.
pub fn path() -> PathBuf {
    dir().join(file_name(super::OPT_LEVEL))
}

/// `roofline-cpu-O{opt_level}.json`: each opt-level keeps its own file, so switching between a
/// debug and a release build neither reads the other's ceilings nor re-measures every time.
pub fn file_name(opt_level: &str) -> String {
    format!("roofline-cpu-O{opt_level}.json")
}

/// Why a cache file was not used.
#[derive(Debug, PartialEq, Eq)]
pub enum Stale {
    Missing,
    Corrupt(String),
    OtherMachine,
}

/// The cached roofline at `path` if it is valid for `key`.
pub fn load(path: &Path, key: &MachineKey) -> Result<CacheFile, Stale> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(Stale::Missing),
        Err(e) => return Err(Stale::Corrupt(e.to_string())),
    };
    let file: CacheFile = serde_json::from_str(&text).map_err(|e| Stale::Corrupt(e.to_string()))?;
    if &file.key != key {
        return Err(Stale::OtherMachine);
    }
    let r = &file.roofline;
    let sane = |v: f64| v.is_finite() && v > 0.0;
    let levels_ok = !r.levels.is_empty()
        && r.levels.iter().all(|l| sane(l.gbps_all) && sane(l.gbps_one_thread))
        && r.levels.last().is_some_and(|l| l.capacity_all.is_none());
    if !(sane(r.peak_gflops) && sane(r.peak_gflops_one_thread) && r.threads >= 1 && levels_ok) {
        return Err(Stale::Corrupt("a ceiling that is not a positive number".into()));
    }
    Ok(file)
}

/// Writes `file` to `path` atomically: a unique temporary file beside it, synced, renamed over it,
/// and the directory synced.
pub fn store(path: &Path, file: &CacheFile) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let json = serde_json::to_vec_pretty(file).map_err(std::io::Error::other)?;
    let mut tmp = tempfile::Builder::new().prefix(".roofline-").suffix(".tmp").tempfile_in(dir)?;
    tmp.write_all(&json)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// The roofline for this machine: from the cache when it is valid, else measured now and cached.
/// `renew` measures whatever the cache holds. The `how` text says which happened.
pub fn load_or_measure(renew: bool) -> Roofline {
    let (path, key) = (path(), MachineKey::here());
    let stale = if renew { Err(Stale::Missing) } else { load(&path, &key) };
    match stale {
        Ok(file) => {
            let mut r = file.roofline;
            r.how =
                format!("{}; measured at unix time {}, cached in {}", r.how, file.measured_unix_time, path.display());
            r
        }
        Err(why) => {
            let mut roofline = super::measure();
            let file = CacheFile { key, measured_unix_time: unix_now(), roofline: roofline.clone() };
            let why = match why {
                Stale::Missing if renew => "re-measured on request".to_string(),
                Stale::Missing => "measured now (no cache yet)".to_string(),
                Stale::Corrupt(e) => format!("measured now (the cache file was unreadable: {e})"),
                Stale::OtherMachine => {
                    "measured now (the cache was from another machine, probe or build opt-level)".to_string()
                }
            };
            roofline.how = match store(&path, &file) {
                Ok(()) => format!("{}; {why}, cached in {}", roofline.how, path.display()),
                Err(e) => format!("{}; {why}, not cached ({}: {e})", roofline.how, path.display()),
            };
            roofline
        }
    }
}

fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use kernelab_tensor::MemoryLevel;

    use super::*;

    fn key() -> MachineKey {
        MachineKey {
            cpu: "Test CPU".into(),
            logical_cores: 2,
            kernel: "6.1".into(),
            probe_version: 3,
            opt_level: "3".into(),
        }
    }

    fn file() -> CacheFile {
        let dram = MemoryLevel {
            name: "DRAM".into(),
            capacity_one_thread: None,
            capacity_all: None,
            gbps_one_thread: 20.0,
            gbps_all: 30.0,
        };
        let roofline = Roofline {
            threads: 2,
            peak_gflops: 300.0,
            peak_gflops_one_thread: 150.0,
            levels: vec![dram],
            how: "test".into(),
            peaks: Default::default(),
        };
        CacheFile { key: key(), measured_unix_time: 1, roofline }
    }

    #[test]
    fn a_stored_roofline_loads_back_for_the_same_machine_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("roofline-cpu.json");
        assert_eq!(load(&path, &key()), Err(Stale::Missing));
        store(&path, &file()).unwrap();
        assert_eq!(load(&path, &key()), Ok(file()));
        let other = MachineKey { logical_cores: 16, ..key() };
        assert_eq!(load(&path, &other), Err(Stale::OtherMachine));
        let older = MachineKey { probe_version: 2, ..key() };
        assert_eq!(load(&path, &older), Err(Stale::OtherMachine));
        let debug = MachineKey { opt_level: "0".into(), ..key() };
        assert_eq!(load(&path, &debug), Err(Stale::OtherMachine), "a debug build never reads a release build's");
        let leftovers: Vec<_> = std::fs::read_dir(path.parent().unwrap()).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "no temporary file is left behind");
    }

    #[test]
    fn a_corrupt_or_absurd_file_is_not_trusted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("roofline-cpu.json");
        std::fs::write(&path, b"{\"key\": tru").unwrap();
        assert!(matches!(load(&path, &key()), Err(Stale::Corrupt(_))));
        let mut absurd = file();
        absurd.roofline.peak_gflops = -1.0;
        store(&path, &absurd).unwrap();
        assert!(matches!(load(&path, &key()), Err(Stale::Corrupt(_))));
        let mut nan = file();
        nan.roofline.levels[0].gbps_all = f64::NAN;
        store(&path, &nan).unwrap();
        assert!(matches!(load(&path, &key()), Err(Stale::Corrupt(_))), "NaN is written as null and refused");
    }

    #[test]
    fn an_unoptimized_builds_ceilings_reach_no_other_build() {
        assert_eq!((file_name("0"), file_name("3")), ("roofline-cpu-O0.json".into(), "roofline-cpu-O3.json".into()));
        assert_eq!(path().file_name().unwrap().to_str(), Some(file_name(crate::roofline::OPT_LEVEL).as_str()));
        assert!(crate::roofline::build_note("0").starts_with("UNOPTIMIZED BUILD"));
        assert_eq!(crate::roofline::build_note("3"), "measured by a build at opt-level 3");
        // A file from before the opt-level was recorded (perhaps a debug build's) is trusted by none.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("roofline-cpu.json");
        store(&path, &file()).unwrap();
        let mut json: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        json["key"].as_object_mut().unwrap().remove("opt_level");
        std::fs::write(&path, json.to_string()).unwrap();
        for level in ["0", "3"] {
            let here = MachineKey { opt_level: level.into(), ..key() };
            assert_eq!(load(&path, &here), Err(Stale::OtherMachine), "opt-level {level}");
        }
    }
}
