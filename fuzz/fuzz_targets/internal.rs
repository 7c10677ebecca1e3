//! The internal msgpack messages between connmgr and handler (`holdfast_proto::internal`).
//!
//! Checked in both directions: a packet that decodes re-encodes (named encoding) to bytes that
//! decode to an equal packet, and that re-encode to the same bytes (the encoding is canonical
//! after one round).
#![no_main]

use holdfast_proto::internal::{decode, encode, Packet, ToConnmgr, ToHandler};
use libfuzzer_sys::fuzz_target;
use serde::de::DeserializeOwned;
use serde::Serialize;

fn round_trip<M: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(data: &[u8]) {
    let Ok(packet) = decode::<M>(data) else {
        return;
    };
    let bytes = encode(&packet).expect("a decoded packet encodes");
    let again: Packet<M> = decode(&bytes).expect("encoder output decodes");
    assert_eq!(again, packet);
    assert_eq!(encode(&again).expect("encodes"), bytes);
}

fuzz_target!(|data: &[u8]| {
    round_trip::<ToHandler>(data);
    round_trip::<ToConnmgr>(data);
});
