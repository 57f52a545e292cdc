//! Whether this process was started by an MPI launcher (mpirun, mpiexec, srun with PMIx), read
//! from the variables the launchers set, so that a binary built without MPI support can refuse
//! instead of training N independent copies that overwrite each other's output.

/// The rank and world size a launcher announced in the environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LaunchedRank {
    pub rank: usize,
    pub size: usize,
}

/// Open MPI's, MPICH/Hydra's and PMIx's names for the world size and this process's rank.
const SIZE_VARIABLES: [&str; 3] = ["OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE"];
const RANK_VARIABLES: [&str; 3] = ["OMPI_COMM_WORLD_RANK", "PMI_RANK", "PMIX_RANK"];

/// The launcher's rank and size, when an MPI launcher started this process.
pub fn launched_rank() -> Option<LaunchedRank> {
    launched_rank_from(|name| std::env::var(name).ok())
}

/// [`launched_rank`] over any environment, for tests.
pub fn launched_rank_from(var: impl Fn(&str) -> Option<String>) -> Option<LaunchedRank> {
    let first = |names: &[&str]| names.iter().find_map(|n| var(n)?.trim().parse::<usize>().ok());
    let rank = first(&RANK_VARIABLES)?;
    // PMIx alone sets no size variable with some launchers: a rank without a size is still a
    // launched process.
    let size = first(&SIZE_VARIABLES).unwrap_or(rank + 1);
    Some(LaunchedRank { rank, size })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| pairs.iter().find(|(n, _)| *n == name).map(|(_, v)| v.to_string())
    }

    #[test]
    fn open_mpi_mpich_and_pmix_launches_are_recognised() {
        let ompi = [("OMPI_COMM_WORLD_RANK", "1"), ("OMPI_COMM_WORLD_SIZE", "4")];
        assert_eq!(launched_rank_from(env(&ompi)), Some(LaunchedRank { rank: 1, size: 4 }));
        let mpich = [("PMI_RANK", "0"), ("PMI_SIZE", "2")];
        assert_eq!(launched_rank_from(env(&mpich)), Some(LaunchedRank { rank: 0, size: 2 }));
        let pmix = [("PMIX_RANK", "2")];
        assert_eq!(launched_rank_from(env(&pmix)), Some(LaunchedRank { rank: 2, size: 3 }));
    }

    #[test]
    fn a_plain_start_is_not_a_launch() {
        assert_eq!(launched_rank_from(env(&[])), None);
        assert_eq!(launched_rank_from(env(&[("PMI_SIZE", "2")])), None);
    }
}
