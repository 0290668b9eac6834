//! The planner fed from raw JSON, as the operator and `plan --from` read it: a spec and a live
//! Integration (GetIntegration's output) deserialized from bytes. Whatever serde accepts must
//! plan without panicking, with only supported operations.
#![no_main]

use apigw_operator::crd::ApiGatewayIntegrationSpec;
use apigw_operator::integration::Integration;
use apigw_operator_fuzz::{check, Case};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Two JSON documents separated by a NUL byte: spec, then live.
    let mut parts = data.splitn(2, |b| *b == 0);
    let (Some(spec), Some(live)) = (parts.next(), parts.next()) else {
        return;
    };
    let Ok(spec) = serde_json::from_slice::<ApiGatewayIntegrationSpec>(spec) else {
        return;
    };
    let Ok(live) = serde_json::from_slice::<Integration>(live) else {
        return;
    };
    check(&Case { spec, live }, false);
});
