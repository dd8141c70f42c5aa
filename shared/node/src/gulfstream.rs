//! Gulf Stream's answers: what the leaders took of a forwarded batch, and why the rest
//! was not taken, so `SubmitTransactions` can tell its caller per transaction.
//!
//! A leader takes a prefix of each batch (the first `n`, as much as its pending queue has
//! room for); a batch goes to two leaders, so a transaction is in if either took it. What
//! no leader took is refused with a reason a client can act on: the leaders reached were
//! busy, or none could be reached. Nothing here may report a transaction accepted that no
//! leader holds.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use bb_core::{Pubkey, Slot, Transaction};
use tokio::sync::{mpsc, oneshot};

use crate::engine::EngineMsg;
use crate::metrics;
use crate::pending::LEADER_BUSY;
use crate::state::Shared;

/// How long a leader (or our own engine) may take to answer a forward before the batch
/// counts as not delivered to it: a slow leader must not hold a client's call.
pub const FORWARD_TIMEOUT: Duration = Duration::from_secs(2);

/// What one leader did with a forwarded batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaderAnswer {
    /// It took the first `n` transactions.
    Took(usize),
    /// It could not be asked, failed, or did not answer in time: why.
    Unreached(String),
}

/// Why transactions of a batch were not taken by any leader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Every leader that answered had no room: back-pressure, the client should slow down.
    LeaderBusy,
    /// No leader answered: why, per leader.
    NoLeader(String),
}

impl Refusal {
    /// The reason as `SubmitTransactions` reports it; the text before the first colon
    /// names the class.
    pub fn reason(&self) -> String {
        match self {
            Refusal::LeaderBusy => LEADER_BUSY.to_string(),
            Refusal::NoLeader(why) => format!("no leader reachable: {why}; retry later"),
        }
    }

    /// The `reason` label of `bb_transactions_rejected_total`.
    pub fn label(&self) -> &'static str {
        match self {
            Refusal::LeaderBusy => metrics::REJECTED_LEADER_BUSY,
            Refusal::NoLeader(_) => metrics::REJECTED_NO_LEADER,
        }
    }
}

/// What became of a batch forwarded to the leaders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forwarded {
    /// How many transactions from the start of the batch some leader took.
    pub taken: usize,
    /// Why the rest were not taken; `None` when all were.
    pub refusal: Option<Refusal>,
    /// The leaders that took at least one.
    pub leaders: Vec<Pubkey>,
}

impl Forwarded {
    /// A batch that was not sent to any leader, for `refusal`.
    pub fn refused(refusal: Refusal) -> Forwarded {
        Forwarded {
            taken: 0,
            refusal: Some(refusal),
            leaders: Vec::new(),
        }
    }

    /// Combines the leaders' answers to one batch of `n` transactions. Each leader took a
    /// prefix, so the batch's taken part is the longest of them. Busy wins over
    /// unreachable as the reason once any leader answered: it is the one the client can
    /// act on (slow down), and the leader that answered is there.
    pub fn from_answers(n: usize, answers: &[(Pubkey, LeaderAnswer)]) -> Forwarded {
        let mut taken = 0;
        let mut leaders = Vec::new();
        let mut answered = false;
        let mut failures = Vec::new();
        for (leader, answer) in answers {
            match answer {
                LeaderAnswer::Took(k) => {
                    answered = true;
                    let k = (*k).min(n);
                    taken = taken.max(k);
                    if k > 0 {
                        leaders.push(*leader);
                    }
                }
                LeaderAnswer::Unreached(why) => failures.push(why.as_str()),
            }
        }
        let refusal = if taken >= n {
            None
        } else if answered {
            Some(Refusal::LeaderBusy)
        } else if failures.is_empty() {
            Some(Refusal::NoLeader(
                "no leader is known for the coming slots".to_string(),
            ))
        } else {
            Some(Refusal::NoLeader(failures.join("; ")))
        };
        Forwarded {
            taken,
            refusal,
            leaders,
        }
    }
}

/// Leaders that answered a forward "full" in a slot. A leader's queue drains only at its
/// slot ends, so it stays full for the rest of that slot; until then this node refuses at
/// once, before screening, rather than screening and forwarding work to be turned away.
#[derive(Debug, Default)]
pub struct BusyLeaders {
    full_in: Mutex<HashMap<Pubkey, Slot>>,
}

impl BusyLeaders {
    /// Notes that `leader` refused part of a forward in `slot`.
    pub fn mark(&self, leader: Pubkey, slot: Slot) {
        let mut map = self.full_in.lock().unwrap_or_else(PoisonError::into_inner);
        // Only the current slot matters: forget the rest.
        map.retain(|_, s| *s >= slot);
        map.insert(leader, slot);
    }

    /// Whether `leader` answered full earlier in `slot`.
    pub fn is_busy(&self, leader: &Pubkey, slot: Slot) -> bool {
        self.full_in
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(leader)
            .is_some_and(|s| *s == slot)
    }
}

/// Offers transactions to this node's pending queue and returns how many it took (the
/// first `n`). A queue that is full is refused here, without a trip through the engine's
/// inbox; the refused are counted either way.
pub async fn offer_to_engine(
    shared: &Shared,
    engine: &mpsc::Sender<EngineMsg>,
    txs: Vec<Transaction>,
) -> usize {
    if txs.is_empty() {
        return 0;
    }
    if shared.pending.is_full() {
        shared
            .metrics
            .dropped(metrics::DROPPED_QUEUE_FULL, txs.len() as u64);
        return 0;
    }
    let (reply, taken) = oneshot::channel();
    if engine
        .send(EngineMsg::Transactions { txs, reply })
        .await
        .is_err()
    {
        // The engine stopped: the node is shutting down and takes nothing.
        return 0;
    }
    taken.await.unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(i: u8) -> Pubkey {
        Pubkey([i; 32])
    }

    #[test]
    fn a_batch_is_in_as_far_as_the_most_taking_leader_took_it() {
        let f = Forwarded::from_answers(
            10,
            &[
                (key(1), LeaderAnswer::Took(4)),
                (key(2), LeaderAnswer::Took(7)),
            ],
        );
        assert_eq!(f.taken, 7);
        assert_eq!(f.refusal, Some(Refusal::LeaderBusy));
        assert_eq!(f.leaders, vec![key(1), key(2)]);
        assert!(
            f.refusal
                .is_some_and(|r| r.reason().starts_with("leader busy:"))
        );

        let all = Forwarded::from_answers(
            3,
            &[
                (key(1), LeaderAnswer::Took(3)),
                (key(2), LeaderAnswer::Took(0)),
            ],
        );
        assert_eq!(
            (all.taken, all.refusal, all.leaders),
            (3, None, vec![key(1)])
        );
    }

    #[test]
    fn full_leaders_make_the_batch_busy_even_when_another_is_unreachable() {
        let f = Forwarded::from_answers(
            5,
            &[
                (key(1), LeaderAnswer::Took(0)),
                (key(2), LeaderAnswer::Unreached("timed out".into())),
            ],
        );
        assert_eq!(f.taken, 0);
        assert_eq!(f.refusal, Some(Refusal::LeaderBusy));
        assert!(f.leaders.is_empty());
    }

    #[test]
    fn no_leader_reached_says_why_for_each() {
        let f = Forwarded::from_answers(
            5,
            &[
                (key(1), LeaderAnswer::Unreached("a: timed out".into())),
                (key(2), LeaderAnswer::Unreached("b: not connected".into())),
            ],
        );
        assert_eq!(f.taken, 0);
        let reason = f.refusal.as_ref().map(Refusal::reason).unwrap_or_default();
        assert_eq!(
            reason,
            "no leader reachable: a: timed out; b: not connected; retry later"
        );
        assert_eq!(
            f.refusal.map(|r| r.label()),
            Some(metrics::REJECTED_NO_LEADER)
        );
        let none = Forwarded::from_answers(5, &[]);
        assert!(matches!(none.refusal, Some(Refusal::NoLeader(_))));
    }

    fn shared(capacity: usize) -> Shared {
        let genesis = bb_core::Genesis {
            version: 1,
            network: "gulfstream-test".into(),
            creation_time_ms: 0,
            slot_ms: 400,
            ticks_per_slot: 4,
            hashes_per_tick: 8,
            slots_per_epoch: 32,
            leader_slots_per_rotation: 4,
            slash_penalty_bps: bb_core::DEFAULT_SLASH_PENALTY_BPS,
            validators: vec![],
            accounts: vec![],
        };
        Shared::new(key(1), std::sync::Arc::new(genesis), capacity)
    }

    fn txs(n: u64) -> Vec<Transaction> {
        let k = bb_core::Keypair::from_seed(&[4; 32]);
        (0..n)
            .map(|a| Transaction::transfer(&k, key(2), a, 1, bb_core::Hash([3; 32])))
            .collect()
    }

    #[tokio::test]
    async fn a_full_queue_is_refused_without_asking_the_engine() {
        let shared = shared(4);
        shared.pending.set(4);
        let (engine, mut inbox) = mpsc::channel(4);
        assert_eq!(offer_to_engine(&shared, &engine, txs(3)).await, 0);
        assert!(inbox.try_recv().is_err(), "the engine was not asked");
        let dropped = shared
            .metrics
            .transactions_dropped
            .get_or_create(&metrics::ReasonLabel {
                reason: metrics::DROPPED_QUEUE_FULL.into(),
            })
            .get();
        assert_eq!(dropped, 3);
    }

    #[tokio::test]
    async fn the_engine_answers_how_many_it_took() {
        let shared = shared(4);
        shared.pending.set(3);
        let (engine, mut inbox) = mpsc::channel(4);
        let answer = tokio::spawn(async move {
            if let Some(EngineMsg::Transactions { txs, reply }) = inbox.recv().await {
                let _ = reply.send(txs.len().min(1));
            }
        });
        assert_eq!(offer_to_engine(&shared, &engine, txs(3)).await, 1);
        answer.await.expect("the stand-in engine ran");
        // An engine that is gone takes nothing.
        let (gone, _) = mpsc::channel(1);
        assert_eq!(offer_to_engine(&shared, &gone, txs(2)).await, 0);
    }

    #[test]
    fn a_busy_leader_is_remembered_for_the_rest_of_its_slot_only() {
        let busy = BusyLeaders::default();
        assert!(!busy.is_busy(&key(1), 7));
        busy.mark(key(1), 7);
        assert!(busy.is_busy(&key(1), 7));
        assert!(!busy.is_busy(&key(2), 7));
        assert!(
            !busy.is_busy(&key(1), 8),
            "its queue drained at the slot end"
        );
        busy.mark(key(2), 8);
        assert!(!busy.is_busy(&key(1), 7), "older slots are forgotten");
    }

    #[test]
    fn a_leader_claiming_more_than_it_was_sent_counts_as_taking_the_batch() {
        let f = Forwarded::from_answers(2, &[(key(1), LeaderAnswer::Took(9))]);
        assert_eq!((f.taken, f.refusal), (2, None));
    }
}
