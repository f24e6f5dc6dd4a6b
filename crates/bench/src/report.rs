//! Results as a markdown table, machine facts, and rewriting one marked section
//! of BENCHMARKS.md so other benchmarks can own other sections.

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::error::{Error, Result};
use crate::load::Outcome;

/// Start marker of the section this benchmark owns.
pub const BEGIN: &str = "<!-- kv-http:begin -->";
/// End marker of the section this benchmark owns.
pub const END: &str = "<!-- kv-http:end -->";

/// One line of the results table.
pub struct Row {
    /// "lockbox" or "kube-apiserver".
    pub target: &'static str,
    /// "read" or "write".
    pub op: &'static str,
    /// Number of connections, each with one request in flight.
    pub concurrency: usize,
    /// The measurements.
    pub outcome: Outcome,
    /// Average CPU cores the load generator used (warm-up included).
    pub client_cores: Option<f64>,
    /// Average CPU cores the server processes used (warm-up included).
    pub server_cores: Option<f64>,
}

impl Row {
    /// Adds `other`, another window of the same target, operation and
    /// concurrency: the outcomes merge, CPU averages weigh by window.
    pub fn absorb(&mut self, other: Row) {
        let (a, b) = (
            self.outcome.window.as_secs_f64(),
            other.outcome.window.as_secs_f64(),
        );
        let avg = |x: Option<f64>, y: Option<f64>| match (x, y) {
            (Some(x), Some(y)) if a + b > 0.0 => Some((x * a + y * b) / (a + b)),
            _ => None,
        };
        self.client_cores = avg(self.client_cores, other.client_cores);
        self.server_cores = avg(self.server_cores, other.server_cores);
        self.outcome.absorb(other.outcome);
    }
}

/// Facts about the machine and the software under test.
pub struct Context {
    /// UTC date and time of the run.
    pub date: String,
    /// CPUs available to this process.
    pub nproc: usize,
    /// From /proc/cpuinfo.
    pub cpu_model: String,
    /// From /proc/meminfo.
    pub memory: String,
    /// 1/5/15-minute load average before the run.
    pub loadavg: String,
    /// `git rev-parse --short HEAD` of the workspace, `-dirty` if it has changes.
    pub commit: String,
    /// What the lockbox server says it is.
    pub lockbox_version: String,
    /// `gitVersion` of the kube-apiserver.
    pub kube_version: String,
    /// Where the kube-apiserver came from.
    pub kube_source: String,
    /// The settings of the run.
    pub settings: String,
    /// The command line that produced this.
    pub command: String,
}

/// Collects machine facts that need no server.
pub fn machine(repo: &Path) -> (usize, String, String, String, String) {
    let nproc = std::thread::available_parallelism().map_or(1, |n| n.get());
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu_model = cpuinfo
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")
                .and_then(|r| r.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let memory = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or_else(
            || "unknown".into(),
            |kb| format!("{:.1} GiB", kb as f64 / 1048576.0),
        );
    let loadavg = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|| "unknown".into());
    (nproc, cpu_model, memory, loadavg, git_commit(repo))
}

fn git_commit(repo: &Path) -> String {
    let run = |args: &[&str]| {
        Command::new("git")
            .arg("-C")
            .arg(repo)
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let Some(head) = run(&["rev-parse", "--short=12", "HEAD"]) else {
        return "unknown (no commit)".into();
    };
    // Only tracked changes count (the report file itself is excluded).
    let dirty = run(&[
        "status",
        "--porcelain",
        "--untracked-files=no",
        "--",
        ".",
        ":!BENCHMARKS.md",
    ])
    .is_some_and(|s| !s.is_empty());
    if dirty { format!("{head}-dirty") } else { head }
}

/// The current UTC time as `YYYY-MM-DD HH:MM UTC`.
pub fn utc_now() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60
    )
}

/// Milliseconds with 3 significant digits or so.
pub fn ms(v: f64) -> String {
    if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// The results table in markdown.
pub fn table(rows: &[Row]) -> String {
    let mut s = String::new();
    s.push_str(
        "| target | operation | concurrency | requests | throughput (req/s) | p50 (ms) | p99 (ms) | errors | response (B) | server CPU (cores) | client CPU (cores) |\n",
    );
    s.push_str("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    let cores = |c: Option<f64>| c.map_or_else(|| "-".to_string(), |c| format!("{c:.2}"));
    for r in rows {
        let o = &r.outcome;
        let errors = if o.errors == 0 {
            "0".to_string()
        } else {
            let kinds: Vec<String> = o
                .error_kinds
                .iter()
                .map(|(k, v)| format!("{v}× {k}"))
                .collect();
            format!("**{}** ({})", o.errors, kinds.join(", "))
        };
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {:.0} | {} | {} | {} | {} | {} | {} |",
            r.target,
            r.op,
            r.concurrency,
            o.ok + o.errors,
            o.throughput(),
            ms(o.quantile_ms(0.50)),
            ms(o.quantile_ms(0.99)),
            errors,
            o.body_bytes.checked_div(o.ok).unwrap_or(0),
            cores(r.server_cores),
            cores(r.client_cores)
        );
    }
    s
}

/// Throughput of `target`/`op` at `concurrency`, if measured.
pub fn throughput(rows: &[Row], target: &str, op: &str, concurrency: usize) -> Option<f64> {
    rows.iter()
        .find(|r| r.target == target && r.op == op && r.concurrency == concurrency)
        .map(|r| r.outcome.throughput())
}

/// Lines comparing lockbox reads with kube-apiserver reads at each concurrency.
pub fn ratios(rows: &[Row], target_ratio: f64) -> String {
    let mut s = String::new();
    let mut levels: Vec<usize> = rows.iter().map(|r| r.concurrency).collect();
    levels.sort_unstable();
    levels.dedup();
    for c in levels {
        if let (Some(l), Some(k)) = (
            throughput(rows, "lockbox", "read", c),
            throughput(rows, "kube-apiserver", "read", c),
        ) && k > 0.0
        {
            let ratio = l / k;
            let verdict = if c == 16 {
                if ratio >= target_ratio {
                    format!(" (target ≥ {target_ratio}x: met)")
                } else {
                    format!(" (target ≥ {target_ratio}x: **not met**)")
                }
            } else {
                String::new()
            };
            let _ = writeln!(
                s,
                "- reads at concurrency {c}: lockbox / kube-apiserver = **{ratio:.1}x**{verdict}"
            );
        }
    }
    s
}

/// The whole section, markers included.
pub fn section(ctx: &Context, rows: &[Row], target_ratio: f64) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "{BEGIN}");
    let _ = writeln!(
        s,
        "<!-- Generated by `lockbox-bench kv`; edits here are overwritten. -->"
    );
    let _ = writeln!(s, "### kv over HTTPS: lockbox vs kube-apiserver Secrets\n");
    let _ = writeln!(s, "- date: {}", ctx.date);
    let _ = writeln!(
        s,
        "- machine: {} CPUs ({}), {} RAM, load average before the run {}",
        ctx.nproc, ctx.cpu_model, ctx.memory, ctx.loadavg
    );
    let _ = writeln!(
        s,
        "- lockbox: commit {} ({})",
        ctx.commit, ctx.lockbox_version
    );
    let _ = writeln!(
        s,
        "- kube-apiserver: {} from {}",
        ctx.kube_version, ctx.kube_source
    );
    let _ = writeln!(s, "- settings: {}", ctx.settings);
    let _ = writeln!(s, "- command: `{}`\n", ctx.command);
    s.push_str(&table(rows));
    s.push('\n');
    let r = ratios(rows, target_ratio);
    if !r.is_empty() {
        s.push_str(&r);
        s.push('\n');
    }
    if rows.iter().any(|r| r.outcome.errors > 0) {
        s.push_str("**Warning:** some runs had errors (non-2xx answers or broken connections); their numbers are suspect.\n\n");
    }
    let _ = writeln!(s, "{END}");
    s
}

/// The begin and end markers of one section of a shared markdown file.
#[derive(Clone, Copy)]
pub struct Markers {
    /// `<!-- NAME:begin -->`.
    pub begin: &'static str,
    /// `<!-- NAME:end -->`.
    pub end: &'static str,
}

/// The section `lockbox-bench kv` owns.
pub const KV_MARKERS: Markers = Markers {
    begin: BEGIN,
    end: END,
};

/// Replaces the text between `m.begin` and `m.end` (inclusive) in `doc` with
/// `section`. When the markers are missing, `section` goes right after the
/// section marked by `after` if that one exists, else at the end.
pub fn splice(doc: &str, m: Markers, section: &str, after: Option<Markers>) -> Result<String> {
    match (doc.find(m.begin), doc.find(m.end)) {
        (Some(b), Some(e)) if e > b => {
            let rest = &doc[e + m.end.len()..];
            let rest = rest.strip_prefix('\n').unwrap_or(rest);
            Ok(format!("{}{}{}", &doc[..b], section, rest))
        }
        (None, None) => {
            let anchor = after.and_then(|a| match (doc.find(a.begin), doc.find(a.end)) {
                (Some(b), Some(e)) if e > b => Some(e + a.end.len()),
                _ => None,
            });
            match anchor {
                Some(pos) => {
                    let head = &doc[..pos];
                    let rest = &doc[pos..];
                    let rest = rest.strip_prefix('\n').unwrap_or(rest);
                    let sep = if rest.is_empty() || rest.starts_with('\n') {
                        ""
                    } else {
                        "\n"
                    };
                    Ok(format!("{head}\n\n{section}{sep}{rest}"))
                }
                None => {
                    let mut out = doc.to_string();
                    if !out.is_empty() && !out.ends_with("\n\n") {
                        out.push_str(if out.ends_with('\n') { "\n" } else { "\n\n" });
                    }
                    out.push_str(section);
                    Ok(out)
                }
            }
        }
        _ => Err(Error::InvalidArgument(format!(
            "the markdown file has a broken {} … {} pair",
            m.begin, m.end
        ))),
    }
}

/// Rewrites the section marked by `m` in `path` (creating the file if needed);
/// see [`splice`] for where a new section goes.
pub fn write_section(path: &Path, m: Markers, section: &str, after: Option<Markers>) -> Result<()> {
    let doc = match std::fs::read_to_string(path) {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(Error::file("reading", path, e)),
    };
    let out = splice(&doc, m, section, after)?;
    std::fs::write(path, out).map_err(|e| Error::file("writing", path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splice_replaces_only_the_marked_section() {
        let doc = format!(
            "# B\n\nintro\n\n{BEGIN}\nold\n{END}\n\n<!-- other:begin -->\nx\n<!-- other:end -->\n"
        );
        let new = format!("{BEGIN}\nnew\n{END}\n");
        let out = splice(&doc, KV_MARKERS, &new, None).expect("markers present");
        assert_eq!(
            out,
            format!(
                "# B\n\nintro\n\n{BEGIN}\nnew\n{END}\n\n<!-- other:begin -->\nx\n<!-- other:end -->\n"
            )
        );
    }

    #[test]
    fn splice_appends_without_markers_and_rejects_half_pairs() {
        let new = format!("{BEGIN}\nnew\n{END}\n");
        assert_eq!(
            splice("# B\n", KV_MARKERS, &new, None).expect("appends"),
            format!("# B\n\n{new}")
        );
        assert!(splice(&format!("{BEGIN}\n"), KV_MARKERS, &new, None).is_err());
    }

    #[test]
    fn splice_inserts_a_new_section_after_another() {
        const P: Markers = Markers {
            begin: "<!-- p:begin -->",
            end: "<!-- p:end -->",
        };
        let new = "<!-- p:begin -->\nnew\n<!-- p:end -->\n";
        let kv = format!("{BEGIN}\nold\n{END}\n");
        // kv section last in the file
        let out = splice(&format!("# B\n\n{kv}"), P, new, Some(KV_MARKERS)).expect("inserts");
        assert_eq!(out, format!("# B\n\n{kv}\n{new}"));
        // something after the kv section stays after the new one
        let out =
            splice(&format!("# B\n\n{kv}\n## Next\n"), P, new, Some(KV_MARKERS)).expect("inserts");
        assert_eq!(out, format!("# B\n\n{kv}\n{new}\n## Next\n"));
        // and a second run replaces it in place
        let again = splice(
            &out,
            P,
            "<!-- p:begin -->\nx\n<!-- p:end -->\n",
            Some(KV_MARKERS),
        )
        .expect("replaces");
        assert_eq!(
            again,
            format!("# B\n\n{kv}\n<!-- p:begin -->\nx\n<!-- p:end -->\n\n## Next\n")
        );
        // no kv section: appended
        assert_eq!(
            splice("# B\n", P, new, Some(KV_MARKERS)).expect("appends"),
            format!("# B\n\n{new}")
        );
    }

    #[test]
    fn utc_date_is_well_formed() {
        let d = utc_now();
        assert_eq!(d.len(), "2025-01-01 00:00 UTC".len());
        assert!(d.ends_with(" UTC"));
    }
}
