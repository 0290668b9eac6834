//! plan(spec, live) never panics; its operations are ones AWS supports; on an admissible spec
//! and a plausible live state, AWS (the project's model) accepts the plan, and planning again
//! gives nothing.
#![no_main]

use apigw_operator_fuzz::{check, Case};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|case: Case| {
    check(&case, true);
});
