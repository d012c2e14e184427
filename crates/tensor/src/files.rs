//! Writing files that must never be half-written or lost (checkpoints, reports, plots): `-` is
//! standard output; a regular file (or a new one) is written atomically — a unique temporary file
//! created exclusively in the same directory, synced, renamed over the target, the directory
//! synced — so a reader never sees half a file, two writers never mix their bytes (the last rename
//! wins whole), and a failed or killed write leaves the old file and no temporary one behind
//! (the temporary file is removed on every error path). A symbolic link is followed, so the file
//! it names is replaced and the link stays; anything that is not a regular file (a device such as
//! `/dev/stdout`, a FIFO) is written through, never replaced. An existing file is replaced only
//! when its mode lets the user write it ([`may_write`]), though a rename would not need that.
//!
//! A command checks all its files at once before any work with [`Paths`]: no output may be another
//! output, one of its inputs, or an existing file of another kind.

mod paths;

use std::io::Write;
use std::path::{Path, PathBuf};

pub use paths::{Kind, Paths, may_write};

use crate::{Error, Result};

/// Whether an output path is `-`, standard output (`./-` names a file called `-`).
pub fn is_stdout(path: &Path) -> bool {
    path == Path::new("-")
}

/// The path a write lands on: a symbolic link's target (resolved), else `path` itself.
fn resolve(path: &Path) -> PathBuf {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf()),
        _ => path.to_path_buf(),
    }
}

/// Writes `bytes` to `path` as described above.
pub fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    let io = |source| Error::Io { path: path.display().to_string(), source };
    if is_stdout(path) {
        let mut out = std::io::stdout().lock();
        return out.write_all(bytes).and_then(|()| out.flush()).map_err(io);
    }
    let resolved = resolve(path);
    let path = resolved.as_path();
    match std::fs::metadata(path) {
        Ok(meta) if meta.is_dir() => {
            return Err(Error::Io {
                path: path.display().to_string(),
                source: std::io::Error::other("is a directory"),
            });
        }
        Ok(meta) if !may_write(&meta) => return Err(read_only(path, &meta)),
        Ok(meta) if !meta.is_file() => {
            let mut file = std::fs::OpenOptions::new().write(true).open(path).map_err(io)?;
            return file.write_all(bytes).map_err(io);
        }
        _ => {}
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::Builder::new().prefix(".kernelab-").suffix(".tmp").tempfile_in(dir).map_err(io)?;
    // A temporary file is private (0600); the result gets the old file's mode, or 0644 when new.
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path).map_or(0o644, |m| m.permissions().mode() & 0o7777);
    tmp.as_file().set_permissions(std::fs::Permissions::from_mode(mode)).map_err(io)?;
    tmp.write_all(bytes).and_then(|()| tmp.as_file().sync_all()).map_err(io)?;
    tmp.persist(path).map_err(|e| io(e.error))?;
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// The refusal of a file whose mode does not let the user write it.
fn read_only(path: &Path, meta: &std::fs::Metadata) -> Error {
    use std::os::unix::fs::MetadataExt;
    Error::Output {
        path: path.display().to_string(),
        why: format!(
            "its mode {:04o} (owner uid {}, group gid {}) does not let you write it; kernelab replaces a file \
             only where a shell's `>` could write it (root: where any write bit is set): `chmod u+w` it, or \
             name another file",
            meta.mode() & 0o7777,
            meta.uid(),
            meta.gid()
        ),
    }
}

/// Fails early, before any work, when `path`'s directory does not exist or cannot be written, or
/// `path` is a file whose mode does not let the user write it.
pub fn check_writable(path: &Path) -> Result<()> {
    if is_stdout(path) {
        return Ok(());
    }
    let resolved = resolve(path);
    let path = resolved.as_path();
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let fail = |why: String| Error::Io { path: path.display().to_string(), source: std::io::Error::other(why) };
    if path.is_dir() {
        return Err(fail("is a directory".into()));
    }
    if !dir.is_dir() {
        return Err(fail(format!("the directory {} does not exist", dir.display())));
    }
    match std::fs::metadata(path) {
        Ok(meta) if !may_write(&meta) => return Err(read_only(path, &meta)),
        Ok(meta) if !meta.is_file() => return Ok(()),
        _ => {}
    }
    tempfile::Builder::new()
        .prefix(".kernelab-")
        .tempfile_in(dir)
        .map(drop)
        .map_err(|e| fail(format!("cannot write in {}: {e}", dir.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_is_replaced_whole_and_nothing_is_left_behind() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.json");
        std::fs::write(&path, b"old contents that are longer").unwrap();
        write(&path, b"new").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"new");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "no temporary file remains");
        use std::os::unix::fs::PermissionsExt;
        let fresh = dir.path().join("new.json");
        write(&fresh, b"x").unwrap();
        assert_eq!(std::fs::metadata(&fresh).unwrap().permissions().mode() & 0o777, 0o644, "readable like any result");
    }

    #[test]
    fn unwritable_places_are_refused_before_the_work() {
        let dir = tempfile::tempdir().unwrap();
        assert!(check_writable(&dir.path().join("missing").join("out.json")).is_err());
        assert!(check_writable(dir.path()).is_err());
        assert!(check_writable(&dir.path().join("fine.json")).is_ok());
        assert!(write(dir.path(), b"x").is_err());
        use std::os::unix::fs::PermissionsExt;
        let frozen = dir.path().join("frozen.json");
        std::fs::write(&frozen, b"keep").unwrap();
        std::fs::set_permissions(&frozen, std::fs::Permissions::from_mode(0o444)).unwrap();
        let err = check_writable(&frozen).unwrap_err().to_string();
        assert!(err.contains("mode 0444") && err.contains("does not let you write it"), "{err}");
        assert!(write(&frozen, b"new").is_err(), "not replaced through the rename either");
        assert_eq!(std::fs::read(&frozen).unwrap(), b"keep");
    }

    #[test]
    fn a_symlink_is_followed_and_a_device_written_through() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target.json");
        std::fs::write(&target, b"old").unwrap();
        let link = dir.path().join("link.json");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        write(&link, b"new").unwrap();
        assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink(), "the link stays a link");
        assert_eq!(std::fs::read(&target).unwrap(), b"new");
        write(Path::new("/dev/null"), b"through").unwrap();
        use std::os::unix::fs::FileTypeExt;
        assert!(std::fs::metadata("/dev/null").unwrap().file_type().is_char_device());
    }

    #[test]
    fn concurrent_writers_leave_one_whole_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("shared.bin");
        std::thread::scope(|s| {
            for w in 0..8u8 {
                let path = &path;
                s.spawn(move || {
                    for _ in 0..20 {
                        write(path, &vec![w; 1 << 16]).unwrap();
                    }
                });
            }
        });
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(bytes.len(), 1 << 16);
        assert!(bytes.iter().all(|&b| b == bytes[0]), "one writer's bytes, whole");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "no temporary file remains");
    }
}
