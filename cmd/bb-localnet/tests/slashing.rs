//! Slashing on a real localnet: one of four validators signs two votes for every slot
//! (`--fault 3=double-vote`). Every honest node must hold the evidence, see it recorded on
//! the rooted chain, and apply the same stake cut at the same epoch boundary, while
//! finalization goes on.

mod common;

use std::time::Duration;

use bb_core::{Canonical, Evidence};
use bb_rpc::pb::SlashingPenalty;
use common::*;

#[test]
fn a_double_voter_is_slashed_the_same_on_every_honest_node_and_finality_goes_on() {
    let net = Localnet::up(&[
        "--nodes",
        "4",
        "--epoch-slots",
        "16",
        "--slash-penalty-bps",
        "2500",
        "--fault",
        "3=double-vote",
    ]);
    let manifest = net.manifest();
    let offender = manifest["nodes"][3]["identity"]
        .as_str()
        .expect("identity")
        .to_string();
    let stake = manifest["nodes"][3]["stake"].as_u64().expect("stake");
    let honest: Vec<String> = net.rpc_urls().into_iter().take(3).collect();

    runtime().block_on(async {
        // The first penalty each honest node's rooted chain applied to the offender.
        let mut first: Vec<Option<SlashingPenalty>> = vec![None; honest.len()];
        let deadline = std::time::Instant::now() + Duration::from_secs(150);
        while first.iter().any(Option::is_none) && std::time::Instant::now() < deadline {
            for (i, url) in honest.iter().enumerate() {
                if first[i].is_some() {
                    continue;
                }
                let Ok(answer) = client(url).await.slashing(1000).await else {
                    continue;
                };
                first[i] = answer
                    .penalties
                    .into_iter()
                    .filter(|p| p.offender == offender)
                    .min_by_key(|p| p.epoch);
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        let ok = first.iter().all(Option::is_some);
        assert!(
            ok,
            "not every honest node applied a penalty: {first:?}\n{}",
            net.logs()
        );
        let first: Vec<SlashingPenalty> = first.into_iter().flatten().collect();
        assert!(
            first.iter().all(|p| *p == first[0]),
            "honest nodes disagree on the penalty: {first:?}"
        );
        assert_eq!(first[0].old_stake, stake);
        assert_eq!(first[0].new_stake, stake - stake / 4, "a 25 % cut");

        // Every honest node holds evidence that proves the offense on its own, and the
        // rooted chain recorded it.
        for url in &honest {
            let answer = client(url).await.slashing(1000).await.expect("slashing");
            let mine: Vec<_> = answer
                .evidence
                .iter()
                .filter(|e| e.offender == offender)
                .collect();
            assert!(!mine.is_empty(), "{url} holds no evidence");
            for e in &mine {
                let evidence = Evidence::from_bytes(&e.evidence).expect("decodes");
                let offense = evidence.verify().expect("proves the offense");
                assert_eq!(offense.offender.to_address(), offender);
                assert_eq!(offense.slot, e.slot);
            }
            assert!(
                mine.iter().any(|e| e.recorded_in_slot.is_some()),
                "{url}: no evidence recorded on the rooted chain"
            );
            // Nothing against an honest validator.
            assert!(answer.evidence.iter().all(|e| e.offender == offender));
        }

        // Finalization goes on past the penalty, on every honest node.
        let target = finalized_all(&honest).await.into_iter().max().unwrap_or(0) + 20;
        let ok = wait_all_finalized(&honest, target, Duration::from_secs(60)).await;
        assert!(ok, "finalization stalled below {target}\n{}", net.logs());
    });
}

#[test]
fn an_equivocating_leader_is_slashed_and_no_conflicting_block_is_finalized() {
    let net = Localnet::up(&[
        "--nodes",
        "4",
        "--epoch-slots",
        "16",
        "--fault",
        "3=equivocate",
    ]);
    let manifest = net.manifest();
    let offender = manifest["nodes"][3]["identity"]
        .as_str()
        .expect("identity")
        .to_string();
    let honest: Vec<String> = net.rpc_urls().into_iter().take(3).collect();

    runtime().block_on(async {
        // Each honest node holds duplicate-block evidence that checks out on its own, and
        // its chain cut the leader's stake.
        let deadline = std::time::Instant::now() + Duration::from_secs(150);
        let mut done = vec![false; honest.len()];
        while done.iter().any(|d| !d) && std::time::Instant::now() < deadline {
            for (i, url) in honest.iter().enumerate() {
                let Ok(answer) = client(url).await.slashing(1000).await else {
                    continue;
                };
                let proven = answer.evidence.iter().any(|e| {
                    e.offender == offender
                        && e.kind == "duplicate-block"
                        && Evidence::from_bytes(&e.evidence)
                            .ok()
                            .and_then(|ev| bb_runtime::verify_evidence(&ev).ok())
                            .is_some()
                });
                let cut = answer.penalties.iter().any(|p| p.offender == offender);
                done[i] = proven && cut;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        assert!(
            done.iter().all(|d| *d),
            "not every honest node proved and punished the equivocation: {done:?}\n{}",
            net.logs()
        );

        // Finality goes on, and every honest node finalized the same chain (the
        // equivocator's own view is its business).
        let target = finalized_all(&honest).await.into_iter().max().unwrap_or(0) + 10;
        let ok = wait_all_finalized(&honest, target, Duration::from_secs(60)).await;
        assert!(ok, "finalization stalled below {target}\n{}", net.logs());
        assert_one_finalized_chain(&honest, 10).await;
    });
}
