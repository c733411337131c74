//! The workspace calendar: RFC 5545 read back by an independent parser (the
//! `icalendar` crate), UIDs stable across fetches with SEQUENCE rising, recurring
//! freezes as RRULE on their zone's wall clock with a VTIMEZONE, hostile text escaped;
//! and feed tokens: replaced, revoked, ended with membership, never audited in clear.

use icalendar::parser::{read_calendar, unfold, Component};
use serde_json::Value;
use vigilo_e2e::{in_hours, json, normal_change, TestServer};

async fn team() -> TestServer {
    let s = TestServer::start().await;
    s.workspace("olga", "acme", &[("alice", "admin"), ("bob", "approver"), ("mia", "member"), ("vic", "viewer")]).await;
    s.patch("olga", "/ws/acme", json!({"timezone": "Europe/Berlin"})).await.expect(200);
    s
}

fn text(body: &Value) -> String {
    body.as_str().unwrap_or_else(|| panic!("not a calendar: {body}")).to_owned()
}

/// Checks the octets RFC 5545 asks for, then parses with the independent parser and
/// hands over the events and time zones, as (name, component) pairs.
fn parse(ics: &str, check: impl FnOnce(&[Component<'_>])) {
    assert!(ics.ends_with("\r\n") && !ics.replace("\r\n", "").contains('\n'), "CRLF line ends");
    for line in ics.split("\r\n") {
        assert!(line.len() <= 75, "a line of {} octets: {line}", line.len());
    }
    let unfolded = unfold(ics);
    let cal = read_calendar(&unfolded).expect("the independent parser reads it");
    let version = cal.properties.iter().find(|p| p.name.as_str() == "VERSION").map(|p| p.val.as_str());
    assert_eq!(version, Some("2.0"), "a VCALENDAR of version 2.0");
    assert!(cal.components.iter().all(|c| ["VEVENT", "VTIMEZONE"].contains(&c.name.as_str())));
    check(&cal.components);
}

fn prop<'a>(c: &'a Component<'_>, name: &str) -> &'a str {
    c.find_prop(name).map(|p| p.val.as_str()).unwrap_or_else(|| panic!("{name} missing"))
}

fn event<'a, 'b>(all: &'a [Component<'b>], uid: &str) -> Option<&'a Component<'b>> {
    all.iter().find(|c| c.name.as_str() == "VEVENT" && c.find_prop("UID").map(|p| p.val.as_str()) == Some(uid))
}

async fn scheduled(s: &TestServer, title: &str) -> Value {
    let mut b = normal_change(title);
    b["affected_assets"] = json!(["db"]);
    let n = s.change("mia", "acme", b).await;
    s.act("mia", "acme", &n, "submit", json!({})).await.expect(200);
    s.act("bob", "acme", &n, "approve", json!({})).await.expect(200);
    s.act("mia", "acme", &n, "schedule", json!({})).await.expect(200)
}

#[tokio::test]
async fn the_calendar_holds_live_changes_and_freezes_and_parses_as_rfc_5545() {
    let s = team().await;
    let hostile = "Deploy; db, cache \\ <b>ä</b> ".to_owned() + &"long title ".repeat(12);
    let c = scheduled(&s, hostile.trim()).await;
    let uid = format!("change-{}@vigilo", c["id"].as_str().unwrap());
    s.change("mia", "acme", normal_change("a draft is not on the calendar")).await;
    let once = json!({"name": "Quarter close", "start": in_hours(200), "end": in_hours(210), "scope": {"all": true}});
    let once = s.post("alice", "/ws/acme/freeze-windows", once).await.expect(201);
    let weekly = json!({"name": "Weekend, no deploys", "start": "2027-03-19T18:00", "end": "2027-03-22T06:00",
        "scope": {"assets": ["db"]}, "recurrence": "RRULE:FREQ=WEEKLY;BYDAY=FR"});
    let weekly = s.post("alice", "/ws/acme/freeze-windows", weekly).await.expect(201);

    let r = s.get("vic", "/ws/acme/calendar.ics").await;
    assert_eq!(r.status, 200);
    assert!(r.headers["content-type"].to_str().unwrap().starts_with("text/calendar"));
    let first = text(&r.body);
    parse(&first, |all| {
        assert_eq!(all.iter().filter(|c| c.name.as_str() == "VEVENT").count(), 3, "one change, two windows");
        let ev = event(all, &uid).expect("the change");
        assert_eq!(prop(ev, "SEQUENCE"), c["version"].to_string());
        let summary = ev.find_prop("SUMMARY").unwrap().val.clone().unescape_text();
        assert_eq!(summary.as_str(), format!("CHG-00001 {}", hostile.trim()));
        assert!(prop(ev, "DTSTART").ends_with('Z'), "a change's instants are UTC");
        let one = event(all, &format!("freeze-{}@vigilo", once["id"].as_str().unwrap())).expect("the window");
        assert!(one.find_prop("RRULE").is_none());
        let rec = event(all, &format!("freeze-{}@vigilo", weekly["id"].as_str().unwrap())).expect("the series");
        assert_eq!(prop(rec, "RRULE"), "FREQ=WEEKLY;BYDAY=FR");
        let start = rec.find_prop("DTSTART").unwrap();
        assert_eq!(start.val.as_str(), "20270319T180000", "on the wall clock");
        let tzid = start.params.iter().find(|p| p.key.as_str() == "TZID").and_then(|p| p.val.as_ref());
        assert_eq!(tzid.map(|v| v.as_str()), Some("Europe/Berlin"));
        assert_eq!(prop(rec, "DTEND"), "20270322T060000");
        let zone = all.iter().find(|c| c.name.as_str() == "VTIMEZONE").expect("a VTIMEZONE");
        assert_eq!(prop(zone, "TZID"), "Europe/Berlin");
        // The change to summer time on 28 March 2027 is among its observances.
        let summer = zone.components.iter().find(|o| prop(o, "DTSTART") == "20270328T020000").expect("DST");
        assert_eq!((summer.name.as_str(), prop(summer, "TZOFFSETTO")), ("DAYLIGHT", "+0200"));
    });

    // Fetched again, unchanged; after a move, the same UID with a higher SEQUENCE.
    assert_eq!(text(&s.get("vic", "/ws/acme/calendar.ics").await.body), first);
    let n = c["number"].as_str().unwrap();
    let started = s.act("mia", "acme", n, "start", json!({})).await.expect(200);
    let after = text(&s.get("vic", "/ws/acme/calendar.ics").await.body);
    parse(&after, |all| {
        let ev = event(all, &uid).expect("still there in progress");
        assert_eq!(prop(ev, "SEQUENCE"), started["version"].to_string());
        assert!(started["version"].as_u64() > c["version"].as_u64());
    });
    s.act("mia", "acme", n, "complete", json!({"closure_code": "successful", "closure_notes": "ok"})).await.expect(200);
    let done = text(&s.get("vic", "/ws/acme/calendar.ics").await.body);
    parse(&done, |all| assert!(event(all, &uid).is_none(), "an ended change leaves the calendar"));

    s.get("outsider", "/ws/acme/calendar.ics").await.refused(404, "not_found");
    s.send(None, reqwest::Method::GET, "/ws/acme/calendar.ics", None, &[]).await.refused(401, "unauthenticated");
}

fn path_of(url: &Value) -> String {
    let url = url.as_str().unwrap();
    url[url.find("/ws/").expect("a calendar path")..].to_owned()
}

async fn fetch(s: &TestServer, path: &str) -> u16 {
    s.send(None, reqwest::Method::GET, path, None, &[]).await.status
}

#[tokio::test]
async fn feed_tokens_read_as_their_member_until_replaced_revoked_or_the_member_leaves() {
    let s = team().await;
    s.workspace("olga", "beta", &[("vic", "viewer")]).await;
    let made = s.post("vic", "/ws/acme/calendar/feed", json!({})).await.expect(201);
    let first = path_of(&made["url"]);
    assert!(first.starts_with("/ws/acme/calendar.ics?token="), "{first}");
    let r = s.send(None, reqwest::Method::GET, &first, None, &[]).await;
    assert_eq!(r.status, 200);
    parse(&text(&r.body), |_| {});

    // Unknown tokens, and a token of acme used for beta, are refused.
    let r = s.send(None, reqwest::Method::GET, "/ws/acme/calendar.ics?token=guess", None, &[]).await;
    r.refused(401, "unauthenticated");
    assert_eq!(fetch(&s, &first.replace("/ws/acme/", "/ws/beta/")).await, 401);
    assert_eq!(fetch(&s, &format!("{first}x")).await, 401);

    // Asked for again, the old address stops working.
    let second = path_of(&s.post("vic", "/ws/acme/calendar/feed", json!({})).await.expect(201)["url"]);
    assert_ne!(first, second);
    assert_eq!((fetch(&s, &first).await, fetch(&s, &second).await), (401, 200));

    // Withdrawn, it stops; withdrawn again, there is nothing to withdraw.
    assert_eq!(s.delete("vic", "/ws/acme/calendar/feed").await.status, 204);
    assert_eq!(fetch(&s, &second).await, 401);
    s.delete("vic", "/ws/acme/calendar/feed").await.refused(404, "not_found");

    // A member who leaves takes their feed with them.
    let third = path_of(&s.post("vic", "/ws/acme/calendar/feed", json!({})).await.expect(201)["url"]);
    assert_eq!(fetch(&s, &third).await, 200);
    assert_eq!(s.delete("olga", "/ws/acme/members/vic").await.status, 204);
    assert_eq!(fetch(&s, &third).await, 401);
    s.post("outsider", "/ws/acme/calendar/feed", json!({})).await.refused(404, "not_found");

    // Audited, but never with the token.
    let rows = s.get("olga", "/ws/acme/audit?action=calendar_feed.create").await.expect(200);
    assert_eq!(rows["items"].as_array().unwrap().len(), 3);
    let all = s.get("olga", "/ws/acme/audit?limit=200").await.expect(200).to_string();
    for path in [&first, &second, &third] {
        let token = path.split("token=").nth(1).unwrap();
        assert!(!all.contains(token), "a token in the audit log");
    }
    assert_eq!(
        s.get("olga", "/ws/acme/audit?action=calendar_feed.delete").await.expect(200)["items"][0]["target_id"],
        "vic"
    );
}
