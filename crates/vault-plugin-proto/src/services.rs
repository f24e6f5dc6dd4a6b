//! The gRPC service names of the protocol, as they appear on the wire
//! (`/<service>/<method>` is each call's HTTP/2 path), and who serves which.

/// Vault's backend, served by the plugin; one instance per mount.
pub const BACKEND: &str = "pb.Backend";
/// The mount's storage, served by the host on each Setup broker id.
pub const STORAGE: &str = "pb.Storage";
/// Facts about the mount and the server, served by the host beside
/// [`STORAGE`].
pub const SYSTEM_VIEW: &str = "pb.SystemView";
/// Events published by the plugin, served by the host beside [`STORAGE`]
/// (Vault only).
pub const EVENTS: &str = "pb.Events";
/// Observations recorded by the plugin, served by the host beside
/// [`STORAGE`] (Vault only).
pub const OBSERVATIONS: &str = "pb.Observations";
/// The plugin's version, served by the plugin (optional).
pub const PLUGIN_VERSION: &str = "logical.PluginVersion";
/// The multiplexing probe, served by the plugin (optional: Unimplemented
/// means no multiplexing).
pub const MULTIPLEXING: &str = "pluginutil.multiplexing.PluginMultiplexing";
/// go-plugin's connection broker, served by the plugin.
pub const BROKER: &str = "plugin.GRPCBroker";
/// go-plugin's controller (clean shutdown), served by the plugin.
pub const CONTROLLER: &str = "plugin.GRPCController";
/// go-plugin's stdout/stderr relay, served by the plugin.
pub const STDIO: &str = "plugin.GRPCStdio";
/// The standard gRPC health service (use `tonic-health`; not defined here).
pub const HEALTH: &str = "grpc.health.v1.Health";
/// The service name in go-plugin's health check: a plugin reports it
/// SERVING, and a host's `Check` asks about it.
pub const HEALTH_CHECK_NAME: &str = "plugin";

/// Services a Vault-protocol plugin serves on its main connection.
pub const SERVED_BY_PLUGIN: [&str; 7] = [
    BACKEND,
    PLUGIN_VERSION,
    MULTIPLEXING,
    BROKER,
    CONTROLLER,
    STDIO,
    HEALTH,
];

/// Services the host serves on the connection a plugin dials through the
/// broker after `Setup` (one per Setup broker id, so one per mount).
pub const SERVED_BY_HOST: [&str; 4] = [STORAGE, SYSTEM_VIEW, EVENTS, OBSERVATIONS];

/// The HTTP/2 path of one call, e.g. `method_path(BACKEND, "HandleRequest")`
/// is `/pb.Backend/HandleRequest`.
pub fn method_path(service: &str, method: &str) -> String {
    format!("/{service}/{method}")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The names above are the ones the generated servers route on.
    #[test]
    fn names_match_the_generated_servers() {
        assert_eq!(BACKEND, crate::pb::backend_server::SERVICE_NAME);
        assert_eq!(STORAGE, crate::pb::storage_server::SERVICE_NAME);
        assert_eq!(SYSTEM_VIEW, crate::pb::system_view_server::SERVICE_NAME);
        assert_eq!(EVENTS, crate::pb::events_server::SERVICE_NAME);
        assert_eq!(OBSERVATIONS, crate::pb::observations_server::SERVICE_NAME);
        assert_eq!(
            PLUGIN_VERSION,
            crate::logical::plugin_version_server::SERVICE_NAME
        );
        assert_eq!(
            MULTIPLEXING,
            crate::pluginutil::multiplexing::plugin_multiplexing_server::SERVICE_NAME
        );
        assert_eq!(BROKER, crate::plugin::grpc_broker_server::SERVICE_NAME);
        assert_eq!(
            CONTROLLER,
            crate::plugin::grpc_controller_server::SERVICE_NAME
        );
        assert_eq!(STDIO, crate::plugin::grpc_stdio_server::SERVICE_NAME);
        assert_eq!(method_path(BACKEND, "Setup"), "/pb.Backend/Setup");
    }
}
