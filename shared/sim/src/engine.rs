//! The event loop: one simulated clock, a seeded random source, and N nodes, each a real
//! [`bb_engine::Validator`] (bank, tower, fork choice, vote tracker).

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::sync::Arc;

use bb_core::{
    Block, Genesis, GenesisAccount, GenesisValidator, Hash, Keypair, Pubkey, SignedVote, Slot,
    Transaction,
};
use bb_engine::{HeldSlots, Output, TowerRecord, Validator};
use bb_runtime::Bank;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

use crate::SimConfig;
use crate::report::{LatencyStats, NodeReport, SimReport};
use crate::spec::FaultKind;

/// Something on the wire between two nodes.
#[derive(Debug, Clone)]
enum Message {
    Block(Arc<Block>),
    /// A repair answer: the asked-for block and up to [`REPAIR_CHAIN`] - 1 of its
    /// ancestors, oldest first, so a node far behind catches up in few round trips.
    Blocks(Vec<Arc<Block>>),
    Vote(Arc<SignedVote>),
    Repair(Slot),
    /// Two versions of one slot signed by its leader: the simulator's stand-in for the
    /// duplicate-block evidence real nodes gossip.
    Duplicate(Vec<Arc<Block>>),
}

/// Most blocks one repair answer carries.
const REPAIR_CHAIN: usize = 32;

#[derive(Debug, Clone)]
enum Event {
    /// The end of a slot: its leader finishes the block; nodes do their per-slot chores.
    SlotEnd(Slot),
    Deliver {
        from: usize,
        to: usize,
        msg: Message,
    },
    /// Re-evaluate commitment after votes arrived.
    Check(usize),
}

/// What survives a crash: the ledger (rooted bank, stored blocks) and the tower.
#[derive(Debug)]
struct Persisted {
    tower: Option<TowerRecord>,
    root_bank: Arc<Bank>,
    blocks: BTreeMap<Slot, Arc<Block>>,
}

#[derive(Debug)]
struct Node {
    keypair: Keypair,
    /// `None` while crashed.
    validator: Option<Validator>,
    ever_crashed: bool,
    check_pending: bool,
    confirmed: Slot,
    finalized: Slot,
    votes_cast: u64,
    double_votes_seen: u64,
    duplicate_slots_seen: u64,
    versions_replaced: u64,
    fault: Option<FaultKind>,
    persisted: Persisted,
    /// Slots whose blocks wait for the previous leader's (the handoff grace, as a
    /// validator does it).
    held: HeldSlots,
}

pub(crate) struct Simulation {
    config: SimConfig,
    genesis: Genesis,
    nodes: Vec<Node>,
    index_of: BTreeMap<Pubkey, usize>,
    /// Funded accounts for the transfers leaders put in blocks.
    payers: Vec<Keypair>,
    schedule_bank: Arc<Bank>,
    leaders: BTreeMap<Slot, Pubkey>,
    rng: StdRng,
    queue: BinaryHeap<Reverse<(u64, u64, usize)>>,
    events: Vec<Option<Event>>,
    free: Vec<usize>,
    seq: u64,
    now: u64,
    produced: BTreeMap<Slot, Hash>,
    rooted_by_any: BTreeMap<Slot, Hash>,
    violations: Vec<String>,
    confirm_ms: Vec<u64>,
    finalize_ms: Vec<u64>,
    messages_sent: u64,
    messages_dropped: u64,
    /// Messages from faulty nodes that receivers refused (broken signatures).
    messages_rejected: u64,
}

impl Simulation {
    pub(crate) fn new(config: SimConfig) -> Simulation {
        let mut rng = StdRng::seed_from_u64(config.seed);
        let keypairs: Vec<Keypair> = (0..config.nodes)
            .map(|_| Keypair::generate_with(&mut rng))
            .collect();
        let payers: Vec<Keypair> = (0..16).map(|_| Keypair::generate_with(&mut rng)).collect();
        let stakes: Vec<u64> = config
            .stakes
            .clone()
            .unwrap_or_else(|| vec![100; config.nodes]);
        let genesis = Genesis {
            version: bb_core::genesis::GENESIS_VERSION,
            network: format!("sim-{}", config.seed),
            creation_time_ms: 0,
            slot_ms: config.slot_ms,
            ticks_per_slot: 4,
            hashes_per_tick: 16,
            slots_per_epoch: config.slots_per_epoch,
            leader_slots_per_rotation: 4,
            slash_penalty_bps: bb_core::DEFAULT_SLASH_PENALTY_BPS,
            validators: keypairs
                .iter()
                .zip(&stakes)
                .map(|(k, s)| GenesisValidator {
                    identity: k.pubkey(),
                    stake: *s,
                })
                .collect(),
            accounts: payers
                .iter()
                .map(|k| GenesisAccount {
                    address: k.pubkey(),
                    balance: 1 << 40,
                })
                .collect(),
        };
        let schedule_bank = Bank::new_genesis(&genesis).expect("the simulator's genesis is valid");
        let faults: BTreeMap<usize, FaultKind> =
            config.faults.iter().map(|f| (f.node, f.kind)).collect();
        let nodes = keypairs
            .iter()
            .enumerate()
            .map(|(i, k)| {
                let validator = Validator::new(k.clone(), &genesis).expect("valid genesis");
                let root_bank = validator.root_bank();
                Node {
                    keypair: k.clone(),
                    validator: Some(validator),
                    ever_crashed: false,
                    check_pending: false,
                    confirmed: 0,
                    finalized: 0,
                    votes_cast: 0,
                    double_votes_seen: 0,
                    duplicate_slots_seen: 0,
                    versions_replaced: 0,
                    fault: faults.get(&i).copied(),
                    persisted: Persisted {
                        tower: None,
                        root_bank,
                        blocks: BTreeMap::new(),
                    },
                    held: HeldSlots::new(),
                }
            })
            .collect();
        let index_of = keypairs
            .iter()
            .enumerate()
            .map(|(i, k)| (k.pubkey(), i))
            .collect();
        Simulation {
            config,
            genesis,
            nodes,
            index_of,
            payers,
            schedule_bank,
            leaders: BTreeMap::new(),
            rng,
            queue: BinaryHeap::new(),
            events: Vec::new(),
            free: Vec::new(),
            seq: 0,
            now: 0,
            produced: BTreeMap::new(),
            rooted_by_any: BTreeMap::new(),
            violations: Vec::new(),
            confirm_ms: Vec::new(),
            finalize_ms: Vec::new(),
            messages_sent: 0,
            messages_dropped: 0,
            messages_rejected: 0,
        }
    }

    fn schedule(&mut self, at: u64, event: Event) {
        let id = match self.free.pop() {
            Some(id) => {
                self.events[id] = Some(event);
                id
            }
            None => {
                self.events.push(Some(event));
                self.events.len() - 1
            }
        };
        self.seq += 1;
        self.queue.push(Reverse((at, self.seq, id)));
    }

    fn current_slot(&self) -> Slot {
        self.now / self.config.slot_ms
    }

    /// Stakes never change in the simulator, so one schedule serves every node.
    fn leader_at(&mut self, slot: Slot) -> Option<Pubkey> {
        if let Some(l) = self.leaders.get(&slot) {
            return Some(*l);
        }
        let leader = self.schedule_bank.slot_leader(slot).ok()?;
        self.leaders.insert(slot, leader);
        Some(leader)
    }

    pub(crate) fn run(mut self) -> SimReport {
        // Slot s runs from s*slot_ms to (s+1)*slot_ms; slot 0 is genesis. A node that
        // stops at slot 0 is down from the start.
        self.apply_crashes(0);
        for slot in 1..=self.config.slots {
            let at = (slot + 1) * self.config.slot_ms;
            self.schedule(at, Event::SlotEnd(slot));
        }
        let end = (self.config.slots + 2) * self.config.slot_ms;
        while let Some(Reverse((at, _, id))) = self.queue.pop() {
            if at > end {
                break;
            }
            self.now = at;
            let Some(event) = self.events[id].take() else {
                continue;
            };
            self.free.push(id);
            match event {
                Event::SlotEnd(slot) => self.on_slot_end(slot),
                Event::Deliver { from, to, msg } => self.on_deliver(from, to, msg),
                Event::Check(n) => {
                    self.nodes[n].check_pending = false;
                    self.with_validator(n, |v, _| v.refresh_commitment());
                }
            }
        }
        self.report()
    }

    // ---- driving a node -----------------------------------------------------------

    /// Runs `f` on node `n`'s validator (if up) and carries out its outputs.
    fn with_validator(&mut self, n: usize, f: impl FnOnce(&mut Validator, u64) -> Vec<Output>) {
        let now = self.now;
        let Some(v) = self.nodes[n].validator.as_mut() else {
            return;
        };
        let outputs = f(v, now);
        self.apply(n, outputs);
    }

    fn apply(&mut self, n: usize, outputs: Vec<Output>) {
        for o in outputs {
            match o {
                Output::PersistTower(t) => self.nodes[n].persisted.tower = Some(t),
                Output::SendVote(v) => {
                    self.nodes[n].votes_cast += 1;
                    self.broadcast(n, &Message::Vote(Arc::new(v)));
                    if self.nodes[n].fault == Some(FaultKind::DoubleVote) {
                        let twin = self.twin_vote(n, &v);
                        self.broadcast(n, &Message::Vote(Arc::new(twin)));
                    }
                }
                Output::SendBlock(b) => {
                    self.produced.insert(b.header.slot, b.id());
                    match self.nodes[n].fault {
                        Some(FaultKind::WithholdShreds) => {}
                        Some(FaultKind::Equivocate) => self.equivocate(n, b),
                        _ => self.broadcast(n, &Message::Block(b)),
                    }
                }
                Output::StoreBlock(b) => {
                    self.nodes[n].persisted.blocks.insert(b.header.slot, b);
                }
                Output::Repair { slot, hint } => {
                    let peer = hint.and_then(|h| self.index_of.get(&h).copied());
                    let peer = peer
                        .filter(|p| *p != n)
                        .unwrap_or_else(|| self.random_peer(n));
                    if peer != n {
                        self.send(n, peer, Message::Repair(slot));
                    }
                }
                Output::Rooted { changes, chain, .. } => self.on_rooted(n, changes.slot, chain),
                Output::Evidence(_) => self.nodes[n].double_votes_seen += 1,
                Output::DuplicateSlot { slot, confirmed } => {
                    if confirmed.is_none() {
                        self.nodes[n].duplicate_slots_seen += 1;
                        let versions = self.nodes[n]
                            .validator
                            .as_ref()
                            .map(|v| v.duplicate_versions(slot))
                            .unwrap_or_default();
                        if versions.len() >= 2 {
                            self.broadcast(n, &Message::Duplicate(versions));
                        }
                    }
                }
                Output::ReplacedVersion { .. } => self.nodes[n].versions_replaced += 1,
                Output::DeadBlock { .. } | Output::Frozen { .. } => {}
                Output::Commitment(c) => self.on_commitment(n, c.confirmed, c.finalized),
            }
        }
    }

    fn random_peer(&mut self, n: usize) -> usize {
        if self.nodes.len() < 2 {
            return n;
        }
        let mut peer = self.rng.random_range(0..self.nodes.len() - 1);
        if peer >= n {
            peer += 1;
        }
        peer
    }

    // ---- faults -------------------------------------------------------------------

    /// Fault `double-vote`: the same vote, signed for another block of its slot.
    fn twin_vote(&self, n: usize, v: &SignedVote) -> SignedVote {
        let mut vote = v.vote;
        vote.block_id = bb_core::hashv(&[b"twin", &v.vote.block_id.0]);
        vote.bank_hash = bb_core::hashv(&[b"twin", &v.vote.bank_hash.0]);
        vote.sign(&self.nodes[n].keypair)
    }

    /// Fault `equivocate`: a second version of `block` (no transactions, built on its
    /// parent's parent), and each peer gets one of the two at random.
    fn equivocate(&mut self, n: usize, block: Arc<Block>) {
        let slot = block.header.slot;
        let twin = self.nodes[n]
            .validator
            .as_ref()
            .and_then(|v| v.bank(block.header.parent_slot))
            .and_then(|parent| parent.parent())
            .and_then(|grand| {
                bb_runtime::produce_block_with_evidence(
                    &grand,
                    &self.nodes[n].keypair,
                    slot,
                    &[],
                    &[],
                    None,
                )
                .ok()
            })
            .map(|p| Arc::new(p.block));
        let Some(twin) = twin else {
            self.broadcast(n, &Message::Block(block));
            return;
        };
        for to in 0..self.nodes.len() {
            if to != n {
                let version = if self.rng.random::<bool>() {
                    block.clone()
                } else {
                    twin.clone()
                };
                self.send(n, to, Message::Block(version));
            }
        }
    }

    /// Faults `garbage` and `flood:RATE`, once a slot.
    fn misbehave(&mut self, n: usize, slot: Slot) {
        let Some(fault) = self.nodes[n].fault else {
            return;
        };
        let latest = self.nodes[n]
            .validator
            .as_ref()
            .and_then(Validator::last_vote);
        match fault {
            FaultKind::Garbage => {
                if let Some(mut v) = latest {
                    v.signature.0[0] ^= 0xff;
                    self.broadcast(n, &Message::Vote(Arc::new(v)));
                }
                let stored = self.nodes[n].persisted.blocks.values().next_back().cloned();
                if let Some(b) = stored {
                    let mut forged = (*b).clone();
                    forged.header.tick_count ^= 1 + slot;
                    self.broadcast(n, &Message::Block(Arc::new(forged)));
                }
            }
            FaultKind::Flood(rate) => {
                if let Some(v) = latest {
                    let copies = (u64::from(rate) * self.config.slot_ms / 1000).max(1);
                    let v = Message::Vote(Arc::new(v));
                    for _ in 0..copies {
                        self.broadcast(n, &v);
                    }
                }
            }
            _ => {}
        }
    }

    fn apply_crashes(&mut self, slot: Slot) {
        let crashes = self.config.crashes.clone();
        for c in crashes {
            if c.at == slot && self.nodes[c.node].validator.is_some() {
                // Everything not persisted is gone.
                self.nodes[c.node].validator = None;
                self.nodes[c.node].held.clear();
                self.nodes[c.node].ever_crashed = true;
            }
            if c.restart == Some(slot) && self.nodes[c.node].validator.is_none() {
                self.restart(c.node);
            }
        }
    }

    /// Restarts from the ledger: the rooted bank, the persisted tower, the stored blocks.
    fn restart(&mut self, n: usize) {
        let node = &mut self.nodes[n];
        let restored = Validator::restore(
            node.keypair.clone(),
            node.persisted.root_bank.clone(),
            node.persisted.tower.clone(),
        );
        let Ok(validator) = restored else { return };
        node.validator = Some(validator);
        let root = node.persisted.root_bank.slot();
        let stored: Vec<Arc<Block>> = node
            .persisted
            .blocks
            .range(root + 1..)
            .map(|(_, b)| b.clone())
            .collect();
        for block in stored {
            self.with_validator(n, |v, _| v.on_block(block, None));
        }
    }

    /// Whether a message from `a` to `b` crosses an active partition.
    fn partitioned(&self, a: usize, b: usize) -> bool {
        let slot = self.current_slot();
        self.config
            .partitions
            .iter()
            .any(|p| slot >= p.from && slot < p.to && p.group_of(a) != p.group_of(b))
    }

    fn send(&mut self, from: usize, to: usize, msg: Message) {
        self.messages_sent += 1;
        let lost = self.config.loss > 0.0 && self.rng.random::<f64>() < self.config.loss;
        if lost || self.nodes[to].validator.is_none() || self.partitioned(from, to) {
            self.messages_dropped += 1;
            return;
        }
        let l = self.config.latency;
        let delay = if l.max_ms > l.min_ms {
            self.rng.random_range(l.min_ms..=l.max_ms)
        } else {
            l.min_ms
        };
        self.schedule(self.now + delay, Event::Deliver { from, to, msg });
    }

    fn broadcast(&mut self, from: usize, msg: &Message) {
        for to in 0..self.nodes.len() {
            if to != from {
                self.send(from, to, msg.clone());
            }
        }
    }

    // ---- per slot -----------------------------------------------------------------

    fn on_slot_end(&mut self, slot: Slot) {
        self.apply_crashes(slot);
        let leader = self
            .leader_at(slot)
            .and_then(|l| self.index_of.get(&l).copied());
        for n in 0..self.nodes.len() {
            let node = &mut self.nodes[n];
            let (Some(v), held) = (node.validator.as_mut(), &mut node.held) else {
                continue;
            };
            for s in held.on_slot_end(v, slot, leader == Some(n)) {
                self.produce(n, s);
            }
        }
        for n in 0..self.nodes.len() {
            if self.nodes[n].validator.is_none() {
                continue;
            }
            let missing = self.nodes[n]
                .validator
                .as_ref()
                .map(Validator::missing_parents)
                .unwrap_or_default();
            for parent in missing {
                let peer = self.random_peer(n);
                if peer != n {
                    self.send(n, peer, Message::Repair(parent));
                }
            }
            // A node re-gossips its latest vote now and then, as gossip would: votes lost
            // on the way or sent during a partition still arrive eventually.
            if slot % 4 == (n as u64) % 4
                && let Some(v) = self.nodes[n]
                    .validator
                    .as_ref()
                    .and_then(Validator::last_vote)
            {
                self.broadcast(n, &Message::Vote(Arc::new(v)));
            }
            self.with_validator(n, |v, now| v.poll_vote(now));
            self.misbehave(n, slot);
        }
    }

    fn produce(&mut self, n: usize, slot: Slot) {
        let batches = self.make_transfers(n);
        self.with_validator(n, |v, now| v.produce(slot, &batches, now));
    }

    /// Builds node `n`'s held blocks once the previous leader's block is replayed there.
    fn produce_held_if_ready(&mut self, n: usize) {
        let node = &mut self.nodes[n];
        let (Some(v), held) = (node.validator.as_mut(), &mut node.held) else {
            return;
        };
        for s in held.on_replayed(v) {
            self.produce(n, s);
        }
    }

    /// A few transfers between funded accounts, on the leader's heaviest fork.
    fn make_transfers(&mut self, n: usize) -> Vec<Vec<Transaction>> {
        let count = self.config.txs_per_block;
        let Some(v) = self.nodes[n].validator.as_mut() else {
            return Vec::new();
        };
        if count == 0 {
            return Vec::new();
        }
        let best = v.best_slot();
        let Some(bank) = v.bank(best) else {
            return Vec::new();
        };
        let blockhash = bank.last_blockhash();
        let txs = (0..count)
            .map(|_| {
                let from = self.rng.random_range(0..self.payers.len());
                let to = self.rng.random_range(0..self.payers.len());
                let amount = self.rng.random_range(1..1000u64);
                Transaction::transfer(
                    &self.payers[from],
                    self.payers[to].pubkey(),
                    amount,
                    1,
                    blockhash,
                )
            })
            .collect();
        vec![txs]
    }

    // ---- messages -----------------------------------------------------------------

    fn on_deliver(&mut self, from: usize, to: usize, msg: Message) {
        if self.nodes[to].validator.is_none() {
            return;
        }
        let from_key = self.nodes[from].keypair.pubkey();
        match msg {
            Message::Block(block) => {
                self.with_validator(to, |v, _| v.on_block(block, Some(from_key)));
                self.produce_held_if_ready(to);
            }
            Message::Vote(vote) => {
                if self.nodes[from].fault.is_some() && vote.verify().is_err() {
                    self.messages_rejected += 1;
                    return;
                }
                self.with_validator(to, |v, _| v.on_vote(vote, Some(from_key)));
                if !self.nodes[to].check_pending {
                    self.nodes[to].check_pending = true;
                    self.schedule(self.now + 20, Event::Check(to));
                }
            }
            Message::Duplicate(versions) => {
                self.with_validator(to, |v, _| v.on_duplicate_proof(versions))
            }
            Message::Blocks(blocks) => {
                for block in blocks {
                    self.with_validator(to, |v, _| v.on_block(block, Some(from_key)));
                }
                self.produce_held_if_ready(to);
            }
            Message::Repair(slot) => {
                // Answer with the block and its ancestors, walking parent links.
                let stored = &self.nodes[to].persisted.blocks;
                let mut chain = Vec::new();
                let mut cur = stored.get(&slot).cloned();
                while let Some(b) = cur {
                    let parent = b.header.parent_slot;
                    chain.push(b);
                    if chain.len() == REPAIR_CHAIN || parent == 0 {
                        break;
                    }
                    cur = stored.get(&parent).cloned();
                }
                if !chain.is_empty() {
                    chain.reverse();
                    self.send(to, from, Message::Blocks(chain));
                }
            }
        }
    }

    // ---- observations -------------------------------------------------------------

    fn on_rooted(&mut self, n: usize, root: Slot, chain: Vec<(Slot, Hash)>) {
        let Some(v) = self.nodes[n].validator.as_ref() else {
            return;
        };
        let previous = self.nodes[n].persisted.root_bank.slot();
        let chain: BTreeMap<Slot, Hash> = chain.into_iter().collect();
        let root_bank = v.root_bank();
        // Safety: every slot any node rooted in (previous, root] must be on this chain
        // with the same block, and every block on this chain must match what others rooted.
        for (s, id) in self.rooted_by_any.range(previous + 1..=root) {
            if chain.get(s) != Some(id) {
                self.violations.push(format!(
                    "node {n} rooted slot {root} on a chain without block {} at slot {s}, which another node rooted",
                    id.short()
                ));
            }
        }
        for (s, id) in &chain {
            match self.rooted_by_any.get(s) {
                Some(other) if other != id => self.violations.push(format!(
                    "node {n} rooted block {} at slot {s}, another node rooted {}",
                    id.short(),
                    other.short()
                )),
                _ => {
                    self.rooted_by_any.insert(*s, *id);
                }
            }
        }
        // The ledger keeps rooted blocks: they are what lagging nodes repair from.
        self.nodes[n].persisted.root_bank = root_bank;
    }

    fn on_commitment(&mut self, n: usize, confirmed: Slot, finalized: Slot) {
        let slot_ms = self.config.slot_ms;
        let now = self.now;
        if confirmed > self.nodes[n].confirmed {
            let prev = self.nodes[n].confirmed;
            if let Some(v) = self.nodes[n].validator.as_ref() {
                let mut c = vec![confirmed];
                c.extend(v.ancestors(confirmed));
                for s in c.into_iter().filter(|s| *s > prev && *s > 0) {
                    self.confirm_ms.push(now.saturating_sub(s * slot_ms));
                }
            }
            self.nodes[n].confirmed = confirmed;
        }
        if finalized > self.nodes[n].finalized {
            let prev = self.nodes[n].finalized;
            for (s, _) in self.rooted_by_any.range(prev + 1..=finalized) {
                self.finalize_ms.push(now.saturating_sub(s * slot_ms));
            }
            self.nodes[n].finalized = finalized;
        }
    }

    fn report(mut self) -> SimReport {
        let slot_ms = self.config.slot_ms;
        let highest_root = self.rooted_by_any.keys().next_back().copied().unwrap_or(0);
        let skipped = (1..=highest_root)
            .filter(|s| !self.rooted_by_any.contains_key(s))
            .count() as u64;
        let orphaned = self
            .produced
            .iter()
            .filter(|(s, id)| **s <= highest_root && self.rooted_by_any.get(s) != Some(id))
            .count() as u64;
        let stake_of: BTreeMap<Pubkey, u64> = self
            .genesis
            .validators
            .iter()
            .map(|v| (v.identity, v.stake))
            .collect();
        let nodes: Vec<NodeReport> = self
            .nodes
            .iter()
            .enumerate()
            .map(|(i, n)| NodeReport {
                index: i,
                identity: n.keypair.pubkey().short(),
                stake: stake_of.get(&n.keypair.pubkey()).copied().unwrap_or(0),
                alive_at_end: n.validator.is_some(),
                crashed: n.ever_crashed,
                root: n.persisted.root_bank.slot(),
                root_bank_hash: n.persisted.root_bank.hash().unwrap_or_default().to_string(),
                confirmed: n.confirmed,
                finalized: n.finalized,
                votes_cast: n.votes_cast,
                double_votes_seen: n.double_votes_seen,
                duplicate_slots_seen: n.duplicate_slots_seen,
                versions_replaced: n.versions_replaced,
                fault: n.fault.map(|f| f.to_string()),
            })
            .collect();
        let mut digest_input = Vec::new();
        for (s, id) in &self.rooted_by_any {
            digest_input.extend_from_slice(&s.to_le_bytes());
            digest_input.extend_from_slice(&id.0);
        }
        for n in &nodes {
            digest_input.extend_from_slice(&n.root.to_le_bytes());
            digest_input.extend_from_slice(n.root_bank_hash.as_bytes());
            digest_input.extend_from_slice(&n.finalized.to_le_bytes());
        }
        let last_fault_end = self.config.last_fault_end();
        let finalized_max = nodes
            .iter()
            .filter(|n| n.alive_at_end)
            .map(|n| n.finalized)
            .max()
            .unwrap_or(0);
        SimReport {
            nodes_count: self.config.nodes,
            slots: self.config.slots,
            seed: self.config.seed,
            slot_ms,
            slots_produced: self.produced.len() as u64,
            slots_skipped: skipped,
            blocks_orphaned: orphaned,
            highest_root,
            confirmation: LatencyStats::from_ms(&mut self.confirm_ms, slot_ms),
            finalization: LatencyStats::from_ms(&mut self.finalize_ms, slot_ms),
            safety_violations: self.violations,
            last_fault_end_slot: last_fault_end,
            finalized_after_faults: finalized_max > last_fault_end,
            messages_sent: self.messages_sent,
            messages_dropped: self.messages_dropped,
            messages_rejected: self.messages_rejected,
            messages_per_node_per_slot: self.messages_sent as f64
                / (self.config.nodes.max(1) as f64 * self.config.slots.max(1) as f64),
            digest: bb_core::hash(&digest_input).to_string(),
            nodes,
        }
    }
}
