//! Pure helpers of the operator benchmark: quantiles, readiness and metrics parsing, the objects it creates.

use super::*;

/// Nearest-rank quantile of `v` (unsorted), `None` when empty.
pub(super) fn quantile(v: &[f64], q: f64) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let rank = ((q * s.len() as f64).ceil() as usize).clamp(1, s.len());
    Some(s[rank - 1])
}

/// The time at which `frac` of `n` objects were Ready, from the sorted
/// first-seen-Ready times; `None` if fewer were.
pub(super) fn time_to_fraction(ready_at_sorted: &[f64], n: usize, frac: f64) -> Option<f64> {
    let k = ((frac * n as f64).ceil() as usize).max(1);
    ready_at_sorted.get(k - 1).copied()
}

/// What `lockbox operator run` prints on stdout once it serves.
#[derive(Debug, Default, PartialEq)]
pub(super) struct Banner {
    /// `api address: https://127.0.0.1:PORT`.
    pub(super) api: Option<String>,
    /// `health address: 127.0.0.1:PORT`.
    pub(super) health: Option<String>,
}

impl Banner {
    pub(super) fn feed(&mut self, line: &str) {
        let t = line.trim();
        if let Some(a) = t.strip_prefix("api address:") {
            self.api = Some(a.trim().to_string());
        } else if let Some(h) = t.strip_prefix("health address:") {
            self.health = Some(h.trim().to_string());
        }
    }

    pub(super) fn done(&self) -> bool {
        self.api.is_some() && self.health.is_some()
    }
}

/// Whether a custom resource has condition `Ready=True`.
pub(super) fn is_ready(obj: &Value) -> bool {
    condition(obj, "Ready").is_some_and(|c| c.get("status").and_then(Value::as_str) == Some("True"))
}

pub(super) fn condition<'a>(obj: &'a Value, kind: &str) -> Option<&'a Value> {
    obj.pointer("/status/conditions")?
        .as_array()?
        .iter()
        .find(|c| c.get("type").and_then(Value::as_str) == Some(kind))
}

/// `namespace/name` (or `name`) of a listed object.
pub(super) fn object_key(obj: &Value) -> String {
    let name = obj
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("?");
    match obj.pointer("/metadata/namespace").and_then(Value::as_str) {
        Some(ns) => format!("{ns}/{name}"),
        None => name.to_string(),
    }
}

/// The items of a list answer.
pub(super) fn items(list: &Value) -> &[Value] {
    list.get("items")
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

/// How many listed objects are not Ready, by their Ready reason (`(none)` without status).
pub(super) fn not_ready_reasons(list: &Value) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for o in items(list).iter().filter(|o| !is_ready(o)) {
        let reason = condition(o, "Ready")
            .and_then(|c| c.get("reason"))
            .and_then(Value::as_str)
            .unwrap_or("(no status yet)");
        *out.entry(reason.to_string()).or_default() += 1;
    }
    out
}

/// One sample of a Prometheus text exposition: labels and value.
pub(super) type MetricSample = (BTreeMap<String, String>, f64);

/// Every sample of metric `name` in a Prometheus text exposition.
pub(super) fn metric_samples(text: &str, name: &str) -> Vec<MetricSample> {
    let mut out = Vec::new();
    for line in text.lines() {
        if line.starts_with('#') {
            continue;
        }
        let Some(rest) = line.strip_prefix(name) else {
            continue;
        };
        let (labels, value) = if let Some(r) = rest.strip_prefix('{') {
            let Some((l, v)) = r.rsplit_once('}') else {
                continue;
            };
            (parse_labels(l), v)
        } else if rest.starts_with(' ') {
            (BTreeMap::new(), rest)
        } else {
            continue; // a longer name with the same start
        };
        if let Ok(v) = value.trim().parse::<f64>() {
            out.push((labels, v));
        }
    }
    out
}

/// `a="x",b="y\"z"` → {a: x, b: y"z}.
pub(super) fn parse_labels(s: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut rest = s;
    while let Some((key, after)) = rest.split_once("=\"") {
        let mut value = String::new();
        let mut chars = after.char_indices();
        let mut end = after.len();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, o)) => value.push(o),
                    None => {}
                },
                '"' => {
                    end = i + 1;
                    break;
                }
                o => value.push(o),
            }
        }
        out.insert(key.trim_start_matches(',').trim().to_string(), value);
        rest = &after[end..];
    }
    out
}

/// Sum of the samples of `name` whose labels include all of `filter`.
pub(super) fn metric_sum(text: &str, name: &str, filter: &[(&str, &str)]) -> Option<f64> {
    let matching: Vec<f64> = metric_samples(text, name)
        .into_iter()
        .filter(|(l, _)| {
            filter
                .iter()
                .all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|(_, v)| v)
        .collect();
    (!matching.is_empty()).then(|| matching.iter().sum())
}

pub(super) fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .fold(String::new(), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

pub(super) fn catalog_entry(name: &str, sha: &str) -> Value {
    json!({
        "apiVersion": "lockbox.dev/v1alpha1",
        "kind": "PluginCatalogEntry",
        "metadata": { "name": name, "labels": { LABEL: "catalog" } },
        "spec": {
            "type": "secret",
            "version": PLUGIN_VERSION,
            "binary": { "path": PLUGIN_FILE, "sha256": sha },
        },
    })
}

pub(super) fn secrets_mount(ns: &str, name: &str, plugin: &str, phase: &str) -> Value {
    json!({
        "apiVersion": "lockbox.dev/v1alpha1",
        "kind": "SecretsMount",
        "metadata": { "name": name, "namespace": ns, "labels": { LABEL: phase } },
        "spec": { "plugin": plugin },
    })
}

pub(super) fn plugin_name(i: usize) -> String {
    format!("mock-{i}")
}

pub(super) fn parse_json(body: &[u8], what: &str) -> Result<Value> {
    serde_json::from_slice(body).map_err(|e| Error::UnexpectedBody {
        what: what.to_string(),
        reason: format!("not JSON: {e}"),
    })
}

/// The last `n` lines of a file.
pub(super) fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
