//! `bb-snapshot create` from a running node: the node writes a snapshot of its latest
//! root (or hands over the one it keeps for `--slot`), this tool downloads it (resuming
//! an interrupted download) and verifies every byte before keeping it.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use bb_cli::bar::{Bar as ByteBar, Unit};
use bb_cli::target::{NodeArgs, Target};
use bb_cli::{EXIT_OK, Output};

use crate::bar::Bar;

pub fn create_from_node(
    out: Output,
    args: &NodeArgs,
    slot: Option<u64>,
    output: Option<PathBuf>,
) -> anyhow::Result<u8> {
    let target = Target::resolve(args).map_err(|e| {
        anyhow::anyhow!("{e} (or --ledger DIR to snapshot a stopped node's ledger)")
    })?;
    let node = target.selected.label();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let (path, announced) = runtime.block_on(async {
        let client = target.connect().await?;
        let info = match slot {
            None => client.create_snapshot().await?,
            Some(s) => {
                let kept = client.list_snapshots().await?.snapshots;
                let slots: Vec<String> = kept.iter().map(|k| k.slot.to_string()).collect();
                match kept.into_iter().find(|k| k.slot == s) {
                    Some(k) => k,
                    None => bail!(
                        "{node} keeps no snapshot of slot {s} (it keeps {}); a stopped node's ledger can be snapshotted at any rooted slot with --ledger",
                        if slots.is_empty() { "none".to_string() } else { format!("slots {}", slots.join(", ")) }
                    ),
                }
            }
        };
        if info.file_name.is_empty()
            || info.file_name.contains('/')
            || info.file_name.starts_with('.')
        {
            bail!("{node} names its snapshot {:?}, which is not a file name", info.file_name);
        }
        let path = destination(output.as_deref(), &info.file_name)?;
        let mut bar = ByteBar::new(out, "download", info.size, Unit::Bytes);
        let bar_ref = &mut bar;
        client
            .download_snapshot_file(info.slot, &info.bank_hash, info.size, &path, |n| {
                bar_ref.inc(n as u64);
                std::future::ready(())
            })
            .await
            .map_err(|e| anyhow::anyhow!("{node}: {e}"))?;
        bar.finish();
        Ok((path, info))
    })?;
    let bar = Bar::new(out);
    let verified = bb_snapshots::verify_download(&path, announced.slot, &announced.bank_hash, &bar);
    bar.finish();
    let info = match verified {
        Ok(info) => info,
        Err(bb_snapshots::DownloadRefused::Invalid(e)) => {
            bail!("the snapshot {node} served is not valid (removed): {e}");
        }
        Err(e) => bail!("the snapshot {node} served is not the one it announced (removed): {e}"),
    };
    if let Some(genesis) = target.genesis()
        && genesis.hash() != info.genesis_hash
    {
        let _ = std::fs::remove_file(&path);
        bail!(
            "{node} served a snapshot of another network (genesis {}, expected {}) (removed)",
            info.genesis_hash,
            genesis.hash()
        );
    }
    out.emit(&info, || {
        format!(
            "snapshot of slot {} from {node} written to {}\n{}",
            info.slot,
            info.path.display(),
            crate::describe(&info)
        )
    });
    Ok(EXIT_OK)
}

/// Where the file goes: `-o DIR/` or an existing directory gets the node's file name; any
/// other `-o` is the file itself; no `-o` is the current directory.
fn destination(output: Option<&Path>, file_name: &str) -> anyhow::Result<PathBuf> {
    let Some(out) = output else {
        return Ok(PathBuf::from(file_name));
    };
    let as_dir = out.is_dir() || out.as_os_str().to_string_lossy().ends_with('/');
    if as_dir {
        std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
        return Ok(out.join(file_name));
    }
    if out.exists() {
        bail!("{} exists; pick a new file or a directory", out.display());
    }
    Ok(out.to_path_buf())
}
