//! Payload masking (RFC 6455 §5.3): every client payload byte is XORed with a 4-byte key.
//!
//! Unmasking runs over every byte a client sends, so it works on 8 bytes at a time (a `u64`
//! holding the key twice) and only falls back to single bytes for the tail. No `unsafe`: the
//! 8-byte words are copied in and out of the slice, which the optimiser turns into plain
//! unaligned loads and stores.

/// Masks or unmasks `buf` in place with `key` (the operation is its own inverse).
///
/// `offset` is the position of `buf[0]` within the frame payload, so a payload can be unmasked
/// in pieces as it arrives; only `offset % 4` matters.
pub fn apply_mask(buf: &mut [u8], key: [u8; 4], offset: usize) {
    let r = offset % 4;
    // The key rotated so that `k[0]` applies to `buf[0]`.
    let k = [key[r], key[(r + 1) % 4], key[(r + 2) % 4], key[(r + 3) % 4]];
    let wide = u64::from_ne_bytes([k[0], k[1], k[2], k[3], k[0], k[1], k[2], k[3]]);
    let mut chunks = buf.chunks_exact_mut(8);
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        chunk.copy_from_slice(&(u64::from_ne_bytes(word) ^ wide).to_ne_bytes());
    }
    // The remainder starts at a multiple of 8, hence of 4: the rotated key still lines up.
    for (i, b) in chunks.into_remainder().iter_mut().enumerate() {
        *b ^= k[i % 4];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(buf: &mut [u8], key: [u8; 4], offset: usize) {
        for (i, b) in buf.iter_mut().enumerate() {
            *b ^= key[(offset + i) % 4];
        }
    }

    fn pattern(len: usize, seed: u8) -> Vec<u8> {
        (0..len)
            .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
            .collect()
    }

    #[test]
    fn rfc6455_hello_example() {
        // RFC 6455 §5.7: "Hello" masked with 37 fa 21 3d.
        let mut buf = *b"Hello";
        apply_mask(&mut buf, [0x37, 0xfa, 0x21, 0x3d], 0);
        assert_eq!(buf, [0x7f, 0x9f, 0x4d, 0x51, 0x58]);
        apply_mask(&mut buf, [0x37, 0xfa, 0x21, 0x3d], 0);
        assert_eq!(&buf, b"Hello");
    }

    #[test]
    fn matches_naive_for_every_length_and_offset() {
        let keys = [
            [0, 0, 0, 0],
            [0x37, 0xfa, 0x21, 0x3d],
            [0xff, 0x01, 0x80, 0x7f],
        ];
        for key in keys {
            for len in 0..64 {
                for offset in 0..8 {
                    let mut fast = pattern(len, offset as u8);
                    let mut slow = fast.clone();
                    apply_mask(&mut fast, key, offset);
                    naive(&mut slow, key, offset);
                    assert_eq!(fast, slow, "len {len} offset {offset} key {key:?}");
                }
            }
        }
    }

    #[test]
    fn unaligned_subslices_match_naive() {
        // The words are read from arbitrary addresses: start the slice at every alignment.
        let key = [1, 2, 3, 4];
        let base = pattern(80, 9);
        for start in 0..8 {
            for len in 0..64 {
                let mut fast = base.clone();
                let mut slow = base.clone();
                apply_mask(&mut fast[start..start + len], key, start);
                naive(&mut slow[start..start + len], key, start);
                assert_eq!(fast, slow, "start {start} len {len}");
            }
        }
    }

    #[test]
    fn piecewise_equals_whole() {
        let key = [0xde, 0xad, 0xbe, 0xef];
        let original = pattern(200, 3);
        let mut whole = original.clone();
        apply_mask(&mut whole, key, 0);
        for split_a in [0, 1, 3, 7, 9, 64] {
            for split_b in [split_a, split_a + 5, split_a + 13, 150] {
                let mut pieces = original.clone();
                let (a, rest) = pieces.split_at_mut(split_a);
                let (b, c) = rest.split_at_mut(split_b - split_a);
                apply_mask(a, key, 0);
                apply_mask(b, key, split_a);
                apply_mask(c, key, split_b);
                assert_eq!(pieces, whole, "splits {split_a} {split_b}");
            }
        }
    }

    #[test]
    fn involution_on_large_buffer() {
        let key = [9, 8, 7, 6];
        let original = pattern(64 * 1024 + 3, 1);
        let mut buf = original.clone();
        apply_mask(&mut buf, key, 2);
        assert_ne!(buf, original);
        apply_mask(&mut buf, key, 2);
        assert_eq!(buf, original);
    }
}
