//! A brake on refused uses of decision links, replies and chat buttons, per source
//! (the caller's IP address, the sender's email address, the Slack user).
//!
//! Every refused use of a real grant writes an audit row, and every forged one a log
//! line: a source that keeps failing could flood both, or walk through guesses. After
//! [`REFUSALS_MAX`] refusals within [`WINDOW_SECS`], a source's attempts are answered
//! `rate_limited` without being checked, until its oldest refusal leaves the window.
//! A source that succeeds is never slowed by others' failures.
//!
//! The count lives in the process: `vigilo serve` is one process; on AWS each Lambda
//! container keeps its own, so a source spread across containers gets a few budgets,
//! still bounded (API Gateway's throttling bounds the rest).

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use jiff::Timestamp;

/// Refusals a source may collect within the window.
pub const REFUSALS_MAX: usize = 20;
/// The window refusals are counted over, in seconds.
pub const WINDOW_SECS: i64 = 600;
/// Sources remembered at once; beyond it the stalest are forgotten first.
const SOURCES_MAX: usize = 10_000;

#[derive(Debug, Default)]
pub struct RefusalBrake {
    seen: Mutex<HashMap<String, VecDeque<Timestamp>>>,
}

impl RefusalBrake {
    /// Whether `source` has used up its refusals as of `now`.
    pub fn exhausted(&self, source: &str, now: Timestamp) -> bool {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        let Some(times) = seen.get_mut(source) else { return false };
        forget_before(times, now);
        if times.is_empty() {
            seen.remove(source);
            return false;
        }
        times.len() >= REFUSALS_MAX
    }

    /// Counts one refusal for `source` at `now`.
    pub fn record(&self, source: &str, now: Timestamp) {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        if seen.len() >= SOURCES_MAX && !seen.contains_key(source) {
            seen.retain(|_, times| {
                forget_before(times, now);
                !times.is_empty()
            });
            if seen.len() >= SOURCES_MAX {
                let stalest = seen.iter().min_by_key(|(_, t)| t.back().copied()).map(|(k, _)| k.clone());
                if let Some(k) = stalest {
                    seen.remove(&k);
                }
            }
        }
        let times = seen.entry(source.to_owned()).or_default();
        forget_before(times, now);
        times.push_back(now);
        while times.len() > REFUSALS_MAX {
            times.pop_front();
        }
    }
}

fn forget_before(times: &mut VecDeque<Timestamp>, now: Timestamp) {
    let horizon = now.as_second() - WINDOW_SECS;
    while times.front().is_some_and(|t| t.as_second() <= horizon) {
        times.pop_front();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + secs).unwrap()
    }

    #[test]
    fn a_source_is_braked_after_its_refusals_until_they_age_out() {
        let brake = RefusalBrake::default();
        for i in 0..REFUSALS_MAX as i64 {
            assert!(!brake.exhausted("ip:10.0.0.1", at(i)));
            brake.record("ip:10.0.0.1", at(i));
        }
        assert!(brake.exhausted("ip:10.0.0.1", at(30)));
        assert!(!brake.exhausted("ip:10.0.0.2", at(30)), "other sources are not slowed");
        assert!(brake.exhausted("ip:10.0.0.1", at(WINDOW_SECS - 1)));
        assert!(!brake.exhausted("ip:10.0.0.1", at(WINDOW_SECS + 1)), "the oldest refusals left the window");
    }

    #[test]
    fn memory_stays_bounded() {
        let brake = RefusalBrake::default();
        for i in 0..(SOURCES_MAX + 50) {
            brake.record(&format!("ip:{i}"), at(0));
        }
        assert!(brake.seen.lock().unwrap().len() <= SOURCES_MAX);
    }
}
