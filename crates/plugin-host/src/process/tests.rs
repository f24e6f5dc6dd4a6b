//! Unit tests of [`super`].

use super::*;
use tokio::io::BufReader;
use tonic::Status;

#[tokio::test]
async fn output_lines_are_capped_across_buffer_boundaries() {
    let input = format!(
        "short\n{}\nafter\r\nexact-8!\n{}",
        "x".repeat(30),
        "tail-no-newline"
    );
    for capacity in [1, 3, 4, 64] {
        let reader = BufReader::with_capacity(capacity, input.as_bytes());
        let mut lines = CappedLines::new(reader, 8);
        let mut got = Vec::new();
        while let Some(line) = lines.next_line().await.unwrap() {
            got.push((line.text, line.truncated));
        }
        let want = [
            ("short", false),
            ("xxxxxxxx", true),
            ("after", false),
            ("exact-8!", false),
            ("tail-no-", true),
        ];
        let want: Vec<(String, bool)> = want.iter().map(|(t, b)| (t.to_string(), *b)).collect();
        assert_eq!(got, want, "buffer capacity {capacity}");
    }
    let marked = OutputLine {
        text: "abc".into(),
        truncated: true,
    }
    .for_log();
    assert!(marked.starts_with("abc [line truncated"), "{marked}");
}

#[test]
fn storage_answers_only_its_process_with_its_token() {
    let s = HostStorage::new("right".into());
    let denied = |r: Result<(), Status>| r.unwrap_err().code() == tonic::Code::PermissionDenied;
    // Before the pid is known nothing is answered.
    assert!(denied(s.check_caller(Some(b"right"), Some(42))));
    s.set_pid(42);
    assert!(s.check_caller(Some(b"right"), Some(42)).is_ok());
    assert!(denied(s.check_caller(None, Some(42))));
    assert!(denied(s.check_caller(Some(b"wrong"), Some(42))));
    assert!(denied(s.check_caller(Some(b"righ"), Some(42))));
    assert!(denied(s.check_caller(Some(b"right"), Some(43))));
    assert!(denied(s.check_caller(Some(b"right"), None)));
}

#[test]
fn runtime_dir_must_be_private() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let fresh = tmp.path().join("a/b");
    ensure_private_dir(&fresh).unwrap();
    let mode = std::fs::metadata(&fresh).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o700);
    // Again: ours, fine.
    ensure_private_dir(&fresh).unwrap();
    std::fs::set_permissions(&fresh, std::fs::Permissions::from_mode(0o750)).unwrap();
    let e = ensure_private_dir(&fresh).unwrap_err();
    assert!(e.contains("0750"), "{e}");
    let file = tmp.path().join("file");
    std::fs::write(&file, "").unwrap();
    assert!(
        ensure_private_dir(&file)
            .unwrap_err()
            .contains("not a directory")
    );
}

#[test]
fn handshake_line_rules() {
    let dir = Path::new("/run/p");
    assert_eq!(
        parse_handshake("1|1|unix|/run/p/plugin.sock|grpc|", &[1], dir).unwrap(),
        PathBuf::from("/run/p/plugin.sock")
    );
    assert_eq!(
        parse_handshake("1|1|unix|/run/p/plugin.sock|grpc|\n", &[1], dir).unwrap(),
        PathBuf::from("/run/p/plugin.sock")
    );
    let cases = [
        ("hello world", "malformed"),
        ("2|1|unix|/run/p/s|grpc|", "core protocol"),
        ("1|7|unix|/run/p/s|grpc|", "app protocol version 7"),
        ("1|1|tcp|127.0.0.1:1|grpc|", "unix socket"),
        ("1|1|unix|/tmp/s|grpc|", "outside"),
        ("1|1|unix|/run/p/../x/s|grpc|", "outside"),
        ("1|1|unix|relative|grpc|", "outside"),
        ("1|1|unix|/run/p/s|netrpc|", "grpc"),
        ("x|1|unix|/run/p/s|grpc|", "not a number"),
    ];
    for (line, needle) in cases {
        let e = parse_handshake(line, &[1], dir).unwrap_err();
        assert!(e.contains(needle), "{line}: {e}");
    }
}

#[test]
fn the_handshake_line_tells_the_protocol() {
    use super::launch::is_go_plugin;
    assert!(is_go_plugin("1|5|unix|/d/plugin1|grpc|MIIB\n"));
    assert!(
        is_go_plugin("1|4|unix|/d/plugin1|grpc|MIIB"),
        "another go-plugin version"
    );
    assert!(
        is_go_plugin("1|5|unix|/d/plugin1|grpc|"),
        "v5 without a certificate"
    );
    assert!(!is_go_plugin("1|1|unix|/d/plugin.sock|grpc|"));
    assert!(!is_go_plugin("1|1|unix|/d/plugin.sock|grpc"));
    assert!(!is_go_plugin("garbage"));
}
