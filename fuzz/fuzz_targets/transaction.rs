//! `Transaction::from_bytes`: transactions arrive by RPC and forwarding from anyone.
#![no_main]

use bb_core::{Transaction, verify_transactions};
use bb_fuzz::{canonical_round_trip, seeds};
use libfuzzer_sys::fuzz_target;

fuzz_target!(
    init: seeds::write_if_asked("transaction", seed_inputs),
    |data: &[u8]| check(data)
);

fn seed_inputs() -> Vec<Vec<u8>> {
    seeds::transactions()
        .iter()
        .map(bb_core::Canonical::to_bytes)
        .collect()
}

fn check(data: &[u8]) {
    if let Some(tx) = canonical_round_trip::<Transaction>(data) {
        let single = tx.verify().is_ok();
        assert_eq!(verify_transactions(&[tx]).is_ok(), single);
        assert_eq!(tx.id(), tx.signature);
    }
}
