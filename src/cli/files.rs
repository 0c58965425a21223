//! Files the commands write for the user (`scan --output`, `export`): never the store being
//! read, never through a symbolic link planted inside the output directory, complete or not
//! at all.
//!
//! A file is written under a temporary name in its own folder, created new (`O_EXCL`, which
//! also refuses to follow an existing link at that name) with a name no other process uses
//! (`.<name>.tmp-<pid>-<n>`), and renamed into place once complete. A rename replaces a
//! link at the final name instead of writing through it. Temporary files whose process is gone
//! (a killed export) are removed the next time a command writes into that folder.
//!
//! Identity is by device and inode, never by name: a symbolic link or a hard link to the store
//! is the store.

use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Component, Path, PathBuf};

use anyhow::{bail, Context, Result};

/// Attempts at a fresh temporary name before giving up (each name is random; a clash means
/// someone is planting files).
const TEMP_NAME_ATTEMPTS_MAX: u32 = 16;

/// The device and inode of the file at `path`, following links; `None` when nothing is there
/// (or it cannot be read, which the write itself will then report).
fn file_id(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let metadata = std::fs::metadata(path).ok()?;
    Some((metadata.dev(), metadata.ino()))
}

/// Whether `a` and `b` name one existing file: the same path, through a symbolic link, or a
/// hard link (same device and inode).
pub fn same_file(a: &Path, b: &Path) -> bool {
    match (file_id(a), file_id(b)) {
        (Some(a), Some(b)) => a == b,
        _ => false,
    }
}

/// Fails when `output` is the store file `store` (by path, link or hard link): writing it
/// would destroy the data being read.
pub fn refuse_store(store: &Path, output: &Path, what: &str) -> Result<()> {
    if same_file(store, output) {
        bail!(
            "refusing to write {what} {}: it is the store {} itself (the same file); choose \
             another path",
            super::text::printable(&output.display().to_string()),
            super::text::printable(&store.display().to_string()),
        );
    }
    Ok(())
}

/// Creates `root` (and its parents, as the user named it) and then each folder of
/// `relative` inside it, one component at a time, refusing any that is a symbolic link (or
/// not a folder): nothing is written outside `root` through a link planted inside it.
/// Returns `root` joined with `relative`.
pub fn create_dirs_inside(root: &Path, relative: &Path) -> Result<PathBuf> {
    std::fs::create_dir_all(root).with_context(|| format!("creating {}", root.display()))?;
    let mut dir = root.to_path_buf();
    for component in relative.components() {
        let Component::Normal(name) = component else {
            bail!(
                "{} is not a plain relative path inside {}",
                relative.display(),
                root.display()
            );
        };
        dir.push(name);
        // Twice at most: a folder another process creates between the look and the create
        // is looked at again.
        for attempt in 0..2 {
            match std::fs::symlink_metadata(&dir) {
                Ok(metadata) if metadata.file_type().is_symlink() => bail!(
                    "refusing to write into {}: it is a symbolic link (an export never follows \
                     links inside its directory)",
                    super::text::printable(&dir.display().to_string())
                ),
                Ok(metadata) if metadata.is_dir() => break,
                Ok(_) => bail!(
                    "refusing to write into {}: it is not a directory",
                    super::text::printable(&dir.display().to_string())
                ),
                Err(error) if error.kind() == io::ErrorKind::NotFound => {
                    match std::fs::create_dir(&dir) {
                        Ok(()) => break,
                        Err(error)
                            if error.kind() == io::ErrorKind::AlreadyExists && attempt == 0 => {}
                        Err(error) => {
                            return Err(error)
                                .with_context(|| format!("creating {}", dir.display()))
                        }
                    }
                }
                Err(error) => {
                    return Err(error).with_context(|| format!("reading {}", dir.display()))
                }
            }
        }
    }
    Ok(dir)
}

/// Writes the file `path` through a new temporary file in its folder, renamed into place only
/// when `write` succeeded and the bytes are synced; on error the temporary file is removed and
/// `path` is untouched. Temporary files of dead processes in that folder are removed first.
/// `store` is the store being read: `path` must not be it (checked again just before the
/// rename). Returns what `write` returned.
pub fn write_file_replacing<T>(
    store: &Path,
    path: &Path,
    what: &str,
    write: impl FnOnce(&mut File) -> Result<T>,
) -> Result<T> {
    refuse_store(store, path, what)?;
    let name = path
        .file_name()
        .with_context(|| format!("{what} {} names no file", path.display()))?;
    let dir = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    remove_dead_temp_files(dir);
    let (temp, mut file) = create_temp(dir, &name.to_string_lossy())?;
    let result = (|| -> Result<T> {
        let value = write(&mut file)?;
        file.sync_all()
            .with_context(|| format!("syncing {}", temp.display()))?;
        drop(file);
        refuse_store(store, path, what)?;
        std::fs::rename(&temp, path)
            .with_context(|| format!("renaming {} to {}", temp.display(), path.display()))?;
        Ok(value)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    result
}

/// Creates a new temporary file `.<name>.tmp-<pid>-<n>` in `dir`, never following or
/// truncating anything already there.
fn create_temp(dir: &Path, name: &str) -> Result<(PathBuf, File)> {
    for _ in 0..TEMP_NAME_ATTEMPTS_MAX {
        let unique = runstore::names::random_seed() % 1_000_000_000;
        let temp = dir.join(format!(".{name}.tmp-{}-{unique}", std::process::id()));
        // `create_new` is O_CREAT|O_EXCL: it fails on anything at that name, a symbolic link
        // (even a dangling one) included, so it never writes through a planted link.
        match OpenOptions::new().write(true).create_new(true).open(&temp) {
            Ok(file) => return Ok((temp, file)),
            Err(error) if error.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(error) => {
                return Err(error).with_context(|| format!("creating {}", temp.display()))
            }
        }
    }
    bail!(
        "could not create a temporary file in {}: {TEMP_NAME_ATTEMPTS_MAX} fresh names were \
         all taken",
        dir.display()
    )
}

/// The process id in a temporary file name this module (or an earlier version) made:
/// `.<name>.tmp-<pid>`, `.<name>.tmp-<pid>-<n>` or `.<name>.<pid>.tmp`.
fn temp_owner(file_name: &str) -> Option<u32> {
    let rest = file_name.strip_prefix('.')?;
    if let Some((_, tail)) = rest.rsplit_once(".tmp-") {
        let pid = match tail.split_once('-') {
            Some((pid, n)) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => pid,
            Some(_) => return None,
            None => tail,
        };
        if !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()) {
            return pid.parse().ok();
        }
        return None;
    }
    let stem = rest.strip_suffix(".tmp")?;
    let (_, pid) = stem.rsplit_once('.')?;
    if !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()) {
        pid.parse().ok()
    } else {
        None
    }
}

/// Removes the regular files in `dir` named as temporary files of a process that is gone
/// ([`temp_owner`]). Only where `/proc` tells which processes live (Linux); elsewhere they
/// stay (they never block a write: every temporary name is new). Best effort.
pub fn remove_dead_temp_files(dir: &Path) {
    if !Path::new("/proc/self").exists() {
        return;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(temp_owner) else {
            continue;
        };
        let is_file = entry.file_type().is_ok_and(|kind| kind.is_file());
        if is_file
            && pid != std::process::id()
            && !Path::new("/proc").join(pid.to_string()).exists()
        {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_owner_reads_the_pid_of_every_temporary_name_form() {
        let check = |name: &str, pid: Option<u32>| assert_eq!(temp_owner(name), pid, "{name}");
        check(".runs.parquet.tmp-42", Some(42));
        check(".runs.parquet.tmp-42-123", Some(42));
        check(".out.csv.42.tmp", Some(42));
        check(".out.csv.tmp-42-x", None);
        check("runs.parquet.tmp-42", None);
        check(".notes", None);
        check(".a.tmp-", None);
        check(".a..tmp", None);
    }

    #[test]
    fn create_dirs_inside_refuses_a_link_and_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("out");
        let made = create_dirs_inside(&root, Path::new("a/b")).unwrap();
        assert!(made.is_dir());
        std::os::unix::fs::symlink(dir.path(), root.join("link")).unwrap();
        let error = create_dirs_inside(&root, Path::new("link/c")).unwrap_err();
        assert!(format!("{error:#}").contains("symbolic link"), "{error:#}");
        std::fs::write(root.join("file"), b"").unwrap();
        assert!(create_dirs_inside(&root, Path::new("file/c")).is_err());
        assert!(create_dirs_inside(&root, Path::new("../c")).is_err());
    }
}
