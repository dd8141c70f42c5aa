//! The snapshot reader: `read_info`, `verify_file` and `load_snapshot` on a file that may
//! come from any peer (`bb-sync` downloads them). Each must return an error, never panic,
//! and never allocate beyond what the file's size justifies (the allocator in `bb_fuzz`
//! aborts on a forged length).
//!
//! The first input byte picks the mode: even, the rest of the input is the file; odd, it
//! is a header and raw chunks that are framed with valid checksums first
//! (`bb_fuzz::snapshot_file`), so the fuzzer reaches the chunk and bank decoders.
//!
//! Properties: a file that loads also verifies, and the loaded bank has the bank hash the
//! header records; verification and `read_info` agree on what the header says.
#![no_main]

use std::sync::OnceLock;

use bb_core::Genesis;
use bb_fuzz::snapshot_file::{frame, from_structured};
use bb_fuzz::{scratch_file, seeds};
use bb_snapshots::{NoProgress, load_snapshot, read_info, verify_file};
use libfuzzer_sys::fuzz_target;

fn genesis() -> &'static Genesis {
    static GENESIS: OnceLock<Genesis> = OnceLock::new();
    GENESIS.get_or_init(seeds::snapshot_genesis)
}

fuzz_target!(
    init: seeds::write_if_asked("snapshot", seeds::snapshots),
    |data: &[u8]| check(data)
);

fn check(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let file = if mode & 1 == 0 {
        rest.to_vec()
    } else {
        let (header, chunks) = from_structured(rest);
        frame(header, &chunks)
    };
    let path = scratch_file("snap.bbsnap");
    std::fs::write(&path, &file).expect("scratch file");

    let info = read_info(&path);
    let verified = verify_file(&path, &NoProgress);
    let loaded = load_snapshot(&path, genesis(), &NoProgress);
    let _ = std::fs::remove_file(&path);

    if let Ok(verified) = &verified {
        assert_eq!(
            info.as_ref().ok(),
            Some(verified),
            "read_info disagrees with verify_file"
        );
    }
    if let Ok(bank) = loaded {
        let verified = verified.expect("a snapshot that loads also verifies");
        assert_eq!(
            bank.hash(),
            Some(verified.bank_hash),
            "the loaded bank has another hash"
        );
        assert_eq!(bank.slot(), verified.slot);
    }
}
