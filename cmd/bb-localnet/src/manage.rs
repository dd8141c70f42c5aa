//! The commands that look after a localnet once `up` made it: `status`, `down`, `kill`,
//! `start`, `restart` and `logs`. Each reads `D/manifest.json`; those that change
//! processes hold `D/.lock` while they do and record what they did in the manifest.

use std::fs;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, bail};
use bb_cli::Output;
use bb_rpc::NodeClient;
use rustix::process::Signal;
use serde::Serialize;
use tokio::time::{Instant, sleep};

use crate::DirArg;
use crate::manifest::{DirLock, Manifest, NodeEntry, NodeState};
use crate::process::{
    self, Children, STOP_GRACE, Stopped, describe_exit, log_tail, stop_all, wait_gone,
};
use crate::watch::{NodeRow, POLL_TIMEOUT, poll_once, render};

#[derive(clap::Args, Debug)]
pub struct StatusArgs {
    #[command(flatten)]
    pub dir: DirArg,
}

#[derive(clap::Args, Debug)]
pub struct DownArgs {
    #[command(flatten)]
    pub dir: DirArg,
}

#[derive(clap::Args, Debug)]
pub struct KillArgs {
    /// The node to kill.
    #[arg(long, value_name = "I")]
    pub node: usize,
    /// `kill` (SIGKILL: a crash, the default) or `term` (SIGTERM: a clean shutdown).
    #[arg(long, value_enum, default_value_t = SignalArg::Kill)]
    pub signal: SignalArg,
    #[command(flatten)]
    pub dir: DirArg,
}

#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignalArg {
    Kill,
    Term,
}

#[derive(clap::Args, Debug)]
pub struct StartArgs {
    /// The node to start.
    #[arg(long, value_name = "I")]
    pub node: usize,
    /// How long to wait for the node's gRPC API to answer, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 60)]
    pub timeout: u64,
    /// Catch the node's ledger up from a running node first, with `bb-sync MODE` (its
    /// tower is kept): for a node that was stopped long.
    #[arg(long, value_name = "MODE", value_parser = ["warp", "snapshot", "full"])]
    pub sync: Option<String>,
    #[command(flatten)]
    pub dir: DirArg,
}

#[derive(clap::Args, Debug)]
pub struct LogsArgs {
    /// The node whose log to print.
    #[arg(long, value_name = "I")]
    pub node: usize,
    /// Keep printing what the node writes, like `tail -f`, until Ctrl-C.
    #[arg(short = 'f', long)]
    pub follow: bool,
    /// Only the last N lines (from at most the last 64 KiB).
    #[arg(short = 'n', long, value_name = "N")]
    pub lines: Option<usize>,
    #[command(flatten)]
    pub dir: DirArg,
}

/// Stops every node of `m` whose process is alive (SIGTERM to all, SIGKILL to any still
/// running after [`STOP_GRACE`]) and marks every node stopped. The caller holds the lock
/// and saves `m`.
pub fn stop_nodes(m: &mut Manifest, children: &mut Children) -> Vec<(usize, u32, Stopped)> {
    let targets: Vec<_> = m
        .nodes
        .iter()
        .filter_map(|n| {
            let pid = n.pid?;
            children
                .alive(pid, &n.ledger)
                .then(|| (n.index, pid, n.ledger.clone()))
        })
        .collect();
    let report = if targets.is_empty() {
        Vec::new()
    } else {
        stop_all(&targets, children, STOP_GRACE)
    };
    for n in &mut m.nodes {
        if n.state == NodeState::Running || n.pid.is_some() {
            n.mark_stopped();
        }
    }
    children.reap();
    report
}

/// [`stop_nodes`] on the localnet in `dir`, under its lock, recorded in its manifest.
pub fn stop_every_node(
    dir: &Path,
    children: &mut Children,
) -> anyhow::Result<Vec<(usize, u32, Stopped)>> {
    let _lock = DirLock::acquire(dir)?;
    let mut m = Manifest::load(dir)?;
    let report = stop_nodes(&mut m, children);
    m.save()?;
    Ok(report)
}

/// "stopped 3 nodes (pids 10, 11, 12)", naming any that needed SIGKILL.
pub fn describe_stops(report: &[(usize, u32, Stopped)]) -> String {
    if report.is_empty() {
        return "no node was running".into();
    }
    let pids: Vec<String> = report.iter().map(|(_, pid, _)| pid.to_string()).collect();
    let killed: Vec<String> = report
        .iter()
        .filter(|(_, _, s)| *s == Stopped::Killed)
        .map(|(i, _, _)| i.to_string())
        .collect();
    let mut text = format!(
        "stopped {} node{} (pids {})",
        report.len(),
        if report.len() == 1 { "" } else { "s" },
        pids.join(", ")
    );
    if !killed.is_empty() {
        text.push_str(&format!(
            "; node {} did not exit within {} s of SIGTERM and got SIGKILL",
            killed.join(", "),
            STOP_GRACE.as_secs()
        ));
    }
    text
}

#[derive(Debug, Serialize)]
struct StatusReport<'a> {
    dir: &'a Path,
    genesis_hash: &'a str,
    /// How many nodes are running.
    running: usize,
    nodes: Vec<NodeRow>,
}

pub fn status(out: Output, a: StatusArgs) -> anyhow::Result<u8> {
    let m = Manifest::load(&a.dir.dir)?;
    let rows = crate::runtime()?.block_on(poll_once(&m));
    let report = StatusReport {
        dir: &m.dir,
        genesis_hash: &m.genesis_hash,
        running: rows.iter().filter(|r| r.alive).count(),
        nodes: rows,
    };
    out.emit(&report, || {
        format!(
            "localnet {} · genesis {} · {}/{} running\n{}",
            m.dir.display(),
            m.genesis_hash,
            report.running,
            report.nodes.len(),
            render(&report.nodes)
        )
    });
    Ok(bb_cli::EXIT_OK)
}

#[derive(Debug, Serialize)]
struct StoppedNode {
    index: usize,
    pid: u32,
    /// `clean` (exited after SIGTERM) or `killed` (needed SIGKILL).
    how: &'static str,
}

fn stopped_nodes(report: &[(usize, u32, Stopped)]) -> Vec<StoppedNode> {
    report
        .iter()
        .map(|&(index, pid, s)| StoppedNode {
            index,
            pid,
            how: match s {
                Stopped::Clean => "clean",
                Stopped::Killed => "killed",
            },
        })
        .collect()
}

pub fn down(out: Output, a: DownArgs) -> anyhow::Result<u8> {
    let dir = &a.dir.dir;
    Manifest::load(dir)?;
    let mut children = Children::default();
    let report = stop_every_node(dir, &mut children)?;
    #[derive(Serialize)]
    struct Down<'a> {
        dir: &'a Path,
        stopped: Vec<StoppedNode>,
    }
    out.emit(
        &Down {
            dir,
            stopped: stopped_nodes(&report),
        },
        || {
            if report.is_empty() {
                format!("nothing was running in {}", dir.display())
            } else {
                describe_stops(&report)
            }
        },
    );
    Ok(bb_cli::EXIT_OK)
}

pub fn kill(out: Output, a: KillArgs) -> anyhow::Result<u8> {
    let dir = &a.dir.dir;
    Manifest::load(dir)?.node(a.node)?;
    let _lock = DirLock::acquire(dir)?;
    let mut m = Manifest::load(dir)?;
    let node = m.node(a.node)?.clone();
    let Some(pid) = node.alive() else {
        bail!("node {} is not running; nothing to kill", a.node);
    };
    let (signal, name, wait) = match a.signal {
        SignalArg::Kill => (Signal::KILL, "SIGKILL", Duration::from_secs(5)),
        SignalArg::Term => (Signal::TERM, "SIGTERM", STOP_GRACE),
    };
    process::signal(pid, signal)?;
    if !wait_gone(pid, &node.ledger, &mut Children::default(), wait) {
        bail!(
            "node {} (pid {pid}) is still running {} s after {name}; `bb-localnet kill --node {} --signal kill --dir {}` ends it",
            a.node,
            wait.as_secs(),
            a.node,
            dir.display()
        );
    }
    m.node_mut(a.node)?.mark_stopped();
    m.save()?;
    #[derive(Serialize)]
    struct Killed {
        index: usize,
        pid: u32,
        signal: &'static str,
    }
    out.emit(
        &Killed {
            index: a.node,
            pid,
            signal: name,
        },
        || format!("node {} (pid {pid}) stopped by {name}", a.node),
    );
    Ok(bb_cli::EXIT_OK)
}

#[derive(Debug, Serialize)]
struct Started<'a> {
    index: usize,
    pid: u32,
    /// The process it replaced (`restart` of a running node).
    previous_pid: Option<u32>,
    rpc_url: &'a str,
    log: &'a Path,
}

pub fn start(out: Output, a: StartArgs) -> anyhow::Result<u8> {
    start_or_restart(out, a, false)
}

pub fn restart(out: Output, a: StartArgs) -> anyhow::Result<u8> {
    start_or_restart(out, a, true)
}

fn start_or_restart(out: Output, a: StartArgs, restart: bool) -> anyhow::Result<u8> {
    let dir = &a.dir.dir;
    Manifest::load(dir)?.node(a.node)?;
    let bin = process::validator_bin()?;
    let mut children = Children::default();
    let (node, previous_pid) = {
        let _lock = DirLock::acquire(dir)?;
        let mut m = Manifest::load(dir)?;
        let node = m.node(a.node)?.clone();
        let previous = node.alive();
        match (previous, restart) {
            (Some(pid), false) => bail!(
                "node {} is already running (pid {pid}); `bb-localnet restart --node {} --dir {}` restarts it",
                a.node,
                a.node,
                dir.display()
            ),
            (Some(pid), true) => {
                out.note(&format!("stopping node {} (pid {pid})...", a.node));
                stop_all(
                    &[(a.node, pid, node.ledger.clone())],
                    &mut children,
                    STOP_GRACE,
                );
                m.node_mut(a.node)?.mark_stopped();
            }
            (None, true) => out.note(&format!("node {} was not running; starting it", a.node)),
            (None, false) => {}
        }
        if let Some(mode) = &a.sync {
            let Some(peer) = m
                .nodes
                .iter()
                .find(|n| n.index != a.node && n.alive().is_some())
            else {
                bail!("--sync needs another running node to sync from; none is running");
            };
            out.note(&format!(
                "node {}: {mode} sync from node {}...",
                a.node, peer.index
            ));
            crate::add::run_sync(
                out,
                &process::sibling_bin("bb-sync")?,
                mode,
                dir,
                peer.index,
                &node.ledger,
                &m.genesis,
            )
            .with_context(|| format!("node {}: sync from node {}", a.node, peer.index))?;
        }
        let child = process::spawn_node(&bin, &node)?;
        m.node_mut(a.node)?.mark_started(child.id());
        children.insert(child);
        m.save()?;
        (m.node(a.node)?.clone(), previous)
    };
    let pid = node.pid.unwrap_or_default();
    if let Err(why) = confirm_started(dir, a.node, &node, pid, &mut children, a.timeout)? {
        bail!("node {} did not start: {why}", a.node);
    }
    // The node runs on after this command exits (it is re-parented).
    children.release();
    out.emit(
        &Started {
            index: a.node,
            pid,
            previous_pid,
            rpc_url: &node.rpc_url,
            log: &node.log,
        },
        || {
            format!(
                "node {} {} (pid {pid}, rpc {})",
                a.node,
                if restart { "restarted" } else { "started" },
                node.rpc_url
            )
        },
    );
    Ok(bb_cli::EXIT_OK)
}

/// Waits until a node just started answers; if it does not within `timeout_s`, stops it,
/// records it stopped and shows the end of its log. The inner `Err` says why it did not
/// start.
pub(crate) fn confirm_started(
    dir: &Path,
    index: usize,
    node: &NodeEntry,
    pid: u32,
    children: &mut Children,
    timeout_s: u64,
) -> anyhow::Result<Result<(), String>> {
    let ready = crate::runtime()?.block_on(wait_ready(
        node,
        pid,
        children,
        Duration::from_secs(timeout_s),
    ));
    let Err(why) = ready else {
        return Ok(Ok(()));
    };
    {
        let _lock = DirLock::acquire(dir)?;
        let mut m = Manifest::load(dir)?;
        if children.alive(pid, &node.ledger) {
            stop_all(&[(index, pid, node.ledger.clone())], children, STOP_GRACE);
        }
        m.node_mut(index)?.mark_stopped();
        m.save()?;
    }
    let tail = log_tail(&node.log, 20);
    if !tail.is_empty() {
        eprintln!("last lines of {}:", node.log.display());
        for line in &tail {
            eprintln!("  {line}");
        }
    }
    Ok(Err(why))
}

/// Waits until the node answers `GetStatus`; `Err` says why it did not.
async fn wait_ready(
    node: &NodeEntry,
    pid: u32,
    children: &mut Children,
    timeout: Duration,
) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some((_, status)) = children.reap().into_iter().find(|(p, _)| *p == pid) {
            return Err(format!("it exited ({})", describe_exit(status)));
        }
        if let Ok(client) = NodeClient::connect(&node.rpc_url, POLL_TIMEOUT).await
            && client.status().await.is_ok()
        {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "its gRPC API at {} did not answer within {} s; stopped it",
                node.rpc_url,
                timeout.as_secs()
            ));
        }
        sleep(Duration::from_millis(200)).await;
    }
}

pub fn logs(out: Output, a: LogsArgs) -> anyhow::Result<u8> {
    if out.json {
        bail!("logs prints the node's log as it is; it has no --json form");
    }
    let m = Manifest::load(&a.dir.dir)?;
    let node = m.node(a.node)?;
    let path = &node.log;
    let mut file = fs::File::open(path)
        .with_context(|| format!("node {} has no log yet ({})", a.node, path.display()))?;
    let mut pos = file
        .metadata()
        .with_context(|| format!("cannot read {}", path.display()))?
        .len();
    match a.lines {
        Some(n) => {
            for line in log_tail(path, n) {
                bb_cli::output::print_line(&line);
            }
        }
        None => copy_range(&mut file, 0, pos, path)?,
    }
    if !a.follow {
        return Ok(bb_cli::EXIT_OK);
    }
    loop {
        std::thread::sleep(Duration::from_millis(250));
        let len = fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        if len < pos {
            // The log was truncated or replaced: read it again from the start.
            file =
                fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
            pos = 0;
        }
        if len > pos {
            copy_range(&mut file, pos, len, path)?;
            pos = len;
        }
    }
}

/// Copies bytes `from..to` of `file` to stdout; a reader that went away ends the
/// process quietly.
fn copy_range(file: &mut fs::File, from: u64, to: u64, path: &Path) -> anyhow::Result<()> {
    file.seek(SeekFrom::Start(from))
        .with_context(|| format!("cannot read {}", path.display()))?;
    let mut stdout = std::io::stdout().lock();
    let copied = std::io::copy(&mut file.take(to - from), &mut stdout).and_then(|_| stdout.flush());
    match copied {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => std::process::exit(0),
        Err(e) => Err(e).with_context(|| format!("cannot copy {}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_reports_read_as_one_line() {
        assert_eq!(describe_stops(&[]), "no node was running");
        assert_eq!(
            describe_stops(&[(0, 10, Stopped::Clean)]),
            "stopped 1 node (pids 10)"
        );
        let text = describe_stops(&[(0, 10, Stopped::Clean), (2, 12, Stopped::Killed)]);
        assert!(
            text.starts_with("stopped 2 nodes (pids 10, 12); node 2 did not exit"),
            "{text}"
        );
    }
}
