//! Hashing an audit row straight from its stored JSON text, so a chain verifies at
//! the speed of one scan and one SHA-256 per row.
//!
//! A row's hash covers the RFC 8785 form of nine of its fields. Rows are stored
//! compact with sorted keys, so the stored text of each of those fields is, almost
//! always, already its canonical form; the hashed document is then those very bytes
//! between fixed key names, with nothing decoded, allocated or written again.
//!
//! The scan proves that claim byte by byte (no whitespace, keys in strictly rising
//! UTF-16 order, only the escapes RFC 8785 writes, integers short enough to be exact
//! doubles) and gives up on anything else: a fraction, an exponent, an escaped key, a
//! hand edit that added spaces. A row it gives up on goes through the decoding path
//! ([`crate::audit::AuditRow`] and the canonicaliser), which reaches the same answer
//! more slowly. So the fast path never decides what the decoding path would decide
//! differently; the tests hold the two to the same hash over every kind of value.

use sha2::{Digest, Sha256};

use crate::audit::Link;

/// What verification needs of a row, borrowed from its stored text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoredRow<'a> {
    pub link: Link<'a>,
    /// SHA-256 of the row's canonical hashed document.
    pub computed: [u8; 32],
}

/// Deeper values are left to the decoding path (whose parser stops at 128).
const MAX_DEPTH: usize = 64;

/// The row's hash and links, when its text is canonical where the hash reads it;
/// `None` sends the row to the decoding path.
pub fn hash_stored(text: &str) -> Option<StoredRow<'_>> {
    let fields = Fields::scan(text.as_bytes())?;
    let piece = |(start, end): Span| &text.as_bytes()[start..end];
    // The hashed document's keys in RFC 8785 order, each before its field's own text.
    let pieces: [(&[u8], Option<Span>); 9] = [
        (b"{\"action\":", fields.action),
        (b",\"actor_id\":", fields.actor),
        (b",\"created_at\":", fields.created_at),
        (b",\"metadata\":", fields.metadata),
        (b",\"new_value\":", fields.new_value),
        (b",\"old_value\":", fields.old_value),
        (b",\"prev_hash\":", fields.prev_hash),
        (b",\"target_id\":", fields.target_id),
        (b",\"target_type\":", fields.target_type),
    ];
    let mut h = Sha256::new();
    for (key, span) in pieces {
        h.update(key);
        h.update(piece(span?));
    }
    h.update(b"}");
    let inner = |span: Span| plain_string(text, span);
    let link = Link {
        id: inner(fields.id?)?,
        seq: fields.seq?,
        workspace_id: inner(fields.workspace_id?)?,
        prev_hash: inner(fields.prev_hash?)?,
        hash: inner(fields.hash?)?,
    };
    Some(StoredRow { link, computed: h.finalize().into() })
}

const DIGITS: &[u8; 16] = b"0123456789abcdef";

/// Lowercase hex of a hash, without going through the formatter.
pub fn hex(hash: &[u8; 32]) -> String {
    let mut out = String::with_capacity(64);
    for b in hash {
        out.push(DIGITS[(b >> 4) as usize] as char);
        out.push(DIGITS[(b & 15) as usize] as char);
    }
    out
}

/// Whether `text` is the lowercase hex of `hash`.
pub fn is_hex_of(text: &str, hash: &[u8; 32]) -> bool {
    let t = text.as_bytes();
    t.len() == 64
        && hash
            .iter()
            .enumerate()
            .all(|(i, b)| t[2 * i] == DIGITS[(b >> 4) as usize] && t[2 * i + 1] == DIGITS[(b & 15) as usize])
}

/// A value's bytes in the text, `start..end`.
type Span = (usize, usize);

/// The contents of a string token with no escapes (ids and hashes have none).
fn plain_string(text: &str, (start, end): Span) -> Option<&str> {
    let inner = text.get(start + 1..end - 1)?;
    (text.as_bytes()[start] == b'"' && !inner.contains('\\')).then_some(inner)
}

/// Where the top-level fields lie; `None` for a field not present.
#[derive(Default)]
struct Fields {
    action: Option<Span>,
    actor: Option<Span>,
    created_at: Option<Span>,
    hash: Option<Span>,
    id: Option<Span>,
    metadata: Option<Span>,
    new_value: Option<Span>,
    old_value: Option<Span>,
    prev_hash: Option<Span>,
    seq: Option<u64>,
    target_id: Option<Span>,
    target_type: Option<Span>,
    workspace_id: Option<Span>,
}

impl Fields {
    /// One pass over the row object: every byte checked canonical, the fields the
    /// hash and the links read located, and their JSON types those the row's decoding
    /// would accept.
    fn scan(b: &[u8]) -> Option<Fields> {
        let mut s = Scan { b, i: 0 };
        let mut f = Fields::default();
        let mut ignored = None;
        s.object(|s, key| {
            let start = s.i;
            let first = s.peek()?;
            s.value(1)?;
            let span = (start, s.i);
            let is_string = first == b'"';
            let slot = match &b[key.0 + 1..key.1 - 1] {
                b"action" if is_string => &mut f.action,
                b"actor" if is_string || first == b'n' => &mut f.actor,
                b"created_at" if is_string => &mut f.created_at,
                b"hash" if is_string => &mut f.hash,
                b"id" if is_string => &mut f.id,
                b"metadata" => &mut f.metadata,
                b"new_value" => &mut f.new_value,
                b"old_value" => &mut f.old_value,
                b"prev_hash" if is_string => &mut f.prev_hash,
                b"target_id" if is_string => &mut f.target_id,
                b"target_type" if is_string => &mut f.target_type,
                b"workspace_id" if is_string => &mut f.workspace_id,
                b"seq" => {
                    f.seq = Some(std::str::from_utf8(&b[span.0..span.1]).ok()?.parse().ok()?);
                    &mut ignored
                }
                // A known field of the wrong type: the decoding path says what it is.
                b"action" | b"actor" | b"created_at" | b"hash" | b"id" | b"prev_hash" | b"target_id"
                | b"target_type" | b"workspace_id" => return None,
                _ => &mut ignored,
            };
            *slot = Some(span);
            Some(())
        })?;
        (s.i == b.len()).then_some(f)
    }
}

/// Whether key `b` comes strictly after key `a` in UTF-16 code-unit order (RFC 8785
/// section 3.2.3). UTF-8's byte order is code-point order, which UTF-16's agrees with
/// except between characters from U+E000 to U+FFFF (lead byte 0xEE or 0xEF) and those
/// beyond U+FFFF (lead byte 0xF0 and up, surrogates in UTF-16): only a first
/// difference between two such lead bytes sorts the other way.
fn rises(a: &[u8], b: &[u8]) -> bool {
    match a.iter().zip(b).position(|(x, y)| x != y) {
        None => a.len() < b.len(),
        Some(i) => {
            let (x, y) = (a[i], b[i]);
            let high_bmp = |c: u8| c == 0xEE || c == 0xEF;
            if high_bmp(x) && y >= 0xF0 {
                false
            } else if x >= 0xF0 && high_bmp(y) {
                true
            } else {
                x < y
            }
        }
    }
}

/// A cursor over JSON text that accepts only its canonical form.
struct Scan<'a> {
    b: &'a [u8],
    i: usize,
}

impl Scan<'_> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let c = self.peek()?;
        self.i += 1;
        Some(c)
    }

    fn eat(&mut self, c: u8) -> Option<()> {
        (self.next()? == c).then_some(())
    }

    fn literal(&mut self, word: &[u8]) -> Option<()> {
        let end = self.i + word.len();
        (self.b.get(self.i..end)? == word).then(|| self.i = end)
    }

    fn value(&mut self, depth: usize) -> Option<()> {
        if depth > MAX_DEPTH {
            return None;
        }
        match self.peek()? {
            b'{' => self.object(|s, _| s.value(depth + 1)),
            b'[' => self.array(depth),
            b'"' => self.string(true).map(drop),
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            b'-' | b'0'..=b'9' => self.integer(),
            _ => None,
        }
    }

    /// An object whose keys rise in UTF-16 order; `field(self, key)` reads each value.
    fn object(&mut self, mut field: impl FnMut(&mut Self, Span) -> Option<()>) -> Option<()> {
        self.eat(b'{')?;
        if self.peek()? == b'}' {
            self.i += 1;
            return Some(());
        }
        let mut previous: Option<Span> = None;
        loop {
            let key = self.string(false)?;
            if let Some(p) = previous {
                if !rises(&self.b[p.0 + 1..p.1 - 1], &self.b[key.0 + 1..key.1 - 1]) {
                    return None;
                }
            }
            previous = Some(key);
            self.eat(b':')?;
            field(self, key)?;
            match self.next()? {
                b',' => {}
                b'}' => return Some(()),
                _ => return None,
            }
        }
    }

    fn array(&mut self, depth: usize) -> Option<()> {
        self.eat(b'[')?;
        if self.peek()? == b']' {
            self.i += 1;
            return Some(());
        }
        loop {
            self.value(depth + 1)?;
            match self.next()? {
                b',' => {}
                b']' => return Some(()),
                _ => return None,
            }
        }
    }

    /// A string token as RFC 8785 writes it: raw characters except `"`, `\` and the
    /// controls, which are escaped, and the controls by their short form where JSON
    /// has one. Keys (`escapes` false) take no escapes at all here.
    fn string(&mut self, escapes: bool) -> Option<Span> {
        let start = self.i;
        self.eat(b'"')?;
        loop {
            self.skip_plain();
            match self.next()? {
                b'"' => return Some((start, self.i)),
                b'\\' if escapes => match self.next()? {
                    b'"' | b'\\' | b'b' | b'f' | b'n' | b'r' | b't' => {}
                    b'u' => {
                        let code = self.b.get(self.i..self.i + 4)?;
                        let lower_hex = |c: u8| c.is_ascii_digit() || (b'a'..=b'f').contains(&c);
                        if code[0] != b'0' || code[1] != b'0' || !matches!(code[2], b'0' | b'1') || !lower_hex(code[3])
                        {
                            return None;
                        }
                        // \u0008 \u0009 \u000a \u000c \u000d have short forms.
                        if code[2] == b'0' && matches!(code[3], b'8' | b'9' | b'a' | b'c' | b'd') {
                            return None;
                        }
                        self.i += 4;
                    }
                    _ => return None,
                },
                0..=0x1f | b'\\' => return None,
                _ => {}
            }
        }
    }

    /// Skips a string's plain bytes (none a `"`, a `\` or a control), eight at a time:
    /// most of a row is text, and this is what keeps its scan near memory speed.
    fn skip_plain(&mut self) {
        const ONES: u64 = u64::from_le_bytes([1; 8]);
        const HIGH: u64 = ONES * 0x80;
        // Non-zero exactly when some byte of `x` is below `n` (n at most 0x80).
        let below = |x: u64, n: u64| x.wrapping_sub(n * ONES) & !x & HIGH;
        while let Some(chunk) = self.b.get(self.i..self.i + 8) {
            let x = u64::from_le_bytes(chunk.try_into().unwrap_or([0; 8]));
            if below(x, 0x20) | below(x ^ (ONES * u64::from(b'"')), 1) | below(x ^ (ONES * u64::from(b'\\')), 1) != 0 {
                return;
            }
            self.i += 8;
        }
    }

    /// An integer of at most 15 digits (every such one is an exact double, written
    /// back the same), not `-0`.
    fn integer(&mut self) -> Option<()> {
        let start = self.i;
        if self.peek()? == b'-' {
            self.i += 1;
        }
        let digits = self.i;
        match self.next()? {
            b'0' => {}
            b'1'..=b'9' => {
                while self.peek().is_some_and(|c| c.is_ascii_digit()) {
                    self.i += 1;
                }
            }
            _ => return None,
        }
        let negative_zero = digits > start && &self.b[digits..self.i] == b"0";
        if self.i - digits > 15 || negative_zero || matches!(self.peek(), Some(b'.' | b'e' | b'E')) {
            return None;
        }
        Some(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::{genesis_hash, AuditRow};
    use serde_json::{json, Value};

    fn row(old: Value, new: Value, metadata: Value) -> AuditRow {
        let mut r = AuditRow {
            id: "0b7f2a4e-1c1e-4c1e-9a55-000000000001".into(),
            seq: 7,
            workspace_id: "w1".into(),
            action: "change.update".into(),
            target_type: "change".into(),
            target_id: "c1".into(),
            actor: Some("alice".into()),
            old_value: old,
            new_value: new,
            metadata,
            created_at: "2030-01-15T09:00:00.000Z".into(),
            prev_hash: genesis_hash("w1"),
            hash: String::new(),
        };
        r.hash = r.hash_input().hash();
        r
    }

    /// The row as stored: serde_json's compact text of its value (sorted keys).
    fn stored(r: &AuditRow) -> String {
        serde_json::to_string(&serde_json::to_value(r).unwrap()).unwrap()
    }

    /// The fast path either agrees with the decoding path or stands aside.
    fn agrees(text: &str) -> bool {
        let Some(fast) = hash_stored(text) else { return false };
        let slow: AuditRow = serde_json::from_str(text).expect("a row");
        assert_eq!(hex(&fast.computed), slow.hash_input().hash(), "{text}");
        assert_eq!(fast.link, slow.link());
        true
    }

    #[test]
    fn a_stored_row_hashes_as_its_decoded_row_does() {
        let r =
            row(json!({"title": "Old"}), json!({"title": "New", "version": 3, "n": -12}), json!({"ip": "203.0.113.7"}));
        let text = stored(&r);
        assert!(agrees(&text));
        assert!(is_hex_of(&r.hash, &hash_stored(&text).unwrap().computed));
    }

    #[test]
    fn every_character_a_string_may_hold_hashes_the_same() {
        // Each control character, every other ASCII character, and characters of
        // every UTF-8 length, including U+2028 and characters either side of U+E000.
        let mut all: String = (0u32..0x80).filter_map(char::from_u32).collect();
        all.push_str("é€\u{2028}\u{E000}\u{FFFF}😀\u{10FFFF}");
        let r = row(json!(all), json!({"k": all, "list": [all, ""]}), json!({}));
        assert!(agrees(&stored(&r)));
        for c in all.chars() {
            let r = row(json!(c.to_string()), Value::Null, json!({}));
            assert!(agrees(&stored(&r)), "{c:?}");
        }
    }

    #[test]
    fn a_special_byte_anywhere_in_a_long_string_is_seen() {
        for at in 0..24 {
            for special in ['"', '\\', '\n', '\u{1}', 'é'] {
                let mut text: String = "abcdefghijklmnopqrstuvwxyz".into();
                text.insert(at, special);
                assert!(agrees(&stored(&row(json!(text), Value::Null, json!({})))), "{at} {special:?}");
            }
            // A raw control character is not JSON: neither path reads the row.
            let good = stored(&row(json!("abcdefghijklmnopqrstuvwxyz"), Value::Null, json!({})));
            let at_byte = good.find("abcdefghij").unwrap() + at;
            let mut bad = good.into_bytes();
            bad[at_byte] = 0x01;
            let bad = String::from_utf8(bad).unwrap();
            assert!(hash_stored(&bad).is_none(), "{at}");
            assert!(serde_json::from_str::<AuditRow>(&bad).is_err());
        }
    }

    #[test]
    fn keys_in_byte_order_but_not_utf16_order_go_to_the_decoding_path() {
        // U+FFFF sorts after U+10000 by bytes but before it by UTF-16 code units.
        let r = row(json!({"\u{FFFF}": 1, "😀": 2}), Value::Null, json!({}));
        let text = stored(&r);
        assert!(hash_stored(&text).is_none());
        // The decoding path still verifies it.
        let slow: AuditRow = serde_json::from_str(&text).unwrap();
        assert_eq!(slow.hash_input().hash(), r.hash);
        // Keys that byte order and UTF-16 order agree on stay on the fast path.
        assert!(agrees(&stored(&row(json!({"a": 1, "é": 2, "€": 3, "\u{E000}": 4}), Value::Null, json!({})))));
    }

    #[test]
    fn numbers_that_are_not_short_integers_go_to_the_decoding_path() {
        for n in [json!(1.5), json!(1e21), json!(-0.0), json!(9007199254740993u64), json!(1234567890123456u64)] {
            let text = stored(&row(json!({ "n": n }), Value::Null, json!({})));
            assert!(hash_stored(&text).is_none(), "{text}");
        }
        for n in [json!(0), json!(-1), json!(123456789012345u64), json!(-123456789012345i64)] {
            assert!(agrees(&stored(&row(json!({ "n": n }), Value::Null, json!({})))));
        }
    }

    #[test]
    fn text_that_is_not_canonical_goes_to_the_decoding_path() {
        let text = stored(&row(json!({"a": [1, 2], "b": "x"}), json!(true), json!({})));
        let edits = [
            text.replacen(":[1,2]", ": [1,2]", 1),
            text.replacen("[1,2]", "[1, 2]", 1),
            text.replacen("\"x\"", "\"\\u0078\"", 1),
            text.replacen("\"x\"", "\"\\/\"", 1),
            text.replacen("{\"a\"", "{\"b\":1,\"a\"", 1),
            text.replacen("{\"a\"", "{\"a\":0,\"a\"", 1),
            format!("{text} "),
            format!(" {text}"),
        ];
        for e in edits {
            assert_ne!(e, text);
            assert!(hash_stored(&e).is_none(), "{e}");
        }
        assert!(agrees(&text));
    }

    #[test]
    fn a_field_of_the_wrong_type_or_missing_goes_to_the_decoding_path() {
        let text = stored(&row(Value::Null, Value::Null, json!({})));
        for e in [
            text.replacen("\"action\":\"change.update\"", "\"action\":7", 1),
            text.replacen("\"actor\":\"alice\"", "\"actor\":[]", 1),
            text.replacen("\"seq\":7", "\"seq\":-7", 1),
            text.replacen("\"seq\":7", "\"seq\":\"7\"", 1),
            text.replacen("\"actor\":\"alice\",", "", 1),
            text.replacen("\"metadata\":{},", "", 1),
        ] {
            assert_ne!(e, text);
            assert!(hash_stored(&e).is_none(), "{e}");
        }
        // A system row (no actor) and unknown fields are fine.
        let mut system = row(Value::Null, Value::Null, json!({"actor_kind": "system"}));
        system.actor = None;
        system.hash = system.hash_input().hash();
        let with_subject = stored(&system).replacen("\"target_id\"", "\"subject\":\"c1\",\"target_id\"", 1);
        assert!(agrees(&with_subject));
    }

    #[test]
    fn deep_values_go_to_the_decoding_path() {
        let mut deep = json!(1);
        for _ in 0..MAX_DEPTH + 1 {
            deep = json!([deep]);
        }
        assert!(hash_stored(&stored(&row(deep, Value::Null, json!({})))).is_none());
        let mut shallow = json!(1);
        for _ in 0..MAX_DEPTH - 2 {
            shallow = json!({ "a": shallow });
        }
        assert!(agrees(&stored(&row(shallow, Value::Null, json!({})))));
    }

    #[test]
    fn keys_rise_in_utf16_order() {
        let keys = ["", "a", "ab", "b", "é", "€", "\u{E000}", "\u{FFFF}", "😀", "\u{10FFFF}"];
        for a in keys {
            for b in keys {
                let utf16 = a.encode_utf16().lt(b.encode_utf16());
                assert_eq!(rises(a.as_bytes(), b.as_bytes()), utf16, "{a:?} {b:?}");
            }
        }
    }

    #[test]
    fn hex_is_lowercase_and_compares_exactly() {
        let h: [u8; 32] = Sha256::digest(b"abc").into();
        assert_eq!(hex(&h), format!("{:x}", Sha256::digest(b"abc")));
        assert!(is_hex_of(&hex(&h), &h));
        assert!(!is_hex_of(&hex(&h).to_uppercase(), &h));
        assert!(!is_hex_of(&hex(&h)[..63], &h));
    }
}
