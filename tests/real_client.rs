//! Drydock-style callers with real programs only: `curl` and `tar`, spawned
//! as processes against the in-process server on 127.0.0.1:0, on a site made
//! by gen-site.

mod common;

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use common::{GitRepo, Server};

fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("spawn");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// `curl` bounded in time, never through a proxy; returns (status, body).
fn curl(args: &[&str]) -> (u16, String) {
    let out = run(Command::new("curl")
        .args([
            "-sS",
            "--noproxy",
            "*",
            "--max-time",
            "20",
            "-w",
            "\n%{http_code}",
        ])
        .args(args));
    let text = String::from_utf8(out.stdout).unwrap();
    let (body, code) = text.rsplit_once('\n').unwrap();
    (code.trim().parse().unwrap(), body.to_string())
}

fn have(tool: &str) -> bool {
    Command::new(tool).arg("--version").output().is_ok()
}

/// The text after `prefix` up to the end of the token (quote, space or newline).
fn after<'a>(text: &'a str, prefix: &str) -> &'a str {
    let start = text
        .find(prefix)
        .unwrap_or_else(|| panic!("{prefix:?} in {text}"))
        + prefix.len();
    let rest = &text[start..];
    let end = rest
        .find(|c: char| c == '\'' || c == '"' || c.is_whitespace())
        .unwrap_or(rest.len());
    &rest[..end]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curl_and_tar_fetch_boot_data_and_report_status() {
    assert!(have("curl") && have("tar"), "curl and tar are needed");
    let repo = GitRepo::new();
    repo.add_gen_site(&["--nodes", "10"]);
    let commit = repo.commit("gen-site, 10 nodes");
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(
        repo.path(),
        &dir.path().join("s.db"),
        Duration::from_secs(3600),
    )
    .await;
    s.wait_status(&commit, "applied").await;
    let base = s.base.clone();
    let work = dir.path().to_path_buf();

    // Blocking processes off the runtime serving the requests.
    tokio::task::spawn_blocking(move || client_session(&base, &work))
        .await
        .unwrap();
    s.stop().await;
}

fn client_session(base: &str, work: &Path) {
    let host = "n00001";
    let (code, body) = curl(&[&format!("{base}/api/v1.0/nodes/{host}/identity")]);
    assert_eq!(code, 200, "{body}");
    let id: serde_json::Value = serde_json::from_str(&body).unwrap();
    let key = id["identity_key"].as_str().unwrap().to_string();
    let key_header = format!("X-Bootaction-Key: {key}");

    // No key: 401; a wrong key: 403.
    let units_url = format!("{base}/api/v1.0/bootactions/nodes/{host}/units");
    assert_eq!(curl(&[&units_url]).0, 401);
    let wrong = format!("X-Bootaction-Key: {}", "0".repeat(64));
    assert_eq!(curl(&["-H", &wrong, &units_url]).0, 403);

    let mut listing = String::new();
    for kind in ["units", "files"] {
        let file = work.join(format!("{host}-{kind}.tar.gz"));
        let url = format!("{base}/api/v1.0/bootactions/nodes/{host}/{kind}");
        let (code, _) = curl(&["-H", &key_header, "-o", file.to_str().unwrap(), &url]);
        assert_eq!(code, 200);
        let out = run(Command::new("tar").arg("-tzvf").arg(&file));
        let text = String::from_utf8(out.stdout).unwrap();
        for line in text.lines() {
            // -rw-r--r-- 0/0   123 2026-11-23 20:00 /etc/...
            let cols: Vec<&str> = line.split_whitespace().collect();
            assert_eq!(cols[1], "0/0", "{line}");
            assert!(cols.last().unwrap().starts_with('/'), "{line}");
        }
        listing.push_str(&text);
        let dest = work.join(kind);
        std::fs::create_dir_all(&dest).unwrap();
        run(Command::new("tar")
            .arg("-xzf")
            .arg(&file)
            .arg("-C")
            .arg(&dest));
    }
    assert!(
        listing.contains("-rw-r--r-- 0/0")
            && listing.contains("/etc/systemd/system/gensite-firstboot.service"),
        "{listing}"
    );
    assert!(
        listing.contains("-rwxr-xr-x 0/0") && listing.contains("/usr/local/bin/gensite-firstboot"),
        "{listing}"
    );
    assert!(
        listing.contains("-rw------- 0/0") && listing.contains("/etc/gensite/node.json"),
        "{listing}"
    );

    // The rendered content names the node, its action id and key.
    let unit =
        std::fs::read_to_string(work.join("units/etc/systemd/system/gensite-firstboot.service"))
            .unwrap();
    assert!(unit.contains(&format!("NODE_NAME={host}")), "{unit}");
    let action_id = after(&unit, "ACTION_ID=").to_string();
    assert_eq!(action_id.len(), 26);
    let script =
        std::fs::read_to_string(work.join("files/usr/local/bin/gensite-firstboot")).unwrap();
    let action_key = after(&script, "X-Bootaction-Key: ").to_string();
    assert_eq!(action_key.len(), 64);
    assert_ne!(action_key, key, "the script carries the action's own key");
    let report_url = format!("{base}/api/v1.0/bootactions/{action_id}");
    assert!(script.contains(&report_url), "{script}");

    // Progress, then a final status, as the boot script posts them.
    let h = format!("X-Bootaction-Key: {action_key}");
    let ct = "Content-Type: application/json";
    let (code, body) = curl(&[
        "-X",
        "POST",
        "-H",
        &h,
        "-H",
        ct,
        "-d",
        r#"{"details":[{"message":"firstboot started","error":false}]}"#,
        &report_url,
    ]);
    assert_eq!(code, 200, "{body}");
    let (code, body) = curl(&[
        "-X",
        "POST",
        "-H",
        &h,
        "-H",
        ct,
        "-d",
        r#"{"status":"Success","details":[{"message":"done","error":false}]}"#,
        &report_url,
    ]);
    assert_eq!(code, 200, "{body}");
    let (code, _) = curl(&[
        "-X",
        "POST",
        "-H",
        &h,
        "-H",
        ct,
        "-d",
        r#"{"status":"Failure","details":[{"message":"late","error":true}]}"#,
        &report_url,
    ]);
    assert_eq!(code, 409);

    let (code, body) = curl(&[&format!(
        "{base}/api/v1.0/nodes/{host}/builddata?latest=true"
    )]);
    assert_eq!(code, 200);
    let bd: serde_json::Value = serde_json::from_str(&body).unwrap();
    let rec = bd
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["generator"] == "bootaction:base-config")
        .unwrap();
    let el: serde_json::Value =
        serde_json::from_str(rec["data_element"].as_str().unwrap()).unwrap();
    assert_eq!(el["status"], "Success");
    assert_eq!(el["action_id"], action_id.as_str());
}
