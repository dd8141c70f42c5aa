//! bb-sync as a user meets it before any peer answers: bad arguments and unusable
//! targets give one line on stderr and exit 1, and leave nothing behind.

use std::process::{Command, Output};

fn run(dir: &std::path::Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_bb-sync"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("bb-sync runs")
}

fn assert_user_error(out: &Output, needle: &str) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    assert!(err.contains(needle), "{err:?} lacks {needle:?}");
}

#[test]
fn bad_input_is_one_line_and_exit_1_and_leaves_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    assert_user_error(&run(dir, &[]), "command");
    assert_user_error(
        &run(dir, &["teleport", "--from", "node0", "--ledger", "l"]),
        "teleport",
    );
    assert_user_error(&run(dir, &["warp", "--ledger", "l"]), "--from");
    assert_user_error(
        &run(
            dir,
            &[
                "full",
                "--from",
                "node0",
                "--ledger",
                "l",
                "--limit-rate",
                "fast",
            ],
        ),
        "fast",
    );
    // No localnet to resolve `node0` against.
    assert_user_error(
        &run(dir, &["full", "--from", "node0", "--ledger", "l"]),
        "no localnet",
    );
    // A peer that does not answer.
    assert_user_error(
        &run(
            dir,
            &[
                "warp",
                "--from",
                "http://127.0.0.1:1",
                "--ledger",
                "l",
                "--timeout-ms",
                "300",
            ],
        ),
        "127.0.0.1:1",
    );
    let left: Vec<_> = std::fs::read_dir(dir).unwrap().flatten().collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}
