//! The output folder of a training run, which belongs to one run at a
//! time: [`OutDir::claim`] holds an exclusive advisory lock on
//! [`LOCK_FILE`] in it until the claim is dropped, with the holder's pid
//! written inside so that a second run can say whom it waits for.
//!
//! Two runs into one folder would overwrite each other's checkpoint, and the
//! second one's closing evaluation would score the first one's model. The
//! lock is `std::fs::File::try_lock` (flock on Unix, LockFileEx on
//! Windows): no locking crate is available offline, and std's needs no
//! unsafe code. The kernel drops the lock when the process dies, so a
//! killed run never leaves a folder locked.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The lock file in an output folder.
pub const LOCK_FILE: &str = ".ebmkit.lock";

/// A claimed output folder; the lock is released when this is dropped.
#[derive(Debug)]
pub struct OutDir {
    pub path: PathBuf,
    _lock: File,
}

impl OutDir {
    /// Creates the folder `path` if need be and locks it for this process,
    /// or fails at once when another process holds it (naming its pid), when
    /// `path` is a file, or when the folder cannot be created. Then removes
    /// the temporary files that killed runs left in it (and in `layers/`).
    pub fn claim(path: &Path) -> Result<OutDir> {
        if path.exists() && !path.is_dir() {
            return Err(Error::io(
                path,
                std::io::Error::new(
                    std::io::ErrorKind::NotADirectory,
                    "the output folder is a file, not a directory",
                ),
            ));
        }
        std::fs::create_dir_all(path).map_err(|e| Error::io(path, e))?;
        let lock_path = path.join(LOCK_FILE);
        // Not truncated on open: the holder's pid must survive until the
        // lock says whether there is a holder.
        let mut f = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock_path)
            .map_err(|e| Error::io(&lock_path, e))?;
        match f.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut pid = String::new();
                let _ = f.read_to_string(&mut pid);
                let pid = match pid.trim() {
                    "" => "unknown".to_string(),
                    p => p.to_string(),
                };
                return Err(Error::io(
                    path,
                    std::io::Error::new(
                        std::io::ErrorKind::WouldBlock,
                        format!(
                            "the output folder is in use by another ebmkit run (pid {pid}, \
                             which holds {LOCK_FILE}); wait for it or choose another --out"
                        ),
                    ),
                ));
            }
            Err(TryLockError::Error(e)) => return Err(Error::io(&lock_path, e)),
        }
        let write_pid = |f: &mut File| -> std::io::Result<()> {
            f.set_len(0)?;
            f.rewind()?;
            writeln!(f, "{}", std::process::id())?;
            f.flush()
        };
        write_pid(&mut f).map_err(|e| Error::io(&lock_path, e))?;
        remove_stale_temporaries(path);
        remove_stale_temporaries(&path.join("layers"));
        Ok(OutDir {
            path: path.to_path_buf(),
            _lock: f,
        })
    }
}

/// Removes `.NAME.tmp-PID` files (what [`super::checkpoint::write_atomic`]
/// writes before its rename) whose process is gone: a run killed in the
/// middle of a checkpoint write leaves one behind. Best effort: a file that
/// cannot be removed stays, as it did before.
fn remove_stale_temporaries(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = temporary_pid(&name.to_string_lossy()) else {
            continue;
        };
        if pid != std::process::id() && !alive(pid) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// The writer's pid of a temporary checkpoint file's name.
fn temporary_pid(name: &str) -> Option<u32> {
    let (head, pid) = name.rsplit_once(".tmp-")?;
    if !head.starts_with('.') || head.len() < 2 {
        return None;
    }
    pid.parse().ok()
}

/// Whether process `pid` exists. Where that cannot be told (no /proc), every
/// process counts as alive, so that nothing is removed.
fn alive(pid: u32) -> bool {
    let proc = Path::new("/proc");
    !proc.join("self").exists() || proc.join(pid.to_string()).exists()
}

#[cfg(test)]
mod tests {
    use super::temporary_pid;

    #[test]
    fn temporary_names() {
        assert_eq!(temporary_pid(".model.safetensors.tmp-123"), Some(123));
        assert_eq!(temporary_pid(".layer-0.safetensors.tmp-7"), Some(7));
        assert_eq!(temporary_pid("model.safetensors.tmp-123"), None);
        assert_eq!(temporary_pid(".model.safetensors.tmp-x"), None);
        assert_eq!(temporary_pid("curves.csv"), None);
    }
}
