//! Small `/proc` readers shared by benchmarks that start real processes:
//! memory fields of `/proc/PID/status`, children of a process by argv[0], and
//! how busy the whole machine is (`/proc/stat`).

/// A field of `/proc/PID/status` (`"VmRSS"` → `"5352 kB"`).
pub fn status_field(pid: u32, key: &str) -> Option<String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    parse_status_field(&status, key)
}

/// The value of `key` in the text of a `/proc/PID/status` file.
pub fn parse_status_field(status: &str, key: &str) -> Option<String> {
    status.lines().find_map(|l| {
        l.strip_prefix(key)
            .and_then(|r| r.strip_prefix(':'))
            .map(|v| v.trim().to_string())
    })
}

/// A `kB` field of `/proc/PID/status`, in KiB.
pub fn status_kib(pid: u32, key: &str) -> Option<u64> {
    status_field(pid, key)?
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

/// Processes whose parent is `ppid` and whose argv[0] is `argv0`, sorted
/// (zombies excluded: they have an empty command line).
pub fn children_named(ppid: u32, argv0: &str) -> Vec<u32> {
    children_where(ppid, |a| a == argv0.as_bytes())
}

/// Processes whose parent is `ppid` and whose argv[0] is `file` or a path
/// ending in `/file` (a host that runs plugins by full path, like OpenBao),
/// sorted, zombies excluded.
pub fn children_running(ppid: u32, file: &str) -> Vec<u32> {
    children_where(ppid, |a| argv0_names_file(a, file))
}

/// Every live (non-zombie) child of `ppid`, sorted.
pub fn children(ppid: u32) -> Vec<u32> {
    children_where(ppid, |_| true)
}

/// Whether an argv[0] is `file` itself or a path whose last component is `file`.
pub fn argv0_names_file(argv0: &[u8], file: &str) -> bool {
    let file = file.as_bytes();
    argv0 == file
        || (argv0.len() > file.len()
            && argv0.ends_with(file)
            && argv0[argv0.len() - file.len() - 1] == b'/')
}

fn children_where(ppid: u32, argv0_ok: impl Fn(&[u8]) -> bool) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let ppid = ppid.to_string();
    let mut out: Vec<u32> = dir
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| status_field(pid, "PPid").as_deref() == Some(ppid.as_str()))
        .filter(|&pid| {
            std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| {
                c.split(|&b| b == 0)
                    .next()
                    .is_some_and(|a| !a.is_empty() && argv0_ok(a))
            })
        })
        .collect();
    out.sort_unstable();
    out
}

/// CPU seconds all CPUs spent busy (not idle or waiting for I/O) since boot, from `/proc/stat`.
pub fn machine_busy_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let ticks = parse_busy_ticks(&stat)?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    (hz > 0).then(|| ticks as f64 / hz as f64)
}

/// Busy ticks from the `cpu ` line of `/proc/stat`.
pub fn parse_busy_ticks(stat: &str) -> Option<u64> {
    let fields: Vec<u64> = stat
        .lines()
        .next()?
        .strip_prefix("cpu ")?
        .split_whitespace()
        .map(|v| v.parse().ok())
        .collect::<Option<_>>()?;
    // user nice system idle iowait irq softirq steal [guest guest_nice: already in user/nice]
    let all: u64 = fields.iter().take(8).sum();
    Some(all - fields.get(3)? - fields.get(4)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_fields() {
        let text = "Name:\tlockbox\nPPid:\t12\nVmHWM:\t   90120 kB\nVmRSS:\t   80000 kB\n";
        assert_eq!(parse_status_field(text, "PPid").as_deref(), Some("12"));
        assert_eq!(
            parse_status_field(text, "VmRSS").as_deref(),
            Some("80000 kB")
        );
        assert_eq!(parse_status_field(text, "VmSwap"), None);
        // `VmRSS` must not match a longer key with the same start.
        assert_eq!(parse_status_field("VmRSSx:\t1 kB\n", "VmRSS"), None);
    }

    #[test]
    fn own_status_and_no_children() {
        let me = std::process::id();
        assert!(status_kib(me, "VmRSS").is_some_and(|k| k > 0));
        assert!(children_named(me, "surely-no-such-program").is_empty());
    }

    #[test]
    fn argv0_matches_a_file_name_or_a_path_ending_in_it() {
        assert!(argv0_names_file(b"kv-upstream", "kv-upstream"));
        assert!(argv0_names_file(
            b"/tmp/x/plugins/kv-upstream",
            "kv-upstream"
        ));
        assert!(!argv0_names_file(
            b"/tmp/x/plugins/my-kv-upstream",
            "kv-upstream"
        ));
        assert!(!argv0_names_file(b"kv-upstream-2", "kv-upstream"));
        assert!(!argv0_names_file(b"upstream", "kv-upstream"));
    }

    #[test]
    fn busy_ticks_exclude_idle_and_iowait() {
        let stat = "cpu  100 5 50 1000 20 3 2 1 7 0\ncpu0 1 2 3 4 5 6 7 8 9 10\n";
        assert_eq!(parse_busy_ticks(stat), Some(100 + 5 + 50 + 3 + 2 + 1));
        assert_eq!(parse_busy_ticks("intr 1 2\n"), None);
    }
}
