//! `--distributed`: joining the MPI world (feature `mpi`), agreeing at start, and what only rank 0
//! does. Without the feature, asking for it is an error that says how to build with it.

use kernelab_nn::Mlp;
use kernelab_tensor::{Error, Result};

#[cfg(feature = "mpi")]
pub use kernelab_nn::distributed::{Comm, Field};

/// Stands in for the MPI world in a build without it: no value exists.
#[cfg(not(feature = "mpi"))]
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

/// Collective: every rank trains the same run — model, initial parameters, data and settings —
/// or every rank stops with the differing values named.
#[allow(clippy::too_many_arguments)]
pub fn check_same_run(
    comm: Option<&Comm>,
    model: &Mlp,
    batch: usize,
    epochs: usize,
    seed: u64,
    lr: f32,
    train_rows: usize,
    test_rows: usize,
    extra: &[(&'static str, f32)],
) -> Result<()> {
    let Some(comm) = comm else { return Ok(()) };
    #[cfg(not(feature = "mpi"))]
    {
        let _ = (model, batch, epochs, seed, lr, train_rows, test_rows, extra);
        match *comm {}
    }
    #[cfg(feature = "mpi")]
    {
        use kernelab_nn::distributed::{checksum, fingerprint};
        let mut fields = vec![
            Field::fingerprint("the model", fingerprint(&model.spec())),
            Field::fingerprint("the initial parameters", checksum(model)?),
            Field::count("--batch", batch),
            Field::count("--epochs", epochs),
            Field::count("--seed", seed as usize),
            Field::real("--lr", lr),
            Field::count("training images", train_rows),
            Field::count("test images", test_rows),
        ];
        fields.extend(extra.iter().map(|&(name, v)| Field::real(name, v)));
        comm.check_same(&fields)
    }
}

/// Ends the whole job after a failure past the start (the other ranks would wait forever in the
/// next all-reduce): prints the error, then MPI_Abort.
#[cfg(feature = "mpi")]
pub fn fail_all(comm: &Comm, error: Error) -> ! {
    eprintln!("error (rank {} of {}): {error}; stopping every rank", comm.rank(), comm.size());
    comm.abort(2)
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
