//! Unit tests of [`super`].

use super::*;
use clap::Parser;

#[derive(Debug, Parser)]
struct TestCli {
    #[command(subcommand)]
    command: Command,
}

fn parse(args: &[&str]) -> Result<Command, clap::Error> {
    let argv = std::iter::once("lockbox")
        .chain(args.iter().copied())
        .map(Into::into);
    TestCli::try_parse_from(crate::normalize_args(argv)).map(|c| c.command)
}

#[test]
fn write_takes_key_values_stdin_and_files() {
    let Ok(Command::Write(w)) = parse(&["write", "-f", "x/y", "a=-1", "-", "k=@f.txt"]) else {
        panic!("not a write");
    };
    assert_eq!(w.path, "x/y");
    assert_eq!(w.data, ["a=-1", "-", "k=@f.txt"]);
    assert!(w.force);
}

#[test]
fn duration_and_boolean_flags() {
    let Ok(Command::Token(TokenCommand::Create(c))) = parse(&[
        "token",
        "create",
        "-policy=a",
        "-policy",
        "b",
        "-ttl=90m",
        "-explicit-max-ttl",
        "2h",
        "-renewable=false",
        "-orphan",
        "-format=json",
    ]) else {
        panic!("not a token create");
    };
    assert_eq!(c.policies, ["a", "b"]);
    assert_eq!(c.ttl.map(GoDuration::whole_secs), Some(5400));
    assert_eq!(c.explicit_max_ttl.map(GoDuration::whole_secs), Some(7200));
    assert!(!c.renewable);
    assert!(c.orphan);
    assert_eq!(c.global.format.as_deref(), Some("json"));

    let Ok(Command::Secrets(SecretsCommand::Tune(t))) = parse(&[
        "secrets",
        "tune",
        "-default-lease-ttl=-1",
        "-max-lease-ttl",
        "-1",
        "kv/",
    ]) else {
        panic!("not a tune");
    };
    assert_eq!(t.default_lease_ttl.map(GoDuration::whole_secs), Some(-1));
    assert_eq!(t.max_lease_ttl.map(GoDuration::whole_secs), Some(-1));

    assert!(parse(&["token", "create", "-ttl=soon"]).is_err());
    assert!(parse(&["secrets", "list", "-detailed=maybe"]).is_err());
}

#[test]
fn global_flags_on_every_command() {
    let Ok(cmd) = parse(&[
        "secrets",
        "list",
        "-detailed",
        "-address=http://h:1",
        "-ca-cert=/ca.pem",
        "-tls-skip-verify",
    ]) else {
        panic!("did not parse");
    };
    let g = cmd.global();
    assert_eq!(g.address.as_deref(), Some("http://h:1"));
    assert_eq!(g.ca_cert.as_deref(), Some(std::path::Path::new("/ca.pem")));
    assert_eq!(g.tls_skip_verify, Some(true));

    let Ok(Command::Operator(OperatorCommand::Init(i))) =
        parse(&["operator", "init", "-key-shares=3", "-t", "2"])
    else {
        panic!("not an init");
    };
    assert_eq!((i.key_shares, i.key_threshold), (Some(3), Some(2)));
}

#[test]
fn plugin_register_flags() {
    let Ok(Command::Plugin(PluginCommand::Register(r))) = parse(&[
        "plugin",
        "register",
        "-sha256=ab12",
        "-command",
        "mock-bin",
        "-args=--debug",
        "-args",
        "-x",
        "-env=A=1",
        "-env",
        "B=2",
        "-version=v1.0.0",
        "secret",
        "mock",
    ]) else {
        panic!("not a plugin register");
    };
    assert_eq!(
        (r.plugin_type.as_str(), r.name.as_deref()),
        ("secret", Some("mock"))
    );
    assert_eq!(r.sha256.as_deref(), Some("ab12"));
    assert_eq!(r.command.as_deref(), Some("mock-bin"));
    assert_eq!(r.args, ["--debug", "-x"]);
    assert_eq!(r.env, ["A=1", "B=2"]);
    assert_eq!(r.version.as_deref(), Some("v1.0.0"));

    // Vault's old one-argument form parses; the command asks for the type.
    let Ok(Command::Plugin(PluginCommand::Register(r))) =
        parse(&["plugin", "register", "-sha256=ab", "mock"])
    else {
        panic!("not a plugin register");
    };
    assert_eq!((r.plugin_type.as_str(), r.name), ("mock", None));
    assert!(parse(&["plugin", "register", "a", "b", "c"]).is_err());
}

#[test]
fn plugin_list_info_deregister_reload_flags() {
    let Ok(Command::Plugin(PluginCommand::List(l))) =
        parse(&["plugin", "list", "-detailed", "auth"])
    else {
        panic!("not a plugin list");
    };
    assert_eq!((l.plugin_type.as_deref(), l.detailed), (Some("auth"), true));

    let Ok(Command::Plugin(PluginCommand::Info(i))) = parse(&[
        "plugin",
        "info",
        "-version=v2",
        "-field=sha256",
        "secret",
        "mock",
    ]) else {
        panic!("not a plugin info");
    };
    assert_eq!(i.version.as_deref(), Some("v2"));
    assert_eq!(i.field.as_deref(), Some("sha256"));

    let Ok(Command::Plugin(PluginCommand::Deregister(d))) =
        parse(&["plugin", "deregister", "-version", "v2", "auth", "up"])
    else {
        panic!("not a plugin deregister");
    };
    assert_eq!(
        (
            d.plugin_type.as_str(),
            d.name.as_deref(),
            d.version.as_deref()
        ),
        ("auth", Some("up"), Some("v2"))
    );

    let Ok(Command::Plugin(PluginCommand::Reload(r))) =
        parse(&["plugin", "reload", "-mounts=a,b/", "-mounts", "auth/c"])
    else {
        panic!("not a plugin reload");
    };
    assert_eq!(r.mounts, ["a", "b/", "auth/c"]);
    assert_eq!((r.plugin, r.plugin_type), (None, None));

    let Ok(Command::Plugin(PluginCommand::Reload(r))) =
        parse(&["plugin", "reload", "-plugin=mock", "-type=secret"])
    else {
        panic!("not a plugin reload");
    };
    assert_eq!(
        (r.plugin.as_deref(), r.plugin_type.as_deref()),
        (Some("mock"), Some("secret"))
    );
    assert!(parse(&["plugin", "reload", "mock"]).is_err());
}

#[test]
fn auth_and_login_flags() {
    let Ok(Command::Auth(AuthCommand::Enable(e))) = parse(&[
        "auth",
        "enable",
        "-path=people",
        "-description",
        "humans",
        "-default-lease-ttl=1h",
        "-max-lease-ttl",
        "24h",
        "-options=a=b",
        "-plugin-version=v0.1.0",
        "-local",
        "userpass",
    ]) else {
        panic!("not an auth enable");
    };
    assert_eq!(e.method_type, "userpass");
    assert_eq!(e.path.as_deref(), Some("people"));
    assert_eq!(e.description.as_deref(), Some("humans"));
    assert_eq!(e.default_lease_ttl.map(GoDuration::whole_secs), Some(3600));
    assert_eq!(e.max_lease_ttl.map(GoDuration::whole_secs), Some(86400));
    assert_eq!(e.options, ["a=b"]);
    assert_eq!(e.plugin_version.as_deref(), Some("v0.1.0"));
    assert!(e.local);

    let Ok(Command::Auth(AuthCommand::List(l))) = parse(&["auth", "list", "-detailed"]) else {
        panic!("not an auth list");
    };
    assert!(l.detailed);
    let Ok(Command::Auth(AuthCommand::Disable(d))) = parse(&["auth", "disable", "people/"]) else {
        panic!("not an auth disable");
    };
    assert_eq!(d.path, "people/");
    let Ok(Command::Auth(AuthCommand::Tune(t))) =
        parse(&["auth", "tune", "-max-lease-ttl=-1", "people"])
    else {
        panic!("not an auth tune");
    };
    assert_eq!(t.max_lease_ttl.map(GoDuration::whole_secs), Some(-1));

    let Ok(Command::Login(l)) = parse(&[
        "login",
        "-method=userpass",
        "-path",
        "people",
        "-no-store",
        "username=bob",
        "password=-x",
    ]) else {
        panic!("not a login");
    };
    assert_eq!(l.method, "userpass");
    assert_eq!(l.path.as_deref(), Some("people"));
    assert!(l.no_store);
    assert_eq!(l.args, ["username=bob", "password=-x"]);
}

#[test]
fn the_definitions_are_consistent() {
    use clap::CommandFactory;
    TestCli::command().debug_assert();
}
