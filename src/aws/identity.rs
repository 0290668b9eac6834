//! Whose credentials a call uses. An object admitted by an ApiGatewayAccess with a `roleArn`
//! calls AWS as that role (sts:AssumeRole, session `apigw-NAMESPACE`); otherwise as the
//! operator. Implementations of the AWS traits hand out a copy of themselves per identity
//! ([`Scoped::scoped`]).

use std::future::Future;
use std::sync::Arc;

use super::AwsError;

/// An identity: the operator's own (no role) or an assumed role, and the quota the access
/// gives its account.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Identity {
    /// The role to assume; None: the operator's own identity.
    pub role_arn: Option<String>,
    pub external_id: Option<String>,
    /// The AssumeRole session name (it shows in CloudTrail).
    pub session_name: String,
    /// The access's `quota` (rps, burst) for its account; None: the operator's flags.
    pub quota: Option<(f64, u32)>,
    /// The access's name, for messages.
    pub access: Option<String>,
}

impl Identity {
    /// The operator's own identity.
    pub fn operator() -> Self {
        Identity::default()
    }

    /// What the credentials cache is keyed by: one set of credentials per role, external id
    /// and session.
    pub fn cache_key(&self) -> Option<String> {
        let role = self.role_arn.as_ref()?;
        Some(format!(
            "{role}\n{}\n{}",
            self.external_id.as_deref().unwrap_or_default(),
            self.session_name
        ))
    }

    /// Who acts, for messages: the role and the access.
    pub fn describe(&self) -> String {
        match (&self.role_arn, &self.access) {
            (Some(role), Some(access)) => format!("role {role} (ApiGatewayAccess {access})"),
            (Some(role), None) => format!("role {role}"),
            (None, Some(access)) => {
                format!("the operator's own identity (ApiGatewayAccess {access})")
            }
            (None, None) => "the operator's own identity".into(),
        }
    }
}

/// The session name of the objects of a namespace: `apigw-NAMESPACE`, cut to AWS's 64
/// characters (namespace names are DNS labels, which AWS's session-name alphabet admits).
pub fn session_name(namespace: &str) -> String {
    let mut name = format!("apigw-{namespace}");
    name.truncate(64);
    name
}

/// The account of a role ARN (`arn:PARTITION:iam::ACCOUNT:role/NAME`).
pub fn account_of_role(role_arn: &str) -> Option<&str> {
    let account = role_arn.split(':').nth(4)?;
    (account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit())).then_some(account)
}

/// Whether AWS said the credentials expired: they are dropped and assumed again.
pub fn is_expired_token(error: &AwsError) -> bool {
    matches!(error, AwsError::Unauthorized { code, message }
        if code.contains("ExpiredToken") || message.contains("ExpiredToken"))
}

/// An AWS layer that can act as another identity.
pub trait Scoped: Send + Sync + Sized + 'static {
    /// This layer acting as `identity`; cheap after the first time (credentials are cached and
    /// refreshed before they expire).
    fn scoped(self: &Arc<Self>, identity: &Identity) -> impl Future<Output = Arc<Self>> + Send;

    /// Drops the cached credentials of `identity` (AWS said they expired): the next
    /// [`Scoped::scoped`] assumes the role again.
    fn forget(&self, identity: &Identity);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_names_name_the_namespace_within_64_characters() {
        assert_eq!(session_name("shop"), "apigw-shop");
        assert_eq!(session_name(&"n".repeat(63)).len(), 64);
    }

    #[test]
    fn the_account_comes_from_the_role_arn() {
        assert_eq!(
            account_of_role("arn:aws:iam::111122223333:role/apigw-shop"),
            Some("111122223333")
        );
        assert_eq!(account_of_role("arn:aws:iam::1:role/x"), None);
        assert_eq!(account_of_role("not an arn"), None);
    }

    #[test]
    fn an_expired_token_is_recognised() {
        let expired = AwsError::Unauthorized {
            code: "ExpiredTokenException".into(),
            message: "The security token included in the request is expired".into(),
        };
        assert!(is_expired_token(&expired));
        let denied = AwsError::Unauthorized {
            code: "AccessDeniedException".into(),
            message: "not authorized".into(),
        };
        assert!(!is_expired_token(&denied));
    }
}
