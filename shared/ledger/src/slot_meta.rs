//! `SlotMeta`: what the ledger knows about one slot's shreds, in a fixed little-endian layout.
//!
//! This is the one value the ledger encodes itself, so its layout is written out here rather
//! than left to a serializer: a version byte first, so a later layout can be told apart.

use crate::LedgerError;

/// The bookkeeping of one slot: its parent and how far its shreds have arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SlotMeta {
    /// The slot this slot's block builds on. Below the slot itself, except for slot 0.
    pub parent_slot: u64,
    /// How many distinct data shreds of the slot have been stored.
    pub received_data_shreds: u32,
    /// The number of data shreds of the slot, known once the last one has arrived.
    pub num_data_shreds: Option<u32>,
    /// Every data shred is here: the block can be assembled.
    pub is_full: bool,
    /// The slot was abandoned (invalid block, or given up on); it will never be replayed.
    pub is_dead: bool,
    /// Wall-clock milliseconds when the first shred of the slot arrived (for latency metrics).
    pub first_shred_at_ms: u64,
}

/// Layout version 1. Bytes, all integers little-endian:
///
/// | offset | size | field |
/// |---|---|---|
/// | 0 | 1 | version = 1 |
/// | 1 | 8 | parent_slot |
/// | 9 | 4 | received_data_shreds |
/// | 13 | 1 | 1 if num_data_shreds is known, else 0 |
/// | 14 | 4 | num_data_shreds, 0 when unknown |
/// | 18 | 1 | flags: bit 0 is_full, bit 1 is_dead, other bits 0 |
/// | 19 | 8 | first_shred_at_ms |
const VERSION: u8 = 1;
const ENCODED_LEN: usize = SlotMeta::ENCODED_LEN;

const FLAG_FULL: u8 = 1;
const FLAG_DEAD: u8 = 1 << 1;

impl SlotMeta {
    /// The length of an encoded `SlotMeta`.
    pub const ENCODED_LEN: usize = 27;

    /// The fixed-layout bytes stored in the `slot_meta` table.
    pub fn encode(&self) -> [u8; ENCODED_LEN] {
        let mut out = [0u8; ENCODED_LEN];
        out[0] = VERSION;
        out[1..9].copy_from_slice(&self.parent_slot.to_le_bytes());
        out[9..13].copy_from_slice(&self.received_data_shreds.to_le_bytes());
        if let Some(n) = self.num_data_shreds {
            out[13] = 1;
            out[14..18].copy_from_slice(&n.to_le_bytes());
        }
        let mut flags = 0;
        if self.is_full {
            flags |= FLAG_FULL;
        }
        if self.is_dead {
            flags |= FLAG_DEAD;
        }
        out[18] = flags;
        out[19..27].copy_from_slice(&self.first_shred_at_ms.to_le_bytes());
        out
    }

    /// Decodes bytes made by [`SlotMeta::encode`]. Only the canonical encoding is accepted, so
    /// a meta that decodes re-encodes to the same bytes.
    pub fn decode(bytes: &[u8]) -> Result<SlotMeta, LedgerError> {
        let corrupt = |detail: String| LedgerError::Corrupt {
            what: "slot meta".to_string(),
            detail,
        };
        let bytes: &[u8; ENCODED_LEN] = bytes
            .try_into()
            .map_err(|_| corrupt(format!("{} bytes, expected {ENCODED_LEN}", bytes.len())))?;
        if bytes[0] != VERSION {
            return Err(corrupt(format!(
                "layout version {}, expected {VERSION}",
                bytes[0]
            )));
        }
        let num = read_u32(bytes, 14);
        let num_data_shreds = match bytes[13] {
            0 if num == 0 => None,
            0 => {
                return Err(corrupt(format!(
                    "unknown shred count carries a value {num}"
                )));
            }
            1 => Some(num),
            other => {
                return Err(corrupt(format!(
                    "shred-count marker {other}, expected 0 or 1"
                )));
            }
        };
        let flags = bytes[18];
        if flags & !(FLAG_FULL | FLAG_DEAD) != 0 {
            return Err(corrupt(format!("unknown flag bits {flags:#04x}")));
        }
        Ok(SlotMeta {
            parent_slot: read_u64(bytes, 1),
            received_data_shreds: read_u32(bytes, 9),
            num_data_shreds,
            is_full: flags & FLAG_FULL != 0,
            is_dead: flags & FLAG_DEAD != 0,
            first_shred_at_ms: read_u64(bytes, 19),
        })
    }
}

/// Whether `parent` may be the parent of `slot`: strictly below it, except that slot 0, the
/// genesis slot, names itself.
pub(crate) fn parent_is_valid(slot: u64, parent: u64) -> bool {
    parent < slot || (slot == 0 && parent == 0)
}

fn read_u64(bytes: &[u8; ENCODED_LEN], at: usize) -> u64 {
    let mut field = [0u8; 8];
    field.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(field)
}

fn read_u32(bytes: &[u8; ENCODED_LEN], at: usize) -> u32 {
    let mut field = [0u8; 4];
    field.copy_from_slice(&bytes[at..at + 4]);
    u32::from_le_bytes(field)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> SlotMeta {
        SlotMeta {
            parent_slot: 41,
            received_data_shreds: 17,
            num_data_shreds: Some(32),
            is_full: false,
            is_dead: true,
            first_shred_at_ms: 1_700_000_000_123,
        }
    }

    #[test]
    fn round_trips_every_field() {
        for meta in [
            sample(),
            SlotMeta::default(),
            SlotMeta {
                num_data_shreds: None,
                is_full: true,
                is_dead: false,
                ..sample()
            },
            SlotMeta {
                parent_slot: u64::MAX,
                received_data_shreds: u32::MAX,
                num_data_shreds: Some(u32::MAX),
                is_full: true,
                is_dead: true,
                first_shred_at_ms: u64::MAX,
            },
        ] {
            let bytes = meta.encode();
            assert_eq!(SlotMeta::decode(&bytes).unwrap(), meta);
        }
    }

    #[test]
    fn layout_is_little_endian_with_version_first() {
        let bytes = sample().encode();
        assert_eq!(bytes[0], 1);
        assert_eq!(&bytes[1..9], &41u64.to_le_bytes());
        assert_eq!(&bytes[9..13], &17u32.to_le_bytes());
        assert_eq!(bytes[13], 1);
        assert_eq!(&bytes[14..18], &32u32.to_le_bytes());
        assert_eq!(bytes[18], FLAG_DEAD);
    }

    #[test]
    fn decode_rejects_garbage_without_panicking() {
        let good = sample().encode();
        let mut cases: Vec<Vec<u8>> = vec![
            vec![],
            vec![1],
            good[..ENCODED_LEN - 1].to_vec(),
            [&good[..], &[0]].concat(),
        ];
        let mut bad_version = good;
        bad_version[0] = 2;
        cases.push(bad_version.to_vec());
        let mut bad_marker = good;
        bad_marker[13] = 7;
        cases.push(bad_marker.to_vec());
        let mut unknown_with_value = SlotMeta {
            num_data_shreds: None,
            ..sample()
        }
        .encode();
        unknown_with_value[14] = 9;
        cases.push(unknown_with_value.to_vec());
        let mut bad_flags = good;
        bad_flags[18] = 0x80;
        cases.push(bad_flags.to_vec());

        for bytes in cases {
            let err = SlotMeta::decode(&bytes).unwrap_err();
            assert!(matches!(err, LedgerError::Corrupt { .. }), "{err}");
        }
    }

    #[test]
    fn decode_never_panics_on_random_bytes() {
        use rand::{RngExt, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for _ in 0..10_000 {
            let len = rng.random_range(0..40);
            let bytes: Vec<u8> = (0..len).map(|_| rng.random()).collect();
            if let Ok(meta) = SlotMeta::decode(&bytes) {
                // Only canonical bytes decode.
                assert_eq!(meta.encode().as_slice(), bytes.as_slice());
            }
        }
    }

    #[test]
    fn parent_must_be_below_the_slot_except_genesis() {
        assert!(parent_is_valid(0, 0));
        assert!(parent_is_valid(5, 4));
        assert!(parent_is_valid(5, 0));
        assert!(!parent_is_valid(5, 5));
        assert!(!parent_is_valid(5, 6));
        assert!(!parent_is_valid(0, 1));
    }
}
