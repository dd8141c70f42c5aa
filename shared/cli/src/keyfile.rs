//! Key files on disk: read with a size limit and clear errors; written with mode 0600,
//! atomically (a crash leaves the old file or the new one, never half of one), and never
//! over an existing file unless the caller says so.

use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use bb_core::Keypair;
use bb_core::keys::MAX_KEY_FILE_BYTES;

/// The default key path: `~/.config/bb/id.json`.
pub fn default_key_path() -> anyhow::Result<PathBuf> {
    let home = std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .context("HOME is not set; give a path with -o")?;
    Ok(PathBuf::from(home)
        .join(".config")
        .join("bb")
        .join("id.json"))
}

/// Reads and checks a key file.
pub fn read_keypair(path: &Path) -> anyhow::Result<Keypair> {
    let file = fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut bytes = Vec::new();
    // Read one byte past the limit to tell "too large" from "exactly at the limit".
    file.take(MAX_KEY_FILE_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("cannot read {}", path.display()))?;
    Keypair::from_key_file_json(&bytes).with_context(|| format!("{}", path.display()))
}

/// What to do when the target exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overwrite {
    Refuse,
    Allow,
}

/// Writes a key file with mode 0600, creating parent directories (0700) as needed.
pub fn write_keypair(path: &Path, keypair: &Keypair, overwrite: Overwrite) -> anyhow::Result<()> {
    if overwrite == Overwrite::Refuse && path.exists() {
        bail!(
            "{} already exists; pass --force to overwrite it",
            path.display()
        );
    }
    if path.is_dir() {
        bail!("{} is a directory", path.display());
    }
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    create_private_dir(&dir)?;
    let file_name = path
        .file_name()
        .with_context(|| format!("{} has no file name", path.display()))?;
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        file_name.to_string_lossy(),
        std::process::id()
    ));
    let result = write_private(&tmp, keypair.to_key_file_json().as_bytes()).and_then(|()| {
        if overwrite == Overwrite::Refuse {
            // A hard link fails if the target appeared meanwhile: no race overwrites it.
            fs::hard_link(&tmp, path).map_err(|e| {
                if e.kind() == std::io::ErrorKind::AlreadyExists {
                    anyhow::anyhow!(
                        "{} already exists; pass --force to overwrite it",
                        path.display()
                    )
                } else {
                    anyhow::Error::new(e).context(format!("cannot write {}", path.display()))
                }
            })
        } else {
            fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))
        }
    });
    let _ = fs::remove_file(&tmp);
    result?;
    // Make the new directory entry durable too.
    if let Ok(d) = fs::File::open(&dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut f = options
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .with_context(|| format!("cannot write {}", path.display()))
}

fn create_private_dir(dir: &Path) -> anyhow::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder
        .create(dir)
        .with_context(|| format!("cannot create directory {}", dir.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_key_reads_back_with_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("id.json");
        let k = Keypair::generate();
        write_keypair(&path, &k, Overwrite::Refuse).unwrap();
        assert_eq!(read_keypair(&path).unwrap().pubkey(), k.pubkey());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
    }

    #[test]
    fn existing_key_is_never_overwritten_without_force() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("id.json");
        let first = Keypair::generate();
        write_keypair(&path, &first, Overwrite::Refuse).unwrap();
        let err = write_keypair(&path, &Keypair::generate(), Overwrite::Refuse).unwrap_err();
        assert!(err.to_string().contains("--force"), "{err}");
        assert_eq!(read_keypair(&path).unwrap().pubkey(), first.pubkey());
        let second = Keypair::generate();
        write_keypair(&path, &second, Overwrite::Allow).unwrap();
        assert_eq!(read_keypair(&path).unwrap().pubkey(), second.pubkey());
        // No temporary files left behind.
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn unreadable_files_give_one_line_errors() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.json");
        let err = read_keypair(&missing).unwrap_err();
        assert!(crate::one_line(&err).contains("cannot read"));
        let big = dir.path().join("big.json");
        fs::write(&big, vec![b' '; 10_000]).unwrap();
        assert!(crate::one_line(&read_keypair(&big).unwrap_err()).contains("bytes"));
    }
}
