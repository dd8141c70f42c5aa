//! The receiver's side: shreds of one slot in, verified and recovered shreds and the
//! block out.

use std::collections::{BTreeMap, HashMap, HashSet};

use bb_core::{Domain, Hash, Pubkey, Signature, SignedMessage, Slot};
use bb_erasure::Shard;
use rayon::prelude::*;

use crate::error::{ConflictReason, Equivocation, ShredError};
use crate::merkle::{self, PartialTree};
use crate::shred::{
    self, DATA_SHREDS_PER_SET, LEAF_LEN, PAYLOAD_END, PAYLOAD_OFFSET, PAYLOAD_SIZE, PROOF_OFFSET,
    SET_DATA_CAPACITY, SHRED_SIZE, SHREDS_PER_SET, SIGNATURE_OFFSET, SetHeader, Shred, ShredId,
    ShredKind,
};
use crate::shredder::codec;

/// What inserting one shred did.
#[derive(Debug)]
pub enum Insert {
    /// This node already held the shred (received or rebuilt): nothing changed, and it
    /// must not be retransmitted again.
    Duplicate,
    /// The shred is new and verified: retransmit it.
    Accepted {
        id: ShredId,
        /// Shreds of its set rebuilt by erasure decoding because this one made 32
        /// (verified against the signed root, so they can be retransmitted too).
        recovered: Vec<Shred>,
        /// The whole block, byte for byte as shredded, if this shred completed it.
        /// Returned once.
        block: Option<Vec<u8>>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SetStatus {
    /// Fewer than 32 shreds held, or 32 and the rebuild not yet run (inside a batch).
    Collecting,
    /// All 64 shreds are known; the set's block bytes are in the block, or in `data`
    /// until the sets before it are in.
    Complete,
    /// The signed shreds are not a codeword; nothing more is kept.
    Invalid,
}

/// Shreds of one set accepted during the current call and not stored yet, by Merkle
/// position: borrowed from the caller's bytes. A set rebuilt within the call decodes
/// from them where they lie; the others are copied into the set when the call ends, so
/// a shred is copied only if the assembler has to keep it.
type Staged<'b> = [Option<&'b [u8]>; SHREDS_PER_SET];

const NOTHING_STAGED: Staged<'static> = [None; SHREDS_PER_SET];

/// Leaf hashes by Merkle position.
type Leaves = [Option<Hash>; SHREDS_PER_SET];

const NO_LEAVES: Leaves = [None; SHREDS_PER_SET];

/// The bytes held at `position` of a set: staged in this call, or stored before it.
fn held<'a>(
    stored: &'a [Option<Vec<u8>>],
    staged: &Staged<'a>,
    position: usize,
) -> Option<&'a [u8]> {
    staged[position].or_else(|| stored.get(position)?.as_deref())
}

/// One FEC set whose root the leader's signature was checked over.
struct FecSetState {
    header: SetHeader,
    signature: Signature,
    tree: Box<PartialTree>,
    /// The first shred accepted for the set: the evidence if the leader contradicts it.
    witness: Vec<u8>,
    /// Shreds held while collecting, by Merkle position; dropped once the set is rebuilt.
    shreds: Vec<Option<Vec<u8>>>,
    /// Positions held (stored or staged) or rebuilt.
    present: u64,
    /// The set's block bytes, if it was rebuilt before the sets ahead of it (empty if
    /// it was rebuilt straight into the block).
    data: Vec<u8>,
    status: SetStatus,
    /// Whether a batch's shortcut failed on this set: it is never tried again, so a
    /// forged shred costs the node one wasted rebuild per set, not one per packet.
    shortcut_failed: bool,
}

impl FecSetState {
    fn new(
        header: SetHeader,
        signature: Signature,
        tree: Box<PartialTree>,
        witness: &[u8],
    ) -> Self {
        FecSetState {
            header,
            signature,
            tree,
            witness: witness.to_vec(),
            // Allocated by the first shred the set has to keep past a call.
            shreds: Vec::new(),
            present: 0,
            data: Vec::new(),
            status: SetStatus::Collecting,
            shortcut_failed: false,
        }
    }

    /// Checks one more shred of this set against the set's verified tree and its other
    /// shreds, and stages it if it is new. `verifications` counts the signature checks
    /// a foreign root costs.
    fn admit<'b>(
        &mut self,
        leader: &Pubkey,
        bytes: &'b [u8],
        parsed: &Parsed,
        staged: &mut Staged<'b>,
        verifications: &mut u64,
    ) -> Result<Admitted, ShredError> {
        let header = parsed.header;
        let position = parsed.position;
        let fec_set_index = header.fec_set_index;
        let bit = 1u64 << position;
        if self.status == SetStatus::Invalid {
            return Err(ShredError::InvalidErasureSet { fec_set_index });
        }
        if self.present & bit != 0 && held(&self.shreds, staged, position) == Some(bytes) {
            return Ok(Admitted::Duplicate);
        }
        let leaf = parsed.leaf.unwrap_or_else(|| merkle::leaf(bytes));
        if signature_of(bytes) == self.signature {
            if !self.tree.check(&leaf, position, bytes) {
                return Err(ShredError::BadMerkleProof { fec_set_index });
            }
        } else {
            let root = merkle::root_from_proof(&leaf, position, bytes);
            if root == self.tree.root() {
                // Right contents, foreign signature: a set has exactly one.
                return Err(ShredError::BadSignature { fec_set_index });
            }
            *verifications += 1;
            verify_root(leader, &header, &root, bytes)?;
            return Err(conflict(
                &header,
                ConflictReason::DifferentRoot { fec_set_index },
                &self.witness,
                bytes,
            ));
        }
        if header != self.header {
            return Err(conflict(
                &header,
                ConflictReason::InconsistentSet { fec_set_index },
                &self.witness,
                bytes,
            ));
        }
        if self.present & bit != 0 {
            // An authentic copy of a shred already held or rebuilt.
            return Ok(Admitted::Duplicate);
        }
        staged[position] = Some(bytes);
        self.present |= bit;
        let ready = self.present.count_ones() as usize == DATA_SHREDS_PER_SET;
        Ok(Admitted::New {
            id: parsed.id(),
            ready,
        })
    }

    /// Keeps copies of the staged shreds of a set still collecting.
    fn store(&mut self, staged: &Staged<'_>) {
        if self.status != SetStatus::Collecting || staged.iter().all(Option::is_none) {
            return;
        }
        if self.shreds.is_empty() {
            self.shreds = vec![None; SHREDS_PER_SET];
        }
        for (held, staged) in self.shreds.iter_mut().zip(staged) {
            if let Some(bytes) = staged {
                *held = Some(bytes.to_vec());
            }
        }
    }

    /// Rebuilds the set from exactly 32 of its held shreds, checks every other position
    /// (held or not) against the signed root, and keeps only the set's block bytes.
    /// Returns the rebuilt shreds this node had not received. The set's data shards are
    /// decoded straight into `region` (its [`SET_DATA_CAPACITY`] bytes of the block)
    /// if given, else into the set's own `data`; the caller trusts them only if this
    /// returns `Ok`. On failure the set is marked invalid and its shreds dropped.
    ///
    /// Decoding from exactly 32 and checking the rest is what makes an invalid set
    /// fail on every node, whichever 32 (or more) shreds each one got: the decoded
    /// codeword differs from the signed shreds somewhere outside the 32, and the root
    /// commits to every position.
    fn rebuild(
        &mut self,
        staged: &Staged<'_>,
        region: Option<&mut [u8]>,
    ) -> Result<Vec<Shred>, ShredError> {
        let result = self.try_rebuild(staged, region, &NO_LEAVES);
        if result.is_err() {
            self.status = SetStatus::Invalid;
            self.shreds = Vec::new();
        }
        result
    }

    /// `unchecked` holds the leaves of held shreds not yet checked against the tree
    /// (admitted by [`take_unchecked`](Self::take_unchecked)): they are checked here, all
    /// at once, as the tree is completed, and so are their proofs.
    fn try_rebuild(
        &mut self,
        staged: &Staged<'_>,
        region: Option<&mut [u8]>,
        unchecked: &Leaves,
    ) -> Result<Vec<Shred>, ShredError> {
        let invalid = || ShredError::InvalidErasureSet {
            fec_set_index: self.header.fec_set_index,
        };
        let header = self.header;
        let received = self.present;
        // The first 32 held positions are decoded from.
        let mut inputs: [Option<&[u8]>; SHREDS_PER_SET] = [None; SHREDS_PER_SET];
        let holding = (0..SHREDS_PER_SET)
            .filter_map(|position| Some((position, held(&self.shreds, staged, position)?)));
        let mut taken = 0;
        for (position, bytes) in holding.take(DATA_SHREDS_PER_SET) {
            inputs[position] = Some(bytes);
            taken += 1;
        }
        if taken < DATA_SHREDS_PER_SET {
            return Err(invalid());
        }

        let mut own = Vec::new();
        let data: &mut [u8] = match region {
            Some(region) => region,
            None => {
                own = vec![0u8; SET_DATA_CAPACITY];
                own.as_mut_slice()
            }
        };
        if data.len() != SET_DATA_CAPACITY {
            return Err(invalid());
        }
        // Every position not decoded from gets a shred buffer: the rebuilt shreds are
        // hashed against the root, and those not received are handed out. Coding
        // shards are decoded straight into theirs; data shards into the set's block
        // bytes, then copied out.
        let mut rebuilt_coding: Vec<(usize, Vec<u8>)> = (DATA_SHREDS_PER_SET..SHREDS_PER_SET)
            .filter(|&position| inputs[position].is_none())
            .map(|position| {
                let (kind, index_in_set) = ShredKind::at(position);
                (position, header.blank_shred(kind, index_in_set))
            })
            .collect();
        {
            // Coding shards are decoded from where they lie (the caller's bytes or the
            // set's stored copies); data shards from their copy in the block.
            let mut data_shards = data.chunks_exact_mut(PAYLOAD_SIZE);
            let mut coding_out = rebuilt_coding.iter_mut();
            let mut shards: Vec<Shard<'_>> = Vec::with_capacity(SHREDS_PER_SET);
            for input in inputs.iter().take(DATA_SHREDS_PER_SET) {
                let shard = data_shards.next().ok_or_else(invalid)?;
                shards.push(match input {
                    Some(bytes) => {
                        shard.copy_from_slice(&bytes[PAYLOAD_OFFSET..PAYLOAD_END]);
                        Shard::Present(shard)
                    }
                    None => Shard::Lost(shard),
                });
            }
            for input in inputs.iter().skip(DATA_SHREDS_PER_SET) {
                shards.push(match input {
                    Some(bytes) => Shard::Present(&bytes[PAYLOAD_OFFSET..PAYLOAD_END]),
                    None => {
                        let (_, buf) = coding_out.next().ok_or_else(invalid)?;
                        Shard::Lost(&mut buf[PAYLOAD_OFFSET..PAYLOAD_END])
                    }
                });
            }
            codec().rebuild(&mut shards).map_err(|_| invalid())?;
        }
        // Past the set's data length lies the padding of its data shreds: zero in every
        // shred the decoder accepts, so it must be zero in the rebuilt ones too.
        if data[usize::from(header.data_len)..].iter().any(|&b| b != 0) {
            return Err(invalid());
        }
        let mut rebuilt: Vec<(usize, Vec<u8>)> = (0..DATA_SHREDS_PER_SET)
            .filter(|&position| inputs[position].is_none())
            .map(|position| {
                let (kind, index_in_set) = ShredKind::at(position);
                let at = position * PAYLOAD_SIZE;
                let mut buf = Vec::with_capacity(SHRED_SIZE);
                buf.extend_from_slice(&header.header_bytes(kind, index_in_set));
                buf.extend_from_slice(&data[at..at + PAYLOAD_SIZE]);
                buf.resize(SHRED_SIZE, 0);
                (position, buf)
            })
            .collect();
        rebuilt.append(&mut rebuilt_coding);

        let leaf_inputs: Vec<&[u8; LEAF_LEN]> = rebuilt
            .iter()
            .map(|(_, buf)| merkle::leaf_bytes(buf))
            .collect();
        let mut hashes = vec![Hash::ZERO; rebuilt.len()];
        merkle::leaves(&leaf_inputs, &mut hashes);
        let mut leaves = *unchecked;
        for ((position, _), hash) in rebuilt.iter().zip(hashes) {
            // An unchecked shred not decoded from must be what decoding gave.
            if leaves[*position].is_some_and(|leaf| leaf != hash) {
                return Err(invalid());
            }
            leaves[*position] = Some(hash);
        }
        if !self.tree.complete(&leaves) {
            return Err(invalid());
        }
        // Their leaves are the tree's now; their proofs must be too (every byte of an
        // accepted shred is the leader's).
        let proofs_hold = unchecked.iter().enumerate().all(|(position, leaf)| {
            leaf.is_none()
                || held(&self.shreds, staged, position)
                    .is_some_and(|bytes| self.tree.proof_is(position, bytes))
        });
        if !proofs_hold {
            return Err(invalid());
        }

        if !own.is_empty() {
            own.truncate(usize::from(header.data_len));
            self.data = own;
        }
        let recovered = rebuilt
            .into_iter()
            .filter(|(position, _)| received & (1 << position) == 0)
            .map(|(position, mut buf)| {
                buf[SIGNATURE_OFFSET..PROOF_OFFSET].copy_from_slice(self.signature.as_bytes());
                self.tree.write_proof(position, &mut buf);
                Shred::from_parts(header, position, buf)
            })
            .collect();
        self.shreds = Vec::new();
        self.present = u64::MAX;
        self.status = SetStatus::Complete;
        Ok(recovered)
    }

    /// The shortcut for a set that its share of a batch completes, when every shred of
    /// that share is new, carries the set's signature and agrees with its header (the
    /// usual case): the shreds are staged without a Merkle check each, and the rebuild
    /// checks them all at once (with the rebuilt leaves they must hash up to the signed
    /// root, and each proof must be the tree's), which costs no hashing beyond what
    /// completing the tree costs anyway. If anything is off, the set is left as it was
    /// and `region` handed back, for the checked path to find which shreds are at fault;
    /// so a bad shred costs the node one set decoded twice (the shortcut is not tried on
    /// that set again), never a good set refused.
    fn take_unchecked<'b, 'r>(
        &mut self,
        batch: &[&'b [u8]],
        parsed: &[Option<Parsed>],
        staged: &Staged<'b>,
        queue: &[usize],
        mut region: Option<&'r mut [u8]>,
    ) -> Result<SetOutcome, Option<&'r mut [u8]>> {
        if self.shortcut_failed
            || self.status != SetStatus::Collecting
            || self.present.count_ones() as usize + queue.len() < DATA_SHREDS_PER_SET
        {
            return Err(region);
        }
        let mut staged = *staged;
        let mut present = self.present;
        let mut unchecked = NO_LEAVES;
        let mut admitted = Vec::with_capacity(queue.len());
        let mut ready_at = None;
        for &i in queue {
            let (Some(&bytes), Some(Some(p))) = (batch.get(i), parsed.get(i)) else {
                continue;
            };
            let bit = 1u64 << p.position;
            if present & bit != 0 && held(&self.shreds, &staged, p.position) == Some(bytes) {
                // A copy of a shred held: what the checked path answers first too.
                admitted.push((i, Ok(Admitted::Duplicate)));
                continue;
            }
            let Some(leaf) = p.leaf else {
                return Err(region);
            };
            if present & bit != 0
                || p.header != self.header
                || signature_of(bytes) != self.signature
            {
                return Err(region);
            }
            staged[p.position] = Some(bytes);
            present |= bit;
            unchecked[p.position] = Some(leaf);
            let ready = present.count_ones() as usize == DATA_SHREDS_PER_SET;
            if ready {
                ready_at = Some(i);
            }
            admitted.push((i, Ok(Admitted::New { id: p.id(), ready })));
        }
        let Some(ready_at) = ready_at else {
            return Err(region);
        };
        let (tree, present_before) = (self.tree.clone(), self.present);
        self.present = present;
        // The region is only borrowed for the attempt, so it can be handed back.
        match self.try_rebuild(&staged, region.as_deref_mut(), &unchecked) {
            Ok(recovered) => Ok(SetOutcome {
                admitted,
                rebuilt: Some((ready_at, Ok(recovered))),
                verifications: 0,
            }),
            Err(_) => {
                self.tree = tree;
                self.present = present_before;
                self.shortcut_failed = true;
                Err(region)
            }
        }
    }

    /// Admits a batch's shreds of this set in batch order, then rebuilds the set if
    /// they made 32 (straight into `region` if given) or stores them.
    fn take_batch<'b>(
        &mut self,
        leader: &Pubkey,
        batch: &[&'b [u8]],
        parsed: &[Option<Parsed>],
        work: SetWork<'b>,
        region: Option<&mut [u8]>,
    ) -> SetOutcome {
        let SetWork { mut staged, queue } = work;
        let region = match self.take_unchecked(batch, parsed, &staged, &queue, region) {
            Ok(outcome) => return outcome,
            Err(region) => region,
        };
        let mut outcome = SetOutcome {
            admitted: Vec::with_capacity(queue.len()),
            rebuilt: None,
            verifications: 0,
        };
        let mut ready_at = None;
        for i in queue {
            let (Some(&bytes), Some(Some(p))) = (batch.get(i), parsed.get(i)) else {
                continue;
            };
            let admitted = self.admit(leader, bytes, p, &mut staged, &mut outcome.verifications);
            if let Ok(Admitted::New { ready: true, .. }) = admitted {
                ready_at = Some(i);
            }
            outcome.admitted.push((i, admitted));
        }
        match ready_at {
            Some(i) => outcome.rebuilt = Some((i, self.rebuild(&staged, region))),
            None => self.store(&staged),
        }
        outcome
    }
}

/// A shred that decoded, with its leaf hash if already computed.
#[derive(Debug, Clone, Copy)]
struct Parsed {
    header: SetHeader,
    position: usize,
    leaf: Option<Hash>,
}

impl Parsed {
    fn id(&self) -> ShredId {
        let (kind, index_in_set) = ShredKind::at(self.position);
        ShredId {
            slot: self.header.slot,
            kind,
            index: self.header.shred_index(index_in_set),
        }
    }
}

/// What admission did with a shred; rebuilding is left to the caller.
enum Admitted {
    Duplicate,
    /// Accepted; `ready` if it was its set's 32nd shred, so the set can be rebuilt.
    New {
        id: ShredId,
        ready: bool,
    },
}

impl Admitted {
    fn into_insert(self) -> Insert {
        match self {
            Admitted::Duplicate => Insert::Duplicate,
            Admitted::New { id, .. } => Insert::Accepted {
                id,
                recovered: Vec::new(),
                block: None,
            },
        }
    }
}

/// One set's share of a batch: the shreds that opened it (staged) and the batch
/// indices still to admit, in batch order.
struct SetWork<'b> {
    staged: Staged<'b>,
    queue: Vec<usize>,
}

/// What a set made of its share of a batch.
struct SetOutcome {
    admitted: Vec<(usize, Result<Admitted, ShredError>)>,
    /// The batch index of the shred that made 32, and the rebuild it ran.
    rebuilt: Option<(usize, Result<Vec<Shred>, ShredError>)>,
    verifications: u64,
}

/// Signature verdicts already known within a call, keyed by (set, root, signature).
type Verdicts = HashMap<(u32, Hash, Signature), bool>;

/// A set's first shred in a batch, checked ahead: the tree its proof claims and whether
/// the leader's signature over its root holds.
struct Opening {
    tree: Box<PartialTree>,
    verified: bool,
}

/// Rebuilds one slot's block from its shreds, as they arrive, in any order.
///
/// The caller names the slot and its leader (from the leader schedule). Each shred is
/// checked against its set's Merkle root; the leader's signature over a root is checked
/// once, when the set's first shred arrives, and the verified tree is kept so later
/// shreds of the set cost one or two hashes. Any 32 of a set's 64 shreds rebuild it.
///
/// [`insert`](Self::insert) takes one shred; [`insert_batch`](Self::insert_batch) takes
/// many (a socket read's worth, or a whole block's from repair) and spreads the
/// hashing, the signature checks, admission and rebuilds over the caller's rayon pool,
/// one set per task, with the same results.
///
/// Memory: only sets whose root the leader signed are held, at most [`MAX_FEC_SETS`]
/// of them, each at most 31 shreds before it is rebuilt (a batch may add more) and then
/// only its block bytes (plus a 4 KiB tree and one witness shred), so a slot never
/// holds much more than [`MAX_BLOCK_BYTES`] of shreds, whatever anyone sends. Block
/// bytes are laid out as they arrive: a set rebuilt when every set before it is in is
/// decoded straight into the block; one rebuilt ahead keeps its bytes until they are.
///
/// [`MAX_FEC_SETS`]: crate::MAX_FEC_SETS
/// [`MAX_BLOCK_BYTES`]: crate::MAX_BLOCK_BYTES
pub struct BlockAssembler {
    slot: Slot,
    leader: Pubkey,
    sets: BTreeMap<u32, FecSetState>,
    /// The slot's parent offset, and the shred that first said so.
    parent: Option<(u32, Vec<u8>)>,
    /// The index of the set that ends the block, and the shred that first said so.
    last: Option<(u32, Vec<u8>)>,
    complete_sets: u32,
    /// The block bytes of sets `0..appended`, set `k` at `k * SET_DATA_CAPACITY` (the
    /// last set may end short or padded; the block is cut to length when handed out).
    block: Vec<u8>,
    appended: u32,
    block_emitted: bool,
    signature_verifications: u64,
}

impl std::fmt::Debug for BlockAssembler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlockAssembler")
            .field("slot", &self.slot)
            .field("leader", &self.leader)
            .field("sets", &self.sets.len())
            .field("complete_sets", &self.complete_sets)
            .field("last_fec_set", &self.last_fec_set())
            .field("block_emitted", &self.block_emitted)
            .finish()
    }
}

impl BlockAssembler {
    pub fn new(slot: Slot, leader: Pubkey) -> BlockAssembler {
        BlockAssembler {
            slot,
            leader,
            sets: BTreeMap::new(),
            parent: None,
            last: None,
            complete_sets: 0,
            block: Vec::new(),
            appended: 0,
            block_emitted: false,
            signature_verifications: 0,
        }
    }

    pub fn slot(&self) -> Slot {
        self.slot
    }

    pub fn leader(&self) -> &Pubkey {
        &self.leader
    }

    /// The parent slot, once any verified shred has said it.
    pub fn parent_slot(&self) -> Option<Slot> {
        self.parent
            .as_ref()
            .map(|(offset, _)| self.slot - u64::from(*offset))
    }

    /// The index of the block's last FEC set, once a verified shred of it has arrived.
    pub fn last_fec_set(&self) -> Option<u32> {
        self.last.as_ref().map(|(index, _)| *index)
    }

    /// Whether the block has been rebuilt (and handed out).
    pub fn is_complete(&self) -> bool {
        self.block_emitted
    }

    /// Whether FEC set `fec_set_index` is rebuilt.
    pub fn is_set_complete(&self, fec_set_index: u32) -> bool {
        self.sets
            .get(&fec_set_index)
            .is_some_and(|set| set.status == SetStatus::Complete)
    }

    /// Verified sets not yet rebuilt, with how many shreds each holds (out of 32 needed):
    /// what repair should ask for.
    pub fn incomplete_sets(&self) -> Vec<(u32, u32)> {
        self.sets
            .iter()
            .filter(|(_, set)| set.status == SetStatus::Collecting)
            .map(|(&index, set)| (index, set.present.count_ones()))
            .collect()
    }

    /// How many Ed25519 verifications this assembler has run: one per FEC set, plus one
    /// per shred that claimed a different root (forgeries and equivocations).
    pub fn signature_verifications(&self) -> u64 {
        self.signature_verifications
    }

    /// Inserts a shred already decoded.
    pub fn insert_shred(&mut self, shred: &Shred) -> Result<Insert, ShredError> {
        let parsed = Parsed {
            header: shred.set_header(),
            position: shred.position(),
            leaf: None,
        };
        self.insert_parsed(shred.as_bytes(), parsed)
    }

    /// Inserts one shred's untrusted wire bytes. Never panics. A duplicate costs a
    /// header parse and a comparison (a hash once its set is rebuilt); bytes are copied
    /// only if the shred is accepted.
    pub fn insert(&mut self, bytes: &[u8]) -> Result<Insert, ShredError> {
        let (header, kind, index_in_set) = shred::parse(bytes)?;
        let parsed = Parsed {
            header,
            position: kind.position(index_in_set),
            leaf: None,
        };
        self.insert_parsed(bytes, parsed)
    }

    fn insert_parsed(&mut self, bytes: &[u8], parsed: Parsed) -> Result<Insert, ShredError> {
        self.check_slot(&parsed)?;
        let fec_set_index = parsed.header.fec_set_index;
        let mut staged = NOTHING_STAGED;
        let admitted = match self.sets.get_mut(&fec_set_index) {
            Some(set) => set.admit(
                &self.leader,
                bytes,
                &parsed,
                &mut staged,
                &mut self.signature_verifications,
            )?,
            None => self.open(bytes, &parsed, None, &mut Verdicts::new(), &mut staged)?,
        };
        let Admitted::New { id, ready: true } = admitted else {
            if let Some(set) = self.sets.get_mut(&fec_set_index) {
                set.store(&staged);
            }
            return Ok(admitted.into_insert());
        };
        // The set is rebuilt straight into the block if every set before it is in.
        let at = self.appended as usize * SET_DATA_CAPACITY;
        let in_place = fec_set_index == self.appended && self.block.len() == at;
        if in_place {
            self.block.resize(at + SET_DATA_CAPACITY, 0);
        }
        let rebuilt = match self.sets.get_mut(&fec_set_index) {
            Some(set) => set.rebuild(&staged, in_place.then(|| &mut self.block[at..])),
            None => Err(ShredError::InvalidErasureSet { fec_set_index }),
        };
        if rebuilt.is_err() && in_place {
            self.block.truncate(at);
        }
        let (recovered, block) = self.finish_set(rebuilt)?;
        Ok(Insert::Accepted {
            id,
            recovered,
            block,
        })
    }

    /// Inserts many shreds' untrusted wire bytes; the results are in the same order and
    /// the same as inserting them one by one, except that a set completed within the
    /// batch is rebuilt after all of the batch's shreds of it are admitted (its later
    /// shreds in the batch come back `Accepted` rather than `Duplicate`, and fewer
    /// shreds come back as recovered). Uses the caller's rayon pool: shreds are parsed
    /// and hashed sixteen at a time, the signatures of the sets the batch opens are
    /// checked in one batch per thread, and each set's shreds are then admitted and the
    /// set rebuilt in a task of its own.
    pub fn insert_batch(&mut self, batch: &[&[u8]]) -> Vec<Result<Insert, ShredError>> {
        // Parsing and leaf hashing, and the signature checks of the sets the batch
        // opens, side by side.
        let (parsed_all, mut openings) =
            rayon::join(|| parse_batch(batch), || self.verify_openings(batch));
        self.signature_verifications += openings.len() as u64;
        let mut results: Vec<Option<Result<Insert, ShredError>>> =
            (0..batch.len()).map(|_| None).collect();
        let mut parsed: Vec<Option<Parsed>> = Vec::with_capacity(batch.len());
        for (i, p) in parsed_all.into_iter().enumerate() {
            match p.and_then(|p| self.check_slot(&p).map(|()| p)) {
                Ok(p) => parsed.push(Some(p)),
                Err(e) => {
                    results[i] = Some(Err(e));
                    parsed.push(None);
                }
            }
        }

        // In batch order, a shred of a set not yet open tries to open it (what ties sets
        // together: the parent, the last set, is checked there, one shred per set);
        // every other shred goes to its set's queue. Sets are found by index in a table
        // spanning the batch's set indices.
        let lowest = parsed
            .iter()
            .flatten()
            .map(|p| p.header.fec_set_index)
            .min()
            .unwrap_or(0);
        let span = parsed
            .iter()
            .flatten()
            .map(|p| (p.header.fec_set_index - lowest) as usize + 1)
            .max()
            .unwrap_or(0);
        let mut work_of: Vec<Option<SetWork<'_>>> = (0..span).map(|_| None).collect();
        let mut verdicts = Verdicts::new();
        for (i, (&bytes, p)) in batch.iter().zip(&parsed).enumerate() {
            let Some(p) = p else { continue };
            let fec_set_index = p.header.fec_set_index;
            let Some(entry) = work_of.get_mut((fec_set_index - lowest) as usize) else {
                continue;
            };
            if let Some(set_work) = entry {
                set_work.queue.push(i);
            } else if self.sets.contains_key(&fec_set_index) {
                *entry = Some(SetWork {
                    staged: NOTHING_STAGED,
                    queue: vec![i],
                });
            } else {
                let mut staged = NOTHING_STAGED;
                let opening = openings.remove(&i);
                let opened = self.open(bytes, p, opening, &mut verdicts, &mut staged);
                if opened.is_ok() {
                    *entry = Some(SetWork {
                        staged,
                        queue: Vec::new(),
                    });
                }
                results[i] = Some(opened.map(Admitted::into_insert));
            }
        }

        // The sets that may complete here, from the first one the block lacks on, are
        // decoded straight into the block, each into its own slice of it.
        let first = self.appended;
        let start = first as usize * SET_DATA_CAPACITY;
        // (Only where the block ends at the first set it lacks: past the last set, the
        // block may end short of it.)
        let lays_out = self.block.len() == start;
        let run = (first..)
            .take_while(|_| lays_out)
            .take_while(|index| {
                let set_work = index
                    .checked_sub(lowest)
                    .and_then(|k| work_of.get(k as usize))
                    .and_then(Option::as_ref);
                match (self.sets.get(index), set_work) {
                    (Some(set), Some(set_work)) => {
                        set.status == SetStatus::Collecting
                            && set.present.count_ones() as usize + set_work.queue.len()
                                >= DATA_SHREDS_PER_SET
                    }
                    _ => false,
                }
            })
            .count() as u32;
        let end = start + run as usize * SET_DATA_CAPACITY;
        if run > 0 {
            if self.block.capacity() == 0 {
                // Zeroed memory from the allocator: no pass over the bytes here.
                self.block = vec![0u8; end];
            } else {
                self.block.resize(end, 0);
            }
        }
        let laid_out: &mut [u8] = if run > 0 {
            &mut self.block[start..end]
        } else {
            &mut []
        };
        let mut regions = laid_out.chunks_exact_mut(SET_DATA_CAPACITY);
        let leader = &self.leader;
        let tasks: Vec<(&mut FecSetState, SetWork<'_>, Option<&mut [u8]>)> = self
            .sets
            .range_mut(lowest..lowest + span as u32)
            .filter_map(|(index, set)| {
                let set_work = work_of.get_mut((index - lowest) as usize)?.take()?;
                let region = (first..first + run)
                    .contains(index)
                    .then(|| regions.next())
                    .flatten();
                Some((set, set_work, region))
            })
            .collect();
        let outcomes: Vec<SetOutcome> = tasks
            .into_par_iter()
            .map(|(set, set_work, region)| set.take_batch(leader, batch, &parsed, set_work, region))
            .collect();
        self.settle_run(first, run);

        let mut rebuilt = Vec::new();
        for outcome in outcomes {
            self.signature_verifications += outcome.verifications;
            for (i, admitted) in outcome.admitted {
                results[i] = Some(admitted.map(Admitted::into_insert));
            }
            rebuilt.extend(outcome.rebuilt);
        }
        // Sets are counted, and the block handed out, in the order their 32nd shred
        // arrived.
        rebuilt.sort_unstable_by_key(|(i, _)| *i);
        for (i, outcome) in rebuilt {
            match self.finish_set(outcome) {
                Ok((recovered, completed)) => {
                    if let Some(Ok(Insert::Accepted {
                        recovered: r,
                        block,
                        ..
                    })) = &mut results[i]
                    {
                        *r = recovered;
                        *block = completed;
                    }
                }
                Err(e) => results[i] = Some(Err(e)),
            }
        }
        results
            .into_iter()
            .map(|r| r.unwrap_or(Err(ShredError::Malformed("shred left unprocessed"))))
            .collect()
    }

    /// After a batch decoded sets `first..first + run` into the block: the block keeps
    /// the sets up to the first one that did not complete; any complete set past that
    /// one moves its bytes out to wait for it.
    fn settle_run(&mut self, first: u32, run: u32) {
        let mut kept = first;
        for index in first..first + run {
            let Some(set) = self.sets.get_mut(&index) else {
                break;
            };
            let complete = set.status == SetStatus::Complete;
            if complete && kept == index {
                kept += 1;
            } else if complete {
                let at = index as usize * SET_DATA_CAPACITY;
                set.data = self.block[at..at + usize::from(set.header.data_len)].to_vec();
            }
        }
        self.block.truncate(kept as usize * SET_DATA_CAPACITY);
    }

    /// The first shred of each set the batch would open (a set not yet known), by batch
    /// index: the tree its proof claims and whether the leader signed that tree's root.
    /// Batch-verified (one multiscalar multiplication per thread, the leader's key
    /// counted once in it), with the same verdict for each as [`verify_root`] alone.
    fn verify_openings(&self, batch: &[&[u8]]) -> HashMap<usize, Opening> {
        let mut seen = HashSet::new();
        let firsts: Vec<(usize, Parsed)> = batch
            .iter()
            .enumerate()
            .filter_map(|(i, bytes)| {
                let (header, kind, index_in_set) = shred::parse(bytes).ok()?;
                let fec_set_index = header.fec_set_index;
                let new = header.slot == self.slot
                    && !self.sets.contains_key(&fec_set_index)
                    && seen.insert(fec_set_index);
                new.then(|| {
                    let position = kind.position(index_in_set);
                    let leaf = None;
                    (
                        i,
                        Parsed {
                            header,
                            position,
                            leaf,
                        },
                    )
                })
            })
            .collect();
        let per_thread = firsts.len().div_ceil(rayon::current_num_threads()).max(1);
        let leader = &self.leader;
        firsts
            .par_chunks(per_thread)
            .flat_map_iter(|chunk| {
                let inputs: Vec<&[u8; LEAF_LEN]> = chunk
                    .iter()
                    .map(|(i, _)| merkle::leaf_bytes(batch[*i]))
                    .collect();
                let mut leaves = vec![Hash::ZERO; inputs.len()];
                merkle::leaves(&inputs, &mut leaves);
                let claims: Vec<(usize, Box<PartialTree>, Signature, [u8; 44])> = chunk
                    .iter()
                    .zip(&leaves)
                    .map(|((i, p), leaf)| {
                        let bytes = batch[*i];
                        let tree = Box::new(PartialTree::from_proof(leaf, p.position, bytes));
                        let message = p.header.signed_message(&tree.root());
                        (*i, tree, signature_of(bytes), message)
                    })
                    .collect();
                let items: Vec<SignedMessage<'_>> = claims
                    .iter()
                    .map(|(_, _, signature, message)| SignedMessage {
                        domain: Domain::Shred,
                        key: leader,
                        message,
                        signature,
                    })
                    .collect();
                let bad: HashSet<usize> = match bb_core::verify_batch(&items) {
                    Ok(()) => HashSet::new(),
                    Err(bad) => bad.into_iter().map(|(n, _)| n).collect(),
                };
                claims
                    .into_iter()
                    .enumerate()
                    .map(move |(n, (i, tree, _, _))| {
                        let verified = !bad.contains(&n);
                        (i, Opening { tree, verified })
                    })
            })
            .collect()
    }

    /// Counts a rebuilt set and hands out the block if it was the last one missing.
    fn finish_set(
        &mut self,
        rebuilt: Result<Vec<Shred>, ShredError>,
    ) -> Result<(Vec<Shred>, Option<Vec<u8>>), ShredError> {
        let recovered = rebuilt?;
        self.complete_sets += 1;
        self.append_complete_sets();
        let block = match self.last {
            Some((last, _)) if self.complete_sets == last + 1 && !self.block_emitted => {
                Some(self.take_block())
            }
            _ => None,
        };
        Ok((recovered, block))
    }

    fn check_slot(&self, parsed: &Parsed) -> Result<(), ShredError> {
        if parsed.header.slot == self.slot {
            Ok(())
        } else {
            Err(ShredError::WrongSlot {
                expected: self.slot,
                got: parsed.header.slot,
            })
        }
    }

    /// A set's first shred: the one signature check for the set (looked up in
    /// `verdicts` if checked ahead), then what ties the set to the others the leader
    /// signed (one parent, one last set). Stages the shred in the new set.
    fn open<'b>(
        &mut self,
        bytes: &'b [u8],
        parsed: &Parsed,
        opening: Option<Opening>,
        verdicts: &mut Verdicts,
        staged: &mut Staged<'b>,
    ) -> Result<Admitted, ShredError> {
        let header = parsed.header;
        let position = parsed.position;
        let fec_set_index = header.fec_set_index;
        let signature = signature_of(bytes);
        // The tree the proof claims; trusted once the signature over its root checks.
        let (tree, checked) = match opening {
            Some(Opening { tree, verified }) => (tree, Some(verified)),
            None => {
                let leaf = parsed.leaf.unwrap_or_else(|| merkle::leaf(bytes));
                (
                    Box::new(PartialTree::from_proof(&leaf, position, bytes)),
                    None,
                )
            }
        };
        let root = tree.root();
        let key = (fec_set_index, root, signature);
        let verified = match checked.or_else(|| verdicts.get(&key).copied()) {
            Some(verified) => verified,
            None => {
                self.signature_verifications += 1;
                verify_root(&self.leader, &header, &root, bytes).is_ok()
            }
        };
        // Copies of a refused shred in the same batch cost no second check.
        verdicts.insert(key, verified);
        if !verified {
            return Err(ShredError::BadSignature { fec_set_index });
        }
        if let Some((offset, witness)) = &self.parent
            && *offset != header.parent_offset
        {
            return Err(conflict(
                &header,
                ConflictReason::ParentMismatch,
                witness,
                bytes,
            ));
        }
        // A set past the known last one, or a second last set (set `last` itself exists
        // already, so this one is another).
        if let Some((last, witness)) = &self.last
            && (fec_set_index > *last || header.last)
        {
            return Err(conflict(
                &header,
                ConflictReason::LastSetMismatch,
                witness,
                bytes,
            ));
        }
        // A last set below one already held.
        if header.last
            && let Some((&beyond, set)) = self.sets.last_key_value()
            && beyond > fec_set_index
        {
            return Err(conflict(
                &header,
                ConflictReason::LastSetMismatch,
                &set.witness,
                bytes,
            ));
        }
        if self.parent.is_none() {
            self.parent = Some((header.parent_offset, bytes.to_vec()));
        }
        if header.last {
            self.last = Some((fec_set_index, bytes.to_vec()));
        }
        let mut set = FecSetState::new(header, signature, tree, bytes);
        staged[position] = Some(bytes);
        set.present = 1 << position;
        self.sets.insert(fec_set_index, set);
        Ok(Admitted::New {
            id: parsed.id(),
            ready: false,
        })
    }

    /// Appends the block bytes of complete sets that were waiting for the sets before
    /// them, in order, and frees them. A set rebuilt straight into the block has its
    /// bytes there already and only moves the count on.
    fn append_complete_sets(&mut self) {
        // Room for all of them at once: each byte copied once, no regrowth.
        let ready: usize = self
            .sets
            .range(self.appended..)
            .zip(self.appended..)
            .take_while(|((index, set), expected)| {
                **index == *expected && set.status == SetStatus::Complete
            })
            .map(|((_, set), _)| set.data.len())
            .sum();
        self.block.reserve(ready);
        while let Some(set) = self.sets.get_mut(&self.appended)
            && set.status == SetStatus::Complete
        {
            self.block.extend_from_slice(&set.data);
            set.data = Vec::new();
            self.appended += 1;
        }
    }

    /// Hands out the block: every set 0..=last is complete, so all are appended; the
    /// last set's padding, if it was decoded in place, is cut off.
    fn take_block(&mut self) -> Vec<u8> {
        self.append_complete_sets();
        if let Some((last, _)) = self.last
            && let Some(set) = self.sets.get(&last)
        {
            self.block
                .truncate(last as usize * SET_DATA_CAPACITY + usize::from(set.header.data_len));
        }
        self.block_emitted = true;
        std::mem::take(&mut self.block)
    }
}

/// Parses a batch and hashes its leaves sixteen at a time (one SIMD pass of the leaf
/// hash with AVX-512; two with AVX2), in parallel.
fn parse_batch(batch: &[&[u8]]) -> Vec<Result<Parsed, ShredError>> {
    batch
        .par_chunks(16)
        .flat_map_iter(|chunk| {
            let parsed: Vec<Result<Parsed, ShredError>> = chunk
                .iter()
                .map(|bytes| {
                    let (header, kind, index_in_set) = shred::parse(bytes)?;
                    Ok(Parsed {
                        header,
                        position: kind.position(index_in_set),
                        leaf: None,
                    })
                })
                .collect();
            let inputs: Vec<&[u8; LEAF_LEN]> = chunk
                .iter()
                .zip(&parsed)
                .filter(|(_, p)| p.is_ok())
                .map(|(bytes, _)| merkle::leaf_bytes(bytes))
                .collect();
            let mut hashes = vec![Hash::ZERO; inputs.len()];
            merkle::leaves(&inputs, &mut hashes);
            let mut hashes = hashes.into_iter();
            parsed.into_iter().map(move |p| {
                p.map(|mut p| {
                    p.leaf = hashes.next();
                    p
                })
            })
        })
        .collect()
}

/// Two signed statements of the leader's that cannot both hold.
fn conflict(header: &SetHeader, reason: ConflictReason, first: &[u8], second: &[u8]) -> ShredError {
    ShredError::Equivocation(Box::new(Equivocation {
        slot: header.slot,
        reason,
        first: first.to_vec(),
        second: second.to_vec(),
    }))
}

/// Checks the leader's signature (carried in `bytes`) over `root` for `header`'s set.
fn verify_root(
    leader: &Pubkey,
    header: &SetHeader,
    root: &Hash,
    bytes: &[u8],
) -> Result<(), ShredError> {
    bb_core::verify(
        Domain::Shred,
        leader,
        &header.signed_message(root),
        &signature_of(bytes),
    )
    .map_err(|_| ShredError::BadSignature {
        fec_set_index: header.fec_set_index,
    })
}

/// The signature field of a shred buffer.
fn signature_of(bytes: &[u8]) -> Signature {
    let mut signature = [0u8; 64];
    signature.copy_from_slice(&bytes[SIGNATURE_OFFSET..PROOF_OFFSET]);
    Signature(signature)
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use bb_core::{Hash, Keypair};
    use proptest::prelude::*;
    use rand::rngs::ChaCha8Rng;
    use rand::{Rng, SeedableRng};

    use super::*;
    use crate::merkle::Tree;
    use crate::shred::SHRED_SIZE;
    use crate::{FecSet, SET_DATA_CAPACITY, Shredder};

    fn leader() -> Keypair {
        Keypair::from_seed(&[9; 32])
    }

    fn bytes(len: usize, seed: u64) -> Vec<u8> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut out = vec![0u8; len];
        rng.fill_bytes(&mut out);
        out
    }

    fn shred(leader: &Keypair, slot: Slot, parent: Slot, block: &[u8]) -> Vec<FecSet> {
        Shredder::new(leader.clone())
            .shred(slot, parent, block)
            .expect("valid block")
    }

    fn shuffle<T>(items: &mut [T], rng: &mut ChaCha8Rng) {
        for i in (1..items.len()).rev() {
            items.swap(i, (rng.next_u64() % (i as u64 + 1)) as usize);
        }
    }

    /// Inserts shreds in order; returns the block if one came out, and every recovered
    /// shred. Panics (failing the test) on any error.
    fn deliver<'a>(
        assembler: &mut BlockAssembler,
        shreds: impl IntoIterator<Item = &'a Shred>,
    ) -> (Option<Vec<u8>>, Vec<Shred>) {
        let mut block = None;
        let mut recovered = Vec::new();
        for shred in shreds {
            match assembler.insert(shred.as_bytes()) {
                Ok(Insert::Accepted {
                    block: b,
                    recovered: r,
                    ..
                }) => {
                    assert!(block.is_none() || b.is_none(), "block handed out twice");
                    block = block.or(b);
                    recovered.extend(r);
                }
                Ok(Insert::Duplicate) => {}
                Err(e) => panic!("shred {:?} refused: {e}", shred.id()),
            }
        }
        (block, recovered)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]

        #[test]
        fn recovers_block_with_half_the_shreds_lost(
            len in prop_oneof![0usize..2_000, 0usize..300_000],
            seed: u64,
        ) {
            let leader = leader();
            let block = bytes(len, seed);
            let sets = shred(&leader, 1000, 998, &block);
            prop_assert_eq!(sets.len(), len.div_ceil(SET_DATA_CAPACITY).max(1));
            let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5eed);
            // Per set, keep a random 32..=64 of the 64 shreds; deliver all sets mixed.
            let mut delivered: Vec<&Shred> = Vec::new();
            for set in &sets {
                let mut shreds: Vec<&Shred> = set.shreds().iter().collect();
                shuffle(&mut shreds, &mut rng);
                let keep = 32 + (rng.next_u64() % 33) as usize;
                delivered.extend(&shreds[..keep]);
            }
            shuffle(&mut delivered, &mut rng);
            let mut assembler = BlockAssembler::new(1000, leader.pubkey());
            let (rebuilt, recovered) = deliver(&mut assembler, delivered);
            prop_assert_eq!(rebuilt.as_ref(), Some(&block));
            prop_assert!(assembler.is_complete());
            prop_assert_eq!(assembler.parent_slot(), Some(998));
            prop_assert_eq!(recovered.len(), 32 * sets.len());
            // Rebuilt shreds are byte-identical to the leader's, proofs included.
            for shred in &recovered {
                let original = &sets[shred.fec_set_index() as usize].shreds()[shred.position()];
                prop_assert_eq!(shred.as_bytes(), original.as_bytes());
            }
        }

        #[test]
        fn batches_rebuild_the_same_block(
            len in 0usize..200_000,
            seed: u64,
            batch_size in 1usize..200,
        ) {
            let leader = leader();
            let block = bytes(len, seed);
            let sets = shred(&leader, 1000, 999, &block);
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let mut delivered: Vec<&[u8]> = Vec::new();
            for set in &sets {
                let mut shreds: Vec<&[u8]> = set.shreds().iter().map(Shred::as_bytes).collect();
                shuffle(&mut shreds, &mut rng);
                delivered.extend(&shreds[..32 + (rng.next_u64() % 33) as usize]);
            }
            shuffle(&mut delivered, &mut rng);
            let mut assembler = BlockAssembler::new(1000, leader.pubkey());
            let mut out = None;
            let mut seen = HashSet::new();
            for batch in delivered.chunks(batch_size) {
                for result in assembler.insert_batch(batch) {
                    match result {
                        Ok(Insert::Accepted { id, recovered, block }) => {
                            prop_assert!(seen.insert(id));
                            for shred in recovered {
                                prop_assert!(seen.insert(shred.id()));
                                let original = &sets[shred.fec_set_index() as usize].shreds()[shred.position()];
                                prop_assert_eq!(shred.as_bytes(), original.as_bytes());
                            }
                            if block.is_some() {
                                prop_assert!(out.is_none());
                                out = block;
                            }
                        }
                        Ok(Insert::Duplicate) => {}
                        Err(e) => prop_assert!(false, "refused: {e}"),
                    }
                }
            }
            prop_assert_eq!(out, Some(block));
            // Every shred of every set was received or rebuilt exactly once.
            prop_assert_eq!(seen.len(), 64 * sets.len());
            prop_assert_eq!(assembler.signature_verifications(), sets.len() as u64);
        }

        #[test]
        fn sets_completing_in_order_or_ahead_give_the_same_block(
            len in 0usize..250_000,
            seed: u64,
            batch_size in 1usize..100,
            ahead in 0usize..9,
        ) {
            // Sets arrive one after the other (each rebuilt straight into the block),
            // except that set `ahead` comes last (its successors wait for it); single
            // inserts and batches alternate.
            let leader = leader();
            let block = bytes(len, seed);
            let sets = shred(&leader, 50, 49, &block);
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let ahead = ahead % sets.len();
            let mut order: Vec<usize> = (0..sets.len()).filter(|&k| k != ahead).collect();
            order.push(ahead);
            let mut delivered: Vec<&[u8]> = Vec::new();
            for k in order {
                let mut shreds: Vec<&[u8]> = sets[k].shreds().iter().map(Shred::as_bytes).collect();
                shuffle(&mut shreds, &mut rng);
                delivered.extend(&shreds[..32]);
            }
            let mut assembler = BlockAssembler::new(50, leader.pubkey());
            let mut out = None;
            for (i, chunk) in delivered.chunks(batch_size).enumerate() {
                let results = if i % 2 == 0 {
                    chunk.iter().map(|bytes| assembler.insert(bytes)).collect()
                } else {
                    assembler.insert_batch(chunk)
                };
                for result in results {
                    match result {
                        Ok(Insert::Accepted { block: Some(b), .. }) => {
                            prop_assert!(out.is_none());
                            out = Some(b);
                        }
                        Ok(_) => {}
                        Err(e) => prop_assert!(false, "refused: {e}"),
                    }
                }
            }
            prop_assert_eq!(out, Some(block));
        }

        #[test]
        fn thirty_one_shreds_of_a_set_are_not_enough(seed: u64) {
            let leader = leader();
            let block = bytes(2 * SET_DATA_CAPACITY + 5, seed);
            let sets = shred(&leader, 3, 2, &block);
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let mut short: Vec<&Shred> = sets[1].shreds().iter().collect();
            shuffle(&mut short, &mut rng);
            let mut assembler = BlockAssembler::new(3, leader.pubkey());
            let others = sets[0].shreds().iter().chain(sets[2].shreds());
            let (block_out, _) = deliver(&mut assembler, others.chain(short[..31].iter().copied()));
            prop_assert_eq!(block_out, None);
            prop_assert!(!assembler.is_set_complete(1));
            prop_assert_eq!(assembler.incomplete_sets(), vec![(1, 31)]);
            let (block_out, recovered) = deliver(&mut assembler, [short[31]]);
            prop_assert_eq!(block_out, Some(block));
            prop_assert_eq!(recovered.len(), 32);
        }

        #[test]
        fn any_flipped_byte_is_refused_once_the_set_is_known(
            position in 0usize..64,
            offset in 0usize..SHRED_SIZE,
            xor in 1u8..=255,
        ) {
            let leader = leader();
            let sets = shred(&leader, 8, 7, &bytes(40_000, 1));
            let set = &sets[1];
            let mut assembler = BlockAssembler::new(8, leader.pubkey());
            let anchor = (position + 1) % 64;
            prop_assert!(assembler.insert(set.shreds()[anchor].as_bytes()).is_ok());
            let mut tampered = set.shreds()[position].as_bytes().to_vec();
            tampered[offset] ^= xor;
            prop_assert!(assembler.insert(&tampered).is_err());
            // The untouched shred still goes in.
            let ok = matches!(
                assembler.insert(set.shreds()[position].as_bytes()),
                Ok(Insert::Accepted { .. })
            );
            prop_assert!(ok);
        }

        #[test]
        fn random_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..1400)) {
            let _ = Shred::from_bytes(&data);
            let mut assembler = BlockAssembler::new(1, leader().pubkey());
            prop_assert!(assembler.insert(&data).is_err());
        }

        #[test]
        fn a_valid_header_with_random_fields_never_panics(
            header in proptest::collection::vec(any::<u8>(), HEADER_SIZE_FOR_TESTS),
            version_and_kind in 0u8..2,
        ) {
            let sets = shred(&leader(), 9, 8, &bytes(100, 2));
            let mut buf = sets[0].shreds()[3].as_bytes().to_vec();
            buf[..header.len()].copy_from_slice(&header);
            buf[0] = 1;
            buf[1] = version_and_kind;
            let _ = Shred::from_bytes(&buf);
            let mut assembler = BlockAssembler::new(9, leader().pubkey());
            let _ = assembler.insert(&buf);
        }
    }

    const HEADER_SIZE_FOR_TESTS: usize = crate::HEADER_SIZE;

    #[test]
    fn an_empty_block_round_trips() {
        let leader = leader();
        let sets = shred(&leader, 5, 1, &[]);
        assert_eq!(sets.len(), 1);
        let mut assembler = BlockAssembler::new(5, leader.pubkey());
        let (block, _) = deliver(&mut assembler, &sets[0].shreds()[30..]);
        assert_eq!(block, Some(Vec::new()));
        assert_eq!(assembler.parent_slot(), Some(1));
    }

    #[test]
    fn a_block_of_exactly_full_sets_has_no_empty_set() {
        let leader = leader();
        let block = bytes(2 * SET_DATA_CAPACITY, 3);
        let sets = shred(&leader, 5, 4, &block);
        assert_eq!(sets.len(), 2);
        let mut assembler = BlockAssembler::new(5, leader.pubkey());
        let (out, _) = deliver(&mut assembler, sets.iter().flat_map(|s| &s.shreds()[..32]));
        assert_eq!(out, Some(block));
    }

    #[test]
    fn a_flipped_payload_byte_is_a_bad_merkle_proof() {
        let leader = leader();
        let sets = shred(&leader, 8, 7, &bytes(5_000, 4));
        let shreds = sets[0].shreds();
        let mut tampered = shreds[2].as_bytes().to_vec();
        tampered[PAYLOAD_OFFSET + 10] ^= 0x40;

        let mut assembler = BlockAssembler::new(8, leader.pubkey());
        assert!(assembler.insert(shreds[0].as_bytes()).is_ok());
        assert_eq!(
            assembler.insert(&tampered).err(),
            Some(ShredError::BadMerkleProof { fec_set_index: 0 })
        );
        // Before any verified root, an altered shred cannot be told from a forgery.
        let mut fresh = BlockAssembler::new(8, leader.pubkey());
        assert_eq!(
            fresh.insert(&tampered).err(),
            Some(ShredError::BadSignature { fec_set_index: 0 })
        );
    }

    #[test]
    fn a_shred_signed_by_another_key_is_refused() {
        let leader = leader();
        let impostor = Keypair::from_seed(&[66; 32]);
        let forged = shred(&impostor, 8, 7, &bytes(5_000, 4));
        let mut assembler = BlockAssembler::new(8, leader.pubkey());
        for shred in forged[0].shreds() {
            assert_eq!(
                assembler.insert(shred.as_bytes()).err(),
                Some(ShredError::BadSignature { fec_set_index: 0 })
            );
        }
        assert_eq!(
            forged[0].shreds()[0].verify(&leader.pubkey()),
            Err(ShredError::BadSignature { fec_set_index: 0 })
        );
        assert!(forged[0].shreds()[0].verify(&impostor.pubkey()).is_ok());
        // And once the real leader's set is known, a forged shred carries a foreign root.
        let real = shred(&leader, 8, 7, &bytes(5_000, 5));
        assert!(assembler.insert(real[0].shreds()[0].as_bytes()).is_ok());
        assert_eq!(
            assembler.insert(forged[0].shreds()[1].as_bytes()).err(),
            Some(ShredError::BadSignature { fec_set_index: 0 })
        );
    }

    #[test]
    fn a_shred_for_another_slot_is_refused() {
        let leader = leader();
        let sets = shred(&leader, 8, 7, &bytes(10, 4));
        let mut assembler = BlockAssembler::new(9, leader.pubkey());
        assert_eq!(
            assembler.insert(sets[0].shreds()[0].as_bytes()).err(),
            Some(ShredError::WrongSlot {
                expected: 9,
                got: 8
            })
        );
    }

    #[test]
    fn signature_is_verified_once_per_set() {
        let leader = leader();
        let block = bytes(3 * SET_DATA_CAPACITY - 100, 6);
        let sets = shred(&leader, 8, 7, &block);
        assert_eq!(sets.len(), 3);
        let mut assembler = BlockAssembler::new(8, leader.pubkey());
        let all = sets.iter().flat_map(FecSet::shreds);
        let (out, _) = deliver(&mut assembler, all.clone());
        assert_eq!(out, Some(block));
        assert_eq!(assembler.signature_verifications(), 3);
        // Duplicates, before and after the block is out, cost no signature check.
        let (out, _) = deliver(&mut assembler, all);
        assert_eq!(out, None);
        assert_eq!(assembler.signature_verifications(), 3);
    }

    #[test]
    fn duplicates_are_no_ops() {
        let leader = leader();
        let sets = shred(&leader, 8, 7, &bytes(50_000, 7));
        let mut assembler = BlockAssembler::new(8, leader.pubkey());
        let first = sets[0].shreds()[0].as_bytes();
        assert!(matches!(
            assembler.insert(first),
            Ok(Insert::Accepted { .. })
        ));
        assert!(matches!(assembler.insert(first), Ok(Insert::Duplicate)));
        let (out, recovered) = deliver(&mut assembler, sets.iter().flat_map(|s| &s.shreds()[..32]));
        assert!(out.is_some());
        // The coding shreds were rebuilt; when they arrive they are duplicates.
        assert_eq!(recovered.len(), 64);
        for shred in sets.iter().flat_map(FecSet::shreds) {
            assert!(matches!(
                assembler.insert(shred.as_bytes()),
                Ok(Insert::Duplicate)
            ));
        }
    }

    fn expect_equivocation(result: Result<Insert, ShredError>) -> Equivocation {
        match result {
            Err(ShredError::Equivocation(evidence)) => *evidence,
            other => panic!("expected equivocation, got {other:?}"),
        }
    }

    #[test]
    fn two_blocks_for_one_slot_are_equivocation() {
        let leader = leader();
        let a = shred(&leader, 8, 7, &bytes(70_000, 10));
        let b = shred(&leader, 8, 7, &bytes(70_000, 11));
        let mut assembler = BlockAssembler::new(8, leader.pubkey());
        let first = a[1].shreds()[4].as_bytes();
        let second = b[1].shreds()[9].as_bytes();
        assert!(assembler.insert(first).is_ok());
        let evidence = expect_equivocation(assembler.insert(second));
        assert_eq!(
            evidence.reason,
            ConflictReason::DifferentRoot { fec_set_index: 1 }
        );
        assert_eq!(
            (evidence.first.as_slice(), evidence.second.as_slice()),
            (first, second)
        );
        assert_eq!(evidence.verify(&leader.pubkey()), Ok(()));
        assert!(
            evidence
                .verify(&Keypair::from_seed(&[1; 32]).pubkey())
                .is_err()
        );
        // Two shreds of one version are no evidence.
        let honest = Equivocation {
            second: a[1].shreds()[5].as_bytes().to_vec(),
            ..evidence
        };
        assert!(honest.verify(&leader.pubkey()).is_err());
        // The first version can still complete.
        let (out, _) = deliver(&mut assembler, a.iter().flat_map(FecSet::shreds));
        assert_eq!(out.map(|b| b.len()), Some(70_000));
    }

    #[test]
    fn two_parents_for_one_slot_are_equivocation() {
        let leader = leader();
        let block = bytes(40_000, 12);
        let a = shred(&leader, 8, 7, &block);
        let b = shred(&leader, 8, 6, &block);
        let mut assembler = BlockAssembler::new(8, leader.pubkey());
        assert!(assembler.insert(a[0].shreds()[0].as_bytes()).is_ok());
        let evidence = expect_equivocation(assembler.insert(b[1].shreds()[0].as_bytes()));
        assert_eq!(evidence.reason, ConflictReason::ParentMismatch);
        assert_eq!(evidence.verify(&leader.pubkey()), Ok(()));
    }

    #[test]
    fn a_set_beyond_the_last_is_equivocation() {
        let leader = leader();
        let short = shred(&leader, 8, 7, &bytes(1_000, 13));
        let long = shred(&leader, 8, 7, &bytes(40_000, 13));
        // The last set first, then one beyond it.
        let mut assembler = BlockAssembler::new(8, leader.pubkey());
        assert!(assembler.insert(short[0].shreds()[0].as_bytes()).is_ok());
        let evidence = expect_equivocation(assembler.insert(long[1].shreds()[0].as_bytes()));
        assert_eq!(evidence.reason, ConflictReason::LastSetMismatch);
        assert_eq!(evidence.verify(&leader.pubkey()), Ok(()));
        // The set beyond first, then a claim that an earlier set is last.
        let mut assembler = BlockAssembler::new(8, leader.pubkey());
        assert!(assembler.insert(long[1].shreds()[0].as_bytes()).is_ok());
        let evidence = expect_equivocation(assembler.insert(short[0].shreds()[0].as_bytes()));
        assert_eq!(evidence.reason, ConflictReason::LastSetMismatch);
        assert_eq!(evidence.verify(&leader.pubkey()), Ok(()));
    }

    /// A set the leader signed whose coding shred 0 is not the parity of its data.
    fn set_with_bad_parity(leader: &Keypair) -> Vec<Vec<u8>> {
        let sets = shred(leader, 8, 7, &bytes(20_000, 14));
        let mut bufs: Vec<Vec<u8>> = sets[0]
            .shreds()
            .iter()
            .map(|s| s.as_bytes().to_vec())
            .collect();
        bufs[32][PAYLOAD_OFFSET] ^= 1;
        let leaves: [Hash; SHREDS_PER_SET] = std::array::from_fn(|p| merkle::leaf(&bufs[p]));
        let tree = Tree::from_leaves(&leaves);
        let header = sets[0].shreds()[0].set_header();
        let signature = leader.sign(Domain::Shred, &header.signed_message(&tree.root()));
        for (p, buf) in bufs.iter_mut().enumerate() {
            buf[SIGNATURE_OFFSET..PROOF_OFFSET].copy_from_slice(signature.as_bytes());
            tree.write_proof(p, buf);
        }
        bufs
    }

    #[test]
    fn a_set_that_is_not_a_codeword_is_refused_whichever_shreds_arrive() {
        let leader = leader();
        let bufs = set_with_bad_parity(&leader);
        let invalid = Some(ShredError::InvalidErasureSet { fec_set_index: 0 });
        // All the data: the rebuilt parity disagrees with the signed coding shred 0.
        let mut assembler = BlockAssembler::new(8, leader.pubkey());
        for buf in &bufs[..31] {
            assert!(assembler.insert(buf).is_ok());
        }
        assert_eq!(assembler.insert(&bufs[31]).err(), invalid);
        assert_eq!(assembler.insert(&bufs[40]).err(), invalid);
        // The bad coding shred among 32: the rebuilt data disagrees with the root.
        let mut assembler = BlockAssembler::new(8, leader.pubkey());
        for buf in bufs[1..32].iter() {
            assert!(assembler.insert(buf).is_ok());
        }
        assert_eq!(assembler.insert(&bufs[32]).err(), invalid);
    }

    #[test]
    fn a_batch_checks_every_shred_beyond_the_32_it_decodes_from() {
        let leader = leader();
        let bufs = set_with_bad_parity(&leader);
        let batch: Vec<&[u8]> = bufs.iter().map(Vec::as_slice).collect();
        let mut assembler = BlockAssembler::new(8, leader.pubkey());
        let results = assembler.insert_batch(&batch);
        let invalid = results
            .iter()
            .filter(|r| matches!(r, Err(ShredError::InvalidErasureSet { .. })))
            .count();
        assert_eq!(invalid, 1);
        assert!(!assembler.is_set_complete(0));
        assert_eq!(
            assembler.insert(&bufs[50]).err(),
            Some(ShredError::InvalidErasureSet { fec_set_index: 0 })
        );
    }

    #[test]
    fn a_set_short_of_32_in_a_batch_leaves_the_sets_after_it_waiting() {
        // Sets 0, 1 and 2 arrive in one batch and would all be decoded into the block,
        // but one of set 1's 32 shreds is altered: set 1 stays one short, set 2 is
        // rebuilt and waits for it, and the block comes out whole once set 1's last
        // shred arrives.
        let leader = leader();
        let block = bytes(3 * SET_DATA_CAPACITY - 1_000, 23);
        let sets = shred(&leader, 12, 11, &block);
        let mut tampered = sets[1].shreds()[40].as_bytes().to_vec();
        tampered[PAYLOAD_OFFSET + 7] ^= 1;
        let mut batch: Vec<&[u8]> = Vec::new();
        batch.extend(sets[0].shreds()[..32].iter().map(Shred::as_bytes));
        batch.extend(sets[1].shreds()[32..40].iter().map(Shred::as_bytes));
        batch.push(&tampered);
        batch.extend(sets[1].shreds()[41..].iter().map(Shred::as_bytes));
        batch.extend(sets[2].shreds()[10..42].iter().map(Shred::as_bytes));
        let mut assembler = BlockAssembler::new(12, leader.pubkey());
        let results = assembler.insert_batch(&batch);
        assert!(matches!(
            results[40],
            Err(ShredError::BadMerkleProof { .. })
        ));
        assert!(
            results
                .iter()
                .all(|r| !matches!(r, Ok(Insert::Accepted { block: Some(_), .. })))
        );
        assert!(assembler.is_set_complete(0));
        assert!(!assembler.is_set_complete(1));
        assert!(assembler.is_set_complete(2));
        assert_eq!(assembler.incomplete_sets(), vec![(1, 31)]);
        let (out, recovered) = deliver(&mut assembler, [&sets[1].shreds()[0]]);
        assert_eq!(out, Some(block));
        assert_eq!(recovered.len(), 32);
    }

    #[test]
    fn a_batch_refuses_what_single_inserts_refuse() {
        let leader = leader();
        let a = shred(&leader, 8, 7, &bytes(40_000, 20));
        let b = shred(&leader, 8, 7, &bytes(40_000, 21));
        let forged = shred(&Keypair::from_seed(&[5; 32]), 8, 7, &bytes(100, 1));
        let mut tampered = a[0].shreds()[3].as_bytes().to_vec();
        tampered[PAYLOAD_OFFSET] ^= 1;
        let batch = [
            forged[0].shreds()[0].as_bytes(),
            a[0].shreds()[0].as_bytes(),
            &tampered,
            b[0].shreds()[1].as_bytes(),
            a[0].shreds()[0].as_bytes(),
            &[1, 2, 3],
        ];
        let mut assembler = BlockAssembler::new(8, leader.pubkey());
        let results = assembler.insert_batch(&batch);
        assert!(matches!(results[0], Err(ShredError::BadSignature { .. })));
        assert!(matches!(results[1], Ok(Insert::Accepted { .. })));
        assert!(matches!(results[2], Err(ShredError::BadMerkleProof { .. })));
        assert!(matches!(results[3], Err(ShredError::Equivocation(_))));
        assert!(matches!(results[4], Ok(Insert::Duplicate)));
        assert!(matches!(results[5], Err(ShredError::Malformed(_))));
    }

    #[test]
    fn a_copy_of_a_shred_in_a_completing_batch_is_a_duplicate() {
        let leader = leader();
        let block = bytes(SET_DATA_CAPACITY / 2, 24);
        let sets = shred(&leader, 15, 14, &block);
        let mut batch: Vec<&[u8]> = sets[0].shreds()[10..50]
            .iter()
            .map(Shred::as_bytes)
            .collect();
        batch.insert(20, sets[0].shreds()[12].as_bytes());
        let mut assembler = BlockAssembler::new(15, leader.pubkey());
        let results = assembler.insert_batch(&batch);
        for (i, result) in results.iter().enumerate() {
            match i {
                20 => assert!(matches!(result, Ok(Insert::Duplicate)), "{result:?}"),
                _ => assert!(
                    matches!(result, Ok(Insert::Accepted { .. })),
                    "{i}: {result:?}"
                ),
            }
        }
        assert_eq!(block_of(results), Some(block));
    }

    /// The block a batch's results hand out, if any.
    fn block_of(results: Vec<Result<Insert, ShredError>>) -> Option<Vec<u8>> {
        results.into_iter().find_map(|r| match r {
            Ok(Insert::Accepted { block, .. }) => block,
            _ => None,
        })
    }

    #[test]
    fn tampered_shreds_of_a_set_a_batch_completes_are_refused_alone() {
        let leader = leader();
        let block = bytes(2 * SET_DATA_CAPACITY - 100, 23);
        let sets = shred(&leader, 14, 13, &block);
        // Signed like the set and with its header, so the batch takes its shortcut for
        // set 1 first: one with a payload byte flipped, one with a proof byte flipped.
        let mut payload = sets[1].shreds()[5].as_bytes().to_vec();
        payload[PAYLOAD_OFFSET + 7] ^= 0x40;
        let mut proof = sets[1].shreds()[40].as_bytes().to_vec();
        proof[PROOF_OFFSET + 3 * 32 + 1] ^= 1;
        let good: Vec<&[u8]> = sets[1]
            .shreds()
            .iter()
            .filter(|s| s.position() != 5 && s.position() != 40)
            .map(Shred::as_bytes)
            .take(34)
            .collect();
        let mut batch: Vec<&[u8]> = sets[0].shreds()[20..52]
            .iter()
            .map(Shred::as_bytes)
            .collect();
        batch.extend(&good[..10]);
        batch.push(&payload);
        batch.extend(&good[10..20]);
        batch.push(&proof);
        batch.extend(&good[20..]);

        let mut assembler = BlockAssembler::new(14, leader.pubkey());
        let results = assembler.insert_batch(&batch);
        let refused: Vec<usize> = (0..results.len())
            .filter(|&i| results[i].is_err())
            .collect();
        assert_eq!(refused, vec![42, 53]);
        for i in refused {
            assert!(matches!(
                results[i],
                Err(ShredError::BadMerkleProof { fec_set_index: 1 })
            ));
        }
        let mut out = None;
        for result in results {
            if let Ok(Insert::Accepted {
                recovered, block, ..
            }) = result
            {
                for shred in recovered {
                    let original = &sets[shred.fec_set_index() as usize].shreds()[shred.position()];
                    assert_eq!(shred.as_bytes(), original.as_bytes());
                }
                out = out.or(block);
            }
        }
        assert_eq!(out, Some(block));
        // The refused shreds' positions were rebuilt, the leader's bytes.
        assert!(assembler.is_set_complete(1));
    }

    #[test]
    fn a_batch_opening_many_sets_finds_the_one_bad_signature() {
        let leader = leader();
        let block = bytes(5 * SET_DATA_CAPACITY - 7, 22);
        let sets = shred(&leader, 12, 11, &block);
        // Set 3's first shred carries a signature over another root: same key, so only
        // the batch equation's fallback can tell which set it was.
        let mut bad = sets[3].shreds()[32].as_bytes().to_vec();
        let other = leader.sign(Domain::Shred, &shred::signed_message(12, 3, &Hash::ZERO));
        bad[SIGNATURE_OFFSET..PROOF_OFFSET].copy_from_slice(other.as_bytes());
        let mut batch: Vec<&[u8]> = Vec::new();
        for (k, set) in sets.iter().enumerate() {
            if k == 3 {
                batch.push(&bad);
            }
            batch.extend(set.shreds()[32..].iter().map(Shred::as_bytes));
        }
        let mut assembler = BlockAssembler::new(12, leader.pubkey());
        let results = assembler.insert_batch(&batch);
        assert!(matches!(
            results[3 * 32],
            Err(ShredError::BadSignature { fec_set_index: 3 })
        ));
        assert_eq!(block_of(results), Some(block));
    }

    #[test]
    fn shredder_refuses_bad_input() {
        let shredder = Shredder::new(leader());
        assert_eq!(
            shredder.shred(5, 5, b"x").err(),
            Some(ShredError::ParentNotBelow { slot: 5, parent: 5 })
        );
        assert!(shredder.shred(0, 0, b"genesis").is_ok());
        assert_eq!(
            shredder.shred(1 << 40, 1, b"x").err(),
            Some(ShredError::ParentTooFar {
                slot: 1 << 40,
                parent: 1
            })
        );
        let too_big = vec![0u8; crate::MAX_BLOCK_BYTES + 1];
        assert!(matches!(
            shredder.shred(5, 4, &too_big),
            Err(ShredError::BlockTooLarge { .. })
        ));
    }
}
