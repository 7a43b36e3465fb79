//! Bodies of the one-shot commands: reading the design, printing, exit codes.

use std::path::Path;
use std::process::ExitCode;

use slipway::design::{self, DesignFile};
use slipway::plan;
use slipway::source::{self, Repo};

/// Prints an error and returns exit code 2 (usage or I/O error).
pub fn fail(msg: &str) -> ExitCode {
    eprintln!("slipway: error: {msg}");
    ExitCode::from(2)
}

/// Reads the design at `path`: a git repository's commit (`rev`, default HEAD)
/// when `path` is a repository root or `rev` is given, else the directory.
fn load(
    path: &Path,
    rev: Option<&str>,
    design_dir: Option<&str>,
) -> Result<(String, Vec<DesignFile>), String> {
    if !path.exists() {
        return Err(format!("{}: no such file or directory", path.display()));
    }
    let is_repo_root = path.join(".git").exists();
    if is_repo_root || rev.is_some() {
        let repo = Repo::discover(path).map_err(|e| e.to_string())?;
        let r = repo
            .resolve(rev.unwrap_or("HEAD"))
            .map_err(|e| e.to_string())?;
        let files = repo
            .design_files(&r.commit, design_dir)
            .map_err(|e| e.to_string())?;
        return Ok((format!("commit {}", r.commit), files));
    }
    if path.is_file() {
        let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        return Ok((
            path.display().to_string(),
            vec![DesignFile { path: name, bytes }],
        ));
    }
    let root = match design_dir {
        Some(d) => path.join(d),
        None if path.join("designs").is_dir() => path.join("designs"),
        None => path.to_path_buf(),
    };
    let files = source::read_dir_files(&root).map_err(|e| e.to_string())?;
    Ok((root.display().to_string(), files))
}

/// `slipway validate`: exit 0 valid (warnings allowed), 1 invalid, 2 error.
pub fn validate(path: &Path, rev: Option<&str>, design_dir: Option<&str>, json: bool) -> ExitCode {
    let (what, files) = match load(path, rev, design_dir) {
        Ok(x) => x,
        Err(e) => return fail(&e),
    };
    if files.is_empty() {
        return fail(&format!("{what}: no *.yaml or *.yml design files found"));
    }
    let v = design::validate(&files);
    if json {
        match serde_json::to_string_pretty(&v.status()) {
            Ok(s) => println!("{s}"),
            Err(e) => return fail(&e.to_string()),
        }
    } else {
        for m in &v.messages {
            println!("{}", m.to_text_line());
        }
        let docs = v.design.as_ref().map(|d| d.documents.len()).unwrap_or(0);
        let warnings = v
            .messages
            .iter()
            .filter(|m| m.level == design::Level::Warning)
            .count();
        eprintln!(
            "{what}: {} file(s), {docs} document(s): {}, {} error(s), {warnings} warning(s)",
            files.len(),
            if v.is_valid() { "valid" } else { "INVALID" },
            v.error_count()
        );
    }
    if v.is_valid() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// `slipway diff FROM TO`: per document and per node, what changes.
pub fn diff(repo: &Path, design_dir: Option<&str>, from: &str, to: &str) -> ExitCode {
    let repo = match Repo::discover(repo) {
        Ok(r) => r,
        Err(e) => return fail(&e.to_string()),
    };
    let mut designs = Vec::new();
    for rev in [from, to] {
        let r = match repo.resolve(rev) {
            Ok(r) => r,
            Err(e) => return fail(&e.to_string()),
        };
        let files = match repo.design_files(&r.commit, design_dir) {
            Ok(f) => f,
            Err(e) => return fail(&e.to_string()),
        };
        let v = design::validate(&files);
        if !v.is_valid() {
            println!(
                "{rev} ({}) is INVALID ({} error(s)); run `slipway validate --rev {rev}`",
                short(&r.commit),
                v.error_count()
            );
        }
        designs.push((r, v));
    }
    let (to_rev, to_v) = designs.pop().expect("two revisions");
    let (from_rev, from_v) = designs.pop().expect("two revisions");
    let (Some(old), Some(new)) = (from_v.design.as_ref(), to_v.design.as_ref()) else {
        return fail("a revision could not be read");
    };
    let p = plan::plan(new, &plan::snapshot_of(old));
    println!(
        "diff {} .. {}",
        short(&from_rev.commit),
        short(&to_rev.commit)
    );
    if p.is_empty() {
        println!("no changes");
    }
    for line in p.summary_lines() {
        println!("{line}");
    }
    if to_v.is_valid() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn short(commit: &str) -> &str {
    &commit[..commit.len().min(12)]
}
