//! `Grip-Sig` and `Grip-Feature` on proxied requests, and upstream trust (reference §4.10).
//!
//! Every request to a route with GRIP enabled (not `no_grip`) from an untrusted client gets a
//! fresh `Grip-Sig` JWT (proto's `jwt::grip_sig`: `iss` from `sig_iss`, `exp` one hour ahead)
//! when a key is configured (global `sig_key` or route `sig_key=`), replacing any the client
//! sent, plus `Grip-Feature`. A client whose own `Grip-Sig` verifies with `upstream_key` is
//! trusted. Keys are loaded once (route keys on first use, then cached by their string).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use holdfast_proto::internal::Header;
use holdfast_proto::jwt::{grip_sig, verify_grip_sig, JwtError, SigningKey, VerifyingKey};
use holdfast_proto::routes::RouteProps;

use super::jwt_adapter::{signing_key, verifying_key};

/// The features Pushpin 1.36 advertises.
pub const GRIP_FEATURE: &str = "status, session, link:next, filter:skip-self, filter:skip-users, filter:require-sub, filter:build-id, filter:var-subst";

/// Route keys remembered at most (a routes file has few distinct keys).
const ROUTE_KEY_CACHE: usize = 256;

/// Signing configuration.
#[derive(Default)]
pub struct Signer {
    iss: String,
    key: Option<Arc<SigningKey>>,
    upstream: Option<Arc<VerifyingKey>>,
    /// Base directory for route `sig_key=file:` paths (the routes file's directory).
    routes_dir: PathBuf,
    route_keys: Mutex<HashMap<String, Option<Arc<SigningKey>>>>,
    /// The last token signed, handed to every request of the same second with the same key and
    /// issuer: the claims are only `iss` and `exp` (the second plus one hour), so such tokens
    /// are byte-identical, and signing each one (an HMAC or ECDSA signature, JSON and three
    /// base64 encodings) was 3% of the handler's time under plain proxy load.
    last: Mutex<Option<LastSig>>,
}

/// See [`Signer::last`].
struct LastSig {
    key: Arc<SigningKey>,
    iss: String,
    now: u64,
    token: Bytes,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("iss", &self.iss)
            .field("key", &self.key.is_some())
            .field("upstream", &self.upstream.is_some())
            .finish()
    }
}

impl Signer {
    /// From the `[proxy]` keys; `config_dir` resolves `file:` keys of the config, `routes_dir`
    /// those of routes. Unusable keys are logged and ignored.
    pub fn new(
        sig_iss: &str,
        sig_key: &str,
        upstream_key: &str,
        config_dir: &Path,
        routes_dir: &Path,
    ) -> Self {
        let key = (!sig_key.is_empty())
            .then(|| signing_key(sig_key, config_dir))
            .and_then(|r| {
                r.map_err(|e| tracing::warn!("sig_key: {e}; not signing"))
                    .ok()
            });
        let upstream = (!upstream_key.is_empty())
            .then(|| verifying_key(upstream_key, config_dir))
            .and_then(|r| {
                r.map_err(|e| tracing::warn!("upstream_key: {e}; ignored"))
                    .ok()
            });
        Self {
            iss: sig_iss.to_string(),
            key,
            upstream,
            routes_dir: routes_dir.to_path_buf(),
            route_keys: Mutex::default(),
            last: Mutex::default(),
        }
    }

    fn route_key(&self, spec: &str) -> Option<Arc<SigningKey>> {
        let mut cache = self
            .route_keys
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(key) = cache.get(spec) {
            return key.clone();
        }
        let key = signing_key(spec, &self.routes_dir)
            .map_err(|e| tracing::warn!("route sig_key: {e}; using the global key"))
            .ok();
        if cache.len() >= ROUTE_KEY_CACHE {
            cache.clear();
        }
        cache.insert(spec.to_string(), key.clone());
        key
    }

    /// `Grip-Sig` (when a key applies) and `Grip-Feature` for a request on `route`.
    pub fn grip_headers(&self, route: &RouteProps) -> Vec<Header> {
        let mut out = Vec::with_capacity(2);
        let route_key = route
            .sig_key
            .as_deref()
            .filter(|k| !k.is_empty())
            .and_then(|spec| self.route_key(spec));
        let key = route_key.or_else(|| self.key.clone());
        let iss = route.sig_iss.as_deref().unwrap_or(&self.iss);
        if let Some(key) = key {
            match self.token(key, iss, now_secs()) {
                Ok(token) => out.push(Header("Grip-Sig".into(), token)),
                Err(err) => tracing::warn!("cannot sign request: {err}"),
            }
        }
        out.push(Header::new("Grip-Feature", GRIP_FEATURE));
        out
    }

    /// A `Grip-Sig` token for `iss` at `now`: the last one when it was made with the same key,
    /// issuer and second, else a fresh one (which then becomes the last).
    fn token(&self, key: Arc<SigningKey>, iss: &str, now: u64) -> Result<Bytes, JwtError> {
        let mut last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(l) = last.as_ref() {
            if l.now == now && Arc::ptr_eq(&l.key, &key) && l.iss == iss {
                return Ok(l.token.clone());
            }
        }
        let token = Bytes::from(grip_sig(iss, &key, now)?);
        *last = Some(LastSig {
            key,
            iss: iss.to_string(),
            now,
            token: token.clone(),
        });
        Ok(token)
    }

    /// True if the client's `Grip-Sig` verifies with `upstream_key` and has not expired.
    pub fn is_trusted(&self, headers: &[Header]) -> bool {
        let Some(key) = &self.upstream else {
            return false;
        };
        headers
            .iter()
            .find(|h| h.is("Grip-Sig"))
            .and_then(|h| std::str::from_utf8(&h.1).ok())
            .is_some_and(|token| verify_grip_sig(token.trim(), key, now_secs()).is_ok())
    }
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_with_global_or_route_key_and_trusts_upstream() {
        let dir = std::env::temp_dir();
        let signer = Signer::new("pushpin", "changeme", "upkey", &dir, &dir);
        let props = RouteProps::default();
        let headers = signer.grip_headers(&props);
        assert_eq!(headers.len(), 2);
        assert!(headers[0].is("Grip-Sig"));
        assert_eq!(headers[1].1.as_ref(), GRIP_FEATURE.as_bytes());
        let verifying = VerifyingKey::from_secret(b"changeme");
        let token = std::str::from_utf8(&headers[0].1).unwrap();
        let claims = verify_grip_sig(token, &verifying, now_secs()).unwrap();
        assert_eq!(claims["iss"], "pushpin");

        let route = RouteProps {
            sig_iss: Some("other".into()),
            sig_key: Some("base64:cm91dGVrZXk=".into()),
            ..RouteProps::default()
        };
        let headers = signer.grip_headers(&route);
        let token = std::str::from_utf8(&headers[0].1).unwrap();
        let claims =
            verify_grip_sig(token, &VerifyingKey::from_secret(b"routekey"), now_secs()).unwrap();
        assert_eq!(claims["iss"], "other");

        let upstream = Signer::new("up", "upkey", "", &dir, &dir);
        let sig = upstream.grip_headers(&props).remove(0);
        assert!(signer.is_trusted(&[sig]));
        assert!(!signer.is_trusted(&[Header::new("Grip-Sig", "forged")]));
        assert!(!Signer::default().is_trusted(&[]));
        let unsigned = Signer::new("pushpin", "", "", &dir, &dir);
        assert_eq!(unsigned.grip_headers(&props).len(), 1);
    }

    #[test]
    fn reuses_a_token_only_for_the_same_key_issuer_and_second() {
        let dir = std::env::temp_dir();
        let signer = Signer::new("pushpin", "changeme", "", &dir, &dir);
        let key = signer.key.clone().unwrap();
        let first = signer.token(key.clone(), "pushpin", 1_000).unwrap();
        assert_eq!(signer.token(key.clone(), "pushpin", 1_000).unwrap(), first);
        let later = signer.token(key.clone(), "pushpin", 1_001).unwrap();
        assert_ne!(later, first);
        let verifying = VerifyingKey::from_secret(b"changeme");
        let claims = verify_grip_sig(std::str::from_utf8(&later).unwrap(), &verifying, 1_001);
        assert_eq!(claims.unwrap()["exp"], 1_001 + 3_600);
        let other_iss = signer.token(key, "other", 1_001).unwrap();
        assert_ne!(other_iss, later);
        let other_key = Arc::new(SigningKey::from_secret(b"routekey"));
        let claims = verify_grip_sig(
            std::str::from_utf8(&signer.token(other_key, "other", 1_001).unwrap()).unwrap(),
            &VerifyingKey::from_secret(b"routekey"),
            1_001,
        );
        assert_eq!(claims.unwrap()["iss"], "other");
    }
}
