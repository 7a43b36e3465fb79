//! Luna2's config reads against the real server on the example site: every
//! route in Luna2's shape, its answers checked against the design itself
//! (read with slipway's own validation, not hard-coded), every route
//! refusing a missing, foreign, expired or node-scoped token, hostile names
//! refused with a 4xx, and Luna2's real `luna` CLI listing and showing
//! nodes, groups and networks (tests/luna2/luna_cli.py).

mod common;
#[path = "luna2/site.rs"]
mod site;

use std::collections::BTreeSet;
use std::sync::Arc;

use serde_json::{json, Value};
use site::{luna, sign, Luna, KEY};
use slipway::design::effective::EffectiveNode;

/// The example site's design, as slipway validates it.
fn design() -> slipway::design::Design {
    let files = slipway::source::read_dir_files(&common::example_site()).unwrap();
    let v = slipway::validate(&files);
    assert!(v.is_valid(), "{:?}", v.messages);
    v.design.unwrap()
}

fn effective(d: &slipway::design::Design) -> Vec<Arc<EffectiveNode>> {
    d.effective_nodes().to_vec()
}

/// Every read route, with names of the example site.
fn routes(d: &slipway::design::Design) -> Vec<String> {
    let n = &d.nodes[0].name;
    let g = &d.host_profiles[0].name;
    let net = &d.networks[0].name;
    let r = &d.racks[0].name;
    vec![
        "/config/node".into(),
        format!("/config/node/{n}"),
        format!("/config/node/{n}/interfaces"),
        format!("/config/node/{n}/interfaces/pxe"),
        "/config/group".into(),
        format!("/config/group/{g}"),
        format!("/config/group/{g}/_member"),
        format!("/config/group/{g}/_list"),
        "/config/network".into(),
        format!("/config/network/{net}"),
        format!("/config/network/{net}/_nextfreeip"),
        format!("/config/network/{net}/_list"),
        format!("/config/network/{net}/10.16.1.1"),
        "/config/cluster".into(),
        "/config/osimage".into(),
        "/config/osimage/jammy".into(),
        "/config/bmcsetup".into(),
        "/config/bmcsetup/base".into(),
        "/config/rack".into(),
        format!("/config/rack/{r}"),
    ]
}

#[tokio::test]
async fn every_config_route_needs_a_valid_unexpired_operator_token() {
    let l = luna(|_| {}).await;
    let d = design();
    let good = l.token().await;
    let expired = sign(
        KEY,
        &json!({"id": 1, "username": "alice", "sub": "alice", "exp": site::now() - 5}),
    );
    let foreign = sign(
        "another key",
        &json!({"id": 1, "username": "alice", "sub": "alice", "exp": site::now() + 600}),
    );
    let no_exp = sign(KEY, &json!({"id": 1, "username": "alice"}));
    let provision = sign(
        KEY,
        &json!({"id": 0, "sub": "n00001", "username": "n00001", "exp": site::now() + 600, "scope": "provision", "node": "n00001"}),
    );
    for path in routes(&d) {
        let (code, v) = l.get(&path, Some(&good)).await;
        assert_eq!(code, 200, "{path}: {v}");
        assert!(v.get("config").is_some(), "{path}: {v}");
        let (code, v) = l.get(&path, None).await;
        assert_eq!(
            (code, &v),
            (401, &json!({"message": "A valid token is missing"})),
            "{path}"
        );
        for bad in [
            expired.as_str(),
            foreign.as_str(),
            no_exp.as_str(),
            "garbage",
            "a.b.c",
        ] {
            let (code, v) = l.get(&path, Some(bad)).await;
            assert_eq!(
                (code, &v),
                (401, &json!({"message": "Token is invalid"})),
                "{path} {bad}"
            );
        }
        let (code, v) = l.get(&path, Some(&provision)).await;
        assert_eq!(code, 403, "{path}: {v}");
        assert!(v["message"].is_string());
    }
    l.s.stop().await;
}

fn names<'a>(v: &'a Value, kind: &str) -> BTreeSet<&'a str> {
    v["config"][kind]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect()
}

#[tokio::test]
async fn nodes_and_their_interfaces_are_the_design_with_its_profile_chain() {
    let l = luna(|_| {}).await;
    let t = l.token().await;
    let d = design();
    let eff = effective(&d);
    let (code, all) = l.get("/config/node", Some(&t)).await;
    assert_eq!(code, 200);
    let expected: BTreeSet<&str> = eff.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names(&all, "node"), expected);
    for e in &eff {
        let n = &all["config"]["node"][&e.name];
        let (code, one) = l.get(&format!("/config/node/{}", e.name), Some(&t)).await;
        assert_eq!(code, 200);
        assert_eq!(&one["config"]["node"][&e.name], n, "list and show agree");
        assert_eq!(n["name"], json!(e.name));
        assert_eq!(n["group"], json!(e.profile_chain.first()), "{n}");
        assert_eq!(n["osimage"], json!(e.image));
        assert_eq!(n["setupbmc"], json!(e.oob.is_some()));
        assert_eq!(n["macaddr"], json!(e.boot_mac));
        assert_eq!(n["rack"], json!(e.rack));
        // Kernel options: base64 (the CLI decodes it), every parameter of the chain.
        use base64::Engine as _;
        let opts = String::from_utf8(
            base64::engine::general_purpose::STANDARD
                .decode(n["kerneloptions"].as_str().unwrap())
                .unwrap(),
        )
        .unwrap();
        for k in e.kernel_params.keys() {
            assert!(
                opts.split(' ')
                    .any(|o| o == k || o.starts_with(&format!("{k}="))),
                "{k} in {opts}"
            );
        }
        // Every address of the node's addressing is on an interface of that network.
        let ifaces = n["interfaces"].as_array().unwrap();
        for (net, addr) in &e.addressing {
            let (Some(net), Some(addr)) = (net, addr) else {
                continue;
            };
            assert!(
                ifaces
                    .iter()
                    .any(|i| i["network"] == json!(net) && i["ipaddress"] == json!(addr)),
                "{} {net} {addr} in {ifaces:?}",
                e.name
            );
        }
        let bmc = ifaces
            .iter()
            .find(|i| i["interface"] == "BMC")
            .expect("a BMC interface");
        let oob = e.oob.as_ref().unwrap();
        assert_eq!(bmc["network"], json!(oob.network));
        assert_eq!(
            bmc["ipaddress"],
            json!(e.address_on(oob.network.as_deref().unwrap()))
        );
        // Interfaces, one by one.
        let (code, list) = l
            .get(&format!("/config/node/{}/interfaces", e.name), Some(&t))
            .await;
        assert_eq!(code, 200);
        assert_eq!(
            &list["config"]["node"][&e.name]["interfaces"],
            &n["interfaces"]
        );
        for i in ifaces {
            let name = i["interface"].as_str().unwrap();
            let (code, one) = l
                .get(
                    &format!("/config/node/{}/interfaces/{name}", e.name),
                    Some(&t),
                )
                .await;
            assert_eq!(code, 200, "{name}: {one}");
            assert_eq!(one["config"]["node"][&e.name]["interfaces"], json!([i]));
        }
    }
    // Unknown node, unknown interface: 404 {"message"}.
    for path in [
        "/config/node/nosuchnode",
        "/config/node/nosuchnode/interfaces",
        "/config/node/nosuchnode/interfaces/pxe",
    ] {
        let (code, v) = l.get(path, Some(&t)).await;
        assert_eq!(code, 404, "{path}: {v}");
        assert!(v["message"].as_str().unwrap().contains("nosuchnode"), "{v}");
    }
    let (code, v) = l
        .get(
            &format!("/config/node/{}/interfaces/eth99", eff[0].name),
            Some(&t),
        )
        .await;
    assert_eq!(code, 404, "{v}");
    l.s.stop().await;
}

#[tokio::test]
async fn a_node_argument_may_be_a_hostlist() {
    let l = luna(|_| {}).await;
    let t = l.token().await;
    let d = design();
    let all: Vec<String> = effective(&d).iter().map(|e| e.name.clone()).collect();
    // The example site's nodes are n00001…: a range over the first four.
    let expr = "n[00001-00004]";
    let want: Vec<String> = slipway::hostlist::expand(expr).unwrap();
    assert!(want.iter().all(|w| all.contains(w)), "{want:?} in {all:?}");
    let (code, v) = l.get(&format!("/config/node/{expr}"), Some(&t)).await;
    assert_eq!(code, 200, "{v}");
    assert_eq!(names(&v, "node"), want.iter().map(String::as_str).collect());
    let (code, v) = l
        .get(&format!("/config/node/{},{}", all[0], all[1]), Some(&t))
        .await;
    assert_eq!(code, 200, "{v}");
    assert_eq!(names(&v, "node").len(), 2);
    // A name in the list that the design lacks: 404; a bad hostlist: 400.
    let (code, v) = l.get("/config/node/n[00001-00002],nosuch", Some(&t)).await;
    assert_eq!(code, 404, "{v}");
    for bad in ["n[3-1]", "n[1-2", "n[[1]]", "n[0-200000]", "n[a-b]"] {
        let (code, v) = l.get(&format!("/config/node/{bad}"), Some(&t)).await;
        assert_eq!(code, 400, "{bad}: {v}");
        assert!(v["message"].as_str().unwrap().contains("hostlist"), "{v}");
    }
    l.s.stop().await;
}

#[tokio::test]
async fn groups_are_host_profiles_and_their_members_the_nodes_using_them() {
    let l = luna(|_| {}).await;
    let t = l.token().await;
    let d = design();
    let eff = effective(&d);
    let (code, all) = l.get("/config/group", Some(&t)).await;
    assert_eq!(code, 200);
    let expected: BTreeSet<&str> = d.host_profiles.iter().map(|h| h.name.as_str()).collect();
    assert_eq!(names(&all, "group"), expected);
    for h in &d.host_profiles {
        let p = slipway::design::effective::compile_host_profile(&d, &h.name);
        let (code, one) = l.get(&format!("/config/group/{}", h.name), Some(&t)).await;
        assert_eq!(code, 200);
        let g = &one["config"]["group"][&h.name];
        assert_eq!(g, &all["config"]["group"][&h.name]);
        assert_eq!(g["osimage"], json!(p.image), "{g}");
        assert_eq!(g["setupbmc"], json!(p.oob.is_some()));
        let ifaces: BTreeSet<&str> = g["interfaces"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|i| i["network"].as_str())
            .collect();
        for (_, i) in p.interfaces.iter() {
            for net in i.networks.iter().flatten() {
                assert!(ifaces.contains(net.as_str()), "{net} in {g}");
            }
        }
        let members: Vec<&str> = eff
            .iter()
            .filter(|e| e.profile_chain.first() == Some(&h.name))
            .map(|e| e.name.as_str())
            .collect();
        for path in ["_member", "_list"] {
            let (code, v) = l
                .get(&format!("/config/group/{}/{path}", h.name), Some(&t))
                .await;
            assert_eq!(code, 200, "{v}");
            assert_eq!(
                v["config"]["group"][&h.name]["members"],
                json!(members),
                "{path}"
            );
        }
    }
    for path in ["/config/group/nosuch", "/config/group/nosuch/_member"] {
        let (code, v) = l.get(path, Some(&t)).await;
        assert_eq!(code, 404, "{path}: {v}");
    }
    l.s.stop().await;
}

#[tokio::test]
async fn networks_their_addresses_and_the_next_free_one_come_from_the_design() {
    let l = luna(|_| {}).await;
    let t = l.token().await;
    let d = design();
    let eff = effective(&d);
    let (code, all) = l.get("/config/network", Some(&t)).await;
    assert_eq!(code, 200);
    let expected: BTreeSet<&str> = d.networks.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(names(&all, "network"), expected);
    for n in &d.networks {
        let (code, one) = l
            .get(&format!("/config/network/{}", n.name), Some(&t))
            .await;
        assert_eq!(code, 200);
        let v = &one["config"]["network"][&n.name];
        assert_eq!(v, &all["config"]["network"][&n.name]);
        assert_eq!(v["network"], json!(n.data.cidr));
        let has_dhcp = n
            .data
            .ranges
            .iter()
            .any(|r| r.range_type.as_deref() == Some("dhcp"));
        assert_eq!(v["dhcp"], json!(has_dhcp));
        // Taken: exactly the nodes' addresses on this network.
        let mut want: Vec<(String, String)> = eff
            .iter()
            .filter_map(|e| {
                e.address_on(&n.name)
                    .map(|a| (a.to_string(), e.name.clone()))
            })
            .collect();
        want.sort_by_key(|(a, _)| a.parse::<std::net::IpAddr>().unwrap());
        let (code, list) = l
            .get(&format!("/config/network/{}/_list", n.name), Some(&t))
            .await;
        assert_eq!(code, 200);
        let got: Vec<(String, String)> = list["config"]["network"][&n.name]["taken"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| {
                (
                    x["ipaddress"].as_str().unwrap().to_string(),
                    x["device"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        assert_eq!(got, want);
        for (addr, node) in &want {
            let (code, v) = l
                .get(&format!("/config/network/{}/{addr}", n.name), Some(&t))
                .await;
            assert_eq!(code, 200);
            assert_eq!(
                v["config"]["network"][addr],
                json!({"status": "taken", "device": node})
            );
        }
        // The next free address: inside the CIDR, in a static range, held by nobody,
        // and asking again gives the same one (no reservation).
        let (code, v) = l
            .get(&format!("/config/network/{}/_nextfreeip", n.name), Some(&t))
            .await;
        assert_eq!(code, 200, "{v}");
        let next = v["config"]["network"][&n.name]["nextip"]
            .as_str()
            .unwrap()
            .to_string();
        let ip: std::net::Ipv4Addr = next.parse().unwrap();
        assert!(!want.iter().any(|(a, _)| *a == next));
        let in_static = n
            .data
            .ranges
            .iter()
            .filter(|r| r.range_type.as_deref() == Some("static"))
            .any(|r| {
                let s: std::net::Ipv4Addr = r.start.as_deref().unwrap().parse().unwrap();
                let e: std::net::Ipv4Addr = r.end.as_deref().unwrap().parse().unwrap();
                s <= ip && ip <= e
            });
        assert!(in_static, "{next} in a static range of {}", n.name);
        let (_, again) = l
            .get(&format!("/config/network/{}/_nextfreeip", n.name), Some(&t))
            .await;
        assert_eq!(again, v);
        let (code, v) = l
            .get(&format!("/config/network/{}/{next}", n.name), Some(&t))
            .await;
        assert_eq!(code, 200);
        assert_eq!(v["config"]["network"][&next], json!({"status": "free"}));
    }
    let net = &d.networks[0].name;
    let (code, v) = l
        .get(&format!("/config/network/{net}/192.0.2.1"), Some(&t))
        .await;
    assert_eq!(code, 404, "out of the network: {v}");
    for bad in ["10.16.1", "999.1.1.1", "10.16.1.1x"] {
        let (code, v) = l
            .get(&format!("/config/network/{net}/{bad}"), Some(&t))
            .await;
        assert_eq!(code, 400, "{bad}: {v}");
    }
    for path in [
        "/config/network/nosuch",
        "/config/network/nosuch/_nextfreeip",
        "/config/network/nosuch/_list",
        "/config/network/nosuch/10.0.0.1",
    ] {
        let (code, v) = l.get(path, Some(&t)).await;
        assert_eq!(code, 404, "{path}: {v}");
    }
    l.s.stop().await;
}

#[tokio::test]
async fn cluster_osimages_bmcsetups_and_racks_come_from_the_design_and_hide_credentials() {
    let l = luna(|_| {}).await;
    let t = l.token().await;
    let d = design();
    let eff = effective(&d);
    let (code, c) = l.get("/config/cluster", Some(&t)).await;
    assert_eq!(code, 200);
    assert_eq!(c["config"]["cluster"]["name"], json!(d.regions[0].name));
    // OS images: every platform image of the nodes.
    let (code, all) = l.get("/config/osimage", Some(&t)).await;
    assert_eq!(code, 200);
    let images: BTreeSet<&str> = eff.iter().filter_map(|e| e.image.as_deref()).collect();
    assert!(
        images.iter().all(|i| names(&all, "osimage").contains(i)),
        "{all}"
    );
    for i in &images {
        let (code, v) = l.get(&format!("/config/osimage/{i}"), Some(&t)).await;
        assert_eq!(code, 200);
        let kernels = v["config"]["osimage"][*i]["kernelversion"]
            .as_str()
            .unwrap()
            .to_string();
        for e in eff.iter().filter(|e| e.image.as_deref() == Some(i)) {
            assert!(
                kernels.split(',').any(|k| Some(k) == e.kernel.as_deref()),
                "{kernels}"
            );
        }
    }
    // BMC setups: the profiles defining oob; the credential is never served.
    let (code, all) = l.get("/config/bmcsetup", Some(&t)).await;
    assert_eq!(code, 200);
    let text = all.to_string();
    for e in &eff {
        if let Some(cred) = e.oob.as_ref().and_then(|o| o.credential.as_deref()) {
            assert!(!text.contains(cred), "credential served: {text}");
        }
    }
    for h in d.host_profiles.iter().filter(|h| h.data.oob.is_some()) {
        let (code, v) = l
            .get(&format!("/config/bmcsetup/{}", h.name), Some(&t))
            .await;
        assert_eq!(code, 200);
        let b = &v["config"]["bmcsetup"][&h.name];
        assert_eq!(b["username"], json!(h.data.oob.as_ref().unwrap().account));
        assert_eq!(b["password"], json!("<hidden>"));
        let (_, nodes) = l.get("/config/node", Some(&t)).await;
        assert!(!nodes
            .to_string()
            .contains(h.data.oob.as_ref().unwrap().credential.as_deref().unwrap()));
    }
    // Racks: the design's, each with the nodes placed in it.
    let (code, all) = l.get("/config/rack", Some(&t)).await;
    assert_eq!(code, 200);
    assert_eq!(
        names(&all, "rack"),
        d.racks.iter().map(|r| r.name.as_str()).collect()
    );
    for r in &d.racks {
        let (code, v) = l.get(&format!("/config/rack/{}", r.name), Some(&t)).await;
        assert_eq!(code, 200);
        let devices: BTreeSet<&str> = v["config"]["rack"][&r.name]["devices"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x["name"].as_str().unwrap())
            .collect();
        let want: BTreeSet<&str> = eff
            .iter()
            .filter(|e| e.rack.as_deref() == Some(&r.name))
            .map(|e| e.name.as_str())
            .collect();
        assert_eq!(devices, want);
    }
    // Luna2 resources with no counterpart: Luna2's 404, behind the token too.
    for path in [
        "/config/secrets",
        "/config/switch",
        "/config/otherdev/x",
        "/config/osimagetag",
    ] {
        let (code, v) = l.get(path, Some(&t)).await;
        assert_eq!(
            (code, &v),
            (404, &json!({"message": "Route Not Found"})),
            "{path}"
        );
        let (code, _) = l.get(path, None).await;
        assert_eq!(code, 401, "{path}");
    }
    for path in [
        "/config/osimage/nosuch",
        "/config/bmcsetup/nosuch",
        "/config/rack/nosuch",
    ] {
        let (code, v) = l.get(path, Some(&t)).await;
        assert_eq!(code, 404, "{path}: {v}");
    }
    l.s.stop().await;
}

#[tokio::test]
async fn hostile_path_segments_are_refused_with_a_4xx_on_every_named_route() {
    let l = luna(|_| {}).await;
    let t = l.token().await;
    let hostile = [
        "n00001%27",
        "n00001%22",
        "n00001%3Brm%20-rf",
        "%27%20OR%20%271%27%3D%271",
        "n00001%27%3B%20DROP%20TABLE%20node%3B--",
        "..%2F..%2Fetc%2Fpasswd",
        "%2e%2e",
        "n%00",
        "n%0aboot",
        "%ff%fe",
    ];
    let templates = [
        "/config/node/{}",
        "/config/node/{}/interfaces",
        "/config/node/n00001/interfaces/{}",
        "/config/group/{}",
        "/config/group/{}/_member",
        "/config/network/{}",
        "/config/network/{}/_nextfreeip",
        "/config/network/pxe/{}",
        "/config/osimage/{}",
        "/config/bmcsetup/{}",
        "/config/rack/{}",
    ];
    let long = "a".repeat(300);
    for tpl in templates {
        for h in hostile.iter().copied().chain([long.as_str()]) {
            let path = tpl.replace("{}", h);
            let (code, v) = l.get(&path, Some(&t)).await;
            assert!((400..500).contains(&code), "{path}: {code} {v}");
            assert!(v["message"].is_string(), "{path}: {v}");
        }
    }
    // Raw `../` goes nowhere either.
    let r = common::client()
        .get(format!("{}/config/node/../../version", l.s.base))
        .header("x-access-tokens", &t)
        .send()
        .await
        .unwrap();
    let code = r.status().as_u16();
    assert!(code == 404 || code == 400 || code == 200, "{code}");
    l.s.stop().await;
}

/// The real CLI, in a scratch home.
async fn cli(l: &Luna, home: &std::path::Path, args: &[&str]) -> String {
    let (ok, out, err) = l.client("luna", home, args).await;
    assert!(ok, "luna {args:?} failed\nstdout: {out}\nstderr: {err}");
    out
}

fn raw(out: &str) -> Value {
    serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
}

#[tokio::test]
async fn the_real_luna_cli_lists_and_shows_nodes_groups_and_networks_of_the_design() {
    let l = luna(|_| {}).await;
    let d = design();
    let eff = effective(&d);
    let home = tempfile::tempdir().unwrap();
    // Log in and list nodes as JSON (-R): exactly the design's nodes.
    let nodes = raw(&cli(&l, home.path(), &["node", "list", "-R"]).await);
    let want: BTreeSet<&str> = eff.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(
        nodes
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect::<BTreeSet<_>>(),
        want
    );
    // The CLI cached a token our key verifies.
    let token = std::fs::read_to_string(home.path().join("cli/token.txt")).unwrap();
    let claims = site::decode(&token, KEY).unwrap();
    assert_eq!(claims["username"], site::USER);
    // The table view names every node and its group.
    let table = cli(&l, home.path(), &["node", "list"]).await;
    for e in &eff {
        assert!(table.contains(&e.name), "{} in {table}", e.name);
        assert!(table.contains(e.profile_chain.first().unwrap().as_str()));
    }
    // node show: raw and table.
    let e = &eff[0];
    let shown = raw(&cli(&l, home.path(), &["node", "show", &e.name, "-R"]).await);
    assert_eq!(shown["name"], json!(e.name));
    assert_eq!(shown["group"], json!(e.profile_chain.first()));
    let kopts = shown["kerneloptions"].as_str().unwrap();
    for k in e.kernel_params.keys() {
        assert!(
            kopts.contains(k.as_str()),
            "the CLI decoded kerneloptions: {kopts}"
        );
    }
    let table = cli(&l, home.path(), &["node", "show", &e.name]).await;
    assert!(
        table.contains(&e.name) && table.contains(e.address_on("pxe").unwrap()),
        "{table}"
    );
    // Groups.
    let groups = raw(&cli(&l, home.path(), &["group", "list", "-R"]).await);
    let want: BTreeSet<&str> = d.host_profiles.iter().map(|h| h.name.as_str()).collect();
    assert_eq!(
        groups
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect::<BTreeSet<_>>(),
        want
    );
    cli(&l, home.path(), &["group", "list"]).await;
    let g = &d.host_profiles[0].name;
    let shown = raw(&cli(&l, home.path(), &["group", "show", g, "-R"]).await);
    assert_eq!(shown["name"], json!(g));
    cli(&l, home.path(), &["group", "show", g]).await;
    // Networks.
    let nets = raw(&cli(&l, home.path(), &["network", "list", "-R"]).await);
    let want: BTreeSet<&str> = d.networks.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(
        nets.as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect::<BTreeSet<_>>(),
        want
    );
    let table = cli(&l, home.path(), &["network", "list"]).await;
    for n in &d.networks {
        assert!(table.contains(n.data.cidr.as_deref().unwrap()), "{table}");
    }
    let n = &d.networks[0];
    let shown = raw(&cli(&l, home.path(), &["network", "show", &n.name, "-R"]).await);
    assert_eq!(shown["network"], json!(n.data.cidr));
    cli(&l, home.path(), &["network", "show", &n.name]).await;
    // An unknown node: the CLI exits non-zero with the server's message.
    let (ok, out, err) = l
        .client("luna", home.path(), &["node", "show", "nosuchnode"])
        .await;
    assert!(!ok, "{out} {err}");
    assert!(format!("{out}{err}").contains("nosuchnode"), "{out} {err}");
    l.s.stop().await;
}

#[tokio::test]
async fn a_10000_node_site_lists_every_node_and_shows_each_from_the_one_view() {
    let dir = tempfile::tempdir().unwrap();
    slipway::services::users::add_user(&dir.path().join("users"), site::USER, site::PASSWORD)
        .unwrap();
    std::fs::write(dir.path().join("key"), KEY).unwrap();
    let g = common::GitRepo::new();
    g.add_gen_site(&["--nodes", "10000"]);
    let commit = g.commit("big site");
    let db = g.path().join("slipway.db");
    let (users, key) = (dir.path().join("users"), dir.path().join("key"));
    let s = common::Server::start_with(g.path(), &db, |cfg| {
        cfg.secret = Some(g.path().join("secret"));
        cfg.users.users = Some(users);
        cfg.users.key_file = Some(key);
    })
    .await
    .unwrap();
    // Applying 10,000 nodes in a debug build on a shared machine can take
    // longer than the common 30 s wait: wait longer (this is no timing check).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(600);
    while s.status_of(&commit).await.as_deref() != Some("applied") {
        assert!(
            std::time::Instant::now() < deadline,
            "the 10,000-node revision was never applied"
        );
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    let l = Luna { g, s, commit, dir };
    let t = l.token().await;
    // Applied, the served design may still be loading (503, as every route
    // that needs it answers meanwhile): ask again until it is served.
    let (code, all) = loop {
        let (code, v) = l.get("/config/node", Some(&t)).await;
        if code != 503 {
            break (code, v);
        }
        assert!(std::time::Instant::now() < deadline, "never served: {v}");
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    };
    assert_eq!(code, 200, "{all}");
    let nodes = all["config"]["node"].as_object().unwrap();
    assert_eq!(nodes.len(), 10000);
    let (_, again) = l.get("/config/node", Some(&t)).await;
    assert_eq!(again, all);
    for name in nodes.keys().step_by(997) {
        let (code, one) = l.get(&format!("/config/node/{name}"), Some(&t)).await;
        assert_eq!(code, 200);
        assert_eq!(&one["config"]["node"][name], &nodes[name]);
    }
    l.s.stop().await;
}

#[tokio::test]
async fn comment_vendor_and_assettag_come_from_owner_data_as_config_writes_keep_them() {
    let l = luna(|_| {}).await;
    let t = l.token().await;
    let path = l.g.path().join("designs/nodes/rack-01.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    let anchor = "      zone: z1\n    boot_mac: '02:bd:50:00:00:01'";
    assert!(text.contains(anchor), "the example's n00001 layout changed");
    let edited = text.replacen(
        anchor,
        "      zone: z1\n      comment: 'spare, ask ops'\n      vendor: Acme\n      assettag: AT-0001\n    boot_mac: '02:bd:50:00:00:01'",
        1,
    );
    std::fs::write(&path, edited).unwrap();
    let c2 = l.g.commit("n00001: owner data");
    l.s.hook().await;
    l.s.wait_status(&c2, "applied").await;
    let (code, v) = l.get("/config/node/n00001", Some(&t)).await;
    assert_eq!(code, 200, "{v}");
    let n = &v["config"]["node"]["n00001"];
    use base64::Engine as _;
    let comment = base64::engine::general_purpose::STANDARD
        .decode(n["comment"].as_str().unwrap())
        .unwrap();
    assert_eq!(comment, b"spare, ask ops");
    assert_eq!(n["vendor"], "Acme");
    assert_eq!(n["assettag"], "AT-0001");
    // Another node keeps its hardware profile's vendor and no comment.
    let (_, v) = l.get("/config/node/n00002", Some(&t)).await;
    let n = &v["config"]["node"]["n00002"];
    let d = design();
    let hw = d
        .effective_nodes()
        .iter()
        .find(|e| e.name == "n00002")
        .unwrap()
        .hardware_profile
        .clone()
        .unwrap();
    assert_eq!(
        n["vendor"],
        serde_json::json!(d.hardware_profile(&hw).unwrap().data.vendor)
    );
    assert!(n["comment"].is_null() && n["assettag"].is_null(), "{n}");
    l.s.stop().await;
}
