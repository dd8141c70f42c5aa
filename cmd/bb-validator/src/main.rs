//! `bb-validator`: one validator node of a bb network.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use bb_cli::EXIT_OK;
use bb_core::Genesis;
use bb_net::Multiaddr;
use bb_node::{Fault, NodeConfig};
use clap::Parser;

#[derive(Parser, Debug)]
#[command(
    name = "bb-validator",
    version,
    about = "Run one bb validator",
    after_help = "Example:\n  bb-validator --identity validator.json --genesis genesis.json --ledger ledger \\\n    --listen /ip4/127.0.0.1/tcp/8900 --shred-addr 127.0.0.1:8901 --rpc-addr 127.0.0.1:8899 \\\n    --metrics-addr 127.0.0.1:9100 --bootstrap /ip4/127.0.0.1/tcp/8910/p2p/12D3Koo..."
)]
struct Args {
    /// The validator's key file (from `bb-keygen new`).
    #[arg(long, value_name = "KEY")]
    identity: PathBuf,
    /// The network's genesis file.
    #[arg(long, value_name = "FILE")]
    genesis: PathBuf,
    /// The ledger directory (created if missing).
    #[arg(long, value_name = "DIR")]
    ledger: PathBuf,
    /// libp2p listen address.
    #[arg(
        long,
        value_name = "MULTIADDR",
        default_value = "/ip4/127.0.0.1/tcp/8900"
    )]
    listen: Multiaddr,
    /// UDP address for Turbine shreds.
    #[arg(
        long = "shred-addr",
        value_name = "ADDR",
        default_value = "127.0.0.1:8901"
    )]
    shred_addr: SocketAddr,
    /// gRPC address.
    #[arg(
        long = "rpc-addr",
        value_name = "ADDR",
        default_value = "127.0.0.1:8899"
    )]
    rpc_addr: SocketAddr,
    /// Prometheus metrics address (`/metrics`).
    #[arg(
        long = "metrics-addr",
        value_name = "ADDR",
        default_value = "127.0.0.1:9100"
    )]
    metrics_addr: SocketAddr,
    /// Peers to dial at start (repeatable).
    #[arg(long, value_name = "MULTIADDR")]
    bootstrap: Vec<Multiaddr>,
    /// Turbine fanout: children per node in the retransmit tree.
    #[arg(long = "turbine-fanout", default_value_t = 32)]
    turbine_fanout: usize,
    /// Discover peers by mDNS on the local link (multicasts beyond the machine).
    #[arg(long)]
    mdns: bool,
    /// Make a state snapshot every N rooted slots (0: only when a client asks).
    #[arg(long = "snapshot-interval", value_name = "N", default_value_t = 100)]
    snapshot_interval: u64,
    /// How many snapshots to keep in LEDGER/snapshots (the newest ones).
    #[arg(long = "snapshots-kept", value_name = "K", default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..))]
    snapshots_kept: u64,
    /// Messages per second accepted from one peer, per kind (each gossip topic, requests);
    /// shreds: 50 times this per source address. A peer over it, or sending invalid or
    /// malformed messages, is charged and then banned for a period that doubles per ban.
    #[arg(long = "rate-limit", value_name = "N", default_value_t = bb_net::DEFAULT_RATE_LIMIT, value_parser = clap::value_parser!(u32).range(1..))]
    rate_limit: u32,
    /// Most transactions held for this node's leader slots (Gulf Stream). Forwards beyond
    /// it are refused and the submitting client told "leader busy: queue full, retry
    /// later"; refusals and transactions whose blockhash expired while waiting are counted
    /// in `bb_transactions_dropped_total{reason=...}`, the fill level is
    /// `bb_pending_transactions`.
    #[arg(long = "max-pending-txs", value_name = "N", default_value_t = bb_node::DEFAULT_MAX_PENDING_TXS, value_parser = parse_max_pending)]
    max_pending_txs: usize,
    /// The ledger's page cache in MiB: recently read and written pages of the redb file,
    /// most of a quiet validator's memory once the ledger outgrows it.
    #[arg(long = "ledger-cache-mb", value_name = "MIB", default_value_t = (bb_node::DEFAULT_LEDGER_CACHE_BYTES >> 20) as u64, value_parser = clap::value_parser!(u64).range(1..=1 << 20))]
    ledger_cache_mb: u64,
    /// Test only: inject a fault, drop-shreds:P, delay-ms:D, serve-tampered, double-vote,
    /// equivocate, withhold-shreds, garbage or flood:RATE (repeatable).
    #[arg(long, value_name = "KIND[:ARG]", value_parser = parse_fault)]
    fault: Vec<Fault>,
    /// Log format.
    #[arg(long = "log-format", default_value = "text", value_parser = ["text", "json"])]
    log_format: String,
}

fn parse_max_pending(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        Ok(_) => Err("must be at least 1".to_string()),
        Err(e) => Err(format!("not a count of transactions: {e}")),
    }
}

fn parse_fault(s: &str) -> Result<Fault, String> {
    s.parse()
}

fn main() -> ExitCode {
    bb_cli::run(|args: Args| {
        init_logging(&args.log_format);
        let identity = bb_cli::keyfile::read_keypair(&args.identity)?;
        let genesis_bytes = std::fs::read(&args.genesis)
            .with_context(|| format!("cannot read {}", args.genesis.display()))?;
        let genesis = Genesis::from_json(&genesis_bytes)
            .with_context(|| format!("{}", args.genesis.display()))?;
        let config = NodeConfig {
            identity,
            genesis,
            ledger_dir: args.ledger,
            listen: args.listen,
            shred_addr: args.shred_addr,
            rpc_addr: args.rpc_addr,
            metrics_addr: args.metrics_addr,
            bootstrap: args.bootstrap,
            faults: args.fault,
            fanout: args.turbine_fanout,
            mdns: args.mdns,
            snapshots: bb_node::SnapshotPolicy {
                interval: args.snapshot_interval,
                keep: args.snapshots_kept as usize,
            },
            rate_limit: args.rate_limit,
            max_pending_txs: args.max_pending_txs,
            ledger_cache_bytes: usize::try_from(args.ledger_cache_mb << 20).unwrap_or(usize::MAX),
        };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            // Blocking work (ledger reads for RPC, snapshots) is short and rare: a few
            // threads, not tokio's default of up to 512, bound what a node can cost.
            .max_blocking_threads(8)
            .enable_all()
            .build()
            .context("cannot start the async runtime")?;
        runtime.block_on(bb_node::run(config, shutdown_signal()))?;
        Ok(EXIT_OK)
    })
}

/// Completes on SIGTERM or Ctrl-C.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {},
                    _ = tokio::signal::ctrl_c() => {},
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

fn init_logging(format: &str) {
    // gossipsub logs every message a full send queue refuses, with the whole message, at
    // WARN; the node logs one line of its own when it cuts such a link (bb-net).
    let filter = tracing_subscriber::EnvFilter::try_from_env("BB_LOG").unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new("info,libp2p=warn,libp2p_gossipsub=error")
    });
    use std::io::IsTerminal;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    if format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}
