//! WebSocket codec costs in the connection manager, per frame and per payload byte.
//!
//! Measures client frame header parsing ([`frame::parse_header`]), payload unmasking
//! ([`mask::apply_mask`]) at 16 B, 1 KiB and 64 KiB, reassembly of a message sent in 8 fragments
//! ([`message::Assembler`]), and permessage-deflate: compressing a 1 KiB JSON message
//! ([`deflate::compress_message`], and a reused [`deflate::MessageCompressor`]) and inflating it
//! ([`deflate::Inflater`]).
//!
//! Why it matters: every byte a client sends is unmasked, every frame header parsed and every
//! message assembled on a connmgr worker thread; with compression negotiated, every broadcast is
//! compressed once per worker and every client message inflated. These are the per-message costs
//! of a busy WebSocket connection.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use holdfast_benches::{json_message, MEASUREMENT, SAMPLES, WARM_UP};
use holdfast_connmgr::ws::deflate::{self, Inflater, MessageCompressor, DEFAULT_LEVEL};
use holdfast_connmgr::ws::frame::{self, FrameHeader, OpCode, ParseRules, Parsed};
use holdfast_connmgr::ws::mask::apply_mask;
use holdfast_connmgr::ws::message::{Assembler, Message};
use holdfast_connmgr::ws::Limits;

const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// A masked client frame header (2, 4 or 10 length bytes plus the mask) for `len` bytes.
fn client_header(fin: bool, opcode: u8, len: usize) -> Vec<u8> {
    let mut h = vec![if fin { 0x80 } else { 0 } | opcode];
    if len < 126 {
        h.push(0x80 | len as u8);
    } else if len <= 0xffff {
        h.push(0x80 | 126);
        h.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        h.push(0x80 | 127);
        h.extend_from_slice(&(len as u64).to_be_bytes());
    }
    h.extend_from_slice(&KEY);
    h
}

fn bench_frame_header(c: &mut Criterion) {
    let rules = ParseRules::new(&Limits::default(), true);
    let mut g = c.benchmark_group("ws/frame_header_parse");
    for (name, len) in [("len7", 100usize), ("len16", 1024), ("len64", 70_000)] {
        let buf = client_header(true, 0x1, len);
        match frame::parse_header(&buf, &rules).unwrap() {
            Parsed::Complete(h, n) => {
                assert_eq!(n, buf.len());
                assert_eq!(h.payload_len, len as u64);
            }
            Parsed::Partial => panic!("partial header"),
        }
        g.throughput(Throughput::Elements(1));
        g.bench_function(name, |b| {
            b.iter(|| frame::parse_header(black_box(&buf), &rules));
        });
    }
    g.finish();
}

fn bench_unmask(c: &mut Criterion) {
    let mut g = c.benchmark_group("ws/unmask");
    for (name, len) in [("16B", 16usize), ("1KiB", 1024), ("64KiB", 64 * 1024)] {
        let mut buf: Vec<u8> = (0..len).map(|i| i as u8).collect();
        g.throughput(Throughput::Bytes(len as u64));
        // Masking is its own inverse, so the same buffer is unmasked over and over in place.
        g.bench_function(name, |b| {
            b.iter(|| apply_mask(black_box(&mut buf), KEY, 0));
        });
    }
    g.finish();
}

fn bench_assemble(c: &mut Criterion) {
    // A 4 KiB text message in 8 fragments of 512 bytes (text + 7 continuations).
    let msg = json_message(4096);
    let frags: Vec<(FrameHeader, &[u8])> = msg
        .chunks(512)
        .enumerate()
        .map(|(i, chunk)| {
            let h = FrameHeader {
                fin: i == 7,
                rsv1: false,
                opcode: if i == 0 {
                    OpCode::Text
                } else {
                    OpCode::Continuation
                },
                mask: KEY,
                payload_len: chunk.len() as u64,
            };
            (h, chunk)
        })
        .collect();
    assert_eq!(frags.len(), 8);
    let assemble = |asm: &mut Assembler| {
        let mut out = None;
        for (h, payload) in &frags {
            out = asm.handle_frame(h, payload).unwrap();
        }
        out
    };
    let mut asm = Assembler::new(Limits::default(), None);
    assert!(matches!(assemble(&mut asm), Some(Message::Text(t)) if t.as_ref() == msg.as_slice()));

    let mut g = c.benchmark_group("ws/assemble");
    g.throughput(Throughput::Bytes(msg.len() as u64));
    g.bench_function("text_4KiB_in_8_fragments", |b| {
        b.iter(|| black_box(assemble(&mut asm)));
    });
    g.finish();
}

fn inflate(inflater: &mut Inflater, compressed: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    inflater.push(compressed, &mut out, 1 << 20).unwrap();
    inflater.finish(&mut out, 1 << 20).unwrap();
    out
}

fn bench_deflate(c: &mut Criterion) {
    let msg = json_message(1024);
    let compressed = deflate::compress_message(&msg).unwrap();
    assert_eq!(inflate(&mut Inflater::new(true), &compressed), msg);

    let mut g = c.benchmark_group("ws/deflate_1KiB_json");
    // Counted in uncompressed bytes for both directions.
    g.throughput(Throughput::Bytes(msg.len() as u64));
    g.bench_function("compress_message", |b| {
        b.iter(|| deflate::compress_message(black_box(&msg)).unwrap());
    });
    let mut compressor = MessageCompressor::new(DEFAULT_LEVEL);
    assert_eq!(compressor.compress(&msg).unwrap(), compressed);
    g.bench_function("compress_reused_compressor", |b| {
        b.iter(|| compressor.compress(black_box(&msg)).unwrap());
    });
    // A client with client_no_context_takeover: the decompressor is dropped after every
    // message, so each one pays for a fresh inflate state.
    g.bench_function("inflate_no_context_takeover", |b| {
        let mut inflater = Inflater::new(true);
        b.iter(|| inflate(&mut inflater, black_box(&compressed)));
    });
    // The default (Pushpin's): the decompressor is kept between messages. Feeding the same
    // message again is valid because it was compressed without back-references to earlier ones.
    g.bench_function("inflate_context_takeover", |b| {
        let mut inflater = Inflater::new(false);
        b.iter(|| inflate(&mut inflater, black_box(&compressed)));
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(SAMPLES)
        .warm_up_time(WARM_UP)
        .measurement_time(MEASUREMENT);
    targets = bench_frame_header, bench_unmask, bench_assemble, bench_deflate
}
criterion_main!(benches);
