//! The processes a run trains in: one, or the ranks of an MPI world (`--distributed`, feature
//! `mpi`). Joining the world, agreeing at start that every rank trains the same run, and what
//! only rank 0 does. Without the feature, asking for a world is an error that says how to build
//! with it, and [`Comm`] is a type with no values, so every distributed branch compiles away.

use kernelab_tensor::{Error, Result};

use crate::{Data, Mlp};

#[cfg(feature = "mpi")]
pub use crate::distributed::Comm;

/// Stands in for the MPI world in a build without it: no value exists.
#[cfg(not(feature = "mpi"))]
#[derive(Debug)]
pub enum Comm {}

/// The MPI world when `distributed`, else none.
pub fn start(distributed: bool) -> Result<Option<Comm>> {
    if !distributed {
        return Ok(None);
    }
    #[cfg(feature = "mpi")]
    {
        Comm::init().map(Some)
    }
    #[cfg(not(feature = "mpi"))]
    {
        Err(Error::InvalidArgument {
            op: "distributed",
            why: "this kernelab was built without MPI; rebuild with `--features mpi` \
                  (needs libopenmpi-dev, openmpi-bin and libclang-dev)"
                .into(),
        })
    }
}

/// Whether this process logs, evaluates and writes files: every single process, rank 0 of a world.
pub fn leads(comm: Option<&Comm>) -> bool {
    match comm {
        None => true,
        #[cfg(feature = "mpi")]
        Some(c) => c.rank() == 0,
        #[cfg(not(feature = "mpi"))]
        Some(c) => match *c {},
    }
}

/// `2 ranks` or nothing, for the start-up line.
pub fn describe(comm: Option<&Comm>) -> Option<String> {
    match comm {
        None => None,
        #[cfg(feature = "mpi")]
        Some(c) => Some(format!("{} ranks", c.size())),
        #[cfg(not(feature = "mpi"))]
        Some(c) => match *c {},
    }
}

/// Collective: every rank's setup succeeded, or every rank stops with an error (the failing ranks
/// with their own, the others naming them), so that no rank waits for a failed one.
pub fn agree<T>(comm: Option<&Comm>, setup: Result<T>) -> Result<T> {
    let Some(comm) = comm else { return setup };
    #[cfg(not(feature = "mpi"))]
    match *comm {}
    #[cfg(feature = "mpi")]
    {
        let failed = comm.failed_ranks(setup.is_ok());
        match setup {
            Err(e) => Err(Error::InvalidArgument { op: "distributed", why: format!("rank {}: {e}", comm.rank()) }),
            Ok(_) if !failed.is_empty() => Err(Error::InvalidArgument {
                op: "distributed",
                why: format!(
                    "rank {} could not start (its own message says why); rank {} stops too",
                    failed.iter().map(usize::to_string).collect::<Vec<_>>().join(", "),
                    comm.rank()
                ),
            }),
            ok => ok,
        }
    }
}

/// `result`, except that in a world a failure past the start ends the whole job (the other ranks
/// would otherwise wait in the next collective forever): printed, then every rank aborted.
pub fn or_abort<T>(comm: Option<&Comm>, result: Result<T>) -> Result<T> {
    match (comm, result) {
        (None, result) | (Some(_), result @ Ok(_)) => result,
        #[cfg(feature = "mpi")]
        (Some(comm), Err(e)) => comm.fail_all(e),
        #[cfg(not(feature = "mpi"))]
        (Some(comm), Err(_)) => match *comm {},
    }
}

/// One value the ranks must agree on, and how to show it to a person.
pub struct Field {
    pub name: &'static str,
    pub value: u64,
    pub show: fn(u64) -> String,
}

impl Field {
    /// A count or size, shown as a number.
    pub fn count(name: &'static str, value: u64) -> Self {
        Self { name, value, show: |v| v.to_string() }
    }

    /// An f32 setting, compared bit for bit.
    pub fn real(name: &'static str, value: f32) -> Self {
        Self { name, value: u64::from(value.to_bits()), show: |v| f32::from_bits(v as u32).to_string() }
    }

    /// Something compared by a fingerprint (a model's layer widths, its initial parameters, data).
    pub fn fingerprint(name: &'static str, value: u64) -> Self {
        Self { name, value, show: |v| format!("{v:016x}") }
    }
}

/// Collective: every rank trains the same run — the model and its initial parameters, the data
/// (its sizes and a digest of every image and label, training and test) and `settings` — or every
/// rank stops with the differing values named. Nothing is computed outside a world.
pub fn check_same_run(comm: Option<&Comm>, model: &Mlp, data: &Data, settings: Vec<Field>) -> Result<()> {
    let Some(comm) = comm else { return Ok(()) };
    #[cfg(not(feature = "mpi"))]
    {
        let _ = (model, data, settings);
        match *comm {}
    }
    #[cfg(feature = "mpi")]
    {
        let (train, test) = data.digests();
        let mut fields = vec![
            Field::fingerprint("the model", fingerprint(&model.spec())),
            Field::fingerprint("the initial parameters", checksum(model)?),
            Field::count("training images", data.train.len() as u64),
            Field::count("test images", data.test.len() as u64),
            Field::fingerprint("the training data (images and labels)", train),
            Field::fingerprint("the test data (images and labels)", test),
        ];
        fields.extend(settings);
        comm.check_same(&fields)
    }
}

/// FNV-1a over the bits of every parameter of `model` (one download of each).
pub fn checksum(model: &Mlp) -> Result<u64> {
    let mut hash = crate::fnv::OFFSET;
    for p in model.parameters() {
        hash =
            crate::fnv::extend(hash, &p.to_vec()?.iter().flat_map(|v| v.to_bits().to_le_bytes()).collect::<Vec<u8>>());
    }
    Ok(hash)
}

/// FNV-1a of a text (a model's spec).
pub fn fingerprint(text: &str) -> u64 {
    crate::fnv::extend(crate::fnv::OFFSET, text.as_bytes())
}
