//! `lockbox-plugin-passgen`: a secrets engine that generates passwords from
//! named roles. Started by lockbox, never by hand.

mod backend;

fn main() -> std::process::ExitCode {
    lockbox_sdk::serve(backend::backend())
}
