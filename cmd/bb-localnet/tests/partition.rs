//! `bb-localnet partition` on six real validators: a 4/2 split keeps finalizing on the
//! side with 2/3 of the stake; a 3/3 split finalizes nothing on either side, and once it
//! heals finalization resumes; at the end every node holds the same finalized chain.

mod common;

use std::time::{Duration, Instant};

use common::*;

async fn finalized_all(urls: &[String]) -> Vec<u64> {
    let mut out = Vec::new();
    for u in urls {
        out.push(finalized(u).await);
    }
    out
}

async fn wait_all_at_least(urls: &[String], slot: u64, within: Duration) -> bool {
    wait_for(within, || async {
        finalized_all(urls).await.iter().all(|f| *f >= slot)
    })
    .await
}

#[test]
fn splits_never_finalize_conflicting_blocks_and_finality_resumes_after_healing() {
    let net = Localnet::up(&["--nodes", "6"]);
    let urls = net.rpc_urls();
    runtime().block_on(async {
        assert!(
            wait_all_at_least(&urls, 3, Duration::from_secs(90)).await,
            "the localnet did not finalize\n{}",
            net.logs()
        );

        // 4/2: the four hold 2/3 of the stake and go on finalizing.
        let out = net.run(&["partition", "--groups", "0,1,2,3/4,5", "--for", "20"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let start = finalized_all(&urls[..4]).await;
        let target = start.iter().max().copied().unwrap_or(0) + 12;
        assert!(
            wait_all_at_least(&urls[..4], target, Duration::from_secs(20)).await,
            "the 2/3 side stopped finalizing below {target}: {:?}\n{}",
            finalized_all(&urls).await,
            net.logs()
        );
        let out = net.run(&["partition", "--heal"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let healed = finalized_all(&urls).await.into_iter().max().unwrap_or(0) + 5;
        assert!(
            wait_all_at_least(&urls, healed, Duration::from_secs(60)).await,
            "after the 4/2 split, not every node reached {healed}: {:?}\n{}",
            finalized_all(&urls).await,
            net.logs()
        );

        // 3/3: neither side holds 2/3; nothing new may be finalized until it heals.
        let out = net.run(&["partition", "--groups", "0,1,2/3,4,5", "--for", "30"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let split_at = Instant::now();
        // Votes already in flight when the split began may still land.
        tokio::time::sleep(Duration::from_secs(5)).await;
        let frozen = finalized_all(&urls).await;
        tokio::time::sleep(Duration::from_secs(20)).await;
        let later = finalized_all(&urls).await;
        assert_eq!(frozen, later, "a side finalized during a 3/3 split");
        // It heals by itself at 30 s.
        let resume = later.iter().max().copied().unwrap_or(0) + 5;
        let healed = wait_all_at_least(&urls, resume, Duration::from_secs(120)).await;
        let took = split_at.elapsed().saturating_sub(Duration::from_secs(30));
        assert!(
            healed,
            "finalization did not resume after the 3/3 split: {:?}\n{}",
            finalized_all(&urls).await,
            net.logs()
        );
        eprintln!(
            "3/3 split: finalization resumed {:.1} s after the heal",
            took.as_secs_f64()
        );

        // One finalized chain everywhere.
        let common = finalized_all(&urls).await.into_iter().min().unwrap_or(0);
        let mut clients = Vec::new();
        for u in &urls {
            clients.push(client(u).await);
        }
        // Each node's finalized chain up to the lowest finalized slot: the same everywhere.
        let mut chains = Vec::new();
        for c in &clients {
            let mut chain = Vec::new();
            for slot in 1..=common {
                if let Ok(b) = c.block(slot).await
                    && let Some(s) = b.block
                    && s.commitment == bb_rpc::Commitment::Finalized as i32
                {
                    chain.push((slot, s.block_id));
                }
            }
            chains.push(chain);
        }
        assert!(
            chains[0].len() > 20,
            "only {} finalized slots",
            chains[0].len()
        );
        for (i, chain) in chains.iter().enumerate() {
            assert_eq!(
                chain, &chains[0],
                "node {i} finalized another chain than node 0"
            );
        }
    });
}
