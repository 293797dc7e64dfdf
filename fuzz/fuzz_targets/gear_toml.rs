//! Any bytes as Gear.toml files through gear-spec's whole front end: see `gear_spec::fuzz`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    gear_spec::fuzz::front_end(data);
});
