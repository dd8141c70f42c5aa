//! Producing a whole block at once, as a leader would over its slot.
//!
//! For tests, the simulator and benchmarks: a live leader interleaves
//! `PohRecorder::hash_batch` with [`Bank::process_transactions`] as time passes, under the
//! same rules (record only the successful transactions; tick through skipped slots; end
//! on a tick), and produces the same kind of block.

use std::sync::Arc;

use bb_core::{
    Block, Evidence, Keypair, MAX_EVIDENCE_PER_BLOCK, PohRecorder, Slot, Transaction, VerifiedTxs,
};

use crate::bank::Bank;
use crate::error::{BankError, TransactionError};

/// Largest number of ticks [`produce_block`] will hash through.
const MAX_PRODUCED_TICKS: u128 = 1 << 20;

/// A produced block with the frozen bank that executed it.
#[derive(Debug)]
pub struct ProducedBlock {
    pub block: Block,
    pub bank: Bank,
    /// One result list per batch that made it into the block; later batches did not
    /// fit (each tick holds at most `hashes_per_tick - 1` entries) and were not executed.
    pub results: Vec<Vec<Result<(), TransactionError>>>,
}

/// Builds `leader`'s block for `slot` on `parent`: executes each batch (signatures
/// verified in batch), records the successful transactions of each as one entry, ticks
/// `ticks_per_slot` times for every slot since the parent, signs and freezes.
pub fn produce_block(
    parent: &Arc<Bank>,
    leader: &Keypair,
    slot: Slot,
    batches: &[Vec<Transaction>],
) -> Result<ProducedBlock, BankError> {
    produce_block_with_evidence(parent, leader, slot, batches, &[], None)
}

/// [`produce_block`] that also includes slashing `evidence`: each piece this fork would
/// record ([`Bank::record_evidence`]), up to [`MAX_EVIDENCE_PER_BLOCK`]; the rest is left
/// out. Signatures `verified` remembers are not checked again.
pub fn produce_block_with_evidence(
    parent: &Arc<Bank>,
    leader: &Keypair,
    slot: Slot,
    batches: &[Vec<Transaction>],
    evidence: &[Evidence],
    verified: Option<&VerifiedTxs>,
) -> Result<ProducedBlock, BankError> {
    let mut bank = Bank::new_from_parent(parent, slot, leader.pubkey())?;
    let mut included = Vec::new();
    for ev in evidence {
        if included.len() == MAX_EVIDENCE_PER_BLOCK {
            break;
        }
        if bank.record_evidence(ev).is_ok() {
            included.push(ev.clone());
        }
    }
    let total_ticks = u128::from(slot - parent.slot()) * u128::from(parent.ticks_per_slot());
    if total_ticks > MAX_PRODUCED_TICKS {
        return Err(BankError::TooManyTicks {
            slot,
            ticks: total_ticks,
        });
    }
    let total_ticks = total_ticks as u64;
    let poh_start = parent.last_blockhash();
    let mut poh = PohRecorder::new(poh_start, parent.hashes_per_tick());
    let mut entries = Vec::new();
    let mut results = Vec::new();
    let mut ticks = 0;
    for batch in batches {
        if poh.hashes_until_tick_due() == 0 {
            // Room for an entry only after a tick, and the last tick must end the block.
            if ticks + 1 >= total_ticks {
                break;
            }
            entries.push(poh.tick());
            ticks += 1;
            if poh.hashes_until_tick_due() == 0 {
                break; // hashes_per_tick of 1: no room for entries at all
            }
        }
        let batch_results = bank.process_transactions_with(batch, verified);
        let ok: Vec<Transaction> = batch
            .iter()
            .zip(&batch_results)
            .filter(|(_, r)| r.is_ok())
            .map(|(t, _)| *t)
            .collect();
        results.push(batch_results);
        if !ok.is_empty() {
            // Cannot fail: the tick is not due and the batch is not empty.
            if let Ok(entry) = poh.record(ok) {
                entries.push(entry);
            }
        }
    }
    while ticks < total_ticks {
        entries.push(poh.tick());
        ticks += 1;
    }
    let parent_id = parent.block_id().ok_or(BankError::ParentNotFrozen {
        slot: parent.slot(),
    })?;
    let block = Block::new_signed_with_evidence(
        leader,
        slot,
        parent.slot(),
        parent_id,
        poh_start,
        entries,
        included,
    );
    bank.freeze_unchecked(block.header.poh_end, block.id());
    Ok(ProducedBlock {
        block,
        bank,
        results,
    })
}
