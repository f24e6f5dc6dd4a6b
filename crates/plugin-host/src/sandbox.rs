//! The sandbox of a plugin process: what a plugin can and cannot reach.
//!
//! Applied in the forked child between fork and exec (`pre_exec`), so it
//! holds from the plugin's first instruction and for everything it starts:
//!
//! * **capabilities**: all dropped (bounding, ambient, inheritable,
//!   permitted, effective). A server running as root starts plugins that
//!   are uid 0 without root's powers: no `CAP_SYS_PTRACE` (so the server's
//!   `PR_SET_DUMPABLE` 0 holds against them), no `CAP_DAC_OVERRIDE`.
//! * **`no_new_privs`**: exec never gains privileges (setuid, setgid, file
//!   capabilities).
//! * **Landlock** (when the kernel has it, see [`landlock_support`]): the
//!   filesystem is limited to the plugin's own socket directory (read and
//!   write) and, read-only, what loading and running programs needs
//!   ([`READ_ONLY_PATHS`], [`DEVICE_PATHS`]); no other file can be opened,
//!   created or executed (the plugin itself runs from a sealed memfd, which
//!   Landlock does not restrict). With ABI 6 it also cannot signal
//!   processes outside its own domain (the server, other plugins). Landlock
//!   refuses ptrace and `/proc/<pid>` access from a sandboxed process to
//!   any process outside its domain, so a plugin cannot inspect the server
//!   or another plugin even when that process is dumpable.
//!
//! Not restricted: the network (engines talk to databases and clouds),
//! connecting to Unix sockets by path (the host's storage service checks
//! its caller itself, see `crate::process`), and system calls: there is no
//! seccomp filter, because an allow-list that fits every plugin (Go and
//! Rust runtimes, shell scripts) would be loose enough to add little over
//! the measures above.
//!
//! A plugin may be granted more, read-only, by its verified sha256
//! ([`ReadGrant`]): operator mode lets the bundled Kubernetes auth plugin
//! (and nothing else) read the pod's ServiceAccount directory, where
//! Kubernetes keeps the token and CA it rotates.
//!
//! The Landlock ruleset is built in the parent ([`Sandbox::for_plugin`]:
//! it opens paths and allocates); the child only makes system calls
//! ([`Sandbox::enter`]), which is all that is safe after fork in a
//! multi-threaded program.

use landlock::{
    ABI, Access, AccessFs, CompatLevel, Compatible, PathBeneath, PathFd, Ruleset, RulesetAttr,
    RulesetCreatedAttr, Scope, path_beneath_rules,
};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

/// The Landlock ABI whose rights the sandbox asks for (filesystem rights of
/// ABI 5, signal and abstract-socket scoping of ABI 6). Older kernels get
/// what they support (best effort, reported by [`landlock_support`]).
pub const TARGET_ABI: i32 = 6;
const TARGET: ABI = ABI::V6;

/// Read-only (and executable) for plugins: the dynamic loader, libraries,
/// interpreters and the few `/etc` files that name resolution and TLS read.
/// Paths that do not exist on the machine are skipped. Notably absent:
/// `/proc`, `/sys`, `/tmp`, `/home`, `/root`, `/var`, the rest of `/etc`,
/// the server's data and plugin directories.
pub const READ_ONLY_PATHS: &[&str] = &[
    "/usr",
    "/bin",
    "/sbin",
    "/lib",
    "/lib32",
    "/lib64",
    "/libx32",
    "/etc/ld.so.cache",
    "/etc/ld.so.conf",
    "/etc/ld.so.conf.d",
    "/etc/ssl",
    "/etc/pki",
    "/etc/ca-certificates",
    "/etc/resolv.conf",
    "/etc/hosts",
    "/etc/host.conf",
    "/etc/nsswitch.conf",
    "/etc/gai.conf",
    "/etc/services",
    "/etc/protocols",
    "/etc/localtime",
];

/// Device files plugins may read and write.
pub const DEVICE_PATHS: &[&str] = &[
    "/dev/null",
    "/dev/zero",
    "/dev/full",
    "/dev/random",
    "/dev/urandom",
];

/// One more directory a plugin may read (files and listings; no write, no
/// execute), granted to the binaries whose verified sha256 is `sha256`
/// (the digest of what runs, so a registration under another name or a
/// replaced file gets nothing). Set by the host's configuration
/// (`LaunchConfig::read_grants`), never by the catalog API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadGrant {
    /// Lower-case hex sha256 of the binary the grant is for.
    pub sha256: String,
    /// The directory (and everything below it). A directory that does not
    /// exist at launch is skipped.
    pub path: std::path::PathBuf,
}

/// The directories of `grants` that apply to a binary with `sha256`.
pub fn granted_paths<'a>(grants: &'a [ReadGrant], sha256: &str) -> Vec<&'a Path> {
    grants
        .iter()
        .filter(|g| g.sha256.eq_ignore_ascii_case(sha256))
        .map(|g| g.path.as_path())
        .collect()
}

/// What the running kernel's Landlock gives the sandbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LandlockSupport {
    /// Everything the sandbox asks for ([`TARGET_ABI`] or newer).
    Full {
        /// The kernel's Landlock ABI version.
        abi: i32,
    },
    /// An older ABI: filesystem rules apply, some rights or the signal
    /// scoping do not.
    Partial {
        /// The kernel's Landlock ABI version.
        abi: i32,
    },
    /// No Landlock: the filesystem is not restricted.
    Unavailable {
        /// Why, for the log.
        reason: &'static str,
    },
}

impl LandlockSupport {
    /// Whether filesystem rules are enforced.
    pub fn restricts_filesystem(self) -> bool {
        !matches!(self, LandlockSupport::Unavailable { .. })
    }

    /// Whether signals to processes outside the domain are refused.
    pub fn scopes_signals(self) -> bool {
        matches!(self, LandlockSupport::Full { .. })
    }
}

impl std::fmt::Display for LandlockSupport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LandlockSupport::Full { abi } => write!(f, "Landlock ABI {abi}: fully enforced"),
            LandlockSupport::Partial { abi } => write!(
                f,
                "Landlock ABI {abi}: partially enforced (ABI {TARGET_ABI} adds the remaining file rights and refuses signals to the server)"
            ),
            LandlockSupport::Unavailable { reason } => {
                write!(
                    f,
                    "Landlock unavailable ({reason}): plugins can open every file the server's user can"
                )
            }
        }
    }
}

/// Asks the kernel which Landlock ABI it supports.
pub fn landlock_support() -> LandlockSupport {
    const LANDLOCK_CREATE_RULESET_VERSION: libc::c_uint = 1;
    // SAFETY: with a null attribute pointer, size 0 and the VERSION flag,
    // the call only returns the ABI version (or an error); it touches no
    // memory of ours.
    let abi = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<u8>(),
            0usize,
            LANDLOCK_CREATE_RULESET_VERSION,
        )
    };
    if abi >= i64::from(TARGET_ABI) {
        LandlockSupport::Full { abi: abi as i32 }
    } else if abi > 0 {
        LandlockSupport::Partial { abi: abi as i32 }
    } else {
        match std::io::Error::last_os_error().raw_os_error() {
            Some(libc::EOPNOTSUPP) => LandlockSupport::Unavailable {
                reason: "disabled at boot: add landlock to the kernel's lsm= parameter",
            },
            _ => LandlockSupport::Unavailable {
                reason: "not built into this kernel (Linux 5.13+ with CONFIG_SECURITY_LANDLOCK)",
            },
        }
    }
}

/// Logs the sandbox's strength once per process (a warning when Landlock
/// is missing or partial).
fn log_support_once(support: LandlockSupport) {
    static LOGGED: AtomicBool = AtomicBool::new(false);
    if LOGGED.swap(true, Ordering::Relaxed) {
        return;
    }
    match support {
        LandlockSupport::Full { .. } => {
            tracing::info!("plugin sandbox: {support}; capabilities dropped, no_new_privs set")
        }
        _ => tracing::warn!(
            "plugin sandbox: {support}; capabilities are still dropped and no_new_privs set"
        ),
    }
}

/// The sandbox of one plugin launch: the Landlock ruleset for its socket
/// directory, built in the parent.
#[derive(Debug)]
pub struct Sandbox {
    ruleset: Option<OwnedFd>,
}

impl Sandbox {
    /// Builds the ruleset: [`READ_ONLY_PATHS`] read-only, [`DEVICE_PATHS`]
    /// read-write, `socket_dir` (the plugin's private directory) fully
    /// writable, `granted` (see [`ReadGrant`]) readable only (files and
    /// directory listings). Without Landlock the sandbox holds no ruleset
    /// and only drops privileges.
    pub fn for_plugin(socket_dir: &Path, granted: &[&Path]) -> Result<Sandbox, String> {
        let support = landlock_support();
        log_support_once(support);
        if !support.restricts_filesystem() {
            return Ok(Sandbox { ruleset: None });
        }
        let own = PathFd::new(socket_dir).map_err(|e| e.to_string())?;
        let read = AccessFs::from_read(TARGET);
        let created = (|| {
            Ruleset::default()
                .set_compatibility(CompatLevel::BestEffort)
                .handle_access(AccessFs::from_all(TARGET))?
                .scope(Scope::from_all(TARGET))?
                .create()?
                .add_rules(path_beneath_rules(READ_ONLY_PATHS, read))?
                .add_rules(path_beneath_rules(DEVICE_PATHS, read | AccessFs::WriteFile))?
                .add_rules(path_beneath_rules(
                    granted,
                    AccessFs::ReadFile | AccessFs::ReadDir,
                ))?
                .add_rule(PathBeneath::new(own, AccessFs::from_all(TARGET)))
        })()
        .map_err(|e: landlock::RulesetError| e.to_string())?;
        Ok(Sandbox {
            ruleset: created.into(),
        })
    }

    /// Whether a Landlock ruleset will be enforced.
    pub fn has_ruleset(&self) -> bool {
        self.ruleset.is_some()
    }

    /// The hook for `pre_exec`: [`enter`] with this sandbox's ruleset. The
    /// sandbox must outlive the spawn (it owns the ruleset's descriptor).
    pub fn child_hook(&self) -> impl FnMut() -> std::io::Result<()> + Send + Sync + 'static {
        let fd = self.ruleset.as_ref().map(AsRawFd::as_raw_fd);
        move || enter(fd)
    }
}

/// Enters the sandbox: drops every capability, sets `no_new_privs`, then
/// restricts the process with the Landlock ruleset `ruleset` (if any).
/// Only system calls, no allocation: safe between fork and exec. Fails
/// closed: any error aborts the launch.
pub fn enter(ruleset: Option<RawFd>) -> std::io::Result<()> {
    drop_capabilities()?;
    // SAFETY: prctl with integer arguments.
    if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    if let Some(fd) = ruleset {
        // SAFETY: `fd` is a Landlock ruleset descriptor kept open by the
        // parent's `Sandbox` for the duration of the spawn; flags 0.
        if unsafe { libc::syscall(libc::SYS_landlock_restrict_self, fd, 0u32) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: libc::c_int,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;

/// Drops every capability of the calling process for good: the bounding
/// set (so exec as uid 0 grants nothing back), the ambient set, and the
/// effective, permitted and inheritable sets. Without `CAP_SETPCAP` (a
/// server not running as root) the bounding set cannot shrink; that is
/// harmless because such a process has no capabilities to pass on and
/// `no_new_privs` stops exec from gaining any. Only system calls.
pub fn drop_capabilities() -> std::io::Result<()> {
    // SAFETY: geteuid and prctl with integer arguments.
    let root = unsafe { libc::geteuid() } == 0;
    for cap in 0..64 {
        // 1 = in the set, 0 = not, -1 (EINVAL) = past the last capability.
        if unsafe { libc::prctl(libc::PR_CAPBSET_READ, cap, 0, 0, 0) } != 1 {
            continue;
        }
        if unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap, 0, 0, 0) } != 0 {
            let e = std::io::Error::last_os_error();
            if root || e.raw_os_error() != Some(libc::EPERM) {
                return Err(e);
            }
        }
    }
    // SAFETY: as above; EINVAL means the kernel has no ambient set (< 4.3).
    if unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL,
            0,
            0,
            0,
        )
    } != 0
    {
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EINVAL) {
            return Err(e);
        }
    }
    let header = CapHeader {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let data = [CapData {
        effective: 0,
        permitted: 0,
        inheritable: 0,
    }; 2];
    // SAFETY: capset reads one header and two data structs (version 3),
    // both live for the call; clearing capabilities is always permitted.
    if unsafe { libc::syscall(libc::SYS_capset, &header as *const CapHeader, data.as_ptr()) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn support_is_reported_in_words() {
        let s = landlock_support();
        let text = s.to_string();
        assert!(text.starts_with("Landlock"), "{text}");
        assert_eq!(
            s.restricts_filesystem(),
            !matches!(s, LandlockSupport::Unavailable { .. })
        );
    }

    #[test]
    fn a_ruleset_exists_exactly_when_landlock_does() {
        let dir = tempfile::tempdir().unwrap();
        let sandbox = Sandbox::for_plugin(dir.path(), &[]).unwrap();
        assert_eq!(
            sandbox.has_ruleset(),
            landlock_support().restricts_filesystem()
        );
    }

    #[test]
    fn grants_apply_to_their_digest_only() {
        let a = "ab".repeat(32);
        let grants = vec![
            ReadGrant {
                sha256: a.clone(),
                path: "/var/run/secrets/kubernetes.io/serviceaccount".into(),
            },
            ReadGrant {
                sha256: "cd".repeat(32),
                path: "/elsewhere".into(),
            },
        ];
        assert_eq!(
            granted_paths(&grants, &a.to_uppercase()),
            [Path::new("/var/run/secrets/kubernetes.io/serviceaccount")]
        );
        assert!(granted_paths(&grants, &"ef".repeat(32)).is_empty());
    }
}
