//! Luna2's boot and monitor routes against the real server: every iPXE
//! script checked by a strict line grammar of iPXE (tests/luna2/ipxe.rs),
//! a script served by MAC for every node of a 10,000-node site with the
//! node's kernel, initrd, arguments and working boot-data key, the seed's
//! menu table, hostile path segments (the SQL injection that broke Luna2's
//! `/boot/manual` among them) refused with a 400 before any script, the
//! installer (token, its own install-time token, `bash -n`), and a node's
//! posted status stored durably and shown.

mod common;
#[path = "luna2/ipxe.rs"]
mod ipxe;
#[path = "luna2/server.rs"]
mod luna;

use std::sync::Arc;

use common::{client, GitRepo, Server};
use luna::json_of;
use serde_json::{json, Value};
use slipway::design::effective::EffectiveNode;
use slipway::source::read_dir_files;

/// The design the server serves, read by the library (expected values come
/// from it, never hard-coded).
fn design_of(g: &GitRepo) -> slipway::design::Design {
    let v = slipway::validate(&read_dir_files(&g.path().join("designs")).unwrap());
    assert!(v.is_valid(), "{:?}", &v.messages[..v.messages.len().min(3)]);
    v.design.unwrap()
}

/// What a node's network-boot script must say, from the design.
fn expect_node_script(script: &str, d: &slipway::design::Design, n: &EffectiveNode, mac: &str) {
    ipxe::assert_well_formed(&n.name, script);
    let net = d.network(n.primary_network.as_deref().unwrap()).unwrap();
    let prefix = net.data.cidr.as_deref().unwrap().split('/').nth(1).unwrap();
    let addr = n.address_on(n.primary_network.as_deref().unwrap()).unwrap();
    let domain = net.data.dns.as_ref().unwrap().domain.clone().unwrap();
    let (image, kernel) = (n.image.clone().unwrap(), n.kernel.clone().unwrap());
    for want in [
        format!(" luna.node={} ", n.name),
        format!(" luna.hostname={}.{domain} ", n.name),
        format!(" luna.mac={mac} "),
        format!(" luna.ip={addr}/{prefix} "),
        "luna.bootproto=static".to_string(),
        format!("/files/{image}-vmlinuz-{kernel} "),
        format!("/files/{image}-initramfs-{kernel} "),
        format!("/api/v1.0/bootactions/nodes/{} ", n.name),
    ] {
        assert!(
            script.contains(&want),
            "{}: no `{want}` in\n{script}",
            n.name
        );
    }
    for (k, v) in n.kernel_params.iter() {
        let arg = match v {
            Value::Bool(true) => k.clone(),
            Value::String(s) => format!("{k}={s}"),
            other => format!("{k}={other}"),
        };
        assert!(
            script.contains(&format!(" {arg} ")),
            "{}: no kernel argument `{arg}`",
            n.name
        );
    }
}

/// The identity key a script carries.
fn identity_of(script: &str) -> String {
    let at = script.find("slipway.identity=").expect("an identity key") + "slipway.identity=".len();
    script[at..].split_whitespace().next().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_node_of_a_10000_node_site_gets_its_well_formed_boot_script_by_mac() {
    ipxe::self_test();
    let g = GitRepo::new();
    g.add_gen_site(&["--nodes", "10000"]);
    let design = Arc::new(design_of(&g));
    let l = luna::start(g, |_| {}).await;
    let base = Arc::new(l.s.base.clone());
    let nodes: Vec<usize> = (0..design.effective_nodes().len()).collect();
    assert_eq!(nodes.len(), 10_000);
    // Eight clients at once, each with its own keep-alive connection.
    let chunks: Vec<Vec<usize>> = nodes.chunks(1250).map(<[usize]>::to_vec).collect();
    let mut tasks = Vec::new();
    for chunk in chunks {
        let (design, base) = (design.clone(), base.clone());
        tasks.push(tokio::spawn(async move {
            let c = client();
            let mut identities = Vec::new();
            for i in chunk {
                let n = &design.effective_nodes()[i];
                let mac = n.boot_mac.clone().unwrap();
                let r = c
                    .get(format!("{base}/boot/search/mac/{mac}"))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status().as_u16(), 200, "{}", n.name);
                assert!(r.headers()["content-type"]
                    .to_str()
                    .unwrap()
                    .starts_with("text/plain"));
                let script = r.text().await.unwrap();
                expect_node_script(&script, &design, n, &mac);
                identities.push((n.name.clone(), identity_of(&script)));
            }
            identities
        }));
    }
    let mut identities = Vec::new();
    for t in tasks {
        identities.extend(t.await.unwrap());
    }
    assert_eq!(identities.len(), 10_000);
    // The key in a script opens the node's boot data, and only its own.
    for (name, key) in identities.iter().step_by(997) {
        let r = client()
            .get(l.s.url(&format!("/api/v1.0/bootactions/nodes/{name}/units")))
            .header("X-Bootaction-Key", key)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200, "{name}'s key opens its boot data");
    }
    let (other, key) = &identities[1];
    let r = client()
        .get(l.s.url(&format!(
            "/api/v1.0/bootactions/nodes/{}/units",
            identities[0].0
        )))
        .header("X-Bootaction-Key", key)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status().as_u16(),
        403,
        "{other}'s key is not another node's"
    );
    // Asked again, a script is the same bytes (served from memory), and the
    // seed's path serves it too.
    let n = &design.effective_nodes()[42];
    let mac = n.boot_mac.clone().unwrap();
    let a = l.get(&format!("/boot/search/mac/{mac}"), None).await;
    let b = l
        .get(&format!("/boot/search/{}", mac.to_uppercase()), None)
        .await;
    assert_eq!(a.0, 200);
    assert_eq!(a.2, b.2.replace(&mac.to_uppercase(), &mac));
    l.s.stop().await;
}

/// A 40-node gen-site with n00002 marked `luna2.netboot: false`.
fn small_site() -> GitRepo {
    let g = GitRepo::new();
    g.add_gen_site(&["--nodes", "40", "--racks", "2"]);
    let path = g.path().join("designs/site.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    let at = "    boot_mac: '02:bd:50:00:00:02'";
    assert!(text.contains(at), "gen-site's node layout changed");
    let text = text.replacen(at, &format!("      luna2.netboot: 'false'\n{at}"), 1);
    std::fs::write(&path, text).unwrap();
    g
}

#[tokio::test]
async fn menus_disk_discovery_and_manual_scripts_follow_the_seeds_table_and_parse() {
    let g = small_site();
    let design = design_of(&g);
    let l = luna::start(g, |_| {}).await;
    let node = |name: &str| {
        design
            .effective_nodes()
            .iter()
            .find(|n| n.name == name)
            .unwrap()
            .clone()
    };

    // The menus: well-formed; the full one lists every node and group.
    for path in ["/boot", "/boot/short", "/boot/disk"] {
        let (code, ct, script) = l.get(path, None).await;
        assert_eq!(code, 200, "{path}");
        assert!(ct.starts_with("text/plain"), "{path}: {ct}");
        ipxe::assert_well_formed(path, &script);
        assert!(
            script.contains(&l.s.base),
            "{path} points back at the server"
        );
    }
    let (_, _, full) = l.get("/boot", None).await;
    for n in design.effective_nodes() {
        assert!(
            full.contains(&format!("\nitem {0} {0}\n", n.name)),
            "{}",
            n.name
        );
    }
    for p in &design.host_profiles {
        assert!(
            full.contains(&format!("\nitem {0} {0}\n", p.name)),
            "{}",
            p.name
        );
    }
    let (_, _, short) = l.get("/boot/short", None).await;
    assert!(
        !short.contains("item n00001 n00001"),
        "the short menu lists no nodes"
    );

    // Known + netboot → the node's kernel; known, no netboot → the disk.
    let n1 = node("n00001");
    let mac1 = n1.boot_mac.clone().unwrap();
    let (code, _, s1) = l.get(&format!("/boot/search/mac/{mac1}"), None).await;
    assert_eq!(code, 200);
    expect_node_script(&s1, &design, &n1, &mac1);
    let (_, _, disk) = l.get("/boot/disk", None).await;
    let mac2 = node("n00002").boot_mac.clone().unwrap();
    let (code, _, s2) = l.get(&format!("/boot/search/mac/{mac2}"), None).await;
    assert_eq!((code, &s2), (200, &disk), "n00002 does not netboot");

    // Unknown MAC → the discovery script, back to the menu.
    let (code, _, s) = l.get("/boot/search/mac/0a:00:00:00:00:99", None).await;
    assert_eq!(code, 200);
    ipxe::assert_well_formed("discovery", &s);
    assert!(s.contains("0a:00:00:00:00:99") && s.contains("/boot "));

    // By hand: the node with the given MAC, or its own boot MAC.
    let n3 = node("n00003");
    let (code, _, s) = l
        .get("/boot/manual/hostname/n00003/0a:00:00:00:00:03", None)
        .await;
    assert_eq!(code, 200);
    expect_node_script(&s, &design, &n3, "0a:00:00:00:00:03");
    let (_, _, s) = l.get("/boot/manual/hostname/n00003", None).await;
    expect_node_script(&s, &design, &n3, n3.boot_mac.as_deref().unwrap());

    // What fails for a booting machine is a 200 error script that parses.
    for path in [
        "/boot/manual/hostname/nosuch/0a:00:00:00:00:03",
        "/boot/manual/hostname/nosuch",
        "/boot/manual/group/compute-node/0a:00:00:00:00:03",
        "/boot/manual/group/nosuch/0a:00:00:00:00:03",
    ] {
        let (code, ct, s) = l.get(path, None).await;
        assert_eq!(code, 200, "{path}");
        assert!(ct.starts_with("text/plain"));
        ipxe::assert_well_formed(path, &s);
        assert!(s.contains("echo slipway: "), "{path}: {s}");
        assert!(!s.contains("imgexec"), "{path} boots nothing");
    }
    l.s.stop().await;
}

#[tokio::test]
async fn hostile_path_segments_are_400_in_luna_shape_and_never_reach_a_script() {
    let l = luna::start(small_site(), |_| {}).await;
    let token = l.token().await;
    let mac = "02:bd:50:00:00:01";
    let hostile = [
        "x'%20OR%20'1'%3D'1",
        "n00001'%20OR%20'1'%3D'1",
        "n00001%3Bls",
        "..%2F..%2Fetc%2Fpasswd",
        "%22n00001%22",
        "%24%7Bnet0%2Fmac%7D",
        "n00001%20n00002",
        &"a".repeat(300),
    ];
    let mut paths = Vec::new();
    for h in hostile {
        paths.push(format!("/boot/manual/hostname/{h}/{mac}"));
        paths.push(format!("/boot/manual/hostname/{h}"));
        paths.push(format!("/boot/manual/group/{h}/{mac}"));
        paths.push(format!("/boot/manual/hostname/n00001/{h}"));
        paths.push(format!("/boot/search/mac/{h}"));
        paths.push(format!("/boot/search/{h}"));
        paths.push(format!("/boot/install/{h}"));
        paths.push(format!("/monitor/node/{h}"));
        paths.push(format!("/monitor/status/{h}"));
    }
    // MACs in any other form than iPXE's.
    for bad_mac in [
        "02-bd-50-00-00-01",
        "02bd50000001",
        "02:bd:50:00:00:0g",
        "02:bd:50:00:00:01:ff",
    ] {
        paths.push(format!("/boot/search/mac/{bad_mac}"));
        paths.push(format!("/boot/manual/hostname/n00001/{bad_mac}"));
    }
    for p in &paths {
        let (code, ct, body) = l.get(p, Some(&token)).await;
        assert_eq!(code, 400, "{p}: {body}");
        assert!(ct.starts_with("application/json"), "{p}: {ct}");
        let v = json_of(&body);
        assert!(
            v["message"]
                .as_str()
                .unwrap()
                .starts_with("Invalid request"),
            "{p}: {v}"
        );
        assert!(!body.contains("#!ipxe"));
    }
    // The request that broke Luna2's /boot/manual, exactly: a 4xx, no script.
    let (code, _, body) = l
        .get(
            &format!("/boot/manual/hostname/n00001'%20OR%20'1'%3D'1/{mac}"),
            None,
        )
        .await;
    assert_eq!(code, 400, "{body}");
    l.s.stop().await;
}

#[tokio::test]
async fn the_installer_needs_a_token_parses_as_bash_and_carries_its_nodes_own_token() {
    let g = small_site();
    let l = luna::start(g, |_| {}).await;
    let token = l.token().await;
    // No token, a bad one: 401 in Luna2's shape.
    let (code, _, body) = l.get("/boot/install/n00001", None).await;
    assert_eq!(
        (code, json_of(&body)["message"].as_str().unwrap()),
        (401, "A valid token is missing")
    );
    let (code, _, _) = l.get("/boot/install/n00001", Some("not.a.token")).await;
    assert_eq!(code, 401);
    // Unknown node: 404 {"message"}.
    let (code, _, body) = l.get("/boot/install/nosuch", Some(&token)).await;
    assert_eq!(code, 404, "{body}");
    assert_eq!(json_of(&body)["message"], "nosuch not found");

    let (code, ct, script) = l.get("/boot/install/n00001", Some(&token)).await;
    assert_eq!(code, 200, "{script}");
    assert!(ct.starts_with("text/plain"));
    assert!(script.starts_with("#!/bin/bash\n"));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("install.sh");
    std::fs::write(&file, &script).unwrap();
    let out = std::process::Command::new("bash")
        .arg("-n")
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "bash -n: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(script.contains("LUNA_NODE='n00001'"));
    // Its LUNA_TOKEN is n00001's install-time token: good for n00001's
    // status and its installer, refused for another node and for operator routes.
    let at = script.find("export LUNA_TOKEN='").unwrap() + "export LUNA_TOKEN='".len();
    let provision = script[at..].split('\'').next().unwrap().to_string();
    let post =
        json!({"monitor": {"status": {"n00001": {"state": "installer.started"}}}}).to_string();
    let (code, body) = l
        .post("/monitor/node/n00001", Some(&provision), &post)
        .await;
    assert_eq!(code, 204, "{body}");
    let (code, _, _) = l.get("/boot/install/n00001", Some(&provision)).await;
    assert_eq!(code, 200);
    let other = json!({"monitor": {"status": {"n00002": {"state": "x.ok"}}}}).to_string();
    let (code, body) = l
        .post("/monitor/node/n00002", Some(&provision), &other)
        .await;
    assert_eq!(code, 403, "{body}");
    let (code, _, _) = l.get("/boot/install/n00002", Some(&provision)).await;
    assert_eq!(code, 403);
    l.s.stop().await;
}

#[tokio::test]
async fn a_nodes_posted_status_is_stored_durably_shown_on_both_paths_and_bad_posts_refused() {
    let l = luna::start(small_site(), |_| {}).await;
    let token = l.token().await;
    let post = |node: &str, state: &str| {
        json!({"monitor": {"status": {node: {"state": state}}}}).to_string()
    };
    // Never posted: 404 {"message"}, as Luna2.
    let (code, _, body) = l.get("/monitor/node/n00001", None).await;
    assert_eq!(
        (code, json_of(&body)["message"].as_str().unwrap()),
        (404, "n00001 not found")
    );

    let (code, body) = l
        .post(
            "/monitor/status/n00001",
            Some(&token),
            &post("n00001", "installer.completed"),
        )
        .await;
    assert_eq!((code, body.as_str()), (204, ""));
    for path in ["/monitor/node/n00001", "/monitor/status/n00001"] {
        let (code, _, body) = l.get(path, None).await;
        assert_eq!(code, 200, "{path}");
        assert_eq!(
            json_of(&body),
            json!({"monitor": {"status": {"n00001": {
                "state": "installer.completed", "status": "Luna installer: No errors"}}}})
        );
    }
    // Posted with its own status line, on the daemon's path.
    let with_status = json!({"monitor": {"status": {"n00003": {
        "state": "installer.error", "status": "disk not found"}}}})
    .to_string();
    let (code, _) = l
        .post("/monitor/node/n00003", Some(&token), &with_status)
        .await;
    assert_eq!(code, 204);
    // Shown on the node's config too (Luna2's `status` field), per node.
    for (node, status) in [
        ("n00001", json!("Luna installer: No errors")),
        ("n00003", json!("disk not found")),
        ("n00002", Value::Null),
    ] {
        let (code, _, body) = l.get(&format!("/config/node/{node}"), Some(&token)).await;
        assert_eq!(code, 200, "{node}: {body}");
        let shown = &json_of(&body)["config"]["node"][node];
        assert_eq!(shown["status"], status, "{node}");
        // The flag the boot scripts follow (n00002 boots from disk).
        assert_eq!(shown["netboot"], json!(node != "n00002"), "{node}");
    }

    // Refusals: no token, bad JSON, other shapes, another node's body,
    // unknown node.
    let cases: Vec<(&str, Option<&str>, String, u16)> = vec![
        ("/monitor/node/n00001", None, post("n00001", "x"), 401),
        (
            "/monitor/node/n00001",
            Some("bad"),
            post("n00001", "x"),
            401,
        ),
        (
            "/monitor/node/n00001",
            Some(&token),
            "{not json".into(),
            400,
        ),
        (
            "/monitor/node/n00001",
            Some(&token),
            json!({"monitor": {}}).to_string(),
            400,
        ),
        (
            "/monitor/node/n00001",
            Some(&token),
            json!({"monitor": {"status": {"n00001": {"state": 5}}}}).to_string(),
            400,
        ),
        (
            "/monitor/node/n00001",
            Some(&token),
            json!({"monitor": {"status": {"n00001": {"state": ""}}}}).to_string(),
            400,
        ),
        (
            "/monitor/node/n00001",
            Some(&token),
            json!({"monitor": {"status": {"n00001": {"state": "a\nb"}}}}).to_string(),
            400,
        ),
        (
            "/monitor/node/n00001",
            Some(&token),
            post("n00002", "x"),
            400,
        ),
        (
            "/monitor/node/nosuch",
            Some(&token),
            post("nosuch", "x"),
            404,
        ),
    ];
    for (path, tok, body, want) in cases {
        let (code, text) = l.post(path, tok, &body).await;
        assert_eq!(code, want, "{path} {body}: {text}");
        assert!(json_of(&text)["message"].is_string(), "{text}");
    }
    let (code, _, _) = l.get("/monitor/node/nosuch", None).await;
    assert_eq!(code, 404);

    // The service's own status.
    let (code, _, body) = l.get("/monitor/service/luna2", None).await;
    assert_eq!(code, 200);
    assert_eq!(json_of(&body)["monitor"]["Service"]["luna2"], "OK");
    let (code, _, _) = l.get("/monitor/service/dhcp", None).await;
    assert_eq!(code, 404);

    // Durable: a new server on the same database shows it; it is the node's
    // build data too (generator luna2-monitor).
    let (repo, db) = (l.g.path().to_path_buf(), l.g.path().join("slipway.db"));
    let users = l.dir.path().join("users");
    let key = l.dir.path().join("key");
    l.s.stop().await;
    let s = Server::start_with(&repo, &db, |cfg| {
        cfg.secret = Some(repo.join("secret"));
        cfg.users.users = Some(users);
        cfg.users.key_file = Some(key);
    })
    .await
    .unwrap();
    s.wait_status(&l.commit, "applied").await;
    let (code, body) = s.get("/monitor/node/n00003").await;
    assert_eq!(code, 200);
    assert_eq!(
        body,
        json!({"monitor": {"status": {"n00003": {"state": "installer.error", "status": "disk not found"}}}})
    );
    let (code, bd) = s.get("/api/v1.0/nodes/n00001/builddata?latest=true").await;
    assert_eq!(code, 200, "{bd}");
    assert!(bd.to_string().contains("luna2-monitor"), "{bd}");
    s.stop().await;
}
