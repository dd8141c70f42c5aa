//! Slashing in the bank: evidence recorded once per offense, penalties at the next epoch
//! boundary, identical on every fork that carries the same evidence, and carried through
//! replay and snapshots.

mod common;

use std::sync::Arc;

use bb_core::{Canonical, Evidence, Hash, Keypair, SignedVote, Slot, Vote};
use bb_runtime::{
    Bank, BankError, EvidenceRefusal, Penalty, ReplayError, produce_block_with_evidence,
};
use common::{empty_child, freeze, genesis, keypair};

fn vote(k: &Keypair, slot: Slot, block: u8) -> SignedVote {
    Vote {
        voter: k.pubkey(),
        slot,
        block_id: Hash([block; 32]),
        bank_hash: Hash([block; 32]),
        confirmation_count: 1,
        root: None,
        timestamp_ms: 0,
    }
    .sign(k)
}

fn double_vote(k: &Keypair, slot: Slot) -> Evidence {
    Evidence::double_vote(vote(k, slot, 1), vote(k, slot, 2))
}

/// Validators 1 (stake 1000) and 2 (stake 3000); 32-slot epochs; 10 % penalty.
fn setup() -> (Arc<Bank>, Keypair, Keypair) {
    let (a, b) = (keypair(1), keypair(2));
    let g = genesis(&[], &[(a.pubkey(), 1000), (b.pubkey(), 3000)]);
    (Bank::new_genesis(&g).expect("genesis"), a, b)
}

#[test]
fn an_offense_is_recorded_once_and_cut_at_the_next_epoch() {
    let (genesis, a, _) = setup();
    let parent = empty_child(&genesis, 5);
    let mut bank = Bank::new_from_parent(&parent, 6, keypair(2).pubkey()).unwrap();
    let before = bank.lt_hash().checksum();
    let offense = bank.record_evidence(&double_vote(&a, 3)).unwrap();
    assert_ne!(
        bank.lt_hash().checksum(),
        before,
        "the offense is in the state hash"
    );
    // The same offense again, even with other votes as proof, is refused.
    let again = Evidence::double_vote(vote(&a, 3, 7), vote(&a, 3, 8));
    assert!(matches!(
        bank.record_evidence(&again),
        Err(BankError::Evidence {
            reason: EvidenceRefusal::AlreadyRecorded { .. },
            ..
        })
    ));
    // A second offense by the same validator in the same epoch: one penalty all the same.
    bank.record_evidence(&double_vote(&a, 4)).unwrap();
    let bank = freeze(bank);
    assert!(bank.has_offense(&offense));
    assert_eq!(
        bank.stakes().get(&a.pubkey()),
        1000,
        "not cut before the boundary"
    );

    let late = empty_child(&bank, 31);
    assert!(late.penalties().is_empty());
    let next = empty_child(&late, 32);
    assert_eq!(
        next.penalties(),
        &[Penalty {
            offender: a.pubkey(),
            epoch: 1,
            old_stake: 1000,
            new_stake: 900,
        }]
    );
    assert_eq!(next.stakes().get(&a.pubkey()), 900);
    assert_eq!(next.epoch_stakes(1).unwrap().get(&a.pubkey()), 900);
    assert_eq!(next.state_hash(), next.recompute_state_hash());
    // Nothing more at the boundary after: the offenses were in epoch 0.
    let after = empty_child(&next, 64);
    assert!(after.penalties().is_empty());
    assert_eq!(after.stakes().get(&a.pubkey()), 900);
    assert_eq!(after.state_hash(), after.recompute_state_hash());
    // Two epochs on, the offenses are forgotten, and evidence that old is refused.
    assert!(!after.has_offense(&offense));
    assert!(matches!(
        after.check_evidence(&double_vote(&a, 3)),
        Err(EvidenceRefusal::TooOld { .. })
    ));
}

#[test]
fn a_skipped_epoch_still_gets_its_penalty_and_forks_keep_their_own_records() {
    let (genesis, a, b) = setup();
    let base = empty_child(&genesis, 1);
    let mut with = Bank::new_from_parent(&base, 2, b.pubkey()).unwrap();
    with.record_evidence(&double_vote(&a, 1)).unwrap();
    let with = freeze(with);
    let without = empty_child(&base, 3);
    assert_ne!(with.state_hash(), without.state_hash());
    // Straight from epoch 0 to epoch 2 on one fork, into epoch 1 on the other.
    let far = empty_child(&with, 70);
    assert_eq!(far.penalties().len(), 1);
    assert_eq!(far.stakes().get(&a.pubkey()), 900);
    assert_eq!(far.state_hash(), far.recompute_state_hash());
    let clean = empty_child(&without, 33);
    assert!(clean.penalties().is_empty());
    assert_eq!(clean.stakes().get(&a.pubkey()), 1000);
}

#[test]
fn invalid_future_or_unstaked_evidence_is_refused() {
    let (genesis, a, _) = setup();
    let bank = empty_child(&genesis, 4);
    assert!(matches!(
        bank.check_evidence(&double_vote(&a, 9)),
        Err(EvidenceRefusal::FromTheFuture { .. })
    ));
    let stranger = keypair(77);
    assert!(matches!(
        bank.check_evidence(&double_vote(&stranger, 2)),
        Err(EvidenceRefusal::NoStake(_))
    ));
    let mut forged = vote(&a, 2, 2);
    forged.vote.root = Some(1);
    let forged = Evidence::double_vote(vote(&a, 2, 1), forged);
    assert!(matches!(
        bank.check_evidence(&forged),
        Err(EvidenceRefusal::Invalid(_))
    ));
}

#[test]
fn evidence_in_a_block_is_replayed_to_the_same_bank_and_bad_evidence_kills_the_block() {
    let (genesis, a, _) = setup();
    let leader_of = |bank: &Arc<Bank>, slot: Slot| bank.slot_leader(slot).unwrap();
    let leader = |bank: &Arc<Bank>, slot: Slot| {
        let who = leader_of(bank, slot);
        [keypair(1), keypair(2)]
            .into_iter()
            .find(|k| k.pubkey() == who)
            .unwrap()
    };
    let parent = genesis.clone();
    let slot = 3;
    let k = leader(&parent, slot);
    let evidence = [double_vote(&a, 1), double_vote(&a, 1), double_vote(&a, 2)];
    let produced = produce_block_with_evidence(&parent, &k, slot, &[], &evidence, None).unwrap();
    // The duplicate was left out.
    assert_eq!(produced.block.evidence.len(), 2);
    let replayed = Bank::replay_block(&parent, &produced.block, k.pubkey()).unwrap();
    assert_eq!(replayed.hash(), produced.bank.hash());

    // A leader that slips in evidence the chain already holds makes a dead block.
    let parent = Arc::new(replayed);
    let slot = 4;
    let k = leader(&parent, slot);
    let mut bad = produce_block_with_evidence(&parent, &k, slot, &[], &[], None)
        .unwrap()
        .block;
    bad = bb_core::Block::new_signed_with_evidence(
        &k,
        bad.header.slot,
        bad.header.parent_slot,
        bad.header.parent_id,
        bad.header.poh_start,
        bad.entries,
        vec![double_vote(&a, 2)],
    );
    assert!(matches!(
        Bank::replay_block(&parent, &bad, k.pubkey()),
        Err(ReplayError::Evidence { index: 0, .. })
    ));
}

#[test]
fn offenses_and_cut_stakes_survive_a_snapshot() {
    let (genesis, a, b) = setup();
    let mut bank = Bank::new_from_parent(&genesis, 1, b.pubkey()).unwrap();
    bank.record_evidence(&double_vote(&a, 1)).unwrap();
    let bank = freeze(bank);
    let next = empty_child(&bank, 33);
    next.squash().unwrap();
    let (fields, accounts) = next.snapshot().unwrap();
    assert_eq!(fields.offenses.len(), 1);
    let g = common::genesis(&[], &[(a.pubkey(), 1000), (b.pubkey(), 3000)]);
    let back = Bank::from_snapshot(&g, fields.clone(), accounts.clone()).unwrap();
    assert_eq!(back.hash(), next.hash());
    assert_eq!(back.stakes().get(&a.pubkey()), 900);
    // Dropping the offense from the snapshot no longer matches the state hash.
    let mut forged = fields;
    forged.offenses.clear();
    assert!(Bank::from_snapshot(&g, forged, accounts).is_err());
}

/// The first data shred of `leader`'s version of a block of `slot` holding `body`.
fn first_shred(leader: &Keypair, slot: Slot, body: &[u8]) -> Vec<u8> {
    let sets = bb_turbine::Shredder::new(leader.clone())
        .shred(slot, slot - 1, body)
        .expect("shreds");
    sets[0].shreds()[0].as_bytes().to_vec()
}

#[test]
fn two_signed_versions_of_a_block_are_slashable_and_forgeries_are_not() {
    let (genesis, a, b) = setup();
    let (one, two) = (
        first_shred(&a, 3, b"version one"),
        first_shred(&a, 3, b"version two"),
    );
    let evidence = Evidence::duplicate_block(a.pubkey(), 3, one.clone(), two.clone());
    assert_eq!(
        Evidence::duplicate_block(a.pubkey(), 3, two.clone(), one.clone()),
        evidence
    );
    let offense = bb_runtime::verify_evidence(&evidence).expect("proves a duplicate block");
    assert_eq!(offense.kind, bb_core::OffenseKind::DuplicateBlock);
    assert_eq!(offense.offender, a.pubkey());
    // bb-core alone cannot check shreds, and says so.
    assert_eq!(
        evidence.verify(),
        Err(bb_core::EvidenceError::NeedsShredCheck)
    );
    let back = Evidence::from_bytes(&evidence.to_bytes()).expect("round trip");
    assert_eq!(back, evidence);

    // The same shred twice, another signer, or the wrong slot prove nothing.
    let same = Evidence::DuplicateBlock {
        leader: a.pubkey(),
        slot: 3,
        first: one.clone(),
        second: one.clone(),
    };
    assert!(bb_runtime::verify_evidence(&same).is_err());
    let Evidence::DuplicateBlock { first, second, .. } = evidence.clone() else {
        panic!("a duplicate block");
    };
    let swapped = Evidence::DuplicateBlock {
        leader: a.pubkey(),
        slot: 3,
        first: second,
        second: first,
    };
    assert_eq!(
        bb_runtime::verify_evidence(&swapped),
        Err(bb_core::EvidenceError::NotCanonical),
        "one proof, one encoding"
    );
    let framed = Evidence::duplicate_block(b.pubkey(), 3, one.clone(), two.clone());
    assert!(bb_runtime::verify_evidence(&framed).is_err());
    let other_slot = Evidence::duplicate_block(a.pubkey(), 4, one.clone(), two.clone());
    assert!(bb_runtime::verify_evidence(&other_slot).is_err());
    let mixed = Evidence::duplicate_block(a.pubkey(), 3, one, first_shred(&b, 3, b"version two"));
    assert!(bb_runtime::verify_evidence(&mixed).is_err());

    // Recorded like a double vote, and cut at the next epoch.
    let mut bank = Bank::new_from_parent(&genesis, 5, b.pubkey()).expect("child");
    bank.record_evidence(&evidence).expect("recorded");
    let bank = freeze(bank);
    let next = empty_child(&bank, 32);
    assert_eq!(next.stakes().get(&a.pubkey()), 900);
}
