//! What the node's tasks share: the status the engine publishes, the peers gossip learns,
//! the leader schedules, and the metrics. Readers take short locks; only the owner task
//! writes each part.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use bb_core::{Genesis, Hash, Pubkey, Slot};
use bb_runtime::LeaderSchedule;
use tokio::sync::broadcast;

use crate::metrics::Metrics;

/// A slot with its hashes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SlotHashes {
    pub slot: Slot,
    pub bank_hash: Hash,
    pub block_id: Hash,
}

/// The engine's latest view, for status queries.
#[derive(Debug, Clone, Default)]
pub struct StatusView {
    pub processed: SlotHashes,
    pub confirmed: SlotHashes,
    pub finalized: SlotHashes,
    pub root: SlotHashes,
    pub epoch: u64,
    pub recent_blockhash: Hash,
}

/// What gossip knows of another validator.
#[derive(Debug, Clone, Default)]
pub struct PeerView {
    pub gossip_addr: String,
    pub shred_addr: Option<SocketAddr>,
    pub rpc_addr: String,
    pub version: String,
    pub latest_slot: Option<Slot>,
    pub clock_skew_ms: Option<i64>,
    pub connected: bool,
    /// When we last heard its contact info.
    pub last_contact: Option<Instant>,
}

/// A block reaching a commitment level, for `StreamBlocks`.
#[derive(Debug, Clone)]
pub struct BlockEvent {
    pub slot: Slot,
    pub level: bb_rpc::Commitment,
}

/// Shared state of one node.
#[derive(Debug)]
pub struct Shared {
    pub identity: Pubkey,
    pub genesis: Arc<Genesis>,
    pub genesis_hash: Hash,
    pub started: Instant,
    pub status: RwLock<StatusView>,
    pub peers: RwLock<BTreeMap<Pubkey, PeerView>>,
    pub schedules: RwLock<BTreeMap<u64, Arc<LeaderSchedule>>>,
    /// Genesis stakes by validator (the staked set gossip accepts messages from).
    pub stakes: BTreeMap<Pubkey, u64>,
    pub metrics: Arc<Metrics>,
    pub block_events: broadcast::Sender<BlockEvent>,
}

impl Shared {
    pub fn new(identity: Pubkey, genesis: Arc<Genesis>) -> Shared {
        let stakes = genesis
            .validators
            .iter()
            .map(|v| (v.identity, v.stake))
            .collect();
        Shared {
            identity,
            genesis_hash: genesis.hash(),
            genesis,
            started: Instant::now(),
            status: RwLock::new(StatusView::default()),
            peers: RwLock::new(BTreeMap::new()),
            schedules: RwLock::new(BTreeMap::new()),
            stakes,
            metrics: Arc::new(Metrics::new()),
            block_events: broadcast::channel(1024).0,
        }
    }

    pub fn total_stake(&self) -> u64 {
        self.stakes.values().sum()
    }

    /// The current slot by the genesis clock.
    pub fn clock_slot(&self) -> Slot {
        let now = now_ms();
        now.saturating_sub(self.genesis.creation_time_ms) / self.genesis.slot_ms.max(1)
    }

    /// The leader of `slot`, if the engine has published that epoch's schedule.
    pub fn leader_of(&self, slot: Slot) -> Option<Pubkey> {
        let epoch = slot / self.genesis.slots_per_epoch.max(1);
        let schedules = self.schedules.read().ok()?;
        schedules.get(&epoch)?.leader_at(slot)
    }

    pub fn status(&self) -> StatusView {
        self.status.read().map(|s| s.clone()).unwrap_or_default()
    }
}

/// Wall-clock milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
