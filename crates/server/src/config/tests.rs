//! Unit tests of [`super`].

use super::*;

#[test]
fn parses_a_vault_style_file() {
    let c = Config::parse(
        r#"
        storage "file" { path = "/data" }
        listener "tcp" {
          address = "0.0.0.0:8200"
          tls_disable = 1
        }
        api_addr = "http://127.0.0.1:8200"
        plugin_directory = "/plugins"
        max_request_size = 1024
        plugin_response_cache_size = 0
        log_level = "debug"
        disable_mlock = true
        "#,
    )
    .unwrap();
    assert_eq!(
        c.storage,
        StorageConfig::File {
            path: "/data".into()
        }
    );
    assert!(c.listener.tls_disable);
    assert_eq!(c.listener.address, "0.0.0.0:8200");
    assert_eq!(c.request_limit(), Some(1024));
    assert_eq!(c.plugin_directory, Some(PathBuf::from("/plugins")));
    assert_eq!(c.plugin_response_cache_size, 0);
    assert_eq!(c.log_level, "debug");
    let plain = "storage \"inmem\" {}\nlistener \"tcp\" {\n tls_disable = 1\n}\n";
    let default = Config::parse(plain).unwrap();
    assert_eq!(
        default.plugin_response_cache_size,
        lockbox_plugin_host::cache::DEFAULT_SIZE
    );
    let bad =
        Config::parse(&format!("{plain}plugin_response_cache_size = \"lots\"\n")).unwrap_err();
    assert!(
        bad.to_string().contains("plugin_response_cache_size"),
        "{bad}"
    );
}

#[test]
fn plugin_image_keys() {
    let c = Config::parse(
        r#"
        storage "file" { path = "/data" }
        listener "tcp" { tls_disable = true }
        insecure_registries = ["127.0.0.1:5000", "registry.local:8080"]
        plugin_image_max_size = 1048576
        registry_auth_file = "/etc/lockbox/registry.json"
        "#,
    )
    .unwrap();
    assert_eq!(
        c.insecure_registries,
        vec!["127.0.0.1:5000", "registry.local:8080"]
    );
    assert_eq!(c.plugin_image_max_size, 1048576);
    assert_eq!(
        c.plugin_cache_dir(),
        Some(PathBuf::from("/data/plugin-cache"))
    );
    let c = Config::parse(
        r#"storage "inmem" {}
        listener "tcp" { tls_disable = true }
        plugin_cache_directory = "/cache"
        insecure_registries = "127.0.0.1:5000""#,
    )
    .unwrap();
    assert_eq!(c.plugin_cache_dir(), Some(PathBuf::from("/cache")));
    assert_eq!(c.insecure_registries, vec!["127.0.0.1:5000"]);
    let e = Config::parse(
        r#"storage "inmem" {}
        listener "tcp" { tls_disable = true }
        insecure_registries = ["http://127.0.0.1:5000"]"#,
    )
    .unwrap_err();
    assert!(e.to_string().contains("without scheme"), "{e}");
}

#[test]
fn errors_name_the_problem() {
    let e = Config::parse(r#"storage "consul" { path = "x" }"#).unwrap_err();
    assert!(
        e.to_string()
            .contains("unsupported storage type \"consul\""),
        "{e}"
    );
    let e = Config::parse(r#"storage "file" {}"#).unwrap_err();
    assert!(e.to_string().contains("needs path"), "{e}");
    let e = Config::parse(
        r#"storage "inmem" {}
listener "tcp" { address = "127.0.0.1:1" }"#,
    )
    .unwrap_err();
    assert!(e.to_string().contains("tls_cert_file"), "{e}");
    let e = Config::parse(
        r#"storage "inmem" {}
colour = "red""#,
    )
    .unwrap_err();
    assert!(e.to_string().contains("unknown key \"colour\""), "{e}");
    assert!(matches!(
        Config::parse("storage {"),
        Err(ConfigError::Syntax(_))
    ));
    assert!(
        Config::parse("")
            .unwrap_err()
            .to_string()
            .contains("missing storage")
    );
}

const PLAIN: &str = "storage \"inmem\" {}\nlistener \"tcp\" {\n tls_disable = 1\n}\n";

#[test]
fn max_request_size_zero_is_the_default_and_negative_is_no_limit() {
    let with = |extra: &str| Config::parse(&format!("{PLAIN}{extra}")).unwrap();
    assert_eq!(
        with("").request_limit(),
        Some(lockbox_http::DEFAULT_MAX_REQUEST_SIZE)
    );
    assert_eq!(
        with("max_request_size = 0\n").request_limit(),
        Some(lockbox_http::DEFAULT_MAX_REQUEST_SIZE)
    );
    assert_eq!(with("max_request_size = -1\n").request_limit(), None);
    assert_eq!(with("max_request_size = \"-5\"\n").request_limit(), None);
    assert_eq!(
        with("max_request_size = 2048\n").request_limit(),
        Some(2048)
    );
    // The listener's value wins, with the same meaning.
    let c = Config::parse(
        "storage \"inmem\" {}\nmax_request_size = 10\nlistener \"tcp\" {\n tls_disable = 1\n max_request_size = -1\n}\n",
    )
    .unwrap();
    assert_eq!(c.request_limit(), None);
    let e = Config::parse(&format!("{PLAIN}max_request_size = \"big\"\n")).unwrap_err();
    assert!(e.to_string().contains("max_request_size"), "{e}");
}

#[test]
fn log_levels_follow_vault() {
    for (given, level) in [
        ("trace", "trace"),
        ("DEBUG", "debug"),
        ("notice", "info"),
        ("info", "info"),
        ("warning", "warn"),
        ("Warn", "warn"),
        ("err", "error"),
        ("error", "error"),
    ] {
        assert_eq!(parse_log_level(given), Ok(level), "{given}");
        let c = Config::parse(&format!("{PLAIN}log_level = \"{given}\"\n")).unwrap();
        assert_eq!(c.log_level, level, "{given}");
    }
    let e = parse_log_level("bogus").unwrap_err();
    assert!(e.contains("\"bogus\"") && e.contains(LOG_LEVELS), "{e}");
    let e = Config::parse(&format!("{PLAIN}log_level = \"bogus\"\n")).unwrap_err();
    assert!(
        e.to_string().contains("log_level") && e.to_string().contains(LOG_LEVELS),
        "{e}"
    );
    let e = Config::parse(&format!("{PLAIN}log_format = \"xml\"\n")).unwrap_err();
    assert!(e.to_string().contains("standard, json"), "{e}");
}

#[test]
fn listener_timeouts_follow_vault() {
    use lockbox_http::conn::{
        DEFAULT_IDLE_TIMEOUT, DEFAULT_MAX_CONNECTIONS, DEFAULT_MAX_REQUEST_DURATION,
        DEFAULT_READ_HEADER_TIMEOUT, DEFAULT_READ_TIMEOUT,
    };
    let listener = |keys: &str| {
        Config::parse(&format!(
            "storage \"inmem\" {{}}\nlistener \"tcp\" {{\n tls_disable = 1\n{keys}\n}}\n"
        ))
    };
    // Unset: Vault's defaults.
    let d = listener("").unwrap();
    let t = d.listener_timeouts();
    assert_eq!(t.read_header, Some(DEFAULT_READ_HEADER_TIMEOUT));
    assert_eq!(t.read, Some(DEFAULT_READ_TIMEOUT));
    assert_eq!(t.write, None);
    assert_eq!(t.idle, Some(DEFAULT_IDLE_TIMEOUT));
    assert_eq!(t.max_request_duration, Some(DEFAULT_MAX_REQUEST_DURATION));
    assert_eq!(t, lockbox_http::Timeouts::default());
    assert_eq!(d.max_connections(), DEFAULT_MAX_CONNECTIONS);
    // Seconds as numbers or strings, Go-style units, sub-second values.
    let c = listener(
        "http_read_header_timeout = 2\nhttp_read_timeout = \"45\"\nhttp_write_timeout = \"500ms\"\nhttp_idle_timeout = \"1m30s\"\nmax_request_duration = \"2h\"\nmax_connections = 100",
    )
    .unwrap();
    let t = c.listener_timeouts();
    assert_eq!(t.read_header, Some(Duration::from_secs(2)));
    assert_eq!(t.read, Some(Duration::from_secs(45)));
    assert_eq!(t.write, Some(Duration::from_millis(500)));
    assert_eq!(t.idle, Some(Duration::from_secs(90)));
    assert_eq!(t.max_request_duration, Some(Duration::from_secs(7200)));
    assert_eq!(c.max_connections(), 100);
    // 0 keeps the default, as in Vault.
    let z = listener(
        "http_read_header_timeout = 0\nhttp_idle_timeout = \"0s\"\nmax_request_duration = 0\nmax_connections = 0",
    )
    .unwrap();
    assert_eq!(z.listener_timeouts(), lockbox_http::Timeouts::default());
    assert_eq!(z.max_connections(), DEFAULT_MAX_CONNECTIONS);
    // The top-level default_max_request_duration, overridden by the listener's.
    let top = Config::parse(&format!("{PLAIN}default_max_request_duration = \"30s\"\n")).unwrap();
    assert_eq!(
        top.listener_timeouts().max_request_duration,
        Some(Duration::from_secs(30))
    );
    let both = Config::parse(
        "storage \"inmem\" {}\ndefault_max_request_duration = 30\nlistener \"tcp\" {\n tls_disable = 1\n max_request_duration = 5\n}\n",
    )
    .unwrap();
    assert_eq!(
        both.listener_timeouts().max_request_duration,
        Some(Duration::from_secs(5))
    );
    // Bad values name the key and the accepted forms.
    for (keys, key) in [
        (
            "http_read_header_timeout = \"soon\"",
            "http_read_header_timeout",
        ),
        ("http_read_timeout = \"-5s\"", "http_read_timeout"),
        ("http_idle_timeout = \"5 parsecs\"", "http_idle_timeout"),
        ("http_write_timeout = true", "http_write_timeout"),
        ("max_request_duration = \"1.5\"", "max_request_duration"),
    ] {
        let e = listener(keys).unwrap_err().to_string();
        assert!(e.contains(key) && e.contains("\"10s\""), "{keys}: {e}");
    }
    let e = listener("max_connections = \"many\"")
        .unwrap_err()
        .to_string();
    assert!(e.contains("max_connections"), "{e}");
    let e = listener("http_timeout = 5").unwrap_err().to_string();
    assert!(e.contains("unknown key \"http_timeout\""), "{e}");
}

#[test]
fn listener_limits_need_a_restart() {
    let old = Config::parse(PLAIN).unwrap();
    // Spelling out a default is no change.
    let same = Config::parse(
        "storage \"inmem\" {}\nlistener \"tcp\" {\n tls_disable = 1\n http_read_header_timeout = \"10s\"\n max_connections = 0\n}\n",
    )
    .unwrap();
    assert!(old.changes_needing_restart(&same).is_empty());
    let new = Config::parse(
        "storage \"inmem\" {}\ndefault_max_request_duration = \"1m\"\nlistener \"tcp\" {\n tls_disable = 1\n http_read_header_timeout = 1\n http_read_timeout = 2\n http_write_timeout = 3\n http_idle_timeout = 4\n max_connections = 5\n}\n",
    )
    .unwrap();
    assert_eq!(
        old.changes_needing_restart(&new),
        vec![
            "listener http_read_header_timeout",
            "listener http_read_timeout",
            "listener http_write_timeout",
            "listener http_idle_timeout",
            "max_request_duration",
            "listener max_connections",
        ]
    );
}

#[test]
fn changes_needing_restart_name_the_keys() {
    let old = Config::parse(&format!(
        "{PLAIN}log_level = \"info\"\nplugin_directory = \"/a\"\n"
    ))
    .unwrap();
    // Live keys (log level) are not listed.
    let live = Config::parse(&format!(
        "{PLAIN}log_level = \"debug\"\nplugin_directory = \"/a\"\n"
    ))
    .unwrap();
    assert!(old.changes_needing_restart(&live).is_empty());
    let new = Config::parse(
        "storage \"file\" { path = \"/d\" }\nlistener \"tcp\" {\n address = \"127.0.0.1:1\"\n tls_disable = 1\n}\nplugin_directory = \"/b\"\nmax_request_size = 5\n",
    )
    .unwrap();
    let changed = old.changes_needing_restart(&new);
    for key in ["listener address", "storage", "plugin_cache_directory"] {
        assert!(changed.contains(&key), "{key} missing from {changed:?}");
    }
    // 0 and the default are the same limit.
    let zero = Config::parse(&format!(
        "{PLAIN}plugin_directory = \"/a\"\nmax_request_size = 0\n"
    ))
    .unwrap();
    assert!(old.changes_needing_restart(&zero).is_empty());
}
