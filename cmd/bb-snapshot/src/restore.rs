//! `restore FILE --ledger DIR`: a fresh ledger rooted at the snapshot's slot.
//!
//! The snapshot is verified and rebuilt into a bank first. The new ledger is built whole in
//! a sibling temporary directory (root, bank hash, accounts, the old ledger's vote tower,
//! the snapshot file, the genesis), made durable, and swapped in with one atomic
//! exchange of directory names where the system has it (two renames otherwise), so a crash
//! leaves either the old ledger or the new one. The tower is carried over because a
//! validator that lost its vote history could vote twice.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use bb_cli::{EXIT_OK, Output};
use bb_ledger::{LEDGER_FILE_NAME, Ledger, RootCommit};
use bb_snapshots::{SNAPSHOT_DIR_NAME, snapshot_file_name};
use serde::Serialize;

use crate::bar::Bar;
use crate::load_genesis;

/// What may be in a ledger directory; anything else makes `restore` refuse to replace it.
const LEDGER_ENTRIES: &[&str] = &[LEDGER_FILE_NAME, SNAPSHOT_DIR_NAME, "genesis.json"];

#[derive(Serialize)]
struct Restored {
    ledger: PathBuf,
    slot: u64,
    bank_hash: String,
    state_hash: String,
    accounts: usize,
    replaced_a_ledger: bool,
    tower_kept: bool,
}

pub fn run(
    out: Output,
    file: &Path,
    dir: &Path,
    genesis: Option<PathBuf>,
    yes: bool,
) -> anyhow::Result<u8> {
    let (genesis_path, genesis) = load_genesis(genesis, dir)?;
    let genesis_bytes = std::fs::read(&genesis_path)
        .with_context(|| format!("cannot read genesis {}", genesis_path.display()))?;
    let bar = Bar::new(out);
    let bank = bb_snapshots::load_snapshot(file, &genesis, &bar)?;
    bar.finish();

    let existing = dir.join(LEDGER_FILE_NAME).is_file();
    if dir.exists() {
        check_replaceable(dir)?;
    }
    if existing && !yes {
        let question = format!(
            "{} holds a ledger; replace it with the state of slot {} (its vote tower is kept)?",
            dir.display(),
            bank.slot()
        );
        match bb_cli::prompt::confirm(&question) {
            Some(true) => {}
            Some(false) => anyhow::bail!(
                "nothing restored: the ledger in {} is unchanged",
                dir.display()
            ),
            None => anyhow::bail!(
                "{} already holds a ledger: pass --yes to replace it",
                dir.display()
            ),
        }
    }
    let tower = if existing {
        let old = bb_snapshots::open_stopped_ledger(dir)?;
        old.load_tower()
            .with_context(|| format!("cannot read the vote tower of {}", dir.display()))?
    } else {
        None
    };

    let Some(bank_hash) = bank.hash() else {
        anyhow::bail!("the restored bank is not frozen");
    };
    let name = dir.file_name().map_or_else(
        || "ledger".to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    let parent = match dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent)
        .with_context(|| format!("cannot create {}", parent.display()))?;
    let staging = parent.join(format!(".{name}.restore-{}", std::process::id()));
    let accounts = bank.accounts();
    let built = build(
        &staging,
        &bank,
        &accounts,
        tower.as_deref(),
        file,
        &genesis_bytes,
    );
    if let Err(e) = built.and_then(|()| swap_in(&staging, dir, &parent)) {
        let _ = std::fs::remove_dir_all(&staging);
        return Err(e);
    }
    let restored = Restored {
        ledger: dir.to_path_buf(),
        slot: bank.slot(),
        bank_hash: bank_hash.to_string(),
        state_hash: bank.state_hash().to_string(),
        accounts: accounts.len(),
        replaced_a_ledger: existing,
        tower_kept: tower.is_some(),
    };
    out.emit(&restored, || {
        let mut text = format!(
            "{} is now a ledger rooted at slot {} (bank hash {}, {} accounts)",
            dir.display(),
            restored.slot,
            restored.bank_hash,
            restored.accounts
        );
        if restored.tower_kept {
            text.push_str("; the vote tower was kept");
        }
        text
    });
    Ok(EXIT_OK)
}

/// Refuses a directory that holds anything a ledger directory does not.
fn check_replaceable(dir: &Path) -> anyhow::Result<()> {
    if !dir.is_dir() {
        anyhow::bail!("{} exists and is not a directory", dir.display());
    }
    let entries =
        std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))?;
    for entry in entries {
        let entry = entry.with_context(|| format!("cannot read {}", dir.display()))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !LEDGER_ENTRIES.contains(&name.as_str()) {
            anyhow::bail!(
                "{} holds {name}, which is not part of a ledger: refusing to replace it",
                dir.display()
            );
        }
    }
    Ok(())
}

/// The whole new ledger directory at `staging`, durable.
fn build(
    staging: &Path,
    bank: &bb_runtime::Bank,
    accounts: &[(bb_core::Pubkey, u64)],
    tower: Option<&[u8]>,
    snapshot: &Path,
    genesis: &[u8],
) -> anyhow::Result<()> {
    if staging.exists() {
        std::fs::remove_dir_all(staging)
            .with_context(|| format!("cannot clear {}", staging.display()))?;
    }
    let ledger = Ledger::open(staging)?;
    let rows: Vec<([u8; 32], Vec<u8>)> = accounts
        .iter()
        .map(|(k, b)| (k.0, b.to_le_bytes().to_vec()))
        .collect();
    let (Some(bank_hash), Some(block_id)) = (bank.hash(), bank.block_id()) else {
        anyhow::bail!("the restored bank is not frozen");
    };
    ledger.commit_root(&RootCommit {
        slot: bank.slot(),
        block_id: block_id.0,
        bank_hash: bank_hash.0,
        accounts: &rows,
        ..RootCommit::default()
    })?;
    drop(rows);
    if let Some(tower) = tower {
        ledger.save_tower(tower)?;
    }
    drop(ledger);

    let snapshots = staging.join(SNAPSHOT_DIR_NAME);
    std::fs::create_dir_all(&snapshots)
        .with_context(|| format!("cannot create {}", snapshots.display()))?;
    let target = snapshots.join(snapshot_file_name(bank.slot(), &bank_hash));
    std::fs::copy(snapshot, &target).with_context(|| {
        format!(
            "cannot copy {} into {}",
            snapshot.display(),
            snapshots.display()
        )
    })?;
    sync_file(&target)?;
    sync_dir(&snapshots)?;
    let genesis_path = staging.join("genesis.json");
    let mut f = std::fs::File::create(&genesis_path)
        .with_context(|| format!("cannot write {}", genesis_path.display()))?;
    f.write_all(genesis)
        .and_then(|()| f.sync_all())
        .with_context(|| format!("cannot write {}", genesis_path.display()))?;
    sync_dir(staging)
}

/// Puts `staging` in the place of `dir` in one step (`bb_cli::fsx::replace_dir`), then
/// removes the old ledger.
fn swap_in(staging: &Path, dir: &Path, parent: &Path) -> anyhow::Result<()> {
    let aside = parent.join(format!(
        ".{}.old-{}",
        dir.file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned()),
        std::process::id()
    ));
    let old = bb_cli::fsx::replace_dir(staging, dir, &aside)
        .with_context(|| format!("cannot move {} to {}", staging.display(), dir.display()))?;
    if let Some(old) = old {
        std::fs::remove_dir_all(&old)
            .with_context(|| format!("cannot remove the old ledger, now at {}", old.display()))?;
    }
    Ok(())
}

fn sync_file(path: &Path) -> anyhow::Result<()> {
    std::fs::File::open(path)
        .and_then(|f| f.sync_all())
        .with_context(|| format!("cannot sync {}", path.display()))
}

fn sync_dir(dir: &Path) -> anyhow::Result<()> {
    sync_file(dir)
}
