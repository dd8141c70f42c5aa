//! `SlotMeta::decode`: the ledger's own fixed layout (local bytes, but a corrupt or
//! foreign ledger must give an error). Only the canonical encoding decodes.
#![no_main]

use bb_fuzz::seeds;
use bb_ledger::SlotMeta;
use libfuzzer_sys::fuzz_target;

fuzz_target!(
    init: seeds::write_if_asked("slot_meta", seeds::slot_metas),
    |data: &[u8]| check(data)
);

fn check(data: &[u8]) {
    if let Ok(meta) = SlotMeta::decode(data) {
        assert_eq!(
            meta.encode().as_slice(),
            data,
            "slot meta re-encodes to other bytes"
        );
    }
}
