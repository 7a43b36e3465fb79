//! `Repo::propose` and `Repo::proposals`: proposed nodes written as commits
//! on a review branch of real repositories (made with the `git` CLI), never on
//! the followed branch, the index or the work tree.

mod common;

use std::sync::Arc;

use common::GitRepo;
use slipway::inspection;
use slipway::source::{Person, Proposed, Repo, SourceError};

const BRANCH: &str = "slipway/discovered";

fn slipway() -> Person {
    Person {
        name: "slipway".to_string(),
        email: "slipway@localhost".to_string(),
    }
}

/// A repository with the example site committed on `main`.
fn site() -> (GitRepo, String) {
    let g = GitRepo::new();
    g.add_example_site();
    let head = g.commit("example site");
    (g, head)
}

fn propose(repo: &Repo, path: &str, bytes: &str) -> Proposed {
    repo.propose(
        BRANCH,
        "main",
        path,
        bytes.as_bytes(),
        &slipway(),
        &format!("discovered: {path}"),
    )
    .unwrap()
}

fn count(g: &GitRepo, rev: &str) -> usize {
    g.git(&["rev-list", "--count", rev]).parse().unwrap()
}

#[test]
fn a_proposal_creates_the_branch_from_the_followed_head_and_leaves_main_index_and_work_tree_alone()
{
    let (g, head) = site();
    // Work in progress the operator has not committed: staged and unstaged.
    g.write("designs/wip.yaml", "staged: true\n");
    g.git(&["add", "designs/wip.yaml"]);
    g.write("designs/region.yaml", "edited: in the work tree\n");
    g.write("notes.txt", "untracked\n");
    let status = g.git(&["status", "--porcelain"]);
    let index = std::fs::read(g.path().join(".git/index")).unwrap();

    let repo = Repo::discover(g.path()).unwrap();
    let out = propose(&repo, "designs/discovered/mac-525400aa0001.yaml", "a: 1\n");
    let Proposed::Committed {
        commit,
        created_branch,
    } = out
    else {
        panic!("{out:?}")
    };
    assert!(created_branch);
    assert_eq!(g.git(&["rev-parse", BRANCH]), commit);
    assert_eq!(
        g.git(&["rev-parse", &format!("{commit}^")]),
        head,
        "parent is main's head"
    );
    assert_eq!(
        g.git(&[
            "show",
            &format!("{BRANCH}:designs/discovered/mac-525400aa0001.yaml")
        ]),
        "a: 1"
    );
    assert_eq!(
        g.git(&["log", "-1", "--format=%an <%ae>|%s", BRANCH]),
        "slipway <slipway@localhost>|discovered: designs/discovered/mac-525400aa0001.yaml"
    );
    // Everything else as it was.
    assert_eq!(g.git(&["rev-parse", "main"]), head);
    assert_eq!(g.git(&["symbolic-ref", "HEAD"]), "refs/heads/main");
    assert_eq!(g.git(&["status", "--porcelain"]), status);
    assert_eq!(std::fs::read(g.path().join(".git/index")).unwrap(), index);
    assert!(!g.path().join("designs/discovered").exists());
    assert_eq!(
        g.git(&["diff", "--stat", &head, BRANCH]).lines().count(),
        2,
        "one file added"
    );
}

#[test]
fn a_repeated_proposal_for_the_same_machine_replaces_its_one_file() {
    let (g, _) = site();
    let repo = Repo::discover(g.path()).unwrap();
    let path = "designs/discovered/mac-525400aa0001.yaml";
    propose(&repo, path, "version: 1\n");
    let second = propose(&repo, path, "version: 2\n");
    assert!(matches!(
        second,
        Proposed::Committed {
            created_branch: false,
            ..
        }
    ));
    assert_eq!(count(&g, BRANCH), 3);
    let files = g.git(&["ls-tree", "-r", "--name-only", BRANCH, "designs/discovered"]);
    assert_eq!(files, path, "one document per machine");
    assert_eq!(g.git(&["show", &format!("{BRANCH}:{path}")]), "version: 2");
}

#[test]
fn an_unchanged_proposal_makes_no_commit() {
    let (g, _) = site();
    let repo = Repo::discover(g.path()).unwrap();
    let path = "designs/discovered/mac-525400aa0001.yaml";
    propose(&repo, path, "same\n");
    let tip = g.git(&["rev-parse", BRANCH]);
    assert_eq!(propose(&repo, path, "same\n"), Proposed::Unchanged);
    assert_eq!(g.git(&["rev-parse", BRANCH]), tip);
    // Merged and the branch deleted: main already has it, so nothing to propose
    // and no branch made again.
    g.git(&["merge", "-q", "--ff-only", BRANCH]);
    g.git(&["branch", "-q", "-D", BRANCH]);
    assert_eq!(propose(&repo, path, "same\n"), Proposed::Unchanged);
    assert!(g.git(&["branch", "--list", BRANCH]).is_empty());
}

#[test]
fn proposals_lists_what_is_not_yet_on_the_followed_branch() {
    let (g, _) = site();
    let repo = Repo::discover(g.path()).unwrap();
    assert_eq!(
        repo.proposals(BRANCH, "main").unwrap(),
        vec![],
        "no branch, no proposals"
    );
    propose(&repo, "designs/discovered/b.yaml", "b\n");
    propose(&repo, "designs/discovered/a.yaml", "a\n");
    let listed = repo.proposals(BRANCH, "main").unwrap();
    let paths: Vec<(&str, bool, &[u8])> = listed
        .iter()
        .map(|f| (f.path.as_str(), f.added, f.bytes.as_slice()))
        .collect();
    assert_eq!(
        paths,
        [
            ("designs/discovered/a.yaml", true, &b"a\n"[..]),
            ("designs/discovered/b.yaml", true, &b"b\n"[..])
        ]
    );
    // The operator merges; a later callback updates one machine's file.
    g.git(&["merge", "-q", "--no-edit", BRANCH]);
    assert_eq!(repo.proposals(BRANCH, "main").unwrap(), vec![]);
    propose(&repo, "designs/discovered/a.yaml", "a2\n");
    let listed = repo.proposals(BRANCH, "main").unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(
        (listed[0].path.as_str(), listed[0].added),
        ("designs/discovered/a.yaml", false)
    );
    // A file the operator added on main is not a proposal.
    g.write("designs/other.yaml", "x: 1\n");
    g.commit("operator change");
    assert_eq!(repo.proposals(BRANCH, "main").unwrap().len(), 1);
}

#[test]
fn concurrent_writers_lose_no_proposal() {
    let (g, head) = site();
    let root = Arc::new(g.path().to_path_buf());
    let threads: Vec<_> = (0..8)
        .map(|i| {
            let root = root.clone();
            std::thread::spawn(move || {
                // Each writer its own handle, as separate replicas would be.
                let repo = Repo::discover(&root).unwrap();
                for j in 0..3 {
                    propose(
                        &repo,
                        &format!("designs/discovered/m{i}.yaml"),
                        &format!("v{j}\n"),
                    );
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let files = g.git(&["ls-tree", "-r", "--name-only", BRANCH, "designs/discovered"]);
    assert_eq!(files.lines().count(), 8, "{files}");
    for i in 0..8 {
        assert_eq!(
            g.git(&["show", &format!("{BRANCH}:designs/discovered/m{i}.yaml")]),
            "v2"
        );
    }
    assert_eq!(
        count(&g, BRANCH),
        count(&g, &head) + 24,
        "every write one commit"
    );
    assert_eq!(g.git(&["rev-parse", "main"]), head);
}

#[test]
fn a_git_cli_writer_moving_the_branch_meanwhile_keeps_its_commits() {
    let (g, _) = site();
    let repo = Repo::discover(g.path()).unwrap();
    propose(&repo, "designs/discovered/first.yaml", "1\n");
    let root = g.path().to_path_buf();
    // The operator commits to the proposal branch with git itself (a
    // plumbing commit with compare-and-swap, as a push would land) while
    // slipway keeps proposing.
    let cli = std::thread::spawn(move || {
        let g = GitRepo {
            dir: tempfile::TempDir::new().unwrap(),
        };
        let git = |args: &[&str], input: Option<&str>| {
            use std::io::Write;
            let mut c = std::process::Command::new("git")
                .args(args)
                .current_dir(&root)
                .env("GIT_CONFIG_NOSYSTEM", "1")
                .env("HOME", g.path())
                .env("GIT_AUTHOR_NAME", "Op")
                .env("GIT_AUTHOR_EMAIL", "op@example.com")
                .env("GIT_COMMITTER_NAME", "Op")
                .env("GIT_COMMITTER_EMAIL", "op@example.com")
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            if let Some(i) = input {
                c.stdin.take().unwrap().write_all(i.as_bytes()).unwrap();
            }
            let out = c.wait_with_output().unwrap();
            (
                out.status.success(),
                String::from_utf8_lossy(&out.stdout).trim().to_string(),
            )
        };
        let mut landed = 0;
        while landed < 10 {
            let (_, old) = git(&["rev-parse", BRANCH], None);
            let (_, tree) = git(&["rev-parse", &format!("{old}^{{tree}}")], None);
            let (_, blob) = git(
                &["hash-object", "-w", "--stdin"],
                Some(&format!("op {landed}\n")),
            );
            // The operator's note at the top level, so the trees do not overlap.
            let (_, listing) = git(&["ls-tree", &tree], None);
            let mut entries: Vec<String> = listing
                .lines()
                .filter(|l| !l.ends_with("\tOPERATOR"))
                .map(str::to_string)
                .collect();
            entries.push(format!("100644 blob {blob}\tOPERATOR"));
            let (_, new_tree) = git(&["mktree"], Some(&(entries.join("\n") + "\n")));
            let (_, commit) = git(
                &["commit-tree", &new_tree, "-p", &old, "-m", "operator edit"],
                None,
            );
            let (ok, _) = git(
                &["update-ref", &format!("refs/heads/{BRANCH}"), &commit, &old],
                None,
            );
            if ok {
                landed += 1;
            }
        }
    });
    for i in 0..10 {
        propose(&repo, &format!("designs/discovered/s{i}.yaml"), "s\n");
    }
    cli.join().unwrap();
    assert_eq!(g.git(&["show", &format!("{BRANCH}:OPERATOR")]), "op 9");
    for i in 0..10 {
        assert_eq!(
            g.git(&["show", &format!("{BRANCH}:designs/discovered/s{i}.yaml")]),
            "s"
        );
    }
    assert_eq!(
        g.git(&["show", &format!("{BRANCH}:designs/discovered/first.yaml")]),
        "1"
    );
}

#[test]
fn a_followed_branch_that_moved_is_not_merged_into_an_open_proposal_branch_but_starts_a_new_one() {
    let (g, head) = site();
    let repo = Repo::discover(g.path()).unwrap();
    propose(&repo, "designs/discovered/a.yaml", "a\n");
    g.write("designs/later.yaml", "later: 1\n");
    let moved = g.commit("main moved on");
    // The open branch keeps its base; main is untouched.
    propose(&repo, "designs/discovered/b.yaml", "b\n");
    assert_eq!(g.git(&["merge-base", "main", BRANCH]), head);
    assert_eq!(g.git(&["rev-parse", "main"]), moved);
    // Merged and deleted: the next proposal starts from main's new head.
    g.git(&["merge", "-q", "--no-edit", BRANCH]);
    g.git(&["branch", "-q", "-D", BRANCH]);
    let merged = g.git(&["rev-parse", "main"]);
    let out = propose(&repo, "designs/discovered/c.yaml", "c\n");
    assert!(matches!(
        out,
        Proposed::Committed {
            created_branch: true,
            ..
        }
    ));
    assert_eq!(g.git(&["rev-parse", &format!("{BRANCH}^")]), merged);
}

#[test]
fn the_followed_branch_and_paths_outside_the_tree_are_refused() {
    let (g, head) = site();
    let repo = Repo::discover(g.path()).unwrap();
    let e = repo
        .propose("main", "main", "designs/x.yaml", b"x", &slipway(), "m")
        .unwrap_err();
    assert!(matches!(e, SourceError::Proposal(_)), "{e}");
    for bad in [
        "../x.yaml",
        "/abs.yaml",
        "designs//x.yaml",
        ".git/config",
        "designs/./x",
        "designs/",
    ] {
        let e = repo
            .propose(BRANCH, "main", bad, b"x", &slipway(), "m")
            .unwrap_err();
        assert!(
            e.to_string().contains("expected a relative path"),
            "{bad}: {e}"
        );
    }
    let e = repo
        .propose("bad..name", "main", "designs/x.yaml", b"x", &slipway(), "m")
        .unwrap_err();
    assert!(e.to_string().contains("not a valid branch name"), "{e}");
    // A file where a directory is needed is refused, not replaced.
    let e = repo
        .propose(
            BRANCH,
            "main",
            "designs/region.yaml/x.yaml",
            b"x",
            &slipway(),
            "m",
        )
        .unwrap_err();
    assert!(e.to_string().contains("is a file"), "{e}");
    assert_eq!(g.git(&["rev-parse", "main"]), head);
}

#[test]
fn an_inspected_unknown_machine_proposed_on_the_branch_validates_with_the_design() {
    let (g, _) = site();
    let repo = Repo::discover(g.path()).unwrap();
    let main = repo.head(Some("main")).unwrap();
    let files = repo.design_files(&main.commit, None).unwrap();
    let design = slipway::validate(&files).design.unwrap();
    let body = serde_json::json!({"inventory": {
        "interfaces": [{"name": "eno1", "mac_address": "52:54:00:aa:00:01", "pci_address": "0000:19:00.0"}],
        "bmc_address": "10.16.9.1",
        "system_vendor": {"manufacturer": "HPE", "serial_number": "CZ999"}}});
    let cb = inspection::inventory::from_value(body).unwrap();
    let p = inspection::propose(&cb, &design).unwrap();
    let path = format!("designs/{}", p.path);
    propose(&repo, &path, &p.yaml);
    let tip = repo.head(Some(BRANCH)).unwrap();
    let v = slipway::validate(&repo.design_files(&tip.commit, None).unwrap());
    assert!(v.is_valid(), "{}\n{:?}", p.yaml, v.messages);
    let d = v.design.unwrap();
    let idx = inspection::NodeIndex::build(&d);
    assert_eq!(idx.match_callback(&cb), inspection::Match::Node("cz999"));
    assert_eq!(repo.proposals(BRANCH, "main").unwrap()[0].path, path);
}
