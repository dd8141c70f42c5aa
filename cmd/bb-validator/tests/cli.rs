//! bb-validator's own front door: bad input is one line and exit 1, never a panic.

use std::process::{Command, Output};

fn validator(dir: &std::path::Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_bb-validator"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("bb-validator runs")
}

fn assert_one_line_error(o: &Output, needle: &str) {
    assert_eq!(
        o.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let err = String::from_utf8_lossy(&o.stderr);
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "not one line: {err:?}");
    assert!(err.contains(needle), "{err:?} lacks {needle:?}");
}

#[test]
fn missing_or_malformed_inputs_are_one_line_errors() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert_one_line_error(&validator(d, &[]), "required");
    let base = ["--genesis", "g.json", "--ledger", "l"];
    assert_one_line_error(
        &validator(d, &[&["--identity", "nope.json"][..], &base[..]].concat()),
        "cannot read nope.json",
    );
    std::fs::write(d.join("k.json"), "{not json").unwrap();
    assert_one_line_error(
        &validator(d, &[&["--identity", "k.json"][..], &base[..]].concat()),
        "not a bb key file",
    );
    let keygen =
        std::path::Path::new(env!("CARGO_BIN_EXE_bb-validator")).with_file_name("bb-keygen");
    if keygen.exists() {
        let ok = Command::new(&keygen)
            .args(["new", "-o", "id.json"])
            .current_dir(d)
            .output()
            .unwrap();
        assert!(ok.status.success());
        std::fs::write(d.join("g.json"), r#"{"version": 1}"#).unwrap();
        assert_one_line_error(
            &validator(d, &[&["--identity", "id.json"][..], &base[..]].concat()),
            "g.json",
        );
    }
    assert_one_line_error(
        &validator(
            d,
            &[
                "--identity",
                "k.json",
                "--genesis",
                "g",
                "--ledger",
                "l",
                "--fault",
                "explode",
            ],
        ),
        "unknown fault",
    );
    assert_one_line_error(
        &validator(
            d,
            &[
                "--identity",
                "k.json",
                "--genesis",
                "g",
                "--ledger",
                "l",
                "--rpc-addr",
                "nowhere",
            ],
        ),
        "nowhere",
    );
}

#[test]
fn help_has_an_example() {
    let dir = tempfile::tempdir().unwrap();
    let o = validator(dir.path(), &["--help"]);
    assert!(o.status.success());
    assert!(String::from_utf8_lossy(&o.stdout).contains("Example"));
}
