//! A [`Node`]: a core with this crate's plugin runtime and image store
//! plugged in, what the server (dev, config and operator mode) runs. It
//! dereferences to the [`Core`], and keeps the runtime's own handles for
//! the callers that need more than the core's API (supervision events and
//! process status for the operator, SIGHUP's `plugin_directory`).

use crate::host::{HostConfig, PluginHost};
use crate::images::{Fetched, ImageRequest, ImageSettings, PluginImages};
use lockbox_core::core::{Core, CoreConfig};
use lockbox_oci::{Credentials, OciError};
use lockbox_storage::Physical;
use std::sync::Arc;

/// Settings of a [`Node`].
#[derive(Debug, Clone, Default)]
pub struct NodeConfig {
    /// The core's own settings (lease TTLs, cluster name).
    pub core: CoreConfig,
    /// The plugin host's settings (plugin directory, cache, timeouts).
    pub plugins: HostConfig,
    /// Plugin images (registries, size limits); the cache directory is
    /// `plugins.plugin_cache_directory`.
    pub images: ImageSettings,
}

/// A core with its plugin runtime.
pub struct Node {
    core: Arc<Core>,
    plugins: Arc<PluginHost>,
    images: Arc<PluginImages>,
}

impl Node {
    /// A sealed core over `physical` whose plugin mounts run on a new
    /// plugin host.
    pub fn new(physical: Arc<dyn Physical>, config: NodeConfig) -> Self {
        let plugins = PluginHost::new(config.plugins.clone());
        let images = Arc::new(PluginImages::new(
            config.plugins.plugin_cache_directory.clone(),
            config.images,
        ));
        let core = Arc::new(Core::with_plugins(
            physical,
            config.core,
            plugins.clone(),
            images.clone(),
        ));
        Self {
            core,
            plugins,
            images,
        }
    }

    /// The core (for the HTTP server).
    pub fn core(&self) -> &Arc<Core> {
        &self.core
    }

    /// The plugin host.
    pub fn plugin_host(&self) -> &Arc<PluginHost> {
        &self.plugins
    }

    /// The plugin-image service (OCI pulls and the cache).
    pub fn plugin_images(&self) -> &Arc<PluginImages> {
        &self.images
    }

    /// Makes an image's plugin binary available in the cache (pulling only
    /// when needed) with explicit credentials; the operator calls this with
    /// its pull secrets before registering the entry.
    pub async fn fetch_plugin_image(
        &self,
        req: &ImageRequest,
        creds: Option<&Credentials>,
    ) -> Result<Fetched, OciError> {
        let barrier = self.core.barrier().ok_or_else(|| OciError::Registry {
            registry: req.image.registry().to_string(),
            detail: "lockbox is sealed".into(),
        })?;
        self.images.fetch(&barrier, req, creds).await
    }
}

impl std::ops::Deref for Node {
    type Target = Core;

    fn deref(&self) -> &Core {
        &self.core
    }
}
