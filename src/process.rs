//! Process-wide settings applied once, before the runtime starts: for now, whether the kernel
//! may back the heap with transparent huge pages.
//!
//! mimalloc asks for huge pages (`madvise(MADV_HUGEPAGE)`) on every region it maps. The first
//! touch of such a region makes the kernel zero a whole 2 MiB page. In a connect storm, when the
//! heap grows by a connection's worth of buffers at a time, that zeroing was 28% of the server's
//! CPU (`perf`, 10,000 connections in rooms of 100), and turning it off took the storm from
//! 5.7-7.2 k to 8.6-10.3 k connections/s; at saturation it made no difference beyond the noise
//! (docs/PERFORMANCE.md). So huge pages are off unless `[server] transparent_huge_pages` turns
//! them on. The switch is `prctl(PR_SET_THP_DISABLE)`, which applies to the whole process and
//! to every fault after the call, so it also overrides the allocator's advice.

/// Applies `[server] transparent_huge_pages`. Returns whether huge pages are now disabled for
/// the process (always `false` off Linux, where the switch does not exist).
///
/// # Errors
/// The `prctl` failure (only on kernels older than 3.15).
pub fn apply_transparent_huge_pages(enabled: bool) -> std::io::Result<bool> {
    #[cfg(target_os = "linux")]
    {
        rustix::thread::disable_transparent_huge_pages(!enabled)?;
        Ok(rustix::thread::transparent_huge_pages_are_disabled()?)
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = enabled;
        Ok(false)
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn the_setting_reaches_the_kernel_both_ways() {
        assert!(apply_transparent_huge_pages(false).unwrap(), "disabled");
        assert!(
            !apply_transparent_huge_pages(true).unwrap(),
            "enabled again"
        );
        assert!(apply_transparent_huge_pages(false).unwrap());
    }
}
