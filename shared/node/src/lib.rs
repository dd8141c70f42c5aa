//! `bb-node`: the validator service. It wires the sans-I/O machines to the world:
//!
//! ```text
//!            UDP shreds                     libp2p (gossipsub, request-response)
//!   turbine ◀──────────▶ peers ◀──────────▶ gossip: votes, contact info, repair, Gulf Stream
//!      │ complete blocks                         │ votes, repaired blocks, txs
//!      ▼                                         ▼
//!   engine thread (bb_engine::Validator + bb_ledger::Ledger) ◀── clock: end of every slot
//!      │ outputs: persist tower → send vote; our block → Turbine; repair; flush roots
//!      ▼
//!   status view ──▶ gRPC (bb.v1.Node, health, reflection) and Prometheus /metrics
//! ```
//!
//! One engine thread owns all consensus state; every other task talks to it through its
//! queue. The tower is written to the ledger before any vote leaves the node.
//! This crate holds no protocol rules of its own: those live in `bb-engine` and below.

mod blocklist;
mod engine;
pub mod fault;
mod gossip;
mod gulfstream;
pub mod metrics;
mod pending;
mod rpc;
mod slashing;
mod snapshots;
mod state;
mod turbine;
pub mod wire;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use bb_core::{Genesis, Keypair};
use bb_net::{Multiaddr, NetConfig, Network};
use tokio::sync::mpsc;
use tracing::{info, warn};

pub use bb_ledger::DEFAULT_CACHE_BYTES as DEFAULT_LEDGER_CACHE_BYTES;
pub use blocklist::{BLOCKLIST_FILE, Blocked, Blocklist};
pub use fault::{Fault, Faults};
pub use pending::DEFAULT_MAX_PENDING_TXS;
pub use snapshots::SnapshotPolicy;

use crate::engine::{Engine, EngineMsg};
use crate::state::{Shared, now_ms};

/// Shreds allowed per source address per second, as a multiple of the message rate
/// limit: a leader at 10,000 transfers a second sends a few thousand shreds a second.
pub const SHRED_RATE_FACTOR: u32 = 50;

/// How a validator runs.
#[derive(Debug)]
pub struct NodeConfig {
    pub identity: Keypair,
    pub genesis: Genesis,
    pub ledger_dir: PathBuf,
    /// libp2p listen address, e.g. `/ip4/127.0.0.1/tcp/8900`.
    pub listen: Multiaddr,
    /// UDP address for Turbine shreds.
    pub shred_addr: SocketAddr,
    pub rpc_addr: SocketAddr,
    pub metrics_addr: SocketAddr,
    pub bootstrap: Vec<Multiaddr>,
    pub faults: Vec<Fault>,
    pub fanout: usize,
    pub mdns: bool,
    pub snapshots: SnapshotPolicy,
    /// Messages per second accepted from one peer per kind (shreds: 50 times this per
    /// source address).
    pub rate_limit: u32,
    /// Most transactions held for this node's leader slots; forwards beyond it are
    /// refused ("leader busy") and counted, never silently dropped.
    pub max_pending_txs: usize,
    /// The ledger's page cache, in bytes (`bb_ledger::DEFAULT_CACHE_BYTES` by default).
    pub ledger_cache_bytes: usize,
}

/// Runs a validator until `shutdown` completes, then stops every task cleanly.
pub async fn run(config: NodeConfig, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    let identity = config.identity.clone();
    let genesis = Arc::new(config.genesis.clone());
    let faults = Faults::from_list(&config.faults);
    if faults.any() {
        warn!(
            ?faults,
            "FAULT INJECTION IS ON: this node misbehaves on purpose (test use only)"
        );
    }
    let ledger = bb_ledger::Ledger::open_with_cache(&config.ledger_dir, config.ledger_cache_bytes)
        .with_context(|| format!("cannot open the ledger in {}", config.ledger_dir.display()))?;
    let ledger = Arc::new(ledger);
    let genesis_json = pin_genesis(&config.ledger_dir, &genesis)?;
    let shared = Arc::new(Shared::new(
        identity.pubkey(),
        genesis.clone(),
        config.max_pending_txs.max(1),
    ));

    let (shred_socket, recv_buffer, send_buffer) = turbine::bind_shred_socket(config.shred_addr)
        .with_context(|| format!("cannot listen for shreds on udp {}", config.shred_addr))?;
    // Linux reports twice the size granted: below the size asked for, the kernel
    // granted less than half of it.
    if recv_buffer.min(send_buffer) < turbine::SHRED_SOCKET_BUFFER {
        warn!(
            recv_buffer,
            send_buffer,
            wanted = turbine::SHRED_SOCKET_BUFFER,
            "the kernel gave the shred socket small buffers: blocks will lose shreds under load (raise net.core.rmem_max and wmem_max)"
        );
    }
    let rpc_listener = tokio::net::TcpListener::bind(config.rpc_addr)
        .await
        .with_context(|| format!("cannot listen for gRPC on {}", config.rpc_addr))?;
    let metrics_listener = metrics::bind(config.metrics_addr)
        .await
        .with_context(|| format!("cannot listen for metrics on {}", config.metrics_addr))?;

    let staked = genesis
        .validators
        .iter()
        .map(|v| v.identity)
        .filter(|k| *k != identity.pubkey())
        .collect();
    let (net, net_events) = Network::spawn(NetConfig {
        seed: identity.secret_seed(),
        listen: config.listen.clone(),
        bootstrap: config.bootstrap.clone(),
        genesis_hash: shared.genesis_hash,
        mdns: config.mdns,
        staked,
        rate_limit: config.rate_limit,
        gossip_author: gossip::gossip_author,
    })
    .await
    .with_context(|| format!("cannot start libp2p on {}", config.listen))?;
    let gossip_addr = net
        .listen_addrs()
        .await
        .ok()
        .and_then(|a| a.first().cloned())
        .map(|a| a.to_string())
        .unwrap_or_else(|| config.listen.to_string());

    // The engine: replays the ledger, then runs on its own thread.
    let (engine_tx, engine_rx) = mpsc::channel::<EngineMsg>(8192);
    let (dispatch_tx, dispatch_rx) = mpsc::unbounded_channel();
    let engine = {
        let (identity, shared) = (identity.clone(), shared.clone());
        let ledger = ledger.clone();
        let policy = config.snapshots;
        let faults = faults.clone();
        tokio::task::spawn_blocking(move || {
            Engine::start(identity, ledger, shared, dispatch_tx, policy, &faults)
        })
        .await
        .context("the engine did not start")??
    };
    let engine_thread = std::thread::Builder::new()
        .name("bb-engine".into())
        .spawn(move || engine.run(engine_rx))
        .context("cannot start the engine thread")?;

    let turbine = Arc::new(turbine::Turbine {
        socket: Arc::new(shred_socket),
        shared: shared.clone(),
        identity: identity.clone(),
        fanout: config.fanout.max(1),
        faults: faults.clone(),
        engine: engine_tx.clone(),
        shred_rate_limit: config.rate_limit.saturating_mul(SHRED_RATE_FACTOR),
        view: std::sync::Mutex::new(None),
    });

    let mut tasks = tokio::task::JoinSet::new();
    tasks.spawn(gossip::handle_events(
        net_events,
        net.clone(),
        shared.clone(),
        engine_tx.clone(),
    ));
    tasks.spawn(gossip::dispatch(
        dispatch_rx,
        net.clone(),
        turbine.clone(),
        shared.clone(),
        engine_tx.clone(),
        faults.clone(),
    ));
    tasks.spawn(gossip::advertise(
        net.clone(),
        shared.clone(),
        identity.clone(),
        gossip_addr.clone(),
        config.shred_addr.to_string(),
        config.rpc_addr.to_string(),
    ));
    tasks.spawn(turbine.clone().receive());
    tasks.spawn(blocklist::watch(
        config.ledger_dir.clone(),
        net.clone(),
        shared.clone(),
    ));
    tasks.spawn(fault::misbehave(
        faults.clone(),
        net.clone(),
        shared.clone(),
        identity.clone(),
        turbine.socket.clone(),
        wire::ContactInfo {
            identity: identity.pubkey(),
            genesis_hash: shared.genesis_hash,
            gossip_addr: gossip_addr.clone(),
            shred_addr: config.shred_addr.to_string(),
            rpc_addr: config.rpc_addr.to_string(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            latest_slot: 0,
            wallclock_ms: 0,
        },
    ));
    tasks.spawn(clock(shared.clone(), engine_tx.clone()));
    tasks.spawn(metrics::serve(metrics_listener, shared.metrics.clone()));

    let (health, health_service) = bb_rpc::health_service();
    health
        .set_service_status(bb_rpc::NODE_SERVICE_NAME, bb_rpc::ServingStatus::Serving)
        .await;
    let service = rpc::NodeService {
        shared: shared.clone(),
        engine: engine_tx.clone(),
        net: net.clone(),
        ledger: ledger.clone(),
        snapshots_dir: snapshots_dir(&config.ledger_dir),
        genesis_json: Arc::new(genesis_json),
        faults: faults.clone(),
    };
    let (stop_rpc, rpc_stopped) = tokio::sync::oneshot::channel::<()>();
    let rpc_task = tokio::spawn(bb_rpc::serve(
        rpc_listener,
        service,
        health_service,
        async {
            let _ = rpc_stopped.await;
        },
    ));

    info!(
        identity = %identity.pubkey(),
        genesis = %shared.genesis_hash,
        libp2p = %gossip_addr,
        shreds = %config.shred_addr,
        rpc = %config.rpc_addr,
        metrics = %config.metrics_addr,
        "validator running"
    );
    shutdown.await;
    info!("shutting down");
    let _ = stop_rpc.send(());
    let rpc_abort = rpc_task.abort_handle();
    if tokio::time::timeout(Duration::from_secs(3), rpc_task)
        .await
        .is_err()
    {
        // Clients holding connections open must not keep the node alive.
        rpc_abort.abort();
    }
    tasks.abort_all();
    while tasks.join_next().await.is_some() {}
    let _ = tokio::time::timeout(Duration::from_secs(3), net.shutdown()).await;
    let _ = engine_tx.send(EngineMsg::Shutdown).await;
    drop(engine_tx);
    drop(turbine);
    // The engine thread ends once every sender is gone; it flushes what it holds.
    let _ = tokio::task::spawn_blocking(move || engine_thread.join()).await;
    info!("stopped");
    Ok(())
}

/// Where a ledger directory keeps its state snapshots.
pub fn snapshots_dir(ledger_dir: &std::path::Path) -> PathBuf {
    ledger_dir.join("snapshots")
}

/// The genesis file every ledger directory keeps beside its database.
pub const LEDGER_GENESIS_FILE: &str = "genesis.json";

/// Ties the ledger directory to this network: writes `genesis.json` into it the first
/// time, and refuses to run on a ledger made for another genesis. Returns the JSON.
fn pin_genesis(ledger_dir: &std::path::Path, genesis: &Genesis) -> anyhow::Result<Vec<u8>> {
    let path = ledger_dir.join(LEDGER_GENESIS_FILE);
    match std::fs::read(&path) {
        Ok(bytes) => {
            let stored = Genesis::from_json(&bytes)
                .with_context(|| format!("{} does not parse", path.display()))?;
            if stored.hash() != genesis.hash() {
                anyhow::bail!(
                    "the ledger in {} belongs to another network (its genesis hash is {}, this \
                     genesis is {}); use an empty ledger directory",
                    ledger_dir.display(),
                    stored.hash(),
                    genesis.hash()
                );
            }
            Ok(bytes)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let json = genesis.to_json_pretty().into_bytes();
            let tmp = ledger_dir.join(format!("{LEDGER_GENESIS_FILE}.tmp"));
            std::fs::write(&tmp, &json)
                .and_then(|()| std::fs::File::open(&tmp)?.sync_all())
                .and_then(|()| std::fs::rename(&tmp, &path))
                .with_context(|| format!("cannot write {}", path.display()))?;
            Ok(json)
        }
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// Most slot ends sent at once after the clock fell behind (a process that was stopped
/// for longer does not replay every slot it slept through).
const MAX_SLOT_ENDS_CAUGHT_UP: u64 = 32;

/// Tells the engine each time a slot ends, by the genesis clock.
async fn clock(shared: Arc<Shared>, engine: mpsc::Sender<EngineMsg>) {
    let g = shared.genesis.clone();
    let slot_ms = g.slot_ms.max(1);
    let mut due: Option<u64> = None;
    loop {
        let now = now_ms();
        let current = now.saturating_sub(g.creation_time_ms) / slot_ms;
        let first = *due.get_or_insert(current);
        for slot in slot_ends_due(first, current) {
            if engine.send(EngineMsg::SlotEnd(slot)).await.is_err() {
                return;
            }
        }
        if current > first {
            shared.metrics.slot.set(current as i64);
            due = Some(current);
            continue;
        }
        let next_end = g.creation_time_ms + (first + 1) * slot_ms;
        tokio::time::sleep(Duration::from_millis(next_end.saturating_sub(now).max(1))).await;
    }
}

/// The slots whose end is due: from `first` (the oldest not yet sent) up to the slot
/// before `current` (the one in progress), every one of them. A clock that wakes late, or
/// waits on a full engine inbox, must not skip a slot end: the slot's leader builds its
/// block there, and a skipped end is a block never built. At most
/// [`MAX_SLOT_ENDS_CAUGHT_UP`], the newest.
fn slot_ends_due(first: u64, current: u64) -> std::ops::Range<u64> {
    first.max(current.saturating_sub(MAX_SLOT_ENDS_CAUGHT_UP))..current.max(first)
}

#[cfg(test)]
mod clock_tests {
    use super::*;

    #[test]
    fn every_slot_end_is_due_once_even_after_a_late_wake() {
        // On time: the one slot that just ended.
        assert_eq!(slot_ends_due(301, 302).collect::<Vec<_>>(), vec![301]);
        // Woke (or got through to the engine) two slots late: both ends, oldest first.
        assert_eq!(
            slot_ends_due(301, 304).collect::<Vec<_>>(),
            vec![301, 302, 303]
        );
        // Nothing ended yet.
        assert_eq!(slot_ends_due(301, 301).count(), 0);
        // Stopped for a long time: only the newest ends.
        let caught_up: Vec<u64> = slot_ends_due(10, 1000).collect();
        assert_eq!(caught_up.len() as u64, MAX_SLOT_ENDS_CAUGHT_UP);
        assert_eq!(caught_up.last(), Some(&999));
    }
}
