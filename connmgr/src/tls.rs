//! TLS server configuration: certificates picked per connection from a directory laid out as
//! Pushpin's (reference §3.11), reloaded when their files change.
//!
//! # Layout
//!
//! `--tls-certs-dir` (the runner passes `<config dir>/runner/certs`) holds PEM pairs
//! `<name>.crt` (the chain, leaf first) and `<name>.key`. For a handshake whose SNI name is
//! `www.example.com` the [`CertStore`] tries, in order:
//!
//! 1. `www.example.com.crt` / `.key` (exact name, lowercased),
//! 2. `_.example.com.crt` / `.key` (one-level wildcard: only the first label is replaced),
//! 3. `default_<port>.crt` / `.key`, the listener's default (Pushpin's runner names it so).
//!
//! A handshake without SNI goes straight to the default. When nothing matches, rustls fails the
//! handshake (alert `access_denied`; Pushpin 1.36 sends `unrecognized_name`), which closes only
//! that connection.
//!
//! # Reloading
//!
//! A loaded name's files are looked at again when its cached entry is older than [`RECHECK`]:
//! one `stat` per file, and the files are read and parsed again only if the modification time,
//! size or inode changed. So replacing a certificate takes effect for new handshakes within
//! about a second, with no signal, and a served name costs at most a few `stat` calls per second.
//! A name without a certificate is looked at on every handshake that needs it (two `stat`
//! calls, far cheaper than the handshake), so a certificate added for it is used at once.
//! As in Pushpin (observed with 1.36), a certificate that was loaded stays in use when its files
//! disappear or are replaced by something unreadable; the problem is logged once per change.
//!
//! # Logging
//!
//! SNI names are chosen by clients, so a missing file is logged at debug level only, and a
//! handshake that finds no certificate at all is logged as a warning at most once per
//! [`WARN_INTERVAL`]. Files that exist but cannot be used (bad PEM, key not matching the
//! certificate, unsupported key type) are warned about once per change of the files.

use std::collections::HashMap;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::ServerConfig;
use tracing::{debug, info, warn};

/// How long a looked-up name is trusted before its files are checked again.
pub const RECHECK: Duration = Duration::from_secs(1);

/// Least time between two "no certificate" warnings.
pub const WARN_INTERVAL: Duration = Duration::from_secs(10);

/// Largest certificate or key file read (a chain of a few certificates is a few KiB).
const MAX_FILE_SIZE: u64 = 1 << 20;

/// Most names cached; beyond it entries for names without a certificate are dropped first, so
/// clients sending random SNI names cannot grow the cache without bound.
const MAX_CACHED_NAMES: usize = 4096;

/// Why a certificate pair could not be used.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// A file is larger than anything sensible.
    #[error("{path} is larger than {MAX_FILE_SIZE} bytes")]
    TooLarge {
        /// The file.
        path: PathBuf,
    },
    /// No certificate (or key) in the PEM text.
    #[error("{path}: {what}")]
    Pem {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        what: String,
    },
    /// rustls refused the pair (unsupported key, key not matching the certificate).
    #[error("{crt} / {key}: {source}")]
    Pair {
        /// The certificate file.
        crt: PathBuf,
        /// The key file.
        key: PathBuf,
        /// The error.
        source: rustls::Error,
    },
}

/// What identifies a version of a file without reading it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Stamp {
    modified: Option<SystemTime>,
    len: u64,
    inode: u64,
}

impl Stamp {
    fn of(path: &Path) -> Option<Self> {
        use std::os::unix::fs::MetadataExt;
        let meta = fs::metadata(path).ok()?;
        Some(Self {
            modified: meta.modified().ok(),
            len: meta.len(),
            inode: meta.ino(),
        })
    }
}

/// One name's cache entry.
#[derive(Debug)]
struct Entry {
    /// The stamps of `<name>.crt` and `<name>.key` when last looked at (`None`: missing).
    stamps: (Option<Stamp>, Option<Stamp>),
    /// The last pair loaded successfully (kept when the files go away or break).
    key: Option<Arc<CertifiedKey>>,
    /// When the files were last looked at.
    checked: Instant,
}

/// The certificates directory with its cache, shared by every TLS listener and worker.
#[derive(Debug)]
pub struct CertStore {
    dir: PathBuf,
    provider: Arc<CryptoProvider>,
    cache: Mutex<HashMap<String, Entry>>,
    last_warning: Mutex<Option<Instant>>,
}

impl CertStore {
    /// A store over `dir` (nothing is read until a name is looked up).
    pub fn new(dir: PathBuf, provider: Arc<CryptoProvider>) -> Self {
        Self {
            dir,
            provider,
            cache: Mutex::new(HashMap::new()),
            last_warning: Mutex::new(None),
        }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The pair for `name` (a file stem such as `www.example.com`, `_.example.com` or
    /// `default_443`), loading or reloading it when due.
    pub fn get(&self, name: &str) -> Option<Arc<CertifiedKey>> {
        let now = Instant::now();
        let previous = {
            let cache = lock(&self.cache);
            match cache.get(name) {
                Some(entry) if entry.key.is_some() && now < entry.checked + RECHECK => {
                    return entry.key.clone()
                }
                Some(entry) => Some((entry.stamps, entry.key.clone())),
                None => None,
            }
        };
        let (crt, key) = self.paths(name);
        let stamps = (Stamp::of(&crt), Stamp::of(&key));
        let (old_stamps, old_key) = match previous {
            Some((stamps, key)) => (Some(stamps), key),
            None => (None, None),
        };
        let loaded = if old_stamps == Some(stamps) {
            old_key
        } else {
            match stamps {
                (Some(_), Some(_)) => match self.load(&crt, &key) {
                    Ok(pair) => {
                        if old_key.is_some() {
                            info!(name, dir = %self.dir.display(), "TLS certificate reloaded");
                        } else {
                            debug!(name, dir = %self.dir.display(), "TLS certificate loaded");
                        }
                        Some(Arc::new(pair))
                    }
                    Err(e) => {
                        warn!(error = %e, "unusable TLS certificate{}", keeping(&old_key));
                        old_key
                    }
                },
                _ if old_key.is_some() => {
                    warn!(
                        crt = %crt.display(),
                        "TLS certificate files are gone; keeping the one loaded before"
                    );
                    old_key
                }
                (None, _) => {
                    debug!(path = %crt.display(), "no such TLS certificate");
                    None
                }
                (Some(_), None) => {
                    warn!(
                        crt = %crt.display(),
                        key = %key.display(),
                        "TLS certificate without its key file; not used"
                    );
                    None
                }
            }
        };
        let mut cache = lock(&self.cache);
        if cache.len() >= MAX_CACHED_NAMES && !cache.contains_key(name) {
            cache.retain(|_, e| e.key.is_some());
        }
        if cache.len() < MAX_CACHED_NAMES || loaded.is_some() {
            cache.insert(
                name.to_string(),
                Entry {
                    stamps,
                    key: loaded.clone(),
                    checked: now,
                },
            );
        }
        loaded
    }

    /// The pair for a handshake with SNI `server_name` on a listener whose default is
    /// `default_name` (see the module docs for the order).
    pub fn resolve(
        &self,
        server_name: Option<&str>,
        default_name: &str,
    ) -> Option<Arc<CertifiedKey>> {
        let name = server_name.and_then(normalize);
        if let Some(name) = name.as_deref() {
            if let Some(pair) = self.get(name) {
                return Some(pair);
            }
            if let Some((_, parent)) = name.split_once('.') {
                if parent.contains('.') {
                    if let Some(pair) = self.get(&format!("_.{parent}")) {
                        return Some(pair);
                    }
                }
            }
        }
        let found = self.get(default_name);
        if found.is_none() {
            self.warn_missing(name.as_deref(), default_name);
        }
        found
    }

    fn warn_missing(&self, name: Option<&str>, default_name: &str) {
        let now = Instant::now();
        let mut last = lock(&self.last_warning);
        if last.is_some_and(|t| now < t + WARN_INTERVAL) {
            return;
        }
        *last = Some(now);
        warn!(
            sni = name.unwrap_or("(none)"),
            dir = %self.dir.display(),
            "no TLS certificate for a handshake: no file for its name nor {default_name}.crt/.key; handshake refused"
        );
    }

    fn paths(&self, name: &str) -> (PathBuf, PathBuf) {
        (
            self.dir.join(format!("{name}.crt")),
            self.dir.join(format!("{name}.key")),
        )
    }

    fn load(&self, crt: &Path, key: &Path) -> Result<CertifiedKey, CertError> {
        let crt_pem = read_limited(crt)?;
        let key_pem = read_limited(key)?;
        let chain = CertificateDer::pem_slice_iter(&crt_pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| CertError::Pem {
                path: crt.to_path_buf(),
                what: e.to_string(),
            })?;
        if chain.is_empty() {
            return Err(CertError::Pem {
                path: crt.to_path_buf(),
                what: "no CERTIFICATE in the file".into(),
            });
        }
        let private = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| CertError::Pem {
            path: key.to_path_buf(),
            what: format!("no usable private key: {e}"),
        })?;
        CertifiedKey::from_der(chain, private, &self.provider).map_err(|source| CertError::Pair {
            crt: crt.to_path_buf(),
            key: key.to_path_buf(),
            source,
        })
    }
}

fn keeping(old: &Option<Arc<CertifiedKey>>) -> &'static str {
    if old.is_some() {
        "; keeping the one loaded before"
    } else {
        ""
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock cannot leave the cache inconsistent (every update is one
    // insert), so a poisoned lock is simply taken over.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn read_limited(path: &Path) -> Result<Vec<u8>, CertError> {
    let fail = |source| CertError::Read {
        path: path.to_path_buf(),
        source,
    };
    let file = fs::File::open(path).map_err(fail)?;
    let mut out = Vec::new();
    file.take(MAX_FILE_SIZE + 1)
        .read_to_end(&mut out)
        .map_err(fail)?;
    if out.len() as u64 > MAX_FILE_SIZE {
        return Err(CertError::TooLarge {
            path: path.to_path_buf(),
        });
    }
    Ok(out)
}

/// The SNI name as a file stem: lowercased, and only if it is a plain DNS name (rustls has
/// already checked that; this also keeps path separators and `..` out of file names).
fn normalize(name: &str) -> Option<String> {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    let ok = !name.is_empty()
        && name.len() <= 253
        && !name.starts_with('.')
        && !name.contains("..")
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_');
    ok.then_some(name)
}

/// The resolver of one TLS listener: the shared store plus this listener's default name.
#[derive(Debug)]
struct ListenerResolver {
    store: Arc<CertStore>,
    default_name: String,
}

impl ResolvesServerCert for ListenerResolver {
    fn resolve(&self, client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.store
            .resolve(client_hello.server_name(), &self.default_name)
    }
}

/// The default certificate name of a TLS listener on `port`, as Pushpin's runner names it.
pub fn default_cert_name(port: u16) -> String {
    format!("default_{port}")
}

/// The crypto provider every TLS listener uses (ring).
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The server configuration of a TLS listener on `port`: TLS 1.2 and 1.3, no client
/// certificates, no ALPN (HTTP/1.x only, like Pushpin), certificates from `store`.
pub fn server_config(store: Arc<CertStore>, port: u16) -> Result<Arc<ServerConfig>, rustls::Error> {
    let provider = store.provider.clone();
    let resolver = ListenerResolver {
        store,
        default_name: default_cert_name(port),
    };
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(resolver));
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_pair(dir: &Path, name: &str, cn: &str) {
        let key = rcgen::KeyPair::generate().unwrap();
        let params = rcgen::CertificateParams::new(vec![cn.to_string()]).unwrap();
        let cert = params.self_signed(&key).unwrap();
        fs::write(dir.join(format!("{name}.crt")), cert.pem()).unwrap();
        fs::write(dir.join(format!("{name}.key")), key.serialize_pem()).unwrap();
    }

    fn leaf(pair: &CertifiedKey) -> Vec<u8> {
        pair.end_entity_cert().unwrap().to_vec()
    }

    fn temp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("hf-tls-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn names_are_normalized_or_refused() {
        assert_eq!(
            normalize("WWW.Example.COM.").as_deref(),
            Some("www.example.com")
        );
        for bad in ["", ".x", "a..b", "a/b", "../etc", "x y"] {
            assert_eq!(normalize(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn lookup_order_wildcard_default_and_missing() {
        let dir = temp("order");
        write_pair(&dir, "www.example.com", "www.example.com");
        write_pair(&dir, "_.example.org", "*.example.org");
        write_pair(&dir, "default_443", "default");
        let store = CertStore::new(dir.clone(), provider());
        let exact = store.get("www.example.com").unwrap();
        let wild = store.get("_.example.org").unwrap();
        let default = store.get("default_443").unwrap();
        let pick = |sni: Option<&str>| store.resolve(sni, "default_443").map(|k| leaf(&k));
        assert_eq!(pick(Some("WWW.example.com")), Some(leaf(&exact)));
        assert_eq!(pick(Some("a.example.org")), Some(leaf(&wild)));
        assert_eq!(
            pick(Some("a.b.example.org")),
            Some(leaf(&default)),
            "one level only"
        );
        assert_eq!(pick(Some("example.org")), Some(leaf(&default)));
        assert_eq!(pick(None), Some(leaf(&default)));
        assert!(store.resolve(Some("x.net"), "default_8443").is_none());
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn bad_files_are_refused_and_a_loaded_pair_is_kept() {
        let dir = temp("bad");
        fs::write(dir.join("bad.crt"), "not pem").unwrap();
        fs::write(dir.join("bad.key"), "not pem").unwrap();
        let store = CertStore::new(dir.clone(), provider());
        assert!(store.get("bad").is_none());
        let err = store
            .load(&dir.join("bad.crt"), &dir.join("bad.key"))
            .unwrap_err();
        assert!(err.to_string().contains("bad.crt"), "{err}");

        // A key that does not belong to the certificate.
        write_pair(&dir, "a", "a");
        write_pair(&dir, "b", "b");
        let err = store
            .load(&dir.join("a.crt"), &dir.join("b.key"))
            .unwrap_err();
        assert!(matches!(err, CertError::Pair { .. }), "{err}");

        let first = store.get("a").unwrap();
        fs::remove_file(dir.join("a.crt")).unwrap();
        std::thread::sleep(RECHECK + Duration::from_millis(50));
        assert_eq!(
            leaf(&store.get("a").unwrap()),
            leaf(&first),
            "kept when gone"
        );
        let _ = fs::remove_dir_all(&dir);
    }
}
