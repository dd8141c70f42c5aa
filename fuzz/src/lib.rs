//! What the fuzz targets share: an allocator that turns a forged length into a crash, the
//! round-trip check of canonical encodings, and the hook that writes each target's seeds.
//!
//! Every target in `fuzz_targets/` feeds arbitrary bytes to one real decoder of untrusted
//! input. A target fails (and libFuzzer keeps the input under `fuzz/artifacts/`) when the
//! decoder panics, overflows (targets are built with overflow checks), hangs, or asks for
//! more memory than its input can justify.

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

use bb_core::Canonical;

pub mod seeds;
pub mod shred_tree;
pub mod snapshot_file;

/// The largest single allocation any decoder may make from a fuzz input (every target's
/// inputs are at most a few hundred KiB). A forged length prefix that reaches the allocator
/// asks for far more than this and aborts here, whether or not the memory would ever be
/// touched: without a sanitizer, libFuzzer's `-rss_limit_mb` only sees pages in use.
pub const MAX_ALLOCATION: usize = 256 << 20;
/// The most heap all live allocations together may hold.
pub const MAX_LIVE: usize = 1536 << 20;

/// The system allocator, with the two limits above. Reports on stderr and aborts, which
/// libFuzzer records as a crash with the input that caused it.
#[derive(Debug)]
pub struct CappedAllocator {
    live: AtomicUsize,
}

#[global_allocator]
static ALLOCATOR: CappedAllocator = CappedAllocator {
    live: AtomicUsize::new(0),
};

impl CappedAllocator {
    fn admit(&self, size: usize) {
        if size > MAX_ALLOCATION {
            over_limit(b"bb-fuzz: a single allocation over MAX_ALLOCATION (256 MiB)\n");
        }
        if self.live.fetch_add(size, Ordering::Relaxed) + size > MAX_LIVE {
            over_limit(b"bb-fuzz: live heap over MAX_LIVE (1536 MiB)\n");
        }
    }
}

/// Writes without allocating (we are inside the allocator) and aborts.
fn over_limit(message: &[u8]) -> ! {
    let _ = std::io::stderr().write_all(message);
    std::process::abort()
}

// SAFETY: every method forwards to `System` with the caller's arguments unchanged; the
// counter only observes sizes.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for CappedAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        self.admit(layout.size());
        // SAFETY: forwarded unchanged.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        self.admit(layout.size());
        // SAFETY: forwarded unchanged.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        self.live.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: forwarded unchanged.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size > layout.size() {
            self.admit(new_size - layout.size());
        } else {
            self.live
                .fetch_sub(layout.size() - new_size, Ordering::Relaxed);
        }
        if new_size > MAX_ALLOCATION {
            over_limit(b"bb-fuzz: a single allocation over MAX_ALLOCATION (256 MiB)\n");
        }
        // SAFETY: forwarded unchanged.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// Decodes `data` as `T`; if it decodes, checks the canonical-encoding promise: the value
/// re-encodes to exactly the input, and that decodes to the same value again.
pub fn canonical_round_trip<T>(data: &[u8]) -> Option<T>
where
    T: Canonical + PartialEq + std::fmt::Debug,
{
    let value = T::from_bytes(data).ok()?;
    let bytes = value.to_bytes();
    assert_eq!(
        bytes,
        data,
        "{}: a decoded value re-encodes to other bytes",
        T::NAME
    );
    assert_eq!(
        T::from_bytes(&bytes).as_ref(),
        Ok(&value),
        "{}: the re-encoding does not decode to the same value",
        T::NAME
    );
    Some(value)
}

/// A scratch file of this process for targets whose decoder reads a path: in `/dev/shm`
/// when there is one (no disk writes per execution), else the temp directory.
pub fn scratch_file(name: &str) -> std::path::PathBuf {
    let dir = if Path::new("/dev/shm").is_dir() {
        std::path::PathBuf::from("/dev/shm")
    } else {
        std::env::temp_dir()
    };
    dir.join(format!("bb-fuzz-{}-{name}", std::process::id()))
}
