//! Snapshots: a root bank taken apart and rebuilt behaves exactly like the original, and
//! tampering is refused or shows downstream.

mod common;

use std::sync::Arc;

use bb_core::{Genesis, Hash, Keypair, Pubkey, Transaction, hashv};
use bb_runtime::{
    Bank, BankError, BankForks, SnapshotFields, SnapshotRefusal, TransactionError, produce_block,
};
use common::*;

struct Net {
    genesis: Genesis,
    validators: Vec<Keypair>,
    users: Vec<Keypair>,
}

impl Net {
    fn new() -> Net {
        let validators = vec![keypair(500), keypair(501)];
        let users = keypairs(0..12);
        let accounts: Vec<(Pubkey, u64)> = users.iter().map(|k| (k.pubkey(), 10_000)).collect();
        let stakes = [(validators[0].pubkey(), 100), (validators[1].pubkey(), 60)];
        let mut genesis = genesis(&accounts, &stakes);
        genesis.slots_per_epoch = 16;
        Net {
            genesis,
            validators,
            users,
        }
    }

    fn leader(&self, bank: &Bank, slot: u64) -> &Keypair {
        let leader = bank.slot_leader(slot).expect("schedule");
        self.validators
            .iter()
            .find(|k| k.pubkey() == leader)
            .expect("a known leader")
    }

    /// A few transfers signed against `parent`'s blockhash, varied by slot.
    fn transfers(&self, parent: &Bank, slot: u64) -> Vec<Transaction> {
        let n = self.users.len() as u64;
        (0..4)
            .map(|i| {
                let from = &self.users[((slot + i) % n) as usize];
                let to = self.users[((slot * 5 + i * 3 + 1) % n) as usize].pubkey();
                Transaction::transfer(from, to, slot + i, 2, parent.last_blockhash())
            })
            .collect()
    }

    /// The frozen bank of `slot` on `parent` with the slot's transfers, and its block.
    fn produce(&self, parent: &Arc<Bank>, slot: u64, extra: &[Transaction]) -> Bank {
        let mut batch = self.transfers(parent, slot);
        batch.extend_from_slice(extra);
        produce_block(parent, self.leader(parent, slot), slot, &[batch])
            .expect("produce")
            .bank
    }
}

/// Slots 1..=`tip` (7 and 23 skipped) over several epochs, a stake change at slot 20,
/// rooted three slots behind and finally at the tip. Returns the forks and a transfer
/// processed at the tip's parent (in the status cache).
fn chain(net: &Net, tip: u64) -> (BankForks, Transaction) {
    let mut forks =
        BankForks::new(Bank::new_genesis(&net.genesis).expect("genesis")).expect("forks");
    let mut parent = forks.root_bank();
    let mut processed = None;
    for slot in 1..=tip {
        if slot == 7 || slot == 23 {
            continue;
        }
        let bank = if slot == 20 {
            // No block: a bank a slashing hook changed, frozen by hand.
            let leader = net.leader(&parent, slot).pubkey();
            let mut bank = Bank::new_from_parent(&parent, slot, leader).expect("child");
            bank.apply_stake_change(net.validators[1].pubkey(), 90)
                .expect("stake");
            let txs = net.transfers(&parent, slot);
            assert!(bank.process_transactions(&txs).iter().all(Result::is_ok));
            bank.freeze(
                hashv(&[b"poh", &slot.to_le_bytes()]),
                hashv(&[b"id", &slot.to_le_bytes()]),
            )
            .expect("freeze");
            bank
        } else if slot == tip - 1 {
            let tx = Transaction::transfer(
                &net.users[0],
                net.users[1].pubkey(),
                7,
                3,
                parent.last_blockhash(),
            );
            processed = Some(tx);
            net.produce(&parent, slot, &[tx])
        } else {
            net.produce(&parent, slot, &[])
        };
        parent = forks.insert(bank).expect("insert");
        if slot > 3 {
            let root = slot - 3;
            if forks.contains(root) {
                forks.set_root(root).expect("root");
            }
        }
    }
    forks.set_root(tip).expect("root the tip");
    (forks, processed.expect("a processed transfer"))
}

/// Produces slots `from..=to` on `original` and replays each block on `rebuilt`; every bank
/// hash must agree. Returns the two tips.
fn extend_both(
    net: &Net,
    original: Arc<Bank>,
    rebuilt: Arc<Bank>,
    from: u64,
    to: u64,
) -> (Arc<Bank>, Arc<Bank>) {
    let (mut a, mut b) = (original, rebuilt);
    for slot in from..=to {
        let produced = produce_block(&a, net.leader(&a, slot), slot, &[net.transfers(&a, slot)])
            .expect("produce");
        let leader = b.slot_leader(slot).expect("schedule");
        let replayed = Bank::replay_block(&b, &produced.block, leader).expect("replay");
        assert_eq!(replayed.hash(), produced.bank.hash(), "slot {slot}");
        a = Arc::new(produced.bank);
        b = Arc::new(replayed);
    }
    (a, b)
}

fn refusal(result: Result<Arc<Bank>, BankError>) -> SnapshotRefusal {
    match result {
        Err(BankError::Snapshot { reason, .. }) => reason,
        other => panic!("expected a snapshot refusal, got {other:?}"),
    }
}

#[test]
fn rebuilt_root_bank_replays_the_next_blocks_to_the_same_bank_hashes() {
    let net = Net::new();
    let (forks, processed) = chain(&net, 40);
    let root = forks.root_bank();
    let (fields, accounts) = root.snapshot().expect("snapshot");
    assert_eq!(fields.slot, 40);
    assert_eq!(fields.epoch, 2);
    assert!(fields.status_cache_len() > 0);
    assert!(accounts.windows(2).all(|w| w[0].0 < w[1].0));

    let rebuilt =
        Bank::from_snapshot(&net.genesis, fields.clone(), accounts.clone()).expect("rebuild");
    assert_eq!(rebuilt.hash(), root.hash());
    assert_eq!(rebuilt.block_id(), root.block_id());
    assert_eq!(rebuilt.state_hash(), root.state_hash());
    assert_eq!(rebuilt.lt_hash(), root.lt_hash());
    assert_eq!(rebuilt.accounts(), root.accounts());
    assert_eq!(rebuilt.stakes(), root.stakes());
    for epoch in 1..=3 {
        assert_eq!(
            rebuilt.leader_schedule(epoch).ok(),
            root.leader_schedule(epoch).ok(),
            "schedule of epoch {epoch}"
        );
    }
    assert_eq!(rebuilt.signature_status(&processed.signature), Some(39));
    // Taken apart again, it is the same snapshot.
    assert_eq!(rebuilt.snapshot().expect("snapshot"), (fields, accounts));

    // Across the next epoch boundary (slot 48) and into the one after.
    let (a, b) = extend_both(&net, root, rebuilt.clone(), 41, 66);
    assert_eq!(a.accounts(), b.accounts());

    // A transfer already processed is still a duplicate on the rebuilt bank.
    let mut child = Bank::new_from_parent(&rebuilt, 41, net.validators[0].pubkey()).expect("child");
    assert_eq!(
        child.process_transactions(&[processed]),
        vec![Err(TransactionError::AlreadyProcessed)]
    );
}

#[test]
fn the_genesis_bank_round_trips() {
    let net = Net::new();
    let genesis = Bank::new_genesis(&net.genesis).expect("genesis");
    let (fields, accounts) = genesis.snapshot().expect("snapshot");
    assert_eq!(genesis.snapshot_fields().expect("fields"), fields);
    let rebuilt = Bank::from_snapshot(&net.genesis, fields, accounts).expect("rebuild");
    assert_eq!(rebuilt.hash(), genesis.hash());
    extend_both(&net, genesis, rebuilt, 1, 5);
}

#[test]
fn only_a_frozen_root_can_be_snapshotted() {
    let net = Net::new();
    let (mut forks, _) = chain(&net, 12);
    let root = forks.root_bank();
    let child = forks.insert(net.produce(&root, 13, &[])).expect("insert");
    assert_eq!(
        child.snapshot().map(|_| ()),
        Err(BankError::Snapshot {
            slot: 13,
            reason: SnapshotRefusal::NotARoot
        })
    );
    let unfrozen = Bank::new_from_parent(&child, 14, net.validators[0].pubkey()).expect("child");
    assert!(unfrozen.snapshot().is_err());
    // Once a later slot is rooted, the old root's view is stale.
    forks.set_root(13).expect("root");
    assert!(root.snapshot().is_err());
    assert!(forks.root_bank().snapshot().is_ok());
}

#[test]
fn tampering_with_hashed_state_is_refused() {
    let net = Net::new();
    let (forks, _) = chain(&net, 30);
    let (fields, accounts) = forks.root_bank().snapshot().expect("snapshot");
    let rebuild =
        |f: SnapshotFields, a: Vec<(Pubkey, u64)>| Bank::from_snapshot(&net.genesis, f, a);

    let mut richer = accounts.clone();
    richer[3].1 += 1;
    assert!(matches!(
        refusal(rebuild(fields.clone(), richer)),
        SnapshotRefusal::StateHashMismatch { .. }
    ));

    let mut fewer = accounts.clone();
    fewer.remove(0);
    assert!(matches!(
        refusal(rebuild(fields.clone(), fewer)),
        SnapshotRefusal::StateHashMismatch { .. }
    ));

    let mut stake = fields.clone();
    stake.stakes[0].1 += 1;
    assert!(matches!(
        refusal(rebuild(stake, accounts.clone())),
        SnapshotRefusal::StateHashMismatch { .. }
    ));

    let mut sigs = fields.clone();
    sigs.signature_count += 1;
    assert!(matches!(
        refusal(rebuild(sigs, accounts.clone())),
        SnapshotRefusal::BankHashMismatch { .. }
    ));

    let mut parent = fields.clone();
    parent.parent_hash = Hash([9; 32]);
    assert!(matches!(
        refusal(rebuild(parent, accounts.clone())),
        SnapshotRefusal::BankHashMismatch { .. }
    ));

    let mut state = fields.clone();
    state.state_hash = Hash([9; 32]);
    assert!(matches!(
        refusal(rebuild(state, accounts.clone())),
        SnapshotRefusal::StateHashMismatch { .. }
    ));

    let mut other_net = fields.clone();
    other_net.genesis_hash = Hash([1; 32]);
    assert!(matches!(
        refusal(rebuild(other_net, accounts.clone())),
        SnapshotRefusal::GenesisMismatch { .. }
    ));

    let mut unsorted = accounts.clone();
    unsorted.swap(0, 1);
    assert!(matches!(
        refusal(rebuild(fields.clone(), unsorted)),
        SnapshotRefusal::BadAccounts(_)
    ));

    let mut stale = fields.clone();
    stale.status_cache[0].0 = Hash([3; 32]);
    assert!(matches!(
        refusal(rebuild(stale, accounts.clone())),
        SnapshotRefusal::Inconsistent(_)
    ));

    let mut queue = fields.clone();
    queue.blockhash_queue.pop();
    assert!(matches!(
        refusal(rebuild(queue, accounts)),
        SnapshotRefusal::Inconsistent(_)
    ));
}

/// The status cache and the blockhash queue are outside the state hash:
/// a consistent change to them rebuilds, and shows as a different bank hash (or a refused
/// block) downstream. The snapshot file's checksums are what guard them at rest.
#[test]
fn tampering_with_unhashed_fields_shows_downstream() {
    let net = Net::new();
    let (forks, processed) = chain(&net, 40);
    let root = forks.root_bank();
    let (fields, accounts) = root.snapshot().expect("snapshot");
    let leader = net.leader(&root, 41);
    let next = |bank: &Arc<Bank>, txs: Vec<Transaction>| {
        produce_block(bank, leader, 41, &[txs])
            .expect("produce")
            .bank
            .hash()
    };

    // Forget the processed transfer: it executes again.
    let mut forgot = fields.clone();
    for (_, sigs) in &mut forgot.status_cache {
        sigs.retain(|(s, _)| *s != processed.signature);
    }
    forgot.status_cache.retain(|(_, sigs)| !sigs.is_empty());
    let tampered = Bank::from_snapshot(&net.genesis, forgot, accounts.clone()).expect("rebuilds");
    assert_ne!(
        next(&tampered, vec![processed]),
        next(&root, vec![processed])
    );

    // Drop the oldest recent blockhash: a transfer signed against it is refused.
    let oldest = fields.blockhash_queue[0].0;
    let mut shorter = fields.clone();
    shorter.blockhash_queue.remove(0);
    shorter.status_cache.retain(|(h, _)| *h != oldest);
    let tampered = Bank::from_snapshot(&net.genesis, shorter, accounts.clone()).expect("rebuilds");
    let old_tx = Transaction::transfer(&net.users[5], net.users[6].pubkey(), 1, 1, oldest);
    assert_ne!(next(&tampered, vec![old_tx]), next(&root, vec![old_tx]));

    // Epoch stakes (the next leader schedule's input) are in the state hash: other ones
    // are refused outright.
    let mut stakes = fields.clone();
    for (_, list) in &mut stakes.epoch_stakes {
        list.retain(|(k, _)| *k == net.validators[1].pubkey());
    }
    assert!(matches!(
        Bank::from_snapshot(&net.genesis, stakes, accounts),
        Err(bb_runtime::BankError::Snapshot {
            reason: bb_runtime::SnapshotRefusal::StateHashMismatch { .. },
            ..
        })
    ));
}
