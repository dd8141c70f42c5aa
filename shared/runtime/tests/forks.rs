//! BankForks: inserting, rooting, squashing and pruning.

mod common;

use std::sync::Arc;

use bb_core::{Keypair, Transaction};
use bb_runtime::{Bank, BankError, BankForks};
use common::*;

/// A bank on `parent` where `from` pays `amount` to `to`, frozen.
fn pay(parent: &Arc<Bank>, slot: u64, from: &Keypair, to: &Keypair, amount: u64) -> Bank {
    let mut bank = child(parent, slot);
    let tx = Transaction::transfer(from, to.pubkey(), amount, 1, parent.last_blockhash());
    assert_eq!(bank.process_transactions(&[tx]), vec![Ok(())]);
    bank.freeze(poh_end(slot, 0), poh_end(slot, 1))
        .expect("freeze");
    bank
}

///        ┌─ 1 ── 2 ── 4
///  0 ────┤          └─ 5
///        └─ 3
fn tree() -> (BankForks, Vec<Keypair>) {
    let keys = keypairs(0..4);
    let mut forks = BankForks::new(genesis_bank(&keys, 1_000)).expect("forks");
    let b0 = forks.root_bank();
    let b1 = forks
        .insert(pay(&b0, 1, &keys[0], &keys[1], 100))
        .expect("1");
    let b2 = forks
        .insert(pay(&b1, 2, &keys[1], &keys[2], 50))
        .expect("2");
    forks
        .insert(pay(&b0, 3, &keys[0], &keys[3], 10))
        .expect("3");
    forks.insert(pay(&b2, 4, &keys[2], &keys[3], 5)).expect("4");
    forks.insert(pay(&b2, 5, &keys[3], &keys[0], 7)).expect("5");
    (forks, keys)
}

#[test]
fn ancestors_descendants_and_leaves() {
    let (forks, _) = tree();
    assert_eq!(forks.slots(), vec![0, 1, 2, 3, 4, 5]);
    assert_eq!(forks.ancestors(4), vec![2, 1, 0]);
    assert_eq!(forks.descendants(1), vec![2, 4, 5]);
    assert_eq!(forks.leaves(), vec![3, 4, 5]);
    assert!(forks.is_descendant(5, 0));
    assert!(!forks.is_descendant(5, 3));
}

#[test]
fn set_root_squashes_the_chain_and_prunes_other_forks() {
    let (mut forks, keys) = tree();
    let b4 = forks.get(4).expect("4");
    let before: Vec<(bb_core::Pubkey, u64)> = b4.accounts();
    let changes = forks.set_root(2).expect("root");
    assert_eq!(changes.slot, 2);
    assert_eq!(changes.rooted, vec![1, 2]);
    assert_eq!(changes.pruned, vec![3]);
    assert_eq!(forks.slots(), vec![2, 4, 5]);
    assert_eq!(forks.root(), 2);
    let root = forks.root_bank();
    assert!(root.parent().is_none(), "the rooted chain is cut");
    assert_eq!(changes.bank_hash, root.hash().expect("frozen"));
    // Changed since genesis: keys 0, 1, 2 and the leader's fees.
    let expect: Vec<(bb_core::Pubkey, u64)> = {
        let mut v = vec![
            (keys[0].pubkey(), 899),
            (keys[1].pubkey(), 1_049),
            (keys[2].pubkey(), 1_050),
            (leader().pubkey(), 2),
        ];
        v.sort();
        v
    };
    assert_eq!(changes.accounts, expect);
    // Banks above the root read the same state as before.
    assert_eq!(b4.accounts(), before);
    assert_eq!(b4.recompute_state_hash(), b4.state_hash());
    assert_eq!(root.recompute_state_hash(), root.state_hash());
    // Rooting again at the same slot changes nothing; moving on works.
    assert!(forks.set_root(2).expect("same").accounts.is_empty());
    let changes = forks.set_root(5).expect("root 5");
    assert_eq!(changes.pruned, vec![4]);
    assert_eq!(changes.rooted, vec![5]);
    assert_eq!(forks.slots(), vec![5]);
    assert_eq!(forks.root_bank().balance(&keys[0].pubkey()), 906);
}

#[test]
fn a_stale_fork_can_neither_be_rooted_nor_inserted() {
    let (mut forks, keys) = tree();
    let b3 = forks.get(3).expect("3");
    forks.set_root(1).expect("root");
    // Slot 3 was pruned with its fork; its bank cannot become root, nor grow children.
    assert_eq!(
        b3.squash(),
        Err(BankError::NotOnRootedFork { slot: 3, root: 1 })
    );
    assert_eq!(
        forks.insert(pay(&b3, 6, &keys[0], &keys[1], 1)).err(),
        Some(BankError::UnknownParent { slot: 6, parent: 3 })
    );
    assert_eq!(
        forks.set_root(3).err(),
        Some(BankError::UnknownSlot { slot: 3 })
    );
}

#[test]
fn insert_refuses_unfrozen_duplicate_and_foreign_banks() {
    let (mut forks, keys) = tree();
    let b2 = forks.get(2).expect("2");
    assert_eq!(
        forks.insert(child(&b2, 6)).err(),
        Some(BankError::NotFrozen { slot: 6 })
    );
    assert_eq!(
        forks.insert(pay(&b2, 4, &keys[0], &keys[1], 1)).err(),
        Some(BankError::SlotExists { slot: 4 })
    );
    // A bank built on another copy of slot 2 is not this fork's child.
    let copy = Arc::new(pay(&forks.get(1).expect("1"), 2, &keys[1], &keys[2], 50));
    assert_eq!(
        forks.insert(pay(&copy, 7, &keys[0], &keys[1], 1)).err(),
        Some(BankError::UnknownParent { slot: 7, parent: 2 })
    );
    assert!(forks.set_root(0).expect("noop").rooted.is_empty());
}

#[test]
fn a_long_fork_rooted_step_by_step_keeps_its_state() {
    let keys = keypairs(0..8);
    let mut forks = BankForks::new(genesis_bank(&keys, 1_000)).expect("forks");
    for slot in 1..=80u64 {
        let parent = forks.get(slot - 1).expect("parent");
        let i = slot as usize;
        forks
            .insert(pay(&parent, slot, &keys[i % 8], &keys[(i + 3) % 8], slot))
            .expect("insert");
        if slot > 32 {
            forks.set_root(slot - 32).expect("root");
        }
        assert!(forks.len() <= 33);
    }
    let tip = forks.get(80).expect("tip");
    assert_eq!(tip.recompute_state_hash(), tip.state_hash());
    let total: u64 = tip.accounts().iter().map(|(_, b)| b).sum();
    assert_eq!(total, 8_000, "transfers and fees conserve the supply");
    assert_eq!(forks.ancestors(80).len(), 32);
}

#[test]
fn removing_a_version_drops_its_fork_and_lets_another_version_in() {
    let (mut forks, keys) = tree();
    assert!(forks.remove_subtree(0).is_empty(), "the root stays");
    assert_eq!(forks.remove_subtree(2), vec![2, 4, 5]);
    assert_eq!(forks.slots(), vec![0, 1, 3]);
    // Another version of slot 2 (a different transfer) takes the slot, with children.
    let b1 = forks.get(1).expect("1");
    let other = forks
        .insert(pay(&b1, 2, &keys[1], &keys[3], 20))
        .expect("the other version");
    forks
        .insert(pay(&other, 4, &keys[3], &keys[0], 1))
        .expect("a child of the other version");
    assert_eq!(forks.descendants(1), vec![2, 4]);
    let changes = forks.set_root(4).expect("root");
    assert_eq!(changes.rooted, vec![1, 2, 4]);
    assert_eq!(forks.root_bank().balance(&keys[3].pubkey()), 1_018);
}
