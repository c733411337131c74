//! Approval policies: a workspace's own rules for who approves what. The policy with
//! the lowest `priority` number among those that match a change decides its stages;
//! when none matches, the built-in matrix applies, itself a policy ([`builtin`]), so
//! one planner ([`plan`]) serves both.

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::approval::{
    ApprovalStep, StepMode, StepPlan, StepStatus, ECAB_GROUP, STEP_APPROVAL, STEP_EMERGENCY, STEP_HIGH_RISK,
};
use crate::change::{check_assets, ChangeRequest, ChangeType, Priority, RiskLevel, TITLE_MAX};
use crate::eligibility;
use crate::ids::UserId;
use crate::role::Role;
use crate::workspace::check_group_name;
use crate::{text, DomainError, FieldErrors};

/// Most entries a list of enumeration values may have (duplicates included).
pub const ENUM_LIST_MAX: usize = 20;

pub const STAGES_MAX: usize = 10;
pub const APPROVERS_MAX: usize = 100;
pub const PRIORITY_RANGE: std::ops::RangeInclusive<i64> = -1_000_000..=1_000_000;

/// What a change must look like for a policy to apply. Every criterion given must hold;
/// within one criterion any listed value will do. An empty match applies to all.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PolicyMatch {
    pub change_types: Vec<ChangeType>,
    pub risk_levels: Vec<RiskLevel>,
    pub priorities: Vec<Priority>,
    pub assets_any: Vec<String>,
    pub custom: BTreeMap<String, Value>,
}

impl PolicyMatch {
    pub fn matches(&self, c: &ChangeRequest) -> bool {
        (self.change_types.is_empty() || self.change_types.contains(&c.change_type))
            && (self.risk_levels.is_empty() || self.risk_levels.contains(&c.risk_level))
            && (self.priorities.is_empty() || self.priorities.contains(&c.priority))
            && (self.assets_any.is_empty() || c.affected_assets.iter().any(|a| self.assets_any.contains(a)))
            && self.custom.iter().all(|(k, v)| c.custom_fields.get(k) == Some(v))
    }
}

/// Who may approve a stage: named users, holders of a role, members of a group.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Approvers {
    pub users: Vec<UserId>,
    pub roles: Vec<Role>,
    pub groups: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Stage {
    pub name: String,
    pub mode: StepMode,
    pub quorum: Option<u32>,
    pub approvers: Approvers,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ApprovalPolicy {
    pub id: String,
    pub workspace_id: String,
    pub name: String,
    pub priority: i64,
    #[serde(rename = "match")]
    pub matcher: PolicyMatch,
    pub stages: Vec<Stage>,
    pub created_by: UserId,
    pub version: u64,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// The policy that governs `c`: the matching one with the lowest priority number
/// (ties: by name, then id, so the choice never depends on storage order).
pub fn select<'a>(policies: &'a [ApprovalPolicy], c: &ChangeRequest) -> Option<&'a ApprovalPolicy> {
    policies
        .iter()
        .filter(|p| p.matcher.matches(c))
        .min_by(|a, b| (a.priority, &a.name, &a.id).cmp(&(b.priority, &b.name, &b.id)))
}

/// The id of [`builtin`]: steps it plans record no policy.
pub const BUILTIN_ID: &str = "builtin";

/// The built-in matrix as a policy, for changes no workspace policy matches:
/// standard → no stage; normal low/medium → any one approver; normal high → two
/// distinct; emergency → two distinct from the `ecab` group if it exists, else from the
/// approving roles. The same planner and eligibility rule apply as to any policy.
pub fn builtin(c: &ChangeRequest, groups: &BTreeMap<String, Vec<UserId>>) -> ApprovalPolicy {
    let roles = Approvers { roles: vec![Role::Approver, Role::Admin, Role::Owner], ..Approvers::default() };
    let stage = |name: &str, mode: StepMode, quorum: u32, approvers: Approvers| Stage {
        name: name.to_owned(),
        mode,
        quorum: Some(quorum),
        approvers,
    };
    let stages = match (c.change_type, c.risk_level) {
        (ChangeType::Standard, _) => vec![],
        (ChangeType::Normal, RiskLevel::Low | RiskLevel::Medium) => vec![stage(STEP_APPROVAL, StepMode::Any, 1, roles)],
        (ChangeType::Normal, RiskLevel::High) => vec![stage(STEP_HIGH_RISK, StepMode::Quorum, 2, roles)],
        (ChangeType::Emergency, _) => {
            let from = if groups.contains_key(ECAB_GROUP) {
                Approvers { groups: vec![ECAB_GROUP.to_owned()], ..Approvers::default() }
            } else {
                roles
            };
            vec![stage(STEP_EMERGENCY, StepMode::Quorum, 2, from)]
        }
    };
    ApprovalPolicy {
        id: BUILTIN_ID.to_owned(),
        workspace_id: c.workspace_id.clone(),
        name: "built-in matrix".to_owned(),
        priority: i64::MAX,
        matcher: PolicyMatch::default(),
        stages,
        created_by: c.author.clone(),
        version: 0,
        created_at: c.created_at,
        updated_at: c.created_at,
    }
}

/// The one planner: the steps a policy (a workspace's, or [`builtin`]) asks of `c`, one
/// per stage, in order. Whom each asks is [`eligibility::eligible`].
pub fn plan(
    policy: &ApprovalPolicy,
    c: &ChangeRequest,
    members: &[(UserId, Role)],
    groups: &BTreeMap<String, Vec<UserId>>,
) -> Result<Vec<StepPlan>, DomainError> {
    let mut plans = Vec::with_capacity(policy.stages.len());
    for (i, stage) in policy.stages.iter().enumerate() {
        let a = &stage.approvers;
        let eligible = eligibility::eligible(a, members, groups, &c.author);
        let needed = match stage.mode {
            StepMode::Any => 1,
            StepMode::All => 1,
            StepMode::Quorum => stage.quorum.unwrap_or(1) as usize,
        };
        if eligible.len() < needed {
            return Err(DomainError::NoEligibleApprovers { needed, available: eligible.len() });
        }
        let group = match (a.users.is_empty() && a.roles.is_empty(), a.groups.as_slice()) {
            (true, [only]) => Some(only.clone()),
            _ => None,
        };
        plans.push(StepPlan {
            stage: i as u32,
            name: stage.name.clone(),
            mode: stage.mode,
            quorum: needed as u32,
            group,
            eligible,
        });
    }
    Ok(plans)
}

/// What planning reads: the workspace's members with their roles, its groups and its
/// policies.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Planning {
    pub members: Vec<(UserId, Role)>,
    pub groups: BTreeMap<String, Vec<UserId>>,
    pub policies: Vec<ApprovalPolicy>,
}

/// The steps of a new approval round of `c` (already submitted: its round and
/// `submitted_at` set): from the policy that governs it, else the built-in matrix. The
/// first stage opens now; the others wait. Ids are left empty for the service to
/// assign when it writes them.
pub fn round(c: &ChangeRequest, planning: &Planning) -> Result<Round, DomainError> {
    let chosen = select(&planning.policies, c);
    let builtin;
    let governing = match chosen {
        Some(p) => p,
        None => {
            builtin = self::builtin(c, &planning.groups);
            &builtin
        }
    };
    let plans = plan(governing, c, &planning.members, &planning.groups)?;
    let first_stage = plans.iter().map(|p| p.stage).min().unwrap_or(0);
    let opened = c.submitted_at.unwrap_or(c.updated_at);
    let steps = plans
        .into_iter()
        .enumerate()
        .map(|(i, p)| ApprovalStep {
            id: String::new(),
            workspace_id: c.workspace_id.clone(),
            change_id: c.id.clone(),
            change_number: c.number,
            round: c.approval_round,
            stage: p.stage,
            index: i as u32,
            name: p.name,
            mode: p.mode,
            quorum: p.quorum,
            group: p.group,
            eligible: p.eligible,
            status: if p.stage == first_stage { StepStatus::Pending } else { StepStatus::Waiting },
            decisions: vec![],
            created_at: c.updated_at.max(opened),
            decided_at: None,
            policy_id: chosen.map(|p| p.id.clone()),
            opened_at: (p.stage == first_stage).then_some(opened),
            escalated_at: None,
            version: 1,
        })
        .collect();
    Ok(Round { steps, policy: chosen.map(|p| (p.id.clone(), p.name.clone())) })
}

/// A new round's steps, and the policy that asked for them (its id and name; `None`
/// for the built-in matrix).
#[derive(Debug, Clone, PartialEq)]
pub struct Round {
    pub steps: Vec<ApprovalStep>,
    pub policy: Option<(String, String)>,
}

#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RawMatch {
    #[schema(value_type = Option<Vec<crate::change::ChangeType>>)]
    pub change_types: Option<Vec<String>>,
    #[schema(value_type = Option<Vec<crate::change::RiskLevel>>)]
    pub risk_levels: Option<Vec<String>>,
    #[schema(value_type = Option<Vec<crate::change::Priority>>)]
    pub priorities: Option<Vec<String>>,
    pub assets_any: Option<Vec<String>>,
    pub custom: Option<BTreeMap<String, Value>>,
}

#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RawApprovers {
    pub users: Option<Vec<String>>,
    #[schema(value_type = Option<Vec<crate::role::Role>>)]
    pub roles: Option<Vec<String>>,
    pub groups: Option<Vec<String>>,
}

#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RawStage {
    pub name: Option<String>,
    #[schema(value_type = Option<crate::approval::StepMode>)]
    pub mode: Option<String>,
    pub quorum: Option<i64>,
    pub approvers: Option<RawApprovers>,
}

/// `POST|PUT /approval-policies`, as sent.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RawPolicy {
    pub name: Option<String>,
    pub priority: Option<i64>,
    #[serde(rename = "match")]
    pub matcher: Option<RawMatch>,
    pub stages: Option<Vec<RawStage>>,
}

/// A policy's checked values.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyFields {
    pub name: String,
    pub priority: i64,
    pub matcher: PolicyMatch,
    pub stages: Vec<Stage>,
}

pub(crate) fn enums<T: PartialEq>(
    e: &mut FieldErrors,
    field: &str,
    raw: Option<Vec<String>>,
    parse: fn(&str) -> Option<T>,
    choices: String,
) -> Vec<T> {
    let raw = raw.unwrap_or_default();
    if raw.len() > ENUM_LIST_MAX {
        e.add(field, format!("at most {ENUM_LIST_MAX} entries"));
        return vec![];
    }
    let mut out = Vec::new();
    for v in raw {
        match parse(&v) {
            Some(t) if !out.contains(&t) => out.push(t),
            Some(_) => {}
            None => e.add(field, format!("must be among: {choices}")),
        }
    }
    out
}

fn parse_stage(e: &mut FieldErrors, i: usize, raw: RawStage) -> Stage {
    let f = |name: &str| format!("stages[{i}].{name}");
    let name = raw.name.map(|n| n.trim().to_owned()).unwrap_or_default();
    if let Err(reason) = text::check_line(&name, 1, TITLE_MAX) {
        e.add(f("name"), format!("required: {reason}"));
    }
    let mode = match raw.mode.as_deref() {
        Some("any") => StepMode::Any,
        Some("all") => StepMode::All,
        Some("quorum") => StepMode::Quorum,
        _ => {
            e.add(f("mode"), "required: any, all or quorum");
            StepMode::Any
        }
    };
    let quorum = match (mode, raw.quorum) {
        (StepMode::Quorum, Some(q)) if (1..=APPROVERS_MAX as i64).contains(&q) => Some(q as u32),
        (StepMode::Quorum, _) => {
            e.add(f("quorum"), format!("required for mode quorum: 1 to {APPROVERS_MAX}"));
            None
        }
        (_, Some(_)) => {
            e.add(f("quorum"), "only mode quorum takes a quorum");
            None
        }
        (_, None) => None,
    };
    let ra = raw.approvers.unwrap_or_default();
    let mut approvers = Approvers::default();
    let sent = [&ra.users, &ra.roles, &ra.groups].iter().map(|l| l.as_ref().map_or(0, Vec::len)).sum::<usize>();
    if sent > APPROVERS_MAX {
        // Counted before any entry is parsed: a huge list costs nothing more.
        e.add(f("approvers"), format!("at most {APPROVERS_MAX} entries"));
        return Stage { name, mode, quorum, approvers };
    }
    let mut users = Vec::new();
    for u in ra.users.unwrap_or_default() {
        match UserId::parse(&u) {
            Ok(u) => users.push(u),
            Err(r) => e.add(f("approvers.users"), r),
        }
    }
    approvers.users = crate::change::dedup_keeping_order(users);
    for r in ra.roles.unwrap_or_default() {
        match Role::parse(&r) {
            Some(role) if role.can_approve() => {
                if !approvers.roles.contains(&role) {
                    approvers.roles.push(role)
                }
            }
            _ => e.add(f("approvers.roles"), "must be among: approver, admin, owner"),
        }
    }
    for g in ra.groups.unwrap_or_default() {
        match check_group_name(&g) {
            Ok(()) if !approvers.groups.contains(&g) => approvers.groups.push(g),
            Ok(()) => {}
            Err(r) => e.add(f("approvers.groups"), r),
        }
    }
    let count = approvers.users.len() + approvers.roles.len() + approvers.groups.len();
    if count == 0 {
        e.add(f("approvers"), "name at least one user, role or group");
    } else if count > APPROVERS_MAX {
        e.add(f("approvers"), format!("at most {APPROVERS_MAX} entries"));
    }
    if let Some(q) = quorum {
        if approvers.roles.is_empty() && approvers.groups.is_empty() && (q as usize) > approvers.users.len() {
            e.add(f("quorum"), "is larger than the number of users named");
        }
    }
    Stage { name, mode, quorum, approvers }
}

impl RawPolicy {
    pub fn parse(self) -> Result<PolicyFields, FieldErrors> {
        let mut e = FieldErrors::default();
        let name = self.name.map(|n| n.trim().to_owned()).unwrap_or_default();
        if let Err(reason) = text::check_line(&name, 1, TITLE_MAX) {
            e.add("name", format!("required: {reason}"));
        }
        let priority = match self.priority {
            Some(p) if PRIORITY_RANGE.contains(&p) => p,
            _ => {
                e.add("priority", "required: an integer from -1000000 to 1000000; the lowest matching one wins");
                0
            }
        };
        let m = self.matcher.unwrap_or_default();
        let custom = m.custom.unwrap_or_default();
        if custom.len() > crate::change::CUSTOM_FIELDS_MAX {
            e.add("match.custom", format!("at most {} fields", crate::change::CUSTOM_FIELDS_MAX));
        } else {
            if let Err(reason) = crate::change::check_custom_fields(&custom) {
                e.add("match.custom", reason);
            }
        }
        let matcher = PolicyMatch {
            change_types: enums(&mut e, "match.change_types", m.change_types, ChangeType::parse, ChangeType::choices()),
            risk_levels: enums(&mut e, "match.risk_levels", m.risk_levels, RiskLevel::parse, RiskLevel::choices()),
            priorities: enums(&mut e, "match.priorities", m.priorities, Priority::parse, Priority::choices()),
            assets_any: check_assets(&mut e, "match.assets_any", m.assets_any.unwrap_or_default()),
            custom,
        };
        let raw_stages = self.stages.unwrap_or_default();
        let stages = if raw_stages.is_empty() || raw_stages.len() > STAGES_MAX {
            e.add("stages", format!("required: 1 to {STAGES_MAX} stages"));
            vec![]
        } else {
            raw_stages.into_iter().enumerate().map(|(i, s)| parse_stage(&mut e, i, s)).collect()
        };
        if !e.is_empty() {
            return Err(e);
        }
        Ok(PolicyFields { name, priority, matcher, stages })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{draft, user};
    use serde_json::json;

    fn policy(id: &str, priority: i64, matcher: PolicyMatch) -> ApprovalPolicy {
        ApprovalPolicy {
            id: id.into(),
            workspace_id: "w".into(),
            name: id.into(),
            priority,
            matcher,
            stages: vec![],
            created_by: user("alice"),
            version: 1,
            created_at: "2026-11-01T00:00:00Z".parse().unwrap(),
            updated_at: "2026-11-01T00:00:00Z".parse().unwrap(),
        }
    }

    #[test]
    fn the_lowest_priority_number_among_matching_policies_wins() {
        let mut c = draft();
        c.affected_assets = vec!["db".into()];
        c.custom_fields.insert("team".into(), json!("payments"));
        let db = PolicyMatch { assets_any: vec!["db".into()], ..PolicyMatch::default() };
        let payments =
            PolicyMatch { custom: [("team".to_owned(), json!("payments"))].into(), ..PolicyMatch::default() };
        let high = PolicyMatch { risk_levels: vec![RiskLevel::High], ..PolicyMatch::default() };
        let ps = vec![policy("db", 20, db), policy("payments", 10, payments), policy("high", 1, high)];
        assert_eq!(select(&ps, &c).map(|p| p.id.as_str()), Some("payments"));
        c.custom_fields.clear();
        assert_eq!(select(&ps, &c).map(|p| p.id.as_str()), Some("db"));
        c.risk_level = RiskLevel::High;
        assert_eq!(select(&ps, &c).map(|p| p.id.as_str()), Some("high"));
        c.risk_level = RiskLevel::Low;
        c.affected_assets.clear();
        assert_eq!(select(&ps, &c), None);
    }

    #[test]
    fn stages_draw_approvers_from_users_roles_and_groups_never_the_author() {
        let members = vec![
            (user("alice"), Role::Owner),
            (user("bob"), Role::Approver),
            (user("carol"), Role::Admin),
            (user("dave"), Role::Member),
        ];
        let groups: BTreeMap<String, Vec<UserId>> = [("cab".to_owned(), vec![user("bob"), user("dave")])].into();
        let raw = json!({"name": "p", "priority": 1, "stages": [
            {"name": "peer", "mode": "any", "approvers": {"users": ["dave", "carol"]}},
            {"name": "cab", "mode": "all", "approvers": {"groups": ["cab"]}},
            {"name": "admins", "mode": "quorum", "quorum": 1, "approvers": {"roles": ["admin", "owner"]}}
        ]});
        let fields = serde_json::from_value::<RawPolicy>(raw).unwrap().parse().unwrap();
        let mut p = policy("p", 1, fields.matcher);
        p.stages = fields.stages;
        let plans = plan(&p, &draft(), &members, &groups).unwrap();
        // dave is named but cannot approve; alice is the author, whatever her role.
        assert_eq!(plans[0].eligible, vec![user("carol")]);
        assert_eq!((plans[1].eligible.clone(), plans[1].group.as_deref()), (vec![user("bob")], Some("cab")));
        assert!(matches!(
            plan(&p, &draft(), &members[..2], &groups).unwrap_err(),
            DomainError::NoEligibleApprovers { needed: 1, available: 0 }
        ));
    }

    #[test]
    fn bad_policies_name_each_field() {
        let raw = json!({"priority": "x"});
        assert!(serde_json::from_value::<RawPolicy>(raw).is_err(), "wrong types are a 400");
        let raw = json!({"name": "", "match": {"change_types": ["odd"]}, "stages": [
            {"name": "s", "mode": "quorum", "approvers": {"roles": ["member"]}},
            {"name": "t", "mode": "any", "quorum": 2, "approvers": {}}
        ]});
        let e = serde_json::from_value::<RawPolicy>(raw).unwrap().parse().unwrap_err();
        for f in [
            "name",
            "priority",
            "match.change_types",
            "stages[0].quorum",
            "stages[0].approvers.roles",
            "stages[1].quorum",
            "stages[1].approvers",
        ] {
            assert!(e.0.contains_key(f), "{f} missing in {e:?}");
        }
    }
}
