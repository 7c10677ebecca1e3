//! `Grip-Sig` JWTs (reference §4.10): signing the requests Holdfast sends to origins, and
//! verifying the `Grip-Sig` of a client that is itself a GRIP proxy (`upstream_key`).
//!
//! Tokens are compact JWS: `base64url(header).base64url(claims).base64url(signature)` without
//! padding, header `{"typ":"JWT","alg":…}`. The algorithm follows the key, as in Pushpin: a
//! secret signs with HS256, a P-256 EC key with ES256, an RSA key with RS256. Grip-Sig claims
//! are `{"exp":<now+3600>,"iss":<sig_iss>}`, keys in that (sorted) order, byte for byte what
//! Pushpin 1.36 sends **[observed 1.36]**.
//!
//! Key configuration strings ([`parse_key_config`]): `base64:<b64>` is a binary secret,
//! `file:<path>` names a file the caller reads (this crate does no I/O) and hands to
//! [`SigningKey::from_file_contents`] / [`VerifyingKey::from_file_contents`] (PEM if it starts
//! with `-----BEGIN`, otherwise a hex-encoded secret), anything else is the UTF-8 secret.
//!
//! PEM support (what `ring` can load): private keys as PKCS#8 (`PRIVATE KEY`, EC P-256 or RSA),
//! SEC1 (`EC PRIVATE KEY`, P-256 with its public key included, as OpenSSL writes it) and PKCS#1
//! (`RSA PRIVATE KEY`, 2048–8192 bits); public keys as SPKI (`PUBLIC KEY`) or PKCS#1
//! (`RSA PUBLIC KEY`). A verifying key may also be given as a private key. Not supported:
//! encrypted PEM, other curves (P-384, Ed25519), RSA keys under 2048 bits.
//!
//! Time never comes from the clock: callers pass `now` in Unix seconds. ES256 and RS256 signing
//! draw randomness from the operating system through `ring` (ECDSA needs a nonce).

use ring::hmac;
use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, KeyPair, RsaKeyPair, UnparsedPublicKey};
use serde_json::{Map, Value};

use crate::grip::base64;

/// Lifetime of a Grip-Sig token.
pub const GRIP_SIG_TTL_SECS: u64 = 3600;

/// A signature algorithm.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Algorithm {
    /// HMAC-SHA256 with a shared secret.
    Hs256,
    /// ECDSA P-256 with SHA-256.
    Es256,
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    Rs256,
}

impl Algorithm {
    /// The JOSE `alg` name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Hs256 => "HS256",
            Self::Es256 => "ES256",
            Self::Rs256 => "RS256",
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        match name {
            "HS256" => Some(Self::Hs256),
            "ES256" => Some(Self::Es256),
            "RS256" => Some(Self::Rs256),
            _ => None,
        }
    }
}

/// What a `sig_key` / `upstream_key` configuration string designates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyConfig<'a> {
    /// A shared secret (`base64:` decoded, or the string's UTF-8 bytes).
    Secret(Vec<u8>),
    /// `file:<path>`: the caller reads the file (relative paths are relative to the config
    /// file's directory) and passes its contents to `from_file_contents`.
    File(&'a str),
}

/// Interprets a key configuration string. `base64:` uses Pushpin's lenient decoding.
pub fn parse_key_config(s: &str) -> KeyConfig<'_> {
    if let Some(path) = s.strip_prefix("file:") {
        KeyConfig::File(path)
    } else if let Some(b64) = s.strip_prefix("base64:") {
        KeyConfig::Secret(base64::decode_lenient(b64.as_bytes()))
    } else {
        KeyConfig::Secret(s.as_bytes().to_vec())
    }
}

/// Why a key could not be loaded or a token not be made or verified.
#[derive(Debug, thiserror::Error)]
pub enum JwtError {
    /// The token's `alg` is not the key's algorithm.
    #[error("token algorithm {found} does not match the key's {expected}")]
    AlgorithmMismatch {
        /// The key's algorithm.
        expected: &'static str,
        /// What the token says.
        found: String,
    },
    /// The signature does not verify.
    #[error("token signature does not verify")]
    BadSignature,
    /// The claims are not a JSON object.
    #[error("token claims are not a JSON object")]
    Claims,
    /// The token has expired (`exp` is not after `now`).
    #[error("token expired at {exp}")]
    Expired {
        /// The token's `exp`.
        exp: i64,
    },
    /// The token header is not a JSON object with a supported `alg`.
    #[error("token header is not a JSON object with a supported 'alg'")]
    Header,
    /// A key file that is not PEM is not a hex-encoded secret.
    #[error("key file is neither PEM nor a hex-encoded secret")]
    Hex,
    /// The token is not three base64url segments.
    #[error("token is not three base64url segments")]
    Malformed,
    /// The token has no numeric `exp` claim.
    #[error("token has no numeric 'exp' claim")]
    MissingExp,
    /// The PEM data is not a key this crate can load (see the module docs).
    #[error("unsupported or invalid PEM key: {0}")]
    Pem(&'static str),
    /// The signing operation failed.
    #[error("signing failed")]
    Sign,
}

/// A key that signs tokens.
pub struct SigningKey(SigningInner);

enum SigningInner {
    Hmac(hmac::Key),
    Ec(EcdsaKeyPair),
    Rsa(RsaKeyPair),
}

impl std::fmt::Debug for SigningKey {
    /// Never prints key material.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningKey({})", self.algorithm().name())
    }
}

impl SigningKey {
    /// An HS256 key from a shared secret.
    pub fn from_secret(secret: &[u8]) -> Self {
        Self(SigningInner::Hmac(hmac::Key::new(
            hmac::HMAC_SHA256,
            secret,
        )))
    }

    /// An ES256 or RS256 key from a PEM private key.
    pub fn from_pem(pem: &[u8]) -> Result<Self, JwtError> {
        let (label, der) = pem_decode(pem)?;
        let rng = SystemRandom::new();
        let ec = |pkcs8: &[u8]| {
            EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8, &rng)
        };
        let inner = match label.as_str() {
            "PRIVATE KEY" => match ec(&der) {
                Ok(k) => SigningInner::Ec(k),
                Err(_) => SigningInner::Rsa(
                    RsaKeyPair::from_pkcs8(&der)
                        .map_err(|_| JwtError::Pem("not a P-256 or RSA PKCS#8 key"))?,
                ),
            },
            "EC PRIVATE KEY" => SigningInner::Ec(
                ec(&sec1_to_pkcs8(&der)).map_err(|_| JwtError::Pem("not a P-256 SEC1 key"))?,
            ),
            "RSA PRIVATE KEY" => SigningInner::Rsa(
                RsaKeyPair::from_der(&der).map_err(|_| JwtError::Pem("not a PKCS#1 RSA key"))?,
            ),
            _ => return Err(JwtError::Pem("not a private key")),
        };
        Ok(Self(inner))
    }

    /// A key from the contents of a `file:` key: PEM if it starts with `-----BEGIN`, otherwise
    /// a hex-encoded secret (surrounding whitespace ignored).
    pub fn from_file_contents(data: &[u8]) -> Result<Self, JwtError> {
        if data.starts_with(b"-----BEGIN") {
            Self::from_pem(data)
        } else {
            Ok(Self::from_secret(&hex_secret(data)?))
        }
    }

    /// The algorithm this key signs with.
    pub fn algorithm(&self) -> Algorithm {
        match self.0 {
            SigningInner::Hmac(_) => Algorithm::Hs256,
            SigningInner::Ec(_) => Algorithm::Es256,
            SigningInner::Rsa(_) => Algorithm::Rs256,
        }
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, JwtError> {
        match &self.0 {
            SigningInner::Hmac(key) => Ok(hmac::sign(key, message).as_ref().to_vec()),
            SigningInner::Ec(key) => key
                .sign(&SystemRandom::new(), message)
                .map(|s| s.as_ref().to_vec())
                .map_err(|_| JwtError::Sign),
            SigningInner::Rsa(key) => {
                let mut sig = vec![0; key.public().modulus_len()];
                key.sign(
                    &signature::RSA_PKCS1_SHA256,
                    &SystemRandom::new(),
                    message,
                    &mut sig,
                )
                .map_err(|_| JwtError::Sign)?;
                Ok(sig)
            }
        }
    }
}

/// A key that verifies tokens.
#[derive(Clone)]
pub struct VerifyingKey(VerifyingInner);

#[derive(Clone)]
enum VerifyingInner {
    Hmac(hmac::Key),
    Ec(Vec<u8>),
    Rsa(Vec<u8>),
}

impl std::fmt::Debug for VerifyingKey {
    /// Never prints key material.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "VerifyingKey({})", self.algorithm().name())
    }
}

impl VerifyingKey {
    /// An HS256 key from a shared secret.
    pub fn from_secret(secret: &[u8]) -> Self {
        Self(VerifyingInner::Hmac(hmac::Key::new(
            hmac::HMAC_SHA256,
            secret,
        )))
    }

    /// An ES256 or RS256 key from a PEM public key (SPKI or PKCS#1) or private key.
    pub fn from_pem(pem: &[u8]) -> Result<Self, JwtError> {
        let (label, der) = pem_decode(pem)?;
        let inner = match label.as_str() {
            "PUBLIC KEY" => spki_key(&der)?,
            "RSA PUBLIC KEY" => VerifyingInner::Rsa(der),
            _ => match SigningKey::from_pem(pem)?.0 {
                SigningInner::Ec(k) => VerifyingInner::Ec(k.public_key().as_ref().to_vec()),
                SigningInner::Rsa(k) => VerifyingInner::Rsa(k.public_key().as_ref().to_vec()),
                SigningInner::Hmac(_) => return Err(JwtError::Pem("not a public key")),
            },
        };
        Ok(Self(inner))
    }

    /// A key from the contents of a `file:` key (see [`SigningKey::from_file_contents`]).
    pub fn from_file_contents(data: &[u8]) -> Result<Self, JwtError> {
        if data.starts_with(b"-----BEGIN") {
            Self::from_pem(data)
        } else {
            Ok(Self::from_secret(&hex_secret(data)?))
        }
    }

    /// The algorithm this key verifies.
    pub fn algorithm(&self) -> Algorithm {
        match self.0 {
            VerifyingInner::Hmac(_) => Algorithm::Hs256,
            VerifyingInner::Ec(_) => Algorithm::Es256,
            VerifyingInner::Rsa(_) => Algorithm::Rs256,
        }
    }

    fn verify(&self, message: &[u8], sig: &[u8]) -> Result<(), JwtError> {
        let ok = match &self.0 {
            VerifyingInner::Hmac(key) => hmac::verify(key, message, sig).is_ok(),
            VerifyingInner::Ec(point) => {
                UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, point)
                    .verify(message, sig)
                    .is_ok()
            }
            VerifyingInner::Rsa(der) => {
                UnparsedPublicKey::new(&signature::RSA_PKCS1_2048_8192_SHA256, der)
                    .verify(message, sig)
                    .is_ok()
            }
        };
        if ok {
            Ok(())
        } else {
            Err(JwtError::BadSignature)
        }
    }
}

/// The claims of a Grip-Sig token, serialized as Pushpin does (keys sorted: `exp`, `iss`).
pub fn grip_sig_claims(iss: &str, now: u64) -> Vec<u8> {
    let mut claims = Map::new();
    claims.insert("exp".into(), Value::from(now + GRIP_SIG_TTL_SECS));
    claims.insert("iss".into(), Value::from(iss));
    claims_json(&claims)
}

/// A `Grip-Sig` header value for a request sent at `now` (Unix seconds).
pub fn grip_sig(iss: &str, key: &SigningKey, now: u64) -> Result<String, JwtError> {
    encode(&grip_sig_claims(iss, now), key)
}

/// Signs already-serialized JSON claims.
pub fn encode(claims_json: &[u8], key: &SigningKey) -> Result<String, JwtError> {
    let header = format!(r#"{{"typ":"JWT","alg":"{}"}}"#, key.algorithm().name());
    let mut token = base64::encode_url(header.as_bytes());
    token.push('.');
    token.push_str(&base64::encode_url(claims_json));
    let sig = key.sign(token.as_bytes())?;
    token.push('.');
    token.push_str(&base64::encode_url(&sig));
    Ok(token)
}

/// Verifies a token's signature with `key` (whose algorithm the token must use) and returns its
/// claims. Does not look at `exp`; see [`verify_grip_sig`].
pub fn decode(token: &str, key: &VerifyingKey) -> Result<Map<String, Value>, JwtError> {
    let mut parts = token.split('.');
    let (Some(header), Some(claims), Some(sig), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JwtError::Malformed);
    };
    let header_json = base64::decode_url(header.as_bytes()).map_err(|_| JwtError::Malformed)?;
    let claims_bytes = base64::decode_url(claims.as_bytes()).map_err(|_| JwtError::Malformed)?;
    let sig = base64::decode_url(sig.as_bytes()).map_err(|_| JwtError::Malformed)?;

    let header: Value = serde_json::from_slice(&header_json).map_err(|_| JwtError::Header)?;
    let alg = header
        .get("alg")
        .and_then(Value::as_str)
        .ok_or(JwtError::Header)?;
    let expected = key.algorithm();
    if Algorithm::from_name(alg) != Some(expected) {
        return Err(JwtError::AlgorithmMismatch {
            expected: expected.name(),
            found: alg.to_string(),
        });
    }
    // The signed message is the first two segments exactly as they appear in the token.
    let signed_len = token.len() - token.rsplit('.').next().map_or(0, str::len) - 1;
    key.verify(&token.as_bytes()[..signed_len], &sig)?;

    match serde_json::from_slice(&claims_bytes) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(JwtError::Claims),
    }
}

/// Verifies an upstream proxy's `Grip-Sig`: valid signature for `key` and an `exp` claim after
/// `now` (Unix seconds). Returns the claims. The issuer is not checked, as in Pushpin.
pub fn verify_grip_sig(
    token: &str,
    key: &VerifyingKey,
    now: u64,
) -> Result<Map<String, Value>, JwtError> {
    let claims = decode(token, key)?;
    let exp = claims
        .get("exp")
        .and_then(|v| v.as_i64().or_else(|| v.as_f64().map(|f| f as i64)))
        .ok_or(JwtError::MissingExp)?;
    if exp <= i64::try_from(now).unwrap_or(i64::MAX) {
        return Err(JwtError::Expired { exp });
    }
    Ok(claims)
}

/// Compact JSON of a claims map with keys sorted (like Qt's `QJsonObject`).
fn claims_json(claims: &Map<String, Value>) -> Vec<u8> {
    let mut keys: Vec<&String> = claims.keys().collect();
    keys.sort();
    let mut out = b"{".to_vec();
    for (n, k) in keys.into_iter().enumerate() {
        if n > 0 {
            out.push(b',');
        }
        // Serializing a string or a JSON value into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut out, k);
        out.push(b':');
        let _ = serde_json::to_writer(&mut out, &claims[k]);
    }
    out.push(b'}');
    out
}

fn hex_secret(data: &[u8]) -> Result<Vec<u8>, JwtError> {
    let text = crate::grip::headers::trim(data);
    if text.len() % 2 != 0 {
        return Err(JwtError::Hex);
    }
    text.chunks(2)
        .map(|pair| {
            let hi = (pair[0] as char).to_digit(16).ok_or(JwtError::Hex)?;
            let lo = (pair[1] as char).to_digit(16).ok_or(JwtError::Hex)?;
            // Two hex digits make one byte.
            Ok(((hi << 4) | lo) as u8)
        })
        .collect()
}

/// Decodes the first PEM block: its label and DER bytes.
fn pem_decode(pem: &[u8]) -> Result<(String, Vec<u8>), JwtError> {
    let text = std::str::from_utf8(pem).map_err(|_| JwtError::Pem("not text"))?;
    let start = text
        .find("-----BEGIN ")
        .ok_or(JwtError::Pem("no BEGIN line"))?;
    let rest = &text[start + 11..];
    let label_end = rest.find("-----").ok_or(JwtError::Pem("bad BEGIN line"))?;
    let label = &rest[..label_end];
    let body = &rest[label_end + 5..];
    let end_marker = format!("-----END {label}-----");
    let body_end = body.find(&end_marker).ok_or(JwtError::Pem("no END line"))?;
    let body = &body[..body_end];
    if body.contains(':') {
        return Err(JwtError::Pem("encrypted PEM keys are not supported"));
    }
    Ok((label.to_string(), base64::decode_lenient(body.as_bytes())))
}

// --- Minimal DER, just enough for SPKI and SEC1 → PKCS#8. ---

const OID_EC_PUBLIC_KEY: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
const OID_P256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
const OID_RSA_ENCRYPTION: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];

/// Reads one TLV; returns (tag, content, rest).
fn der_read(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, mut rest) = rest.split_first()?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        rest = &rest[n..];
        len
    };
    if rest.len() < len {
        return None;
    }
    Some((tag, &rest[..len], &rest[len..]))
}

fn der_write(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(content);
    out
}

/// SubjectPublicKeyInfo → the raw key ring verifies with.
fn spki_key(der: &[u8]) -> Result<VerifyingInner, JwtError> {
    let bad = || JwtError::Pem("malformed SubjectPublicKeyInfo");
    let (0x30, spki, _) = der_read(der).ok_or_else(bad)? else {
        return Err(bad());
    };
    let (0x30, alg, rest) = der_read(spki).ok_or_else(bad)? else {
        return Err(bad());
    };
    let (0x03, bits, _) = der_read(rest).ok_or_else(bad)? else {
        return Err(bad());
    };
    let (0x06, oid, params) = der_read(alg).ok_or_else(bad)? else {
        return Err(bad());
    };
    // The BIT STRING starts with its count of unused bits, always 0 for keys.
    let key = match bits.split_first() {
        Some((0, key)) => key.to_vec(),
        _ => return Err(bad()),
    };
    if oid == OID_RSA_ENCRYPTION {
        Ok(VerifyingInner::Rsa(key))
    } else if oid == OID_EC_PUBLIC_KEY
        && der_read(params).is_some_and(|(t, c, _)| t == 0x06 && c == OID_P256)
    {
        Ok(VerifyingInner::Ec(key))
    } else {
        Err(JwtError::Pem("public key is neither RSA nor EC P-256"))
    }
}

/// Wraps a SEC1 `ECPrivateKey` for P-256 in a PKCS#8 `PrivateKeyInfo`, the only form ring loads.
fn sec1_to_pkcs8(sec1: &[u8]) -> Vec<u8> {
    let mut alg = der_write(0x06, OID_EC_PUBLIC_KEY);
    alg.extend(der_write(0x06, OID_P256));
    let mut info = der_write(0x02, &[0]);
    info.extend(der_write(0x30, &alg));
    info.extend(der_write(0x04, sec1));
    der_write(0x30, &info)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sent by Pushpin 1.36 (`sig_key=changeme`, default `sig_iss`) to a test backend.
    const PUSHPIN_TOKEN: &str = "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9.eyJleHAiOjE3OTUzNjU0NTAsImlzcyI6InB1c2hwaW4ifQ.d-yO9qR4_E4d1A2iSbVnj-Dz40gta3knK3lhOPuFlQo";
    const PUSHPIN_EXP: u64 = 1_795_365_450;

    const EC_PKCS8: &str = "\
    -----BEGIN PRIVATE KEY-----\n\
    MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgx0Oi9IA7Ys1ibQWS\n\
    bjgDEA+DVrAmEwFXeuDZRWHAR7KhRANCAARuXwsO+9uZk/lDmcFIObvksgR/Zy4v\n\
    VL+V9SaOXsZvUl+xg9KVgzsFxXcy9+aimJWmq52PQVnFLxbnM6U/zSfM\n\
    -----END PRIVATE KEY-----\n\
    ";
    const EC_SEC1: &str = "\
    -----BEGIN EC PRIVATE KEY-----\n\
    MHcCAQEEIMdDovSAO2LNYm0Fkm44AxAPg1awJhMBV3rg2UVhwEeyoAoGCCqGSM49\n\
    AwEHoUQDQgAEbl8LDvvbmZP5Q5nBSDm75LIEf2cuL1S/lfUmjl7Gb1JfsYPSlYM7\n\
    BcV3MvfmopiVpqudj0FZxS8W5zOlP80nzA==\n\
    -----END EC PRIVATE KEY-----\n\
    ";
    const EC_SPKI: &str = "\
    -----BEGIN PUBLIC KEY-----\n\
    MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEbl8LDvvbmZP5Q5nBSDm75LIEf2cu\n\
    L1S/lfUmjl7Gb1JfsYPSlYM7BcV3MvfmopiVpqudj0FZxS8W5zOlP80nzA==\n\
    -----END PUBLIC KEY-----\n\
    ";
    const RSA_PKCS8: &str = "\
    -----BEGIN PRIVATE KEY-----\n\
    MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQChSyeuS/eC+d2H\n\
    zHFKfGWXR3s5tB1qOsZ5bWYFYJEMkBMpsMM/wk9WHwoA5Vwk/i15CnOp+k0mjqrU\n\
    6zmZaXR6Kax1TGAS6ydRjS4Kwz2ZAqKjvdq1OOG9V9ZY86MNaIpoD0x6vKDD0ROr\n\
    0f/rdYy1wh5iRHeqgnAXUF/fmjpJyjx604TRBCn5WYKfHHzsyi5MEFrmousGJRYF\n\
    XdhIfCzNbf6KgcOyWCNfSE5KHFo3wgIYLIJs8ZMXKQxTYJndGLJEjb4FiyjmKdE3\n\
    BiogQF1XnNGXGOkRAK7DuX6ggwnm0xPcO3gJ8Cz4F+JgY/Z51l2d7ehx+AogdGAH\n\
    V01s2h3xAgMBAAECggEALNlH9FgdP6cYqTz4t3x1hyYSJo5lq3ciXvtDZfVe/75E\n\
    BdCnyd/OzaSd1HfyMjsXC9QTK011DGaZK9EoV/cRszJJSOhuwnPun+eAyO9W/mfU\n\
    L3GIEeH6Kvr0mBFO4liSO7MdUfeHQEuvi5Q99Avgj12lsy9Uku3oGyN3NSaeVIvc\n\
    +xmqbBmd/R2V3Gr71QyXQd8hBRtfkIo6O4HzN7F4+gNS25+qQOhQBk/bs6XXM+TO\n\
    a+GD/asWIWA8dheGIzD1VXxoXrrR6BF5nmXeqvnD0pf6J82JHvMtV1cOQCPWZ51O\n\
    /SB7Q0uHZ0m+WpsETVk7j7MCChbGIqzkElQs5H/u3QKBgQDcVsC4DdmI/Qdlo/rF\n\
    BzdnHge0nlo4hXZWe/Dx418G2+3TI/w6tg2YKuxfC5eElNa1BCygqcBzCOTsh8Gz\n\
    cVzN8V49IB1jtIEyMBX+YTCLvQ0qZETf1xD572cXfay58qjIJdbp7CFL9lCE/owF\n\
    Pyu2XW58Q2b11wvHjlQVtI/1zwKBgQC7Zf4SSkRvIeQ+IngDR2KIQ/xUr+0JmkRr\n\
    s3R5zruBAsotWpn2f0Eh55ZjisAwr7eHc+SvuGNEGMwOgvMdnsFu/QDr+DHKJ5EU\n\
    skp/8HL5QbknrBi0Ye1l+9V2z6SA/Ve7rzUjFiQHeTNGHQ70zmr5ZIJgWhrKWEkE\n\
    0r+2iZFgPwKBgQCe9u/fWg6hqHuXtvCLCaPM/3trsftBX/h6eLziprm+RxmUBRhK\n\
    e2HfcMhL4h8UhhVJT5Oq7g1scPRIOcFj5tufsQ3eZ7cMYgP743lap1/Q0ToYZXLT\n\
    U2RqDXCBIChnl0xx6erdpYB4P2LkMIlwl5y/2zSE7lPv9ZAIDwVXC4f5PQKBgEPr\n\
    hneIlV8WEIx4n7jIgazTvzvOe4IUeKH0a83OIOV0ZmSjxtOxcaDhN/+iBWBf/4vH\n\
    dGY/1TKULjlAOu9MX91jM5dS4HDdgFbY++l8857ltD7twBJ4v7tL2CV0wrHBoK+0\n\
    o/SwjKRsyCmsVIRj4B+9zwcvATC/aM+ntrZpC9ivAoGAIFVDOo1l8vRVrOFJynR1\n\
    QUQkhETJapieq8rG8gj2hTID+soaei02OZqIW0uEdJPIf7mkWcJKM3L+pC3wywLh\n\
    UZgBx8oYkASfEpyyGzSUXIgQh1PxvbfzZfUeeVlmqC3BtfG2+l8YsP3LP+JEXFBE\n\
    +ZPI8kPsLnnmKkrg3iIARlA=\n\
    -----END PRIVATE KEY-----\n\
    ";
    const RSA_SPKI: &str = "\
    -----BEGIN PUBLIC KEY-----\n\
    MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAoUsnrkv3gvndh8xxSnxl\n\
    l0d7ObQdajrGeW1mBWCRDJATKbDDP8JPVh8KAOVcJP4teQpzqfpNJo6q1Os5mWl0\n\
    eimsdUxgEusnUY0uCsM9mQKio73atTjhvVfWWPOjDWiKaA9Merygw9ETq9H/63WM\n\
    tcIeYkR3qoJwF1Bf35o6Sco8etOE0QQp+VmCnxx87MouTBBa5qLrBiUWBV3YSHws\n\
    zW3+ioHDslgjX0hOShxaN8ICGCyCbPGTFykMU2CZ3RiyRI2+BYso5inRNwYqIEBd\n\
    V5zRlxjpEQCuw7l+oIMJ5tMT3Dt4CfAs+BfiYGP2edZdne3ocfgKIHRgB1dNbNod\n\
    8QIDAQAB\n\
    -----END PUBLIC KEY-----\n\
    ";
    const RSA_PKCS1_PUB: &str = "\
    -----BEGIN RSA PUBLIC KEY-----\n\
    MIIBCgKCAQEAoUsnrkv3gvndh8xxSnxll0d7ObQdajrGeW1mBWCRDJATKbDDP8JP\n\
    Vh8KAOVcJP4teQpzqfpNJo6q1Os5mWl0eimsdUxgEusnUY0uCsM9mQKio73atTjh\n\
    vVfWWPOjDWiKaA9Merygw9ETq9H/63WMtcIeYkR3qoJwF1Bf35o6Sco8etOE0QQp\n\
    +VmCnxx87MouTBBa5qLrBiUWBV3YSHwszW3+ioHDslgjX0hOShxaN8ICGCyCbPGT\n\
    FykMU2CZ3RiyRI2+BYso5inRNwYqIEBdV5zRlxjpEQCuw7l+oIMJ5tMT3Dt4CfAs\n\
    +BfiYGP2edZdne3ocfgKIHRgB1dNbNod8QIDAQAB\n\
    -----END RSA PUBLIC KEY-----\n\
    ";
    const EC_TOKEN: &str = "eyJ0eXAiOiJKV1QiLCJhbGciOiJFUzI1NiJ9.eyJleHAiOjIwMDAwMDAwMDAsImlzcyI6InVwc3RyZWFtIn0.ZCKwAJaBfQbPRiZwLak8njlEoRlNj_drl2Tss3jUP4bdvp3G1t1osfAV9RBTTOo7jaK2WXkkmrCtKIFdL_qpwQ";
    const RSA_TOKEN: &str = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.eyJleHAiOjIwMDAwMDAwMDAsImlzcyI6InVwc3RyZWFtIn0.IWAd1RmqStNflGqJAInssfYjvHzzFN535LyN5-qL7Za7K3zHLmK5scbFXvut9xs5mzhzR69ZKp6iHopI0NUQzCBK62jZfJgmXepLVyN8dHOgnEVlIZtZ8ybbwOv393qnVYJpnmD9-B4Nts0wCNvi9VjD_AUE4ppFNFANwJ550-8iJun0Ta_t1jCYSTznX6RDSS7kXpanZWjVr7RCka-SZ0u0-zoUvDRUgPkIb7sS43bpQOy8rW4T55OlT3qv-bM34VKeLC1_VI5nyzr5VdDCaPwfMmyJZMrQq3f786MIYin_OdxYN7IQf4_8mwHw-t2FMjdwD4eOXMnguHvvST3nPg";
    const HS_TOKEN_B64KEY: &str = "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9.eyJleHAiOjIwMDAwMDAwMDAsImlzcyI6InVwc3RyZWFtIn0.UrAYfl_g1Ladqg8zUJXQxIzTPhuRQbPMIcmCks1LhnA";

    /// Claims of the Python-made tokens above.
    const VECTOR_EXP: u64 = 2_000_000_000;

    #[test]
    fn signs_exactly_like_pushpin() {
        let key = SigningKey::from_secret(b"changeme");
        let now = PUSHPIN_EXP - GRIP_SIG_TTL_SECS;
        assert_eq!(
            grip_sig_claims("pushpin", now),
            br#"{"exp":1795365450,"iss":"pushpin"}"#
        );
        assert_eq!(grip_sig("pushpin", &key, now).unwrap(), PUSHPIN_TOKEN);
    }

    #[test]
    fn verifies_pushpin_token() {
        let key = VerifyingKey::from_secret(b"changeme");
        let claims = verify_grip_sig(PUSHPIN_TOKEN, &key, PUSHPIN_EXP - 1).unwrap();
        assert_eq!(claims["iss"], "pushpin");
        assert!(matches!(
            verify_grip_sig(PUSHPIN_TOKEN, &key, PUSHPIN_EXP),
            Err(JwtError::Expired { exp }) if exp == PUSHPIN_EXP as i64
        ));
        assert!(matches!(
            verify_grip_sig(PUSHPIN_TOKEN, &VerifyingKey::from_secret(b"other"), 0),
            Err(JwtError::BadSignature)
        ));
    }

    #[test]
    fn key_config_strings() {
        assert_eq!(
            parse_key_config("changeme"),
            KeyConfig::Secret(b"changeme".to_vec())
        );
        assert_eq!(
            parse_key_config("base64:aGk="),
            KeyConfig::Secret(b"hi".to_vec())
        );
        assert_eq!(
            parse_key_config("file:keys/k.pem"),
            KeyConfig::File("keys/k.pem")
        );
        assert_eq!(parse_key_config(""), KeyConfig::Secret(Vec::new()));
        let KeyConfig::Secret(secret) =
            parse_key_config("base64:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=")
        else {
            panic!("expected a secret");
        };
        assert_eq!(secret, (0u8..32).collect::<Vec<_>>());
        let key = VerifyingKey::from_secret(&secret);
        assert_eq!(
            verify_grip_sig(HS_TOKEN_B64KEY, &key, 0).unwrap()["iss"],
            "upstream"
        );
    }

    #[test]
    fn hex_key_files() {
        let hex_file = b"  000102030405060708090a0b0c0d0e0f101112131415161718191A1B1C1D1E1F\n";
        let key = VerifyingKey::from_file_contents(hex_file).unwrap();
        assert_eq!(key.algorithm(), Algorithm::Hs256);
        assert!(verify_grip_sig(HS_TOKEN_B64KEY, &key, 0).is_ok());
        assert!(matches!(
            SigningKey::from_file_contents(b"xyz"),
            Err(JwtError::Hex)
        ));
        assert!(matches!(
            SigningKey::from_file_contents(b"abc"),
            Err(JwtError::Hex)
        ));
    }

    #[test]
    fn es256_python_vectors() {
        for pem in [EC_SPKI, EC_PKCS8, EC_SEC1] {
            let key = VerifyingKey::from_file_contents(pem.as_bytes()).unwrap();
            assert_eq!(key.algorithm(), Algorithm::Es256);
            assert_eq!(
                verify_grip_sig(EC_TOKEN, &key, VECTOR_EXP - 1).unwrap()["iss"],
                "upstream"
            );
        }
        for pem in [EC_PKCS8, EC_SEC1] {
            let signing = SigningKey::from_pem(pem.as_bytes()).unwrap();
            assert_eq!(signing.algorithm(), Algorithm::Es256);
            let token = grip_sig("holdfast", &signing, 100).unwrap();
            assert!(token.starts_with("eyJ0eXAiOiJKV1QiLCJhbGciOiJFUzI1NiJ9."));
            let verifying = VerifyingKey::from_pem(EC_SPKI.as_bytes()).unwrap();
            assert_eq!(
                verify_grip_sig(&token, &verifying, 100).unwrap()["iss"],
                "holdfast"
            );
        }
    }

    #[test]
    fn rs256_python_vectors() {
        for pem in [RSA_SPKI, RSA_PKCS1_PUB, RSA_PKCS8] {
            let key = VerifyingKey::from_pem(pem.as_bytes()).unwrap();
            assert_eq!(key.algorithm(), Algorithm::Rs256);
            assert_eq!(
                verify_grip_sig(RSA_TOKEN, &key, VECTOR_EXP - 1).unwrap()["exp"],
                VECTOR_EXP
            );
        }
        // PKCS#1 private key: the PrivateKey OCTET STRING inside the PKCS#8 one, re-armoured.
        let (_, pkcs8) = pem_decode(RSA_PKCS8.as_bytes()).unwrap();
        let (_, info, _) = der_read(&pkcs8).unwrap();
        let (_, _, rest) = der_read(info).unwrap(); // version
        let (_, _, rest) = der_read(rest).unwrap(); // algorithm
        let (tag, pkcs1, _) = der_read(rest).unwrap();
        assert_eq!(tag, 0x04);
        let pkcs1_pem = format!(
            "-----BEGIN RSA PRIVATE KEY-----\n{}\n-----END RSA PRIVATE KEY-----\n",
            base64::encode(pkcs1)
        );
        let verifying = VerifyingKey::from_pem(RSA_SPKI.as_bytes()).unwrap();
        for pem in [RSA_PKCS8, pkcs1_pem.as_str()] {
            let signing = SigningKey::from_file_contents(pem.as_bytes()).unwrap();
            assert_eq!(signing.algorithm(), Algorithm::Rs256);
            let token = grip_sig("holdfast", &signing, 100).unwrap();
            // RSASSA-PKCS1-v1_5 is deterministic, so both encodings give the same token.
            assert!(token.starts_with("eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9."));
            assert!(verify_grip_sig(&token, &verifying, 100).is_ok());
        }
    }

    #[test]
    fn rejects_bad_tokens() {
        let hs = VerifyingKey::from_secret(b"changeme");
        let es = VerifyingKey::from_pem(EC_SPKI.as_bytes()).unwrap();
        assert!(matches!(decode("a.b", &hs), Err(JwtError::Malformed)));
        assert!(matches!(decode("a.b.c.d", &hs), Err(JwtError::Malformed)));
        assert!(matches!(decode("a+.b.c", &hs), Err(JwtError::Malformed)));
        assert!(matches!(
            decode(PUSHPIN_TOKEN, &es),
            Err(JwtError::AlgorithmMismatch {
                expected: "ES256",
                ..
            })
        ));
        assert!(matches!(
            decode(EC_TOKEN, &hs),
            Err(JwtError::AlgorithmMismatch {
                expected: "HS256",
                ..
            })
        ));
        // Tampered claims.
        let mut parts: Vec<&str> = PUSHPIN_TOKEN.split('.').collect();
        let forged = base64::encode_url(br#"{"exp":9999999999,"iss":"pushpin"}"#);
        parts[1] = &forged;
        assert!(matches!(
            decode(&parts.join("."), &hs),
            Err(JwtError::BadSignature)
        ));
        // `alg: none` never verifies.
        let none = format!(
            "{}.{}.",
            base64::encode_url(br#"{"alg":"none"}"#),
            base64::encode_url(b"{}")
        );
        assert!(matches!(
            decode(&none, &hs),
            Err(JwtError::AlgorithmMismatch { .. })
        ));
        // Signed but without exp.
        let key = SigningKey::from_secret(b"k");
        let token = encode(br#"{"iss":"x"}"#, &key).unwrap();
        assert!(matches!(
            verify_grip_sig(&token, &VerifyingKey::from_secret(b"k"), 0),
            Err(JwtError::MissingExp)
        ));
        let token = encode(b"[1]", &key).unwrap();
        assert!(matches!(
            decode(&token, &VerifyingKey::from_secret(b"k")),
            Err(JwtError::Claims)
        ));
    }

    #[test]
    fn rejects_bad_pem() {
        assert!(matches!(
            SigningKey::from_pem(b"nothing"),
            Err(JwtError::Pem(_))
        ));
        assert!(matches!(
            SigningKey::from_pem(EC_SPKI.as_bytes()),
            Err(JwtError::Pem(_))
        ));
        let garbage = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
        assert!(matches!(
            SigningKey::from_pem(garbage.as_bytes()),
            Err(JwtError::Pem(_))
        ));
        let encrypted = "-----BEGIN EC PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\n\nAAAA\n-----END EC PRIVATE KEY-----\n";
        assert!(matches!(
            SigningKey::from_pem(encrypted.as_bytes()),
            Err(JwtError::Pem(_))
        ));
        assert_eq!(
            format!("{:?}", SigningKey::from_secret(b"secret")),
            "SigningKey(HS256)"
        );
    }
}
