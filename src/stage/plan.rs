//! The stage planner: pure functions from (the stage, the selected integrations as the cache
//! has them, the Stage AWS has, now) to what the stage needs: nothing, a wait, one
//! CreateDeployment, one UpdateStage of its variables.
//!
//! The rollout rule (DESIGN.md "ApiGatewayStage"):
//! - an integration is **written** when the operator wrote it in AWS after the stage's last
//!   deployment (`status.lastWriteTime` of the integration against the stage's `deployedAt`);
//! - it is **changing** while the operator still works on it by itself: its generation is not
//!   yet judged (`syncedGeneration` behind `generation`) and its Ready reason is not one only a
//!   person can clear;
//! - it is **blocked** when only a person can clear its Ready reason (InvalidSpec,
//!   RequiresReplacement, Conflict, TargetChanged, Paused, Drifted under Observe). A blocked
//!   integration never holds a deployment back: the deployment ships the draft as AWS has it,
//!   which for a blocked object is its last good state. The stage lists it;
//! - the stage deploys when something was written, nothing is changing, and `settleSeconds`
//!   passed since the last write. A changing integration holds the deployment back at most
//!   [`MAX_HOLD`] after the last write: an object that retries for longer (AWS errors,
//!   throttling, a missing target) is listed and the others ship without it.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::jiff::Timestamp;
use kube::core::{Selector, SelectorExt};
use kube::ResourceExt;

use crate::cache::CachedIntegration;
use crate::plan::{escape_key, Op, PatchOperation};
use crate::stage::types::{ApiGatewayStageSpec, Published, StageTarget};

/// The longest a changing integration holds a due deployment back, counted from the last write.
pub const MAX_HOLD: Duration = Duration::from_secs(300);

/// Ready reasons only a person can clear.
const BLOCKED_REASONS: &[&str] = &[
    "InvalidSpec",
    "RequiresReplacement",
    "Conflict",
    "TargetChanged",
    "Paused",
    "Drifted",
];

/// One selected integration, as the stage sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    /// namespace/name.
    pub key: String,
    pub generation: i64,
    /// When the operator last wrote it in AWS.
    pub last_write: Option<Timestamp>,
    /// Its generation is judged against AWS.
    pub settled: bool,
    /// Its Ready reason, if any.
    pub reason: Option<String>,
}

impl Member {
    fn blocked(&self) -> bool {
        self.reason
            .as_deref()
            .is_some_and(|r| BLOCKED_REASONS.contains(&r))
    }
}

/// Whether `obj` is published by a stage of `spec` in `namespace` that manages `target`: same
/// namespace, labels matched by the selector, and the same REST API and Region (pinned in its
/// status, or, before its first resolution, named by id in its spec).
pub fn selects(
    spec: &ApiGatewayStageSpec,
    namespace: &str,
    target: &StageTarget,
    default_region: &str,
    obj: &CachedIntegration,
) -> bool {
    if obj.namespace().as_deref() != Some(namespace) {
        return false;
    }
    let on_target = match obj.status.as_ref().and_then(|s| s.target.as_ref()) {
        Some(pinned) => pinned.rest_api_id == target.rest_api_id && pinned.region == target.region,
        None => {
            obj.spec.rest_api_id.as_deref() == Some(target.rest_api_id.as_str())
                && obj.spec.region.as_deref().unwrap_or(default_region) == target.region
        }
    };
    if !on_target {
        return false;
    }
    match &spec.integration_selector {
        None => true,
        Some(selector) => Selector::try_from(selector.clone())
            .map(|s| s.matches(obj.labels()))
            .unwrap_or(false),
    }
}

/// The stage's view of one selected integration.
pub fn member(obj: &CachedIntegration) -> Member {
    let status = obj.status.as_ref();
    let generation = obj.metadata.generation.unwrap_or_default();
    Member {
        key: format!("{}/{}", obj.namespace().unwrap_or_default(), obj.name_any()),
        generation,
        last_write: status.and_then(|s| s.last_write_time.as_ref()).map(|t| t.0),
        settled: status.and_then(|s| s.synced_generation) == Some(generation),
        reason: status
            .and_then(|s| s.ready.as_ref())
            .map(|(_, reason)| reason.to_string()),
    }
}

/// Where a rollout stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rollout {
    /// Written since the deployment, or changing: not served yet.
    pub pending: Vec<String>,
    /// Changing (the operator still works on them).
    pub changing: Vec<String>,
    /// Only a person can unblock them ("namespace/name (Reason)").
    pub blocked: Vec<String>,
    /// The latest write of any member.
    pub last_write: Option<Timestamp>,
    /// Members written since the deployment.
    pub written: usize,
    /// What a deployment now would publish.
    pub published: Published,
}

/// Sorts the members out against the stage's last deployment.
pub fn rollout(members: &[Member], deployed_at: Option<Timestamp>) -> Rollout {
    let mut out = Rollout {
        pending: Vec::new(),
        changing: Vec::new(),
        blocked: Vec::new(),
        last_write: None,
        written: 0,
        published: digest(members),
    };
    for m in members {
        out.last_write = out.last_write.max(m.last_write);
        let written = match (m.last_write, deployed_at) {
            (Some(w), Some(d)) => w > d,
            (Some(_), None) => true,
            (None, _) => false,
        };
        if m.blocked() {
            out.blocked.push(format!(
                "{} ({})",
                m.key,
                m.reason.as_deref().unwrap_or_default()
            ));
        } else if !m.settled {
            out.changing.push(m.key.clone());
        }
        if written {
            out.written += 1;
        }
        if written || (!m.settled && !m.blocked()) {
            out.pending.push(m.key.clone());
        }
    }
    out
}

fn digest(members: &[Member]) -> Published {
    let mut pairs: Vec<(&str, i64)> = members
        .iter()
        .map(|m| (m.key.as_str(), m.generation))
        .collect();
    pairs.sort_unstable();
    let text: String = pairs
        .iter()
        .map(|(key, generation)| format!("{key}@{generation}\n"))
        .collect();
    Published {
        integrations: pairs.len() as u32,
        digest: format!("sha256:{}", crate::kit::sha256_hex(text.as_bytes())),
    }
}

/// What the stage should do about deploying.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Deploy {
    /// Nothing was written since the deployment.
    Nothing,
    /// Something was written; wait this long (the quiet time, or a changing member).
    Wait(Duration),
    /// Deploy now; the listed changing members have held it back longer than [`MAX_HOLD`] and
    /// ship without their change.
    Now { left_behind: Vec<String> },
}

/// Whether to deploy `rollout` now.
pub fn decide(rollout: &Rollout, now: Timestamp, settle: Duration) -> Deploy {
    let Some(last_write) = rollout.last_write.filter(|_| rollout.written > 0) else {
        return Deploy::Nothing;
    };
    let since = Duration::try_from(now.duration_since(last_write)).unwrap_or_default();
    if since < settle {
        return Deploy::Wait(settle - since);
    }
    if !rollout.changing.is_empty() {
        if since < MAX_HOLD {
            return Deploy::Wait((MAX_HOLD - since).min(settle.max(Duration::from_secs(5))));
        }
        return Deploy::Now {
            left_behind: rollout.changing.clone(),
        };
    }
    Deploy::Now {
        left_behind: Vec::new(),
    }
}

/// The UpdateStage operations that make the live variables match the spec's: removes first,
/// then replaces (AWS's `replace /variables/{name}` adds or sets, recorded), names sorted.
pub fn variable_ops(
    desired: Option<&BTreeMap<String, String>>,
    live: Option<&BTreeMap<String, String>>,
) -> Vec<PatchOperation> {
    let Some(desired) = desired else {
        return Vec::new();
    };
    let empty = BTreeMap::new();
    let live = live.unwrap_or(&empty);
    let mut ops: Vec<PatchOperation> = live
        .keys()
        .filter(|name| !desired.contains_key(*name))
        .map(|name| PatchOperation {
            op: Op::Remove,
            path: format!("/variables/{}", escape_key(name)),
            value: None,
        })
        .collect();
    for (name, value) in desired {
        if live.get(name) != Some(value) {
            ops.push(PatchOperation {
                op: Op::Replace,
                path: format!("/variables/{}", escape_key(name)),
                value: Some(value.clone()),
            });
        }
    }
    ops
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + secs).unwrap()
    }

    fn m(key: &str, last_write: Option<i64>, settled: bool, reason: &str) -> Member {
        Member {
            key: key.into(),
            generation: 1,
            last_write: last_write.map(at),
            settled,
            reason: Some(reason.into()),
        }
    }

    const SETTLE: Duration = Duration::from_secs(10);

    #[test]
    fn nothing_written_since_the_deployment_is_nothing() {
        let members = [m("ns/a", Some(0), true, "Synced")];
        let r = rollout(&members, Some(at(5)));
        assert!(r.pending.is_empty());
        assert_eq!(decide(&r, at(100), SETTLE), Deploy::Nothing);
    }

    #[test]
    fn a_write_waits_for_the_quiet_time_then_deploys_once_for_all() {
        let members: Vec<Member> = (0..50)
            .map(|i| m(&format!("ns/i{i:02}"), Some(i), true, "Synced"))
            .collect();
        let r = rollout(&members, Some(at(-1)));
        assert_eq!(r.pending.len(), 50);
        assert_eq!(
            decide(&r, at(52), SETTLE),
            Deploy::Wait(Duration::from_secs(7))
        );
        assert_eq!(
            decide(&r, at(59), SETTLE),
            Deploy::Now {
                left_behind: vec![]
            }
        );
    }

    #[test]
    fn a_first_deployment_happens_when_no_deployment_is_known() {
        let r = rollout(&[m("ns/a", Some(0), true, "Synced")], None);
        assert!(matches!(decide(&r, at(20), SETTLE), Deploy::Now { .. }));
    }

    #[test]
    fn a_changing_member_holds_the_deployment_back_at_most_max_hold() {
        let members = [
            m("ns/a", Some(0), true, "Synced"),
            m("ns/b", None, false, "AwsError"),
        ];
        let r = rollout(&members, Some(at(-10)));
        assert_eq!(r.changing, vec!["ns/b"]);
        assert!(matches!(decide(&r, at(20), SETTLE), Deploy::Wait(_)));
        assert_eq!(
            decide(&r, at(MAX_HOLD.as_secs() as i64), SETTLE),
            Deploy::Now {
                left_behind: vec!["ns/b".into()]
            }
        );
    }

    #[test]
    fn a_blocked_member_never_holds_a_deployment_back_and_is_listed() {
        let members = [
            m("ns/a", Some(0), true, "Synced"),
            m("ns/b", None, false, "InvalidSpec"),
        ];
        let r = rollout(&members, Some(at(-10)));
        assert_eq!(r.blocked, vec!["ns/b (InvalidSpec)"]);
        assert!(r.changing.is_empty());
        assert_eq!(
            decide(&r, at(10), SETTLE),
            Deploy::Now {
                left_behind: vec![]
            }
        );
    }

    #[test]
    fn a_changing_member_alone_is_pending_but_not_due() {
        let members = [m("ns/a", Some(0), false, "Synced")];
        let r = rollout(&members, Some(at(5)));
        assert_eq!(r.pending, vec!["ns/a"]);
        assert_eq!(decide(&r, at(100), SETTLE), Deploy::Nothing);
    }

    #[test]
    fn the_digest_depends_on_members_and_generations_only() {
        let a = [
            m("ns/a", Some(0), true, "Synced"),
            m("ns/b", None, true, "Synced"),
        ];
        let b = [
            m("ns/b", Some(9), true, "Synced"),
            m("ns/a", None, true, "Synced"),
        ];
        assert_eq!(rollout(&a, None).published, rollout(&b, None).published);
        let mut c = a.clone();
        c[0].generation = 2;
        assert_ne!(rollout(&a, None).published, rollout(&c, None).published);
    }

    #[test]
    fn variables_removes_then_replaces_and_unset_manages_none() {
        let live: BTreeMap<String, String> =
            [("a".into(), "1".into()), ("b".into(), "2".into())].into();
        let desired: BTreeMap<String, String> =
            [("b".into(), "3".into()), ("c".into(), "4".into())].into();
        let ops = variable_ops(Some(&desired), Some(&live));
        let paths: Vec<(Op, &str)> = ops.iter().map(|o| (o.op, o.path.as_str())).collect();
        assert_eq!(
            paths,
            vec![
                (Op::Remove, "/variables/a"),
                (Op::Replace, "/variables/b"),
                (Op::Replace, "/variables/c")
            ]
        );
        assert!(variable_ops(None, Some(&live)).is_empty());
        assert!(variable_ops(Some(&live), Some(&live)).is_empty());
    }
}
