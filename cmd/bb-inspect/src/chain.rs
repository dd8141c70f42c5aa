//! The checks behind `integrity`, over blocks in memory (no I/O here): which blocks form
//! the chain, and whether each block links to its parent, is signed by its leader,
//! continues the parent's PoH and, replayed from the genesis, gives the bank hash the
//! node reports. Nothing the node says is believed; what it reports is compared with
//! what the blocks themselves prove.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use bb_core::{Block, Entry, Genesis, Hash, Slot, verify_entries_parallel};
use bb_runtime::{Bank, BankError, BankForks};
use rayon::prelude::*;

/// The first problem found, at the slot it was found at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub slot: Slot,
    pub reason: String,
}

impl Failure {
    pub fn new(slot: Slot, reason: impl Into<String>) -> Self {
        Failure {
            slot,
            reason: reason.into(),
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "slot {}: {}", self.slot, self.reason)
    }
}

/// Which blocks of a range form the chain, walking parent links down from its top.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainPlan {
    /// The chain's slots, ascending.
    pub chain: Vec<Slot>,
    /// The parent slot of the chain's first block: below the range (0 is the genesis).
    pub anchor: Slot,
    /// Blocks in the range that are not on the chain (abandoned forks), ascending.
    pub off_chain: Vec<Slot>,
}

/// The highest block on the node's best fork (`on_best_fork`), or the highest block if
/// none is; `None` if there are no blocks.
pub fn pick_top(blocks: impl IntoIterator<Item = (Slot, bool)>) -> Option<Slot> {
    let mut best = None;
    let mut highest = None;
    for (slot, on_best_fork) in blocks {
        highest = highest.max(Some(slot));
        if on_best_fork {
            best = best.max(Some(slot));
        }
    }
    best.or(highest)
}

/// Walks from `top` down the parent slots in `parents` (slot -> parent slot, for every
/// block the node has in `[start, ..]`) until a parent below `start`.
pub fn plan_chain(
    parents: &BTreeMap<Slot, Slot>,
    start: Slot,
    top: Slot,
) -> Result<ChainPlan, Failure> {
    let mut chain = Vec::new();
    let mut slot = top;
    let anchor = loop {
        let Some(&parent) = parents.get(&slot) else {
            return Err(Failure::new(slot, "the node has no block for this slot"));
        };
        chain.push(slot);
        if parent >= slot {
            return Err(Failure::new(
                slot,
                format!("slots do not rise: parent slot {parent} is not below it"),
            ));
        }
        if parent < start || parent == 0 {
            break parent;
        }
        if !parents.contains_key(&parent) {
            return Err(Failure::new(
                slot,
                format!("its parent slot {parent} has no block on the node"),
            ));
        }
        slot = parent;
    };
    chain.reverse();
    let on_chain: BTreeSet<Slot> = chain.iter().copied().collect();
    let off_chain = parents
        .keys()
        .copied()
        .filter(|s| !on_chain.contains(s))
        .collect();
    Ok(ChainPlan {
        chain,
        anchor,
        off_chain,
    })
}

/// What the node says about a block: its summary, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reported {
    pub slot: Slot,
    pub block_id: Hash,
    /// The bank hash the node computed, if it replayed the block.
    pub bank_hash: Option<Hash>,
}

/// The block a chain continues from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Anchor {
    pub slot: Slot,
    pub block_id: Hash,
    /// Its last PoH hash: where the next block's PoH starts.
    pub poh_end: Hash,
}

impl Anchor {
    /// Slot 0: the genesis hash is both the first block's parent id and its PoH start.
    pub fn genesis(genesis_hash: Hash) -> Anchor {
        Anchor {
            slot: 0,
            block_id: genesis_hash,
            poh_end: genesis_hash,
        }
    }
}

/// What a clean run checked.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    pub blocks: u64,
    /// Bank hashes re-derived by replay and equal to the node's.
    pub bank_hashes_matched: u64,
    /// Blocks the node reported no bank hash for (it has not replayed them).
    pub bank_hashes_unreported: u64,
}

/// Checks blocks one by one, in chain order.
pub struct ChainCheck {
    prev: Anchor,
    hashes_per_tick: Option<u64>,
    /// The replayed chain, rooted at the previous block; `None` without a genesis.
    forks: Option<BankForks>,
    pub tally: Tally,
}

impl fmt::Debug for ChainCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChainCheck")
            .field("prev", &self.prev)
            .field("hashes_per_tick", &self.hashes_per_tick)
            .field("replay", &self.forks.is_some())
            .field("tally", &self.tally)
            .finish()
    }
}

impl ChainCheck {
    /// A check that replays every block from the genesis and compares bank hashes.
    pub fn with_replay(genesis: &Genesis) -> Result<ChainCheck, BankError> {
        let forks = BankForks::new(Bank::new_genesis(genesis)?)?;
        Ok(ChainCheck {
            prev: Anchor::genesis(genesis.hash()),
            hashes_per_tick: Some(genesis.hashes_per_tick),
            forks: Some(forks),
            tally: Tally::default(),
        })
    }

    /// A check of links, signatures and PoH from `anchor` on, without replay; tick
    /// lengths are checked only if `hashes_per_tick` is known.
    pub fn without_replay(anchor: Anchor, hashes_per_tick: Option<u64>) -> ChainCheck {
        ChainCheck {
            prev: anchor,
            hashes_per_tick,
            forks: None,
            tally: Tally::default(),
        }
    }

    /// Checks the next block of the chain against the one before and what the node
    /// reported about it; the first problem is returned, naming the slot.
    pub fn check(&mut self, reported: &Reported, block: &Block) -> Result<(), Failure> {
        let h = &block.header;
        let slot = reported.slot;
        let fail = |reason: String| Err(Failure::new(slot, reason));
        if h.slot != slot {
            return fail(format!("the node sent the block of slot {}", h.slot));
        }
        let id = block.id();
        if id != reported.block_id {
            return fail(format!(
                "block id differs: node says {}, the block hashes to {id}",
                reported.block_id
            ));
        }
        if h.parent_slot >= h.slot {
            return fail(format!(
                "slots do not rise: parent slot {} is not below it",
                h.parent_slot
            ));
        }
        if h.parent_slot != self.prev.slot {
            return fail(format!(
                "parent link broken: the block names parent slot {}, the chain's previous block is at slot {}",
                h.parent_slot, self.prev.slot
            ));
        }
        if h.parent_id != self.prev.block_id {
            return fail(format!(
                "parent link broken: the block names parent {}, the block at slot {} is {}",
                h.parent_id, self.prev.slot, self.prev.block_id
            ));
        }
        if let Err(e) = block.verify_signature() {
            return fail(format!("leader {}: {e}", h.leader));
        }
        if let Err(e) = block.verify_body() {
            return fail(format!("block body: {e}"));
        }
        if h.poh_start != self.prev.poh_end {
            return fail(format!(
                "PoH does not continue from the parent: it starts at {}, slot {} ended at {}",
                h.poh_start, self.prev.slot, self.prev.poh_end
            ));
        }
        match &mut self.forks {
            // Replay verifies PoH (tick lengths included) itself: hash it once.
            Some(forks) => {
                replay(forks, reported, block)?;
                match reported.bank_hash {
                    Some(_) => self.tally.bank_hashes_matched += 1,
                    None => self.tally.bank_hashes_unreported += 1,
                }
            }
            None => {
                verify_poh(&h.poh_start, &block.entries, self.hashes_per_tick)
                    .map_err(|reason| Failure::new(slot, reason))?;
            }
        }
        self.prev = Anchor {
            slot,
            block_id: id,
            poh_end: h.poh_end,
        };
        self.tally.blocks += 1;
        Ok(())
    }
}

/// Replays `block` on the rooted bank (the previous block of the chain), compares the
/// bank hash with the node's, and roots the new bank so memory stays flat.
fn replay(forks: &mut BankForks, reported: &Reported, block: &Block) -> Result<(), Failure> {
    let slot = reported.slot;
    let parent = forks.root_bank();
    let leader = parent
        .slot_leader(slot)
        .map_err(|e| Failure::new(slot, format!("no scheduled leader: {e}")))?;
    let bank = Bank::replay_block(&parent, block, leader).map_err(|e| {
        let reason = match e {
            bb_runtime::ReplayError::Poh(poh) => format!("PoH: {poh}"),
            other => format!("replay fails: {other}"),
        };
        Failure::new(slot, reason)
    })?;
    let Some(replayed) = bank.hash() else {
        return Err(Failure::new(slot, "replay left the bank unfrozen (a bug)"));
    };
    if let Some(node_says) = reported.bank_hash
        && node_says != replayed
    {
        return Err(Failure::new(
            slot,
            format!("bank hash differs: node says {node_says}, replay gives {replayed}"),
        ));
    }
    forks
        .insert(bank)
        .and_then(|_| forks.set_root(slot))
        .map_err(|e| Failure::new(slot, format!("replayed bank not kept: {e}")))?;
    Ok(())
}

/// PoH of a block's entries from `start`: with `hashes_per_tick`, the full check (tick
/// lengths too); without, the hash chain alone, entries in parallel.
pub fn verify_poh(
    start: &Hash,
    entries: &[Entry],
    hashes_per_tick: Option<u64>,
) -> Result<(), String> {
    match hashes_per_tick {
        Some(hpt) => verify_entries_parallel(start, entries, hpt).map_err(|e| format!("PoH: {e}")),
        None => {
            let bad = entries
                .par_iter()
                .enumerate()
                .filter_map(|(i, e)| {
                    let prev = if i == 0 { start } else { &entries[i - 1].hash };
                    (!e.verify(prev)).then_some(i)
                })
                .min();
            match bad {
                Some(index) => Err(format!(
                    "PoH: entry {index} does not follow from the previous hash"
                )),
                None => Ok(()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use bb_core::{GenesisAccount, GenesisValidator, Keypair, Transaction};
    use bb_runtime::produce_block;

    use super::*;

    fn keys() -> Vec<Keypair> {
        (1..=3u8).map(|i| Keypair::from_seed(&[i; 32])).collect()
    }

    fn genesis() -> Genesis {
        Genesis {
            version: 1,
            network: "inspect-test".into(),
            creation_time_ms: 0,
            slot_ms: 400,
            ticks_per_slot: 4,
            hashes_per_tick: 8,
            slots_per_epoch: 32,
            leader_slots_per_rotation: 4,
            slash_penalty_bps: bb_core::DEFAULT_SLASH_PENALTY_BPS,
            validators: keys()
                .iter()
                .map(|k| GenesisValidator {
                    identity: k.pubkey(),
                    stake: 100,
                })
                .collect(),
            accounts: vec![GenesisAccount {
                address: Keypair::from_seed(&[9; 32]).pubkey(),
                balance: 1_000_000,
            }],
        }
    }

    /// A chain of blocks on `slots` (skipping the others), each by its scheduled
    /// leader, with a transfer in every block; and what an honest node reports.
    fn chain(slots: &[Slot]) -> (Genesis, Vec<(Reported, Block)>) {
        let g = genesis();
        let keys = keys();
        let payer = Keypair::from_seed(&[9; 32]);
        let mut parent: Arc<Bank> = Bank::new_genesis(&g).unwrap();
        let mut out = Vec::new();
        for (n, &slot) in slots.iter().enumerate() {
            let leader_key = parent.slot_leader(slot).unwrap();
            let leader = keys.iter().find(|k| k.pubkey() == leader_key).unwrap();
            let tx = Transaction::transfer(
                &payer,
                keys[0].pubkey(),
                n as u64 + 1,
                1,
                parent.last_blockhash(),
            );
            let produced = produce_block(&parent, leader, slot, &[vec![tx]]).unwrap();
            assert_eq!(produced.block.header.transaction_count, 1);
            let reported = Reported {
                slot,
                block_id: produced.block.id(),
                bank_hash: produced.bank.hash(),
            };
            out.push((reported, produced.block));
            parent = Arc::new(produced.bank);
        }
        (g, out)
    }

    fn run(check: &mut ChainCheck, blocks: &[(Reported, Block)]) -> Result<(), Failure> {
        blocks.iter().try_for_each(|(r, b)| check.check(r, b))
    }

    #[test]
    fn an_honest_chain_with_skipped_slots_replays_to_the_same_bank_hashes() {
        let (g, blocks) = chain(&[1, 2, 4, 5, 9]);
        let mut check = ChainCheck::with_replay(&g).unwrap();
        assert_eq!(run(&mut check, &blocks), Ok(()));
        assert_eq!(check.tally.blocks, 5);
        assert_eq!(check.tally.bank_hashes_matched, 5);

        let mut no_replay = ChainCheck::without_replay(Anchor::genesis(g.hash()), None);
        assert_eq!(run(&mut no_replay, &blocks), Ok(()));
        assert_eq!(no_replay.tally.bank_hashes_matched, 0);
    }

    #[test]
    fn a_bit_flip_in_an_entry_is_found_and_named() {
        let (g, mut blocks) = chain(&[1, 2, 3, 4]);
        blocks[2].1.entries[0].hash.0[5] ^= 1;
        for mut check in [
            ChainCheck::with_replay(&g).unwrap(),
            ChainCheck::without_replay(Anchor::genesis(g.hash()), Some(g.hashes_per_tick)),
        ] {
            let err = run(&mut check, &blocks).unwrap_err();
            assert_eq!(err.slot, 3, "{err}");
            assert!(err.to_string().starts_with("slot 3: block body"), "{err}");
        }
    }

    #[test]
    fn a_leader_that_re_signs_a_forged_poh_is_caught_by_poh() {
        let (g, mut blocks) = chain(&[1, 2, 3]);
        let leader = keys()
            .into_iter()
            .find(|k| k.pubkey() == blocks[1].1.header.leader)
            .unwrap();
        let b = &blocks[1].1;
        let mut entries = b.entries.clone();
        entries[1].hash.0[0] ^= 1;
        let forged = Block::new_signed(
            &leader,
            2,
            b.header.parent_slot,
            b.header.parent_id,
            b.header.poh_start,
            entries,
        );
        blocks[1] = (
            Reported {
                slot: 2,
                block_id: forged.id(),
                bank_hash: blocks[1].0.bank_hash,
            },
            forged,
        );
        for mut check in [
            ChainCheck::with_replay(&g).unwrap(),
            ChainCheck::without_replay(Anchor::genesis(g.hash()), None),
        ] {
            let err = run(&mut check, &blocks).unwrap_err();
            assert_eq!(err.slot, 2);
            assert!(err.reason.starts_with("PoH: "), "{err}");
        }
    }

    #[test]
    fn a_swapped_parent_is_found_and_named() {
        let (g, mut blocks) = chain(&[1, 2, 3, 4]);
        // The leader of slot 4 re-signs its block onto slot 2 (its parent is 3).
        let leader = keys()
            .into_iter()
            .find(|k| k.pubkey() == blocks[3].1.header.leader)
            .unwrap();
        let b = &blocks[3].1;
        let forged = Block::new_signed(
            &leader,
            4,
            3,
            blocks[1].1.id(),
            b.header.poh_start,
            b.entries.clone(),
        );
        blocks[3] = (
            Reported {
                slot: 4,
                block_id: forged.id(),
                bank_hash: blocks[3].0.bank_hash,
            },
            forged,
        );
        let mut check = ChainCheck::with_replay(&g).unwrap();
        let err = run(&mut check, &blocks).unwrap_err();
        assert_eq!(err.slot, 4);
        assert!(err.reason.starts_with("parent link broken"), "{err}");
        assert!(err.reason.contains(&blocks[1].1.id().to_string()), "{err}");
    }

    #[test]
    fn a_header_changed_without_the_leaders_key_fails_the_signature() {
        let (g, mut blocks) = chain(&[1, 2, 3]);
        blocks[1].1.header.tick_count += 1;
        blocks[1].0.block_id = blocks[1].1.id();
        let mut check = ChainCheck::with_replay(&g).unwrap();
        let err = run(&mut check, &blocks).unwrap_err();
        assert_eq!(err.slot, 2);
        assert!(err.reason.starts_with("leader bb_"), "{err}");
        assert!(err.reason.contains("signature"), "{err}");
    }

    #[test]
    fn a_bank_hash_the_replay_does_not_give_is_named_with_both_hashes() {
        let (g, mut blocks) = chain(&[1, 2, 3]);
        let honest = blocks[1].0.bank_hash.unwrap();
        let lie = bb_core::hash(b"lie");
        blocks[1].0.bank_hash = Some(lie);
        let mut check = ChainCheck::with_replay(&g).unwrap();
        let err = run(&mut check, &blocks).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("slot 2: bank hash differs: node says {lie}, replay gives {honest}")
        );
    }

    #[test]
    fn a_wrong_block_id_or_missing_bank_hash_is_reported() {
        let (g, mut blocks) = chain(&[1, 2]);
        blocks[1].0.bank_hash = None;
        let mut check = ChainCheck::with_replay(&g).unwrap();
        run(&mut check, &blocks).unwrap();
        assert_eq!(check.tally.bank_hashes_unreported, 1);
        assert_eq!(check.tally.bank_hashes_matched, 1);

        let (g, mut blocks) = chain(&[1, 2]);
        blocks[0].0.block_id = Hash::ZERO;
        let mut check = ChainCheck::with_replay(&g).unwrap();
        let err = run(&mut check, &blocks).unwrap_err();
        assert!(err.reason.starts_with("block id differs"), "{err}");
    }

    #[test]
    fn a_chain_from_a_later_anchor_checks_links_and_poh_without_replay() {
        let (g, blocks) = chain(&[1, 2, 3, 5]);
        let anchor = Anchor {
            slot: 2,
            block_id: blocks[1].1.id(),
            poh_end: blocks[1].1.header.poh_end,
        };
        let mut check = ChainCheck::without_replay(anchor, Some(g.hashes_per_tick));
        assert_eq!(run(&mut check, &blocks[2..]), Ok(()));
        // Starting from the wrong anchor breaks the first link.
        let mut check = ChainCheck::without_replay(Anchor::genesis(g.hash()), None);
        let err = run(&mut check, &blocks[2..]).unwrap_err();
        assert_eq!(err.slot, 3);
        assert!(err.reason.contains("parent slot 2"), "{err}");
    }

    #[test]
    fn plans_follow_parent_links_and_set_forks_aside() {
        // 1 <- 2 <- 4 <- 6, and 3 (child of 2) and 5 (child of 3) on a dead fork.
        let parents = BTreeMap::from([(1, 0), (2, 1), (3, 2), (4, 2), (5, 3), (6, 4)]);
        let plan = plan_chain(&parents, 1, 6).unwrap();
        assert_eq!(plan.chain, vec![1, 2, 4, 6]);
        assert_eq!(plan.anchor, 0);
        assert_eq!(plan.off_chain, vec![3, 5]);

        // A range starting at 4 anchors on 2.
        let later: BTreeMap<Slot, Slot> = parents.range(4..).map(|(s, p)| (*s, *p)).collect();
        let plan = plan_chain(&later, 4, 6).unwrap();
        assert_eq!((plan.chain, plan.anchor), (vec![4, 6], 2));

        // A parent with no block inside the range, and a parent not below its child.
        let holes = BTreeMap::from([(1, 0), (4, 3), (6, 4)]);
        let err = plan_chain(&holes, 1, 6).unwrap_err();
        assert_eq!(
            err.to_string(),
            "slot 4: its parent slot 3 has no block on the node"
        );
        let loops = BTreeMap::from([(1, 0), (4, 6), (6, 4)]);
        assert_eq!(plan_chain(&loops, 1, 6).unwrap_err().slot, 4);
    }

    #[test]
    fn the_top_is_the_highest_block_on_the_best_fork() {
        assert_eq!(pick_top([(3, true), (5, false), (4, true)]), Some(4));
        assert_eq!(pick_top([(3, false), (5, false)]), Some(5));
        assert_eq!(pick_top([]), None);
    }
}
