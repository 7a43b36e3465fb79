//! The write-back service (`services::writeback`): design edits become
//! validated commits on real git repositories, and a real server applies
//! them.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{GitRepo, Server};
use serde_json::json;
use slipway::design::Kind;
use slipway::services::writeback::{
    Applied, Change, Edit, Fields, Outcome, WriteBack, WriteBackConfig, WriteError,
};

fn service(repo: &GitRepo, write_branch: Option<&str>) -> WriteBack {
    WriteBack::new(
        WriteBackConfig {
            repo: repo.path().to_path_buf(),
            branch: Some("main".into()),
            design_dir: None,
            write_branch: write_branch.map(str::to_string),
            limits: Default::default(),
            apply_wait: Duration::ZERO,
        },
        None,
    )
}

fn site() -> GitRepo {
    let repo = GitRepo::new();
    repo.add_example_site();
    repo.commit("site");
    repo
}

/// A change setting `data.metadata.owner_data.<key>` of a node.
fn owner_data(key: &str, value: &str) -> Change {
    let (key, value) = (key.to_string(), value.to_string());
    Arc::new(move |f: &mut Fields| {
        f.data["metadata"]["owner_data"][key.as_str()] = json!(value);
        Ok(())
    })
}

/// A change moving a node's address on `network` to `address`.
fn address(network: &str, address: &str) -> Change {
    let (network, address) = (network.to_string(), address.to_string());
    Arc::new(move |f: &mut Fields| {
        let list = f.data["addressing"].as_array_mut().ok_or("no addressing")?;
        let a = list
            .iter_mut()
            .find(|a| a["network"] == network.as_str())
            .ok_or("no such network")?;
        a["address"] = json!(address);
        Ok(())
    })
}

fn show(repo: &GitRepo, rev: &str, path: &str) -> String {
    repo.git(&["show", &format!("{rev}:{path}")])
}

#[test]
fn an_update_commits_with_the_user_as_author_and_the_request_in_the_message() {
    let repo = site();
    let wb = service(&repo, None);
    let done = wb
        .edit(
            "alice",
            "luna2: POST /config/node/n00002",
            vec![Edit::Update {
                kind: Kind::BaremetalNode,
                name: "n00002".into(),
                change: owner_data("team", "hpc"),
            }],
        )
        .unwrap();
    let commit = done.commit.clone().unwrap();
    assert_eq!(done.outcomes, [Outcome::Updated]);
    assert_eq!(done.files, ["designs/nodes/rack-01.yaml"]);
    assert_eq!(done.applied, Applied::Pending);
    assert_eq!(repo.git(&["rev-parse", "main"]), commit);
    assert_eq!(
        repo.git(&["log", "-1", "--format=%an|%cn|%s", "main"]),
        "alice|slipway|luna2: POST /config/node/n00002 by alice"
    );
    // The work tree and index are untouched: git sees them as behind.
    assert!(repo
        .git(&["status", "--porcelain"])
        .contains("rack-01.yaml"));
    let files = slipway::source::Repo::discover(repo.path())
        .unwrap()
        .design_files(&commit, None)
        .unwrap();
    let v = slipway::validate(&files);
    assert!(v.is_valid(), "{:?}", v.messages);
    let node = v.design.unwrap();
    let n = node.node("n00002").unwrap();
    assert_eq!(
        n.data
            .metadata
            .as_ref()
            .unwrap()
            .owner_data
            .as_ref()
            .unwrap()["team"],
        "hpc"
    );
}

#[test]
fn untouched_documents_keep_their_bytes_comments_and_order() {
    let repo = site();
    // A comment between documents and a comment inside another document.
    let path = "designs/nodes/rack-01.yaml";
    let before = std::fs::read_to_string(repo.path().join(path)).unwrap();
    let before = before
        .replacen("---\n", "---\n# first node, hand-written note\n", 1)
        .replace("  name: n00003\n", "  name: n00003 # the third\n");
    repo.write(path, &before);
    let base = repo.commit("comments");
    let wb = service(&repo, None);
    wb.edit(
        "bob",
        "test: edit n00002",
        vec![Edit::Update {
            kind: Kind::BaremetalNode,
            name: "n00002".into(),
            change: address("pxe", "10.32.1.102"),
        }],
    )
    .unwrap();
    let after = show(&repo, "main", path);
    // Every line outside n00002's document is the same, in the same order.
    let outside = |text: &str| -> Vec<String> {
        let mut out = Vec::new();
        let mut inside = false;
        let lines: Vec<&str> = text.lines().collect();
        for (i, l) in lines.iter().enumerate() {
            if *l == "---" {
                inside = lines[i + 1..]
                    .iter()
                    .take(6)
                    .any(|l| l.trim() == "name: n00002");
            }
            if !inside {
                out.push(l.to_string());
            }
        }
        out
    };
    assert_eq!(outside(&after), outside(&before));
    assert!(after.contains("# first node, hand-written note\n"));
    assert!(after.contains("  name: n00003 # the third\n"));
    assert!(after.contains("address: 10.32.1.102"));
    // Other files are the same blobs.
    for other in ["designs/networks.yaml", "designs/nodes/rack-02.yaml"] {
        assert_eq!(
            repo.git(&["rev-parse", &format!("main:{other}")]),
            repo.git(&["rev-parse", &format!("{base}:{other}")])
        );
    }
    let diff = repo.git(&["diff", "--stat", &base, "main"]);
    assert!(diff.contains("1 file changed"), "{diff}");
}

#[test]
fn an_invalid_result_commits_nothing_and_returns_the_messages_with_file_and_line() {
    let repo = site();
    let head = repo.git(&["rev-parse", "main"]);
    let wb = service(&repo, None);
    let err = wb
        .edit(
            "alice",
            "test: bad address",
            vec![Edit::Update {
                kind: Kind::BaremetalNode,
                name: "n00002".into(),
                change: address("pxe", "192.168.77.5"),
            }],
        )
        .unwrap_err();
    let WriteError::Invalid { messages } = &err else {
        panic!("expected Invalid, got {err:?}");
    };
    assert!(!messages.is_empty());
    let lines = err.message_lines();
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("nodes/rack-01.yaml:") && l.contains("192.168.77.5")),
        "{lines:?}"
    );
    assert_eq!(repo.git(&["rev-parse", "main"]), head);
    // An unknown document, a taken name, a refused change: nothing either.
    let unknown = wb.edit(
        "alice",
        "t",
        vec![Edit::Delete {
            kind: Kind::BaremetalNode,
            name: "nope".into(),
        }],
    );
    assert!(matches!(
        unknown,
        Err(WriteError::Edit(
            slipway::design::edit::EditError::NotFound { .. }
        ))
    ));
    let taken = wb.edit(
        "alice",
        "t",
        vec![Edit::Clone {
            kind: Kind::BaremetalNode,
            from: "n00001".into(),
            to: "n00002".into(),
            change: None,
        }],
    );
    assert!(matches!(
        taken,
        Err(WriteError::Edit(
            slipway::design::edit::EditError::Exists { .. }
        ))
    ));
    let refused = wb.edit(
        "alice",
        "t",
        vec![Edit::Update {
            kind: Kind::BaremetalNode,
            name: "n00001".into(),
            change: address("nonet", "10.0.0.1"),
        }],
    );
    assert!(matches!(
        refused,
        Err(WriteError::Edit(slipway::design::edit::EditError::Refused(
            _
        )))
    ));
    let bad_user = wb.edit("eve <x>", "t", vec![]);
    assert!(matches!(bad_user, Err(WriteError::Refused(_))));
    assert_eq!(repo.git(&["rev-parse", "main"]), head);
}

#[test]
fn an_invalid_head_is_a_conflict_naming_it_not_an_edit_error() {
    let repo = site();
    repo.write("designs/broken.yaml", common::BAD_YAML);
    let broken = repo.commit("broken");
    let wb = service(&repo, None);
    let err = wb
        .edit(
            "alice",
            "t",
            vec![Edit::Update {
                kind: Kind::BaremetalNode,
                name: "n00001".into(),
                change: owner_data("a", "b"),
            }],
        )
        .unwrap_err();
    match &err {
        WriteError::HeadInvalid { commit, .. } => assert_eq!(commit, &broken),
        other => panic!("expected HeadInvalid, got {other:?}"),
    }
    assert!(err.to_string().contains(&broken));
    assert_eq!(repo.git(&["rev-parse", "main"]), broken);
}

#[test]
fn clone_rename_delete_and_create_keep_the_design_valid() {
    let repo = site();
    let wb = service(&repo, None);
    let done = wb
        .edit(
            "carol",
            "test: several",
            vec![
                Edit::Clone {
                    kind: Kind::BaremetalNode,
                    from: "n00012".into(),
                    to: "n00099".into(),
                    change: Some(Arc::new(|f: &mut Fields| {
                        for a in f.data["addressing"].as_array_mut().unwrap() {
                            let ip = a["address"].as_str().unwrap().to_string();
                            let (net, _) = ip.rsplit_once('.').unwrap();
                            a["address"] = json!(format!("{net}.99"));
                        }
                        f.data["metadata"]["boot_mac"] = json!("02:bd:50:00:00:99");
                        Ok(())
                    })),
                },
                Edit::Delete {
                    kind: Kind::BaremetalNode,
                    name: "n00011".into(),
                },
                Edit::Create {
                    kind: Kind::Rack,
                    name: "rack99".into(),
                    fields: Fields {
                        data: json!({"tor_switches": {}, "location": {"clli": "X", "grid": "Y"}}),
                        labels: Default::default(),
                    },
                },
            ],
        )
        .unwrap();
    assert_eq!(
        done.outcomes,
        [Outcome::Created, Outcome::Deleted, Outcome::Created]
    );
    let commit = done.commit.unwrap();
    let files = slipway::source::Repo::discover(repo.path())
        .unwrap()
        .design_files(&commit, None)
        .unwrap();
    let v = slipway::validate(&files);
    assert!(v.is_valid(), "{:?}", v.messages);
    let d = v.design.unwrap();
    assert!(d.node("n00099").is_some());
    assert!(d.node("n00011").is_none());
    assert!(d.rack("rack99").is_some());
    // Renaming a host profile nodes still name is invalid: nothing committed.
    let err = wb
        .edit(
            "carol",
            "t",
            vec![Edit::Rename {
                kind: Kind::HostProfile,
                from: "control-node".into(),
                to: "ctl".into(),
            }],
        )
        .unwrap_err();
    assert!(matches!(err, WriteError::Invalid { .. }), "{err:?}");
    assert_eq!(repo.git(&["rev-parse", "main"]), commit);
}

#[test]
fn concurrent_writers_of_two_services_lose_no_update() {
    let repo = site();
    let base = repo.git(&["rev-parse", "main"]);
    // Two services on one repository: two servers, so the compare-and-swap
    // (not the in-process turn) decides between them.
    let services = [
        Arc::new(service(&repo, None)),
        Arc::new(service(&repo, None)),
    ];
    let nodes: Vec<String> = (1..=8).map(|i| format!("n{i:05}")).collect();
    let handles: Vec<_> = nodes
        .iter()
        .enumerate()
        .map(|(i, n)| {
            let wb = services[i % 2].clone();
            let n = n.clone();
            std::thread::spawn(move || {
                wb.edit(
                    &format!("user{i}"),
                    &format!("test: edit {n}"),
                    vec![Edit::Update {
                        kind: Kind::BaremetalNode,
                        name: n.clone(),
                        change: owner_data("writer", &format!("user{i}")),
                    }],
                )
            })
        })
        .collect();
    for h in handles {
        let done = h.join().unwrap().expect("every writer commits");
        assert!(done.commit.is_some());
    }
    let count = repo.git(&["rev-list", "--count", &format!("{base}..main")]);
    assert_eq!(count, "8");
    let files = slipway::source::Repo::discover(repo.path())
        .unwrap()
        .design_files("main", None)
        .unwrap();
    let v = slipway::validate(&files);
    assert!(v.is_valid(), "{:?}", v.messages);
    let d = v.design.unwrap();
    for (i, n) in nodes.iter().enumerate() {
        assert_eq!(
            d.node(n)
                .unwrap()
                .data
                .metadata
                .as_ref()
                .unwrap()
                .owner_data
                .as_ref()
                .unwrap()["writer"],
            format!("user{i}"),
            "{n}"
        );
    }
}

#[test]
fn review_branch_mode_leaves_the_followed_branch_unchanged() {
    let repo = site();
    let head = repo.git(&["rev-parse", "main"]);
    let wb = service(&repo, Some("review/api"));
    assert_eq!(wb.target_branch(), Some("review/api"));
    for (i, n) in ["n00001", "n00002"].into_iter().enumerate() {
        let done = wb
            .edit(
                "dave",
                "test: review",
                vec![Edit::Update {
                    kind: Kind::BaremetalNode,
                    name: n.into(),
                    change: owner_data("review", &i.to_string()),
                }],
            )
            .unwrap();
        assert_eq!(done.branch, "review/api");
        assert_eq!(done.applied, Applied::ReviewBranch);
    }
    assert_eq!(repo.git(&["rev-parse", "main"]), head);
    assert_eq!(repo.git(&["rev-list", "--count", "main..review/api"]), "2");
    assert_eq!(repo.git(&["merge-base", "main", "review/api"]), head);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_served_repository_applies_a_write_back_commit() {
    let repo = site();
    let db = tempfile::tempdir().unwrap();
    let server = Server::start(
        repo.path(),
        &db.path().join("s.db"),
        Duration::from_secs(3600),
    )
    .await;
    let first = repo.git(&["rev-parse", "main"]);
    server.wait_status(&first, "applied").await;
    let path = repo.path().to_path_buf();
    let done = tokio::task::spawn_blocking(move || {
        WriteBack::new(
            WriteBackConfig {
                repo: path,
                branch: Some("main".into()),
                design_dir: None,
                write_branch: None,
                limits: Default::default(),
                apply_wait: Duration::ZERO,
            },
            None,
        )
        .edit(
            "erin",
            "test: served",
            vec![Edit::Update {
                kind: Kind::BaremetalNode,
                name: "n00003".into(),
                change: owner_data("served", "yes"),
            }],
        )
    })
    .await
    .unwrap()
    .unwrap();
    let commit = done.commit.unwrap();
    // The ref watcher sees the branch move; the server applies the commit.
    server.wait_status(&commit, "applied").await;
    let (code, node) = server.get("/api/v1.0/nodes/n00003").await;
    assert_eq!(code, 200, "{node}");
    server.stop().await;
}
