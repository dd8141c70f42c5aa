//! Who sends each shred to whom: a stake-weighted random tree per shred.
//!
//! For every shred the staked nodes other than the leader are put in a stake-weighted
//! random order; the leader sends the shred to the first node (the root), and the node
//! at position `p` sends it on to positions `p * fanout + 1 ..= p * fanout + fanout`.
//! The order is seeded by SHA-256(`bb/turbine-shuffle` || leader || slot || kind ||
//! index) through ChaCha8, whose output is fixed by its specification, and the
//! sampling is integer-only, so every node computes the same tree without talking.
//! A different tree per shred spreads the upload work and means no single node sits
//! near the root of every shred.

use bb_core::{Pubkey, Slot, hashv};
use rand::rngs::ChaCha8Rng;
use rand::{Rng, SeedableRng};

use crate::shred::ShredKind;

/// The default number of children per node: Solana's data-plane fanout. With 200, every
/// cluster up to 201 nodes is two hops deep and up to 40,201 is three; a node's egress
/// per shred is at most 200 datagrams (about 246 KB). A smaller fanout lowers the root's
/// egress and adds hops; it is a configuration knob.
pub const DEFAULT_FANOUT: usize = 200;

const SEED_PREFIX: &[u8] = b"bb/turbine-shuffle";

/// The staked nodes and the fanout; computes each shred's tree on demand.
#[derive(Debug, Clone)]
pub struct RetransmitTree {
    /// Sorted by key, one entry per key, so the caller's order never matters.
    nodes: Vec<(Pubkey, u64)>,
    fanout: usize,
}

impl RetransmitTree {
    /// `nodes` in any order; a key listed twice counts once with the sum of its stakes.
    /// A `fanout` of 0 is taken as 1 (a chain).
    pub fn new(nodes: &[(Pubkey, u64)], fanout: usize) -> RetransmitTree {
        let mut sorted = nodes.to_vec();
        sorted.sort_unstable_by_key(|(key, _)| *key);
        let mut merged: Vec<(Pubkey, u64)> = Vec::with_capacity(sorted.len());
        for (key, stake) in sorted {
            match merged.last_mut() {
                Some((last, total)) if *last == key => *total = total.saturating_add(stake),
                _ => merged.push((key, stake)),
            }
        }
        RetransmitTree {
            nodes: merged,
            fanout: fanout.max(1),
        }
    }

    /// With [`DEFAULT_FANOUT`].
    pub fn with_default_fanout(nodes: &[(Pubkey, u64)]) -> RetransmitTree {
        Self::new(nodes, DEFAULT_FANOUT)
    }

    pub fn fanout(&self) -> usize {
        self.fanout
    }

    /// The shred's tree in order (root first): every node but the leader, staked nodes
    /// by a stake-weighted draw without replacement, then zero-stake nodes uniformly.
    pub fn shuffle(
        &self,
        leader: &Pubkey,
        slot: Slot,
        shred_index: u32,
        kind: ShredKind,
    ) -> Vec<Pubkey> {
        self.shuffle_prefix(leader, slot, shred_index, kind, usize::MAX)
    }

    /// The first `len` nodes of [`RetransmitTree::shuffle`] (all of them if fewer), drawing
    /// no more than that: the draws are sequential, so a prefix is the same either way.
    fn shuffle_prefix(
        &self,
        leader: &Pubkey,
        slot: Slot,
        shred_index: u32,
        kind: ShredKind,
        len: usize,
    ) -> Vec<Pubkey> {
        let seed = hashv(&[
            SEED_PREFIX,
            leader.as_bytes(),
            &slot.to_le_bytes(),
            &[kind.to_byte()],
            &shred_index.to_le_bytes(),
        ]);
        let mut rng = ChaCha8Rng::from_seed(seed.0);
        let candidates: Vec<&(Pubkey, u64)> =
            self.nodes.iter().filter(|(key, _)| key != leader).collect();
        let stakes: Vec<u64> = candidates.iter().map(|(_, stake)| *stake).collect();
        weighted_shuffle(&stakes, &mut rng, len)
            .into_iter()
            .map(|i| candidates[i].0)
            .collect()
    }

    /// Where the leader sends the shred: the root of its tree (`None` if the leader is
    /// alone).
    pub fn first_hop(
        &self,
        leader: &Pubkey,
        slot: Slot,
        shred_index: u32,
        kind: ShredKind,
    ) -> Option<Pubkey> {
        self.shuffle(leader, slot, shred_index, kind)
            .first()
            .copied()
    }

    /// Whom `me` sends the shred on to. Empty for a leaf, the leader, or a node not in
    /// the list.
    pub fn children(
        &self,
        leader: &Pubkey,
        slot: Slot,
        shred_index: u32,
        kind: ShredKind,
        me: &Pubkey,
    ) -> Vec<Pubkey> {
        // Only the first positions have children: most nodes are leaves of most shreds'
        // trees, and finding that out needs those positions only, not the whole order.
        let others = self.nodes.iter().filter(|(key, _)| key != leader).count();
        let inner = others.saturating_sub(1).div_ceil(self.fanout);
        let head = self.shuffle_prefix(leader, slot, shred_index, kind, inner);
        let Some(p) = head.iter().position(|key| key == me) else {
            return Vec::new();
        };
        let start = p.saturating_mul(self.fanout).saturating_add(1);
        let end = start.saturating_add(self.fanout).min(others);
        self.shuffle_prefix(leader, slot, shred_index, kind, end)
            .get(start..end)
            .map(<[Pubkey]>::to_vec)
            .unwrap_or_default()
    }

    /// From whom `me` should get the shred: the leader for the root, the node above
    /// otherwise; `None` for the leader or a node not in the list.
    pub fn parent(
        &self,
        leader: &Pubkey,
        slot: Slot,
        shred_index: u32,
        kind: ShredKind,
        me: &Pubkey,
    ) -> Option<Pubkey> {
        let order = self.shuffle(leader, slot, shred_index, kind);
        match order.iter().position(|key| key == me)? {
            0 => Some(*leader),
            p => order.get((p - 1) / self.fanout).copied(),
        }
    }
}

/// The first `len` indices of a permutation of `0..stakes.len()`: indices with stake
/// drawn one at a time with probability proportional to stake among those left, then
/// zero-stake indices in a uniform random order. O(n + len log n) with a Fenwick tree of
/// the remaining stakes; any `len` gives a prefix of the same permutation.
fn weighted_shuffle<R: Rng>(stakes: &[u64], rng: &mut R, len: usize) -> Vec<usize> {
    // Scale down (keeping every non-zero stake at least 1) so the total fits in a u64.
    let total: u128 = stakes.iter().map(|&s| u128::from(s)).sum();
    let shift = (128 - total.leading_zeros()).saturating_sub(62);
    let (staked, zero): (Vec<usize>, Vec<usize>) = (0..stakes.len()).partition(|&i| stakes[i] > 0);
    let weights: Vec<u64> = staked
        .iter()
        .map(|&i| (stakes[i] >> shift).max(1))
        .collect();

    let mut fenwick = Fenwick::new(&weights);
    let mut remaining: u64 = weights.iter().sum();
    let mut order = Vec::with_capacity(stakes.len().min(len));
    for _ in 0..weights.len().min(len) {
        let pick = fenwick.find(uniform(rng, remaining));
        fenwick.sub(pick, weights[pick]);
        remaining -= weights[pick];
        order.push(staked[pick]);
    }
    if order.len() >= len {
        return order;
    }

    let mut zero = zero;
    for i in (1..zero.len()).rev() {
        let j = uniform(rng, i as u64 + 1) as usize;
        zero.swap(i, j);
    }
    order.extend(zero);
    order.truncate(len);
    order
}

/// A uniform draw from `0..n` (`n > 0`), by rejection so no value is favoured.
fn uniform<R: Rng>(rng: &mut R, n: u64) -> u64 {
    // 2^64 mod n: the draws below it are the incomplete last block.
    let threshold = n.wrapping_neg() % n;
    loop {
        let x = rng.next_u64();
        if x >= threshold {
            return x % n;
        }
    }
}

/// Prefix sums of weights, with removal, for weighted draws in O(log n).
struct Fenwick {
    tree: Vec<u64>,
}

impl Fenwick {
    fn new(weights: &[u64]) -> Fenwick {
        let mut tree = vec![0u64; weights.len() + 1];
        for (i, &w) in weights.iter().enumerate() {
            let mut j = i + 1;
            while j < tree.len() {
                tree[j] += w;
                j += j & j.wrapping_neg();
            }
        }
        Fenwick { tree }
    }

    fn sub(&mut self, index: usize, w: u64) {
        let mut j = index + 1;
        while j < self.tree.len() {
            self.tree[j] -= w;
            j += j & j.wrapping_neg();
        }
    }

    /// The index whose cumulative range holds `target` (`target` < the remaining total):
    /// the first index with prefix sum > `target`. Removed weights are zero, so they are
    /// never found.
    fn find(&self, mut target: u64) -> usize {
        let n = self.tree.len() - 1;
        let mut pos = 0;
        let mut step = n.checked_ilog2().map_or(0, |log| 1usize << log);
        while step > 0 {
            let next = pos + step;
            if next <= n && self.tree[next] <= target {
                pos = next;
                target -= self.tree[next];
            }
            step /= 2;
        }
        pos
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(i: u32) -> Pubkey {
        Pubkey(hashv(&[b"node", &i.to_le_bytes()]).0)
    }

    fn nodes(n: u32, stake: impl Fn(u32) -> u64) -> Vec<(Pubkey, u64)> {
        (0..n).map(|i| (key(i), stake(i))).collect()
    }

    #[test]
    fn shuffle_is_deterministic_and_differs_per_shred() {
        let tree = RetransmitTree::new(&nodes(50, |i| u64::from(i) * 10 + 1), 4);
        let leader = key(0);
        let a = tree.shuffle(&leader, 7, 3, ShredKind::Data);
        assert_eq!(a, tree.shuffle(&leader, 7, 3, ShredKind::Data));
        // Another node's copy, built from the same nodes listed in another order.
        let mut reversed = nodes(50, |i| u64::from(i) * 10 + 1);
        reversed.reverse();
        let other = RetransmitTree::new(&reversed, 4);
        assert_eq!(a, other.shuffle(&leader, 7, 3, ShredKind::Data));
        assert_ne!(a, tree.shuffle(&leader, 7, 4, ShredKind::Data));
        assert_ne!(a, tree.shuffle(&leader, 7, 3, ShredKind::Code));
        assert_ne!(a, tree.shuffle(&leader, 8, 3, ShredKind::Data));
        assert_ne!(a, tree.shuffle(&key(1), 7, 3, ShredKind::Data));
        assert_eq!(a.len(), 49);
        assert!(!a.contains(&leader));
    }

    #[test]
    fn tree_covers_every_node_once_with_matching_parents_and_children() {
        for n in [1u32, 2, 3, 7, 33, 100, 257] {
            for fanout in [0usize, 1, 2, 3, 8, 32, DEFAULT_FANOUT] {
                let list = nodes(n, |i| u64::from(i % 5));
                let tree = RetransmitTree::new(&list, fanout);
                let leader = key(n / 2);
                let (slot, index, kind) = (u64::from(n), fanout as u32, ShredKind::Code);
                let root = tree.first_hop(&leader, slot, index, kind);
                let mut reached = vec![leader];
                let mut frontier: Vec<Pubkey> = root.into_iter().collect();
                reached.extend(&frontier);
                if let Some(root) = root {
                    assert_eq!(tree.parent(&leader, slot, index, kind, &root), Some(leader));
                }
                while let Some(node) = frontier.pop() {
                    let children = tree.children(&leader, slot, index, kind, &node);
                    assert!(children.len() <= fanout.max(1));
                    for child in children {
                        assert_eq!(tree.parent(&leader, slot, index, kind, &child), Some(node));
                        reached.push(child);
                        frontier.push(child);
                    }
                }
                reached.sort();
                let mut all: Vec<Pubkey> = list.iter().map(|(k, _)| *k).collect();
                all.sort();
                assert_eq!(reached, all, "n = {n}, fanout = {fanout}");
                assert_eq!(tree.parent(&leader, slot, index, kind, &leader), None);
                assert!(
                    tree.children(&leader, slot, index, kind, &leader)
                        .is_empty()
                );
                assert_eq!(tree.parent(&leader, slot, index, kind, &key(9999)), None);
            }
        }
    }

    #[test]
    fn children_read_from_a_prefix_match_the_whole_order() {
        for n in [1u32, 2, 5, 40, 99, 100] {
            for fanout in [1usize, 2, 3, 7, DEFAULT_FANOUT] {
                let list = nodes(n, |i| u64::from(i % 4));
                let tree = RetransmitTree::new(&list, fanout);
                let leader = key(0);
                for (index, kind) in [(0u32, ShredKind::Data), (5, ShredKind::Code)] {
                    let order = tree.shuffle(&leader, 9, index, kind);
                    for (p, me) in order.iter().enumerate() {
                        let start = (p * fanout + 1).min(order.len());
                        let end = (start + fanout).min(order.len());
                        assert_eq!(
                            tree.children(&leader, 9, index, kind, me),
                            order[start..end].to_vec(),
                            "n = {n}, fanout = {fanout}, position {p}"
                        );
                    }
                    for len in [0, 1, 3, order.len(), order.len() + 5] {
                        let head = tree.shuffle_prefix(&leader, 9, index, kind, len);
                        assert_eq!(head, order[..len.min(order.len())].to_vec());
                    }
                }
            }
        }
    }

    #[test]
    fn higher_stake_is_the_root_more_often() {
        // Stakes 1..=10 (x 1000); node 9 has the most.
        let list = nodes(10, |i| (u64::from(i) + 1) * 1000);
        let tree = RetransmitTree::with_default_fanout(&list);
        let leader = Pubkey([0xab; 32]);
        let mut roots = [0u32; 10];
        for index in 0..5000 {
            let root = tree.first_hop(&leader, 1, index, ShredKind::Data);
            let i = list.iter().position(|(k, _)| Some(*k) == root);
            roots[i.unwrap_or_default()] += 1;
        }
        let most = roots
            .iter()
            .enumerate()
            .max_by_key(|&(_, c)| *c)
            .map(|(i, _)| i);
        assert_eq!(most, Some(9), "{roots:?}");
        // Expected share 10/55 = 18%; the lightest expected 1/55 = 1.8%.
        assert!(roots[9] > 700 && roots[0] < 200, "{roots:?}");
    }

    #[test]
    fn zero_stake_nodes_come_last() {
        let list = nodes(40, |i| if i % 2 == 0 { 0 } else { 5 });
        let tree = RetransmitTree::new(&list, 3);
        for index in 0..20 {
            let order = tree.shuffle(&Pubkey::default(), 3, index, ShredKind::Data);
            let stake = |k: &Pubkey| list.iter().find(|(key, _)| key == k).map_or(0, |(_, s)| *s);
            assert!(order[..20].iter().all(|k| stake(k) == 5));
            assert!(order[20..].iter().all(|k| stake(k) == 0));
        }
    }

    #[test]
    fn huge_stakes_do_not_overflow() {
        let list = nodes(5, |i| u64::MAX - u64::from(i));
        let tree = RetransmitTree::new(&list, 2);
        assert_eq!(tree.shuffle(&key(0), 1, 1, ShredKind::Data).len(), 4);
        // A key listed twice counts once.
        let doubled = [list.clone(), list].concat();
        let tree = RetransmitTree::new(&doubled, 2);
        assert_eq!(tree.shuffle(&key(0), 1, 1, ShredKind::Data).len(), 4);
    }

    #[test]
    fn fenwick_finds_by_prefix_sum() {
        let mut f = Fenwick::new(&[3, 0, 2, 5]);
        let found: Vec<usize> = (0..10).map(|t| f.find(t)).collect();
        assert_eq!(found, [0, 0, 0, 2, 2, 3, 3, 3, 3, 3]);
        f.sub(2, 2);
        let found: Vec<usize> = (0..8).map(|t| f.find(t)).collect();
        assert_eq!(found, [0, 0, 0, 3, 3, 3, 3, 3]);
    }
}
