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

/// Why a design could not be loaded: a usage or I/O error (exit 2), or a
/// design refused before it was read (over a byte cap: invalid, exit 1).
enum LoadError {
    Fail(String),
    Invalid(Box<design::Message>),
}

impl From<source::SourceError> for LoadError {
    fn from(e: source::SourceError) -> Self {
        match e.limit_message() {
            Some(m) => LoadError::Invalid(Box::new(m.clone())),
            None => LoadError::Fail(e.to_string()),
        }
    }
}

/// Reads the design at `path`: a git repository's commit (`rev`, default HEAD)
/// when `path` is a repository root or `rev` is given, else the directory.
fn load(
    path: &Path,
    rev: Option<&str>,
    design_dir: Option<&str>,
    limits: &design::Limits,
) -> Result<(String, Vec<DesignFile>), LoadError> {
    if !path.exists() {
        return Err(LoadError::Fail(format!(
            "{}: no such file or directory",
            path.display()
        )));
    }
    let is_repo_root = path.join(".git").exists();
    if is_repo_root || rev.is_some() {
        let repo = Repo::discover(path)?;
        let r = repo.resolve(rev.unwrap_or("HEAD"))?;
        let files = repo.design_files_within(&r.commit, design_dir, limits)?;
        return Ok((format!("commit {}", r.commit), files));
    }
    if path.is_file() {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let size = std::fs::metadata(path)
            .map_err(|e| LoadError::Fail(format!("{}: {e}", path.display())))?
            .len();
        if let Some(m) = limits.check_sizes([(name.as_str(), size)]) {
            return Err(LoadError::Invalid(Box::new(m)));
        }
        let bytes =
            std::fs::read(path).map_err(|e| LoadError::Fail(format!("{}: {e}", path.display())))?;
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
    let files = source::read_dir_files_within(&root, limits)?;
    Ok((root.display().to_string(), files))
}

/// `slipway validate`: exit 0 valid (warnings allowed), 1 invalid, 2 error.
pub fn validate(
    path: &Path,
    rev: Option<&str>,
    design_dir: Option<&str>,
    json: bool,
    limits: &design::Limits,
) -> ExitCode {
    let (what, files) = match load(path, rev, design_dir, limits) {
        Ok(x) => x,
        Err(LoadError::Fail(e)) => return fail(&e),
        Err(LoadError::Invalid(m)) => {
            // Refused unread: reported like any validation, exit 1.
            let messages = vec![*m];
            if json {
                match serde_json::to_string_pretty(&design::Status::from_messages(&messages)) {
                    Ok(s) => println!("{s}"),
                    Err(e) => return fail(&e.to_string()),
                }
            } else {
                println!("{}", messages[0].to_text_line());
                eprintln!("{}: INVALID, 1 error(s)", path.display());
            }
            return ExitCode::from(1);
        }
    };
    if files.is_empty() {
        return fail(&format!("{what}: no *.yaml or *.yml design files found"));
    }
    let v = slipway::validate_within(&files, limits);
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
        let v = slipway::validate(&files);
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

/// `slipway node-key HOSTNAME`: prints the node's identity key for its
/// current deployment, making the deployment (as the server would) when the
/// node has none or its inputs changed.
pub fn node_key(
    repo: &Path,
    design_dir: Option<&str>,
    db: &Path,
    secret: Option<&Path>,
    host: &str,
) -> ExitCode {
    use slipway::services::{BootConfig, BootService};
    let secret_path = secret
        .map(Path::to_path_buf)
        .unwrap_or_else(|| slipway::keys::default_secret_path(db));
    let secret = match slipway::keys::Secret::load_or_create(&secret_path) {
        Ok(s) => s,
        Err(e) => return fail(&e.to_string()),
    };
    let store = match slipway::state::Store::open(db) {
        Ok(s) => s,
        Err(e) => return fail(&e.to_string()),
    };
    let root = match Repo::discover(repo) {
        Ok(r) => r.root(),
        Err(e) => return fail(&e.to_string()),
    };
    let service = BootService::new(
        BootConfig {
            repo: root,
            design_dir: design_dir.map(str::to_string),
            report_url: slipway::render::context::DEFAULT_REPORT_URL.to_string(),
            limits: Default::default(),
        },
        secret,
        store,
        Default::default(),
    );
    // Offline: the applied revision is read here, as the server's
    // reconciler reads it at start.
    let applied = match slipway::state::Store::open(db).and_then(|s| s.applied_revision()) {
        Ok(Some(r)) => r.revision.commit,
        Ok(None) => return fail(&format!("{}: no applied revision yet", db.display())),
        Err(e) => return fail(&e.to_string()),
    };
    if let Err(e) = service.load_applied(&applied, None) {
        return fail(&e.to_string());
    }
    match service.deployment(host) {
        Ok(d) => {
            println!("{}", service.identity_key(d.record()));
            ExitCode::SUCCESS
        }
        Err(e) => fail(&e.to_string()),
    }
}

/// What `slipway render` writes.
pub struct RenderArgs<'a> {
    pub repo: &'a Path,
    pub rev: Option<&'a str>,
    pub design_dir: Option<&'a str>,
    pub host: &'a str,
    pub kind: slipway::render::bootdata::BootDataKind,
    pub out: Option<&'a Path>,
    pub db: Option<&'a Path>,
    pub secret: Option<&'a Path>,
    pub report_url: &'a str,
}

/// `slipway render HOSTNAME (--units|--files)`: the node's tarball, offline.
/// With `--db`, the action ids, keys, design_ref and mtime of the node's
/// deployment in that database; without, placeholder ids and keys, and the
/// revision's commit and time.
pub fn render(a: &RenderArgs<'_>) -> ExitCode {
    use slipway::render::context::ActionValues;
    let repo = match Repo::discover(a.repo) {
        Ok(r) => r,
        Err(e) => return fail(&e.to_string()),
    };
    let rev = match repo.resolve(a.rev.unwrap_or("HEAD")) {
        Ok(r) => r,
        Err(e) => return fail(&e.to_string()),
    };
    let files = match repo.design_files(&rev.commit, a.design_dir) {
        Ok(f) => f,
        Err(e) => return fail(&e.to_string()),
    };
    let v = slipway::validate(&files);
    let Some(d) = v.design.as_ref().filter(|_| v.is_valid()) else {
        return fail(&format!(
            "commit {} is invalid ({} error(s)); run `slipway validate --rev {}`",
            rev.commit,
            v.error_count(),
            a.rev.unwrap_or("HEAD")
        ));
    };
    let mut design_ref = rev.commit.clone();
    let mut mtime = rev.committed_at.max(0) as u64;
    let mut values: Vec<(String, ActionValues)> = Vec::new();
    if let Some(db) = a.db {
        let store = match slipway::state::Store::open(db) {
            Ok(s) => s,
            Err(e) => return fail(&e.to_string()),
        };
        let dep = match store.deployment_of(a.host) {
            Ok(Some(dep)) => dep,
            Ok(None) => {
                return fail(&format!(
                    "node {} has no deployment in {}; it is made by the first boot-data or identity request (or `slipway node-key`)",
                    a.host,
                    db.display()
                ))
            }
            Err(e) => return fail(&e.to_string()),
        };
        let secret_path = a
            .secret
            .map(Path::to_path_buf)
            .unwrap_or_else(|| slipway::keys::default_secret_path(db));
        let secret = match slipway::keys::Secret::load(&secret_path) {
            Ok(s) => s,
            Err(e) => return fail(&e.to_string()),
        };
        let actions = match store.boot_actions_of(a.host, &dep.deployment) {
            Ok(x) => x,
            Err(e) => return fail(&e.to_string()),
        };
        design_ref = dep.design_ref.clone();
        mtime = dep.committed_at.max(0) as u64;
        values = actions
            .into_iter()
            .map(|r| {
                let v = ActionValues {
                    action_key: secret.action_key(&r.action_id),
                    action_id: r.action_id,
                    report_url: a.report_url.to_string(),
                    design_ref: design_ref.clone(),
                };
                (r.action, v)
            })
            .collect();
    }
    let lookup = |name: &str| {
        values
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    };
    let bytes = match slipway::services::render_offline(
        d,
        a.host,
        a.kind,
        mtime,
        &design_ref,
        a.report_url,
        &lookup,
    ) {
        Ok(b) => b,
        Err(e) => return fail(&e.to_string()),
    };
    let written = match a.out {
        Some(p) => std::fs::write(p, &bytes).map_err(|e| format!("{}: {e}", p.display())),
        None => {
            use std::io::Write;
            std::io::stdout()
                .write_all(&bytes)
                .map_err(|e| format!("stdout: {e}"))
        }
    };
    match written {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&e),
    }
}

/// What `slipway power` acts on and how.
pub struct PowerArgs<'a> {
    /// A path inside the design repository, or a design directory.
    pub path: &'a Path,
    /// Revision when `path` is a repository (default HEAD).
    pub rev: Option<&'a str>,
    /// Design root inside the repository or directory.
    pub design_dir: Option<&'a str>,
    /// The nodes named.
    pub hosts: &'a [String],
    /// A node filter file (Drydock's `node_filter`, JSON) instead of names.
    pub filter: Option<&'a Path>,
    /// The action (`status`, `on`, `off`, `cycle`, `pxe-once`...).
    pub action: &'a str,
    /// The power service's limits and TLS switch.
    pub settings: slipway::services::power::PowerSettings,
}

/// `slipway power (HOST…|--filter FILE) ACTION`: runs the action on the nodes
/// of a design read like `validate` does (no server), one line per node
/// (`node outcome message`); exit 0 when every node succeeded, 1 when any
/// failed, 2 on a usage or I/O error.
pub fn power(a: PowerArgs<'_>) -> ExitCode {
    use slipway::services::power::{parse_action, NodePower, ACTION_NAMES};
    let Some(op) = parse_action(a.action) else {
        return fail(&format!(
            "unknown power action `{}`; expected one of {ACTION_NAMES}",
            a.action
        ));
    };
    let (what, files) = match load(a.path, a.rev, a.design_dir, &design::Limits::default()) {
        Ok(x) => x,
        Err(LoadError::Fail(e)) => return fail(&e),
        Err(LoadError::Invalid(m)) => return fail(&m.to_text_line()),
    };
    let v = slipway::validate(&files);
    let Some(d) = v.design.as_ref().filter(|_| v.is_valid()) else {
        return fail(&format!(
            "{what} is invalid ({} error(s)); run `slipway validate`",
            v.error_count()
        ));
    };
    let names: Vec<String> = match a.filter {
        Some(file) => {
            let text = match std::fs::read_to_string(file) {
                Ok(t) => t,
                Err(e) => return fail(&format!("{}: {e}", file.display())),
            };
            let f: design::model::NodeFilter = match serde_json::from_str(&text) {
                Ok(f) => f,
                Err(e) => {
                    return fail(&format!(
                        "{}: expected a Drydock node_filter (JSON): {e}",
                        file.display()
                    ))
                }
            };
            let nodes = d.effective_nodes();
            design::filter::select(d, nodes, Some(&f))
                .into_iter()
                .map(|i| nodes[i].name.clone())
                .collect()
        }
        None => a.hosts.to_vec(),
    };
    if names.is_empty() {
        return fail("no node selected: name nodes or give a --filter that selects some");
    }
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => return fail(&format!("cannot start the runtime: {e}")),
    };
    let power = match NodePower::new(&a.settings) {
        Ok(p) => p,
        Err(e) => return fail(&e.to_string()),
    };
    let targets = power.targets(d, &names);
    let outcomes = rt.block_on(power.run(targets, &[op]));
    let mut failed = 0;
    for o in &outcomes {
        let outcome = match &o.failure {
            None => "ok".to_string(),
            Some(f) => {
                failed += 1;
                format!("failed ({})", f.kind())
            }
        };
        println!("{}\t{outcome}\t{}", o.node, o.message);
    }
    eprintln!(
        "{op}: {} node(s), {} ok, {failed} failed",
        outcomes.len(),
        outcomes.len() - failed
    );
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// `slipway discovered`: one line per proposal on `branch` not yet on the
/// followed branch (`new` for a machine the design lacks, `changed` for a
/// file that differs), then a count. Exit 0, or 2 when the repository or a
/// branch cannot be read.
pub fn discovered(repo: &Path, branch: &str, followed: Option<&str>) -> ExitCode {
    let files = match slipway::services::inspection::proposals(repo, branch, followed) {
        Ok(f) => f,
        Err(e) => return fail(&e),
    };
    for f in &files {
        // The proposed node's name: the document's `metadata.name`.
        let text = String::from_utf8_lossy(&f.bytes);
        let name = text
            .lines()
            .find_map(|l| l.strip_prefix("  name: "))
            .map(|n| n.trim().trim_matches('\'').to_string())
            .unwrap_or_default();
        let what = if f.added { "new" } else { "changed" };
        println!("{what:<8} {name:<28} {}", f.path);
    }
    println!("{} proposal(s) on {branch}", files.len());
    ExitCode::SUCCESS
}

/// `slipway user add NAME`: the password from standard input (prompted for
/// twice without echo on a terminal, unless `--password-stdin`), the users
/// file rewritten atomically. Exit 0 on success, 2 on a usage or I/O error.
pub fn user_add(path: &Path, name: &str, password_stdin: bool) -> ExitCode {
    use std::io::IsTerminal as _;
    let stdin = std::io::stdin();
    let password = if !password_stdin && stdin.is_terminal() {
        let first = match read_hidden(&format!("Password for {name}: ")) {
            Ok(p) => p,
            Err(e) => return fail(&format!("reading the password: {e}")),
        };
        match read_hidden("Again: ") {
            Ok(p) if p == first => first,
            Ok(_) => return fail("the two passwords differ"),
            Err(e) => return fail(&format!("reading the password: {e}")),
        }
    } else {
        let mut line = String::new();
        if let Err(e) = stdin.read_line(&mut line) {
            return fail(&format!("reading the password from standard input: {e}"));
        }
        line.trim_end_matches(['\n', '\r']).to_string()
    };
    match slipway::services::users::add_user(path, name, &password) {
        Ok(existed) => {
            let what = if existed {
                "changed the password of"
            } else {
                "added"
            };
            println!("{what} user {name} in {}", path.display());
            ExitCode::SUCCESS
        }
        Err(e) => fail(&e.to_string()),
    }
}

/// One line from the terminal with echo off (restored afterwards).
fn read_hidden(prompt: &str) -> std::io::Result<String> {
    use std::io::Write as _;
    use std::os::fd::AsRawFd as _;
    let fd = std::io::stdin().as_raw_fd();
    eprint!("{prompt}");
    std::io::stderr().flush()?;
    // SAFETY: tcgetattr/tcsetattr only read and write the termios struct
    // given, for a descriptor that stays open (stdin).
    let saved = unsafe {
        let mut t: libc::termios = std::mem::zeroed();
        if libc::tcgetattr(fd, &mut t) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        let saved = t;
        t.c_lflag &= !libc::ECHO;
        libc::tcsetattr(fd, libc::TCSANOW, &t);
        saved
    };
    let mut line = String::new();
    let read = std::io::stdin().read_line(&mut line);
    // SAFETY: as above, restoring the saved settings.
    unsafe {
        libc::tcsetattr(fd, libc::TCSANOW, &saved);
    }
    eprintln!();
    read?;
    Ok(line.trim_end_matches(['\n', '\r']).to_string())
}
