//! `lockbox-plugin-userpass`: username/password auth method. Started by
//! lockbox, never by hand.

mod backend;

fn main() -> std::process::ExitCode {
    lockbox_sdk::serve(backend::backend())
}
