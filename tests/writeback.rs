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

#[test]
fn commit_files_moves_a_branch_only_from_the_expected_head_and_refuses_bad_paths() {
    use slipway::source::{FileChange, Person, Repo, SourceError};
    let g = site();
    let base = g.git(&["rev-parse", "main"]);
    let repo = Repo::discover(g.path()).unwrap();
    let who = Person {
        name: "alice".into(),
        email: "alice@example.com".into(),
    };
    let write = |path: &str, text: &str| FileChange {
        path: path.into(),
        bytes: Some(text.as_bytes().to_vec()),
    };
    let first = repo
        .commit_files(
            "main",
            &base,
            false,
            &[write("notes/a.txt", "a\n")],
            &who,
            &who,
            "first",
        )
        .unwrap();
    assert_eq!(g.git(&["rev-parse", "main"]), first);
    assert_eq!(g.git(&["show", "main:notes/a.txt"]), "a");
    // Built on the old head: the branch has moved, nothing changes.
    let stale = repo.commit_files(
        "main",
        &base,
        false,
        &[write("b.txt", "b")],
        &who,
        &who,
        "stale",
    );
    assert!(matches!(stale, Err(SourceError::Moved { .. })), "{stale:?}");
    assert_eq!(g.git(&["rev-parse", "main"]), first);
    // Creating a branch that exists is a lost race too.
    let exists = repo.commit_files(
        "main",
        &first,
        true,
        &[write("b.txt", "b")],
        &who,
        &who,
        "x",
    );
    assert!(
        matches!(exists, Err(SourceError::Moved { .. })),
        "{exists:?}"
    );
    for bad in ["../x", ".git/config", "a//b", "", "/abs", "a/./b"] {
        let r = repo.commit_files("main", &first, false, &[write(bad, "x")], &who, &who, "bad");
        assert!(matches!(r, Err(SourceError::Proposal(_))), "{bad}: {r:?}");
    }
    let missing = FileChange {
        path: "nope.yaml".into(),
        bytes: None,
    };
    let r = repo.commit_files("main", &first, false, &[missing], &who, &who, "del");
    assert!(matches!(r, Err(SourceError::Proposal(_))), "{r:?}");
    // Deleting a directory's last file removes the directory.
    let gone = FileChange {
        path: "notes/a.txt".into(),
        bytes: None,
    };
    let third = repo
        .commit_files("main", &first, false, &[gone], &who, &who, "rm")
        .unwrap();
    assert_eq!(g.git(&["ls-tree", "--name-only", &third, "notes"]), "");
    assert_eq!(g.git(&["log", "-1", "--format=%an|%s", "main"]), "alice|rm");
    // A new branch starts from the given parent and leaves main alone.
    let review = repo
        .commit_files(
            "review",
            &third,
            true,
            &[write("r.txt", "r")],
            &who,
            &who,
            "r",
        )
        .unwrap();
    assert_eq!(g.git(&["rev-parse", "review^"]), third);
    assert_eq!(g.git(&["rev-parse", "main"]), third);
    assert_ne!(review, third);
}

/// Every `*.yaml` under `dir`, as design files (paths relative to `dir`).
fn yaml_files(dir: &std::path::Path) -> Vec<slipway::design::DesignFile> {
    slipway::source::read_dir_files(dir).unwrap()
}

/// Checks one edit of `doc` on `files`: only its file changes, every other
/// chunk of that file keeps its bytes, every other document its content.
fn check_edit_keeps_the_rest(
    files: &[slipway::design::DesignFile],
    doc: &slipway::design::Document,
    edit: Edit,
    deleted: bool,
) {
    use slipway::design::parse;
    let what = format!(
        "{}/{} ({}:{})",
        doc.kind.name(),
        doc.name,
        doc.file,
        doc.line
    );
    let edited =
        slipway::design::edit::apply(files, &[edit]).unwrap_or_else(|e| panic!("{what}: {e}"));
    let changed: Vec<&str> = edited.changes.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(changed, [doc.file.as_str()], "{what}");
    let before = parse::parse_files(files);
    let after = parse::parse_files(&edited.files);
    let key = |d: &slipway::design::Document| (d.kind, d.name.clone());
    let others = |p: &parse::Parsed| -> Vec<(slipway::design::Kind, String, String)> {
        p.documents
            .iter()
            .filter(|d| key(d) != key(doc))
            .map(|d| (d.kind, d.name.clone(), d.hash.clone()))
            .collect()
    };
    assert_eq!(
        others(&before),
        others(&after),
        "{what}: other documents changed"
    );
    let now = after.documents.iter().find(|d| key(d) == key(doc));
    assert_eq!(now.is_none(), deleted, "{what}");
    if let Some(now) = now {
        assert_eq!(now.data, doc.data, "{what}: data changed");
        assert!(
            now.canonical.contains("\"slipway-test\":\"edited\""),
            "{what}: {}",
            now.canonical
        );
    }
    // Byte for byte: the file's other chunks are untouched.
    let old = files.iter().find(|f| f.path == doc.file).unwrap();
    let old = std::str::from_utf8(&old.bytes).unwrap();
    let new = edited
        .files
        .iter()
        .find(|f| f.path == doc.file)
        .map(|f| std::str::from_utf8(&f.bytes).unwrap().to_string());
    let chunks = |t: &str| -> Vec<String> {
        parse::document_chunks(t)
            .into_iter()
            .map(|(_, r)| t[r].to_string())
            .collect()
    };
    let (a, b) = (chunks(old), new.as_deref().map(chunks).unwrap_or_default());
    let i = parse::document_chunks(old)
        .iter()
        .rposition(|(l, _)| *l <= doc.line)
        .unwrap();
    let kept: Vec<&String> = a
        .iter()
        .enumerate()
        .filter(|(j, _)| *j != i)
        .map(|(_, c)| c)
        .collect();
    if deleted {
        // Every other chunk is still in the file, byte for byte.
        let text = new.clone().unwrap_or_default();
        for c in &kept {
            assert!(text.contains(c.as_str()), "{what}: a chunk changed: {c}");
        }
    } else {
        let rest: Vec<&String> = b
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .map(|(_, c)| c)
            .collect();
        assert_eq!(kept, rest, "{what}: other chunks changed");
    }
}

#[test]
fn edits_of_every_document_of_real_site_layouts_keep_the_rest_byte_for_byte() {
    let treasuremap =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/reference/treasuremap");
    assert!(treasuremap.is_dir(), "{} is missing", treasuremap.display());
    let mut checked = 0;
    for dir in [common::example_site(), treasuremap] {
        let files = yaml_files(&dir);
        let parsed = slipway::design::parse::parse_files(&files);
        let mut seen = std::collections::BTreeMap::new();
        for d in &parsed.documents {
            *seen.entry((d.kind, d.name.clone())).or_insert(0) += 1;
        }
        for d in &parsed.documents {
            if seen[&(d.kind, d.name.clone())] > 1 {
                continue;
            }
            let label: Change = Arc::new(|f: &mut Fields| {
                f.labels.insert("slipway-test".into(), json!("edited"));
                Ok(())
            });
            let update = Edit::Update {
                kind: d.kind,
                name: d.name.clone(),
                change: label,
            };
            check_edit_keeps_the_rest(&files, d, update, false);
            let delete = Edit::Delete {
                kind: d.kind,
                name: d.name.clone(),
            };
            check_edit_keeps_the_rest(&files, d, delete, true);
            checked += 1;
        }
    }
    assert!(checked > 40, "only {checked} documents checked");
}
