//! The supervisor task of a group: waits for its process to exit, sleeps,
//! relaunches, and publishes events. It performs only I/O; every decision
//! (how long to wait, when failures are a crash loop) is the state
//! machine's ([`crate::supervision::Supervision`]).
//!
//! The loop drives a [`Job`] (the supervised slot: what runs now, how to
//! launch and install a replacement, where events go) whose processes are
//! [`Child`]ren. The plugin host's job is [`GroupJob`] over real processes;
//! the unit tests drive the same loop with a test double of both under
//! tokio's paused clock.
//!
//! ```text
//!  current child ──exited──▶ Job::take_exited ──▶ Supervision::on_exit ─▶ Decision
//!        ▲                                                                   │
//!        │ Job::install ◀── Job::launch ◀── sleep(restart_after) ◀──────────┘
//!        │      │ failed: Child::stop, Supervision::on_restart_failed ─▶ Decision
//!        └──────┘ (events: Exited, CrashLoop, Restarted)
//! ```

use super::{Group, PluginEventKind, PluginHost, setup_mount};
use crate::process::{self, PluginProcess};
use crate::supervision::{Backoff, Decision, Supervision};
use std::future::Future;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use tokio::time::Instant;

/// A running process, as supervision sees it.
pub(crate) trait Child: Send + Sync + 'static {
    /// OS process ID.
    fn pid(&self) -> u32;
    /// Resolves with the exit status (or why waiting failed) once the
    /// process has exited. The future holds no reference to the child, so
    /// waiting does not keep a retired process alive.
    fn exited(&self) -> impl Future<Output = String> + Send + 'static;
    /// Stops the process and waits until it has exited.
    fn stop(&self) -> impl Future<Output = ()> + Send;
}

/// A supervised slot: the process serving it now, and how to replace it.
pub(crate) trait Job: Send + Sync + 'static {
    /// The kind of process it runs.
    type Child: Child;
    /// Catalog name and version, for logs.
    fn label(&self) -> (&str, &str);
    /// The process in service; `None` ends supervision (nothing to watch).
    fn current(&self) -> Option<Arc<Self::Child>>;
    /// Takes the exited process out of service and records why it exited;
    /// `false` ends supervision (the slot was retired or is gone: the exit
    /// was a stop, not a crash).
    fn take_exited(&self, reason: &str) -> bool;
    /// Whether the slot was retired (or is gone) meanwhile: no relaunch.
    fn retired(&self) -> bool;
    /// Starts a replacement process. A failure is recorded as the slot's
    /// last exit (what requests are told while it is down).
    fn launch(&self) -> impl Future<Output = Result<Arc<Self::Child>, String>> + Send;
    /// Readies `child` (sets the slot's mounts up on it) and puts it in
    /// service; on `Err` it is not in service and the caller stops it.
    fn install(&self, child: &Arc<Self::Child>) -> impl Future<Output = Result<(), String>> + Send;
    /// Publishes a supervision event.
    fn emit(&self, kind: PluginEventKind) -> impl Future<Output = ()> + Send;
}

/// Restarts the job's process whenever it exits, until the job is retired
/// or gone.
pub(crate) async fn supervise<J: Job>(job: J, backoff: Backoff) {
    let mut state = Supervision::new(backoff);
    loop {
        let Some(child) = job.current() else { return };
        let exited = child.exited();
        drop(child);
        let started = Instant::now();
        let reason = exited.await;
        if !job.take_exited(&reason) {
            return;
        }
        let decision = state.on_exit(started.elapsed());
        let (name, version) = job.label();
        tracing::error!(plugin = %name, version = %version, failures = state.failures(), "plugin process exited unexpectedly ({reason}); restarting in {:?}", decision.restart_after);
        job.emit(PluginEventKind::Exited {
            reason: reason.clone(),
        })
        .await;
        if !restart(&job, &mut state, decision, reason).await {
            return;
        }
    }
}

/// Relaunches after each delay the state machine decides until a process
/// is in service (`true`) or the job was retired meanwhile (`false`).
/// `last_error` is the exit status or restart error a crash-loop report
/// names.
async fn restart<J: Job>(
    job: &J,
    state: &mut Supervision,
    mut decision: Decision,
    mut last_error: String,
) -> bool {
    let (name, version) = job.label();
    loop {
        if let Some(failures) = decision.crash_loop {
            let next_restart = decision.restart_after;
            tracing::error!(plugin = %name, version = %version, failures, "plugin is crash-looping ({last_error}); next restart in {next_restart:?}");
            job.emit(PluginEventKind::CrashLoop {
                failures,
                reason: last_error.clone(),
                next_restart,
            })
            .await;
        }
        tokio::time::sleep(decision.restart_after).await;
        if job.retired() {
            return false;
        }
        match job.launch().await {
            Ok(child) => match job.install(&child).await {
                Ok(()) => {
                    let pid = child.pid();
                    tracing::info!(plugin = %name, pid, "plugin process restarted");
                    job.emit(PluginEventKind::Restarted { pid }).await;
                    return true;
                }
                Err(e) => {
                    child.stop().await;
                    last_error = e;
                }
            },
            Err(e) => {
                tracing::error!(plugin = %name, "restart failed: {e}");
                last_error = e;
            }
        }
        decision = state.on_restart_failed();
    }
}

impl Child for PluginProcess {
    fn pid(&self) -> u32 {
        self.pid
    }

    fn exited(&self) -> impl Future<Output = String> + Send + 'static {
        let mut exit = self.exit_watch();
        async move {
            match exit.wait_for(|e| e.is_some()).await {
                Ok(r) => r.clone().unwrap_or_default(),
                Err(_) => "monitor gone".into(),
            }
        }
    }

    fn stop(&self) -> impl Future<Output = ()> + Send {
        PluginProcess::stop(self)
    }
}

/// The plugin host's job: one [`Group`] and its real processes. It holds
/// the group and the host weakly, so supervision ends when either is gone.
pub(crate) struct GroupJob {
    host: Weak<PluginHost>,
    group: Weak<Group>,
    name: String,
    version: String,
}

impl GroupJob {
    /// The job of `group` in `host`.
    pub(crate) fn new(host: &Arc<PluginHost>, group: &Arc<Group>) -> Self {
        Self {
            host: Arc::downgrade(host),
            group: Arc::downgrade(group),
            name: group.entry.name.clone(),
            version: group.entry.version.clone(),
        }
    }

    fn both(&self) -> Option<(Arc<PluginHost>, Arc<Group>)> {
        Some((self.host.upgrade()?, self.group.upgrade()?))
    }
}

impl Job for GroupJob {
    type Child = PluginProcess;

    fn label(&self) -> (&str, &str) {
        (&self.name, &self.version)
    }

    fn current(&self) -> Option<Arc<PluginProcess>> {
        self.group.upgrade()?.current()
    }

    fn take_exited(&self, reason: &str) -> bool {
        let Some(g) = self.group.upgrade() else {
            return false;
        };
        if g.retired.load(Ordering::SeqCst) || self.host.strong_count() == 0 {
            return false;
        }
        *g.current.write().unwrap_or_else(|e| e.into_inner()) = None;
        *g.last_exit.lock().unwrap_or_else(|e| e.into_inner()) = Some(reason.to_string());
        g.restarts.fetch_add(1, Ordering::Relaxed);
        true
    }

    fn retired(&self) -> bool {
        self.both()
            .is_none_or(|(_, g)| g.retired.load(Ordering::SeqCst))
    }

    async fn launch(&self) -> Result<Arc<PluginProcess>, String> {
        let Some((h, g)) = self.both() else {
            return Err("the plugin host is shutting down".into());
        };
        // An image-sourced binary deleted from the cache meanwhile is
        // pulled again (pinned digest, same sha256) before the relaunch;
        // the launch verifies the file again (it may have changed).
        let launched = match h.restore_binary(&g.entry, &g.binary).await {
            Ok(()) => process::launch(&g.entry, &g.binary, &h.cfg.launch)
                .await
                .map_err(|e| e.to_string()),
            Err(e) => Err(e),
        };
        if let Err(e) = &launched {
            *g.last_exit.lock().unwrap_or_else(|e| e.into_inner()) = Some(e.clone());
        }
        launched
    }

    async fn install(&self, child: &Arc<PluginProcess>) -> Result<(), String> {
        let Some(g) = self.group.upgrade() else {
            return Err("the plugin host is shutting down".into());
        };
        let mounts = g.mounts.lock().await;
        let mut ok = true;
        for m in mounts.values() {
            if let Err(e) = setup_mount(child, m).await {
                tracing::error!(plugin = %g.entry.name, "setting up {} after restart failed: {e}", m.setup.mount_path);
                ok = false;
            }
        }
        if !ok {
            return Err("setting up its mounts after the restart failed".into());
        }
        *g.current.write().unwrap_or_else(|e| e.into_inner()) = Some(child.clone());
        Ok(())
    }

    async fn emit(&self, kind: PluginEventKind) {
        if let Some((h, g)) = self.both() {
            h.emit(&g, kind).await;
        }
    }
}

#[cfg(test)]
mod tests;
