//! Unit tests of the URL split and the TLS plan.
use super::*;

#[test]
fn tls_parameters_are_taken_out_of_the_url() {
    let (rest, tls) = split_url(
        "postgresql://{{username}}:{{password}}@h:5432/db?sslmode=verify-full&application_name=x&sslrootcert=%2Ftmp%2Fca%20dir%2Fca.pem",
    )
    .expect("split");
    assert_eq!(
        rest,
        "postgresql://{{username}}:{{password}}@h:5432/db?application_name=x"
    );
    assert_eq!(tls.sslmode.as_deref(), Some("verify-full"));
    assert_eq!(tls.sslrootcert.as_deref(), Some("/tmp/ca dir/ca.pem"));
    let (rest, tls) = split_url("postgres://u@h/db?sslmode=disable").expect("split");
    assert_eq!(rest, "postgres://u@h/db");
    assert_eq!(tls.sslmode.as_deref(), Some("disable"));
    let (rest, tls) = split_url("postgres://u@h/db").expect("split");
    assert_eq!(
        (rest.as_str(), tls),
        ("postgres://u@h/db", UrlTls::default())
    );

    let (rest, tls) = split_url(
        "host=h port=5432 sslmode = require user={{username}} sslrootcert='/a b/c\\'s.pem' dbname=db",
    )
    .expect("split");
    assert_eq!(rest, "host=h port=5432 user={{username}} dbname=db");
    assert_eq!(tls.sslmode.as_deref(), Some("require"));
    assert_eq!(tls.sslrootcert.as_deref(), Some("/a b/c's.pem"));
    assert!(split_url("host=h sslmode").is_err());
    assert!(split_url("host='h").is_err());
    assert!(split_url("postgres://h/db?sslrootcert=%zz").is_err());
    // Other values are never decoded, so never shown in an error.
    let (rest, _) = split_url("postgres://h/db?password=%zzsecret").expect("split");
    assert_eq!(rest, "postgres://h/db?password=%zzsecret");
}

#[test]
fn modes_and_their_errors() {
    for m in [
        "disable",
        "allow",
        "prefer",
        "require",
        "verify-ca",
        "verify-full",
    ] {
        assert_eq!(SslMode::parse(m).map(SslMode::name).ok(), Some(m));
    }
    let e = SslMode::parse("verify_full").expect_err("unknown mode");
    assert!(e.to_string().contains("verify_full"), "{e}");
    assert!(e.to_string().contains("verify-full"), "{e}");

    let p = plan("postgresql://h/db?sslmode=disable", Pem::default()).expect("plan");
    assert!(p.tls.is_none());
    // The default is libpq's prefer, with TLS offered.
    let p = plan("postgresql://h/db", Pem::default()).expect("plan");
    assert_eq!(p.mode, SslMode::Prefer);
    assert!(p.tls.is_some());
    let p = plan("postgresql://h/db?sslmode=require", Pem::default()).expect("plan");
    assert!(p.tls.is_some());

    let e = plan("postgresql://h/db?sslmode=verify-full", Pem::default()).expect_err("no CA");
    assert!(e.to_string().contains("sslrootcert"), "{e}");
    let e = plan(
        "postgresql://h/db?sslmode=verify-ca&sslrootcert=/nonexistent/ca.pem",
        Pem::default(),
    )
    .expect_err("missing file");
    assert!(e.to_string().contains("/nonexistent/ca.pem"), "{e}");
    assert!(e.to_string().contains("cannot be read"), "{e}");
    let e = plan(
        "postgresql://h/db?sslmode=verify-ca",
        Pem {
            ca: "not pem",
            ..Pem::default()
        },
    )
    .expect_err("bad PEM");
    assert!(e.to_string().contains("tls_ca"), "{e}");
    let e = plan(
        "postgresql://h/db?sslmode=require",
        Pem {
            certificate: "x",
            ..Pem::default()
        },
    )
    .expect_err("cert without key");
    assert!(e.to_string().contains("private_key"), "{e}");
    let e = plan(
        "postgresql://h/db?sslmode=require&sslcert=/x",
        Pem::default(),
    )
    .expect_err("sslcert without sslkey");
    assert!(e.to_string().contains("sslkey"), "{e}");
}

#[test]
fn a_generated_ca_is_accepted_for_verify_modes() {
    let key = rcgen::KeyPair::generate().expect("key");
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = params.self_signed(&key).expect("ca");
    let pem = ca.pem();
    for mode in ["verify-ca", "verify-full", "require"] {
        let p = plan(
            &format!("postgresql://h/db?sslmode={mode}"),
            Pem {
                ca: &pem,
                ..Pem::default()
            },
        )
        .expect("plan");
        assert!(p.tls.is_some());
    }
}
