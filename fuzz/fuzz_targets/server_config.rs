//! The server configuration file (HCL): parsing and everything derived
//! from a parsed configuration.
//!
//! Properties: a configuration that parses parses again to one that needs
//! no restart against it (parsing is deterministic), and every derived
//! setting (listener timeouts, connection and request limits, cache
//! directory) is computed without panicking; `max_connections` is never 0.

#![no_main]

use libfuzzer_sys::fuzz_target;
use lockbox_server::config::Config;

fuzz_target!(|text: &str| {
    let Ok(config) = Config::parse(text) else {
        return;
    };
    let again = Config::parse(text).expect("a configuration that parsed once parses again");
    assert!(
        config.changes_needing_restart(&again).is_empty(),
        "the same text parsed twice differs in {:?}",
        config.changes_needing_restart(&again)
    );
    let _ = config.listener_timeouts();
    let _ = config.request_limit();
    let _ = config.plugin_cache_dir();
    assert!(config.max_connections() > 0);
});
