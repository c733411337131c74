//! The freeze sweep: the gates refuse to schedule or start a change inside a freeze,
//! but a window filed after a change was scheduled (or filed while the schedule was
//! being decided, on a backend where the two writes do not meet on one item) would
//! otherwise wait for someone to press start. Every few minutes the sweep takes each
//! scheduled change whose planned window now meets an in-scope freeze it was not
//! overridden for back to `approved`, with a `change.unschedule` row naming the
//! windows, and tells its people; and it tells the people of scheduled changes in a
//! freeze's scope, once, when the freeze is less than a day away.
//!
//! Each unschedule is one transaction, conditioned on the change as read and holding
//! the freeze calendar as read: a change started, cancelled or edited meanwhile, or a
//! window withdrawn meanwhile, makes it decide again from a fresh read.

use jiff::{SignedDuration, Timestamp};
use serde::Serialize;
use serde_json::json;
use vigilo_domain::change::{ChangeRequest, Status};
use vigilo_domain::freeze::FreezeWindow;
use vigilo_domain::notice::{ChangeDetails, NoticeKind};
use vigilo_domain::transition::freeze_brief;
use vigilo_domain::workspace::{Member, Workspace};

use crate::error::{AppError, AppResult};
use crate::keys;
use crate::paging;
use crate::retrying;
use crate::services::notices::Event;
use crate::services::records::{change_item, load};
use crate::services::sweeps::tally;
use crate::services::views::diff;
use crate::store::{Condition, Item, Query};
use crate::txn::AuditEntry;
use crate::Vigilo;

/// How long before a freeze begins the people of the changes in its scope hear of it.
pub const HEADS_UP: SignedDuration = SignedDuration::from_hours(24);

/// What one freeze sweep did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct FreezeReport {
    pub workspaces: usize,
    /// Scheduled changes looked at.
    pub scheduled: usize,
    /// Changes taken back to `approved`, as `CHG-00012` in their workspace.
    pub unscheduled: Vec<String>,
    /// Changes whose people heard of a freeze ahead of it.
    pub warned: usize,
    /// Workspaces the sweep could not pass over this time (each is logged as an error).
    pub failed: Vec<String>,
}

tally!(FreezeReport { sum: [workspaces, scheduled, warned], lists: [unscheduled, failed], failed: failed });

/// The windows that hold `c` over its planned window and that nobody overrode for it.
fn not_overridden(windows: &[FreezeWindow], c: &ChangeRequest) -> Vec<FreezeWindow> {
    let (Some(from), Some(to)) = (c.planned_start, c.planned_end) else { return vec![] };
    windows.iter().filter(|f| !c.freeze_overrides.contains(&f.id)).filter_map(|f| f.blocking(c, from, to)).collect()
}

/// The occurrences of windows beginning within [`HEADS_UP`] of `now` whose scope
/// covers `c`, planned to start before the occurrence ends (a change planned for after
/// it is not affected).
fn ahead(windows: &[FreezeWindow], c: &ChangeRequest, now: Timestamp) -> Vec<FreezeWindow> {
    let Some(start) = c.planned_start else { return vec![] };
    let soon = now + HEADS_UP;
    windows
        .iter()
        .filter(|f| f.scope.covers(c))
        .flat_map(|f| f.occurrences(now, soon, 2).into_iter().map(move |o| f.occurring(o)))
        .filter(|o| o.start > now && o.start <= soon && start < o.end)
        .collect()
}

impl Vigilo {
    /// Sweeps every workspace.
    pub async fn freeze_sweep_all(&self) -> AppResult<FreezeReport> {
        self.each_workspace("freeze", |ws| async move { self.freeze_sweep(&ws).await }).await
    }

    /// Sweeps one workspace: its scheduled changes (from the status index) against its
    /// freeze calendar, then the notices.
    pub async fn freeze_sweep(&self, ws: &str) -> AppResult<FreezeReport> {
        let workspace: Workspace = load(&*self.table, &keys::workspace(ws)).await?.ok_or(AppError::NotFound)?;
        let now = self.now();
        let windows = self.live_calendar(ws, now).await?.1;
        let q = Query::index(keys::BY_STATUS, keys::status_partition(ws, Status::Scheduled)).limit(200);
        let scheduled: Vec<ChangeRequest> = paging::query_all(&*self.table, q).await?;
        let mut report = FreezeReport { workspaces: 1, scheduled: scheduled.len(), ..FreezeReport::default() };
        if windows.is_empty() || scheduled.is_empty() {
            return Ok(report);
        }
        let members = self.all_members(ws).await?;
        for read in &scheduled {
            if !not_overridden(&windows, read).is_empty() {
                if let Some(n) = self.unschedule(&workspace, read.number, &members).await? {
                    report.unscheduled.push(n);
                }
                continue;
            }
            for f in ahead(&windows, read, now) {
                if self.heads_up(&workspace, read, &f, &members).await? {
                    report.warned += 1;
                }
            }
        }
        if !report.unscheduled.is_empty() || report.warned > 0 {
            if let Err(e) = self.deliver_pending(ws).await {
                tracing::warn!(error = %e, "freeze notices deferred");
            }
        }
        Ok(report)
    }

    /// The freeze calendar's stamp and the windows not over at `now`.
    async fn live_calendar(&self, ws: &str, now: Timestamp) -> AppResult<(Option<String>, Vec<FreezeWindow>)> {
        let (stamp, windows) = self.calendar_with_stamp(ws, now).await?;
        Ok((stamp, windows.into_iter().filter(|f| f.holds_until() > now).collect()))
    }

    /// Takes change `n` back to `approved` if, read again, it is still scheduled over a
    /// window not overridden for it. The number, as people read it, when it did.
    async fn unschedule(
        &self,
        ws: &Workspace,
        n: vigilo_domain::ids::ChangeNumber,
        members: &[Member],
    ) -> AppResult<Option<String>> {
        retrying!({
            let now = self.now();
            let (stamp, windows) = self.live_calendar(&ws.id, now).await?;
            let Some(old) = load::<ChangeRequest>(&*self.table, &keys::change(&ws.id, n)).await? else {
                return Ok(None);
            };
            let holding = not_overridden(&windows, &old);
            if old.status != Status::Scheduled || holding.is_empty() {
                return Ok(None);
            }
            let mut new = old.clone();
            new.status = Status::Approved;
            new.version = old.version + 1;
            new.updated_at = now;
            let (before, after) = diff(&old, &new);
            let mut tx = self.tx(&ws.id, None);
            tx.put(change_item(&new), Some(Condition::version(old.version)));
            tx.hold_epoch(keys::freezes_epoch(&ws.id), stamp);
            let meta = json!({
                "actor_kind": "sweep:freeze",
                "windows": holding.iter().map(freeze_brief).collect::<Vec<_>>(),
            });
            tx.audit(
                AuditEntry::new("change.unschedule", "ChangeRequest", &new.id)
                    .values(before, after)
                    .subject(&new.id)
                    .meta(meta),
            );
            for op in self.freeze_notices(ws, &new, members, &holding, NoticeKind::ChangeUnscheduled, now) {
                tx.derived(op);
            }
            tx.commit(now).await?;
            Ok(Some(new.number.to_string()))
        })
    }

    /// Tells the people of `c` that `f` begins within a day, unless they were told
    /// already: the mark and the notices are one transaction.
    async fn heads_up(
        &self,
        ws: &Workspace,
        c: &ChangeRequest,
        f: &FreezeWindow,
        members: &[Member],
    ) -> AppResult<bool> {
        let mark = keys::freeze_heads_up(&ws.id, &f.id, &vigilo_domain::time::format(f.start), c.number);
        if self.table.get(&mark).await?.is_some() || self.delivery.is_none() {
            return Ok(false);
        }
        let now = self.now();
        let mut tx = self.tx(&ws.id, None);
        // Kept until a week after the window ends, then dropped by the table's TTL.
        let until = (f.end + SignedDuration::from_hours(24 * 7)).as_second();
        let data = json!({"window_id": f.id, "change_number": c.number, "at": vigilo_domain::time::format(now)});
        tx.derived(crate::store::WriteOp::Put {
            item: Item::new(mark, data).expires(until),
            condition: Some(Condition::NotExists),
        });
        let windows = std::slice::from_ref(f);
        for op in self.freeze_notices(ws, c, members, windows, NoticeKind::FreezeUpcoming, now) {
            tx.derived(op);
        }
        match tx.commit(now).await {
            Ok(_) => Ok(true),
            // Another sweep told them first.
            Err(AppError::Contended) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Notices of `kind` about `c` to its author and assignee, with the change's
    /// details and the freeze windows concerned, named in the notice's own words too.
    fn freeze_notices(
        &self,
        ws: &Workspace,
        c: &ChangeRequest,
        members: &[Member],
        windows: &[FreezeWindow],
        kind: NoticeKind,
        now: Timestamp,
    ) -> Vec<crate::store::WriteOp> {
        let author_name = members.iter().find(|m| m.user_id == c.author).and_then(|m| m.name.clone());
        let details = ChangeDetails::of(c, author_name, &[], windows, &[]);
        let detail = vigilo_render::freezes_named(ws.locale, &ws.timezone, &details.freezes);
        let event = Event { ws, change: c, members, details: Some(&details), now };
        self.change_notices(&event, kind, Some(detail))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigilo_domain::change::ChangeType;
    use vigilo_domain::freeze::FreezeScope;
    use vigilo_domain::ids::{ChangeNumber, UserId};

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn window(id: &str, start: &str, end: &str, assets: &[&str]) -> FreezeWindow {
        FreezeWindow {
            id: id.into(),
            workspace_id: "w".into(),
            name: id.into(),
            description: String::new(),
            start: at(start),
            end: at(end),
            timezone: "UTC".into(),
            local_start: start.into(),
            local_end: end.into(),
            scope: FreezeScope {
                all: false,
                assets: assets.iter().map(|a| a.to_string()).collect(),
                change_types: vec![],
            },
            allow_override: false,
            recurrence: None,
            series_end: None,
            created_by: UserId::parse("olga").unwrap(),
            created_at: at("2026-01-01T00:00:00Z"),
            version: 1,
        }
    }

    fn scheduled(start: &str, end: &str) -> ChangeRequest {
        let (n, t) = (ChangeNumber::new(1).unwrap(), at("2026-11-01T00:00:00Z"));
        let mut c =
            ChangeRequest::draft("c1".into(), "w".into(), n, ChangeType::Normal, UserId::parse("mia").unwrap(), t);
        c.status = Status::Scheduled;
        c.affected_assets = vec!["db".into()];
        c.planned_start = Some(at(start));
        c.planned_end = Some(at(end));
        c
    }

    #[test]
    fn a_window_holds_a_change_unless_it_was_overridden_for_it() {
        let c = scheduled("2026-12-24T10:00:00Z", "2026-12-24T11:00:00Z");
        let over = window("xmas", "2026-12-24T00:00:00Z", "2026-12-27T00:00:00Z", &["db"]);
        let elsewhere = window("web", "2026-12-24T00:00:00Z", "2026-12-27T00:00:00Z", &["web"]);
        let after = window("later", "2026-12-24T11:00:00Z", "2026-12-25T00:00:00Z", &["db"]);
        let all = [over.clone(), elsewhere, after];
        let ids = |c: &ChangeRequest| not_overridden(&all, c).into_iter().map(|f| f.id).collect::<Vec<_>>();
        assert_eq!(ids(&c), [over.id], "touching the end does not hold it; other assets do not");
        let mut overridden = c.clone();
        overridden.freeze_overrides = vec!["xmas".into()];
        assert!(not_overridden(&all, &overridden).is_empty());
        let mut unplanned = c;
        unplanned.planned_end = None;
        assert!(not_overridden(&all, &unplanned).is_empty());
    }

    #[test]
    fn heads_up_covers_windows_a_day_ahead_that_the_change_runs_into() {
        let now = at("2026-12-23T12:00:00Z");
        let before = scheduled("2026-12-23T20:00:00Z", "2026-12-23T22:00:00Z");
        let soon = window("soon", "2026-12-24T00:00:00Z", "2026-12-27T00:00:00Z", &["db"]);
        let too_far = window("far", "2026-12-24T12:00:01Z", "2026-12-27T00:00:00Z", &["db"]);
        let begun = window("begun", "2026-12-23T11:59:59Z", "2026-12-27T00:00:00Z", &["db"]);
        let other = window("other", "2026-12-24T00:00:00Z", "2026-12-27T00:00:00Z", &["web"]);
        let mut weekly = window("weekly", "2026-12-03T00:00:00Z", "2026-12-03T06:00:00Z", &["db"]);
        weekly.recurrence = Some("RRULE:FREQ=WEEKLY".into());
        let mut fortnightly = window("fortnightly", "2026-12-10T00:00:00Z", "2026-12-10T06:00:00Z", &["db"]);
        fortnightly.recurrence = Some("RRULE:FREQ=WEEKLY;INTERVAL=2".into());
        let all = [soon, too_far, begun, other, weekly, fortnightly];
        let ids = |c: &ChangeRequest| ahead(&all, c, now).iter().map(|f| f.id.clone()).collect::<Vec<_>>();
        // The weekly window's fourth occurrence begins on the 24th; the fortnightly
        // one's next is on the 24th too, its last was on the 10th.
        assert_eq!(ids(&before), ["soon", "weekly", "fortnightly"]);
        let occurrence = &ahead(&all, &before, now)[1];
        assert_eq!((occurrence.start, occurrence.end), (at("2026-12-24T00:00:00Z"), at("2026-12-24T06:00:00Z")));
        let after = scheduled("2026-12-28T10:00:00Z", "2026-12-28T11:00:00Z");
        assert!(ids(&after).is_empty(), "a change planned after the freeze is not affected");
    }
}
