//! The access check, pure: which access admits an object, and whether the object stays inside
//! it. Runs in every reconcile before any AWS call (see [`super::gate`] for the inputs).

use std::collections::BTreeMap;
use std::sync::Arc;

use kube::core::{Selector, SelectorExt};
use kube::ResourceExt;

use super::types::ApiGatewayAccess;

/// What happens to an object whose namespace no access admits (`--access-mode`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum AccessMode {
    /// Refused (Ready=False, Forbidden), no AWS call. The default: a namespace gets AWS
    /// rights only when the platform team writes an access for it.
    #[default]
    Refuse,
    /// It uses the operator's own identity with no allow-list (the behaviour before
    /// ApiGatewayAccess existed: for single-team clusters and upgrades).
    OperatorIdentity,
}

/// Why an object may not call AWS: the rule that refused it, and a message naming it and the
/// access.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// The field of the access (or the object) that decided, such as `spec.regions`.
    pub rule: &'static str,
    pub message: String,
}

impl Refusal {
    fn new(rule: &'static str, message: String) -> Self {
        Refusal { rule, message }
    }
}

/// Whose identity and limits an admitted object uses.
#[derive(Clone, Debug)]
pub enum Admission {
    /// An access admits it.
    Access(Arc<ApiGatewayAccess>),
    /// No access admits it and the mode lets it use the operator's own identity, unlimited.
    OperatorIdentity,
}

impl Admission {
    /// The access's name, for messages.
    pub fn describe(&self) -> String {
        match self {
            Admission::Access(a) => format!("ApiGatewayAccess {}", a.name_any()),
            Admission::OperatorIdentity => {
                "the operator's own identity (--access-mode=operator-identity)".into()
            }
        }
    }
}

/// Whether the access's selector admits a namespace with these labels. A selector the API
/// server accepted but that does not parse (an unknown operator) admits nothing.
pub fn admits(
    access: &ApiGatewayAccess,
    namespace: &str,
    labels: &BTreeMap<String, String>,
) -> bool {
    let mut labels = labels.clone();
    // Like Kubernetes' own namespace selectors, the namespace's name is a label.
    labels
        .entry("kubernetes.io/metadata.name".into())
        .or_insert_with(|| namespace.to_string());
    Selector::try_from(access.spec.namespace_selector.clone())
        .map(|s| s.matches(&labels))
        .unwrap_or(false)
}

/// The access an object in `namespace` uses: the one `access_ref` names (it must admit the
/// namespace), else the only one admitting it. Several admitting it without `access_ref` is
/// refused rather than guessed: which identity and allow-list apply must not depend on
/// which access was written last.
pub fn select(
    accesses: &[Arc<ApiGatewayAccess>],
    namespace: &str,
    labels: &BTreeMap<String, String>,
    access_ref: Option<&str>,
    mode: AccessMode,
) -> Result<Admission, Refusal> {
    if let Some(name) = access_ref {
        let Some(access) = accesses.iter().find(|a| a.name_any() == name) else {
            return Err(Refusal::new(
                "spec.accessRef",
                format!("spec.accessRef names ApiGatewayAccess {name}, which does not exist"),
            ));
        };
        if !admits(access, namespace, labels) {
            return Err(Refusal::new(
                "spec.namespaceSelector",
                format!("ApiGatewayAccess {name} (spec.accessRef) does not admit namespace {namespace} (its spec.namespaceSelector)"),
            ));
        }
        return Ok(Admission::Access(access.clone()));
    }
    let mut admitting: Vec<&Arc<ApiGatewayAccess>> = accesses
        .iter()
        .filter(|a| admits(a, namespace, labels))
        .collect();
    admitting.sort_by_key(|a| a.name_any());
    match (admitting.as_slice(), mode) {
        ([one], _) => Ok(Admission::Access((*one).clone())),
        ([], AccessMode::OperatorIdentity) => Ok(Admission::OperatorIdentity),
        ([], AccessMode::Refuse) => Err(Refusal::new(
            "spec.namespaceSelector",
            format!("no ApiGatewayAccess admits namespace {namespace}, and the operator refuses such objects (--access-mode=refuse)"),
        )),
        (several, _) => Err(Refusal::new(
            "spec.accessRef",
            format!(
                "namespace {namespace} is admitted by several ApiGatewayAccesses ({}): set spec.accessRef to one of them",
                several.iter().map(|a| a.name_any()).collect::<Vec<_>>().join(", ")
            ),
        )),
    }
}

/// What an object asks of its access, as far as it is known at the time of the check.
#[derive(Clone, Debug, Default)]
pub struct Request<'a> {
    /// The Region the object resolves to (the default when its spec names none).
    pub region: &'a str,
    /// The REST API's id: from the spec, or once a name is resolved.
    pub rest_api_id: Option<&'a str>,
    /// The REST API's name, when the spec names the API by name.
    pub rest_api_name: Option<&'a str>,
    /// managementPolicy CreateOrUpdate.
    pub creates: bool,
    /// deletionPolicy Delete.
    pub deletes: bool,
    /// The integration's `credentials` role.
    pub credentials: Option<&'a str>,
}

/// An object the access check governs: what it asks of its access.
pub trait Governed: ResourceExt {
    /// The request, with the REST API id once known (`rest_api_id`: pinned or resolved).
    fn access_request<'a>(
        &'a self,
        default_region: &'a str,
        rest_api_id: Option<&'a str>,
    ) -> Request<'a>;
    /// `spec.accessRef`.
    fn access_ref(&self) -> Option<&str>;
    /// The REST API id pinned in `status.target`.
    fn pinned_rest_api_id(&self) -> Option<&str>;
}

/// Whether the request stays inside the admission's allow-lists. The operator's own identity
/// (mode operator-identity) has none.
pub fn allows(admission: &Admission, request: &Request) -> Result<(), Refusal> {
    let Admission::Access(access) = admission else {
        return Ok(());
    };
    let name = access.name_any();
    let spec = &access.spec;
    if let Some(regions) = &spec.regions {
        if !regions.iter().any(|r| r == request.region) {
            return Err(Refusal::new(
                "spec.regions",
                format!(
                    "Region {} is not in spec.regions of ApiGatewayAccess {name}",
                    request.region
                ),
            ));
        }
    }
    if let Some(rules) = &spec.rest_apis {
        rest_api_allowed(rules, request).map_err(|what| {
            Refusal::new(
                "spec.restApis",
                format!("{what} is not in spec.restApis of ApiGatewayAccess {name}"),
            )
        })?;
    }
    if request.creates && !spec.allow.create_or_update {
        return Err(Refusal::new(
            "spec.allow.createOrUpdate",
            format!("managementPolicy CreateOrUpdate is not allowed by ApiGatewayAccess {name} (spec.allow.createOrUpdate)"),
        ));
    }
    if request.deletes && !spec.allow.deletion_policy_delete {
        return Err(Refusal::new(
            "spec.allow.deletionPolicyDelete",
            format!("deletionPolicy Delete is not allowed by ApiGatewayAccess {name} (spec.allow.deletionPolicyDelete)"),
        ));
    }
    if let Some(role) = request.credentials {
        let patterns = spec.allow.credentials.as_deref().unwrap_or_default();
        if !patterns.iter().any(|p| glob_match(p, role)) {
            return Err(Refusal::new(
                "spec.allow.credentials",
                format!("spec.credentials {role} is not in spec.allow.credentials of ApiGatewayAccess {name}"),
            ));
        }
    }
    Ok(())
}

/// An id rule admits that id; a name pattern admits an API the spec names by a matching name
/// (the id it resolves to is then pinned). Before a name is resolved, the lookup may go ahead
/// only if the name matches a pattern or some id rule could still admit what it resolves to.
/// An object naming its API by id needs an id rule: its name is not known without a call.
fn rest_api_allowed(rules: &[super::types::RestApiRule], request: &Request) -> Result<(), String> {
    let name_matches = request.rest_api_name.is_some_and(|name| {
        rules
            .iter()
            .filter_map(|r| r.name_pattern.as_deref())
            .any(|p| glob_match(p, name))
    });
    if name_matches {
        return Ok(());
    }
    match (request.rest_api_id, request.rest_api_name) {
        (Some(id), name) => {
            if rules.iter().any(|r| r.id.as_deref() == Some(id)) {
                Ok(())
            } else {
                Err(match name {
                    Some(name) => format!("REST API {name} ({id})"),
                    None => format!("REST API {id}"),
                })
            }
        }
        (None, Some(_)) if rules.iter().any(|r| r.id.is_some()) => Ok(()),
        (None, Some(name)) => Err(format!("REST API {name}")),
        (None, None) => Ok(()),
    }
}

/// `*` matches any run of characters (none included), `?` exactly one; everything else itself.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    // Iterative with one backtrack point: linear in practice, no recursion on long inputs.
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests;
