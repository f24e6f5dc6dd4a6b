//! `lockbox-plugin-mock`: the mock secrets engine of the plugin walkthrough
//! (after vault-guides' mock plugin). Started by lockbox, never by hand.

mod backend;

fn main() -> std::process::ExitCode {
    lockbox_sdk::serve(backend::backend())
}
