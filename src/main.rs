//! The `lockbox` binary: parses arguments and hands off to the library
//! (`server`) or to the client commands (`lockbox-cli`). Vault's single-dash
//! flags (`-format=json`) are normalized before parsing.

use clap::{Parser, Subcommand};
use std::process::ExitCode;

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

#[derive(Subcommand)]
enum Command {
    /// Run the secrets server.
    Server(lockbox::server::ServerArgs),
    /// Print the CustomResourceDefinitions as YAML (or write them with --write DIR).
    Crds(lockbox::operator::CrdsArgs),
    #[command(flatten)]
    Client(lockbox_cli::Command),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse_from(lockbox_cli::normalize_args(std::env::args_os())) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(lockbox_cli::clap_exit_code(&e) as u8);
        }
    };
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
        Command::Server(args) => match runtime.block_on(lockbox::server::run(args)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("Error: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Crds(args) => match lockbox::operator::run_crds(&args) {
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
