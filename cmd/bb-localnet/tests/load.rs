//! `bb-localnet load` against a real 3-node localnet: every offered transfer is accepted,
//! lands in a block, and is confirmed and finalized; the report carries latencies.

mod common;

use common::*;
use serde_json::Value;

#[test]
fn load_reports_what_became_of_every_transfer() {
    let net = Localnet::up(&["--nodes", "3"]);
    let out = net.run(&[
        "load",
        "--tps",
        "150",
        "--duration",
        "5",
        "--accounts",
        "50",
        "--settle",
        "60",
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        net.logs()
    );
    let r: Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    let n = |k: &str| r[k].as_u64().unwrap_or(0);
    assert_eq!(n("offered"), 750, "{r}");
    assert_eq!(n("accepted"), 750, "rejections: {}", r["rejected"]);
    assert_eq!(n("processed"), 750, "{r}");
    assert_eq!(n("confirmed"), 750, "{r}");
    assert_eq!(n("finalized"), 750, "{r}");
    let p50 = r["confirmation"]["p50_ms"]
        .as_u64()
        .expect("confirmation p50");
    let f50 = r["finalization"]["p50_ms"]
        .as_u64()
        .expect("finalization p50");
    assert!(p50 <= f50, "{r}");
    // Bad arguments: one line, exit 1.
    let bad = net.run(&["load", "--tps", "0", "--duration", "1"]);
    assert_eq!(bad.status.code(), Some(1));
    assert_eq!(String::from_utf8_lossy(&bad.stderr).lines().count(), 1);
}
