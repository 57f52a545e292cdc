//! The allocator settings the binary runs with. Every tensor op of the CPU backend allocates
//! buffers of tens of kilobytes to megabytes; with glibc's defaults those are mapped and unmapped
//! (or the heap top trimmed and grown again) on every op, and a profile of `bench train` put about
//! a fifth of the time in the kernel faulting and zeroing fresh pages. Keeping freed memory for
//! reuse is what the allocator is for: raise the mmap threshold to its largest allowed value,
//! never trim the heap top, and grow it in large steps. Users need not know an environment
//! variable; values they set in MALLOC_* variables still take effect when they are given
//! (`mallopt` runs only for the settings the environment leaves alone).

/// Applies the settings; a no-op outside glibc.
pub fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // glibc refuses an mmap threshold above half its largest heap (32 MiB on 64-bit).
        const MMAP_THRESHOLD: libc::c_int = 32 << 20;
        const TOP_PAD: libc::c_int = 256 << 20;
        let settings = [
            ("MALLOC_MMAP_THRESHOLD_", libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD),
            ("MALLOC_TRIM_THRESHOLD_", libc::M_TRIM_THRESHOLD, libc::c_int::MAX),
            ("MALLOC_TOP_PAD_", libc::M_TOP_PAD, TOP_PAD),
        ];
        for (variable, parameter, value) in settings {
            if std::env::var_os(variable).is_none() {
                // SAFETY: mallopt only changes allocator parameters; it is called before any
                // other thread exists.
                unsafe { libc::mallopt(parameter, value) };
            }
        }
    }
}
