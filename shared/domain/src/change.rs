//! The change request: its fields, the enumerations the contract fixes, and the limits
//! every write is checked against.

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::ids::{ChangeNumber, UserId};
use crate::{text, FieldErrors};

macro_rules! wire_enum {
    ($(#[$m:meta])* $name:ident { $($variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum $name { $(#[serde(rename = $text)] $variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            pub fn parse(s: &str) -> Option<$name> {
                match s { $($text => Some($name::$variant),)+ _ => None }
            }

            /// The allowed spellings, for error messages.
            pub fn choices() -> String {
                [$($text),+].join(", ")
            }
        }

        /// A string with the wire spellings as its `enum`.
        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::schema::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .enum_values(Some([$($text),+]))
                    .into()
            }
        }

        impl utoipa::ToSchema for $name {}

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

pub(crate) use wire_enum;

wire_enum!(ChangeType { Standard = "standard", Normal = "normal", Emergency = "emergency" });
wire_enum!(Priority { Low = "low", Medium = "medium", High = "high", Critical = "critical" });
wire_enum!(RiskLevel { Low = "low", Medium = "medium", High = "high" });
wire_enum!(ClosureCode {
    Successful = "successful",
    SuccessfulWithIssues = "successful_with_issues",
    Unsuccessful = "unsuccessful",
});
wire_enum!(
    /// Where a change stands in its lifecycle.
    Status {
        Draft = "draft",
        Review = "review",
        Approved = "approved",
        Rejected = "rejected",
        Scheduled = "scheduled",
        InProgress = "in_progress",
        Completed = "completed",
        Failed = "failed",
        RolledBack = "rolled_back",
        Cancelled = "cancelled",
    }
);

impl ChangeType {
    /// Default minimum lead time in hours, per type.
    pub fn default_lead_time_hours(self) -> u32 {
        match self {
            ChangeType::Emergency => 0,
            ChangeType::Normal => 24,
            ChangeType::Standard => 4,
        }
    }
}

impl Status {
    pub fn is_terminal(self) -> bool {
        matches!(self, Status::Rejected | Status::Failed | Status::RolledBack | Status::Cancelled)
    }
}

pub const TITLE_MAX: usize = 200;
pub const TEXT_MAX: usize = 20_000;
pub const ASSETS_MAX: usize = 100;
pub const ASSET_LEN_MAX: usize = 200;
pub const DEPENDENCIES_MAX: usize = 50;
pub const CUSTOM_FIELDS_MAX: usize = 50;
/// Keeps a change, with its audit rows, well inside a DynamoDB item (400 KB).
pub const CUSTOM_VALUE_MAX: usize = 2_000;
pub const LEAD_TIME_MAX_HOURS: u32 = 8_760;
pub const REASON_MAX: usize = 5_000;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ChangeRequest {
    pub id: String,
    pub workspace_id: String,
    pub number: ChangeNumber,
    pub title: String,
    pub description: String,
    pub change_type: ChangeType,
    pub priority: Priority,
    pub risk_level: RiskLevel,
    pub planned_start: Option<Timestamp>,
    pub planned_end: Option<Timestamp>,
    pub affected_assets: Vec<String>,
    pub implementation_plan: String,
    pub rollback_plan: String,
    pub test_plan: String,
    pub min_lead_time_hours: u32,
    pub dependencies: Vec<ChangeNumber>,
    pub assignee: Option<UserId>,
    pub custom_fields: BTreeMap<String, serde_json::Value>,
    pub status: Status,
    pub author: UserId,
    pub submitted_at: Option<Timestamp>,
    /// How many times the change has been submitted; approval steps belong to a round.
    #[serde(default)]
    pub approval_round: u32,
    pub closure_code: Option<ClosureCode>,
    pub closure_notes: Option<String>,
    pub failure_reason: Option<String>,
    pub rollback_reason: Option<String>,
    pub rolled_back_at: Option<Timestamp>,
    pub rolled_back_by: Option<UserId>,
    pub cancel_reason: Option<String>,
    /// The freeze windows someone allowed to override did override for this change,
    /// with a reason on its `change.freeze_override` row: the freeze sweep leaves the
    /// change scheduled over these, and only these.
    #[serde(default)]
    pub freeze_overrides: Vec<String>,
    pub started_at: Option<Timestamp>,
    pub ended_at: Option<Timestamp>,
    /// Derived on reading one change (never stored): `null` in lists and in storage.
    #[serde(default)]
    pub conflicts: Option<Vec<crate::conflict::Conflict>>,
    pub version: u64,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// The editable fields of a change, already typed. Missing enums fall back to defaults
/// when creating; on a patch `None` means "leave as is".
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChangeFields {
    pub title: Option<String>,
    pub description: Option<String>,
    pub change_type: Option<ChangeType>,
    pub priority: Option<Priority>,
    pub risk_level: Option<RiskLevel>,
    pub planned_start: Option<Option<Timestamp>>,
    pub planned_end: Option<Option<Timestamp>>,
    pub affected_assets: Option<Vec<String>>,
    pub implementation_plan: Option<String>,
    pub rollback_plan: Option<String>,
    pub test_plan: Option<String>,
    pub min_lead_time_hours: Option<u32>,
    pub dependencies: Option<Vec<ChangeNumber>>,
    pub assignee: Option<Option<UserId>>,
    pub custom_fields: Option<BTreeMap<String, serde_json::Value>>,
}

/// What the caller sends, before the enums and times are checked. Types are enforced by
/// serde (a wrong type is a 400); values are checked by [`RawChange::parse`] (a 422).
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RawChange {
    pub title: Option<String>,
    pub description: Option<String>,
    #[schema(value_type = Option<ChangeType>)]
    pub change_type: Option<String>,
    #[schema(value_type = Option<Priority>)]
    pub priority: Option<String>,
    #[schema(value_type = Option<RiskLevel>)]
    pub risk_level: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub planned_start: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub planned_end: Option<Option<String>>,
    pub affected_assets: Option<Vec<String>>,
    pub implementation_plan: Option<String>,
    pub rollback_plan: Option<String>,
    pub test_plan: Option<String>,
    pub min_lead_time_hours: Option<i64>,
    #[schema(value_type = Option<Vec<ChangeNumber>>)]
    pub dependencies: Option<Vec<String>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub assignee: Option<Option<String>>,
    #[schema(value_type = Option<Object>)]
    pub custom_fields: Option<serde_json::Map<String, serde_json::Value>>,
}

/// Distinguishes an absent field (`None`) from an explicit `null` (`Some(None)`).
fn nullable<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

fn parse_enum<T>(
    errors: &mut FieldErrors,
    field: &str,
    value: Option<&str>,
    parse: fn(&str) -> Option<T>,
    choices: String,
) -> Option<T> {
    let v = value?;
    let parsed = parse(v);
    if parsed.is_none() {
        errors.add(field, format!("must be one of: {choices}"));
    }
    parsed
}

fn parse_time(errors: &mut FieldErrors, field: &str, v: &Option<Option<String>>) -> Option<Option<Timestamp>> {
    match v {
        None => None,
        Some(None) => Some(None),
        Some(Some(s)) => match crate::time::parse(s) {
            Some(t) => Some(Some(crate::time::to_millis(t))),
            None => {
                errors.add(field, "must be an RFC 3339 time with an offset, e.g. 2026-12-01T09:00:00Z");
                None
            }
        },
    }
}

impl RawChange {
    /// Checks every value and its limits, collecting one reason per bad field.
    pub fn parse(self) -> Result<ChangeFields, FieldErrors> {
        let mut e = FieldErrors::default();
        let mut f = ChangeFields {
            change_type: parse_enum(
                &mut e,
                "change_type",
                self.change_type.as_deref(),
                ChangeType::parse,
                ChangeType::choices(),
            ),
            priority: parse_enum(&mut e, "priority", self.priority.as_deref(), Priority::parse, Priority::choices()),
            risk_level: parse_enum(
                &mut e,
                "risk_level",
                self.risk_level.as_deref(),
                RiskLevel::parse,
                RiskLevel::choices(),
            ),
            planned_start: parse_time(&mut e, "planned_start", &self.planned_start),
            planned_end: parse_time(&mut e, "planned_end", &self.planned_end),
            ..ChangeFields::default()
        };
        if let Some(title) = self.title {
            let t = title.trim().to_owned();
            if let Err(reason) = text::check_line(&t, 1, TITLE_MAX) {
                e.add("title", reason);
            }
            f.title = Some(t);
        }
        for (name, value, slot) in [
            ("description", self.description, &mut f.description),
            ("implementation_plan", self.implementation_plan, &mut f.implementation_plan),
            ("rollback_plan", self.rollback_plan, &mut f.rollback_plan),
            ("test_plan", self.test_plan, &mut f.test_plan),
        ] {
            if let Some(v) = value {
                if let Err(reason) = text::check_lines(&v, 0, TEXT_MAX) {
                    e.add(name, reason);
                }
                *slot = Some(v);
            }
        }
        if let Some(assets) = self.affected_assets {
            f.affected_assets = Some(check_assets(&mut e, "affected_assets", assets));
        }
        if let Some(h) = self.min_lead_time_hours {
            match u32::try_from(h) {
                Ok(h) if h <= LEAD_TIME_MAX_HOURS => f.min_lead_time_hours = Some(h),
                _ => e.add("min_lead_time_hours", format!("must be 0 to {LEAD_TIME_MAX_HOURS}")),
            }
        }
        if let Some(deps) = self.dependencies {
            if deps.len() > DEPENDENCIES_MAX {
                // Counted before any per-item work: a huge list costs nothing more.
                e.add("dependencies", format!("at most {DEPENDENCIES_MAX} dependencies"));
            } else {
                let mut parsed: Vec<ChangeNumber> = Vec::with_capacity(deps.len());
                for d in &deps {
                    match ChangeNumber::parse(d) {
                        Some(n) => parsed.push(n),
                        None => e.add(
                            "dependencies",
                            format!("{:?} is not a change number like CHG-00001", text::one_line(d)),
                        ),
                    }
                }
                f.dependencies = Some(dedup_keeping_order(parsed));
            }
        }
        if let Some(a) = self.assignee {
            f.assignee = Some(match a {
                None => None,
                Some(s) => match UserId::parse(&s) {
                    Ok(u) => Some(u),
                    Err(reason) => {
                        e.add("assignee", reason);
                        None
                    }
                },
            });
        }
        if let Some(cf) = self.custom_fields {
            if cf.len() > CUSTOM_FIELDS_MAX {
                e.add("custom_fields", format!("at most {CUSTOM_FIELDS_MAX} keys"));
            } else if let Err(reason) = check_custom_fields(&cf) {
                e.add("custom_fields", reason);
            }
            f.custom_fields = Some(cf.into_iter().collect());
        }
        if e.is_empty() {
            Ok(f)
        } else {
            Err(e)
        }
    }
}

/// Trims and de-duplicates asset names, recording bad ones under `field`. A list
/// longer than the limit is refused before any asset is looked at.
pub fn check_assets(e: &mut FieldErrors, field: &str, assets: Vec<String>) -> Vec<String> {
    if assets.len() > ASSETS_MAX {
        e.add(field, format!("at most {ASSETS_MAX} assets"));
        return vec![];
    }
    let mut out: Vec<String> = Vec::with_capacity(assets.len());
    for a in assets {
        let a = a.trim().to_owned();
        if a.is_empty() || a.chars().count() > ASSET_LEN_MAX {
            e.add(field, format!("each asset must be 1 to {ASSET_LEN_MAX} characters"));
        } else if a.chars().any(text::breaks_a_line) {
            e.add(field, "assets must not contain control characters");
        } else {
            out.push(a);
        }
    }
    dedup_keeping_order(out)
}

/// Drops repeated values, keeping the first of each, in O(n log n).
pub fn dedup_keeping_order<T: Ord + Clone>(items: Vec<T>) -> Vec<T> {
    let mut seen = std::collections::BTreeSet::new();
    items.into_iter().filter(|x| seen.insert(x.clone())).collect()
}

/// How deep a custom field's value may nest (a scalar is depth 1). Stored items hold
/// it a few levels down (a change, an audit row's old and new values), and DynamoDB
/// refuses documents nested deeper than 32 levels.
pub const CUSTOM_DEPTH_MAX: usize = 16;
/// The smallest and largest magnitudes a custom number may have: DynamoDB keeps
/// numbers from 1e-130 to just under 1e126, with 38 significant digits.
pub const NUMBER_MIN_MAGNITUDE: f64 = 1e-130;
pub const NUMBER_MAX_MAGNITUDE: f64 = 1e125;

/// What custom fields may hold: JSON values of at most [`CUSTOM_VALUE_MAX`] bytes,
/// nested at most [`CUSTOM_DEPTH_MAX`] levels, with numbers every store keeps exactly
/// (zero, or a magnitude from 1e-130 to 1e125) and strings without control characters
/// other than line breaks and tabs. Keys are single lines of 1 to 100 characters.
pub fn check_custom_fields<'a>(
    cf: impl IntoIterator<Item = (&'a String, &'a serde_json::Value)>,
) -> Result<(), String> {
    for (k, v) in cf {
        if text::check_line(k, 1, 100).is_err() {
            return Err("keys must be 1 to 100 characters on one line, without control characters".into());
        }
        let json = v.to_string();
        if json.len() > CUSTOM_VALUE_MAX {
            return Err(format!("each value must be at most {CUSTOM_VALUE_MAX} bytes of JSON"));
        }
        check_custom_value(v, 1).map_err(|reason| format!("{}: {reason}", text::one_line(k)))?;
    }
    Ok(())
}

fn check_custom_value(v: &serde_json::Value, depth: usize) -> Result<(), String> {
    use serde_json::Value;
    if depth > CUSTOM_DEPTH_MAX {
        return Err(format!("values may nest at most {CUSTOM_DEPTH_MAX} levels"));
    }
    match v {
        Value::Null | Value::Bool(_) => Ok(()),
        Value::Number(n) => match n.as_f64() {
            _ if n.is_i64() || n.is_u64() => Ok(()),
            Some(x) if x == 0.0 || (NUMBER_MIN_MAGNITUDE..=NUMBER_MAX_MAGNITUDE).contains(&x.abs()) => Ok(()),
            _ => Err("numbers must be 0 or of a magnitude from 1e-130 to 1e125".into()),
        },
        Value::String(s) => text::check_lines(s, 0, CUSTOM_VALUE_MAX),
        Value::Array(items) => items.iter().try_for_each(|x| check_custom_value(x, depth + 1)),
        Value::Object(map) => map.iter().try_for_each(|(k, x)| {
            text::check_line(k, 0, 100)?;
            check_custom_value(x, depth + 1)
        }),
    }
}

impl ChangeRequest {
    /// A fresh draft with the type's defaults, before the caller's fields are applied.
    pub fn draft(
        id: String,
        workspace_id: String,
        number: ChangeNumber,
        change_type: ChangeType,
        author: UserId,
        now: Timestamp,
    ) -> ChangeRequest {
        ChangeRequest {
            id,
            workspace_id,
            number,
            title: String::new(),
            description: String::new(),
            change_type,
            priority: Priority::Medium,
            risk_level: RiskLevel::Low,
            planned_start: None,
            planned_end: None,
            affected_assets: vec![],
            implementation_plan: String::new(),
            rollback_plan: String::new(),
            test_plan: String::new(),
            min_lead_time_hours: change_type.default_lead_time_hours(),
            dependencies: vec![],
            assignee: None,
            custom_fields: BTreeMap::new(),
            status: Status::Draft,
            author,
            submitted_at: None,
            approval_round: 0,
            closure_code: None,
            closure_notes: None,
            failure_reason: None,
            rollback_reason: None,
            rolled_back_at: None,
            rolled_back_by: None,
            cancel_reason: None,
            freeze_overrides: vec![],
            started_at: None,
            ended_at: None,
            conflicts: None,
            version: 1,
            created_at: now,
            updated_at: now,
        }
    }

    /// Applies edited fields; `None` leaves a field untouched. A new type brings its
    /// default lead time unless the edit sets one or the old one was set by hand.
    pub fn apply(&mut self, f: ChangeFields) {
        if let Some(t) = f.change_type {
            if f.min_lead_time_hours.is_none() && self.min_lead_time_hours == self.change_type.default_lead_time_hours()
            {
                self.min_lead_time_hours = t.default_lead_time_hours();
            }
        }
        macro_rules! set {
            ($($field:ident),*) => { $(if let Some(v) = f.$field { self.$field = v; })* };
        }
        set!(
            title,
            description,
            change_type,
            priority,
            risk_level,
            planned_start,
            planned_end,
            affected_assets,
            implementation_plan,
            rollback_plan,
            test_plan,
            min_lead_time_hours,
            dependencies,
            assignee,
            custom_fields
        );
    }

    /// Checks that hold for any stored change, whatever its status.
    pub fn check_consistency(&self) -> Result<(), FieldErrors> {
        let mut e = FieldErrors::default();
        if let (Some(s), Some(end)) = (self.planned_start, self.planned_end) {
            if end <= s {
                e.add("planned_end", "must be after planned_start");
            }
        }
        if self.dependencies.contains(&self.number) {
            e.add("dependencies", "a change cannot depend on itself");
        }
        if e.is_empty() {
            Ok(())
        } else {
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(json: serde_json::Value) -> RawChange {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn limits_are_enforced_per_field() {
        let long = "x".repeat(TEXT_MAX + 1);
        let err = raw(serde_json::json!({
            "title": "", "description": long, "change_type": "weekly", "priority": "urgent",
            "risk_level": "extreme", "planned_start": "tomorrow",
            "affected_assets": (0..101).map(|i| format!("a{i}")).collect::<Vec<_>>(),
            "min_lead_time_hours": -1, "dependencies": ["CHG-1", "nope"],
            "custom_fields": (0..51).map(|i| (format!("k{i}"), serde_json::json!(i))).collect::<serde_json::Map<_,_>>(),
        }))
        .parse()
        .unwrap_err();
        for f in [
            "title",
            "description",
            "change_type",
            "priority",
            "risk_level",
            "planned_start",
            "affected_assets",
            "min_lead_time_hours",
            "dependencies",
            "custom_fields",
        ] {
            assert!(err.0.contains_key(f), "{f} should be refused: {err:?}");
        }
    }

    #[test]
    fn values_at_the_limits_are_accepted() {
        let f = raw(serde_json::json!({
            "title": "x".repeat(TITLE_MAX), "description": "d".repeat(TEXT_MAX),
            "affected_assets": (0..100).map(|i| format!("{i:0>200}")).collect::<Vec<_>>(),
            "planned_start": "2026-12-01T10:00:00+01:00", "planned_end": null,
        }))
        .parse()
        .unwrap();
        assert_eq!(f.affected_assets.unwrap().len(), 100);
        assert_eq!(f.planned_start, Some(Some("2026-12-01T09:00:00Z".parse().unwrap())));
        assert_eq!(f.planned_end, Some(None));
    }

    #[test]
    fn unknown_fields_are_a_type_error() {
        assert!(serde_json::from_value::<RawChange>(serde_json::json!({"titel": "x"})).is_err());
        assert!(serde_json::from_value::<RawChange>(serde_json::json!({"title": 5})).is_err());
    }

    #[test]
    fn a_new_type_brings_its_lead_time_unless_one_was_chosen() {
        let mut c = crate::test_support::draft();
        c.change_type = ChangeType::Emergency;
        c.min_lead_time_hours = 0;
        c.apply(ChangeFields { change_type: Some(ChangeType::Normal), ..ChangeFields::default() });
        assert_eq!(c.min_lead_time_hours, 24);
        c.min_lead_time_hours = 6;
        c.apply(ChangeFields { change_type: Some(ChangeType::Standard), ..ChangeFields::default() });
        assert_eq!(c.min_lead_time_hours, 6, "a lead time set by hand stays");
        c.apply(ChangeFields {
            change_type: Some(ChangeType::Normal),
            min_lead_time_hours: Some(12),
            ..ChangeFields::default()
        });
        assert_eq!(c.min_lead_time_hours, 12);
    }

    #[test]
    fn custom_field_values_are_bounded() {
        let big = serde_json::json!({"custom_fields": {"blob": "x".repeat(CUSTOM_VALUE_MAX)}});
        assert!(raw(big).parse().unwrap_err().0.contains_key("custom_fields"));
        let ok = serde_json::json!({"custom_fields": {"ticket": "OPS-1", "n": 3, "tags": ["a"]}});
        assert!(raw(ok).parse().is_ok());
    }

    #[test]
    fn assets_are_trimmed_and_deduplicated() {
        let f = raw(serde_json::json!({"affected_assets": [" db-1 ", "db-1", "lb"]})).parse().unwrap();
        assert_eq!(f.affected_assets.unwrap(), vec!["db-1", "lb"]);
    }
}
