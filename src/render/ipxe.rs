//! The boot scripts slipway ships (`templates/luna2/`): iPXE menus, a node's
//! network boot, the local-disk script, the discovery and error scripts and
//! the Luna2 installer, compiled once and rendered with minijinja (strict
//! undefined, fuel-limited, no escaping: the values are checked instead).
//!
//! Every value that reaches a script is checked first ([`word`],
//! [`kernel_args`]): iPXE expands `${…}` and splits on spaces, and the
//! installer is a shell script, so a value outside a small alphabet is never
//! rendered (the caller answers an error script instead).

use std::collections::BTreeMap;
use std::fmt;

use minijinja::{Environment, UndefinedBehavior};

use super::template::{TemplateError, FUEL};

/// One of the shipped scripts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Script {
    /// The full menu (`GET /boot`): ask, choose a node or a group, type one.
    Menu,
    /// The short menu (`GET /boot/short`): ask or type a node.
    Short,
    /// Boot from the local disk (`GET /boot/disk`, a node that does not netboot).
    Disk,
    /// A node's network boot: kernel, initrd and their arguments.
    Node,
    /// A MAC no node has: back to the menu.
    Discovery,
    /// Something failed: say so and chain to a retry path.
    Error,
    /// The installer (`GET /boot/install/{node}`), a bash script.
    Install,
}

impl Script {
    fn name(self) -> &'static str {
        match self {
            Script::Menu | Script::Short => "menu.ipxe.j2",
            Script::Disk => "disk.ipxe.j2",
            Script::Node => "node.ipxe.j2",
            Script::Discovery => "discovery.ipxe.j2",
            Script::Error => "error.ipxe.j2",
            Script::Install => "install.sh.j2",
        }
    }
}

const SOURCES: [(&str, &str); 6] = [
    (
        "menu.ipxe.j2",
        include_str!("../../templates/luna2/menu.ipxe.j2"),
    ),
    (
        "disk.ipxe.j2",
        include_str!("../../templates/luna2/disk.ipxe.j2"),
    ),
    (
        "node.ipxe.j2",
        include_str!("../../templates/luna2/node.ipxe.j2"),
    ),
    (
        "discovery.ipxe.j2",
        include_str!("../../templates/luna2/discovery.ipxe.j2"),
    ),
    (
        "error.ipxe.j2",
        include_str!("../../templates/luna2/error.ipxe.j2"),
    ),
    (
        "install.sh.j2",
        include_str!("../../templates/luna2/install.sh.j2"),
    ),
];

/// The values of a menu.
#[derive(Debug, Clone)]
pub struct MenuValues {
    /// The server's origin (`http://host:port`).
    pub base: String,
    /// The path the menu was served at.
    pub path: String,
    /// Node names offered (only names that are [`word`]s).
    pub nodes: Vec<String>,
    /// Group (host profile) names offered (only [`word`]s).
    pub groups: Vec<String>,
}

/// The values of a node's network boot (and of its installer).
#[derive(Debug, Clone)]
pub struct NodeValues {
    /// The server's origin.
    pub base: String,
    /// Where the kernel and initrd are fetched from.
    pub files: String,
    /// The node's name.
    pub node: String,
    /// Its host name (name plus its primary network's DNS domain).
    pub hostname: String,
    /// The MAC it booted with (lowercase, colon-separated).
    pub mac: String,
    /// `static` when the node has an address on its primary network, else `dhcp`.
    pub bootproto: &'static str,
    /// Its address with the prefix length (`10.0.0.5/24`), or empty.
    pub ip: String,
    /// Its primary network's default gateway, or empty.
    pub gateway: String,
    /// The host profile's platform image.
    pub image: String,
    /// The host profile's platform kernel.
    pub kernel: String,
    /// File names of the kernel and initrd under `files`.
    pub kernel_file: String,
    /// See `kernel_file`.
    pub initrd_file: String,
    /// The platform's kernel parameters, as arguments ([`kernel_args`]).
    pub params: String,
    /// The node's boot-data URL (`…/api/v1.0/bootactions/nodes/{node}`).
    pub bootdata: String,
    /// The identity key of the node's current deployment.
    pub identity: String,
    /// The applied commit (the installer names it).
    pub commit: String,
}

/// A value that cannot go into a script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsafe {
    /// Which value.
    pub what: String,
}

impl fmt::Display for Unsafe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} holds characters a boot script cannot carry",
            self.what
        )
    }
}

/// True for a value a script may carry as one word: non-empty, at most 255
/// bytes of `A-Z a-z 0-9 . _ - : / , = + @ %`. No space, quote, `$`, `;`,
/// `&`, `|`, `#`, backslash or control character: nothing iPXE or a shell
/// would expand or split.
pub fn word(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 255
        && s.bytes().all(|b| {
            b.is_ascii_alphanumeric()
                || matches!(
                    b,
                    b'.' | b'_' | b'-' | b':' | b'/' | b',' | b'=' | b'+' | b'@' | b'%'
                )
        })
}

/// A design name that may appear in a script (menu item, label, path): a
/// [`word`] without `/`, `=`, `,`, `:` or `%`, and not starting with `-`.
pub fn name(s: &str) -> bool {
    word(s)
        && !s.starts_with('-')
        && !s.starts_with('.')
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// A platform's kernel parameters as kernel arguments, in key order: `true`
/// → the key alone, `false`/null → left out, other values `key=value`
/// (numbers and strings as text). A key or value that is not a [`word`] is an
/// error naming it.
pub fn kernel_args(params: &BTreeMap<String, serde_json::Value>) -> Result<String, Unsafe> {
    let mut out = Vec::with_capacity(params.len());
    for (k, v) in params {
        if !word(k) || k.contains('=') {
            return Err(Unsafe {
                what: format!("kernel parameter `{}`", k.escape_debug()),
            });
        }
        let value = match v {
            serde_json::Value::Bool(true) => None,
            serde_json::Value::Bool(false) | serde_json::Value::Null => continue,
            serde_json::Value::String(s) => Some(s.clone()),
            serde_json::Value::Number(n) => Some(n.to_string()),
            _ => {
                return Err(Unsafe {
                    what: format!("kernel parameter `{k}`"),
                })
            }
        };
        match value {
            None => out.push(k.clone()),
            Some(v) if word(&v) => out.push(format!("{k}={v}")),
            Some(_) => {
                return Err(Unsafe {
                    what: format!("kernel parameter `{k}`"),
                })
            }
        }
    }
    Ok(out.join(" "))
}

/// The shipped scripts, compiled once.
pub struct BootScripts {
    env: Environment<'static>,
}

impl std::fmt::Debug for BootScripts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BootScripts").finish_non_exhaustive()
    }
}

impl Default for BootScripts {
    fn default() -> Self {
        Self::new()
    }
}

impl BootScripts {
    /// Compiles every shipped script (they are part of the binary; a syntax
    /// error in one is a bug, caught by the unit tests).
    pub fn new() -> BootScripts {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_auto_escape_callback(|_| minijinja::AutoEscape::None);
        env.set_fuel(Some(FUEL * 10));
        env.set_syntax(
            minijinja::syntax::SyntaxConfig::builder()
                .keep_trailing_newline(true)
                .build()
                .expect("syntax"),
        );
        for (name, source) in SOURCES {
            env.add_template(name, source)
                .unwrap_or_else(|e| panic!("shipped template {name}: {e}"));
        }
        BootScripts { env }
    }

    fn render(&self, script: Script, ctx: minijinja::Value) -> Result<String, TemplateError> {
        Ok(self.env.get_template(script.name())?.render(ctx)?)
    }

    /// The full or short menu.
    pub fn menu(&self, short: bool, v: &MenuValues) -> Result<String, TemplateError> {
        let flavour = if short { "short" } else { "normal" };
        let script = if short { Script::Short } else { Script::Menu };
        self.render(
            script,
            minijinja::context! {
                flavour,
                base => v.base.as_str(),
                path => v.path.as_str(),
                nodes => v.nodes.clone(),
                groups => v.groups.clone(),
            },
        )
    }

    /// The local-disk script; `reason` says why (one line, a [`word`]-safe text).
    pub fn disk(&self, base: &str, reason: &str) -> Result<String, TemplateError> {
        let reason = printable(reason);
        self.render(Script::Disk, minijinja::context! { base, reason })
    }

    /// A node's network boot.
    pub fn node(&self, v: &NodeValues) -> Result<String, TemplateError> {
        self.render(Script::Node, node_context(v))
    }

    /// The installer of a node.
    pub fn install(&self, v: &NodeValues) -> Result<String, TemplateError> {
        self.render(Script::Install, node_context(v))
    }

    /// The script for a MAC no node has (`mac` already checked).
    pub fn discovery(&self, base: &str, mac: &str) -> Result<String, TemplateError> {
        self.render(Script::Discovery, minijinja::context! { base, mac })
    }

    /// An error script: `message` is shown (reduced to printable ASCII
    /// without `$`, quotes or `#`), then the machine chains to `retry`.
    pub fn error(&self, base: &str, retry: &str, message: &str) -> String {
        let message = printable(message);
        let retry = if retry.starts_with('/') && word(retry) {
            retry
        } else {
            "/boot"
        };
        self.render(Script::Error, minijinja::context! { base, retry, message })
            .unwrap_or_else(|e| {
                // The error script has no loop or user value it could fail on.
                format!(
                    "#!ipxe\necho slipway: error script failed: {}\nreboot\n",
                    printable(&e.message)
                )
            })
    }
}

fn node_context(v: &NodeValues) -> minijinja::Value {
    minijinja::context! {
        base => v.base.as_str(),
        files => v.files.as_str(),
        node => v.node.as_str(),
        hostname => v.hostname.as_str(),
        mac => v.mac.as_str(),
        bootproto => v.bootproto,
        ip => v.ip.as_str(),
        gateway => v.gateway.as_str(),
        image => v.image.as_str(),
        kernel => v.kernel.as_str(),
        kernel_file => v.kernel_file.as_str(),
        initrd_file => v.initrd_file.as_str(),
        params => v.params.as_str(),
        bootdata => v.bootdata.as_str(),
        identity => v.identity.as_str(),
        commit => v.commit.as_str(),
    }
}

/// `text` reduced to what an iPXE `echo` shows literally: printable ASCII
/// without `$ " ' # \ ;` `&` `|` `` ` ``, one line, at most 200 characters.
pub fn printable(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '$' | '"' | '\'' | '#' | '\\' | ';' | '&' | '|' | '`' => '_',
            c if c.is_ascii_graphic() || c == ' ' => c,
            _ => ' ',
        })
        .take(200)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn words_and_names_refuse_what_ipxe_or_a_shell_would_expand() {
        for ok in ["node001", "ttyS1,115200n8", "a.b-c_d", "10.0.0.1/24"] {
            assert!(word(ok), "{ok}");
        }
        for bad in [
            "", "a b", "${x}", "a;b", "a'b", "a\"b", "a|b", "a&b", "a#b", "../x\n",
        ] {
            assert!(!word(bad), "{bad:?}");
        }
        assert!(name("node001") && name("n-1.a"));
        assert!(!name("../etc") && !name("-x") && !name("a/b") && !name("a:b"));
    }

    #[test]
    fn kernel_args_render_flags_values_and_refuse_unsafe_ones() {
        let mut p = BTreeMap::new();
        p.insert("quiet".to_string(), json!(true));
        p.insert("noisy".to_string(), json!(false));
        p.insert("console".to_string(), json!("ttyS1,115200n8"));
        p.insert("hugepages".to_string(), json!(16));
        assert_eq!(
            kernel_args(&p).unwrap(),
            "console=ttyS1,115200n8 hugepages=16 quiet"
        );
        p.insert("evil".to_string(), json!("x ${net0/mac}"));
        assert_eq!(kernel_args(&p).unwrap_err().what, "kernel parameter `evil`");
    }

    #[test]
    fn every_shipped_script_renders() {
        let s = BootScripts::new();
        let menu = MenuValues {
            base: "http://10.0.0.1:9000".into(),
            path: "/boot".into(),
            nodes: vec!["n1".into()],
            groups: vec!["g".into()],
        };
        let full = s.menu(false, &menu).unwrap();
        assert!(full.starts_with("#!ipxe\n") && full.contains("item n1 n1"));
        let short = s.menu(true, &menu).unwrap();
        assert!(!short.contains("item n1 n1"));
        assert!(s.disk("http://h", "x").unwrap().contains("sanboot"));
        assert!(s
            .discovery("http://h", "aa:bb:cc:dd:ee:ff")
            .unwrap()
            .contains("aa:bb:cc:dd:ee:ff"));
        assert!(s.error("http://h", "/boot", "bad $x").contains("bad _x"));
    }
}
