//! `bb-turbine`: block propagation as plain state machines — bytes in, bytes out.
//!
//! # Bird's-eye view
//!
//! ```text
//! leader:    block bytes --Shredder--> FEC sets (32 data + 32 coding shreds, one signed
//!            Merkle root each) --RetransmitTree::first_hop--> the root node of each shred
//! validator: shred bytes --BlockAssembler::insert--> verified? retransmit it to
//!            RetransmitTree::children; any 32 of a set -> the other 32 rebuilt (retransmit
//!            those too); every set up to the last -> the block bytes, exactly as shredded
//! ```
//!
//! * [`Shredder`] cuts an opaque, already-encoded block (at most [`MAX_BLOCK_BYTES`])
//!   into FEC sets. Every set has exactly 32 data and 32 Reed-Solomon coding shreds; the
//!   last set's data is zero-padded and its header says how many bytes are real, so a
//!   set's shape never varies. A Merkle tree over the set's 64 shreds has its root
//!   signed once by the leader (Ed25519, [`Domain::Shred`](bb_core::Domain::Shred),
//!   over [`signed_message`]).
//! * [`BlockAssembler`] (one per slot, told the slot's leader by the caller) checks each
//!   shred's proof against its set's root, the leader's signature once per set, rebuilds
//!   missing shreds as soon as any 32 of a set are in, checks the rebuilt shreds hash to
//!   the signed root, and returns the block when every set is complete (one shred at a
//!   time, or a socket read's worth in parallel with `insert_batch`). Two signed
//!   statements that contradict each other come back as [`Equivocation`] evidence.
//! * [`RetransmitTree`] gives, per shred, a deterministic stake-weighted order of the
//!   nodes (the leader excluded) laid out as a tree with a configurable fanout.
//!
//! # Wire format (every shred is exactly [`SHRED_SIZE`] = 1216 bytes, little-endian)
//!
//! | offset | size | field |
//! |---:|---:|---|
//! | 0 | 1 | version (2) |
//! | 1 | 1 | kind: 0 data, 1 coding |
//! | 2 | 1 | flags: bit 0 last FEC set of the slot, bit 1 last data shred of the slot, bit 2 last shred of its kind in the set |
//! | 3 | 8 | slot |
//! | 11 | 4 | parent offset: slot − parent slot (≥ 1; 0 only for slot 0) |
//! | 15 | 4 | shred index within the slot, per kind: `fec_set_index * 32 + index_in_set` |
//! | 19 | 4 | FEC set index: 0, 1, 2, … (< [`MAX_FEC_SETS`]) |
//! | 23 | 1 | index in set: 0..32 |
//! | 24 | 2 | set data length: block bytes in the set (29824 in every set but the last) |
//! | 26 | 2 | payload length: block bytes in this data shred; 932 for a coding shred |
//! | 28 | 932 | payload: block bytes, zero-padded (data) or Reed-Solomon parity (coding) |
//! | 960 | 64 | leader's signature over `slot ‖ fec_set_index ‖ merkle_root` |
//! | 1024 | 192 | Merkle proof: 6 sibling hashes, leaf level first |
//!
//! Merkle leaf = the BLAKE3 chunk chaining value (keyed mode, chunk counter 0) of bytes
//! 0..960, header and payload; node = the BLAKE3 parent chaining value of its children;
//! root = the parent with BLAKE3's root flag (see `merkle.rs`). Leaves are the 32 data
//! shreds then the 32 coding shreds. The leaf is 15 BLAKE3 blocks, so the shredder and a
//! rebuild hash sixteen leaves in one SIMD pass. The erasure-coded unit is the 932-byte
//! payload; the header of a rebuilt shred is derived from its set's shared fields and
//! its position, and the header bytes are in the leaf, so the signed root authenticates
//! every field. Every header field is checked against the others on decoding, so a shred
//! has exactly one valid encoding and rebuilt shreds are byte-identical to the leader's.
//!
//! # What this crate never does
//!
//! No I/O, no async, no clocks, no threads of its own (the shredder and
//! [`BlockAssembler::insert_batch`] use the caller's rayon pool): the validator and the
//! simulator drive the same code. It never decides
//! anything about consensus: who the leader of a slot is comes from the caller, and
//! equivocation evidence goes back to the caller, which decides what to do with the
//! slot.
//!
//! # Example
//!
//! ```
//! use bb_core::Keypair;
//! use bb_turbine::{BlockAssembler, Insert, Shredder};
//!
//! let leader = Keypair::from_seed(&[1; 32]);
//! let block = vec![7u8; 100_000];
//! let sets = Shredder::new(leader.clone()).shred(42, 41, &block).unwrap();
//!
//! let mut assembler = BlockAssembler::new(42, leader.pubkey());
//! let mut rebuilt = None;
//! // Only the coding shreds arrive: half of everything is lost.
//! for shred in sets.iter().flat_map(|set| &set.shreds()[32..]) {
//!     if let Insert::Accepted { block: Some(bytes), .. } = assembler.insert(shred.as_bytes()).unwrap() {
//!         rebuilt = Some(bytes);
//!     }
//! }
//! assert_eq!(rebuilt, Some(block));
//! assert_eq!(assembler.parent_slot(), Some(41));
//! ```

mod assembler;
mod error;
mod merkle;
mod retransmit;
mod shred;
mod shredder;

pub use assembler::{BlockAssembler, Insert};
pub use error::{ConflictReason, Equivocation, ShredError, verify_conflict};
pub use retransmit::{DEFAULT_FANOUT, RetransmitTree};
pub use shred::{
    CODING_SHREDS_PER_SET, DATA_SHREDS_PER_SET, HEADER_SIZE, MAX_BLOCK_BYTES, MAX_FEC_SETS,
    PAYLOAD_SIZE, PROOF_LEN, SET_DATA_CAPACITY, SHRED_SIZE, SHRED_VERSION, SHREDS_PER_SET, Shred,
    ShredId, ShredKind, signed_message,
};
pub use shredder::{FecSet, Shredder};
