//! The whole design pipeline on any bytes: no panic, every error located.
#![no_main]

use libfuzzer_sys::fuzz_target;
use slipway::design::DesignFile;

fuzz_target!(|data: &[u8]| {
    let v = slipway::validate(&[DesignFile {
        path: "fuzz.yaml".into(),
        bytes: data.to_vec(),
    }]);
    for m in v.messages.iter().filter(|m| m.error) {
        assert!(m.source.is_some(), "{m:?}");
    }
});
