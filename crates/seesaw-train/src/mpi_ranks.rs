//! The ranks of an MPI job (rsmpi over the system's MPI, Open MPI on Debian) as a
//! [`Collective`]: the gradient sum is one `MPI_Allreduce` per step. Built with the
//! `distributed` feature only, so that a machine without MPI still builds Seesaw.

use mpi::collective::{CommunicatorCollectives, SystemOperation};
use mpi::datatype::PartitionMut;
use mpi::environment::{Threading, Universe};
use mpi::topology::{Communicator, SimpleCommunicator};

use crate::collective::Collective;

/// This process's place in the MPI job started by the launcher.
pub struct MpiRanks {
    // Dropped before the universe, whose drop finalises MPI.
    world: SimpleCommunicator,
    _universe: Universe,
    /// Whether another thread (the watchdog) may call MPI while training calls it.
    threads_may_call: bool,
}

impl MpiRanks {
    /// Initialises MPI; `Err` when it was initialised already (one universe per process).
    pub fn initialize() -> Result<Self, String> {
        let (universe, threading) = mpi::initialize_with_threading(Threading::Multiple)
            .ok_or("MPI was initialised already in this process")?;
        let world = universe.world();
        Ok(Self { world, _universe: universe, threads_may_call: threading == Threading::Multiple })
    }

    /// Ends every rank of the job from any thread: `MPI_Abort` where the library allows calls
    /// from a second thread, otherwise this process's exit, which mpirun answers by stopping the
    /// others.
    pub fn abort_handle(&self) -> impl FnOnce(i32) + Send + 'static {
        let threads_may_call = self.threads_may_call;
        move |code| {
            if threads_may_call {
                SimpleCommunicator::world().abort(code);
            }
            std::process::exit(code);
        }
    }
}

impl Collective for MpiRanks {
    fn rank(&self) -> usize {
        self.world.rank() as usize
    }
    fn size(&self) -> usize {
        self.world.size() as usize
    }
    fn sum_f32(&self, values: &mut [f32]) {
        // MPI_IN_PLACE is not in rsmpi's safe API; the copy costs a fraction of the reduce.
        let send = values.to_vec();
        self.world.all_reduce_into(&send[..], values, SystemOperation::sum());
    }
    fn all_gather_bytes(&self, mine: &[u8]) -> Vec<Vec<u8>> {
        let count = |n: usize| i32::try_from(n).expect("a gathered buffer under 2 GiB");
        let mut counts = vec![0i32; self.size()];
        self.world.all_gather_into(&count(mine.len()), &mut counts[..]);
        let displs: Vec<i32> = counts
            .iter()
            .scan(0usize, |at, &n| {
                let start = *at;
                *at += n as usize;
                Some(count(start))
            })
            .collect();
        let total: usize = counts.iter().map(|&n| n as usize).sum();
        let mut all = vec![0u8; total];
        let mut partition = PartitionMut::new(&mut all[..], &counts[..], &displs[..]);
        self.world.all_gather_varcount_into(mine, &mut partition);
        counts
            .iter()
            .zip(&displs)
            .map(|(&n, &at)| all[at as usize..(at + n) as usize].to_vec())
            .collect()
    }
}
