//! File-system steps the tools need to be crash-safe: synced writes, and replacing a
//! directory as one step.

use std::io;
use std::path::{Path, PathBuf};

/// Writes `bytes` to `path` and syncs the file to disk.
pub fn write_synced(path: &Path, bytes: &[u8]) -> io::Result<()> {
    use std::io::Write;
    let mut f = std::fs::File::create(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

/// Syncs a directory (its entries: renames and creations in it become durable).
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    std::fs::File::open(dir)?.sync_all()
}

/// Puts directory `new` in the place of `target`. When `target` exists the two are
/// exchanged in one atomic step (Linux `renameat2(RENAME_EXCHANGE)`), so a crash leaves
/// either the old or the new directory in place, never neither; where the system cannot
/// exchange, the old one is first renamed to `aside`. Returns where the old directory now
/// is (`new`'s path after an exchange, or `aside`), for the caller to remove.
pub fn replace_dir(new: &Path, target: &Path, aside: &Path) -> io::Result<Option<PathBuf>> {
    use rustix::fs::{CWD, RenameFlags, renameat_with};
    let parent = target.parent().unwrap_or(Path::new("."));
    if !target.exists() {
        std::fs::rename(new, target)?;
        sync_dir(parent)?;
        return Ok(None);
    }
    if renameat_with(CWD, new, CWD, target, RenameFlags::EXCHANGE).is_ok() {
        sync_dir(parent)?;
        return Ok(Some(new.to_path_buf()));
    }
    std::fs::rename(target, aside)?;
    std::fs::rename(new, target)?;
    sync_dir(parent)?;
    Ok(Some(aside.to_path_buf()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replace_dir_swaps_in_the_new_directory_and_hands_back_the_old() {
        let root = tempfile::tempdir().unwrap();
        let (new, target, aside) = (
            root.path().join("new"),
            root.path().join("target"),
            root.path().join("aside"),
        );
        std::fs::create_dir(&new).unwrap();
        std::fs::write(new.join("n"), b"new").unwrap();
        // No target yet: a plain rename.
        assert_eq!(replace_dir(&new, &target, &aside).unwrap(), None);
        assert!(target.join("n").exists() && !new.exists());
        // A target: exchanged (or moved aside), the old one handed back.
        std::fs::create_dir(&new).unwrap();
        std::fs::write(new.join("m"), b"newer").unwrap();
        let old = replace_dir(&new, &target, &aside).unwrap().unwrap();
        assert!(target.join("m").exists());
        assert!(old.join("n").exists());
    }
}
