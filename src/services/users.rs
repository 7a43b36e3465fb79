//! Users and their sessions, for the dialects that log people in (Luna2's
//! `POST /token`, Commissaire's HTTP basic): a **users file** of Argon2id
//! password hashes ([`UsersFile`]: `NAME:PHC` lines, never clear text),
//! written by `slipway user add` ([`add_user`]: atomically, mode 0600) and
//! read again whenever it changes (checked at each login); and **session
//! tokens**, HS256 JWTs ([`TokenKeys`]) signed with a key the operator shares
//! with Luna2's CLI (its `SECRET_KEY`). [`UserService`] is both, as the server
//! holds them. The only user of `argon2` and `jsonwebtoken`; no HTTP.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use serde::{Deserialize, Serialize};

/// Default lifetime of a session token (Luna2's `[API] EXPIRY` since TRIX-1872).
pub const DEFAULT_TOKEN_EXPIRY: Duration = Duration::from_secs(3600);

/// The longest user name accepted.
pub const MAX_NAME: usize = 64;

/// The scope of a node's install-time token (Luna2's `LUNA_TOKEN`).
pub const PROVISION_SCOPE: &str = "provision";

/// Where the users file and the token key are, and how long tokens live
/// (`ServeConfig.users`: `--users`, `--luna-secret-key-file`,
/// `--luna-token-expiry`).
#[derive(Debug, Clone)]
pub struct UserSettings {
    /// The users file (`None`: `<db>.users`).
    pub users: Option<PathBuf>,
    /// The HS256 key file (`None`: `<db>.luna-key`, created 0600 on first start).
    pub key_file: Option<PathBuf>,
    /// Lifetime of an operator's session token.
    pub expiry: Duration,
}

impl Default for UserSettings {
    fn default() -> Self {
        UserSettings {
            users: None,
            key_file: None,
            expiry: DEFAULT_TOKEN_EXPIRY,
        }
    }
}

/// Why the users file or the key cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum UserError {
    /// A file could not be read or written.
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: String,
        source: std::io::Error,
    },
    /// A line of the users file is not `NAME:PHC`.
    #[error("{path} line {line}: {reason}")]
    BadLine {
        path: String,
        line: usize,
        reason: String,
    },
    /// A user name that cannot be stored.
    #[error("user name `{0}` is not 1 to 64 of A-Z a-z 0-9 . _ -")]
    BadName(String),
    /// An empty password.
    #[error("the password is empty")]
    EmptyPassword,
    /// The key file holds no key.
    #[error("the token key file {0} is empty")]
    EmptyKey(String),
    /// Hashing failed (the hasher's own error).
    #[error("hashing the password: {0}")]
    Hash(String),
}

/// Whether `name` can be a user: 1 to [`MAX_NAME`] of `A-Z a-z 0-9 . _ -`.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// One user of the file: its name, its position (1-based, the token's `id`)
/// and its PHC hash string.
#[derive(Debug, Clone)]
struct User {
    name: String,
    id: u64,
    hash: String,
}

/// What identifies a version of the file on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stamp {
    len: u64,
    modified: Option<std::time::SystemTime>,
    inode: u64,
}

fn stamp(path: &Path) -> Option<Stamp> {
    use std::os::unix::fs::MetadataExt as _;
    let m = std::fs::metadata(path).ok()?;
    Some(Stamp {
        len: m.len(),
        modified: m.modified().ok(),
        inode: m.ino(),
    })
}

/// Parses the users file's text: `NAME:PHC` per line; blank lines and lines
/// starting with `#` are skipped. A name twice is an error.
fn parse_users(path: &Path, text: &str) -> Result<Vec<User>, UserError> {
    let mut users: Vec<User> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let bad = |reason: String| UserError::BadLine {
            path: path.display().to_string(),
            line: i + 1,
            reason,
        };
        let (name, hash) = line
            .split_once(':')
            .ok_or_else(|| bad("expected NAME:HASH".into()))?;
        if !valid_name(name) {
            return Err(bad(format!(
                "user name `{name}` is not 1 to 64 of A-Z a-z 0-9 . _ -"
            )));
        }
        PasswordHash::new(hash).map_err(|e| bad(format!("not a PHC password hash: {e}")))?;
        if users.iter().any(|u| u.name == name) {
            return Err(bad(format!("user `{name}` appears twice")));
        }
        users.push(User {
            name: name.to_string(),
            id: users.len() as u64 + 1,
            hash: hash.to_string(),
        });
    }
    Ok(users)
}

fn read_users(path: &Path) -> Result<Vec<User>, UserError> {
    match std::fs::read_to_string(path) {
        Ok(text) => parse_users(path, &text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(source) => Err(UserError::Io {
            what: "reading the users file",
            path: path.display().to_string(),
            source,
        }),
    }
}

/// The users file, read at start and again when it changes (its size,
/// modification time or inode differ at a login). A missing file is no
/// users. A file that becomes unreadable or malformed keeps the last good
/// version (and says so in the log).
#[derive(Debug)]
pub struct UsersFile {
    path: PathBuf,
    loaded: Mutex<(Option<Stamp>, Arc<Vec<User>>)>,
}

/// A user who logged in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The user's name.
    pub name: String,
    /// The user's position in the file, 1-based (Luna2's `id` claim).
    pub id: u64,
}

impl UsersFile {
    /// Reads the file at `path` (missing: no users); a malformed file is an error.
    pub fn open(path: &Path) -> Result<UsersFile, UserError> {
        let st = stamp(path);
        let users = read_users(path)?;
        if st.is_none() {
            tracing::warn!(path = %path.display(), "no users file yet: nobody can log in until `slipway user add` writes one");
        }
        Ok(UsersFile {
            path: path.to_path_buf(),
            loaded: Mutex::new((st, Arc::new(users))),
        })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The users as the file holds them now (re-read if it changed).
    fn current(&self) -> Arc<Vec<User>> {
        let now = stamp(&self.path);
        let mut loaded = self.loaded.lock().unwrap_or_else(|e| e.into_inner());
        if loaded.0 != now {
            match read_users(&self.path) {
                Ok(users) => {
                    tracing::info!(path = %self.path.display(), users = users.len(), "users file read again");
                    *loaded = (now, Arc::new(users));
                }
                Err(e) => {
                    tracing::error!(error = %e, "the users file changed but cannot be used; keeping its last good version");
                    loaded.0 = now;
                }
            }
        }
        loaded.1.clone()
    }

    /// The number of users.
    pub fn len(&self) -> usize {
        self.current().len()
    }

    /// Whether the file has no users.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether `password` is `user`'s. Blocking (Argon2 takes tens of
    /// milliseconds, on purpose): call it off the async runtime. An unknown
    /// user costs the same as a wrong password.
    pub fn verify(&self, user: &str, password: &str) -> Option<Verified> {
        let users = self.current();
        let found = users.iter().find(|u| u.name == user);
        let hash = found.map_or_else(|| dummy_hash().as_str(), |u| u.hash.as_str());
        let ok = PasswordHash::new(hash)
            .map(|h| {
                Argon2::default()
                    .verify_password(password.as_bytes(), &h)
                    .is_ok()
            })
            .unwrap_or(false);
        match (ok, found) {
            (true, Some(u)) => Some(Verified {
                name: u.name.clone(),
                id: u.id,
            }),
            _ => None,
        }
    }
}

/// A hash no password is checked against successfully on purpose: verifying
/// an unknown user against it takes as long as a real check.
fn dummy_hash() -> &'static String {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| hash_password("slipway: no such user").unwrap_or_default())
}

/// The Argon2id PHC string of `password` with a fresh salt (the crate's
/// default parameters: 19 MiB, 2 passes).
pub fn hash_password(password: &str) -> Result<String, UserError> {
    let bytes = random_bytes::<16>().map_err(|e| UserError::Hash(format!("a salt: {e}")))?;
    let salt = SaltString::encode_b64(&bytes).map_err(|e| UserError::Hash(e.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| UserError::Hash(e.to_string()))
}

/// `N` bytes from the kernel's random source.
fn random_bytes<const N: usize>() -> std::io::Result<[u8; N]> {
    let mut bytes = [0u8; N];
    std::io::Read::read_exact(&mut std::fs::File::open("/dev/urandom")?, &mut bytes)?;
    Ok(bytes)
}

/// Adds `name` to the users file at `path`, or changes its password:
/// the file is written whole to a temporary file beside it (mode 0600),
/// synced and renamed over it, so a running server reads either the old or
/// the new file. Returns whether the user existed.
pub fn add_user(path: &Path, name: &str, password: &str) -> Result<bool, UserError> {
    if !valid_name(name) {
        return Err(UserError::BadName(name.to_string()));
    }
    if password.is_empty() {
        return Err(UserError::EmptyPassword);
    }
    let io = |what: &'static str| {
        let path = path.display().to_string();
        move |source| UserError::Io { what, path, source }
    };
    let old = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(io("reading the users file")(e)),
    };
    parse_users(path, &old)?;
    let line = format!("{name}:{}", hash_password(password)?);
    let mut existed = false;
    let mut out = String::new();
    for l in old.lines() {
        if l.trim().split_once(':').is_some_and(|(n, _)| n == name) {
            existed = true;
            out.push_str(&line);
        } else {
            out.push_str(l);
        }
        out.push('\n');
    }
    if !existed {
        out.push_str(&line);
        out.push('\n');
    }
    write_private(path, out.as_bytes()).map_err(io("writing the users file"))?;
    Ok(existed)
}

/// Writes `bytes` to `path` atomically with mode 0600 (temporary file in the
/// same directory, synced, renamed).
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "users".into());
    let tmp = dir.join(format!(".{file_name}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        std::fs::File::open(&dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// What a session token says. Luna2's own tokens carry `id` and `exp`;
/// slipway adds the user's name (`sub` and `username`: who a config write is
/// committed as) and, for a node's install-time token, `scope` and `node`.
/// No `iat` or `nbf`: Luna2's CLI crashes on a claim in its future.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The user's position in the users file (0 for a node's token).
    pub id: u64,
    /// The user's name (a node's name for a provision token).
    #[serde(default)]
    pub sub: String,
    /// The same, under the name Luna2 users expect.
    #[serde(default)]
    pub username: String,
    /// Expiry, seconds since the epoch.
    pub exp: u64,
    /// `provision` for a node's install-time token; absent for an operator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// The node a provision token is for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
}

impl Claims {
    /// Whether this is a node's install-time token.
    pub fn is_provision(&self) -> bool {
        self.scope.as_deref() == Some(PROVISION_SCOPE)
    }
}

/// Why a token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not a JWT, another key's signature, another algorithm, or malformed claims.
    #[error("the token is invalid")]
    Invalid,
    /// Past its `exp`.
    #[error("the token has expired")]
    Expired,
}

/// The HS256 key and the tokens' lifetime.
pub struct TokenKeys {
    encoding: jsonwebtoken::EncodingKey,
    decoding: jsonwebtoken::DecodingKey,
    expiry: Duration,
}

impl std::fmt::Debug for TokenKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenKeys")
            .field("expiry", &self.expiry)
            .finish_non_exhaustive()
    }
}

impl TokenKeys {
    /// Keys from the secret's bytes (Luna2's `SECRET_KEY` text, as its CLI
    /// hands it to PyJWT).
    pub fn new(secret: &[u8], expiry: Duration) -> TokenKeys {
        TokenKeys {
            encoding: jsonwebtoken::EncodingKey::from_secret(secret),
            decoding: jsonwebtoken::DecodingKey::from_secret(secret),
            expiry,
        }
    }

    /// Reads the key file (its text, trimmed), creating it with a fresh
    /// random key (64 hex digits, mode 0600) when it does not exist.
    pub fn load_or_create(path: &Path, expiry: Duration) -> Result<TokenKeys, UserError> {
        let io = |what: &'static str| {
            let path = path.display().to_string();
            move |source| UserError::Io { what, path, source }
        };
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let bytes = random_bytes::<32>().map_err(io("reading /dev/urandom"))?;
                let key = hex::encode(bytes);
                write_private(path, format!("{key}\n").as_bytes())
                    .map_err(io("writing the token key file"))?;
                tracing::info!(path = %path.display(), "created the Luna2 token key (the CLI's SECRET_KEY)");
                key
            }
            Err(e) => return Err(io("reading the token key file")(e)),
        };
        let key = text.trim();
        if key.is_empty() {
            return Err(UserError::EmptyKey(path.display().to_string()));
        }
        Ok(TokenKeys::new(key.as_bytes(), expiry))
    }

    /// The lifetime of an operator's token.
    pub fn expiry(&self) -> Duration {
        self.expiry
    }

    /// Signs `claims` (HS256).
    pub fn sign(&self, claims: &Claims) -> String {
        jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
            claims,
            &self.encoding,
        )
        .expect("HS256 signing of plain claims cannot fail")
    }

    /// A token for `user`, valid for the configured lifetime from now.
    pub fn issue(&self, user: &Verified) -> String {
        self.sign(&Claims {
            id: user.id,
            sub: user.name.clone(),
            username: user.name.clone(),
            exp: now_secs() + self.expiry.as_secs(),
            scope: None,
            node: None,
        })
    }

    /// A node's install-time token (`scope: provision`, `node`), valid for `lifetime`.
    pub fn issue_provision(&self, node: &str, lifetime: Duration) -> String {
        self.sign(&Claims {
            id: 0,
            sub: node.to_string(),
            username: node.to_string(),
            exp: now_secs() + lifetime.as_secs(),
            scope: Some(PROVISION_SCOPE.to_string()),
            node: Some(node.to_string()),
        })
    }

    /// The claims of a token signed with this key (HS256 only) and not
    /// expired (no leeway).
    pub fn check(&self, token: &str) -> Result<Claims, TokenError> {
        let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
        v.leeway = 0;
        v.validate_aud = false;
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &v)
            .map(|d| d.claims)
            .map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => TokenError::Expired,
                _ => TokenError::Invalid,
            })
    }
}

/// Seconds since the epoch, as a claim holds them.
fn now_secs() -> u64 {
    crate::clock::now().max(0) as u64
}

/// The users file and the token keys, as the server holds them
/// (`AppState.users`).
#[derive(Debug)]
pub struct UserService {
    /// The users file.
    pub users: UsersFile,
    /// The session tokens' key and lifetime.
    pub tokens: TokenKeys,
}

impl UserService {
    /// Opens the users file and the key file named by `settings`, defaulting
    /// beside the file `db` (`<db>.users`, `<db>.luna-key`): the SQLite
    /// database, or on PostgreSQL the server secret file.
    pub fn open(settings: &UserSettings, db: &Path) -> Result<UserService, UserError> {
        let beside = |suffix: &str| {
            let mut p = db.as_os_str().to_owned();
            p.push(suffix);
            PathBuf::from(p)
        };
        let users_path = settings.users.clone().unwrap_or_else(|| beside(".users"));
        let key_path = settings
            .key_file
            .clone()
            .unwrap_or_else(|| beside(".luna-key"));
        Ok(UserService {
            users: UsersFile::open(&users_path)?,
            tokens: TokenKeys::load_or_create(&key_path, settings.expiry)?,
        })
    }

    /// Whether `password` is `user`'s (blocking; see [`UsersFile::verify`]).
    /// Commissaire's HTTP basic calls this.
    pub fn verify(&self, user: &str, password: &str) -> Option<Verified> {
        self.users.verify(user, password)
    }

    /// A session token for `user` if `password` is theirs (blocking).
    pub fn login(&self, user: &str, password: &str) -> Option<String> {
        self.verify(user, password).map(|u| self.tokens.issue(&u))
    }

    /// The claims of a valid, unexpired token.
    pub fn check_token(&self, token: &str) -> Result<Claims, TokenError> {
        self.tokens.check(token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn added_users_verify_and_the_file_is_private_hashes_only() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users");
        assert!(!add_user(&path, "alice", "s3cret pass").unwrap());
        assert!(!add_user(&path, "bob", "other").unwrap());
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains("s3cret"), "{text}");
        assert!(text.contains("alice:$argon2id$"), "{text}");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let f = UsersFile::open(&path).unwrap();
        assert_eq!(
            f.verify("alice", "s3cret pass"),
            Some(Verified {
                name: "alice".into(),
                id: 1
            })
        );
        assert_eq!(f.verify("bob", "other").map(|v| v.id), Some(2));
        assert_eq!(f.verify("alice", "other"), None);
        assert_eq!(f.verify("carol", "other"), None);
        // Changing a password replaces the line; the running reader sees it.
        assert!(add_user(&path, "alice", "new one").unwrap());
        assert_eq!(f.verify("alice", "s3cret pass"), None);
        assert!(f.verify("alice", "new one").is_some());
        assert_eq!(f.len(), 2);
    }

    #[test]
    fn bad_names_empty_passwords_and_malformed_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users");
        for name in ["", "a:b", "a b", "x'--", &"n".repeat(65)] {
            assert!(matches!(
                add_user(&path, name, "pw"),
                Err(UserError::BadName(_))
            ));
        }
        assert!(matches!(
            add_user(&path, "ok", ""),
            Err(UserError::EmptyPassword)
        ));
        std::fs::write(&path, "alice:luna\n").unwrap();
        let e = UsersFile::open(&path).unwrap_err().to_string();
        assert!(e.contains("line 1") && e.contains("PHC"), "{e}");
        // A file that goes bad while served keeps its last good version.
        std::fs::write(&path, "").unwrap();
        let f = UsersFile::open(&path).unwrap();
        add_user(&path, "alice", "pw").unwrap();
        assert!(f.verify("alice", "pw").is_some());
        std::fs::write(&path, "garbage with no colon and a longer size\n").unwrap();
        assert!(f.verify("alice", "pw").is_some());
    }

    #[test]
    fn tokens_carry_no_time_claim_but_exp_and_fail_with_another_key_or_when_expired() {
        let keys = TokenKeys::new(b"k1", Duration::from_secs(3600));
        let user = Verified {
            name: "alice".into(),
            id: 3,
        };
        let t = keys.issue(&user);
        let claims = keys.check(&t).unwrap();
        assert_eq!(claims.username, "alice");
        assert_eq!(claims.id, 3);
        assert!(!claims.is_provision());
        let payload = t.split('.').nth(1).unwrap();
        use base64::Engine as _;
        let json: serde_json::Value = serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(payload)
                .unwrap(),
        )
        .unwrap();
        assert!(
            json.get("iat").is_none() && json.get("nbf").is_none(),
            "{json}"
        );
        assert!(json["exp"].as_u64().unwrap() > now_secs());
        let other = TokenKeys::new(b"k2", Duration::from_secs(3600));
        assert_eq!(other.check(&t), Err(TokenError::Invalid));
        assert_eq!(keys.check("not-a-jwt"), Err(TokenError::Invalid));
        let expired = keys.sign(&Claims {
            exp: now_secs() - 10,
            ..claims
        });
        assert_eq!(keys.check(&expired), Err(TokenError::Expired));
        let p = keys.issue_provision("n1", Duration::from_secs(60));
        let pc = keys.check(&p).unwrap();
        assert!(pc.is_provision());
        assert_eq!(pc.node.as_deref(), Some("n1"));
    }

    #[test]
    fn the_key_file_is_created_private_and_read_back() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key");
        let a = TokenKeys::load_or_create(&path, DEFAULT_TOKEN_EXPIRY).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let b = TokenKeys::load_or_create(&path, DEFAULT_TOKEN_EXPIRY).unwrap();
        let t = a.issue(&Verified {
            name: "x".into(),
            id: 1,
        });
        assert!(b.check(&t).is_ok());
        std::fs::write(&path, "  \n").unwrap();
        assert!(matches!(
            TokenKeys::load_or_create(&path, DEFAULT_TOKEN_EXPIRY),
            Err(UserError::EmptyKey(_))
        ));
    }
}
