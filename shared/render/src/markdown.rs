//! Authors write descriptions and plans in Markdown; approvers read them rendered, in
//! an email and on the decision page. Anything an author writes is hostile until
//! sanitised: raw HTML, scripts, styles, event handlers and `javascript:` links are
//! removed, images too (a remote image in an email is a tracking pixel), and every
//! link opens without a referrer.

use std::collections::HashSet;
use std::sync::OnceLock;

use pulldown_cmark::{html, Options, Parser};

fn cleaner() -> &'static ammonia::Builder<'static> {
    static CLEANER: OnceLock<ammonia::Builder<'static>> = OnceLock::new();
    CLEANER.get_or_init(|| {
        let mut b = ammonia::Builder::default();
        b.rm_tags(HashSet::from(["img"]));
        b.link_rel(Some("noopener noreferrer nofollow"));
        b.url_schemes(HashSet::from(["http", "https", "mailto"]));
        b
    })
}

/// Markdown (CommonMark with tables, strikethrough and task lists) as safe HTML.
pub fn to_html(markdown: &str) -> String {
    let options = Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH | Options::ENABLE_TASKLISTS;
    let mut raw = String::with_capacity(markdown.len() * 3 / 2);
    html::push_html(&mut raw, Parser::new_ext(markdown, options));
    cleaner().clean(&raw).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_renders_and_hostile_markup_does_not_survive() {
        let out =
            to_html("Steps:\n\n1. **drain** the node\n2. `systemctl restart api`\n\n[docs](https://example.com/x)");
        assert!(out.contains("<ol>") && out.contains("<strong>drain</strong>") && out.contains("<code>"), "{out}");
        assert!(out.contains("rel=\"noopener noreferrer nofollow\""), "{out}");
        let evil = "<script>alert(1)</script><img src=x onerror=alert(1)> [x](javascript:void) \
                    <a href=\"https://e.example\" onclick=\"steal()\">y</a> <style>*{display:none}</style>";
        let out = to_html(evil);
        for bad in ["<script", "onerror", "href=\"javascript:", "onclick", "<img", "<style"] {
            assert!(!out.contains(bad), "{bad} survived: {out}");
        }
    }
}
