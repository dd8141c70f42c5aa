//! The redb tables. Their names and key/value types are part of the file format: changing one
//! means bumping [`FORMAT_VERSION`].

use redb::TableDefinition;

/// The ledger format this build writes and reads, stored under [`FORMAT_KEY`] in [`FORMAT`].
pub(crate) const FORMAT_VERSION: u32 = 2;
pub(crate) const FORMAT_KEY: u8 = 0;
/// The single row of [`TOWER`].
pub(crate) const TOWER_KEY: u8 = 0;

/// Format marker, so a future layout is refused rather than misread.
pub(crate) const FORMAT: TableDefinition<u8, u32> = TableDefinition::new("ledger_format");

/// slot -> encoded [`crate::SlotMeta`] (its own versioned layout, not a fixed-width value, so
/// a later layout can change length).
pub(crate) const SLOT_META: TableDefinition<u64, &[u8]> = TableDefinition::new("slot_meta");

/// (slot, kind, index) -> shred bytes. Kind sits before index so that all shreds of one kind
/// of one slot are a single contiguous key range.
pub(crate) const SHREDS: TableDefinition<(u64, u8, u32), &[u8]> = TableDefinition::new("shreds");

/// slot -> the whole encoded block.
pub(crate) const BLOCKS: TableDefinition<u64, &[u8]> = TableDefinition::new("blocks");

/// Rooted slot -> block id.
pub(crate) const ROOTS: TableDefinition<u64, &[u8; 32]> = TableDefinition::new("roots");

/// Rooted slot -> bank hash after that slot.
pub(crate) const BANK_HASHES: TableDefinition<u64, &[u8; 32]> = TableDefinition::new("bank_hashes");

/// The one persisted tower, under [`TOWER_KEY`].
pub(crate) const TOWER: TableDefinition<u8, &[u8]> = TableDefinition::new("tower");

/// (slot, voter) -> the vote as received, kept for inspection.
pub(crate) const VOTES: TableDefinition<(u64, &[u8; 32]), &[u8]> = TableDefinition::new("votes");

/// Pubkey -> account bytes, as of the latest root.
pub(crate) const ACCOUNTS: TableDefinition<&[u8; 32], &[u8]> = TableDefinition::new("accounts");

/// (offense slot, offender, offense kind) -> the node's record of slashing evidence it
/// holds (evidence bytes and what became of it; opaque here).
pub(crate) const EVIDENCE: TableDefinition<(u64, &[u8; 32], u8), &[u8]> =
    TableDefinition::new("slashing_evidence");

/// (epoch, offender) -> (stake before, stake after): penalties applied by rooted banks.
pub(crate) const PENALTIES: TableDefinition<(u64, &[u8; 32]), (u64, u64)> =
    TableDefinition::new("slashing_penalties");
