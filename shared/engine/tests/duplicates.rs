//! Duplicate slots, driven by hand: a leader signs two versions of slot 1, and the
//! validators settle on one (or build around it) as the engine promises.

use std::sync::Arc;

mod common;

use bb_core::{Block, Genesis, GenesisAccount, Keypair, Transaction};
use bb_engine::{Output, Validator};
use bb_runtime::{Bank, produce_block_with_evidence};

struct Cluster {
    keys: Vec<Keypair>,
    payer: Keypair,
    genesis: Genesis,
}

fn cluster() -> Cluster {
    let keys: Vec<Keypair> = (1..=4u8).map(|i| Keypair::from_seed(&[i; 32])).collect();
    let payer = Keypair::from_seed(&[99; 32]);
    let genesis = common::genesis(
        "duplicates-test",
        &keys,
        vec![GenesisAccount {
            address: payer.pubkey(),
            balance: 1 << 40,
        }],
    );
    Cluster {
        keys,
        payer,
        genesis,
    }
}

/// Slot 1's leader, and two versions of slot 1 it signed (one with a transfer, one empty).
fn two_versions(c: &Cluster) -> (usize, Arc<Block>, Arc<Block>) {
    let bank = Arc::new(Bank::new_genesis(&c.genesis).expect("genesis bank"));
    let leader_key = bank.slot_leader(1).expect("a leader for slot 1");
    let leader = c
        .keys
        .iter()
        .position(|k| k.pubkey() == leader_key)
        .expect("the leader is one of ours");
    let tx = Transaction::transfer(&c.payer, c.keys[0].pubkey(), 5, 1, bank.last_blockhash());
    let a = produce_block_with_evidence(&bank, &c.keys[leader], 1, &[vec![tx]], &[], None)
        .expect("version A")
        .block;
    let b = produce_block_with_evidence(&bank, &c.keys[leader], 1, &[], &[], None)
        .expect("version B")
        .block;
    assert_ne!(a.id(), b.id());
    (leader, Arc::new(a), Arc::new(b))
}

fn votes_of(out: &[Output]) -> Vec<Arc<bb_core::SignedVote>> {
    out.iter()
        .filter_map(|o| match o {
            Output::SendVote(v) => Some(Arc::new(*v)),
            _ => None,
        })
        .collect()
}

#[test]
fn a_node_on_the_losing_version_fetches_and_replays_the_confirmed_one() {
    let c = cluster();
    let (leader, a, b) = two_versions(&c);
    let mut nodes: Vec<Validator> = c
        .keys
        .iter()
        .map(|k| Validator::new(k.clone(), &c.genesis).expect("validator"))
        .collect();
    // Every node but one gets version A and votes for it; the last gets B.
    let odd = (0..4).find(|i| *i != leader).expect("a non-leader");
    let mut votes = Vec::new();
    for (i, node) in nodes.iter_mut().enumerate() {
        let block = if i == odd { b.clone() } else { a.clone() };
        let out = node.on_block(block, None);
        if i != odd {
            votes.extend(votes_of(&out));
        }
    }
    assert_eq!(votes.len(), 3, "three nodes vote for A");
    assert_eq!(nodes[odd].block_id(1), Some(b.id()));

    // Their votes reach the odd node: it asks the voters for their version of slot 1.
    let mut asked = false;
    for v in &votes {
        let out = nodes[odd].on_vote(v.clone(), Some(v.vote.voter));
        asked |= out.iter().any(|o| {
            matches!(
                o,
                Output::Repair {
                    slot: 1,
                    hint: Some(_)
                }
            )
        });
    }
    assert!(asked, "a vote for another version makes the node fetch it");

    // The repair brings A: two signed versions prove the duplicate, 75 % of the stake
    // voted for A, so the node drops B and replays A.
    let out = nodes[odd].on_block(a.clone(), Some(c.keys[leader].pubkey()));
    assert!(out.iter().any(|o| matches!(
        o,
        Output::DuplicateSlot {
            slot: 1,
            confirmed: None
        }
    )));
    assert!(out.iter().any(|o| matches!(
        o,
        Output::ReplacedVersion { slot: 1, ours, confirmed, .. } if *ours == b.id() && *confirmed == a.id()
    )));
    assert_eq!(nodes[odd].block_id(1), Some(a.id()));
    assert_eq!(
        nodes[odd].best_slot(),
        1,
        "the confirmed version is a candidate"
    );
}

#[test]
fn an_unconfirmed_duplicate_is_neither_best_nor_voted_on() {
    let c = cluster();
    let (leader, a, b) = two_versions(&c);
    let node = (0..4).find(|i| *i != leader).expect("a non-leader");
    let mut v = Validator::new(c.keys[node].clone(), &c.genesis).expect("validator");
    // Both versions arrive before anyone voted: the slot is duplicate and unsettled.
    let mut out = v.on_block(a.clone(), None);
    assert_eq!(
        votes_of(&out).len(),
        1,
        "the first version looks fine and gets a vote"
    );
    out = v.on_block(b.clone(), None);
    assert!(out.iter().any(|o| matches!(
        o,
        Output::DuplicateSlot {
            slot: 1,
            confirmed: None
        }
    )));
    assert_eq!(v.best_slot(), 0, "no version of slot 1 is a candidate");
    assert!(votes_of(&v.poll_vote(1_000)).is_empty());
    assert_eq!(
        v.duplicate_versions(1).len(),
        2,
        "both signed versions are kept as proof"
    );

    // A forged third version (not signed by the leader) proves nothing and is ignored.
    let mut forged = (*b).clone();
    forged.header.tick_count += 1;
    let out = v.on_block(Arc::new(forged), None);
    assert!(out.is_empty() || votes_of(&out).is_empty());
    assert_eq!(v.duplicate_versions(1).len(), 2);
}

#[test]
fn a_block_is_needed_until_held_and_again_when_a_vote_names_another_version() {
    let c = cluster();
    let (leader, a, b) = two_versions(&c);
    let [first, second] = [0, 1, 2, 3]
        .into_iter()
        .filter(|i| *i != leader)
        .take(2)
        .collect::<Vec<_>>()[..]
    else {
        panic!("three non-leaders in a cluster of four");
    };
    let mut node = Validator::new(c.keys[first].clone(), &c.genesis).expect("validator");
    assert!(node.needs_block(1), "nothing held yet");
    assert!(!node.needs_block(0), "the root is never fetched");
    node.on_block(a.clone(), None);
    assert!(
        !node.needs_block(1),
        "version A held, nobody voted otherwise"
    );
    // Another node holds B and votes for it: A's holder must fetch B (a duplicate).
    let mut other = Validator::new(c.keys[second].clone(), &c.genesis).expect("validator");
    let vote_b = votes_of(&other.on_block(b.clone(), None));
    assert!(!vote_b.is_empty(), "the holder of B votes for it");
    for v in vote_b {
        let voter = v.vote.voter;
        node.on_vote(v, Some(voter));
    }
    assert!(node.needs_block(1), "a vote names version B, not held here");
    node.on_block(b, None);
    assert!(!node.needs_block(1), "both versions known now");
}
