//! The files of one command, checked together before any work, so that no output destroys an
//! input or another output. A command lists what it reads ([`Paths::input`]) and what it writes
//! ([`Paths::output`], with the [`Kind`] of file it writes); [`Paths::check`] then refuses, naming
//! the flags and the paths:
//!
//! - two outputs that are one file: the same device and inode when the file exists, else the same
//!   canonical folder and name (symbolic links resolved; `./r.json`, `r.json` and a link to it are
//!   one file). Devices and FIFOs are written through, never replaced, and may be named twice;
//!   at most one output may be `-` (standard output);
//! - `-` for an output that cannot be standard output ([`Paths::file_output`]: a binary
//!   checkpoint, a file rewritten whole after each run), so `-` never names a file called `-`
//!   (`./-` does);
//! - an output that is one of the command's inputs (a report, a checkpoint, a dataset file);
//! - an output the user may not write (see [`may_write`]), or whose folder does not exist or
//!   cannot be written ([`super::check_writable`]);
//! - an existing, non-empty file of another kind: a log appended to ([`Kind::JsonLines`]) must
//!   already be JSON lines, a checkpoint replaced ([`Kind::ReplacedIf`]) must be a checkpoint.

use std::fs::Metadata;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::is_stdout;
use crate::{Error, Result};

/// What an output does to the file it names.
#[derive(Clone, Copy, Debug)]
pub enum Kind {
    /// Replaces it whole, whatever it held (a report, a table, a plot, a profile).
    Replaced,
    /// Appends one JSON object per line (a training log): an existing file must be empty or hold
    /// JSON lines already.
    JsonLines,
    /// Replaces it whole, but an existing, non-empty file must be `what`, as `is` recognises it
    /// (a checkpoint is replaced only by a checkpoint).
    ReplacedIf { what: &'static str, is: fn(&Path) -> bool },
}

/// One path of a command and the flag that named it, for the messages.
#[derive(Clone, Debug)]
struct Named {
    flag: String,
    path: PathBuf,
    /// Why this output cannot be standard output; `None` when `-` is standard output.
    not_stdout: Option<&'static str>,
}

/// The inputs and outputs of one command; see the module's description.
#[derive(Clone, Debug, Default)]
pub struct Paths {
    inputs: Vec<Named>,
    outputs: Vec<(Named, Kind)>,
}

impl Paths {
    pub fn new() -> Self {
        Self::default()
    }

    /// A file the command reads (nothing when `path` is `None`).
    pub fn input(&mut self, flag: &str, path: Option<&Path>) -> &mut Self {
        if let Some(path) = path {
            self.inputs.push(Named { flag: flag.into(), path: path.into(), not_stdout: None });
        }
        self
    }

    /// A file the command writes (nothing when `path` is `None`); `-` is standard output.
    pub fn output(&mut self, flag: &str, path: Option<&Path>, kind: Kind) -> &mut Self {
        if let Some(path) = path {
            self.outputs.push((Named { flag: flag.into(), path: path.into(), not_stdout: None }, kind));
        }
        self
    }

    /// A file the command writes that cannot be standard output: [`Paths::check`] refuses `-`,
    /// saying `why` (a checkpoint is binary, …).
    pub fn file_output(&mut self, flag: &str, path: Option<&Path>, kind: Kind, why: &'static str) -> &mut Self {
        if let Some(path) = path {
            self.outputs.push((Named { flag: flag.into(), path: path.into(), not_stdout: Some(why) }, kind));
        }
        self
    }

    /// Refuses, before any work, every output that would destroy a file (see the module's list).
    pub fn check(&self) -> Result<()> {
        for (out, _) in self.outputs.iter().filter(|(o, _)| is_stdout(&o.path)) {
            if let Some(why) = out.not_stdout {
                return Err(Error::Output {
                    path: "-".into(),
                    why: format!(
                        "{} cannot write to standard output ({why}); name a file (`./-` for a file called -)",
                        out.flag
                    ),
                });
            }
        }
        let to_stdout: Vec<&str> =
            self.outputs.iter().filter(|(o, _)| is_stdout(&o.path)).map(|(o, _)| o.flag.as_str()).collect();
        if to_stdout.len() > 1 {
            return Err(Error::Output {
                path: "-".into(),
                why: format!("{} each name standard output; at most one output can be `-`", to_stdout.join(", ")),
            });
        }
        let files: Vec<&(Named, Kind)> = self.outputs.iter().filter(|(o, _)| !is_stdout(&o.path)).collect();
        let replaced: Vec<(&Named, Identity)> =
            files.iter().filter_map(|(o, _)| replaced_identity(&o.path).map(|id| (o, id))).collect();
        for (i, (a, id)) in replaced.iter().enumerate() {
            if let Some((b, _)) = replaced[..i].iter().find(|(_, other)| other == id) {
                return Err(Error::Output {
                    path: a.path.display().to_string(),
                    why: format!(
                        "{} {} and {} {} are one file; each output needs a file of its own",
                        b.flag,
                        b.path.display(),
                        a.flag,
                        a.path.display()
                    ),
                });
            }
            let read = self.inputs.iter().find(|input| existing_identity(&input.path).as_ref() == Some(id));
            if let Some(input) = read {
                return Err(Error::Output {
                    path: a.path.display().to_string(),
                    why: format!(
                        "{} would overwrite {} {}, which this command reads; write to another file",
                        a.flag,
                        input.flag,
                        input.path.display()
                    ),
                });
            }
        }
        for (out, kind) in &files {
            super::check_writable(&out.path)?;
            check_kind(out, *kind)?;
        }
        Ok(())
    }
}

/// What makes two paths one file.
#[derive(Debug, PartialEq)]
enum Identity {
    /// An existing file: its device and inode.
    Inode(u64, u64),
    /// A file not made yet: the canonical folder and the name it will have there.
    Planned(PathBuf),
}

fn existing_identity(path: &Path) -> Option<Identity> {
    std::fs::metadata(path).ok().map(|m| Identity::Inode(m.dev(), m.ino()))
}

/// The identity of the file an output replaces: `None` for a device or FIFO, which is written
/// through. A missing file (or a dangling link, which the write replaces) is its canonical folder
/// and name.
fn replaced_identity(path: &Path) -> Option<Identity> {
    match std::fs::metadata(path) {
        Ok(m) if !m.is_file() => None,
        Ok(m) => Some(Identity::Inode(m.dev(), m.ino())),
        Err(_) => {
            let dir = match path.parent() {
                Some(d) if !d.as_os_str().is_empty() => d,
                _ => Path::new("."),
            };
            let dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
            Some(Identity::Planned(path.file_name().map_or_else(|| path.to_path_buf(), |name| dir.join(name))))
        }
    }
}

/// An existing, non-empty regular file at `out` must be of the kind the output writes.
fn check_kind(out: &Named, kind: Kind) -> Result<()> {
    let Ok(meta) = std::fs::metadata(&out.path) else { return Ok(()) };
    if !meta.is_file() || meta.len() == 0 {
        return Ok(());
    }
    let refuse = |why: String| Err(Error::Output { path: out.path.display().to_string(), why });
    match kind {
        Kind::Replaced => Ok(()),
        Kind::JsonLines => match json_lines(&out.path, meta.len()) {
            Ok(()) => Ok(()),
            Err(why) => refuse(format!(
                "{} appends JSON lines, and this file is not a JSON-lines log ({why}); a checkpoint or other data \
                 would be spoiled: name a new file, or an earlier log",
                out.flag
            )),
        },
        Kind::ReplacedIf { what, is } if !is(&out.path) => refuse(format!(
            "{} would replace this file, which is not {what}; name a new file, or remove this one first",
            out.flag
        )),
        Kind::ReplacedIf { .. } => Ok(()),
    }
}

/// The most bytes read at each end of a log to recognise it.
const SNIFF: u64 = 1 << 20;

/// `Ok` when the file of `len > 0` bytes reads as JSON lines: its first and last lines are JSON
/// objects and it ends with a newline (so an appended line starts a line of its own); else why not.
fn json_lines(path: &Path, len: u64) -> std::result::Result<(), String> {
    let mut file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let mut head = Vec::new();
    (&mut file).take(SNIFF).read_to_end(&mut head).map_err(|e| e.to_string())?;
    let object = |line: &[u8]| serde_json::from_slice::<serde_json::Value>(line).is_ok_and(|v| v.is_object());
    let first = head.split(|&b| b == b'\n').next().unwrap_or_default();
    if !object(first) {
        return Err("its first line is not a JSON object".into());
    }
    let mut tail = Vec::new();
    file.seek(SeekFrom::Start(len.saturating_sub(SNIFF))).map_err(|e| e.to_string())?;
    file.take(SNIFF).read_to_end(&mut tail).map_err(|e| e.to_string())?;
    let Some(body) = tail.strip_suffix(b"\n") else {
        return Err("its last line does not end with a newline".into());
    };
    if !object(body.rsplit(|&b| b == b'\n').next().unwrap_or_default()) {
        return Err("its last line is not a JSON object".into());
    }
    Ok(())
}

/// Whether the user may write an existing file, by its mode bits, as the kernel decides for
/// `open` and a shell's `>`: the owner's write bit when the user owns the file, else the group's
/// when the file's group is one of the user's, else the others' bit. A replacement is a rename,
/// which the kernel allows whatever the file's mode; kernelab holds it to the file's mode anyway.
/// Root, whom the kernel lets write anything, is held to "some write bit is set", so a file made
/// read-only for everyone (0444) is refused to root too. ACLs are not read.
pub fn may_write(meta: &Metadata) -> bool {
    let user = User::current();
    mode_allows(meta.mode(), meta.uid(), meta.gid(), &user)
}

/// The rule of [`may_write`] on plain numbers.
fn mode_allows(mode: u32, owner: u32, group: u32, user: &User) -> bool {
    if user.uid == 0 {
        mode & 0o222 != 0
    } else if user.uid == owner {
        mode & 0o200 != 0
    } else if user.gid == group || user.groups.contains(&group) {
        mode & 0o020 != 0
    } else {
        mode & 0o002 != 0
    }
}

/// The effective user and groups of this process.
#[derive(Debug)]
struct User {
    uid: u32,
    gid: u32,
    groups: Vec<u32>,
}

impl User {
    fn current() -> Self {
        unsafe extern "C" {
            fn geteuid() -> u32;
            fn getegid() -> u32;
            fn getgroups(size: i32, list: *mut u32) -> i32;
        }
        // SAFETY: geteuid and getegid cannot fail; getgroups with size 0 only counts, and then
        // writes at most `count` ids into a buffer of that many.
        unsafe {
            let count = getgroups(0, std::ptr::null_mut()).max(0);
            let mut groups = vec![0u32; count as usize];
            let got = getgroups(count, groups.as_mut_ptr());
            groups.truncate(got.max(0) as usize);
            Self { uid: geteuid(), gid: getegid(), groups }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(uid: u32, gid: u32, groups: &[u32]) -> User {
        User { uid, gid, groups: groups.to_vec() }
    }

    #[test]
    fn the_mode_rule_is_the_kernels_with_root_held_to_some_write_bit() {
        let alice = user(1000, 1000, &[27]);
        assert!(mode_allows(0o644, 1000, 1000, &alice));
        assert!(!mode_allows(0o444, 1000, 1000, &alice), "read-only for its owner");
        assert!(!mode_allows(0o066, 1000, 1000, &alice), "the owner's bit decides for the owner");
        assert!(mode_allows(0o464, 0, 27, &alice), "a supplementary group's bit");
        assert!(!mode_allows(0o646, 0, 27, &alice), "the group's bit decides for a member");
        assert!(mode_allows(0o442, 0, 0, &alice), "the others' bit");
        let root = user(0, 0, &[]);
        assert!(!mode_allows(0o444, 1000, 1000, &root), "0444 is refused to root too");
        assert!(mode_allows(0o400 | 0o020, 1000, 1000, &root));
    }

    #[test]
    fn two_names_of_one_file_are_one_output() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("r.out");
        let mut paths = Paths::new();
        paths.output("--json", Some(&file), Kind::Replaced);
        paths.output("--markdown", Some(&dir.path().join(".").join("r.out")), Kind::Replaced);
        let err = paths.check().unwrap_err().to_string();
        assert!(err.contains("--json") && err.contains("--markdown") && err.contains("are one file"), "{err}");
        std::fs::write(&file, b"x").unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&file, &link).unwrap();
        let mut paths = Paths::new();
        paths.output("--csv", Some(&file), Kind::Replaced).output("--markdown", Some(&link), Kind::Replaced);
        assert!(paths.check().is_err(), "a link is its target");
        let mut paths = Paths::new();
        paths.output("--csv", Some(&file), Kind::Replaced);
        paths.output("--markdown", Some(&dir.path().join("other")), Kind::Replaced);
        paths.output("--json", Some(Path::new("/dev/null")), Kind::Replaced);
        paths.output("--out", Some(Path::new("/dev/null")), Kind::Replaced);
        paths.check().unwrap();
    }

    #[test]
    fn an_input_is_never_an_output() {
        let dir = tempfile::tempdir().unwrap();
        let report = dir.path().join("r.json");
        std::fs::write(&report, b"{}").unwrap();
        let mut paths = Paths::new();
        paths.input("REPORT", Some(&report)).output("--out", Some(&report), Kind::Replaced);
        let err = paths.check().unwrap_err().to_string();
        assert!(err.contains("--out would overwrite REPORT"), "{err}");
    }

    #[test]
    fn a_log_appends_only_to_json_lines_and_a_checkpoint_replaces_only_its_kind() {
        let dir = tempfile::tempdir().unwrap();
        let check = |bytes: &[u8], kind: Kind| {
            let path = dir.path().join("f");
            std::fs::write(&path, bytes).unwrap();
            let mut paths = Paths::new();
            paths.output("--json", Some(&path), kind);
            paths.check().map_err(|e| e.to_string())
        };
        assert!(check(b"", Kind::JsonLines).is_ok());
        assert!(check(b"{\"epoch\":1}\n{\"epoch\":2}\n", Kind::JsonLines).is_ok());
        let safetensors = [&16u64.to_le_bytes()[..], b"{\"__metadata__\":{}}"].concat();
        assert!(check(&safetensors, Kind::JsonLines).unwrap_err().contains("first line is not a JSON object"));
        assert!(check(b"{\"epoch\":1}\n{\"epo", Kind::JsonLines).unwrap_err().contains("does not end with a newline"));
        assert!(check(b"{\"epoch\":1}\n[1]\n", Kind::JsonLines).unwrap_err().contains("last line"));
        let is = |p: &Path| std::fs::read(p).is_ok_and(|b| b.starts_with(b"CKPT"));
        let kind = Kind::ReplacedIf { what: "a checkpoint", is };
        assert!(check(b"CKPT", kind).is_ok());
        assert!(check(b"{\"epoch\":1}\n", kind).unwrap_err().contains("which is not a checkpoint"));
        assert!(check(b"{\"epoch\":1}\n", Kind::Replaced).is_ok());
    }

    #[test]
    fn only_one_output_is_standard_output() {
        let mut paths = Paths::new();
        paths.output("--json", Some(Path::new("-")), Kind::Replaced);
        paths.check().unwrap();
        paths.output("--csv", Some(Path::new("-")), Kind::Replaced);
        assert!(paths.check().unwrap_err().to_string().contains("--json, --csv each name standard output"));
    }

    #[test]
    fn a_dash_is_standard_output_or_refused_never_a_file_called_dash() {
        let mut paths = Paths::new();
        paths.output("--json", Some(Path::new("-")), Kind::JsonLines);
        paths.file_output("--save", Some(Path::new("./-")), Kind::Replaced, "a checkpoint is binary");
        paths.check().unwrap();
        paths.file_output("--save-teacher", Some(Path::new("-")), Kind::Replaced, "a checkpoint is binary");
        let err = paths.check().unwrap_err().to_string();
        assert!(err.contains("--save-teacher cannot write to standard output (a checkpoint is binary)"), "{err}");
        assert!(is_stdout(Path::new("-")) && !is_stdout(Path::new("./-")) && !is_stdout(Path::new("-/x")));
    }
}
