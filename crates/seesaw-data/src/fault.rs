//! Fault injection for the kill tests: `SEESAW_FAULT=<point>@<n>` makes the process abort (as a
//! `kill -9` would: no destructor, no cleanup) the n-th time it reaches the named point, so that
//! a test can place a kill exactly between two files of a checkpoint or a model save. Unset (the
//! only case outside tests), a point costs one environment lookup, once per process.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The environment variable that arms a fault point.
pub const FAULT_VARIABLE: &str = "SEESAW_FAULT";

/// The armed point and the hit that fires it, read once.
fn armed() -> Option<&'static (String, usize)> {
    static ARMED: OnceLock<Option<(String, usize)>> = OnceLock::new();
    ARMED
        .get_or_init(|| {
            let value = std::env::var(FAULT_VARIABLE).ok()?;
            let (point, n) = value.split_once('@').unwrap_or((&value, "1"));
            Some((point.to_owned(), n.parse().ok()?))
        })
        .as_ref()
}

/// Aborts the process if `point` is armed and this is its n-th hit.
pub fn point(point: &str) {
    static HITS: AtomicUsize = AtomicUsize::new(0);
    if let Some((armed, n)) = armed()
        && armed == point
        && HITS.fetch_add(1, Ordering::SeqCst) + 1 == *n
    {
        eprintln!("{FAULT_VARIABLE}: aborting at {point} (hit {n})");
        std::process::abort();
    }
}
