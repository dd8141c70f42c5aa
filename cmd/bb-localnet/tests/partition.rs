//! `bb-localnet partition` on six real validators: a 4/2 split keeps finalizing on the
//! side with 2/3 of the stake; a 3/3 split finalizes nothing on either side, and once it
//! heals finalization resumes; at the end every node holds the same finalized chain.

mod common;

use std::time::{Duration, Instant};

use common::*;

#[test]
fn splits_never_finalize_conflicting_blocks_and_finality_resumes_after_healing() {
    let net = Localnet::up(&["--nodes", "6"]);
    let urls = net.rpc_urls();
    runtime().block_on(async {
        assert!(
            wait_all_finalized(&urls, 3, Duration::from_secs(90)).await,
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
            wait_all_finalized(&urls[..4], target, Duration::from_secs(20)).await,
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
            wait_all_finalized(&urls, healed, Duration::from_secs(60)).await,
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
        let healed = wait_all_finalized(&urls, resume, Duration::from_secs(120)).await;
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
        assert_one_finalized_chain(&urls, 20).await;
    });
}
