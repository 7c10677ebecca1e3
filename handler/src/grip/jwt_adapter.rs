//! Loading `sig_key`/`upstream_key` strings with proto's `jwt` module: `file:` keys are read
//! here (proto does no I/O), relative to the config or routes directory.

use std::path::Path;
use std::sync::Arc;

use holdfast_proto::jwt::{parse_key_config, KeyConfig, SigningKey, VerifyingKey};

/// Why a key could not be loaded (for a warning).
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The key file could not be read.
    #[error("cannot read key file {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The key material is invalid.
    #[error("invalid key: {0}")]
    Invalid(#[from] holdfast_proto::jwt::JwtError),
}

fn read(path: &str, dir: &Path) -> Result<Vec<u8>, KeyError> {
    let full = dir.join(path);
    std::fs::read(&full).map_err(|source| KeyError::Read {
        path: full.display().to_string(),
        source,
    })
}

/// A signing key from a key string.
pub fn signing_key(spec: &str, dir: &Path) -> Result<Arc<SigningKey>, KeyError> {
    Ok(Arc::new(match parse_key_config(spec) {
        KeyConfig::Secret(secret) => SigningKey::from_secret(&secret),
        KeyConfig::File(path) => SigningKey::from_file_contents(&read(path, dir)?)?,
    }))
}

/// A verifying key from a key string.
pub fn verifying_key(spec: &str, dir: &Path) -> Result<Arc<VerifyingKey>, KeyError> {
    Ok(Arc::new(match parse_key_config(spec) {
        KeyConfig::Secret(secret) => VerifyingKey::from_secret(&secret),
        KeyConfig::File(path) => VerifyingKey::from_file_contents(&read(path, dir)?)?,
    }))
}
