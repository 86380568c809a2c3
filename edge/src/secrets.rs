//! Secrets kept in the data directory: generated on first start (32 random bytes, hex,
//! in a file only the owner can read), read back on every later start.

use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use crate::error::EdgeError;

/// The secret in `path` (trimmed), created with 32 random bytes in hex when missing.
pub fn load_or_create(path: &Path) -> Result<String, EdgeError> {
    let err = |source| EdgeError::DataDir {
        path: path.to_path_buf(),
        source,
    };
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(text.trim().to_string()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let secret = hex::encode(rand::random::<[u8; 32]>());
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
                .map_err(err)?;
            writeln!(file, "{secret}").map_err(err)?;
            Ok(secret)
        }
        Err(e) => Err(err(e)),
    }
}

/// A 32-byte key from `path` (see [`load_or_create`]).
pub fn load_or_create_key(path: &Path) -> Result<[u8; 32], EdgeError> {
    let text = load_or_create(path)?;
    let mut key = [0u8; 32];
    hex::decode_to_slice(&text, &mut key).map_err(|e| EdgeError::DataDir {
        path: path.to_path_buf(),
        source: std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("expected 64 hexadecimal characters: {e}"),
        ),
    })?;
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_survive_a_restart_and_are_private() {
        let dir = std::env::temp_dir().join(format!("herald-secret-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("k");
        let first = load_or_create_key(&path).expect("create");
        assert_eq!(load_or_create_key(&path).expect("reuse"), first);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
        assert_eq!(mode & 0o077, 0);
        std::fs::write(&path, "zz").expect("write");
        assert!(load_or_create_key(&path).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
