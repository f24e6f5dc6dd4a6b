//! Unit tests of [`super`].

use super::*;

#[test]
fn nearest_rank_quantiles() {
    let mut s = Samples::default();
    for ms in 1..=100u64 {
        s.push(Duration::from_millis(ms));
    }
    assert_eq!(s.quantile(0.5), Some(50.0));
    assert_eq!(s.quantile(0.99), Some(99.0));
    assert_eq!(s.quantile(1.0), Some(100.0));
    assert_eq!(Samples::default().quantile(0.5), None);
}

#[test]
fn finds_own_status_and_children() {
    let me = std::process::id();
    assert!(status_kib(me, "VmRSS").is_some_and(|k| k > 0));
    let mut child = std::process::Command::new("sleep")
        .arg("5")
        .spawn()
        .expect("sleep runs");
    // A vfork parent resumes before the kernel has set the child's new
    // argv (exec_mmap runs before the ELF tables are built), so the
    // child's cmdline can read empty for a moment: poll, as the bench does.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let mut found = children_named(me, "sleep");
    while found.is_empty() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
        found = children_named(me, "sleep");
    }
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(found, vec![child.id()]);
}

#[test]
fn seconds_are_short() {
    assert_eq!(secs(2.0), "2");
    assert_eq!(secs(0.5), "0.5");
    assert_eq!(secs(10.25), "10.25");
}

#[test]
fn sha256_hex_matches_known_digest() {
    assert_eq!(
        sha256_hex(b"abc"),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
}
