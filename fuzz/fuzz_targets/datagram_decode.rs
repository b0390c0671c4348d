//! Feeds arbitrary bytes, as any host on the network may send them, to the
//! gossip datagram decoder: it must never panic, never accept more than
//! 1 200 bytes, and whatever it accepts must encode back to the same bytes
//! (so no two readings of one datagram exist).

#![no_main]

use libfuzzer_sys::fuzz_target;
use wpkgsync::gossip::datagram::{Datagram, MAX_DATAGRAM};

fuzz_target!(|data: &[u8]| {
    if let Ok(datagram) = Datagram::decode(data) {
        assert!(data.len() <= MAX_DATAGRAM);
        let again = datagram.encode().expect("a decoded datagram encodes");
        assert_eq!(again, data);
    }
});
