//! Transactions whose signature this process has already checked.
//!
//! A transfer's signature is checked where it enters a node (a client's submission, a
//! peer's forward), again when the leader executes it, and again when every other node
//! replays its block. Whether a signature verifies is a pure function of the
//! transaction's bytes, so a node that checked those exact bytes once need not check them
//! again: [`VerifiedTxs`] remembers a digest of every transaction that passed and skips
//! those in later checks. The leader then builds its block and the next leader (which
//! Gulf Stream already sent the transactions to) replays it without a signature check on
//! the critical path after the slot ends.
//!
//! The digest covers every byte the check reads (the whole transfer, sender included,
//! and the signature), so no other transaction can pass as one remembered. Memory is
//! bounded: two generations of at most `capacity` digests each; when the newer fills,
//! the older is dropped.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

use rayon::prelude::*;

use crate::encoding::encode_body;
use crate::hash::{Hash, hashv};
use crate::tx::{Transaction, verify_transactions};

/// Below this many transactions, digests are computed on the calling thread.
const PARALLEL_MIN: usize = 256;

/// A bounded memory of transactions whose signature verified (see the module docs).
#[derive(Debug)]
pub struct VerifiedTxs {
    capacity: usize,
    inner: Mutex<Generations>,
    /// Signatures skipped because remembered, and checked, since the start.
    skipped: AtomicU64,
    checked: AtomicU64,
}

#[derive(Debug, Default)]
struct Generations {
    newer: HashSet<Hash>,
    older: HashSet<Hash>,
}

impl Generations {
    fn contains(&self, key: &Hash) -> bool {
        self.newer.contains(key) || self.older.contains(key)
    }
}

/// The digest a verified transaction is remembered by: all of its signed bytes and its
/// signature.
fn digest(tx: &Transaction) -> Hash {
    hashv(&[
        b"bb/verified-tx/v1\0",
        &encode_body(&tx.transfer),
        &tx.signature.0,
    ])
}

impl VerifiedTxs {
    /// Remembers up to `2 * capacity` transactions (at least 2).
    pub fn new(capacity: usize) -> VerifiedTxs {
        VerifiedTxs {
            capacity: capacity.max(1),
            inner: Mutex::new(Generations::default()),
            skipped: AtomicU64::new(0),
            checked: AtomicU64::new(0),
        }
    }

    /// Checks `txs` like [`verify_transactions`] (the same answer for every input: the
    /// indices of those whose signature fails, in order), checking only those not
    /// remembered, and remembers those that passed.
    pub fn verify(&self, txs: &[Transaction]) -> Result<(), Vec<usize>> {
        let keys: Vec<Hash> = if txs.len() >= PARALLEL_MIN {
            txs.par_iter().map(digest).collect()
        } else {
            txs.iter().map(digest).collect()
        };
        let unknown: Vec<usize> = {
            let g = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
            (0..txs.len()).filter(|&i| !g.contains(&keys[i])).collect()
        };
        self.skipped
            .fetch_add((txs.len() - unknown.len()) as u64, Ordering::Relaxed);
        self.checked
            .fetch_add(unknown.len() as u64, Ordering::Relaxed);
        if unknown.is_empty() {
            return Ok(());
        }
        let to_check: Vec<Transaction> = unknown.iter().map(|&i| txs[i]).collect();
        let bad: Vec<usize> = match verify_transactions(&to_check) {
            Ok(()) => Vec::new(),
            Err(bad) => bad.into_iter().map(|j| unknown[j]).collect(),
        };
        {
            let mut g = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
            let mut failed = bad.iter().peekable();
            for &i in &unknown {
                if failed.peek() == Some(&&i) {
                    failed.next();
                    continue;
                }
                if g.newer.len() >= self.capacity {
                    g.older = std::mem::take(&mut g.newer);
                }
                g.newer.insert(keys[i]);
            }
        }
        if bad.is_empty() { Ok(()) } else { Err(bad) }
    }

    /// Signatures skipped because they were remembered, and signatures checked, since
    /// the start.
    pub fn counts(&self) -> (u64, u64) {
        (
            self.skipped.load(Ordering::Relaxed),
            self.checked.load(Ordering::Relaxed),
        )
    }

    /// How many transactions are remembered.
    pub fn len(&self) -> usize {
        let g = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        g.newer.len() + g.older.len()
    }

    /// Whether none is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::Keypair;

    fn transfers(n: u64) -> Vec<Transaction> {
        let sender = Keypair::from_seed(&[7; 32]);
        let to = Keypair::from_seed(&[8; 32]).pubkey();
        (0..n)
            .map(|i| Transaction::transfer(&sender, to, i + 1, 1, Hash::default()))
            .collect()
    }

    #[test]
    fn answers_like_an_uncached_check_and_remembers_only_what_passed() {
        let cache = VerifiedTxs::new(100);
        let mut txs = transfers(6);
        txs[2].transfer.amount += 1; // signature no longer matches
        txs[4].signature.0[0] ^= 1;
        assert_eq!(cache.verify(&txs), Err(vec![2, 4]));
        assert_eq!(cache.len(), 4);
        assert_eq!(cache.counts(), (0, 6));
        // Asked again, the remembered pass without a check and the forged still fail.
        assert_eq!(cache.verify(&txs), Err(vec![2, 4]));
        assert_eq!(cache.verify(&txs), verify_transactions(&txs));
        assert_eq!(cache.len(), 4);
        assert_eq!(cache.counts(), (8, 10), "twice 4 skipped, 2 checked");
    }

    #[test]
    fn a_remembered_signature_on_other_bytes_is_checked_again() {
        let cache = VerifiedTxs::new(100);
        let txs = transfers(1);
        assert_eq!(cache.verify(&txs), Ok(()));
        // The same signature over a changed transfer (or another sender) is no match.
        let mut changed = txs[0];
        changed.transfer.to = changed.transfer.from;
        assert_eq!(cache.verify(&[changed]), Err(vec![0]));
        let mut other_sender = txs[0];
        other_sender.transfer.from = Keypair::from_seed(&[9; 32]).pubkey();
        assert_eq!(cache.verify(&[txs[0], other_sender]), Err(vec![1]));
    }

    #[test]
    fn memory_stays_within_two_generations() {
        let cache = VerifiedTxs::new(10);
        let txs = transfers(35);
        assert_eq!(cache.verify(&txs), Ok(()));
        assert!(cache.len() <= 20, "{} remembered", cache.len());
        // The newest are still remembered (skipped, not checked again), and a forged
        // copy of the oldest is still caught.
        let before = cache.counts();
        assert_eq!(cache.verify(&txs[30..]), Ok(()));
        assert_eq!(cache.counts(), (before.0 + 5, before.1));
        let mut forged = txs[0];
        forged.signature = txs[1].signature;
        assert_eq!(cache.verify(&[forged]), Err(vec![0]));
    }
}
