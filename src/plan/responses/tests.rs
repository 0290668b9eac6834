use std::collections::BTreeMap;

use proptest::prelude::*;

use super::aws_model;
use super::*;
use crate::crd::ContentHandling;

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn live_response(code: &str, pattern: Option<&str>) -> IntegrationResponse {
    IntegrationResponse {
        status_code: Some(code.into()),
        selection_pattern: pattern.map(str::to_string),
        response_parameters: Some(map(&[(
            "method.response.header.x-id",
            "integration.response.header.x-id",
        )])),
        response_templates: Some(map(&[("application/json", "$input.json('$')")])),
        content_handling: None,
    }
}

fn live(responses: &[IntegrationResponse]) -> BTreeMap<String, IntegrationResponse> {
    responses
        .iter()
        .map(|r| (r.status_code.clone().unwrap(), r.clone()))
        .collect()
}

fn spec(pairs: Vec<(&str, IntegrationResponseSpec)>) -> BTreeMap<String, IntegrationResponseSpec> {
    pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

fn kinds(calls: &[ResponseCall]) -> Vec<(ResponseCallKind, &str)> {
    calls
        .iter()
        .map(|c| (c.call, c.status_code.as_str()))
        .collect()
}

use ResponseCallKind::*;

#[test]
fn unset_manages_nothing_and_costs_nothing() {
    let live = live(&[live_response("200", None)]);
    assert!(plan_responses(None, Some(&live)).is_empty());
}

#[test]
fn empty_map_deletes_every_live_response() {
    let live = live(&[
        live_response("200", None),
        live_response("404", Some("4\\d\\d")),
    ]);
    let calls = plan_responses(Some(&BTreeMap::new()), Some(&live));
    assert_eq!(
        kinds(&calls),
        vec![
            (DeleteIntegrationResponse, "200"),
            (DeleteIntegrationResponse, "404")
        ]
    );
}

#[test]
fn unchanged_response_costs_nothing_even_when_it_manages_nothing_inside() {
    let live = live(&[live_response("200", None)]);
    let s = spec(vec![("200", IntegrationResponseSpec::default())]);
    assert!(plan_responses(Some(&s), Some(&live)).is_empty());
    let full = spec(vec![(
        "200",
        IntegrationResponseSpec {
            response_parameters: live["200"].response_parameters.clone(),
            response_templates: live["200"].response_templates.clone(),
            ..Default::default()
        },
    )]);
    assert!(plan_responses(Some(&full), Some(&live)).is_empty());
}

#[test]
fn a_new_response_is_put_with_only_the_spec_fields() {
    let s = spec(vec![(
        "201",
        IntegrationResponseSpec {
            selection_pattern: Some("2\\d\\d".into()),
            ..Default::default()
        },
    )]);
    let calls = plan_responses(Some(&s), None);
    assert_eq!(kinds(&calls), vec![(PutIntegrationResponse, "201")]);
    assert_eq!(
        calls[0].response,
        Some(IntegrationResponse {
            status_code: Some("201".into()),
            selection_pattern: Some("2\\d\\d".into()),
            ..Default::default()
        })
    );
}

#[test]
fn a_changed_pattern_is_one_update_with_the_recorded_op() {
    let live = live(&[live_response("404", Some("old"))]);
    let s = spec(vec![(
        "404",
        IntegrationResponseSpec {
            selection_pattern: Some("new".into()),
            ..Default::default()
        },
    )]);
    let calls = plan_responses(Some(&s), Some(&live));
    assert_eq!(kinds(&calls), vec![(UpdateIntegrationResponse, "404")]);
    assert_eq!(
        calls[0].patch_operations,
        Some(vec![PatchOperation {
            op: Op::Replace,
            path: "/selectionPattern".into(),
            value: Some("new".into())
        }])
    );
}

#[test]
fn a_changed_template_of_an_existing_content_type_is_a_replace_with_the_key_escaped() {
    let live = live(&[live_response("200", None)]);
    let s = spec(vec![(
        "200",
        IntegrationResponseSpec {
            response_templates: Some(map(&[("application/json", "{}")])),
            ..Default::default()
        },
    )]);
    let calls = plan_responses(Some(&s), Some(&live));
    assert_eq!(
        calls[0].patch_operations,
        Some(vec![PatchOperation {
            op: Op::Replace,
            path: "/responseTemplates/application~1json".into(),
            value: Some("{}".into())
        }])
    );
}

#[test]
fn every_change_without_an_evidenced_op_is_a_put_of_the_merged_response() {
    let base = live_response("200", Some("2\\d\\d"));
    let cases: Vec<(&str, IntegrationResponseSpec)> = vec![
        (
            "parameter changed",
            IntegrationResponseSpec {
                response_parameters: Some(map(&[("method.response.header.x-id", "'static'")])),
                ..Default::default()
            },
        ),
        (
            "parameter removed",
            IntegrationResponseSpec {
                response_parameters: Some(BTreeMap::new()),
                ..Default::default()
            },
        ),
        (
            "template added",
            IntegrationResponseSpec {
                response_templates: Some(map(&[
                    ("application/json", "$input.json('$')"),
                    ("text/plain", "x"),
                ])),
                ..Default::default()
            },
        ),
        (
            "template removed",
            IntegrationResponseSpec {
                response_templates: Some(BTreeMap::new()),
                ..Default::default()
            },
        ),
        (
            "template to passthrough",
            IntegrationResponseSpec {
                response_templates: Some(map(&[("application/json", "")])),
                ..Default::default()
            },
        ),
        (
            "contentHandling set",
            IntegrationResponseSpec {
                content_handling: Some(ContentHandling::ConvertToText),
                ..Default::default()
            },
        ),
        (
            "pattern emptied",
            IntegrationResponseSpec {
                selection_pattern: Some(String::new()),
                ..Default::default()
            },
        ),
    ];
    for (name, wanted) in cases {
        let live = live(std::slice::from_ref(&base));
        let s = spec(vec![("200", wanted.clone())]);
        let calls = plan_responses(Some(&s), Some(&live));
        assert_eq!(
            kinds(&calls),
            vec![(PutIntegrationResponse, "200")],
            "{name}"
        );
        let sent = calls[0].response.clone().unwrap();
        assert_eq!(sent, merged("200", &wanted, Some(&base)), "{name}");
        if wanted.response_parameters.is_none() {
            assert_eq!(sent.response_parameters, base.response_parameters, "{name}");
        }
        if wanted.response_templates.is_none() {
            assert_eq!(sent.response_templates, base.response_templates, "{name}");
        }
        if wanted.selection_pattern.is_none() {
            assert_eq!(sent.selection_pattern, base.selection_pattern, "{name}");
        }
    }
}

#[test]
fn a_pattern_set_on_the_default_response_is_a_put() {
    let live = live(&[live_response("200", None)]);
    let s = spec(vec![(
        "200",
        IntegrationResponseSpec {
            selection_pattern: Some("2\\d\\d".into()),
            ..Default::default()
        },
    )]);
    assert_eq!(
        kinds(&plan_responses(Some(&s), Some(&live))),
        vec![(PutIntegrationResponse, "200")]
    );
}

#[test]
fn order_is_deletes_then_patterned_then_the_default() {
    // The default moves from 200 to 500, 400 is new, 300 goes away.
    let live = live(&[live_response("200", None), live_response("300", Some("3"))]);
    let s = spec(vec![
        (
            "200",
            IntegrationResponseSpec {
                selection_pattern: Some("2\\d\\d".into()),
                ..Default::default()
            },
        ),
        (
            "400",
            IntegrationResponseSpec {
                selection_pattern: Some("4\\d\\d".into()),
                ..Default::default()
            },
        ),
        ("500", IntegrationResponseSpec::default()),
    ]);
    let calls = plan_responses(Some(&s), Some(&live));
    assert_eq!(
        kinds(&calls),
        vec![
            (DeleteIntegrationResponse, "300"),
            (PutIntegrationResponse, "200"),
            (PutIntegrationResponse, "400"),
            (PutIntegrationResponse, "500"),
        ]
    );
    let after = aws_model::apply(&live, &calls).expect("AWS takes the calls in this order");
    assert!(plan_responses(Some(&s), Some(&after)).is_empty());
}

#[test]
fn restore_puts_back_every_response_a_recreate_dropped() {
    let before = live(&[live_response("200", None), live_response("404", Some("4"))]);
    let desired = desired_responses(None, Some(&before));
    assert_eq!(desired, before);
    let calls = plan_restore(&desired, None);
    assert_eq!(
        kinds(&calls),
        vec![
            (PutIntegrationResponse, "404"),
            (PutIntegrationResponse, "200")
        ]
    );
    assert_eq!(aws_model::apply(&BTreeMap::new(), &calls).unwrap(), before);
}

#[test]
fn restore_with_a_spec_keeps_unmanaged_fields_of_managed_responses() {
    let before = live(&[live_response("200", None), live_response("404", Some("4"))]);
    let s = spec(vec![(
        "200",
        IntegrationResponseSpec {
            response_templates: Some(map(&[("application/json", "{}")])),
            ..Default::default()
        },
    )]);
    let desired = desired_responses(Some(&s), Some(&before));
    assert_eq!(desired.keys().collect::<Vec<_>>(), vec!["200"]);
    assert_eq!(
        desired["200"].response_parameters,
        before["200"].response_parameters
    );
    let after = aws_model::apply(&BTreeMap::new(), &plan_restore(&desired, None)).unwrap();
    assert!(plan_responses(Some(&s), Some(&after)).is_empty());
}

// ---------------------------------------------------------------- property tests

const CODES: &[&str] = &["200", "201", "400", "404", "500"];

fn small_map(
    keys: &'static [&'static str],
    values: &'static [&'static str],
) -> impl Strategy<Value = BTreeMap<String, String>> {
    prop::collection::btree_map(
        prop::sample::select(keys).prop_map(str::to_string),
        prop::sample::select(values).prop_map(str::to_string),
        0..3,
    )
}

fn parameters() -> impl Strategy<Value = BTreeMap<String, String>> {
    small_map(
        &[
            "method.response.header.a",
            "method.response.header.b",
            "method.response.header.c",
        ],
        &[
            "'x'",
            "integration.response.header.h",
            "integration.response.body.id",
        ],
    )
}

fn templates() -> impl Strategy<Value = BTreeMap<String, String>> {
    small_map(
        &["application/json", "application/xml", "text/plain"],
        &["", "{}", "$input.body"],
    )
}

fn pattern() -> impl Strategy<Value = Option<String>> {
    prop::option::of(
        prop::sample::select(&["", "2\\d\\d", "4\\d\\d", ".*Not Found.*"][..])
            .prop_map(str::to_string),
    )
}

fn handling() -> impl Strategy<Value = Option<String>> {
    prop::option::of(
        prop::sample::select(&["CONVERT_TO_TEXT", "CONVERT_TO_BINARY"][..])
            .prop_map(str::to_string),
    )
}

pub(crate) fn live_map() -> impl Strategy<Value = BTreeMap<String, IntegrationResponse>> {
    prop::collection::btree_map(
        prop::sample::select(CODES).prop_map(str::to_string),
        (
            pattern(),
            prop::option::of(parameters()),
            prop::option::of(templates()),
            handling(),
        ),
        0..4,
    )
    .prop_map(|map| {
        let mut seen_default = false;
        map.into_iter()
            .map(|(code, (pattern, parameters, templates, handling))| {
                // AWS holds at most one default response.
                let pattern = match pattern {
                    p if p.as_deref().unwrap_or_default().is_empty() && seen_default => {
                        Some(format!("{code}-p"))
                    }
                    p => {
                        seen_default |= p.as_deref().unwrap_or_default().is_empty();
                        p
                    }
                };
                let response = IntegrationResponse {
                    status_code: Some(code.clone()),
                    selection_pattern: pattern,
                    response_parameters: parameters,
                    response_templates: templates,
                    content_handling: handling,
                };
                (code, response)
            })
            .collect()
    })
}

fn response_spec() -> impl Strategy<Value = IntegrationResponseSpec> {
    (
        prop::option::of(
            prop::sample::select(&["2\\d\\d", "4\\d\\d", ".*Not Found.*", "5.."][..])
                .prop_map(str::to_string),
        ),
        prop::option::of(parameters()),
        prop::option::of(templates()),
        prop::option::of(prop::sample::select(ContentHandling::ALL)),
    )
        .prop_map(
            |(selection_pattern, response_parameters, response_templates, content_handling)| {
                IntegrationResponseSpec {
                    selection_pattern,
                    response_parameters,
                    response_templates,
                    content_handling,
                }
            },
        )
}

/// A spec that admission accepts: at most one response may be the default (no pattern).
fn spec_map() -> impl Strategy<Value = Option<BTreeMap<String, IntegrationResponseSpec>>> {
    prop::option::of(
        prop::collection::btree_map(
            prop::sample::select(CODES).prop_map(str::to_string),
            response_spec(),
            0..4,
        )
        .prop_map(|mut map| {
            let defaults: Vec<String> = map
                .iter()
                .filter(|(_, r)| r.selection_pattern.is_none())
                .map(|(code, _)| code.clone())
                .skip(1)
                .collect();
            for code in defaults {
                map.get_mut(&code).unwrap().selection_pattern = Some(format!("{code}-s"));
            }
            map
        }),
    )
}

/// The spec's live counterpart is the default when the spec leaves the pattern unset and the
/// live response has none: the only one admission allows. Live defaults elsewhere would make
/// the state admission and AWS both refuse, so such cases are skipped by construction.
fn consistent(
    spec: &Option<BTreeMap<String, IntegrationResponseSpec>>,
    live: &BTreeMap<String, IntegrationResponse>,
) -> bool {
    let Some(spec) = spec else { return true };
    let desired = desired_responses(Some(spec), Some(live));
    desired.values().filter(|r| is_default(r)).count() <= 1
}

fn assert_holds(
    spec: &Option<BTreeMap<String, IntegrationResponseSpec>>,
    live: &BTreeMap<String, IntegrationResponse>,
    after: &BTreeMap<String, IntegrationResponse>,
) -> Result<(), TestCaseError> {
    let Some(spec) = spec else {
        prop_assert_eq!(after, live);
        return Ok(());
    };
    prop_assert_eq!(
        after.keys().collect::<Vec<_>>(),
        spec.keys().collect::<Vec<_>>()
    );
    for (code, wanted) in spec {
        let got = &after[code];
        let was = live.get(code);
        let before = |f: fn(&IntegrationResponse) -> Option<String>| was.and_then(f);
        match &wanted.selection_pattern {
            Some(p) => prop_assert_eq!(got.selection_pattern.as_ref(), Some(p)),
            None => prop_assert_eq!(
                got.selection_pattern.clone(),
                before(|r| r.selection_pattern.clone())
            ),
        }
        match wanted.content_handling {
            Some(c) => prop_assert_eq!(got.content_handling.as_deref(), Some(c.as_str())),
            None => prop_assert_eq!(
                got.content_handling.clone(),
                before(|r| r.content_handling.clone())
            ),
        }
        let or_empty = |m: &Option<BTreeMap<String, String>>| m.clone().unwrap_or_default();
        match &wanted.response_parameters {
            Some(m) => prop_assert_eq!(&or_empty(&got.response_parameters), m),
            None => prop_assert_eq!(
                or_empty(&got.response_parameters),
                was.map(|r| or_empty(&r.response_parameters))
                    .unwrap_or_default()
            ),
        }
        match &wanted.response_templates {
            Some(m) => prop_assert_eq!(&or_empty(&got.response_templates), m),
            None => prop_assert_eq!(
                or_empty(&got.response_templates),
                was.map(|r| or_empty(&r.response_templates))
                    .unwrap_or_default()
            ),
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn applying_the_calls_yields_the_spec_and_keeps_the_unmanaged(spec in spec_map(), live in live_map()) {
        prop_assume!(consistent(&spec, &live));
        let calls = plan_responses(spec.as_ref(), Some(&live));
        let after = aws_model::apply(&live, &calls).map_err(|e| TestCaseError::fail(format!("AWS refuses {calls:?}: {e}")))?;
        assert_holds(&spec, &live, &after)?;
    }

    #[test]
    fn planning_again_yields_nothing(spec in spec_map(), live in live_map()) {
        prop_assume!(consistent(&spec, &live));
        let calls = plan_responses(spec.as_ref(), Some(&live));
        let after = aws_model::apply(&live, &calls).map_err(TestCaseError::fail)?;
        prop_assert!(plan_responses(spec.as_ref(), Some(&after)).is_empty());
    }

    #[test]
    fn one_call_per_changed_response_and_none_for_the_rest(spec in spec_map(), live in live_map()) {
        let calls = plan_responses(spec.as_ref(), Some(&live));
        let mut codes: Vec<&str> = calls.iter().map(|c| c.status_code.as_str()).collect();
        let n = codes.len();
        codes.sort();
        codes.dedup();
        prop_assert_eq!(codes.len(), n, "a status code got two calls");
        for call in &calls {
            let code = &call.status_code;
            let changed = match spec.as_ref().and_then(|s| s.get(code)) {
                None => live.contains_key(code),
                Some(wanted) => live.get(code).is_none_or(|r| !same_response(&merged(code, wanted, Some(r)), r)),
            };
            prop_assert!(changed, "call for unchanged {}", code);
        }
    }

    #[test]
    fn a_recreate_restores_every_response(spec in spec_map(), live in live_map()) {
        prop_assume!(consistent(&spec, &live));
        let desired = desired_responses(spec.as_ref(), Some(&live));
        let after = aws_model::apply(&BTreeMap::new(), &plan_restore(&desired, None)).map_err(TestCaseError::fail)?;
        assert_holds(&spec, &live, &after)?;
        prop_assert!(plan_responses(spec.as_ref(), Some(&after)).is_empty());
    }
}
