//! Hostile design input: no commit can crash, hang or exhaust the server or
//! `slipway validate`. Each hostile file ends as an invalid revision with its
//! own code while the last good revision keeps serving; limits hold on both
//! parser paths, in a thread with an ordinary stack.
//!
//! Bounded memory is shown without timing: a "billion laughs" that would need
//! gigabytes is refused with the alias-budget code (before the limit this test
//! ran out of memory), and nesting that overflowed the stack is refused with
//! the depth code on a 2 MiB thread.

mod common;

use std::process::{Command, Output};

use common::{GitRepo, Server};
use slipway::design::{self, yaml, DesignFile, Limits};

/// A "billion laughs": nine levels of nine aliases each, 700 bytes of text
/// that expand to 9^9 scalars.
fn billion_laughs() -> String {
    let mut t = String::from(
        "schema: drydock/Rack/v1\nmetadata:\n  name: r\ndata:\n  labels:\n    a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n",
    );
    let mut prev = 'a';
    for c in "bcdefghi".chars() {
        let refs = vec![format!("*{prev}"); 9].join(", ");
        t.push_str(&format!("    {c}: &{c} [{refs}]\n"));
        prev = c;
    }
    t
}

/// One 1 MiB anchor aliased 100 times (100 MiB once expanded).
fn large_anchor() -> String {
    let mut t = format!(
        "schema: drydock/Rack/v1\nmetadata:\n  name: r\ndata:\n  labels:\n    a: &a \"{}\"\n",
        "x".repeat(1 << 20)
    );
    for i in 0..100 {
        t.push_str(&format!("    b{i}: *a\n"));
    }
    t
}

/// Block mappings nested `levels` deep (one more space per level).
fn deep_block(levels: usize) -> String {
    let mut t = String::from("schema: drydock/Rack/v1\nmetadata:\n  name: r\ndata:\n  labels:\n");
    for i in 0..levels {
        t.push_str(&format!("{}k{i}:\n", " ".repeat(4 + i)));
    }
    t.push_str(&format!("{}x: 1\n", " ".repeat(4 + levels)));
    t
}

fn error_codes(v: &design::Validation) -> Vec<String> {
    v.messages
        .iter()
        .filter(|m| m.error)
        .map(|m| m.code.clone())
        .collect()
}

fn validate_text(text: &str) -> design::Validation {
    slipway::validate(&[DesignFile {
        path: "hostile.yaml".into(),
        bytes: text.as_bytes().to_vec(),
    }])
}

#[test]
fn a_billion_laughs_is_refused_with_the_alias_budget_code() {
    let v = validate_text(&billion_laughs());
    assert_eq!(error_codes(&v), ["SW116"], "{:?}", v.messages);
    let m = v.messages.iter().find(|m| m.code == "SW116").unwrap();
    let src = m.source.as_ref().unwrap();
    assert_eq!(src.file, "hostile.yaml");
    assert!(src.line > 5, "{m:?}");
}

#[test]
fn one_large_anchor_aliased_many_times_is_refused_with_the_alias_budget_code() {
    let v = validate_text(&large_anchor());
    assert_eq!(error_codes(&v), ["SW116"], "{:?}", v.messages);
}

#[test]
fn nesting_thousands_of_levels_deep_is_refused_on_an_ordinary_stack() {
    let text = deep_block(5000);
    // 2 MiB: the default stack of a spawned thread (rayon's workers included).
    let worker = std::thread::Builder::new().stack_size(2 << 20);
    let v = worker
        .spawn(move || {
            // Both parser paths, and the whole pipeline.
            let fast_or_general = yaml::parse_stream(&text).unwrap_err();
            let general = yaml::parse_general(&text, 0).unwrap_err();
            assert_eq!(fast_or_general, general);
            assert_eq!(general.kind, yaml::ErrorKind::TooDeep);
            validate_text(&text)
        })
        .unwrap()
        .join()
        .expect("no stack overflow");
    assert_eq!(error_codes(&v), ["SW115"], "{:?}", v.messages);
    let flow = format!(
        "schema: drydock/Rack/v1\nmetadata: {{name: r}}\ndata: {{labels: {{x: {}{}}}}}\n",
        "[".repeat(5000),
        "]".repeat(5000)
    );
    let v = std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(move || validate_text(&flow))
        .unwrap()
        .join()
        .expect("no stack overflow");
    assert_eq!(error_codes(&v), ["SW115"], "{:?}", v.messages);
}

#[test]
fn files_and_designs_over_the_byte_caps_are_refused_by_the_parse_stage() {
    let limits = Limits {
        max_file_bytes: 1000,
        max_design_bytes: 1500,
    };
    let file = |path: &str, n: usize| DesignFile {
        path: path.into(),
        bytes: format!("# {}\n", "x".repeat(n)).into_bytes(),
    };
    let v = slipway::validate_within(&[file("a.yaml", 2000)], &limits);
    assert_eq!(error_codes(&v), ["SW113"], "{:?}", v.messages);
    let m = &v.messages.iter().find(|m| m.code == "SW113").unwrap();
    assert!(
        m.message.contains("2003 bytes") && m.message.contains("1000"),
        "{m:?}"
    );
    assert_eq!(m.source.as_ref().unwrap().file, "a.yaml");
    let v = slipway::validate_within(&[file("a.yaml", 900), file("b.yaml", 900)], &limits);
    assert_eq!(error_codes(&v), ["SW114"], "{:?}", v.messages);
    assert_eq!(
        v.messages
            .iter()
            .find(|m| m.code == "SW114")
            .unwrap()
            .source
            .as_ref()
            .unwrap()
            .file,
        "b.yaml"
    );
}

#[test]
fn a_design_without_any_drydock_document_is_invalid() {
    for text in [
        "",
        "# only a comment\n",
        "schema: deckhand/Passphrase/v1\nmetadata: {name: p}\ndata: secret\n",
        "stages: [test]\ntest:\n  script: [make]\n",
    ] {
        let v = validate_text(text);
        assert_eq!(error_codes(&v), ["SW112"], "{text:?}: {:?}", v.messages);
    }
}

fn slipway(args: &[&str], dir: &std::path::Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_slipway"))
        .args(args)
        .current_dir(dir)
        .env("SLIPWAY_LOG", "warn")
        .output()
        .expect("run slipway")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn slipway_validate_reports_each_hostile_file_as_invalid_with_its_code() {
    let dir = tempfile::tempdir().unwrap();
    for (name, text, code) in [
        ("laughs.yaml", billion_laughs(), "SW116"),
        ("anchor.yaml", large_anchor(), "SW116"),
        ("deep.yaml", deep_block(5000), "SW115"),
        (
            "deckhand.yaml",
            "schema: deckhand/Passphrase/v1\nmetadata: {name: p}\ndata: x\n".to_string(),
            "SW112",
        ),
    ] {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        let out = slipway(&["validate", p.to_str().unwrap()], dir.path());
        assert_eq!(out.status.code(), Some(1), "{name}: {}", stdout(&out));
        assert!(
            stdout(&out).contains(&format!("{name}:")) && stdout(&out).contains(code),
            "{name}: {}",
            stdout(&out)
        );
    }
}

#[test]
fn slipway_validate_refuses_files_over_the_configured_cap_without_reading_them() {
    let g = GitRepo::new();
    g.add_example_site();
    g.write(
        "designs/zz-huge.yaml",
        format!("# {}\n", "x".repeat(3 << 20)),
    );
    g.commit("a 3 MiB file");
    let root = g.path().to_str().unwrap();
    // A git revision (sizes from the object headers) and a plain directory.
    for args in [
        vec!["validate", root, "--max-file-size", "2MiB"],
        vec![
            "validate",
            root,
            "--rev",
            "HEAD",
            "--max-file-size",
            "2MiB",
            "--format",
            "json",
        ],
    ] {
        let out = slipway(&args, g.path());
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", stdout(&out));
        assert!(stdout(&out).contains("SW113"), "{}", stdout(&out));
        assert!(stdout(&out).contains("zz-huge.yaml"), "{}", stdout(&out));
    }
    let designs = g.path().join("designs");
    let out = slipway(
        &[
            "validate",
            designs.to_str().unwrap(),
            "--max-design-size",
            "1MiB",
        ],
        g.path(),
    );
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(stdout(&out).contains("SW114"), "{}", stdout(&out));
    // The defaults (64 MiB a file) admit it.
    let out = slipway(&["validate", root], g.path());
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let bad = slipway(&["validate", root, "--max-file-size", "lots"], g.path());
    assert_eq!(bad.status.code(), Some(2));
}

/// A served repository: after a good revision, each hostile commit is
/// recorded invalid with its code, health stays 204 and the good revision
/// keeps serving.
#[tokio::test(flavor = "multi_thread")]
async fn hostile_commits_are_recorded_invalid_and_the_good_revision_keeps_serving() {
    let g = GitRepo::new();
    g.add_example_site();
    let good = g.commit("site");
    let db_dir = tempfile::tempdir().unwrap();
    let db = db_dir.path().join("slipway.db");
    let s = Server::start_with(g.path(), &db, |cfg| {
        cfg.poll = std::time::Duration::from_secs(3600);
        cfg.limits = Limits {
            max_file_bytes: 4 << 20,
            max_design_bytes: 6 << 20,
        };
    })
    .await
    .expect("server start");
    s.wait_status(&good, "applied").await;

    type Change = Box<dyn Fn(&GitRepo)>;
    let add = |path: &'static str, text: String| -> Change {
        Box::new(move |g: &GitRepo| g.write(path, &text))
    };
    let cases: Vec<(&str, Change, &str)> = vec![
        (
            "billion laughs",
            add("designs/zz-laughs.yaml", billion_laughs()),
            "SW116",
        ),
        (
            "large anchor",
            add("designs/zz-anchor.yaml", large_anchor()),
            "SW116",
        ),
        (
            "deep nesting",
            add("designs/zz-deep.yaml", deep_block(1000)),
            "SW115",
        ),
        (
            "merge of a scalar",
            add(
                "designs/zz-merge.yaml",
                "schema: drydock/Rack/v1\nmetadata: {name: zz}\ndata:\n  labels:\n    <<: 1\n"
                    .into(),
            ),
            "SW117",
        ),
        (
            // yaml-rust2 alone ends the stream at a NUL: the nodes after it
            // would have been dropped, and deleted by the apply.
            "a NUL byte inside a document",
            Box::new(|g: &GitRepo| {
                let path = g.path().join("designs/racks.yaml");
                let text = std::fs::read_to_string(&path).unwrap();
                // Before the last rack's location and labels: read up to the
                // NUL, that rack would validate without them and be applied so.
                let at = text.rfind("  location:").expect("a location in racks.yaml");
                let mut cut = text.clone();
                cut.insert(at, '\0');
                std::fs::write(&path, cut).unwrap();
            }),
            "SW101",
        ),
        (
            "a file over the cap",
            add(
                "designs/zz-huge.yaml",
                format!("# {}\n", "x".repeat(5 << 20)),
            ),
            "SW113",
        ),
        (
            "a design over the cap",
            Box::new(|g: &GitRepo| {
                g.write("designs/zz-a.yaml", format!("# {}\n", "x".repeat(7 << 19)));
                g.write("designs/zz-b.yaml", format!("# {}\n", "x".repeat(7 << 19)));
            }),
            "SW114",
        ),
        (
            "only Deckhand documents",
            Box::new(|g: &GitRepo| {
                g.git(&["rm", "-rqf", "designs"]);
                g.write(
                    "designs/secrets.yaml",
                    "schema: deckhand/Passphrase/v1\nmetadata: {name: p}\ndata: x\n",
                );
            }),
            "SW112",
        ),
        (
            "an empty file",
            Box::new(|g: &GitRepo| {
                g.git(&["rm", "-rqf", "designs"]);
                g.write("designs/site.yaml", "");
            }),
            "SW112",
        ),
        (
            "the root fallback finds CI configuration",
            Box::new(|g: &GitRepo| {
                g.git(&["rm", "-rqf", "designs"]);
                g.write(
                    ".gitlab-ci.yml",
                    "stages: [test]\ntest:\n  script: [make]\n",
                );
            }),
            "SW112",
        ),
    ];
    for (what, change, code) in cases {
        change(&g);
        let bad = g.commit(what);
        s.wait_status(&bad, "invalid").await;
        let revs = s.revisions().await;
        let rec = revs.iter().find(|r| r["commit"] == bad.as_str()).unwrap();
        let codes: Vec<&str> = rec["messages"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["error"] == true)
            .map(|m| m["code"].as_str().unwrap())
            .collect();
        assert_eq!(codes, [code], "{what}: {rec}");
        assert_eq!(
            s.health().await,
            204,
            "{what}: the good revision keeps serving"
        );
        assert_eq!(
            s.status_of(&good).await.as_deref(),
            Some("applied"),
            "{what}"
        );
        // Back to the good design for the next case.
        g.git(&[
            "rm",
            "-rqf",
            "--ignore-unmatch",
            "designs",
            ".gitlab-ci.yml",
        ]);
        g.git(&["checkout", &good, "--", "designs"]);
    }
    let (code, nodes) = s.get("/api/v1.0/nodes").await;
    assert_eq!(code, 200, "{nodes}");
    assert_eq!(nodes.as_array().map(Vec::len), Some(12), "no node lost");
    s.stop().await;
}

/// `dns.servers` written as real sites write it (space-separated) validates
/// and renders: MAAS splits the string at commas and whitespace.
#[test]
fn space_separated_dns_servers_validate_and_render() {
    let g = GitRepo::new();
    g.add_example_site();
    let path = g.path().join("designs/networks.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    let changed = text.replacen("servers: 10.48.0.2", "servers: 10.48.0.2 10.48.0.3", 1);
    let changed = changed.replacen(
        "servers: '10.48.0.2,10.48.0.3'",
        "servers: '10.48.0.2, 10.48.0.3 10.48.0.4'",
        1,
    );
    assert_ne!(changed, text);
    std::fs::write(&path, changed).unwrap();
    g.commit("dns servers as MAAS reads them");
    let out = slipway(&["validate", g.path().to_str().unwrap()], g.path());
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let files = slipway::source::read_dir_files(&g.path().join("designs")).unwrap();
    let v = slipway::validate(&files);
    let d = v.design.unwrap();
    let net = d
        .networks
        .iter()
        .find(|n| {
            n.data
                .dns
                .as_ref()
                .and_then(|x| x.servers.as_ref())
                .is_some_and(|s| s.len() == 3)
        })
        .expect("a network with three servers");
    assert_eq!(
        net.data.dns.as_ref().unwrap().servers.as_deref().unwrap(),
        ["10.48.0.2", "10.48.0.3", "10.48.0.4"]
    );
    let node = d.nodes[0].name.clone();
    let tar = g.path().join("node.tgz");
    let out = slipway(
        &[
            "render",
            &node,
            "--repo",
            g.path().to_str().unwrap(),
            "--files",
            "-o",
            tar.to_str().unwrap(),
        ],
        g.path(),
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(std::fs::metadata(&tar).unwrap().len() > 0);
}

/// The size cap is checked from the object header: a blob over the cap is
/// never inflated. Shown with a blob whose header is intact but whose body is
/// cut short: over the cap the commit is refused with SW113; read whole (no
/// cap reached) the same blob is a git error.
#[test]
fn a_blob_over_the_cap_is_refused_from_its_header_without_being_inflated() {
    use std::io::Write;
    let g = GitRepo::new();
    g.add_example_site();
    let size = 3 << 20;
    g.write(
        "designs/zz-huge.yaml",
        format!("#{}\n", "x".repeat(size - 2)),
    );
    g.commit("a 3 MiB file");
    let oid = g.git(&["rev-parse", "HEAD:designs/zz-huge.yaml"]);
    let object = g
        .path()
        .join(".git/objects")
        .join(&oid[..2])
        .join(&oid[2..]);
    assert!(object.exists(), "the blob is a loose object");
    // The same header, then only 100 bytes of the 3 MiB body.
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    z.write_all(format!("blob {size}\0").as_bytes()).unwrap();
    z.write_all(&[b'#'; 100]).unwrap();
    let cut = z.finish().unwrap();
    let mut perms = std::fs::metadata(&object).unwrap().permissions();
    #[allow(clippy::permissions_set_readonly_false)]
    perms.set_readonly(false);
    std::fs::set_permissions(&object, perms).unwrap();
    std::fs::write(&object, cut).unwrap();
    let root = g.path().to_str().unwrap();
    let capped = slipway(
        &["validate", root, "--rev", "HEAD", "--max-file-size", "2MiB"],
        g.path(),
    );
    assert_eq!(capped.status.code(), Some(1), "{}", stdout(&capped));
    assert!(stdout(&capped).contains("SW113"), "{}", stdout(&capped));
    let whole = slipway(&["validate", root, "--rev", "HEAD"], g.path());
    assert_eq!(
        whole.status.code(),
        Some(2),
        "reading the blob whole must fail on the cut body: {}",
        stdout(&whole)
    );
}

/// `validatedesign` sizes a `file://` file against the server's caps before
/// reading it, as the files of a revision are (before, a file reference was
/// read whole and validated under the default caps).
#[tokio::test(flavor = "multi_thread")]
async fn validatedesign_refuses_a_file_reference_over_the_servers_cap() {
    let g = GitRepo::new();
    g.add_example_site();
    let good = g.commit("site");
    let db_dir = tempfile::tempdir().unwrap();
    let s = Server::start_with(g.path(), &db_dir.path().join("slipway.db"), |cfg| {
        cfg.poll = std::time::Duration::from_secs(3600);
        cfg.limits = Limits {
            max_file_bytes: 10_000,
            max_design_bytes: 1 << 20,
        };
    })
    .await
    .expect("server start");
    s.wait_status(&good, "applied").await;
    // A valid design (the example site in one file), over the cap.
    let mut site = String::new();
    for f in slipway::source::read_dir_files(&g.path().join("designs")).unwrap() {
        site.push_str(std::str::from_utf8(&f.bytes).unwrap());
        site.push_str("\n---\n");
    }
    assert!(
        site.len() > 10_000,
        "the example site is {} bytes",
        site.len()
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("site.yaml");
    std::fs::write(&file, &site).unwrap();
    let valid = slipway::validate(&[DesignFile {
        path: "site.yaml".into(),
        bytes: site.into_bytes(),
    }]);
    assert!(valid.is_valid(), "{:?}", valid.messages);

    let r = common::client()
        .post(s.url("/api/v1.0/validatedesign"))
        .json(&serde_json::json!({"href": format!("file://{}", file.display())}))
        .send()
        .await
        .unwrap();
    let code = r.status().as_u16();
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(code, 400, "{body}");
    assert_eq!(body["kind"], "Status", "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("SW113"),
        "{body}"
    );
}

/// A restart reads the applied revision again within the server's caps, not
/// the defaults: with caps below its files, boot data is unavailable and
/// health says so (before, the restart read it under the default caps).
#[tokio::test(flavor = "multi_thread")]
async fn a_restart_reads_the_applied_revision_within_the_configured_caps() {
    let g = GitRepo::new();
    g.add_example_site();
    let good = g.commit("site");
    let db_dir = tempfile::tempdir().unwrap();
    let db = db_dir.path().join("slipway.db");
    let s = Server::start_with(g.path(), &db, |cfg| {
        cfg.poll = std::time::Duration::from_secs(3600);
    })
    .await
    .expect("server start");
    s.wait_status(&good, "applied").await;
    s.stop().await;

    let s = Server::start_with(g.path(), &db, |cfg| {
        cfg.poll = std::time::Duration::from_secs(3600);
        cfg.limits = Limits {
            max_file_bytes: 100,
            max_design_bytes: 1 << 20,
        };
    })
    .await
    .expect("server restart");
    common::wait_for("health to report the unreadable revision", || async {
        let (code, body) = s.get("/api/v1.0/health/extended").await;
        code == 503 && body["problem"]["reason"] == "RevisionUnavailable"
    })
    .await;
    let (_, body) = s.get("/api/v1.0/health/extended").await;
    assert!(
        body["problem"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("SW113"),
        "{body}"
    );
}
