//! escape_key / unescape_key: round trips, no raw / in an escaped key, every ~ escaped, a
//! well-formed segment is stable, and a non-empty key makes a supported path that AWS (the
//! project's model) reads back as the same key.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|key: &str| {
    apigw_operator_fuzz::check_escaping(key);
});
