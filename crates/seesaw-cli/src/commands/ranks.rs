//! The ranks a `seesaw train` runs on: this process alone, or, when an MPI launcher started it,
//! the MPI job (with the `distributed` feature; without it, a clear refusal instead of N
//! independent trainings writing over each other).

use std::time::Duration;

use anyhow::Result;
use seesaw_train::collective::{Collective, SingleProcess};
use seesaw_train::launcher::{LaunchedRank, launched_rank};

/// Exit status of a rank that gave up waiting for the others.
#[cfg(feature = "distributed")]
const STALLED_EXIT: i32 = 3;

/// The collective of this run; `rank_timeout` bounds how long a rank waits for the others.
pub fn join(rank_timeout: Duration) -> Result<Box<dyn Collective>> {
    match launched_rank() {
        None => Ok(Box::new(SingleProcess)),
        Some(launched) => join_launched(launched, rank_timeout),
    }
}

#[cfg(feature = "distributed")]
fn join_launched(launched: LaunchedRank, rank_timeout: Duration) -> Result<Box<dyn Collective>> {
    use seesaw_train::mpi_ranks::MpiRanks;
    use seesaw_train::rank_watchdog::Watched;

    let ranks = MpiRanks::initialize().map_err(anyhow::Error::msg)?;
    anyhow::ensure!(
        ranks.size() == launched.size,
        "the launcher announced {} ranks, MPI has {}: was this seesaw built against another MPI \
         than the mpirun that started it?",
        launched.size,
        ranks.size()
    );
    let abort = ranks.abort_handle();
    Ok(Box::new(Watched::new(ranks, rank_timeout, move |message| {
        eprintln!("error: {message}");
        abort(STALLED_EXIT);
    })))
}

#[cfg(not(feature = "distributed"))]
fn join_launched(launched: LaunchedRank, _rank_timeout: Duration) -> Result<Box<dyn Collective>> {
    anyhow::bail!(
        "started by an MPI launcher as rank {} of {}, but this seesaw was built without MPI; \
         rebuild it with `cargo build --release --features distributed` (needs openmpi-bin, \
         libopenmpi-dev and libclang-dev), or start it without mpirun",
        launched.rank,
        launched.size
    )
}

/// Commands other than `train` run in one process: refused when a launcher started several.
pub fn refuse_several(command: &str) -> Result<()> {
    match launched_rank() {
        Some(launched) if launched.size > 1 => anyhow::bail!(
            "`seesaw {command}` runs in one process, and an MPI launcher started {} of them \
             (this is rank {}); only `seesaw train` trains across ranks: start `seesaw \
             {command}` without mpirun",
            launched.size,
            launched.rank
        ),
        _ => Ok(()),
    }
}
