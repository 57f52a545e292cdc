//! Fault injection for the kill tests: `SEESAW_FAULT=<point>@<n>` makes the process abort (as a
//! `kill -9` would: no destructor, no cleanup) the n-th time it reaches the named point, so that
//! a test can place a kill exactly between two files of a checkpoint or a model save.
//! `SEESAW_FAULT=hang:<point>@<n>` makes it stop there for ever instead (a hung rank, for the
//! data-parallel tests). Unset (the only case outside tests), a point costs one environment
//! lookup, once per process.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The environment variable that arms a fault point.
pub const FAULT_VARIABLE: &str = "SEESAW_FAULT";

/// What an armed point does when it fires.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Fault {
    Abort,
    Hang,
}

/// The armed point, the hit that fires it and what it does, read once.
fn armed() -> Option<&'static (String, usize, Fault)> {
    static ARMED: OnceLock<Option<(String, usize, Fault)>> = OnceLock::new();
    ARMED
        .get_or_init(|| {
            let value = std::env::var(FAULT_VARIABLE).ok()?;
            let (fault, value) = match value.strip_prefix("hang:") {
                Some(rest) => (Fault::Hang, rest.to_owned()),
                None => (Fault::Abort, value),
            };
            let (point, n) = value.split_once('@').unwrap_or((&value, "1"));
            Some((point.to_owned(), n.parse().ok()?, fault))
        })
        .as_ref()
}

/// Aborts the process (or stops it for ever) if `point` is armed and this is its n-th hit.
pub fn point(point: &str) {
    static HITS: AtomicUsize = AtomicUsize::new(0);
    if let Some((armed, n, fault)) = armed()
        && armed == point
        && HITS.fetch_add(1, Ordering::SeqCst) + 1 == *n
    {
        match fault {
            Fault::Abort => {
                eprintln!("{FAULT_VARIABLE}: aborting at {point} (hit {n})");
                std::process::abort();
            }
            Fault::Hang => {
                eprintln!("{FAULT_VARIABLE}: hanging at {point} (hit {n})");
                loop {
                    std::thread::park();
                }
            }
        }
    }
}
