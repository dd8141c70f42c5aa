//! State snapshots on a running validator: one every `interval` rooted slots and on
//! request (`CreateSnapshot`), written by a worker thread so the engine never waits on
//! the disk, the newest `keep` kept; and the starting state on restart.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{SyncSender, TrySendError};

use bb_core::{Genesis, Pubkey, Slot};
use bb_runtime::{Bank, SnapshotFields};
use bb_snapshots::{NoProgress, SnapshotInfo};
use tokio::sync::oneshot;
use tracing::{info, warn};

/// When a validator makes snapshots.
#[derive(Debug, Clone, Copy)]
pub struct SnapshotPolicy {
    /// A snapshot every this many rooted slots (0: only on request).
    pub interval: u64,
    /// How many snapshot files to keep (at least 1).
    pub keep: usize,
}

impl Default for SnapshotPolicy {
    fn default() -> Self {
        SnapshotPolicy {
            interval: 100,
            keep: 3,
        }
    }
}

type Reply = oneshot::Sender<Result<SnapshotInfo, String>>;

/// How many slots behind the root a kept snapshot may be and still answer a request.
pub const FRESH_ENOUGH: Slot = 64;

struct Job {
    fields: SnapshotFields,
    accounts: Vec<(Pubkey, u64)>,
    reply: Option<Reply>,
}

/// The engine's side: decides when, captures the root bank, hands it to the writer.
pub struct Snapshotter {
    jobs: SyncSender<Job>,
    dir: PathBuf,
    policy: SnapshotPolicy,
    last: Slot,
}

impl std::fmt::Debug for Snapshotter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Snapshotter")
            .field("dir", &self.dir)
            .field("policy", &self.policy)
            .field("last", &self.last)
            .finish()
    }
}

impl Snapshotter {
    /// Starts the writer thread for `dir`; `last` is the newest snapshot's slot.
    pub fn start(dir: PathBuf, policy: SnapshotPolicy, last: Slot) -> std::io::Result<Self> {
        let (jobs, inbox) = std::sync::mpsc::sync_channel::<Job>(1);
        let worker_dir = dir.clone();
        let keep = policy.keep.max(1);
        std::thread::Builder::new()
            .name("bb-snapshot".into())
            .spawn(move || {
                for job in inbox {
                    let slot = job.fields.slot;
                    let result = bb_snapshots::write_snapshot(
                        &job.fields,
                        job.accounts.into_iter(),
                        &worker_dir,
                        &NoProgress,
                    )
                    .map_err(|e| e.to_string());
                    match &result {
                        Ok(info) => {
                            info!(slot, size = info.size_bytes, "snapshot written");
                            if let Err(e) = bb_snapshots::prune_snapshots(&worker_dir, keep) {
                                warn!("pruning snapshots: {e}");
                            }
                        }
                        Err(e) => warn!(slot, "snapshot failed: {e}"),
                    }
                    if let Some(reply) = job.reply {
                        let _ = reply.send(result);
                    }
                }
            })?;
        Ok(Snapshotter {
            jobs,
            dir,
            policy,
            last,
        })
    }

    /// After a new root: a snapshot if `interval` rooted slots passed since the last one.
    pub fn on_root(&mut self, root: &Bank) {
        if self.policy.interval == 0 || root.slot() < self.last + self.policy.interval {
            return;
        }
        self.capture(root, None);
    }

    /// A snapshot of `root` for a client: the newest kept file if it is at most
    /// [`FRESH_ENOUGH`] slots older (so clients cannot make the node copy its whole state
    /// once per root), else one made now.
    pub fn request(&mut self, root: &Bank, reply: Reply) {
        if let Some(existing) = bb_snapshots::list_snapshots(&self.dir)
            .ok()
            .and_then(|list| list.into_iter().next())
            .filter(|s| s.slot + FRESH_ENOUGH >= root.slot())
        {
            let _ = reply.send(Ok(existing));
            return;
        }
        self.capture(root, Some(reply));
    }

    fn capture(&mut self, root: &Bank, reply: Option<Reply>) {
        if root.slot() == 0 {
            if let Some(r) = reply {
                let _ = r.send(Err("the node has no root above genesis yet".into()));
            }
            return;
        }
        let (fields, accounts) = match root.snapshot() {
            Ok(taken) => taken,
            Err(e) => {
                warn!(slot = root.slot(), "cannot take a snapshot: {e}");
                if let Some(r) = reply {
                    let _ = r.send(Err(e.to_string()));
                }
                return;
            }
        };
        let slot = fields.slot;
        match self.jobs.try_send(Job {
            fields,
            accounts,
            reply,
        }) {
            Ok(()) => self.last = slot,
            Err(TrySendError::Full(job)) | Err(TrySendError::Disconnected(job)) => {
                // The writer is still busy with the previous one: skip this root.
                if let Some(r) = job.reply {
                    let _ = r.send(Err("a snapshot is being written; ask again shortly".into()));
                }
            }
        }
    }
}

/// The newest snapshot in `dir` that loads, as the bank to start from; `None` if there
/// is none (start from genesis). Files that fail to load are reported and skipped.
pub fn newest_bank(dir: &Path, genesis: &Genesis) -> Option<(Arc<Bank>, SnapshotInfo)> {
    let list = bb_snapshots::list_snapshots(dir).ok()?;
    for info in list {
        match bb_snapshots::load_snapshot(&info.path, genesis, &NoProgress) {
            Ok(bank) => return Some((bank, info)),
            Err(e) => {
                warn!(file = %info.path.display(), "skipping a snapshot that does not load: {e}")
            }
        }
    }
    None
}
