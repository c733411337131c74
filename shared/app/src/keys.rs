//! Every key of the single table, built here and nowhere else. The layout is designed
//! as for DynamoDB: each list, filter and queue is answered by one key-condition query
//! on the table or on a (sparse) secondary index, never by scanning a workspace.
//!
//! | item | pk | sk | indexes |
//! |---|---|---|---|
//! | workspace | `WS#{w}` | `#META` | |
//! | slug claim | `SLUG#{slug}` | `#SLUG` | |
//! | registry entry | `WORKSPACES` | `{w}` | |
//! | member | `WS#{w}` | `MEMBER#{user}` | `by_user`, `by_delegate` (while delegating) |
//! | group | `WS#{w}` | `GROUP#{name}` | |
//! | chain head (with the tree's frontier) | `WS#{w}` | `#HEAD` | |
//! | change counter | `WS#{w}` | `#COUNTER#CHANGE` | |
//! | change | `WS#{w}#CHANGES` | `{n:012}` | `by_status`, `by_type`, `by_priority`, `by_risk`, `by_assignee` |
//! | asset entry | `WS#{w}#ASSET#{asset}` | `{n:012}` | |
//! | approval step | `WS#{w}#CHG#{n:012}` | `STEP#{round:04}#{stage:03}#{i:03}` | `pending` (while pending) |
//! | audit row | `WS#{w}#AUDIT` | `{seq:020}` | `audit_id`, `audit_target`, `audit_actor`, `audit_action`, `audit_subject` |
//! | audit entry waiting to be sealed | `AUDITQ#{w}` | `{created_at}#{tx}#{i:03}` | |
//! | signed checkpoint, by time / latest of a size | `WS#{w}#CHECKPOINT` | `T#{created_at}#{size:020}` / `S#{size:020}` | |
//! | last refusal to sign a checkpoint | `WS#{w}#CHECKPOINT` | `REFUSED` | |
//! | archive state / archived segment | `WS#{w}#ARCHIVE` | `STATE` / `SEG#{first:020}` | |
//! | owners' epoch (moved by every change of an owner) | `WS#{w}` | `#EPOCH#OWNERS` | |
//! | tasks' epoch of a change (moved by every task write) | `WS#{w}#CHG#{n:012}` | `#EPOCH#TASKS` | |
//! | freeze windows' epoch | `WS#{w}` | `#EPOCH#FREEZES` | |
//! | asset's epoch (moved by its window entries) | `WS#{w}#WINDOW#{asset}` | `~` | |
//! | idempotency record | `IDEM#{user}` | `{scope}#{key}` | |
//! | freeze window | `WS#{w}` | `FREEZE#{id}` | |
//! | freeze window by end (a series by its last end) | `WS#{w}#FREEZE` | `{end}#{id}` | |
//! | approval policy | `WS#{w}` | `POLICY#{id}` | |
//! | runbook task | `WS#{w}#CHG#{n:012}` | `TASK#{id}` | |
//! | comment | `WS#{w}#CHG#{n:012}` | `COMMENT#{at}#{id}` | |
//! | conflict acceptance | `WS#{w}#CHG#{n:012}` | `ACCEPT#{other:012}` | |
//! | risk assessment | `WS#{w}#CHG#{n:012}` | `RISK` | |
//! | window entry | `WS#{w}#WINDOW#{asset}` | `{end}#{n:012}` | |
//! | calendar feed token | `FEED#{sha256(token)}` | `#` | |
//! | member's calendar feed | `WS#{w}` | `FEED#{user}` | |
//! | member's subscriptions | `WS#{w}` | `SUBS#{user}` | |
//! | the workspace's followers of assets | `WS#{w}` | `#FOLLOWERS` | |
//! | open post-implementation review | `WS#{w}#REVIEWS` | `{due}#{n:012}#{task}` | |
//! | a week's CAB agenda mailed | `WS#{w}` | `#CAB#{week}` | |
//! | ended change (index by completion time) | `WS#{w}#ENDED` | `{ended_at}#{n:012}` | |
//! | outbox notice | `WS#{w}#OUTBOX` | `{at}#{id}` | |
//! | decision link grant | `LINK#{id}` | `#` | |
//! | webhook | `WS#{w}` | `WEBHOOK#{id}` | |
//! | webhook delivery | `WS#{w}#WEBHOOK#{id}` | `{at}#{seq:020}` | |

use vigilo_domain::change::{ChangeType, Priority, RiskLevel, Status};
use vigilo_domain::ids::{ChangeNumber, Slug, UserId};

use crate::store::{IndexName, Key};

pub const BY_USER: IndexName = "by_user";
pub const BY_DELEGATE: IndexName = "by_delegate";
pub const BY_STATUS: IndexName = "by_status";
pub const BY_TYPE: IndexName = "by_type";
pub const BY_PRIORITY: IndexName = "by_priority";
pub const BY_RISK: IndexName = "by_risk";
pub const BY_ASSIGNEE: IndexName = "by_assignee";
pub const PENDING: IndexName = "pending";
pub const AUDIT_ID: IndexName = "audit_id";
pub const AUDIT_TARGET: IndexName = "audit_target";
pub const AUDIT_ACTOR: IndexName = "audit_actor";
pub const AUDIT_ACTION: IndexName = "audit_action";
pub const AUDIT_SUBJECT: IndexName = "audit_subject";

/// Where each index lives on DynamoDB, which charges for and limits global secondary
/// indexes: indexes whose partitions never collide share one physical index (`gsi{n}`),
/// and no item carries two indexes of one slot. Five slots serve every item kind.
pub const INDEX_SLOTS: &[(IndexName, u8)] = &[
    (BY_USER, 1),
    (BY_STATUS, 1),
    (PENDING, 1),
    (AUDIT_ID, 1),
    (BY_DELEGATE, 2),
    (BY_TYPE, 2),
    (AUDIT_TARGET, 2),
    (BY_PRIORITY, 3),
    (AUDIT_ACTOR, 3),
    (BY_RISK, 4),
    (AUDIT_ACTION, 4),
    (BY_ASSIGNEE, 5),
    (AUDIT_SUBJECT, 5),
];

/// The number of physical index slots.
pub const INDEX_SLOT_COUNT: u8 = 5;

/// The physical slot of an index, `None` for a name no item uses.
pub fn index_slot(name: &str) -> Option<u8> {
    INDEX_SLOTS.iter().find(|(n, _)| *n == name).map(|(_, s)| *s)
}

fn ws(w: &str) -> String {
    format!("WS#{w}")
}

/// Zero-padded so that lexicographic order is numeric order.
fn num(n: ChangeNumber) -> String {
    format!("{:012}", n.get())
}

pub fn seq_sk(seq: u64) -> String {
    format!("{seq:020}")
}

pub fn workspace(w: &str) -> Key {
    Key::new(ws(w), "#META")
}

/// The partition listing every workspace, for sweeps that visit them all. Written
/// once per workspace, so it is never a hot partition.
pub const WORKSPACE_REGISTRY: &str = "WORKSPACES";

pub fn registry_entry(w: &str) -> Key {
    Key::new(WORKSPACE_REGISTRY, w)
}

pub fn slug(slug: &Slug) -> Key {
    Key::new(format!("SLUG#{slug}"), "#SLUG")
}

pub fn member(w: &str, user: &UserId) -> Key {
    Key::new(ws(w), format!("MEMBER#{user}"))
}

/// The partition and prefix that hold a workspace's members.
pub fn members(w: &str) -> (String, &'static str) {
    (ws(w), "MEMBER#")
}

/// A member's entry in `by_user`: all workspaces of one user.
pub fn member_by_user(w: &str, user: &UserId) -> Key {
    Key::new(format!("USER#{user}"), ws(w))
}

pub fn user_workspaces(user: &UserId) -> String {
    format!("USER#{user}")
}

/// A delegating member's entry in `by_delegate`: who delegated to `delegate`.
pub fn member_by_delegate(w: &str, delegate: &UserId, user: &UserId) -> Key {
    Key::new(format!("{}#DELEGATE#{delegate}", ws(w)), format!("MEMBER#{user}"))
}

pub fn delegators_of(w: &str, delegate: &UserId) -> String {
    format!("{}#DELEGATE#{delegate}", ws(w))
}

pub fn group(w: &str, name: &str) -> Key {
    Key::new(ws(w), format!("GROUP#{name}"))
}

/// Groups, members and policies are neighbours in the workspace's partition, with
/// nothing sorting between them: planning a round reads the three in one range.
pub fn groups(w: &str) -> (String, &'static str) {
    (ws(w), "GROUP#")
}

pub fn chain_head(w: &str) -> Key {
    Key::new(ws(w), "#HEAD")
}

pub fn change_counter(w: &str) -> Key {
    Key::new(ws(w), "#COUNTER#CHANGE")
}

/// How far the gap sweep has checked the numbers the counter handed out.
pub fn numbers_checked(w: &str) -> Key {
    Key::new(ws(w), "#COUNTER#CHECKED")
}

pub fn changes(w: &str) -> String {
    format!("{}#CHANGES", ws(w))
}

pub fn change(w: &str, n: ChangeNumber) -> Key {
    Key::new(changes(w), num(n))
}

/// The facet indexes of a change: one partition per value, sorted by number.
pub fn change_by_status(w: &str, s: Status, n: ChangeNumber) -> Key {
    Key::new(status_partition(w, s), num(n))
}

pub fn status_partition(w: &str, s: Status) -> String {
    format!("{}#STATUS#{s}", ws(w))
}

pub fn change_by_type(w: &str, t: ChangeType, n: ChangeNumber) -> Key {
    Key::new(type_partition(w, t), num(n))
}

pub fn type_partition(w: &str, t: ChangeType) -> String {
    format!("{}#TYPE#{t}", ws(w))
}

pub fn change_by_priority(w: &str, p: Priority, n: ChangeNumber) -> Key {
    Key::new(priority_partition(w, p), num(n))
}

pub fn priority_partition(w: &str, p: Priority) -> String {
    format!("{}#PRIORITY#{p}", ws(w))
}

pub fn change_by_risk(w: &str, r: RiskLevel, n: ChangeNumber) -> Key {
    Key::new(risk_partition(w, r), num(n))
}

pub fn risk_partition(w: &str, r: RiskLevel) -> String {
    format!("{}#RISK#{r}", ws(w))
}

pub fn change_by_assignee(w: &str, u: &UserId, n: ChangeNumber) -> Key {
    Key::new(assignee_partition(w, u), num(n))
}

pub fn assignee_partition(w: &str, u: &UserId) -> String {
    format!("{}#ASSIGNEE#{u}", ws(w))
}

/// An asset entry: affected assets are many per change, which no secondary index can
/// hold, so each (asset, change) pair is an item of its own.
pub fn asset_entry(w: &str, asset: &str, n: ChangeNumber) -> Key {
    Key::new(asset_partition(w, asset), num(n))
}

pub fn asset_partition(w: &str, asset: &str) -> String {
    format!("{}#ASSET#{asset}", ws(w))
}

/// The index by completion time: one entry per change while it has ended (complete,
/// fail, roll back), under its end instant, so the DORA metrics of a range read that
/// range alone. A reopen deletes it; the next end files it again.
pub fn change_ended(w: &str, ended_at: &str, n: ChangeNumber) -> Key {
    Key::new(ended_partition(w), format!("{ended_at}#{}", num(n)))
}

pub fn ended_partition(w: &str) -> String {
    format!("{}#ENDED", ws(w))
}

/// A calendar feed token, by the SHA-256 of the token (the token itself is never
/// stored): what a `?token=` fetch looks up.
pub fn calendar_feed(token_hash: &str) -> Key {
    Key::new(format!("FEED#{token_hash}"), "#")
}

/// A member's current calendar feed: which token hash to revoke when it is replaced
/// or withdrawn.
pub fn member_feed(w: &str, u: &UserId) -> Key {
    Key::new(ws(w), format!("FEED#{u}"))
}

/// A member's asset subscriptions, as they set them.
pub fn subscription(w: &str, u: &UserId) -> Key {
    Key::new(ws(w), format!("SUBS#{u}"))
}

/// The workspace's followers (asset → members), read with a change by every move.
pub fn followers(w: &str) -> Key {
    Key::new(ws(w), "#FOLLOWERS")
}

/// An open post-implementation review, under its due time: what the review sweep
/// reads (the reviews due within a day, or overdue), never every change.
pub fn review_entry(w: &str, due: &str, n: ChangeNumber, task: &str) -> Key {
    Key::new(reviews(w), format!("{due}#{}#{task}", num(n)))
}

pub fn reviews(w: &str) -> String {
    format!("{}#REVIEWS", ws(w))
}

/// That a week's CAB agenda went out (`week`: `2026-W50`).
pub fn cab_mailed(w: &str, week: &str) -> Key {
    Key::new(ws(w), format!("#CAB#{week}"))
}

/// Recovers a change number from a sort key written by [`change`] or [`asset_entry`].
pub fn number_from_sk(sk: &str) -> Option<ChangeNumber> {
    ChangeNumber::new(sk.parse().ok()?)
}

pub fn steps(w: &str, n: ChangeNumber) -> String {
    format!("{}#CHG#{}", ws(w), num(n))
}

pub fn step(w: &str, n: ChangeNumber, round: u32, stage: u32, index: u32) -> Key {
    Key::new(steps(w, n), format!("STEP#{round:04}#{stage:03}#{index:03}"))
}

/// Approval steps share their change's partition with its tasks, comments, conflict
/// acceptances and risk assessment; each kind has its own sort-key prefix.
pub const STEP_PREFIX: &str = "STEP#";

pub fn round_prefix(round: u32) -> String {
    format!("STEP#{round:04}#")
}

/// A pending step's entry in `pending`: the workspace's open approval work, oldest first.
pub fn pending_step(w: &str, created_at: &str, n: ChangeNumber, step_id: &str) -> Key {
    Key::new(pending_partition(w), format!("{created_at}#{}#{step_id}", num(n)))
}

pub fn pending_partition(w: &str) -> String {
    format!("{}#PENDING", ws(w))
}

pub fn audit_rows(w: &str) -> String {
    format!("{}#AUDIT", ws(w))
}

pub fn audit_row(w: &str, seq: u64) -> Key {
    Key::new(audit_rows(w), seq_sk(seq))
}

/// A workspace's signed checkpoints: one item each by creation time (`T#…`, for the
/// list), and the latest of each tree size (`S#…`, for proofs of that size). An index
/// only: the notes themselves are in write-once storage.
pub fn checkpoints(w: &str) -> String {
    format!("{}#CHECKPOINT", ws(w))
}

pub const CHECKPOINT_BY_TIME: &str = "T#";

pub fn checkpoint_by_time(w: &str, created_at: &str, tree_size: u64) -> Key {
    Key::new(checkpoints(w), format!("{CHECKPOINT_BY_TIME}{created_at}#{}", seq_sk(tree_size)))
}

pub fn checkpoint_by_size(w: &str, tree_size: u64) -> Key {
    Key::new(checkpoints(w), format!("S#{}", seq_sk(tree_size)))
}

/// A workspace's archive: its state (how far rows are archived, and the tree's
/// frontier there) and one item per segment, by its first row.
pub fn archive(w: &str) -> String {
    format!("{}#ARCHIVE", ws(w))
}

pub fn archive_state(w: &str) -> Key {
    Key::new(archive(w), "STATE")
}

pub const ARCHIVE_SEGMENT: &str = "SEG#";

pub fn archive_segment(w: &str, first: u64) -> Key {
    Key::new(archive(w), format!("{ARCHIVE_SEGMENT}{}", seq_sk(first)))
}

/// The last refusal to sign a workspace's checkpoint, so it is recorded once.
pub fn checkpoint_refusal(w: &str) -> Key {
    Key::new(checkpoints(w), "REFUSED")
}

/// The queue of audit entries waiting to be sealed. Its own partition, whose name
/// starts with `AUDITQ#`, so a stream consumer can select its inserts by prefix.
pub fn audit_queue(w: &str) -> String {
    format!("AUDITQ#{w}")
}

pub fn audit_queued(w: &str, created_at: &str, tx: &str, index: usize) -> Key {
    Key::new(audit_queue(w), format!("{created_at}#{tx}#{index:03}"))
}

/// The workspace of a queue partition, for consumers of the table's stream.
pub fn workspace_of_queue(pk: &str) -> Option<&str> {
    pk.strip_prefix("AUDITQ#").filter(|w| !w.is_empty())
}

/// Moved by every write that makes, unmakes, promotes or demotes an owner, and checked
/// by each of them: two owners demoting each other cannot both commit.
pub fn owners_epoch(w: &str) -> Key {
    Key::new(ws(w), "#EPOCH#OWNERS")
}

/// Moved by every write of a change's window entries on `asset` and held by a schedule
/// that read them. It sorts after every entry (`~`, the upper bound of the range a
/// conflict check reads), so the check's own query reads it.
pub fn asset_epoch(w: &str, asset: &str) -> Key {
    Key::new(window_partition(w, asset), "~")
}

/// Moved by every freeze window filed, edited or removed, and held by the moves whose
/// gates read the windows (submit, schedule, start).
pub fn freezes_epoch(w: &str) -> Key {
    Key::new(ws(w), "#EPOCH#FREEZES")
}

/// Moved by every write of one of a change's tasks, and checked by the moves whose gates
/// read them (start, complete): a task added or reopened meanwhile fails the move.
pub fn tasks_epoch(w: &str, n: ChangeNumber) -> Key {
    Key::new(steps(w, n), "#EPOCH#TASKS")
}

pub fn audit_by_id(id: &str) -> Key {
    Key::new(format!("AUDIT#{id}"), "#")
}

pub fn audit_by_target(w: &str, target_type: &str, target_id: &str, seq: u64) -> Key {
    Key::new(audit_target_partition(w, target_type, target_id), seq_sk(seq))
}

pub fn audit_target_partition(w: &str, target_type: &str, target_id: &str) -> String {
    format!("{}#TARGET#{target_type}#{target_id}", ws(w))
}

pub fn audit_by_actor(w: &str, actor: &str, seq: u64) -> Key {
    Key::new(audit_actor_partition(w, actor), seq_sk(seq))
}

pub fn audit_actor_partition(w: &str, actor: &str) -> String {
    format!("{}#ACTOR#{actor}", ws(w))
}

pub fn audit_by_action(w: &str, action: &str, seq: u64) -> Key {
    Key::new(audit_action_partition(w, action), seq_sk(seq))
}

pub fn audit_action_partition(w: &str, action: &str) -> String {
    format!("{}#ACTION#{action}", ws(w))
}

/// Rows about one change (the change itself and its approval steps), for its activity.
pub fn audit_by_subject(w: &str, change_id: &str, seq: u64) -> Key {
    Key::new(audit_subject_partition(w, change_id), seq_sk(seq))
}

pub fn audit_subject_partition(w: &str, change_id: &str) -> String {
    format!("{}#SUBJECT#{change_id}", ws(w))
}

pub fn freeze_window(w: &str, id: &str) -> Key {
    Key::new(ws(w), format!("FREEZE#{id}"))
}

/// A freeze window filed under its end: the windows that can still matter for a span
/// are one range query (`end` after the span's start), however many have passed.
pub fn freeze_by_end(w: &str, end: &str, id: &str) -> Key {
    Key::new(freeze_partition(w), format!("{end}#{id}"))
}

pub fn freeze_partition(w: &str) -> String {
    format!("{}#FREEZE", ws(w))
}

/// The sort key range of entries keyed `{end}#...` whose end is after `after`:
/// `~` sorts after every digit, so `{after}#~` is past every entry ending at `after`.
pub fn ending_after(after: &str) -> (String, String) {
    (format!("{after}#~"), "~".to_owned())
}

/// That the authors of change `n` heard of the freeze window `id` (its occurrence
/// starting at `start`) ahead of it: written with the notice, so they hear once.
pub fn freeze_heads_up(w: &str, id: &str, start: &str, n: ChangeNumber) -> Key {
    Key::new(format!("{}#HEADSUP", ws(w)), format!("{id}#{start}#{}", num(n)))
}

pub fn policy(w: &str, id: &str) -> Key {
    Key::new(ws(w), format!("POLICY#{id}"))
}

pub fn policies(w: &str) -> (String, &'static str) {
    (ws(w), "POLICY#")
}

pub fn task(w: &str, n: ChangeNumber, id: &str) -> Key {
    Key::new(steps(w, n), format!("TASK#{id}"))
}

pub const TASK_PREFIX: &str = "TASK#";

pub fn comment(w: &str, n: ChangeNumber, at: &str, id: &str) -> Key {
    Key::new(steps(w, n), format!("COMMENT#{at}#{id}"))
}

pub const COMMENT_PREFIX: &str = "COMMENT#";

pub fn acceptance(w: &str, n: ChangeNumber, other: ChangeNumber) -> Key {
    Key::new(steps(w, n), format!("ACCEPT#{}", num(other)))
}

pub const ACCEPT_PREFIX: &str = "ACCEPT#";

pub fn risk_assessment(w: &str, n: ChangeNumber) -> Key {
    Key::new(steps(w, n), "RISK")
}

/// A live change's planned window on one of its assets, filed under the window's end:
/// the changes that may overlap a window on an asset are one range query, and the
/// lookup reads only entries of the assets in question.
pub fn window_entry(w: &str, asset: &str, end: &str, n: ChangeNumber) -> Key {
    Key::new(window_partition(w, asset), format!("{end}#{}", num(n)))
}

pub fn window_partition(w: &str, asset: &str) -> String {
    format!("{}#WINDOW#{asset}", ws(w))
}

/// A notice waiting to be sent, oldest first.
pub fn outbox_entry(w: &str, at: &str, id: &str) -> Key {
    Key::new(outbox(w), format!("{at}#{id}"))
}

pub fn outbox(w: &str) -> String {
    format!("{}#OUTBOX", ws(w))
}

pub fn webhook(w: &str, id: &str) -> Key {
    Key::new(ws(w), format!("WEBHOOK#{id}"))
}

pub fn webhooks(w: &str) -> (String, &'static str) {
    (ws(w), "WEBHOOK#")
}

/// A webhook's delivery log, newest last: one entry per attempt, expiring by itself.
pub fn webhook_log(w: &str, id: &str) -> String {
    format!("{}#WEBHOOK#{id}", ws(w))
}

pub fn webhook_log_entry(w: &str, id: &str, at: &str, seq: u64) -> Key {
    Key::new(webhook_log(w, id), format!("{at}#{}", seq_sk(seq)))
}

/// A decision link's grant, found by the token's id alone (a link carries no workspace).
pub fn link_grant(id: &str) -> Key {
    Key::new(format!("LINK#{id}"), "#")
}

pub fn idempotency(user: &UserId, scope: &str, key: &str) -> Key {
    Key::new(format!("IDEM#{user}"), format!("{scope}#{key}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_groups_members_and_policies_sort_between_groups_and_policies() {
        let w = "w";
        let (_, lo) = groups(w);
        let (_, hi) = policies(w);
        let hi = format!("{hi}\u{10FFFF}");
        let bob = UserId::parse("bob").unwrap();
        let inside = [group(w, "cab"), member(w, &bob), policy(w, "p1")];
        let outside = [
            workspace(w),
            chain_head(w),
            change_counter(w),
            owners_epoch(w),
            freezes_epoch(w),
            freeze_window(w, "f1"),
            webhook(w, "h1"),
        ];
        for k in inside {
            assert!(k.pk == ws(w) && k.sk.as_str() >= lo && k.sk < hi, "{k:?}");
        }
        for k in outside {
            assert!(k.pk != ws(w) || k.sk.as_str() < lo || k.sk >= hi, "{k:?} sorts among the people and policies");
        }
    }

    #[test]
    fn numbers_sort_numerically_and_round_trip() {
        let a = change("w", ChangeNumber::new(9).unwrap());
        let b = change("w", ChangeNumber::new(10).unwrap());
        assert!(a.sk < b.sk);
        assert_eq!(number_from_sk(&b.sk), ChangeNumber::new(10));
        assert!(seq_sk(99) < seq_sk(100));
    }

    #[test]
    fn every_index_has_one_slot_and_each_item_kind_uses_a_slot_once() {
        let kinds: [&[IndexName]; 4] = [
            &[BY_USER, BY_DELEGATE],
            &[BY_STATUS, BY_TYPE, BY_PRIORITY, BY_RISK, BY_ASSIGNEE],
            &[PENDING],
            &[AUDIT_ID, AUDIT_TARGET, AUDIT_ACTOR, AUDIT_ACTION, AUDIT_SUBJECT],
        ];
        let mut named: Vec<&str> = kinds.iter().flat_map(|k| k.iter().copied()).collect();
        named.sort();
        let mut slotted: Vec<&str> = INDEX_SLOTS.iter().map(|(n, _)| *n).collect();
        slotted.sort();
        assert_eq!(named, slotted, "each index appears once in INDEX_SLOTS");
        for kind in kinds {
            let mut slots: Vec<u8> = kind.iter().map(|n| index_slot(n).unwrap()).collect();
            assert!(slots.iter().all(|s| (1..=INDEX_SLOT_COUNT).contains(s)));
            slots.sort();
            slots.dedup();
            assert_eq!(slots.len(), kind.len(), "{kind:?} share a slot");
        }
        assert_eq!(index_slot("nope"), None);
    }

    #[test]
    fn partitions_of_different_kinds_never_collide() {
        let n = ChangeNumber::new(1).unwrap();
        let u = UserId::parse("u").unwrap();
        let pks = [
            workspace("w").pk,
            changes("w"),
            steps("w", n),
            audit_rows("w"),
            pending_partition("w"),
            status_partition("w", Status::Draft),
            asset_partition("w", "x"),
            delegators_of("w", &u),
            freeze_partition("w"),
            window_partition("w", "x"),
            ended_partition("w"),
        ];
        let mut uniq = pks.to_vec();
        uniq.sort();
        uniq.dedup();
        assert_eq!(uniq.len(), pks.len());
    }
}
