//! Seesaw patch: large work split in two halves, one done on a helper thread while the calling
//! thread does the other. A matrix product of at least `SPLIT_MIN_MACS` multiply-adds hands the
//! helper half of its output rows (or columns; `matmul.rs`, `gemm_call`), and an element-wise
//! pass over at least `SPLIT_MIN_ELEMENTS` elements half of them: in place or into a new
//! buffer, plain or broadcast (`unary.rs`, `binary.rs`, `zip.rs`, through `for_halves`,
//! `map_halves`, `zip_halves` and `ZipNest::split_outer`), and a sum over rows its columns or
//! batches (`reduce.rs`, `for_halves_in_units`). Each output element is computed by
//! the same code over the same inputs as without the split, so results are bit for bit the
//! same. `side_by_side` offers the helper to callers that split their own work (a batch scored
//! in two halves).
//!
//! burn-flex's own parallelism goes through rayon, whose hand-off and idle spinning cost more
//! than they save on the tensors of a recommendation model on a few cores (measured: training
//! at batch 512 fell by a sixth with burn's `rayon` feature). Here one persistent helper thread
//! polls for its next task, then sleeps.
//!
//! One helper, taken with `try_lock`: a caller that finds it busy (another thread is splitting)
//! does the whole work itself, so threads that already use every core (the scoring workers of a
//! server) never wait for one another. `set_helper_thread(false)` turns it off.

use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Mutex, OnceLock};
use std::thread::Thread;
use std::time::{Duration, Instant};

/// Products smaller than this (m·n·k) are not split: the hand-off costs a few microseconds.
pub(crate) const SPLIT_MIN_MACS: usize = 1 << 21;

/// How long the helper keeps polling for the next task before it sleeps. A model's products
/// come a few hundred microseconds apart; waking a sleeping thread costs tens of microseconds
/// on a virtual machine, as much as the half product it would compute.
const HELPER_SPIN: Duration = Duration::from_micros(500);

static ENABLED: AtomicBool = AtomicBool::new(true);

/// Turns the helper thread on or off for the whole process.
pub fn set_helper_thread(enabled: bool) {
    ENABLED.store(enabled, Ordering::Relaxed);
}

/// Whether `join` and `side_by_side` may use the helper thread: it is on and this machine has
/// a second core (a busy helper is not checked: `join` finds that out itself).
pub fn helper_available() -> bool {
    ENABLED.load(Ordering::Relaxed) && helper().is_some()
}

type Task = Box<dyn FnOnce() + Send + 'static>;

const IDLE: u8 = 0;
const READY: u8 = 1;
const DONE: u8 = 2;

struct Helper {
    /// IDLE → READY (the caller put a task in `task`) → DONE (the helper ran it) → IDLE.
    state: AtomicU8,
    task: Mutex<Option<Task>>,
    panic: Mutex<Option<Box<dyn std::any::Any + Send>>>,
    thread: OnceLock<Thread>,
    /// Held by the one caller whose task the helper runs.
    user: Mutex<()>,
}

fn helper() -> Option<&'static Helper> {
    static HELPER: OnceLock<Option<&'static Helper>> = OnceLock::new();
    *HELPER.get_or_init(|| {
        if std::thread::available_parallelism().map_or(1, |n| n.get()) < 2 {
            return None;
        }
        let helper: &'static Helper = Box::leak(Box::new(Helper {
            state: AtomicU8::new(IDLE),
            task: Mutex::new(None),
            panic: Mutex::new(None),
            thread: OnceLock::new(),
            user: Mutex::new(()),
        }));
        let handle = std::thread::Builder::new()
            .name("flex-helper".into())
            .spawn(move || serve(helper))
            .ok()?;
        let _ = helper.thread.set(handle.thread().clone());
        Some(helper)
    })
}

fn serve(helper: &'static Helper) {
    loop {
        let mut since = Instant::now();
        let mut polls = 0u32;
        while helper.state.load(Ordering::Acquire) != READY {
            polls = polls.wrapping_add(1);
            if polls % 256 != 0 {
                std::hint::spin_loop();
            } else if since.elapsed() > HELPER_SPIN {
                // `park` may return early; the loop checks again.
                std::thread::park();
                since = Instant::now();
            }
        }
        let task = helper.task.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(task) = task
            && let Err(panic) = catch_unwind(AssertUnwindSafe(task))
        {
            *helper.panic.lock().unwrap_or_else(|e| e.into_inner()) = Some(panic);
        }
        helper.state.store(DONE, Ordering::Release);
    }
}

/// Runs `a` on the helper thread and `b` on this one, and returns once both are done; runs both
/// here, one after the other, when splitting is off or the helper is busy or absent.
pub(crate) fn join(a: impl FnOnce() + Send, b: impl FnOnce()) {
    let helper = ENABLED.load(Ordering::Relaxed).then(helper).flatten();
    // A caller that panicked while it held the helper poisoned the lock; the helper itself is
    // fine (its task ran to the end before the panic left `join`).
    let claim = |h: &'static Helper| match h.user.try_lock() {
        Ok(user) => Some((h, user)),
        Err(std::sync::TryLockError::Poisoned(poisoned)) => Some((h, poisoned.into_inner())),
        Err(std::sync::TryLockError::WouldBlock) => None,
    };
    let Some((helper, _user)) = helper.and_then(claim) else {
        a();
        b();
        return;
    };
    let task: Box<dyn FnOnce() + Send + '_> = Box::new(a);
    // SAFETY: the task may borrow from this frame; it is erased to 'static only to reach the
    // helper. `Wait` sees it finished before this frame can end, by return or by unwind.
    let task: Task = unsafe { std::mem::transmute(task) };
    *helper.task.lock().unwrap_or_else(|e| e.into_inner()) = Some(task);
    helper.state.store(READY, Ordering::Release);
    if let Some(thread) = helper.thread.get() {
        thread.unpark();
    }
    struct Wait(&'static Helper);
    impl Drop for Wait {
        fn drop(&mut self) {
            let mut polls = 0u32;
            while self.0.state.load(Ordering::Acquire) != DONE {
                polls = polls.wrapping_add(1);
                if polls % 256 == 0 {
                    std::thread::yield_now();
                } else {
                    std::hint::spin_loop();
                }
            }
            self.0.state.store(IDLE, Ordering::Release);
        }
    }
    let wait = Wait(helper);
    b();
    drop(wait);
    if let Some(panic) = helper.panic.lock().unwrap_or_else(|e| e.into_inner()).take() {
        resume_unwind(panic);
    }
}

/// Runs `a` on the helper thread and `b` on this one and returns both results, like `join`
/// (both here, one after the other, when the helper is off, busy or absent). Work that `a` and
/// `b` start themselves is not split again: the helper is theirs until both are done. For
/// callers that split their own work in two, e.g. a batch of rows scored in two halves.
pub fn side_by_side<A: Send, B>(a: impl FnOnce() -> A + Send, b: impl FnOnce() -> B) -> (A, B) {
    let (mut from_a, mut from_b) = (None, None);
    join(|| from_a = Some(a()), || from_b = Some(b()));
    (from_a.expect("join ran a"), from_b.expect("join ran b"))
}

/// Element-wise passes over at least this many elements are split: about 20 µs of work.
pub(crate) const SPLIT_MIN_ELEMENTS: usize = 1 << 16;

/// Applies `f` to `data`, in two halves (one on the helper thread) when it is long enough;
/// `f` gets each half with the index of its first element.
pub(crate) fn for_halves<E: Send>(data: &mut [E], f: impl Fn(&mut [E], usize) + Sync) {
    for_halves_in_units(data, 1, data.len(), f)
}

/// [`for_halves`] for a pass that reads `work` elements to write `data` (a sum over rows), cut
/// on a multiple of `unit` elements (whole outputs of a batch); not split when `work` is below
/// `SPLIT_MIN_ELEMENTS` or `data` holds fewer than two units.
pub(crate) fn for_halves_in_units<E: Send>(
    data: &mut [E],
    unit: usize,
    work: usize,
    f: impl Fn(&mut [E], usize) + Sync,
) {
    let middle = data.len() / unit.max(1) / 2 * unit;
    if middle == 0 || work < SPLIT_MIN_ELEMENTS {
        f(data, 0);
        return;
    }
    let (left, right) = data.split_at_mut(middle);
    let f = &f;
    join(move || f(left, 0), move || f(right, middle));
}

/// A raw pointer that may cross to the helper thread: the halves it points into are disjoint,
/// and `join` outlives their use. (Read through `get`, so that a closure captures the wrapper,
/// not the bare pointer.)
pub(crate) struct Shared<P>(pub P);
impl<P: Copy> Clone for Shared<P> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<P: Copy> Copy for Shared<P> {}
unsafe impl<P> Send for Shared<P> {}
impl<P: Copy> Shared<P> {
    pub(crate) fn get(self) -> P {
        self.0
    }
}

/// `f` of each element of `src`, collected in order; in two halves (one on the helper thread)
/// when `src` is long enough. For element-wise ops whose input cannot be overwritten (another
/// tensor still holds it, as autodiff does with an activation's input).
pub(crate) fn map_halves<S: Copy + Sync, E: Send>(src: &[S], f: impl Fn(S) -> E + Sync) -> Vec<E> {
    let mut out: Vec<E> = Vec::with_capacity(src.len());
    for_halves(&mut out.spare_capacity_mut()[..src.len()], |part, start| {
        for (o, &x) in part.iter_mut().zip(&src[start..]) {
            o.write(f(x));
        }
    });
    // SAFETY: the halves cover all `src.len()` positions, each written once.
    unsafe { out.set_len(src.len()) };
    out
}

/// `f` of each pair of elements of `a` and `b` (of one length), like [`map_halves`].
pub(crate) fn zip_halves<A: Copy + Sync, B: Copy + Sync, E: Send>(
    a: &[A],
    b: &[B],
    f: impl Fn(A, B) -> E + Sync,
) -> Vec<E> {
    assert_eq!(a.len(), b.len());
    let mut out: Vec<E> = Vec::with_capacity(a.len());
    for_halves(&mut out.spare_capacity_mut()[..a.len()], |part, start| {
        for ((o, &x), &y) in part.iter_mut().zip(&a[start..]).zip(&b[start..]) {
            o.write(f(x, y));
        }
    });
    // SAFETY: the halves cover all `a.len()` positions, each written once.
    unsafe { out.set_len(a.len()) };
    out
}
