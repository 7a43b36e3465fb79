//! Real BMC emulators on 127.0.0.1 for the power tests and bench, each a child
//! process killed on drop with its own temporary state directory:
//! `sushy-emulator --fake` (Redfish), `tests/bmc/fakebmc.py` (pyghmi IPMI BMCs),
//! and silent BMCs (a UDP socket and a TCP listener that never answer).
//!
//! The Python tools come from one virtualenv: `$SLIPWAY_TEST_VENV`, default
//! `target/venv` (scripts/test.sh installs `sushy-tools` and `pyghmi` there).
//! Nothing here returns early when a tool is missing: it panics with a hint.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The longest an emulator may take to come up.
pub const START_TIMEOUT: Duration = Duration::from_secs(30);

/// The BMC account the emulators accept.
pub const USER: &str = "admin";

/// The virtualenv holding sushy-emulator and pyghmi.
pub fn venv() -> PathBuf {
    match std::env::var_os("SLIPWAY_TEST_VENV") {
        Some(v) => PathBuf::from(v),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("target/venv"),
    }
}

/// A program of the virtualenv; panics with the install hint when absent.
pub fn venv_bin(name: &str) -> PathBuf {
    let p = venv().join("bin").join(name);
    assert!(
        p.exists(),
        "{} not found: the power tests need sushy-tools and pyghmi in the virtualenv {} \
         (set SLIPWAY_TEST_VENV, or run scripts/test.sh, or: python3 -m venv target/venv && \
         target/venv/bin/pip install sushy-tools pyghmi)",
        p.display(),
        venv().display()
    );
    p
}

/// `ipmitool`, checked to run; panics with the install hint when absent.
pub fn ipmitool() -> PathBuf {
    let ok = Command::new("ipmitool")
        .arg("-V")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(
        ok,
        "ipmitool not found on PATH: the IPMI power tests drive the real ipmitool \
         (Debian: apt-get install ipmitool; scripts/test.sh installs it)"
    );
    PathBuf::from("ipmitool")
}

/// A free TCP port on 127.0.0.1 (free when asked; the emulator binds it next).
pub fn free_tcp_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The uuid of fake system `i` of an emulator started with `seed`.
pub fn system_uuid(seed: u32, i: usize) -> String {
    format!("{seed:08x}-0000-4000-8000-{i:012x}")
}

const SUSHY_MAIN: &str = "import logging, sys; logging.basicConfig(level=logging.INFO); \
    sys.argv[0] = 'sushy-emulator'; from sushy_tools.emulator.main import main; sys.exit(main())";

/// One sushy-emulator process with fake systems.
pub struct Sushy {
    child: Child,
    /// Its TCP port on 127.0.0.1.
    pub port: u16,
    /// The systems' uuids, in the order asked for.
    pub systems: Vec<String>,
    /// https or http.
    pub scheme: &'static str,
    dir: tempfile::TempDir,
}

/// How to start a sushy-emulator.
#[derive(Default)]
pub struct SushyOptions<'a> {
    /// PEM certificate and key: serve HTTPS.
    pub tls: Option<(&'a Path, &'a Path)>,
    /// Require Basic auth with this password for `USER`.
    pub password: Option<&'a str>,
}

impl Sushy {
    /// `count` fake systems, all in power state `power` (`On`/`Off`), plain HTTP.
    pub fn start(count: usize, power: &str) -> Sushy {
        Sushy::start_with(&vec![power; count], SushyOptions::default())
    }

    /// One fake system per power state given (`On`/`Off`), with TLS and/or auth.
    pub fn start_with(states: &[&str], opts: SushyOptions<'_>) -> Sushy {
        let count = states.len();
        venv_bin("sushy-emulator");
        let dir = tempfile::tempdir().unwrap();
        let seed = std::process::id() ^ (free_tcp_port() as u32) << 16;
        let systems: Vec<String> = (0..count).map(|i| system_uuid(seed, i)).collect();
        let mut conf = String::from("SUSHY_EMULATOR_FAKE_SYSTEMS = [\n");
        for (i, uuid) in systems.iter().enumerate() {
            conf.push_str(&format!(
                "    {{'uuid': '{uuid}', 'name': 'node{i:04}', 'power_state': '{}', \
                 'nics': [{{'mac': '52:54:00:{:02x}:{:02x}:{:02x}', 'ip': '192.0.2.1'}}]}},\n",
                states[i],
                (i >> 16) & 0xff,
                (i >> 8) & 0xff,
                i & 0xff
            ));
        }
        conf.push_str("]\n");
        // the fake driver reads its state directory from the config, not the
        // environment; without it every run shares $TMPDIR/sushy-emulator
        let state = dir.path().join("state");
        conf.push_str(&format!(
            "SUSHY_EMULATOR_STATE_DIR = '{}'\n",
            state.display()
        ));
        if let Some(pw) = opts.password {
            let htpasswd = dir.path().join("htpasswd");
            let out = Command::new(venv_bin("python"))
                .args([
                    "-c",
                    "import bcrypt,sys; print(sys.argv[1] + ':' + bcrypt.hashpw(sys.argv[2].encode(), bcrypt.gensalt(4)).decode())",
                    USER,
                    pw,
                ])
                .output()
                .expect("run the venv's python for bcrypt");
            assert!(
                out.status.success(),
                "bcrypt: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            std::fs::write(&htpasswd, &out.stdout).unwrap();
            conf.push_str(&format!(
                "SUSHY_EMULATOR_AUTH_FILE = '{}'\n",
                htpasswd.display()
            ));
        }
        let conf_path = dir.path().join("sushy.conf");
        std::fs::write(&conf_path, conf).unwrap();
        let log = std::fs::File::create(dir.path().join("sushy.log")).unwrap();
        let port = free_tcp_port();
        // sushy-emulator's own entry point, with its INFO log on (the log says which
        // ResetType each system got)
        let mut cmd = Command::new(venv_bin("python"));
        cmd.args(["-c", SUSHY_MAIN, "--fake", "--config"])
            .arg(&conf_path)
            .args(["-i", "127.0.0.1", "-p", &port.to_string()])
            .env("SUSHY_EMULATOR_STATE_DIR", &state)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        if let Some((cert, key)) = opts.tls {
            cmd.arg("--ssl-certificate")
                .arg(cert)
                .arg("--ssl-key")
                .arg(key);
        }
        let child = cmd.spawn().expect("start sushy-emulator");
        let mut s = Sushy {
            child,
            port,
            systems,
            scheme: if opts.tls.is_some() { "https" } else { "http" },
            dir,
        };
        s.wait_listening();
        s
    }

    fn wait_listening(&mut self) {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("sushy-emulator exited ({status}): {}", self.log());
            }
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "sushy-emulator did not listen on 127.0.0.1:{} within {START_TIMEOUT:?}: {}",
                self.port,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The emulator's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("sushy.log")).unwrap_or_default()
    }

    /// `scheme://127.0.0.1:port`.
    pub fn base(&self) -> String {
        format!("{}://127.0.0.1:{}", self.scheme, self.port)
    }

    /// The URL of system `i`, for reading the emulator's own view of it.
    pub fn system_url(&self, i: usize) -> String {
        format!("{}/redfish/v1/Systems/{}", self.base(), self.systems[i])
    }
}

impl Drop for Sushy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One change a fake IPMI BMC observed (a line of fakebmc.py's events file).
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct BmcEvent {
    /// The BMC's UDP port.
    pub port: u16,
    /// `on`, `off`, `soft`, `reset`, `cycle`, `bootdev`, `identify`.
    pub event: String,
    /// Power after the change: `on`/`off`.
    pub power: String,
    /// Boot device after the change (pyghmi's names: `network`, `hd`, `default`).
    pub boot: String,
    /// Identify light after the change: `on`/`off`.
    pub identify: String,
}

/// One fakebmc.py process serving `ports.len()` IPMI BMCs.
pub struct FakeBmcs {
    child: Child,
    /// The BMCs' UDP ports on 127.0.0.1.
    pub ports: Vec<u16>,
    dir: tempfile::TempDir,
}

impl FakeBmcs {
    /// `count` BMCs accepting `USER` with `password`, all powered `power` (`on`/`off`).
    pub fn start(count: usize, password: &str, power: &str) -> FakeBmcs {
        let python = venv_bin("python");
        let dir = tempfile::tempdir().unwrap();
        let pw = dir.path().join("password");
        std::fs::write(&pw, password).unwrap();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/bmc/fakebmc.py");
        let mut child = Command::new(python)
            .arg(script)
            .args([
                "--count",
                &count.to_string(),
                "--user",
                USER,
                "--power",
                power,
            ])
            .arg("--password-file")
            .arg(&pw)
            .arg("--events")
            .arg(dir.path().join("events.jsonl"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(dir.path().join("stderr")).unwrap())
            .spawn()
            .expect("start tests/bmc/fakebmc.py");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx.recv_timeout(START_TIMEOUT).unwrap_or_default();
        let ports: Vec<u16> = line
            .strip_prefix("READY ")
            .map(|rest| {
                rest.split_whitespace()
                    .map(|p| p.parse().unwrap())
                    .collect()
            })
            .unwrap_or_default();
        let bmcs = FakeBmcs { child, ports, dir };
        assert_eq!(
            bmcs.ports.len(),
            count,
            "fakebmc.py did not report {count} ports (got `{}`): {}",
            line.trim(),
            bmcs.stderr()
        );
        bmcs
    }

    /// The process's stderr so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("stderr")).unwrap_or_default()
    }

    /// Every change observed so far, in order.
    pub fn events(&self) -> Vec<BmcEvent> {
        std::fs::read_to_string(self.dir.path().join("events.jsonl"))
            .unwrap_or_default()
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).expect("an events line"))
            .collect()
    }

    /// The events of the BMC on `port`.
    pub fn events_of(&self, port: u16) -> Vec<BmcEvent> {
        self.events()
            .into_iter()
            .filter(|e| e.port == port)
            .collect()
    }
}

impl Drop for FakeBmcs {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An IPMI "BMC" that never answers: a bound UDP socket nobody reads.
pub struct SilentUdp {
    _socket: UdpSocket,
    /// Its UDP port on 127.0.0.1.
    pub port: u16,
}

impl SilentUdp {
    /// Binds a free port.
    pub fn bind() -> SilentUdp {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = socket.local_addr().unwrap().port();
        SilentUdp {
            _socket: socket,
            port,
        }
    }
}

/// A Redfish "BMC" that accepts connections and never answers: a listener whose
/// connections the kernel completes (they wait in its backlog) and nobody reads.
pub struct SilentTcp {
    _listener: TcpListener,
    /// Its TCP port on 127.0.0.1.
    pub port: u16,
}

impl SilentTcp {
    /// Binds a free port.
    pub fn bind() -> SilentTcp {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        SilentTcp {
            _listener: listener,
            port,
        }
    }
}

/// One test's BMCs, all with `password`: a sushy-emulator with one system
/// (Off), `ipmi` fake IPMI BMCs (off) and a Redfish BMC that never answers.
pub struct TestBmcs {
    pub sushy: Sushy,
    pub ipmi: FakeBmcs,
    pub silent: SilentTcp,
}

impl TestBmcs {
    pub fn start(password: &str, ipmi: usize) -> TestBmcs {
        TestBmcs {
            sushy: Sushy::start_with(
                &["Off"],
                SushyOptions {
                    password: Some(password),
                    ..SushyOptions::default()
                },
            ),
            ipmi: FakeBmcs::start(ipmi, password, "off"),
            silent: SilentTcp::bind(),
        }
    }
}

/// A port on 127.0.0.1 where nothing listens (connections are refused).
pub fn closed_tcp_port() -> u16 {
    free_tcp_port()
}
