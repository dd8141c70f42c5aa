//! bb-localnet as an operator meets it: the real binary, real `bb-validator` processes,
//! real signals, real exit codes.
//!
//! Tests named `*_validators_*` need the bb-validator binary next to bb-localnet (build it
//! with `cargo build -p bb-validator`, or point `BB_VALIDATOR_BIN` at one); they fail with
//! that hint when it is missing. The others check the process handling and the error
//! paths with stand-ins the tests write themselves (a shell script, `false`), and run
//! anywhere.
//!
//! Every localnet lives in a temporary directory and is stopped by a guard when the test
//! ends, pass or fail: `down`, then SIGKILL for any process of it still alive.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::Value;

/// One real localnet at a time: they are processes on a shared machine.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

fn localnet_exe() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_bb-localnet"))
}

/// The real validator, or a failure saying how to build it.
fn validator_exe() -> PathBuf {
    if let Some(p) = std::env::var_os("BB_VALIDATOR_BIN").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    let beside = localnet_exe().with_file_name("bb-validator");
    assert!(
        beside.is_file(),
        "build bb-validator first: `cargo build -p bb-validator` (looked for {})",
        beside.display()
    );
    beside
}

/// A localnet directory that is always torn down.
struct Net {
    tmp: tempfile::TempDir,
    /// `BB_VALIDATOR_BIN` for every command.
    validator: PathBuf,
    /// A foreground `up` the test started, if any.
    foreground: Option<Child>,
}

impl Net {
    fn new(validator: PathBuf) -> Net {
        Net {
            tmp: tempfile::tempdir().expect("a temporary directory"),
            validator,
            foreground: None,
        }
    }

    fn dir(&self) -> PathBuf {
        self.tmp.path().join("net")
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(localnet_exe());
        c.args(args)
            .arg("--dir")
            .arg(self.dir())
            .env("BB_VALIDATOR_BIN", &self.validator)
            .stdin(Stdio::null());
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("bb-localnet runs")
    }

    fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert!(
            o.status.success(),
            "bb-localnet {args:?} failed: {}\n{}",
            stderr(&o),
            self.logs()
        );
        stdout(&o)
    }

    fn status(&self) -> Value {
        let text = self.ok(&["status", "--json"]);
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("status --json: {e}: {text}"))
    }

    fn manifest(&self) -> Value {
        let text = fs::read_to_string(self.dir().join("manifest.json")).expect("a manifest");
        serde_json::from_str(&text).expect("the manifest is JSON")
    }

    /// Every node's log, for failure messages.
    fn logs(&self) -> String {
        let mut all = String::new();
        for i in 0..8 {
            let path = self.dir().join(format!("node-{i}/validator.log"));
            if let Ok(text) = fs::read_to_string(&path) {
                let tail: Vec<&str> = text.lines().rev().take(15).collect();
                all.push_str(&format!("--- {} (last lines)\n", path.display()));
                for line in tail.into_iter().rev() {
                    all.push_str(line);
                    all.push('\n');
                }
            }
        }
        all
    }

    /// Pids recorded in the manifest (current and previous runs) whose processes are
    /// still alive and belong to this localnet.
    fn live_pids(&self) -> Vec<u32> {
        let Ok(text) = fs::read_to_string(self.dir().join("manifest.json")) else {
            return Vec::new();
        };
        let Ok(m) = serde_json::from_str::<Value>(&text) else {
            return Vec::new();
        };
        let dir = fs::canonicalize(self.dir())
            .unwrap_or_else(|_| self.dir())
            .to_string_lossy()
            .into_owned();
        let mut pids: Vec<u32> = Vec::new();
        for node in m["nodes"].as_array().into_iter().flatten() {
            for key in ["pid", "last_pid"] {
                if let Some(pid) = node[key].as_u64() {
                    pids.push(pid as u32);
                }
            }
        }
        pids.sort_unstable();
        pids.dedup();
        pids.into_iter()
            .filter(|&pid| process_of(pid, &dir))
            .collect()
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        if let Some(mut fg) = self.foreground.take() {
            let _ = fg.kill();
            let _ = fg.wait();
        }
        if self.dir().join("manifest.json").exists() {
            let _ = self.run(&["down"]);
        }
        for pid in self.live_pids() {
            if let Some(p) = rustix::process::Pid::from_raw(pid as i32) {
                let _ = rustix::process::kill_process(p, rustix::process::Signal::KILL);
            }
        }
    }
}

/// Whether `pid` is a live (non-zombie) process whose arguments mention `needle`.
fn process_of(pid: u32, needle: &str) -> bool {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.trim_start().chars().next());
    if state.is_none() || state == Some('Z') {
        return false;
    }
    let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    String::from_utf8_lossy(&cmdline).contains(needle)
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

/// A user error: exit 1, exactly one line on stderr that contains `needle`, no panic.
fn assert_user_error(o: &Output, needle: &str) {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(1), "stderr: {err}");
    assert_eq!(err.trim_end().lines().count(), 1, "not one line: {err:?}");
    assert!(err.contains(needle), "{err:?} lacks {needle:?}");
    assert!(!err.contains("panicked"), "{err}");
}

/// A failed start: exit 1, progress and log lines before, and the error as the last line.
fn assert_failed_start(o: &Output, needle: &str) {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(1), "stderr: {err}");
    let last = err.trim_end().lines().last().unwrap_or_default();
    assert!(last.starts_with("error: "), "{err:?}");
    assert!(last.contains(needle), "{last:?} lacks {needle:?}");
    assert!(!err.contains("panicked"), "{err}");
}

/// Polls `check` until it gives a value or `timeout` passes.
fn wait_for<T>(timeout: Duration, what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn node(status: &Value, i: usize) -> &Value {
    &status["nodes"][i]
}

fn alive(status: &Value, i: usize) -> bool {
    node(status, i)["alive"].as_bool() == Some(true)
}

/// Every node alive and answering with a finalized slot above 0.
fn all_finalized(status: &Value, n: usize) -> bool {
    (0..n).all(|i| alive(status, i) && node(status, i)["finalized"].as_u64().unwrap_or(0) > 0)
}

const UP_TIMEOUT: &str = "120";
const SETTLE: Duration = Duration::from_secs(90);

#[test]
fn up_detached_with_three_validators_finalizes_and_down_stops_every_process() {
    let _one = serial();
    let net = Net::new(validator_exe());
    let out = net.ok(&["up", "--nodes", "3", "--detach", "--timeout", UP_TIMEOUT]);
    assert!(
        out.contains("bb-localnet down"),
        "tells how to stop it: {out}"
    );

    let m = net.manifest();
    assert_eq!(m["nodes"].as_array().map(Vec::len), Some(3));
    let mut ports: Vec<u64> = Vec::new();
    for n in m["nodes"].as_array().unwrap() {
        assert!(n["pid"].as_u64().is_some(), "{n}");
        assert!(n["identity"].as_str().unwrap().starts_with("bb_"));
        for p in ["p2p", "shred", "rpc", "metrics"] {
            ports.push(n["ports"][p].as_u64().unwrap());
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let key = Path::new(n["identity_file"].as_str().unwrap());
            let mode = fs::metadata(key).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{}", key.display());
        }
    }
    ports.sort_unstable();
    ports.dedup();
    assert_eq!(ports.len(), 12, "every node has its own ports");
    let genesis: Value =
        serde_json::from_str(&fs::read_to_string(net.dir().join("genesis.json")).unwrap()).unwrap();
    assert_eq!(genesis["network"], "localnet");
    assert_eq!(genesis["validators"].as_array().map(Vec::len), Some(3));

    let status = wait_for(SETTLE, "three live nodes with finalized slots", || {
        let s = net.status();
        all_finalized(&s, 3).then_some(s)
    });
    assert_eq!(status["running"], 3, "{status}");
    assert!(net.ok(&["status"]).contains("finalized"));
    let log = net.ok(&["logs", "--node", "0"]);
    assert!(log.contains("=== bb-localnet: starting node 0"), "{log}");

    let down = net.ok(&["down"]);
    assert!(down.contains("stopped 3 nodes"), "{down}");
    assert!(net.live_pids().is_empty(), "no process outlives down");
    let s = net.status();
    assert_eq!(s["running"], 0, "{s}");
    assert!((0..3).all(|i| node(&s, i)["state"] == "stopped"), "{s}");
    let again = net.run(&["down"]);
    assert!(again.status.success());
    assert!(
        stdout(&again).contains("nothing was running"),
        "{}",
        stdout(&again)
    );
}

#[test]
fn killed_validators_show_dead_until_start_or_restart_brings_them_back() {
    let _one = serial();
    let net = Net::new(validator_exe());
    net.ok(&["up", "--nodes", "3", "--detach", "--timeout", UP_TIMEOUT]);
    let first_pid = net.manifest()["nodes"][1]["pid"].as_u64().unwrap();

    let killed = net.ok(&["kill", "--node", "1", "--json"]);
    let killed: Value = serde_json::from_str(&killed).unwrap();
    assert_eq!(killed["pid"].as_u64(), Some(first_pid));
    assert_eq!(killed["signal"], "SIGKILL");
    let s = net.status();
    assert!(!alive(&s, 1), "{s}");
    assert_eq!(node(&s, 1)["state"], "stopped");
    assert!(alive(&s, 0) && alive(&s, 2), "the others run on: {s}");
    assert_user_error(&net.run(&["kill", "--node", "1"]), "not running");

    net.ok(&["start", "--node", "1"]);
    assert_user_error(&net.run(&["start", "--node", "1"]), "already running");
    let s = wait_for(SETTLE, "node 1 back and finalizing", || {
        let s = net.status();
        all_finalized(&s, 3).then_some(s)
    });
    let new_pid = node(&s, 1)["pid"].as_u64().unwrap();
    assert_ne!(new_pid, first_pid);

    let before = node(&s, 2)["pid"].as_u64().unwrap();
    let restarted: Value =
        serde_json::from_str(&net.ok(&["restart", "--node", "2", "--json"])).unwrap();
    assert_eq!(restarted["previous_pid"].as_u64(), Some(before));
    assert_ne!(restarted["pid"].as_u64(), Some(before));
    assert!(alive(&net.status(), 2));

    net.ok(&["kill", "--node", "0", "--signal", "term"]);
    assert!(!alive(&net.status(), 0));

    net.ok(&["down"]);
    assert!(net.live_pids().is_empty(), "no process outlives down");
}

#[test]
fn a_second_up_is_refused_while_validators_run_and_ctrl_c_stops_them_all() {
    let _one = serial();
    let mut net = Net::new(validator_exe());
    let log = fs::File::create(net.tmp.path().join("up.out")).unwrap();
    let fg = net
        .command(&["up", "--nodes", "3", "--timeout", UP_TIMEOUT])
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("bb-localnet up runs");
    let fg_pid = fg.id();
    net.foreground = Some(fg);
    // Past the start (a Ctrl-C before the first finalized slot is an aborted start).
    // `up` itself must have seen the first finalized slot too (it polls on its own
    // schedule), or the Ctrl-C below would land in its startup stage.
    let up_out = net.tmp.path().join("up.out");
    wait_for(SETTLE, "three live nodes with finalized slots", || {
        let s: Value = serde_json::from_str(&stdout(&net.run(&["status", "--json"]))).ok()?;
        let shown = fs::read_to_string(&up_out).ok()?;
        (all_finalized(&s, 3) && shown.contains("first finalized")).then_some(())
    });

    let second = net.run(&["up", "--nodes", "3", "--detach"]);
    assert_user_error(&second, "already running");
    assert_eq!(net.live_pids().len(), 3, "the first localnet is untouched");

    let p = rustix::process::Pid::from_raw(fg_pid as i32).unwrap();
    rustix::process::kill_process(p, rustix::process::Signal::INT).unwrap();
    let mut fg = net.foreground.take().unwrap();
    let status = wait_for(Duration::from_secs(30), "up to stop", || {
        fg.try_wait().unwrap()
    });
    let mut out = String::new();
    fs::File::open(net.tmp.path().join("up.out"))
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    assert!(status.success(), "up exits 0 after Ctrl-C: {out}");
    assert!(out.contains("stopped 3 nodes"), "{out}");
    assert!(net.live_pids().is_empty(), "Ctrl-C leaves no node running");
    let s = net.status();
    assert!((0..3).all(|i| node(&s, i)["state"] == "stopped"), "{s}");
}

// ---- Without bb-validator: stand-ins the tests write, error paths. ----

/// An executable shell script `name` in `dir`.
fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(name);
    fs::write(&path, format!("#!/bin/sh\n{body}")).expect("the script is written");
    fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).expect("it is executable");
    path
}

/// A stand-in validator that starts and keeps running but never answers gRPC: a shell
/// loop (its arguments, including `--ledger DIR`, stay visible in /proc).
fn silent_standin(dir: &Path) -> PathBuf {
    script(
        dir,
        "silent-validator.sh",
        "echo \"stand-in $*\"\nwhile :; do sleep 0.2; done\n",
    )
}

#[test]
fn a_node_exiting_at_startup_stops_the_others_and_shows_its_log() {
    let _one = serial();
    let tmp = tempfile::tempdir().unwrap();
    let script = script(
        tmp.path(),
        "crashing-validator.sh",
        "case \"$*\" in *node-1*) echo 'fatal: cannot open ledger' >&2; exit 3;; esac\n\
         while :; do sleep 0.2; done\n",
    );
    let net = Net::new(script);
    let o = net.run(&["up", "--nodes", "3", "--detach", "--timeout", "30"]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("fatal: cannot open ledger"),
        "shows the log: {err}"
    );
    let last = err.trim_end().lines().last().unwrap_or_default();
    assert!(
        last.starts_with("error: node 1 exited") && last.contains("exit status 3"),
        "{err}"
    );
    assert!(net.live_pids().is_empty(), "nothing left half-started");
    let s = net.status();
    assert_eq!(s["running"], 0, "{s}");
    assert!((0..3).all(|i| node(&s, i)["state"] == "stopped"), "{s}");
}

#[test]
fn a_localnet_that_never_answers_times_out_and_leaves_nothing_running() {
    let _one = serial();
    let tmp = tempfile::tempdir().unwrap();
    let net = Net::new(silent_standin(tmp.path()));
    let o = net.run(&["up", "--nodes", "2", "--detach", "--timeout", "2"]);
    assert_failed_start(&o, "no peers connected within 2s; stopped every node");
    assert!(net.live_pids().is_empty(), "nothing left half-started");

    // `start` brings one node up, but it never answers: stopped again, one clear error.
    let o = net.run(&["start", "--node", "0", "--timeout", "1"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let last = stderr(&o)
        .trim_end()
        .lines()
        .last()
        .unwrap_or_default()
        .to_string();
    assert!(last.contains("did not answer within 1 s"), "{last}");
    assert!(net.live_pids().is_empty());
    let log = net.ok(&["logs", "--node", "0"]);
    assert!(log.contains("stand-in --identity"), "{log}");
    assert!(
        log.matches("=== bb-localnet: starting node 0").count() >= 2,
        "{log}"
    );
    let tail = net.ok(&["logs", "--node", "0", "-n", "1"]);
    assert_eq!(tail.lines().count(), 1, "{tail}");
}

#[test]
fn bad_inputs_exit_1_with_one_line() {
    let _one = serial();
    let tmp = tempfile::tempdir().unwrap();
    let standin = silent_standin(tmp.path());
    let net = Net::new(standin.clone());
    for args in [
        &["status"][..],
        &["down"],
        &["kill", "--node", "0"],
        &["start", "--node", "0"],
        &["restart", "--node", "0"],
        &["logs", "--node", "0"],
    ] {
        assert_user_error(&net.run(args), "no localnet in");
    }
    assert!(!net.dir().exists(), "looking does not create the directory");

    for (args, needle) in [
        (&["up", "--nodes", "0"][..], "--nodes 0 is out of range"),
        (&["up", "--nodes", "3", "--stakes", "1,2"], "one per node"),
        (
            &["up", "--nodes", "3", "--fault", "5=garbage"],
            "node 5 is out of range",
        ),
        (&["up", "--nodes", "3", "--fault", "garbage"], "I=KIND"),
        (&["up", "--epoch-slots", "30"], "multiple"),
        (&["up", "--json"], "--json needs --detach"),
        (&["kill", "--node", "x"], "invalid value"),
    ] {
        assert_user_error(&net.run(args), needle);
    }
    assert!(!net.dir().exists(), "refused before anything is written");

    let missing = Command::new(localnet_exe())
        .args(["up", "--nodes", "3", "--detach", "--dir"])
        .arg(net.dir())
        .env("BB_VALIDATOR_BIN", tmp.path().join("no-such-validator"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_user_error(&missing, "BB_VALIDATOR_BIN");
    assert!(!net.dir().exists());

    // A localnet (of stand-ins, stopped after its timeout) to ask about wrong nodes.
    let o = net.run(&["up", "--nodes", "3", "--detach", "--timeout", "1"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert_user_error(
        &net.run(&["kill", "--node", "9"]),
        "node 9 is out of range: the localnet in",
    );
    assert_user_error(
        &net.run(&["start", "--node", "3"]),
        "node 3 is out of range",
    );
    assert_user_error(&net.run(&["logs", "--node", "7"]), "node 7 is out of range");
    assert_user_error(&net.run(&["kill", "--node", "1"]), "not running");
    assert_user_error(&net.run(&["logs", "--node", "0", "--json"]), "no --json");

    // A directory with someone else's files is never taken over.
    let other = tmp.path().join("other");
    fs::create_dir_all(&other).unwrap();
    fs::write(other.join("notes.txt"), "mine").unwrap();
    let o = Command::new(localnet_exe())
        .args(["up", "--nodes", "1", "--detach", "--dir"])
        .arg(&other)
        .env("BB_VALIDATOR_BIN", &standin)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_user_error(&o, "no localnet");
    assert_eq!(fs::read_to_string(other.join("notes.txt")).unwrap(), "mine");
}

#[test]
fn help_of_every_command_has_an_example() {
    for cmd in [
        "up", "status", "down", "kill", "start", "restart", "logs", "sim",
    ] {
        let o = Command::new(localnet_exe())
            .args([cmd, "--help"])
            .output()
            .unwrap();
        assert!(o.status.success(), "{cmd}");
        let text = stdout(&o);
        assert!(text.contains("Example"), "{cmd} --help: {text}");
        if cmd != "sim" {
            assert!(text.contains("--dir"), "{cmd} --help: {text}");
        }
    }
}
