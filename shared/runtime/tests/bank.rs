//! Accounts, fees, failures, the status cache, recent blockhashes, forks, bank hash,
//! stakes and epochs.

mod common;

use std::sync::Arc;

use bb_core::{Hash, Pubkey, Transaction, hash};
use bb_runtime::{
    Bank, BankError, MAX_RECENT_BLOCKHASHES, ScheduleError, TransactionError, bank_hash,
};
use common::*;

#[test]
fn genesis_bank_funds_accounts_and_stakes() {
    let keys = keypairs(0..3);
    let bank = genesis_bank(&keys, 500);
    assert_eq!(bank.slot(), 0);
    assert!(bank.is_frozen());
    for k in &keys {
        assert_eq!(bank.balance(&k.pubkey()), 500);
    }
    assert_eq!(bank.stakes().get(&leader().pubkey()), 100);
    assert_eq!(bank.accounts().len(), 3);
    assert_eq!(bank.last_blockhash(), bank.genesis_hash());
    assert_eq!(bank.block_id(), Some(bank.genesis_hash()));
    assert_eq!(bank.recompute_state_hash(), bank.state_hash());
}

#[test]
fn invalid_genesis_is_refused() {
    let mut g = genesis(&[], &[]);
    g.validators.clear();
    assert!(matches!(Bank::new_genesis(&g), Err(BankError::Genesis(_))));
}

#[test]
fn transfer_moves_the_amount_and_pays_the_fee_to_the_leader() {
    let keys = keypairs(0..2);
    let root = genesis_bank(&keys, 1_000);
    let mut bank = child(&root, 1);
    let to = keys[1].pubkey();
    let tx = Transaction::transfer(&keys[0], to, 300, 7, root.last_blockhash());
    assert_eq!(bank.process_transactions(&[tx]), vec![Ok(())]);
    assert_eq!(bank.balance(&keys[0].pubkey()), 693);
    assert_eq!(bank.balance(&to), 1_300);
    assert_eq!(bank.balance(&leader().pubkey()), 7);
    assert_eq!(bank.signature_count(), 1);
    assert_eq!(bank.collected_fees(), 7);
    assert_eq!(bank.signature_status(&tx.signature), Some(1));
    // The parent did not change.
    assert_eq!(root.balance(&keys[0].pubkey()), 1_000);
}

#[test]
fn failed_transactions_change_nothing_pay_nothing_and_may_be_retried() {
    let keys = keypairs(0..2);
    let root = genesis_bank(&keys, 100);
    let mut bank = child(&root, 1);
    let (a, b) = (&keys[0], &keys[1]);
    let big = Transaction::transfer(a, b.pubkey(), 150, 1, root.last_blockhash());
    assert_eq!(
        bank.process_transactions(&[big]),
        vec![Err(TransactionError::InsufficientFunds {
            balance: 100,
            needed: 151
        })]
    );
    assert_eq!(bank.balance(&a.pubkey()), 100);
    assert_eq!(bank.balance(&leader().pubkey()), 0);
    assert_eq!(bank.signature_count(), 0);
    assert_eq!(bank.signature_status(&big.signature), None);
    // Funded by b in the same bank, the very same transaction now goes through.
    let fund = Transaction::transfer(b, a.pubkey(), 60, 0, root.last_blockhash());
    assert_eq!(
        bank.process_transactions(&[fund, big]),
        vec![Ok(()), Ok(())]
    );
    assert_eq!(bank.balance(&a.pubkey()), 9);
}

#[test]
fn checks_run_in_the_documented_order() {
    let keys = keypairs(0..2);
    let root = genesis_bank(&keys, 100);
    let mut bank = child(&root, 1);
    let (a, b) = (&keys[0], b_key(&keys));
    let recent = root.last_blockhash();
    let ok = Transaction::transfer(a, b, 1, 1, recent);
    assert_eq!(bank.process_transactions(&[ok]), vec![Ok(())]);

    // A forged duplicate: the signature is checked first.
    let mut forged = ok;
    forged.transfer.amount = 2;
    // A duplicate is refused before its blockhash is looked at.
    let stale_dup = ok;
    // Unknown blockhash before overflow.
    let stale_overflow = Transaction::transfer(a, b, u64::MAX, 1, hash(b"nowhere"));
    // Overflow before funds.
    let overflow = Transaction::transfer(a, b, u64::MAX, 1, recent);
    let poor = Transaction::transfer(a, b, 1_000, 0, recent);
    assert_eq!(
        bank.process_transactions(&[forged, stale_dup, stale_overflow, overflow, poor]),
        vec![
            Err(TransactionError::InvalidSignature),
            Err(TransactionError::AlreadyProcessed),
            Err(TransactionError::BlockhashNotFound),
            Err(TransactionError::Overflow),
            Err(TransactionError::InsufficientFunds {
                balance: 98,
                needed: 1_000
            }),
        ]
    );
}

#[test]
fn check_transaction_gives_what_execution_would_without_executing() {
    let keys = keypairs(0..2);
    let root = genesis_bank(&keys, 100);
    let mut bank = child(&root, 1);
    let (a, b) = (&keys[0], b_key(&keys));
    let recent = root.last_blockhash();
    let ok = Transaction::transfer(a, b, 1, 1, recent);
    let mut forged = ok;
    forged.transfer.amount = 2;
    let stale = Transaction::transfer(a, b, 1, 1, hash(b"nowhere"));
    let overflow = Transaction::transfer(a, b, u64::MAX, 1, recent);
    let poor = Transaction::transfer(a, b, 1_000, 0, recent);
    // Checking changes nothing: the balance is untouched until execution.
    assert_eq!(bank.check_transaction(&ok), Ok(()));
    assert_eq!(bank.check_transaction(&ok), Ok(()));
    assert_eq!(bank.balance(&a.pubkey()), 100);
    // Each check agrees with executing that transaction right after it.
    for tx in [ok, forged, stale, overflow, poor] {
        let expected = bank.check_transaction(&tx);
        assert_eq!(bank.process_transactions(&[tx]), vec![expected], "{tx:?}");
    }
    assert_eq!(
        bank.check_transaction(&ok),
        Err(TransactionError::AlreadyProcessed)
    );
}

fn b_key(keys: &[bb_core::Keypair]) -> Pubkey {
    keys[1].pubkey()
}

#[test]
fn self_transfers_and_zero_amounts_only_cost_the_fee() {
    let keys = keypairs(0..2);
    let root = genesis_bank(&keys, 100);
    let mut bank = child(&root, 1);
    let a = &keys[0];
    let recent = root.last_blockhash();
    let to_self = Transaction::transfer(a, a.pubkey(), 90, 3, recent);
    let zero = Transaction::transfer(a, keys[1].pubkey(), 0, 2, recent);
    // Self-transfers still need amount + fee.
    let too_much = Transaction::transfer(a, a.pubkey(), 96, 0, recent);
    assert_eq!(
        bank.process_transactions(&[to_self, zero, too_much]),
        vec![
            Ok(()),
            Ok(()),
            Err(TransactionError::InsufficientFunds {
                balance: 95,
                needed: 96
            })
        ]
    );
    assert_eq!(bank.balance(&a.pubkey()), 95);
    assert_eq!(bank.balance(&keys[1].pubkey()), 100);
    assert_eq!(bank.balance(&leader().pubkey()), 5);
}

#[test]
fn a_zero_balance_is_no_account() {
    let keys = keypairs(0..2);
    let root = genesis_bank(&keys, 10);
    let mut bank = child(&root, 1);
    let tx = Transaction::transfer(&keys[0], keys[1].pubkey(), 9, 1, root.last_blockhash());
    assert_eq!(bank.process_transactions(&[tx]), vec![Ok(())]);
    let bank = freeze(bank);
    assert_eq!(
        bank.accounts(),
        vec![(keys[1].pubkey(), 19), (leader().pubkey(), 1)]
            .into_iter()
            .collect::<std::collections::BTreeMap<_, _>>()
            .into_iter()
            .collect::<Vec<_>>()
    );
    assert_eq!(bank.recompute_state_hash(), bank.state_hash());
}

#[test]
fn a_duplicate_in_the_same_batch_is_already_processed() {
    let keys = keypairs(0..2);
    let root = genesis_bank(&keys, 100);
    let mut bank = child(&root, 1);
    let tx = Transaction::transfer(&keys[0], keys[1].pubkey(), 10, 1, root.last_blockhash());
    assert_eq!(
        bank.process_transactions(&[tx, tx, tx]),
        vec![
            Ok(()),
            Err(TransactionError::AlreadyProcessed),
            Err(TransactionError::AlreadyProcessed)
        ]
    );
    assert_eq!(bank.balance(&keys[0].pubkey()), 89);
}

#[test]
fn status_cache_rejects_a_replay_in_the_same_bank_and_across_the_parent_chain() {
    let keys = keypairs(0..2);
    let root = genesis_bank(&keys, 100);
    let tx = Transaction::transfer(&keys[0], keys[1].pubkey(), 10, 1, root.last_blockhash());
    let mut b1 = child(&root, 1);
    assert_eq!(b1.process_transactions(&[tx]), vec![Ok(())]);
    assert_eq!(
        b1.process_transactions(&[tx]),
        vec![Err(TransactionError::AlreadyProcessed)]
    );
    let b1 = freeze(b1);
    let b2 = empty_child(&b1, 2);
    let mut b3 = child(&b2, 3);
    assert_eq!(
        b3.process_transactions(&[tx]),
        vec![Err(TransactionError::AlreadyProcessed)]
    );
    assert_eq!(b3.signature_status(&tx.signature), Some(1));
    // A sibling fork of slot 1 never saw it: there it is new.
    let mut sibling = child(&root, 4);
    assert_eq!(sibling.process_transactions(&[tx]), vec![Ok(())]);
}

#[test]
fn status_cache_still_rejects_after_the_bank_is_rooted() {
    let keys = keypairs(0..2);
    let root = genesis_bank(&keys, 100);
    let tx = Transaction::transfer(&keys[0], keys[1].pubkey(), 10, 1, root.last_blockhash());
    let mut b1 = child(&root, 1);
    assert_eq!(b1.process_transactions(&[tx]), vec![Ok(())]);
    let b1 = freeze(b1);
    let b2 = empty_child(&b1, 2);
    b2.squash().expect("squash");
    assert!(b2.parent().is_none());
    let mut b3 = child(&b2, 3);
    assert_eq!(
        b3.process_transactions(&[tx]),
        vec![Err(TransactionError::AlreadyProcessed)]
    );
    assert_eq!(b3.signature_status(&tx.signature), Some(1));
}

#[test]
fn a_blockhash_150_blocks_back_is_accepted_and_151_is_refused() {
    let keys = keypairs(0..2);
    let root = genesis_bank(&keys, 1_000);
    // Blocks 1..=150 each register one blockhash after the genesis hash.
    let mut banks = vec![root.clone()];
    for slot in 1..=MAX_RECENT_BLOCKHASHES as u64 {
        let next = empty_child(banks.last().expect("bank"), slot);
        banks.push(next);
    }
    let tip = banks.last().expect("tip").clone();
    let oldest_kept = banks[1].last_blockhash();
    let expired = root.last_blockhash();
    assert_eq!(tip.blockhash_queue().age(&oldest_kept), Some(149));
    assert!(!tip.is_blockhash_valid(&expired));

    let mut bank = child(&tip, 151);
    let old = Transaction::transfer(&keys[0], keys[1].pubkey(), 1, 1, expired);
    let kept = Transaction::transfer(&keys[0], keys[1].pubkey(), 1, 1, oldest_kept);
    let newest = Transaction::transfer(&keys[0], keys[1].pubkey(), 2, 1, tip.last_blockhash());
    assert_eq!(
        bank.process_transactions(&[old, kept, newest]),
        vec![Err(TransactionError::BlockhashNotFound), Ok(()), Ok(())]
    );
    // A bank's own poh_end is not usable inside it: it exists only once the block ends.
    let own = Transaction::transfer(&keys[0], keys[1].pubkey(), 3, 1, poh_end(151, 0));
    assert_eq!(
        bank.process_transactions(&[own]),
        vec![Err(TransactionError::BlockhashNotFound)]
    );
}

#[test]
fn a_change_on_one_fork_is_invisible_on_its_sibling() {
    let keys = keypairs(0..3);
    let root = genesis_bank(&keys, 100);
    let recent = root.last_blockhash();
    let mut left = child(&root, 1);
    let mut right = child(&root, 2);
    let to_b = Transaction::transfer(&keys[0], keys[1].pubkey(), 40, 0, recent);
    let to_c = Transaction::transfer(&keys[0], keys[2].pubkey(), 70, 0, recent);
    assert_eq!(left.process_transactions(&[to_b]), vec![Ok(())]);
    assert_eq!(right.process_transactions(&[to_c]), vec![Ok(())]);
    let (left, right) = (freeze(left), freeze(right));
    assert_eq!(left.balance(&keys[1].pubkey()), 140);
    assert_eq!(left.balance(&keys[2].pubkey()), 100);
    assert_eq!(right.balance(&keys[1].pubkey()), 100);
    assert_eq!(right.balance(&keys[2].pubkey()), 170);
    // Each fork's children inherit only their own fork's change.
    let left_child = empty_child(&left, 3);
    assert_eq!(left_child.balance(&keys[0].pubkey()), 60);
    assert_ne!(left.hash(), right.hash());
    assert_eq!(root.balance(&keys[0].pubkey()), 100);
}

#[test]
fn a_frozen_bank_refuses_transactions_and_a_second_freeze() {
    let keys = keypairs(0..2);
    let root = genesis_bank(&keys, 100);
    let mut bank = child(&root, 1);
    bank.freeze(Hash::ZERO, Hash::ZERO).expect("first freeze");
    let tx = Transaction::transfer(&keys[0], keys[1].pubkey(), 1, 0, root.last_blockhash());
    assert_eq!(
        bank.process_transactions(&[tx]),
        vec![Err(TransactionError::BankFrozen)]
    );
    assert_eq!(
        bank.freeze(Hash::ZERO, Hash::ZERO),
        Err(BankError::AlreadyFrozen { slot: 1 })
    );
    assert!(matches!(
        Bank::new_from_parent(&Arc::new(child(&root, 2)), 3, leader().pubkey()),
        Err(BankError::ParentNotFrozen { slot: 2 })
    ));
    assert!(matches!(
        Bank::new_from_parent(&root, 0, leader().pubkey()),
        Err(BankError::SlotNotAfterParent { .. })
    ));
}

#[test]
fn the_bank_hash_commits_to_parent_poh_end_state_and_signature_count() {
    let keys = keypairs(0..2);
    let root = genesis_bank(&keys, 100);
    let mut bank = child(&root, 1);
    let tx = Transaction::transfer(&keys[0], keys[1].pubkey(), 5, 1, root.last_blockhash());
    assert_eq!(bank.process_transactions(&[tx]), vec![Ok(())]);
    let end = hash(b"end");
    let h = bank.freeze(end, hash(b"id")).expect("freeze");
    assert_eq!(
        h,
        bank_hash(&root.hash().expect("frozen"), &end, &bank.state_hash(), 1)
    );
    assert_eq!(bank.state_hash(), bank.recompute_state_hash());
    assert_eq!(bank.last_blockhash(), end);
    // Same transactions, another PoH end: another hash.
    let mut other = child(&root, 1);
    assert_eq!(other.process_transactions(&[tx]), vec![Ok(())]);
    assert_ne!(other.freeze(hash(b"other"), hash(b"id")), Ok(h));
}

#[test]
fn the_leader_moving_its_own_balance_sees_every_earlier_fee() {
    // Fees are credited per wave; a transfer from the collector must still see exactly
    // the fees of the transactions before it, and none after.
    let keys = keypairs(0..200);
    let root = genesis_bank(&keys, 100);
    let recent = root.last_blockhash();
    let leader = leader();
    let mut txs: Vec<Transaction> = (0..100)
        .map(|i| Transaction::transfer(&keys[2 * i], keys[2 * i + 1].pubkey(), 1, 1, recent))
        .collect();
    // The leader has collected exactly 100 by now; it spends 100, then 1 more fails.
    txs.push(Transaction::transfer(
        &leader,
        keys[0].pubkey(),
        100,
        0,
        recent,
    ));
    txs.push(Transaction::transfer(
        &leader,
        keys[0].pubkey(),
        1,
        0,
        recent,
    ));
    txs.extend(
        (0..100)
            .map(|i| Transaction::transfer(&keys[2 * i + 1], keys[2 * i].pubkey(), 1, 1, recent)),
    );
    let mut parallel = child(&root, 1);
    let mut serial = child(&root, 1);
    let results = parallel.process_transactions(&txs);
    assert_eq!(results, serial.process_transactions_serial(&txs));
    assert_eq!(results[100], Ok(()));
    assert_eq!(
        results[101],
        Err(TransactionError::InsufficientFunds {
            balance: 0,
            needed: 1
        })
    );
    assert_eq!(parallel.balance(&leader.pubkey()), 100);
    let a = parallel.freeze(Hash::ZERO, Hash::ZERO);
    assert_eq!(a, serial.freeze(Hash::ZERO, Hash::ZERO));
}

#[test]
fn a_stake_change_enters_the_state_hash_and_the_schedule_two_epochs_later() {
    let keys = keypairs(0..2);
    let (v1, v2) = (keypair(900).pubkey(), keypair(901).pubkey());
    let g = genesis(&[(keys[0].pubkey(), 10)], &[(v1, 100), (v2, 100)]);
    let root = Bank::new_genesis(&g).expect("genesis");
    let schedule = |bank: &Bank, epoch| bank.leader_schedule(epoch).expect("schedule");
    let genesis_counts = schedule(&root, 1).slot_counts();

    // Epoch 0: v2 is slashed to nothing.
    let mut bank = Bank::new_from_parent(&root, 5, v1).expect("child");
    let before = bank.state_hash();
    assert_eq!(bank.apply_stake_change(v2, 0), Ok(100));
    assert_ne!(bank.state_hash(), before);
    let bank = freeze(bank);
    assert_eq!(bank.recompute_state_hash(), bank.state_hash());
    assert_eq!(bank.stakes().get(&v2), 0);

    // Epochs 0 and 1 still follow genesis stakes, and epoch 2 follows the stakes at the
    // start of epoch 1, which no bank has reached yet: as seen from here, v1 alone.
    assert_eq!(schedule(&bank, 1).slot_counts(), genesis_counts);
    assert_eq!(schedule(&bank, 2).slot_counts().len(), 1);

    // Entering epoch 1 records the stakes; schedules of 1 and 2 stay as computed.
    let e1 = empty_child(&bank, 33);
    assert_eq!(e1.epoch(), 1);
    assert_eq!(schedule(&e1, 1).slot_counts(), genesis_counts);
    assert_eq!(schedule(&e1, 2), schedule(&bank, 2));
    assert_eq!(e1.epoch_stakes(1).expect("stakes").get(&v2), 0);
    assert_eq!(e1.epoch_stakes(0).expect("stakes").get(&v2), 100);

    // Jumping over whole epochs: the skipped epochs' stakes are the parent's.
    let e5 = empty_child(&e1, 5 * 32 + 3);
    assert_eq!(schedule(&e5, 5), schedule(&e1, 5));
    assert_eq!(
        e5.leader_schedule(3),
        Err(ScheduleError::UnknownEpoch { epoch: 3 })
    );
    assert!(e5.leader_schedule(6).is_ok());
}

#[test]
fn the_slot_leader_follows_the_schedule() {
    let validators: Vec<(Pubkey, u64)> = (0..4).map(|i| (keypair(900 + i).pubkey(), 10)).collect();
    let root = Bank::new_genesis(&genesis(&[], &validators)).expect("genesis");
    let schedule = root.leader_schedule(0).expect("schedule");
    for slot in 0..32 {
        assert_eq!(
            root.slot_leader(slot),
            Ok(schedule.leader_at(slot).expect("leader"))
        );
    }
    // Every validator leads at least one rotation of four slots.
    assert!(schedule.slot_counts().values().all(|c| *c >= 4));
}
