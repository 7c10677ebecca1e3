//! `Grip-Sig` tokens (`holdfast_proto::jwt`): token decoding, key loading (PEM, hex secret)
//! and key configuration strings.
//!
//! The first byte picks the part. Checked: a token that verifies has claims that sign and
//! verify again to the same claims; JSON-object claims signed with a secret decode back to
//! the same map; key loading never panics on arbitrary files.
#![no_main]

use holdfast_fuzz::take_byte;
use holdfast_proto::jwt::{
    decode, encode, parse_key_config, verify_grip_sig, KeyConfig, SigningKey, VerifyingKey,
};
use libfuzzer_sys::fuzz_target;

const SECRET: &[u8] = b"changeme";

fuzz_target!(|data: &[u8]| {
    let (ctl, rest) = take_byte(data);
    let signing = SigningKey::from_secret(SECRET);
    let verifying = VerifyingKey::from_secret(SECRET);
    match ctl % 4 {
        0 => {
            let token = String::from_utf8_lossy(rest);
            let _ = verify_grip_sig(&token, &verifying, 1_700_000_000);
            if let Ok(claims) = decode(&token, &verifying) {
                let json = serde_json::to_vec(&claims).expect("claims serialize");
                let token = encode(&json, &signing).expect("sign");
                assert_eq!(
                    decode(&token, &verifying).expect("own token verifies"),
                    claims
                );
            }
        }
        1 => {
            let _ = VerifyingKey::from_file_contents(rest);
            if let Ok(key) = SigningKey::from_file_contents(rest) {
                let _ = encode(b"{\"iss\":\"x\"}", &key);
            }
            let _ = VerifyingKey::from_pem(rest);
            let _ = SigningKey::from_pem(rest);
        }
        2 => {
            let text = String::from_utf8_lossy(rest);
            if let KeyConfig::Secret(secret) = parse_key_config(&text) {
                let key = SigningKey::from_secret(&secret);
                let token = encode(b"{}", &key).expect("sign");
                assert!(decode(&token, &VerifyingKey::from_secret(&secret)).is_ok());
            }
        }
        _ => {
            let Ok(serde_json::Value::Object(map)) = serde_json::from_slice(rest) else {
                return;
            };
            let token = encode(rest, &signing).expect("sign");
            assert_eq!(decode(&token, &verifying).expect("own token verifies"), map);
        }
    }
});
