//! The rooted state of a stopped node, from its ledger: the newest snapshot at or below the
//! wanted root (or the genesis), then every rooted block after it replayed and checked.

use std::path::Path;
use std::sync::Arc;

use bb_core::{Block, Canonical, Genesis, Hash, Slot};
use bb_ledger::{LEDGER_FILE_NAME, Ledger, LedgerError};
use bb_runtime::Bank;

use crate::dir::{SNAPSHOT_DIR_NAME, newest_snapshot_at_or_below};
use crate::error::SnapshotError;
use crate::progress::Progress;
use crate::read::load_snapshot;

/// Opens the ledger in `dir`, which must exist, for a tool to read while no node runs on
/// it. A ledger held by a running node is refused with [`SnapshotError::LedgerInUse`].
pub fn open_stopped_ledger(dir: &Path) -> Result<Ledger, SnapshotError> {
    if !dir.join(LEDGER_FILE_NAME).is_file() {
        return Err(SnapshotError::NoLedger {
            dir: dir.to_path_buf(),
            file: LEDGER_FILE_NAME,
        });
    }
    Ledger::open(dir).map_err(|e| match e {
        LedgerError::Storage {
            source: redb::Error::DatabaseAlreadyOpen,
            ..
        } => SnapshotError::LedgerInUse {
            dir: dir.to_path_buf(),
        },
        e => SnapshotError::Ledger(e),
    })
}

/// The root bank of `ledger` at `upto` (a rooted slot; default: the latest root).
///
/// Starts from the newest snapshot in `<ledger dir>/snapshots/` at or below that slot,
/// which must be a root of this ledger with the same block id and bank hash, or else from
/// the genesis; then replays every rooted block after it in order, checking that each
/// builds on the rooted slot before it (a gap is an error naming the slot), that its id is
/// the one rooted, and that its bank hash is the one the ledger recorded.
pub fn bank_from_ledger(
    ledger: &Ledger,
    genesis: &Genesis,
    upto: Option<Slot>,
    progress: &dyn Progress,
) -> Result<Arc<Bank>, SnapshotError> {
    let latest = ledger.latest_root()?.map_or(0, |(slot, _)| slot);
    let target = match upto {
        None | Some(0) => upto.unwrap_or(latest),
        Some(slot) => {
            if ledger.roots_range(slot..=slot)?.is_empty() {
                return Err(SnapshotError::NotRooted { slot, latest });
            }
            slot
        }
    };
    let dir = ledger
        .path()
        .parent()
        .unwrap_or_else(|| Path::new("."))
        .join(SNAPSHOT_DIR_NAME);
    let mut bank = match newest_snapshot_at_or_below(&dir, target)? {
        Some(info) if info.slot > 0 => {
            let bank = load_snapshot(&info.path, genesis, progress)?;
            let chain_err = |what: String| SnapshotError::Chain {
                slot: info.slot,
                what,
            };
            let rooted = ledger.roots_range(info.slot..=info.slot)?;
            let Some((_, block_id)) = rooted.first() else {
                return Err(chain_err(format!(
                    "snapshot {} is of a slot this ledger never rooted",
                    info.path.display()
                )));
            };
            if Some(Hash(*block_id)) != bank.block_id() {
                return Err(chain_err(format!(
                    "snapshot {} holds another block than the one rooted",
                    info.path.display()
                )));
            }
            if let Some(recorded) = ledger.bank_hash(info.slot)?
                && Some(Hash(recorded)) != bank.hash()
            {
                return Err(SnapshotError::LedgerBankHash {
                    slot: info.slot,
                    recorded: Hash(recorded),
                    replayed: bank.hash().unwrap_or_default(),
                });
            }
            bank
        }
        _ => Bank::new_genesis(genesis)?,
    };

    let roots = ledger.roots_range(bank.slot() + 1..=target)?;
    progress.phase("replaying rooted blocks", roots.len() as u64, "blocks");
    let mut previous = bank.slot();
    for (slot, block_id) in roots {
        let chain_err = |what: String| SnapshotError::Chain { slot, what };
        let bytes = ledger
            .get_block(slot)?
            .ok_or_else(|| chain_err("its block is not in the ledger".into()))?;
        let block = Block::from_bytes(&bytes)
            .map_err(|e| chain_err(format!("its stored block does not decode: {e}")))?;
        if block.header.slot != slot {
            return Err(chain_err(format!(
                "the block stored for it is of slot {}",
                block.header.slot
            )));
        }
        if block.header.parent_slot != previous {
            return Err(chain_err(format!(
                "its block builds on slot {}, but the rooted slot before it is {previous} (a root is missing from the ledger)",
                block.header.parent_slot
            )));
        }
        if block.id() != Hash(block_id) {
            return Err(chain_err(format!(
                "the stored block has id {}, the root records {}",
                block.id(),
                Hash(block_id)
            )));
        }
        let replayed = Bank::replay_rooted(&bank, &block)
            .map_err(|source| SnapshotError::Replay { slot, source })?;
        let hash = replayed.hash().unwrap_or_default();
        if let Some(recorded) = ledger.bank_hash(slot)?
            && Hash(recorded) != hash
        {
            return Err(SnapshotError::LedgerBankHash {
                slot,
                recorded: Hash(recorded),
                replayed: hash,
            });
        }
        bank = replayed;
        previous = slot;
        progress.advance(1);
    }
    Ok(bank)
}
