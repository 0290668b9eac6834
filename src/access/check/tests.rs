use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement};

use super::*;
use crate::access::types::{Allow, ApiGatewayAccessSpec, RestApiRule};

fn access(name: &str, team: &str) -> ApiGatewayAccess {
    ApiGatewayAccess::new(
        name,
        ApiGatewayAccessSpec {
            namespace_selector: LabelSelector {
                match_labels: Some(BTreeMap::from([("team".into(), team.into())])),
                match_expressions: None,
            },
            role_arn: None,
            external_id: None,
            regions: None,
            rest_apis: None,
            allow: Allow::default(),
            quota: None,
        },
    )
}

fn labels(team: &str) -> BTreeMap<String, String> {
    BTreeMap::from([("team".into(), team.into())])
}

fn admitted(access: ApiGatewayAccess) -> Admission {
    Admission::Access(Arc::new(access))
}

#[test]
fn the_one_access_whose_selector_matches_is_selected() {
    let all = vec![
        Arc::new(access("shop", "shop")),
        Arc::new(access("pay", "pay")),
    ];
    let got = select(&all, "shop-prod", &labels("shop"), None, AccessMode::Refuse).unwrap();
    assert_eq!(got.describe(), "ApiGatewayAccess shop");
}

#[test]
fn a_namespace_no_access_admits_is_refused_or_uses_the_operator_identity_by_mode() {
    let all = vec![Arc::new(access("shop", "shop"))];
    let refused = select(&all, "other", &labels("other"), None, AccessMode::Refuse).unwrap_err();
    assert_eq!(refused.rule, "spec.namespaceSelector");
    assert!(
        refused
            .message
            .contains("no ApiGatewayAccess admits namespace other"),
        "{}",
        refused.message
    );
    let own = select(
        &all,
        "other",
        &labels("other"),
        None,
        AccessMode::OperatorIdentity,
    )
    .unwrap();
    assert!(matches!(own, Admission::OperatorIdentity));
}

#[test]
fn several_admitting_accesses_need_an_access_ref() {
    let all = vec![Arc::new(access("b", "shop")), Arc::new(access("a", "shop"))];
    let refused = select(
        &all,
        "ns",
        &labels("shop"),
        None,
        AccessMode::OperatorIdentity,
    )
    .unwrap_err();
    assert_eq!(refused.rule, "spec.accessRef");
    assert!(refused.message.contains("(a, b)"), "{}", refused.message);
    let chosen = select(&all, "ns", &labels("shop"), Some("b"), AccessMode::Refuse).unwrap();
    assert_eq!(chosen.describe(), "ApiGatewayAccess b");
}

#[test]
fn an_access_ref_must_exist_and_admit_the_namespace() {
    let all = vec![
        Arc::new(access("shop", "shop")),
        Arc::new(access("pay", "pay")),
    ];
    let missing = select(
        &all,
        "ns",
        &labels("shop"),
        Some("nope"),
        AccessMode::OperatorIdentity,
    )
    .unwrap_err();
    assert_eq!(missing.rule, "spec.accessRef");
    let foreign = select(
        &all,
        "ns",
        &labels("shop"),
        Some("pay"),
        AccessMode::OperatorIdentity,
    )
    .unwrap_err();
    assert!(
        foreign
            .message
            .contains("ApiGatewayAccess pay (spec.accessRef) does not admit namespace ns"),
        "{}",
        foreign.message
    );
}

#[test]
fn the_namespace_name_is_a_label_and_expressions_work() {
    let mut a = access("named", "x");
    a.spec.namespace_selector = LabelSelector {
        match_labels: None,
        match_expressions: Some(vec![LabelSelectorRequirement {
            key: "kubernetes.io/metadata.name".into(),
            operator: "In".into(),
            values: Some(vec!["alpha".into(), "beta".into()]),
        }]),
    };
    assert!(admits(&a, "beta", &BTreeMap::new()));
    assert!(!admits(&a, "gamma", &BTreeMap::new()));
    let mut broken = access("broken", "x");
    broken.spec.namespace_selector.match_expressions = Some(vec![LabelSelectorRequirement {
        key: "team".into(),
        operator: "Near".into(),
        values: None,
    }]);
    assert!(
        !admits(&broken, "ns", &labels("x")),
        "an unparsable selector admits nothing"
    );
    let mut everyone = access("all", "x");
    everyone.spec.namespace_selector = LabelSelector::default();
    assert!(admits(&everyone, "any", &BTreeMap::new()));
}

fn request<'a>() -> Request<'a> {
    Request {
        region: "us-east-1",
        rest_api_id: Some("abc123"),
        ..Request::default()
    }
}

#[test]
fn the_operator_identity_has_no_allow_list() {
    let r = Request {
        creates: true,
        deletes: true,
        credentials: Some("arn:aws:iam::1:role/x"),
        ..request()
    };
    assert_eq!(allows(&Admission::OperatorIdentity, &r), Ok(()));
}

#[test]
fn regions_outside_the_list_are_refused() {
    let mut a = access("shop", "shop");
    a.spec.regions = Some(vec!["eu-west-1".into()]);
    let refused = allows(&admitted(a.clone()), &request()).unwrap_err();
    assert_eq!(refused.rule, "spec.regions");
    assert!(refused
        .message
        .contains("Region us-east-1 is not in spec.regions of ApiGatewayAccess shop"));
    assert_eq!(
        allows(
            &admitted(a),
            &Request {
                region: "eu-west-1",
                ..request()
            }
        ),
        Ok(())
    );
}

#[test]
fn rest_apis_by_id_and_by_name_pattern() {
    let mut a = access("shop", "shop");
    a.spec.rest_apis = Some(vec![
        RestApiRule {
            id: Some("abc123".into()),
            name_pattern: None,
        },
        RestApiRule {
            id: None,
            name_pattern: Some("shop-*".into()),
        },
    ]);
    let a = admitted(a);
    assert_eq!(allows(&a, &request()), Ok(()));
    let other = allows(
        &a,
        &Request {
            rest_api_id: Some("zzz999"),
            ..request()
        },
    )
    .unwrap_err();
    assert_eq!(other.rule, "spec.restApis");
    assert!(
        other
            .message
            .contains("REST API zzz999 is not in spec.restApis"),
        "{}",
        other.message
    );
    // By name: a matching name is admitted before and after its lookup.
    let named = Request {
        rest_api_id: None,
        rest_api_name: Some("shop-orders"),
        ..request()
    };
    assert_eq!(allows(&a, &named), Ok(()));
    assert_eq!(
        allows(
            &a,
            &Request {
                rest_api_id: Some("zzz999"),
                ..named.clone()
            }
        ),
        Ok(())
    );
    // A name outside the patterns may still resolve to an admitted id: looked up, then checked.
    let foreign = Request {
        rest_api_id: None,
        rest_api_name: Some("pay-api"),
        ..request()
    };
    assert_eq!(allows(&a, &foreign), Ok(()));
    let resolved = allows(
        &a,
        &Request {
            rest_api_id: Some("zzz999"),
            ..foreign.clone()
        },
    )
    .unwrap_err();
    assert!(
        resolved.message.contains("REST API pay-api (zzz999)"),
        "{}",
        resolved.message
    );
    assert_eq!(
        allows(
            &a,
            &Request {
                rest_api_id: Some("abc123"),
                ..foreign
            }
        ),
        Ok(())
    );
}

#[test]
fn with_name_patterns_only_a_foreign_name_is_refused_before_any_lookup() {
    let mut a = access("shop", "shop");
    a.spec.rest_apis = Some(vec![RestApiRule {
        id: None,
        name_pattern: Some("shop-*".into()),
    }]);
    let refused = allows(
        &admitted(a),
        &Request {
            rest_api_id: None,
            rest_api_name: Some("pay-api"),
            ..request()
        },
    )
    .unwrap_err();
    assert!(
        refused
            .message
            .contains("REST API pay-api is not in spec.restApis"),
        "{}",
        refused.message
    );
}

#[test]
fn create_delete_and_credentials_need_their_allow() {
    let a = access("shop", "shop");
    let creates = allows(
        &admitted(a.clone()),
        &Request {
            creates: true,
            ..request()
        },
    )
    .unwrap_err();
    assert_eq!(creates.rule, "spec.allow.createOrUpdate");
    let deletes = allows(
        &admitted(a.clone()),
        &Request {
            deletes: true,
            ..request()
        },
    )
    .unwrap_err();
    assert_eq!(deletes.rule, "spec.allow.deletionPolicyDelete");
    let role = "arn:aws:iam::111122223333:role/backend-orders";
    let creds = allows(
        &admitted(a.clone()),
        &Request {
            credentials: Some(role),
            ..request()
        },
    )
    .unwrap_err();
    assert_eq!(creds.rule, "spec.allow.credentials");
    let mut open = a;
    open.spec.allow = Allow {
        create_or_update: true,
        deletion_policy_delete: true,
        credentials: Some(vec!["arn:aws:iam::111122223333:role/backend-*".into()]),
    };
    let open = admitted(open);
    let all = Request {
        creates: true,
        deletes: true,
        credentials: Some(role),
        ..request()
    };
    assert_eq!(allows(&open, &all), Ok(()));
    let other = Request {
        credentials: Some("arn:aws:iam::111122223333:role/admin"),
        ..request()
    };
    assert_eq!(
        allows(&open, &other).unwrap_err().rule,
        "spec.allow.credentials"
    );
}

#[test]
fn glob_patterns() {
    assert!(glob_match("shop-*", "shop-"));
    assert!(glob_match("shop-*", "shop-orders"));
    assert!(!glob_match("shop-*", "shopx"));
    assert!(glob_match("a?c", "abc"));
    assert!(!glob_match("a?c", "ac"));
    assert!(glob_match("*a*b*", "xxaxxbxx"));
    assert!(!glob_match("*a*b", "xxaxxbxxc"));
    assert!(glob_match("*", ""));
    assert!(glob_match("exact", "exact"));
    assert!(!glob_match("exact", "exactly"));
}
