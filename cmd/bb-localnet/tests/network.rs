//! The running network, as a newcomer gets it from `bb-localnet up`: real validator
//! processes, real sockets, real ledgers. Each test starts its own localnet in a
//! temporary directory and always takes it down (also when an assertion fails).

mod common;

use std::time::Duration;

use bb_rpc::NodeClient;
use common::*;

#[test]
fn three_nodes_finalize_the_same_chain_through_two_epochs() {
    let net = Localnet::up(&["--nodes", "3", "--epoch-slots", "32"]);
    let urls = net.rpc_urls();
    runtime().block_on(async {
        // Two epoch boundaries (slots 32 and 64) and 20+ finalized slots.
        let ok = wait_for(Duration::from_secs(120), || async {
            let mut all = true;
            for u in &urls {
                all &= finalized(u).await >= 70;
            }
            all
        })
        .await;
        assert!(
            ok,
            "the localnet did not finalize slot 70 in time\n{}",
            net.logs()
        );

        let clients: Vec<NodeClient> = futures_join(&urls).await;
        // Identical bank hashes at the same finalized slots on every node.
        let mut checked = 0;
        let mut leaders = Vec::new();
        for slot in 1..=60 {
            let mut hashes = Vec::new();
            for c in &clients {
                match c.block(slot).await {
                    Ok(b) => {
                        let s = b.block.expect("summary");
                        hashes.push((s.block_id.clone(), s.bank_hash.clone()));
                        if leaders.last() != Some(&s.leader) {
                            leaders.push(s.leader.clone());
                        }
                    }
                    Err(e) if e.is_not_found() => hashes.push((String::new(), None)),
                    Err(e) => panic!("{e}"),
                }
            }
            if hashes[0].0.is_empty() {
                continue;
            }
            assert!(
                hashes.iter().all(|h| h == &hashes[0]),
                "slot {slot}: nodes disagree: {hashes:?}"
            );
            checked += 1;
        }
        assert!(
            checked >= 20,
            "only {checked} blocks checked\n{}",
            net.logs()
        );
        // Leaders rotate: every validator led, and the leader changed many times. (How
        // often depends on the stake-weighted draw of this run's genesis: consecutive
        // rotations may fall to the same validator.)
        let distinct: std::collections::BTreeSet<&String> = leaders.iter().collect();
        assert_eq!(distinct.len(), 3, "leaders: {leaders:?}");
        assert!(leaders.len() >= 6, "only {} leader changes", leaders.len());

        // Every validator's vote is on record for a finalized slot.
        let votes = clients[0].votes(40).await.expect("votes for slot 40");
        let voters: std::collections::BTreeSet<String> =
            votes.votes.iter().map(|v| v.voter.clone()).collect();
        assert_eq!(voters.len(), 3, "voters at slot 40: {voters:?}");

        // Every node computes the same schedule for each epoch.
        for epoch in 0..=3 {
            let mut schedules = Vec::new();
            for c in &clients {
                let s = c.schedule(Some(epoch)).await.expect("schedule");
                schedules.push(
                    s.runs
                        .iter()
                        .map(|r| (r.leader.clone(), r.start_slot, r.slot_count))
                        .collect::<Vec<_>>(),
                );
            }
            assert!(
                schedules.iter().all(|s| s == &schedules[0]),
                "epoch {epoch} schedules differ"
            );
        }

        // Every node lists the other two, connected, with a round-trip time.
        for c in &clients {
            let peers = c.peers().await.expect("peers").peers;
            assert_eq!(peers.len(), 2, "{peers:?}");
            assert!(
                peers.iter().all(|p| p.connected && p.rtt_ms.is_some()),
                "{peers:?}"
            );
        }
    });
}

async fn futures_join(urls: &[String]) -> Vec<NodeClient> {
    let mut out = Vec::new();
    for u in urls {
        out.push(client(u).await);
    }
    out
}

#[test]
fn a_killed_leader_is_skipped_and_rejoins_without_double_voting() {
    let net = Localnet::up(&["--nodes", "3"]);
    let urls = net.rpc_urls();
    runtime().block_on(async {
        let ok = wait_for(Duration::from_secs(60), || async {
            finalized(&urls[1]).await >= 5
        })
        .await;
        assert!(ok, "no finalization before the kill\n{}", net.logs());
        // Kill the node that leads next.
        let status = client(&urls[0]).await.status().await.expect("status");
        let leader = status.leader.clone();
        let victim = net.manifest()["nodes"]
            .as_array()
            .expect("nodes")
            .iter()
            .position(|n| n["identity"].as_str() == Some(leader.as_str()))
            .unwrap_or(1);
        let out = net.run(&["kill", "--node", &victim.to_string(), "--signal", "kill"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let others: Vec<&String> = urls
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != victim)
            .map(|(_, u)| u)
            .collect();
        let before = finalized(others[0]).await;
        let ok = wait_for(Duration::from_secs(60), || async {
            finalized(others[0]).await >= before + 10
        })
        .await;
        assert!(
            ok,
            "the others stopped finalizing without node {victim}\n{}",
            net.logs()
        );

        let out = net.run(&["start", "--node", &victim.to_string()]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        // It catches up and votes again.
        let target = finalized(others[0]).await;
        let ok = wait_for(Duration::from_secs(90), || async {
            finalized(&urls[victim]).await >= target
        })
        .await;
        assert!(
            ok,
            "node {victim} did not catch up to {target}\n{}",
            net.logs()
        );
        let votes_before = metric(&net.metrics_url(victim), "bb_votes_cast_total")
            .await
            .unwrap_or(0.0);
        let ok = wait_for(Duration::from_secs(30), || async {
            metric(&net.metrics_url(victim), "bb_votes_cast_total")
                .await
                .unwrap_or(0.0)
                > votes_before + 3.0
        })
        .await;
        assert!(
            ok,
            "node {victim} does not vote after restart\n{}",
            net.logs()
        );
        // No honest node ever saw two different votes from anyone for one slot.
        for (i, _) in urls.iter().enumerate() {
            let dv = metric(&net.metrics_url(i), "bb_double_votes_seen_total")
                .await
                .unwrap_or(0.0);
            assert_eq!(dv, 0.0, "node {i} saw a double vote");
        }
    });
}

#[test]
fn blocks_complete_with_a_third_of_shreds_dropped_everywhere() {
    let net = Localnet::up(&[
        "--nodes",
        "3",
        "--fault",
        "0=drop-shreds:0.33",
        "--fault",
        "1=drop-shreds:0.33",
        "--fault",
        "2=drop-shreds:0.33",
    ]);
    let urls = net.rpc_urls();
    runtime().block_on(async {
        let ok = wait_for(Duration::from_secs(90), || async {
            let mut all = true;
            for u in &urls {
                all &= finalized(u).await >= 10;
            }
            all
        })
        .await;
        assert!(ok, "no finalization with 33% shred loss\n{}", net.logs());
        // Blocks arrived by Turbine, rebuilt from partial sets, not only by repair.
        let recovered = metric(&net.metrics_url(0), "bb_shreds_recovered_total")
            .await
            .unwrap_or(0.0);
        assert!(recovered > 0.0);
    });
    let _ = net.dir();
}

#[test]
fn a_node_knows_when_it_cannot_reach_two_thirds_of_the_stake() {
    let net = Localnet::up(&["--nodes", "3"]);
    let m0 = net.metrics_url(0);
    let url0 = net.rpc_urls()[0].clone();
    let rt = runtime();
    let below = |want: f64| {
        let m0 = m0.clone();
        async move { metric(&m0, "bb_below_two_thirds").await == Some(want) }
    };
    assert!(rt.block_on(wait_for(Duration::from_secs(20), || below(0.0))));
    for node in ["1", "2"] {
        let out = net.run(&["kill", "--node", node]);
        assert!(out.status.success());
    }
    assert!(
        rt.block_on(wait_for(Duration::from_secs(30), || below(1.0))),
        "node 0 never noticed it is alone\n{}",
        net.logs()
    );
    let share = rt
        .block_on(async { client(&url0).await.status().await.unwrap() })
        .reachable_stake_share;
    assert!((share - 1.0 / 3.0).abs() < 1e-6, "share {share}");
    let log = std::fs::read_to_string(net.dir().join("node-0").join("validator.log")).unwrap();
    assert_eq!(
        log.matches("reachable stake fell below 2/3").count(),
        1,
        "one line"
    );
    // A peer returns: 2/3 again, said once.
    let out = net.run(&["start", "--node", "1"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        rt.block_on(wait_for(Duration::from_secs(30), || below(0.0))),
        "node 0 never noticed node 1 is back\n{}",
        net.logs()
    );
    let log = std::fs::read_to_string(net.dir().join("node-0").join("validator.log")).unwrap();
    assert!(
        log.contains("reachable stake is back at 2/3 or more"),
        "{log}"
    );
}
