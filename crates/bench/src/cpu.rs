//! CPU time of processes from `/proc/PID/stat`, to show how much of the shared
//! machine the servers and the load generator each used during a run.

use std::time::Instant;

/// User + system CPU seconds consumed so far by `pid` (`None` if unreadable).
pub fn process_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which is in parentheses and may contain spaces.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the full line, 12 and 13 here (0-based 11, 12).
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks <= 0 {
        return None;
    }
    Some((utime + stime) as f64 / ticks as f64)
}

/// CPU seconds of a process tree one level deep: `pid` itself, the children
/// it has reaped (`cutime` + `cstime`), and its live children. The difference
/// of two samples counts children that came and went in between (e.g.
/// PostgreSQL backends of short connections), which sampling each process
/// would miss.
pub fn tree_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime, stime, cutime, cstime: fields 14-17 of the full line, 0-based 11-14 here.
    let mut ticks = 0u64;
    for i in 11..=14 {
        ticks += fields.get(i)?.parse::<u64>().ok()?;
    }
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if hz <= 0 {
        return None;
    }
    let live: f64 = crate::procfs::children(pid)
        .into_iter()
        .filter_map(process_seconds)
        .sum();
    Some(ticks as f64 / hz as f64 + live)
}

/// Total CPU seconds of a set of processes (`None` if any is unreadable).
pub fn total_seconds(pids: &[u32]) -> Option<f64> {
    pids.iter().map(|&p| process_seconds(p)).sum()
}

/// A CPU-time sample of this process and a set of server processes.
pub struct Sample {
    at: Instant,
    client: Option<f64>,
    server: Option<f64>,
}

impl Sample {
    /// Samples now.
    pub fn take(server_pids: &[u32]) -> Self {
        Sample {
            at: Instant::now(),
            client: process_seconds(std::process::id()),
            server: if server_pids.is_empty() {
                None
            } else {
                total_seconds(server_pids)
            },
        }
    }

    /// Average cores used by (client, server) between `self` and `later`.
    pub fn cores_until(&self, later: &Sample) -> (Option<f64>, Option<f64>) {
        let wall = (later.at - self.at).as_secs_f64();
        if wall <= 0.0 {
            return (None, None);
        }
        let per = |a: Option<f64>, b: Option<f64>| Some((b? - a?) / wall);
        (
            per(self.client, later.client),
            per(self.server, later.server),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_own_cpu_time() {
        let s = process_seconds(std::process::id());
        assert!(s.is_some_and(|v| v >= 0.0));
    }
}
