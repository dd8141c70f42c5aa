//! Producing and replaying blocks; tampered blocks are refused with the reason.

mod common;

use std::sync::Arc;

use bb_core::{Block, BlockError, Entry, Hash, Keypair, PohError, PohRecorder, Transaction, hash};
use bb_runtime::{Bank, ReplayError, TransactionError, produce_block};
use common::*;

/// A bank of users and the leader's frozen block 1 with `txs` in one entry.
fn setup(n: u64) -> (Arc<Bank>, Vec<Keypair>) {
    let keys = keypairs(0..n);
    (genesis_bank(&keys, 1_000), keys)
}

/// Entries as an honest PohRecorder makes them: each batch an entry, then the ticks.
fn entries(parent: &Bank, slots: u64, batches: Vec<Vec<Transaction>>) -> Vec<Entry> {
    let mut poh = PohRecorder::new(parent.last_blockhash(), parent.hashes_per_tick());
    let mut out = Vec::new();
    for batch in batches {
        if poh.hashes_until_tick_due() == 0 {
            out.push(poh.tick());
        }
        out.push(poh.record(batch).expect("record"));
    }
    let ticks = out.iter().filter(|e| e.is_tick()).count() as u64;
    for _ in ticks..slots * parent.ticks_per_slot() {
        out.push(poh.tick());
    }
    out
}

fn block(parent: &Bank, leader: &Keypair, slot: u64, entries: Vec<Entry>) -> Block {
    Block::new_signed(
        leader,
        slot,
        parent.slot(),
        parent.block_id().expect("frozen"),
        parent.last_blockhash(),
        entries,
    )
}

fn transfers(keys: &[Keypair], recent: Hash, n: usize) -> Vec<Transaction> {
    (0..n)
        .map(|i| {
            Transaction::transfer(
                &keys[i % keys.len()],
                keys[(i * 7 + 3) % keys.len()].pubkey(),
                i as u64 % 50,
                1,
                recent,
            )
        })
        .collect()
}

#[test]
fn replaying_a_produced_block_gives_the_leaders_bank_hash() {
    let (root, keys) = setup(20);
    let txs = transfers(&keys, root.last_blockhash(), 60);
    let mut batches: Vec<Vec<Transaction>> = txs.chunks(10).map(<[_]>::to_vec).collect();
    // A failing transaction in a batch is left out of the block.
    batches[2].push(Transaction::transfer(
        &keys[0],
        keys[1].pubkey(),
        1 << 40,
        0,
        root.last_blockhash(),
    ));
    let produced = produce_block(&root, &leader(), 1, &batches).expect("produce");
    assert!(produced.results[2][10].is_err());
    assert_eq!(produced.block.header.transaction_count, 60);
    assert_eq!(produced.bank.signature_count(), 60);

    let replayed = Bank::replay_block(&root, &produced.block, leader().pubkey()).expect("replay");
    assert_eq!(replayed.hash(), produced.bank.hash());
    assert_eq!(replayed.block_id(), Some(produced.block.id()));
    assert_eq!(replayed.last_blockhash(), produced.block.header.poh_end);
    assert_eq!(replayed.accounts(), produced.bank.accounts());
    assert_eq!(replayed.state_hash(), replayed.recompute_state_hash());

    // And the next block builds on it, signed against its blockhash.
    let parent = Arc::new(replayed);
    let txs = transfers(&keys, parent.last_blockhash(), 30);
    let next = produce_block(&parent, &leader(), 2, &[txs]).expect("produce");
    let replayed = Bank::replay_block(&parent, &next.block, leader().pubkey()).expect("replay");
    assert_eq!(replayed.hash(), next.bank.hash());
}

#[test]
fn a_block_after_skipped_slots_carries_their_ticks() {
    let (root, keys) = setup(4);
    let txs = transfers(&keys, root.last_blockhash(), 4);
    let produced = produce_block(&root, &leader(), 5, std::slice::from_ref(&txs)).expect("produce");
    assert_eq!(produced.block.header.tick_count, 5 * root.ticks_per_slot());
    assert!(Bank::replay_block(&root, &produced.block, leader().pubkey()).is_ok());

    // One slot's worth of ticks is not enough for a block five slots on.
    let short = block(&root, &leader(), 5, entries(&root, 1, vec![txs]));
    assert_eq!(
        Bank::replay_block(&root, &short, leader().pubkey()).err(),
        Some(ReplayError::TickCount {
            expected: 10,
            actual: 2
        })
    );
}

#[test]
fn tampered_blocks_are_refused_naming_what() {
    let (root, keys) = setup(6);
    let leader = leader();
    let recent = root.last_blockhash();
    let txs = transfers(&keys, recent, 6);
    let good = block(&root, &leader, 1, entries(&root, 1, vec![txs.clone()]));
    let replay = |b: &Block| Bank::replay_block(&root, b, leader.pubkey()).err();
    assert_eq!(replay(&good), None);

    // Someone else's slot.
    let other = keypair(77);
    assert!(matches!(
        Bank::replay_block(&root, &good, other.pubkey()),
        Err(ReplayError::WrongLeader { .. })
    ));

    // A header changed after signing.
    let mut b = good.clone();
    b.header.transaction_count += 1;
    assert!(matches!(
        replay(&b),
        Some(ReplayError::Block(BlockError::Signature(_)))
    ));

    // Entries swapped under a signed header.
    let mut b = good.clone();
    b.entries[0].transactions.swap(0, 1);
    assert_eq!(
        replay(&b),
        Some(ReplayError::Block(BlockError::EntriesHash))
    );

    // Wrong parent linkage, signed by the leader.
    let mut e = entries(&root, 1, vec![txs.clone()]);
    let wrong_parent = Block::new_signed(&leader, 1, 0, hash(b"x"), recent, e.clone());
    assert!(matches!(
        replay(&wrong_parent),
        Some(ReplayError::ParentId { .. })
    ));
    let wrong_start = Block::new_signed(
        &leader,
        1,
        0,
        root.block_id().expect("id"),
        hash(b"x"),
        e.clone(),
    );
    assert!(matches!(
        replay(&wrong_start),
        Some(ReplayError::PohStart { .. })
    ));

    // A PoH hash that does not follow, in a block the leader signed.
    e[0].hash = hash(b"not poh");
    let b = block(&root, &leader, 1, e);
    assert_eq!(
        replay(&b),
        Some(ReplayError::Poh(PohError::Mismatch { index: 0 }))
    );

    // An entry appended after the last tick.
    let mut e = entries(&root, 1, vec![txs.clone()]);
    let mut poh = PohRecorder::new(e.last().expect("tick").hash, root.hashes_per_tick());
    e.push(poh.record(vec![txs[0]]).expect("record"));
    assert_eq!(
        replay(&block(&root, &leader, 1, e)),
        Some(ReplayError::TrailingEntries)
    );

    // A forged transaction signature.
    let mut forged = txs.clone();
    forged[3].transfer.amount += 1;
    let b = block(&root, &leader, 1, entries(&root, 1, vec![forged.clone()]));
    assert_eq!(
        replay(&b),
        Some(ReplayError::InvalidSignature { entry: 0, index: 3 })
    );

    // A transaction that cannot pay, in the second entry.
    let poor = Transaction::transfer(&keys[0], keys[1].pubkey(), 5_000, 0, recent);
    let b = block(
        &root,
        &leader,
        1,
        entries(&root, 1, vec![txs.clone(), vec![txs[5], poor]]),
    );
    assert_eq!(
        replay(&b),
        Some(ReplayError::Transaction {
            entry: 1,
            index: 0,
            error: TransactionError::AlreadyProcessed
        })
    );
    let b = block(
        &root,
        &leader,
        1,
        entries(&root, 1, vec![txs.clone(), vec![poor]]),
    );
    assert!(matches!(
        replay(&b),
        Some(ReplayError::Transaction {
            entry: 1,
            index: 0,
            error: TransactionError::InsufficientFunds { .. }
        })
    ));

    // A forged signature and a transaction that cannot pay: execution ran beside the
    // signature check, but the signature is what the block is refused for.
    let b = block(
        &root,
        &leader,
        1,
        entries(&root, 1, vec![forged, vec![poor]]),
    );
    assert_eq!(
        replay(&b),
        Some(ReplayError::InvalidSignature { entry: 0, index: 3 })
    );

    // An expired or unknown blockhash.
    let stale = Transaction::transfer(&keys[0], keys[1].pubkey(), 1, 0, hash(b"old"));
    let b = block(&root, &leader, 1, entries(&root, 1, vec![vec![stale]]));
    assert!(matches!(
        replay(&b),
        Some(ReplayError::Transaction {
            error: TransactionError::BlockhashNotFound,
            ..
        })
    ));
}

#[test]
fn replay_needs_a_frozen_parent_and_a_later_slot() {
    let (root, keys) = setup(2);
    let produced = produce_block(
        &root,
        &leader(),
        1,
        &[transfers(&keys, root.last_blockhash(), 2)],
    )
    .expect("produce");
    let parent = Arc::new(produced.bank);
    // A block for slot 1 again, on slot 1.
    let again = produce_block(&root, &leader(), 1, &[]).expect("produce");
    assert!(matches!(
        Bank::replay_block(&parent, &again.block, leader().pubkey()),
        Err(ReplayError::SlotNotAfterParent { .. })
    ));
    let unfrozen = Arc::new(child(&root, 2));
    assert!(matches!(
        Bank::replay_block(&unfrozen, &again.block, leader().pubkey()),
        Err(ReplayError::ParentNotFrozen { slot: 2 })
    ));
}
