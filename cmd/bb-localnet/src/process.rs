//! Validator processes: finding the binary, spawning it, telling whether a pid is still
//! the node it was, and stopping it (SIGTERM, a grace period, then SIGKILL).
//!
//! Processes are only ever addressed by pid, never by name, and a pid is only trusted
//! while `/proc` (where there is one) shows a live, non-zombie process whose arguments
//! name the node's ledger directory: a pid reused by an unrelated process is never
//! signalled.

use std::collections::HashMap;
use std::fs;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use rustix::process::{Pid, Signal, kill_process, test_kill_process};

use crate::manifest::{NodeEntry, now_ms};

/// The environment variable that overrides where bb-validator is.
pub const VALIDATOR_BIN_ENV: &str = "BB_VALIDATOR_BIN";
/// How long a node gets to stop after SIGTERM before it is sent SIGKILL.
pub const STOP_GRACE: Duration = Duration::from_secs(10);

/// The bb-validator binary: `$BB_VALIDATOR_BIN`, or the one beside this executable (in a
/// cargo target directory, also one level up from `deps/`, where test binaries live).
pub fn validator_bin() -> anyhow::Result<PathBuf> {
    if let Some(path) = std::env::var_os(VALIDATOR_BIN_ENV).filter(|p| !p.is_empty()) {
        let path = PathBuf::from(path);
        if !path.is_file() {
            bail!(
                "{VALIDATOR_BIN_ENV}={} is not a file; point it at a bb-validator binary or unset it",
                path.display()
            );
        }
        return Ok(path);
    }
    sibling_bin("bb-validator")
}

/// Another bb tool, found beside this executable (in a cargo target directory, also one
/// level up from `deps/`, where test binaries live).
pub fn sibling_bin(name: &str) -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("cannot find this executable's path")?;
    let dir = exe
        .parent()
        .context("this executable has no directory")?
        .to_path_buf();
    let mut candidates = vec![dir.join(name)];
    if dir.file_name().is_some_and(|n| n == "deps")
        && let Some(up) = dir.parent()
    {
        candidates.push(up.join(name));
    }
    candidates.into_iter().find(|c| c.is_file()).with_context(|| {
        format!(
            "{name} is not built: no {} beside bb-localnet; build it with `cargo build -p {name}`",
            dir.join(name).display()
        )
    })
}

/// Starts node `node` in its own process group (so a Ctrl-C at the terminal reaches
/// bb-localnet, which then stops the nodes in order, and not the nodes directly), with
/// stdin closed and stdout and stderr appended to its log after a header line.
pub fn spawn_node(bin: &Path, node: &NodeEntry) -> anyhow::Result<Child> {
    let mut log = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&node.log)
        .with_context(|| format!("cannot open {}", node.log.display()))?;
    writeln!(
        log,
        "=== bb-localnet: starting node {} ({}) at unix ms {} ===",
        node.index,
        node.identity,
        now_ms()
    )
    .with_context(|| format!("cannot write {}", node.log.display()))?;
    let err_log = log
        .try_clone()
        .with_context(|| format!("cannot open {}", node.log.display()))?;
    let mut command = Command::new(bin);
    // Two malloc arenas instead of glibc's one per busy thread: freed memory kept in idle
    // arenas was a third of each validator's resident memory at 50 nodes (95 MB against
    // 65 MB, same CPU). An operator's own setting wins.
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        command.env("MALLOC_ARENA_MAX", "2");
    }
    command
        .args(&node.args)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(err_log)
        .process_group(0)
        .spawn()
        .with_context(|| format!("cannot start {}", bin.display()))
}

fn pid_of(pid: u32) -> Option<Pid> {
    i32::try_from(pid).ok().and_then(Pid::from_raw)
}

/// Whether `pid` is a live process (not a zombie) whose arguments name `ledger`: the
/// node's own process, not a stranger that got its pid later.
pub fn is_node_process(pid: u32, ledger: &Path) -> bool {
    let Some(p) = pid_of(pid) else {
        return false;
    };
    if test_kill_process(p).is_err() {
        return false;
    }
    let proc_dir = PathBuf::from(format!("/proc/{pid}"));
    if !Path::new("/proc/self/stat").exists() {
        // No /proc (not Linux): the signal test is all there is.
        return true;
    }
    match fs::read_to_string(proc_dir.join("stat")) {
        Ok(stat) => {
            // "pid (comm) S ...": the state follows the last ')'.
            let state = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.trim_start().chars().next());
            if matches!(state, Some('Z' | 'X' | 'x')) {
                return false;
            }
        }
        Err(_) => return false,
    }
    let ledger = ledger.as_os_str().as_encoded_bytes();
    // A process in the middle of exec shows no arguments for a moment: look again.
    for _ in 0..10 {
        let Ok(cmdline) = fs::read(proc_dir.join("cmdline")) else {
            return false;
        };
        if !cmdline.is_empty() {
            return cmdline.split(|&b| b == 0).any(|arg| arg == ledger);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    false
}

/// Sends `signal` to `pid`; a process that is already gone is not an error.
pub fn signal(pid: u32, signal: Signal) -> anyhow::Result<()> {
    let p = pid_of(pid).with_context(|| format!("{pid} is not a valid pid"))?;
    match kill_process(p, signal) {
        Ok(()) | Err(rustix::io::Errno::SRCH) => Ok(()),
        Err(e) => Err(std::io::Error::from(e)).with_context(|| format!("cannot signal pid {pid}")),
    }
}

/// Children this process spawned, by pid: reaped as soon as they exit, so they never
/// linger as zombies and their exit status can be reported.
#[derive(Debug, Default)]
pub struct Children {
    live: HashMap<u32, Child>,
}

impl Children {
    pub fn insert(&mut self, child: Child) {
        self.live.insert(child.id(), child);
    }

    /// Reaps every child that has exited; returns `(pid, status)` of each.
    pub fn reap(&mut self) -> Vec<(u32, ExitStatus)> {
        let mut exited = Vec::new();
        self.live.retain(|&pid, child| match child.try_wait() {
            Ok(Some(status)) => {
                exited.push((pid, status));
                false
            }
            Ok(None) => true,
            Err(_) => false,
        });
        exited
    }

    /// Whether `pid` is a child of this process that has not exited (it is reaped if it
    /// has); `None` if it is not a child of this process. A child's pid cannot be reused
    /// before it is reaped, so this needs no other check.
    pub fn running(&mut self, pid: u32) -> Option<bool> {
        let child = self.live.get_mut(&pid)?;
        match child.try_wait() {
            Ok(None) => Some(true),
            _ => {
                self.live.remove(&pid);
                Some(false)
            }
        }
    }

    /// Whether node `pid` (with ledger `ledger`) is alive: asked of the child handle when
    /// it is ours, of the system otherwise.
    pub fn alive(&mut self, pid: u32, ledger: &Path) -> bool {
        self.reap();
        self.running(pid)
            .unwrap_or_else(|| is_node_process(pid, ledger))
    }

    /// Lets the children run on after this process exits (they are re-parented).
    pub fn release(&mut self) {
        self.live.clear();
    }
}

/// How one node's stop went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    /// Exited within the grace period after SIGTERM.
    Clean,
    /// Still alive after the grace period: sent SIGKILL.
    Killed,
}

/// Stops the given nodes' processes together: SIGTERM to all, up to `grace` for them to
/// exit, then SIGKILL to the rest. Reaps any that are `children`. Returns, for each
/// `(index, pid)`, how it stopped.
pub fn stop_all(
    targets: &[(usize, u32, PathBuf)],
    children: &mut Children,
    grace: Duration,
) -> Vec<(usize, u32, Stopped)> {
    for (_, pid, _) in targets {
        let _ = signal(*pid, Signal::TERM);
    }
    let alive = |children: &mut Children, ledger: &Path, pid: u32| children.alive(pid, ledger);
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline
        && targets
            .iter()
            .any(|(_, pid, ledger)| alive(children, ledger, *pid))
    {
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut report = Vec::new();
    for (index, pid, ledger) in targets {
        if alive(children, ledger, *pid) {
            let _ = signal(*pid, Signal::KILL);
            report.push((*index, *pid, Stopped::Killed));
        } else {
            report.push((*index, *pid, Stopped::Clean));
        }
    }
    // SIGKILL cannot be ignored; wait (briefly) until the kernel has done it.
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline
        && targets
            .iter()
            .any(|(_, pid, ledger)| alive(children, ledger, *pid))
    {
        std::thread::sleep(Duration::from_millis(20));
    }
    report
}

/// Waits up to `timeout` for the process to go away (reaping it if it is a child).
pub fn wait_gone(pid: u32, ledger: &Path, children: &mut Children, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if !children.alive(pid, ledger) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The last `lines` lines of a log file (at most its last 64 KiB), or an empty list.
pub fn log_tail(path: &Path, lines: usize) -> Vec<String> {
    const MAX: u64 = 64 << 10;
    let Ok(mut f) = fs::File::open(path) else {
        return Vec::new();
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = f.seek(SeekFrom::Start(len.saturating_sub(MAX)));
    let mut bytes = Vec::new();
    let _ = f.read_to_end(&mut bytes);
    let text = String::from_utf8_lossy(&bytes);
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..]
        .iter()
        .map(|l| l.to_string())
        .collect()
}

/// A short description of how a process ended: "exit status 1", "signal 9".
pub fn describe_exit(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit status {code}"),
        (None, Some(sig)) => format!("signal {sig}"),
        _ => status.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A shell loop with MARKER as its `$0`, so it shows in the arguments (a loop, so
    /// the shell cannot replace itself with the command).
    fn sleeper(marker: &Path) -> Child {
        Command::new("sh")
            .args(["-c", "while :; do sleep 0.1; done"])
            .arg(marker)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("sleep runs")
    }

    #[test]
    fn a_pid_is_the_node_only_while_it_lives_and_names_the_ledger() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = dir.path().join("ledger");
        let mut children = Children::default();
        let child = sleeper(&ledger);
        let pid = child.id();
        children.insert(child);
        assert!(is_node_process(pid, &ledger));
        assert!(!is_node_process(pid, &dir.path().join("other")));
        signal(pid, Signal::KILL).unwrap();
        assert!(wait_gone(
            pid,
            &ledger,
            &mut children,
            Duration::from_secs(5)
        ));
        assert!(!is_node_process(pid, &ledger));
        // Signalling a process that is gone is fine.
        signal(pid, Signal::TERM).unwrap();
    }

    #[test]
    fn stop_all_terms_then_reaps_every_child() {
        let dir = tempfile::tempdir().unwrap();
        let mut children = Children::default();
        let mut targets = Vec::new();
        for i in 0..3 {
            let ledger = dir.path().join(format!("ledger-{i}"));
            let child = sleeper(&ledger);
            targets.push((i, child.id(), ledger));
            children.insert(child);
        }
        for (_, pid, ledger) in &targets {
            assert!(is_node_process(*pid, ledger));
        }
        let report = stop_all(&targets, &mut children, Duration::from_secs(5));
        assert_eq!(report.len(), 3);
        assert!(
            report.iter().all(|(_, _, s)| *s == Stopped::Clean),
            "{report:?}"
        );
        for (_, pid, ledger) in &targets {
            assert!(!is_node_process(*pid, ledger));
        }
        assert!(children.live.is_empty(), "every child reaped");
    }

    #[test]
    fn a_process_that_ignores_sigterm_gets_sigkill_after_the_grace() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = dir.path().join("stubborn");
        let mut children = Children::default();
        let child = Command::new("sh")
            .args(["-c", "trap '' TERM; while :; do sleep 0.1; done"])
            .arg(&ledger)
            .stdin(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap();
        let pid = child.id();
        children.insert(child);
        std::thread::sleep(Duration::from_millis(200));
        let report = stop_all(
            &[(0, pid, ledger.clone())],
            &mut children,
            Duration::from_millis(500),
        );
        assert_eq!(report, vec![(0, pid, Stopped::Killed)]);
        assert!(!is_node_process(pid, &ledger));
    }

    #[test]
    fn log_tail_keeps_the_last_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v.log");
        let text: String = (0..100).map(|i| format!("line {i}\n")).collect();
        fs::write(&path, text).unwrap();
        assert_eq!(log_tail(&path, 2), vec!["line 98", "line 99"]);
        assert!(log_tail(&dir.path().join("none"), 5).is_empty());
    }
}
