//! Phase 2: scale (many SecretsMounts to Ready) and what the API server served meanwhile.

use super::*;

// ---------------------------------------------------------------- 2. scale

pub(super) struct ScaleRun {
    pub(super) n: usize,
    /// Seconds until every POST was answered 201.
    pub(super) created_s: f64,
    /// Seconds until every mount was seen Ready, if it happened before the timeout.
    pub(super) all_ready_s: Option<f64>,
    /// First-seen-Ready seconds of each mount, sorted.
    pub(super) ready_at: Vec<f64>,
    /// Not Ready at the end, by Ready reason (empty when all were Ready).
    pub(super) not_ready: BTreeMap<String, usize>,
    /// Lists made while waiting.
    pub(super) lists: usize,
    /// Mean seconds one list took.
    pub(super) list_s: f64,
    /// Plugin processes (children with argv[0] `lockbox-plugin-mock`) once all were Ready.
    pub(super) processes: usize,
    /// The operator's `lockbox_plugin_processes` gauge, summed.
    pub(super) metric_processes: Option<f64>,
    /// Operator VmRSS before the run (KiB), and its memory at the end.
    pub(super) rss_before_kib: Option<u64>,
    pub(super) mem: Mem,
    /// Highest operator VmRSS sampled during the run (KiB).
    pub(super) rss_peak_sampled_kib: Option<u64>,
    /// Sum of the plugin processes' VmRSS (KiB).
    pub(super) plugin_rss_kib: Option<u64>,
    /// SecretsMount reconciles during the run, their total seconds, errors by reason.
    pub(super) reconciles: Option<f64>,
    pub(super) reconcile_s: Option<f64>,
    pub(super) errors: Vec<(String, f64)>,
    /// Mounts that answered a write + read afterwards, and the first failures.
    pub(super) served: usize,
    pub(super) serve_failures: Vec<String>,
    /// kube-apiserver requests for lockbox.dev objects and events during the phase.
    pub(super) kube_requests: Option<Vec<RequestRow>>,
    pub(super) cpu: CpuUse,
}

/// One line of the API server request table: verb, resource (`/subresource`),
/// requests, mean duration in seconds.
pub(super) type RequestRow = (String, String, f64, Option<f64>);

/// kube-apiserver requests for `lockbox.dev` objects and events (WATCH excluded:
/// its duration is the watch's life), from the server's `/metrics`:
/// (verb, resource[/subresource]) → (requests, duration sum, duration count).
pub(super) fn apiserver_requests(text: &str) -> BTreeMap<(String, String), [f64; 3]> {
    let key = |l: &BTreeMap<String, String>| -> Option<(String, String)> {
        let (group, resource, verb) = (l.get("group")?, l.get("resource")?, l.get("verb")?);
        if !(group == "lockbox.dev" || resource == "events") || verb == "WATCH" {
            return None;
        }
        let sub = l.get("subresource").map_or("", String::as_str);
        let resource = if sub.is_empty() {
            resource.clone()
        } else {
            format!("{resource}/{sub}")
        };
        Some((verb.clone(), resource))
    };
    let mut out: BTreeMap<(String, String), [f64; 3]> = BTreeMap::new();
    for (i, name) in [
        "apiserver_request_total",
        "apiserver_request_duration_seconds_sum",
        "apiserver_request_duration_seconds_count",
    ]
    .into_iter()
    .enumerate()
    {
        for (l, v) in metric_samples(text, name) {
            if let Some(k) = key(&l) {
                out.entry(k).or_default()[i] += v;
            }
        }
    }
    out
}

/// The requests made between two `/metrics` texts, most frequent first.
pub(super) fn request_rows(before: &str, after: &str) -> Vec<RequestRow> {
    let before = apiserver_requests(before);
    let mut rows: Vec<RequestRow> = apiserver_requests(after)
        .into_iter()
        .filter_map(|(k, a)| {
            let b = before.get(&k).copied().unwrap_or_default();
            let (n, sum, count) = (a[0] - b[0], a[1] - b[1], a[2] - b[2]);
            (n > 0.0).then(|| (k.0, k.1, n, (count > 0.0).then(|| sum / count)))
        })
        .collect();
    rows.sort_by(|x, y| {
        y.2.total_cmp(&x.2)
            .then_with(|| (&x.0, &x.1).cmp(&(&y.0, &y.1)))
    });
    rows
}

pub(super) async fn kube_metrics(ep: &Endpoint, conn: &mut Conn) -> Option<String> {
    let body = conn
        .expect(ep, Method::GET, "/metrics", Bytes::new(), &[200])
        .await
        .ok()?;
    Some(String::from_utf8_lossy(&body).into_owned())
}

pub(super) fn reconcile_errors(text: &str) -> BTreeMap<String, f64> {
    metric_samples(text, "lockbox_operator_reconcile_errors_total")
        .into_iter()
        .filter(|(l, _)| l.get("kind").map(String::as_str) == Some("SecretsMount"))
        .map(|(l, v)| (l.get("reason").cloned().unwrap_or_default(), v))
        .collect()
}

pub(super) async fn scale(w: &mut World, args: &OperatorArgs) -> Result<ScaleRun> {
    let n = args.mounts_scale;
    let metrics_before = metrics(&w.op).await.unwrap_or_default();
    let kube_before = {
        let mut c = w.kube_conn().await?;
        kube_metrics(&w.kube, &mut c).await
    };
    let rss_before_kib = procfs::status_kib(w.op.pid, "VmRSS");
    let cpu_before = CpuSnap::take(&w.op, &w.kube_pids);
    let start = Instant::now();

    // Creators: `create_concurrency` connections, each POSTing its share.
    let workers = args.create_concurrency.clamp(1, n.max(1));
    let mut creators = Vec::new();
    for k in 0..workers {
        let ep = w.kube.clone();
        let (plugins, namespaces) = (args.plugins, args.scale_namespaces);
        creators.push(tokio::spawn(async move {
            let mut conn = Conn::connect(&ep).await?;
            for i in (k..n).step_by(workers) {
                let ns = format!("{SCALE_NS}{}", i % namespaces);
                let body = secrets_mount(
                    &ns,
                    &format!("scale-{i}"),
                    &plugin_name(i % plugins),
                    "scale",
                );
                conn.expect(
                    &ep,
                    Method::POST,
                    &format!("{API}/namespaces/{ns}/secretsmounts"),
                    Bytes::from(body.to_string()),
                    &[201],
                )
                .await?;
            }
            Ok::<_, Error>(start.elapsed().as_secs_f64())
        }));
    }

    let list_path = format!("{API}/secretsmounts?labelSelector={LABEL}%3Dscale");
    let interval = Duration::from_millis(args.list_interval_ms);
    let timeout = Duration::from_secs_f64(args.scale_timeout);
    let mut conn = w.kube_conn().await?;
    let mut first_ready: HashMap<String, f64> = HashMap::new();
    let mut created_s = None;
    let (mut lists, mut list_total) = (0usize, 0.0f64);
    let mut rss_peak = rss_before_kib;
    let mut not_ready = BTreeMap::new();
    let mut all_ready_s = None;
    loop {
        w.op.alive()?;
        if created_s.is_none() && creators.iter().all(|c| c.is_finished()) {
            let mut last = 0.0f64;
            for c in creators.drain(..) {
                let t = c.await.map_err(|e| Error::Worker(e.to_string()))??;
                last = last.max(t);
            }
            created_s = Some(last);
            eprintln!("  all {n} SecretsMounts created after {last:.2} s");
        }
        let t_list = Instant::now();
        let list = w.list(&mut conn, &list_path).await?;
        let now = start.elapsed().as_secs_f64();
        lists += 1;
        list_total += t_list.elapsed().as_secs_f64();
        for o in items(&list).iter().filter(|o| is_ready(o)) {
            first_ready.entry(object_key(o)).or_insert(now);
        }
        if let Some(r) = procfs::status_kib(w.op.pid, "VmRSS") {
            rss_peak = Some(rss_peak.map_or(r, |p| p.max(r)));
        }
        if created_s.is_some() && first_ready.len() >= n {
            all_ready_s = Some(now);
            break;
        }
        if start.elapsed() > timeout {
            not_ready = not_ready_reasons(&list);
            let missing = n.saturating_sub(items(&list).len());
            if missing > 0 {
                not_ready.insert("(not created)".into(), missing);
            }
            eprintln!(
                "  timeout: {} of {n} Ready after {:.0} s; not Ready: {not_ready:?}",
                first_ready.len(),
                timeout.as_secs_f64()
            );
            break;
        }
        tokio::time::sleep(interval).await;
    }
    let cpu_after = CpuSnap::take(&w.op, &w.kube_pids);
    let processes = w.op.plugin_pids();
    let mem = Mem::of(w.op.pid);
    let plugin_rss_kib: Option<u64> = processes
        .iter()
        .map(|&p| procfs::status_kib(p, "VmRSS"))
        .sum();
    let metrics_after = metrics(&w.op).await.unwrap_or_default();
    let kube_requests = match (&kube_before, kube_metrics(&w.kube, &mut conn).await) {
        (Some(b), Some(a)) => Some(request_rows(b, &a)),
        _ => None,
    };
    let delta = |name: &str| {
        let f = [("kind", "SecretsMount")];
        Some(
            metric_sum(&metrics_after, name, &f)?
                - metric_sum(&metrics_before, name, &f).unwrap_or(0.0),
        )
    };
    let reconciles = delta("lockbox_operator_reconciles_total");
    let reconcile_s = delta("lockbox_operator_reconcile_duration_seconds_sum");
    let errors_before = reconcile_errors(&metrics_before);
    let errors: Vec<(String, f64)> = reconcile_errors(&metrics_after)
        .into_iter()
        .map(|(r, v)| {
            let d = v - errors_before.get(&r).copied().unwrap_or(0.0);
            (r, d)
        })
        .filter(|(_, d)| *d > 0.0)
        .collect();
    let metric_processes = metric_sum(&metrics_after, "lockbox_plugin_processes", &[]);
    if created_s.is_none() {
        // Timed out while still creating: wait for the creators so errors surface.
        let mut last = 0.0f64;
        for c in creators.drain(..) {
            let t = c.await.map_err(|e| Error::Worker(e.to_string()))??;
            last = last.max(t);
        }
        created_s = Some(last);
    }

    // Every Ready mount must serve.
    eprintln!("  checking a write + read through every mount");
    let (served, serve_failures) = check_all_serve(w, args).await;
    let mut ready_at: Vec<f64> = first_ready.into_values().collect();
    ready_at.sort_by(f64::total_cmp);
    Ok(ScaleRun {
        n,
        created_s: created_s.unwrap_or_default(),
        all_ready_s,
        ready_at,
        not_ready,
        lists,
        list_s: if lists > 0 {
            list_total / lists as f64
        } else {
            0.0
        },
        processes: processes.len(),
        metric_processes,
        rss_before_kib,
        mem,
        rss_peak_sampled_kib: rss_peak,
        plugin_rss_kib,
        reconciles,
        reconcile_s,
        errors,
        served,
        serve_failures,
        cpu: cpu_before.until(&cpu_after),
        kube_requests,
    })
}

/// A write + read through every scale mount (8 connections); (successes, first failures).
pub(super) async fn check_all_serve(w: &World, args: &OperatorArgs) -> (usize, Vec<String>) {
    let n = args.mounts_scale;
    let workers = n.clamp(1, 8);
    let mut tasks = Vec::new();
    for k in 0..workers {
        let ep = w.lockbox.clone();
        let namespaces = args.scale_namespaces;
        tasks.push(tokio::spawn(async move {
            let mut conn = Conn::connect(&ep).await.ok();
            let (mut ok, mut failed) = (0usize, Vec::new());
            for i in (k..n).step_by(workers) {
                let path = format!("/v1/{SCALE_NS}{}/scale-{i}/probe", i % namespaces);
                let mut served = false;
                for _ in 0..3 {
                    if write_read(&mut conn, &ep, &path, &format!("s{i}")).await {
                        served = true;
                        break;
                    }
                }
                if served {
                    ok += 1;
                } else {
                    failed.push(path);
                }
            }
            (ok, failed)
        }));
    }
    let (mut ok, mut failed) = (0, Vec::new());
    for t in tasks {
        if let Ok((o, f)) = t.await {
            ok += o;
            failed.extend(f);
        }
    }
    failed.sort();
    failed.truncate(5);
    (ok, failed)
}
