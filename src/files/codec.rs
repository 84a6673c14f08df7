//! Compressing bytes into one content coding: the worker's on-the-fly variants and
//! `ringstatic compress`'s siblings use the same three encoders, at different levels.
//!
//! The crates: `brotli` (the pure-Rust port of Google's encoder, byte-compatible with it),
//! `zstd` (bindings to the reference C library) and `flate2` on its `zlib-rs` backend (a
//! Rust zlib as fast as zlib-ng). Each is the fastest well-kept implementation of its format.
//!
//! Levels: a worker compresses while its loop waits, so it uses levels whose cost per byte is
//! small (`Level::Fast`; the stall this makes is measured and bounded in `files::variant`); the
//! build step has all the time it wants (`Level::Best`).

use std::io::{self, Write};

use super::entry::Coding;

/// How hard to compress.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    /// For the worker: brotli 4, zstd 3, gzip 6 (nginx's `gzip_comp_level` people choose).
    Fast,
    /// For `ringstatic compress`: brotli 11, zstd 19, gzip 9.
    Best,
}

/// `input` in `coding`; the identity coding is a copy.
pub fn compress(coding: Coding, input: &[u8], level: Level) -> io::Result<Vec<u8>> {
    let best = level == Level::Best;
    match coding {
        Coding::Identity => Ok(input.to_vec()),
        Coding::Br => {
            let params = brotli::enc::BrotliEncoderParams {
                quality: if best { 11 } else { 4 },
                lgwin: 22,
                size_hint: input.len(),
                ..Default::default()
            };
            let mut out = Vec::with_capacity(input.len() / 3 + 64);
            brotli::BrotliCompress(&mut &input[..], &mut out, &params)?;
            Ok(out)
        }
        Coding::Zstd => zstd::bulk::compress(input, if best { 19 } else { 3 }),
        Coding::Gzip => {
            let level = flate2::Compression::new(if best { 9 } else { 6 });
            let mut enc =
                flate2::write::GzEncoder::new(Vec::with_capacity(input.len() / 3 + 64), level);
            enc.write_all(input)?;
            enc.finish()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn text() -> Vec<u8> {
        (0..2000)
            .flat_map(|i| format!("function f{i}(x) {{ return x * {i}; }}\n").into_bytes())
            .collect()
    }

    #[test]
    fn each_coding_round_trips_and_shrinks_text() {
        let input = text();
        for level in [Level::Fast, Level::Best] {
            let br = compress(Coding::Br, &input, level).unwrap();
            let mut back = Vec::new();
            brotli::Decompressor::new(&br[..], 4096)
                .read_to_end(&mut back)
                .unwrap();
            assert_eq!(back, input);
            let zst = compress(Coding::Zstd, &input, level).unwrap();
            assert_eq!(zstd::decode_all(&zst[..]).unwrap(), input);
            let gz = compress(Coding::Gzip, &input, level).unwrap();
            let mut back = Vec::new();
            flate2::read::GzDecoder::new(&gz[..])
                .read_to_end(&mut back)
                .unwrap();
            assert_eq!(back, input);
            for c in [&br, &zst, &gz] {
                assert!(c.len() < input.len() / 4, "{} of {}", c.len(), input.len());
            }
        }
        assert_eq!(compress(Coding::Identity, b"x", Level::Fast).unwrap(), b"x");
    }
}
