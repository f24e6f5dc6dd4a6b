//! The core's view of the host: [`PluginRuntime`] for [`PluginHost`].

use super::{PluginBackend, PluginHost};
use async_trait::async_trait;
use lockbox_core::barrier::View;
use lockbox_core::catalog::CatalogEntry;
use lockbox_core::logical;
use lockbox_core::runtime::{BinaryRestorer, MountSpec, PluginRuntime};
use lockbox_plugin_proto::v1;
use std::path::PathBuf;
use std::sync::Arc;

fn setup_request(m: MountSpec) -> v1::SetupRequest {
    v1::SetupRequest {
        mount_id: m.mount_id,
        mount_path: m.mount_path,
        mount_accessor: m.mount_accessor,
        mount_type: m.mount_type,
        options: m.options,
        default_lease_ttl_seconds: m.default_lease_ttl,
        max_lease_ttl_seconds: m.max_lease_ttl,
    }
}

/// The core's view of the host: plugin mounts, reloads, the running
/// binaries and the image restorer.
#[async_trait]
impl PluginRuntime for PluginHost {
    async fn mount(
        &self,
        entry: &CatalogEntry,
        mount: MountSpec,
        view: View,
    ) -> Result<Arc<dyn logical::Backend>, String> {
        let host = self
            .this
            .upgrade()
            .ok_or("the plugin host is shutting down")?;
        let backend = host
            .mount(entry, setup_request(mount), view)
            .await
            .map_err(|e| e.to_string())?;
        Ok(backend)
    }

    fn serves(&self, backend: &dyn logical::Backend) -> bool {
        let any: &dyn std::any::Any = backend;
        any.downcast_ref::<PluginBackend>()
            .is_some_and(|b| std::ptr::eq(b.host.as_ptr(), self.this.as_ptr()))
    }

    async fn reload(
        &self,
        mounts: &[Arc<dyn logical::Backend>],
        entry: &CatalogEntry,
    ) -> Result<(), String> {
        let host = self
            .this
            .upgrade()
            .ok_or("the plugin host is shutting down")?;
        let backends: Vec<&PluginBackend> = mounts
            .iter()
            .filter_map(|b| {
                let any: &dyn std::any::Any = b.as_ref();
                any.downcast_ref::<PluginBackend>()
            })
            .collect();
        host.reload_many(&backends, entry)
            .await
            .map_err(|e| e.to_string())
    }

    fn plugin_directory(&self) -> Option<PathBuf> {
        PluginHost::plugin_directory(self)
    }

    fn running_sha256s(&self) -> Vec<String> {
        self.groups()
            .iter()
            .map(|g| g.entry().sha256.clone())
            .collect()
    }

    fn running_entries(&self) -> Vec<CatalogEntry> {
        self.groups().iter().map(|g| g.entry().clone()).collect()
    }

    fn set_restorer(&self, restorer: Option<BinaryRestorer>) {
        PluginHost::set_restorer(self, restorer)
    }
}
