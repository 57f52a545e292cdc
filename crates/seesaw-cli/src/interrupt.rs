//! Ctrl-C and SIGTERM during a run that writes files: remove the temporary files and staging
//! folders it was writing, then exit with 128 + the signal's number, as a shell does. Without
//! this, a simulation interrupted mid-write leaves hidden temporaries of hundreds of MB until the
//! next run in that folder removes them.
//!
//! The signal is received on a thread (signal-hook's iterator), not in a signal handler, so the
//! removal may lock, allocate and call the file system. Outputs already renamed into place are
//! whole files and stay.

use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

/// Starts the thread that waits for SIGINT or SIGTERM. Not for `serve`, which stops gracefully
/// on those signals itself.
pub fn remove_temporaries_on_interrupt() {
    let mut signals = match Signals::new([SIGINT, SIGTERM]) {
        Ok(signals) => signals,
        Err(e) => {
            tracing::warn!(
                "cannot watch for interrupts ({e}); an interrupted run may leave temporary files"
            );
            return;
        }
    };
    std::thread::spawn(move || {
        if let Some(signal) = signals.forever().next() {
            seesaw_data::atomic::remove_temporaries_and_exit(128 + signal);
        }
    });
}
