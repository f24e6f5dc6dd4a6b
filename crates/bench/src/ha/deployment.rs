//! A deployment under test: one node (file or PostgreSQL storage) or an HA
//! group of nodes on one database, initialized through its first node,
//! unsealed, with kv version 1 mounted at `secret/` and the benchmark keys
//! written.
//!
//! ```text
//!   node 0: start ─► sys/init ─► key into every keys file ─► sys/unseal ─► (HA: active)
//!   node 1..n: start ─► auto-unseal from the keys file ─► standby naming node 0
//! ```

use std::path::Path;
use std::time::Duration;

use hyper::Method;

use super::node::{self, Node, Storage};
use crate::error::Result;
use crate::http::Endpoint;
use crate::{header, lockbox};

/// Nodes sharing one store, and what initializing it gave.
pub(crate) struct Deployment {
    /// The nodes; node 0 was initialized first (and is active at the start in HA).
    pub(crate) nodes: Vec<Node>,
    root: String,
}

/// An endpoint for `url` without a token (for `sys/init` and the status calls).
async fn anonymous(url: &str) -> Result<Endpoint> {
    Endpoint::plain(url, header("user-agent", "lockbox-bench")?).await
}

impl Deployment {
    /// Starts `count` nodes named `name-0…` (`name` alone for one node) on
    /// `storage`, and prepares them as the module says.
    pub(crate) async fn start(
        binary: &Path,
        work: &Path,
        name: &str,
        storage: &Storage,
        count: usize,
        timeout: Duration,
    ) -> Result<Self> {
        let ha = matches!(storage, Storage::Postgres { ha: true, .. });
        let mut nodes = Vec::with_capacity(count);
        for i in 0..count {
            let n = if count == 1 {
                name.to_string()
            } else {
                format!("{name}-{i}")
            };
            nodes.push(Node::new(work, &n, storage)?);
        }
        let mut d = Deployment {
            nodes,
            root: String::new(),
        };
        d.nodes[0].start(binary, timeout).await?;
        let ep0 = anonymous(&d.nodes[0].url).await?;
        node::wait_for(
            &ep0,
            &d.nodes[0],
            "/v1/sys/seal-status",
            timeout,
            "answering",
            |s, _| s == 200,
        )
        .await?;
        let (root, key) = node::init(&ep0).await?;
        d.root = root;
        for n in &d.nodes {
            n.write_key(&key)?;
        }
        node::unseal(&ep0, &key).await?;
        if ha {
            node::wait_for(
                &ep0,
                &d.nodes[0],
                "/v1/sys/leader",
                timeout,
                "active",
                |_, b| b["is_self"] == true,
            )
            .await?;
        }
        for i in 1..count {
            d.nodes[i].start(binary, timeout).await?;
        }
        let leader = d.nodes[0].url.clone();
        for i in 1..count {
            d.wait_standby(i, &leader, timeout).await?;
        }
        Ok(d)
    }

    /// Waits until node `i` is unsealed and a standby naming `leader_url`.
    pub(crate) async fn wait_standby(
        &self,
        i: usize,
        leader_url: &str,
        timeout: Duration,
    ) -> Result<()> {
        let ep = anonymous(&self.nodes[i].url).await?;
        node::wait_for(
            &ep,
            &self.nodes[i],
            "/v1/sys/leader",
            timeout,
            "a standby of the active node",
            |s, b| {
                s == 200
                    && b["is_self"] == false
                    && b["leader_address"].as_str() == Some(leader_url)
            },
        )
        .await
        .map(drop)
    }

    /// Which of `candidates` says it is active now (one `sys/leader` each).
    pub(crate) async fn active_among(&self, candidates: &[usize]) -> Option<usize> {
        for &i in candidates {
            let Ok(ep) = anonymous(&self.nodes[i].url).await else {
                continue;
            };
            if let Ok((200, b)) = node::call(&ep, Method::GET, "/v1/sys/leader", None).await
                && b["is_self"] == true
            {
                return Some(i);
            }
        }
        None
    }

    /// An endpoint for node `i` with the root token.
    pub(crate) async fn endpoint(&self, i: usize) -> Result<Endpoint> {
        Endpoint::plain(&self.nodes[i].url, header("x-vault-token", &self.root)?).await
    }

    /// Mounts kv version 1 at `secret/` through node 0 and writes `keys`
    /// keys of `value` (read back once).
    pub(crate) async fn seed(&self, keys: usize, value: &str) -> Result<()> {
        let ep = self.endpoint(0).await?;
        lockbox::post(
            &ep,
            "/v1/sys/mounts/secret",
            serde_json::json!({"type": "kv"}),
        )
        .await?;
        lockbox::seed(&ep, keys, value).await
    }

    /// The process ids of the running nodes.
    pub(crate) fn pids(&self) -> Vec<u32> {
        self.nodes.iter().filter_map(Node::pid).collect()
    }

    /// Stops every node.
    pub(crate) async fn stop(&mut self) {
        for n in &mut self.nodes {
            n.stop().await;
        }
    }
}
