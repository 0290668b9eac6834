//! The gate every reconcile passes before any AWS call: the caches of accesses and
//! namespaces, the mode, and what an admitted object acts with ([`Admitted`]).

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

use k8s_openapi::api::core::v1::Namespace;
use kube::core::PartialObjectMeta;
use kube::runtime::reflector::{self, Store};
use kube::ResourceExt;

use super::check::{self, AccessMode, Admission, Governed, Refusal, Request};
use super::types::ApiGatewayAccess;
use crate::aws::identity::{self, Identity, Scoped};

/// The accesses and namespaces the operator watches, and its mode.
#[derive(Clone)]
pub struct Gate {
    mode: AccessMode,
    /// None: the ApiGatewayAccess CRD is not installed.
    accesses: Option<Store<ApiGatewayAccess>>,
    namespaces: Store<PartialObjectMeta<Namespace>>,
}

impl fmt::Debug for Gate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Gate")
            .field("mode", &self.mode)
            .field("accesses", &self.accesses.as_ref().map(|s| s.state().len()))
            .finish_non_exhaustive()
    }
}

impl Gate {
    pub fn new(
        mode: AccessMode,
        accesses: Option<Store<ApiGatewayAccess>>,
        namespaces: Store<PartialObjectMeta<Namespace>>,
    ) -> Self {
        Gate {
            mode,
            accesses,
            namespaces,
        }
    }

    /// A gate with no access and no namespace, in this mode (unit tests; a cluster without
    /// the CRD).
    pub fn empty(mode: AccessMode) -> Self {
        let (namespaces, _) = reflector::store();
        Gate::new(mode, None, namespaces)
    }

    /// Whether the ApiGatewayAccess CRD was installed at start.
    pub fn has_access_crd(&self) -> bool {
        self.accesses.is_some()
    }

    pub fn mode(&self) -> AccessMode {
        self.mode
    }

    /// Every access, for the admission ConfigMap and metrics.
    pub fn accesses(&self) -> Vec<Arc<ApiGatewayAccess>> {
        self.accesses
            .as_ref()
            .map(|s| s.state())
            .unwrap_or_default()
    }

    /// Every namespace's name and labels.
    pub fn namespaces(&self) -> Vec<(String, BTreeMap<String, String>)> {
        self.namespaces
            .state()
            .iter()
            .map(|n| (n.name_any(), n.labels().clone()))
            .collect()
    }

    /// The labels of a namespace (none when the cache does not know it yet: a namespace
    /// created a moment ago; its arrival wakes every object again).
    fn labels(&self, namespace: &str) -> BTreeMap<String, String> {
        // By key: every reconcile asks, and the cache holds every namespace.
        self.namespaces
            .get(&reflector::ObjectRef::new(namespace))
            .map(|n| n.labels().clone())
            .unwrap_or_default()
    }

    /// Which access admits an object of `namespace` (step "access check", first half).
    pub fn admit(&self, namespace: &str, access_ref: Option<&str>) -> Result<Admission, Refusal> {
        if self.accesses.is_none() && self.mode == AccessMode::Refuse {
            return Err(Refusal {
                rule: "ApiGatewayAccess",
                message: "the ApiGatewayAccess CRD is not installed and the operator refuses objects no access admits (--access-mode=refuse): install crds/ and an access for this namespace".into(),
            });
        }
        check::select(
            &self.accesses(),
            namespace,
            &self.labels(namespace),
            access_ref,
            self.mode,
        )
    }
}

impl Gate {
    /// Which account an object of `namespace` acts in, as far as the gate knows without a
    /// call: a role's account, or "operator" for the operator's own identity; None when
    /// refused. Two objects on one integration id in different accounts are different
    /// integrations, so ownership is decided within an account.
    pub fn account_key(&self, namespace: &str, access_ref: Option<&str>) -> Option<String> {
        let admission = self.admit(namespace, access_ref).ok()?;
        let role = match &admission {
            Admission::Access(access) => access.spec.role_arn.clone(),
            Admission::OperatorIdentity => None,
        };
        Some(match role {
            Some(role) => identity::account_of_role(&role)
                .map(str::to_string)
                .unwrap_or(role),
            None => "operator".into(),
        })
    }
}

/// The identity an admitted object of `namespace` calls AWS with.
pub fn identity_of(admission: &Admission, namespace: &str) -> Identity {
    match admission {
        Admission::OperatorIdentity => Identity::operator(),
        Admission::Access(access) => Identity {
            role_arn: access.spec.role_arn.clone(),
            external_id: access.spec.external_id.clone(),
            session_name: identity::session_name(namespace),
            quota: access.spec.quota.as_ref().map(|q| (q.rps, q.burst)),
            access: Some(access.name_any()),
        },
    }
}

/// A controller context acting for one admitted object: the AWS layer as the object's
/// identity, and what its access allows. Derefs to the context, so a reconcile step reads
/// `ctx.aws` and gets the object's identity.
pub struct Admitted<'a, C, A> {
    ctx: &'a C,
    pub aws: Arc<A>,
    pub admission: Admission,
    pub identity: Identity,
}

impl<C, A> Deref for Admitted<'_, C, A> {
    type Target = C;

    fn deref(&self) -> &C {
        self.ctx
    }
}

impl<'a, C, A: Scoped> Admitted<'a, C, A> {
    /// Admits an object of `namespace` and sets up its identity; or the refusal.
    pub async fn new(
        ctx: &'a C,
        gate: &Gate,
        aws: &Arc<A>,
        namespace: &str,
        access_ref: Option<&str>,
    ) -> Result<Self, Refusal> {
        let admission = gate.admit(namespace, access_ref)?;
        let identity = identity_of(&admission, namespace);
        let aws = aws.scoped(&identity).await;
        Ok(Admitted {
            ctx,
            aws,
            admission,
            identity,
        })
    }

    /// Acting as the operator's own identity, admitted by no access (unit tests).
    #[cfg(test)]
    pub fn operator(ctx: &'a C, aws: Arc<A>) -> Self {
        Admitted {
            ctx,
            aws,
            admission: Admission::OperatorIdentity,
            identity: Identity::operator(),
        }
    }

    /// [`Admitted::new`], then [`Admitted::allows`] for `request`: the whole access check.
    pub async fn admit(
        ctx: &'a C,
        gate: &Gate,
        aws: &Arc<A>,
        namespace: &str,
        access_ref: Option<&str>,
        request: &Request<'_>,
    ) -> Result<Self, Refusal> {
        let acting = Admitted::new(ctx, gate, aws, namespace, access_ref).await?;
        acting.allows(request)?;
        Ok(acting)
    }

    /// The whole access check of `obj`, before any AWS call: [`Admitted::admit`] with its
    /// namespace, `spec.accessRef` and request (the pinned REST API id, if any).
    pub async fn admit_object<K: Governed>(
        ctx: &'a C,
        gate: &Gate,
        aws: &Arc<A>,
        obj: &K,
        default_region: &str,
    ) -> Result<Self, Refusal> {
        let namespace = obj.namespace().unwrap_or_default();
        let request = obj.access_request(default_region, obj.pinned_rest_api_id());
        Admitted::admit(ctx, gate, aws, &namespace, obj.access_ref(), &request).await
    }

    /// Whether the access allows this request (step "access check", second half; again once
    /// a REST API name is resolved to its id).
    pub fn allows(&self, request: &Request) -> Result<(), Refusal> {
        check::allows(&self.admission, request)
    }
}

/// A refusal met while deleting: the AWS delete (`call`) is not sent and the finalizer stays
/// (dropping it would silently retain what the spec said to delete); the message says the way
/// out.
pub fn refused_delete(refusal: Refusal, call: &str) -> Refusal {
    let message = format!(
        "{}; {call} not sent: the finalizer stays until the access allows it (or set {}: \"true\" to drop it without calling AWS)",
        refusal.message,
        crate::ORPHAN_ANNOTATION
    );
    Refusal { message, ..refusal }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
    use kube::runtime::watcher;

    use super::*;
    use crate::access::types::{Allow, ApiGatewayAccessSpec, QuotaSpec};
    use crate::aws::fake::FakeAws;

    fn namespace(name: &str, team: &str) -> PartialObjectMeta<Namespace> {
        PartialObjectMeta::<Namespace> {
            metadata: ObjectMeta {
                name: Some(name.into()),
                labels: Some(BTreeMap::from([("team".into(), team.into())])),
                ..ObjectMeta::default()
            },
            ..PartialObjectMeta::default()
        }
    }

    fn access(name: &str, team: &str, role: Option<&str>) -> ApiGatewayAccess {
        ApiGatewayAccess::new(
            name,
            ApiGatewayAccessSpec {
                namespace_selector: LabelSelector {
                    match_labels: Some(BTreeMap::from([("team".into(), team.into())])),
                    match_expressions: None,
                },
                role_arn: role.map(str::to_string),
                external_id: Some("ext".into()),
                regions: Some(vec!["us-east-1".into()]),
                rest_apis: None,
                allow: Allow::default(),
                quota: Some(QuotaSpec { rps: 2.0, burst: 4 }),
            },
        )
    }

    fn gate(mode: AccessMode, accesses: Vec<ApiGatewayAccess>) -> Gate {
        let (namespaces, mut ns_writer) = reflector::store();
        for ns in [namespace("shop", "shop"), namespace("other", "other")] {
            ns_writer.apply_watcher_event(&watcher::Event::Apply(ns));
        }
        let (store, mut writer) = reflector::store();
        for a in accesses {
            writer.apply_watcher_event(&watcher::Event::Apply(a));
        }
        Gate::new(mode, Some(store), namespaces)
    }

    #[tokio::test]
    async fn an_admitted_object_acts_as_its_access_role_with_a_session_naming_its_namespace() {
        let role = "arn:aws:iam::111122223333:role/apigw-access-shop";
        let gate = gate(AccessMode::Refuse, vec![access("shop", "shop", Some(role))]);
        let aws = Arc::new(FakeAws::default());
        let request = Request {
            region: "us-east-1",
            ..Request::default()
        };
        let acting = Admitted::admit(&(), &gate, &aws, "shop", None, &request)
            .await
            .unwrap();
        assert_eq!(acting.identity.role_arn.as_deref(), Some(role));
        assert_eq!(acting.identity.session_name, "apigw-shop");
        assert_eq!(acting.identity.external_id.as_deref(), Some("ext"));
        assert_eq!(acting.identity.quota, Some((2.0, 4)));
        assert_eq!(aws.identities.lock().unwrap().len(), 1);
        assert_eq!(
            gate.account_key("shop", None).as_deref(),
            Some("111122223333")
        );
    }

    #[tokio::test]
    async fn a_refused_object_gets_no_identity_and_so_makes_no_call() {
        let gate = gate(AccessMode::Refuse, vec![access("shop", "shop", None)]);
        let aws = Arc::new(FakeAws::default());
        let anywhere = Request {
            region: "us-east-1",
            ..Request::default()
        };
        let refused = Admitted::admit(&(), &gate, &aws, "other", None, &anywhere)
            .await
            .err()
            .unwrap();
        assert_eq!(refused.rule, "spec.namespaceSelector");
        assert!(
            aws.identities.lock().unwrap().is_empty(),
            "no identity set up"
        );
        let elsewhere = Request {
            region: "eu-west-1",
            ..Request::default()
        };
        let refused = Admitted::admit(&(), &gate, &aws, "shop", None, &elsewhere)
            .await
            .err()
            .unwrap();
        assert_eq!(refused.rule, "spec.regions");
        assert!(aws.calls.lock().unwrap().is_empty());
        assert_eq!(gate.account_key("other", None), None);
        assert_eq!(gate.account_key("shop", None).as_deref(), Some("operator"));
    }

    #[test]
    fn without_the_crd_the_refuse_mode_refuses_and_the_other_admits() {
        let refusing = Gate::empty(AccessMode::Refuse);
        let refused = refusing.admit("shop", None).unwrap_err();
        assert!(
            refused.message.contains("CRD is not installed"),
            "{}",
            refused.message
        );
        let open = Gate::empty(AccessMode::OperatorIdentity);
        assert!(matches!(
            open.admit("shop", None),
            Ok(Admission::OperatorIdentity)
        ));
    }

    #[test]
    fn the_admission_configmap_lists_each_admitted_namespace_with_its_accesses() {
        let gate = gate(
            AccessMode::Refuse,
            vec![access("b", "shop", None), access("a", "shop", None)],
        );
        let data = crate::access::reconcile::admitted_namespaces(&gate);
        assert_eq!(data, BTreeMap::from([("shop".into(), "a,b".into())]));
    }

    #[test]
    fn a_deleted_access_stops_admitting() {
        let (namespaces, mut ns_writer) = reflector::store();
        ns_writer.apply_watcher_event(&watcher::Event::Apply(namespace("shop", "shop")));
        let (store, mut writer) = reflector::store();
        let a = access("shop", "shop", None);
        writer.apply_watcher_event(&watcher::Event::Apply(a.clone()));
        let gate = Gate::new(AccessMode::Refuse, Some(store), namespaces);
        assert!(gate.admit("shop", None).is_ok());
        writer.apply_watcher_event(&watcher::Event::Delete(a));
        assert!(gate.admit("shop", None).is_err());
    }
}
