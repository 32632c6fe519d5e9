//! The manager's journal file. Inputs are whole files; the mutator seals, in three mutations
//! out of four, every frame whose length fits with the checksum of its body, so that mutated
//! records get past the checksum into the decoder and the sequencer's recovery instead of
//! nearly always stopping at a checksum mismatch.

#![no_main]

use eccluster_proto::ops::journal::{self, MAGIC, MAX_RECORD};

libfuzzer_sys::fuzz_target!(|data: &[u8]| eccluster_fuzz::journal(data));

libfuzzer_sys::fuzz_mutator!(|data: &mut [u8], size: usize, max_size: usize, seed: u32| {
    let size = libfuzzer_sys::fuzzer_mutate(data, size, max_size);
    if !seed.is_multiple_of(4) {
        seal(&mut data[..size]);
    }
    size
});

/// Writes the checksum of each frame's body into its header, frame after frame, up to the
/// first frame whose length runs past the end.
fn seal(file: &mut [u8]) {
    if !file.starts_with(MAGIC) {
        return;
    }
    let mut at = MAGIC.len();
    while let Some(header) = file.get(at..at + 8) {
        let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
        if len > MAX_RECORD || at + 8 + len > file.len() {
            return;
        }
        let sum = journal::crc32(&file[at + 8..at + 8 + len]);
        file[at + 4..at + 8].copy_from_slice(&sum.to_le_bytes());
        at += 8 + len;
    }
}
