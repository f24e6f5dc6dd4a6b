//! The `lockbox operator run` process under test: start, banner, metrics, memory and CPU.

use super::*;

// ---------------------------------------------------------------- the operator process

/// A running `lockbox operator run`, killed on drop.
pub(super) struct OperatorProc {
    pub(super) child: Child,
    pub(super) pid: u32,
    /// `https://127.0.0.1:PORT`.
    pub(super) api: String,
    /// The health server (/metrics), plain HTTP.
    pub(super) health: SocketAddr,
    pub(super) log_path: PathBuf,
}

pub(super) struct OperatorCmd<'a> {
    pub(super) bin: &'a Path,
    pub(super) kubeconfig: &'a Path,
    pub(super) data_dir: &'a Path,
    pub(super) plugin_dir: &'a Path,
    pub(super) cert: &'a Path,
    pub(super) key: &'a Path,
    pub(super) resync: &'a str,
    pub(super) log_path: PathBuf,
    pub(super) timeout: Duration,
}

impl OperatorProc {
    pub(super) async fn start(c: OperatorCmd<'_>) -> Result<Self> {
        let log = std::fs::File::create(&c.log_path)
            .map_err(|e| Error::file("creating", &c.log_path, e))?;
        let log_err = log
            .try_clone()
            .map_err(|e| Error::file("opening", &c.log_path, e))?;
        let mut cmd = Command::new(c.bin);
        cmd.args(["operator", "run", "--data-dir"])
            .arg(c.data_dir)
            .arg("--plugin-directory")
            .arg(c.plugin_dir)
            .args([
                "--api-address",
                "127.0.0.1:0",
                "--health-address",
                "127.0.0.1:0",
                "--namespace",
                OPERATOR_NS,
                "--resync-period",
                c.resync,
                "--log-format",
                "standard",
                "--tls-cert-file",
            ])
            .arg(c.cert)
            .arg("--tls-key-file")
            .arg(c.key)
            .env("KUBECONFIG", c.kubeconfig)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log_err))
            .kill_on_drop(true);
        crate::lockbox::die_with_parent(&mut cmd);
        let mut child = cmd.spawn().map_err(|source| Error::SpawnLockbox {
            binary: c.bin.to_path_buf(),
            source,
        })?;
        let fail = |what: String, seen: &str| Error::Operator {
            what,
            log_path: c.log_path.display().to_string(),
            log_tail: format!("{seen}{}", tail(&c.log_path, 40)),
        };
        let (Some(pid), Some(stdout)) = (child.id(), child.stdout.take()) else {
            return Err(fail("exited at once (no pid or stdout)".into(), ""));
        };
        let mut lines = BufReader::new(stdout).lines();
        let mut banner = Banner::default();
        let mut seen = String::new();
        let waited = tokio::time::timeout(c.timeout, async {
            while !banner.done() {
                match lines.next_line().await {
                    Ok(Some(line)) => {
                        seen.push_str(&line);
                        seen.push('\n');
                        banner.feed(&line);
                    }
                    Ok(None) => return Err("exited before printing its addresses".to_string()),
                    Err(e) => return Err(format!("reading its stdout: {e}")),
                }
            }
            Ok(())
        })
        .await;
        let problem = match waited {
            Ok(Ok(())) => None,
            Ok(Err(reason)) => Some(reason),
            Err(_) => Some(format!(
                "did not print `api address:` and `health address:` within {} s",
                c.timeout.as_secs()
            )),
        };
        if let Some(mut reason) = problem {
            let _ = child.start_kill();
            if let Ok(Ok(status)) = tokio::time::timeout(Duration::from_secs(2), child.wait()).await
            {
                let _ = write!(reason, " (exit status: {status})");
            }
            return Err(fail(reason, &seen));
        }
        // The rest of stdout goes to the log, so the operator never blocks on a full pipe.
        let mut log = tokio::fs::File::from_std(log);
        let _ = log.write_all(seen.as_bytes()).await;
        let mut rest = lines.into_inner();
        tokio::spawn(async move {
            let _ = tokio::io::copy_buf(&mut rest, &mut log).await;
        });
        let api = banner.api.unwrap_or_default();
        let health_text = banner.health.unwrap_or_default();
        let health: SocketAddr = health_text.parse().map_err(|_| {
            fail(
                format!("health address {health_text:?} is not host:port"),
                "",
            )
        })?;
        if !api.starts_with("https://") {
            return Err(fail(
                format!("api address {api:?} is not https:// (TLS flags ignored?)"),
                "",
            ));
        }
        Ok(OperatorProc {
            child,
            pid,
            api,
            health,
            log_path: c.log_path,
        })
    }

    /// An [`Error::Operator`] with the end of the log.
    pub(super) fn error(&self, what: String) -> Error {
        Error::Operator {
            what,
            log_path: self.log_path.display().to_string(),
            log_tail: tail(&self.log_path, 40),
        }
    }

    /// Fails if the operator has exited.
    pub(super) fn alive(&mut self) -> Result<()> {
        match self.child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => Err(self.error(format!("exited during the run ({status})"))),
            Err(e) => Err(self.error(format!("cannot check the process: {e}"))),
        }
    }

    /// The plugin processes it runs.
    pub(super) fn plugin_pids(&self) -> Vec<u32> {
        procfs::children_named(self.pid, PLUGIN_FILE)
    }

    /// SIGTERM (graceful: controllers, Lease, HTTP, seal), SIGKILL after 20 s.
    pub(super) async fn stop(mut self) {
        if let Ok(None) = self.child.try_wait() {
            // SAFETY: kill(2) has no memory-safety preconditions; the pid is our
            // child, which has not been reaped (try_wait just said it runs).
            unsafe {
                libc::kill(self.pid as libc::pid_t, libc::SIGTERM);
            }
            if tokio::time::timeout(Duration::from_secs(20), self.child.wait())
                .await
                .is_err()
            {
                eprintln!("warning: the operator did not stop within 20 s of SIGTERM; killing it");
                let _ = self.child.start_kill();
                let _ = self.child.wait().await;
            }
        }
    }
}

/// `GET path` over plain HTTP/1.1 (the operator's health server): status and body.
pub(super) async fn plain_get(addr: SocketAddr, path: &str) -> Result<(u16, String)> {
    use http_body_util::{BodyExt, Empty};
    let what = format!("GET http://{addr}{path}");
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|source| Error::Connect { addr, source })?;
    let http = |source| Error::Http {
        what: what.clone(),
        source,
    };
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake::<_, Empty<Bytes>>(hyper_util::rt::TokioIo::new(tcp))
            .await
            .map_err(http)?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let req = hyper::Request::builder()
        .method(Method::GET)
        .uri(path)
        .header(hyper::header::HOST, addr.to_string())
        .body(Empty::new())
        .map_err(|_| Error::BuildRequest(what.clone()))?;
    let resp = sender.send_request(req).await.map_err(http)?;
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await.map_err(http)?.to_bytes();
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

pub(super) async fn metrics(op: &OperatorProc) -> Option<String> {
    match plain_get(op.health, "/metrics").await {
        Ok((200, body)) => Some(body),
        _ => None,
    }
}

// ---------------------------------------------------------------- memory, CPU and machine load

/// Resident memory of a process from `/proc/PID/status`, KiB.
#[derive(Default, Clone, Copy)]
pub(super) struct Mem {
    pub(super) rss: Option<u64>,
    /// Heap, stacks and other private memory (`RssAnon`).
    pub(super) anon: Option<u64>,
    /// Pages of mapped files, mostly the executable's code (`RssFile`).
    pub(super) file: Option<u64>,
    /// Peak RSS over the process's life (`VmHWM`).
    pub(super) hwm: Option<u64>,
}

impl Mem {
    pub(super) fn of(pid: u32) -> Self {
        Mem {
            rss: procfs::status_kib(pid, "VmRSS"),
            anon: procfs::status_kib(pid, "RssAnon"),
            file: procfs::status_kib(pid, "RssFile"),
            hwm: procfs::status_kib(pid, "VmHWM"),
        }
    }

    /// `147.5 MB (anonymous 30.1, file-backed 117.4)`.
    pub(super) fn split(&self) -> String {
        format!(
            "{} MB (anonymous {}, file-backed {})",
            mb(self.rss),
            mb(self.anon),
            mb(self.file)
        )
    }
}

/// CPU seconds so far of the operator (with its plugin processes), kube-apiserver +
/// etcd, this process, and the whole machine.
pub(super) struct CpuSnap {
    pub(super) at: Instant,
    pub(super) operator: HashMap<u32, f64>,
    pub(super) kube: Option<f64>,
    pub(super) bench: Option<f64>,
    pub(super) busy: Option<f64>,
}

/// Average cores used over a phase.
#[derive(Default, Clone, Copy)]
pub(super) struct CpuUse {
    /// Length of the phase.
    pub(super) wall_s: f64,
    pub(super) operator: Option<f64>,
    pub(super) kube: Option<f64>,
    pub(super) bench: Option<f64>,
    /// Busy time of everything else (other programs, kernel work not charged to these).
    pub(super) other: Option<f64>,
}

impl CpuSnap {
    pub(super) fn take(op: &OperatorProc, kube_pids: &[u32]) -> Self {
        let operator = std::iter::once(op.pid)
            .chain(op.plugin_pids())
            .filter_map(|p| Some((p, cpu::process_seconds(p)?)))
            .collect();
        CpuSnap {
            at: Instant::now(),
            operator,
            kube: (!kube_pids.is_empty())
                .then(|| cpu::total_seconds(kube_pids))
                .flatten(),
            bench: cpu::process_seconds(std::process::id()),
            busy: procfs::machine_busy_seconds(),
        }
    }

    /// Cores used from `self` to `later`; a process started in between counts from its start.
    pub(super) fn until(&self, later: &CpuSnap) -> CpuUse {
        let wall = (later.at - self.at).as_secs_f64();
        if wall <= 0.0 {
            return CpuUse::default();
        }
        let per = |a: Option<f64>, b: Option<f64>| Some((b? - a?) / wall);
        let operator = (!later.operator.is_empty()).then(|| {
            later
                .operator
                .iter()
                .map(|(pid, s)| s - self.operator.get(pid).copied().unwrap_or(0.0))
                .sum::<f64>()
                / wall
        });
        let kube = per(self.kube, later.kube);
        let bench = per(self.bench, later.bench);
        let other = per(self.busy, later.busy).map(|all| {
            (all - operator.unwrap_or(0.0) - kube.unwrap_or(0.0) - bench.unwrap_or(0.0)).max(0.0)
        });
        CpuUse {
            wall_s: wall,
            operator,
            kube,
            bench,
            other,
        }
    }
}
