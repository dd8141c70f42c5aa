//! Key files: `bb_cli::keyfile::read_keypair` (size limit, then
//! `Keypair::from_key_file_json`). The parser runs on the bytes every time; inputs whose
//! first byte is a multiple of 16 also go through a file and `read_keypair`, which must
//! agree with it (file I/O on every input would slow the fuzzer tenfold). A key
//! file that parses writes back to a file that parses to the same key.
#![no_main]

use bb_core::Keypair;
use bb_fuzz::{scratch_file, seeds};
use libfuzzer_sys::fuzz_target;

fuzz_target!(
    init: seeds::write_if_asked("keyfile", seeds::keyfiles),
    |data: &[u8]| check(data)
);

fn check(data: &[u8]) {
    let parsed = Keypair::from_key_file_json(data);
    if data.first().is_some_and(|b| b % 16 == 0) {
        let path = scratch_file("key.json");
        std::fs::write(&path, data).expect("scratch file");
        let read = bb_cli::keyfile::read_keypair(&path);
        let _ = std::fs::remove_file(&path);
        assert_eq!(
            read.as_ref().map(Keypair::pubkey).ok(),
            parsed.as_ref().map(Keypair::pubkey).ok(),
            "read_keypair and from_key_file_json disagree"
        );
    }
    let Ok(key) = parsed else {
        return;
    };
    let again = Keypair::from_key_file_json(key.to_key_file_json().as_bytes())
        .expect("a written key file parses");
    assert_eq!(again.pubkey(), key.pubkey());
    assert_eq!(again.secret_seed(), key.secret_seed());
}
