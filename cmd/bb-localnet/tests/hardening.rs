//! Peers that attack the network: one floods signed, useless gossip at ten times the rate
//! limit, another sends junk (random gossip, shreds and repair requests). The honest
//! validators hold most of the stake; they must ban both, say why, keep finalizing, and
//! not grow in memory.

mod common;

use std::time::{Duration, Instant};

use bb_rpc::pb::Peer;
use common::*;

/// Resident memory of a process, in MiB (Linux `/proc`).
fn rss_mib(pid: u64) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb: f64 = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some(kb / 1024.0)
}

#[test]
fn a_flooder_and_a_garbage_sender_are_banned_and_the_honest_majority_keeps_finalizing() {
    let net = Localnet::up(&[
        "--nodes",
        "5",
        "--stakes",
        "10,10,10,1,1",
        "--rate-limit",
        "1000",
        "--fault",
        "3=flood:10000",
        "--fault",
        "4=garbage",
    ]);
    let manifest = net.manifest();
    let nodes = manifest["nodes"].as_array().expect("nodes").clone();
    let identity = |i: usize| nodes[i]["identity"].as_str().expect("identity").to_string();
    let (flooder, junk) = (identity(3), identity(4));
    let honest: Vec<String> = net.rpc_urls().into_iter().take(3).collect();
    let pids: Vec<u64> = nodes[..3]
        .iter()
        .map(|n| n["pid"].as_u64().expect("pid"))
        .collect();

    runtime().block_on(async {
        // Every honest node bans both, naming why.
        let banned = |peers: &[Peer], who: &str, reason: &str| {
            peers
                .iter()
                .any(|p| p.identity == who && p.banned_for_ms.is_some() && p.ban_reason == reason)
        };
        let deadline = Instant::now() + Duration::from_secs(90);
        let mut done = vec![false; honest.len()];
        while done.iter().any(|d| !d) && Instant::now() < deadline {
            for (i, url) in honest.iter().enumerate() {
                if let Ok(answer) = client(url).await.peers().await {
                    done[i] = banned(&answer.peers, &flooder, "rate-limit")
                        && banned(&answer.peers, &junk, "malformed");
                }
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        assert!(
            done.iter().all(|d| *d),
            "not every honest node banned both offenders: {done:?}\n{}",
            net.logs()
        );
        for url in &honest {
            let metric = metric(
                &net.metrics_url(honest.iter().position(|u| u == url).unwrap_or(0)),
                "bb_peer_bans_total{kind=\"rate-limit\"}",
            )
            .await;
            assert!(metric.unwrap_or(0.0) >= 1.0, "{url}: ban metric {metric:?}");
        }

        // Finalization goes on at its pace while the offenders keep at it, and memory
        // stays flat.
        let rss_before: Vec<f64> = pids.iter().filter_map(|p| rss_mib(*p)).collect();
        let start = finalized_all(&honest).await.into_iter().min().unwrap_or(0);
        let target = start + 40;
        let began = Instant::now();
        let ok = wait_all_finalized(&honest, target, Duration::from_secs(90)).await;
        assert!(ok, "honest nodes stopped finalizing below {target}\n{}", net.logs());
        let took = began.elapsed();
        let rss_after: Vec<f64> = pids.iter().filter_map(|p| rss_mib(*p)).collect();
        eprintln!(
            "40 slots finalized in {:.1} s under attack; RSS MiB before {rss_before:?} after {rss_after:?}",
            took.as_secs_f64()
        );
        for (b, a) in rss_before.iter().zip(&rss_after) {
            assert!(a - b < 64.0, "an honest node grew from {b:.0} to {a:.0} MiB");
        }
    });
}

#[test]
fn a_leader_withholding_its_shreds_costs_only_its_own_slots() {
    let net = Localnet::up(&["--nodes", "4", "--fault", "3=withhold-shreds"]);
    let manifest = net.manifest();
    let withholder = manifest["nodes"][3]["identity"]
        .as_str()
        .expect("identity")
        .to_string();
    let honest: Vec<String> = net.rpc_urls().into_iter().take(3).collect();
    runtime().block_on(async {
        let start = finalized_all(&honest).await.into_iter().min().unwrap_or(0);
        // Three rotations of the withholder's and more.
        let target = start + 60;
        let ok = wait_all_finalized(&honest, target, Duration::from_secs(120)).await;
        assert!(ok, "finality stalled below {target}\n{}", net.logs());
        // Its blocks reach the others only by repair, if at all: count what did.
        let c = client(&honest[0]).await;
        let (mut theirs, mut others) = (0, 0);
        for slot in start..=target {
            if let Ok(b) = c.block(slot).await
                && let Some(s) = b.block
                && s.commitment == bb_rpc::Commitment::Finalized as i32
            {
                if s.leader == withholder {
                    theirs += 1;
                } else {
                    others += 1;
                }
            }
        }
        eprintln!(
            "finalized {others} blocks of honest leaders and {theirs} of the withholder (repaired)"
        );
        assert!(others > 20, "{others} honest blocks finalized");
    });
}
