//! Credentials never reach a log line, a record or a Debug output, whatever fails.
//! Its own test binary: the subscriber is the process's global one, so every
//! callsite of the service is seen (a thread-scoped one can miss callsites first
//! hit by other tests' threads).

#[path = "bmc/emulators.rs"]
mod emulators;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use emulators::{closed_tcp_port, ipmitool, FakeBmcs, SilentTcp, Sushy, SushyOptions, USER};
use slipway::power::{
    BmcTarget, FailureKind, Outcome, PowerConfig, PowerOp, PowerService, Scheme, Secret,
};

/// A password no emulator output, URL or library message would hold by chance.
const PW: &str = "pw-LEAK-9c41e7";

/// Collects every log line of the process.
#[derive(Clone, Default)]
struct LogBuffer(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for LogBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_never_appear_in_logs_messages_or_debug_output() {
    let logs = LogBuffer::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    tracing::subscriber::set_global_default(subscriber).expect("the only subscriber");

    let b = FakeBmcs::start(1, "other", "off");
    let s = Sushy::start_with(
        &["Off"],
        SushyOptions {
            password: Some("other"),
            ..SushyOptions::default()
        },
    );
    let silent = SilentTcp::bind();
    let svc = PowerService::new(PowerConfig {
        timeout: Duration::from_secs(2),
        backoff: Duration::from_millis(50),
        ipmitool: ipmitool(),
        ..PowerConfig::default()
    })
    .unwrap();
    let targets = vec![
        BmcTarget::ipmi("ipmi000", "127.0.0.1", b.ports[0], USER, Secret::new(PW)),
        BmcTarget::redfish(
            "rf000",
            Scheme::Http,
            "127.0.0.1",
            s.port,
            USER,
            Secret::new(PW),
        )
        .with_system(&s.systems[0]),
        BmcTarget::redfish(
            "n-silent",
            Scheme::Http,
            "127.0.0.1",
            silent.port,
            USER,
            Secret::new(PW),
        )
        .with_system("1"),
        BmcTarget::redfish(
            "n-down",
            Scheme::Http,
            "127.0.0.1",
            closed_tcp_port(),
            USER,
            Secret::new(PW),
        )
        .with_system("1"),
    ];
    let records = svc.fleet(targets.clone(), PowerOp::Cycle).wait().await;
    let kinds: HashMap<String, Outcome> = records
        .iter()
        .map(|r| (r.node.clone(), r.outcome))
        .collect();
    assert_eq!(kinds["ipmi000"], Outcome::Failed(FailureKind::Credentials));
    assert_eq!(kinds["rf000"], Outcome::Failed(FailureKind::Credentials));
    assert_eq!(kinds["n-silent"], Outcome::Failed(FailureKind::Timeout));
    assert_eq!(kinds["n-down"], Outcome::Failed(FailureKind::Refused));

    let logs = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains("power operation finished"),
        "nothing was logged: {logs}"
    );
    assert!(!logs.contains(PW), "the password is in the logs:\n{logs}");
    for r in &records {
        assert!(!r.message.contains(PW), "{}", r.message);
        assert!(!format!("{r:?}").contains(PW));
    }
    for t in &targets {
        assert!(!format!("{t:?}").contains(PW));
        assert!(!t.endpoint().contains(PW));
    }
}
