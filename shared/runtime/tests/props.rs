//! Property tests: parallel execution equals serial execution; the incremental state
//! hash equals the one recomputed from scratch; leader schedules are deterministic and
//! stake-proportional.

mod common;

use std::sync::{Arc, LazyLock};

use bb_core::{Hash, Keypair, Pubkey, Transaction, hash};
use bb_runtime::{Bank, BankForks, LeaderSchedule, Stakes, leader_schedule_seed};
use common::*;
use proptest::prelude::*;

static KEYS: LazyLock<Vec<Keypair>> = LazyLock::new(|| keypairs(0..1000));

/// (from, to, amount, fee, kind): kind picks a failure or a special case.
type Spec = (usize, usize, u64, u64, u8);

/// `special` out of 1000 transactions are one of the special kinds (0..=8), the rest
/// plain transfers.
fn specs(accounts: usize, max_len: usize, special: u32) -> impl Strategy<Value = Vec<Spec>> {
    let kind = prop_oneof![
        special => 0u8..9,
        1000 - special => Just(9u8),
    ];
    prop::collection::vec(
        (0..accounts, 0..accounts, 0u64..400, 0u64..20, kind),
        0..max_len,
    )
}

/// Builds transactions: mostly plain transfers (many unaffordable), plus stale
/// blockhashes, duplicates of earlier transactions, forged signatures, `amount + fee`
/// overflows, and transfers from and to the leader (the fee collector).
fn build(specs: &[Spec], recents: &[Hash], earlier: &mut Vec<Transaction>) -> Vec<Transaction> {
    let leader = leader();
    let mut out = Vec::with_capacity(specs.len());
    for &(from, to, amount, fee, kind) in specs {
        let recent = recents[from % recents.len()];
        let (sender, receiver) = (&KEYS[from], KEYS[to].pubkey());
        let tx = match kind {
            0 => Transaction::transfer(sender, receiver, amount, fee, hash(b"stale")),
            1 | 2 if !earlier.is_empty() => earlier[(from * 31 + to) % earlier.len()],
            3 => {
                let mut t = Transaction::transfer(sender, receiver, amount, fee, recent);
                t.transfer.amount ^= 1;
                t
            }
            4 => Transaction::transfer(sender, receiver, u64::MAX - fee / 2, fee, recent),
            5 | 6 => Transaction::transfer(&leader, receiver, amount / 4, fee, recent),
            7 | 8 => Transaction::transfer(sender, leader.pubkey(), amount, fee, recent),
            _ => Transaction::transfer(sender, receiver, amount, fee, recent),
        };
        earlier.push(tx);
        out.push(tx);
    }
    out
}

fn check_parallel_equals_serial(
    accounts: usize,
    balances: &[u64],
    first: &[Spec],
    second: &[Spec],
) -> Result<(), TestCaseError> {
    let mut funded: Vec<(Pubkey, u64)> = (0..accounts)
        .map(|i| (KEYS[i].pubkey(), balances[i % balances.len()]))
        .collect();
    funded.push((leader().pubkey(), 40));
    let root = Bank::new_genesis(&genesis(&funded, &[(leader().pubkey(), 100)]))
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    let mut earlier = Vec::new();

    // A parent with changes of its own, so reads and the status cache walk ancestors.
    let txs = build(first, &[root.last_blockhash()], &mut earlier);
    let mut p_par = child(&root, 1);
    let mut p_ser = child(&root, 1);
    prop_assert_eq!(
        p_par.process_transactions(&txs),
        p_ser.process_transactions_serial(&txs)
    );
    let parent = freeze(p_par);

    let recents = [root.last_blockhash(), parent.last_blockhash()];
    let txs = build(second, &recents, &mut earlier);
    let mut par = child(&parent, 2);
    let mut ser = child(&parent, 2);
    prop_assert_eq!(
        par.process_transactions(&txs),
        ser.process_transactions_serial(&txs)
    );
    for key in KEYS[..accounts]
        .iter()
        .map(Keypair::pubkey)
        .chain([leader().pubkey()])
    {
        prop_assert_eq!(par.balance(&key), ser.balance(&key));
    }
    prop_assert_eq!(par.signature_count(), ser.signature_count());
    prop_assert_eq!(par.collected_fees(), ser.collected_fees());
    let h = par.freeze(Hash::ZERO, Hash::ZERO);
    prop_assert_eq!(h, ser.freeze(Hash::ZERO, Hash::ZERO));
    prop_assert_eq!(par.state_hash(), par.recompute_state_hash());
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn parallel_equals_serial_with_many_conflicts(
        accounts in 2usize..6,
        balances in prop::collection::vec(0u64..600, 1..6),
        first in specs(6, 40, 400),
        second in specs(6, 160, 400),
    ) {
        let clamp = |s: Vec<Spec>| -> Vec<Spec> {
            s.into_iter().map(|(f, t, a, fee, k)| (f % accounts, t % accounts, a, fee, k)).collect()
        };
        check_parallel_equals_serial(accounts, &balances, &clamp(first), &clamp(second))?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]

    #[test]
    fn parallel_equals_serial_with_few_conflicts(
        balances in prop::collection::vec(0u64..600, 1..20),
        first in specs(1000, 100, 30),
        second in specs(1000, 400, 30),
    ) {
        check_parallel_equals_serial(1000, &balances, &first, &second)?;
    }
}

/// One step of random history: build on one of the live banks, maybe change a stake,
/// maybe move the root.
type Step = (
    usize,
    Vec<(usize, usize, u64, u64)>,
    Option<(usize, u64)>,
    Option<usize>,
);

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn incremental_state_hash_equals_recomputed_from_scratch(
        steps in prop::collection::vec(
            (
                0usize..64,
                prop::collection::vec((0usize..12, 0usize..12, 0u64..300, 0u64..5), 0..12),
                prop::option::of((0usize..3, 0u64..50)),
                prop::option::weighted(0.2, 0usize..64),
            ),
            1..24,
        ),
    ) {
        let validators: Vec<Pubkey> = (0..3).map(|i| keypair(500 + i).pubkey()).collect();
        let funded: Vec<(Pubkey, u64)> = KEYS[..12].iter().map(|k| (k.pubkey(), 500)).collect();
        let staked: Vec<(Pubkey, u64)> = validators.iter().map(|v| (*v, 10)).collect();
        let root = Bank::new_genesis(&genesis(&funded, &staked))
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        let mut forks = BankForks::new(root).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let mut next_slot = 1;
        let steps: Vec<Step> = steps;
        for (pick, transfers, stake, root_pick) in steps {
            let slots = forks.slots();
            let parent = forks.get(slots[pick % slots.len()]).expect("live");
            let mut bank = Bank::new_from_parent(&parent, next_slot, validators[pick % 3])
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            let txs: Vec<Transaction> = transfers
                .iter()
                .map(|&(f, t, a, fee)| {
                    Transaction::transfer(&KEYS[f], KEYS[t].pubkey(), a, fee, parent.last_blockhash())
                })
                .collect();
            bank.process_transactions(&txs);
            if let Some((v, s)) = stake {
                bank.apply_stake_change(validators[v], s).expect("unfrozen");
            }
            bank.freeze(poh_end(next_slot, 0), poh_end(next_slot, 1)).expect("freeze");
            prop_assert_eq!(bank.state_hash(), bank.recompute_state_hash());
            forks.insert(bank).map_err(|e| TestCaseError::fail(e.to_string()))?;
            next_slot += 1 + (pick as u64 % 3);
            if let Some(r) = root_pick {
                let slots = forks.slots();
                forks.set_root(slots[r % slots.len()]).map_err(|e| TestCaseError::fail(e.to_string()))?;
                for slot in forks.slots() {
                    let bank = forks.get(slot).expect("live");
                    prop_assert_eq!(bank.state_hash(), bank.recompute_state_hash());
                }
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn leader_schedules_are_deterministic_and_stake_proportional(
        stakes in prop::collection::vec(1u64..1_000_000, 1..9),
        rotations in 1u64..600,
        slots_per_rotation in 1u64..6,
        min_share in 0u64..3,
        epoch in 0u64..1_000,
    ) {
        let list: Vec<(Pubkey, u64)> = stakes.iter().enumerate().map(|(i, s)| (keypair(i as u64).pubkey(), *s)).collect();
        let stakes: Stakes = list.iter().copied().collect();
        let slots_per_epoch = rotations * slots_per_rotation;
        let seed = leader_schedule_seed(&Hash([7; 32]), epoch);
        let a = LeaderSchedule::new(epoch, &stakes, seed, slots_per_epoch, slots_per_rotation, min_share).expect("schedule");
        let b = LeaderSchedule::new(epoch, &stakes, seed, slots_per_epoch, slots_per_rotation, min_share).expect("schedule");
        prop_assert_eq!(&a, &b);
        prop_assert_eq!(a.rotations().len() as u64, rotations);

        let n = list.len() as u64;
        let guaranteed = min_share.min(rotations / n);
        let rest = u128::from(rotations - guaranteed * n);
        let total: u128 = list.iter().map(|(_, s)| u128::from(*s)).sum();
        for (key, stake) in &list {
            let turns = a.rotations().iter().filter(|k| *k == key).count() as u128;
            let quota = rest * u128::from(*stake) / total;
            let floor = u128::from(guaranteed) + quota;
            prop_assert!(turns == floor || turns == floor + 1, "{turns} turns, quota {floor}");
            for slot in a.slots_of(key) {
                prop_assert_eq!(a.leader_at(slot), Some(*key));
            }
        }
        let first = epoch * slots_per_epoch;
        prop_assert_eq!(a.leader_at(first.wrapping_sub(1)).filter(|_| first > 0), None);
        prop_assert_eq!(a.leader_at(first + slots_per_epoch), None);
    }
}

#[test]
fn banks_built_on_a_shared_parent_are_independent() {
    // Two forks on one parent processed concurrently from two threads.
    let keys = &KEYS[..40];
    let root = genesis_bank(keys, 1_000);
    let recent = root.last_blockhash();
    let run = |offset: usize| {
        let root = Arc::clone(&root);
        move || {
            let mut bank = child(&root, 1 + offset as u64);
            let txs: Vec<Transaction> = (0..200)
                .map(|i| {
                    Transaction::transfer(
                        &keys[(i + offset) % 40],
                        keys[(i * 3 + 1) % 40].pubkey(),
                        (i % 7 + offset) as u64,
                        1,
                        recent,
                    )
                })
                .collect();
            let results = bank.process_transactions(&txs);
            (results, bank.freeze(Hash::ZERO, Hash::ZERO))
        }
    };
    let (a, b) = rayon::join(run(0), run(5));
    let (a2, b2) = (run(0)(), run(5)());
    assert_eq!(a, a2);
    assert_eq!(b, b2);
    assert_ne!(a.1, b.1);
}
