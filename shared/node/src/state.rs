//! What the node's tasks share: the status the engine publishes, the peers gossip learns,
//! the leader schedules, and the metrics. Readers take short locks; only the owner task
//! writes each part.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use bb_core::{Genesis, Hash, Pubkey, Slot, VerifiedTxs};
use bb_runtime::LeaderSchedule;
use tokio::sync::broadcast;

use crate::gulfstream::BusyLeaders;
use crate::metrics::Metrics;
use crate::pending::QueueLevel;

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
    /// The current ban: until when and why (the network layer also knows; this copy is
    /// for the shred path, which has no libp2p identity to ask about).
    pub banned_until: Option<(Instant, bb_net::Misbehaviour)>,
    /// Blocked by the operator's block list until then (see [`crate::blocklist`]).
    pub blocked_until: Option<Instant>,
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
    /// How full the engine's queue of pending transactions is (Gulf Stream back-pressure).
    pub pending: QueueLevel,
    /// Leaders that answered a forward "full" in the current slot.
    pub busy_leaders: BusyLeaders,
    pub block_events: broadcast::Sender<BlockEvent>,
    /// Transactions whose signatures this node checked already (at submission or on a
    /// forward): block production and replay skip them.
    pub verified: Arc<VerifiedTxs>,
}

/// How many checked transactions a node remembers per generation (two are kept): a few
/// seconds at 10,000 TPS, the time from a transaction's arrival to its block's replay,
/// in about 2 x 64 K digests x 32 bytes at most.
pub const VERIFIED_TXS_REMEMBERED: usize = 1 << 16;

impl Shared {
    /// `max_pending_txs` bounds the transactions held for our leader slots.
    pub fn new(identity: Pubkey, genesis: Arc<Genesis>, max_pending_txs: usize) -> Shared {
        let stakes = genesis
            .validators
            .iter()
            .map(|v| (v.identity, v.stake))
            .collect();
        let shared = Shared {
            identity,
            genesis_hash: genesis.hash(),
            genesis,
            started: Instant::now(),
            status: RwLock::new(StatusView::default()),
            peers: RwLock::new(BTreeMap::new()),
            schedules: RwLock::new(BTreeMap::new()),
            stakes,
            metrics: Arc::new(Metrics::new()),
            pending: QueueLevel::new(max_pending_txs),
            busy_leaders: BusyLeaders::default(),
            block_events: broadcast::channel(1024).0,
            verified: Arc::new(VerifiedTxs::new(VERIFIED_TXS_REMEMBERED)),
        };
        // A node starts alone: that is no news, so the state is set without a log line;
        // the first change (peers met, or lost) is logged.
        let (own, total) = shared.reachable_stake();
        shared
            .metrics
            .below_two_thirds
            .set(i64::from(Shared::under_two_thirds(own, total)));
        shared.check_reachable();
        shared
            .metrics
            .pending_transactions_capacity
            .set(i64::try_from(max_pending_txs).unwrap_or(i64::MAX));
        shared
    }

    pub fn total_stake(&self) -> u64 {
        self.stakes.values().sum()
    }

    /// The stake this node can reach now: its own plus its connected peers', and the total.
    pub fn reachable_stake(&self) -> (u64, u64) {
        let peers = self.peers.read().unwrap_or_else(PoisonError::into_inner);
        let reachable = self
            .stakes
            .iter()
            .filter(|(k, _)| **k == self.identity || peers.get(*k).is_some_and(|p| p.connected))
            .map(|(_, s)| *s)
            .sum();
        (reachable, self.total_stake())
    }

    /// Updates the reachable-stake metrics; logs once each time the node falls under 2/3
    /// of the stake (it can no longer finalize) or gets back over it.
    pub fn check_reachable(&self) {
        let (reachable, total) = self.reachable_stake();
        let ratio = if total == 0 {
            0.0
        } else {
            reachable as f64 / total as f64
        };
        self.metrics.reachable_stake_ratio.set(ratio);
        let below = Shared::under_two_thirds(reachable, total);
        let was = self.metrics.below_two_thirds.set(i64::from(below)) == 1;
        if below != was {
            if below {
                tracing::warn!(
                    reachable_percent = format!("{:.1}", ratio * 100.0),
                    "reachable stake fell below 2/3: this node cannot finalize until peers return"
                );
            } else {
                tracing::info!(
                    reachable_percent = format!("{:.1}", ratio * 100.0),
                    "reachable stake is back at 2/3 or more"
                );
            }
        }
    }

    /// Whether `reachable` of `total` stake is under 2/3.
    pub fn under_two_thirds(reachable: u64, total: u64) -> bool {
        u128::from(reachable) * 3 < u128::from(total) * 2
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

#[cfg(test)]
mod tests {
    use super::*;
    use bb_core::{GenesisValidator, Keypair};

    fn genesis(stakes: &[u64]) -> (Genesis, Vec<Pubkey>) {
        let keys: Vec<Pubkey> = (0..stakes.len())
            .map(|i| Keypair::from_seed(&[i as u8 + 1; 32]).pubkey())
            .collect();
        let g = Genesis {
            version: 1,
            network: "state-test".into(),
            creation_time_ms: 0,
            slot_ms: 400,
            ticks_per_slot: 4,
            hashes_per_tick: 8,
            slots_per_epoch: 32,
            leader_slots_per_rotation: 4,
            slash_penalty_bps: bb_core::DEFAULT_SLASH_PENALTY_BPS,
            validators: keys
                .iter()
                .zip(stakes)
                .map(|(k, s)| GenesisValidator {
                    identity: *k,
                    stake: *s,
                })
                .collect(),
            accounts: vec![],
        };
        (g, keys)
    }

    fn connect(shared: &Shared, peer: Pubkey, connected: bool) {
        shared
            .peers
            .write()
            .unwrap()
            .entry(peer)
            .or_default()
            .connected = connected;
        shared.check_reachable();
    }

    #[test]
    fn reachable_stake_tracks_connections_and_the_two_thirds_line() {
        let (g, keys) = genesis(&[1, 1, 1]);
        let shared = Shared::new(keys[0], Arc::new(g), 10);
        assert_eq!(shared.reachable_stake(), (1, 3));
        assert_eq!(shared.metrics.below_two_thirds.get(), 1, "alone: below");
        connect(&shared, keys[1], true);
        assert_eq!(shared.reachable_stake(), (2, 3));
        assert_eq!(
            shared.metrics.below_two_thirds.get(),
            0,
            "2/3 exactly is enough"
        );
        assert!((shared.metrics.reachable_stake_ratio.get() - 2.0 / 3.0).abs() < 1e-9);
        connect(&shared, keys[1], false);
        assert_eq!(shared.metrics.below_two_thirds.get(), 1);
        // An unstaked peer adds nothing.
        connect(&shared, Keypair::from_seed(&[9; 32]).pubkey(), true);
        assert_eq!(shared.reachable_stake(), (1, 3));
    }
}
