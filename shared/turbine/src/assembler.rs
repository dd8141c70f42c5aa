//! The receiver's side: shreds of one slot in, verified and recovered shreds and the
//! block out.

use std::collections::{BTreeMap, HashMap, HashSet};

use bb_core::{Domain, Hash, Pubkey, Signature, SignedMessage, Slot};
use rayon::prelude::*;

use crate::error::{ConflictReason, Equivocation, ShredError};
use crate::merkle::{self, PartialTree};
use crate::shred::{
    self, DATA_SHREDS_PER_SET, LEAF_LEN, PAYLOAD_END, PAYLOAD_OFFSET, PROOF_OFFSET, SHREDS_PER_SET,
    SIGNATURE_OFFSET, SetHeader, Shred, ShredId, ShredKind,
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
    /// All 64 shreds are known; the set's block bytes are in `data` until the block is
    /// handed out.
    Complete,
    /// The signed shreds are not a codeword; nothing more is kept.
    Invalid,
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
    /// Positions held or rebuilt.
    present: u64,
    /// The set's block bytes, from its rebuild until they are appended to the block
    /// (empty if it was rebuilt straight into the block).
    data: Vec<u8>,
    status: SetStatus,
}

impl FecSetState {
    fn new(header: SetHeader, signature: Signature, tree: PartialTree, witness: &[u8]) -> Self {
        FecSetState {
            header,
            signature,
            tree: Box::new(tree),
            witness: witness.to_vec(),
            shreds: vec![None; SHREDS_PER_SET],
            present: 0,
            data: Vec::new(),
            status: SetStatus::Collecting,
        }
    }

    /// Rebuilds the set from exactly 32 of its held shreds, checks every other position
    /// (held or not) against the signed root, and keeps only the set's block bytes.
    /// Returns the rebuilt shreds this node had not received. The set's block bytes go
    /// to the end of `block` if given (the set is the next one the block needs), else to
    /// the set's own `data`; either way only after every check passed. On failure the
    /// set is marked invalid and its shreds dropped.
    ///
    /// Decoding from exactly 32 and checking the rest is what makes an invalid set
    /// fail on every node, whichever 32 (or more) shreds each one got: the decoded
    /// codeword differs from the signed shreds somewhere outside the 32, and the root
    /// commits to every position.
    fn rebuild(&mut self, block: Option<&mut Vec<u8>>) -> Result<Vec<Shred>, ShredError> {
        let result = self.try_rebuild(block);
        if result.is_err() {
            self.status = SetStatus::Invalid;
            self.shreds = Vec::new();
        }
        result
    }

    fn try_rebuild(&mut self, block: Option<&mut Vec<u8>>) -> Result<Vec<Shred>, ShredError> {
        let invalid = ShredError::InvalidErasureSet {
            fec_set_index: self.header.fec_set_index,
        };
        let header = self.header;
        let received = self.present;
        let mut inputs = [false; SHREDS_PER_SET];
        let mut taken = 0;
        let mut bufs: Vec<Vec<u8>> = std::mem::take(&mut self.shreds)
            .into_iter()
            .enumerate()
            .map(|(position, shred)| match shred {
                Some(bytes) if taken < DATA_SHREDS_PER_SET => {
                    inputs[position] = true;
                    taken += 1;
                    bytes
                }
                _ => {
                    let (kind, index_in_set) = ShredKind::at(position);
                    header.blank_shred(kind, index_in_set)
                }
            })
            .collect();
        let mut shards: Vec<(&mut [u8], bool)> = bufs
            .iter_mut()
            .zip(inputs)
            .map(|(buf, input)| (&mut buf[PAYLOAD_OFFSET..PAYLOAD_END], input))
            .collect();
        codec()
            .reconstruct(&mut shards)
            .map_err(|_| invalid.clone())?;
        drop(shards);

        let mut rebuilt_positions = Vec::with_capacity(SHREDS_PER_SET - DATA_SHREDS_PER_SET);
        let mut rebuilt_leaves = Vec::with_capacity(SHREDS_PER_SET - DATA_SHREDS_PER_SET);
        for (position, buf) in bufs.iter().enumerate() {
            if inputs[position] {
                continue;
            }
            // A rebuilt data shred must be one the decoder would have accepted.
            let (kind, index_in_set) = ShredKind::at(position);
            let len = usize::from(header.payload_len(kind, index_in_set));
            if kind == ShredKind::Data
                && buf[PAYLOAD_OFFSET + len..PAYLOAD_END]
                    .iter()
                    .any(|&b| b != 0)
            {
                return Err(invalid);
            }
            rebuilt_positions.push(position);
            rebuilt_leaves.push(merkle::leaf_bytes(buf));
        }
        let mut hashes = vec![Hash::ZERO; rebuilt_leaves.len()];
        merkle::leaves(&rebuilt_leaves, &mut hashes);
        let mut leaves = [None; SHREDS_PER_SET];
        for (&position, &hash) in rebuilt_positions.iter().zip(hashes.iter()) {
            leaves[position] = Some(hash);
        }
        if !self.tree.complete(&leaves) {
            return Err(invalid);
        }

        let out = match block {
            Some(block) => block,
            None => {
                self.data = Vec::with_capacity(usize::from(header.data_len));
                &mut self.data
            }
        };
        for (index_in_set, buf) in bufs[..DATA_SHREDS_PER_SET].iter().enumerate() {
            let len = header.payload_len(ShredKind::Data, index_in_set as u8);
            out.extend_from_slice(&buf[PAYLOAD_OFFSET..PAYLOAD_OFFSET + usize::from(len)]);
        }
        let mut recovered = Vec::with_capacity(SHREDS_PER_SET - DATA_SHREDS_PER_SET);
        for (position, mut buf) in bufs.into_iter().enumerate() {
            if received & (1 << position) == 0 {
                buf[SIGNATURE_OFFSET..PROOF_OFFSET].copy_from_slice(self.signature.as_bytes());
                self.tree.write_proof(position, &mut buf);
                recovered.push(Shred::from_parts(header, position, buf));
            }
        }
        self.present = u64::MAX;
        self.status = SetStatus::Complete;
        Ok(recovered)
    }
}

/// A shred that decoded, with its leaf hash if already computed.
struct Parsed {
    header: SetHeader,
    position: usize,
    leaf: Option<Hash>,
    /// The shred's bytes already copied (by a batch, in parallel), kept if accepted.
    copy: Option<Vec<u8>>,
}

/// What [`BlockAssembler::admit`] did with a shred; rebuilding is left to the caller.
enum Admitted {
    Duplicate,
    /// Accepted; `ready` if it was its set's 32nd shred, so the set can be rebuilt.
    New {
        id: ShredId,
        ready: bool,
    },
}

/// Signature verdicts computed ahead, keyed by (set, root, signature).
type Verdicts = HashMap<(u32, Hash, Signature), bool>;

/// Rebuilds one slot's block from its shreds, as they arrive, in any order.
///
/// The caller names the slot and its leader (from the leader schedule). Each shred is
/// checked against its set's Merkle root; the leader's signature over a root is checked
/// once, when the set's first shred arrives, and the verified tree is kept so later
/// shreds of the set cost one or two hashes. Any 32 of a set's 64 shreds rebuild it.
///
/// [`insert`](Self::insert) takes one shred; [`insert_batch`](Self::insert_batch) takes
/// what one socket read returned and spreads the hashing, the signature checks and the
/// rebuilds over the caller's rayon pool, with the same results.
///
/// Memory: only sets whose root the leader signed are held, at most [`MAX_FEC_SETS`]
/// of them, each at most 31 shreds before it is rebuilt (a batch may add more) and then
/// only its block bytes (plus a 4 KiB tree and one witness shred), so a slot never
/// holds much more than [`MAX_BLOCK_BYTES`] of shreds, whatever anyone sends.
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
    /// The block's bytes of sets `0..appended`. A set completed in order is rebuilt
    /// straight into it (each block byte copied once from its shred); one completed
    /// ahead waits in its own `data` until the sets before it are in.
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
            copy: None,
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
            copy: None,
        };
        self.insert_parsed(bytes, parsed)
    }

    fn insert_parsed(&mut self, bytes: &[u8], mut parsed: Parsed) -> Result<Insert, ShredError> {
        match self.admit(bytes, &mut parsed, &Verdicts::new())? {
            Admitted::Duplicate => Ok(Insert::Duplicate),
            Admitted::New { id, ready: false } => Ok(Insert::Accepted {
                id,
                recovered: Vec::new(),
                block: None,
            }),
            Admitted::New { id, ready: true } => {
                let fec_set_index = parsed.header.fec_set_index;
                let next = fec_set_index == self.appended;
                let rebuilt = match self.sets.get_mut(&fec_set_index) {
                    Some(set) => set.rebuild(next.then_some(&mut self.block)),
                    None => Err(ShredError::InvalidErasureSet { fec_set_index }),
                };
                let (recovered, block) = self.finish_set(rebuilt)?;
                Ok(Insert::Accepted {
                    id,
                    recovered,
                    block,
                })
            }
        }
    }

    /// Inserts many shreds' untrusted wire bytes; the results are in the same order and
    /// the same as inserting them one by one, except that a set completed within the
    /// batch is rebuilt after the whole batch is admitted (its later shreds in the
    /// batch come back `Accepted` rather than `Duplicate`, and fewer shreds come back
    /// as recovered). Uses the caller's rayon pool.
    pub fn insert_batch(&mut self, batch: &[&[u8]]) -> Vec<Result<Insert, ShredError>> {
        // Parsed and leaf-hashed sixteen at a time (one SIMD pass of the leaf hash with
        // AVX-512; two with AVX2).
        let (slot, sets) = (self.slot, &self.sets);
        let parsed: Vec<Result<Parsed, ShredError>> = batch
            .par_chunks(16)
            .flat_map_iter(|chunk| {
                let parsed: Vec<Result<Parsed, ShredError>> = chunk
                    .iter()
                    .map(|bytes| {
                        let (header, kind, index_in_set) = shred::parse(bytes)?;
                        let position = kind.position(index_in_set);
                        // Copied here, in parallel, only if admission may keep it: not for
                        // another slot, a set already rebuilt or invalid, or a position
                        // already held (admission copies the rare rest itself).
                        let wanted = header.slot == slot
                            && sets.get(&header.fec_set_index).is_none_or(|set| {
                                set.status == SetStatus::Collecting
                                    && set.present & (1u64 << position) == 0
                            });
                        Ok(Parsed {
                            header,
                            position,
                            leaf: None,
                            copy: wanted.then(|| bytes.to_vec()),
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
            .collect();

        // The signature check of every set this batch opens, ahead and in parallel: for
        // the first shred of each set not yet known (a later one is checked in line if
        // that one fails).
        let mut opening = HashSet::new();
        let firsts: Vec<(&[u8], &Parsed)> = batch
            .iter()
            .zip(&parsed)
            .filter_map(|(bytes, parsed)| {
                let p = parsed.as_ref().ok()?;
                let fec_set_index = p.header.fec_set_index;
                (p.header.slot == self.slot
                    && !self.sets.contains_key(&fec_set_index)
                    && opening.insert(fec_set_index))
                .then_some((*bytes, p))
            })
            .collect();
        let verdicts = self.verify_roots(&firsts);
        self.signature_verifications += verdicts.len() as u64;

        let mut results = Vec::with_capacity(batch.len());
        let mut ready = Vec::new();
        for (i, (bytes, parsed)) in batch.iter().zip(parsed).enumerate() {
            let admitted = parsed.and_then(|mut p| {
                let admitted = self.admit(bytes, &mut p, &verdicts)?;
                if let Admitted::New { ready: true, .. } = admitted {
                    ready.push((i, p.header.fec_set_index));
                }
                Ok(admitted)
            });
            results.push(admitted.map(|admitted| match admitted {
                Admitted::Duplicate => Insert::Duplicate,
                Admitted::New { id, .. } => Insert::Accepted {
                    id,
                    recovered: Vec::new(),
                    block: None,
                },
            }));
        }
        if ready.is_empty() {
            return results;
        }

        let to_rebuild: HashSet<u32> = ready.iter().map(|&(_, index)| index).collect();
        let mut rebuilt: HashMap<u32, Result<Vec<Shred>, ShredError>> = self
            .sets
            .iter_mut()
            .filter(|(index, _)| to_rebuild.contains(index))
            .collect::<Vec<_>>()
            .into_par_iter()
            .map(|(&index, set)| (index, set.rebuild(None)))
            .collect();
        for (i, fec_set_index) in ready {
            let outcome = rebuilt
                .remove(&fec_set_index)
                .unwrap_or(Err(ShredError::InvalidErasureSet { fec_set_index }));
            match self.finish_set(outcome) {
                Ok((rebuilt, completed)) => {
                    if let Ok(Insert::Accepted {
                        recovered, block, ..
                    }) = &mut results[i]
                    {
                        *recovered = rebuilt;
                        *block = completed;
                    }
                }
                Err(e) => results[i] = Err(e),
            }
        }
        results
    }

    /// The signature verdicts of the roots `firsts` lead to: batch-verified (one
    /// multiscalar multiplication per thread, the leader's key counted once in it), with
    /// the same verdict for each as [`verify_root`] alone.
    fn verify_roots(&self, firsts: &[(&[u8], &Parsed)]) -> Verdicts {
        let per_thread = firsts.len().div_ceil(rayon::current_num_threads()).max(1);
        let leader = &self.leader;
        firsts
            .par_chunks(per_thread)
            .flat_map_iter(|chunk| {
                let claims: Vec<(u32, Hash, Signature, [u8; 44])> = chunk
                    .iter()
                    .map(|(bytes, p)| {
                        let leaf = p.leaf.unwrap_or_else(|| merkle::leaf(bytes));
                        let root = merkle::root_from_proof(&leaf, p.position, bytes);
                        let message = p.header.signed_message(&root);
                        (p.header.fec_set_index, root, signature_of(bytes), message)
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
                    Err(bad) => bad.into_iter().map(|(i, _)| i).collect(),
                };
                let verdicts: Vec<((u32, Hash, Signature), bool)> = claims
                    .iter()
                    .enumerate()
                    .map(|(i, &(index, root, signature, _))| {
                        ((index, root, signature), !bad.contains(&i))
                    })
                    .collect();
                verdicts
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

    /// Verifies a shred and records it, without rebuilding its set.
    fn admit(
        &mut self,
        bytes: &[u8],
        parsed: &mut Parsed,
        verdicts: &Verdicts,
    ) -> Result<Admitted, ShredError> {
        let header = parsed.header;
        let position = parsed.position;
        if header.slot != self.slot {
            return Err(ShredError::WrongSlot {
                expected: self.slot,
                got: header.slot,
            });
        }
        let fec_set_index = header.fec_set_index;
        let bit = 1u64 << position;
        let signature = signature_of(bytes);
        let conflict = |reason, first: &[u8]| {
            ShredError::Equivocation(Box::new(Equivocation {
                slot: header.slot,
                reason,
                first: first.to_vec(),
                second: bytes.to_vec(),
            }))
        };
        let (kind, index_in_set) = ShredKind::at(position);
        let id = ShredId {
            slot: self.slot,
            kind,
            index: fec_set_index * DATA_SHREDS_PER_SET as u32 + u32::from(index_in_set),
        };

        if let Some(set) = self.sets.get_mut(&fec_set_index) {
            if set.status == SetStatus::Invalid {
                return Err(ShredError::InvalidErasureSet { fec_set_index });
            }
            if set.present & bit != 0
                && set.shreds.get(position).and_then(Option::as_deref) == Some(bytes)
            {
                return Ok(Admitted::Duplicate);
            }
            let leaf = parsed.leaf.unwrap_or_else(|| merkle::leaf(bytes));
            if signature == set.signature {
                if !set.tree.check(&leaf, position, bytes) {
                    return Err(ShredError::BadMerkleProof { fec_set_index });
                }
            } else {
                let root = merkle::root_from_proof(&leaf, position, bytes);
                if root == set.tree.root() {
                    // Right contents, foreign signature: a set has exactly one.
                    return Err(ShredError::BadSignature { fec_set_index });
                }
                self.signature_verifications += 1;
                verify_root(&self.leader, &header, &root, bytes)?;
                return Err(conflict(
                    ConflictReason::DifferentRoot { fec_set_index },
                    &set.witness,
                ));
            }
            if header != set.header {
                return Err(conflict(
                    ConflictReason::InconsistentSet { fec_set_index },
                    &set.witness,
                ));
            }
            if set.present & bit != 0 {
                // An authentic copy of a shred already held or rebuilt.
                return Ok(Admitted::Duplicate);
            }
            set.shreds[position] = Some(parsed.copy.take().unwrap_or_else(|| bytes.to_vec()));
            set.present |= bit;
            let ready = set.present.count_ones() as usize == DATA_SHREDS_PER_SET;
            return Ok(Admitted::New { id, ready });
        }

        // The set's first shred: the one signature check for the set.
        let leaf = parsed.leaf.unwrap_or_else(|| merkle::leaf(bytes));
        let root = merkle::root_from_proof(&leaf, position, bytes);
        let verified = match verdicts.get(&(fec_set_index, root, signature)) {
            Some(&verified) => verified,
            None => {
                self.signature_verifications += 1;
                verify_root(&self.leader, &header, &root, bytes).is_ok()
            }
        };
        if !verified {
            return Err(ShredError::BadSignature { fec_set_index });
        }
        if let Some((offset, witness)) = &self.parent
            && *offset != header.parent_offset
        {
            return Err(conflict(ConflictReason::ParentMismatch, witness));
        }
        // A set past the known last one, or a second last set (set `last` itself exists
        // already, so this one is another).
        if let Some((last, witness)) = &self.last
            && (fec_set_index > *last || header.last)
        {
            return Err(conflict(ConflictReason::LastSetMismatch, witness));
        }
        // A last set below one already held.
        if header.last
            && let Some((&beyond, set)) = self.sets.last_key_value()
            && beyond > fec_set_index
        {
            return Err(conflict(ConflictReason::LastSetMismatch, &set.witness));
        }
        if self.parent.is_none() {
            self.parent = Some((header.parent_offset, bytes.to_vec()));
        }
        if header.last {
            self.last = Some((fec_set_index, bytes.to_vec()));
        }
        let tree = PartialTree::from_proof(&leaf, position, bytes);
        let mut set = FecSetState::new(header, signature, tree, bytes);
        set.shreds[position] = Some(parsed.copy.take().unwrap_or_else(|| bytes.to_vec()));
        set.present = bit;
        self.sets.insert(fec_set_index, set);
        Ok(Admitted::New { id, ready: false })
    }

    /// Appends the block bytes of complete sets that were waiting for the sets before
    /// them, in order, and frees them.
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

    /// Hands out the block: every set 0..=last is complete, so all are appended.
    fn take_block(&mut self) -> Vec<u8> {
        self.append_complete_sets();
        self.block_emitted = true;
        std::mem::take(&mut self.block)
    }
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
        let block_out = results.into_iter().find_map(|r| match r {
            Ok(Insert::Accepted { block, .. }) => block,
            _ => None,
        });
        assert_eq!(block_out, Some(block));
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
