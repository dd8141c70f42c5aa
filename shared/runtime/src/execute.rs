//! Transaction execution: checks, account-lock waves run in parallel, commit.
//!
//! The result is always exactly that of executing the batch one transaction at a time,
//! in order ([`Bank::process_transactions_serial`], the reference):
//!
//! 1. **Check** (parallel, read-only): duplicate signature on this fork, recent blockhash,
//!    `amount + fee` overflow. These depend only on the state before the batch — except a
//!    duplicate *inside* the batch, which step 2 orders and step 3 re-checks.
//! 2. **Schedule** (serial, O(n)): each transaction goes into the first wave after every
//!    earlier transaction it shares an account with (its `from` and `to` are its locks),
//!    and after an earlier transaction with the same signature. The fee collector is not
//!    a lock: fees are added, which commutes, so each wave's fees are summed and credited
//!    after the wave. A transaction that moves the collector's own balance is a barrier:
//!    it runs alone after every earlier transaction and before every later one.
//! 3. **Execute** each wave (parallel when large: no two of its transactions touch the same
//!    account), then commit its writes, signatures and fees, serially and in order.

use std::sync::Arc;

use bb_core::{Pubkey, Signature, Transaction, VerifiedTxs, verify_transactions};
use rayon::prelude::*;

use crate::bank::Bank;
use crate::error::TransactionError;
use crate::prehash::{PrehashMap, PrehashSet, Prehashed};

/// Waves smaller than this run on the calling thread: the work per transfer is far below
/// the cost of waking other threads.
const PARALLEL_MIN: usize = 64;

/// A transaction's keys and its checks against the state before the batch.
struct Checked {
    sig: Prehashed<Signature>,
    from: Prehashed<Pubkey>,
    to: Prehashed<Pubkey>,
    /// `amount + fee`, or why the transaction fails before touching balances.
    cost: Result<u64, TransactionError>,
}

/// The balances a transfer writes: sender, receiver and, when the fee is credited in
/// place, the collector (fewer when they coincide).
#[derive(Default)]
struct Writes {
    slots: [Option<(Prehashed<Pubkey>, u64)>; 3],
    /// Whether the fee was credited here rather than summed per wave.
    fee_inline: bool,
}

impl Writes {
    fn get(&self, key: &Prehashed<Pubkey>) -> Option<u64> {
        self.slots
            .iter()
            .flatten()
            .find(|(k, _)| k == key)
            .map(|(_, v)| *v)
    }

    fn set(&mut self, key: Prehashed<Pubkey>, value: u64) {
        for slot in &mut self.slots {
            match slot {
                Some((k, v)) if *k == key => {
                    *v = value;
                    return;
                }
                None => {
                    *slot = Some((key, value));
                    return;
                }
                Some(_) => {}
            }
        }
    }
}

type Results = Vec<Result<(), TransactionError>>;

/// The batched signature check of `txs` ([`verify_transactions`]), through `verified`
/// when the caller shares one: the same answer either way.
pub(crate) fn verify_signatures(
    txs: &[Transaction],
    verified: Option<&VerifiedTxs>,
) -> Result<(), Vec<usize>> {
    match verified {
        Some(cache) => cache.verify(txs),
        None => verify_transactions(txs),
    }
}

impl Bank {
    /// Verifies the signatures in batch (all cores), then executes the batch in parallel
    /// by account locks. One result per transaction, in order; the successful ones are
    /// committed to this bank (and are the ones a leader records in its entry).
    pub fn process_transactions(&mut self, txs: &[Transaction]) -> Results {
        self.process_transactions_with(txs, None)
    }

    /// [`Bank::process_transactions`] that skips the signatures `verified` remembers
    /// (and remembers those it checks): the same results.
    pub fn process_transactions_with(
        &mut self,
        txs: &[Transaction],
        verified: Option<&VerifiedTxs>,
    ) -> Results {
        if self.is_frozen() {
            return vec![Err(TransactionError::BankFrozen); txs.len()];
        }
        let Err(bad) = verify_signatures(txs, verified) else {
            return self.process_verified_transactions(txs);
        };
        let mut forged = vec![false; txs.len()];
        for i in bad {
            forged[i] = true;
        }
        let good: Vec<Transaction> = txs
            .iter()
            .zip(&forged)
            .filter(|(_, f)| !**f)
            .map(|(t, _)| *t)
            .collect();
        // Failed transactions change nothing, so leaving the forged ones out keeps the
        // others' results those of the whole batch in order.
        let mut good_results = self.process_verified_transactions(&good).into_iter();
        forged
            .iter()
            .map(|f| {
                if *f {
                    Err(TransactionError::InvalidSignature)
                } else {
                    good_results.next().unwrap_or(Ok(()))
                }
            })
            .collect()
    }

    /// Whether `tx` would succeed on top of this bank, without executing it: the checks
    /// execution makes, in the same order (signature, duplicate, blockhash, overflow,
    /// funds). For screening one transaction; a batch is better verified in bulk and
    /// screened with [`Bank::check_verified_transactions`].
    pub fn check_transaction(&self, tx: &Transaction) -> Result<(), TransactionError> {
        tx.verify()
            .map_err(|_| TransactionError::InvalidSignature)?;
        let ancestors = self.ancestors();
        self.screen(&ancestors, &self.check(&ancestors, tx))
    }

    /// [`Bank::check_transaction`] for each of `txs`, whose signatures the caller already
    /// verified (in batch, off the thread that owns the bank), minus the signature: the
    /// duplicate, blockhash, overflow and funds checks, in that order, with the same
    /// errors. One result per transaction, in order; nothing changes.
    ///
    /// - Each transaction is checked against this bank alone, as before the batch: two
    ///   transfers from one payer may both pass although the balance covers only one.
    ///   Execution refuses the second; screening promises no more than a single check
    ///   would (and an earlier transfer in the same block may yet fund the later one).
    /// - A signature repeated in `txs` is refused as `AlreadyProcessed` from its second
    ///   occurrence on, once an earlier one passed: whichever lands first makes the rest
    ///   duplicates. (A verified signature names one transfer, so the copies' other checks
    ///   agree: when the first fails, the rest fail the same way.)
    ///
    /// Serial on the calling thread: a few map lookups per transaction cost less than
    /// waking the thread pool, which the callers' signature checks may be keeping busy.
    pub fn check_verified_transactions(&self, txs: &[Transaction]) -> Results {
        let ancestors = self.ancestors();
        let mut passed: PrehashSet<Signature> = PrehashSet::default();
        passed.reserve(txs.len());
        txs.iter()
            .map(|tx| {
                let checked = self.check(&ancestors, tx);
                let result = self.screen(&ancestors, &checked);
                if result.is_ok() && !passed.insert(checked.sig) {
                    return Err(TransactionError::AlreadyProcessed);
                }
                result
            })
            .collect()
    }

    /// What a screened transaction still has to pass after [`Bank::check`]: its payer's
    /// balance before any other transaction covers `amount + fee`.
    fn screen(&self, ancestors: &[Arc<Bank>], checked: &Checked) -> Result<(), TransactionError> {
        let needed = checked.cost?;
        let balance = self.load(ancestors, &checked.from);
        if balance < needed {
            return Err(TransactionError::InsufficientFunds { balance, needed });
        }
        Ok(())
    }

    /// Executes transactions whose signatures were already verified (by a sigverify stage
    /// or by replay's batch check): same results as [`Bank::process_transactions_serial`].
    pub fn process_verified_transactions(&mut self, txs: &[Transaction]) -> Results {
        if self.is_frozen() {
            return vec![Err(TransactionError::BankFrozen); txs.len()];
        }
        let ancestors = self.ancestors();
        let this = &*self;
        let checked: Vec<Checked> = txs
            .par_iter()
            .with_min_len(PARALLEL_MIN)
            .map(|tx| this.check(&ancestors, tx))
            .collect();
        let (mut results, waves, maybe_duplicate) = self.schedule(txs, &checked);
        for wave in waves {
            let this = &*self;
            let run = |&i: &usize| {
                this.execute_one(&ancestors, &txs[i], &checked[i], maybe_duplicate[i], false)
            };
            let outcomes: Vec<Result<Writes, TransactionError>> = if wave.len() >= PARALLEL_MIN {
                wave.par_iter().map(run).collect()
            } else {
                wave.iter().map(run).collect()
            };
            let mut fees: u64 = 0;
            for (&i, outcome) in wave.iter().zip(outcomes) {
                match outcome {
                    Ok(writes) => {
                        if !writes.fee_inline {
                            // Sums of fees are bounded by the debited balances: no overflow.
                            fees = fees.saturating_add(txs[i].transfer.fee);
                        }
                        self.commit(&txs[i], &checked[i], writes);
                    }
                    Err(e) => results[i] = Err(e),
                }
            }
            if fees > 0 {
                let key = self.collector_key;
                let balance = self.load(&ancestors, &key);
                // The supply fits in a u64 and is conserved: a credit cannot overflow.
                self.accounts.insert(key, balance.saturating_add(fees));
            }
        }
        results
    }

    /// The reference semantics: one transaction at a time, in order, each signature
    /// checked alone. [`Bank::process_transactions`] always returns the same results and
    /// leaves the same state; this exists for tests and differential fuzzing.
    pub fn process_transactions_serial(&mut self, txs: &[Transaction]) -> Results {
        if self.is_frozen() {
            return vec![Err(TransactionError::BankFrozen); txs.len()];
        }
        let ancestors = self.ancestors();
        txs.iter()
            .map(|tx| {
                if tx.verify().is_err() {
                    return Err(TransactionError::InvalidSignature);
                }
                let checked = self.check(&ancestors, tx);
                let writes = self.execute_one(&ancestors, tx, &checked, true, true)?;
                self.commit(tx, &checked, writes);
                Ok(())
            })
            .collect()
    }

    fn check(&self, ancestors: &[Arc<Bank>], tx: &Transaction) -> Checked {
        let t = &tx.transfer;
        let sig = Prehashed::new(tx.signature);
        let cost = if self.is_processed(ancestors, &sig, &t.recent_blockhash) {
            Err(TransactionError::AlreadyProcessed)
        } else if !self.blockhash_queue.contains(&t.recent_blockhash) {
            Err(TransactionError::BlockhashNotFound)
        } else {
            t.amount
                .checked_add(t.fee)
                .ok_or(TransactionError::Overflow)
        };
        Checked {
            sig,
            from: Prehashed::new(t.from),
            to: Prehashed::new(t.to),
            cost,
        }
    }

    /// Assigns waves. Returns the results already known (failed checks), the waves in
    /// order (transaction indices, ascending), and which transactions follow an earlier
    /// one with the same signature.
    fn schedule(
        &self,
        txs: &[Transaction],
        checked: &[Checked],
    ) -> (Results, Vec<Vec<usize>>, Vec<bool>) {
        let n = txs.len();
        let mut results: Results = vec![Ok(()); n];
        let mut maybe_duplicate = vec![false; n];
        let mut wave_of: Vec<Option<usize>> = vec![None; n];
        let mut account_wave: PrehashMap<Pubkey, usize> = PrehashMap::default();
        account_wave.reserve(2 * n);
        let mut signature_wave: PrehashMap<Signature, usize> = PrehashMap::default();
        signature_wave.reserve(n);
        // Every wave from `floor` on follows the last collector barrier.
        let mut floor = 0;
        let mut wave_count = 0;
        for (i, c) in checked.iter().enumerate() {
            let after_duplicate = signature_wave.get(&c.sig).map(|w| w + 1);
            maybe_duplicate[i] = after_duplicate.is_some();
            let wave = match (&c.cost, after_duplicate) {
                (Err(e), None) => {
                    results[i] = Err(*e);
                    continue;
                }
                // Touches nothing; only whether its twin succeeded can change its result.
                (Err(_), Some(w)) => w,
                (Ok(_), after_duplicate) => {
                    let t = &txs[i].transfer;
                    let mut w = floor.max(after_duplicate.unwrap_or(0));
                    for key in [&c.from, &c.to] {
                        if let Some(x) = account_wave.get(key) {
                            w = w.max(x + 1);
                        }
                    }
                    if t.from == self.collector || t.to == self.collector {
                        w = w.max(wave_count);
                        floor = w + 1;
                    }
                    account_wave.insert(c.from, w);
                    account_wave.insert(c.to, w);
                    w
                }
            };
            signature_wave.insert(c.sig, wave);
            wave_of[i] = Some(wave);
            wave_count = wave_count.max(wave + 1);
        }
        let mut waves: Vec<Vec<usize>> = vec![Vec::new(); wave_count];
        for (i, w) in wave_of.iter().enumerate() {
            if let Some(w) = w {
                waves[*w].push(i);
            }
        }
        (results, waves, maybe_duplicate)
    }

    /// Runs one transfer against the current state without changing it. The collector's
    /// fee is credited in the writes when `fee_inline` or when the transfer touches the
    /// collector (then it runs alone); otherwise the caller credits it after the wave.
    fn execute_one(
        &self,
        ancestors: &[Arc<Bank>],
        tx: &Transaction,
        c: &Checked,
        maybe_duplicate: bool,
        fee_inline: bool,
    ) -> Result<Writes, TransactionError> {
        if maybe_duplicate && self.status.contains_key(&c.sig) {
            return Err(TransactionError::AlreadyProcessed);
        }
        let cost = c.cost?;
        let t = &tx.transfer;
        let from_balance = self.load(ancestors, &c.from);
        if from_balance < cost {
            return Err(TransactionError::InsufficientFunds {
                balance: from_balance,
                needed: cost,
            });
        }
        let mut writes = Writes::default();
        writes.set(c.from, from_balance - cost);
        let to_balance = writes
            .get(&c.to)
            .unwrap_or_else(|| self.load(ancestors, &c.to));
        let to_balance = to_balance
            .checked_add(t.amount)
            .ok_or(TransactionError::Overflow)?;
        writes.set(c.to, to_balance);
        if t.fee > 0 && (fee_inline || t.from == self.collector || t.to == self.collector) {
            let key = self.collector_key;
            let balance = writes
                .get(&key)
                .unwrap_or_else(|| self.load(ancestors, &key));
            let balance = balance
                .checked_add(t.fee)
                .ok_or(TransactionError::Overflow)?;
            writes.set(key, balance);
            writes.fee_inline = true;
        }
        Ok(writes)
    }

    fn commit(&mut self, tx: &Transaction, c: &Checked, writes: Writes) {
        for (key, balance) in writes.slots.into_iter().flatten() {
            self.accounts.insert(key, balance);
        }
        self.status.insert(c.sig, tx.transfer.recent_blockhash);
        self.signature_count += 1;
        self.collected_fees = self.collected_fees.saturating_add(tx.transfer.fee);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bb_core::{Genesis, GenesisAccount, GenesisValidator, Keypair};

    fn key(i: u8) -> Keypair {
        Keypair::from_seed(&[i; 32])
    }

    /// A child of genesis led by key 0, keys 1..=8 funded.
    fn bank() -> Bank {
        let genesis = Genesis {
            version: 1,
            network: "execute".into(),
            creation_time_ms: 0,
            slot_ms: 400,
            ticks_per_slot: 1,
            hashes_per_tick: 2,
            slots_per_epoch: 4,
            leader_slots_per_rotation: 4,
            slash_penalty_bps: bb_core::DEFAULT_SLASH_PENALTY_BPS,
            validators: vec![GenesisValidator {
                identity: key(0).pubkey(),
                stake: 1,
            }],
            accounts: (1..=8)
                .map(|i| GenesisAccount {
                    address: key(i).pubkey(),
                    balance: 100,
                })
                .collect(),
        };
        let root = Bank::new_genesis(&genesis).expect("genesis");
        Bank::new_from_parent(&root, 1, key(0).pubkey()).expect("child")
    }

    fn waves(bank: &Bank, txs: &[Transaction]) -> Vec<Vec<usize>> {
        let ancestors = bank.ancestors();
        let checked: Vec<Checked> = txs.iter().map(|t| bank.check(&ancestors, t)).collect();
        bank.schedule(txs, &checked).1
    }

    fn pay(bank: &Bank, from: u8, to: u8) -> Transaction {
        Transaction::transfer(&key(from), key(to).pubkey(), 1, 1, bank.last_blockhash())
    }

    #[test]
    fn disjoint_transfers_share_one_wave() {
        let b = bank();
        let txs = [pay(&b, 1, 2), pay(&b, 3, 4), pay(&b, 5, 6), pay(&b, 7, 8)];
        assert_eq!(waves(&b, &txs), vec![vec![0, 1, 2, 3]]);
    }

    #[test]
    fn transfers_sharing_an_account_run_in_order() {
        let b = bank();
        let txs = [pay(&b, 1, 2), pay(&b, 2, 3), pay(&b, 4, 5), pay(&b, 3, 1)];
        assert_eq!(waves(&b, &txs), vec![vec![0, 2], vec![1], vec![3]]);
    }

    #[test]
    fn fees_alone_do_not_serialize_but_moving_the_collector_is_a_barrier() {
        let b = bank();
        let txs = [
            pay(&b, 1, 2),
            pay(&b, 3, 4),
            pay(&b, 5, 0), // pays the collector
            pay(&b, 6, 7),
            pay(&b, 8, 1),
        ];
        assert_eq!(
            waves(&b, &txs),
            vec![vec![0, 1], vec![2], vec![3, 4]],
            "the collector's transfer runs alone, after and before everything else"
        );
    }

    #[test]
    fn a_duplicate_waits_for_its_twin_and_failed_checks_take_no_wave() {
        let b = bank();
        let tx = pay(&b, 1, 2);
        let stale = Transaction::transfer(&key(3), key(4).pubkey(), 1, 1, bb_core::Hash::ZERO);
        let txs = [tx, stale, pay(&b, 3, 4), tx];
        assert_eq!(waves(&b, &txs), vec![vec![0, 2], vec![3]]);
    }

    #[test]
    fn remembered_signatures_are_skipped_with_the_same_results() {
        let mut cached = bank();
        let mut plain = bank();
        let mut forged = pay(&cached, 3, 4);
        forged.transfer.amount = 50;
        let txs = [pay(&cached, 1, 2), forged, pay(&cached, 5, 6)];
        let verified = VerifiedTxs::new(16);
        // Remembered before (as where the transactions entered the node), then executed.
        assert_eq!(verified.verify(&txs), Err(vec![1]));
        let results = cached.process_transactions_with(&txs, Some(&verified));
        assert_eq!(
            verified.counts(),
            (2, 4),
            "the two that passed were skipped, only the forged one checked again"
        );
        assert_eq!(results, plain.process_transactions(&txs));
        assert_eq!(results[1], Err(TransactionError::InvalidSignature));
        assert_eq!(cached.state_hash(), plain.state_hash());
    }

    #[test]
    fn a_transaction_executed_on_a_fork_is_already_processed_on_its_descendants() {
        let mut b = bank();
        let (landed, other) = (pay(&b, 1, 2), pay(&b, 3, 4));
        assert_eq!(b.process_transactions(&[landed]), vec![Ok(())]);
        assert!(b.already_processed()(&landed));
        assert!(!b.already_processed()(&other));
        b.freeze_unchecked(bb_core::Hash::ZERO, bb_core::Hash::ZERO);
        let b = Arc::new(b);
        let child = Bank::new_from_parent(&b, 2, key(0).pubkey()).expect("child");
        let seen = child.already_processed();
        assert!(seen(&landed));
        assert!(!seen(&other));
    }

    #[test]
    fn the_verified_check_leaves_signatures_to_the_caller_the_full_one_does_not() {
        let b = bank();
        let mut forged = pay(&b, 1, 2);
        forged.transfer.amount = 50;
        assert_eq!(
            b.check_transaction(&forged),
            Err(TransactionError::InvalidSignature)
        );
        assert_eq!(b.check_verified_transactions(&[forged]), vec![Ok(())]);
    }

    #[test]
    fn the_verified_check_gives_each_reason_in_order_as_the_full_one_does() {
        let mut b = bank();
        let recent = b.last_blockhash();
        let landed = pay(&b, 1, 2);
        assert_eq!(b.process_transactions(&[landed]), vec![Ok(())]);
        let stale = Transaction::transfer(&key(3), key(4).pubkey(), 1, 1, bb_core::Hash::ZERO);
        let overflow = Transaction::transfer(&key(3), key(4).pubkey(), u64::MAX, 1, recent);
        let poor = Transaction::transfer(&key(5), key(6).pubkey(), 100, 1, recent);
        let ok = pay(&b, 7, 8);
        let txs = [ok, landed, stale, overflow, poor, pay(&b, 3, 4)];
        let expected = vec![
            Ok(()),
            Err(TransactionError::AlreadyProcessed),
            Err(TransactionError::BlockhashNotFound),
            Err(TransactionError::Overflow),
            Err(TransactionError::InsufficientFunds {
                balance: 100,
                needed: 101,
            }),
            Ok(()),
        ];
        assert_eq!(b.check_verified_transactions(&txs), expected);
        let one_by_one: Results = txs.iter().map(|t| b.check_transaction(t)).collect();
        assert_eq!(one_by_one, expected);
        assert_eq!(b.check_verified_transactions(&[]), vec![]);
    }

    #[test]
    fn the_verified_check_refuses_later_copies_of_a_signature_that_passed() {
        let b = bank();
        let tx = pay(&b, 1, 2);
        let stale = Transaction::transfer(&key(3), key(4).pubkey(), 1, 1, bb_core::Hash::ZERO);
        let txs = [tx, stale, pay(&b, 5, 6), tx, stale, tx];
        assert_eq!(
            b.check_verified_transactions(&txs),
            vec![
                Ok(()),
                Err(TransactionError::BlockhashNotFound),
                Ok(()),
                Err(TransactionError::AlreadyProcessed),
                Err(TransactionError::BlockhashNotFound),
                Err(TransactionError::AlreadyProcessed),
            ]
        );
    }

    #[test]
    fn the_verified_check_weighs_each_transfer_against_the_bank_alone() {
        let b = bank();
        let recent = b.last_blockhash();
        // 2 x 61 from a balance of 100: each passes on its own; execution takes one.
        let first = Transaction::transfer(&key(1), key(2).pubkey(), 60, 1, recent);
        let second = Transaction::transfer(&key(1), key(3).pubkey(), 60, 1, recent);
        assert_eq!(
            b.check_verified_transactions(&[first, second]),
            vec![Ok(()), Ok(())]
        );
        let mut executed = bank();
        assert_eq!(
            executed.process_transactions(&[first, second]),
            vec![
                Ok(()),
                Err(TransactionError::InsufficientFunds {
                    balance: 39,
                    needed: 61
                })
            ]
        );
    }

    #[test]
    fn banks_are_shared_across_threads() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<Bank>();
        send_sync::<Arc<Bank>>();
    }
}
