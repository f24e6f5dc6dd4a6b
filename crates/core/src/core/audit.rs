//! Audit devices (Vault's model): every request that passes the ACL is
//! recorded before its handler runs, and its response (or error) after.
//! **Fail closed**: while at least one device is enabled, a request no
//! device could record is refused before anything changes. A read that
//! changes nothing (a backend's `reads_change_nothing`: the built-in kv)
//! runs first and has both entries written together, before its reply
//! leaves, which is refused if they cannot be written.
//!
//! Devices are configured through `sys/audit` and stored in the barrier
//! (`core/audit/devices`); each has its own random salt
//! (`core/audit/salt/<path>`): every string value of an entry is replaced
//! by `hmac-sha256:<hex>` of it under that salt (numbers and booleans as
//! they are), unless the device has `log_raw`; `sys/audit-hash/:path`
//! gives the same hash of an input. One device type: `file` (`file_path`,
//! or `stdout`; `mode`, default 0600; `format` `json` or `jsonx`;
//! `prefix`; `hmac_accessor`). The file is reopened by
//! [`AuditBroker::reopen`] (SIGHUP, for logrotate).
//!
//! Writes are group commits: a request's line joins the device's queue.
//! The request that finds no writer at work becomes the writer: unless it
//! is the only request in flight, it yields once, so that the requests
//! ready to run queue their lines too, then
//! takes every queued line, writes them in one `write(2)`, hands each
//! waiting request its result, and goes on until the queue is empty; the
//! others only wait for their result (no lock is passed from task to
//! task). So under concurrency many requests share one system call, and
//! each still learns whether *its* line was written before its handler
//! runs (fail closed). The writing itself has no `.await`, and the duty is
//! a guard ([`Writer`]) that writes when dropped: a cancelled request
//! cannot leave lines behind. The device's HMAC key is scheduled once when
//! the device is built.

mod entry;
mod format;
mod json;

use crate::barrier::Barrier;
use crate::logical::RequestError;
use hmac::{Hmac, Mac};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use zeroize::Zeroizing;

pub use entry::Record;
pub use format::Format;

const DEVICES_KEY: &str = "core/audit/devices";
const SALT_PREFIX: &str = "core/audit/salt/";

/// A device as configured (`sys/audit/:path`), as stored.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DeviceConfig {
    /// The device's path, ending in `/` (`file/`).
    pub path: String,
    /// The device type: `file`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Free text.
    #[serde(default)]
    pub description: String,
    /// Type options (`file_path`, `mode`, `format`, `prefix`, `log_raw`,
    /// `hmac_accessor`).
    #[serde(default)]
    pub options: BTreeMap<String, String>,
    /// Vault's `local` flag (kept, no replication here).
    #[serde(default)]
    pub local: bool,
}

enum Sink {
    Stdout,
    File {
        path: PathBuf,
        mode: Option<u32>,
        file: Option<std::fs::File>,
    },
}

impl Sink {
    fn open(path: &PathBuf, mode: Option<u32>) -> std::io::Result<std::fs::File> {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        let mut o = std::fs::OpenOptions::new();
        o.create(true).append(true).mode(mode.unwrap_or(0o600));
        let f = o.open(path)?;
        if let Some(m) = mode {
            f.set_permissions(std::fs::Permissions::from_mode(m))?;
        }
        Ok(f)
    }

    fn write(&mut self, line: &[u8]) -> std::io::Result<()> {
        match self {
            Sink::Stdout => {
                let mut out = std::io::stdout().lock();
                out.write_all(line)?;
                out.flush()
            }
            Sink::File { path, mode, file } => {
                if file.is_none() {
                    *file = Some(Self::open(path, *mode)?);
                }
                let f = file
                    .as_mut()
                    .ok_or_else(|| std::io::Error::other("no file"))?;
                match f.write_all(line) {
                    Ok(()) => Ok(()),
                    Err(e) => {
                        // Reopened at the next write.
                        *file = None;
                        Err(e)
                    }
                }
            }
        }
    }

    fn reopen(&mut self) -> std::io::Result<()> {
        if let Sink::File { path, mode, file } = self {
            *file = None;
            *file = Some(Self::open(path, *mode)?);
        }
        Ok(())
    }
}

thread_local! {
    /// The line being rendered on this thread (see [`AuditBroker::record`]).
    static LINE: std::cell::RefCell<Vec<u8>> =
        std::cell::RefCell::new(Vec::with_capacity(LINE_KEEP));
}

/// The render buffer a thread keeps between lines (a larger one, after an
/// entry with a large response, is given back).
const LINE_KEEP: usize = 16 * 1024;

/// A write's outcome, as each waiting request receives it.
type Written = Result<(), Arc<str>>;

/// The lines waiting for the next write, and who waits for them.
#[derive(Default)]
struct Queue {
    buf: Vec<u8>,
    waiters: Vec<tokio::sync::oneshot::Sender<Written>>,
    /// A request is writing (see the module docs): the others wait.
    writing: bool,
}

/// The writer's side of the double buffer: what it takes from the queue
/// is swapped with these (emptied, capacity kept), so neither side grows
/// a buffer from nothing or frees one at every batch.
#[derive(Default)]
struct Batch {
    buf: Vec<u8>,
    waiters: Vec<tokio::sync::oneshot::Sender<Written>>,
}

/// The most a buffer keeps between batches (a burst's larger one is given
/// back).
const BATCH_KEEP: usize = 1 << 20;

/// Requests between the creation and the drop of their [`Record`], in
/// this process: a writer yields for company only when there may be some.
static IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);

/// Distinguishes devices for the lifetime of the process (a device
/// disabled and enabled again is another device, with another salt).
static NEXT_DEVICE_ID: AtomicU64 = AtomicU64::new(0);

/// One enabled device.
pub struct Device {
    /// Its configuration.
    pub config: DeviceConfig,
    /// Unique in this process.
    id: u64,
    /// HMAC-SHA256 keyed with the device's salt (key schedule done once;
    /// cloned per string).
    mac: Hmac<Sha256>,
    queue: Mutex<Queue>,
    /// The writer's buffers; only the writer of the moment takes them.
    batch: Mutex<Batch>,
    /// The file; only the writer of the moment takes it (and SIGHUP).
    sink: Mutex<Sink>,
    /// Set by [`AuditBroker::reopen`] when the file was busy: the next
    /// writer reopens it first.
    reopen: AtomicBool,
    format: Format,
    log_raw: bool,
    hmac_accessor: bool,
    prefix: String,
}

fn bool_option(
    options: &BTreeMap<String, String>,
    key: &str,
    default: bool,
) -> Result<bool, RequestError> {
    match options.get(key).map(String::as_str) {
        None | Some("") => Ok(default),
        Some("true" | "1") => Ok(true),
        Some("false" | "0") => Ok(false),
        Some(v) => Err(RequestError::invalid(format!(
            "options.{key}: {v:?} is not a boolean (true or false)"
        ))),
    }
}

impl Device {
    /// Builds (and for a file, opens) a device: every option is checked and
    /// a file that cannot be opened is an error naming it.
    /// With `open_now` false (loading at unseal) the file opens at the
    /// first write instead, so a missing file does not stop the unseal.
    fn build(
        config: DeviceConfig,
        salt: Zeroizing<Vec<u8>>,
        open_now: bool,
    ) -> Result<Device, RequestError> {
        if config.kind != "file" {
            return Err(RequestError::invalid(format!(
                "audit device type {:?} is not supported: lockbox has the \"file\" device (file_path=PATH or stdout)",
                config.kind
            )));
        }
        let o = &config.options;
        for key in o.keys() {
            if !matches!(
                key.as_str(),
                "file_path"
                    | "path"
                    | "mode"
                    | "format"
                    | "prefix"
                    | "log_raw"
                    | "hmac_accessor"
                    | "elide_list_responses"
                    | "fallback"
            ) {
                return Err(RequestError::invalid(format!(
                    "unknown option {key:?} for the file audit device (file_path, mode, format, prefix, log_raw, hmac_accessor)"
                )));
            }
        }
        let file_path = o
            .get("file_path")
            .or_else(|| o.get("path"))
            .filter(|p| !p.is_empty())
            .ok_or_else(|| {
                RequestError::invalid(
                    "missing options.file_path: a file to append to, or \"stdout\"",
                )
            })?;
        let mode = match o.get("mode").map(String::as_str) {
            None | Some("") => Some(0o600),
            Some(m) => match u32::from_str_radix(m, 8) {
                Ok(0) => None,
                Ok(m) if m <= 0o777 => Some(m),
                _ => {
                    return Err(RequestError::invalid(format!(
                        "options.mode {m:?} is not an octal file mode such as 0600"
                    )));
                }
            },
        };
        let format = Format::parse(o.get("format").map(String::as_str).unwrap_or("json"))?;
        let sink = if file_path == "stdout" {
            Sink::Stdout
        } else {
            let path = PathBuf::from(file_path);
            if !path.is_absolute() {
                return Err(RequestError::invalid(format!(
                    "options.file_path {file_path:?} must be an absolute path"
                )));
            }
            let file = if open_now {
                Some(Sink::open(&path, mode).map_err(|e| {
                    RequestError::invalid(format!(
                        "cannot open audit file {file_path}: {e}; check the directory exists and lockbox may write there"
                    ))
                })?)
            } else {
                None
            };
            Sink::File { path, mode, file }
        };
        let mac = <Hmac<Sha256> as Mac>::new_from_slice(&salt)
            .map_err(|e| RequestError::Internal(format!("audit device salt: {e}")))?;
        Ok(Device {
            log_raw: bool_option(o, "log_raw", false)?,
            hmac_accessor: bool_option(o, "hmac_accessor", true)?,
            prefix: o.get("prefix").cloned().unwrap_or_default(),
            format,
            id: NEXT_DEVICE_ID.fetch_add(1, Ordering::Relaxed),
            queue: Mutex::new(Queue::default()),
            batch: Mutex::new(Batch::default()),
            sink: Mutex::new(sink),
            reopen: AtomicBool::new(false),
            mac,
            config,
        })
    }

    /// `hmac-sha256:<hex>` of `value` under this device's salt.
    pub fn hash(&self, value: &str) -> String {
        self.hash_buf(value).as_str().to_string()
    }

    fn hash_buf(&self, value: &str) -> entry::HashBuf {
        let mut mac = self.mac.clone();
        mac.update(value.as_bytes());
        entry::HashBuf::new(&mac.finalize().into_bytes())
    }

    /// One line into `line`: the prefix, the entry in the device's format,
    /// a newline.
    fn render<T: Serialize>(&self, entry: &T, line: &mut Vec<u8>) -> Result<(), String> {
        self.render_line(line, |out| self.format.write(entry, out))
    }

    /// The error of an entry that could not be serialized.
    fn unserializable(&self, e: impl std::fmt::Display) -> String {
        format!(
            "audit device {}: entry not serializable: {e}",
            self.config.path
        )
    }

    /// One line into `line`, its entry written by `body`: the prefix, the
    /// entry, a newline; nothing appended when `body` fails.
    fn render_line(
        &self,
        line: &mut Vec<u8>,
        body: impl FnOnce(&mut Vec<u8>) -> Result<(), String>,
    ) -> Result<(), String> {
        let start = line.len();
        line.extend_from_slice(self.prefix.as_bytes());
        if let Err(e) = body(line) {
            line.truncate(start);
            return Err(self.unserializable(e));
        }
        line.push(b'\n');
        Ok(())
    }

    /// Queues `line` for the device (a group commit, see the module docs);
    /// the request that finds no writer at work gets the writer's duty.
    fn enqueue(&self, line: &[u8]) -> Pending<'_> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let mut q = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        q.buf.extend_from_slice(line);
        q.waiters.push(tx);
        // `then`, not `then_some`: a `Writer` built and dropped here would
        // write while this lock is held, and deadlock.
        let writer = (!std::mem::replace(&mut q.writing, true)).then(|| Writer(self));
        Pending { rx, writer }
    }

    /// Waits until the queued line was written: `Ok` once it was.
    async fn written(&self, pending: Pending<'_>) -> Result<(), String> {
        let Pending { rx, writer } = pending;
        if let Some(writer) = writer {
            // With other requests in flight, let those ready to run queue
            // their lines first, so that one write carries them all (with
            // few worker threads a writer would otherwise rarely find
            // company); alone, write at once (a yield would only cost a
            // trip through the scheduler). If this request is dropped
            // meanwhile, the guard still writes.
            if IN_FLIGHT.load(Ordering::Relaxed) > 1 {
                tokio::task::yield_now().await;
            }
            drop(writer);
        }
        match rx.await {
            Ok(r) => r.map_err(|e| e.to_string()),
            Err(_) => Err(format!(
                "audit device {}: the entry was not written",
                self.config.path
            )),
        }
    }

    /// The writer's loop: writes what is queued, in batches, until the
    /// queue is empty, then stands down. No `.await` in here.
    fn write_queued(&self) {
        let mut batch = self.batch.lock().unwrap_or_else(|e| e.into_inner());
        let batch = &mut *batch;
        loop {
            {
                let mut q = self.queue.lock().unwrap_or_else(|e| e.into_inner());
                if q.waiters.is_empty() {
                    q.writing = false;
                    return;
                }
                batch.buf.clear();
                std::mem::swap(&mut q.buf, &mut batch.buf);
                std::mem::swap(&mut q.waiters, &mut batch.waiters);
            }
            let result: Written = {
                let mut sink = self.sink.lock().unwrap_or_else(|e| e.into_inner());
                if self.reopen.swap(false, Ordering::AcqRel)
                    && let Err(e) = sink.reopen()
                {
                    tracing::error!(path = %self.config.path, "audit device cannot reopen its file: {e}");
                }
                sink.write(&batch.buf)
                    .map_err(|e| Arc::from(format!("audit device {}: {e}", self.config.path)))
            };
            for w in batch.waiters.drain(..) {
                let _ = w.send(result.clone());
            }
            if batch.buf.capacity() > BATCH_KEEP {
                batch.buf = Vec::new();
            }
        }
    }
}

/// A queued line: its result to come, and the writer's duty if this
/// request has it.
struct Pending<'a> {
    rx: tokio::sync::oneshot::Receiver<Written>,
    writer: Option<Writer<'a>>,
}

/// The duty of writing a device's queue, done when dropped: by the request
/// that took it, or by its drop if that request is cancelled first.
struct Writer<'a>(&'a Device);

impl Drop for Writer<'_> {
    fn drop(&mut self) {
        self.0.write_queued();
    }
}

/// The enabled devices of an unsealed core.
pub struct AuditBroker {
    barrier: Arc<Barrier>,
    /// Replaced whole on enable/disable: a request takes one `Arc`.
    devices: RwLock<Arc<Vec<Arc<Device>>>>,
    lock: tokio::sync::Mutex<()>,
}

/// The canonical device path: no leading `/`, one trailing `/`.
pub fn device_path(raw: &str) -> Result<String, RequestError> {
    let p = raw.trim_matches('/');
    if p.is_empty() || p.split('/').any(|s| s.is_empty() || s == "." || s == "..") {
        return Err(RequestError::invalid(format!(
            "invalid audit device path {raw:?}: use a name such as \"file\""
        )));
    }
    Ok(format!("{p}/"))
}

impl AuditBroker {
    /// Loads the stored devices; their files open at the first write (a
    /// file that cannot be opened then refuses requests, fail closed).
    pub async fn open(barrier: Arc<Barrier>) -> Result<Self, RequestError> {
        let configs: Vec<DeviceConfig> = match barrier.get(DEVICES_KEY).await? {
            Some(raw) => serde_json::from_slice(&raw)
                .map_err(|e| RequestError::Internal(format!("audit table: {e}")))?,
            None => vec![],
        };
        let broker = Self {
            barrier,
            devices: RwLock::new(Arc::new(vec![])),
            lock: tokio::sync::Mutex::new(()),
        };
        let mut devices = vec![];
        for c in configs {
            let salt = broker.salt(&c.path).await?;
            devices.push(Arc::new(Device::build(c, salt, false)?));
        }
        *broker.devices.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(devices);
        Ok(broker)
    }

    async fn salt(&self, path: &str) -> Result<Zeroizing<Vec<u8>>, RequestError> {
        let key = format!("{SALT_PREFIX}{path}");
        if let Some(s) = self.barrier.get(&key).await? {
            return Ok(Zeroizing::new(s));
        }
        let mut s = vec![0u8; 32];
        rand::thread_rng().fill_bytes(&mut s);
        self.barrier.put(&key, &s).await?;
        Ok(Zeroizing::new(s))
    }

    fn snapshot(&self) -> Arc<Vec<Arc<Device>>> {
        self.devices
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The enabled devices' configurations.
    pub fn list(&self) -> Vec<DeviceConfig> {
        self.snapshot().iter().map(|d| d.config.clone()).collect()
    }

    async fn save(&self, devices: &[Arc<Device>]) -> Result<(), RequestError> {
        let configs: Vec<&DeviceConfig> = devices.iter().map(|d| &d.config).collect();
        let raw =
            serde_json::to_vec(&configs).map_err(|e| RequestError::Internal(e.to_string()))?;
        self.barrier.put(DEVICES_KEY, &raw).await?;
        Ok(())
    }

    /// Enables a device (its file must open now).
    pub async fn enable(&self, mut config: DeviceConfig) -> Result<(), RequestError> {
        config.path = device_path(&config.path)?;
        let _g = self.lock.lock().await;
        let mut devices = Vec::clone(&self.snapshot());
        if devices.iter().any(|d| d.config.path == config.path) {
            return Err(RequestError::invalid(format!(
                "an audit device is already enabled at {}; disable it first",
                config.path
            )));
        }
        let salt = self.salt(&config.path).await?;
        let device = Arc::new(Device::build(config, salt, true)?);
        devices.push(device);
        self.save(&devices).await?;
        *self.devices.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(devices);
        Ok(())
    }

    /// Disables a device (a missing one is a success, as in Vault).
    pub async fn disable(&self, raw_path: &str) -> Result<(), RequestError> {
        let path = device_path(raw_path)?;
        let _g = self.lock.lock().await;
        let mut devices = Vec::clone(&self.snapshot());
        devices.retain(|d| d.config.path != path);
        self.save(&devices).await?;
        self.barrier.delete(&format!("{SALT_PREFIX}{path}")).await?;
        *self.devices.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(devices);
        Ok(())
    }

    /// `sys/audit-hash/:path`: the device's hash of `input`.
    pub fn hash(&self, raw_path: &str, input: &str) -> Result<String, RequestError> {
        let path = device_path(raw_path)?;
        self.snapshot()
            .iter()
            .find(|d| d.config.path == path)
            .map(|d| d.hash(input))
            .ok_or_else(|| RequestError::invalid(format!("no audit device at {path}")))
    }

    /// Reopens every device's file (SIGHUP, after logrotate moved it).
    pub fn reopen(&self) {
        for d in self.snapshot().iter() {
            match d.sink.try_lock() {
                Ok(mut sink) => {
                    if let Err(e) = sink.reopen() {
                        tracing::error!(path = %d.config.path, "audit device cannot reopen its file: {e}");
                    }
                }
                // A write is under way: the next one reopens first.
                Err(_) => d.reopen.store(true, Ordering::Release),
            }
        }
    }

    /// Records an entry (built per device) on every device. `Ok` when
    /// there is no device or at least one recorded it; else the error that
    /// refuses the request.
    async fn record(
        &self,
        build: impl Fn(&Device, &mut Vec<u8>) -> Result<(), String>,
    ) -> Result<(), RequestError> {
        let devices = self.snapshot();
        if devices.is_empty() {
            return Ok(());
        }
        let mut errors = vec![];
        let mut recorded = false;
        for d in devices.iter() {
            // Rendered into this thread's buffer and copied into the queue
            // before the first `.await`: no allocation per line.
            let queued = LINE.with(|cell| {
                let mut line = cell.borrow_mut();
                line.clear();
                let queued = build(d, &mut line).map(|()| d.enqueue(&line));
                if line.capacity() > LINE_KEEP {
                    *line = Vec::with_capacity(LINE_KEEP);
                }
                queued
            });
            let written = match queued {
                Ok(pending) => d.written(pending).await,
                Err(e) => Err(e),
            };
            match written {
                Ok(()) => recorded = true,
                Err(e) => {
                    tracing::error!("{e}");
                    errors.push(e);
                }
            }
        }
        if recorded {
            Ok(())
        } else {
            Err(RequestError::Unavailable(format!(
                "no enabled audit device could record the request, so it was refused ({})",
                errors.join("; ")
            )))
        }
    }

    /// Records the request; an error refuses it (fail closed).
    pub async fn log_request(&self, r: &Record<'_>) -> Result<(), RequestError> {
        self.record(|d, line| r.request_entry(d, line)).await
    }

    /// Records a request refused before its handler (token or ACL): one
    /// response entry with the error and no auth. An error here refuses it
    /// too (it is refused anyway).
    pub async fn log_refused(
        &self,
        path: &str,
        method: crate::core::Method,
        error: &RequestError,
    ) -> Result<(), RequestError> {
        let operation = entry::op(method.operation());
        let time = entry::Timestamp::now();
        let error = error.to_string();
        self.record(|d, line| {
            entry::refused_entry(
                d,
                &time,
                entry::RefusedRequest::new(operation, path),
                &error,
                line,
            )
        })
        .await
    }

    /// Records the request and its response (or error) in one write: for
    /// a request whose handler changed nothing (see
    /// [`crate::logical::Backend::reads_change_nothing`]); an error refuses
    /// its reply.
    pub async fn log_request_and_response(
        &self,
        r: &Record<'_>,
        outcome: &Result<crate::core::Reply, RequestError>,
    ) -> Result<(), RequestError> {
        self.record(|d, line| {
            r.request_entry(d, line)?;
            r.response_entry(d, outcome, line)
        })
        .await
    }

    /// Records the response or error.
    pub async fn log_response(
        &self,
        r: &Record<'_>,
        outcome: &Result<crate::core::Reply, RequestError>,
    ) -> Result<(), RequestError> {
        self.record(|d, line| r.response_entry(d, outcome, line))
            .await
    }
}

#[cfg(test)]
mod tests;
