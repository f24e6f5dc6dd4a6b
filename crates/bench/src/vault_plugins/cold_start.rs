//! Phase 3: cold starts of the Go plugin under both hosts (enable a mount
//! of an entry no other mount uses; reload the kv v2 mount), each measured to
//! the first request the plugin serves.

use super::*;

/// Durations in milliseconds.
#[derive(Default)]
pub(crate) struct Samples(pub(crate) Vec<f64>);

impl Samples {
    pub(crate) fn push(&mut self, d: Duration) {
        self.0.push(d.as_secs_f64() * 1000.0);
    }

    fn sorted(&self) -> Vec<f64> {
        let mut v = self.0.clone();
        v.sort_by(f64::total_cmp);
        v
    }

    /// The median (mean of the two middle samples for an even count).
    pub(crate) fn median(&self) -> Option<f64> {
        let v = self.sorted();
        let n = v.len();
        match n {
            0 => None,
            _ if n % 2 == 1 => Some(v[n / 2]),
            _ => Some((v[n / 2 - 1] + v[n / 2]) / 2.0),
        }
    }

    pub(crate) fn min(&self) -> Option<f64> {
        self.sorted().first().copied()
    }

    pub(crate) fn max(&self) -> Option<f64> {
        self.sorted().last().copied()
    }
}

/// Cold starts of the Go plugin under one host.
#[derive(Default)]
pub(crate) struct Cold {
    /// `POST sys/mounts/<fresh>` of `kv-cold` (returns once the host has set it up).
    pub(crate) enable: Samples,
    /// From that POST to the first answer of the new mount (404 for a missing key).
    pub(crate) enable_first: Samples,
    /// Enables after which exactly one more plugin process ran.
    pub(crate) new_process: usize,
    /// `PUT sys/plugins/reload/backend` of the kv v2 plugin.
    pub(crate) reload: Samples,
    /// From that PUT to the first 200 read of `kvx/`.
    pub(crate) reload_first: Samples,
    /// Reads answered with something else before the first served one.
    pub(crate) not_ready: usize,
}

/// Launch steps on the plugin file, timed in the load generator for
/// orientation: what both hosts do before exec (read + sha256), and what only
/// lockbox does (copy the verified bytes into a memfd and exec that).
#[derive(Default)]
pub(crate) struct Steps {
    pub(crate) bytes: u64,
    pub(crate) hash: Samples,
    pub(crate) memfd: Samples,
}

pub(crate) fn launch_steps(bin: &Path, n: usize) -> Result<Steps> {
    let mut out = Steps::default();
    for _ in 0..n {
        let t0 = Instant::now();
        let bytes = read_file(bin)?;
        let _ = crate::plugins::cold_start::sha256_hex(&bytes);
        out.hash.push(t0.elapsed());
        out.bytes = bytes.len() as u64;
        let t0 = Instant::now();
        let memfd = crate::plugins::cold_start::memfd_with(&bytes)
            .map_err(|e| Error::file("copying into a memfd", bin, e))?;
        out.memfd.push(t0.elapsed());
        drop(memfd);
    }
    Ok(out)
}

/// Sends `GET path` until it answers one of `served` (the plugin answered);
/// returns when, and how many answers before were something else.
pub(super) async fn first_served(
    conn: &mut Conn,
    ep: &Endpoint,
    path: &str,
    served: &[u16],
) -> Result<(Instant, usize)> {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut other = 0;
    loop {
        let (status, body) = conn.send(ep, Method::GET, path, Bytes::new()).await?;
        if served.contains(&status.as_u16()) {
            return Ok((Instant::now(), other));
        }
        other += 1;
        if Instant::now() > deadline {
            return Err(Error::UnexpectedStatus {
                what: format!("GET {path} (first request after a cold start)"),
                expected: served.first().copied().unwrap_or(200),
                status: status.as_u16(),
                body: http::snippet(&body),
            });
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

pub(super) async fn cold_enable(
    host: &Host,
    conn: &mut Conn,
    i: usize,
    out: &mut Cold,
) -> Result<()> {
    let ep = &host.ep;
    let mount = format!("cold-{i}");
    let before = host.kv_pids();
    let t0 = Instant::now();
    conn.expect(
        ep,
        Method::POST,
        &format!("/v1/sys/mounts/{mount}"),
        Bytes::from(serde_json::json!({ "type": COLD_NAME }).to_string()),
        &[204, 200],
    )
    .await?;
    out.enable.push(t0.elapsed());
    // kv (version 1 mode: no options) answers 404 for a key it does not hold.
    let (t1, other) = first_served(conn, ep, &format!("/v1/{mount}/probe"), &[404, 200]).await?;
    out.enable_first.push(t1 - t0);
    out.not_ready += other;
    let after = host.kv_pids();
    if after.iter().filter(|p| !before.contains(p)).count() == 1 {
        out.new_process += 1;
    }
    conn.expect(
        ep,
        Method::DELETE,
        &format!("/v1/sys/mounts/{mount}"),
        Bytes::new(),
        &[204, 200],
    )
    .await?;
    Ok(())
}

pub(super) async fn cold_reload(host: &Host, conn: &mut Conn, out: &mut Cold) -> Result<()> {
    let ep = &host.ep;
    let t0 = Instant::now();
    conn.expect(
        ep,
        Method::PUT,
        "/v1/sys/plugins/reload/backend",
        // By mount on both hosts: lockbox refuses `{"plugin":"kv"}` while
        // `secret/` (built-in kv version 1, type `kv` too) exists.
        Bytes::from(serde_json::json!({ "mounts": [KV_MOUNT] }).to_string()),
        &[200, 204],
    )
    .await?;
    out.reload.push(t0.elapsed());
    let (t1, other) = first_served(conn, ep, &v2_key_path(0), &[200]).await?;
    out.reload_first.push(t1 - t0);
    out.not_ready += other;
    Ok(())
}

/// Alternates the hosts sample by sample, so drift on a shared machine hits both.
pub(super) async fn cold_starts(hosts: [&Host; 2], n: usize) -> Result<[Cold; 2]> {
    let mut out = [Cold::default(), Cold::default()];
    let mut conns = [
        Conn::connect(&hosts[0].ep).await?,
        Conn::connect(&hosts[1].ep).await?,
    ];
    eprintln!("  {n} × enable a mount of {COLD_NAME} → first answer, per host");
    for i in 0..n {
        for h in 0..2 {
            cold_enable(hosts[h], &mut conns[h], i, &mut out[h]).await?;
            // Let the disabled mount's process exit before the next sample.
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    eprintln!("  {n} × reload the kv v2 plugin → first 200 read, per host");
    for _ in 0..n {
        for h in 0..2 {
            cold_reload(hosts[h], &mut conns[h], &mut out[h]).await?;
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    Ok(out)
}
