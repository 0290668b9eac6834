//! Conditions: what one reconcile concluded, turned into the kstatus-compatible conditions that
//! `kubectl wait`, Helm `--wait`, Argo CD and Flux read.
//!
//! - `Ready`: AWS matches the spec of `observedGeneration`.
//! - `Synced`: the last call to AWS succeeded; when not, its message is AWS's error.
//! - `Reconciling` (kstatus: InProgress): the operator is still working and will retry by itself.
//! - `Stalled` (kstatus: Failed): the operator cannot make progress until a person changes the
//!   spec (or AWS, for Observe): InvalidSpec, RequiresReplacement, Drifted under Observe.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

/// What a reconcile concluded, one variant per `Ready` reason.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// AWS matches the spec.
    Synced,
    /// Observe: AWS differs from the spec; the message lists the operations it would take.
    Drifted(String),
    /// The integration, method or resource is missing (or a name did not resolve).
    TargetNotFound(String),
    /// AWS said 400: the spec is wrong for AWS. Not retried until the spec changes.
    InvalidSpec(String),
    /// A field UpdateIntegration cannot change differs and the policy does not allow PutIntegration.
    RequiresReplacement(String),
    /// AWS throttled the operator (429); retried after Retry-After.
    Throttled(String),
    /// Any other AWS failure (5xx, 409, timeouts, connection errors, 401/403); retried with backoff.
    AwsError(String),
    /// The object carries apigw.dev/paused: "true".
    Paused,
    /// An older object manages the same integration; the message names it. No AWS call.
    Conflict(String),
    /// AWS's answer to UpdateIntegration still differs from the spec at the paths named (AWS
    /// normalised a value, ignored an op, or someone writes concurrently); retried with backoff.
    NotConverged(String),
    /// The spec now resolves to another integration than the one pinned in `status.target`.
    TargetChanged(String),
    /// DeleteIntegration failed; retried with backoff, the finalizer stays.
    DeleteFailed(String),
    /// The object's access does not allow it (or no access admits its namespace); the message
    /// names the rule and the access. No AWS call.
    Forbidden(String),
    /// AWS refused the identity: AssumeRole failed, or the role may not make a call. The
    /// message names the role; retried with backoff (it is fixed in IAM, not in the spec).
    AccessDenied(String),
    /// A stage serves what its selected integrations say (reason Synced, Ready=True); the
    /// message says which deployment and how many integrations.
    Live(String),
    /// A stage has changes that are not served yet (settling, integrations still changing, or
    /// waiting for the deployment quota); it deploys by itself.
    Pending(String),
}

impl Outcome {
    /// The `Ready` reason.
    pub fn reason(&self) -> &'static str {
        match self {
            Outcome::Synced => "Synced",
            Outcome::Drifted(_) => "Drifted",
            Outcome::TargetNotFound(_) => "TargetNotFound",
            Outcome::InvalidSpec(_) => "InvalidSpec",
            Outcome::RequiresReplacement(_) => "RequiresReplacement",
            Outcome::Throttled(_) => "Throttled",
            Outcome::AwsError(_) => "AwsError",
            Outcome::Paused => "Paused",
            Outcome::Conflict(_) => "Conflict",
            Outcome::NotConverged(_) => "NotConverged",
            Outcome::TargetChanged(_) => "TargetChanged",
            Outcome::DeleteFailed(_) => "DeleteFailed",
            Outcome::Live(_) => "Synced",
            Outcome::Pending(_) => "Pending",
            Outcome::Forbidden(_) => "Forbidden",
            Outcome::AccessDenied(_) => "AccessDenied",
        }
    }

    pub fn message(&self) -> String {
        match self {
            Outcome::Synced => "the integration in AWS matches the spec".into(),
            Outcome::Paused => {
                "apigw.dev/paused is \"true\": the operator makes no AWS calls for this object"
                    .into()
            }
            Outcome::Drifted(m)
            | Outcome::TargetNotFound(m)
            | Outcome::InvalidSpec(m)
            | Outcome::RequiresReplacement(m)
            | Outcome::Throttled(m)
            | Outcome::AwsError(m)
            | Outcome::Conflict(m)
            | Outcome::NotConverged(m)
            | Outcome::TargetChanged(m)
            | Outcome::DeleteFailed(m)
            | Outcome::Live(m)
            | Outcome::Pending(m)
            | Outcome::Forbidden(m)
            | Outcome::AccessDenied(m) => m.clone(),
        }
    }

    /// Whether the last AWS call succeeded (the `Synced` condition).
    fn aws_call_succeeded(&self) -> bool {
        matches!(
            self,
            Outcome::Synced
                | Outcome::Drifted(_)
                | Outcome::RequiresReplacement(_)
                | Outcome::Live(_)
                | Outcome::Pending(_)
        )
    }

    /// The operator retries by itself (kstatus InProgress).
    pub fn is_reconciling(&self) -> bool {
        matches!(
            self,
            Outcome::TargetNotFound(_)
                | Outcome::Throttled(_)
                | Outcome::AwsError(_)
                | Outcome::NotConverged(_)
                | Outcome::DeleteFailed(_)
                | Outcome::Pending(_)
                | Outcome::AccessDenied(_)
        )
    }

    /// Ready=True.
    pub fn is_ready(&self) -> bool {
        matches!(self, Outcome::Synced | Outcome::Live(_))
    }

    /// Only a person can unblock it (kstatus Failed).
    pub fn is_stalled(&self) -> bool {
        matches!(
            self,
            Outcome::InvalidSpec(_)
                | Outcome::RequiresReplacement(_)
                | Outcome::Drifted(_)
                | Outcome::Conflict(_)
                | Outcome::TargetChanged(_)
                | Outcome::Forbidden(_)
        )
    }
}

fn condition(
    kind: &str,
    status: bool,
    reason: &str,
    message: String,
    generation: Option<i64>,
    now: &Time,
) -> Condition {
    Condition {
        type_: kind.to_string(),
        status: if status { "True" } else { "False" }.to_string(),
        reason: reason.to_string(),
        message,
        observed_generation: generation,
        last_transition_time: now.clone(),
    }
}

/// The four conditions for `outcome`. A condition whose status did not change keeps its
/// `lastTransitionTime`, so an unchanged outcome gives an identical list (and no status write).
pub fn conditions_for(
    outcome: &Outcome,
    previous: &[Condition],
    generation: Option<i64>,
    now: &Time,
) -> Vec<Condition> {
    let reason = outcome.reason();
    let message = outcome.message();
    let synced = outcome.aws_call_succeeded();
    let mut out = vec![
        condition(
            "Ready",
            outcome.is_ready(),
            reason,
            message.clone(),
            generation,
            now,
        ),
        condition(
            "Synced",
            synced,
            if synced { "Success" } else { reason },
            if synced {
                "the last call to AWS succeeded".into()
            } else {
                message.clone()
            },
            generation,
            now,
        ),
        condition(
            "Reconciling",
            outcome.is_reconciling(),
            reason,
            if outcome.is_reconciling() {
                message.clone()
            } else {
                String::new()
            },
            generation,
            now,
        ),
        condition(
            "Stalled",
            outcome.is_stalled(),
            reason,
            if outcome.is_stalled() {
                message
            } else {
                String::new()
            },
            generation,
            now,
        ),
    ];
    for new in &mut out {
        if let Some(old) = previous.iter().find(|c| c.type_ == new.type_) {
            if old.status == new.status {
                new.last_transition_time = old.last_transition_time.clone();
            }
        }
    }
    out
}

/// The `Ready` reason currently recorded, if any.
pub fn ready_reason(conditions: &[Condition]) -> Option<&str> {
    conditions
        .iter()
        .find(|c| c.type_ == "Ready")
        .map(|c| c.reason.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn time(secs: i64) -> Time {
        Time(k8s_openapi::jiff::Timestamp::from_second(secs).unwrap())
    }

    fn get<'a>(conditions: &'a [Condition], kind: &str) -> &'a Condition {
        conditions.iter().find(|c| c.type_ == kind).unwrap()
    }

    #[test]
    fn synced_is_ready_and_neither_reconciling_nor_stalled() {
        let c = conditions_for(&Outcome::Synced, &[], Some(3), &time(1));
        assert_eq!(get(&c, "Ready").status, "True");
        assert_eq!(get(&c, "Synced").status, "True");
        assert_eq!(get(&c, "Reconciling").status, "False");
        assert_eq!(get(&c, "Stalled").status, "False");
        assert!(c.iter().all(|c| c.observed_generation == Some(3)));
    }

    #[test]
    fn aws_errors_carry_aws_message_and_map_to_kstatus() {
        let c = conditions_for(
            &Outcome::InvalidSpec("Invalid patch path /x".into()),
            &[],
            Some(1),
            &time(1),
        );
        assert_eq!(get(&c, "Ready").reason, "InvalidSpec");
        assert_eq!(get(&c, "Synced").status, "False");
        assert_eq!(get(&c, "Synced").message, "Invalid patch path /x");
        assert_eq!(get(&c, "Stalled").status, "True");
        let c = conditions_for(
            &Outcome::Throttled("Too Many Requests".into()),
            &[],
            Some(1),
            &time(1),
        );
        assert_eq!(get(&c, "Reconciling").status, "True");
        assert_eq!(get(&c, "Stalled").status, "False");
    }

    #[test]
    fn new_reasons_map_to_kstatus() {
        for (outcome, reconciling, stalled) in [
            (Outcome::Conflict("owned by ns/a".into()), false, true),
            (Outcome::TargetChanged("x".into()), false, true),
            (Outcome::NotConverged("/uri".into()), true, false),
            (Outcome::DeleteFailed("boom".into()), true, false),
        ] {
            let c = conditions_for(&outcome, &[], Some(1), &time(1));
            assert_eq!(get(&c, "Ready").status, "False");
            assert_eq!(get(&c, "Ready").reason, outcome.reason());
            assert_eq!(get(&c, "Synced").status, "False", "{outcome:?}");
            assert_eq!(get(&c, "Reconciling").status == "True", reconciling);
            assert_eq!(get(&c, "Stalled").status == "True", stalled);
        }
    }

    #[test]
    fn unchanged_status_keeps_the_transition_time() {
        let first = conditions_for(&Outcome::Synced, &[], Some(1), &time(1));
        let again = conditions_for(&Outcome::Synced, &first, Some(1), &time(99));
        assert_eq!(first, again);
        let failed = conditions_for(
            &Outcome::AwsError("boom".into()),
            &first,
            Some(1),
            &time(99),
        );
        assert_eq!(get(&failed, "Ready").last_transition_time, time(99));
    }
}
