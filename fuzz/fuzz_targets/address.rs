//! Addresses and hashes as text: `Pubkey::from_str` and `Hash::from_str` parse what RPC
//! clients send (`GetBalance { address }`) and what users type. What parses prints back
//! as exactly the input: base58 has one spelling per byte string.
#![no_main]

use bb_core::{Hash, Pubkey};
use bb_fuzz::seeds;
use libfuzzer_sys::fuzz_target;

fuzz_target!(
    init: seeds::write_if_asked("address", seed_inputs),
    |data: &[u8]| check(data)
);

fn seed_inputs() -> Vec<Vec<u8>> {
    vec![
        seeds::user(0).pubkey().to_address().into_bytes(),
        Hash([7; 32]).to_string().into_bytes(),
        Hash([0; 32]).to_string().into_bytes(),
    ]
}

fn check(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(key) = text.parse::<Pubkey>() {
        assert_eq!(key.to_address(), text, "an address prints back differently");
        assert_eq!(key.validate(), Ok(()));
    }
    if let Ok(hash) = text.parse::<Hash>() {
        assert_eq!(hash.to_string(), text, "a hash prints back differently");
    }
}
