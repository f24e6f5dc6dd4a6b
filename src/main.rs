//! The `lockbox` binary: parses arguments and hands off to the library
//! crates (`lockbox-server` for `server` and `operator run`,
//! `lockbox-operator` for `crds`) or to the client commands
//! (`lockbox-cli`). Vault's single-dash flags (`-format=json`) are
//! normalized before parsing.

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// mimalloc rather than the C library's allocator: a server allocates and
/// frees small buffers on one worker thread and frees them on another all
/// the time, which glibc's malloc serves with arena locks and periodic
/// consolidation (measured on the audited kv path: allocation was a fifth of
/// the audit device's cost; see BENCHMARKS.md, audit). Transparent huge
/// pages are turned off for the process first thing in `main` (see there).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "lockbox",
    version,
    about = "A Kubernetes-native secrets server with Vault's plugin model"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// `lockbox operator run [FLAGS]` (or `lockbox operator --FLAG ...`): the
/// Kubernetes operator. It is parsed apart from [`Cli`] because the client's
/// Vault-style `lockbox operator init|unseal|seal|rotate` owns `operator`.
#[derive(Parser)]
#[command(
    name = "lockbox operator run",
    version,
    about = "Run lockbox as a Kubernetes operator: the server plus the controllers for PluginCatalogEntry and SecretsMount"
)]
struct OperatorCli {
    #[command(flatten)]
    args: lockbox_operator::OperatorArgs,
}

/// The operator's arguments (program name first) if `argv` invokes it.
fn operator_invocation(argv: &[std::ffi::OsString]) -> Option<Vec<std::ffi::OsString>> {
    if argv.get(1).is_none_or(|a| a != "operator") {
        return None;
    }
    let third = argv.get(2)?.to_str()?;
    if third == "run" {
        return Some(
            std::iter::once("lockbox operator run".into())
                .chain(argv[3..].iter().cloned())
                .collect(),
        );
    }
    (third.starts_with("--") && third != "--help").then(|| {
        std::iter::once("lockbox operator run".into())
            .chain(argv[2..].iter().cloned())
            .collect()
    })
}

#[derive(Subcommand)]
enum Command {
    /// Run the secrets server.
    Server(lockbox_server::ServerArgs),
    /// Print the CustomResourceDefinitions as YAML (or write them with --write DIR).
    Crds(lockbox_operator::CrdsArgs),
    #[command(flatten)]
    Client(lockbox_cli::Command),
}

fn main() -> ExitCode {
    // No transparent huge pages: mimalloc's arenas are large and aligned,
    // and where THP is `always` each thread's first small allocations would
    // fault in 2 MiB pages (the dev server's RSS at rest: 20 MB with the C
    // library's allocator, 34 MB with mimalloc and THP, 25 MB without THP).
    // Inherited by the plugin processes. Refused only by kernels without
    // THP, where there is nothing to turn off.
    let _ = rustix::thread::disable_transparent_huge_pages(true);
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if let Some(op_argv) = operator_invocation(&argv) {
        return run_operator(op_argv);
    }
    let cli = match Cli::try_parse_from(lockbox_cli::normalize_args(argv)) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(lockbox_cli::clap_exit_code(&e) as u8);
        }
    };
    if matches!(cli.command, Command::Server(_))
        && let Err(code) = harden()
    {
        return code;
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("Error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match cli.command {
        Command::Server(args) => match runtime.block_on(lockbox_server::run(args)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("Error: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Crds(args) => match lockbox_operator::run_crds(&args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("Error: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Client(cmd) => {
            let code = runtime.block_on(lockbox_cli::run(cmd));
            ExitCode::from(u8::try_from(code).unwrap_or(1))
        }
    }
}

/// Server processes (server, operator) make themselves non-dumpable and
/// take secrets out of their environment before any other thread exists.
fn harden() -> Result<(), ExitCode> {
    // SAFETY: called from `main` before the runtime (or any thread) starts.
    unsafe { lockbox_server::hardening::harden_process() }.map_err(|e| {
        eprintln!("Error: {e}");
        ExitCode::FAILURE
    })
}

fn run_operator(argv: Vec<std::ffi::OsString>) -> ExitCode {
    let cli = match OperatorCli::try_parse_from(argv) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    if let Err(code) = harden() {
        return code;
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("Error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(lockbox_server::run_operator(cli.args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("Error: {e}");
            ExitCode::FAILURE
        }
    }
}
