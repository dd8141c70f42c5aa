//! `bb-keygen`: create and check the Ed25519 identity keys of bb validators and accounts.

mod grind;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use bb_cli::keyfile::{self, Overwrite};
use bb_cli::{EXIT_OK, EXIT_USER_ERROR, Output, prompt};
use bb_core::Pubkey;
use clap::{Parser, Subcommand};
use serde::Serialize;

#[derive(Parser, Debug)]
#[command(
    name = "bb-keygen",
    version,
    about = "Create and check bb identity keys (Ed25519)",
    after_help = "Examples:\n  bb-keygen new -o validator.json\n  bb-keygen pubkey validator.json\n  bb-keygen verify validator.json bb_4vJ9...\n  bb-keygen grind --starts-with ab:2"
)]
struct Cli {
    /// Print results as JSON.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Generate a new key and write it to a file (mode 0600).
    #[command(
        after_help = "Examples:\n  bb-keygen new                     # writes ~/.config/bb/id.json\n  bb-keygen new -o validator.json\n  bb-keygen new -o validator.json --force"
    )]
    New {
        /// Where to write the key [default: ~/.config/bb/id.json].
        #[arg(short = 'o', long = "outfile", value_name = "FILE")]
        outfile: Option<PathBuf>,
        /// Overwrite the file if it exists.
        #[arg(long)]
        force: bool,
    },
    /// Print the address (public key) of a key file.
    #[command(after_help = "Example:\n  bb-keygen pubkey validator.json")]
    Pubkey {
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
    /// Check that a key file holds the key of ADDRESS (exit 0 if so, 1 if not).
    #[command(after_help = "Example:\n  bb-keygen verify validator.json bb_4vJ9...")]
    Verify {
        #[arg(value_name = "FILE")]
        file: PathBuf,
        #[arg(value_name = "ADDRESS")]
        address: String,
    },
    /// Search for keys whose address starts with a prefix, on all cores.
    #[command(
        after_help = "Examples:\n  bb-keygen grind --starts-with ab        # one key, written to ./bb_ab....json\n  bb-keygen grind --starts-with ab:3 --out-dir keys\n\nEach extra character multiplies the expected work by 58."
    )]
    Grind {
        /// The prefix after `bb_`, in base58, and optionally how many keys to find.
        #[arg(long = "starts-with", value_name = "PREFIX[:COUNT]")]
        starts_with: String,
        /// Directory for the key files found.
        #[arg(long, value_name = "DIR", default_value = ".")]
        out_dir: PathBuf,
        /// Threads to use [default: all cores].
        #[arg(long)]
        threads: Option<usize>,
    },
}

fn main() -> ExitCode {
    bb_cli::run(|cli: Cli| {
        let out = Output::new(cli.json);
        match cli.command {
            Command::New { outfile, force } => new(out, outfile, force),
            Command::Pubkey { file } => pubkey(out, &file),
            Command::Verify { file, address } => verify(out, &file, &address),
            Command::Grind {
                starts_with,
                out_dir,
                threads,
            } => grind::run(out, &starts_with, &out_dir, threads),
        }
    })
}

#[derive(Serialize)]
struct KeyReport<'a> {
    address: String,
    path: &'a Path,
}

fn new(out: Output, outfile: Option<PathBuf>, force: bool) -> anyhow::Result<u8> {
    let (path, defaulted) = match outfile {
        Some(p) => (p, false),
        None => (keyfile::default_key_path()?, true),
    };
    let mut overwrite = if force {
        Overwrite::Allow
    } else {
        Overwrite::Refuse
    };
    if !force && path.exists() {
        match prompt::confirm(&format!("{} exists. Overwrite it?", path.display())) {
            Some(true) => overwrite = Overwrite::Allow,
            Some(false) => anyhow::bail!("{} kept as it was", path.display()),
            // Nobody to ask: write_keypair refuses with a message naming --force.
            None => {}
        }
    }
    let keypair = bb_core::Keypair::generate();
    keyfile::write_keypair(&path, &keypair, overwrite)?;
    let report = KeyReport {
        address: keypair.pubkey().to_address(),
        path: &path,
    };
    out.emit(&report, || {
        let where_ = if defaulted { " (the default path)" } else { "" };
        format!(
            "Wrote a new key to {}{where_}\naddress: {}",
            path.display(),
            report.address
        )
    });
    Ok(EXIT_OK)
}

fn pubkey(out: Output, file: &Path) -> anyhow::Result<u8> {
    let keypair = keyfile::read_keypair(file)?;
    let report = KeyReport {
        address: keypair.pubkey().to_address(),
        path: file,
    };
    out.emit(&report, || report.address.clone());
    Ok(EXIT_OK)
}

#[derive(Serialize)]
struct VerifyReport<'a> {
    path: &'a Path,
    expected: String,
    actual: String,
    matches: bool,
}

fn verify(out: Output, file: &Path, address: &str) -> anyhow::Result<u8> {
    let expected: Pubkey = address
        .parse()
        .with_context(|| format!("'{address}' is not an address"))?;
    let actual = keyfile::read_keypair(file)?.pubkey();
    let report = VerifyReport {
        path: file,
        expected: expected.to_address(),
        actual: actual.to_address(),
        matches: expected == actual,
    };
    if report.matches {
        out.emit(&report, || {
            format!(
                "ok: {} holds the key of {}",
                file.display(),
                report.expected
            )
        });
        Ok(EXIT_OK)
    } else {
        if out.json {
            out.emit(&report, String::new);
        }
        eprintln!(
            "error: {} holds {}, not {}",
            file.display(),
            report.actual,
            report.expected
        );
        Ok(EXIT_USER_ERROR)
    }
}
