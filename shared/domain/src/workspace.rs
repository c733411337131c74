//! Workspaces (the tenancy boundary), their members and named groups.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::ids::{Slug, UserId};
use crate::role::Role;
use crate::FieldErrors;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Workspace {
    pub id: String,
    pub slug: Slug,
    pub name: String,
    pub locale: crate::locale::Locale,
    #[schema(example = "Europe/Berlin")]
    pub timezone: String,
    /// Days audit rows stay in the live table before archival; `None` keeps them forever.
    pub audit_retention_days: Option<u32>,
    pub version: u64,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// Most characters of a member's display name.
pub const NAME_MAX: usize = 200;

/// Checks the editable workspace fields, recording a reason per bad field.
pub fn check_settings(
    errors: &mut FieldErrors,
    name: Option<&str>,
    locale: Option<&str>,
    timezone: Option<&str>,
    retention: Option<u32>,
) {
    if let Some(name) = name {
        if let Err(reason) = crate::text::check_line(name.trim(), 1, 100) {
            errors.add("name", reason);
        }
    }
    if let Some(locale) = locale {
        if crate::locale::Locale::parse(locale).is_none() {
            errors.add("locale", format!("must be one of: {}", crate::locale::Locale::choices()));
        }
    }
    if let Some(tz) = timezone {
        if jiff::tz::db().get(tz).is_err() {
            errors.add("timezone", "must be an IANA time zone name such as Europe/Berlin");
        }
    }
    if let Some(days) = retention {
        if !(1..=36_500).contains(&days) {
            errors.add("audit_retention_days", "must be between 1 and 36500");
        }
    }
}

/// A window during which `delegate` may act on `user`'s approval steps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Delegation {
    pub delegate: UserId,
    pub from: Timestamp,
    pub until: Timestamp,
}

impl Delegation {
    pub fn holds_at(&self, now: Timestamp) -> bool {
        self.from <= now && now < self.until
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Member {
    pub workspace_id: String,
    pub user_id: UserId,
    pub email: String,
    pub name: Option<String>,
    pub role: Role,
    pub delegation: Option<Delegation>,
    /// The member's Slack user id, linked so chat buttons can be trusted as theirs.
    #[serde(default)]
    pub slack_user_id: Option<String>,
    pub version: u64,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// A named set of members (e.g. `cab`, `ecab`) that approval rules can draw from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Group {
    pub workspace_id: String,
    pub name: String,
    pub members: Vec<UserId>,
    pub version: u64,
    pub updated_at: Timestamp,
}

/// A group name: 1-64 characters of `a-z`, `0-9`, `-` and `_`.
pub fn check_group_name(name: &str) -> Result<(), &'static str> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err("must be 1 to 64 characters of a-z, 0-9, '-' and '_'")
    }
}

/// A Slack user id as Slack writes them: `U` or `W` and 2-20 upper-case letters or digits.
pub fn check_slack_user_id(id: &str) -> Result<(), &'static str> {
    let ok = (id.starts_with('U') || id.starts_with('W'))
        && (3..=21).contains(&id.len())
        && id.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
    if ok {
        Ok(())
    } else {
        Err("must be a Slack user id such as U024BE7LH")
    }
}

/// A plausible e-mail address: one `@` with something on both sides, no spaces.
pub fn check_email(email: &str) -> Result<(), &'static str> {
    match email.split_once('@') {
        Some((local, domain))
            if !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !email.chars().any(|c| c.is_whitespace() || crate::text::breaks_a_line(c))
                && !email.contains(['<', '>', '(', ')', ',', ';', ':', '"', '\\', '[', ']'])
                && !domain.contains('@')
                && email.len() <= 254 =>
        {
            Ok(())
        }
        _ => Err("must be an e-mail address"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_are_checked_field_by_field() {
        let mut e = FieldErrors::default();
        check_settings(&mut e, Some(" "), Some("fr"), Some("Mars/Olympus"), Some(0));
        for f in ["name", "locale", "timezone", "audit_retention_days"] {
            assert!(e.0.contains_key(f), "{f} should be refused");
        }
        let mut ok = FieldErrors::default();
        check_settings(&mut ok, Some("Acme"), Some("de"), Some("Europe/Berlin"), Some(365));
        assert!(ok.is_empty());
    }

    #[test]
    fn emails_and_groups() {
        assert!(check_email("a@example.com").is_ok());
        for bad in [
            "a",
            "@x.com",
            "a@b",
            "a b@x.com",
            "a@.com",
            "bob\0@x.com",
            "a@x.com\r\nBcc: m@x.com",
            "a,b@x.com",
            "<a@x.com>",
        ] {
            assert!(check_email(bad).is_err(), "{bad}");
        }
        assert!(check_group_name("ecab").is_ok());
        assert!(check_group_name("ECAB").is_err());
    }
}
