//! Prometheus metrics, served as text on `--metrics-addr` at `/metrics`.

use std::net::SocketAddr;
use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// Label for per-kind message counters.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabel {
    pub kind: String,
}

/// Label for counters split by why something happened.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    pub reason: String,
}

/// Why the pending queue did not keep a transaction (`transactions_dropped`).
pub const DROPPED_QUEUE_FULL: &str = "queue_full";
pub const DROPPED_EXPIRED: &str = "expired";
/// Why `SubmitTransactions` answered `accepted = false` (`transactions_rejected`).
pub const REJECTED_INVALID: &str = "invalid";
pub const REJECTED_LEADER_BUSY: &str = "leader_busy";
pub const REJECTED_NO_LEADER: &str = "no_leader";

/// Every metric the node exports.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    pub peers_connected: Gauge,
    /// Share of the stake this node reaches (its own plus its connected peers'), 0..=1.
    pub reachable_stake_ratio: Gauge<f64, std::sync::atomic::AtomicU64>,
    /// 1 while the reachable stake is under 2/3: the node cannot finalize anything.
    pub below_two_thirds: Gauge,
    pub slot: Gauge,
    pub processed_slot: Gauge,
    pub confirmed_slot: Gauge,
    pub finalized_slot: Gauge,
    pub root_slot: Gauge,
    pub messages_sent: Family<KindLabel, Counter>,
    pub messages_received: Family<KindLabel, Counter>,
    pub block_propagation_seconds: Histogram,
    pub vote_latency_seconds: Histogram,
    pub confirmation_seconds: Histogram,
    pub votes_cast: Counter,
    pub blocks_produced: Counter,
    pub blocks_replayed: Counter,
    pub blocks_dead: Counter,
    pub duplicate_slots: Counter,
    pub versions_replaced: Counter,
    pub roots: Counter,
    pub shreds_received: Counter,
    pub shreds_recovered: Counter,
    pub shreds_invalid: Counter,
    pub repair_requests: Counter,
    pub transactions_processed: Counter,
    /// Transaction signatures skipped because this node had checked the same bytes
    /// already (at submission or on a forward), and signatures it checked.
    pub signatures_skipped: Counter,
    pub signatures_checked: Counter,
    /// Transactions held for this node's leader slots now, and the most it holds.
    pub pending_transactions: Gauge,
    pub pending_transactions_capacity: Gauge,
    /// Transactions the pending queue did not keep, by reason: `queue_full` (refused when
    /// offered; the forwarder was told) or `expired` (their blockhash aged out while they
    /// waited).
    pub transactions_dropped: Family<ReasonLabel, Counter>,
    /// Transactions `SubmitTransactions` on this node answered as not accepted, by reason:
    /// `invalid` (failed screening), `leader_busy`, `no_leader`.
    pub transactions_rejected: Family<ReasonLabel, Counter>,
    pub double_votes_seen: Counter,
    pub slashing_evidence: Counter,
    /// Bans imposed on peers, by reason.
    pub peer_bans: Family<KindLabel, Counter>,
    /// Shreds dropped: over a source address's rate limit, or from a banned address.
    pub shreds_rate_limited: Counter,
    pub slashing_penalties: Counter,
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("bb");
        let m = Metrics {
            peers_connected: Gauge::default(),
            reachable_stake_ratio: Gauge::default(),
            below_two_thirds: Gauge::default(),
            slot: Gauge::default(),
            processed_slot: Gauge::default(),
            confirmed_slot: Gauge::default(),
            finalized_slot: Gauge::default(),
            root_slot: Gauge::default(),
            messages_sent: Family::default(),
            messages_received: Family::default(),
            block_propagation_seconds: Histogram::new([
                0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.4, 0.8, 1.6, 3.2,
            ]),
            vote_latency_seconds: Histogram::new([
                0.05, 0.1, 0.2, 0.4, 0.42, 0.45, 0.5, 0.6, 0.8, 1.2, 1.6, 3.2, 6.4,
            ]),
            confirmation_seconds: Histogram::new([
                0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 6.4,
            ]),
            votes_cast: Counter::default(),
            blocks_produced: Counter::default(),
            blocks_replayed: Counter::default(),
            blocks_dead: Counter::default(),
            duplicate_slots: Counter::default(),
            versions_replaced: Counter::default(),
            roots: Counter::default(),
            shreds_received: Counter::default(),
            shreds_recovered: Counter::default(),
            shreds_invalid: Counter::default(),
            repair_requests: Counter::default(),
            transactions_processed: Counter::default(),
            signatures_skipped: Counter::default(),
            signatures_checked: Counter::default(),
            pending_transactions: Gauge::default(),
            pending_transactions_capacity: Gauge::default(),
            transactions_dropped: Family::default(),
            transactions_rejected: Family::default(),
            double_votes_seen: Counter::default(),
            slashing_evidence: Counter::default(),
            peer_bans: Family::default(),
            shreds_rate_limited: Counter::default(),
            slashing_penalties: Counter::default(),
            registry: Registry::default(),
        };
        registry.register(
            "peers_connected",
            "Validators connected over libp2p",
            m.peers_connected.clone(),
        );
        registry.register(
            "reachable_stake_ratio",
            "Share of the stake reachable now: this node's own plus its connected peers'",
            m.reachable_stake_ratio.clone(),
        );
        registry.register(
            "below_two_thirds",
            "1 while the reachable stake is under 2/3 (no finalization possible)",
            m.below_two_thirds.clone(),
        );
        registry.register("slot", "Current slot by the genesis clock", m.slot.clone());
        registry.register(
            "processed_slot",
            "Newest replayed slot on the best fork",
            m.processed_slot.clone(),
        );
        registry.register(
            "confirmed_slot",
            "Newest slot voted by 2/3 of stake",
            m.confirmed_slot.clone(),
        );
        registry.register(
            "finalized_slot",
            "Newest slot rooted by 2/3 of stake",
            m.finalized_slot.clone(),
        );
        registry.register("root_slot", "This node's root", m.root_slot.clone());
        registry.register(
            "messages_sent",
            "Messages sent by kind",
            m.messages_sent.clone(),
        );
        registry.register(
            "messages_received",
            "Messages received by kind",
            m.messages_received.clone(),
        );
        registry.register(
            "block_propagation_seconds",
            "From the end of a block's slot until this node had the whole block",
            m.block_propagation_seconds.clone(),
        );
        registry.register(
            "confirmation_seconds",
            "From the end of a block's slot until this node saw it confirmed by 2/3 of stake",
            m.confirmation_seconds.clone(),
        );
        registry.register(
            "vote_latency_seconds",
            "From the start of a slot until this node voted on it",
            m.vote_latency_seconds.clone(),
        );
        registry.register(
            "votes_cast",
            "Votes this node cast (consensus rounds)",
            m.votes_cast.clone(),
        );
        registry.register(
            "blocks_produced",
            "Blocks this node produced as leader",
            m.blocks_produced.clone(),
        );
        registry.register(
            "blocks_replayed",
            "Blocks replayed",
            m.blocks_replayed.clone(),
        );
        registry.register(
            "blocks_dead",
            "Blocks that failed replay",
            m.blocks_dead.clone(),
        );
        registry.register(
            "duplicate_slots",
            "Slots whose leader signed more than one version, as this node learned",
            m.duplicate_slots.clone(),
        );
        registry.register(
            "versions_replaced",
            "Times this node dropped its version of a duplicate slot for the one the cluster confirmed",
            m.versions_replaced.clone(),
        );
        registry.register("roots", "Times this node's root moved", m.roots.clone());
        registry.register(
            "shreds_received",
            "Valid shreds received",
            m.shreds_received.clone(),
        );
        registry.register(
            "shreds_recovered",
            "Shreds rebuilt by erasure decoding",
            m.shreds_recovered.clone(),
        );
        registry.register("shreds_invalid", "Shreds refused", m.shreds_invalid.clone());
        registry.register(
            "repair_requests",
            "Repair requests sent",
            m.repair_requests.clone(),
        );
        registry.register(
            "transactions_processed",
            "Transactions in replayed blocks",
            m.transactions_processed.clone(),
        );
        registry.register(
            "signatures_skipped",
            "Transaction signatures not checked again: the same bytes passed here before",
            m.signatures_skipped.clone(),
        );
        registry.register(
            "signatures_checked",
            "Transaction signatures checked (submissions, forwards, blocks built and replayed)",
            m.signatures_checked.clone(),
        );
        registry.register(
            "pending_transactions",
            "Transactions held for this node's leader slots",
            m.pending_transactions.clone(),
        );
        registry.register(
            "pending_transactions_capacity",
            "Most transactions held for this node's leader slots (--max-pending-txs)",
            m.pending_transactions_capacity.clone(),
        );
        registry.register(
            "transactions_dropped",
            "Transactions the pending queue did not keep: queue_full (refused, the forwarder was told), expired (blockhash aged out while waiting)",
            m.transactions_dropped.clone(),
        );
        registry.register(
            "transactions_rejected",
            "Transactions SubmitTransactions answered as not accepted: invalid, leader_busy, no_leader",
            m.transactions_rejected.clone(),
        );
        // Every reason from the start, so a dashboard sees zeros rather than nothing.
        for reason in [DROPPED_QUEUE_FULL, DROPPED_EXPIRED] {
            m.dropped(reason, 0);
        }
        for reason in [REJECTED_INVALID, REJECTED_LEADER_BUSY, REJECTED_NO_LEADER] {
            m.rejected(reason, 0);
        }
        registry.register(
            "double_votes_seen",
            "Double votes detected",
            m.double_votes_seen.clone(),
        );
        registry.register(
            "slashing_evidence",
            "Slashing offenses this node learned of (detected or gossiped), each once",
            m.slashing_evidence.clone(),
        );
        registry.register(
            "slashing_penalties",
            "Stake cuts applied by rooted banks at epoch boundaries",
            m.slashing_penalties.clone(),
        );
        registry.register(
            "peer_bans",
            "Peers banned (rate limit, invalid signatures, malformed or oversized messages), by reason",
            m.peer_bans.clone(),
        );
        registry.register(
            "shreds_rate_limited",
            "Shreds dropped over a source address's rate limit or from a banned address",
            m.shreds_rate_limited.clone(),
        );
        Metrics { registry, ..m }
    }

    pub fn sent(&self, kind: &str) {
        self.messages_sent
            .get_or_create(&KindLabel { kind: kind.into() })
            .inc();
    }

    pub fn received(&self, kind: &str) {
        self.messages_received
            .get_or_create(&KindLabel { kind: kind.into() })
            .inc();
    }

    /// Counts `n` transactions the pending queue did not keep, for `reason`.
    pub fn dropped(&self, reason: &str, n: u64) {
        self.transactions_dropped
            .get_or_create(&ReasonLabel {
                reason: reason.into(),
            })
            .inc_by(n);
    }

    /// Counts `n` transactions `SubmitTransactions` did not accept, for `reason`.
    pub fn rejected(&self, reason: &str, n: u64) {
        self.transactions_rejected
            .get_or_create(&ReasonLabel {
                reason: reason.into(),
            })
            .inc_by(n);
    }

    /// The text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

/// Serves `/metrics` over plain HTTP/1.1 until the listener's task is dropped.
pub async fn serve(listener: TcpListener, metrics: Arc<Metrics>) {
    loop {
        let Ok((mut stream, _)) = listener.accept().await else {
            continue;
        };
        let metrics = metrics.clone();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            let mut read = 0;
            // Read the request head (bounded); the body, if any, is ignored.
            while read < buf.len() {
                match tokio::time::timeout(
                    std::time::Duration::from_secs(5),
                    stream.read(&mut buf[read..]),
                )
                .await
                {
                    Ok(Ok(0)) | Err(_) | Ok(Err(_)) => break,
                    Ok(Ok(n)) => {
                        read += n;
                        if buf[..read].windows(4).any(|w| w == b"\r\n\r\n") {
                            break;
                        }
                    }
                }
            }
            let head = String::from_utf8_lossy(&buf[..read]);
            let path = head.split_whitespace().nth(1).unwrap_or("");
            let (status, body, kind) = if path == "/metrics" || path.starts_with("/metrics?") {
                (
                    "200 OK",
                    metrics.render(),
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                )
            } else {
                ("404 Not Found", "try /metrics\n".to_string(), "text/plain")
            };
            let response = format!(
                "HTTP/1.1 {status}\r\ncontent-type: {kind}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(response.as_bytes()).await;
        });
    }
}

/// Binds the metrics listener.
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}
