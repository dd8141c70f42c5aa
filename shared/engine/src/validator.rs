//! [`Validator`]: one node's consensus decisions, fed events, returning what to do.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use bb_consensus::{
    Commitment, ForkChoice, RootTracker, Tower, VoteOutcome, VoteTracker, confirmed_slot,
};
use bb_core::{
    Block, Evidence, EvidenceError, Genesis, Hash, Keypair, Offense, Pubkey, SignedVote, Slot,
    Transaction, VerifiedTxs, Vote,
};
use bb_runtime::{
    Bank, BankForks, EvidenceRefusal, LeaderSchedule, Penalty, RootChanges,
    produce_block_with_evidence,
};

use crate::tower_record::TowerRecord;

/// Something the driver must do, in the order given. A `PersistTower` always comes before
/// the `SendVote` it covers: the driver makes it durable first, so a crash can never make
/// the node vote twice for one slot.
#[derive(Debug, Clone)]
pub enum Output {
    /// Store the tower durably before sending anything that follows.
    PersistTower(TowerRecord),
    /// Gossip this vote.
    SendVote(SignedVote),
    /// Send this block (ours, just produced) to the cluster.
    SendBlock(Arc<Block>),
    /// A block was received for the first time; the driver may store it.
    StoreBlock(Arc<Block>),
    /// Ask peers for the block of `slot` (`hint`: a peer that should have it).
    Repair { slot: Slot, hint: Option<Pubkey> },
    /// The root moved: the driver flushes the rooted state and may purge older data.
    /// `chain` lists the newly rooted blocks (slot, block id), oldest first; `offenses`
    /// the slashing evidence their blocks recorded (with the recording slot), and
    /// `penalties` the stake cuts their banks applied at an epoch boundary.
    Rooted {
        changes: Box<RootChanges>,
        chain: Vec<(Slot, Hash)>,
        offenses: Vec<(Slot, Evidence)>,
        penalties: Vec<Penalty>,
    },
    /// This node found slashing evidence itself (a validator voted for two blocks in one
    /// slot): the driver stores and gossips it. It is also pending for our blocks.
    Evidence(Box<Evidence>),
    /// A block was replayed (or produced) and its bank frozen.
    Frozen {
        slot: Slot,
        parent: Slot,
        block_id: Hash,
        bank_hash: Hash,
    },
    /// A block failed replay and is dead, with the reason.
    DeadBlock { slot: Slot, reason: String },
    /// `slot`'s leader signed more than one version. `confirmed` is the version the
    /// cluster settled on (at least [`DUPLICATE_CONFIRMED_PERCENT`] of the stake voted
    /// for it), once known; until then the slot is no candidate for the best fork.
    DuplicateSlot { slot: Slot, confirmed: Option<Hash> },
    /// The cluster confirmed another version of `slot` than the one replayed here: ours
    /// and its descendants (`dropped`, ascending) are gone, and the confirmed version is
    /// replayed in its place (or repaired first).
    ReplacedVersion {
        slot: Slot,
        ours: Hash,
        confirmed: Hash,
        dropped: Vec<Slot>,
    },
    /// Commitment levels changed.
    Commitment(Commitment),
}

/// What [`Validator::on_evidence`] made of evidence from a peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EvidenceOutcome {
    /// Valid and new to this node: pending for our blocks; forward it.
    New(Offense),
    /// Already pending here or recorded on the rooted chain.
    Known(Offense),
    /// Valid, but it can no longer be punished (too old, or the offender holds no stake).
    Stale(Offense),
    /// It proves nothing: the sender should be scored down.
    Invalid(EvidenceError),
}

/// Most pieces of evidence held while waiting to be included in a block.
const MAX_PENDING_EVIDENCE: usize = 1024;

/// The share of stake (percent) that must vote for one version of a duplicate slot
/// before it is confirmed. Above half, so two versions cannot both reach it unless more
/// than 4% of the stake double-voted (and is slashed for it).
pub const DUPLICATE_CONFIRMED_PERCENT: u64 = 52;

/// Most versions of one slot kept (a byzantine leader may sign any number).
const MAX_VERSIONS: usize = 4;

/// Most duplicate slots tracked above the root.
const MAX_DUPLICATE_SLOTS: usize = 1024;

/// What a node knows about a slot whose leader signed more than one version.
#[derive(Debug, Default)]
struct Duplicate {
    /// The versions seen, signed by the slot's leader, by block id (at most
    /// [`MAX_VERSIONS`]): a confirmed one can be replayed without asking anyone.
    versions: BTreeMap<Hash, Arc<Block>>,
    /// The version the cluster confirmed, once it has.
    confirmed: Option<Hash>,
}

impl Duplicate {
    /// Keeps `block` among the versions, unless [`MAX_VERSIONS`] are held already.
    fn keep(&mut self, block: Arc<Block>) {
        if self.versions.len() < MAX_VERSIONS {
            self.versions.entry(block.id()).or_insert(block);
        }
    }
}

/// Why a validator could not start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EngineError {
    #[error("bank: {0}")]
    Bank(String),
    #[error("stored tower: {0}")]
    Tower(String),
}

/// One node's consensus state: banks, fork choice, tower, votes and commitment.
#[derive(Debug)]
pub struct Validator {
    identity: Keypair,
    forks: BankForks,
    fork_choice: ForkChoice,
    tower: Tower,
    votes: VoteTracker,
    roots: RootTracker,
    /// Received blocks above the root, by slot.
    blocks: BTreeMap<Slot, Arc<Block>>,
    /// Blocks waiting for their parent, by parent slot.
    orphans: BTreeMap<Slot, Vec<Arc<Block>>>,
    /// Blocks that failed replay, by slot and id (another version of the slot may not).
    dead: BTreeSet<(Slot, Hash)>,
    /// Slots above the root whose leader signed more than one version.
    duplicates: BTreeMap<Slot, Duplicate>,
    commitment: Commitment,
    last_vote: Option<SignedVote>,
    /// The stakes votes are weighed with (the root bank's epoch stakes), cached per epoch:
    /// every vote needs a lookup.
    stake_weights: StakeWeights,
    /// Leader schedules by epoch: every replayed block needs its slot's leader.
    schedules: BTreeMap<u64, Arc<LeaderSchedule>>,
    /// Slashing evidence not yet recorded on the rooted chain, for our blocks.
    evidence: BTreeMap<Offense, Evidence>,
    /// Transactions whose signatures this process already checked (shared with where
    /// they enter the node), skipped by replay and production; `None`: check all.
    verified: Option<Arc<VerifiedTxs>>,
}

#[derive(Debug, Clone, Default)]
struct StakeWeights {
    epoch: u64,
    by_validator: HashMap<Pubkey, u64>,
    total: u64,
}

impl StakeWeights {
    fn of_root(root: &Bank) -> StakeWeights {
        let epoch = root.epoch();
        let stakes = root
            .epoch_stakes(epoch)
            .unwrap_or_else(|| Arc::new(root.stakes().clone()));
        let by_validator: HashMap<Pubkey, u64> = stakes.iter().map(|(k, v)| (*k, *v)).collect();
        StakeWeights {
            epoch,
            total: stakes.total(),
            by_validator,
        }
    }
}

/// Caps how far ahead of the root a node keeps blocks it cannot replay yet.
const MAX_ORPHAN_SLOTS: usize = 1024;

impl Validator {
    /// A validator at genesis.
    pub fn new(identity: Keypair, genesis: &Genesis) -> Result<Validator, EngineError> {
        let bank = Bank::new_genesis(genesis).map_err(|e| EngineError::Bank(e.to_string()))?;
        Validator::restore(identity, bank, None)
    }

    /// A validator restarting from a rooted bank and its persisted tower. Blocks above the
    /// root are fed in afterwards with [`Validator::on_block`].
    pub fn restore(
        identity: Keypair,
        root_bank: Arc<Bank>,
        tower: Option<TowerRecord>,
    ) -> Result<Validator, EngineError> {
        Validator::restore_on_chain(identity, root_bank, tower, |_| false)
    }

    /// [`Validator::restore`] from a root bank that may lie above the tower's votes (a
    /// snapshot from catch-up): `on_root_chain(s)` says whether slot `s` is an ancestor of
    /// the root (from stored blocks); see [`Tower::rebase`] for what happens to the votes.
    pub fn restore_on_chain(
        identity: Keypair,
        root_bank: Arc<Bank>,
        tower: Option<TowerRecord>,
        on_root_chain: impl Fn(Slot) -> bool,
    ) -> Result<Validator, EngineError> {
        let root = root_bank.slot();
        let root_id = root_bank.block_id().unwrap_or_default();
        let stake_weights = StakeWeights::of_root(&root_bank);
        let forks = BankForks::new(root_bank).map_err(|e| EngineError::Bank(e.to_string()))?;
        let mut tower = match tower {
            Some(t) => t.into_tower().map_err(EngineError::Tower)?,
            None => Tower::new(),
        };
        if root > 0 {
            tower.rebase(root, on_root_chain);
        }
        let mut roots = RootTracker::new();
        roots.observe(
            identity.pubkey(),
            root,
            stake_weights
                .by_validator
                .get(&identity.pubkey())
                .copied()
                .unwrap_or(0),
        );
        Ok(Validator {
            identity,
            forks,
            fork_choice: ForkChoice::new(root, root_id),
            tower,
            votes: VoteTracker::new(),
            roots,
            blocks: BTreeMap::new(),
            orphans: BTreeMap::new(),
            dead: BTreeSet::new(),
            duplicates: BTreeMap::new(),
            commitment: Commitment {
                processed: root,
                confirmed: root,
                finalized: root,
            },
            last_vote: None,
            stake_weights,
            schedules: BTreeMap::new(),
            evidence: BTreeMap::new(),
            verified: None,
        })
    }

    /// Shares `verified` with the places transactions enter the node: replay and block
    /// production skip the signatures it remembers (the outcome is the same).
    pub fn set_verified_txs(&mut self, verified: Arc<VerifiedTxs>) {
        self.verified = Some(verified);
    }

    pub fn identity(&self) -> Pubkey {
        self.identity.pubkey()
    }

    pub fn root(&self) -> Slot {
        self.forks.root()
    }

    pub fn root_bank(&self) -> Arc<Bank> {
        self.forks.root_bank()
    }

    pub fn bank(&self, slot: Slot) -> Option<Arc<Bank>> {
        self.forks.get(slot)
    }

    pub fn block(&self, slot: Slot) -> Option<Arc<Block>> {
        self.blocks.get(&slot).cloned()
    }

    /// Whether a block of `slot` (above the root) still has to be fetched: none is held,
    /// or a vote names a version that is not held, not known as a duplicate's version and
    /// not dead. A driver that deferred a [`Output::Repair`] (to give Turbine time) asks
    /// this before sending it, so a request for another version is never dropped because
    /// our own version came meanwhile.
    pub fn needs_block(&self, slot: Slot) -> bool {
        if slot <= self.root() {
            return false;
        }
        let Some(held) = self.blocks.get(&slot).map(|b| b.id()) else {
            return true;
        };
        let versions = self.duplicates.get(&slot);
        self.votes.votes_at(slot).iter().any(|(v, _)| {
            let id = v.vote.block_id;
            id != held
                && !versions.is_some_and(|d| d.versions.contains_key(&id))
                && !self.dead.contains(&(slot, id))
        })
    }

    pub fn tower(&self) -> &Tower {
        &self.tower
    }

    pub fn votes(&self) -> &VoteTracker {
        &self.votes
    }

    pub fn commitment(&self) -> Commitment {
        self.commitment
    }

    pub fn last_vote(&self) -> Option<SignedVote> {
        self.last_vote
    }

    /// The heaviest fork's tip.
    pub fn best_slot(&mut self) -> Slot {
        self.fork_choice.best_slot()
    }

    /// A validator's stake as votes are weighed (the root bank's epoch stakes).
    pub fn stake_of(&self, who: &Pubkey) -> u64 {
        self.stake_weights
            .by_validator
            .get(who)
            .copied()
            .unwrap_or(0)
    }

    pub fn total_stake(&self) -> u64 {
        self.stake_weights.total
    }

    /// The leader of `slot`, by the schedule the heaviest fork knows.
    pub fn leader_of(&mut self, slot: Slot) -> Option<Pubkey> {
        let best = self.fork_choice.best_slot();
        let bank = self.forks.get(best)?;
        self.leader_by(&bank, slot)
    }

    /// The leader of `slot` as seen from `bank` (a parent of `slot`), cached per epoch.
    /// Schedules depend only on stakes two epochs back, which every fork above the root
    /// shares, so one cache serves all forks.
    fn leader_by(&mut self, bank: &Bank, slot: Slot) -> Option<Pubkey> {
        let epoch = bank.epoch_schedule().epoch(slot);
        self.cached_schedule(bank, epoch)?.leader_at(slot)
    }

    /// The schedule of `epoch` (None if the node cannot know it yet).
    pub fn leader_schedule(&mut self, epoch: u64) -> Option<Arc<LeaderSchedule>> {
        let root = self.forks.root_bank();
        self.cached_schedule(&root, epoch)
    }

    /// The cache both lookups share: computed from `bank` the first time an epoch is asked.
    fn cached_schedule(&mut self, bank: &Bank, epoch: u64) -> Option<Arc<LeaderSchedule>> {
        if let Some(s) = self.schedules.get(&epoch) {
            return Some(s.clone());
        }
        let schedule = Arc::new(bank.leader_schedule(epoch).ok()?);
        self.schedules.insert(epoch, schedule.clone());
        Some(schedule)
    }

    /// Slots of blocks waiting for a parent, and duplicate slots whose confirmed version
    /// has not arrived, so the driver can re-ask for repairs.
    pub fn missing_parents(&self) -> Vec<Slot> {
        let confirmed_missing = self.duplicates.iter().filter_map(|(slot, d)| {
            let held = self.blocks.get(slot).map(|b| b.id());
            d.confirmed.filter(|c| held != Some(*c)).map(|_| *slot)
        });
        let mut slots: Vec<Slot> = self
            .orphans
            .keys()
            .copied()
            .chain(confirmed_missing)
            .collect();
        slots.sort_unstable();
        slots.dedup();
        slots
    }

    // ---- events -------------------------------------------------------------------

    /// A block arrived (from Turbine, repair, or the ledger on restart).
    pub fn on_block(&mut self, block: Arc<Block>, from: Option<Pubkey>) -> Vec<Output> {
        let mut out = Vec::new();
        self.insert_block(block, from, &mut out);
        self.consider_vote(0, &mut out);
        out
    }

    fn insert_block(&mut self, block: Arc<Block>, from: Option<Pubkey>, out: &mut Vec<Output>) {
        let slot = block.header.slot;
        let parent = block.header.parent_slot;
        if slot <= self.root() {
            return;
        }
        let id = block.id();
        if self.dead.contains(&(slot, id)) {
            return;
        }
        if let Some(held) = self.blocks.get(&slot) {
            if held.id() != id {
                self.on_other_version(block, out);
            }
            return;
        }
        let wanted = self.duplicates.get(&slot).and_then(|d| d.confirmed);
        if wanted.is_some_and(|w| w != id) {
            // Waiting for the version the cluster confirmed: keep this one aside.
            self.on_other_version(block, out);
            return;
        }
        self.blocks.insert(slot, block.clone());
        out.push(Output::StoreBlock(block.clone()));
        if !self.forks.contains(parent) {
            if parent >= self.root() && self.orphans.len() < MAX_ORPHAN_SLOTS {
                self.wait_for_parent(block, from, out);
            }
            return;
        }
        let mut ready = vec![block];
        while let Some(b) = ready.pop() {
            let slot = b.header.slot;
            let Some(parent_bank) = self.forks.get(b.header.parent_slot) else {
                continue;
            };
            if parent_bank.block_id() != Some(b.header.parent_id) {
                // Built on another version of the parent than the one replayed here: not
                // dead, it waits until this node holds that version (see
                // `resolve_duplicate`). Asking `from` brings its version of the parent.
                self.wait_for_parent(b, from, out);
                continue;
            }
            let result = parent_bank
                .slot_leader(slot)
                .map_err(|e| e.to_string())
                .and_then(|leader| {
                    Bank::replay_block_with(&parent_bank, &b, leader, self.verified.as_deref())
                        .map_err(|e| e.to_string())
                })
                .and_then(|bank| self.forks.insert(bank).map_err(|e| e.to_string()));
            match result {
                Ok(bank) => {
                    let block_id = bank.block_id().unwrap_or_default();
                    self.fork_choice
                        .add_block(slot, b.header.parent_slot, block_id);
                    if let Some(d) = self.duplicates.get(&slot)
                        && d.confirmed != Some(block_id)
                    {
                        self.fork_choice.mark_duplicate(slot);
                    }
                    out.push(Output::Frozen {
                        slot,
                        parent: b.header.parent_slot,
                        block_id,
                        bank_hash: bank.hash().unwrap_or_default(),
                    });
                    if let Some(children) = self.orphans.remove(&slot) {
                        ready.extend(children);
                    }
                }
                Err(reason) => {
                    self.dead.insert((slot, b.id()));
                    self.blocks.remove(&slot);
                    self.fork_choice.mark_invalid(slot);
                    self.orphans.remove(&slot);
                    out.push(Output::DeadBlock { slot, reason });
                }
            }
        }
    }

    /// Parks `block` until its parent (the version it names) is replayed, and asks for it.
    fn wait_for_parent(&mut self, block: Arc<Block>, from: Option<Pubkey>, out: &mut Vec<Output>) {
        let parent = block.header.parent_slot;
        let slot = block.header.slot;
        let waiting = self.orphans.entry(parent).or_default();
        if !waiting.iter().any(|b| b.header.slot == slot) {
            waiting.push(block);
        }
        let held = self.blocks.get(&parent).map(|b| b.id());
        let replayed = self.forks.get(parent).and_then(|b| b.block_id());
        if held.is_none() || (replayed.is_some() && held == replayed) {
            out.push(Output::Repair {
                slot: parent,
                hint: from,
            });
        }
    }

    /// Whether `block` is signed by its slot's scheduled leader: only then does a second
    /// version prove anything.
    fn signed_by_leader(&mut self, block: &Block) -> bool {
        let root = self.forks.root_bank();
        self.leader_by(&root, block.header.slot) == Some(block.header.leader)
            && block.verify_signature().is_ok()
    }

    /// A version of a slot that differs from the one held: if its leader signed both, the
    /// slot is a duplicate.
    fn on_other_version(&mut self, block: Arc<Block>, out: &mut Vec<Output>) {
        let slot = block.header.slot;
        let held = self.blocks.get(&slot).cloned();
        self.add_versions(slot, held.into_iter().chain([block]).collect(), out);
    }

    /// Versions of `slot`: if two differ and its leader signed both (or the slot is known
    /// to be duplicate already), they are kept and the slot is settled as far as votes
    /// allow.
    fn add_versions(&mut self, slot: Slot, blocks: Vec<Arc<Block>>, out: &mut Vec<Output>) {
        if slot <= self.root() {
            return;
        }
        let mut signed: BTreeMap<Hash, Arc<Block>> = BTreeMap::new();
        for b in blocks {
            if b.header.slot == slot && signed.len() < MAX_VERSIONS && self.signed_by_leader(&b) {
                signed.entry(b.id()).or_insert(b);
            }
        }
        let known = self.duplicates.contains_key(&slot);
        if signed.is_empty() || (signed.len() < 2 && !known) {
            return;
        }
        self.note_duplicate(slot, out);
        if let Some(d) = self.duplicates.get_mut(&slot) {
            signed.into_values().for_each(|b| d.keep(b));
        }
        self.resolve_duplicate(slot, out);
    }

    /// Proof that a slot is duplicate, passed on by a peer: two versions its leader
    /// signed. Checked here (slot, leader, signatures); anything else is ignored.
    pub fn on_duplicate_proof(&mut self, versions: Vec<Arc<Block>>) -> Vec<Output> {
        let mut out = Vec::new();
        if let Some(slot) = versions.first().map(|b| b.header.slot) {
            self.add_versions(slot, versions, &mut out);
        }
        self.consider_vote(0, &mut out);
        out
    }

    /// The versions of a duplicate slot held here (for passing the proof on).
    pub fn duplicate_versions(&self, slot: Slot) -> Vec<Arc<Block>> {
        self.duplicates
            .get(&slot)
            .map(|d| d.versions.values().cloned().collect())
            .unwrap_or_default()
    }

    /// Records that `slot`'s leader signed more than one version (proven by the caller),
    /// and reports it.
    fn note_duplicate(&mut self, slot: Slot, out: &mut Vec<Output>) {
        if !self.mark_duplicate(slot) {
            return;
        }
        out.push(Output::DuplicateSlot {
            slot,
            confirmed: None,
        });
    }

    /// Starts tracking `slot` as duplicate (no fork-choice candidate until a version is
    /// confirmed). False if it is at or below the root, already tracked, or the tracking
    /// is full.
    fn mark_duplicate(&mut self, slot: Slot) -> bool {
        if slot <= self.root()
            || self.duplicates.contains_key(&slot)
            || self.duplicates.len() >= MAX_DUPLICATE_SLOTS
        {
            return false;
        }
        self.duplicates.insert(slot, Duplicate::default());
        self.fork_choice.mark_duplicate(slot);
        true
    }

    /// Settles a duplicate slot once one version holds [`DUPLICATE_CONFIRMED_PERCENT`] of
    /// the stake: if it is ours, the slot is a candidate again; if not, ours and its
    /// descendants are dropped and the confirmed version takes their place (from the
    /// versions held, else by repair from a validator that voted for it).
    fn resolve_duplicate(&mut self, slot: Slot, out: &mut Vec<Output>) {
        let total = self.total_stake();
        let ours = self.fork_choice.block_id(slot);
        let Some(d) = self.duplicates.get(&slot) else {
            return;
        };
        if d.confirmed.is_some() {
            // Settled once; a confirmed version still missing is re-asked for through
            // `missing_parents`.
            return;
        }
        let enough = |stake: u64| {
            stake.saturating_mul(100) >= total.saturating_mul(DUPLICATE_CONFIRMED_PERCENT)
        };
        let ours_stake = ours.map_or(0, |id| {
            self.fork_choice
                .subtree_stake(slot)
                .max(self.votes.stake_for(slot, &id))
        });
        let confirmed = match (ours, self.votes.leading_block(slot)) {
            (Some(id), _) if enough(ours_stake) => id,
            (_, Some((id, stake))) if enough(stake) => id,
            _ => return,
        };
        if let Some(d) = self.duplicates.get_mut(&slot) {
            d.confirmed = Some(confirmed);
        }
        out.push(Output::DuplicateSlot {
            slot,
            confirmed: Some(confirmed),
        });
        if ours == Some(confirmed) {
            self.fork_choice.confirm_duplicate(slot);
            return;
        }
        // Drop what this node holds of the slot (replayed or waiting), keeping the block
        // among the versions.
        if let Some(held) = self.blocks.remove(&slot) {
            if let Some(waiting) = self.orphans.get_mut(&held.header.parent_slot) {
                waiting.retain(|b| b.header.slot != slot);
            }
            if let Some(d) = self.duplicates.get_mut(&slot) {
                d.keep(held);
            }
        }
        if let Some(id) = ours {
            let dropped = self.fork_choice.remove_subtree(slot);
            self.forks.remove_subtree(slot);
            for s in &dropped {
                if *s != slot {
                    self.blocks.remove(s);
                }
            }
            out.push(Output::ReplacedVersion {
                slot,
                ours: id,
                confirmed,
                dropped,
            });
        }
        let held = self
            .duplicates
            .get(&slot)
            .and_then(|d| d.versions.get(&confirmed).cloned());
        match held {
            Some(block) => self.insert_block(block, None, out),
            None => {
                let hint = self
                    .votes
                    .votes_at(slot)
                    .into_iter()
                    .map(|(v, _)| v.vote)
                    .find(|v| v.block_id == confirmed && v.voter != self.identity())
                    .map(|v| v.voter);
                out.push(Output::Repair { slot, hint });
            }
        }
    }

    /// Re-checks every unsettled duplicate slot (votes arrived).
    fn resolve_duplicates(&mut self, out: &mut Vec<Output>) {
        if self.duplicates.is_empty() {
            return;
        }
        let open: Vec<Slot> = self
            .duplicates
            .iter()
            .filter(|(_, d)| d.confirmed.is_none())
            .map(|(s, _)| *s)
            .collect();
        for slot in open {
            self.resolve_duplicate(slot, out);
        }
    }

    /// A vote arrived by gossip. The caller has checked its signature.
    pub fn on_vote(&mut self, vote: Arc<SignedVote>, from: Option<Pubkey>) -> Vec<Output> {
        let mut out = Vec::new();
        let stake = self.stake_of(&vote.vote.voter);
        if stake == 0 {
            return out;
        }
        let outcome = self.votes.add(vote.clone(), stake);
        if let VoteOutcome::Conflict(double) = outcome {
            let evidence = Evidence::double_vote(double.first, double.second);
            if let EvidenceOutcome::New(_) = self.on_evidence(evidence.clone()) {
                out.push(Output::Evidence(Box::new(evidence)));
            }
        } else if outcome == VoteOutcome::New {
            // A vote for another version of a slot held here: fetch that version from the
            // voter. If its leader signed both, the slot is a duplicate and the cluster
            // must settle which version (if any) stands; without this, a node that never
            // sees the other version could wait forever on a split it cannot see.
            let (slot, id) = (vote.vote.slot, vote.vote.block_id);
            let other = self.blocks.get(&slot).is_some_and(|b| b.id() != id);
            let known = self
                .duplicates
                .get(&slot)
                .is_some_and(|d| d.versions.contains_key(&id));
            if other && !known && !self.dead.contains(&(slot, id)) {
                out.push(Output::Repair {
                    slot,
                    hint: Some(vote.vote.voter),
                });
            }
        }
        self.fork_choice
            .add_vote(vote.vote.voter, vote.vote.slot, vote.vote.block_id, stake);
        if let Some(r) = vote.vote.root {
            self.roots.observe(vote.vote.voter, r, stake);
        }
        let slot = vote.vote.slot;
        if slot > self.root()
            && !self.blocks.contains_key(&slot)
            && !self.dead.contains(&(slot, vote.vote.block_id))
        {
            out.push(Output::Repair {
                slot,
                hint: from.or(Some(vote.vote.voter)),
            });
        }
        self.resolve_duplicates(&mut out);
        out
    }

    /// Slashing evidence arrived (by gossip, or found here): checks it with its
    /// signatures, and keeps it for our blocks unless the rooted chain already recorded
    /// the offense or can no longer punish it.
    pub fn on_evidence(&mut self, evidence: Evidence) -> EvidenceOutcome {
        let offense = match bb_runtime::verify_evidence(&evidence) {
            Ok(o) => o,
            Err(e) => return EvidenceOutcome::Invalid(e),
        };
        if let Evidence::DuplicateBlock { slot, .. } = evidence {
            // Proven: the slot is no candidate until a version is confirmed (settled on
            // the next vote or block, see `resolve_duplicates`).
            self.mark_duplicate(slot);
        }
        if self.evidence.contains_key(&offense) {
            return EvidenceOutcome::Known(offense);
        }
        match self.forks.root_bank().check_evidence(&evidence) {
            Ok(_) | Err(EvidenceRefusal::FromTheFuture { .. }) => {}
            Err(EvidenceRefusal::AlreadyRecorded { .. }) => return EvidenceOutcome::Known(offense),
            Err(EvidenceRefusal::Invalid(e)) => return EvidenceOutcome::Invalid(e),
            Err(EvidenceRefusal::TooOld { .. } | EvidenceRefusal::NoStake(_)) => {
                return EvidenceOutcome::Stale(offense);
            }
        }
        if self.evidence.len() >= MAX_PENDING_EVIDENCE {
            // Keep the newest offenses: the oldest are the first to go stale.
            match self.evidence.keys().min_by_key(|o| o.slot).copied() {
                Some(oldest) if oldest.slot < offense.slot => {
                    self.evidence.remove(&oldest);
                }
                _ => return EvidenceOutcome::Stale(offense),
            }
        }
        self.evidence.insert(offense, evidence);
        EvidenceOutcome::New(offense)
    }

    /// Evidence held for our blocks, not yet recorded on the rooted chain.
    pub fn pending_evidence(&self) -> impl Iterator<Item = &Evidence> {
        self.evidence.values()
    }

    /// Re-evaluates commitment (after votes arrived) and reports a change.
    pub fn refresh_commitment(&mut self) -> Vec<Output> {
        let mut out = Vec::new();
        self.update_commitment(&mut out);
        out
    }

    /// Considers voting on the heaviest fork; `now_ms` stamps the vote.
    pub fn poll_vote(&mut self, now_ms: u64) -> Vec<Output> {
        let mut out = Vec::new();
        self.consider_vote(now_ms, &mut out);
        out
    }

    /// Whether our block for `slot` should wait for the previous leader's: `slot` opens
    /// our run of slots (another validator leads the slot before) and no block of the
    /// slot before is replayed here yet. Built now, our block would take an older parent
    /// and orphan the previous leader's last block, which is most likely still on its
    /// way (it was finished as our slot began). Not if none of that leader's earlier
    /// blocks of its run is here either (it is most likely down). [`crate::HeldSlots`]
    /// holds our slots on this answer for a bounded grace.
    pub fn awaits_previous_leader(&mut self, slot: Slot) -> bool {
        let Some(previous) = slot.checked_sub(1) else {
            return false;
        };
        if previous <= self.root() || self.forks.contains(previous) {
            return false;
        }
        let root = self.forks.root_bank();
        let me = Some(self.identity());
        let before = self.leader_by(&root, previous);
        if self.leader_by(&root, slot) != me || before == me {
            return false;
        }
        // A leader none of whose earlier blocks of this run arrived is most likely down:
        // waiting for its last one would only delay our block.
        let mut s = previous;
        while s > self.root() + 1 && self.leader_by(&root, s - 1) == before {
            s -= 1;
            if self.forks.contains(s) {
                return true;
            }
        }
        s == previous
    }

    /// As the leader of `slot`: builds the block on the heaviest fork with `batches` of
    /// transactions, replays it locally and returns it to send. Nothing if `slot` is not
    /// ours or the heaviest fork is not below it.
    pub fn produce(
        &mut self,
        slot: Slot,
        batches: &[Vec<Transaction>],
        now_ms: u64,
    ) -> Vec<Output> {
        let mut out = Vec::new();
        let parent_slot = self.fork_choice.best_slot();
        let Some(parent) = self.forks.get(parent_slot) else {
            return out;
        };
        if parent_slot >= slot || self.leader_by(&parent, slot) != Some(self.identity()) {
            return out;
        }
        let pending: Vec<Evidence> = self.evidence.values().cloned().collect();
        let Ok(produced) = produce_block_with_evidence(
            &parent,
            &self.identity,
            slot,
            batches,
            &pending,
            self.verified.as_deref(),
        ) else {
            return out;
        };
        let block = Arc::new(produced.block);
        match self.forks.insert(produced.bank) {
            Ok(bank) => {
                let block_id = bank.block_id().unwrap_or_default();
                self.fork_choice.add_block(slot, parent_slot, block_id);
                out.push(Output::Frozen {
                    slot,
                    parent: parent_slot,
                    block_id,
                    bank_hash: bank.hash().unwrap_or_default(),
                });
                self.blocks.insert(slot, block.clone());
                out.push(Output::StoreBlock(block.clone()));
                out.push(Output::SendBlock(block));
            }
            Err(_) => return out,
        }
        self.consider_vote(now_ms, &mut out);
        out
    }

    // ---- voting -------------------------------------------------------------------

    fn consider_vote(&mut self, now_ms: u64, out: &mut Vec<Output>) {
        self.resolve_duplicates(out);
        let total = self.total_stake();
        let best = self.fork_choice.best_slot();
        let last = self.tower.last_voted_slot();
        let mut candidate = best;
        // Leaving a fork the cluster cannot settle on (an unconfirmed duplicate slot on
        // it) needs no switch proof: nobody can build lockout there. Lockouts still bind.
        if let Some(last) = last
            && self.fork_choice.contains(last)
            && !self.fork_choice.is_ancestor_or_self(last, best)
            && !self.fork_choice.on_unusable_fork(last)
        {
            // Switching forks needs proof that the cluster moved (38% elsewhere);
            // without it, keep building lockout on our own fork.
            let other = self.fork_choice.stake_on_other_forks(last);
            if self.tower.check_switch(other, total).is_err() {
                match self.fork_choice.best_descendant(last) {
                    Some(d) if d > last => candidate = d,
                    _ => {
                        self.update_commitment(out);
                        return;
                    }
                }
            }
        }
        let votable = !(last.is_some_and(|l| candidate <= l) || candidate == self.root());
        let fc = &self.fork_choice;
        let allowed = votable
            && self
                .tower
                .check_lockout(candidate, |a, b| fc.is_ancestor(a, b))
                .is_ok()
            && self
                .tower
                .check_threshold(candidate, |s| fc.cached_subtree_stake(s), total)
                .is_ok();
        if allowed && let Some(bank) = self.forks.get(candidate) {
            self.cast_vote(candidate, &bank, now_ms, out);
        }
        self.update_commitment(out);
    }

    fn cast_vote(&mut self, slot: Slot, bank: &Arc<Bank>, now_ms: u64, out: &mut Vec<Output>) {
        let block_id = bank.block_id().unwrap_or_default();
        let new_root = self.tower.record_vote(slot, block_id);
        out.push(Output::PersistTower(TowerRecord::from(&self.tower)));
        let vote = Vote {
            voter: self.identity.pubkey(),
            slot,
            block_id,
            bank_hash: bank.hash().unwrap_or_default(),
            confirmation_count: self.tower.top_confirmation_count(),
            root: self.tower.root(),
            timestamp_ms: now_ms,
        }
        .sign(&self.identity);
        self.last_vote = Some(vote);
        let stake = self.stake_of(&vote.vote.voter);
        self.votes.add(Arc::new(vote), stake);
        self.fork_choice
            .add_vote(vote.vote.voter, slot, block_id, stake);
        if let Some(root) = new_root {
            self.set_root(root, out);
        }
        if let Some(r) = vote.vote.root {
            self.roots.observe(vote.vote.voter, r, stake);
        }
        out.push(Output::SendVote(vote));
    }

    fn set_root(&mut self, root: Slot, out: &mut Vec<Output>) {
        if root <= self.root() || !self.forks.contains(root) {
            return;
        }
        let old_root = self.root();
        let mut chain: Vec<(Slot, Hash)> = std::iter::once(root)
            .chain(self.fork_choice.ancestors(root))
            .filter(|s| *s > old_root)
            .filter_map(|s| self.fork_choice.block_id(s).map(|id| (s, id)))
            .collect();
        chain.reverse();
        let mut offenses = Vec::new();
        let mut penalties = Vec::new();
        for (slot, _) in &chain {
            if let Some(block) = self.blocks.get(slot) {
                offenses.extend(block.evidence.iter().map(|e| (*slot, e.clone())));
            }
            if let Some(bank) = self.forks.get(*slot) {
                penalties.extend_from_slice(bank.penalties());
            }
        }
        match self.forks.set_root(root) {
            Ok(changes) => {
                self.fork_choice.set_root(root);
                self.votes.prune_below(root);
                self.blocks = self.blocks.split_off(&(root + 1));
                self.orphans = self.orphans.split_off(&root);
                self.dead.retain(|(s, _)| *s >= root);
                self.duplicates = self.duplicates.split_off(&(root + 1));
                let my_stake = self.stake_of(&self.identity.pubkey());
                self.roots.observe(self.identity.pubkey(), root, my_stake);
                let root_bank = self.forks.root_bank();
                if root_bank.epoch() != self.stake_weights.epoch {
                    self.stake_weights = StakeWeights::of_root(&root_bank);
                    // Schedules are small (one leader per rotation): keep the last 64
                    // epochs' for queries, since a root bank only knows recent stakes.
                    let keep_from = root_bank.epoch().saturating_sub(64);
                    self.schedules = self.schedules.split_off(&keep_from);
                }
                self.evidence.retain(|_, e| {
                    matches!(
                        root_bank.check_evidence(e),
                        Ok(_) | Err(EvidenceRefusal::FromTheFuture { .. })
                    )
                });
                out.push(Output::Rooted {
                    changes: Box::new(changes),
                    chain,
                    offenses,
                    penalties,
                });
            }
            Err(e) => out.push(Output::DeadBlock {
                slot: root,
                reason: format!("cannot root: {e}"),
            }),
        }
    }

    fn update_commitment(&mut self, out: &mut Vec<Output>) {
        let total = self.total_stake();
        let processed = self.fork_choice.best_slot();
        let confirmed = confirmed_slot(&mut self.fork_choice, total)
            .max(self.commitment.confirmed.min(processed));
        let finalized = self.roots.finalized(total).max(self.commitment.finalized);
        let next = Commitment {
            processed,
            confirmed: confirmed.max(finalized.min(processed)),
            finalized,
        };
        if next != self.commitment {
            self.commitment = next;
            out.push(Output::Commitment(next));
        }
    }

    /// The block id the heaviest fork holds at `slot`, if any.
    pub fn block_id(&self, slot: Slot) -> Option<Hash> {
        self.fork_choice.block_id(slot)
    }

    /// Whether `a` is an ancestor of `b` among the live forks.
    pub fn is_ancestor(&self, a: Slot, b: Slot) -> bool {
        self.fork_choice.is_ancestor(a, b)
    }

    /// The ancestors of `slot` among the live forks, nearest first.
    pub fn ancestors(&self, slot: Slot) -> Vec<Slot> {
        self.fork_choice.ancestors(slot)
    }
}
