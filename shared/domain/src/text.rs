//! The rules every piece of free text a user sends must pass before it is stored.
//!
//! Texts travel far from where they were typed: into email headers, Slack markup,
//! HTML pages, log lines and audit rows. A line break in a name becomes a forged email
//! header, a NUL is refused by mail libraries, and a bidirectional override makes an
//! approver read `txt.exe` as `exe.txt`. So the edge refuses them, and every renderer
//! may rely on what is stored:
//! - single-line texts (titles, names, subjects) hold no control character at all,
//!   no line or paragraph separator and no bidirectional override;
//! - multi-line texts (descriptions, plans, comments, reasons) may hold line breaks and
//!   tabs, and nothing else of that kind.

/// Bidirectional embeddings, overrides and isolates (U+202A-U+202E, U+2066-U+2069).
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// A character no single-line text may hold.
pub fn breaks_a_line(c: char) -> bool {
    c.is_control() || matches!(c, '\u{2028}' | '\u{2029}') || is_bidi_control(c)
}

/// A character no multi-line text may hold: controls other than line breaks and tabs.
fn is_forbidden_in_lines(c: char) -> bool {
    !matches!(c, '\n' | '\r' | '\t') && (c.is_control() || is_bidi_control(c))
}

/// Checks a single-line text (already trimmed by the caller where it trims) of
/// `min..=max` characters.
pub fn check_line(value: &str, min: usize, max: usize) -> Result<(), String> {
    check_count(value, min, max)?;
    if value.chars().any(breaks_a_line) {
        return Err("must be one line without control characters".into());
    }
    Ok(())
}

/// Checks a multi-line text of `min..=max` characters.
pub fn check_lines(value: &str, min: usize, max: usize) -> Result<(), String> {
    check_count(value, min, max)?;
    if value.chars().any(is_forbidden_in_lines) {
        return Err("must not contain control characters other than line breaks and tabs".into());
    }
    Ok(())
}

/// Counts characters without walking more of a huge text than the limit needs.
fn check_count(value: &str, min: usize, max: usize) -> Result<(), String> {
    // A character is at most four bytes: a text this long is over the limit for sure.
    let n = if value.len() > max.saturating_mul(4) { max + 1 } else { value.chars().count() };
    if n < min || n > max {
        return Err(if min == 0 {
            format!("must be at most {max} characters")
        } else {
            format!("must be {min} to {max} characters")
        });
    }
    Ok(())
}

/// A stored text made safe for one line of output (a header, a log line), for data
/// written before these rules held: each forbidden character becomes a space.
pub fn one_line(value: &str) -> String {
    value.chars().map(|c| if breaks_a_line(c) { ' ' } else { c }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_lines_refuse_every_breaking_character() {
        assert!(check_line("Rotate the certificate", 1, 200).is_ok());
        assert!(check_line("Zertifikat für api.acme.com erneuern ✓", 1, 200).is_ok());
        for bad in [
            "Bob\nX",
            "Bob\rBcc: x",
            "a\0b",
            "tab\there",
            "del\u{7f}",
            "c1\u{85}",
            "ls\u{2028}",
            "rtl\u{202E}gpj.exe",
            "iso\u{2066}",
        ] {
            assert!(check_line(bad, 1, 200).is_err(), "{bad:?} should be refused");
        }
        assert!(check_line("", 1, 200).is_err());
        assert!(check_line(&"x".repeat(201), 1, 200).is_err());
        assert!(check_line(&"é".repeat(200), 1, 200).is_ok(), "characters, not bytes, are counted");
    }

    #[test]
    fn multi_lines_keep_breaks_and_tabs_only() {
        assert!(check_lines("step 1\r\n\tstep 2\n", 0, 100).is_ok());
        for bad in ["a\0b", "bell\u{7}", "esc\u{1b}[31m", "rtl\u{202D}"] {
            assert!(check_lines(bad, 0, 100).is_err(), "{bad:?} should be refused");
        }
        assert!(check_lines("", 0, 100).is_ok());
        assert!(check_lines(&"😀".repeat(101), 0, 100).is_err());
    }

    #[test]
    fn huge_texts_are_refused_without_counting_them() {
        let huge = "x".repeat(1_000_000);
        assert!(check_line(&huge, 1, 200).is_err());
    }

    #[test]
    fn old_texts_are_flattened_to_one_line() {
        assert_eq!(one_line("Bob\r\nBcc: x\0"), "Bob  Bcc: x ");
    }
}
