//! `Shred::from_bytes`: one UDP datagram from anyone. A shred that decodes must re-decode
//! to itself, its header fields must agree with each other, and checking its Merkle proof
//! and signature must return an answer, not panic.
#![no_main]

use bb_fuzz::seeds;
use bb_turbine::{DATA_SHREDS_PER_SET, PAYLOAD_SIZE, SHRED_SIZE, Shred, ShredKind};
use libfuzzer_sys::fuzz_target;

fuzz_target!(
    init: seeds::write_if_asked("shred", seeds::shreds),
    |data: &[u8]| check(data)
);

fn check(data: &[u8]) {
    let Ok(shred) = Shred::from_bytes(data) else {
        return;
    };
    assert_eq!(shred.as_bytes(), data);
    assert_eq!(Shred::from_vec(data.to_vec()).as_ref(), Ok(&shred));
    assert_eq!(data.len(), SHRED_SIZE);

    assert!(shred.parent_slot() <= shred.slot());
    assert!(usize::from(shred.index_in_set()) < DATA_SHREDS_PER_SET);
    let id = shred.id();
    assert_eq!(id.index, shred.index());
    assert_eq!(
        id.index,
        shred.fec_set_index() * DATA_SHREDS_PER_SET as u32 + u32::from(shred.index_in_set())
    );
    let payload = shred.payload().len();
    assert!(payload <= PAYLOAD_SIZE);
    if shred.kind() == ShredKind::Code {
        assert_eq!(payload, PAYLOAD_SIZE);
        assert!(!shred.is_last_in_slot());
    }
    if shred.is_last_in_slot() {
        assert!(shred.is_last_set());
    }
    let _ = shred.merkle_proof();
    let root = shred.merkle_root();
    if let Ok(verified) = shred.verify(&seeds::leader().pubkey()) {
        assert_eq!(verified, root);
    }
}
