//! Docker's multiplexed stream framing: an 8-byte header `[stream, 0, 0, 0, len u32 BE]`
//! before each chunk (stream 0 stdin, 1 stdout, 2 stderr).

use bytes::{BufMut, Bytes, BytesMut};

pub const STDIN: u8 = 0;
pub const STDOUT: u8 = 1;
pub const STDERR: u8 = 2;

/// Encodes one chunk as one or more frames (a chunk above 4 GiB is split).
pub fn encode(stream: u8, data: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(data.len() + 8);
    for chunk in data.chunks(u32::MAX as usize) {
        out.put_u8(stream);
        out.put_bytes(0, 3);
        out.put_u32(chunk.len() as u32);
        out.put_slice(chunk);
    }
    out.freeze()
}

/// Decodes frames from `buf`; returns the complete frames and how many bytes they used.
pub fn decode(buf: &[u8]) -> (Vec<(u8, &[u8])>, usize) {
    let mut out = Vec::new();
    let mut pos = 0;
    while buf.len() - pos >= 8 {
        let h = &buf[pos..pos + 8];
        let len = u32::from_be_bytes([h[4], h[5], h[6], h[7]]) as usize;
        if buf.len() - pos - 8 < len {
            break;
        }
        out.push((h[0], &buf[pos + 8..pos + 8 + len]));
        pos += 8 + len;
    }
    (out, pos)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip() {
        let a = encode(STDOUT, b"hello\n");
        assert_eq!(&a[..8], &[1, 0, 0, 0, 0, 0, 0, 6]);
        assert_eq!(&a[8..], b"hello\n");
        let b = encode(STDERR, &[7u8; 300]);
        assert_eq!(&b[..8], &[2, 0, 0, 0, 0, 0, 1, 44]);
        let mut all = a.to_vec();
        all.extend_from_slice(&b);
        all.extend_from_slice(&[1, 0, 0]); // partial header
        let (frames, used) = decode(&all);
        assert_eq!(frames.len(), 2);
        assert_eq!(frames[0], (1, &b"hello\n"[..]));
        assert_eq!(frames[1].1.len(), 300);
        assert_eq!(used, all.len() - 3);
        assert_eq!(encode(STDOUT, b"").len(), 0);
    }
}
