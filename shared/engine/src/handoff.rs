//! The handoff grace: when our run of leader slots begins and the previous leader's last
//! block has not been replayed here yet, our blocks wait for it a little, so they build
//! on it instead of orphaning it.

use bb_core::Slot;

use crate::Validator;

/// Slot ends a held block waits at most past its own slot's end for the previous
/// leader's last block. That block was finished as our slot began; on a saturated
/// machine it takes about a slot to reach every node, sometimes two.
pub const HANDOFF_GRACE_SLOTS: u64 = 2;

/// Our leader slots whose blocks wait for the previous leader's last one. A driver
/// builds the slots this returns, in order, with [`Validator::produce`].
#[derive(Debug, Default)]
pub struct HeldSlots {
    slots: Vec<Slot>,
    /// The slot at whose end the held slots are built whatever arrived.
    until: Slot,
}

impl HeldSlots {
    pub fn new() -> HeldSlots {
        HeldSlots::default()
    }

    /// Slots waiting now (oldest first).
    pub fn slots(&self) -> &[Slot] {
        &self.slots
    }

    /// The end of `slot` (`ours` if we lead it): the slots to build now. Held slots are
    /// built once the grace is over; a slot of ours waits behind held ones, or starts a
    /// wait if [`Validator::awaits_previous_leader`] says so.
    pub fn on_slot_end(&mut self, validator: &mut Validator, slot: Slot, ours: bool) -> Vec<Slot> {
        let mut now = Vec::new();
        if !self.slots.is_empty() && slot >= self.until {
            now.append(&mut self.slots);
        }
        if ours {
            if !self.slots.is_empty() {
                self.slots.push(slot);
            } else if now.is_empty() && validator.awaits_previous_leader(slot) {
                self.slots.push(slot);
                self.until = slot + HANDOFF_GRACE_SLOTS;
            } else {
                now.push(slot);
            }
        }
        now
    }

    /// After a block was replayed: every held slot if the block they wait for is here.
    pub fn on_replayed(&mut self, validator: &mut Validator) -> Vec<Slot> {
        match self.slots.first() {
            Some(&first) if !validator.awaits_previous_leader(first) => {
                std::mem::take(&mut self.slots)
            }
            _ => Vec::new(),
        }
    }

    /// Forgets the held slots (the node stopped).
    pub fn clear(&mut self) {
        self.slots.clear();
    }
}
