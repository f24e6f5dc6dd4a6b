//! Startup steps of operator mode that need the Kubernetes API: the CRD
//! check, and init (first start: the unseal key and root token go into
//! Secrets) or unseal (the key comes from its Secret; with `--ha`, a
//! replica that lost the initialization race waits for it).

use crate::args::{
    OperatorArgs, OperatorError, ROOT_TOKEN_KEY, ROOT_TOKEN_SECRET, UNSEAL_KEY, UNSEAL_SECRET,
    kube_err,
};
use crate::crd::{PluginCatalogEntry, SecretsMount};
use crate::crd_tenant::{AuthMount, KubernetesAuthRole, Policy};
use base64::Engine;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ListParams, ObjectMeta, PostParams};
use kube::{Client, ResourceExt};
use lockbox_core::core::Core;
use std::collections::BTreeMap;
use std::io::Write;
use std::time::Duration;
use zeroize::Zeroizing;

/// Fails with [`OperatorError::CrdMissing`], naming the first missing one,
/// unless all five CRDs are served (the operator watches every kind; a
/// missing one would otherwise only show as a watch retrying forever).
pub async fn check_crds(client: &Client) -> Result<(), OperatorError> {
    check_crd::<PluginCatalogEntry>(client, "ListPluginCatalogEntries").await?;
    check_crd::<SecretsMount>(client, "ListSecretsMounts").await?;
    check_crd::<Policy>(client, "ListPolicies").await?;
    check_crd::<KubernetesAuthRole>(client, "ListKubernetesAuthRoles").await?;
    check_crd::<AuthMount>(client, "ListAuthMounts").await
}

/// Lists one object of kind `K` (in all namespaces): a 404 means its CRD is
/// not installed.
async fn check_crd<K>(client: &Client, op: &'static str) -> Result<(), OperatorError>
where
    K: kube::Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    match Api::<K>::all(client.clone())
        .list(&ListParams::default().limit(1))
        .await
    {
        Err(kube::Error::Api(s)) if s.code == 404 => {
            Err(OperatorError::CrdMissing(crd_name::<K>()))
        }
        Err(e) => Err(kube_err(op)(e)),
        Ok(_) => Ok(()),
    }
}

/// `<plural>.<group>` of kind `K`, as its CRD is named.
fn crd_name<K: kube::Resource<DynamicType = ()>>() -> String {
    format!("{}.{}", K::plural(&()), K::group(&()))
}

fn secret(name: &str, key: &str, value: &str) -> Secret {
    Secret {
        metadata: ObjectMeta {
            name: Some(name.into()),
            labels: Some(BTreeMap::from([(
                "app.kubernetes.io/managed-by".to_string(),
                "lockbox-operator".to_string(),
            )])),
            ..Default::default()
        },
        type_: Some("Opaque".into()),
        data: Some(BTreeMap::from([(
            key.to_string(),
            ByteString(value.as_bytes().to_vec()),
        )])),
        ..Default::default()
    }
}

fn secret_value(s: &Secret, key: &str) -> Option<Zeroizing<String>> {
    s.data
        .as_ref()
        .and_then(|d| d.get(key))
        .and_then(|b| String::from_utf8(b.0.clone()).ok())
        .map(Zeroizing::new)
}

async fn create_with_retry(api: &Api<Secret>, s: &Secret) -> Result<(), kube::Error> {
    let mut delay = Duration::from_millis(500);
    let mut attempt = 0;
    loop {
        match api.create(&PostParams::default(), s).await {
            Ok(_) => return Ok(()),
            Err(e) if attempt >= 5 => return Err(e),
            Err(e) => {
                tracing::warn!(secret = %s.name_any(), "create failed, retrying: {e}");
                attempt += 1;
                tokio::time::sleep(delay).await;
                delay *= 2;
            }
        }
    }
}

/// How long a replica waits for the Secrets that another replica writes
/// right after it initialized the shared storage (HA).
const SECRET_WAIT: Duration = Duration::from_secs(300);
/// How often it looks.
const SECRET_POLL: Duration = Duration::from_secs(2);

/// Initializes (first start) or unseals the core; returns the root token.
///
/// With `--ha` several replicas start at once on one database: the core
/// initializes under the HA lock and re-checks, so exactly one replica
/// initializes and writes the Secrets; the others find the storage
/// initialized and wait (up to [`SECRET_WAIT`]) for the Secrets, then
/// unseal as standbys.
pub async fn init_or_unseal(
    core: &Core,
    secrets: &Api<Secret>,
    args: &OperatorArgs,
) -> Result<Zeroizing<String>, OperatorError> {
    if !core.is_initialized().await?
        && let Some(token) = initialize(core, secrets, args).await?
    {
        return Ok(token);
    }
    let unseal = read_secret(secrets, args, UNSEAL_SECRET, UNSEAL_KEY, "GetUnsealSecret")
        .await?
        .ok_or_else(|| OperatorError::UnsealKeyMissing {
            namespace: args.namespace.clone(),
            data_dir: args.data_dir.display().to_string(),
        })?;
    let raw = Zeroizing::new(lockbox_core::core::decode_key(&unseal)?);
    if !core.submit_unseal_key(&raw).await? {
        return Err(OperatorError::UnsealFailed(format!(
            "{}/{UNSEAL_SECRET}",
            args.namespace
        )));
    }
    let token = read_secret(
        secrets,
        args,
        ROOT_TOKEN_SECRET,
        ROOT_TOKEN_KEY,
        "GetRootTokenSecret",
    )
    .await?
    .ok_or_else(|| {
        OperatorError::RootTokenMissing(format!("{}/{ROOT_TOKEN_SECRET}", args.namespace))
    })?;
    tracing::info!("unsealed lockbox with the key from Secret {UNSEAL_SECRET}");
    Ok(token)
}

/// Initializes the core and stores its key and root token; `None` when
/// another HA replica initialized it first.
async fn initialize(
    core: &Core,
    secrets: &Api<Secret>,
    args: &OperatorArgs,
) -> Result<Option<Zeroizing<String>>, OperatorError> {
    // Surface RBAC problems and stale Secrets before creating keys that
    // would then have nowhere to go.
    let dry = PostParams {
        dry_run: true,
        ..Default::default()
    };
    for name in [UNSEAL_SECRET, ROOT_TOKEN_SECRET] {
        match secrets.create(&dry, &secret(name, "probe", "x")).await {
            Ok(_) => {}
            // The Secrets are written only after the storage is
            // initialized: with HA, another replica won the race.
            Err(kube::Error::Api(s))
                if s.code == 409 && args.ha && core.is_initialized().await? =>
            {
                return Ok(None);
            }
            Err(kube::Error::Api(s)) if s.code == 409 => {
                return Err(OperatorError::StaleSecret(format!(
                    "{}/{name}",
                    args.namespace
                )));
            }
            Err(e) => return Err(kube_err("CreateSecret")(e)),
        }
    }
    let init = match core.initialize(1, 1, None).await {
        Ok(init) => init,
        // Lost the race: the other replica initialized under the HA lock
        // (or holds it as the active node now, and initialization timed
        // out waiting for it).
        Err(e) if args.ha && core.is_initialized().await? => {
            tracing::info!("another replica initialized lockbox first ({e})");
            return Ok(None);
        }
        Err(e) => return Err(e.into()),
    };
    let Some(key) = init.keys.first() else {
        return Err(OperatorError::UnsealFailed("(no key generated)".into()));
    };
    let key_b64 = Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(key.as_slice()));
    if let Err(source) =
        create_with_retry(secrets, &secret(UNSEAL_SECRET, UNSEAL_KEY, &key_b64)).await
    {
        let file = args.data_dir.join("unseal-key.recovery");
        write_private(&file, key_b64.as_bytes())?;
        return Err(OperatorError::KeyNotStored {
            secret: format!("{}/{UNSEAL_SECRET}", args.namespace),
            file: file.display().to_string(),
            source,
        });
    }
    create_with_retry(
        secrets,
        &secret(ROOT_TOKEN_SECRET, ROOT_TOKEN_KEY, &init.root_token),
    )
    .await
    .map_err(kube_err("CreateRootTokenSecret"))?;
    core.submit_unseal_key(key).await?;
    tracing::info!(
        namespace = %args.namespace,
        "initialized lockbox; unseal key and root token stored in Secrets {UNSEAL_SECRET} and {ROOT_TOKEN_SECRET}"
    );
    Ok(Some(Zeroizing::new(init.root_token)))
}

/// The value of `key` in Secret `name`; with `--ha`, waits up to
/// [`SECRET_WAIT`] for it (the replica that initialized writes it right
/// after), logging once.
async fn read_secret(
    secrets: &Api<Secret>,
    args: &OperatorArgs,
    name: &str,
    key: &str,
    op: &'static str,
) -> Result<Option<Zeroizing<String>>, OperatorError> {
    let deadline = tokio::time::Instant::now() + SECRET_WAIT;
    let mut logged = false;
    loop {
        let value = secrets
            .get_opt(name)
            .await
            .map_err(kube_err(op))?
            .and_then(|s| secret_value(&s, key));
        if value.is_some() || !args.ha {
            return Ok(value);
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(OperatorError::UnsealSecretTimeout(
                format!("{}/{name}", args.namespace),
                SECRET_WAIT.as_secs(),
            ));
        }
        if !logged {
            tracing::info!(
                "lockbox is initialized (by another replica) but Secret {name} is not there \
                 yet: waiting up to {}s for it",
                SECRET_WAIT.as_secs()
            );
            logged = true;
        }
        tokio::time::sleep(SECRET_POLL).await;
    }
}

fn write_private(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}
