//! Escaping for the places text goes that the template engine does not know.

/// `s` with each character `replace` names swapped for its replacement.
fn escape_with(s: &str, replace: impl Fn(char) -> Option<&'static str>) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match replace(c) {
            Some(r) => out.push_str(r),
            None => out.push(c),
        }
    }
    out
}

/// Escapes text for HTML element content and attribute values.
pub fn html(s: &str) -> String {
    escape_with(s, |c| match c {
        '&' => Some("&amp;"),
        '<' => Some("&lt;"),
        '>' => Some("&gt;"),
        '"' => Some("&quot;"),
        '\'' => Some("&#39;"),
        _ => None,
    })
}

/// Escapes text for Slack's markup (`mrkdwn` and message `text`): `&`, `<` and `>`
/// are its control characters, so a title like `<!channel>` or
/// `<https://evil.example|Approve here>` shows as typed instead of pinging a channel or
/// hiding a link.
pub fn slack(s: &str) -> String {
    escape_with(s, |c| match c {
        '&' => Some("&amp;"),
        '<' => Some("&lt;"),
        '>' => Some("&gt;"),
        _ => None,
    })
}
