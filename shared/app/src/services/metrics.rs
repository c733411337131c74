//! DORA metrics of a workspace over a range, read from the index by completion time
//! (`keys::change_ended`): the changes that ended in the range and nothing else, however
//! large the workspace.

use jiff::{SignedDuration, Timestamp};
use vigilo_domain::dora::{self, Dora, Ended};
use vigilo_domain::ids::Slug;
use vigilo_domain::{time, FieldErrors};

use crate::actor::Actor;
use crate::error::AppResult;
use crate::keys;
use crate::paging;
use crate::store::Query;
use crate::Vigilo;

/// The range when none is given: the last thirty days.
pub const DEFAULT_DAYS: i64 = 30;
/// The longest range one request reads: a little over a year.
pub const MAX_DAYS: i64 = 400;

/// Reads `from`/`to` (RFC 3339); `to` defaults to now, `from` to thirty days before it.
pub fn range(from: Option<&str>, to: Option<&str>, now: Timestamp) -> Result<(Timestamp, Timestamp), FieldErrors> {
    let mut e = FieldErrors::default();
    let mut read = |field: &str, raw: Option<&str>| match raw.map(|r| time::parse(r.trim())) {
        None => None,
        Some(Some(t)) => Some(time::to_millis(t)),
        Some(None) => {
            e.add(field, "an RFC 3339 instant, e.g. 2026-12-01T00:00:00Z");
            None
        }
    };
    let (f, t) = (read("from", from), read("to", to));
    let to = t.unwrap_or(time::to_millis(now));
    let from = f.unwrap_or(to - SignedDuration::from_hours(24 * DEFAULT_DAYS));
    if e.is_empty() && from >= to {
        e.add("to", "must be after from");
    }
    if e.is_empty() && to.duration_since(from) > SignedDuration::from_hours(24 * MAX_DAYS) {
        e.add("from", format!("a range of at most {MAX_DAYS} days"));
    }
    if e.is_empty() {
        Ok((from, to))
    } else {
        Err(e)
    }
}

impl Vigilo {
    /// `GET /metrics/dora` (viewer+).
    pub async fn dora_metrics(
        &self,
        actor: &Actor,
        slug: &Slug,
        from: Option<&str>,
        to: Option<&str>,
    ) -> AppResult<Dora> {
        let access = self.access(actor, slug).await?;
        let (from, to) = range(from, to, self.now())?;
        let ended = self.ended_between(access.ws(), from, to).await?;
        Ok(dora::metrics(&ended, from, to))
    }

    /// The changes that ended in `[from, to)`, from the index by completion time.
    pub(crate) async fn ended_between(&self, ws: &str, from: Timestamp, to: Timestamp) -> AppResult<Vec<Ended>> {
        let q = Query::table(keys::ended_partition(ws)).between(time::format(from), time::format(to));
        paging::query_all(&*self.table, q).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_default_to_thirty_days_and_refuse_bad_bounds() {
        let now: Timestamp = "2027-03-31T12:00:00Z".parse().unwrap();
        let (f, t) = range(None, None, now).unwrap();
        assert_eq!((f, t), ("2027-03-01T12:00:00Z".parse().unwrap(), now));
        let (f, _) = range(Some("2027-01-01T00:00:00+01:00"), Some("2027-02-01T00:00:00Z"), now).unwrap();
        assert_eq!(f, "2026-12-31T23:00:00Z".parse::<Timestamp>().unwrap());
        let bad = |f: Option<&str>, t: Option<&str>, field: &str| {
            let e = range(f, t, now).unwrap_err();
            assert!(e.0.contains_key(field), "{f:?} {t:?}: {e:?}");
        };
        bad(Some("yesterday"), None, "from");
        bad(None, Some("2027-13-01"), "to");
        bad(Some("2027-02-01T00:00:00Z"), Some("2027-02-01T00:00:00Z"), "to");
        bad(Some("2020-01-01T00:00:00Z"), None, "from");
    }
}
