//! zero-smtp's DKIM against independent implementations, both algorithms and both
//! canonicalizations: our signatures verified by dkimpy and by OpenDKIM's
//! opendkim-testmsg, dkimpy's verified by us.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use base64::Engine as _;
use zero_smtp::dkim::canon::Canon;
use zero_smtp::dkim::{verify, Signer, SigningKey, Verdict};

const MESSAGE: &str = "From: Joe SixPack <joe@football.example.com>\r
To: Suzie Q <suzie@shopping.example.net>\r
Subject: Is dinner ready?\r
Date: Fri, 11 Jul 2003 21:00:37 -0700 (PDT)\r
Message-ID: <20030712040037.46341.5F8J@football.example.com>\r
\r
Hi.\r
\r
We lost the  game.\t Are you hungry yet?  \r
\r
Joe.\r
\r
\r
";

const DOMAIN: &str = "football.example.com";

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("zero-smtp-dkim-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs `program args` with `input` on stdin; its stdout, or a panic with its stderr.
fn run(program: &str, args: &[&str], input: &[u8]) -> Vec<u8> {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{program}: {e}: run scripts/test.sh to install it"));
    child.stdin.take().unwrap().write_all(input).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{program} {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    out.stdout
}

fn dkimpy(args: &[&str], input: &[u8]) -> String {
    let script = format!("{}/tests/peers/dkimpy_peer.py", env!("CARGO_MANIFEST_DIR"));
    String::from_utf8(run("/usr/bin/python3", &[&[script.as_str()], args].concat(), input)).unwrap()
}

/// Two keys: a fresh 2048-bit RSA key from openssl (PKCS#1 PEM, which both sides read) and
/// a random Ed25519 seed; with their selectors and key files for dkimpy.
fn keys(dir: &Path) -> Vec<(&'static str, SigningKey, PathBuf)> {
    let rsa_file = dir.join("rsa.pem");
    let pem = run("openssl", &["genrsa", "-traditional", "2048"], b"");
    std::fs::write(&rsa_file, &pem).unwrap();
    let rsa = SigningKey::from_pem(std::str::from_utf8(&pem).unwrap()).unwrap();
    let seed: [u8; 32] = rand_seed();
    let ed_file = dir.join("ed25519.seed");
    std::fs::write(&ed_file, base64::engine::general_purpose::STANDARD.encode(seed)).unwrap();
    vec![("rsa", rsa, rsa_file), ("ed", SigningKey::ed25519_from_seed(&seed), ed_file)]
}

fn rand_seed() -> [u8; 32] {
    let mut seed = [0u8; 32];
    std::io::Read::read_exact(&mut std::fs::File::open("/dev/urandom").unwrap(), &mut seed).unwrap();
    seed
}

fn records(keys: &[(&str, SigningKey, PathBuf)]) -> HashMap<String, String> {
    keys.iter().map(|(s, k, _)| (format!("{s}._domainkey.{DOMAIN}"), k.dns_record())).collect()
}

#[test]
fn dkimpy_verifies_our_signatures_and_we_verify_dkimpys() {
    let dir = scratch("dkimpy");
    let keys = keys(&dir);
    let records = records(&keys);
    let records_file = dir.join("records.json");
    let json: Vec<String> = records.iter().map(|(n, r)| format!("\"{n}\": \"{r}\"")).collect();
    std::fs::write(&records_file, format!("{{{}}}", json.join(", "))).unwrap();
    let records_arg = records_file.to_str().unwrap();
    for (selector, key, key_file) in &keys {
        for canon in [Canon::Simple, Canon::Relaxed] {
            let what = format!("{selector} {}", canon.name());
            // Ours, checked by dkimpy; and the same message altered, which it must fail.
            let signer = Signer::new(DOMAIN, selector, key.clone()).canonicalization(canon, canon);
            let signed = format!("{}{MESSAGE}", signer.sign(MESSAGE.as_bytes(), 1_765_000_000));
            assert_eq!(dkimpy(&["verify", records_arg], signed.as_bytes()), "pass\n", "{what}:\n{signed}");
            let altered = signed.replace("hungry", "Hungry");
            assert!(dkimpy(&["verify", records_arg], altered.as_bytes()).starts_with("fail"), "{what}");

            // dkimpy's, checked by us.
            let alg = key.algorithm().name();
            let canon_arg = format!("{0}/{0}", canon.name());
            let field = dkimpy(
                &["sign", selector, DOMAIN, key_file.to_str().unwrap(), alg, &canon_arg],
                MESSAGE.as_bytes(),
            );
            let theirs = format!("{}{MESSAGE}", field.replace("\r\n", "\n").replace('\n', "\r\n"));
            let outcomes = verify(theirs.as_bytes(), &records, 1_765_000_000);
            assert_eq!(outcomes.len(), 1, "{what}");
            assert_eq!(outcomes[0].verdict, Verdict::Pass, "{what}: {outcomes:?}\n{theirs}");
            let altered = theirs.replace("Is dinner", "Is lunch");
            assert_eq!(
                verify(altered.as_bytes(), &records, 1_765_000_000)[0].verdict,
                Verdict::Fail,
                "{what}"
            );
        }
    }
}

/// A network namespace of the test's own with unbound on 127.0.0.1:53 serving the key
/// records (`ip netns exec` gives its programs /etc/netns/NAME/resolv.conf, so OpenDKIM's
/// resolver asks it).
struct KeyServer {
    name: String,
    unbound: std::process::Child,
}

impl KeyServer {
    fn start(dir: &Path, records: &HashMap<String, String>) -> KeyServer {
        let name = format!("zero-dkim-{}", std::process::id());
        let _ = Command::new("ip").args(["netns", "del", &name]).stderr(Stdio::null()).status();
        assert!(
            Command::new("ip").args(["netns", "add", &name]).status().unwrap().success(),
            "ip netns add (root?)"
        );
        let ns_etc = Path::new("/etc/netns").join(&name);
        std::fs::create_dir_all(&ns_etc).unwrap();
        std::fs::write(ns_etc.join("resolv.conf"), "nameserver 127.0.0.1\n").unwrap();
        let up = Command::new("ip").args(["netns", "exec", &name, "ip", "link", "set", "lo", "up"]).status();
        assert!(up.unwrap().success());
        // A TXT record's strings hold 255 bytes each: a 2048-bit key's record needs two.
        let data: String = records
            .iter()
            .map(|(n, r)| {
                let strings: Vec<String> = r
                    .as_bytes()
                    .chunks(250)
                    .map(|c| format!("\"{}\"", std::str::from_utf8(c).unwrap()))
                    .collect();
                format!("  local-data: '{n}. TXT {}'\n", strings.join(" "))
            })
            .collect();
        let conf = dir.join("unbound.conf");
        std::fs::write(
            &conf,
            format!(
                "server:\n  interface: 127.0.0.1\n  port: 53\n  use-syslog: no\n  chroot: \"\"\n  username: \"\"\n  directory: \"{}\"\n  pidfile: \"\"\n  do-daemonize: no\n  local-zone: \"example.com.\" static\n{data}remote-control:\n  control-enable: no\n",
                dir.display()
            ),
        )
        .unwrap();
        let unbound = Command::new("ip")
            .args(["netns", "exec", &name, "unbound", "-d", "-c", conf.to_str().unwrap()])
            .stderr(Stdio::null())
            .spawn()
            .expect("unbound: run scripts/test.sh to install it");
        let server = KeyServer { name, unbound };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let (first, _) = records.iter().next().unwrap();
        loop {
            let dig = Command::new("ip")
                .args(["netns", "exec", &server.name, "dig", "+short", "TXT", first])
                .output()
                .unwrap();
            if dig.status.success() && !dig.stdout.is_empty() {
                break server;
            }
            assert!(std::time::Instant::now() < deadline, "unbound does not answer for {first}");
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }

    /// opendkim-testmsg verifying `message` in the namespace: `Ok` or its complaint.
    fn opendkim_verifies(&self, message: &[u8]) -> Result<(), String> {
        let mut child = Command::new("ip")
            .args(["netns", "exec", &self.name, "opendkim-testmsg"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("opendkim-testmsg: run scripts/test.sh to install it");
        child.stdin.take().unwrap().write_all(message).unwrap();
        let out = child.wait_with_output().unwrap();
        let said =
            format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        if out.status.success() && said.trim().is_empty() {
            Ok(())
        } else {
            Err(format!("{}: {said}", out.status))
        }
    }
}

impl Drop for KeyServer {
    fn drop(&mut self) {
        let _ = self.unbound.kill();
        let _ = self.unbound.wait();
        let _ = Command::new("ip").args(["netns", "del", &self.name]).status();
        let _ = std::fs::remove_dir_all(Path::new("/etc/netns").join(&self.name));
    }
}

#[test]
fn opendkim_verifies_our_signatures() {
    let dir = scratch("opendkim");
    let keys = keys(&dir);
    let server = KeyServer::start(&dir, &records(&keys));
    for (selector, key, _) in &keys {
        for canon in [Canon::Simple, Canon::Relaxed] {
            let what = format!("{selector} {}", canon.name());
            let signer = Signer::new(DOMAIN, selector, key.clone()).canonicalization(canon, canon);
            let signed = format!("{}{MESSAGE}", signer.sign(MESSAGE.as_bytes(), 1_765_000_000));
            server.opendkim_verifies(signed.as_bytes()).unwrap_or_else(|e| panic!("{what}: {e}\n{signed}"));
            let altered = signed.replace("hungry", "Hungry");
            assert!(
                server.opendkim_verifies(altered.as_bytes()).is_err(),
                "{what}: an altered message passed"
            );
        }
    }
}
