//! An RFC 5545 writer for the workspace calendar: changes and freeze windows as events
//! that calendar apps keep in step across fetches.
//!
//! What makes a feed behave in a calendar app: a `UID` that never changes for one
//! change or window (its id), a `SEQUENCE` that rises with every edit (its version),
//! instants in UTC, and a recurring window written on its own wall clock (`TZID`) with
//! a `VTIMEZONE` that carries that zone's transitions, so the app expands the `RRULE`
//! across DST exactly as the gates do. Text is escaped (`\`, `;`, `,`, line breaks),
//! lines end in CRLF and are folded at 75 octets without splitting a character.

use jiff::tz::{Dst, TimeZone};
use jiff::{Timestamp, Zoned};

/// A moment an event starts or ends.
#[derive(Debug, Clone)]
pub enum When {
    /// An instant, written in UTC (`DTSTART:20261224T170000Z`).
    Utc(Timestamp),
    /// A wall-clock time in a zone the calendar defines (`DTSTART;TZID=...:`).
    Local(Timestamp, String),
}

#[derive(Debug, Clone)]
pub struct Event {
    pub uid: String,
    pub sequence: u64,
    pub stamp: Timestamp,
    pub start: When,
    pub end: When,
    pub summary: String,
    pub description: String,
    pub categories: Vec<String>,
    /// `RRULE:...` as stored.
    pub rrule: Option<String>,
    /// `TENTATIVE`, `CONFIRMED` or `CANCELLED`.
    pub status: &'static str,
    pub url: Option<String>,
}

/// RFC 5545 TEXT escaping; a lone carriage return is dropped with the newline it pairs.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '\\' => out.push_str("\\\\"),
            ';' => out.push_str("\\;"),
            ',' => out.push_str("\\,"),
            '\n' => out.push_str("\\n"),
            '\r' => {}
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// One content line, folded: at most 75 octets a line, continuations start with a space.
fn push_line(out: &mut String, line: &str) {
    let mut width = 0;
    for ch in line.chars() {
        let n = ch.len_utf8();
        if width + n > 75 {
            out.push_str("\r\n ");
            width = 1;
        }
        out.push(ch);
        width += n;
    }
    out.push_str("\r\n");
}

fn utc(t: Timestamp) -> String {
    t.strftime("%Y%m%dT%H%M%SZ").to_string()
}

fn local(t: Timestamp, tz: &str) -> String {
    t.to_zoned(crate::time::zone(tz)).strftime("%Y%m%dT%H%M%S").to_string()
}

fn when(name: &str, w: &When) -> String {
    match w {
        When::Utc(t) => format!("{name}:{}", utc(*t)),
        When::Local(t, tz) => format!("{name};TZID={tz}:{}", local(*t, tz)),
    }
}

fn offset(o: jiff::tz::Offset) -> String {
    let secs = o.seconds();
    let sign = if secs < 0 { '-' } else { '+' };
    let a = secs.unsigned_abs();
    let (h, m, s) = (a / 3600, a / 60 % 60, a % 60);
    if s == 0 {
        format!("{sign}{h:02}{m:02}")
    } else {
        format!("{sign}{h:02}{m:02}{s:02}")
    }
}

/// A `VTIMEZONE` for `name` with every transition in `[from, to)` as an observance of
/// its own (and the one in force at `from`), so no rule of ours has to match the zone's.
pub fn vtimezone(out: &mut String, name: &str, from: Timestamp, to: Timestamp) {
    let tz = crate::time::zone(name);
    push_line(out, "BEGIN:VTIMEZONE");
    push_line(out, &format!("TZID:{name}"));
    let observance = |out: &mut String, at: Timestamp, before: jiff::tz::Offset, tz: &TimeZone| {
        let info = tz.to_offset_info(at);
        let kind = if info.dst() == Dst::Yes { "DAYLIGHT" } else { "STANDARD" };
        let wall = Zoned::new(at, TimeZone::fixed(before)).strftime("%Y%m%dT%H%M%S").to_string();
        push_line(out, &format!("BEGIN:{kind}"));
        push_line(out, &format!("DTSTART:{wall}"));
        push_line(out, &format!("TZOFFSETFROM:{}", offset(before)));
        push_line(out, &format!("TZOFFSETTO:{}", offset(info.offset())));
        push_line(out, &format!("TZNAME:{}", escape(info.abbreviation())));
        push_line(out, &format!("END:{kind}"));
    };
    // The offset in force at `from`, as an observance starting there.
    let first = tz.to_offset(from);
    observance(out, from, first, &tz);
    let mut before = first;
    for t in tz.following(from).take(400) {
        if t.timestamp() >= to {
            break;
        }
        observance(out, t.timestamp(), before, &tz);
        before = t.offset();
    }
    push_line(out, "END:VTIMEZONE");
}

/// The whole calendar: `zones` (name, from, to) become `VTIMEZONE`s, then the events.
pub fn calendar(name: &str, zones: &[(String, Timestamp, Timestamp)], events: &[Event]) -> String {
    let mut out = String::new();
    for l in ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//Vigilo//Change calendar//EN", "CALSCALE:GREGORIAN"] {
        push_line(&mut out, l);
    }
    push_line(&mut out, "METHOD:PUBLISH");
    push_line(&mut out, &format!("X-WR-CALNAME:{}", escape(name)));
    for (tz, from, to) in zones {
        vtimezone(&mut out, tz, *from, *to);
    }
    for e in events {
        push_line(&mut out, "BEGIN:VEVENT");
        push_line(&mut out, &format!("UID:{}", escape(&e.uid)));
        push_line(&mut out, &format!("DTSTAMP:{}", utc(e.stamp)));
        push_line(&mut out, &format!("LAST-MODIFIED:{}", utc(e.stamp)));
        push_line(&mut out, &format!("SEQUENCE:{}", e.sequence));
        push_line(&mut out, &when("DTSTART", &e.start));
        push_line(&mut out, &when("DTEND", &e.end));
        if let Some(rule) = &e.rrule {
            push_line(&mut out, rule);
        }
        push_line(&mut out, &format!("SUMMARY:{}", escape(&e.summary)));
        if !e.description.is_empty() {
            push_line(&mut out, &format!("DESCRIPTION:{}", escape(&e.description)));
        }
        if !e.categories.is_empty() {
            let cats: Vec<String> = e.categories.iter().map(|c| escape(c)).collect();
            push_line(&mut out, &format!("CATEGORIES:{}", cats.join(",")));
        }
        push_line(&mut out, &format!("STATUS:{}", e.status));
        push_line(&mut out, "TRANSP:OPAQUE");
        if let Some(url) = &e.url {
            push_line(&mut out, &format!("URL:{}", url.replace(['\r', '\n'], "")));
        }
        push_line(&mut out, "END:VEVENT");
    }
    push_line(&mut out, "END:VCALENDAR");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn text_is_escaped_and_long_lines_fold_on_character_boundaries() {
        assert_eq!(escape("a;b,c\\d\r\ne\u{7}"), "a\\;b\\,c\\\\d\\ne");
        let mut out = String::new();
        let long = format!("SUMMARY:{}", "ä".repeat(60));
        push_line(&mut out, &long);
        for line in out.trim_end_matches("\r\n").split("\r\n") {
            assert!(line.len() <= 75, "{} octets", line.len());
        }
        assert_eq!(out.replace("\r\n ", "").trim_end(), long, "unfolding gives the line back");
    }

    #[test]
    fn a_zone_carries_its_transitions_with_the_offsets_either_side() {
        let mut out = String::new();
        vtimezone(&mut out, "Europe/Berlin", ts("2027-01-01T00:00:00Z"), ts("2028-01-01T00:00:00Z"));
        let text = out.replace("\r\n", "\n");
        // Summer time from 02:00 CET on 28 March, winter time from 03:00 CEST on 31 October.
        assert!(
            text.contains("BEGIN:DAYLIGHT\nDTSTART:20270328T020000\nTZOFFSETFROM:+0100\nTZOFFSETTO:+0200\nTZNAME:CEST"),
            "{text}"
        );
        assert!(
            text.contains("BEGIN:STANDARD\nDTSTART:20271031T030000\nTZOFFSETFROM:+0200\nTZOFFSETTO:+0100"),
            "{text}"
        );
        assert_eq!(text.matches("BEGIN:DAYLIGHT").count() + text.matches("BEGIN:STANDARD").count(), 3);
    }
}
