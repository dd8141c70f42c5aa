//! The localnet directory and its `manifest.json`: what `up` made and which processes run.
//!
//! ```text
//! D/manifest.json          this file: every node's identity, pid, ports, URLs and arguments
//! D/genesis.json           the network's genesis
//! D/faucet/faucet-K.json   funded keys for load and tests
//! D/node-I/identity.json   node I's key (mode 0600)
//! D/node-I/ledger/         node I's ledger (written by bb-validator)
//! D/node-I/validator.log   node I's stdout and stderr, appended across restarts
//! D/.lock                  held (flock) while a command changes the manifest
//! ```
//!
//! The manifest is replaced atomically (write a temporary file, fsync, rename), so a
//! reader sees the old one or the new one. Commands that change it hold `D/.lock`, so two
//! of them never interleave; `bb-inspect` and friends only read it.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

use crate::process;

/// The manifest format this build reads and writes.
pub const MANIFEST_VERSION: u32 = 1;
pub const MANIFEST_FILE: &str = "manifest.json";
const LOCK_FILE: &str = ".lock";
/// How long a command waits for another one to release `D/.lock`.
const LOCK_WAIT: Duration = Duration::from_secs(20);

/// `D/manifest.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub version: u32,
    /// When `up` made this localnet, milliseconds since the Unix epoch.
    pub created_ms: u64,
    /// The localnet directory, absolute.
    pub dir: PathBuf,
    pub network: String,
    /// base58 hash of the genesis: names the network.
    pub genesis_hash: String,
    /// The genesis file, absolute.
    pub genesis: PathBuf,
    pub slot_ms: u64,
    pub slots_per_epoch: u64,
    /// Funded accounts whose keys are in `D/faucet/`.
    pub faucet: Vec<FaucetKey>,
    pub nodes: Vec<NodeEntry>,
}

/// A funded account of the genesis.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaucetKey {
    pub address: String,
    pub key_file: PathBuf,
    pub balance: u64,
}

/// One validator of the localnet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeEntry {
    pub index: usize,
    /// Its identity address (`bb_...`).
    pub identity: String,
    /// Its libp2p peer id (derived from the identity).
    pub peer_id: String,
    pub identity_file: PathBuf,
    pub stake: u64,
    /// `running` from when bb-localnet starts it until bb-localnet stops it; a running
    /// node whose process has died (a crash, an outside kill) is still `running` here:
    /// ask [`NodeEntry::alive`].
    pub state: NodeState,
    /// The process while `state` is `running`; null once stopped.
    pub pid: Option<u32>,
    /// The process of the previous run, for the record.
    #[serde(default)]
    pub last_pid: Option<u32>,
    pub started_ms: Option<u64>,
    pub stopped_ms: Option<u64>,
    pub ports: Ports,
    /// libp2p listen multiaddr.
    pub listen: String,
    /// The multiaddr (with `/p2p/PEERID`) other nodes bootstrap from.
    pub p2p_address: String,
    pub shred_addr: String,
    pub rpc_url: String,
    pub metrics_url: String,
    pub ledger: PathBuf,
    pub log: PathBuf,
    /// Fault injections (`KIND[:ARG]`) passed with `--fault`.
    pub faults: Vec<String>,
    /// The bb-validator arguments, reused by `start` and `restart`.
    pub args: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeState {
    Running,
    Stopped,
    /// Staked in the genesis but never started: `bb-localnet add` syncs and starts it.
    Spare,
}

/// Every port a node listens on (all on 127.0.0.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ports {
    /// libp2p, TCP.
    pub p2p: u16,
    /// Turbine shreds, UDP.
    pub shred: u16,
    /// gRPC, TCP.
    pub rpc: u16,
    /// Prometheus metrics, TCP.
    pub metrics: u16,
}

impl NodeEntry {
    /// The pid of this node's process if it is alive now (and still this node's: a
    /// reused pid is not mistaken for it).
    pub fn alive(&self) -> Option<u32> {
        self.pid
            .filter(|&pid| process::is_node_process(pid, &self.ledger))
    }

    /// Records a new process for this node.
    pub fn mark_started(&mut self, pid: u32) {
        self.state = NodeState::Running;
        if self.pid.is_some() {
            self.last_pid = self.pid;
        }
        self.pid = Some(pid);
        self.started_ms = Some(now_ms());
        self.stopped_ms = None;
    }

    /// Records that bb-localnet stopped (or found dead) this node's process.
    pub fn mark_stopped(&mut self) {
        if self.pid.is_some() {
            self.last_pid = self.pid;
        }
        self.state = NodeState::Stopped;
        self.pid = None;
        self.stopped_ms = Some(now_ms());
    }
}

impl Manifest {
    pub fn path(dir: &Path) -> PathBuf {
        dir.join(MANIFEST_FILE)
    }

    /// Reads `D/manifest.json`; `Ok(None)` if there is none.
    pub fn read(dir: &Path) -> anyhow::Result<Option<Manifest>> {
        let path = Self::path(dir);
        let text = match fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        let manifest: Manifest = serde_json::from_str(&text).with_context(|| {
            format!(
                "{} is not a bb-localnet manifest; remove {} or choose another --dir",
                path.display(),
                dir.display()
            )
        })?;
        if manifest.version != MANIFEST_VERSION {
            bail!(
                "{} has manifest version {} (this build reads {MANIFEST_VERSION})",
                path.display(),
                manifest.version
            );
        }
        for (i, node) in manifest.nodes.iter().enumerate() {
            if node.index != i {
                bail!("{} lists node {} at place {i}", path.display(), node.index);
            }
        }
        Ok(Some(manifest))
    }

    /// Reads the manifest of the localnet in `dir`, or says there is none.
    pub fn load(dir: &Path) -> anyhow::Result<Manifest> {
        Self::read(dir)?.with_context(|| {
            format!(
                "no localnet in {} (no {MANIFEST_FILE}); start one with `bb-localnet up --dir {}`",
                dir.display(),
                dir.display()
            )
        })
    }

    /// Replaces `D/manifest.json` atomically.
    pub fn save(&self) -> anyhow::Result<()> {
        let mut text = serde_json::to_string_pretty(self).context("cannot encode the manifest")?;
        text.push('\n');
        write_atomically(&Self::path(&self.dir), text.as_bytes())
    }

    /// Node `index`, or a one-line error naming the valid range.
    pub fn node(&self, index: usize) -> anyhow::Result<&NodeEntry> {
        let n = self.nodes.len();
        self.nodes.get(index).with_context(|| {
            format!(
                "node {index} is out of range: the localnet in {} has nodes 0..={}",
                self.dir.display(),
                n.saturating_sub(1)
            )
        })
    }

    pub fn node_mut(&mut self, index: usize) -> anyhow::Result<&mut NodeEntry> {
        self.node(index)?;
        Ok(&mut self.nodes[index])
    }

    /// `(index, pid)` of every node whose process is alive.
    pub fn live_pids(&self) -> Vec<(usize, u32)> {
        self.nodes
            .iter()
            .filter_map(|n| n.alive().map(|pid| (n.index, pid)))
            .collect()
    }
}

/// Writes `bytes` to `path` so that a reader sees the old file or the new one, never a
/// part: a temporary file beside it, fsync, rename, fsync of the directory.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let dir = path
        .parent()
        .with_context(|| format!("{} has no directory", path.display()))?;
    let name = path
        .file_name()
        .with_context(|| format!("{} has no file name", path.display()))?;
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let result = (|| -> std::io::Result<()> {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp);
        return Err(e).with_context(|| format!("cannot write {}", path.display()));
    }
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// An exclusive hold on `D/.lock`, released when dropped.
#[derive(Debug)]
pub struct DirLock {
    _file: fs::File,
}

impl DirLock {
    /// Takes the lock, waiting a while for another bb-localnet command to finish.
    pub fn acquire(dir: &Path) -> anyhow::Result<DirLock> {
        use rustix::fs::{FlockOperation, flock};
        let path = dir.join(LOCK_FILE);
        let file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        let deadline = Instant::now() + LOCK_WAIT;
        loop {
            match flock(&file, FlockOperation::NonBlockingLockExclusive) {
                Ok(()) => return Ok(DirLock { _file: file }),
                Err(rustix::io::Errno::WOULDBLOCK) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(rustix::io::Errno::WOULDBLOCK) => bail!(
                    "another bb-localnet command is changing {} (it holds {}); try again when it is done",
                    dir.display(),
                    path.display()
                ),
                Err(e) => {
                    return Err(std::io::Error::from(e))
                        .with_context(|| format!("cannot lock {}", path.display()));
                }
            }
        }
    }
}

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn sample(dir: &Path, nodes: usize) -> Manifest {
        Manifest {
            version: MANIFEST_VERSION,
            created_ms: 1,
            dir: dir.to_path_buf(),
            network: "localnet".into(),
            genesis_hash: "h".into(),
            genesis: dir.join("genesis.json"),
            slot_ms: 400,
            slots_per_epoch: 32,
            faucet: vec![],
            nodes: (0..nodes)
                .map(|index| NodeEntry {
                    index,
                    identity: format!("bb_{index}"),
                    peer_id: "p".into(),
                    identity_file: dir.join(format!("node-{index}/identity.json")),
                    stake: 100,
                    state: NodeState::Stopped,
                    pid: None,
                    last_pid: None,
                    started_ms: None,
                    stopped_ms: None,
                    ports: Ports {
                        p2p: 1,
                        shred: 2,
                        rpc: 3,
                        metrics: 4,
                    },
                    listen: String::new(),
                    p2p_address: String::new(),
                    shred_addr: String::new(),
                    rpc_url: String::new(),
                    metrics_url: String::new(),
                    ledger: dir.join(format!("node-{index}/ledger")),
                    log: dir.join(format!("node-{index}/validator.log")),
                    faults: vec![],
                    args: vec![],
                })
                .collect(),
        }
    }

    #[test]
    fn manifest_round_trips_and_replaces_atomically() {
        let dir = tempfile::tempdir().unwrap();
        assert!(Manifest::read(dir.path()).unwrap().is_none());
        let mut m = sample(dir.path(), 3);
        m.save().unwrap();
        assert_eq!(Manifest::load(dir.path()).unwrap(), m);
        m.nodes[1].mark_started(4242);
        m.save().unwrap();
        let back = Manifest::load(dir.path()).unwrap();
        assert_eq!(back.nodes[1].pid, Some(4242));
        assert_eq!(back.nodes[1].state, NodeState::Running);
        // Only the manifest itself: no temporary files left.
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn missing_or_foreign_manifests_are_one_line_errors() {
        let dir = tempfile::tempdir().unwrap();
        let err = bb_cli::one_line(&Manifest::load(dir.path()).unwrap_err());
        assert!(err.contains("no localnet in"), "{err}");
        fs::write(dir.path().join(MANIFEST_FILE), "{\"x\":1}").unwrap();
        let err = bb_cli::one_line(&Manifest::load(dir.path()).unwrap_err());
        assert!(err.contains("not a bb-localnet manifest"), "{err}");
    }

    #[test]
    fn out_of_range_node_names_the_range() {
        let dir = tempfile::tempdir().unwrap();
        let m = sample(dir.path(), 3);
        let err = m.node(9).unwrap_err().to_string();
        assert!(
            err.contains("node 9 is out of range") && err.contains("0..=2"),
            "{err}"
        );
    }

    #[test]
    fn a_stopped_node_keeps_its_last_pid_for_the_record() {
        let dir = tempfile::tempdir().unwrap();
        let mut m = sample(dir.path(), 1);
        m.nodes[0].mark_started(10);
        m.nodes[0].mark_stopped();
        assert_eq!((m.nodes[0].pid, m.nodes[0].last_pid), (None, Some(10)));
        assert_eq!(m.nodes[0].alive(), None);
    }

    #[test]
    fn the_lock_is_exclusive_until_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let held = DirLock::acquire(dir.path()).unwrap();
        let file = fs::OpenOptions::new()
            .write(true)
            .open(dir.path().join(LOCK_FILE))
            .unwrap();
        use rustix::fs::{FlockOperation, flock};
        assert!(flock(&file, FlockOperation::NonBlockingLockExclusive).is_err());
        drop(held);
        assert!(flock(&file, FlockOperation::NonBlockingLockExclusive).is_ok());
    }
}
