//! The engine thread: owns the [`Validator`] and the [`Ledger`], takes events from every
//! other task in one queue, and carries out the validator's outputs. It is a plain thread
//! (redb and replay are blocking work), fed by a tokio channel.
//!
//! Invariant: a vote is handed to the network only after its tower is durably in the
//! ledger; if that write fails, the vote is dropped.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Instant;

use bb_core::{Block, Canonical, Evidence, Hash, Pubkey, SignedVote, Slot, Transaction};
use bb_engine::{EvidenceOutcome, HeldSlots, Output, TowerRecord, Validator};
use bb_ledger::{Ledger, RootCommit, SlotMeta};
use bb_rpc::Commitment as Level;
use bb_runtime::TransactionError;
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, error, info, warn};

use crate::metrics;
use crate::pending::PendingTxs;
use crate::slashing::{self, Source};
use crate::snapshots::{SnapshotPolicy, Snapshotter};
use crate::state::{BlockEvent, Shared, SlotHashes, now_ms};

/// Everything the engine thread is told.
#[derive(Debug)]
pub enum EngineMsg {
    /// A block from Turbine (`from` None) or repair.
    Block {
        block: Arc<Block>,
        from: Option<Pubkey>,
    },
    /// A vote from gossip, signature already checked.
    Vote {
        vote: SignedVote,
        raw: Vec<u8>,
    },
    /// Slashing evidence this node found itself (two conflicting shreds signed by a
    /// leader): kept, stored and gossiped if new.
    FoundEvidence(Evidence),
    /// Slashing evidence from gossip; the verdict decides whether it is forwarded.
    Evidence {
        evidence: Evidence,
        reply: oneshot::Sender<EvidenceOutcome>,
    },
    /// The clock passed the end of `slot`.
    SlotEnd(Slot),
    /// Transactions for our leader slots (Gulf Stream). The reply says how many were
    /// taken: the first `n`, in order; the rest did not fit in the pending queue.
    Transactions {
        txs: Vec<Transaction>,
        reply: oneshot::Sender<usize>,
    },
    Query(Query),
    /// Flush and stop, even if other tasks still hold senders.
    Shutdown,
}

/// A stored block, its bank hash if replayed, and whether it is on this node's chain.
pub type StoredBlock = (Arc<Block>, Option<Hash>, bool);

/// Questions the RPC and repair paths ask.
#[derive(Debug)]
pub enum Query {
    Votes {
        slot: Slot,
        reply: oneshot::Sender<Vec<(Vec<u8>, u64)>>,
    },
    /// The stored block of a slot, its bank hash if replayed, and whether it is on this
    /// node's chain (the rooted chain at or below the root, the best fork above it): a
    /// stored block can be a fork's the cluster abandoned.
    Block {
        slot: Slot,
        reply: oneshot::Sender<Option<StoredBlock>>,
    },
    /// A block and up to `count - 1` ancestors, oldest first (for repair).
    Ancestors {
        slot: Slot,
        count: usize,
        reply: oneshot::Sender<Vec<Arc<Block>>>,
    },
    Range {
        from: Slot,
        to: Slot,
        reply: oneshot::Sender<Vec<Arc<Block>>>,
    },
    Balance {
        who: Pubkey,
        level: Level,
        reply: oneshot::Sender<(u64, Slot)>,
    },
    Schedule {
        epoch: u64,
        reply: oneshot::Sender<Option<Arc<bb_runtime::LeaderSchedule>>>,
    },
    /// A snapshot of the current root (made now unless one exists for it).
    CreateSnapshot {
        reply: oneshot::Sender<Result<bb_snapshots::SnapshotInfo, String>>,
    },
    /// Screen transactions whose signatures the asker verified against the newest bank:
    /// one result per transaction, in order (`Bank::check_verified_transactions`), or
    /// why none could be checked.
    CheckTransactions {
        txs: Vec<Transaction>,
        reply: oneshot::Sender<Result<Vec<Result<(), TransactionError>>, String>>,
    },
}

/// What the engine asks the async side to do.
#[derive(Debug)]
pub enum Dispatch {
    Vote(SignedVote),
    /// Slashing evidence this node found: gossip it.
    Evidence(Evidence),
    Block(Arc<Block>),
    Repair {
        slot: Slot,
        hint: Option<Pubkey>,
    },
}

/// Asks the engine thread a question and waits for the answer (`None` once it stopped).
pub async fn ask<T>(
    engine: &mpsc::Sender<EngineMsg>,
    make: impl FnOnce(oneshot::Sender<T>) -> Query,
) -> Option<T> {
    let (tx, rx) = oneshot::channel();
    engine.send(EngineMsg::Query(make(tx))).await.ok()?;
    rx.await.ok()
}

/// Bytes of blocks one repair answer carries at most (past the block asked for itself).
const REPAIR_ANSWER_BUDGET: usize = 4 << 20;

/// A block's encoded size, near enough for budgets: its transactions dominate it.
fn approx_block_bytes(b: &Block) -> usize {
    let txs: usize = b.entries.iter().map(|e| e.transactions.len()).sum();
    256 + b.entries.len() * 48 + txs * bb_core::tx::TRANSACTION_WIRE_SIZE
}

/// Transactions per entry when producing.
const BATCH: usize = 256;

/// The longest a repair waits for Turbine after the slot's end.
const TURBINE_GRACE_MAX_MS: u64 = 100;

/// Most repairs waiting for the Turbine grace at once.
const MAX_DEFERRED_REPAIRS: usize = 1024;
/// Slots below the committed root whose bank hashes stay in memory for block queries and
/// the status view; older ones are answered from the ledger, for rooted slots only.
const BANK_HASH_SLOTS_BELOW_ROOT: Slot = 1024;

pub struct Engine {
    validator: Validator,
    ledger: Arc<Ledger>,
    shared: Arc<Shared>,
    dispatch: mpsc::UnboundedSender<Dispatch>,
    pending_txs: PendingTxs,
    /// The newest slot the clock said ended: the time pending transactions are stamped
    /// with.
    last_slot_end: Slot,
    votes_to_store: Vec<(u64, [u8; 32], Vec<u8>)>,
    /// Our slots whose blocks wait for the previous leader's last block (the handoff
    /// grace).
    held: HeldSlots,
    bank_hashes: BTreeMap<Slot, Hash>,
    recent_repairs: HashMap<Slot, Instant>,
    /// Repairs of blocks that may still be on their way by Turbine (a vote for a block
    /// usually outruns the block's shreds), with the peer to ask: asked only if the
    /// block has not come [`Engine::turbine_grace_ms`] after its slot ended.
    deferred_repairs: BTreeMap<Slot, Option<Pubkey>>,
    /// The bank the pending queue was last cleared of landed transactions against.
    landed_checked_on: Option<Slot>,
    restoring: bool,
    last_confirmed: Slot,
    /// Blocks that reached a commitment level, announced only once the status view says
    /// so: a `StreamBlocks` woken by the announcement reads the status to know how far
    /// to send, and a stale view made it wait for the next announcement (a slot later).
    events_due: Vec<BlockEvent>,
    /// The highest root stored in the ledger.
    committed_root: Option<Slot>,
    snapshots: Snapshotter,
    /// Test-only fault `double-vote`: the key that signs a conflicting twin of every vote.
    double_vote_key: Option<bb_core::Keypair>,
    /// Test-only fault `equivocate`: the key that signs a second version of our blocks.
    equivocate_key: Option<bb_core::Keypair>,
}

impl Engine {
    /// Opens the state: the newest snapshot in the ledger directory (else the genesis
    /// bank), the persisted tower, then every stored block above it replayed.
    pub fn start(
        identity: bb_core::Keypair,
        ledger: Arc<Ledger>,
        shared: Arc<Shared>,
        dispatch: mpsc::UnboundedSender<Dispatch>,
        policy: SnapshotPolicy,
        faults: &crate::fault::Faults,
    ) -> anyhow::Result<Engine> {
        let double_vote_key = faults.double_vote.then(|| identity.clone());
        let equivocate_key = faults.equivocate.then(|| identity.clone());
        // The ledger's path is its database file; snapshots live beside it.
        let ledger_dir = ledger.path().parent().unwrap_or(ledger.path());
        let snapshots_dir = crate::snapshots_dir(ledger_dir);
        let bank = match crate::snapshots::newest_bank(&snapshots_dir, &shared.genesis) {
            Some((bank, info)) => {
                info!(slot = info.slot, bank_hash = %info.bank_hash, "starting from snapshot");
                bank
            }
            None => bb_runtime::Bank::new_genesis(&shared.genesis)?,
        };
        let start_slot = bank.slot();
        let snapshots = Snapshotter::start(snapshots_dir, policy, start_slot)?;
        let tower = match ledger.load_tower()? {
            Some(bytes) => Some(
                TowerRecord::from_bytes(&bytes)
                    .map_err(|e| anyhow::anyhow!("the stored tower does not decode: {e}"))?,
            ),
            None => None,
        };
        if let Some(t) = &tower {
            info!(last_vote = ?t.votes.last().map(|v| v.0), root = ?t.root, "restored tower");
        }
        // The root's chain below it, from stored blocks: which of the tower's old votes
        // the root settles (a node restarted from a snapshot above its last votes).
        let mut root_chain = std::collections::BTreeSet::new();
        if let Some(t) = &tower
            && let Some(lowest) = t.votes.first().map(|v| v.0)
        {
            let mut slot = start_slot;
            while slot > lowest {
                match ledger.get_slot_meta(slot)? {
                    Some(meta) if meta.parent_slot < slot => {
                        root_chain.insert(meta.parent_slot);
                        slot = meta.parent_slot;
                    }
                    _ => break,
                }
            }
        }
        let mut validator =
            Validator::restore_on_chain(identity, bank, tower, |s| root_chain.contains(&s))?;
        validator.set_verified_txs(shared.verified.clone());
        let kept: Vec<Slot> = validator
            .tower()
            .votes()
            .map(|v| v.slot)
            .filter(|s| *s <= start_slot)
            .collect();
        if !kept.is_empty() {
            warn!(
                root = start_slot,
                votes = ?kept,
                "votes of this node's tower lie below the root and off its chain: it waits out their lockouts before voting"
            );
        }
        let pending_txs = PendingTxs::new(shared.pending.capacity());
        let last_slot_end = shared.clock_slot();
        let mut engine = Engine {
            validator,
            ledger,
            shared,
            dispatch,
            pending_txs,
            last_slot_end,
            votes_to_store: Vec::new(),
            held: HeldSlots::new(),
            bank_hashes: BTreeMap::new(),
            recent_repairs: HashMap::new(),
            deferred_repairs: BTreeMap::new(),
            landed_checked_on: None,
            restoring: true,
            last_confirmed: 0,
            events_due: Vec::new(),
            committed_root: None,
            snapshots,
            double_vote_key,
            equivocate_key,
        };
        engine.committed_root = engine.ledger.latest_root()?.map(|(slot, _)| slot);
        let stored = engine.ledger.blocks_range(start_slot + 1..)?;
        if !stored.is_empty() {
            info!(blocks = stored.len(), "replaying the ledger");
        }
        for slot in stored {
            if let Some(bytes) = engine.ledger.get_block(slot)? {
                match Block::from_bytes(&bytes) {
                    Ok(block) => {
                        let out = engine.validator.on_block(Arc::new(block), None);
                        engine.apply(out);
                    }
                    Err(e) => warn!(slot, "stored block does not decode: {e}"),
                }
            }
        }
        engine.restoring = false;
        engine.publish_status();
        Ok(engine)
    }

    /// Runs until told to shut down or every sender is gone.
    pub fn run(mut self, mut inbox: mpsc::Receiver<EngineMsg>) {
        'outer: while let Some(msg) = inbox.blocking_recv() {
            if matches!(msg, EngineMsg::Shutdown) {
                break;
            }
            self.handle(msg);
            // Drain what queued meanwhile before publishing the view once, unless a
            // block reached a new level: that is published (and announced) at once.
            while let Ok(msg) = inbox.try_recv() {
                if !self.events_due.is_empty() {
                    self.publish_status();
                }
                if matches!(msg, EngineMsg::Shutdown) {
                    break 'outer;
                }
                self.handle(msg);
            }
            self.send_due_repairs();
            self.publish_status();
        }
        self.flush_votes();
        info!("engine stopped");
    }

    fn handle(&mut self, msg: EngineMsg) {
        match msg {
            EngineMsg::Block { block, from } => {
                let slot = block.header.slot;
                let end_of_slot = self.slot_end_ms(slot);
                let now = now_ms();
                if from.is_none() && now >= end_of_slot {
                    self.shared
                        .metrics
                        .block_propagation_seconds
                        .observe((now - end_of_slot) as f64 / 1000.0);
                }
                let started = Instant::now();
                let out = self.validator.on_block(block, from);
                let replayed = started.elapsed();
                self.apply(out);
                debug!(
                    slot,
                    after_slot_end_ms = now.saturating_sub(end_of_slot),
                    replay_ms = replayed.as_millis() as u64,
                    applied_ms = (started.elapsed() - replayed).as_millis() as u64,
                    "block taken"
                );
                self.produce_held_if_ready();
            }
            EngineMsg::Vote { vote, raw } => {
                self.votes_to_store
                    .push((vote.vote.slot, vote.vote.voter.0, raw));
                let voter = vote.vote.voter;
                let out = self.validator.on_vote(Arc::new(vote), Some(voter));
                self.apply(out);
                let out = self.validator.refresh_commitment();
                self.apply(out);
            }
            EngineMsg::Evidence { evidence, reply } => {
                let outcome = self.take_evidence(evidence, Source::Gossip);
                let _ = reply.send(outcome);
            }
            EngineMsg::FoundEvidence(evidence) => {
                self.take_evidence(evidence, Source::Detected);
            }
            EngineMsg::SlotEnd(slot) => self.on_slot_end(slot),
            EngineMsg::Transactions { txs, reply } => {
                let offered = txs.len();
                let taken = self.pending_txs.offer(txs, self.last_slot_end);
                if taken < offered {
                    self.shared
                        .metrics
                        .dropped(metrics::DROPPED_QUEUE_FULL, (offered - taken) as u64);
                }
                self.publish_pending();
                let _ = reply.send(taken);
            }
            EngineMsg::Query(q) => self.answer(q),
            EngineMsg::Shutdown => {}
        }
    }

    /// Slashing evidence from a peer or found here: kept for our blocks if new, stored,
    /// and (when found here) gossiped; a peer's evidence is forwarded by gossipsub on the
    /// verdict instead.
    fn take_evidence(&mut self, evidence: Evidence, source: Source) -> EvidenceOutcome {
        let outcome = self.validator.on_evidence(evidence.clone());
        if let EvidenceOutcome::New(offense) = &outcome {
            self.note_evidence(offense, evidence, source);
        }
        outcome
    }

    /// Counts, logs and stores evidence new to this node, and gossips what it found.
    fn note_evidence(&mut self, offense: &bb_core::Offense, evidence: Evidence, source: Source) {
        self.shared.metrics.slashing_evidence.inc();
        warn!(
            offender = %offense.offender,
            slot = offense.slot,
            kind = offense.kind.name(),
            source = source.name(),
            "slashing evidence"
        );
        slashing::store_new(&self.ledger, &evidence, source, now_ms());
        if source == Source::Detected && !self.restoring {
            let _ = self.dispatch.send(Dispatch::Evidence(evidence));
        }
    }

    /// Test-only fault `equivocate`: another valid block for `b`'s slot, built on the
    /// parent's parent (all ticks, no transactions), signed with our key.
    fn twin_of(&self, b: &Block, key: &bb_core::Keypair) -> Option<Block> {
        let g = &self.shared.genesis;
        let parent = self.validator.bank(b.header.parent_slot)?;
        let grand = parent.parent()?;
        let (grand_slot, grand_id) = (grand.slot(), grand.block_id()?);
        let start = grand.last_blockhash();
        let ticks = (b.header.slot - grand_slot).checked_mul(g.ticks_per_slot)?;
        let mut poh = bb_core::PohRecorder::new(start, g.hashes_per_tick);
        let entries = (0..ticks).map(|_| poh.tick()).collect();
        Some(Block::new_signed(
            key,
            b.header.slot,
            grand_slot,
            grand_id,
            start,
            entries,
        ))
    }

    fn slot_end_ms(&self, slot: Slot) -> u64 {
        let g = &self.shared.genesis;
        // Saturating: the slot may come from a peer's vote.
        g.creation_time_ms
            .saturating_add(slot.saturating_add(1).saturating_mul(g.slot_ms))
    }

    fn on_slot_end(&mut self, slot: Slot) {
        self.publish_schedules(slot);
        self.last_slot_end = self.last_slot_end.max(slot);
        // The bank our next block would build on decides which blockhashes are live.
        let best = self.validator.best_slot();
        let bank = self
            .validator
            .bank(best)
            .unwrap_or_else(|| self.validator.root_bank());
        self.evict_expired(&bank, slot);
        let ours = self.validator.leader_of(slot) == Some(self.validator.identity());
        for s in self.held.on_slot_end(&mut self.validator, slot, ours) {
            self.produce(s);
        }
        let out = self.validator.poll_vote(now_ms());
        self.apply(out);
        for parent in self.validator.missing_parents() {
            self.request_repair(parent, None);
        }
        self.flush_votes();
        let now = Instant::now();
        self.recent_repairs
            .retain(|_, at| now.duration_since(*at).as_secs() < 5);
    }

    /// Builds and sends our block for `slot` from the pending transactions live on the
    /// heaviest fork.
    fn produce(&mut self, slot: Slot) {
        let best = self.validator.best_slot();
        let bank = self
            .validator
            .bank(best)
            .unwrap_or_else(|| self.validator.root_bank());
        // The previous leader's last block may have been replayed since the slot ended:
        // its transactions are dropped as the block is filled.
        let (txs, landed) = self.pending_txs.take_for_block(
            BATCH * 64,
            |h| bank.is_blockhash_valid(h),
            bank.already_processed(),
        );
        if landed > 0 {
            debug!(
                landed,
                "dropped pending transactions already in a block we build on"
            );
        }
        self.publish_pending();
        let batches: Vec<Vec<Transaction>> =
            txs.chunks(BATCH).map(<[Transaction]>::to_vec).collect();
        let out = self.validator.produce(slot, &batches, now_ms());
        self.apply(out);
    }

    /// Builds the blocks held for the previous leader's as soon as that block is
    /// replayed.
    fn produce_held_if_ready(&mut self) {
        for s in self.held.on_replayed(&mut self.validator) {
            self.produce(s);
        }
    }

    /// Drops pending transactions already executed on the fork we would build on, and
    /// those whose blockhash its bank no longer accepts (past a short grace for
    /// blockhashes not seen yet): they can never land, and must not hold room that live
    /// ones need.
    fn evict_expired(&mut self, bank: &bb_runtime::Bank, slot: Slot) {
        if self.pending_txs.is_empty() {
            return;
        }
        // Only a new bank to build on can have landed more of them.
        let landed = if self.landed_checked_on != Some(bank.slot()) {
            self.landed_checked_on = Some(bank.slot());
            self.pending_txs
                .evict_landed(bank.already_processed(), BATCH * 64)
        } else {
            0
        };
        if landed > 0 {
            debug!(
                landed,
                "dropped pending transactions already in a block we build on"
            );
            self.publish_pending();
        }
        let evicted = self
            .pending_txs
            .evict_expired(|h| bank.is_blockhash_valid(h), slot);
        if evicted > 0 {
            debug!(
                evicted,
                "dropped pending transactions with expired blockhashes"
            );
            self.shared
                .metrics
                .dropped(metrics::DROPPED_EXPIRED, evicted as u64);
            self.publish_pending();
        }
    }

    /// Publishes the pending queue's fill level (for forwards and the metrics).
    fn publish_pending(&self) {
        let len = self.pending_txs.len();
        self.shared.pending.set(len);
        self.shared
            .metrics
            .pending_transactions
            .set(i64::try_from(len).unwrap_or(i64::MAX));
    }

    /// Shares this epoch's and the next epoch's schedules with Turbine and RPC.
    fn publish_schedules(&mut self, slot: Slot) {
        let epoch = slot / self.shared.genesis.slots_per_epoch.max(1);
        for e in [epoch, epoch + 1] {
            let known = self
                .shared
                .schedules
                .read()
                .map(|s| s.contains_key(&e))
                .unwrap_or(false);
            if !known
                && let Some(s) = self.validator.leader_schedule(e)
                && let Ok(mut map) = self.shared.schedules.write()
            {
                map.insert(e, s);
                // Keep a few epochs back for queries.
                let keep_from = epoch.saturating_sub(4);
                *map = map.split_off(&keep_from);
            }
        }
    }

    /// How long after a slot's end its block may still be arriving by Turbine: a
    /// quarter of a slot, at most [`TURBINE_GRACE_MAX_MS`]. At 10k TPS on 3 nodes the
    /// block is whole 25-100 ms after the slot's end; a longer grace cost a 100-node
    /// localnet (1 s slots, 500 ms grace) whole leader runs: the next leader lacked every
    /// block of the run Turbine had not brought and built around it.
    fn turbine_grace_ms(&self) -> u64 {
        (self.shared.genesis.slot_ms / 4).min(TURBINE_GRACE_MAX_MS)
    }

    /// Asks for a block and its ancestors: at once for a slot whose block should be here
    /// by now (or that we hold: then another version is wanted), or else once the
    /// Turbine grace has passed and only if it is still needed. Before, every vote that
    /// outran its block's shreds asked for the block and up to 4 MiB of ancestors
    /// already held: a repair for almost every block under load.
    fn request_repair(&mut self, slot: Slot, hint: Option<Pubkey>) {
        let in_grace = now_ms()
            < self
                .slot_end_ms(slot)
                .saturating_add(self.turbine_grace_ms());
        if in_grace && self.validator.block(slot).is_none() {
            // Bounded: votes naming far-future slots cannot pile up here.
            if self.deferred_repairs.len() >= MAX_DEFERRED_REPAIRS
                && !self.deferred_repairs.contains_key(&slot)
            {
                self.deferred_repairs.pop_last();
            }
            let held = self.deferred_repairs.entry(slot).or_default();
            *held = held.or(hint);
            return;
        }
        self.repair_now(slot, hint);
    }

    /// Sends the deferred repairs whose grace has passed, for blocks still missing.
    fn send_due_repairs(&mut self) {
        let now = now_ms();
        let grace = self.turbine_grace_ms();
        let due: Vec<Slot> = self
            .deferred_repairs
            .keys()
            .copied()
            .take_while(|s| now >= self.slot_end_ms(*s).saturating_add(grace))
            .collect();
        for slot in due {
            let hint = self.deferred_repairs.remove(&slot).flatten();
            if self.validator.needs_block(slot) {
                self.repair_now(slot, hint);
            }
        }
    }

    fn repair_now(&mut self, slot: Slot, hint: Option<Pubkey>) {
        let now = Instant::now();
        if let Some(at) = self.recent_repairs.get(&slot)
            && now.duration_since(*at).as_millis() < 500
        {
            return;
        }
        self.recent_repairs.insert(slot, now);
        self.shared.metrics.repair_requests.inc();
        let _ = self.dispatch.send(Dispatch::Repair { slot, hint });
    }

    fn flush_votes(&mut self) {
        if self.votes_to_store.is_empty() {
            return;
        }
        let votes = std::mem::take(&mut self.votes_to_store);
        if let Err(e) = self.ledger.put_votes(&votes) {
            warn!("storing votes: {e}");
        }
    }

    fn apply(&mut self, outputs: Vec<Output>) {
        let mut tower_ok = true;
        for o in outputs {
            match o {
                Output::PersistTower(t) => {
                    let started = Instant::now();
                    let saved = self.ledger.save_tower(&t.to_bytes());
                    debug!(ms = started.elapsed().as_millis() as u64, "tower persisted");
                    tower_ok = match saved {
                        Ok(()) => true,
                        Err(e) => {
                            error!("cannot persist the tower, the vote is dropped: {e}");
                            false
                        }
                    };
                }
                Output::SendVote(v) => {
                    if tower_ok {
                        self.shared.metrics.votes_cast.inc();
                        let start = self.shared.genesis.creation_time_ms
                            + v.vote.slot * self.shared.genesis.slot_ms;
                        let now = now_ms();
                        if now >= start {
                            self.shared
                                .metrics
                                .vote_latency_seconds
                                .observe((now - start) as f64 / 1000.0);
                        }
                        self.votes_to_store
                            .push((v.vote.slot, v.vote.voter.0, v.to_bytes()));
                        let _ = self.dispatch.send(Dispatch::Vote(v));
                        if let Some(key) = &self.double_vote_key {
                            let mut twin = v.vote;
                            twin.block_id =
                                bb_core::hashv(&[b"bb/fault/double-vote", &v.vote.block_id.0]);
                            twin.bank_hash = twin.block_id;
                            let _ = self.dispatch.send(Dispatch::Vote(twin.sign(key)));
                        }
                    }
                }
                Output::SendBlock(b) => {
                    self.shared.metrics.blocks_produced.inc();
                    info!(
                        slot = b.header.slot,
                        parent = b.header.parent_slot,
                        txs = b.header.transaction_count,
                        "produced block"
                    );
                    let twin = self
                        .equivocate_key
                        .as_ref()
                        .and_then(|k| self.twin_of(&b, k));
                    let _ = self.dispatch.send(Dispatch::Block(b));
                    if let Some(twin) = twin {
                        warn!(
                            slot = twin.header.slot,
                            parent = twin.header.parent_slot,
                            "fault: sending a second version of our block"
                        );
                        let _ = self.dispatch.send(Dispatch::Block(Arc::new(twin)));
                    }
                }
                Output::StoreBlock(b) => {
                    if !self.restoring {
                        self.store_block(&b);
                    }
                }
                Output::Repair { slot, hint } => self.request_repair(slot, hint),
                Output::Rooted {
                    changes,
                    chain,
                    offenses,
                    penalties,
                } => {
                    self.shared.metrics.roots.inc();
                    self.commit_root(&changes, &chain);
                    for (slot, evidence) in &offenses {
                        slashing::store_recorded(&self.ledger, *slot, evidence, now_ms());
                    }
                    if !penalties.is_empty() {
                        for p in &penalties {
                            self.shared.metrics.slashing_penalties.inc();
                            warn!(
                                offender = %p.offender,
                                epoch = p.epoch,
                                old_stake = p.old_stake,
                                new_stake = p.new_stake,
                                "stake slashed"
                            );
                        }
                        let rows: Vec<(u64, [u8; 32], u64, u64)> = penalties
                            .iter()
                            .map(|p| (p.epoch, p.offender.0, p.old_stake, p.new_stake))
                            .collect();
                        if let Err(e) = self.ledger.put_penalties(&rows) {
                            warn!("cannot store slashing penalties: {e}");
                        }
                    }
                    if !self.restoring {
                        self.snapshots.on_root(&self.validator.root_bank());
                    }
                }
                Output::Evidence(evidence) => {
                    self.shared.metrics.double_votes_seen.inc();
                    self.note_evidence(&evidence.offense(), *evidence, Source::Detected);
                }
                Output::DeadBlock { slot, reason } => {
                    self.shared.metrics.blocks_dead.inc();
                    warn!(slot, "dead block: {reason}");
                }
                Output::DuplicateSlot {
                    slot,
                    confirmed: None,
                } => {
                    self.shared.metrics.duplicate_slots.inc();
                    warn!(
                        slot,
                        "the leader signed two versions of this slot; it is no candidate until one is confirmed"
                    );
                }
                Output::DuplicateSlot {
                    slot,
                    confirmed: Some(id),
                } => {
                    info!(slot, block = %id.short(), "duplicate slot settled: the cluster confirmed one version")
                }
                Output::ReplacedVersion {
                    slot,
                    ours,
                    confirmed,
                    dropped,
                } => {
                    self.shared.metrics.versions_replaced.inc();
                    warn!(
                        slot,
                        ours = %ours.short(),
                        confirmed = %confirmed.short(),
                        dropped = dropped.len(),
                        "replaced our version of a duplicate slot with the one the cluster confirmed"
                    );
                }
                Output::Frozen {
                    slot, bank_hash, ..
                } => {
                    self.shared.metrics.blocks_replayed.inc();
                    if let Some(b) = self.validator.block(slot) {
                        self.shared
                            .metrics
                            .transactions_processed
                            .inc_by(b.header.transaction_count);
                    }
                    self.bank_hashes.insert(slot, bank_hash);
                    self.events_due.push(BlockEvent {
                        slot,
                        level: Level::Processed,
                    });
                }
                Output::Commitment(c) => {
                    // Time from each newly confirmed block's slot end to now.
                    let now = now_ms();
                    let from = self.last_confirmed.max(c.confirmed.saturating_sub(64));
                    for slot in (from + 1)..=c.confirmed {
                        if self.bank_hashes.contains_key(&slot) && !self.restoring {
                            let end = self.slot_end_ms(slot);
                            self.shared
                                .metrics
                                .confirmation_seconds
                                .observe(now.saturating_sub(end) as f64 / 1000.0);
                        }
                    }
                    self.last_confirmed = self.last_confirmed.max(c.confirmed);
                    debug!(
                        processed = c.processed,
                        confirmed = c.confirmed,
                        finalized = c.finalized,
                        "commitment"
                    );
                    self.events_due.push(BlockEvent {
                        slot: c.confirmed,
                        level: Level::Confirmed,
                    });
                    self.events_due.push(BlockEvent {
                        slot: c.finalized,
                        level: Level::Finalized,
                    });
                }
            }
        }
    }

    fn store_block(&mut self, b: &Block) {
        let meta = SlotMeta {
            parent_slot: b.header.parent_slot,
            received_data_shreds: 0,
            num_data_shreds: None,
            is_full: true,
            is_dead: false,
            first_shred_at_ms: now_ms(),
        };
        if let Err(e) = self.ledger.put_block(b.header.slot, &meta, &b.to_bytes()) {
            warn!(slot = b.header.slot, "storing block: {e}");
        }
    }

    fn commit_root(&mut self, changes: &bb_runtime::RootChanges, chain: &[(Slot, Hash)]) {
        let accounts: Vec<([u8; 32], Vec<u8>)> = changes
            .accounts
            .iter()
            .filter(|(_, bal)| *bal > 0)
            .map(|(k, bal)| (k.0, bal.to_le_bytes().to_vec()))
            .collect();
        let removed: Vec<[u8; 32]> = changes
            .accounts
            .iter()
            .filter(|(_, bal)| *bal == 0)
            .map(|(k, _)| k.0)
            .collect();
        let stored = self.committed_root;
        if stored.is_some_and(|r| changes.slot <= r) {
            // Replaying the ledger on restart roots again what is already stored.
            return;
        }
        // The chain runs oldest first and ends with the new root itself.
        let rooted_ancestors: Vec<(u64, [u8; 32], [u8; 32])> = chain
            .iter()
            .filter(|(slot, _)| *slot < changes.slot && stored.is_none_or(|r| *slot > r))
            .filter_map(|(slot, id)| {
                let hash = self.bank_hashes.get(slot)?;
                Some((*slot, id.0, hash.0))
            })
            .collect();
        let commit = RootCommit {
            slot: changes.slot,
            block_id: changes.block_id.0,
            bank_hash: changes.bank_hash.0,
            rooted_ancestors: &rooted_ancestors,
            accounts: &accounts,
            removed_accounts: &removed,
            purge_below: Some(changes.slot.saturating_sub(256)),
        };
        match self.ledger.commit_root(&commit) {
            Ok(()) => {
                self.committed_root = Some(changes.slot);
                let keep_from = changes.slot.saturating_sub(BANK_HASH_SLOTS_BELOW_ROOT);
                self.bank_hashes = self.bank_hashes.split_off(&keep_from);
                debug!(root = changes.slot, rooted = chain.len(), "root committed");
            }
            Err(e) => warn!(root = changes.slot, "committing root: {e}"),
        }
    }

    /// Whether the block `id` of `slot` is on this node's chain: rooted (the ledger's
    /// roots name it) at or below the root, an ancestor of the best fork above it.
    fn on_chain(&mut self, slot: Slot, id: &Hash) -> bool {
        let root = self.validator.root();
        if slot <= root {
            return self
                .ledger
                .roots_range(slot..=slot)
                .ok()
                .and_then(|r| r.first().copied())
                .is_some_and(|(_, rooted)| rooted == id.0);
        }
        let best = self.validator.best_slot();
        self.validator.block_id(slot) == Some(*id)
            && (slot == best || self.validator.is_ancestor(slot, best))
    }

    fn block_from_ledger(&self, slot: Slot) -> Option<Arc<Block>> {
        self.validator.block(slot).or_else(|| {
            let bytes = self.ledger.get_block(slot).ok()??;
            Block::from_bytes(&bytes).ok().map(Arc::new)
        })
    }

    fn answer(&mut self, q: Query) {
        match q {
            Query::CreateSnapshot { reply } => {
                let root = self.validator.root_bank();
                self.snapshots.request(&root, reply);
            }
            Query::Votes { slot, reply } => {
                self.flush_votes();
                let stored = self.ledger.votes_for_slot(slot).unwrap_or_default();
                let list = stored
                    .into_iter()
                    .map(|(voter, bytes)| (bytes, self.validator.stake_of(&Pubkey(voter))))
                    .collect();
                let _ = reply.send(list);
            }
            Query::Block { slot, reply } => {
                let found = self.block_from_ledger(slot).map(|b| {
                    let hash = self
                        .bank_hashes
                        .get(&slot)
                        .copied()
                        .or_else(|| self.ledger.bank_hash(slot).ok().flatten().map(Hash));
                    let on_chain = self.on_chain(slot, &b.id());
                    (b, hash, on_chain)
                });
                let _ = reply.send(found);
            }
            Query::Ancestors { slot, count, reply } => {
                // Up to `count` blocks, but within a byte budget: with large blocks a
                // full answer would be tens of MB per request. The asker repairs the
                // rest as it finds parents missing.
                let mut chain = Vec::new();
                let mut bytes = 0usize;
                let mut cur = self.block_from_ledger(slot);
                while let Some(b) = cur {
                    let parent = b.header.parent_slot;
                    bytes += approx_block_bytes(&b);
                    chain.push(b);
                    if chain.len() >= count || parent == 0 || bytes >= REPAIR_ANSWER_BUDGET {
                        break;
                    }
                    cur = self.block_from_ledger(parent);
                }
                chain.reverse();
                let _ = reply.send(chain);
            }
            Query::Range { from, to, reply } => {
                let to = to.min(from.saturating_add(crate::wire::MAX_RANGE - 1));
                let list = (from..=to)
                    .filter_map(|s| self.block_from_ledger(s))
                    .collect();
                let _ = reply.send(list);
            }
            Query::Balance { who, level, reply } => {
                let c = self.validator.commitment();
                let slot = match level {
                    Level::Processed => c.processed,
                    Level::Confirmed => c.confirmed,
                    _ => self.validator.root(),
                };
                let bank = self
                    .validator
                    .bank(slot)
                    .unwrap_or_else(|| self.validator.root_bank());
                let _ = reply.send((bank.balance(&who), bank.slot()));
            }
            Query::Schedule { epoch, reply } => {
                let _ = reply.send(self.validator.leader_schedule(epoch));
            }
            Query::CheckTransactions { txs, reply } => {
                let best = self.validator.best_slot();
                let result = match self.validator.bank(best) {
                    Some(bank) => Ok(bank.check_verified_transactions(&txs)),
                    None => Err("the node has no bank yet".into()),
                };
                let _ = reply.send(result);
            }
        }
    }

    fn publish_status(&mut self) {
        let c = self.validator.commitment();
        let m = &self.shared.metrics;
        let (skipped, checked) = self.shared.verified.counts();
        m.signatures_skipped
            .inc_by(skipped.saturating_sub(m.signatures_skipped.get()));
        m.signatures_checked
            .inc_by(checked.saturating_sub(m.signatures_checked.get()));
        let hashes = |slot: Slot, v: &Validator, bank_hashes: &BTreeMap<Slot, Hash>| SlotHashes {
            slot,
            bank_hash: bank_hashes
                .get(&slot)
                .copied()
                .or_else(|| v.bank(slot).and_then(|b| b.hash()))
                .unwrap_or_default(),
            block_id: v
                .block_id(slot)
                .or_else(|| v.bank(slot).and_then(|b| b.block_id()))
                .unwrap_or_default(),
        };
        let root_bank = self.validator.root_bank();
        let best = self.validator.best_slot();
        let recent = self
            .validator
            .bank(best)
            .map(|b| b.last_blockhash())
            .unwrap_or_else(|| root_bank.last_blockhash());
        let view = crate::state::StatusView {
            processed: hashes(c.processed, &self.validator, &self.bank_hashes),
            confirmed: hashes(c.confirmed, &self.validator, &self.bank_hashes),
            finalized: hashes(c.finalized, &self.validator, &self.bank_hashes),
            root: SlotHashes {
                slot: root_bank.slot(),
                bank_hash: root_bank.hash().unwrap_or_default(),
                block_id: root_bank.block_id().unwrap_or_default(),
            },
            epoch: root_bank.epoch_schedule().epoch(c.processed),
            recent_blockhash: recent,
        };
        m.processed_slot.set(c.processed as i64);
        m.confirmed_slot.set(c.confirmed as i64);
        m.finalized_slot.set(c.finalized as i64);
        m.root_slot.set(root_bank.slot() as i64);
        if let Ok(mut s) = self.shared.status.write() {
            *s = view;
        }
        // After the view: whoever the announcement wakes reads it.
        for ev in self.events_due.drain(..) {
            let _ = self.shared.block_events.send(ev);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bb_core::{Genesis, GenesisValidator, Keypair};

    /// A one-validator engine over a fresh ledger whose pending queue holds `capacity`.
    fn engine(capacity: usize, dir: &std::path::Path) -> (Engine, Keypair) {
        let key = Keypair::from_seed(&[11; 32]);
        let genesis = Genesis {
            version: 1,
            network: "engine-test".into(),
            // Now: the clock starts at slot 0, as the test's slot ends do.
            creation_time_ms: now_ms(),
            slot_ms: 400,
            ticks_per_slot: 4,
            hashes_per_tick: 8,
            slots_per_epoch: 32,
            leader_slots_per_rotation: 4,
            slash_penalty_bps: bb_core::DEFAULT_SLASH_PENALTY_BPS,
            validators: vec![GenesisValidator {
                identity: key.pubkey(),
                stake: 100,
            }],
            accounts: vec![bb_core::GenesisAccount {
                address: key.pubkey(),
                balance: 1_000_000,
            }],
        };
        let shared = Arc::new(Shared::new(key.pubkey(), Arc::new(genesis), capacity));
        let ledger = Arc::new(Ledger::open(dir).expect("ledger"));
        let (dispatch, _) = mpsc::unbounded_channel();
        let policy = SnapshotPolicy {
            interval: 0,
            keep: 1,
        };
        let engine = Engine::start(
            key.clone(),
            ledger,
            shared,
            dispatch,
            policy,
            &crate::fault::Faults::default(),
        )
        .expect("engine starts");
        (engine, key)
    }

    /// `n` distinct transfers (amounts `first..first + n`).
    fn transfers(key: &Keypair, first: u64, n: u64, blockhash: Hash) -> Vec<Transaction> {
        (first..first + n)
            .map(|amount| Transaction::transfer(key, Pubkey([2; 32]), amount, 1, blockhash))
            .collect()
    }

    /// Offers `txs` as a forward would and returns how many the engine says it took.
    fn offer(engine: &mut Engine, txs: Vec<Transaction>) -> usize {
        let (reply, mut taken) = oneshot::channel();
        engine.handle(EngineMsg::Transactions { txs, reply });
        taken.try_recv().expect("the engine answers at once")
    }

    fn dropped(engine: &Engine, reason: &str) -> u64 {
        engine
            .shared
            .metrics
            .transactions_dropped
            .get_or_create(&metrics::ReasonLabel {
                reason: reason.into(),
            })
            .get()
    }

    #[test]
    fn one_query_checks_a_whole_batch_in_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (mut e, key) = engine(10, dir.path());
        let live = e.shared.genesis_hash;
        let ok = transfers(&key, 1, 2, live);
        let stale = transfers(&key, 3, 1, Hash([0xee; 32]));
        let poor = Transaction::transfer(&key, Pubkey([2; 32]), 2_000_000, 1, live);
        let txs = vec![ok[0], stale[0], poor, ok[1], ok[0]];
        let (reply, mut answer) = oneshot::channel();
        e.handle(EngineMsg::Query(Query::CheckTransactions { txs, reply }));
        let results = answer.try_recv().expect("the engine answers at once");
        assert_eq!(
            results,
            Ok(vec![
                Ok(()),
                Err(TransactionError::BlockhashNotFound),
                Err(TransactionError::InsufficientFunds {
                    balance: 1_000_000,
                    needed: 2_000_001,
                }),
                Ok(()),
                Err(TransactionError::AlreadyProcessed),
            ])
        );
        // Checking takes nothing into the queue.
        assert_eq!(e.shared.pending.get(), 0);
    }

    #[test]
    fn a_full_queue_takes_fewer_says_so_and_counts_the_rest() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (mut e, key) = engine(5, dir.path());
        let live = e.shared.genesis_hash;
        assert_eq!(offer(&mut e, transfers(&key, 1, 3, live)), 3);
        assert_eq!(offer(&mut e, transfers(&key, 10, 4, live)), 2);
        assert_eq!(offer(&mut e, transfers(&key, 20, 1, live)), 0);
        assert_eq!(dropped(&e, metrics::DROPPED_QUEUE_FULL), 3);
        assert_eq!(e.shared.pending.get(), 5);
        assert!(e.shared.pending.is_full());
        assert_eq!(e.shared.metrics.pending_transactions.get(), 5);
        // Our leader slot drains the queue into a block, and the level follows.
        e.handle(EngineMsg::SlotEnd(1));
        assert_eq!(e.shared.pending.get(), 0);
        assert_eq!(
            e.validator.block(1).map(|b| b.header.transaction_count),
            Some(5)
        );
    }

    #[test]
    fn expired_transactions_leave_the_queue_at_the_slot_end_and_are_counted() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (mut e, key) = engine(10, dir.path());
        let live = e.shared.genesis_hash;
        // A blockhash no bank knows (aged out long ago, as far as the bank can tell).
        let expired = Hash([0xee; 32]);
        assert_eq!(offer(&mut e, transfers(&key, 1, 6, expired)), 6);
        assert_eq!(offer(&mut e, transfers(&key, 10, 2, live)), 2);
        e.handle(EngineMsg::SlotEnd(1));
        assert_eq!(
            e.validator.block(1).map(|b| b.header.transaction_count),
            Some(2),
            "only the live ones reach the block"
        );
        // The unknown blockhash might still come: kept through the grace, then dropped.
        assert_eq!(e.shared.pending.get(), 6);
        assert_eq!(dropped(&e, metrics::DROPPED_EXPIRED), 0);
        e.handle(EngineMsg::SlotEnd(
            crate::pending::UNKNOWN_BLOCKHASH_GRACE_SLOTS,
        ));
        assert_eq!(dropped(&e, metrics::DROPPED_EXPIRED), 6);
        assert_eq!(dropped(&e, metrics::DROPPED_QUEUE_FULL), 0);
        assert_eq!(e.shared.pending.get(), 0);
        assert_eq!(e.shared.metrics.pending_transactions.get(), 0);
    }

    /// Bank hashes far below the committed root leave memory; the ledger still answers
    /// for the rooted ones.
    #[test]
    fn bank_hashes_far_below_the_root_leave_memory() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (mut e, _key) = engine(10, dir.path());
        for slot in 1..=BANK_HASH_SLOTS_BELOW_ROOT + 100 {
            e.handle(EngineMsg::SlotEnd(slot));
        }
        let root = e.committed_root.expect("a root was committed");
        assert!(root > BANK_HASH_SLOTS_BELOW_ROOT, "root {root}");
        let oldest = e.bank_hashes.keys().next().copied();
        assert_eq!(oldest, Some(root - BANK_HASH_SLOTS_BELOW_ROOT));
        assert!(matches!(e.ledger.bank_hash(1), Ok(Some(_))));
    }

    /// `StreamBlocks` wakes on an announcement and reads the status view to know how far
    /// to send: an announcement made before the view says so left it a slot behind.
    #[test]
    fn a_block_is_announced_only_once_the_status_view_says_so() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (mut e, _key) = engine(10, dir.path());
        let mut events = e.shared.block_events.subscribe();
        let mut seen = Vec::new();
        for slot in 1..=3 {
            e.handle(EngineMsg::SlotEnd(slot));
            assert!(
                events.try_recv().is_err(),
                "slot {slot}: announced before the status view was published"
            );
            e.publish_status();
            let status = e.shared.status();
            while let Ok(ev) = events.try_recv() {
                let upto = match ev.level {
                    Level::Processed => status.processed.slot,
                    Level::Finalized => status.finalized.slot,
                    _ => status.confirmed.slot,
                };
                assert!(ev.slot <= upto, "{ev:?} announced, the view says {upto}");
                seen.push(ev);
            }
        }
        // Our own blocks, each replayed and confirmed by our own vote (all the stake).
        for slot in 1..=3 {
            for level in [Level::Processed, Level::Confirmed] {
                assert!(
                    seen.iter().any(|ev| ev.slot == slot && ev.level == level),
                    "slot {slot} never announced at {level:?}: {seen:?}"
                );
            }
        }
    }
}
