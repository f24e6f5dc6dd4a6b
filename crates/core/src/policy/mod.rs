//! ACL policies: parsing Vault's HCL policy language and deciding what a set
//! of policies allows. Pure logic, no I/O; the policy *store* lives in
//! [`crate::core::policies`].
//!
//! ```hcl
//! path "secret/*"          { capabilities = ["read", "list"] }
//! path "secret/+/config"   { capabilities = ["deny"] }
//! path "sys/mounts/*"      { capabilities = ["create", "update", "sudo"] }
//! ```
//!
//! Matching follows Vault's rules: `*` (only at the end) is a prefix glob,
//! `+` matches exactly one path segment, and when several patterns match a
//! path the most specific one wins (see [`priority`]). Rules for the same
//! pattern in different policies are merged; `deny` beats everything.
//! Anything not granted is denied.

use serde::Deserialize;
use std::cmp::Ordering;
use std::collections::BTreeMap;

/// Errors found while parsing a policy.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PolicyError {
    /// The text is not valid HCL or JSON.
    #[error("failed to parse policy: {0}")]
    Syntax(String),
    /// A block or attribute that policies do not have.
    #[error("invalid policy: {0}")]
    Invalid(String),
}

/// One capability bit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u16)]
pub enum Capability {
    /// Explicit denial; overrides every other capability.
    Deny = 1,
    /// Create new data (POST/PUT to a path that does not exist).
    Create = 2,
    /// Read data (GET).
    Read = 4,
    /// Change existing data (POST/PUT).
    Update = 8,
    /// Delete data (DELETE).
    Delete = 16,
    /// List keys (LIST).
    List = 32,
    /// Access root-protected paths.
    Sudo = 64,
    /// Patch data (PATCH).
    Patch = 128,
}

const ALL: [(Capability, &str); 8] = [
    (Capability::Deny, "deny"),
    (Capability::Create, "create"),
    (Capability::Read, "read"),
    (Capability::Update, "update"),
    (Capability::Delete, "delete"),
    (Capability::List, "list"),
    (Capability::Sudo, "sudo"),
    (Capability::Patch, "patch"),
];

/// A set of capabilities.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Capabilities(u16);

impl Capabilities {
    /// No capabilities.
    pub const NONE: Self = Self(0);

    /// Whether `cap` is in the set (and the set is not a denial).
    pub fn allows(self, cap: Capability) -> bool {
        !self.is_deny() && self.0 & cap as u16 != 0
    }

    /// Whether the set grants anything: not empty and not a denial.
    pub fn grants_anything(self) -> bool {
        self != Self::NONE && !self.is_deny()
    }

    /// Whether the set is an explicit denial.
    pub fn is_deny(self) -> bool {
        self.0 & Capability::Deny as u16 != 0
    }

    fn insert(&mut self, cap: Capability) {
        self.0 |= cap as u16;
    }

    fn merge(self, other: Self) -> Self {
        if self.is_deny() || other.is_deny() {
            Self(Capability::Deny as u16)
        } else {
            Self(self.0 | other.0)
        }
    }

    /// Capability names in Vault's order, `["deny"]` for a denial.
    pub fn names(self) -> Vec<&'static str> {
        if self.is_deny() {
            return vec!["deny"];
        }
        ALL.iter()
            .filter(|(c, _)| self.0 & *c as u16 != 0)
            .map(|(_, n)| *n)
            .collect()
    }

    /// Parses capability names.
    pub fn parse<'a>(
        names: impl IntoIterator<Item = &'a str>,
        path: &str,
    ) -> Result<Self, PolicyError> {
        let mut caps = Self::NONE;
        for name in names {
            let cap = ALL
                .iter()
                .find(|(_, n)| *n == name.to_ascii_lowercase())
                .map(|(c, _)| *c)
                .ok_or_else(|| {
                    PolicyError::Invalid(format!(
                        "path {path:?}: unknown capability {name:?}; valid capabilities are {}",
                        ALL.iter().map(|(_, n)| *n).collect::<Vec<_>>().join(", ")
                    ))
                })?;
            caps.insert(cap);
        }
        Ok(caps)
    }
}

/// One `path "..." { ... }` rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathRule {
    /// The pattern, e.g. `secret/+/data/*`.
    pub pattern: String,
    /// What it grants.
    pub capabilities: Capabilities,
}

/// A parsed policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// Lower-case name.
    pub name: String,
    /// Its rules in source order.
    pub rules: Vec<PathRule>,
}

impl Policy {
    /// The policy in Vault's HCL syntax, one `path` block per rule in
    /// order; [`parse`] of the text gives this policy back.
    pub fn to_hcl(&self) -> String {
        let mut out = String::new();
        for rule in &self.rules {
            let caps: Vec<String> = rule
                .capabilities
                .names()
                .iter()
                .map(|n| hcl_string(n))
                .collect();
            out.push_str(&format!(
                "path {} {{\n  capabilities = [{}]\n}}\n",
                hcl_string(&rule.pattern),
                caps.join(", ")
            ));
        }
        out
    }

    /// The policy in Vault's JSON form (`{"path": {PATTERN: {"capabilities":
    /// [...]}}}`). Rules for the same pattern are merged, as the ACL merges
    /// them.
    pub fn to_json(&self) -> String {
        let mut paths: BTreeMap<&str, Capabilities> = BTreeMap::new();
        for rule in &self.rules {
            let caps = paths.entry(&rule.pattern).or_default();
            *caps = caps.merge(rule.capabilities);
        }
        let paths: serde_json::Map<String, serde_json::Value> = paths
            .into_iter()
            .map(|(p, c)| {
                (
                    p.to_string(),
                    serde_json::json!({ "capabilities": c.names() }),
                )
            })
            .collect();
        serde_json::json!({ "path": paths }).to_string()
    }
}

/// A quoted HCL string literal holding exactly `s`: quotes, backslashes and
/// control characters escaped, and `${` / `%{` doubled so they stay text.
fn hcl_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '$' | '%' if chars.peek() == Some(&'{') => {
                out.push(c);
                out.push(c);
            }
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonPolicy {
    #[serde(default)]
    path: BTreeMap<String, JsonRule>,
}

#[derive(Deserialize)]
struct JsonRule {
    #[serde(default)]
    capabilities: Option<Vec<String>>,
    #[serde(default)]
    policy: Option<String>,
    #[serde(flatten)]
    other: BTreeMap<String, serde_json::Value>,
}

/// Parameters Vault policies can carry that lockbox does not enforce yet.
/// They are refused rather than ignored: silently ignoring a restriction
/// would grant more than the author meant.
const UNSUPPORTED: [&str; 6] = [
    "allowed_parameters",
    "denied_parameters",
    "required_parameters",
    "min_wrapping_ttl",
    "max_wrapping_ttl",
    "control_group",
];

fn rule_caps(
    path: &str,
    capabilities: Option<Vec<String>>,
    policy: Option<String>,
    other: impl IntoIterator<Item = String>,
) -> Result<Capabilities, PolicyError> {
    if let Some(key) = other.into_iter().next() {
        if UNSUPPORTED.contains(&key.as_str()) {
            return Err(PolicyError::Invalid(format!(
                "path {path:?}: {key} is not supported by lockbox; remove it or express the rule with capabilities only"
            )));
        }
        return Err(PolicyError::Invalid(format!(
            "path {path:?}: unknown attribute {key:?}; a path rule has `capabilities`"
        )));
    }
    let mut caps = Capabilities::NONE;
    if let Some(list) = capabilities {
        caps = caps.merge(Capabilities::parse(list.iter().map(String::as_str), path)?);
    }
    if let Some(old) = policy {
        // The pre-0.9 shorthand.
        let names: &[&str] = match old.as_str() {
            "deny" => &["deny"],
            "read" => &["read", "list"],
            "write" => &["create", "read", "update", "delete", "list"],
            "sudo" => &["create", "read", "update", "delete", "list", "sudo"],
            other => {
                return Err(PolicyError::Invalid(format!(
                    "path {path:?}: unknown policy shorthand {other:?}; use deny, read, write or sudo"
                )));
            }
        };
        caps = caps.merge(Capabilities::parse(names.iter().copied(), path)?);
    }
    if caps == Capabilities::NONE {
        return Err(PolicyError::Invalid(format!(
            "path {path:?}: no capabilities given; add for example capabilities = [\"read\"]"
        )));
    }
    Ok(caps)
}

fn validate_pattern(pattern: &str) -> Result<(), PolicyError> {
    if let Some(i) = pattern.find('*')
        && i != pattern.len() - 1
    {
        return Err(PolicyError::Invalid(format!(
            "path {pattern:?}: the glob `*` is only allowed at the end of a path"
        )));
    }
    Ok(())
}

/// Parses a policy written in Vault's HCL syntax (or its JSON form).
pub fn parse(name: &str, text: &str) -> Result<Policy, PolicyError> {
    let mut rules = Vec::new();
    if text.trim_start().starts_with('{') {
        let parsed: JsonPolicy =
            serde_json::from_str(text).map_err(|e| PolicyError::Syntax(e.to_string()))?;
        for (pattern, rule) in parsed.path {
            validate_pattern(&pattern)?;
            let caps = rule_caps(
                &pattern,
                rule.capabilities,
                rule.policy,
                rule.other.into_keys(),
            )?;
            rules.push(PathRule {
                pattern,
                capabilities: caps,
            });
        }
    } else {
        let body: hcl::Body = crate::hcl::check_nesting(text)
            .and_then(|()| hcl::from_str(text).map_err(|e| e.to_string()))
            .map_err(PolicyError::Syntax)?;
        if let Some(attr) = body.attributes().next() {
            return Err(PolicyError::Invalid(format!(
                "unexpected top-level attribute {:?}; a policy is a list of `path \"...\" {{ capabilities = [...] }}` blocks",
                attr.key()
            )));
        }
        for block in body.blocks() {
            if block.identifier() != "path" {
                return Err(PolicyError::Invalid(format!(
                    "unexpected block {:?}; a policy contains only `path` blocks",
                    block.identifier()
                )));
            }
            let [label] = block.labels() else {
                return Err(PolicyError::Invalid(
                    "a path block needs exactly one label: path \"secret/*\" { ... }".into(),
                ));
            };
            let pattern = label.as_str().to_string();
            validate_pattern(&pattern)?;
            let mut capabilities = None;
            let mut policy = None;
            let mut other = Vec::new();
            for attr in block.body().attributes() {
                let value = serde_json::to_value(hcl::Value::from(attr.expr().clone()))
                    .map_err(|e| PolicyError::Syntax(e.to_string()))?;
                match attr.key() {
                    "capabilities" => {
                        let list: Vec<String> = serde_json::from_value(value).map_err(|_| {
                            PolicyError::Invalid(format!(
                                "path {pattern:?}: capabilities must be a list of strings"
                            ))
                        })?;
                        capabilities = Some(list);
                    }
                    "policy" => {
                        policy = Some(value.as_str().map(str::to_string).ok_or_else(|| {
                            PolicyError::Invalid(format!(
                                "path {pattern:?}: policy must be a string"
                            ))
                        })?);
                    }
                    key => other.push(key.to_string()),
                }
            }
            if let Some(inner) = block.body().blocks().next() {
                other.push(inner.identifier().to_string());
            }
            let caps = rule_caps(&pattern, capabilities, policy, other)?;
            rules.push(PathRule {
                pattern,
                capabilities: caps,
            });
        }
    }
    Ok(Policy {
        name: name.to_ascii_lowercase(),
        rules,
    })
}

/// Does `pattern` match `path`?
pub fn matches(pattern: &str, path: &str) -> bool {
    let (pat, glob) = match pattern.strip_suffix('*') {
        Some(p) => (p, true),
        None => (pattern, false),
    };
    if !pat.contains('+') {
        return if glob {
            path.starts_with(pat)
        } else {
            path == pat
        };
    }
    let pat_segs: Vec<&str> = pat.split('/').collect();
    let path_segs: Vec<&str> = path.split('/').collect();
    if (glob && path_segs.len() < pat_segs.len()) || (!glob && path_segs.len() != pat_segs.len()) {
        return false;
    }
    let last = pat_segs.len() - 1;
    for (i, p) in pat_segs.iter().enumerate() {
        let s = path_segs[i];
        if *p == "+" {
            continue;
        }
        let ok = if i == last && glob {
            s.starts_with(p)
        } else {
            s == *p
        };
        if !ok {
            return false;
        }
    }
    true
}

/// Whether a wildcard pattern can match some path at or under `prefix`.
fn pattern_reaches_under(pattern: &str, prefix: &str) -> bool {
    let (pat, glob) = match pattern.strip_suffix('*') {
        Some(p) => (p, true),
        None => (pattern, false),
    };
    // Compare character by character, letting `+` consume one segment of
    // the prefix; whichever runs out first decides.
    let (mut pi, mut xi) = (pat.as_bytes(), prefix.as_bytes());
    loop {
        match (pi.first(), xi.first()) {
            // The prefix is exhausted: the pattern continues below it.
            (_, None) => return true,
            // The pattern is exhausted: a glob matches anything further.
            (None, Some(_)) => return glob,
            (Some(b'+'), Some(_)) => {
                let seg = xi.iter().position(|b| *b == b'/').unwrap_or(xi.len());
                pi = &pi[1..];
                xi = &xi[seg..];
            }
            (Some(a), Some(b)) if a == b => {
                pi = &pi[1..];
                xi = &xi[1..];
            }
            _ => return false,
        }
    }
}

/// Vault's priority order between two patterns that both match a path:
/// `Greater` means `a` wins.
///
/// 1. the pattern whose first wildcard (`+` or `*`) comes later wins;
/// 2. a pattern not ending in `*` beats one that does;
/// 3. fewer `+` segments win;
/// 4. the longer pattern wins;
/// 5. the lexicographically larger pattern wins.
pub fn priority(a: &str, b: &str) -> Ordering {
    let first_wild = |p: &str| p.find(['+', '*']).unwrap_or(usize::MAX);
    let plus = |p: &str| p.split('/').filter(|s| *s == "+").count();
    first_wild(a)
        .cmp(&first_wild(b))
        .then_with(|| b.ends_with('*').cmp(&a.ends_with('*')))
        .then_with(|| plus(b).cmp(&plus(a)))
        .then_with(|| a.len().cmp(&b.len()))
        .then_with(|| a.cmp(b))
}

/// The compiled decision procedure for a set of policies.
#[derive(Debug, Clone, Default)]
pub struct Acl {
    root: bool,
    exact: std::collections::HashMap<String, Capabilities>,
    wildcard: Vec<(String, Capabilities)>,
}

impl Acl {
    /// Merges policies. A policy named `root` grants everything.
    pub fn new<'a>(policies: impl IntoIterator<Item = &'a Policy>) -> Self {
        let mut acl = Acl::default();
        let mut merged: BTreeMap<String, Capabilities> = BTreeMap::new();
        for policy in policies {
            if policy.name == "root" {
                acl.root = true;
            }
            for rule in &policy.rules {
                let entry = merged.entry(rule.pattern.clone()).or_default();
                *entry = entry.merge(rule.capabilities);
            }
        }
        for (pattern, caps) in merged {
            if pattern.contains(['*', '+']) {
                acl.wildcard.push((pattern, caps));
            } else {
                acl.exact.insert(pattern, caps);
            }
        }
        acl
    }

    /// An ACL that allows everything.
    pub fn root() -> Self {
        Acl {
            root: true,
            ..Default::default()
        }
    }

    /// Whether this ACL carries the root policy.
    pub fn is_root(&self) -> bool {
        self.root
    }

    /// The capabilities granted on `path` by the most specific matching rule.
    pub fn capabilities(&self, path: &str) -> Capabilities {
        if self.root {
            let mut all = Capabilities::NONE;
            for (c, _) in ALL.iter().skip(1) {
                all.insert(*c);
            }
            return all;
        }
        if let Some(caps) = self.exact.get(path) {
            return *caps;
        }
        self.wildcard
            .iter()
            .filter(|(p, _)| matches(p, path))
            .max_by(|(a, _), (b, _)| priority(a, b))
            .map(|(_, c)| *c)
            .unwrap_or(Capabilities::NONE)
    }

    /// Whether any rule grants something (not a denial) on a path at or
    /// under `prefix`, e.g. a mount path like `secret/`. Vault uses this
    /// for endpoints that describe a mount to whoever may use it
    /// (`sys/internal/ui/mounts/:path`).
    pub fn has_access_under(&self, prefix: &str) -> bool {
        if self.root {
            return true;
        }
        if self
            .exact
            .iter()
            .any(|(p, c)| p.starts_with(prefix) && c.grants_anything())
        {
            return true;
        }
        self.wildcard
            .iter()
            .any(|(p, c)| c.grants_anything() && pattern_reaches_under(p, prefix))
    }

    /// Whether `cap` (and `sudo` when `needs_sudo`) is granted on `path`.
    pub fn allows(&self, path: &str, cap: Capability, needs_sudo: bool) -> bool {
        let caps = self.capabilities(path);
        caps.allows(cap) && (!needs_sudo || caps.allows(Capability::Sudo))
    }
}

/// The built-in `default` policy every token gets unless asked not to:
/// a token may look itself up, renew and revoke itself, and check its own
/// capabilities.
pub const DEFAULT_POLICY: &str = r#"
# Allow tokens to look up their own properties
path "auth/token/lookup-self" {
    capabilities = ["read"]
}

# Allow tokens to renew themselves
path "auth/token/renew-self" {
    capabilities = ["update"]
}

# Allow tokens to revoke themselves
path "auth/token/revoke-self" {
    capabilities = ["update"]
}

# Allow a token to look up its own capabilities on a path
path "sys/capabilities-self" {
    capabilities = ["update"]
}
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_under_a_mount() {
        let a = acl(&[r#"path "secret/app/*" { capabilities = ["read"] }"#]);
        assert!(a.has_access_under("secret/"));
        assert!(!a.has_access_under("other/"));
        let a = acl(&[r#"path "+/app" { capabilities = ["read"] }"#]);
        assert!(a.has_access_under("secret/"));
        let a = acl(&[r#"path "sec*" { capabilities = ["list"] }"#]);
        assert!(a.has_access_under("secret/"));
        assert!(!a.has_access_under("other/"));
        let a = acl(&[r#"path "secret/x" { capabilities = ["deny"] }"#]);
        assert!(!a.has_access_under("secret/"));
        let a = acl(&[r#"path "secret" { capabilities = ["read"] }"#]);
        assert!(!a.has_access_under("secret/"));
        assert!(Acl::root().has_access_under("anything/"));
        assert!(!acl(&[]).has_access_under("secret/"));
    }

    /// The printers used by the policy fuzz target: what they print parses
    /// back to the same rules, including names HCL would otherwise read as
    /// templates or escapes.
    #[test]
    fn printed_policies_parse_back() {
        let text = r#"
path "secret/*" { capabilities = ["read", "list"] }
path "a\"b\\c$${x}%%{y}" { capabilities = ["deny", "read"] }
path "secret/*" { capabilities = ["update"] }
"#;
        let p = parse("p", text).unwrap();
        assert_eq!(p.rules[1].pattern, "a\"b\\c${x}%{y}");
        let again = parse("p", &p.to_hcl()).unwrap();
        assert_eq!(again.rules.len(), 3);
        for (a, b) in p.rules.iter().zip(&again.rules) {
            assert_eq!(a.pattern, b.pattern);
            assert_eq!(a.capabilities.names(), b.capabilities.names());
        }
        let json = parse("p", &p.to_json()).unwrap();
        let (x, y) = (Acl::new([&p]), Acl::new([&json]));
        for path in ["secret/a", "a\"b\\c${x}%{y}", "other"] {
            assert_eq!(x.capabilities(path), y.capabilities(path), "{path}");
        }
    }

    fn acl(texts: &[&str]) -> Acl {
        let policies: Vec<Policy> = texts
            .iter()
            .enumerate()
            .map(|(i, t)| parse(&format!("p{i}"), t).unwrap())
            .collect();
        Acl::new(policies.iter())
    }

    #[test]
    fn parses_hcl_and_json() {
        let p = parse(
            "Dev",
            r#"path "secret/*" { capabilities = ["read", "list"] }
               path "secret/admin" { capabilities = ["deny"] }"#,
        )
        .unwrap();
        assert_eq!(p.name, "dev");
        assert_eq!(p.rules.len(), 2);
        assert_eq!(p.rules[0].capabilities.names(), vec!["read", "list"]);
        let j = parse("j", r#"{"path": {"kv/*": {"capabilities": ["create"]}}}"#).unwrap();
        assert_eq!(j.rules[0].pattern, "kv/*");
        assert!(parse("d", DEFAULT_POLICY).is_ok());
    }

    #[test]
    fn rejects_bad_policies_with_named_problem() {
        let e = parse("x", r#"path "a" { capabilities = ["reed"] }"#).unwrap_err();
        assert!(e.to_string().contains("unknown capability \"reed\""), "{e}");
        let e = parse("x", r#"path "a/*/b" { capabilities = ["read"] }"#).unwrap_err();
        assert!(e.to_string().contains("only allowed at the end"), "{e}");
        let e = parse(
            "x",
            r#"path "a" { capabilities = ["read"] allowed_parameters = {} }"#,
        )
        .unwrap_err();
        assert!(e.to_string().contains("allowed_parameters"), "{e}");
        assert!(matches!(
            parse("x", "path \"a\" {"),
            Err(PolicyError::Syntax(_))
        ));
        let e = parse("x", r#"foo "a" { capabilities = ["read"] }"#).unwrap_err();
        assert!(e.to_string().contains("only `path` blocks"), "{e}");
        assert!(parse("x", r#"path "a" { }"#).is_err());
    }

    #[test]
    fn glob_and_segment_matching() {
        assert!(matches("secret/*", "secret/a/b"));
        assert!(matches("secret/*", "secret/"));
        assert!(!matches("secret/*", "secret"));
        assert!(matches("secret/fo*", "secret/foo/bar"));
        assert!(matches("secret/+/x", "secret/a/x"));
        assert!(!matches("secret/+/x", "secret/a/b/x"));
        assert!(!matches("secret/+/x", "secret/a/y"));
        assert!(matches("secret/+/*", "secret/a/b/c"));
        assert!(!matches("secret/+/*", "secret/a"));
        assert!(matches("+/b", "a/b"));
        assert!(matches("exact", "exact"));
    }

    #[test]
    fn most_specific_rule_wins() {
        let a = acl(&[
            r#"path "secret/*" { capabilities = ["read"] }"#,
            r#"path "secret/admin/*" { capabilities = ["deny"] }"#,
            r#"path "secret/+/public" { capabilities = ["list"] }"#,
            r#"path "secret/team" { capabilities = ["update"] }"#,
        ]);
        assert!(a.allows("secret/foo", Capability::Read, false));
        assert!(!a.allows("secret/admin/x", Capability::Read, false));
        // `secret/+/public`: first wildcard at 7, same as `secret/*`, but not a glob → wins.
        assert!(a.allows("secret/x/public", Capability::List, false));
        assert!(!a.allows("secret/x/public", Capability::Read, false));
        // Exact beats glob.
        assert!(a.allows("secret/team", Capability::Update, false));
        assert!(!a.allows("secret/team", Capability::Read, false));
        // Deny by default.
        assert!(!a.allows("other/path", Capability::Read, false));
    }

    #[test]
    fn same_pattern_merges_and_deny_wins() {
        let a = acl(&[
            r#"path "kv/*" { capabilities = ["read"] }"#,
            r#"path "kv/*" { capabilities = ["list"] }"#,
        ]);
        assert!(a.allows("kv/x", Capability::Read, false));
        assert!(a.allows("kv/x", Capability::List, false));
        let d = acl(&[
            r#"path "kv/*" { capabilities = ["read", "sudo"] }"#,
            r#"path "kv/*" { capabilities = ["deny"] }"#,
        ]);
        assert!(!d.allows("kv/x", Capability::Read, false));
    }

    #[test]
    fn sudo_is_separate() {
        let a = acl(&[r#"path "sys/auth/*" { capabilities = ["create", "update"] }"#]);
        assert!(a.allows("sys/auth/x", Capability::Update, false));
        assert!(!a.allows("sys/auth/x", Capability::Update, true));
        assert!(Acl::root().allows("anything", Capability::Delete, true));
    }

    #[test]
    fn priority_rules() {
        use Ordering::*;
        assert_eq!(priority("a/b/*", "a/*"), Greater);
        assert_eq!(priority("a/b", "a/*"), Greater);
        assert_eq!(priority("a/+/c", "a/+/*"), Greater);
        assert_eq!(priority("a/+/c", "a/+/+"), Greater);
        assert_eq!(priority("a/+/cd", "a/+/c"), Greater);
    }
}
