//! Replay: checking a received block and executing it on its parent bank.
//!
//! Cheap checks first (parent linkage, leader, header signature, tick rules), then the
//! expensive ones on all cores at once (the body against the header's entries hash, PoH
//! of every entry, the batched signature check of every transaction), then execution of all the block's
//! transactions as one batch (the same results as entry by entry, in order: see
//! `execute`), then freezing with the block's `poh_end`.
//!
//! Tick rules (what makes PoH a clock): a block carries `ticks_per_slot` ticks for every
//! slot since its parent (a leader that skips slots ticks through them), every tick closes
//! exactly `hashes_per_tick` hashes counting the transaction entries before it (as
//! `PohRecorder` produces; `bb_core::check_tick_structure`), and the last entry is a tick
//! (nothing is appended after the slot's time is up).

use std::sync::Arc;

use bb_core::{
    Block, BlockHeader, Entry, Pubkey, Transaction, VerifiedTxs, check_tick_structure,
    verify_entries_parallel,
};

use crate::bank::Bank;
use crate::error::{ReplayError, TransactionError};
use crate::execute::verify_signatures;

impl Bank {
    /// Replays a block already known to be final (catch-up, a stopped node's rooted chain)
    /// on the root bank `parent`, with the leader `parent`'s schedule names, and roots the
    /// result: the bank that comes back is the new root, so memory stays flat however
    /// long the chain. The caller checks the bank hash against the one it expects.
    pub fn replay_rooted(parent: &Arc<Bank>, block: &Block) -> Result<Arc<Bank>, ReplayError> {
        let slot = block.header.slot;
        let leader = parent
            .slot_leader(slot)
            .map_err(|e| ReplayError::NoLeader {
                slot,
                reason: e.to_string(),
            })?;
        let bank = Arc::new(Bank::replay_block(parent, block, leader)?);
        bank.squash().map_err(|e| ReplayError::Root {
            slot,
            reason: e.to_string(),
        })?;
        Ok(bank)
    }

    /// Replays `block` on `parent`; `expected_leader` is the slot's leader by the schedule
    /// (e.g. `parent.slot_leader(block.header.slot)`). Returns the frozen bank, whose
    /// [`Bank::hash`] is what this node votes on; any failure names what was wrong.
    pub fn replay_block(
        parent: &Arc<Bank>,
        block: &Block,
        expected_leader: Pubkey,
    ) -> Result<Bank, ReplayError> {
        Bank::replay_block_with(parent, block, expected_leader, None)
    }

    /// [`Bank::replay_block`] that skips the transaction signatures `verified` remembers
    /// (and remembers those it checks): the same outcome for every block.
    pub fn replay_block_with(
        parent: &Arc<Bank>,
        block: &Block,
        expected_leader: Pubkey,
        verified: Option<&VerifiedTxs>,
    ) -> Result<Bank, ReplayError> {
        let h = &block.header;
        let Some(parent_id) = parent.block_id() else {
            return Err(ReplayError::ParentNotFrozen {
                slot: parent.slot(),
            });
        };
        if h.slot <= parent.slot() {
            return Err(ReplayError::SlotNotAfterParent {
                slot: h.slot,
                parent: parent.slot(),
            });
        }
        if h.parent_slot != parent.slot() {
            return Err(ReplayError::ParentSlot {
                expected: parent.slot(),
                actual: h.parent_slot,
            });
        }
        if h.parent_id != parent_id {
            return Err(ReplayError::ParentId {
                expected: parent_id,
                actual: h.parent_id,
            });
        }
        if h.poh_start != parent.last_blockhash() {
            return Err(ReplayError::PohStart {
                expected: parent.last_blockhash(),
                actual: h.poh_start,
            });
        }
        if h.leader != expected_leader {
            return Err(ReplayError::WrongLeader {
                slot: h.slot,
                expected: expected_leader,
                actual: h.leader,
            });
        }
        // The leader's signature before any real work: unsigned junk costs one check.
        block.verify_signature()?;
        check_ticks(
            h,
            &block.entries,
            parent.ticks_per_slot(),
            parent.hashes_per_tick(),
        )?;

        // The expensive checks run side by side on all cores; the first failure in the
        // order body, PoH, signatures is reported. Execution runs beside them on a
        // child bank of its own, kept only if every check passes (the leader's signature
        // above already bounds who can make a node execute a block it then refuses):
        // the checks alone rarely keep both cores busy to the end.
        let txs: Vec<Transaction> = block
            .entries
            .iter()
            .flat_map(|e| e.transactions.iter().copied())
            .collect();
        let ((body, (poh, signatures)), executed) = rayon::join(
            || {
                rayon::join(
                    || block.verify_body(),
                    || {
                        rayon::join(
                            || {
                                verify_entries_parallel(
                                    &h.poh_start,
                                    &block.entries,
                                    parent.hashes_per_tick(),
                                )
                            },
                            || verify_signatures(&txs, verified),
                        )
                    },
                )
            },
            || execute(parent, block, &txs),
        );
        body?;
        poh?;
        if let Err(bad) = signatures {
            let (entry, index) = locate(&block.entries, bad.first().copied().unwrap_or(0));
            return Err(ReplayError::InvalidSignature { entry, index });
        }
        let (mut bank, results) = executed?;
        if let Some((i, error)) = results
            .iter()
            .enumerate()
            .find_map(|(i, r)| r.err().map(|e| (i, e)))
        {
            let (entry, index) = locate(&block.entries, i);
            return Err(ReplayError::Transaction {
                entry,
                index,
                error,
            });
        }
        bank.freeze_unchecked(h.poh_end, block.id());
        Ok(bank)
    }
}

/// The block's evidence and transactions applied to a new child of `parent`, with each
/// transaction's result; signatures are the caller's to check.
fn execute(
    parent: &Arc<Bank>,
    block: &Block,
    txs: &[Transaction],
) -> Result<(Bank, Vec<Result<(), TransactionError>>), ReplayError> {
    let h = &block.header;
    let mut bank = Bank::new_from_parent(parent, h.slot, h.leader).map_err(|_| {
        // Both conditions new_from_parent checks were checked by the caller.
        ReplayError::ParentNotFrozen {
            slot: parent.slot(),
        }
    })?;
    for (index, evidence) in block.evidence.iter().enumerate() {
        let offense = bank
            .check_evidence(evidence)
            .map_err(|reason| ReplayError::Evidence { index, reason })?;
        bank.insert_offense(offense);
    }
    let results = bank.process_verified_transactions(txs);
    Ok((bank, results))
}

/// Tick count and structure, from the entries themselves (the header is only trusted
/// once the body check passed): bounds the PoH work before any hashing.
fn check_ticks(
    h: &BlockHeader,
    entries: &[Entry],
    ticks_per_slot: u64,
    hashes_per_tick: u64,
) -> Result<(), ReplayError> {
    let expected = u128::from(h.slot - h.parent_slot) * u128::from(ticks_per_slot);
    let actual = entries.iter().filter(|e| e.is_tick()).count() as u64;
    if u128::from(actual) != expected {
        return Err(ReplayError::TickCount { expected, actual });
    }
    if entries.last().is_some_and(|e| !e.is_tick()) {
        return Err(ReplayError::TrailingEntries);
    }
    check_tick_structure(entries, hashes_per_tick)?;
    Ok(())
}

/// The entry and position inside it of the `flat`-th transaction of a block.
fn locate(entries: &[Entry], flat: usize) -> (usize, usize) {
    let mut rest = flat;
    for (i, e) in entries.iter().enumerate() {
        if rest < e.transactions.len() {
            return (i, rest);
        }
        rest -= e.transactions.len();
    }
    (entries.len(), rest)
}
