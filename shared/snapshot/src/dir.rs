//! Snapshot files in a directory: names, listing, pruning.

use std::path::{Path, PathBuf};

use bb_core::{Hash, Slot};

use crate::error::SnapshotError;
use crate::read::{SnapshotInfo, read_info};

/// The directory inside a ledger directory that holds its snapshots.
pub const SNAPSHOT_DIR_NAME: &str = "snapshots";

/// `snapshot-<slot>-<bank hash in base58>.bbsnap`.
pub fn snapshot_file_name(slot: Slot, bank_hash: &Hash) -> String {
    format!("snapshot-{slot}-{bank_hash}.bbsnap")
}

pub(crate) fn file_name_of(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

/// Makes a rename or a new file in `dir` durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), SnapshotError> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(SnapshotError::io("sync directory", dir))
}

fn is_snapshot_name(name: &str) -> bool {
    name.starts_with("snapshot-") && name.ends_with(".bbsnap")
}

/// The snapshots in `dir`, newest slot first (by file name, then header). Temporary files
/// of writers and files whose header does not read are left out; a missing directory has
/// none.
pub fn list_snapshots(dir: &Path) -> Result<Vec<SnapshotInfo>, SnapshotError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(SnapshotError::io("read directory", dir)(e)),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(SnapshotError::io("read directory", dir))?;
        let name = entry.file_name();
        if !is_snapshot_name(&name.to_string_lossy()) {
            continue;
        }
        if let Ok(info) = read_info(&entry.path()) {
            out.push(info);
        }
    }
    out.sort_by(|a, b| b.slot.cmp(&a.slot).then(b.created_ms.cmp(&a.created_ms)));
    Ok(out)
}

/// The newest snapshot in `dir` at or below `slot`, by its header.
pub fn newest_snapshot_at_or_below(
    dir: &Path,
    slot: Slot,
) -> Result<Option<SnapshotInfo>, SnapshotError> {
    Ok(list_snapshots(dir)?.into_iter().find(|s| s.slot <= slot))
}

/// Deletes all but the `keep` newest snapshots in `dir`; returns the deleted paths.
pub fn prune_snapshots(dir: &Path, keep: usize) -> Result<Vec<PathBuf>, SnapshotError> {
    let mut removed = Vec::new();
    for old in list_snapshots(dir)?.into_iter().skip(keep) {
        std::fs::remove_file(&old.path).map_err(SnapshotError::io("remove", &old.path))?;
        removed.push(old.path);
    }
    if !removed.is_empty() {
        sync_dir(dir)?;
    }
    Ok(removed)
}
