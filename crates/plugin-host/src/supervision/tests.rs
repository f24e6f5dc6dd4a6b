//! Unit tests of [`super`]: sequences of runs and failed restarts, and the
//! delays and crash-loop reports they lead to.

use super::*;

/// One thing that happens to a supervised process.
#[derive(Debug, Clone, Copy)]
enum Step {
    /// It exited after running this many seconds.
    Exit(u64),
    /// A restart failed.
    RestartFailed,
}
use Step::*;

const fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Feeds `steps` to a fresh state machine; returns (delay in ms, report).
fn run(backoff: Backoff, steps: &[Step]) -> Vec<(u128, Option<u32>)> {
    let mut s = Supervision::new(backoff);
    steps
        .iter()
        .map(|step| {
            let d = match *step {
                Exit(secs) => s.on_exit(Duration::from_secs(secs)),
                RestartFailed => s.on_restart_failed(),
            };
            (d.restart_after.as_millis(), d.crash_loop)
        })
        .collect()
}

const DEFAULT: Backoff = Backoff {
    initial: ms(100),
    max: Duration::from_secs(30),
};

#[test]
fn sequences_of_runs_give_their_delays_and_reports() {
    // (what happens, the backoff, the expected delays and reports)
    type Case = (&'static str, Backoff, Vec<Step>, Vec<(u128, Option<u32>)>);
    let cases: Vec<Case> = vec![
        (
            "quick exits double the delay; the third is a crash loop",
            DEFAULT,
            vec![Exit(1), Exit(1), Exit(1), Exit(1)],
            vec![(100, None), (200, None), (400, Some(3)), (800, None)],
        ),
        (
            "an exit at exactly the window is still quick",
            DEFAULT,
            vec![Exit(1), Exit(60), Exit(60)],
            vec![(100, None), (200, None), (400, Some(3))],
        ),
        (
            "a long run resets both the count and the delay",
            DEFAULT,
            vec![Exit(1), Exit(1), Exit(1), Exit(61), Exit(1), Exit(1)],
            vec![
                (100, None),
                (200, None),
                (400, Some(3)),
                (100, None),
                (200, None),
                (400, Some(3)),
            ],
        ),
        (
            "failed restarts double the delay and count as failures",
            DEFAULT,
            vec![Exit(1), RestartFailed, RestartFailed, RestartFailed],
            vec![(100, None), (200, None), (400, Some(3)), (800, None)],
        ),
        (
            "the exit after failed restarts takes its delay from the exits alone",
            DEFAULT,
            vec![Exit(1), RestartFailed, RestartFailed, Exit(1)],
            vec![(100, None), (200, None), (400, Some(3)), (200, None)],
        ),
        (
            "a long run after failed restarts starts over",
            DEFAULT,
            vec![Exit(1), RestartFailed, RestartFailed, Exit(3600)],
            vec![(100, None), (200, None), (400, Some(3)), (100, None)],
        ),
        (
            "delays stop at the maximum, for exits and failed restarts",
            Backoff {
                initial: ms(100),
                max: ms(500),
            },
            vec![Exit(1), Exit(1), Exit(1), Exit(1), RestartFailed, Exit(1)],
            vec![
                (100, None),
                (200, None),
                (400, Some(3)),
                (500, None),
                (500, None),
                (500, None),
            ],
        ),
        (
            "an initial delay above the maximum is cut to it",
            Backoff {
                initial: ms(900),
                max: ms(300),
            },
            vec![Exit(1), Exit(61), RestartFailed],
            vec![(300, None), (300, None), (300, None)],
        ),
    ];
    for (what, backoff, steps, want) in cases {
        assert_eq!(run(backoff, &steps), want, "{what}");
    }
}

#[test]
fn crash_loops_are_reported_at_the_threshold_then_every_tenth_failure() {
    let reported: Vec<u32> = (0..40).filter(|&f| is_crash_loop_report(f)).collect();
    assert_eq!(reported, vec![3, 13, 23, 33]);
    // The same through the state machine, exits and failed restarts mixed.
    let steps: Vec<Step> = (0..25)
        .map(|i| if i % 3 == 0 { Exit(1) } else { RestartFailed })
        .collect();
    let reports: Vec<u32> = run(DEFAULT, &steps)
        .into_iter()
        .filter_map(|(_, r)| r)
        .collect();
    assert_eq!(reports, vec![3, 13, 23]);
}

#[test]
fn the_exit_exponent_stops_at_fifteen() {
    let backoff = Backoff {
        initial: ms(1),
        max: Duration::from_secs(3600),
    };
    let delays: Vec<u128> = run(backoff, &[Exit(1); 20])
        .into_iter()
        .map(|(d, _)| d)
        .collect();
    assert_eq!(delays[15], 1 << 15);
    assert_eq!(delays[19], 1 << 15, "{delays:?}");
}

#[test]
fn huge_delays_saturate_instead_of_overflowing() {
    let backoff = Backoff {
        initial: Duration::MAX / 2,
        max: Duration::MAX,
    };
    let mut s = Supervision::new(backoff);
    for _ in 0..5 {
        s.on_exit(Duration::ZERO);
    }
    assert_eq!(s.on_restart_failed().restart_after, Duration::MAX);
    assert_eq!(s.failures(), 6);
}
