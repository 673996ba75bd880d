//! `zero sbe decode` on files of messages: back to back, and in an MDP 3.0 packet.

use std::process::Command;

fn zero() -> Command {
    Command::new(env!("CARGO_BIN_EXE_zero"))
}

const SCHEMA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../zero-sbe/tests/schemas/orders.xml");

/// An Order of the test schema: id `id`, no fills or notes, text `text`.
fn order(id: u64, text: &str) -> Vec<u8> {
    let mut b = Vec::new();
    for v in [36u16, 1, 91, 1] {
        b.extend_from_slice(&v.to_le_bytes());
    }
    b.extend_from_slice(&id.to_le_bytes());
    b.extend_from_slice(&5i64.to_le_bytes());
    b.extend_from_slice(&i32::MIN.to_le_bytes());
    b.extend_from_slice(b"1\0ESZ6\0\0\0\0");
    b.extend_from_slice(&[7, 0, 0, 0, 0, 0]);
    b.extend_from_slice(&[12, 0, 0, 0]); // fills: none
    b.extend_from_slice(&[1, 0, 0, 0, 0, 0, 0, 0]); // notes: none
    b.extend_from_slice(&(text.len() as u16).to_le_bytes());
    b.extend_from_slice(text.as_bytes());
    b
}

fn decode(framing: &str, bytes: &[u8]) -> (bool, String, String) {
    let file = std::env::temp_dir().join(format!("zero-sbe-{framing}-{}.bin", std::process::id()));
    std::fs::write(&file, bytes).unwrap();
    let out =
        zero().args(["sbe", "decode", "--schema", SCHEMA, "--framing", framing]).arg(&file).output().unwrap();
    let _ = std::fs::remove_file(&file);
    (out.status.success(), String::from_utf8(out.stdout).unwrap(), String::from_utf8(out.stderr).unwrap())
}

#[test]
fn messages_back_to_back() {
    let bytes = [order(1, "one"), order(2, "two")].concat();
    let (ok, out, err) = decode("none", &bytes);
    assert!(ok, "{err}");
    let lines: Vec<serde_json::Value> = out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 2);
    assert_eq!((lines[0]["orderId"].clone(), lines[1]["text"].clone()), (1.into(), "two".into()));
    assert_eq!(lines[0]["qty"], serde_json::Value::Null);
    // Cut short: the messages before are printed, then the error says where.
    let (ok, out, err) = decode("none", &bytes[..bytes.len() - 1]);
    assert!(!ok && out.lines().count() == 1 && err.contains("at byte"), "{out}{err}");
}

#[test]
fn an_mdp3_packet() {
    let mut packet = Vec::new();
    packet.extend_from_slice(&77u32.to_le_bytes());
    packet.extend_from_slice(&1_765_000_000_000_000_000u64.to_le_bytes());
    for m in [order(1, "a"), order(2, "bb")] {
        packet.extend_from_slice(&((m.len() + 2) as u16).to_le_bytes());
        packet.extend_from_slice(&m);
    }
    let (ok, out, err) = decode("mdp3", &packet);
    assert!(ok, "{err}");
    let lines: Vec<serde_json::Value> = out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines[0]["$packet"]["msgSeqNum"], 77);
    assert_eq!((lines[1]["text"].clone(), lines[2]["orderId"].clone()), ("a".into(), 2.into()));
    let (ok, _, err) = decode("mdp3", &packet[..packet.len() - 3]);
    assert!(!ok && err.contains("does not fit"), "{err}");
}

/// A book as `zero sbe replay` prints it.
fn describe(book: &zero_sbe::mdp3::book::Book) -> String {
    let side = |levels: &zero_sbe::mdp3::book::Levels| {
        levels.levels().iter().map(|l| format!("{}x{}", l.price, l.qty)).collect::<Vec<_>>().join(" ")
    };
    format!("bids [{}] offers [{}]", side(&book.bids), side(&book.offers))
}

fn spare_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A feed sent over loopback UDP (A and B, each missing packets the other has, and the
/// opening snapshots), captured by tcpdump, replayed: every packet arbitrated in, none lost,
/// and the final books the exchange's.
#[test]
fn replaying_a_tcpdump_capture() {
    use std::io::{BufRead, BufReader};
    use zero_sbe::mdp3::sim::{Exchange, Rng};
    let found = Command::new("sh").args(["-c", "command -v tcpdump"]).output().unwrap();
    assert!(found.status.success(), "tcpdump is missing: run scripts/test.sh");
    let dir = std::env::temp_dir().join(format!("zero-sbe-replay-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let cap = dir.join("feed.pcap");
    let (pa, pb, ps, po) = (spare_udp_port(), spare_udp_port(), spare_udp_port(), spare_udp_port());
    let filter = format!("udp and (dst port {pa} or dst port {pb} or dst port {ps} or dst port {po})");
    /// tcpdump, stopped on drop (a failed assertion must not leave it holding the test's
    /// output open).
    struct Tcpdump(std::process::Child);
    impl Drop for Tcpdump {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut tcpdump = Tcpdump(
        Command::new("tcpdump")
            .args(["-i", "lo", "-n", "-U", "-B", "16384", "-w"])
            .arg(&cap)
            .arg(&filter)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut err = BufReader::new(tcpdump.0.stderr.take().unwrap());
    let mut line = String::new();
    err.read_line(&mut line).unwrap();
    assert!(line.contains("listening on"), "tcpdump: {line}");

    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    // The opening snapshots (by price and by order), then the feed, with orders.
    let opening = Exchange::new(4, 10).with_orders();
    for id in 1..=4 {
        sock.send_to(&opening.snapshot(id as u32, id), ("127.0.0.1", ps)).unwrap();
        for chunk in opening.order_snapshot(id as u32, id, 10) {
            sock.send_to(&chunk, ("127.0.0.1", po)).unwrap();
        }
    }
    let mut ex = Exchange::new(4, 10).forgetful().with_orders();
    let mut rng = Rng(9);
    let (mut sent_a, mut sent_b) = (0, 0);
    for n in 0..2000u32 {
        let p = ex.incremental(&mut rng);
        if n % 7 != 3 {
            sock.send_to(&p, ("127.0.0.1", pa)).unwrap();
            sent_a += 1;
        }
        if n % 7 != 4 {
            sock.send_to(&p, ("127.0.0.1", pb)).unwrap();
            sent_b += 1;
        }
        if n % 50 == 0 {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }
    // Until tcpdump has written every datagram (it reads the kernel's buffer in its own time),
    // then stop it.
    let expected = 8 + sent_a + sent_b;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let captured =
            std::fs::read(&cap).ok().and_then(|b| zero_sbe::capture::datagrams(&b).ok().map(|d| d.len()));
        if captured == Some(expected) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "tcpdump captured {captured:?} of {expected}");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let _ = Command::new("kill").args(["-INT", &tcpdump.0.id().to_string()]).status();
    let mut rest = String::new();
    let _ = std::io::Read::read_to_string(&mut err, &mut rest);
    let _ = tcpdump.0.wait();
    assert!(rest.contains("0 packets dropped by kernel"), "tcpdump dropped packets: {rest}");

    let out = zero()
        .args(["sbe", "replay"])
        .arg(&cap)
        .args(["--schema", &format!("{}/../zero-sbe/schemas/mdp3.xml", env!("CARGO_MANIFEST_DIR"))])
        .args(["--feed-a", &format!("127.0.0.1:{pa}"), "--feed-b", &format!("127.0.0.1:{pb}")])
        .args(["--snapshot", &format!("127.0.0.1:{ps}"), "--order-snapshot", &format!("127.0.0.1:{po}")])
        .arg("--orders")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("packets: 2000 delivered,") && text.contains(" 0 lost in 0 gaps"), "{text}");
    assert!(
        text.contains(&format!("datagrams: {expected} (A {sent_a}, B {sent_b}, snapshot 8, other 0)")),
        "{text}"
    );
    for template in [
        "MDIncrementalRefreshBook46",
        "MDIncrementalRefreshOrderBook47",
        "MDIncrementalRefreshTradeSummary48",
    ] {
        assert!(text.contains(&format!("messages {template}:")), "{template}: {text}");
    }
    for id in 1..=4 {
        let book = &ex.books[&id].0;
        assert!(
            text.contains(&format!("book {id}: {}", describe(book))),
            "book {id}: {}\n{text}",
            describe(book)
        );
        let resting = ex.orders[&id].len();
        assert!(
            resting > 0 && text.contains(&format!("orders {id}: {resting} resting,")),
            "orders {id}: {text}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// The feed over real multicast, in a network namespace of the test's own: a Python sender
/// on loopback, `zero sbe listen` joined source-specific to feeds A and B (each missing packets
/// the other has) and to the snapshot loop while it recovers: every packet in, none lost, the
/// final books the exchange's.
#[test]
fn listening_to_multicast_feeds() {
    use std::io::{BufRead, BufReader};
    use zero_sbe::mdp3::sim::{Exchange, Rng};
    let ns = format!("zero-sbe-{}", std::process::id());
    let ip = |args: &[&str]| {
        let out = Command::new("ip").args(args).output().expect("ip (iproute2)");
        assert!(out.status.success(), "ip {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    /// The namespace, deleted on drop.
    struct Netns(String);
    impl Drop for Netns {
        fn drop(&mut self) {
            let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
        }
    }
    let _ = Command::new("ip").args(["netns", "del", &ns]).output();
    ip(&["netns", "add", &ns]);
    let _guard = Netns(ns.clone());
    ip(&["netns", "exec", &ns, "ip", "link", "set", "lo", "up"]);
    ip(&["netns", "exec", &ns, "ip", "link", "set", "lo", "multicast", "on"]);
    ip(&["netns", "exec", &ns, "ip", "route", "add", "224.0.0.0/4", "dev", "lo"]);

    // The recorded feed: opening snapshots, then 2,000 packets on A and B.
    let dir = std::env::temp_dir().join(format!("zero-sbe-listen-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut record = Vec::new();
    let mut put = |which: u8, p: &[u8]| {
        record.push(which);
        record.extend_from_slice(&(p.len() as u16).to_le_bytes());
        record.extend_from_slice(p);
    };
    let opening = Exchange::new(4, 10);
    for id in 1..=4 {
        put(2, &opening.snapshot(id as u32, id));
    }
    let mut ex = Exchange::new(4, 10).forgetful();
    let mut rng = Rng(21);
    for n in 0..2000u32 {
        let p = ex.incremental(&mut rng);
        if n % 5 != 1 {
            put(0, &p);
        }
        if n % 5 != 2 {
            put(1, &p);
        }
    }
    let feed_file = dir.join("feed.bin");
    std::fs::write(&feed_file, &record).unwrap();

    let (a, b, s) = ("239.1.1.1:14310", "239.1.1.2:15310", "239.1.1.3:16310");
    let mut listener = Command::new("ip")
        .args(["netns", "exec", &ns])
        .arg(env!("CARGO_BIN_EXE_zero"))
        .args([
            "sbe",
            "listen",
            "--schema",
            &format!("{}/../zero-sbe/schemas/mdp3.xml", env!("CARGO_MANIFEST_DIR")),
        ])
        .args([
            "--feed-a",
            a,
            "--feed-b",
            b,
            "--snapshot",
            s,
            "--source",
            "127.0.0.1",
            "--interface",
            "127.0.0.1",
        ])
        .args(["--packets", "2000", "--seconds", "30"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(listener.stderr.take().unwrap());
    let mut line = String::new();
    err.read_line(&mut line).unwrap();
    assert!(line.contains("listening"), "zero sbe listen: {line}");
    let script = format!("{}/tests/sbe/send_feed.py", env!("CARGO_MANIFEST_DIR"));
    let sent = Command::new("ip")
        .args(["netns", "exec", &ns, "/usr/bin/python3", &script])
        .arg(&feed_file)
        .args([a, b, s])
        .output()
        .unwrap();
    assert!(sent.status.success(), "{}", String::from_utf8_lossy(&sent.stderr));
    let out = listener.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("packets: 2000 delivered,") && text.contains(" 0 lost in 0 gaps"), "{text}");
    assert!(text.contains("state InSync"), "{text}");
    for id in 1..=4 {
        let book = &ex.books[&id].0;
        assert!(text.contains(&format!("book {id}: {}", describe(book))), "book {id}\n{text}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
