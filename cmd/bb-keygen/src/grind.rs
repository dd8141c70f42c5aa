//! `grind`: search for keys whose address starts with a chosen prefix, on every core.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, mpsc};
use std::time::Instant;

use anyhow::{Context, bail};
use bb_cli::keyfile::{self, Overwrite};
use bb_cli::{EXIT_OK, Output};
use bb_core::Keypair;
use serde::Serialize;

const BASE58_ALPHABET: &str = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
/// A longer prefix would take longer than anyone waits (58^8 is 1.3e14 keys).
const MAX_PREFIX_LEN: usize = 8;
const MAX_COUNT: u64 = 10_000;

/// Parses `PREFIX[:COUNT]`.
fn parse_spec(spec: &str) -> anyhow::Result<(String, u64)> {
    let (prefix, count) = match spec.split_once(':') {
        Some((p, c)) => {
            let n: u64 = c
                .parse()
                .with_context(|| format!("count '{c}' in '{spec}' is not a number"))?;
            (p, n)
        }
        None => (spec, 1),
    };
    let prefix = prefix.strip_prefix("bb_").unwrap_or(prefix);
    if prefix.is_empty() {
        bail!("the prefix is empty; give one like --starts-with ab");
    }
    if let Some(c) = prefix.chars().find(|c| !BASE58_ALPHABET.contains(*c)) {
        bail!("'{c}' cannot appear in an address (base58 has no 0, O, I or l)");
    }
    if prefix.len() > MAX_PREFIX_LEN {
        bail!(
            "a prefix of {} characters would take years; use at most {MAX_PREFIX_LEN}",
            prefix.len()
        );
    }
    if count == 0 || count > MAX_COUNT {
        bail!("count must be 1 to {MAX_COUNT}");
    }
    Ok((prefix.to_string(), count))
}

#[derive(Serialize)]
struct Found {
    address: String,
    path: String,
}

#[derive(Serialize)]
struct GrindReport {
    prefix: String,
    found: Vec<Found>,
    attempts: u64,
    seconds: f64,
    keys_per_second: f64,
    threads: usize,
}

pub fn run(out: Output, spec: &str, out_dir: &Path, threads: Option<usize>) -> anyhow::Result<u8> {
    let (prefix, count) = parse_spec(spec)?;
    let threads = threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .clamp(1, 256);
    if !out_dir.is_dir() {
        bail!("{} is not a directory", out_dir.display());
    }
    out.note(&format!(
        "Searching for {count} address(es) starting with bb_{prefix} on {threads} threads \
         (about {} keys per match)...",
        expected_attempts(&prefix)
    ));

    let started = Instant::now();
    let attempts = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let (tx, rx) = mpsc::channel::<Keypair>();
    let workers: Vec<_> = (0..threads)
        .map(|_| {
            let (prefix, attempts, stop, tx) =
                (prefix.clone(), attempts.clone(), stop.clone(), tx.clone());
            std::thread::spawn(move || search(&prefix, &attempts, &stop, &tx))
        })
        .collect();
    drop(tx);

    let mut found = Vec::new();
    let mut failure = None;
    while (found.len() as u64) < count {
        let Ok(keypair) = rx.recv() else { break };
        let address = keypair.pubkey().to_address();
        let path = out_dir.join(format!("{address}.json"));
        if let Err(e) = keyfile::write_keypair(&path, &keypair, Overwrite::Refuse) {
            failure = Some(e);
            break;
        }
        out.note(&format!("found {address} -> {}", path.display()));
        found.push(Found {
            address,
            path: path.display().to_string(),
        });
    }
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        let _ = w.join();
    }
    if let Some(e) = failure {
        return Err(e);
    }
    let seconds = started.elapsed().as_secs_f64();
    let attempts = attempts.load(Ordering::Relaxed);
    let report = GrindReport {
        prefix,
        found,
        attempts,
        seconds,
        keys_per_second: attempts as f64 / seconds.max(1e-9),
        threads,
    };
    out.emit(&report, || {
        format!(
            "{} key(s) in {:.1} s, {} keys tried ({:.0} keys/s)",
            report.found.len(),
            report.seconds,
            report.attempts,
            report.keys_per_second
        )
    });
    Ok(EXIT_OK)
}

fn search(prefix: &str, attempts: &AtomicU64, stop: &AtomicBool, tx: &mpsc::Sender<Keypair>) {
    let mut rng = rand_source();
    let mut local = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let keypair = Keypair::generate_with(&mut rng);
        local += 1;
        if local == 1024 {
            attempts.fetch_add(local, Ordering::Relaxed);
            local = 0;
        }
        // The address is `bb_` + base58; compare after the prefix.
        if keypair.pubkey().to_address()[3..].starts_with(prefix) && tx.send(keypair).is_err() {
            break;
        }
    }
    attempts.fetch_add(local, Ordering::Relaxed);
}

fn rand_source() -> impl rand::CryptoRng {
    rand::rng()
}

/// 58^len, shown so people know what they asked for.
fn expected_attempts(prefix: &str) -> String {
    let n = 58f64.powi(prefix.len() as i32);
    if n < 1e6 {
        format!("{n:.0}")
    } else {
        format!("{n:.1e}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_parsing() {
        assert_eq!(parse_spec("ab").unwrap(), ("ab".into(), 1));
        assert_eq!(parse_spec("bb_ab:3").unwrap(), ("ab".into(), 3));
        assert!(parse_spec("a0").unwrap_err().to_string().contains("'0'"));
        assert!(parse_spec("ab:x").is_err());
        assert!(parse_spec("ab:0").is_err());
        assert!(parse_spec("").is_err());
        assert!(parse_spec("abcdefghij").is_err());
    }
}
