//! The frozen banks of every live fork, and rooting.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use bb_core::{Hash, Pubkey, Slot};

use crate::bank::Bank;
use crate::error::BankError;

/// Every frozen bank from the root up, by slot. Rooting a slot squashes it and drops
/// every bank that does not descend from it.
#[derive(Debug)]
pub struct BankForks {
    banks: HashMap<Slot, Arc<Bank>>,
    root: Arc<Bank>,
}

/// What [`BankForks::set_root`] did: what the ledger must make durable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RootChanges {
    /// The new root.
    pub slot: Slot,
    pub block_id: Hash,
    pub bank_hash: Hash,
    /// Newly rooted slots (ancestors of the new root above the old root, and the new
    /// root itself), ascending. Empty if the root did not move.
    pub rooted: Vec<Slot>,
    /// Banks of dead forks that were dropped, ascending.
    pub pruned: Vec<Slot>,
    /// Every account written since the previous root, by pubkey, with its balance at the
    /// new root; 0 means the account no longer exists.
    pub accounts: Vec<(Pubkey, u64)>,
}

impl BankForks {
    /// Starts from a frozen root bank (the genesis bank, or one restored from a snapshot).
    pub fn new(root: Arc<Bank>) -> Result<BankForks, BankError> {
        if !root.is_frozen() {
            return Err(BankError::NotFrozen { slot: root.slot() });
        }
        Ok(BankForks {
            banks: HashMap::from([(root.slot(), root.clone())]),
            root,
        })
    }

    /// Adds a frozen bank whose parent is the bank this holds for its parent slot.
    pub fn insert(&mut self, bank: Bank) -> Result<Arc<Bank>, BankError> {
        let slot = bank.slot();
        if !bank.is_frozen() {
            return Err(BankError::NotFrozen { slot });
        }
        if self.banks.contains_key(&slot) {
            return Err(BankError::SlotExists { slot });
        }
        let parent_slot = bank.parent_slot();
        let known = match (bank.parent(), self.banks.get(&parent_slot)) {
            (Some(parent), Some(ours)) => Arc::ptr_eq(&parent, ours),
            _ => false,
        };
        if !known {
            return Err(BankError::UnknownParent {
                slot,
                parent: parent_slot,
            });
        }
        let bank = Arc::new(bank);
        self.banks.insert(slot, bank.clone());
        Ok(bank)
    }

    pub fn get(&self, slot: Slot) -> Option<Arc<Bank>> {
        self.banks.get(&slot).cloned()
    }

    pub fn contains(&self, slot: Slot) -> bool {
        self.banks.contains_key(&slot)
    }

    pub fn root(&self) -> Slot {
        self.root.slot()
    }

    pub fn root_bank(&self) -> Arc<Bank> {
        self.root.clone()
    }

    pub fn len(&self) -> usize {
        self.banks.len()
    }

    /// Never true: the root is always there.
    pub fn is_empty(&self) -> bool {
        self.banks.is_empty()
    }

    /// Every slot held, ascending.
    pub fn slots(&self) -> Vec<Slot> {
        let mut slots: Vec<Slot> = self.banks.keys().copied().collect();
        slots.sort_unstable();
        slots
    }

    /// `slot`'s ancestors held here, nearest first, down to the root.
    pub fn ancestors(&self, slot: Slot) -> Vec<Slot> {
        let mut out = Vec::new();
        let mut current = slot;
        while current != self.root.slot() {
            let Some(bank) = self.banks.get(&current) else {
                break;
            };
            current = bank.parent_slot();
            if !self.banks.contains_key(&current) {
                break;
            }
            out.push(current);
        }
        out
    }

    /// Whether `slot` is `ancestor` or descends from it.
    pub fn is_descendant(&self, slot: Slot, ancestor: Slot) -> bool {
        let mut current = slot;
        loop {
            if current == ancestor {
                return true;
            }
            if current < ancestor {
                return false;
            }
            match self.banks.get(&current) {
                Some(bank) if bank.parent_slot() < current => current = bank.parent_slot(),
                _ => return false,
            }
        }
    }

    /// Every slot descending from `slot` (not itself), ascending.
    pub fn descendants(&self, slot: Slot) -> Vec<Slot> {
        let mut out: Vec<Slot> = self
            .banks
            .keys()
            .copied()
            .filter(|s| *s != slot && self.is_descendant(*s, slot))
            .collect();
        out.sort_unstable();
        out
    }

    /// Drops the bank of `slot` and every bank descending from it: a version of `slot`
    /// being replaced by another its leader also signed. The root cannot be removed.
    /// Returns the removed slots, ascending.
    pub fn remove_subtree(&mut self, slot: Slot) -> Vec<Slot> {
        if slot == self.root.slot() || !self.banks.contains_key(&slot) {
            return Vec::new();
        }
        let removed = std::iter::once(slot)
            .chain(self.descendants(slot))
            .collect::<Vec<_>>();
        for s in &removed {
            self.banks.remove(s);
        }
        let mut removed = removed;
        removed.sort_unstable();
        removed
    }

    /// Banks no other bank builds on: the tips of the forks, ascending.
    pub fn leaves(&self) -> Vec<Slot> {
        let parents: BTreeSet<Slot> = self
            .banks
            .values()
            .filter(|b| b.slot() != self.root.slot())
            .map(|b| b.parent_slot())
            .collect();
        let mut out: Vec<Slot> = self
            .banks
            .keys()
            .copied()
            .filter(|s| !parents.contains(s))
            .collect();
        out.sort_unstable();
        out
    }

    /// Makes `slot` the root: squashes it (see [`Bank::squash`]) and drops every bank
    /// that does not descend from it.
    pub fn set_root(&mut self, slot: Slot) -> Result<RootChanges, BankError> {
        let bank = self.get(slot).ok_or(BankError::UnknownSlot { slot })?;
        let (Some(block_id), Some(bank_hash)) = (bank.block_id(), bank.hash()) else {
            return Err(BankError::NotFrozen { slot });
        };
        let old_root = self.root.slot();
        if slot == old_root {
            return Ok(RootChanges {
                slot,
                block_id,
                bank_hash,
                rooted: Vec::new(),
                pruned: Vec::new(),
                accounts: Vec::new(),
            });
        }
        if !self.is_descendant(slot, old_root) {
            return Err(BankError::NotOnRootedFork {
                slot,
                root: old_root,
            });
        }
        let mut rooted: Vec<Slot> = self.ancestors(slot);
        rooted.retain(|s| *s != old_root);
        rooted.reverse();
        rooted.push(slot);
        let accounts = bank.squash()?;
        let keep: BTreeSet<Slot> = self
            .banks
            .keys()
            .copied()
            .filter(|s| self.is_descendant(*s, slot))
            .collect();
        let mut pruned: Vec<Slot> = self
            .banks
            .keys()
            .copied()
            .filter(|s| !keep.contains(s) && *s != old_root && !rooted.contains(s))
            .collect();
        pruned.sort_unstable();
        self.banks.retain(|s, _| keep.contains(s));
        self.root = bank;
        Ok(RootChanges {
            slot,
            block_id,
            bank_hash,
            rooted,
            pruned,
            accounts,
        })
    }
}
