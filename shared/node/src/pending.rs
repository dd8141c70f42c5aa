//! The leader's queue of pending transactions (Gulf Stream's end): bounded, its fill level
//! visible to the other tasks, and kept free of transactions that can no longer land.
//!
//! The engine thread owns [`PendingTxs`]; the network and RPC tasks read the fill level
//! through [`QueueLevel`] (in [`crate::state::Shared`]) to refuse a forward at once when
//! the queue is full. The queue never drops a transaction without saying so: what does
//! not fit is refused (the forwarder is told how many were taken), and what expires while
//! waiting is counted.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};

use bb_core::{Hash, Slot, Transaction};

/// The default bound of the pending queue (`--max-pending-txs`).
pub const DEFAULT_MAX_PENDING_TXS: usize = 100_000;

/// The why of a refused transaction, as the submitter reads it: "leader busy" first, so
/// clients group by the text before the first colon.
pub const LEADER_BUSY: &str = "leader busy: queue full, retry later";

/// Slots a transaction may wait with a blockhash the bank we build on does not know
/// before it counts as expired. A blockhash can be unknown because it is too old, but
/// also because it is too new: its block has not reached (or been replayed by) this
/// node yet, which a few slots settle.
pub const UNKNOWN_BLOCKHASH_GRACE_SLOTS: u64 = 10;

/// A held transaction and the slot it arrived in.
#[derive(Debug)]
struct Held {
    tx: Transaction,
    arrived: Slot,
}

/// Transactions held for this node's next leader slots, oldest first, at most `capacity`.
#[derive(Debug)]
pub struct PendingTxs {
    queue: VecDeque<Held>,
    capacity: usize,
}

impl PendingTxs {
    pub fn new(capacity: usize) -> PendingTxs {
        PendingTxs {
            queue: VecDeque::new(),
            capacity,
        }
    }

    pub fn len(&self) -> usize {
        self.queue.len()
    }

    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Takes transactions from the front of `txs` while there is room and returns how many
    /// it took: the first `n`, in order. The rest are refused, never half-kept.
    pub fn offer(&mut self, txs: Vec<Transaction>, now: Slot) -> usize {
        let room = self.capacity.saturating_sub(self.queue.len());
        let taken = txs.len().min(room);
        self.queue.extend(
            txs.into_iter()
                .take(taken)
                .map(|tx| Held { tx, arrived: now }),
        );
        taken
    }

    /// [`PendingTxs::take_for_block`] with nothing landed.
    #[cfg(test)]
    pub fn take_live(&mut self, n: usize, live: impl Fn(&Hash) -> bool) -> Vec<Transaction> {
        self.take_for_block(n, live, |_| false).0
    }

    /// Removes and returns up to `n` of the oldest transactions whose blockhash `live`
    /// accepts, for a block; the others stay (their blockhash may still arrive). Drops,
    /// as it meets them, the transactions `landed` says are already on the fork the
    /// block builds on; returns the taken and how many it dropped. Only the front it
    /// walks to fill the block is looked at.
    pub fn take_for_block(
        &mut self,
        n: usize,
        live: impl Fn(&Hash) -> bool,
        landed: impl Fn(&Transaction) -> bool,
    ) -> (Vec<Transaction>, usize) {
        let mut out = Vec::with_capacity(n.min(self.queue.len()));
        let mut dropped = 0;
        self.queue.retain(|h| {
            if out.len() >= n {
                true
            } else if landed(&h.tx) {
                dropped += 1;
                false
            } else if live(&h.tx.transfer.recent_blockhash) {
                out.push(h.tx);
                false
            } else {
                true
            }
        });
        (out, dropped)
    }

    /// Drops every transaction whose recent blockhash `live` does not accept and has not
    /// for [`UNKNOWN_BLOCKHASH_GRACE_SLOTS`] since it arrived (it can never land: banks
    /// refuse expired blockhashes), and returns how many it dropped.
    pub fn evict_expired(&mut self, live: impl Fn(&Hash) -> bool, now: Slot) -> usize {
        let before = self.queue.len();
        self.queue.retain(|h| {
            now < h.arrived.saturating_add(UNKNOWN_BLOCKHASH_GRACE_SLOTS)
                || live(&h.tx.transfer.recent_blockhash)
        });
        before - self.queue.len()
    }

    /// Drops every transaction `landed` says is already on the fork we build on (a block
    /// of the previous leader, which Gulf Stream forwarded the same transactions to):
    /// it cannot land there again, and must not take a block's room before the new.
    /// Looks at the `limit` oldest only (where a previous leader's transactions are),
    /// so the cost per call is bounded however full the queue. Returns how many it
    /// dropped.
    pub fn evict_landed(&mut self, landed: impl Fn(&Transaction) -> bool, limit: usize) -> usize {
        let before = self.queue.len();
        let mut seen = 0;
        self.queue.retain(|h| {
            seen += 1;
            seen > limit || !landed(&h.tx)
        });
        before - self.queue.len()
    }
}

/// The pending queue's fill level, published by the engine thread for everyone else.
#[derive(Debug)]
pub struct QueueLevel {
    len: AtomicUsize,
    capacity: usize,
}

impl QueueLevel {
    pub fn new(capacity: usize) -> QueueLevel {
        QueueLevel {
            len: AtomicUsize::new(0),
            capacity,
        }
    }

    pub fn set(&self, len: usize) {
        self.len.store(len, Ordering::Relaxed);
    }

    /// How many transactions the queue held when the engine last published.
    pub fn get(&self) -> usize {
        self.len.load(Ordering::Relaxed)
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Whether the queue had no room left when the engine last published its level.
    pub fn is_full(&self) -> bool {
        self.get() >= self.capacity
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bb_core::{Keypair, Pubkey};

    /// `n` distinct transfers (amounts `first..first + n`).
    fn txs(first: u64, n: u64, blockhash: Hash) -> Vec<Transaction> {
        let from = Keypair::from_seed(&[7; 32]);
        (first..first + n)
            .map(|k| Transaction::transfer(&from, Pubkey([9; 32]), k, 1, blockhash))
            .collect()
    }

    #[test]
    fn a_full_queue_takes_only_what_fits_and_says_how_many() {
        let h = Hash([1; 32]);
        let mut q = PendingTxs::new(5);
        assert_eq!(q.offer(txs(0, 3, h), 0), 3);
        let batch = txs(10, 4, h);
        let first_two = batch[..2].to_vec();
        assert_eq!(q.offer(batch, 0), 2, "room for two of four");
        assert_eq!(q.len(), 5);
        assert_eq!(q.offer(txs(20, 1, h), 0), 0, "a full queue takes nothing");
        // It kept the first ones offered, in order, and drains oldest first.
        let all = q.take_live(10, |_| true);
        assert_eq!(all.len(), 5);
        assert_eq!(&all[3..], &first_two[..]);
        assert!(q.is_empty());
        assert_eq!(q.offer(txs(30, 2, h), 0), 2, "room again once drained");
    }

    #[test]
    fn expired_transactions_are_evicted_and_counted_after_the_grace() {
        let (old, fresh) = (Hash([1; 32]), Hash([2; 32]));
        let live = |h: &Hash| *h == fresh;
        let mut q = PendingTxs::new(10);
        q.offer(txs(0, 4, old), 5);
        q.offer(txs(10, 3, fresh), 5);
        q.offer(txs(20, 2, old), 7);
        // An unknown blockhash may be one this node has not seen yet: kept a while.
        assert_eq!(
            q.evict_expired(live, 5 + UNKNOWN_BLOCKHASH_GRACE_SLOTS - 1),
            0
        );
        assert_eq!(q.evict_expired(live, 5 + UNKNOWN_BLOCKHASH_GRACE_SLOTS), 4);
        assert_eq!(q.evict_expired(live, 7 + UNKNOWN_BLOCKHASH_GRACE_SLOTS), 2);
        assert_eq!(q.len(), 3);
        assert!(
            q.take_live(10, |_| true)
                .iter()
                .all(|t| live(&t.transfer.recent_blockhash))
        );
        // Room freed by eviction is room for new work.
        assert_eq!(q.offer(txs(30, 10, fresh), 20), 10);
        assert_eq!(q.evict_expired(live, 1_000), 0);
    }

    #[test]
    fn transactions_already_on_our_fork_leave_before_a_block_is_taken() {
        let h = Hash([1; 32]);
        let mut q = PendingTxs::new(10);
        let landed = txs(0, 4, h);
        q.offer(landed.clone(), 0);
        q.offer(txs(10, 3, h), 1);
        assert_eq!(
            q.evict_landed(|t| landed.contains(t), 3),
            3,
            "the 3 oldest only"
        );
        assert_eq!(q.evict_landed(|t| landed.contains(t), 100), 1);
        assert_eq!(q.evict_landed(|t| landed.contains(t), 100), 0);
        // The next block starts with the new ones instead of failing duplicates.
        let block = q.take_live(3, |_| true);
        assert_eq!(block, txs(10, 3, h));
    }

    #[test]
    fn a_block_drops_the_landed_it_meets_and_stops_at_its_size() {
        let h = Hash([1; 32]);
        let mut q = PendingTxs::new(20);
        let landed = txs(0, 4, h);
        q.offer(landed.clone(), 0);
        q.offer(txs(10, 5, h), 1);
        q.offer(landed[..1].to_vec(), 1); // a late copy, past the block's end
        let (block, dropped) = q.take_for_block(3, |_| true, |t| landed.contains(t));
        assert_eq!(block, txs(10, 3, h));
        assert_eq!(
            dropped, 4,
            "the copy behind the block's end is not looked at"
        );
        assert_eq!(q.len(), 3);
    }

    #[test]
    fn a_block_takes_live_transactions_and_leaves_the_not_yet_known() {
        let (known, coming) = (Hash([1; 32]), Hash([2; 32]));
        let mut q = PendingTxs::new(10);
        q.offer(txs(0, 2, coming), 0);
        q.offer(txs(10, 3, known), 0);
        let block = q.take_live(2, |h| *h == known);
        assert_eq!(block.len(), 2);
        assert!(block.iter().all(|t| t.transfer.recent_blockhash == known));
        assert_eq!(
            q.len(),
            3,
            "two waiting for their blockhash, one for the next block"
        );
        assert_eq!(q.take_live(10, |_| true).len(), 3);
    }

    #[test]
    fn the_level_reports_full_at_capacity() {
        let level = QueueLevel::new(3);
        assert!(!level.is_full());
        level.set(2);
        assert!(!level.is_full());
        level.set(3);
        assert!(level.is_full());
        assert_eq!((level.get(), level.capacity()), (3, 3));
    }
}
