//! [`Ledger::check_integrity`]: redb's own page-level check, then the ledger's invariants.

use redb::{ReadableTable, ReadableTableMetadata};

use crate::error::StorageContext;
use crate::ledger::{
    MAX_ACCOUNT_BYTES, MAX_BLOCK_BYTES, MAX_SHRED_BYTES, MAX_TOWER_BYTES, MAX_VOTE_BYTES,
    decode_slot_meta,
};
use crate::slot_meta::parent_is_valid;
use crate::tables::{
    ACCOUNTS, BANK_HASHES, BLOCKS, ROOTS, SHREDS, SLOT_META, TOWER, TOWER_KEY, VOTES,
};
use crate::{Ledger, LedgerError, ShredKind};

/// What [`Ledger::check_integrity`] counted in a ledger that passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct IntegrityReport {
    /// redb found damaged pages or allocator state and repaired them (its check returned
    /// false). The data that survived is consistent; this only says a repair happened.
    pub redb_repaired: bool,
    /// Stored roots.
    pub roots: u64,
    /// The highest root.
    pub latest_root: Option<u64>,
    /// Slots with stored meta.
    pub slot_metas: u64,
    /// Stored blocks.
    pub blocks: u64,
    /// Stored shreds, both kinds.
    pub shreds: u64,
    /// Stored votes.
    pub votes: u64,
    /// Stored accounts.
    pub accounts: u64,
    /// A tower is persisted.
    pub has_tower: bool,
}

const CONTEXT: &str = "checking integrity";

fn fail(what: String) -> LedgerError {
    LedgerError::Integrity { what }
}

impl Ledger {
    /// Verifies the whole file: first redb's own check (every page checksum of the committed
    /// trees, repairing the allocator state if needed), then the ledger's invariants:
    ///
    /// - every root has a bank hash, and every bank hash belongs to a root;
    /// - every slot meta decodes and names a parent below its slot;
    /// - every block has slot meta;
    /// - every shred key names a known kind, and no value exceeds its size limit.
    ///
    /// Reads everything, so it is slow on a big ledger: run it at startup after a crash or
    /// from a tool, not on the hot path. Needs `&mut self` because redb refuses to check while
    /// any transaction of this handle (e.g. an [`crate::AccountsIter`]) is alive.
    pub fn check_integrity(&mut self) -> Result<IntegrityReport, LedgerError> {
        let clean = self
            .db
            .check_integrity()
            .during("running redb's integrity check")?;
        let mut report = IntegrityReport {
            redb_repaired: !clean,
            ..IntegrityReport::default()
        };

        let txn = self.read(CONTEXT)?;
        let roots = txn.open_table(ROOTS).during(CONTEXT)?;
        let bank_hashes = txn.open_table(BANK_HASHES).during(CONTEXT)?;
        let metas = txn.open_table(SLOT_META).during(CONTEXT)?;

        for entry in roots.iter().during(CONTEXT)? {
            let slot = entry.during(CONTEXT)?.0.value();
            if bank_hashes.get(slot).during(CONTEXT)?.is_none() {
                return Err(fail(format!("root {slot} has no bank hash")));
            }
            report.roots += 1;
            report.latest_root = Some(slot);
        }
        for entry in bank_hashes.iter().during(CONTEXT)? {
            let slot = entry.during(CONTEXT)?.0.value();
            if roots.get(slot).during(CONTEXT)?.is_none() {
                return Err(fail(format!("bank hash of slot {slot} has no root")));
            }
        }

        for entry in metas.iter().during(CONTEXT)? {
            let (slot, bytes) = entry.during(CONTEXT)?;
            let slot = slot.value();
            let meta = decode_slot_meta(slot, bytes.value())
                .map_err(|e| fail(format!("slot meta of slot {slot} does not decode: {e}")))?;
            if !parent_is_valid(slot, meta.parent_slot) {
                return Err(fail(format!(
                    "slot meta of slot {slot} names parent {}, not below it",
                    meta.parent_slot
                )));
            }
            report.slot_metas += 1;
        }

        let blocks = txn.open_table(BLOCKS).during(CONTEXT)?;
        for entry in blocks.iter().during(CONTEXT)? {
            let (slot, block) = entry.during(CONTEXT)?;
            let slot = slot.value();
            if metas.get(slot).during(CONTEXT)?.is_none() {
                return Err(fail(format!("block of slot {slot} has no slot meta")));
            }
            check_len("block of slot", slot, block.value().len(), MAX_BLOCK_BYTES)?;
            report.blocks += 1;
        }

        let shreds = txn.open_table(SHREDS).during(CONTEXT)?;
        for entry in shreds.iter().during(CONTEXT)? {
            let (key, shred) = entry.during(CONTEXT)?;
            let (slot, kind, index) = key.value();
            if ShredKind::from_u8(kind).is_none() {
                return Err(fail(format!(
                    "shred {index} of slot {slot} has unknown kind {kind}"
                )));
            }
            check_len("shred of slot", slot, shred.value().len(), MAX_SHRED_BYTES)?;
            report.shreds += 1;
        }

        let votes = txn.open_table(VOTES).during(CONTEXT)?;
        for entry in votes.iter().during(CONTEXT)? {
            let (key, vote) = entry.during(CONTEXT)?;
            check_len(
                "vote for slot",
                key.value().0,
                vote.value().len(),
                MAX_VOTE_BYTES,
            )?;
            report.votes += 1;
        }

        let accounts = txn.open_table(ACCOUNTS).during(CONTEXT)?;
        for entry in accounts.iter().during(CONTEXT)? {
            let (pubkey, account) = entry.during(CONTEXT)?;
            let len = account.value().len();
            if len > MAX_ACCOUNT_BYTES {
                return Err(fail(format!(
                    "account {} is {len} bytes, over the limit of {MAX_ACCOUNT_BYTES}",
                    hex(pubkey.value())
                )));
            }
            report.accounts += 1;
        }

        let tower = txn.open_table(TOWER).during(CONTEXT)?;
        if tower.len().during(CONTEXT)? > 1 {
            return Err(fail("the tower table holds more than one row".to_string()));
        }
        if let Some(bytes) = tower.get(TOWER_KEY).during(CONTEXT)? {
            let len = bytes.value().len();
            if len > MAX_TOWER_BYTES {
                return Err(fail(format!(
                    "the tower is {len} bytes, over the limit of {MAX_TOWER_BYTES}"
                )));
            }
            report.has_tower = true;
        }

        Ok(report)
    }
}

fn check_len(what: &str, slot: u64, len: usize, max: usize) -> Result<(), LedgerError> {
    if len > max {
        return Err(fail(format!(
            "{what} {slot} is {len} bytes, over the limit of {max}"
        )));
    }
    Ok(())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{RootCommit, ShredKind, SlotMeta};

    fn open_temp() -> (tempfile::TempDir, Ledger) {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::open(dir.path()).unwrap();
        (dir, ledger)
    }

    /// A ledger with a bit of everything in it.
    fn populated() -> (tempfile::TempDir, Ledger) {
        let (dir, ledger) = open_temp();
        for slot in 1..=3u64 {
            let meta = SlotMeta {
                parent_slot: slot - 1,
                ..SlotMeta::default()
            };
            ledger.put_block(slot, &meta, b"block").unwrap();
            ledger.insert_shred(slot, 0, ShredKind::Data, b"d").unwrap();
            ledger.insert_shred(slot, 0, ShredKind::Code, b"c").unwrap();
            ledger.put_vote(slot, &[1; 32], b"vote").unwrap();
        }
        ledger.put_slot_meta(4, &SlotMeta::default()).unwrap();
        let accounts = [([1; 32], b"a".to_vec()), ([2; 32], b"b".to_vec())];
        ledger
            .commit_root(&RootCommit {
                slot: 2,
                accounts: &accounts,
                ..RootCommit::default()
            })
            .unwrap();
        ledger.save_tower(b"tower").unwrap();
        (dir, ledger)
    }

    /// Writes around the ledger's API, to plant what the API never writes.
    fn plant(ledger: &Ledger, write: impl FnOnce(&redb::WriteTransaction)) {
        let txn = ledger.db.begin_write().unwrap();
        write(&txn);
        txn.commit().unwrap();
    }

    fn assert_integrity_error(ledger: &mut Ledger, expected: &str) {
        match ledger.check_integrity() {
            Err(LedgerError::Integrity { what }) => {
                assert!(what.contains(expected), "{what:?} lacks {expected:?}");
            }
            other => panic!("expected an integrity error, got {other:?}"),
        }
    }

    #[test]
    fn an_empty_ledger_passes() {
        let (_dir, mut ledger) = open_temp();
        assert_eq!(
            ledger.check_integrity().unwrap(),
            IntegrityReport::default()
        );
    }

    #[test]
    fn a_populated_ledger_passes_with_counts() {
        let (_dir, mut ledger) = populated();
        let report = ledger.check_integrity().unwrap();
        assert_eq!(
            report,
            IntegrityReport {
                redb_repaired: false,
                roots: 1,
                latest_root: Some(2),
                slot_metas: 4,
                blocks: 3,
                shreds: 6,
                votes: 3,
                accounts: 2,
                has_tower: true,
            }
        );
    }

    #[test]
    fn finds_a_root_without_bank_hash() {
        let (_dir, mut ledger) = populated();
        plant(&ledger, |txn| {
            txn.open_table(ROOTS).unwrap().insert(7, &[0; 32]).unwrap();
        });
        assert_integrity_error(&mut ledger, "root 7 has no bank hash");
    }

    #[test]
    fn finds_a_bank_hash_without_root() {
        let (_dir, mut ledger) = populated();
        plant(&ledger, |txn| {
            txn.open_table(BANK_HASHES)
                .unwrap()
                .insert(7, &[0; 32])
                .unwrap();
        });
        assert_integrity_error(&mut ledger, "bank hash of slot 7 has no root");
    }

    #[test]
    fn finds_a_block_without_meta() {
        let (_dir, mut ledger) = populated();
        plant(&ledger, |txn| {
            txn.open_table(BLOCKS)
                .unwrap()
                .insert(9, &b"orphan"[..])
                .unwrap();
        });
        assert_integrity_error(&mut ledger, "block of slot 9 has no slot meta");
    }

    #[test]
    fn finds_meta_that_does_not_decode() {
        let (_dir, mut ledger) = populated();
        plant(&ledger, |txn| {
            txn.open_table(SLOT_META)
                .unwrap()
                .insert(3, &[0xde, 0xad][..])
                .unwrap();
        });
        assert_integrity_error(&mut ledger, "slot meta of slot 3 does not decode");
    }

    #[test]
    fn finds_a_parent_not_below_its_slot() {
        let (_dir, mut ledger) = populated();
        let bad = SlotMeta {
            parent_slot: 3,
            ..SlotMeta::default()
        };
        plant(&ledger, |txn| {
            txn.open_table(SLOT_META)
                .unwrap()
                .insert(3, bad.encode().as_slice())
                .unwrap();
        });
        assert_integrity_error(&mut ledger, "slot meta of slot 3 names parent 3");
    }

    #[test]
    fn finds_a_shred_of_unknown_kind() {
        let (_dir, mut ledger) = populated();
        plant(&ledger, |txn| {
            txn.open_table(SHREDS)
                .unwrap()
                .insert((3, 2, 5), &b"?"[..])
                .unwrap();
        });
        assert_integrity_error(&mut ledger, "shred 5 of slot 3 has unknown kind 2");
    }

    #[test]
    fn refuses_to_run_while_an_iterator_holds_a_snapshot() {
        let (_dir, mut ledger) = populated();
        let iter = ledger.accounts_iter().unwrap();
        let err = ledger.check_integrity().unwrap_err();
        assert!(matches!(err, LedgerError::Storage { .. }), "{err}");
        drop(iter);
        ledger.check_integrity().unwrap();
    }
}
