//! How the root `lockbox` binary embeds the client commands, runnable on its
//! own for trying the CLI out: `cargo run -p lockbox-cli --example embed --
//! status -address=http://127.0.0.1:8200`.

use clap::Parser;

#[derive(Debug, Parser)]
#[command(
    name = "lockbox",
    version,
    about = "A Kubernetes-native secrets server"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

// The unit `Server` stand-in makes the size difference look large.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, clap::Subcommand)]
enum Cmd {
    /// Run the server (not part of this example)
    Server,
    #[command(flatten)]
    Client(lockbox_cli::Command),
}

fn main() {
    let args = lockbox_cli::normalize_args(std::env::args_os());
    let cli = Cli::try_parse_from(args).unwrap_or_else(|e| {
        let _ = e.print();
        std::process::exit(lockbox_cli::clap_exit_code(&e))
    });
    let code = match cli.command {
        Cmd::Server => {
            eprintln!("the server is not part of this example");
            1
        }
        Cmd::Client(cmd) => match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(runtime) => runtime.block_on(lockbox_cli::run(cmd)),
            Err(e) => {
                eprintln!("error starting the async runtime: {e}");
                1
            }
        },
    };
    std::process::exit(code);
}
