//! `Genesis::from_json`: a genesis file may come from anywhere (`bb-validator --genesis`,
//! a download). A genesis that parses is valid, and its pretty JSON parses back to the
//! same genesis with the same hash.
#![no_main]

use bb_core::Genesis;
use bb_fuzz::seeds;
use libfuzzer_sys::fuzz_target;

fuzz_target!(
    init: seeds::write_if_asked("genesis", seeds::genesis),
    |data: &[u8]| check(data)
);

fn check(data: &[u8]) {
    let Ok(genesis) = Genesis::from_json(data) else {
        return;
    };
    assert_eq!(genesis.validate(), Ok(()));
    let _ = genesis.total_stake();
    let again = Genesis::from_json(genesis.to_json_pretty().as_bytes())
        .expect("a parsed genesis prints as valid JSON");
    assert_eq!(again, genesis);
    assert_eq!(again.hash(), genesis.hash());
}
