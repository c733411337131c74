//! Who may decide an approval step: the one rule. Planning (whom a stage asks),
//! deciding (which seats a caller holds), the approvals queue (what a caller is
//! offered) and the notices (who is asked) all call it, so they cannot disagree.
//!
//! The rule: a seat on a step belongs to a member whom the step names (by user, role or
//! group), whose role can approve (approver, admin, owner), and who is not the change's
//! author. The member may sit in it themselves, or hand it for a while to a delegate
//! (any member but the author), who then decides in their name while the delegation
//! holds.

use std::collections::BTreeMap;

use jiff::Timestamp;

use crate::approval::ApprovalStep;
use crate::ids::UserId;
use crate::policy::Approvers;
use crate::role::Role;
use crate::workspace::Member;
use crate::DomainError;

/// Whether `user`, holding `role`, may hold a seat on a change by `author`.
pub fn may_sit(user: &UserId, role: Role, author: &UserId) -> bool {
    role.can_approve() && user != author
}

/// Whether a stage's approvers name `user`: by id, by role, or through a group.
fn named(approvers: &Approvers, user: &UserId, role: Role, groups: &BTreeMap<String, Vec<UserId>>) -> bool {
    approvers.users.contains(user)
        || approvers.roles.contains(&role)
        || approvers.groups.iter().any(|g| groups.get(g).is_some_and(|m| m.contains(user)))
}

/// Planning: the members a stage asks, sorted and without repeats.
pub fn eligible(
    approvers: &Approvers,
    members: &[(UserId, Role)],
    groups: &BTreeMap<String, Vec<UserId>>,
    author: &UserId,
) -> Vec<UserId> {
    let mut out: Vec<UserId> = members
        .iter()
        .filter(|(u, r)| may_sit(u, *r, author) && named(approvers, u, *r, groups))
        .map(|(u, _)| u.clone())
        .collect();
    out.sort();
    out.dedup();
    out
}

/// The seats a caller may fill on the steps of one change: their own (when their role
/// can approve) and those of the members who delegated to them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seats {
    pub caller: UserId,
    pub as_self: bool,
    pub delegators: Vec<UserId>,
}

impl Seats {
    /// Only the caller's own seat (an approver deciding for themselves).
    pub fn own(caller: &UserId) -> Seats {
        Seats { caller: caller.clone(), as_self: true, delegators: vec![] }
    }

    /// The eligible users this caller may speak for on `step`: themselves if eligible
    /// (`None`), and every eligible user who delegated to them.
    pub fn on(&self, step: &ApprovalStep) -> Vec<Option<UserId>> {
        let mut out = Vec::new();
        if self.as_self && step.eligible.contains(&self.caller) {
            out.push(None);
        }
        for d in &self.delegators {
            if d != &self.caller && step.eligible.contains(d) {
                out.push(Some(d.clone()));
            }
        }
        out
    }

    /// The same caller with one delegator's seat only: which decisions rode on it.
    pub fn only_for(&self, delegator: &UserId) -> Seats {
        Seats { caller: self.caller.clone(), as_self: false, delegators: vec![delegator.clone()] }
    }
}

/// Deciding and the queue: the seats `caller` (a member holding `role`) holds on a
/// change by `author` at `now`, given the members whose delegation names them. The
/// author holds none and is told so (`self_approval_forbidden`).
pub fn seats(
    caller: &UserId,
    role: Role,
    delegators: &[Member],
    author: &UserId,
    now: Timestamp,
) -> Result<Seats, DomainError> {
    if caller == author {
        return Err(DomainError::SelfApprovalForbidden);
    }
    let delegators =
        delegators.iter().filter(|m| hands_seat_to(m, caller, author, now)).map(|m| m.user_id.clone()).collect();
    Ok(Seats { caller: caller.clone(), as_self: may_sit(caller, role, author), delegators })
}

/// Whether `m` hands their seat to `delegate` at `now`: a delegation to them that holds,
/// from a member who may sit, to anyone but the author.
fn hands_seat_to(m: &Member, delegate: &UserId, author: &UserId, now: Timestamp) -> bool {
    may_sit(&m.user_id, m.role, author)
        && delegate != author
        && m.delegation.as_ref().is_some_and(|d| &d.delegate == delegate && d.holds_at(now))
}

/// Notices: who is asked to decide a step that just opened: each of its eligible
/// members who still may sit, and the delegate each one hands their seat to now.
/// Sorted by user, each once.
pub fn asked<'m>(step: &ApprovalStep, members: &'m [Member], author: &UserId, now: Timestamp) -> Vec<&'m Member> {
    let mut out: Vec<&Member> = Vec::new();
    for m in members.iter().filter(|m| step.eligible.contains(&m.user_id) && may_sit(&m.user_id, m.role, author)) {
        out.push(m);
        if let Some(d) = &m.delegation {
            if hands_seat_to(m, &d.delegate, author, now) {
                out.extend(members.iter().filter(|x| x.user_id == d.delegate));
            }
        }
    }
    out.sort_by(|a, b| a.user_id.cmp(&b.user_id));
    out.dedup_by(|a, b| a.user_id == b.user_id);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workspace::Delegation;

    fn uid(s: &str) -> UserId {
        UserId::parse(s).unwrap()
    }

    fn member(user: &str, role: Role, delegate: Option<(&str, i64, i64)>) -> Member {
        let t0 = Timestamp::from_second(1_000_000).unwrap();
        Member {
            workspace_id: "w".into(),
            user_id: uid(user),
            email: format!("{user}@example.com"),
            name: None,
            role,
            delegation: delegate.map(|(d, from, until)| Delegation {
                delegate: uid(d),
                from: Timestamp::from_second(1_000_000 + from).unwrap(),
                until: Timestamp::from_second(1_000_000 + until).unwrap(),
            }),
            slack_user_id: None,
            version: 1,
            created_at: t0,
            updated_at: t0,
        }
    }

    fn now() -> Timestamp {
        Timestamp::from_second(1_000_000).unwrap()
    }

    #[test]
    fn the_author_never_sits_whatever_their_role() {
        let author = uid("mia");
        for role in [Role::Viewer, Role::Member, Role::Approver, Role::Admin, Role::Owner] {
            assert!(!may_sit(&author, role, &author), "{role:?}");
            assert_eq!(may_sit(&uid("bob"), role, &author), role >= Role::Approver, "{role:?}");
        }
        let approvers = Approvers { users: vec![author.clone()], roles: vec![Role::Owner], groups: vec![] };
        let members = [(author.clone(), Role::Owner), (uid("bob"), Role::Owner)];
        assert_eq!(eligible(&approvers, &members, &BTreeMap::new(), &author), vec![uid("bob")]);
        let refused = seats(&author, Role::Owner, &[], &author, now());
        assert_eq!(refused, Err(DomainError::SelfApprovalForbidden));
    }

    #[test]
    fn a_stage_names_members_by_user_role_or_group_but_only_approving_roles_sit() {
        let author = uid("mia");
        let groups = BTreeMap::from([("cab".to_owned(), vec![uid("carol"), uid("erin")])]);
        let members = [
            (uid("bob"), Role::Approver),
            (uid("carol"), Role::Approver),
            (uid("dan"), Role::Admin),
            (uid("erin"), Role::Member),
            (uid("zoe"), Role::Viewer),
        ];
        let by = |users: &[&str], roles: &[Role], groups_: &[&str]| Approvers {
            users: users.iter().map(|u| uid(u)).collect(),
            roles: roles.to_vec(),
            groups: groups_.iter().map(|g| (*g).to_owned()).collect(),
        };
        assert_eq!(eligible(&by(&["bob", "zoe"], &[], &[]), &members, &groups, &author), vec![uid("bob")]);
        assert_eq!(eligible(&by(&[], &[Role::Admin], &[]), &members, &groups, &author), vec![uid("dan")]);
        assert_eq!(eligible(&by(&[], &[], &["cab"]), &members, &groups, &author), vec![uid("carol")]);
        assert_eq!(eligible(&by(&[], &[], &["nope"]), &members, &groups, &author), Vec::<UserId>::new());
    }

    #[test]
    fn a_delegate_takes_a_seat_only_while_the_delegation_holds_and_never_for_the_author() {
        let author = uid("mia");
        let bob = member("bob", Role::Approver, Some(("erin", -60, 3600)));
        let later = member("carol", Role::Approver, Some(("erin", 3600, 7200)));
        let viewer = member("zoe", Role::Viewer, Some(("erin", -60, 3600)));
        let s = seats(&uid("erin"), Role::Member, &[bob.clone(), later, viewer], &author, now()).unwrap();
        assert_eq!((s.as_self, s.delegators.clone()), (false, vec![uid("bob")]));
        // A delegation to the author hands them nothing.
        let to_author = member("bob", Role::Approver, Some(("mia", -60, 3600)));
        assert_eq!(seats(&author, Role::Member, &[to_author], &author, now()), Err(DomainError::SelfApprovalForbidden));
        // The author's own delegation hands nothing either: the author has no seat.
        let authors = member("mia", Role::Approver, Some(("erin", -60, 3600)));
        assert!(seats(&uid("erin"), Role::Member, &[authors], &author, now()).unwrap().delegators.is_empty());
    }
}
