//! `zero fix acceptor` from a settings file with two sessions on one port, driven by zero-fix
//! initiators over plain sockets: application messages come back unchanged; an unknown
//! MsgType gets a session Reject (373=11) where the dictionary is enforced and a
//! BusinessMessageReject where it is not; the sequence numbers survive a restart of the
//! acceptor (its write-ahead log). `zero fix send` sends one-off messages, `zero fix initiator`
//! runs a session from its own file, and `zero fix parse` names what it prints.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use zero_core::machine::Machine;
use zero_fix::session::{Event, MemoryStore, Role, Session, SessionConfig};

fn zero() -> Command {
    Command::new(env!("CARGO_BIN_EXE_zero"))
}

/// The acceptor process, killed on drop (a failing test leaves nothing behind).
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A fresh directory for one test.
fn scratch(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("zero-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A loopback address with a port that was free a moment ago.
fn spare_addr() -> std::net::SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap()
}

/// `zero fix acceptor` with the echo counterparty, once it listens.
fn acceptor(config: &std::path::Path, addr: &str) -> Server {
    acceptor_with(config, addr, "echo")
}

/// `zero fix acceptor --app APP`, once it listens.
fn acceptor_with(config: &std::path::Path, addr: &str, app: &str) -> Server {
    let child =
        zero().args(["fix", "acceptor", "--app", app, "--config"]).arg(config).stderr(Stdio::null()).spawn();
    let child = Server(child.unwrap());
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(addr).is_err() {
        assert!(Instant::now() < deadline, "the acceptor never listened");
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}

/// Logs on to `addr`, sends `orders` (MsgType, ClOrdID), collects what comes back as
/// "type id" strings until `want` have come, and logs out.
fn trade(addr: &str, session: &mut Session, orders: &[(&str, &str)], want: usize) -> Vec<String> {
    let now = Instant::now();
    assert!(session.wants_connect(now + Duration::from_secs(3600)));
    let mut tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
    session.handle_connected(Instant::now());
    let mut got = Vec::new();
    let mut seen = Vec::new();
    let mut sent = false;
    let deadline = Instant::now() + Duration::from_secs(10);
    while got.len() < want {
        assert!(Instant::now() < deadline, "got only {got:?}; events {seen:?}");
        while let Some(bytes) = session.poll_transmit() {
            tcp.write_all(bytes).unwrap();
        }
        let mut buf = [0u8; 4096];
        if let Ok(n) = tcp.read(&mut buf) {
            session.handle_input(Instant::now(), &buf[..n]);
        }
        while let Some(e) = session.poll_event() {
            match e {
                Event::Application(m) => {
                    let id = m.get(11).or(m.get(372)).unwrap_or_default();
                    got.push(format!(
                        "{} {}",
                        String::from_utf8_lossy(m.msg_type()),
                        String::from_utf8_lossy(id)
                    ));
                }
                Event::Rejected { reason, .. } => got.push(format!("reject {}", reason.unwrap_or(0))),
                other => seen.push(format!("{other:?}")),
            }
        }
        if session.is_logged_on() && !sent {
            for (msg_type, id) in orders {
                session
                    .send(Instant::now(), msg_type.as_bytes(), |b| {
                        b.str(11, id.as_bytes())
                            .str(55, b"ZERO")
                            .char(54, b'1')
                            .str(60, b"20261207-09:30:00.000");
                        b.uint(38, 100).char(40, b'1');
                    })
                    .unwrap();
            }
            sent = true;
        }
    }
    session.logout(Instant::now(), None);
    while let Some(bytes) = session.poll_transmit() {
        tcp.write_all(bytes).unwrap();
    }
    got
}

#[test]
fn the_acceptor_echoes_rejects_and_keeps_its_numbers_across_a_restart() {
    let dir = scratch("fix");
    let addr = spare_addr().to_string();
    let config = dir.join("acceptor.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"{addr}\"\nstore = \"{}\"\nfsync = \"always\"\n\n[[session]]\nbegin_string = \"FIX.4.4\"\n\
             sender_comp_id = \"BROKER\"\ntarget_comp_id = \"CLIENT\"\nheart_bt_int = 5\n\n\
             [[session]]\nsender_comp_id = \"BROKER\"\ntarget_comp_id = \"LENIENT\"\nvalidate = false\n",
            dir.join("data").display()
        ),
    )
    .unwrap();
    let mut config_i = SessionConfig::new(Role::Initiator, "CLIENT", "BROKER");
    config_i.heart_bt_int = Duration::from_secs(5);
    let mut session =
        Session::new(config_i, MemoryStore::default(), Instant::now(), SystemTime::now().into());

    let server = acceptor(&config, &addr);
    let got = trade(&addr, &mut session, &[("D", "ORD-1"), ("ZZ", "ODD-1"), ("D", "ORD-2")], 3);
    assert_eq!(got, ["D ORD-1", "reject 11", "D ORD-2"]);
    let mut lenient = Session::new(
        SessionConfig::new(Role::Initiator, "LENIENT", "BROKER"),
        MemoryStore::default(),
        Instant::now(),
        SystemTime::now().into(),
    );
    let got = trade(&addr, &mut lenient, &[("ZZ", "ODD-2"), ("D", "ORD-9")], 2);
    assert_eq!(got, ["j ZZ", "D ORD-9"], "the other session on the same port");
    drop(server);
    // A killed process's io_uring is torn down just after it is reaped, and its listening
    // socket with it: until then that socket still takes connections. Wait until it is gone.
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(&addr).is_ok() {
        assert!(Instant::now() < deadline, "the killed acceptor's socket never went away");
        std::thread::sleep(Duration::from_millis(20));
    }

    // Restarted from its log, the acceptor expects our next number and sends its own next.
    let server = acceptor(&config, &addr);
    // Our side keeps its numbers (the same session, its connection gone).
    session.handle_closed(Instant::now(), zero_core::machine::Closed::Requested);
    let got = trade(&addr, &mut session, &[("D", "ORD-3")], 1);
    assert_eq!(got, ["D ORD-3"]);
    // The acceptor's numbers carried on from its log: Logon 1, ORD-1 2, Reject 3, ORD-2 4,
    // Logout 5; after the restart Logon 6 and ORD-3 7 (numbers reset to 1 would have been
    // "too low" for us, and ended the session).
    assert_eq!(session.next_in(), 8);
    // zero fix send: a one-off session (reset at logon) on the other CompID.
    let out = zero()
        .args(["fix", "send", "--target", &addr, "--sender", "LENIENT", "--wait", "1"])
        .args(["35=D|11=ORD-SEND|55=ZERO|54=1|60=20261207-09:30:00|38=5|40=1", "35=ZZ|11=ODD"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        text.contains("11 ClOrdID = ORD-SEND") && text.contains("35 MsgType = j (BusinessMessageReject)"),
        "{text}"
    );
    // zero fix initiator: a session of its own file logs on and stays up until stopped.
    let initiator_config = dir.join("initiator.toml");
    std::fs::write(
        &initiator_config,
        format!(
            "store = \"{}\"\n\n[[session]]\nconnect = \"{addr}\"\nsender_comp_id = \"LENIENT\"\n\
             target_comp_id = \"BROKER\"\nreset_on_logon = true\n",
            dir.join("initiator-data").display()
        ),
    )
    .unwrap();
    let mut initiator = Server(
        zero()
            .args(["fix", "initiator", "--config"])
            .arg(&initiator_config)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    std::thread::sleep(Duration::from_millis(1500));
    let _ = initiator.0.kill();
    let mut out = String::new();
    initiator.0.stdout.take().unwrap().read_to_string(&mut out).unwrap();
    assert!(out.contains("LENIENT->BROKER: logged on"), "{out}");
    drop(server);

    let log = dir.join("messages.log");
    let mut f = std::fs::File::create(&log).unwrap();
    let body =
        "35=D\x0149=CLIENT\x0156=BROKER\x0134=2\x0152=20261207-09:30:00\x0111=ORD-1\x0154=1\x0140=2\x01";
    let head = format!("8=FIX.4.4\x019={}\x01{body}", body.len());
    let sum = head.bytes().map(u32::from).sum::<u32>() % 256;
    writeln!(f, "20261207-09:30:00.000 : {head}10={sum:03}\x01").unwrap();
    let out = zero().args(["fix", "parse"]).arg(&log).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    for line in [
        "35 MsgType = D (NewOrderSingle)",
        "54 Side = 1 (BUY)",
        "40 OrdType = 2 (LIMIT)",
        "11 ClOrdID = ORD-1",
    ] {
        assert!(text.contains(line), "{line} in\n{text}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_initiator_fails_over_to_a_tls_acceptor_within_its_schedule() {
    let dir = scratch("fix-tls");
    let cert = zero_core::tls::SelfSigned::generate(&["127.0.0.1"]).unwrap();
    std::fs::write(dir.join("cert.pem"), &cert.cert_pem).unwrap();
    std::fs::write(dir.join("key.pem"), &cert.key_pem).unwrap();
    let (addr, dead) = (spare_addr(), spare_addr());
    std::fs::write(
        dir.join("acceptor.toml"),
        format!(
            "listen = \"{addr}\"\nstore = \"{}\"\ntls_cert = \"{}\"\ntls_key = \"{}\"\n\n[[session]]\n\
             sender_comp_id = \"BROKER\"\ntarget_comp_id = \"CLIENT\"\n\
             start_time = \"00:00:00\"\nend_time = \"00:00:00\"\ntime_zone = \"Europe/London\"\n",
            dir.join("acceptor-data").display(),
            dir.join("cert.pem").display(),
            dir.join("key.pem").display()
        ),
    )
    .unwrap();
    let server = acceptor(&dir.join("acceptor.toml"), &addr.to_string());
    // The primary address has nobody listening: the initiator moves on to the failover one,
    // over TLS, trusting the acceptor's certificate.
    std::fs::write(
        dir.join("initiator.toml"),
        format!(
            "store = \"{}\"\n\n[[session]]\nconnect = \"{dead}\"\nfailover = [\"{addr}\"]\n\
             reconnect_interval = 1\ntls = true\ntls_ca = \"{}\"\nsender_comp_id = \"CLIENT\"\n\
             target_comp_id = \"BROKER\"\nstart_time = \"00:00:00\"\nend_time = \"00:00:00\"\n",
            dir.join("initiator-data").display(),
            dir.join("cert.pem").display()
        ),
    )
    .unwrap();
    let mut initiator = Server(
        zero()
            .args(["fix", "initiator", "--config"])
            .arg(dir.join("initiator.toml"))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    std::thread::sleep(Duration::from_millis(3000));
    let _ = initiator.0.kill();
    let mut out = String::new();
    initiator.0.stdout.take().unwrap().read_to_string(&mut out).unwrap();
    assert!(out.contains("CLIENT->BROKER: down: Connection(ConnectFailed"), "{out}");
    // Logged on over TLS (the acceptor speaks nothing else), on the second address.
    assert!(out.contains("CLIENT->BROKER: logged on"), "{out}");
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_fixt_session_checks_application_messages_against_fix50sp2() {
    let dir = scratch("fixt");
    let addr = spare_addr().to_string();
    std::fs::write(
        dir.join("acceptor.toml"),
        format!(
            "listen = \"{addr}\"\nstore = \"{}\"\n\n[[session]]\nbegin_string = \"FIXT.1.1\"\n\
             sender_comp_id = \"BROKER\"\ntarget_comp_id = \"CLIENT\"\n",
            dir.join("data").display()
        ),
    )
    .unwrap();
    let server = acceptor(&dir.join("acceptor.toml"), &addr);
    let out = zero()
        .args(["fix", "send", "--target", &addr, "--begin-string", "FIXT.1.1", "--wait", "1"])
        .args([
            "35=D|11=ORD-T|55=ZERO|54=1|60=20261207-09:30:00|38=5|40=1",
            "35=D|11=NO-SIDE|55=ZERO|60=20261207-09:30:00|38=5|40=1",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    // Echoed, and named from FIX 5.0 SP2; the order without Side (54) rejected: required
    // tag missing (reason 1).
    assert!(text.contains("35 MsgType = D (NewOrderSingle)") && text.contains("ClOrdID = ORD-T"), "{text}");
    assert!(text.contains("Reject of Some(3): reason Some(1)") && !text.contains("NO-SIDE"), "{text}");
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

/// `zero bench fix` against the exec counterparty prints its percentiles; against the echo
/// counterparty (which never sends an ExecutionReport) it gives up after --stall-secs.
#[test]
fn bench_fix_measures_round_trips_and_stops_when_nothing_answers() {
    let dir = scratch("bench-fix");
    for (app, ok) in [("exec", true), ("echo", false)] {
        let addr = spare_addr().to_string();
        let config = dir.join(format!("{app}.toml"));
        std::fs::write(
            &config,
            format!(
                "listen = \"{addr}\"\nstore = \"{}\"\nfsync = \"never\"\n\n[[session]]\n\
                 sender_comp_id = \"BROKER\"\ntarget_comp_id = \"CLIENT\"\nvalidate = false\n",
                dir.join(format!("{app}-data")).display()
            ),
        )
        .unwrap();
        let server = acceptor_with(&config, &addr, app);
        let store = dir.join(format!("{app}-initiator"));
        let out = zero()
            .args([
                "bench",
                "fix",
                "--target",
                &addr,
                "--orders",
                "300",
                "--warmup",
                "30",
                "--stall-secs",
                "1",
            ])
            .arg("--store")
            .arg(&store)
            .output()
            .unwrap();
        let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert_eq!(out.status.success(), ok, "{app}: {stdout}{stderr}");
        if ok {
            assert!(stdout.contains("RESULT impl=zero orders=300 p50_us="), "{stdout}");
        } else {
            assert!(stderr.contains("nothing in 1 s"), "{stderr}");
        }
        drop(server);
    }
    let _ = std::fs::remove_dir_all(&dir);
}
