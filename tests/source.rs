//! `source`: revisions and design files read from real repositories made
//! with the `git` CLI.

mod common;

use common::GitRepo;
use slipway::source::{read_dir_files, Repo, SourceError};

#[test]
fn resolves_commit_branch_tag_head_and_short_sha() {
    let g = GitRepo::new();
    g.write("designs/a.yaml", "a: 1\n");
    let first = g.commit("first design\n\nbody text");
    g.git(&["tag", "v1"]);
    g.write("designs/b.yaml", "b: 2\n");
    let second = g.commit("second");

    let repo = Repo::discover(&g.path().join("designs")).unwrap();
    assert_eq!(
        repo.root().canonicalize().unwrap(),
        g.path().canonicalize().unwrap()
    );
    assert_eq!(repo.current_branch().as_deref(), Some("main"));

    let head = repo.resolve("HEAD").unwrap();
    assert_eq!(head.commit, second);
    assert_eq!(repo.resolve("main").unwrap().commit, second);
    assert_eq!(repo.head(Some("main")).unwrap().commit, second);
    assert_eq!(repo.head(None).unwrap().commit, second);
    assert_eq!(repo.resolve("v1").unwrap().commit, first);
    assert_eq!(repo.resolve(&first[..8]).unwrap().commit, first);

    let r = repo.resolve(&first).unwrap();
    assert_eq!(r.summary, "first design");
    assert_eq!(r.author, "Test Operator <ops@example.com>");
    assert_eq!(r.committer, "Test Operator <ops@example.com>");
    assert_eq!(r.signed_by, None);
    assert_eq!(r.tree, g.git(&["rev-parse", &format!("{first}^{{tree}}")]));
    let ct: i64 = g
        .git(&["log", "-1", "--format=%ct", &first])
        .parse()
        .unwrap();
    assert_eq!(r.committed_at, ct);
}

#[test]
fn unknown_revision_and_non_repository_are_clear_errors() {
    let g = GitRepo::new();
    g.write("a.yaml", "a: 1\n");
    g.commit("one");
    let repo = Repo::discover(g.path()).unwrap();
    match repo.resolve("no-such-branch") {
        Err(e @ SourceError::UnknownRevision { .. }) => {
            assert!(e.to_string().contains("no-such-branch"), "{e}")
        }
        other => panic!(
            "expected UnknownRevision, got {:?}",
            other.map(|r| r.commit)
        ),
    }
    assert!(repo.head(Some("nope")).is_err());

    let plain = tempfile::tempdir().unwrap();
    match Repo::discover(plain.path()) {
        Err(e @ SourceError::NotARepository { .. }) => {
            assert!(e.to_string().contains("not a git repository"), "{e}")
        }
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("a plain directory is not a repository"),
    }
}

#[test]
fn design_files_read_the_commit_tree_not_the_work_tree() {
    let g = GitRepo::new();
    g.write("designs/site.yaml", "v: 1\n");
    g.write("designs/nodes/rack-01.yml", "n: 1\n");
    g.write("designs/README.md", "not a design\n");
    g.write("other.yaml", "outside the design root\n");
    let c1 = g.commit("one");
    // Uncommitted edits and new files must not be seen.
    g.write("designs/site.yaml", "v: 2 (uncommitted)\n");
    g.write("designs/new.yaml", "uncommitted\n");

    let repo = Repo::discover(g.path()).unwrap();
    let files = repo.design_files(&c1, None).unwrap();
    let paths: Vec<_> = files.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(paths, ["nodes/rack-01.yml", "site.yaml"]);
    assert_eq!(files[1].bytes, b"v: 1\n");

    // An explicit design dir, and the root when there is no designs/.
    let files = repo.design_files(&c1, Some("designs/nodes")).unwrap();
    assert_eq!(files.len(), 1);
    assert_eq!(files[0].path, "rack-01.yml");
    let err = repo.design_files(&c1, Some("missing")).unwrap_err();
    assert!(err.to_string().contains("missing"), "{err}");

    let g2 = GitRepo::new();
    g2.write("b.yaml", "b\n");
    g2.write("a/x.yaml", "x\n");
    let c = g2.commit("root layout");
    let repo2 = Repo::discover(g2.path()).unwrap();
    let paths: Vec<_> = repo2
        .design_files(&c, None)
        .unwrap()
        .into_iter()
        .map(|f| f.path)
        .collect();
    assert_eq!(paths, ["a/x.yaml", "b.yaml"]);

    // An older commit still reads its own tree.
    g.git(&["add", "-A"]);
    let c2 = g.commit("two");
    assert_eq!(repo.design_files(&c2, None).unwrap().len(), 3);
    assert_eq!(repo.design_files(&c1, None).unwrap().len(), 2);
}

#[test]
fn watch_paths_point_into_the_git_dir() {
    let g = GitRepo::new();
    g.write("a.yaml", "a\n");
    g.commit("one");
    let repo = Repo::discover(g.path()).unwrap();
    let paths = repo.watch_paths();
    let git_dir = g.path().join(".git").canonicalize().unwrap();
    for p in &paths {
        let parent = p.parent().unwrap().canonicalize().unwrap();
        assert_eq!(parent, git_dir, "{}", p.display());
    }
    let names: Vec<_> = paths
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["HEAD", "refs", "packed-refs"]);
}

#[test]
fn signed_commit_reports_a_signer() {
    // A commit carrying a gpgsig header that slipway cannot parse still shows
    // that it was signed.
    let g = GitRepo::new();
    g.write("a.yaml", "a\n");
    let c = g.commit("one");
    let raw = g.git(&["cat-file", "commit", &c]);
    let (headers, message) = raw.split_once("\n\n").unwrap();
    let signed = format!(
        "{headers}\ngpgsig -----BEGIN PGP SIGNATURE-----\n \n garbage!!\n -----END PGP SIGNATURE-----\n\n{message}\n"
    );
    let path = g.path().join("signed-commit");
    std::fs::write(&path, signed).unwrap();
    let id = g.git(&["hash-object", "-t", "commit", "-w", path.to_str().unwrap()]);
    let repo = Repo::discover(g.path()).unwrap();
    let r = repo.resolve(&id).unwrap();
    assert_eq!(r.signed_by.as_deref(), Some("unverified signature"));
}

#[test]
fn read_dir_files_is_recursive_sorted_and_skips_hidden_dirs() {
    let d = tempfile::tempdir().unwrap();
    let w = |rel: &str| {
        let p = d.path().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, rel).unwrap();
    };
    w("z.yaml");
    w("a/b.yml");
    w("a/c.txt");
    w(".git/config.yaml");
    w(".hidden/x.yaml");
    let files = read_dir_files(d.path()).unwrap();
    let paths: Vec<_> = files.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(paths, ["a/b.yml", "z.yaml"]);
    assert_eq!(files[1].bytes, b"z.yaml");
    let err = read_dir_files(&d.path().join("nope")).unwrap_err();
    assert!(err.to_string().contains("nope"), "{err}");
}

#[test]
fn ssh_signed_commit_names_the_key_like_ssh_keygen() {
    let g = GitRepo::new();
    let key = g.path().join("signing-key");
    let out = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "test", "-f"])
        .arg(&key)
        .output()
        .expect("ssh-keygen");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let public = g.path().join("signing-key.pub");
    g.git(&["config", "gpg.format", "ssh"]);
    g.git(&["config", "user.signingkey", public.to_str().unwrap()]);
    g.write("designs/a.yaml", "a\n");
    g.git(&["add", "designs"]);
    g.git(&[
        "-c",
        "commit.gpgsign=true",
        "commit",
        "-q",
        "-S",
        "-m",
        "signed",
    ]);
    let id = g.git(&["rev-parse", "HEAD"]);

    let fp = std::process::Command::new("ssh-keygen")
        .args(["-l", "-E", "sha256", "-f"])
        .arg(&public)
        .output()
        .unwrap();
    let fp = String::from_utf8_lossy(&fp.stdout);
    let fingerprint = fp.split_whitespace().nth(1).unwrap();

    let repo = Repo::discover(g.path()).unwrap();
    let r = repo.resolve(&id).unwrap();
    assert_eq!(
        r.signed_by.as_deref(),
        Some(format!("ssh ssh-ed25519 {fingerprint}").as_str())
    );
}

/// Stops the gpg-agent a test's GNUPGHOME started, whatever the outcome.
struct GpgHome(tempfile::TempDir);

impl Drop for GpgHome {
    fn drop(&mut self) {
        let _ = std::process::Command::new("gpgconf")
            .args(["--kill", "gpg-agent"])
            .env("GNUPGHOME", self.0.path())
            .status();
    }
}

#[test]
fn gpg_signed_commit_names_the_issuer_fingerprint() {
    let home = GpgHome(tempfile::tempdir().unwrap());
    let gpg = |args: &[&str]| {
        let out = std::process::Command::new("gpg")
            .args(["--batch", "--passphrase", ""])
            .args(args)
            .env("GNUPGHOME", home.0.path())
            .output()
            .expect("gpg");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    gpg(&[
        "--quick-gen-key",
        "Signer <signer@example.com>",
        "ed25519",
        "sign",
        "never",
    ]);
    let listing = gpg(&["--list-keys", "--with-colons"]);
    let fpr = listing
        .lines()
        .find(|l| l.starts_with("fpr:"))
        .and_then(|l| l.split(':').nth(9))
        .unwrap()
        .to_string();

    let g = GitRepo::new();
    g.write("a.yaml", "a\n");
    g.git(&["add", "a.yaml"]);
    let out = std::process::Command::new("git")
        .args([
            "-c",
            &format!("user.signingkey={fpr}"),
            "commit",
            "-q",
            "-S",
            "-m",
            "signed",
        ])
        .current_dir(g.path())
        .env("GNUPGHOME", home.0.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let repo = Repo::discover(g.path()).unwrap();
    let r = repo.resolve("HEAD").unwrap();
    assert_eq!(r.signed_by, Some(format!("gpg {fpr}")));
}
