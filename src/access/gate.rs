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

use super::check::{self, AccessMode, Admission, Refusal, Request};
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
        self.namespaces
            .state()
            .iter()
            .find(|n| n.name_any() == namespace)
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
