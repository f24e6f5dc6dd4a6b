//! Path patterns: a small syntax for the paths a backend serves.
//!
//! A pattern is a `/`-separated list of segments, relative to the mount:
//!
//! | segment | matches | example pattern | matching paths |
//! |---|---|---|---|
//! | `literal` | exactly that text | `config` | `config` |
//! | `{name}` | one non-empty segment (no `/`), captured as field `name` | `roles/{name}` | `roles/web` |
//! | `{name*}` | the rest of the path, possibly empty or with `/`, captured as `name`; last segment only | `{path*}` | `a`, `a/b/c`, `` |
//! | trailing `/` | the path with or without a trailing `/` (list endpoints) | `roles/` | `roles/`, `roles` |
//!
//! The empty pattern `""` matches only the mount root. Capture names are
//! identifiers (`[A-Za-z_][A-Za-z0-9_]*`) and unique within a pattern.
//! Literals cannot contain `{`, `}` or `*`.

use std::fmt;

/// Captured `(name, value)` pairs, in pattern order.
pub(crate) type Captures = Vec<(String, String)>;

/// One segment of a pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Capture(String),
    Rest(String),
}

/// A parsed pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Pattern {
    raw: String,
    segments: Vec<Segment>,
    trailing_slash: bool,
}

/// Why a pattern does not parse (a programming error in the plugin).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid path pattern {pattern:?}: {reason}")]
pub struct PatternError {
    /// The pattern as written.
    pub pattern: String,
    /// What is wrong with it.
    pub reason: String,
}

fn is_ident(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
}

impl Pattern {
    /// Parses `raw`; see the module docs for the syntax.
    pub(crate) fn parse(raw: &str) -> Result<Pattern, PatternError> {
        let err = |reason: String| PatternError {
            pattern: raw.to_string(),
            reason,
        };
        if raw.is_empty() {
            return Ok(Pattern {
                raw: String::new(),
                segments: Vec::new(),
                trailing_slash: false,
            });
        }
        let (body, trailing_slash) = match raw.strip_suffix('/') {
            Some(body) => (body, true),
            None => (raw, false),
        };
        let mut segments = Vec::new();
        let pieces: Vec<&str> = body.split('/').collect();
        for (i, piece) in pieces.iter().enumerate() {
            if piece.is_empty() {
                return Err(err(
                    "empty segment (leading `/`, `//`, or a lone `/`)".into()
                ));
            }
            let segment = if let Some(inner) =
                piece.strip_prefix('{').and_then(|p| p.strip_suffix('}'))
            {
                let (name, rest) = match inner.strip_suffix('*') {
                    Some(name) => (name, true),
                    None => (inner, false),
                };
                if !is_ident(name) {
                    return Err(err(format!(
                        "capture name {name:?} must be an identifier ([A-Za-z_][A-Za-z0-9_]*)"
                    )));
                }
                if rest {
                    if i + 1 != pieces.len() || trailing_slash {
                        return Err(err(format!("{{{name}*}} must be the last segment")));
                    }
                    Segment::Rest(name.to_string())
                } else {
                    Segment::Capture(name.to_string())
                }
            } else {
                if piece.contains(['{', '}', '*']) {
                    return Err(err(format!(
                        "segment {piece:?}: `{{`, `}}` and `*` are only allowed as a whole capture like {{name}} or {{name*}}"
                    )));
                }
                Segment::Literal(piece.to_string())
            };
            segments.push(segment);
        }
        let mut names: Vec<&str> = segments
            .iter()
            .filter_map(|s| match s {
                Segment::Capture(n) | Segment::Rest(n) => Some(n.as_str()),
                Segment::Literal(_) => None,
            })
            .collect();
        names.sort_unstable();
        if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
            return Err(err(format!("capture {:?} appears twice", w[0])));
        }
        Ok(Pattern {
            raw: raw.to_string(),
            segments,
            trailing_slash,
        })
    }

    /// The names this pattern captures, in order.
    pub(crate) fn capture_names(&self) -> impl Iterator<Item = &str> {
        self.segments.iter().filter_map(|s| match s {
            Segment::Capture(n) | Segment::Rest(n) => Some(n.as_str()),
            Segment::Literal(_) => None,
        })
    }

    /// The captures if `path` matches.
    pub(crate) fn matches(&self, path: &str) -> Option<Captures> {
        let mut rest = path;
        if self.trailing_slash {
            rest = rest.strip_suffix('/').unwrap_or(rest);
        }
        let mut captures = Vec::new();
        for (i, segment) in self.segments.iter().enumerate() {
            if i > 0 {
                rest = rest.strip_prefix('/')?;
            }
            match segment {
                Segment::Literal(lit) => {
                    rest = rest.strip_prefix(lit.as_str())?;
                    if !(rest.is_empty() || rest.starts_with('/')) {
                        return None;
                    }
                }
                Segment::Capture(name) => {
                    let end = rest.find('/').unwrap_or(rest.len());
                    if end == 0 {
                        return None;
                    }
                    captures.push((name.clone(), rest[..end].to_string()));
                    rest = &rest[end..];
                }
                Segment::Rest(name) => {
                    captures.push((name.clone(), rest.to_string()));
                    rest = "";
                }
            }
        }
        rest.is_empty().then_some(captures)
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(pattern: &str, path: &str) -> Option<Vec<(String, String)>> {
        Pattern::parse(pattern).unwrap().matches(path)
    }

    fn caps(pairs: &[(&str, &str)]) -> Option<Vec<(String, String)>> {
        Some(
            pairs
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect(),
        )
    }

    #[test]
    fn literals_and_captures() {
        assert_eq!(m("config", "config"), caps(&[]));
        assert_eq!(m("config", "configx"), None);
        assert_eq!(m("config", "config/"), None);
        assert_eq!(m("roles/{name}", "roles/web"), caps(&[("name", "web")]));
        assert_eq!(m("roles/{name}", "roles/"), None);
        assert_eq!(m("roles/{name}", "roles/a/b"), None);
        assert_eq!(m("roles/{name}", "rolesx/a"), None);
        assert_eq!(
            m("creds/{role}/{id}", "creds/r/7"),
            caps(&[("role", "r"), ("id", "7")])
        );
    }

    #[test]
    fn trailing_slash_and_rest() {
        assert_eq!(m("roles/", "roles/"), caps(&[]));
        assert_eq!(m("roles/", "roles"), caps(&[]));
        assert_eq!(m("roles/", "roles/x"), None);
        assert_eq!(m("", ""), caps(&[]));
        assert_eq!(m("", "x"), None);
        assert_eq!(m("{path*}", ""), caps(&[("path", "")]));
        assert_eq!(m("{path*}", "a/b/"), caps(&[("path", "a/b/")]));
        assert_eq!(m("kv/{rest*}", "kv"), None);
        assert_eq!(m("kv/{rest*}", "kv/a/b"), caps(&[("rest", "a/b")]));
    }

    #[test]
    fn rejects_bad_patterns() {
        for bad in [
            "/roles", "roles//x", "/", "{}", "{1x}", "{a*}/b", "{a*}/", "ro{le}s", "a*", "{a}/{a}",
        ] {
            assert!(Pattern::parse(bad).is_err(), "{bad} should not parse");
        }
        let e = Pattern::parse("{a}/{a}").unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid path pattern \"{a}/{a}\": capture \"a\" appears twice"
        );
    }
}
