//! `zero mdns register` and `zero mdns browse` against python-zeroconf and avahi, over IPv4 and
//! IPv6, inside network namespaces the tests make (their loopback with multicast on, a veth
//! pair for IPv6; nothing reaches the machine's own network): our service is found and resolved by zeroconf and avahi-browse,
//! and our goodbye removes it; theirs are found by our browser and resolved by `zero mdns
//! resolve`; a name either holds makes ours rename.

use std::process::{Command, Output, Stdio};

fn zero() -> String {
    env!("CARGO_BIN_EXE_zero").to_string()
}

/// A network namespace with only `lo`, multicast on and routed; deleted on drop.
struct Netns(String);

impl Netns {
    fn new(tag: &str) -> Netns {
        let name = format!("zero-mdns-{tag}-{}", std::process::id());
        let ip = |args: &[&str]| {
            let status = Command::new("ip").args(args).status().expect("ip (iproute2) runs");
            assert!(status.success(), "ip {args:?} (the tests run as root)");
        };
        let _ = Command::new("ip").args(["netns", "del", &name]).stderr(Stdio::null()).status();
        ip(&["netns", "add", &name]);
        let ns = Netns(name);
        ip(&["netns", "exec", &ns.0, "ip", "link", "set", "lo", "up"]);
        ip(&["netns", "exec", &ns.0, "ip", "link", "set", "lo", "multicast", "on"]);
        ip(&["netns", "exec", &ns.0, "ip", "route", "add", "224.0.0.0/4", "dev", "lo"]);
        ns
    }

    /// Adds a veth pair, `v0` with `fd00::1` and `v1`, for IPv6 multicast (which `lo` does
    /// not loop), duplicate address detection off so the addresses are usable at once.
    /// Returns `v0`'s index.
    fn with_veth(self) -> (Netns, String) {
        let sh = |script: &str| {
            let status = self.command("sh").args(["-ec", script]).status().unwrap();
            assert!(status.success(), "{script}");
        };
        sh("sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0\n\
            ip link add v0 type veth peer name v1\n\
            ip link set v0 up\n\
            ip link set v1 up\n\
            ip -6 addr add fd00::1/64 dev v0 nodad");
        let index = self.command("cat").arg("/sys/class/net/v0/ifindex").output().unwrap();
        (self, String::from_utf8(index.stdout).unwrap().trim().to_string())
    }

    fn command(&self, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.0, program]);
        c
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

fn python(ns: &Netns, script: &str, args: &[&str]) -> Command {
    let found = Command::new("/usr/bin/python3").args(["-c", "import zeroconf"]).output();
    assert!(found.is_ok_and(|o| o.status.success()), "python3-zeroconf is missing: run scripts/test.sh");
    let mut c = ns.command("/usr/bin/python3");
    c.arg(format!("{}/tests/mdns/{script}", env!("CARGO_MANIFEST_DIR"))).args(args);
    c
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

#[test]
fn zeroconf_finds_ours_and_we_find_and_yield_to_theirs() {
    let ns = Netns::new("zc");
    // Ours, found and resolved by zeroconf; the goodbye removes it.
    let ours = ns
        .command(&zero())
        .args(["mdns", "register", "Zero Printer", "_zero._tcp", "8080", "v=1", "--for", "4"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let seen = python(&ns, "browse.py", &["_zero._tcp.local.", "6"]).output().unwrap();
    let ours = ours.wait_with_output().unwrap();
    let seen = text(&seen);
    assert!(seen.contains("added Zero Printer._zero._tcp.local. 8080 {b'v': b'1'} ['127.0.0.1']"), "{seen}");
    assert!(seen.contains("removed Zero Printer._zero._tcp.local."), "the goodbye: {seen}");
    assert!(text(&ours).contains("registered Zero Printer"), "{}", text(&ours));

    // Theirs, found by our browser; the same name registered by us is renamed.
    let theirs = python(&ns, "register.py", &["Py Service", "_zero._tcp.local.", "9090", "5"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_secs(2));
    let clash = ns
        .command(&zero())
        .args(["mdns", "register", "Py Service", "_zero._tcp", "8080", "--for", "3"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let resolved = ns
        .command(&zero())
        .args(["mdns", "resolve", "Py Service", "_zero._tcp", "--for", "3"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let browsed = ns.command(&zero()).args(["mdns", "browse", "_zero._tcp", "--for", "6"]).output().unwrap();
    let resolved = text(&resolved.wait_with_output().unwrap());
    assert_eq!(resolved, "Py Service at pyhost.local.:9090 [127.0.0.1] txt [\"from=python\"]\n");
    let clash = text(&clash.wait_with_output().unwrap());
    let _ = theirs.wait_with_output();
    let browsed = text(&browsed);
    assert!(
        browsed.contains("added Py Service at pyhost.local.:9090 [127.0.0.1] txt [\"from=python\"]"),
        "{browsed}"
    );
    assert!(clash.contains("renamed Py Service -> Py Service (2) (name conflict)"), "{clash}");
    assert!(browsed.contains("added Py Service (2) at zero.local.:8080"), "{browsed}");
    assert!(browsed.contains("removed Py Service (2)"), "our goodbye: {browsed}");
}

/// zeroconf announces a service whose host is `zero.local.` at another address: our
/// responder, established as `zero.local.`, meets the conflicting address record and moves to
/// `zero-2.local.` (RFC 6762 9), its service following. (zeroconf answers no ANY question for a
/// host name, so it cannot meet our probe; the conflict comes after ours is established.)
#[test]
fn a_host_name_zeroconf_announces_makes_ours_rename() {
    let ns = Netns::new("host");
    let ours = ns
        .command(&zero())
        .args(["mdns", "register", "Hosted", "_zero._tcp", "8080", "--for", "7"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_secs(2));
    let theirs = python(&ns, "register.py", &["Py Host", "_other._tcp.local.", "9191", "3"])
        .env("MDNS_SERVER", "zero.local.")
        .env("MDNS_ADDRESS", "127.0.0.7")
        .output()
        .unwrap();
    let resolved =
        ns.command(&zero()).args(["mdns", "resolve", "Hosted", "_zero._tcp", "--for", "3"]).output().unwrap();
    let ours = text(&ours.wait_with_output().unwrap());
    assert!(
        ours.contains("host renamed zero.local. -> zero-2.local. (name conflict)"),
        "{ours}\n{}",
        text(&theirs)
    );
    assert_eq!(text(&resolved), "Hosted at zero-2.local.:8080 [127.0.0.1] txt []\n", "{ours}");
}

/// The same over IPv6 only (ff02::fb on a veth), with python-zeroconf's IPv6 sockets.
#[test]
fn over_ipv6_zeroconf_and_we_find_each_other() {
    let (ns, index) = Netns::new("zc6").with_veth();
    let v6 = ["--ipv6", "v0", "--no-ipv4"];
    let ours = ns
        .command(&zero())
        .args([
            "mdns",
            "register",
            "Zero Six",
            "_zero._tcp",
            "8086",
            "v=6",
            "--for",
            "4",
            "--address",
            "fd00::1",
        ])
        .args(v6)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let seen = python(&ns, "browse.py", &["_zero._tcp.local.", "6"])
        .env("MDNS_IPV6_IFINDEX", &index)
        .output()
        .unwrap();
    let ours = text(&ours.wait_with_output().unwrap());
    let seen = text(&seen);
    assert!(
        seen.contains("added Zero Six._zero._tcp.local. 8086 {b'v': b'6'} ['fd00::1']"),
        "{seen}\n{ours}"
    );
    assert!(seen.contains("removed Zero Six._zero._tcp.local."), "the goodbye: {seen}");

    let theirs = python(&ns, "register.py", &["Py Six", "_zero._tcp.local.", "9096", "4"])
        .env("MDNS_IPV6_IFINDEX", &index)
        .env("MDNS_ADDRESS", "fd00::2")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let resolved = ns
        .command(&zero())
        .args(["mdns", "resolve", "Py Six", "_zero._tcp", "--for", "4"])
        .args(v6)
        .output()
        .unwrap();
    let theirs = text(&theirs.wait_with_output().unwrap());
    assert_eq!(text(&resolved), "Py Six at pyhost.local.:9096 [fd00::2] txt [\"from=python\"]\n", "{theirs}");
}

/// avahi-daemon (with a D-Bus system bus of its own, for avahi-browse, in the namespace's
/// mount namespace) announcing "Avahi Service": avahi-browse resolves ours, our browser finds
/// avahi's, and registering avahi's name renames ours.
#[test]
fn avahi_finds_ours_and_we_find_and_yield_to_avahis() {
    for tool in ["avahi-daemon", "avahi-browse", "dbus-daemon"] {
        let found = Command::new("sh").arg("-c").arg(format!("command -v {tool}")).output().unwrap();
        assert!(
            found.status.success(),
            "{tool} is missing: run scripts/test.sh (it installs avahi and dbus)"
        );
    }
    let (ns, _) = Netns::new("av").with_veth();
    let dir = std::env::temp_dir().join(format!("zero-mdns-avahi-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("services")).unwrap();
    std::fs::create_dir_all(dir.join("run-dbus")).unwrap();
    std::fs::write(
        dir.join("avahi.conf"),
        "[server]\nuse-ipv4=yes\nuse-ipv6=yes\nenable-dbus=yes\nallow-interfaces=lo,v0\nhost-name=avahihost\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("services/zero.service"),
        "<?xml version=\"1.0\" standalone='no'?>\n<!DOCTYPE service-group SYSTEM \"avahi-service.dtd\">\n\
         <service-group><name>Avahi Service</name><service><type>_zero._tcp</type><port>7070</port>\
         <txt-record>from=avahi</txt-record></service></service-group>\n",
    )
    .unwrap();
    // One script in the namespace (and the mount namespace `ip netns exec` makes): avahi's
    // services directory and D-Bus socket directory are the test's own. Ours register once
    // avahi's service is established, so avahi holds "Avahi Service" first.
    let d = dir.display();
    let z = zero();
    let script = format!(
        "set -e\n\
         mkdir -p /run/dbus\n\
         mount --bind {d}/services /etc/avahi/services\n\
         mount --bind {d}/run-dbus /run/dbus\n\
         dbus-daemon --system --fork --nopidfile --print-pid > {d}/dbus.pid\n\
         avahi-daemon -f {d}/avahi.conf --no-drop-root --no-chroot > {d}/avahi.log 2>&1 &\n\
         avahi=$!\n\
         trap 'kill $avahi $(cat {d}/dbus.pid) 2>/dev/null || true' EXIT\n\
         for i in $(seq 100); do grep -q 'successfully established' {d}/avahi.log && break; sleep 0.1; done\n\
         {z} mdns register 'Zero Thing' _zero._tcp 8080 v=1 --ipv6 v0 --for 5 > {d}/ours.txt &\n\
         {z} mdns register 'Avahi Service' _zero._tcp 8081 --for 5 > {d}/clash.txt &\n\
         sleep 2.5\n\
         avahi-browse -rpt _zero._tcp > {d}/avahi-browse.txt 2>&1 || true\n\
         {z} mdns browse _zero._tcp --ipv6 v0 --for 2 > {d}/browse.txt\n\
         wait %2 %3\n"
    );
    let out = ns.command("timeout").args(["30", "sh", "-c", &script]).output().unwrap();
    let read = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap_or_default();
    let context = format!("{}\navahi: {}", text(&out), read("avahi.log"));
    let avahi_browse = read("avahi-browse.txt");
    assert!(
        avahi_browse.contains("=;lo;IPv4;Zero\\032Thing;_zero._tcp;local;zero.local;127.0.0.1;8080;\"v=1\""),
        "avahi-browse: {avahi_browse}\n{context}"
    );
    assert!(
        avahi_browse.contains("=;v0;IPv6;Zero\\032Thing;_zero._tcp;local;zero.local;"),
        "avahi-browse over IPv6: {avahi_browse}\n{context}"
    );
    let browse = read("browse.txt");
    assert!(
        browse.contains("added Avahi Service at avahihost.local.:7070")
            && browse.contains("txt [\"from=avahi\"]")
            && browse.contains("fd00::1"),
        "our browser: {browse}\n{context}"
    );
    let clash = read("clash.txt");
    assert!(
        clash.contains("renamed Avahi Service -> Avahi Service (2) (name conflict)"),
        "{clash}\n{context}"
    );
    assert!(read("ours.txt").contains("registered Zero Thing"), "{context}");
    let _ = std::fs::remove_dir_all(&dir);
}
