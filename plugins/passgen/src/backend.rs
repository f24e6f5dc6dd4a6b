//! The passgen engine.
//!
//! | path | operations | what |
//! |---|---|---|
//! | `roles/` | list | role names |
//! | `roles/{name}` | create, update, read, delete | a role: `length` (8..=256 random characters, default 24), `charset` (`alphanumeric`, `ascii-printable`, `hex`), `prefix`, `ttl` |
//! | `generate/{name}` | read | `{"password", "role"}`, lease = the role's ttl |
//!
//! Roles are stored as JSON at `roles/<name>`. Updates change only the
//! fields sent. Passwords come from the OS CSPRNG, uniformly over the
//! charset (no modulo bias), and are never stored.

use lockbox_sdk::framework::{Field, Fields, Path, PathBackend};
use lockbox_sdk::{Error, Kind, Request, Response, Storage};
use rand::Rng;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::time::Duration;

/// The version `Info` reports.
pub const VERSION: &str = concat!("v", env!("CARGO_PKG_VERSION"));

/// The longest prefix a role may have.
pub const MAX_PREFIX: usize = 64;

const CHARSETS: [&str; 3] = ["alphanumeric", "ascii-printable", "hex"];

/// A stored role.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Role {
    /// Number of random characters.
    pub length: i64,
    /// One of [`CHARSETS`].
    pub charset: String,
    /// Text put before the random characters.
    #[serde(default)]
    pub prefix: String,
    /// Lease duration of generated passwords, in seconds.
    #[serde(default)]
    pub ttl_seconds: u64,
}

fn alphabet(charset: &str) -> Result<Vec<u8>, Error> {
    Ok(match charset {
        "alphanumeric" => (b'A'..=b'Z')
            .chain(b'a'..=b'z')
            .chain(b'0'..=b'9')
            .collect(),
        "ascii-printable" => (b'!'..=b'~').collect(),
        "hex" => (b'0'..=b'9').chain(b'a'..=b'f').collect(),
        other => {
            return Err(Error::internal(format!(
                "stored role has unknown charset {other:?}"
            )));
        }
    })
}

/// A password for `role`: its prefix and `length` characters of its charset.
pub fn generate(role: &Role) -> Result<String, Error> {
    let alphabet = alphabet(&role.charset)?;
    let mut rng = rand::rngs::OsRng;
    let mut out = role.prefix.clone();
    for _ in 0..role.length {
        out.push(char::from(alphabet[rng.gen_range(0..alphabet.len())]));
    }
    Ok(out)
}

fn role_key(name: &str) -> String {
    format!("roles/{name}")
}

fn name_of(fields: &Fields) -> Result<&str, Error> {
    fields.require_str("name")
}

fn check_prefix(prefix: &str) -> Result<(), Error> {
    if prefix.len() > MAX_PREFIX {
        return Err(Error::invalid(format!(
            "field prefix: at most {MAX_PREFIX} bytes, got {}",
            prefix.len()
        )));
    }
    if prefix.chars().any(char::is_control) {
        return Err(Error::invalid(
            "field prefix: control characters are not allowed",
        ));
    }
    Ok(())
}

async fn write_role(
    req: Request,
    fields: Fields,
    storage: Storage,
) -> Result<Option<Response>, Error> {
    let name = name_of(&fields)?;
    let key = role_key(name);
    let existing: Option<Role> = storage.get_json(&key).await?;
    // On create every field takes its value or default; on update only the
    // fields sent change.
    let from_request = existing.is_none() || req.operation == lockbox_sdk::Operation::Create;
    let pick = |f: &str| from_request || fields.is_set(f);
    let mut role = existing.unwrap_or(Role {
        length: 24,
        charset: "alphanumeric".into(),
        prefix: String::new(),
        ttl_seconds: 0,
    });
    if pick("length") {
        role.length = fields.int("length").unwrap_or(role.length);
    }
    if pick("charset") {
        role.charset = fields.str("charset").unwrap_or(&role.charset).to_string();
    }
    if pick("prefix") {
        role.prefix = fields.str("prefix").unwrap_or_default().to_string();
    }
    if pick("ttl") {
        role.ttl_seconds = fields.duration("ttl").unwrap_or_default().as_secs();
    }
    check_prefix(&role.prefix)?;
    storage.put_json(&key, &role).await?;
    Ok(None)
}

async fn read_role(
    _req: Request,
    fields: Fields,
    storage: Storage,
) -> Result<Option<Response>, Error> {
    let Some(role) = storage
        .get_json::<Role>(&role_key(name_of(&fields)?))
        .await?
    else {
        return Ok(None);
    };
    Ok(Some(Response::json(json!({
        "length": role.length,
        "charset": role.charset,
        "prefix": role.prefix,
        "ttl": role.ttl_seconds,
    }))))
}

async fn generate_password(
    req: Request,
    fields: Fields,
    storage: Storage,
) -> Result<Option<Response>, Error> {
    let name = name_of(&fields)?;
    let Some(role) = storage.get_json::<Role>(&role_key(name)).await? else {
        return Err(Error::invalid(format!(
            "unknown role {name:?}: create it first with `write {}roles/{name} length=24`",
            req.mount.path
        )));
    };
    let password = generate(&role)?;
    Ok(Some(
        Response::json(json!({ "password": password, "role": name }))
            .with_lease(Duration::from_secs(role.ttl_seconds), false),
    ))
}

/// The backend.
pub fn backend() -> PathBackend {
    PathBackend::new(Kind::Secret, VERSION)
        .help("passgen generates random passwords from named roles.")
        .path(
            Path::new("roles/")
                .help("List roles.", "")
                .list(|_, _, s| async move {
                    let keys: Vec<String> = s
                        .list("roles/")
                        .await?
                        .into_iter()
                        .filter(|k| !k.ends_with('/'))
                        .collect();
                    Ok((!keys.is_empty()).then(|| Response::list(keys)))
                }),
        )
        .path(
            Path::new("roles/{name}")
                .help(
                    "Manage a role.",
                    "A role says how passwords generated from it look.",
                )
                .field(Field::string("name").description("Name of the role."))
                .field(
                    Field::int("length")
                        .range(8..=256)
                        .default(24)
                        .description("Number of random characters (the prefix is extra)."),
                )
                .field(
                    Field::string("charset")
                        .one_of(CHARSETS)
                        .default("alphanumeric")
                        .description("Characters to draw from."),
                )
                .field(
                    Field::string("prefix").description("Text put before the random characters."),
                )
                .field(Field::duration("ttl").description("Lease duration of generated passwords."))
                .existence_check(|_, fields, s| async move {
                    Ok(s.get(&role_key(name_of(&fields)?)).await?.is_some())
                })
                .write(write_role)
                .read(read_role)
                .delete(|_, fields, s| async move {
                    s.delete(&role_key(name_of(&fields)?)).await?;
                    Ok(None)
                }),
        )
        .path(
            Path::new("generate/{name}")
                .help("Generate a password from a role.", "")
                .read(generate_password),
        )
}

#[cfg(test)]
mod tests {
    use super::*;
    use lockbox_sdk::Operation;
    use lockbox_sdk::harness::Harness;
    use serde_json::Value;

    async fn harness() -> Harness {
        Harness::new(backend()).await.unwrap()
    }

    fn password_of(resp: &Response) -> String {
        resp.data.as_ref().unwrap()["password"]
            .as_str()
            .unwrap()
            .to_string()
    }

    #[tokio::test]
    async fn role_lifecycle_and_defaults() {
        let h = harness().await;
        assert_eq!(
            h.write_operation("roles/web", &json!({})).await.unwrap(),
            Operation::Create
        );
        h.write("roles/web", json!({})).await.unwrap();
        let role = h.read_data("roles/web").await.unwrap().unwrap();
        assert_eq!(
            Value::Object(role),
            json!({"length": 24, "charset": "alphanumeric", "prefix": "", "ttl": 0})
        );
        // Update changes only what is sent (CLI sends strings).
        assert_eq!(
            h.write_operation("roles/web", &json!({})).await.unwrap(),
            Operation::Update
        );
        h.write("roles/web", json!({"length": "12", "ttl": "1h"}))
            .await
            .unwrap();
        h.write("roles/web", json!({"prefix": "pw-"}))
            .await
            .unwrap();
        let role = h.read_data("roles/web").await.unwrap().unwrap();
        assert_eq!(
            Value::Object(role),
            json!({"length": 12, "charset": "alphanumeric", "prefix": "pw-", "ttl": 3600})
        );
        h.write("roles/db", json!({"charset": "hex"}))
            .await
            .unwrap();
        assert_eq!(h.list("roles/").await.unwrap(), vec!["db", "web"]);
        h.delete("roles/db").await.unwrap();
        assert_eq!(h.read("roles/db").await.unwrap(), None);
        assert_eq!(h.list("roles").await.unwrap(), vec!["web"]);
    }

    #[tokio::test]
    async fn generates_passwords_with_the_role_shape() {
        let h = harness().await;
        h.write(
            "roles/web",
            json!({"length": 12, "prefix": "pw-", "ttl": "30m"}),
        )
        .await
        .unwrap();
        let resp = h.read("generate/web").await.unwrap().unwrap();
        assert_eq!(resp.lease_duration, Duration::from_secs(1800));
        assert_eq!(resp.data.as_ref().unwrap()["role"], "web");
        let pw = password_of(&resp);
        assert_eq!(pw.len(), 15);
        let random = pw.strip_prefix("pw-").unwrap();
        assert!(random.chars().all(|c| c.is_ascii_alphanumeric()), "{pw}");
        let again = password_of(&h.read("generate/web").await.unwrap().unwrap());
        assert_ne!(pw, again);

        h.write("roles/hex", json!({"charset": "hex", "length": 64}))
            .await
            .unwrap();
        let pw = password_of(&h.read("generate/hex").await.unwrap().unwrap());
        assert!(
            pw.len() == 64
                && pw
                    .chars()
                    .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
        h.write(
            "roles/all",
            json!({"charset": "ascii-printable", "length": 256}),
        )
        .await
        .unwrap();
        let pw = password_of(&h.read("generate/all").await.unwrap().unwrap());
        assert!(pw.len() == 256 && pw.bytes().all(|b| (b'!'..=b'~').contains(&b)));
        // Passwords are never stored.
        assert_eq!(h.storage().list("").await.unwrap(), vec!["roles/"]);
    }

    #[tokio::test]
    async fn bad_values_and_unknown_roles() {
        let h = harness().await;
        let cases = [
            (
                json!({"length": 4}),
                "field length: must be between 8 and 256, got 4",
            ),
            (
                json!({"length": "long"}),
                "field length: expected an integer, got \"long\"",
            ),
            (
                json!({"charset": "emoji"}),
                "field charset: expected one of \"alphanumeric\", \"ascii-printable\", \"hex\", got \"emoji\"",
            ),
            (
                json!({"ttl": "soon"}),
                "field ttl: expected a duration like \"1h\", got \"soon\"",
            ),
            (
                json!({"prefix": "x".repeat(65)}),
                "field prefix: at most 64 bytes, got 65",
            ),
        ];
        for (data, msg) in cases {
            let e = h.write("roles/web", data).await.unwrap_err();
            assert!(matches!(e, Error::InvalidRequest(_)), "{e}");
            assert_eq!(e.to_string(), msg);
        }
        assert_eq!(h.read("roles/web").await.unwrap(), None);

        let e = h.read("generate/nope").await.unwrap_err();
        assert!(matches!(e, Error::InvalidRequest(_)));
        assert_eq!(
            e.to_string(),
            "unknown role \"nope\": create it first with `write test/roles/nope length=24`"
        );
        assert!(matches!(
            h.delete("generate/x").await,
            Err(Error::UnsupportedOperation(_))
        ));
        assert!(matches!(
            h.read("other").await,
            Err(Error::UnsupportedPath(_))
        ));
        assert_eq!(h.list("roles/").await.unwrap(), Vec::<String>::new());
    }

    #[test]
    fn info_and_generator() {
        let info = lockbox_sdk::Backend::info(&backend());
        assert_eq!(info.kind, Kind::Secret);
        assert_eq!(info.version, "v0.1.0");
        let role = Role {
            length: 8,
            charset: "bogus".into(),
            prefix: String::new(),
            ttl_seconds: 0,
        };
        assert!(matches!(generate(&role), Err(Error::Internal(_))));
    }
}
