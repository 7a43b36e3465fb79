//! Keys and ids of boot-action deployments (DESIGN §4). The only user of
//! `hmac` and `ulid`.
//!
//! The server keeps one 32-byte secret in a 0600 file (created on first
//! start). Every key is an HMAC-SHA256 of that secret, so nothing secret is
//! stored per deployment and any process holding the secret can verify a key:
//!
//! - action key: `HMAC(secret, action_id)`;
//! - node identity key: `HMAC(secret, "identity:" + node + ":" + deployment)`.
//!
//! - node UUID (Ironic dialect): `HMAC(secret, "node-uuid:" + node)`, 16 bytes
//!   with RFC 4122 version and variant bits;
//! - stored form of an agent token: `HMAC(secret, "agent-token:" + token)`.
//!
//! The inputs cannot collide: an action id is 26 Crockford base32 characters
//! and never contains `:`. Keys are shown as 64 lowercase hex characters;
//! presented keys are compared in constant time.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Length of the server secret in bytes.
pub const SECRET_LEN: usize = 32;

/// What can go wrong with the secret file.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The file could not be read, created or inspected.
    #[error("secret file {path}: {what}: {source}")]
    Io {
        /// The secret file.
        path: String,
        /// What was being done.
        what: &'static str,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is readable by others than its owner.
    #[error("secret file {path}: expected permissions 0600 (owner read/write only), found {found:04o}; run `chmod 600 {path}`")]
    Permissions {
        /// The secret file.
        path: String,
        /// Its permission bits.
        found: u32,
    },
    /// The file is not a 32-byte secret.
    #[error("secret file {path}: expected exactly {SECRET_LEN} bytes, found {found}; remove it to create a new secret (every issued key changes)")]
    Size {
        /// The secret file.
        path: String,
        /// Its size in bytes.
        found: u64,
    },
    /// The file is missing although a database already holds deployments
    /// whose keys were derived from it: a new secret would change them all.
    #[error("secret file {path} is missing, but database {db} holds {deployments} node deployment(s) whose keys were derived from it; expected the secret beside the database: restore it (or pass --secret with its path). Starting with a new secret would change every node's keys")]
    Missing {
        /// The secret file expected.
        path: String,
        /// The database.
        db: String,
        /// Deployments in the database.
        deployments: u64,
    },
}

/// How a presented key compares to the expected one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyCheck {
    /// The key is right.
    Valid,
    /// The key is well-formed hex but not the right key.
    Wrong,
    /// The key is not 64 hex characters.
    Malformed,
}

/// The server secret.
#[derive(Clone)]
pub struct Secret([u8; SECRET_LEN]);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// The default secret file of a database: `<db>.secret` beside it.
pub fn default_secret_path(db: &Path) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push(".secret");
    PathBuf::from(name)
}

impl Secret {
    /// A secret from its bytes (tests, or secrets kept elsewhere).
    pub fn from_bytes(bytes: [u8; SECRET_LEN]) -> Secret {
        Secret(bytes)
    }

    /// Reads an existing secret at `path` (for offline commands, which must
    /// not create one beside a database they only read).
    pub fn load(path: &Path) -> Result<Secret, KeyError> {
        if let Err(source) = std::fs::symlink_metadata(path) {
            return Err(KeyError::Io {
                path: path.display().to_string(),
                what: "expected the server's secret file (see `slipway serve --secret`)",
                source,
            });
        }
        Secret::load_or_create(path)
    }

    /// Reads the secret at `path`, creating it (32 bytes from the OS's
    /// random source, mode 0600) when the file does not exist. An existing
    /// file with permissions wider than 0600 or of the wrong size is refused.
    pub fn load_or_create(path: &Path) -> Result<Secret, KeyError> {
        let shown = path.display().to_string();
        let io = |what: &'static str| {
            let shown = shown.clone();
            move |source| KeyError::Io {
                path: shown,
                what,
                source,
            }
        };
        match std::fs::symlink_metadata(path) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut bytes = [0u8; SECRET_LEN];
                std::fs::File::open("/dev/urandom")
                    .and_then(|mut f| f.read_exact(&mut bytes))
                    .map_err(io("reading 32 random bytes from /dev/urandom"))?;
                let mut opts = std::fs::OpenOptions::new();
                opts.write(true).create_new(true);
                #[cfg(unix)]
                {
                    use std::os::unix::fs::OpenOptionsExt;
                    opts.mode(0o600);
                }
                match opts.open(path) {
                    Ok(mut f) => {
                        f.write_all(&bytes)
                            .and_then(|_| f.sync_all())
                            .map_err(io("writing a new secret"))?;
                        tracing::info!(path = %shown, "created a new server secret");
                        return Ok(Secret(bytes));
                    }
                    // Another process created it first: read theirs.
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                    Err(e) => return Err(io("creating the secret file")(e)),
                }
            }
            Err(e) => return Err(io("inspecting the secret file")(e)),
        }
        let meta = std::fs::metadata(path).map_err(io("inspecting the secret file"))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = meta.permissions().mode() & 0o7777;
            if mode & !0o600 != 0 {
                return Err(KeyError::Permissions {
                    path: shown,
                    found: mode,
                });
            }
        }
        if meta.len() != SECRET_LEN as u64 {
            return Err(KeyError::Size {
                path: shown,
                found: meta.len(),
            });
        }
        let mut bytes = [0u8; SECRET_LEN];
        std::fs::File::open(path)
            .and_then(|mut f| f.read_exact(&mut bytes))
            .map_err(io("reading the secret"))?;
        Ok(Secret(bytes))
    }

    fn mac(&self, parts: &[&[u8]]) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.0).expect("HMAC takes keys of any length");
        for p in parts {
            mac.update(p);
        }
        mac
    }

    /// The key of one boot action: `HMAC-SHA256(secret, action_id)` as hex.
    pub fn action_key(&self, action_id: &str) -> String {
        hex::encode(self.mac(&[action_id.as_bytes()]).finalize().into_bytes())
    }

    /// The identity key of a node's deployment, as hex.
    pub fn identity_key(&self, node: &str, deployment: &str) -> String {
        hex::encode(
            self.mac(&identity_input(node, deployment))
                .finalize()
                .into_bytes(),
        )
    }

    /// Checks a presented action key in constant time.
    pub fn check_action_key(&self, action_id: &str, presented: &str) -> KeyCheck {
        check(self.mac(&[action_id.as_bytes()]), presented)
    }

    /// Checks a presented identity key in constant time.
    pub fn check_identity_key(&self, node: &str, deployment: &str, presented: &str) -> KeyCheck {
        check(self.mac(&identity_input(node, deployment)), presented)
    }
}

impl Secret {
    /// The stable UUID of a node in the Ironic dialects: derived from the
    /// secret and the node's name, so it is the same after a restart and on
    /// every replica sharing the secret, and unguessable without the secret.
    ///
    /// Marked as RFC 4122 version 4 (random): to anyone without the secret it
    /// is indistinguishable from a random UUID, and version 5 would claim a
    /// SHA-1 name hash it is not.
    pub fn node_uuid(&self, node_name: &str) -> String {
        let digest = self
            .mac(&[b"node-uuid:", node_name.as_bytes()])
            .finalize()
            .into_bytes();
        let mut b = [0u8; 16];
        b.copy_from_slice(&digest[..16]);
        b[6] = (b[6] & 0x0f) | 0x40;
        b[8] = (b[8] & 0x3f) | 0x80;
        let h = hex::encode(b);
        format!(
            "{}-{}-{}-{}-{}",
            &h[0..8],
            &h[8..12],
            &h[12..16],
            &h[16..20],
            &h[20..32]
        )
    }

    /// The form an agent token is stored in: `HMAC-SHA256(secret,
    /// "agent-token:" + token)` as hex. A copy of the database alone shows no
    /// usable token, and every replica sharing the secret can check one.
    pub fn agent_token_digest(&self, token: &str) -> String {
        hex::encode(
            self.mac(&[b"agent-token:", token.as_bytes()])
                .finalize()
                .into_bytes(),
        )
    }

    /// Checks a presented agent token against its stored digest in constant
    /// time (the HMAC's own `verify_slice`). A stored digest that is not 64 hex
    /// characters matches nothing.
    pub fn check_agent_token(&self, stored_digest: &str, presented: &str) -> bool {
        let Ok(expected) = hex::decode(stored_digest) else {
            return false;
        };
        if expected.len() != 32 {
            return false;
        }
        self.mac(&[b"agent-token:", presented.as_bytes()])
            .verify_slice(&expected)
            .is_ok()
    }
}

/// Characters of a new agent token (Ironic issues `secrets.token_urlsafe()`,
/// 43 characters; IPA keeps a token of 32 or more).
pub const AGENT_TOKEN_LEN: usize = 43;

/// A new agent token: 32 bytes from the OS's random source as 43 URL-safe
/// base64 characters (no padding), like Ironic's.
pub fn agent_token() -> Result<String, std::io::Error> {
    use base64::Engine;
    let mut bytes = [0u8; 32];
    std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut bytes))?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

fn identity_input<'a>(node: &'a str, deployment: &'a str) -> [&'a [u8]; 4] {
    [b"identity:", node.as_bytes(), b":", deployment.as_bytes()]
}

fn check(mac: HmacSha256, presented: &str) -> KeyCheck {
    let presented = presented.trim();
    if presented.len() != 64 {
        return KeyCheck::Malformed;
    }
    let Ok(bytes) = hex::decode(presented) else {
        return KeyCheck::Malformed;
    };
    match mac.verify_slice(&bytes) {
        Ok(()) => KeyCheck::Valid,
        Err(_) => KeyCheck::Wrong,
    }
}

/// A new ULID as 26 Crockford base32 characters.
pub fn new_ulid() -> String {
    ulid::Ulid::new().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret() -> Secret {
        Secret::from_bytes([7; SECRET_LEN])
    }

    #[test]
    fn action_key_is_hmac_hex() {
        let s = secret();
        let k = s.action_key("01ARZ3NDEKTSV4RRFFQ69G5FAV");
        assert_eq!(k.len(), 64);
        assert_eq!(k, s.action_key("01ARZ3NDEKTSV4RRFFQ69G5FAV"));
        assert_ne!(k, s.action_key("01ARZ3NDEKTSV4RRFFQ69G5FAW"));
        assert_eq!(
            s.check_action_key("01ARZ3NDEKTSV4RRFFQ69G5FAV", &k),
            KeyCheck::Valid
        );
        assert_eq!(
            s.check_action_key("01ARZ3NDEKTSV4RRFFQ69G5FAV", &k.to_uppercase()),
            KeyCheck::Valid
        );
        assert_eq!(
            s.check_action_key("01ARZ3NDEKTSV4RRFFQ69G5FAW", &k),
            KeyCheck::Wrong
        );
        assert_eq!(
            s.check_action_key("01ARZ3NDEKTSV4RRFFQ69G5FAV", "zz"),
            KeyCheck::Malformed
        );
        assert_eq!(
            s.check_action_key("01ARZ3NDEKTSV4RRFFQ69G5FAV", &"g".repeat(64)),
            KeyCheck::Malformed
        );
    }

    #[test]
    fn identity_key_is_domain_separated() {
        let s = secret();
        let k = s.identity_key("n1", "D1");
        assert_ne!(k, s.identity_key("n1", "D2"));
        assert_ne!(k, s.identity_key("n2", "D1"));
        assert_ne!(k, s.action_key("n1:D1"));
        assert_eq!(s.check_identity_key("n1", "D1", &k), KeyCheck::Valid);
        assert_eq!(s.check_identity_key("n2", "D1", &k), KeyCheck::Wrong);
    }

    #[test]
    fn node_uuid_is_stable_per_secret_and_name_with_rfc4122_bits() {
        let s = secret();
        let u = s.node_uuid("n00001");
        assert_eq!(u, Secret::from_bytes([7; SECRET_LEN]).node_uuid("n00001"));
        assert_ne!(u, s.node_uuid("n00002"));
        assert_ne!(u, Secret::from_bytes([8; SECRET_LEN]).node_uuid("n00001"));
        let parts: Vec<&str> = u.split('-').collect();
        assert_eq!(
            parts.iter().map(|p| p.len()).collect::<Vec<_>>(),
            [8, 4, 4, 4, 12]
        );
        assert!(u
            .bytes()
            .all(|b| b == b'-' || b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
        assert!(parts[2].starts_with('4'), "version 4: {u}");
        assert!(
            matches!(&parts[3][..1], "8" | "9" | "a" | "b"),
            "RFC 4122 variant: {u}"
        );
    }

    #[test]
    fn agent_tokens_are_43_url_safe_random_chars() {
        let a = agent_token().unwrap();
        let b = agent_token().unwrap();
        assert_eq!(a.len(), AGENT_TOKEN_LEN);
        assert_ne!(a, b);
        assert!(a
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'));
    }

    #[test]
    fn agent_token_is_checked_against_its_digest_never_in_clear() {
        let s = secret();
        let t = agent_token().unwrap();
        let stored = s.agent_token_digest(&t);
        assert_eq!(stored.len(), 64);
        assert!(!stored.contains(&t));
        assert!(s.check_agent_token(&stored, &t));
        assert!(!s.check_agent_token(&stored, &agent_token().unwrap()));
        assert!(!s.check_agent_token(&stored, ""));
        assert!(!s.check_agent_token(&stored, "******"));
        assert!(!Secret::from_bytes([8; SECRET_LEN]).check_agent_token(&stored, &t));
        assert!(
            !s.check_agent_token("", &t),
            "an empty digest matches nothing"
        );
        assert!(!s.check_agent_token("zz", &t));
    }

    #[test]
    fn ulids_are_26_crockford_chars() {
        let id = new_ulid();
        assert_eq!(id.len(), 26);
        assert!(id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b.is_ascii_uppercase() && !b"ILOU".contains(&b))));
        assert_ne!(id, new_ulid());
    }

    #[test]
    fn secret_file_created_0600_and_reread() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = default_secret_path(&dir.path().join("s.db"));
        assert!(path.ends_with("s.db.secret"));
        assert!(Secret::load(&path).is_err(), "load does not create");
        let a = Secret::load_or_create(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let b = Secret::load_or_create(&path).unwrap();
        assert_eq!(a.action_key("x"), b.action_key("x"));
    }

    #[test]
    fn wide_permissions_and_wrong_size_are_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        std::fs::write(&path, [1u8; SECRET_LEN]).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = Secret::load_or_create(&path).unwrap_err().to_string();
        assert!(
            e.contains("expected permissions 0600") && e.contains("0644"),
            "{e}"
        );
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o700)).unwrap();
        assert!(
            Secret::load_or_create(&path).is_err(),
            "owner execute is wider than 0600"
        );
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o400)).unwrap();
        assert!(Secret::load_or_create(&path).is_ok(), "narrower is fine");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(Secret::load_or_create(&path).is_ok());
        std::fs::write(&path, [1u8; 5]).unwrap();
        let e = Secret::load_or_create(&path).unwrap_err().to_string();
        assert!(e.contains("expected exactly 32 bytes, found 5"), "{e}");
    }
}
