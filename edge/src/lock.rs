//! The data directory lock: a running server holds an exclusive advisory lock
//! (`flock`) on `herald.lock` in its data directory for as long as the process lives;
//! the kernel releases it when the process exits, however it exits. Commands that must
//! not run beside a server (`herald restore`) take the same lock without waiting and
//! refuse when it is held. The file holds the owner's process id, for the message.

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use rustix::fs::{flock, FlockOperation};

use crate::error::EdgeError;

/// The lock file's name in the data directory.
pub const LOCK_FILE: &str = "herald.lock";

/// A held data directory lock; dropping it releases the lock.
#[derive(Debug)]
pub struct DataDirLock {
    _file: File,
    pub path: PathBuf,
}

/// Take the lock of `data_dir` (created if missing) without waiting. `Locked` when
/// another process — or another open of the file in this process — holds it.
pub fn try_lock(data_dir: &Path) -> Result<DataDirLock, EdgeError> {
    std::fs::create_dir_all(data_dir).map_err(|source| EdgeError::DataDir {
        path: data_dir.to_path_buf(),
        source,
    })?;
    let path = data_dir.join(LOCK_FILE);
    let file_err = |source| EdgeError::File {
        path: path.clone(),
        source,
    };
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(file_err)?;
    match flock(&file, FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => {}
        Err(e) if e == rustix::io::Errno::WOULDBLOCK => {
            let mut owner = String::new();
            let _ = file.read_to_string(&mut owner);
            let owner = owner.trim();
            let holder = if owner.is_empty() {
                String::new()
            } else {
                format!(" by process {owner}")
            };
            return Err(EdgeError::Locked { path, holder });
        }
        Err(e) => return Err(file_err(e.into())),
    }
    // Ours now: record who holds it.
    let _ = file.set_len(0);
    let _ = file.rewind();
    let _ = writeln!(file, "{}", std::process::id());
    Ok(DataDirLock { _file: file, path })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_is_refused_until_the_first_is_dropped() {
        let dir = std::env::temp_dir().join(format!("herald-lock-{}", rand::random::<u64>()));
        let first = try_lock(&dir).expect("first");
        let err = try_lock(&dir).expect_err("held").to_string();
        assert!(
            err.contains("herald.lock") && err.contains("running"),
            "{err}"
        );
        assert!(err.contains(&std::process::id().to_string()), "{err}");
        drop(first);
        drop(try_lock(&dir).expect("free again"));
        let _ = std::fs::remove_dir_all(dir);
    }
}
