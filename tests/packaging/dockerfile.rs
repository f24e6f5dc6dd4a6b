//! The Dockerfile, checked without Docker (these machines have none): its
//! stages and user, that it builds and copies exactly the workspace's
//! binaries, that the paths the chart relies on are the ones it creates, and
//! that the binaries can be linked statically (+crt-static links glibc in;
//! the final image has no libc).

use crate::{docs, render, repo, run, workspace_binary};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// One instruction: keyword (upper case) and the rest of the line, with
/// continuation lines joined.
#[derive(Debug, Clone)]
pub struct Instruction {
    /// `FROM`, `RUN`, `COPY`, ...
    pub keyword: String,
    /// Everything after the keyword.
    pub args: String,
}

/// A build stage.
#[derive(Debug, Clone)]
pub struct Stage {
    /// The base image.
    pub from: String,
    /// `AS name`, if any.
    pub name: Option<String>,
    /// Its instructions after `FROM`.
    pub body: Vec<Instruction>,
}

/// The stages of the repository's Dockerfile.
pub fn stages() -> Vec<Stage> {
    let text = std::fs::read_to_string(repo().join("Dockerfile")).expect("read Dockerfile");
    parse(&text)
}

/// Parses a Dockerfile (comments, blank lines, `\` continuations).
pub fn parse(text: &str) -> Vec<Stage> {
    let mut logical = Vec::new();
    let mut cur = String::new();
    for line in text.lines() {
        let t = line.trim();
        if cur.is_empty() && (t.is_empty() || t.starts_with('#')) {
            continue;
        }
        if !cur.is_empty() && t.starts_with('#') {
            continue;
        }
        if let Some(stripped) = t.strip_suffix('\\') {
            cur.push_str(stripped.trim_end());
            cur.push(' ');
        } else {
            cur.push_str(t);
            logical.push(std::mem::take(&mut cur));
        }
    }
    assert!(cur.is_empty(), "Dockerfile ends inside a continuation");
    let mut stages: Vec<Stage> = Vec::new();
    for l in logical {
        let (kw, rest) = l.split_once(char::is_whitespace).unwrap_or((&l, ""));
        let ins = Instruction {
            keyword: kw.to_ascii_uppercase(),
            args: rest.trim().to_string(),
        };
        if ins.keyword == "FROM" {
            let words: Vec<&str> = ins.args.split_whitespace().collect();
            let name = match words.as_slice() {
                [_, as_, n] if as_.eq_ignore_ascii_case("as") => Some(n.to_string()),
                [_] => None,
                _ => panic!("cannot read FROM {}", ins.args),
            };
            stages.push(Stage {
                from: words[0].to_string(),
                name,
                body: Vec::new(),
            });
        } else {
            stages
                .last_mut()
                .unwrap_or_else(|| panic!("{} before FROM", ins.keyword))
                .body
                .push(ins);
        }
    }
    stages
}

/// A `COPY` of the final stage: `--from` stage, source, destination.
#[derive(Debug, Clone)]
pub struct Copy {
    /// Stage it copies from.
    pub from: String,
    /// Source path in that stage.
    pub src: String,
    /// Destination in the image.
    pub dest: String,
    /// `--chown=`, if any.
    pub chown: Option<String>,
}

fn copies(stage: &Stage) -> Vec<Copy> {
    stage
        .body
        .iter()
        .filter(|i| i.keyword == "COPY")
        .map(|i| {
            let mut from = None;
            let mut chown = None;
            let mut paths = Vec::new();
            for w in i.args.split_whitespace() {
                if let Some(f) = w.strip_prefix("--from=") {
                    from = Some(f.to_string());
                } else if let Some(c) = w.strip_prefix("--chown=") {
                    chown = Some(c.to_string());
                } else if w.starts_with("--") {
                    panic!("unexpected COPY flag {w}");
                } else {
                    paths.push(w.to_string());
                }
            }
            assert_eq!(paths.len(), 2, "COPY with one source: {}", i.args);
            Copy {
                from: from.unwrap_or_else(|| panic!("COPY without --from: {}", i.args)),
                src: paths[0].clone(),
                dest: paths[1].clone(),
                chown,
            }
        })
        .collect()
}

/// The exec-form JSON array of `ENTRYPOINT` / `CMD` in `stage`.
fn exec_form(stage: &Stage, keyword: &str) -> Vec<String> {
    let ins = stage
        .body
        .iter()
        .rfind(|i| i.keyword == keyword)
        .unwrap_or_else(|| panic!("no {keyword} in the final stage"));
    serde_json::from_str(&ins.args)
        .unwrap_or_else(|e| panic!("{keyword} must be exec form (a JSON array): {e}"))
}

/// The final stage's COPYs (the image layout), for the pod emulation.
pub fn image_copies() -> Vec<Copy> {
    let st = stages();
    copies(st.last().expect("a stage"))
}

/// (package, binary) of every example plugin in the workspace
/// (`cargo metadata`): binaries named `lockbox-plugin-*`.
pub fn workspace_plugins() -> Vec<(String, String)> {
    static PLUGINS: OnceLock<Vec<(String, String)>> = OnceLock::new();
    PLUGINS
        .get_or_init(|| {
            let out = run(Command::new(env!("CARGO"))
                .args(["metadata", "--no-deps", "--format-version", "1"])
                .current_dir(repo()));
            assert!(out.ok, "cargo metadata: {}", out.all());
            let meta: Value = serde_json::from_str(&out.stdout).expect("cargo metadata JSON");
            let mut found = Vec::new();
            for p in meta["packages"].as_array().expect("packages") {
                for t in p["targets"].as_array().into_iter().flatten() {
                    let bin = t["kind"]
                        .as_array()
                        .is_some_and(|k| k.iter().any(|k| k == "bin"));
                    let name = t["name"].as_str().unwrap_or("");
                    if bin && name.starts_with("lockbox-plugin-") {
                        found.push((
                            p["name"].as_str().unwrap_or("").to_string(),
                            name.to_string(),
                        ));
                    }
                }
            }
            found.sort();
            assert!(
                !found.is_empty(),
                "no lockbox-plugin-* binaries in the workspace"
            );
            found
        })
        .clone()
}

/// The words of a shell command line (no quoting needed for what we read).
fn words(s: &str) -> Vec<String> {
    s.split(|c: char| c.is_whitespace() || c == ';')
        .filter(|w| !w.is_empty())
        .map(|w| w.trim_matches('"').to_string())
        .collect()
}

#[test]
fn dockerfile_builds_the_workspace_binaries_onto_a_static_nonroot_image() {
    let st = stages();
    let names: Vec<Option<&str>> = st.iter().map(|s| s.name.as_deref()).collect();
    assert_eq!(
        names,
        [
            Some("vault-plugins"),
            Some("build"),
            Some("plugin-digests"),
            None
        ],
        "stages"
    );
    let (vault, build, digests, image) = (&st[0], &st[1], &st[2], &st[3]);
    // Vault's plugins: from their pinned modules, static, into the build.
    assert!(vault.from.starts_with("golang:"), "{}", vault.from);
    let go = vault
        .body
        .iter()
        .find(|i| i.keyword == "RUN")
        .expect("RUN go build");
    for p in ["vault-plugin-secrets-kv", "vault-plugin-auth-kubernetes"] {
        assert!(go.args.contains(&format!("-o /out/{p}")), "{}", go.args);
    }
    assert!(
        vault
            .body
            .iter()
            .any(|i| i.keyword == "ENV" && i.args.contains("CGO_ENABLED=0")),
        "Go plugins must be static"
    );
    assert!(
        build.body.iter().any(|i| i.keyword == "COPY"
            && i.args.contains("--from=vault-plugins")
            && i.args.contains("/out/")),
        "the build stage takes the Go plugins"
    );
    assert!(
        build.from.starts_with("rust:"),
        "build stage: {}",
        build.from
    );
    assert_eq!(digests.from, "scratch");
    assert_eq!(image.from, "gcr.io/distroless/static-debian12:nonroot");

    // The final stage: no shell needed (no RUN), non-root, exec form.
    assert!(
        image
            .body
            .iter()
            .all(|i| i.keyword != "RUN" && i.keyword != "SHELL"),
        "the final stage must not need a shell"
    );
    let user = image
        .body
        .iter()
        .rfind(|i| i.keyword == "USER")
        .expect("USER");
    assert_eq!(user.args, "65532:65532");
    let entrypoint = exec_form(image, "ENTRYPOINT");
    let copies = copies(image);
    assert!(copies.iter().all(|c| c.from == "build"), "{copies:?}");
    assert!(
        copies.iter().any(|c| c.dest == entrypoint[0]),
        "ENTRYPOINT {} is not copied into the image",
        entrypoint[0]
    );

    // The build: exactly lockbox and the workspace's plugins, statically.
    let env = build
        .body
        .iter()
        .find(|i| i.keyword == "ENV" && i.args.starts_with("RUSTFLAGS="))
        .expect("ENV RUSTFLAGS");
    assert!(
        env.args.contains("target-feature=+crt-static"),
        "{}",
        env.args
    );
    let run_ins = build
        .body
        .iter()
        .find(|i| i.keyword == "RUN" && i.args.contains("cargo build"))
        .expect("RUN cargo build");
    let w = words(&run_ins.args);
    let cargo = &run_ins.args[run_ins.args.find("cargo build").expect("cargo build")..];
    let cargo = words(cargo.split(';').next().unwrap_or(""));
    for flag in ["--release", "--locked", "--target"] {
        assert!(
            cargo.iter().any(|x| x == flag),
            "cargo build without {flag}"
        );
    }
    let packages: BTreeSet<String> = cargo
        .windows(2)
        .filter(|p| p[0] == "-p")
        .map(|p| p[1].clone())
        .collect();
    let plugins = workspace_plugins();
    let mut want: BTreeSet<String> = plugins.iter().map(|(p, _)| p.clone()).collect();
    want.insert("lockbox".into());
    assert_eq!(
        packages, want,
        "cargo build -p ... must be lockbox and every example plugin"
    );
    let loop_bins: BTreeSet<String> = {
        let start = w
            .iter()
            .position(|x| x == "for")
            .expect("for loop over plugins");
        w[start + 3..]
            .iter()
            .take_while(|x| x.as_str() != "do")
            .cloned()
            .collect()
    };
    let want_bins: BTreeSet<String> = plugins.iter().map(|(_, b)| b.clone()).collect();
    assert_eq!(loop_bins, want_bins, "the plugins the image ships");
    assert!(
        run_ins.args.contains("readelf -d") && run_ins.args.contains("(NEEDED)"),
        "the build checks that the binaries are static"
    );
    for c in &copies {
        let src = c.src.trim_end_matches('/');
        assert!(src.starts_with("/out/"), "{src}");
        assert!(
            run_ins.args.contains(src),
            "{src} is not created by the build stage"
        );
    }
    let digest_copy = &self::copies(digests);
    assert_eq!(digest_copy.len(), 1);
    assert_eq!(digest_copy[0].src, "/out/SHA256SUMS");

    // What the chart relies on.
    let chart = docs(&render("lockbox", "lockbox-system", &[]));
    let sts = chart
        .iter()
        .find(|d| d["kind"] == "StatefulSet")
        .expect("StatefulSet");
    let c = &sts["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(
        c["command"][0],
        Value::String(entrypoint[0].clone()),
        "chart command = ENTRYPOINT"
    );
    let args: Vec<&str> = c["args"]
        .as_array()
        .expect("args")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let arg = |flag: &str| {
        args.iter()
            .find_map(|a| a.strip_prefix(flag))
            .unwrap_or_else(|| panic!("chart passes no {flag}"))
    };
    let dest_of = |src: &str| -> String {
        copies
            .iter()
            .find(|c| c.src == src)
            .unwrap_or_else(|| panic!("the image has no COPY of {src}"))
            .dest
            .trim_end_matches('/')
            .to_string()
    };
    assert_eq!(
        arg("--plugin-directory="),
        dest_of("/out/plugins/"),
        "plugin directory"
    );
    // The data directory is inside the image's data directory, which is
    // where the chart mounts the volume.
    let data_dir = arg("--data-dir=");
    assert!(
        data_dir.starts_with(&format!("{}/", dest_of("/out/data/"))),
        "--data-dir={data_dir} must be inside {}",
        dest_of("/out/data/")
    );
    assert!(
        c["volumeMounts"]
            .as_array()
            .expect("mounts")
            .iter()
            .any(|m| m["name"] == "data" && m["mountPath"] == dest_of("/out/data/")),
        "the data volume is mounted at {}",
        dest_of("/out/data/")
    );
    let data = copies
        .iter()
        .find(|c| c.src == "/out/data/")
        .expect("data dir");
    assert_eq!(
        data.chown.as_deref(),
        Some("65532:65532"),
        "the data directory belongs to 65532"
    );
    let values: Value = serde_saphyr::from_str(
        &std::fs::read_to_string(repo().join("charts/lockbox/values.yaml")).expect("values"),
    )
    .expect("values.yaml");
    let sub = values["plugins"]["volumeSubdirectory"]
        .as_str()
        .expect("volumeSubdirectory");
    assert!(
        run_ins.args.contains(&format!("/out/plugins/{sub}")),
        "the image has the mount point {sub}/ for the plugin volume"
    );
    let test_pod = chart
        .iter()
        .find(|d| d["kind"] == "Pod")
        .expect("test pod")
        .to_string();
    assert!(
        test_pod.contains(&format!(
            "sha256=@{}/lockbox-plugin-mock",
            dest_of("/out/sha256/")
        )),
        "the helm test reads the mock plugin's digest from the image"
    );
    // CMD (for `docker run`) agrees with the chart and is accepted.
    let cmd = exec_form(image, "CMD");
    assert!(
        cmd.contains(&format!("--data-dir={}", arg("--data-dir="))),
        "{cmd:?}"
    );
    assert!(
        cmd.contains(&format!(
            "--plugin-directory={}",
            arg("--plugin-directory=")
        )),
        "{cmd:?}"
    );
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = run(Command::new(workspace_binary("lockbox"))
        .args(&cmd)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", tmp.path())
        .env("KUBECONFIG", tmp.path().join("none")));
    assert!(
        out.stderr
            .contains("cannot configure the Kubernetes client"),
        "CMD {cmd:?} is not accepted:\n{}",
        out.all()
    );
}

/// The shared libraries `ldd` says `bin` needs.
fn needed(bin: &Path) -> Vec<String> {
    let out = run(Command::new("ldd").arg(bin));
    assert!(out.ok, "ldd {}: {}", bin.display(), out.all());
    out.stdout
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(|l| l.rsplit('/').next().unwrap_or(l).to_string())
        .collect()
}

#[test]
fn image_binaries_need_only_glibc_so_they_link_statically() {
    // The debug binaries are dynamic; the image's are built with
    // +crt-static. That works when glibc (and libgcc, which Rust then links
    // as libgcc_eh) is all they need: another library (OpenSSL, zlib, ...)
    // would make the static build fail or need the library in the image.
    const GLIBC: [&str; 10] = [
        "linux-vdso.so.1",
        "libc.so.6",
        "libm.so.6",
        "libgcc_s.so.1",
        "libpthread.so.0",
        "libdl.so.2",
        "librt.so.1",
        "libutil.so.1",
        "ld-linux-x86-64.so.2",
        "ld-linux-aarch64.so.1",
    ];
    let mut bins: Vec<PathBuf> = vec![workspace_binary("lockbox")];
    bins.extend(workspace_plugins().iter().map(|(_, b)| workspace_binary(b)));
    for bin in bins {
        let libs = needed(&bin);
        assert!(
            libs.iter().any(|l| l == "libc.so.6"),
            "{}: {libs:?}",
            bin.display()
        );
        let other: Vec<&String> = libs
            .iter()
            .filter(|l| !GLIBC.contains(&l.as_str()))
            .collect();
        assert!(
            other.is_empty(),
            "{} needs {other:?}, which a static glibc build cannot provide",
            bin.display()
        );
    }
}

#[test]
fn parser_reads_continuations_and_stages() {
    let st = parse(
        "# c\nFROM a AS one\nRUN x \\\n  # inner comment\n  y\nFROM b\nCOPY --from=one /out/x /y\n",
    );
    assert_eq!(st.len(), 2);
    assert_eq!(st[0].body[0].args, "x y");
    assert_eq!(copies(&st[1])[0].dest, "/y");
}
