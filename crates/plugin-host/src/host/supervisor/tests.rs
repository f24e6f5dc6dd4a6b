//! Unit tests of [`super`]: the supervisor loop driven with a test double
//! of the job and its children under tokio's paused clock, so delays are
//! exact and no process is spawned (the real path is covered by the
//! integration tests in `tests/integration/plugins.rs`).

use super::*;
use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

/// What one launch of the fake job does.
#[derive(Debug, Clone, Copy)]
enum Launch {
    /// Starts a child that exits after running this long.
    Runs(Duration),
    /// The launch fails with this error.
    Fails(&'static str),
    /// The child starts but its mounts cannot be set up.
    SetupFails,
}
use Launch::*;

/// What the fake job saw, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Seen {
    Launched(u32),
    LaunchFailed,
    Stopped(u32),
    Event(PluginEventKind),
}

struct FakeChild {
    pid: u32,
    runs_for: Duration,
    setup_fails: bool,
    log: Arc<Mutex<Vec<(u128, Seen)>>>,
    t0: Instant,
}

impl Child for FakeChild {
    fn pid(&self) -> u32 {
        self.pid
    }

    fn exited(&self) -> impl Future<Output = String> + Send + 'static {
        let runs_for = self.runs_for;
        let pid = self.pid;
        async move {
            tokio::time::sleep(runs_for).await;
            format!("pid {pid}: exit status: 1")
        }
    }

    async fn stop(&self) {
        record(&self.log, self.t0, Seen::Stopped(self.pid));
    }
}

fn record(log: &Mutex<Vec<(u128, Seen)>>, t0: Instant, seen: Seen) {
    log.lock().unwrap().push((t0.elapsed().as_millis(), seen));
}

/// A job whose launches follow a script. It retires itself when a child
/// exits and the script is used up, or at `retire_at`.
struct FakeJob {
    t0: Instant,
    script: Mutex<VecDeque<Launch>>,
    current: Mutex<Option<Arc<FakeChild>>>,
    next_pid: Mutex<u32>,
    retire_at: Option<Duration>,
    log: Arc<Mutex<Vec<(u128, Seen)>>>,
}

impl FakeJob {
    /// A job whose first child (pid 1) runs for `first`.
    fn new(first: Duration, script: &[Launch]) -> Arc<Self> {
        let t0 = Instant::now();
        let log = Arc::new(Mutex::new(Vec::new()));
        Arc::new(Self {
            t0,
            script: Mutex::new(script.iter().copied().collect()),
            current: Mutex::new(Some(Arc::new(FakeChild {
                pid: 1,
                runs_for: first,
                setup_fails: false,
                log: log.clone(),
                t0,
            }))),
            next_pid: Mutex::new(1),
            retire_at: None,
            log,
        })
    }

    fn seen(&self) -> Vec<(u128, Seen)> {
        self.log.lock().unwrap().clone()
    }
}

impl Job for Arc<FakeJob> {
    type Child = FakeChild;

    fn label(&self) -> (&str, &str) {
        ("fake", "v1")
    }

    fn current(&self) -> Option<Arc<FakeChild>> {
        self.current.lock().unwrap().clone()
    }

    fn take_exited(&self, _reason: &str) -> bool {
        *self.current.lock().unwrap() = None;
        !self.script.lock().unwrap().is_empty() && !self.retired()
    }

    fn retired(&self) -> bool {
        self.retire_at.is_some_and(|at| self.t0.elapsed() >= at)
    }

    async fn launch(&self) -> Result<Arc<FakeChild>, String> {
        let step = self.script.lock().unwrap().pop_front();
        let (runs_for, setup_fails) = match step {
            Some(Runs(d)) => (d, false),
            Some(SetupFails) => (Duration::ZERO, true),
            Some(Fails(e)) => {
                record(&self.log, self.t0, Seen::LaunchFailed);
                return Err(e.to_string());
            }
            None => panic!("launched more often than scripted"),
        };
        let pid = {
            let mut n = self.next_pid.lock().unwrap();
            *n += 1;
            *n
        };
        record(&self.log, self.t0, Seen::Launched(pid));
        Ok(Arc::new(FakeChild {
            pid,
            runs_for,
            setup_fails,
            log: self.log.clone(),
            t0: self.t0,
        }))
    }

    async fn install(&self, child: &Arc<FakeChild>) -> Result<(), String> {
        if child.setup_fails {
            return Err("setting up its mounts after the restart failed".into());
        }
        *self.current.lock().unwrap() = Some(child.clone());
        Ok(())
    }

    async fn emit(&self, kind: PluginEventKind) {
        record(&self.log, self.t0, Seen::Event(kind));
    }
}

const BACKOFF: Backoff = Backoff {
    initial: Duration::from_millis(100),
    max: Duration::from_secs(1),
};

fn exited(pid: u32) -> Seen {
    Seen::Event(PluginEventKind::Exited {
        reason: format!("pid {pid}: exit status: 1"),
    })
}

fn restarted(pid: u32) -> Seen {
    Seen::Event(PluginEventKind::Restarted { pid })
}

fn crash_loop(failures: u32, reason: &str, next_ms: u64) -> Seen {
    Seen::Event(PluginEventKind::CrashLoop {
        failures,
        reason: reason.into(),
        next_restart: Duration::from_millis(next_ms),
    })
}

#[tokio::test(start_paused = true)]
async fn quick_exits_restart_after_doubling_delays_and_report_a_crash_loop() {
    let s = Duration::from_secs(1);
    let job = FakeJob::new(s, &[Runs(s), Runs(s), Runs(s)]);
    supervise(job.clone(), BACKOFF).await;
    assert_eq!(
        job.seen(),
        vec![
            (1000, exited(1)),
            (1100, Seen::Launched(2)),
            (1100, restarted(2)),
            (2100, exited(2)),
            (2300, Seen::Launched(3)),
            (2300, restarted(3)),
            (3300, exited(3)),
            (3300, crash_loop(3, "pid 3: exit status: 1", 400)),
            (3700, Seen::Launched(4)),
            (3700, restarted(4)),
            // pid 4 exits with the script used up: the job is retired.
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn failed_restarts_back_off_and_a_long_run_starts_over() {
    let s = Duration::from_secs(1);
    let job = FakeJob::new(
        s,
        &[
            Fails("no handshake"),
            Fails("sha256 mismatch"),
            SetupFails,
            Runs(Duration::from_secs(120)),
            Runs(s),
            Runs(s),
        ],
    );
    supervise(job.clone(), BACKOFF).await;
    assert_eq!(
        job.seen(),
        vec![
            (1000, exited(1)),
            (1100, Seen::LaunchFailed),
            (1300, Seen::LaunchFailed),
            (1300, crash_loop(3, "sha256 mismatch", 400)),
            // The process whose mounts cannot be set up is stopped.
            (1700, Seen::Launched(2)),
            (1700, Seen::Stopped(2)),
            (2500, Seen::Launched(3)),
            (2500, restarted(3)),
            // Two minutes up: the delay and the count start over.
            (122_500, exited(3)),
            (122_600, Seen::Launched(4)),
            (122_600, restarted(4)),
            (123_600, exited(4)),
            (123_800, Seen::Launched(5)),
            (123_800, restarted(5)),
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_job_retired_during_the_delay_is_not_relaunched() {
    let s = Duration::from_secs(1);
    let mut job = FakeJob::new(s, &[Runs(s)]);
    Arc::get_mut(&mut job).unwrap().retire_at = Some(Duration::from_millis(1050));
    supervise(job.clone(), BACKOFF).await;
    assert_eq!(job.seen(), vec![(1000, exited(1))]);
    assert_eq!(job.script.lock().unwrap().len(), 1, "nothing launched");
}

#[tokio::test(start_paused = true)]
async fn an_exit_of_a_retired_job_is_a_stop_not_a_crash() {
    let job = FakeJob::new(Duration::from_secs(1), &[]);
    supervise(job.clone(), BACKOFF).await;
    assert_eq!(job.seen(), vec![]);
}
