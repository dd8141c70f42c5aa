//! `bb-localnet add`: brings spare validators (staked in the genesis by `up --spare K`,
//! never started) into the running network: each is synced from a running node with
//! `bb-sync`, then started, and votes from then on.

use std::path::Path;
use std::process::Stdio;
use std::time::Instant;

use anyhow::{Context, bail};
use bb_cli::Output;
use serde::Serialize;

use crate::manage::confirm_started;
use crate::manifest::{DirLock, Manifest, NodeState};
use crate::process::{self, Children};

pub const ADD_HELP: &str = "\
Spare validators are staked in the genesis but not started by `up`: reserve them with
`bb-localnet up --nodes 3 --spare 2`. `add` takes the next spare ones, syncs each from a
running node with `bb-sync MODE` (warp: a fresh snapshot of the peer's root plus the last
1000 blocks; snapshot: the peer's newest stored snapshot and the blocks since; full:
every block from genesis), starts it, and waits until it answers.

Examples:
  bb-localnet add
  bb-localnet add --count 2 --sync snapshot
  bb-localnet add --sync full --json";

#[derive(clap::Args, Debug)]
pub struct AddArgs {
    #[command(flatten)]
    pub dir: crate::DirArg,
    /// How many spare validators to add.
    #[arg(long, default_value_t = 1)]
    pub count: usize,
    /// How each new node catches up.
    #[arg(long, value_name = "MODE", default_value = "warp", value_parser = ["warp", "snapshot", "full"])]
    pub sync: String,
    /// How long to wait for each node to answer once started, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 60)]
    pub timeout: u64,
}

#[derive(Debug, Serialize)]
struct Added {
    index: usize,
    identity: String,
    pid: u32,
    rpc_url: String,
    sync: String,
    synced_from: usize,
    /// The slot bb-sync rooted the new ledger at.
    synced_root: Option<u64>,
    sync_ms: u64,
}

pub fn add(out: Output, a: AddArgs) -> anyhow::Result<u8> {
    if a.count == 0 {
        bail!("--count must be at least 1");
    }
    let dir = &a.dir.dir;
    let validator = process::validator_bin()?;
    let sync_bin = process::sibling_bin("bb-sync")?;
    let m = Manifest::load(dir)?;
    let spares: Vec<usize> = m
        .nodes
        .iter()
        .filter(|n| n.state == NodeState::Spare)
        .map(|n| n.index)
        .take(a.count)
        .collect();
    if spares.len() < a.count {
        bail!(
            "the localnet in {} has {} spare validator(s), {} asked; reserve them with `bb-localnet up --spare K`",
            dir.display(),
            spares.len(),
            a.count
        );
    }
    let Some(peer) = m.nodes.iter().find(|n| n.alive().is_some()) else {
        bail!(
            "no node of the localnet in {} is running to sync from",
            dir.display()
        );
    };
    let peer_index = peer.index;
    let mut added = Vec::new();
    for index in spares {
        let node = m.node(index)?.clone();
        out.note(&format!(
            "node {index}: {} sync from node {peer_index}...",
            a.sync
        ));
        let started = Instant::now();
        let root = run_sync(
            out,
            &sync_bin,
            &a.sync,
            dir,
            peer_index,
            &node.ledger,
            &m.genesis,
        )
        .with_context(|| format!("node {index}: sync from node {peer_index}"))?;
        let sync_ms = started.elapsed().as_millis() as u64;
        let mut children = Children::default();
        let pid = {
            let _lock = DirLock::acquire(dir)?;
            let mut m = Manifest::load(dir)?;
            let child = process::spawn_node(&validator, &node)?;
            let pid = child.id();
            m.node_mut(index)?.mark_started(pid);
            children.insert(child);
            m.save()?;
            pid
        };
        if let Err(why) = confirm_started(dir, index, &node, pid, &mut children, a.timeout)? {
            bail!("node {index} did not start after its sync: {why}");
        }
        children.release();
        out.note(&format!(
            "node {index} added: synced to slot {} in {:.1} s, running as pid {pid} ({})",
            root.map_or("-".to_string(), |r| r.to_string()),
            sync_ms as f64 / 1000.0,
            node.rpc_url
        ));
        added.push(Added {
            index,
            identity: node.identity.clone(),
            pid,
            rpc_url: node.rpc_url.clone(),
            sync: a.sync.clone(),
            synced_from: peer_index,
            synced_root: root,
            sync_ms,
        });
    }
    out.emit(&added, || {
        added
            .iter()
            .map(|n| {
                format!(
                    "node {} ({}) is running: pid {}, rpc {}",
                    n.index, n.identity, n.pid, n.rpc_url
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    });
    Ok(bb_cli::EXIT_OK)
}

/// Runs `bb-sync MODE --json`; its progress goes to our stderr. Returns the rooted slot.
pub(crate) fn run_sync(
    out: Output,
    bin: &Path,
    mode: &str,
    dir: &Path,
    peer: usize,
    ledger: &Path,
    genesis: &Path,
) -> anyhow::Result<Option<u64>> {
    let mut cmd = std::process::Command::new(bin);
    cmd.arg(mode)
        .arg("--from")
        .arg(format!("node{peer}"))
        .arg("--localnet")
        .arg(dir)
        .arg("--ledger")
        .arg(ledger)
        .arg("--genesis")
        .arg(genesis)
        .arg("--yes")
        .arg("--json")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(if out.json {
            Stdio::piped()
        } else {
            Stdio::inherit()
        });
    let output = cmd
        .output()
        .with_context(|| format!("cannot run {}", bin.display()))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let last = stderr
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("");
        bail!(
            "bb-sync failed ({}){}",
            process::describe_exit(output.status),
            if last.is_empty() {
                String::new()
            } else {
                format!(": {last}")
            }
        );
    }
    let report: serde_json::Value =
        serde_json::from_slice(&output.stdout).context("bb-sync printed no JSON report")?;
    Ok(report.get("root").and_then(|r| r.as_u64()))
}
