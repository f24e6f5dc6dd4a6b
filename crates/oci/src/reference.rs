//! Image references: `REGISTRY/REPO[:TAG][@sha256:HEX]`.
//!
//! A reference is *pinned* when it carries a manifest digest; only sha256
//! digests are accepted. A reference with only a tag (or neither, which
//! means `:latest`) can be moved by whoever controls the registry, so
//! callers refuse it unless the binary's own sha256 is pinned.
//!
//! Registries are reached over HTTPS; plain HTTP only for `HOST:PORT`
//! names listed as insecure (`--insecure-registry`).

use crate::OciError;
use oci_client::Reference;

/// A parsed image reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    inner: Reference,
    given: String,
}

impl ImageRef {
    /// Parses and checks a reference.
    pub fn parse(s: &str) -> Result<Self, OciError> {
        let given = s.trim().to_string();
        let invalid = |message: String| OciError::InvalidReference {
            reference: given.clone(),
            message,
        };
        if given.is_empty() {
            return Err(invalid(
                "it is empty; use REGISTRY/REPO@sha256:<manifest digest>".into(),
            ));
        }
        if given.contains("://") {
            return Err(invalid(
                "leave out the scheme: write REGISTRY/REPO@sha256:..., registries are reached over HTTPS unless listed with --insecure-registry".into(),
            ));
        }
        let inner = Reference::try_from(given.as_str()).map_err(|e| {
            invalid(format!(
                "{e}; expected REGISTRY/REPO[:TAG][@sha256:<64 hex>]"
            ))
        })?;
        if let Some(d) = inner.digest() {
            let hex = d.strip_prefix("sha256:").ok_or_else(|| {
                invalid(format!(
                    "digest {d:?} is not a sha256 digest; lockbox pins images by sha256"
                ))
            })?;
            if !crate::is_sha256_hex(hex) {
                return Err(invalid(format!(
                    "digest {d:?} must be sha256: followed by 64 lower-case hex characters"
                )));
            }
        }
        Ok(Self { inner, given })
    }

    /// The reference as given.
    pub fn as_given(&self) -> &str {
        &self.given
    }

    /// `sha256:<hex>` of the manifest, when pinned.
    pub fn digest(&self) -> Option<&str> {
        self.inner.digest()
    }

    /// The tag, if any (a reference with neither tag nor digest means `latest`).
    pub fn tag(&self) -> Option<&str> {
        self.inner.tag()
    }

    /// Whether the reference names its manifest by digest.
    pub fn is_pinned(&self) -> bool {
        self.inner.digest().is_some()
    }

    /// `host[:port]` of the registry as contacted.
    pub fn registry(&self) -> &str {
        self.inner.resolve_registry()
    }

    /// The repository path.
    pub fn repository(&self) -> &str {
        self.inner.repository()
    }

    /// The same repository pinned at `digest` (tag dropped).
    pub fn at_digest(&self, digest: &str) -> ImageRef {
        let inner = Reference::with_digest(
            self.inner.registry().to_string(),
            self.inner.repository().to_string(),
            digest.to_string(),
        );
        ImageRef {
            given: inner.whole(),
            inner,
        }
    }

    /// The oci-client reference.
    pub(crate) fn inner(&self) -> &Reference {
        &self.inner
    }
}

impl std::fmt::Display for ImageRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.given)
    }
}

/// Checks one `--insecure-registry` value: `HOST:PORT` (or `HOST`), no
/// scheme, no path.
pub fn parse_insecure_registry(s: &str) -> Result<String, String> {
    let s = s.trim();
    if s.is_empty() {
        return Err("insecure registry is empty: give HOST:PORT, e.g. 127.0.0.1:5000".into());
    }
    if s.contains("://") || s.contains('/') || s.chars().any(char::is_whitespace) {
        return Err(format!(
            "insecure registry {s:?} must be HOST:PORT without scheme or path, e.g. 127.0.0.1:5000"
        ));
    }
    if let Some((_, port)) = s.rsplit_once(':')
        && !s.starts_with('[')
        && port.parse::<u16>().is_err()
    {
        return Err(format!(
            "insecure registry {s:?}: {port:?} is not a port number"
        ));
    }
    Ok(s.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn pinned_and_tag_only() {
        let r = ImageRef::parse(&format!("127.0.0.1:5000/plugins/mock@{D}")).unwrap();
        assert!(r.is_pinned());
        assert_eq!(r.registry(), "127.0.0.1:5000");
        assert_eq!(r.repository(), "plugins/mock");
        assert_eq!(r.digest(), Some(D));
        let t = ImageRef::parse("127.0.0.1:5000/plugins/mock:v1").unwrap();
        assert!(!t.is_pinned());
        assert_eq!(t.tag(), Some("v1"));
        let latest = ImageRef::parse("registry.example/mock").unwrap();
        assert!(!latest.is_pinned());
        let both = ImageRef::parse(&format!("127.0.0.1:5000/mock:v1@{D}")).unwrap();
        assert!(both.is_pinned());
        assert_eq!(
            t.at_digest(D).as_given(),
            format!("127.0.0.1:5000/plugins/mock@{D}")
        );
    }

    #[test]
    fn bad_references_name_the_problem() {
        for (bad, needle) in [
            ("", "empty"),
            ("https://r.example/x@sha256:00", "scheme"),
            ("r.example/x@sha256:abc", "invalid"),
            (
                "r.example/x@md5:0123456789abcdef0123456789abcdef",
                "invalid",
            ),
            ("R.example/UPPER", "invalid"),
        ] {
            let e = ImageRef::parse(bad).unwrap_err();
            assert_eq!(e.reason(), "InvalidReference", "{bad}");
            assert!(e.to_string().to_lowercase().contains(needle), "{bad}: {e}");
        }
        let upper = format!("r.example/x@sha256:{}", "A".repeat(64));
        assert!(ImageRef::parse(&upper).is_err());
    }

    #[test]
    fn insecure_registry_values() {
        assert_eq!(
            parse_insecure_registry("127.0.0.1:5000").unwrap(),
            "127.0.0.1:5000"
        );
        assert!(parse_insecure_registry("localhost").is_ok());
        for bad in ["", "http://127.0.0.1:5000", "h:port", "h:5000/x"] {
            assert!(parse_insecure_registry(bad).is_err(), "{bad}");
        }
    }
}
