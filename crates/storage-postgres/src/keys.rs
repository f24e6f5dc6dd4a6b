//! Vault's key layout in the table: key `a/b/c` is stored as
//! `parent_path = "/a/"`, `path = "/a/b/"`, `key = "c"`; a top-level key
//! `c` as `parent_path = ""`, `path = "/"`. Listing `prefix` reads the rows
//! whose `path` is `"/" + prefix` (the children) and the first folder of
//! the rows whose `parent_path` starts with it (the sub-folders).

/// A key split into its three columns.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Row<'a> {
    pub parent_path: String,
    pub path: String,
    pub key: &'a str,
}

/// Splits `full` (a storage key, `/`-separated) as Vault does.
pub(crate) fn split(full: &str) -> Row<'_> {
    match full.rsplit_once('/') {
        None => Row {
            parent_path: String::new(),
            path: "/".to_string(),
            key: full,
        },
        Some((dir, key)) => {
            let parent_path = match dir.rsplit_once('/') {
                None => "/".to_string(),
                Some((parent, _)) => format!("/{parent}/"),
            };
            Row {
                parent_path,
                path: format!("/{dir}/"),
                key,
            }
        }
    }
}

/// The `path` column of the direct children of `prefix` ("" or ending
/// in `/`).
pub(crate) fn list_path(prefix: &str) -> String {
    format!("/{prefix}")
}

/// A LIKE pattern matching every text that starts with `prefix` (its `%`,
/// `_` and `\` escaped; the statements say `ESCAPE '\'`).
pub(crate) fn like_prefix(prefix: &str) -> String {
    let mut out = String::with_capacity(prefix.len() + 1);
    for c in prefix.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_split_like_vault() {
        let r = split("a/b/c");
        assert_eq!(
            (r.parent_path.as_str(), r.path.as_str(), r.key),
            ("/a/", "/a/b/", "c")
        );
        let r = split("a/b");
        assert_eq!(
            (r.parent_path.as_str(), r.path.as_str(), r.key),
            ("/", "/a/", "b")
        );
        let r = split("c");
        assert_eq!(
            (r.parent_path.as_str(), r.path.as_str(), r.key),
            ("", "/", "c")
        );
        let r = split("a/b/c/d");
        assert_eq!(
            (r.parent_path.as_str(), r.path.as_str(), r.key),
            ("/a/b/", "/a/b/c/", "d")
        );
        assert_eq!(list_path(""), "/");
        assert_eq!(list_path("a/b/"), "/a/b/");
    }

    #[test]
    fn like_patterns_escape_wildcards() {
        assert_eq!(like_prefix("/a_b%c\\/"), "/a\\_b\\%c\\\\/%");
        assert_eq!(like_prefix(""), "%");
    }
}
