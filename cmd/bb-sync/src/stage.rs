//! The staging directory: everything a sync downloads lands beside the target ledger
//! (`.NAME.bb-sync` next to `NAME`), never in it. Only a finished, verified ledger moves
//! into place, by renames; an interrupted or refused sync leaves the target untouched,
//! and the next run reuses what the staging directory already holds.

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};

/// What a staging directory was started for; a different sync starts over.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    pub version: u32,
    pub mode: String,
    pub genesis_hash: String,
    /// The snapshot being downloaded, once chosen.
    #[serde(default)]
    pub snapshot: Option<SnapshotChoice>,
    /// Set when the staged ledger is complete and verified: only the swap remains.
    #[serde(default)]
    pub ready: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotChoice {
    pub slot: u64,
    pub bank_hash: String,
    pub file_name: String,
    pub size: u64,
}

const PLAN_VERSION: u32 = 1;
const PLAN_FILE: &str = "sync.json";

/// The staging area of one target ledger directory.
#[derive(Debug)]
pub struct Stage {
    pub dir: PathBuf,
    pub target: PathBuf,
}

impl Stage {
    pub fn for_target(target: &Path) -> anyhow::Result<Stage> {
        let name = target
            .file_name()
            .with_context(|| format!("{} does not name a directory", target.display()))?
            .to_string_lossy()
            .to_string();
        let parent = match target.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        std::fs::create_dir_all(&parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
        Ok(Stage {
            dir: parent.join(format!(".{name}.bb-sync")),
            target: target.to_path_buf(),
        })
    }

    /// The ledger being built.
    pub fn ledger_dir(&self) -> PathBuf {
        self.dir.join("ledger")
    }

    fn old_dir(&self) -> PathBuf {
        self.dir.with_extension("bb-sync-old")
    }

    /// Opens the staging area for `mode` on `genesis_hash`: reuses a matching one, starts
    /// over otherwise. Returns the plan and whether anything was reused.
    pub fn open(&self, mode: &str, genesis_hash: &str) -> anyhow::Result<(Plan, bool)> {
        let fresh = Plan {
            version: PLAN_VERSION,
            mode: mode.to_string(),
            genesis_hash: genesis_hash.to_string(),
            snapshot: None,
            ready: false,
        };
        if let Some(plan) = self.read_plan()
            && plan.version == PLAN_VERSION
            && plan.mode == mode
            && plan.genesis_hash == genesis_hash
        {
            return Ok((plan, true));
        }
        if self.dir.exists() {
            std::fs::remove_dir_all(&self.dir)
                .with_context(|| format!("cannot clear {}", self.dir.display()))?;
        }
        std::fs::create_dir_all(self.ledger_dir())
            .with_context(|| format!("cannot create {}", self.dir.display()))?;
        self.save(&fresh)?;
        Ok((fresh, false))
    }

    fn read_plan(&self) -> Option<Plan> {
        let bytes = std::fs::read(self.dir.join(PLAN_FILE)).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// Writes the plan atomically.
    pub fn save(&self, plan: &Plan) -> anyhow::Result<()> {
        let path = self.dir.join(PLAN_FILE);
        let tmp = self.dir.join(format!("{PLAN_FILE}.tmp"));
        let json = serde_json::to_vec_pretty(plan)?;
        write_synced(&tmp, &json)?;
        std::fs::rename(&tmp, &path).with_context(|| format!("cannot write {}", path.display()))
    }

    /// Moves the finished ledger into place: the old target (if any) aside, the staged
    /// ledger in, then the old one removed. A crash in between is finished by
    /// [`Stage::recover`] on the next run.
    pub fn swap_in(&self) -> anyhow::Result<()> {
        let old = self.old_dir();
        if self.target.exists() {
            std::fs::rename(&self.target, &old)
                .with_context(|| format!("cannot move {} aside", self.target.display()))?;
        }
        std::fs::rename(self.ledger_dir(), &self.target)
            .with_context(|| format!("cannot move the new ledger to {}", self.target.display()))?;
        sync_parent(&self.target);
        if old.exists() {
            std::fs::remove_dir_all(&old)
                .with_context(|| format!("cannot remove {}", old.display()))?;
        }
        std::fs::remove_dir_all(&self.dir)
            .with_context(|| format!("cannot remove {}", self.dir.display()))?;
        Ok(())
    }

    /// Finishes a swap a crash interrupted. Returns true if one was finished.
    pub fn recover(&self) -> anyhow::Result<bool> {
        let old = self.old_dir();
        if !old.exists() {
            return Ok(false);
        }
        if self.target.exists() {
            // The new ledger is in place; only the cleanup was left.
            std::fs::remove_dir_all(&old)
                .with_context(|| format!("cannot remove {}", old.display()))?;
            if self.dir.exists() {
                std::fs::remove_dir_all(&self.dir)
                    .with_context(|| format!("cannot remove {}", self.dir.display()))?;
            }
            return Ok(true);
        }
        // Moved aside but the new one never moved in: put the old one back.
        std::fs::rename(&old, &self.target)
            .with_context(|| format!("cannot restore {}", self.target.display()))?;
        Ok(false)
    }
}

/// Writes a file and syncs it to disk.
pub fn write_synced(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    let mut f =
        std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .with_context(|| format!("cannot write {}", path.display()))
}

fn sync_parent(path: &Path) {
    if let Some(parent) = path.parent()
        && let Ok(dir) = std::fs::File::open(if parent.as_os_str().is_empty() {
            Path::new(".")
        } else {
            parent
        })
    {
        let _ = dir.sync_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plan_is_reused_only_for_the_same_sync() {
        let root = tempfile::tempdir().unwrap();
        let stage = Stage::for_target(&root.path().join("ledger")).unwrap();
        let (mut plan, reused) = stage.open("full", "G").unwrap();
        assert!(!reused);
        std::fs::write(stage.ledger_dir().join("x"), b"kept").unwrap();
        plan.ready = true;
        stage.save(&plan).unwrap();
        let (again, reused) = stage.open("full", "G").unwrap();
        assert!(reused && again.ready);
        assert!(stage.ledger_dir().join("x").exists());
        let (_, reused) = stage.open("warp", "G").unwrap();
        assert!(!reused);
        assert!(
            !stage.ledger_dir().join("x").exists(),
            "another mode starts over"
        );
    }

    #[test]
    fn swap_replaces_the_target_and_recover_finishes_or_undoes_a_crash() {
        let root = tempfile::tempdir().unwrap();
        let target = root.path().join("ledger");
        std::fs::create_dir_all(&target).unwrap();
        std::fs::write(target.join("old"), b"old").unwrap();
        let stage = Stage::for_target(&target).unwrap();
        stage.open("full", "G").unwrap();
        std::fs::write(stage.ledger_dir().join("new"), b"new").unwrap();
        stage.swap_in().unwrap();
        assert!(target.join("new").exists() && !target.join("old").exists());
        assert!(!stage.dir.exists());

        // A crash after moving the old ledger aside, before the new one moved in.
        std::fs::rename(&target, stage.old_dir()).unwrap();
        assert!(!stage.recover().unwrap());
        assert!(target.join("new").exists(), "the old ledger is put back");
    }
}
