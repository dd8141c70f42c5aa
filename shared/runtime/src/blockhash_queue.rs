//! The recent blockhashes a bank accepts in transactions.
//!
//! The "recent blockhash" of a block is its `poh_end`, the hash of its last entry (as in
//! Solana, the last entry hash): a client can only know it once the block exists, and it
//! is unique per block because PoH never repeats. The genesis bank's blockhash is the
//! genesis hash, which is also the first block's `poh_start`.
//!
//! A bank accepts the blockhashes of its last [`MAX_RECENT_BLOCKHASHES`] ancestors
//! (counted in blocks, not slots: skipped slots do not age a transaction). A transaction
//! therefore expires; and since the status cache only has to remember the signatures of
//! transactions whose blockhash is still in the queue, it stays bounded.

use std::collections::{HashMap, VecDeque};

use bb_core::Hash;

/// How many recent blockhashes a bank accepts: a transaction signed against the block
/// `MAX_RECENT_BLOCKHASHES` blocks back (the 151st newest) is refused.
pub const MAX_RECENT_BLOCKHASHES: usize = 150;

/// The last [`MAX_RECENT_BLOCKHASHES`] blockhashes, newest last.
#[derive(Debug, Clone)]
pub struct BlockhashQueue {
    order: VecDeque<Hash>,
    /// Each hash's registration height, to answer its age.
    heights: HashMap<Hash, u64>,
    /// How many hashes were ever registered.
    height: u64,
}

impl BlockhashQueue {
    /// A queue holding only `first` (the genesis hash).
    pub fn new(first: Hash) -> Self {
        let mut q = BlockhashQueue {
            order: VecDeque::with_capacity(MAX_RECENT_BLOCKHASHES + 1),
            heights: HashMap::with_capacity(MAX_RECENT_BLOCKHASHES + 1),
            height: 0,
        };
        q.register(first);
        q
    }

    /// Adds a frozen block's blockhash, dropping the oldest beyond the limit.
    pub fn register(&mut self, hash: Hash) {
        if self.heights.contains_key(&hash) {
            // Cannot happen with real PoH; keep one entry, refreshed.
            self.order.retain(|h| *h != hash);
        }
        self.order.push_back(hash);
        self.heights.insert(hash, self.height);
        self.height += 1;
        while self.order.len() > MAX_RECENT_BLOCKHASHES {
            if let Some(old) = self.order.pop_front() {
                self.heights.remove(&old);
            }
        }
    }

    pub fn contains(&self, hash: &Hash) -> bool {
        self.heights.contains_key(hash)
    }

    /// How many blockhashes were registered after `hash` (0 for the newest).
    pub fn age(&self, hash: &Hash) -> Option<u64> {
        self.heights.get(hash).map(|h| self.height - 1 - h)
    }

    /// The newest blockhash: the one clients should sign against.
    pub fn last(&self) -> Hash {
        self.order.back().copied().unwrap_or_default()
    }

    pub fn len(&self) -> usize {
        self.order.len()
    }

    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    /// Oldest first.
    pub fn iter(&self) -> impl Iterator<Item = &Hash> {
        self.order.iter()
    }

    /// How many hashes were ever registered, and each hash kept with its registration
    /// height, oldest first: what rebuilds the queue exactly ([`BlockhashQueue::from_parts`]).
    pub(crate) fn parts(&self) -> (u64, Vec<(Hash, u64)>) {
        let entries = self
            .order
            .iter()
            .map(|h| (*h, self.heights.get(h).copied().unwrap_or_default()))
            .collect();
        (self.height, entries)
    }

    /// The queue [`BlockhashQueue::parts`] describes, if it could exist: at most
    /// [`MAX_RECENT_BLOCKHASHES`] distinct hashes, heights rising and below `height`.
    pub(crate) fn from_parts(height: u64, entries: &[(Hash, u64)]) -> Option<Self> {
        if entries.is_empty() || entries.len() > MAX_RECENT_BLOCKHASHES {
            return None;
        }
        let rising = entries.windows(2).all(|w| w[0].1 < w[1].1);
        if !rising || entries.last().is_some_and(|(_, h)| *h >= height) {
            return None;
        }
        let mut q = BlockhashQueue {
            order: VecDeque::with_capacity(MAX_RECENT_BLOCKHASHES + 1),
            heights: HashMap::with_capacity(MAX_RECENT_BLOCKHASHES + 1),
            height,
        };
        for (hash, h) in entries {
            if q.heights.insert(*hash, *h).is_some() {
                return None;
            }
            q.order.push_back(*hash);
        }
        Some(q)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bb_core::hash;

    fn h(i: u64) -> Hash {
        hash(&i.to_le_bytes())
    }

    #[test]
    fn keeps_the_last_150_hashes() {
        let mut q = BlockhashQueue::new(h(0));
        for i in 1..=MAX_RECENT_BLOCKHASHES as u64 {
            q.register(h(i));
        }
        assert_eq!(q.len(), MAX_RECENT_BLOCKHASHES);
        assert!(!q.contains(&h(0)), "the 151st newest is gone");
        assert!(q.contains(&h(1)));
        assert_eq!(q.age(&h(1)), Some(MAX_RECENT_BLOCKHASHES as u64 - 1));
        assert_eq!(q.age(&h(150)), Some(0));
        assert_eq!(q.last(), h(150));
    }

    #[test]
    fn re_registering_keeps_one_entry() {
        let mut q = BlockhashQueue::new(h(0));
        q.register(h(1));
        q.register(h(0));
        assert_eq!(q.len(), 2);
        assert_eq!(q.age(&h(0)), Some(0));
        assert_eq!(q.iter().copied().collect::<Vec<_>>(), vec![h(1), h(0)]);
    }
}
