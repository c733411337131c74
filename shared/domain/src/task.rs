//! Runbook tasks: the steps of carrying a change out, each with its own lifecycle
//! (`todo → in_progress → done | skipped`), its predecessors, and the gate it holds:
//! start-gate tasks must be finished before the change starts, required
//! complete-gate tasks before it completes.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::change::{ChangeRequest, ChangeType, Status, TEXT_MAX, TITLE_MAX};
use crate::ids::UserId;
use crate::{DomainError, FieldErrors};

/// At most this many tasks per change.
pub const TASKS_MAX: usize = 200;
pub const PREDECESSORS_MAX: usize = 50;
/// A post-implementation review is due this long after an emergency change ends.
pub const REVIEW_DUE_HOURS: i64 = 48;

crate::change::wire_enum!(TaskStatus { Todo = "todo", InProgress = "in_progress", Done = "done", Skipped = "skipped" });
crate::change::wire_enum!(Gate { Start = "start", Complete = "complete" });
crate::change::wire_enum!(TaskAction { Start = "start", Done = "done", Skip = "skip" });
crate::change::wire_enum!(
    /// Where a task came from.
    TaskOrigin { Manual = "manual", Plan = "plan", Review = "post_implementation_review" }
);

impl TaskStatus {
    pub fn is_finished(self) -> bool {
        matches!(self, TaskStatus::Done | TaskStatus::Skipped)
    }
}

impl TaskAction {
    fn sources(self) -> &'static [TaskStatus] {
        match self {
            TaskAction::Start => &[TaskStatus::Todo],
            TaskAction::Done => &[TaskStatus::InProgress],
            TaskAction::Skip => &[TaskStatus::Todo, TaskStatus::InProgress],
        }
    }

    fn target(self) -> TaskStatus {
        match self {
            TaskAction::Start => TaskStatus::InProgress,
            TaskAction::Done => TaskStatus::Done,
            TaskAction::Skip => TaskStatus::Skipped,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Task {
    /// `T001`, `T002`, ... in the order tasks were added to the change.
    pub id: String,
    pub workspace_id: String,
    pub change_id: String,
    pub change_number: crate::ids::ChangeNumber,
    pub title: String,
    pub description: String,
    pub is_required: bool,
    pub gate: Gate,
    pub predecessors: Vec<String>,
    pub assignee: Option<UserId>,
    pub status: TaskStatus,
    pub origin: TaskOrigin,
    pub due_at: Option<Timestamp>,
    pub started_at: Option<Timestamp>,
    pub finished_at: Option<Timestamp>,
    pub finished_by: Option<UserId>,
    pub created_by: Option<UserId>,
    pub version: u64,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// The task id for the `seq`-th task of a change.
pub fn task_id(seq: u32) -> String {
    format!("T{seq:03}")
}

/// The sequence number within a task id, for the next id.
pub fn task_seq(id: &str) -> Option<u32> {
    id.strip_prefix('T')?.parse().ok()
}

impl Task {
    /// A short form for refusal details.
    pub fn summary(&self) -> Value {
        json!({ "id": self.id, "title": self.title, "status": self.status, "gate": self.gate, "is_required": self.is_required })
    }

    /// Applies `action`, refusing moves its FSM, its predecessors or its requiredness forbid.
    pub fn apply(&mut self, action: TaskAction, all: &[Task], by: &UserId, now: Timestamp) -> Result<(), DomainError> {
        if !action.sources().contains(&self.status) {
            let allowed =
                TaskAction::ALL.iter().filter(|a| a.sources().contains(&self.status)).map(|a| a.to_string()).collect();
            return Err(DomainError::InvalidTaskTransition {
                status: self.status.to_string(),
                action: action.to_string(),
                allowed,
            });
        }
        if action == TaskAction::Skip && self.is_required {
            return Err(DomainError::TaskRequired);
        }
        if action != TaskAction::Skip {
            let unmet: Vec<Value> = all
                .iter()
                .filter(|t| self.predecessors.contains(&t.id) && !t.status.is_finished())
                .map(Task::summary)
                .collect();
            if !unmet.is_empty() {
                return Err(DomainError::PredecessorsUnmet { tasks: unmet });
            }
        }
        self.status = action.target();
        match action {
            TaskAction::Start => self.started_at = Some(now),
            TaskAction::Done | TaskAction::Skip => {
                self.finished_at = Some(now);
                self.finished_by = Some(by.clone());
            }
        }
        Ok(())
    }
}

/// Whether a change's runbook still takes work: not once it was refused or withdrawn.
pub fn check_runbook_open(c: &ChangeRequest) -> Result<(), DomainError> {
    if matches!(c.status, Status::Rejected | Status::Cancelled) {
        return Err(DomainError::ChangeClosed { status: c.status.to_string() });
    }
    Ok(())
}

/// The start gate: every start-gate task done (or, if optional, skipped).
pub fn check_start_gate(tasks: &[Task]) -> Result<(), DomainError> {
    let pending: Vec<Value> =
        tasks.iter().filter(|t| t.gate == Gate::Start && !t.status.is_finished()).map(Task::summary).collect();
    if pending.is_empty() {
        Ok(())
    } else {
        Err(DomainError::TasksPending { gate: "start".into(), tasks: pending })
    }
}

/// The complete gate: every required task done or skipped. Reviews due after the end
/// are not part of it.
pub fn check_complete_gate(tasks: &[Task]) -> Result<(), DomainError> {
    let pending: Vec<Value> = tasks
        .iter()
        .filter(|t| t.is_required && t.origin != TaskOrigin::Review && !t.status.is_finished())
        .map(Task::summary)
        .collect();
    if pending.is_empty() {
        Ok(())
    } else {
        Err(DomainError::TasksPending { gate: "complete".into(), tasks: pending })
    }
}

/// Whether a change that just ended needs its post-implementation review task.
pub fn needs_review(c: &ChangeRequest, tasks: &[Task]) -> bool {
    c.change_type == ChangeType::Emergency && !tasks.iter().any(|t| t.origin == TaskOrigin::Review)
}

/// The steps of an implementation plan, one per line: list markers (`1.`, `2)`, `-`,
/// `*`, `Step 3:`) are dropped, blank lines and headings ending in `:` are skipped.
pub fn plan_steps(plan: &str) -> Vec<String> {
    plan.lines()
        .map(|l| strip_marker(l.trim()))
        .filter(|l| !l.is_empty() && !l.ends_with(':'))
        .map(|l| crate::text::one_line(l).chars().take(TITLE_MAX).collect())
        .collect()
}

fn strip_marker(line: &str) -> &str {
    let line = line.trim_start_matches(['-', '*', '•']).trim_start();
    let lower = line.to_ascii_lowercase();
    let rest = if lower.starts_with("step ") { &line[5..] } else { line };
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    if digits > 0 {
        if let Some(after) = rest[digits..].strip_prefix(['.', ')', ':']) {
            return after.trim();
        }
    }
    line.trim()
}

/// `POST /tasks`, as sent.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RawTask {
    pub title: Option<String>,
    pub description: Option<String>,
    pub is_required: Option<bool>,
    #[schema(value_type = Option<Gate>)]
    pub gate: Option<String>,
    pub predecessors: Option<Vec<String>>,
    pub assignee: Option<String>,
}

/// A task's checked values.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskFields {
    pub title: String,
    pub description: String,
    pub is_required: bool,
    pub gate: Gate,
    pub predecessors: Vec<String>,
    pub assignee: Option<UserId>,
}

impl RawTask {
    /// Checks values; `existing` are the change's tasks, which predecessors must name.
    pub fn parse(self, existing: &[Task]) -> Result<TaskFields, FieldErrors> {
        let mut e = FieldErrors::default();
        let title = self.title.map(|t| t.trim().to_owned()).unwrap_or_default();
        if let Err(reason) = crate::text::check_line(&title, 1, TITLE_MAX) {
            e.add("title", format!("required: {reason}"));
        }
        let description = self.description.unwrap_or_default();
        if let Err(reason) = crate::text::check_lines(&description, 0, TEXT_MAX) {
            e.add("description", reason);
        }
        let gate = match self.gate.as_deref() {
            None => Gate::Complete,
            Some(g) => Gate::parse(g).unwrap_or_else(|| {
                e.add("gate", format!("must be one of: {}", Gate::choices()));
                Gate::Complete
            }),
        };
        let mut predecessors = Vec::new();
        let raw_preds = self.predecessors.unwrap_or_default();
        if raw_preds.len() > PREDECESSORS_MAX {
            e.add("predecessors", format!("at most {PREDECESSORS_MAX}"));
        } else {
            for p in raw_preds {
                if !existing.iter().any(|t| t.id == p) {
                    e.add("predecessors", format!("{:?} is not a task of this change", crate::text::one_line(&p)));
                } else if !predecessors.contains(&p) {
                    predecessors.push(p);
                }
            }
        }
        let assignee = self.assignee.and_then(|a| UserId::parse(&a).map_err(|r| e.add("assignee", r)).ok());
        if existing.len() >= TASKS_MAX {
            e.add("title", format!("a change has at most {TASKS_MAX} tasks"));
        }
        if !e.is_empty() {
            return Err(e);
        }
        Ok(TaskFields {
            title,
            description,
            is_required: self.is_required.unwrap_or(true),
            gate,
            predecessors,
            assignee,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::ChangeNumber;
    use crate::test_support::user;

    fn task(id: &str, gate: Gate, required: bool, preds: &[&str]) -> Task {
        let t: Timestamp = "2026-11-01T00:00:00Z".parse().unwrap();
        Task {
            id: id.into(),
            workspace_id: "w".into(),
            change_id: "c".into(),
            change_number: ChangeNumber::new(1).unwrap(),
            title: id.into(),
            description: String::new(),
            is_required: required,
            gate,
            predecessors: preds.iter().map(|s| s.to_string()).collect(),
            assignee: None,
            status: TaskStatus::Todo,
            origin: TaskOrigin::Manual,
            due_at: None,
            started_at: None,
            finished_at: None,
            finished_by: None,
            created_by: None,
            version: 1,
            created_at: t,
            updated_at: t,
        }
    }

    #[test]
    fn the_task_fsm_refuses_what_it_does_not_allow() {
        let now = "2026-11-02T00:00:00Z".parse().unwrap();
        let u = user("bob");
        let mut t = task("T001", Gate::Complete, true, &[]);
        let e = t.clone().apply(TaskAction::Done, &[], &u, now).unwrap_err();
        assert!(matches!(e, DomainError::InvalidTaskTransition { ref allowed, .. } if allowed == &["start", "skip"]));
        assert_eq!(t.clone().apply(TaskAction::Skip, &[], &u, now), Err(DomainError::TaskRequired));
        t.apply(TaskAction::Start, &[], &u, now).unwrap();
        t.apply(TaskAction::Done, &[], &u, now).unwrap();
        assert_eq!(t.status, TaskStatus::Done);
        assert!(t.clone().apply(TaskAction::Start, &[], &u, now).is_err());
        let mut optional = task("T002", Gate::Complete, false, &[]);
        optional.apply(TaskAction::Skip, &[], &u, now).unwrap();
        assert_eq!(optional.status, TaskStatus::Skipped);
    }

    #[test]
    fn predecessors_hold_a_task_back_until_finished() {
        let now = "2026-11-02T00:00:00Z".parse().unwrap();
        let u = user("bob");
        let mut first = task("T001", Gate::Complete, true, &[]);
        let mut second = task("T002", Gate::Complete, true, &["T001"]);
        let e = second.clone().apply(TaskAction::Start, std::slice::from_ref(&first), &u, now).unwrap_err();
        assert!(matches!(e, DomainError::PredecessorsUnmet { ref tasks } if tasks[0]["id"] == "T001"));
        first.apply(TaskAction::Start, &[], &u, now).unwrap();
        first.apply(TaskAction::Done, &[], &u, now).unwrap();
        second.apply(TaskAction::Start, &[first], &u, now).unwrap();
    }

    #[test]
    fn gates_list_what_is_missing() {
        let mut start = task("T001", Gate::Start, true, &[]);
        let optional = task("T002", Gate::Complete, false, &[]);
        let required = task("T003", Gate::Complete, true, &[]);
        let e = check_start_gate(&[start.clone(), optional.clone(), required.clone()]).unwrap_err();
        assert!(matches!(e, DomainError::TasksPending { ref tasks, .. } if tasks.len() == 1));
        start.status = TaskStatus::Done;
        check_start_gate(&[start.clone(), optional.clone()]).unwrap();
        let e = check_complete_gate(&[start, optional, required]).unwrap_err();
        assert!(
            matches!(e, DomainError::TasksPending { ref tasks, .. } if tasks.len() == 1 && tasks[0]["id"] == "T003")
        );
    }

    #[test]
    fn plans_split_into_steps() {
        let plan = "Steps:\n1. Drain node\n2) Patch kernel\n\n- Reboot\n* Step 4: Undrain\nStep 5: verify";
        assert_eq!(plan_steps(plan), ["Drain node", "Patch kernel", "Reboot", "Undrain", "verify"]);
        assert!(plan_steps("  \n\n").is_empty());
        assert_eq!(task_seq(&task_id(12)), Some(12));
    }
}
