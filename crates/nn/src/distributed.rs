//! Data parallelism across processes and hosts over MPI (feature `mpi`): one rank per process,
//! started by `mpirun`. Every rank holds the same model (seeded alike, checked at start) and walks
//! the same shuffled global batches; rank `r` takes its slice of each batch and splits it again over
//! its own devices ([`DataParallel`]). The local gradient `g_r` (the gradient of the mean loss over
//! the rank's `n_r` rows) is weighted by `n_r/N` and summed over ranks with one `MPI_Allreduce` of a
//! flat f32 buffer, so every rank receives `g = Σ_r (n_r/N)·g_r`, the gradient of the mean over the
//! whole batch, and takes the identical Adam step. Rank 0 alone evaluates, logs and saves.

use std::ops::Range;
use std::time::Instant;

use mpi::collective::SystemOperation;
use mpi::environment::Universe;
use mpi::topology::SimpleCommunicator;
use mpi::traits::*;

use kernelab_tensor::{Error, Result};

use crate::Mlp;
use crate::parallel::DataParallel;
use crate::train::Fit;
use crate::world::{Field, checksum};

/// The MPI world of this process.
pub struct Comm {
    world: SimpleCommunicator,
    /// Finalizes MPI when dropped (after `world`).
    _universe: Universe,
}

/// Environment variables that MPI launchers set in every rank they start.
const LAUNCHER_VARIABLES: [&str; 4] = ["OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK", "MPI_LOCALNRANKS"];

impl Comm {
    /// Joins the MPI world this process was started in by `mpirun`.
    pub fn init() -> Result<Self> {
        if !LAUNCHER_VARIABLES.iter().any(|v| std::env::var_os(v).is_some()) {
            return Err(Error::InvalidArgument {
                op: "distributed",
                why: "--distributed runs one rank per process under an MPI launcher, e.g. \
                      `mpirun -np 2 kernelab train --distributed`; this process was not started by one"
                    .into(),
            });
        }
        let universe = mpi::initialize().ok_or_else(|| Error::InvalidArgument {
            op: "distributed",
            why: "MPI was already initialized in this process".into(),
        })?;
        Ok(Self { world: universe.world(), _universe: universe })
    }

    pub fn rank(&self) -> usize {
        self.world.rank() as usize
    }

    pub fn size(&self) -> usize {
        self.world.size() as usize
    }

    /// This rank's rows of a global batch of `rows`: an equal split, the remainder to the last ranks.
    pub fn share(&self, rows: usize) -> Range<usize> {
        share(rows, self.rank(), self.size())
    }

    /// `Σ_ranks send`, element by element, on every rank.
    pub fn sum_f32(&self, send: &[f32]) -> Vec<f32> {
        let mut sum = vec![0.0f32; send.len()];
        self.world.all_reduce_into(send, &mut sum[..], SystemOperation::sum());
        sum
    }

    /// `Σ_ranks value` on every rank.
    pub fn sum_f64(&self, value: f64) -> f64 {
        let mut sum = 0.0f64;
        self.world.all_reduce_into(&value, &mut sum, SystemOperation::sum());
        sum
    }

    /// Every rank's `values` (all the same length), by rank.
    pub fn gather_u64(&self, values: &[u64]) -> Vec<Vec<u64>> {
        let mut all = vec![0u64; values.len() * self.size()];
        self.world.all_gather_into(values, &mut all[..]);
        all.chunks(values.len().max(1)).map(<[u64]>::to_vec).collect()
    }

    /// Collective: whether every rank is `ok`; when not, the ranks that are not.
    pub fn failed_ranks(&self, ok: bool) -> Vec<usize> {
        let flags = self.gather_u64(&[u64::from(!ok)]);
        flags.iter().enumerate().filter(|(_, f)| f[0] != 0).map(|(r, _)| r).collect()
    }

    /// Collective: the same `fields` on every rank, or an error that names each field that differs
    /// and every rank's value of it.
    pub fn check_same(&self, fields: &[Field]) -> Result<()> {
        let values: Vec<u64> = fields.iter().map(|f| f.value).collect();
        let all = self.gather_u64(&values);
        let differing: Vec<String> = fields
            .iter()
            .enumerate()
            .filter(|(i, _)| all.iter().any(|rank| rank[*i] != all[0][*i]))
            .map(|(i, f)| {
                let per_rank: Vec<String> =
                    all.iter().enumerate().map(|(r, v)| format!("rank {r}: {}", (f.show)(v[i]))).collect();
                format!("{} ({})", f.name, per_rank.join(", "))
            })
            .collect();
        if differing.is_empty() {
            return Ok(());
        }
        Err(Error::InvalidArgument {
            op: "distributed",
            why: format!("the ranks disagree on {}; every rank must train the same run", differing.join("; ")),
        })
    }

    /// Ends every rank of the job with `code` (for a failure after the start, where the other ranks
    /// would otherwise wait in the next all-reduce forever).
    pub fn abort(&self, code: i32) -> ! {
        self.world.abort(code)
    }

    /// Ends the whole job after a failure past the start: prints `error` naming this rank, then
    /// aborts every rank.
    pub fn fail_all(&self, error: Error) -> ! {
        eprintln!("error (rank {} of {}): {error}; stopping every rank", self.rank(), self.size());
        self.abort(2)
    }
}

/// Rows `[lo, hi)` of `rows` for `rank` of `size`: `rows / size` each, one more for the last
/// `rows % size` ranks.
pub fn share(rows: usize, rank: usize, size: usize) -> Range<usize> {
    let (base, extra) = (rows / size.max(1), rows % size.max(1));
    let size_of = |r: usize| base + usize::from(r >= size - extra);
    let lo: usize = (0..rank).map(size_of).sum();
    lo..lo + size_of(rank)
}

/// This rank's share of a distributed run: its local devices, and the world to all-reduce over.
pub struct Distributed<'c> {
    local: DataParallel,
    comm: &'c Comm,
    allreduce_s: f64,
    /// All-reduce a parameter checksum after every step and fail if the ranks differ.
    verify: bool,
    steps: usize,
}

impl<'c> Distributed<'c> {
    pub fn new(local: DataParallel, comm: &'c Comm, verify: bool) -> Self {
        Self { local, comm, allreduce_s: 0.0, verify, steps: 0 }
    }
}

impl Fit for Distributed<'_> {
    fn step(&mut self, images: &[f32], labels: &[u32]) -> Result<()> {
        let rows = labels.len();
        let features = images.len() / rows.max(1);
        let mine = self.comm.share(rows);
        let mut flat = if mine.is_empty() {
            vec![0.0; self.local.parameter_count()]
        } else {
            self.local.flat_gradient(&images[mine.start * features..mine.end * features], &labels[mine.clone()])?
        };
        let weight = mine.len() as f32 / rows.max(1) as f32;
        flat.iter_mut().for_each(|g| *g *= weight);
        let started = Instant::now();
        let global = self.comm.sum_f32(&flat);
        self.allreduce_s += started.elapsed().as_secs_f64();
        self.local.apply_flat(&global)?;
        self.steps += 1;
        if self.verify {
            let sums = self.comm.gather_u64(&[checksum(self.local.model())?]);
            if sums.iter().any(|s| s != &sums[0]) {
                return Err(Error::Device {
                    backend: "mpi".into(),
                    message: format!("the ranks' parameters differ after step {}: checksums {sums:x?}", self.steps),
                });
            }
        }
        Ok(())
    }

    fn take_loss_sum(&mut self) -> Result<f64> {
        let local = self.local.take_loss_sum()?;
        Ok(self.comm.sum_f64(local))
    }

    fn peek_loss_sum(&mut self) -> Result<f64> {
        // This rank's rows only: a collective here would make every rank wait for the display.
        Ok(self.local.peek_loss_sum()? * self.comm.size() as f64)
    }

    fn model(&self) -> &Mlp {
        self.local.model()
    }

    fn into_model(self: Box<Self>) -> Mlp {
        Box::new(self.local).into_model()
    }

    fn evaluates(&self) -> bool {
        self.comm.rank() == 0
    }

    fn world_size(&self) -> usize {
        self.comm.size()
    }

    fn take_allreduce_seconds(&mut self) -> f64 {
        std::mem::take(&mut self.allreduce_s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_cover_the_batch_in_order() {
        for (rows, size) in [(64, 2), (65, 2), (10, 3), (1, 4), (0, 2)] {
            let ranges: Vec<Range<usize>> = (0..size).map(|r| share(rows, r, size)).collect();
            assert_eq!(ranges[0].start, 0);
            assert!(ranges.windows(2).all(|w| w[0].end == w[1].start), "{ranges:?}");
            assert_eq!(ranges[size - 1].end, rows);
            let lens: Vec<usize> = ranges.iter().map(|r| r.len()).collect();
            assert!(lens.iter().max().unwrap() - lens.iter().min().unwrap() <= 1, "{lens:?}");
        }
        assert_eq!(share(10, 2, 3), 6..10, "the remainder goes to the last ranks");
    }
}
