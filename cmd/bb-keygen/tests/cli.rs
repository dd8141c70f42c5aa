//! bb-keygen as a new user meets it: the real binary, real files, real exit codes.

use std::path::Path;
use std::process::{Command, Output, Stdio};

fn keygen(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_bb-keygen"))
        .args(args)
        .current_dir(dir)
        .env("HOME", dir.join("home"))
        .stdin(Stdio::null())
        .output()
        .expect("bb-keygen runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

/// A user error: exit 1, exactly one line on stderr, no panic text.
fn assert_user_error(o: &Output, needle: &str) {
    assert_eq!(o.status.code(), Some(1), "stderr: {}", stderr(o));
    let err = stderr(o);
    assert_eq!(err.trim_end().lines().count(), 1, "not one line: {err:?}");
    assert!(err.contains(needle), "{err:?} lacks {needle:?}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn new_writes_a_private_key_file_and_pubkey_reads_it() {
    let dir = tempfile::tempdir().unwrap();
    let o = keygen(dir.path(), &["new", "-o", "v.json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("v.json"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let addr = stdout(&keygen(dir.path(), &["pubkey", "v.json"]));
    assert!(addr.starts_with("bb_"), "{addr}");
    assert!(stdout(&o).contains(&addr));
    let ok = keygen(dir.path(), &["verify", "v.json", &addr]);
    assert_eq!(ok.status.code(), Some(0), "{}", stderr(&ok));
}

#[test]
fn new_never_overwrites_without_force() {
    let dir = tempfile::tempdir().unwrap();
    assert!(
        keygen(dir.path(), &["new", "-o", "v.json"])
            .status
            .success()
    );
    let before = std::fs::read(dir.path().join("v.json")).unwrap();
    let o = keygen(dir.path(), &["new", "-o", "v.json"]);
    assert_user_error(&o, "--force");
    assert_eq!(std::fs::read(dir.path().join("v.json")).unwrap(), before);
    let o = keygen(dir.path(), &["new", "-o", "v.json", "--force"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_ne!(std::fs::read(dir.path().join("v.json")).unwrap(), before);
}

#[test]
fn new_without_outfile_uses_the_default_path_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let o = keygen(dir.path(), &["new"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(dir.path().join("home/.config/bb/id.json").is_file());
    assert!(stdout(&o).contains(".config/bb/id.json"), "{}", stdout(&o));
}

#[test]
fn verify_mismatch_and_bad_address_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    keygen(dir.path(), &["new", "-o", "a.json"]);
    keygen(dir.path(), &["new", "-o", "b.json"]);
    let b = stdout(&keygen(dir.path(), &["pubkey", "b.json"]));
    assert_user_error(&keygen(dir.path(), &["verify", "a.json", &b]), "not");
    assert_user_error(
        &keygen(dir.path(), &["verify", "a.json", "bb_xyz"]),
        "not an address",
    );
    assert_user_error(&keygen(dir.path(), &["verify", "a.json", "hello"]), "bb_");
}

#[test]
fn missing_unreadable_and_malformed_key_files_give_one_line() {
    let dir = tempfile::tempdir().unwrap();
    assert_user_error(
        &keygen(dir.path(), &["pubkey", "missing.json"]),
        "cannot read",
    );
    std::fs::write(dir.path().join("junk.json"), b"\x00\xffnot json").unwrap();
    assert_user_error(
        &keygen(dir.path(), &["pubkey", "junk.json"]),
        "not a bb key file",
    );
    std::fs::write(dir.path().join("huge.json"), vec![b'{'; 1 << 20]).unwrap();
    assert_user_error(&keygen(dir.path(), &["pubkey", "huge.json"]), "bytes");
    // A file whose address and secret disagree.
    keygen(dir.path(), &["new", "-o", "a.json"]);
    keygen(dir.path(), &["new", "-o", "b.json"]);
    let a = stdout(&keygen(dir.path(), &["pubkey", "a.json"]));
    let b = stdout(&keygen(dir.path(), &["pubkey", "b.json"]));
    let text = std::fs::read_to_string(dir.path().join("a.json")).unwrap();
    std::fs::write(dir.path().join("a.json"), text.replace(&a, &b)).unwrap();
    assert_user_error(&keygen(dir.path(), &["pubkey", "a.json"]), "does not match");
    std::fs::create_dir(dir.path().join("d")).unwrap();
    assert_user_error(&keygen(dir.path(), &["pubkey", "d"]), "d");
}

#[test]
fn bad_arguments_give_one_line_and_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    assert_user_error(&keygen(dir.path(), &["--bogus"]), "--bogus");
    assert_user_error(&keygen(dir.path(), &[]), "missing");
    assert_user_error(&keygen(dir.path(), &["pubkey"]), "FILE");
    assert_user_error(
        &keygen(dir.path(), &["grind", "--starts-with", "0x"]),
        "'0'",
    );
    assert_user_error(
        &keygen(dir.path(), &["grind", "--starts-with", "a:zz"]),
        "zz",
    );
    let help = keygen(dir.path(), &["new", "--help"]);
    assert_eq!(help.status.code(), Some(0));
    assert!(stdout(&help).contains("Example"));
}

#[test]
fn every_subcommand_speaks_json() {
    let dir = tempfile::tempdir().unwrap();
    let parse = |o: &Output| -> serde_json::Value {
        serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", stdout(o)))
    };
    let new = parse(&keygen(dir.path(), &["--json", "new", "-o", "k.json"]));
    let addr = new["address"].as_str().unwrap().to_string();
    let pk = parse(&keygen(dir.path(), &["pubkey", "k.json", "--json"]));
    assert_eq!(pk["address"], addr.as_str());
    let v = parse(&keygen(dir.path(), &["--json", "verify", "k.json", &addr]));
    assert_eq!(v["matches"], true);
    let g = keygen(
        dir.path(),
        &["--json", "grind", "--starts-with", "2:2", "--threads", "2"],
    );
    assert!(g.status.success(), "{}", stderr(&g));
    let g = parse(&g);
    let found = g["found"].as_array().unwrap();
    assert_eq!(found.len(), 2);
    for f in found {
        let a = f["address"].as_str().unwrap();
        assert!(a.starts_with("bb_2"), "{a}");
        let file = f["path"].as_str().unwrap();
        let check = keygen(dir.path(), &["verify", file, a]);
        assert!(check.status.success(), "{}", stderr(&check));
    }
}
