//! The node's gossip and request-response payloads, `bb_node::wire`: contact info from
//! gossip, repair and forwarding requests, and repair answers, all from anyone. Every
//! input is tried as each of the three, as the node would if a peer sent it on the
//! wrong channel.
#![no_main]

use bb_fuzz::{canonical_round_trip, seeds};
use bb_node::wire::{Request, Response, SignedContactInfo};
use libfuzzer_sys::fuzz_target;

fuzz_target!(
    init: seeds::write_if_asked("wire", seeds::wire),
    |data: &[u8]| check(data)
);

fn check(data: &[u8]) {
    if let Some(info) = canonical_round_trip::<SignedContactInfo>(data) {
        let _ = info.verify();
    }
    let _ = canonical_round_trip::<Request>(data);
    if let Some(response) = canonical_round_trip::<Response>(data) {
        let _ = response.blocks();
    }
}
