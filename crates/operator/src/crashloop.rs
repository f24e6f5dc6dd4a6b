//! Crash loops of plugin processes as Kubernetes events.
//!
//! The plugin host reports supervision events ([`PluginHost::subscribe`]);
//! when a process keeps exiting soon after each restart
//! ([`PluginEventKind::CrashLoop`]), the leader publishes a Warning event
//! with reason `PluginCrashLoop` on the `PluginCatalogEntry` of that name
//! and on every `SecretsMount` whose mount the process serves, so the teams
//! owning the mounts see it in `kubectl describe` and `kubectl get events`
//! in their own namespace. Requests to those mounts fail fast with 503
//! meanwhile; the host keeps restarting with backoff.
//!
//! [`PluginHost::subscribe`]: lockbox_plugin_host::PluginHost::subscribe

use super::context::Context;
use super::crd::PluginCatalogEntry;
use kube::api::Api;
use kube::runtime::events::EventType;
use kube::{Resource, ResourceExt};
use lockbox_plugin_host::{PluginEvent, PluginEventKind};
use std::sync::Arc;
use tokio::sync::broadcast;

/// Event reason for a crash-looping plugin process.
pub const REASON: &str = "PluginCrashLoop";

/// The event note for a crash loop (pure, for tests).
pub fn note(e: &PluginEvent, failures: u32, reason: &str, next: std::time::Duration) -> String {
    let version = if e.version.is_empty() {
        String::new()
    } else {
        format!(" {}", e.version)
    };
    let next = if next.is_zero() {
        "it never came up; it is started again when its mount is reconciled".to_string()
    } else {
        format!("next restart in {}", humantime::format_duration(next))
    };
    format!(
        "plugin {}{version} (sha256 {}) exited {failures} times in a row soon after starting; \
         last: {reason}; requests to its mounts ({}) fail with 503 until it stays up; {next}. \
         Check the plugin's log lines in the operator log (plugin={}) and fix or \
         roll back the catalog entry.",
        e.name,
        e.sha256.get(..12).unwrap_or(&e.sha256),
        if e.mount_paths.is_empty() {
            "none".to_string()
        } else {
            e.mount_paths.join(", ")
        },
        e.name,
    )
}

/// Whether a `SecretsMount` with status path `path` is among `mount_paths`
/// (routing paths with a trailing `/`).
pub fn serves(mount_paths: &[String], path: &str) -> bool {
    let path = path.trim_matches('/');
    !path.is_empty() && mount_paths.iter().any(|p| p.trim_end_matches('/') == path)
}

/// Publishes crash-loop events until the host goes away.
pub async fn run(ctx: Arc<Context>, mut events: broadcast::Receiver<PluginEvent>) {
    loop {
        let e = match events.recv().await {
            Ok(e) => e,
            Err(broadcast::error::RecvError::Lagged(n)) => {
                tracing::warn!("missed {n} plugin supervision events");
                continue;
            }
            Err(broadcast::error::RecvError::Closed) => return,
        };
        let PluginEventKind::CrashLoop {
            failures,
            reason,
            next_restart,
        } = &e.kind
        else {
            continue;
        };
        let text = note(&e, *failures, reason, *next_restart);
        let entries: Api<PluginCatalogEntry> = Api::all(ctx.client.clone());
        match entries.get_opt(&e.name).await {
            Ok(Some(entry)) => {
                ctx.event(
                    &entry.object_ref(&()),
                    EventType::Warning,
                    REASON,
                    text.clone(),
                )
                .await
            }
            Ok(None) => {}
            Err(err) => tracing::warn!(plugin = %e.name, "cannot read the catalog entry: {err}"),
        }
        // The controllers' cache of SecretsMounts (an API list without it).
        match ctx.all_mounts().await {
            Ok(all) => {
                for m in all.iter().filter(|m| {
                    m.status
                        .as_ref()
                        .and_then(|s| s.path.as_deref())
                        .is_some_and(|p| serves(&e.mount_paths, p))
                }) {
                    tracing::debug!(mount = %m.name_any(), "reporting crash loop");
                    ctx.event(&m.object_ref(&()), EventType::Warning, REASON, text.clone())
                        .await;
                }
            }
            Err(err) => tracing::warn!(plugin = %e.name, "cannot read SecretsMounts: {err}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn event() -> PluginEvent {
        PluginEvent {
            name: "mock".into(),
            version: "1.0.0".into(),
            sha256: "ab".repeat(32),
            mount_paths: vec!["team-a/kv/".into(), "team-b/kv/".into()],
            kind: PluginEventKind::Exited { reason: "x".into() },
        }
    }

    #[test]
    fn note_names_plugin_mounts_reason_and_what_to_do() {
        let n = note(
            &event(),
            3,
            "signal: 6 (SIGABRT)",
            Duration::from_millis(400),
        );
        for part in [
            "plugin mock 1.0.0",
            "sha256 abababababab)",
            "3 times in a row",
            "signal: 6 (SIGABRT)",
            "team-a/kv/, team-b/kv/",
            "503",
            "400ms",
            "roll back",
        ] {
            assert!(n.contains(part), "{part:?} missing from {n}");
        }
    }

    #[test]
    fn mounts_match_by_path() {
        let paths = event().mount_paths;
        assert!(serves(&paths, "team-a/kv"));
        assert!(serves(&paths, "team-b/kv/"));
        assert!(!serves(&paths, "team-a/kv2"));
        assert!(!serves(&paths, "team-a"));
        assert!(!serves(&paths, ""));
    }
}
