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

    fn old_dir(&self) -> PathBuf {
        self.dir.join("old")
    }

    /// Moves the finished ledger into place in one step (see `bb_cli::fsx::replace_dir`),
    /// then removes what is left. A marker file travels inside the new ledger, so a run
    /// interrupted at any point can tell whether the swap happened ([`Stage::recover`]).
    pub fn swap_in(&self) -> anyhow::Result<()> {
        let marker = self.ledger_dir().join(SWAP_MARKER);
        write_synced(&marker, b"")?;
        bb_cli::fsx::replace_dir(&self.ledger_dir(), &self.target, &self.old_dir())
            .with_context(|| format!("cannot move the new ledger to {}", self.target.display()))?;
        self.finish()
    }

    /// After the swap: the marker out of the new ledger, the staging area (with the old
    /// ledger in it) removed.
    fn finish(&self) -> anyhow::Result<()> {
        let _ = std::fs::remove_file(self.target.join(SWAP_MARKER));
        std::fs::remove_dir_all(&self.dir)
            .with_context(|| format!("cannot remove {}", self.dir.display()))?;
        Ok(())
    }

    /// Finishes a swap a crash interrupted: returns true if one was finished. Puts the old
    /// ledger back if a crash left the target missing.
    pub fn recover(&self) -> anyhow::Result<bool> {
        if self.target.join(SWAP_MARKER).exists() {
            self.finish()?;
            return Ok(true);
        }
        if !self.target.exists() && self.old_dir().exists() {
            std::fs::rename(self.old_dir(), &self.target)
                .with_context(|| format!("cannot restore {}", self.target.display()))?;
        }
        Ok(false)
    }
}

/// Marks a ledger directory as the one a sync put in place.
const SWAP_MARKER: &str = ".bb-sync-new";

/// Writes a file and syncs it to disk.
pub fn write_synced(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    bb_cli::fsx::write_synced(path, bytes)
        .with_context(|| format!("cannot write {}", path.display()))
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

        assert!(!target.join(SWAP_MARKER).exists());

        // A crash right after the swap: the marker is in the target; recover finishes.
        stage.open("full", "G").unwrap();
        std::fs::write(stage.ledger_dir().join("newer"), b"newer").unwrap();
        std::fs::write(stage.ledger_dir().join(SWAP_MARKER), b"").unwrap();
        let old = bb_cli::fsx::replace_dir(&stage.ledger_dir(), &target, &stage.old_dir())
            .unwrap()
            .unwrap();
        assert!(old.join("new").exists());
        assert!(stage.recover().unwrap());
        assert!(target.join("newer").exists() && !target.join(SWAP_MARKER).exists());
        assert!(!stage.dir.exists());

        // A crash after moving the old ledger aside (no exchange), before the new one
        // moved in: the old one is put back.
        stage.open("full", "G").unwrap();
        std::fs::rename(&target, stage.old_dir()).unwrap();
        assert!(!stage.recover().unwrap());
        assert!(target.join("newer").exists(), "the old ledger is put back");
    }
}
