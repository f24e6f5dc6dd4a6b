//! Keeping the connection URL's password out of logs and errors:
//! [`redact_url`] masks it in a URL (both forms), [`Scrubber`] cuts it out
//! of any text (a server or driver message) before it is shown, and
//! [`message`] gives a driver error's text scrubbed so.

/// What a password is replaced with.
const MASK: &str = "***";

/// `url` with its password masked: the user info of a `postgres[ql]://`
/// URL (`user:***@host`), a `password=` query parameter, or libpq's
/// `password = value` pair (quoted or bare). Anything else is kept.
pub fn redact_url(url: &str) -> String {
    if let Some((scheme, rest)) = url.split_once("://") {
        let (authority_end, _) = rest
            .char_indices()
            .find(|&(_, c)| c == '/' || c == '?')
            .unwrap_or((rest.len(), ' '));
        let (authority, tail) = rest.split_at(authority_end);
        let authority = match authority.rsplit_once('@') {
            Some((userinfo, hosts)) => match userinfo.split_once(':') {
                Some((user, _)) => format!("{user}:{MASK}@{hosts}"),
                None => format!("{userinfo}@{hosts}"),
            },
            None => authority.to_string(),
        };
        let tail = match tail.split_once('?') {
            Some((path, query)) => {
                let query: Vec<String> = query
                    .split('&')
                    .map(|pair| match pair.split_once('=') {
                        Some((k, _)) if k.eq_ignore_ascii_case("password") => {
                            format!("{k}={MASK}")
                        }
                        _ => pair.to_string(),
                    })
                    .collect();
                format!("{path}?{}", query.join("&"))
            }
            None => tail.to_string(),
        };
        return format!("{scheme}://{authority}{tail}");
    }
    redact_keywords(url)
}

/// libpq's `key=value` form with the value of `password` masked.
fn redact_keywords(s: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < chars.len() {
        // A key starts at the beginning or after whitespace.
        let at_key = i == 0 || chars[i - 1].is_whitespace();
        let is_password = at_key
            && s_at(&chars, i, "password")
            && chars[i + 8..]
                .iter()
                .find(|c| !c.is_whitespace())
                .is_some_and(|&c| c == '=');
        if !is_password {
            out.push(chars[i]);
            i += 1;
            continue;
        }
        out.push_str("password=");
        i += 8;
        while i < chars.len() && chars[i] != '=' {
            i += 1;
        }
        i += 1;
        while i < chars.len() && chars[i].is_whitespace() {
            i += 1;
        }
        let quoted = chars.get(i) == Some(&'\'');
        if quoted {
            i += 1;
        }
        while i < chars.len() {
            let c = chars[i];
            if c == '\\' {
                i += 2;
                continue;
            }
            if (quoted && c == '\'') || (!quoted && c.is_whitespace()) {
                if quoted {
                    i += 1;
                }
                break;
            }
            i += 1;
        }
        out.push_str(MASK);
    }
    out
}

fn s_at(chars: &[char], i: usize, word: &str) -> bool {
    let w: Vec<char> = word.chars().collect();
    chars.len() >= i + w.len() && chars[i..i + w.len()] == w[..]
}

/// Cuts a known password out of messages (as given and percent-encoded).
#[derive(Clone, Default)]
pub(crate) struct Scrubber {
    forms: Vec<String>,
}

impl Scrubber {
    /// A scrubber for `password` (none: messages pass unchanged).
    pub(crate) fn new(password: Option<&[u8]>) -> Self {
        let Some(p) = password.filter(|p| !p.is_empty()) else {
            return Scrubber::default();
        };
        let plain = String::from_utf8_lossy(p).into_owned();
        let encoded: String = p
            .iter()
            .map(|&b| {
                if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect();
        let mut forms = vec![plain, encoded.clone(), encoded.to_lowercase()];
        forms.sort_by_key(|f| std::cmp::Reverse(f.len()));
        forms.dedup();
        Scrubber { forms }
    }

    /// `text` with every form of the password replaced by the mask.
    pub(crate) fn scrub(&self, text: &str) -> String {
        let mut out = text.to_string();
        for f in &self.forms {
            out = out.replace(f.as_str(), MASK);
        }
        out
    }
}

/// PostgreSQL's message for `e` (the server's text when it sent one, else
/// the error and its causes), with the password cut out.
pub(crate) fn message(e: &tokio_postgres::Error, scrub: &Scrubber) -> String {
    let text = lockbox_pg_tls::error_message(e);
    scrub.scrub(&text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_lose_their_password() {
        let cases = [
            (
                "postgres://vault:s3cr%40t@db.example:5432/vault?sslmode=require",
                "postgres://vault:***@db.example:5432/vault?sslmode=require",
            ),
            (
                "postgresql://u:p@a:1,b:2/db",
                "postgresql://u:***@a:1,b:2/db",
            ),
            ("postgresql://u@h/db", "postgresql://u@h/db"),
            ("postgresql://h", "postgresql://h"),
            (
                "postgresql://h/db?user=u&password=pw&sslmode=disable",
                "postgresql://h/db?user=u&password=***&sslmode=disable",
            ),
            ("postgresql://u:p@ss@h/db", "postgresql://u:***@h/db"),
            (
                "host=h user=u password=secret dbname=d",
                "host=h user=u password=*** dbname=d",
            ),
            (
                "host=h password = 'se cr\\'et' dbname=d",
                "host=h password=*** dbname=d",
            ),
            ("host=h mypassword=x", "host=h mypassword=x"),
        ];
        for (url, want) in cases {
            assert_eq!(redact_url(url), want, "{url}");
        }
    }

    #[test]
    fn scrubber_cuts_every_form_of_the_password() {
        let s = Scrubber::new(Some(b"p@ss word"));
        assert_eq!(s.scrub("a p@ss word b p%40ss%20word c"), "a *** b *** c");
        assert_eq!(Scrubber::new(None).scrub("text"), "text");
    }
}
