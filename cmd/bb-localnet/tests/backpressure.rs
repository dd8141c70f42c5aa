//! Gulf Stream back-pressure on a real 3-node localnet whose leaders hold at most 200
//! pending transactions: a burst of 3,000 transfers into one node is answered per
//! transaction (some taken, the rest "leader busy"), the refusals are counted in the
//! metrics, everything reported accepted lands, and the network keeps finalizing.

mod common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use bb_core::{Canonical, Hash, Keypair, Transaction};
use common::*;

const MAX_PENDING: u64 = 200;
const BURST: u64 = 3_000;

#[test]
fn a_burst_past_the_leaders_queues_gets_busy_answers_and_the_network_keeps_finalizing() {
    let net = Localnet::up(&[
        "--nodes",
        "3",
        "--max-pending-txs",
        &MAX_PENDING.to_string(),
    ]);
    let urls = net.rpc_urls();
    let manifest = net.manifest();
    let faucet_file = PathBuf::from(
        manifest["faucet"][0]["key_file"]
            .as_str()
            .expect("faucet key file"),
    );
    let faucet = bb_cli::keyfile::read_keypair(&faucet_file).expect("faucet key");
    let receiver = Keypair::generate().pubkey();

    runtime().block_on(async {
        let node0 = client(&urls[0]).await;
        // The blockhash of a confirmed block: every node has it, and its fork stays.
        let status = node0.status().await.expect("status");
        let confirmed = status.confirmed.map_or(0, |c| c.slot);
        let block = node0
            .block_summary(confirmed)
            .await
            .expect("the confirmed block");
        let blockhash: Hash = block
            .block
            .expect("a block summary")
            .blockhash
            .parse()
            .expect("blockhash");
        let finalized_before = finalized_all(&urls).await;
        // Distinct amounts: no two transfers are alike.
        let burst: Vec<Transaction> = (1..=BURST)
            .map(|amount| Transaction::transfer(&faucet, receiver, amount, 1, blockhash))
            .collect();
        let started = Instant::now();
        let answer = node0
            .submit(burst.iter().map(Transaction::to_bytes).collect())
            .await
            .expect("SubmitTransactions answers");
        let took = started.elapsed();
        assert_eq!(answer.results.len(), burst.len());

        let mut accepted_sum = 0u64;
        let (mut accepted, mut busy) = (0u64, 0u64);
        for (tx, r) in burst.iter().zip(&answer.results) {
            if r.accepted {
                accepted += 1;
                accepted_sum += tx.transfer.amount;
            } else if r.reason.starts_with("leader busy:") {
                busy += 1;
            } else {
                panic!("unexpected refusal: {}", r.reason);
            }
        }
        eprintln!(
            "burst of {BURST}: {accepted} accepted, {busy} leader busy, answered in {took:?}"
        );
        assert!(accepted >= 1, "a leader with room took nothing");
        // A leader takes at most its queue's room; the rest of the call is refused
        // without asking it again.
        assert!(
            accepted <= MAX_PENDING,
            "{accepted} accepted past a queue of {MAX_PENDING}"
        );
        assert_eq!(accepted + busy, BURST);
        assert!(took < Duration::from_secs(10), "the call took {took:?}");

        // The refusals are visible to the operator: the RPC node's rejections and the
        // leaders' queue-full drops.
        let rejected_busy = metric(
            &net.metrics_url(0),
            "bb_transactions_rejected_total{reason=\"leader_busy\"}",
        )
        .await;
        assert_eq!(rejected_busy, Some(busy as f64));
        let capacity = metric(&net.metrics_url(0), "bb_pending_transactions_capacity").await;
        assert_eq!(capacity, Some(MAX_PENDING as f64));
        let mut queue_full = 0.0;
        for i in 0..urls.len() {
            queue_full += metric(
                &net.metrics_url(i),
                "bb_transactions_dropped_total{reason=\"queue_full\"}",
            )
            .await
            .unwrap_or(0.0);
        }
        assert!(queue_full >= 1.0, "no leader counted a refusal");

        // Everything reported accepted lands and is finalized; the network goes on.
        let landed = wait_for(Duration::from_secs(40), || async {
            node0
                .balance(&receiver.to_address())
                .await
                .is_ok_and(|b| b.balance == accepted_sum)
        })
        .await;
        let balance = node0
            .balance(&receiver.to_address())
            .await
            .map(|b| b.balance)
            .unwrap_or(0);
        assert!(
            landed,
            "the receiver holds {balance} at finalized, the accepted transfers sum to {accepted_sum}\n{}",
            net.logs()
        );
        let target = finalized_before.iter().max().copied().unwrap_or(0) + 8;
        assert!(
            wait_all_finalized(&urls, target, Duration::from_secs(20)).await,
            "finalization stalled after the burst: {:?} (wanted {target})\n{}",
            finalized_all(&urls).await,
            net.logs()
        );
    });
}
