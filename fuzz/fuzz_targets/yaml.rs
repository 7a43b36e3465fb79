//! Both YAML parser paths on any text: no panic, no stack overflow, no
//! unbounded memory; the fast path agrees with the general parser.
#![no_main]

use libfuzzer_sys::fuzz_target;
use slipway::design::yaml;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let general = yaml::parse_general(text, 0);
    let either = yaml::parse_stream(text);
    match (&either, &general) {
        (Ok(a), Ok(b)) => assert_eq!(a.len(), b.len(), "document counts differ"),
        (Err(e), _) if e.kind == yaml::ErrorKind::TooDeep => {
            assert_eq!(Some(e), general.as_ref().err(), "depth errors differ")
        }
        _ => {}
    }
});
