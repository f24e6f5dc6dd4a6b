//! CPU time of processes from `/proc/PID/stat`, to show how much of the shared
//! machine the servers and the load generator each used during a run:
//! [`Sample`] (a client and one server group), [`Usage`] (several groups,
//! process trees such as PostgreSQL's, this process and the rest of the machine).

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

/// A CPU-time sample of groups of processes, this process and the machine.
pub struct Usage {
    at: Instant,
    /// Per group, each process's CPU seconds (if readable).
    groups: Vec<Vec<(u32, Option<f64>)>>,
    /// Per process tree, [`tree_seconds`] of its root.
    trees: Vec<Option<f64>>,
    me: Option<f64>,
    machine: Option<f64>,
}

impl Usage {
    pub fn take(groups: &[&[u32]]) -> Self {
        Self::with_trees(groups, &[])
    }

    /// Like [`Usage::take`], plus process trees (a root and its children, reaped ones included).
    pub fn with_trees(groups: &[&[u32]], roots: &[Option<u32>]) -> Self {
        Usage {
            trees: roots.iter().map(|r| r.and_then(tree_seconds)).collect(),
            at: Instant::now(),
            groups: groups
                .iter()
                .map(|g| g.iter().map(|&p| (p, process_seconds(p))).collect())
                .collect(),
            me: process_seconds(std::process::id()),
            machine: crate::procfs::machine_busy_seconds(),
        }
    }

    /// Average cores between the samples: each group (its processes readable
    /// at both samples; `None` for an empty group), each tree, this process,
    /// then the rest of the machine (busy time not charged to any of them).
    pub fn cores_until(&self, later: &Usage) -> Vec<Option<f64>> {
        let wall = (later.at - self.at).as_secs_f64();
        let per = |a: Option<f64>, b: Option<f64>| match (a, b) {
            (Some(a), Some(b)) if wall > 0.0 => Some((b - a) / wall),
            _ => None,
        };
        let mut out: Vec<Option<f64>> = self
            .groups
            .iter()
            .zip(&later.groups)
            .map(|(a, b)| {
                let both: Vec<f64> = a
                    .iter()
                    .zip(b)
                    .filter_map(|((pa, sa), (pb, sb))| (pa == pb).then(|| per(*sa, *sb)).flatten())
                    .collect();
                (!both.is_empty()).then(|| both.iter().sum())
            })
            .collect();
        out.extend(
            self.trees
                .iter()
                .zip(&later.trees)
                .map(|(a, b)| per(*a, *b)),
        );
        out.push(per(self.me, later.me));
        let ours: f64 = out.iter().flatten().sum();
        out.push(per(self.machine, later.machine).map(|all| (all - ours).max(0.0)));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn reads_own_cpu_time() {
        let s = process_seconds(std::process::id());
        assert!(s.is_some_and(|v| v >= 0.0));
    }

    #[test]
    fn usage_counts_this_process_and_the_rest_of_the_machine() {
        let me = std::process::id();
        let a = Usage::with_trees(&[&[me], &[]], &[Some(me), None]);
        let spin = Instant::now();
        while spin.elapsed() < Duration::from_millis(30) {
            std::hint::black_box(0u64);
        }
        let c = a.cores_until(&Usage::with_trees(&[&[me], &[]], &[Some(me), None]));
        // group, empty group, tree, missing tree, this process, other load
        assert_eq!(c.len(), 6);
        assert!(c[0].is_some() && c[1].is_none() && c[2].is_some() && c[3].is_none());
        assert!(c[4].is_some_and(|v| v >= 0.0));
    }
}
