//! The handoff grace, driven by hand: the leader of a slot that opens its run waits for
//! the previous leader's last block, and builds on it once replayed; it does not wait
//! for a leader none of whose blocks of that run arrived.

use std::sync::Arc;

mod common;

use bb_core::{Block, Genesis, Keypair, Slot};
use bb_engine::{HANDOFF_GRACE_SLOTS, HeldSlots, Output, Validator};
use bb_runtime::{Bank, produce_block_with_evidence};

fn genesis(keys: &[Keypair]) -> Genesis {
    common::genesis("handoff-test", keys, Vec::new())
}

/// Blocks of slots `1..=last`, each by its scheduled leader on the one before.
fn chain(keys: &[Keypair], genesis: &Genesis, last: Slot) -> Vec<Arc<Block>> {
    let mut bank = Bank::new_genesis(genesis).expect("genesis bank");
    let mut blocks = Vec::new();
    for slot in 1..=last {
        let leader = bank.slot_leader(slot).expect("a leader");
        let key = keys
            .iter()
            .find(|k| k.pubkey() == leader)
            .expect("the leader is one of ours");
        let produced =
            produce_block_with_evidence(&bank, key, slot, &[], &[], None).expect("block");
        blocks.push(Arc::new(produced.block));
        bank = Arc::new(produced.bank);
    }
    blocks
}

/// Four equal validators, the first slot above 1 whose leader differs from the slot
/// before's (`handoff`), that slot's leader, and the blocks of slots `1..handoff`.
struct Handoff {
    keys: Vec<Keypair>,
    genesis: Genesis,
    bank: Arc<Bank>,
    handoff: Slot,
    leader: Keypair,
    blocks: Vec<Arc<Block>>,
}

fn handoff() -> Handoff {
    let keys: Vec<Keypair> = (1..=4u8).map(|i| Keypair::from_seed(&[i; 32])).collect();
    let genesis = genesis(&keys);
    let bank = Bank::new_genesis(&genesis).expect("genesis bank");
    let handoff = (2..64)
        .find(|&s| bank.slot_leader(s).ok() != bank.slot_leader(s - 1).ok())
        .expect("two leaders in the first epoch");
    let me = bank.slot_leader(handoff).expect("a leader");
    let leader = keys
        .iter()
        .find(|k| k.pubkey() == me)
        .expect("ours")
        .clone();
    let blocks = chain(&keys, &genesis, handoff - 1);
    Handoff {
        keys,
        genesis,
        bank,
        handoff,
        leader,
        blocks,
    }
}

fn produced_parent(out: &[Output]) -> Option<Slot> {
    out.iter().find_map(|o| match o {
        Output::SendBlock(b) => Some(b.header.parent_slot),
        _ => None,
    })
}

#[test]
fn the_first_slot_of_a_run_waits_for_the_previous_leaders_block_and_builds_on_it() {
    let Handoff {
        keys,
        genesis,
        bank,
        handoff,
        leader: key,
        blocks,
    } = handoff();
    let next_leader = key.pubkey();
    let other = keys
        .iter()
        .find(|k| {
            k.pubkey() != next_leader && bank.slot_leader(handoff - 1).ok() != Some(k.pubkey())
        })
        .expect("a third validator")
        .clone();

    let mut leader = Validator::new(key, &genesis).expect("validator");
    let mut bystander = Validator::new(other, &genesis).expect("validator");
    assert!(
        !leader.awaits_previous_leader(handoff),
        "no block of the previous leader's run arrived: it is likely down, nothing to wait for"
    );
    for b in &blocks[..blocks.len() - 1] {
        leader.on_block(b.clone(), None);
        bystander.on_block(b.clone(), None);
    }
    assert!(
        leader.awaits_previous_leader(handoff),
        "slot {handoff} opens the run and slot {} is not here yet",
        handoff - 1
    );
    assert!(
        !leader.awaits_previous_leader(handoff + 1),
        "a slot inside the run never waits"
    );
    assert!(
        !bystander.awaits_previous_leader(handoff),
        "only the slot's leader waits"
    );

    let last = blocks.last().expect("a block").clone();
    leader.on_block(last, None);
    assert!(!leader.awaits_previous_leader(handoff));
    let out = leader.produce(handoff, &[], 0);
    assert_eq!(produced_parent(&out), Some(handoff - 1));
}

#[test]
fn held_slots_are_built_in_order_when_the_block_arrives_or_when_the_grace_ends() {
    let Handoff {
        genesis,
        bank,
        handoff,
        leader: key,
        blocks,
        ..
    } = handoff();
    let me = key.pubkey();
    assert_eq!(bank.slot_leader(handoff + 1).ok(), Some(me), "runs of 4");
    let (last, earlier) = blocks.split_last().expect("blocks");

    // The block arrives during the grace: everything held is built at once, in order.
    let mut v = Validator::new(key.clone(), &genesis).expect("validator");
    for b in earlier {
        v.on_block(b.clone(), None);
    }
    let mut held = HeldSlots::new();
    assert_eq!(held.on_slot_end(&mut v, handoff, true), Vec::<Slot>::new());
    assert_eq!(
        held.on_replayed(&mut v),
        Vec::<Slot>::new(),
        "still missing"
    );
    assert_eq!(
        held.on_slot_end(&mut v, handoff + 1, true),
        Vec::<Slot>::new()
    );
    assert_eq!(held.slots(), &[handoff, handoff + 1]);
    v.on_block(last.clone(), None);
    assert_eq!(held.on_replayed(&mut v), vec![handoff, handoff + 1]);
    assert!(held.slots().is_empty());

    // It never arrives: the grace ends HANDOFF_GRACE_SLOTS slot ends later.
    let mut v = Validator::new(key, &genesis).expect("validator");
    for b in earlier {
        v.on_block(b.clone(), None);
    }
    let mut held = HeldSlots::new();
    assert!(held.on_slot_end(&mut v, handoff, true).is_empty());
    for k in 1..HANDOFF_GRACE_SLOTS {
        let ours = bank.slot_leader(handoff + k).ok() == Some(me);
        assert!(held.on_slot_end(&mut v, handoff + k, ours).is_empty());
    }
    let end = handoff + HANDOFF_GRACE_SLOTS;
    let ours = bank.slot_leader(end).ok() == Some(me);
    let built = held.on_slot_end(&mut v, end, ours);
    let expected: Vec<Slot> = (handoff..=end)
        .filter(|&s| bank.slot_leader(s).ok() == Some(me))
        .collect();
    assert_eq!(built, expected);
    assert!(held.slots().is_empty());
}
