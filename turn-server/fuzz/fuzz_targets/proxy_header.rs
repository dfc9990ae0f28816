//! PROXY protocol v1/v2 headers: never a panic, a header never longer than the bytes
//! given, and a verdict that never changes as more bytes arrive (the reader peeks at a
//! growing buffer until the parser decides).
#![no_main]

use libfuzzer_sys::fuzz_target;
use turn_proto::proxy_header::{ProxyHeader, parse};

fuzz_target!(|data: &[u8]| {
    let full = parse(data);
    if let Ok(Some((header, len))) = full {
        assert!(len > 0 && len <= data.len());
        assert_eq!(
            parse(&data[..len]),
            full,
            "the header alone decides the same"
        );
        if let ProxyHeader::Proxied {
            source,
            destination,
        } = header
        {
            assert_eq!(source.is_ipv4(), destination.is_ipv4());
        }
    }
    // Every prefix is undecided, or already says what the whole says.
    for cut in 0..data.len().min(600) {
        match parse(&data[..cut]) {
            Ok(None) => {}
            decided => assert_eq!(decided, full, "verdict changed after {cut} bytes"),
        }
    }
});
