//! The SQL of every [`Physical`](lockbox_storage::Physical) operation on
//! Vault's table layout, as texts each pooled connection prepares.

/// The statement texts for `table` (a checked identifier).
pub(crate) struct Texts {
    pub get: String,
    pub put: String,
    pub delete: String,
    pub list: String,
    pub delete_prefix: String,
}

pub(crate) fn statements(table: &str) -> Texts {
    Texts {
        get: format!("SELECT value FROM {table} WHERE path = $1 AND key = $2"),
        put: format!(
            "INSERT INTO {table} (parent_path, path, key, value) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (path, key) DO UPDATE SET value = EXCLUDED.value, \
             parent_path = EXCLUDED.parent_path"
        ),
        delete: format!("DELETE FROM {table} WHERE path = $1 AND key = $2"),
        // $1: the children's path; $2: LIKE pattern of parent paths under it.
        list: format!(
            "SELECT key FROM {table} WHERE path = $1 \
             UNION SELECT DISTINCT substring(substr(path, char_length($1) + 1) from '^[^/]*/') \
             FROM {table} WHERE parent_path LIKE $2 ESCAPE '\\'"
        ),
        // $1: LIKE pattern of the full keys.
        delete_prefix: format!(
            "DELETE FROM {table} WHERE (substr(path, 2) || key) LIKE $1 ESCAPE '\\'"
        ),
    }
}
