//! `bb-sync`: brings a new or lagging validator's ledger up to date from a peer, trusting
//! nothing it cannot check itself. See `sync.rs` for the steps all three modes share.

mod chain;
mod proof;
mod stage;
mod sync;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use bb_cli::target::{NodeArgs, Target};
use bb_cli::{EXIT_OK, Output};
use bb_core::Genesis;
use clap::{Parser, Subcommand};

use crate::sync::{Job, Mode};

#[derive(Parser, Debug)]
#[command(
    name = "bb-sync",
    version,
    about = "Bring a new or lagging validator's ledger up to date from a peer: full, snapshot or warp sync",
    after_help = "Examples:\n  bb-sync warp --from node0 --ledger ./.bb-localnet/node-3/ledger\n  bb-sync snapshot --from http://127.0.0.1:8899 --ledger ledger --genesis genesis.json\n  bb-sync full --from node1 --ledger /tmp/ledger --limit-rate 2M --json\n\nEvery mode checks what the peer sends: chained, leader-signed headers, bodies that match\nthem, PoH and replay to the same bank hashes, and a finalized bank hash proven by signed\nvotes of >= 2/3 of the stake. The ledger directory is replaced only when all of it holds\n(its tower is kept); an interrupted sync resumes without downloading again."
)]
struct Cli {
    #[command(subcommand)]
    mode: ModeCmd,
}

#[derive(Subcommand, Debug)]
enum ModeCmd {
    /// Every block from genesis: headers checked first, then bodies, then replay.
    Full(Args),
    /// The peer's newest snapshot, then the blocks since.
    Snapshot(Args),
    /// A snapshot the peer makes of its latest root now, plus the last 1000 blocks: the
    /// quickest way to a node that can vote.
    Warp(Args),
}

#[derive(clap::Args, Debug)]
struct Args {
    /// The peer: a gRPC URL (http://HOST:PORT), or a localnet node such as `node0`.
    #[arg(long, value_name = "PEER")]
    from: String,
    /// The ledger directory to bring up to date (created if missing).
    #[arg(long, value_name = "DIR")]
    ledger: PathBuf,
    /// The localnet `nodeI` refers to [default: ./.bb-localnet].
    #[arg(long, value_name = "DIR")]
    localnet: Option<PathBuf>,
    /// The network's genesis file [default: the localnet's, else the peer's after
    /// checking --expected-genesis-hash if given].
    #[arg(long, value_name = "FILE")]
    genesis: Option<PathBuf>,
    /// Refuse a peer whose genesis does not hash to this (base58).
    #[arg(long, value_name = "HASH")]
    expected_genesis_hash: Option<String>,
    /// Cap the download rate, in bytes per second (suffixes K, M, G: 512K, 2M).
    #[arg(long, value_name = "RATE", value_parser = parse_rate)]
    limit_rate: Option<u64>,
    /// Replace an existing ledger in DIR without asking (its tower is kept).
    #[arg(long)]
    yes: bool,
    /// How long to wait for the peer to connect and to start each answer, in ms.
    #[arg(long, value_name = "MS", default_value_t = 10_000)]
    timeout_ms: u64,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

fn parse_rate(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let (digits, mult) = match t.chars().last().map(|c| c.to_ascii_uppercase()) {
        Some('K') => (&t[..t.len() - 1], 1u64 << 10),
        Some('M') => (&t[..t.len() - 1], 1 << 20),
        Some('G') => (&t[..t.len() - 1], 1 << 30),
        _ => (t, 1),
    };
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("'{s}' is not a rate: use bytes per second like 500K or 2M"))?;
    match n.checked_mul(mult) {
        Some(0) | None => Err(format!("'{s}' is not a usable rate")),
        Some(v) => Ok(v),
    }
}

fn main() -> ExitCode {
    bb_cli::run(|cli: Cli| {
        let (mode, args) = match cli.mode {
            ModeCmd::Full(a) => (Mode::Full, a),
            ModeCmd::Snapshot(a) => (Mode::Snapshot, a),
            ModeCmd::Warp(a) => (Mode::Warp, a),
        };
        let out = Output::new(args.json);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .context("cannot start the async runtime")?;
        let report = runtime.block_on(async {
            let job = prepare(mode, &args, out).await?;
            sync::run(job).await
        })?;
        out.emit(&report, || {
            format!(
                "{} sync done: {} is rooted at slot {} (bank hash {}), proven by {} voters with {:.0} % of the stake\n\
                 blocks: {} downloaded, {} reused, {} replayed; {:.1} MiB downloaded{}; tower {}; {:.1} s",
                report.mode,
                report.ledger.display(),
                report.root,
                report.bank_hash,
                report.proof_voters,
                report.proof_stake_share * 100.0,
                report.blocks_downloaded,
                report.blocks_reused,
                report.blocks_replayed,
                report.bytes_downloaded as f64 / (1024.0 * 1024.0),
                if report.bytes_reused > 0 {
                    format!(" ({:.1} MiB reused)", report.bytes_reused as f64 / (1024.0 * 1024.0))
                } else {
                    String::new()
                },
                if report.tower_kept { "kept" } else { "new" },
                report.elapsed_ms as f64 / 1000.0
            )
        });
        Ok(EXIT_OK)
    })
}

/// Resolves the peer and the genesis, and checks the target directory can be replaced.
async fn prepare(mode: Mode, args: &Args, out: Output) -> anyhow::Result<Job> {
    let node = args
        .from
        .strip_prefix("node")
        .and_then(|i| i.parse::<usize>().ok());
    let target = Target::resolve(&NodeArgs {
        rpc: node.is_none().then(|| args.from.clone()),
        localnet: args.localnet.clone(),
        node,
        genesis: args.genesis.clone(),
        timeout_ms: args.timeout_ms,
    })?;
    let peer = target.selected.label();
    let client = target.connect().await?;
    let status = client.status().await?;
    let (genesis, genesis_json) = match &target.genesis {
        Some((path, genesis)) => {
            let json =
                std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
            (genesis.clone(), json)
        }
        None => {
            // The genesis is the trust anchor (its stakes weigh the vote proof): taken
            // from the peer only when pinned by a hash we already trust.
            let pinned = match &args.expected_genesis_hash {
                Some(h) => Some(h.clone()),
                None => std::fs::read(args.ledger.join("genesis.json"))
                    .ok()
                    .and_then(|b| Genesis::from_json(&b).ok())
                    .map(|g| g.hash().to_string()),
            };
            if pinned.is_none() {
                bail!(
                    "pass --genesis FILE or --expected-genesis-hash HASH: the genesis is what every check rests on, so it is not taken on the peer's word"
                );
            }
            let answer = client.genesis().await?;
            let genesis = Genesis::from_json(&answer.genesis_json)
                .map_err(|e| anyhow::anyhow!("{peer} served a genesis that does not parse: {e}"))?;
            (genesis, answer.genesis_json)
        }
    };
    let hash = genesis.hash().to_string();
    let pinned = args.expected_genesis_hash.clone().or_else(|| {
        std::fs::read(args.ledger.join("genesis.json"))
            .ok()
            .and_then(|b| Genesis::from_json(&b).ok())
            .map(|g| g.hash().to_string())
    });
    if let Some(expected) = &pinned
        && *expected != hash
    {
        bail!("the genesis hashes to {hash}, not the expected {expected}");
    }
    if status.genesis_hash != hash {
        bail!(
            "{peer} is on another network: its genesis hash is {}, ours is {hash}",
            status.genesis_hash
        );
    }
    check_target(&args.ledger, &hash, args.yes)?;
    if !out.json {
        eprintln!(
            "{} sync from {peer} into {} (network {}, genesis {hash})",
            mode.name(),
            args.ledger.display(),
            genesis.network
        );
    }
    Ok(Job {
        mode,
        client,
        peer,
        genesis,
        genesis_json,
        target: args.ledger.clone(),
        limit_rate: args.limit_rate,
        out,
    })
}

/// A target that already holds a ledger is replaced only when asked, and only if it is on
/// the same network.
fn check_target(dir: &std::path::Path, genesis_hash: &str, yes: bool) -> anyhow::Result<()> {
    let has_ledger = dir.join(bb_ledger::LEDGER_FILE_NAME).exists();
    if !has_ledger {
        if dir.exists()
            && dir
                .read_dir()
                .map(|mut d| d.next().is_some())
                .unwrap_or(true)
        {
            bail!(
                "{} is not empty and holds no ledger; pick an empty or new directory",
                dir.display()
            );
        }
        return Ok(());
    }
    if let Ok(bytes) = std::fs::read(dir.join("genesis.json"))
        && let Ok(g) = Genesis::from_json(&bytes)
        && g.hash().to_string() != genesis_hash
    {
        bail!(
            "the ledger in {} belongs to another network (genesis {}); refusing to replace it",
            dir.display(),
            g.hash()
        );
    }
    if yes {
        return Ok(());
    }
    match bb_cli::prompt::confirm(&format!(
        "Replace the ledger in {} with the synced one (its tower is kept)?",
        dir.display()
    )) {
        Some(true) => Ok(()),
        Some(false) => bail!("left {} as it was", dir.display()),
        None => bail!(
            "{} already holds a ledger; pass --yes to replace it (its tower is kept)",
            dir.display()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse_with_suffixes_and_bad_ones_are_named() {
        assert_eq!(parse_rate("512"), Ok(512));
        assert_eq!(parse_rate("2M"), Ok(2 << 20));
        assert_eq!(parse_rate("10k"), Ok(10 << 10));
        assert!(parse_rate("fast").unwrap_err().contains("fast"));
        assert!(parse_rate("0").is_err());
        assert!(parse_rate("99999999999G").is_err());
    }
}
