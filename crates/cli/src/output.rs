//! Writing result files: `-` is standard output; a regular file (or a new one) is written
//! atomically — a unique temporary file in the same directory, synced, then renamed over the
//! target — so a reader never sees half a file and a failed write leaves the old one; anything
//! else (a device, a FIFO) is written through, never replaced.

use std::io::Write;
use std::path::Path;

use kernelab_tensor::{Error, Result};

/// Writes `bytes` to `path` as described above.
pub fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    let io = |source| Error::Io { path: path.display().to_string(), source };
    if path == Path::new("-") {
        let mut out = std::io::stdout().lock();
        return out.write_all(bytes).and_then(|()| out.flush()).map_err(io);
    }
    match std::fs::metadata(path) {
        Ok(meta) if meta.is_dir() => {
            return Err(Error::Io {
                path: path.display().to_string(),
                source: std::io::Error::other("is a directory"),
            });
        }
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

/// Fails early, before any work, when `path`'s directory does not exist or cannot be written.
pub fn check_writable(path: &Path) -> Result<()> {
    if path == Path::new("-") {
        return Ok(());
    }
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
    if path.exists() && !path.is_file() {
        return Ok(());
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
    }
}
