//! The power service against real BMC emulators on 127.0.0.1: sushy-emulator
//! (Redfish), pyghmi fake BMCs driven by the real ipmitool (IPMI), and silent BMCs.
//! Every state change is checked on the emulator's side, not only in our records.

mod common;
#[path = "bmc/emulators.rs"]
mod emulators;

use std::time::{Duration, SystemTime};

use emulators::{
    closed_tcp_port, ipmitool, FakeBmcs, SilentTcp, SilentUdp, Sushy, SushyOptions, USER,
};
use serde_json::Value;
use slipway::power::{
    BmcTarget, BootDevice, FailureKind, OperationRecord, Outcome, PowerConfig, PowerOp,
    PowerService, PowerState, Scheme, Secret,
};

/// A password no emulator output, URL or library message would hold by chance.
const PW: &str = "pw-LEAK-9c41e7";

fn config() -> PowerConfig {
    PowerConfig {
        timeout: Duration::from_secs(15),
        backoff: Duration::from_millis(50),
        ipmitool: ipmitool(),
        ..PowerConfig::default()
    }
}

fn service(cfg: PowerConfig) -> PowerService {
    PowerService::new(cfg).expect("power service")
}

fn redfish(s: &Sushy, i: usize, password: &str) -> BmcTarget {
    let scheme = if s.scheme == "https" {
        Scheme::Https
    } else {
        Scheme::Http
    };
    BmcTarget::redfish(
        &format!("rf{i:03}"),
        scheme,
        "127.0.0.1",
        s.port,
        USER,
        Secret::new(password),
    )
    .with_system(&s.systems[i])
}

fn ipmi(b: &FakeBmcs, i: usize, password: &str) -> BmcTarget {
    BmcTarget::ipmi(
        &format!("ipmi{i:03}"),
        "127.0.0.1",
        b.ports[i],
        USER,
        Secret::new(password),
    )
}

fn succeeded(rec: &OperationRecord) -> &OperationRecord {
    assert_eq!(rec.outcome, Outcome::Succeeded, "{rec:#?}");
    rec
}

fn failed(rec: &OperationRecord, kind: FailureKind) -> &OperationRecord {
    assert_eq!(rec.outcome, Outcome::Failed(kind), "{rec:#?}");
    rec
}

/// The emulator's own view of a system (not through the power service).
async fn emulator_view(url: &str) -> Value {
    let client = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .build()
        .unwrap();
    client
        .get(url)
        .basic_auth(USER, Some(PW))
        .send()
        .await
        .expect("GET the emulated system")
        .json()
        .await
        .expect("its JSON")
}

async fn wait_power(s: &Sushy, i: usize, want: &str) {
    let url = s.system_url(i);
    common::wait_for(
        &format!("system {i} PowerState {want} on the emulator"),
        || {
            let url = url.clone();
            async move { emulator_view(&url).await["PowerState"] == want }
        },
    )
    .await;
}

fn last_event(b: &FakeBmcs, i: usize) -> emulators::BmcEvent {
    b.events_of(b.ports[i])
        .pop()
        .unwrap_or_else(|| panic!("BMC {i} observed nothing: {}", b.stderr()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redfish_power_operations_change_the_emulated_system() {
    let s = Sushy::start_with(&["Off", "Off", "On", "On", "Off"], SushyOptions::default());
    let svc = service(config());
    let t: Vec<BmcTarget> = (0..5).map(|i| redfish(&s, i, PW)).collect();

    let st = svc.run(&t[0], PowerOp::Status).await;
    assert_eq!(succeeded(&st).power, Some(PowerState::Off));
    assert_eq!(st.message, "power is off");

    // on, cycle of a machine that is off, soft-off and cycle of a running one, at once
    let (on, cycle_off, soft, cycle_on) = tokio::join!(
        svc.run(&t[0], PowerOp::On),
        svc.run(&t[1], PowerOp::Cycle),
        svc.run(&t[2], PowerOp::SoftOff),
        svc.run(&t[3], PowerOp::Cycle),
    );
    assert_eq!(succeeded(&on).message, "ResetType On accepted (was off)");
    assert_eq!(
        succeeded(&cycle_off).message,
        "ResetType On accepted (was off)"
    );
    assert_eq!(
        succeeded(&soft).message,
        "ResetType GracefulShutdown accepted (was on)"
    );
    assert_eq!(
        succeeded(&cycle_on).message,
        "ResetType ForceRestart accepted (was on)"
    );
    // sushy applies a change 1-11 s later: poll the emulator for each
    tokio::join!(
        wait_power(&s, 0, "On"),
        wait_power(&s, 1, "On"),
        wait_power(&s, 2, "Off"),
        wait_power(&s, 3, "On"),
    );
    assert!(
        s.log().contains(&format!(
            "System \"{}\" power state set to \"ForceRestart\"",
            s.systems[3]
        )),
        "the emulator saw no ForceRestart: {}",
        s.log()
    );
    let st = svc.run(&t[0], PowerOp::Status).await;
    assert_eq!(succeeded(&st).power, Some(PowerState::On));
    assert_eq!(
        succeeded(&svc.run(&t[0], PowerOp::On).await).message,
        "already on"
    );

    let off = svc.run(&t[0], PowerOp::Off).await;
    assert_eq!(
        succeeded(&off).message,
        "ResetType ForceOff accepted (was on)"
    );
    wait_power(&s, 0, "Off").await;

    // one-time boot device and identify light, read back from the emulator
    succeeded(&svc.run(&t[4], PowerOp::BootOnce(BootDevice::Pxe)).await);
    let v = emulator_view(&s.system_url(4)).await;
    assert_eq!(v["Boot"]["BootSourceOverrideTarget"], "Pxe", "{v:#}");
    succeeded(&svc.run(&t[4], PowerOp::BootOnce(BootDevice::Disk)).await);
    assert_eq!(
        emulator_view(&s.system_url(4)).await["Boot"]["BootSourceOverrideTarget"],
        "Hdd"
    );
    let on = svc.run(&t[4], PowerOp::Identify(true)).await;
    assert_eq!(succeeded(&on).message, "IndicatorLED Blinking set");
    assert_eq!(
        emulator_view(&s.system_url(4)).await["IndicatorLED"],
        "Blinking"
    );
    succeeded(&svc.run(&t[4], PowerOp::Identify(false)).await);
    assert_eq!(emulator_view(&s.system_url(4)).await["IndicatorLED"], "Off");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipmi_power_operations_change_the_fake_bmc() {
    let b = FakeBmcs::start(1, PW, "off");
    let svc = service(config());
    let t = ipmi(&b, 0, PW);

    let st = svc.run(&t, PowerOp::Status).await;
    assert_eq!(succeeded(&st).power, Some(PowerState::Off));
    assert!(
        b.events().is_empty(),
        "status changed something: {:?}",
        b.events()
    );

    let steps: Vec<(PowerOp, &str, &str, &str)> = vec![
        // (operation, event the BMC saw, its power after, our message)
        (PowerOp::On, "on", "on", "power on accepted"),
        (
            PowerOp::Cycle,
            "reset",
            "on",
            "hard reset accepted (was on)",
        ),
        (
            PowerOp::SoftOff,
            "soft",
            "off",
            "soft-off accepted (was on)",
        ),
        (PowerOp::Cycle, "on", "on", "was off: power on accepted"),
        (PowerOp::Off, "off", "off", "power off accepted"),
    ];
    for (op, event, power, message) in steps {
        let rec = svc.run(&t, op).await;
        assert_eq!(succeeded(&rec).message, message, "{op}");
        let e = last_event(&b, 0);
        assert_eq!(
            (e.event.as_str(), e.power.as_str()),
            (event, power),
            "{op}: {e:?}"
        );
    }
    let n = b.events().len();
    assert_eq!(
        succeeded(&svc.run(&t, PowerOp::SoftOff).await).message,
        "already off"
    );
    assert_eq!(
        b.events().len(),
        n,
        "soft-off of a machine that is off sent a command"
    );

    succeeded(&svc.run(&t, PowerOp::BootOnce(BootDevice::Pxe)).await);
    assert_eq!(last_event(&b, 0).boot, "network");
    succeeded(&svc.run(&t, PowerOp::BootOnce(BootDevice::Disk)).await);
    assert_eq!(last_event(&b, 0).boot, "hd");
    succeeded(&svc.run(&t, PowerOp::Identify(true)).await);
    assert_eq!(last_event(&b, 0).identify, "on");
    succeeded(&svc.run(&t, PowerOp::Identify(false)).await);
    assert_eq!(last_event(&b, 0).identify, "off");

    succeeded(&svc.run(&t, PowerOp::On).await);
    let st = svc.run(&t, PowerOp::Status).await;
    assert_eq!(succeeded(&st).power, Some(PowerState::On));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fleet_of_112_bmcs_never_exceeds_the_concurrency_limit() {
    // 5 emulators of 20 systems: sushy's fake driver reads every system of its
    // process on each request, as a fleet has many BMCs and not one big one
    let emulators: Vec<Sushy> = (0..5).map(|_| Sushy::start(20, "On")).collect();
    let b = FakeBmcs::start(12, PW, "off");
    let limit = 8;
    let svc = service(PowerConfig {
        concurrency: limit,
        ..config()
    });
    let mut targets: Vec<BmcTarget> = Vec::new();
    for (e, s) in emulators.iter().enumerate() {
        for i in 0..20 {
            let mut t = redfish(s, i, PW);
            t.node = format!("rf{e}-{i:02}");
            targets.push(t);
        }
    }
    targets.extend((0..12).map(|i| ipmi(&b, i, PW)));

    let fleet = svc.fleet(targets, PowerOp::Status);
    assert_eq!(fleet.progress().total, 112);
    let records = tokio::time::timeout(common::TIMEOUT, fleet.wait())
        .await
        .expect("the fleet finished within the test timeout");
    for r in &records {
        let want = if r.node.starts_with("rf") {
            PowerState::On
        } else {
            PowerState::Off
        };
        assert_eq!(succeeded(r).power, Some(want), "{r:#?}");
    }
    let peak = svc.peak_in_flight();
    assert!(
        peak <= limit,
        "peak {peak} calls at once, above the limit {limit}"
    );
    // 112 queued operations against 8 slots: every slot was used at once
    assert_eq!(
        peak, limit,
        "the limit was never reached: the fleet ran serially"
    );
    assert_eq!(svc.in_flight(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_bmcs_time_out_without_holding_up_the_others() {
    let silent_udp = SilentUdp::bind();
    let silent_tcp = SilentTcp::bind();
    let s = Sushy::start(20, "Off");
    let b = FakeBmcs::start(4, PW, "off");
    let timeout = Duration::from_secs(4);
    let svc = service(PowerConfig {
        concurrency: 4,
        timeout,
        ..config()
    });
    // the silent ones first: they take two of the four slots for their whole timeout
    let mut targets = vec![
        BmcTarget::ipmi(
            "silent-ipmi",
            "127.0.0.1",
            silent_udp.port,
            USER,
            Secret::new(PW),
        ),
        BmcTarget::redfish(
            "silent-redfish",
            Scheme::Http,
            "127.0.0.1",
            silent_tcp.port,
            USER,
            Secret::new(PW),
        )
        .with_system("1"),
    ];
    targets.extend((0..20).map(|i| redfish(&s, i, PW)));
    targets.extend((0..4).map(|i| ipmi(&b, i, PW)));

    let records = tokio::time::timeout(common::TIMEOUT, svc.fleet(targets, PowerOp::Status).wait())
        .await
        .expect("the fleet finished: a silent BMC must not hang it");
    let (silent, live) = records.split_at(2);
    let mut first_silent_end = SystemTime::now();
    for r in silent {
        failed(r, FailureKind::Timeout);
        assert_eq!(r.attempts, 1, "a timeout is not retried: {r:#?}");
        let waited = r
            .finished
            .unwrap()
            .duration_since(r.started.unwrap())
            .unwrap();
        assert!(
            waited >= timeout,
            "gave up after {waited:?}, before the timeout {timeout:?}"
        );
        assert!(
            r.message
                .contains("expected an answer within 4s, found none"),
            "{}",
            r.message
        );
        first_silent_end = first_silent_end.min(r.finished.unwrap());
    }
    for r in live {
        succeeded(r);
        assert!(
            r.finished.unwrap() <= first_silent_end,
            "{} finished after a silent BMC's timeout: it waited for it",
            r.node
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_journal_shows_an_operation_while_it_runs() {
    let silent = SilentTcp::bind();
    let svc = service(PowerConfig {
        timeout: Duration::from_secs(3),
        ..config()
    });
    let t = BmcTarget::redfish(
        "n-slow",
        Scheme::Http,
        "127.0.0.1",
        silent.port,
        USER,
        Secret::new(PW),
    )
    .with_system("1");
    let fleet = svc.fleet(vec![t], PowerOp::On);
    let id = fleet.operations()[0];
    common::wait_for("the operation to be running", || {
        let rec = svc.operation(id);
        async move { rec.is_some_and(|r| r.outcome == Outcome::Running) }
    })
    .await;
    let running = svc.operation(id).unwrap();
    assert!(
        running.started.is_some() && running.finished.is_none(),
        "{running:#?}"
    );
    assert!(running.requested <= running.started.unwrap());
    assert_eq!(running.attempts, 1);
    assert_eq!(svc.journal("n-slow"), vec![running.clone()]);
    assert_eq!(fleet.progress().running, 1);

    let done = fleet.wait().await.remove(0);
    failed(&done, FailureKind::Timeout);
    assert_eq!(done.op, PowerOp::On);
    assert!(done.finished.unwrap() >= done.started.unwrap());
    assert_eq!(svc.journal("n-slow"), vec![done]);
}

/// The ipmitool processes running now whose argv mentions `needle`: (pid, argv).
fn ipmitool_processes(needle: &str) -> Vec<(u32, Vec<String>)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(raw) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        let argv: Vec<String> = raw
            .split(|b| *b == 0)
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        if argv.first().is_some_and(|a| a.ends_with("ipmitool")) && argv.iter().any(|a| a == needle)
        {
            out.push((pid, argv));
        }
    }
    out
}

fn running(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // the state follows the parenthesised command name; Z = exited, not yet reaped
        Ok(stat) => !stat
            .rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z'),
        Err(_) => false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipmitool_never_sees_the_password_in_its_argv_and_is_killed_at_the_timeout() {
    let silent = SilentUdp::bind();
    let svc = service(PowerConfig {
        timeout: Duration::from_secs(5),
        ..config()
    });
    let t = BmcTarget::ipmi("n-argv", "127.0.0.1", silent.port, USER, Secret::new(PW));
    let task = tokio::spawn({
        let svc = svc.clone();
        async move { svc.run(&t, PowerOp::Status).await }
    });
    let port = silent.port.to_string();
    common::wait_for("ipmitool to run against the silent BMC", || {
        let found = !ipmitool_processes(&port).is_empty();
        async move { found }
    })
    .await;
    let (pid, argv) = ipmitool_processes(&port).remove(0);
    assert!(
        argv.iter().any(|a| a == "-E"),
        "password not taken from the environment: {argv:?}"
    );
    assert!(
        !argv.iter().any(|a| a.contains(PW) || a == "-P"),
        "the password is in ipmitool's argv: {argv:?}"
    );
    let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap();
    let env: Vec<String> = environ
        .split(|b| *b == 0)
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .collect();
    assert!(
        env.contains(&format!("IPMITOOL_PASSWORD={PW}")),
        "no password in its environment"
    );

    let rec = task.await.unwrap();
    failed(&rec, FailureKind::Timeout);
    assert!(!rec.message.contains(PW) && !format!("{rec:?}").contains(PW));
    common::wait_for("the timed-out ipmitool to be killed", || {
        let alive = running(pid);
        async move { !alive }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_credentials_fail_at_once_and_are_never_retried() {
    let right = "the-right-password";
    let b = FakeBmcs::start(1, right, "off");
    let s = Sushy::start_with(
        &["Off"],
        SushyOptions {
            password: Some(right),
            ..SushyOptions::default()
        },
    );
    let svc = service(PowerConfig {
        retries: 3,
        ..config()
    });

    let rec = svc.run(&ipmi(&b, 0, PW), PowerOp::On).await;
    failed(&rec, FailureKind::Credentials);
    assert_eq!(rec.attempts, 1);
    assert!(
        rec.message.contains("RAKP 2 HMAC is invalid"),
        "{}",
        rec.message
    );
    assert!(
        b.events().is_empty(),
        "a refused session powered something: {:?}",
        b.events()
    );

    let rec = svc.run(&redfish(&s, 0, PW), PowerOp::On).await;
    failed(&rec, FailureKind::Credentials);
    assert_eq!(rec.attempts, 1);
    assert!(rec.message.contains("found HTTP 401"), "{}", rec.message);

    for rec in [&svc.journal("ipmi000")[0], &svc.journal("rf000")[0]] {
        assert!(!rec.message.contains(PW), "{}", rec.message);
        assert!(!format!("{rec:?}").contains(PW));
    }
    // the right password passes, on both
    succeeded(&svc.run(&ipmi(&b, 0, right), PowerOp::Status).await);
    succeeded(&svc.run(&redfish(&s, 0, right), PowerOp::Status).await);
}

#[tokio::test]
async fn a_refused_connection_is_retried_with_backoff_then_fails() {
    let svc = service(PowerConfig {
        retries: 2,
        backoff: Duration::from_millis(100),
        ..config()
    });
    let t = BmcTarget::redfish(
        "n-down",
        Scheme::Http,
        "127.0.0.1",
        closed_tcp_port(),
        USER,
        Secret::new(PW),
    )
    .with_system("1");
    let rec = svc.run(&t, PowerOp::Status).await;
    failed(&rec, FailureKind::Refused);
    assert_eq!(rec.attempts, 3, "1 call + 2 retries: {rec:#?}");
    // backoffs of 100 ms then 200 ms separate the three calls
    let spent = rec
        .finished
        .unwrap()
        .duration_since(rec.started.unwrap())
        .unwrap();
    assert!(
        spent >= Duration::from_millis(300),
        "no backoff between retries: {spent:?}"
    );
    assert!(
        rec.message.contains("Connection refused"),
        "{}",
        rec.message
    );
}

fn self_signed_cert(dir: &std::path::Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let out = std::process::Command::new("openssl")
        .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1"])
        .args(["-addext", "subjectAltName=IP:127.0.0.1", "-addext", "basicConstraints=critical,CA:FALSE"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl not found: the TLS power test makes its certificate with it (apt-get install openssl)");
    assert!(
        out.status.success(),
        "openssl: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (cert, key)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redfish_verifies_the_certificate_unless_the_site_switches_it_off() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = self_signed_cert(dir.path());
    let s = Sushy::start_with(
        &["On"],
        SushyOptions {
            tls: Some((&cert, &key)),
            ..SushyOptions::default()
        },
    );
    let svc = service(config());
    let verified = redfish(&s, 0, PW);
    assert!(verified.verify_tls, "verification is on by default");
    let rec = svc.run(&verified, PowerOp::Status).await;
    failed(&rec, FailureKind::Tls);
    assert_eq!(rec.attempts, 1);
    assert!(rec.message.contains("certificate"), "{}", rec.message);

    let mut unverified = verified.clone();
    unverified.verify_tls = false;
    assert_eq!(
        succeeded(&svc.run(&unverified, PowerOp::Status).await).power,
        Some(PowerState::On)
    );

    // trusting the BMC's certificate through the CA file verifies it
    let trusting = service(PowerConfig {
        ca_file: Some(cert.clone()),
        ..config()
    });
    succeeded(&trusting.run(&verified, PowerOp::Status).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_node_runs_one_operation_at_a_time() {
    let b = FakeBmcs::start(1, PW, "off");
    let svc = service(PowerConfig {
        concurrency: 8,
        ..config()
    });
    let t = ipmi(&b, 0, PW);
    let records = svc
        .fleet(vec![t.clone(), t.clone(), t.clone(), t], PowerOp::Status)
        .wait()
        .await;
    let mut spans: Vec<(SystemTime, SystemTime)> = records
        .iter()
        .map(|r| (succeeded(r).started.unwrap(), r.finished.unwrap()))
        .collect();
    spans.sort();
    for w in spans.windows(2) {
        assert!(
            w[1].0 >= w[0].1,
            "two operations on one BMC overlapped: {w:?}"
        );
    }
    assert_eq!(svc.peak_in_flight(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redfish_target_without_a_system_takes_the_only_one_and_refuses_to_guess() {
    let one = Sushy::start(1, "On");
    let three = Sushy::start(3, "On");
    let svc = service(config());
    let mut t = redfish(&one, 0, PW);
    t.system = None;
    assert_eq!(
        succeeded(&svc.run(&t, PowerOp::Status).await).power,
        Some(PowerState::On)
    );

    let mut t = redfish(&three, 0, PW);
    t.system = None;
    let rec = svc.run(&t, PowerOp::Off).await;
    failed(&rec, FailureKind::Config);
    assert!(
        rec.message
            .contains("expected one ComputerSystem in /redfish/v1/Systems, found 3")
            && rec.message.contains("name one with oob.system"),
        "{}",
        rec.message
    );
    // nothing was powered off
    for i in 0..3 {
        assert_eq!(
            emulator_view(&three.system_url(i)).await["PowerState"],
            "On"
        );
    }
    let mut t = redfish(&three, 0, PW);
    t.system = Some("no-such-system".to_string());
    let rec = svc.run(&t, PowerOp::Status).await;
    failed(&rec, FailureKind::Config);
    assert!(rec.message.contains("HTTP 404"), "{}", rec.message);
}

#[tokio::test]
async fn a_missing_ipmitool_fails_with_the_install_hint() {
    let silent = SilentUdp::bind();
    let svc = service(PowerConfig {
        ipmitool: "/nonexistent/ipmitool".into(),
        ..config()
    });
    let t = BmcTarget::ipmi("n1", "127.0.0.1", silent.port, USER, Secret::new(PW));
    let rec = svc.run(&t, PowerOp::Status).await;
    failed(&rec, FailureKind::Config);
    assert_eq!(rec.attempts, 1);
    assert!(
        rec.message.contains("apt-get install ipmitool"),
        "{}",
        rec.message
    );
}

#[tokio::test]
async fn the_journal_keeps_a_bounded_history_per_node() {
    let b = FakeBmcs::start(2, PW, "on");
    let svc = service(PowerConfig {
        history: 3,
        ..config()
    });
    let (t0, t1) = (ipmi(&b, 0, PW), ipmi(&b, 1, PW));
    let mut ids = Vec::new();
    for _ in 0..5 {
        ids.push(svc.run(&t0, PowerOp::Status).await.id);
    }
    let other = svc.run(&t1, PowerOp::Status).await;
    let kept: Vec<_> = svc.journal("ipmi000").iter().map(|r| r.id).collect();
    assert_eq!(kept, ids[2..].to_vec(), "the 3 newest, oldest first");
    assert!(svc.operation(ids[0]).is_none());
    assert_eq!(svc.journal("ipmi001"), vec![other]);
}
