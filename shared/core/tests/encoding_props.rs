//! Property tests of the canonical encoding: round trips, and damaged bytes (truncated or
//! with a flipped bit) never panic and never decode back to the original value.

use bb_core::{Block, Canonical, Entry, Hash, Keypair, PohRecorder, SignedVote, Transaction, Vote};
use proptest::prelude::*;

fn keypair(seed: u8) -> Keypair {
    Keypair::from_seed(&[seed; 32])
}

prop_compose! {
    fn arb_tx()(seed in any::<u8>(), to in any::<[u8; 32]>(), amount in any::<u64>(),
                fee in any::<u64>(), bh in any::<[u8; 32]>()) -> Transaction {
        Transaction::transfer(&keypair(seed), bb_core::Pubkey(to), amount, fee, Hash(bh))
    }
}

prop_compose! {
    fn arb_vote()(seed in any::<u8>(), slot in any::<u64>(), id in any::<[u8; 32]>(),
                  bank in any::<[u8; 32]>(), count in 0u32..32, root in any::<Option<u64>>(),
                  ts in any::<u64>()) -> SignedVote {
        let k = keypair(seed);
        Vote { voter: k.pubkey(), slot, block_id: Hash(id), bank_hash: Hash(bank),
               confirmation_count: count, root, timestamp_ms: ts }.sign(&k)
    }
}

prop_compose! {
    fn arb_block()(txs in proptest::collection::vec(arb_tx(), 0..6), ticks in 1usize..4,
                   slot in 1u64..1_000_000, start in any::<[u8; 32]>()) -> Block {
        let mut poh = PohRecorder::new(Hash(start), 8);
        let mut entries = Vec::new();
        for chunk in txs.chunks(2) {
            entries.push(poh.record(chunk.to_vec()).expect("room in the tick"));
            entries.push(poh.tick());
        }
        for _ in 0..ticks {
            entries.push(poh.tick());
        }
        Block::new_signed(&keypair(1), slot, slot - 1, Hash([2; 32]), Hash(start), entries)
    }
}

/// Every truncation and every single-bit flip of `bytes` decodes to an error or to a
/// value different from `original`, and never panics.
fn check_damage<T: Canonical + PartialEq + std::fmt::Debug>(
    original: &T,
    bytes: &[u8],
    flips: &[usize],
) {
    for len in 0..bytes.len() {
        if let Ok(v) = T::from_bytes(&bytes[..len]) {
            prop_assert_ne_helper(&v, original);
        }
    }
    for &bit in flips {
        let bit = bit % (bytes.len() * 8);
        let mut damaged = bytes.to_vec();
        damaged[bit / 8] ^= 1 << (bit % 8);
        if let Ok(v) = T::from_bytes(&damaged) {
            prop_assert_ne_helper(&v, original);
        }
    }
    let mut longer = bytes.to_vec();
    longer.push(0);
    assert!(T::from_bytes(&longer).is_err(), "trailing byte accepted");
}

fn prop_assert_ne_helper<T: PartialEq + std::fmt::Debug>(a: &T, b: &T) {
    assert_ne!(a, b, "damaged bytes decoded to the original value");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn transaction_round_trips_and_resists_damage(tx in arb_tx(), flips in proptest::collection::vec(any::<usize>(), 64)) {
        let bytes = tx.to_bytes();
        prop_assert_eq!(Transaction::from_bytes(&bytes), Ok(tx));
        check_damage(&tx, &bytes, &flips);
    }

    #[test]
    fn vote_round_trips_and_resists_damage(v in arb_vote(), flips in proptest::collection::vec(any::<usize>(), 64)) {
        let bytes = v.to_bytes();
        prop_assert_eq!(SignedVote::from_bytes(&bytes), Ok(v));
        prop_assert!(v.verify().is_ok());
        check_damage(&v, &bytes, &flips);
    }

    #[test]
    fn block_round_trips_and_resists_damage(b in arb_block(), flips in proptest::collection::vec(any::<usize>(), 128)) {
        let bytes = b.to_bytes();
        let decoded = Block::from_bytes(&bytes);
        prop_assert_eq!(decoded.as_ref(), Ok(&b));
        check_damage(&b, &bytes, &flips);
    }

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let _ = Transaction::from_bytes(&bytes);
        let _ = SignedVote::from_bytes(&bytes);
        let _ = Entry::from_bytes(&bytes);
        let _ = Block::from_bytes(&bytes);
    }
}

#[test]
fn forged_length_prefix_fails_without_allocating() {
    // version byte, then an entry whose transaction count claims 2^60 items.
    let mut bytes = vec![1u8];
    bytes.extend_from_slice(&5u64.to_le_bytes());
    bytes.extend_from_slice(&[0u8; 32]);
    bytes.extend_from_slice(&(1u64 << 60).to_le_bytes());
    assert!(Entry::from_bytes(&bytes).is_err());
    let mut bytes = vec![1u8];
    bytes.extend_from_slice(&[0u8; 8 + 32]);
    bytes.extend_from_slice(&(100_000u64).to_le_bytes());
    assert!(Entry::from_bytes(&bytes).is_err());
}

#[test]
fn oversized_input_is_refused_before_parsing() {
    let bytes = vec![1u8; 300];
    let err = Transaction::from_bytes(&bytes).unwrap_err();
    assert!(err.to_string().contains("over the limit"), "{err}");
}

#[test]
fn large_valid_block_decodes() {
    let k = keypair(5);
    let txs: Vec<Transaction> = (0..5000u64)
        .map(|i| Transaction::transfer(&k, k.pubkey(), i, 1, Hash::ZERO))
        .collect();
    let mut poh = PohRecorder::new(Hash::ZERO, 1_000_000);
    let entries: Vec<Entry> = txs
        .chunks(64)
        .map(|c| poh.record(c.to_vec()).unwrap())
        .collect();
    let b = Block::new_signed(&k, 2, 1, Hash::ZERO, Hash::ZERO, entries);
    assert_eq!(Block::from_bytes(&b.to_bytes()), Ok(b));
}
