//! `--kernel PATH[:ENTRY]`: a researcher's kernel file as rows of `bench` and `check`, beside the
//! built-in variants, with no Rust build.
//!
//! A file's extension picks the backend (`.wgsl` wgpu, `.ptx` cuda, `.so` cpu), which is opened
//! for the run if it was not. A shared library runs in a child process ([`crate::isolate`]), so a
//! kernel that crashes or hangs fails its own rows and nothing else. A file that cannot be read or
//! loaded becomes an error row per shape and the other rows still run; a PTX file with no CUDA
//! device to run it is checked as far as text allows and becomes a skipped row that says so.

use kernelab_bench::backends;
use kernelab_bench::record::{Record, Status};
use kernelab_bench::runner::Spec;
use kernelab_tensor::{BackendKind, Device, Error, KernelFile, Op, Result, SourceKind};

/// What became of a run's `--kernel` files.
#[derive(Debug, Default)]
pub struct Loaded {
    /// The names of the variants loaded into the run's devices.
    pub names: Vec<&'static str>,
    /// Shared libraries, each with the spec it was given as, for a child process.
    pub isolated: Vec<(String, KernelFile)>,
    /// Files that will not run here: load errors, and PTX with no CUDA device.
    pub not_run: Vec<NotRun>,
}

/// A kernel file that will not run here, and why.
#[derive(Debug)]
pub struct NotRun {
    pub name: String,
    pub backend: &'static str,
    pub device: String,
    pub file: Option<KernelFile>,
    pub status: Status,
    /// Why, as the rows' note says it.
    pub note: String,
}

impl NotRun {
    fn new(
        name: &str,
        backend: &'static str,
        device: String,
        file: Option<&KernelFile>,
        status: Status,
        why: &str,
    ) -> Self {
        let note =
            if status == Status::Error && !why.starts_with("error") { format!("error: {why}") } else { why.into() };
        Self { name: name.into(), backend, device, file: file.cloned(), status, note }
    }

    /// Its row at each of `specs`.
    pub fn rows(&self, specs: &[Spec]) -> Vec<Record> {
        specs
            .iter()
            .map(|spec| Record {
                op: spec.op.name().into(),
                backend: self.backend.into(),
                device: self.device.clone(),
                variant: self.name.clone(),
                shape: spec.dims.clone(),
                transpose: (spec.op == Op::Matmul).then(|| spec.transpose()),
                source: self.file.as_ref().map(|f| f.source.clone()),
                ..Record::blank(self.status, Some(self.note.clone()))
            })
            .collect()
    }
}

/// The one op the `--kernel` files of a run implement: the run must have exactly one.
pub fn the_op(kernels: &[String], ops: &[Op]) -> Result<Option<Op>> {
    match (kernels.is_empty(), ops) {
        (true, _) => Ok(None),
        (false, [op]) => Ok(Some(*op)),
        (false, _) => Err(Error::InvalidArgument {
            op: "kernel",
            why: format!(
                "--kernel {} needs exactly one --op, the op the file implements (e.g. --op matmul); this run has {}",
                kernels[0],
                if ops.is_empty() {
                    "none".to_string()
                } else {
                    ops.iter().map(|o| o.name()).collect::<Vec<_>>().join(", ")
                }
            ),
        }),
    }
}

/// Loads every file of `kernels` as a variant of `op` on the device of its kind, opening that
/// backend (on `adapter`) and adding it to `devices` when the run lacks it. Shared libraries are
/// loaded here only `in_child`; otherwise they are returned for [`crate::isolate`].
pub fn load(kernels: &[String], op: Op, devices: &mut Vec<Device>, adapter: Option<&str>, in_child: bool) -> Loaded {
    let mut loaded = Loaded::default();
    for spec in kernels {
        let file = match KernelFile::open(spec, op) {
            Ok(file) => file,
            Err(e) => {
                let kind = SourceKind::of(std::path::Path::new(path_of(spec)));
                let backend = kind.map_or("?", |k| k.backend().name());
                loaded.not_run.push(NotRun::new(
                    &file_name(spec),
                    backend,
                    String::new(),
                    None,
                    Status::Error,
                    &e.to_string(),
                ));
                continue;
            }
        };
        if file.kind == SourceKind::SharedLibrary && !in_child {
            loaded.isolated.push((spec.clone(), file));
            continue;
        }
        let device = match device_for(file.kind.backend(), devices, adapter) {
            Ok(device) => device,
            Err(reason) => {
                loaded.not_run.push(unavailable(&file, &reason));
                continue;
            }
        };
        match device.load_kernel(&file) {
            Ok(variant) => loaded.names.push(variant.name),
            Err(e) => {
                let backend = device.kind().name();
                loaded.not_run.push(NotRun::new(
                    file.name,
                    backend,
                    device.info().name,
                    Some(&file),
                    Status::Error,
                    &e.to_string(),
                ));
            }
        }
    }
    loaded
}

/// The run's device of `kind`, or that backend opened now and added to the run.
fn device_for(
    kind: BackendKind,
    devices: &mut Vec<Device>,
    adapter: Option<&str>,
) -> std::result::Result<Device, Error> {
    if let Some(device) = devices.iter().find(|d| d.kind() == kind) {
        return Ok(device.clone());
    }
    let device = backends::open_with(kind, adapter)?;
    devices.push(device.clone());
    Ok(device)
}

/// A file whose backend cannot be opened here: a PTX file is checked as far as its text allows
/// (entry point, parameters, block) and skipped with the reason; anything else is an error.
fn unavailable(file: &KernelFile, reason: &Error) -> NotRun {
    let backend = file.kind.backend().name();
    let not_run = |status, why: &str| NotRun::new(file.name, backend, String::new(), Some(file), status, why);
    if file.kind != SourceKind::Ptx {
        return not_run(Status::Error, &format!("cannot run it: {reason}"));
    }
    match kernelab_cuda::loaded::check(file) {
        Ok(checked) => not_run(
            Status::Skipped,
            &format!(
                "skipped: checked without a device (entry `{}`, the parameters of a {} kernel, block {}x{}); not \
                 run: {reason}",
                checked.entry, file.op, checked.block.0, checked.block.1
            ),
        ),
        Err(e) => not_run(Status::Error, &e.to_string()),
    }
}

/// The path of a `PATH[:ENTRY]` spec.
pub fn path_of(spec: &str) -> &str {
    KernelFile::split(spec).0
}

/// The file name of a `PATH[:ENTRY]` spec that could not be opened, for its rows.
fn file_name(spec: &str) -> String {
    let path = std::path::Path::new(path_of(spec));
    path.file_name().map_or_else(|| spec.to_string(), |n| n.to_string_lossy().into_owned())
}

/// Puts `extra` rows among `records`, each after the last row of the same op, shape and layout
/// (at the end when there is none), so a kernel's rows sit beside the built-in ones they compete
/// with.
pub fn merge(records: &mut Vec<Record>, extra: Vec<Record>) {
    for row in extra {
        let same = |r: &Record| r.op == row.op && r.shape == row.shape && r.transpose == row.transpose;
        let at = records.iter().rposition(same).map_or(records.len(), |i| i + 1);
        records.insert(at, row);
    }
}

/// The rows of the shared library `file` at `specs`, checked and timed by a child process run
/// with `args` (see [`crate::isolate`]); error rows saying how it ended when it crashed or hung.
pub fn in_child(file: &KernelFile, args: &[String], limit: std::time::Duration, specs: &[Spec]) -> Vec<Record> {
    let template = NotRun::new(file.name, "cpu", kernelab_cpu::cpu_model(), Some(file), Status::Error, "");
    let dir = match tempfile::tempdir() {
        Ok(dir) => dir,
        Err(e) => {
            let why = format!("no temporary folder for the report of the process that runs it: {e}");
            return NotRun { note: format!("error: {why}"), ..template }.rows(specs);
        }
    };
    let report = dir.path().join("report.json");
    let mut args = args.to_vec();
    args.extend(["--json".to_string(), report.display().to_string()]);
    crate::isolate::bench_rows(file, &args, &report, limit, template.rows(specs))
}
