//! `zero ftp serve` as users run it (a shard per CPU), driven by independent clients: curl
//! (passive and active, anonymous and a user), lftp, and Python's ftplib through every
//! command, path and symlink escapes, a bounce attempt, a data connection stolen from
//! another address, ABOR in the middle of a download, and many clients at once.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

/// `openssl passwd -6 -salt abcdefgh secret`.
const SECRET: &str =
    "$6$abcdefgh$ltjgWl6579NluT/Vi1nwEvcil.G5Nbc4NiXZaNGStk8PSwGfQv72N2CKPPrVACtLtip/cZ/1GM/O6IND4WQhG.";

/// The server, stopped on drop.
struct Server {
    child: Child,
    addr: SocketAddr,
    dir: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn spare_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A root with `a.txt`, `big.bin` (`size` bytes), `sub/`, `q/old.bin` (100,000 bytes), and
/// a symlink out of it; users alice (everything), reader (read only, rooted in `sub`) and
/// limited (rooted in `q`, a 1 MiB quota).
fn serve(name: &str, big: usize) -> Server {
    serve_with(name, big, &[])
}

fn serve_with(name: &str, big: usize, flags: &[&str]) -> Server {
    let dir = std::env::temp_dir().join(format!("zero-ftp-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let root = dir.join("root");
    std::fs::create_dir_all(root.join("sub")).unwrap();
    std::fs::write(root.join("a.txt"), b"hello\n").unwrap();
    std::fs::write(root.join("sub/in-sub.txt"), b"sub\n").unwrap();
    let bytes: Vec<u8> = (0..big).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(root.join("big.bin"), bytes).unwrap();
    std::fs::write(dir.join("secret"), b"outside the root\n").unwrap();
    std::os::unix::fs::symlink(dir.join("secret"), root.join("escape")).unwrap();
    std::fs::create_dir_all(root.join("q")).unwrap();
    std::fs::write(root.join("q/old.bin"), [1; 100_000]).unwrap();
    let users = format!("alice:{SECRET}:rwdm\nreader:{SECRET}:r:sub\nlimited:{SECRET}:rwd:q:1M\n");
    std::fs::write(dir.join("users"), users).unwrap();
    let addr: SocketAddr = format!("127.0.0.1:{}", spare_port()).parse().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_zero"))
        .args(["ftp", "serve", "--anonymous", "--listen", &addr.to_string(), "--root"])
        .arg(&root)
        .arg("--users")
        .arg(dir.join("users"))
        .args(flags)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stderr.take().unwrap()).read_line(&mut line).unwrap();
    assert!(line.contains("listening on"), "zero ftp serve: {line}");
    assert!(!line.contains("(1 shard)") || std::thread::available_parallelism().unwrap().get() == 1);
    Server { child, addr, dir }
}

fn curl(args: &[&str]) -> (i32, Vec<u8>, String) {
    let out = Command::new("curl").args(["-s", "-S", "--max-time", "20"]).args(args).output().unwrap();
    (out.status.code().unwrap_or(-1), out.stdout, String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn curl_passive_active_anonymous_and_escapes() {
    let s = serve("curl", 3_000_000);
    let url = |p: &str| format!("ftp://{}/{p}", s.addr);
    let root = s.dir.join("root");
    // Anonymous: a listing, a download, and no upload.
    let (rc, out, err) = curl(&[&url("")]);
    assert_eq!(rc, 0, "{err}");
    let listing = String::from_utf8(out).unwrap();
    assert!(
        listing.lines().any(|l| l.starts_with("-rw-r--r--") && l.trim_end().ends_with(" a.txt")),
        "{listing}"
    );
    assert!(listing.lines().any(|l| l.starts_with('d') && l.trim_end().ends_with(" sub")), "{listing}");
    assert_eq!(curl(&[&url("a.txt")]).1, b"hello\n");
    let (rc, _, _) = curl(&["-T", "-", &url("anon.txt")]);
    assert_ne!(rc, 0, "anonymous is read only");
    assert!(!root.join("anon.txt").exists());
    // A user: a 3 MB download and upload, passive (EPSV) and active (EPRT/PORT).
    let big = std::fs::read(root.join("big.bin")).unwrap();
    for mode in
        [&["--ftp-pasv"][..], &["--ftp-port", "127.0.0.1"], &["--ftp-port", "127.0.0.1", "--disable-eprt"]]
    {
        let mut args = vec!["-u", "alice:secret"];
        args.extend_from_slice(mode);
        let mut get = args.clone();
        let target = url("big.bin");
        get.push(&target);
        let (rc, out, err) = curl(&get);
        assert_eq!((rc, out.len()), (0, big.len()), "{mode:?}: {err}");
        assert!(out == big, "{mode:?}: the download differs");
        let mut put = args.clone();
        let source = root.join("big.bin").to_string_lossy().into_owned();
        let target = url("sub/up.bin");
        put.extend_from_slice(&["-T", &source, &target]);
        let (rc, _, err) = curl(&put);
        assert_eq!(rc, 0, "{mode:?}: {err}");
        assert!(std::fs::read(root.join("sub/up.bin")).unwrap() == big, "{mode:?}: the upload differs");
    }
    // Resume: curl asks for the rest with REST (a download) and APPE (an upload).
    std::fs::write(s.dir.join("part"), &big[..1_000_000]).unwrap();
    let part = s.dir.join("part").to_string_lossy().into_owned();
    let (rc, _, err) = curl(&["-u", "alice:secret", "-C", "-", "-o", &part, &url("big.bin")]);
    assert_eq!(rc, 0, "{err}");
    assert!(std::fs::read(&part).unwrap() == big, "a resumed download is whole");
    std::fs::write(root.join("resumed.bin"), &big[..1_000_000]).unwrap();
    let whole = root.join("big.bin").to_string_lossy().into_owned();
    let (rc, _, err) = curl(&["-u", "alice:secret", "-C", "-", "-T", &whole, &url("resumed.bin")]);
    assert_eq!(rc, 0, "{err}");
    assert!(std::fs::read(root.join("resumed.bin")).unwrap() == big, "a resumed upload is whole");
    // Escapes: dot-dot stays in the root, a symlink out of it is refused, a user rooted in a
    // subdirectory sees only it.
    for path in ["../../secret", "..%2F..%2Fsecret", "escape", "%2E%2E/%2E%2E/secret"] {
        let (rc, out, _) = curl(&["-u", "alice:secret", &url(path)]);
        assert!(rc != 0 && !String::from_utf8_lossy(&out).contains("outside"), "{path}: {rc}");
    }
    assert_eq!(curl(&["-u", "reader:secret", &url("in-sub.txt")]).1, b"sub\n");
    assert_ne!(curl(&["-u", "reader:secret", &url("a.txt")]).0, 0);
    assert_ne!(curl(&["-u", "alice:wrong", &url("a.txt")]).0, 0);
}

/// Python's ftplib, through every command.
#[test]
fn ftplib_every_command() {
    let s = serve("ftplib", 50_000_000);
    let script = r#"
import ftplib, io, socket, sys
host, port = sys.argv[1], int(sys.argv[2])
f = ftplib.FTP()
f.connect(host, port, timeout=20)
f.login("alice", "secret")
feat = f.sendcmd("FEAT")
for x in ["MLST", "EPSV", "REST STREAM", "SIZE", "MDTM", "UTF8"]:
    assert x in feat, feat
facts = dict(f.mlsd())
assert facts["a.txt"]["type"] == "file" and facts["a.txt"]["size"] == "6", facts
assert facts["a.txt"]["perm"] == "rwadf" and facts["sub"]["type"] == "dir", facts
assert f.size("big.bin") == 50000000
assert f.sendcmd("MDTM a.txt").startswith("213 20")
assert f.mkd("made") == "/made"
f.cwd("made")
assert f.pwd() == "/made"
f.cwd("../../..")
assert f.pwd() == "/"
f.storbinary("STOR made/x.bin", io.BytesIO(b"0123456789"))
buf = io.BytesIO()
f.retrbinary("RETR made/x.bin", buf.write, rest=4)
assert buf.getvalue() == b"456789", buf.getvalue()
f.storbinary("APPE made/x.bin", io.BytesIO(b"AB"))
assert f.size("made/x.bin") == 12
f.rename("made/x.bin", "made/y.bin")
assert f.nlst("made") == ["y.bin"], f.nlst("made")
f.delete("made/y.bin")
f.rmd("made")
for bad in ["PORT 10,0,0,1,20,0", "PORT 127,0,0,1,0,21", "EPRT |1|10.0.0.1|5000|"]:
    try:
        f.sendcmd(bad)
        raise SystemExit("bounce accepted: " + bad)
    except ftplib.error_perm as e:
        assert str(e).startswith("500"), e
try:
    f.retrbinary("RETR escape", lambda b: None)
    raise SystemExit("a symlink out of the root was read")
except ftplib.error_perm as e:
    assert str(e).startswith("550"), e
# ABOR in the middle of a 50 MB download (sent urgent, as ftplib does).
f.voidcmd("TYPE I")
conn = f.transfercmd("RETR big.bin")
conn.recv(65536)
reply = f.abort()
assert reply[:3] in ("225", "226", "426"), reply
if reply.startswith("426"):
    # RFC 959 4.1.3 (and vsftpd): 426 for the transfer, then 226 for the ABOR; ftplib reads
    # only the first.
    assert f.voidresp().startswith("226")
conn.close()
assert f.voidcmd("NOOP").startswith("200")
# A data connection from another address is refused; the client's own is served.
f.sendcmd("TYPE I")
pasv = f.sendcmd("PASV")
nums = pasv[pasv.index("(") + 1:pasv.index(")")].split(",")
dport = int(nums[4]) * 256 + int(nums[5])
thief = socket.socket()
thief.bind(("127.0.0.2", 0))
thief.connect((host, dport))
thief.settimeout(5)
assert thief.recv(10) == b"", "the thief's connection is closed"
own = socket.create_connection((host, dport))
f.sendcmd("RETR a.txt")
data = b""
while True:
    chunk = own.recv(4096)
    if not chunk:
        break
    data += chunk
assert data == b"hello\n", data
assert f.voidresp().startswith("226")
# STOU picks a name of its own.
f.voidcmd("TYPE I")
conn, _ = f.ntransfercmd("STOU")
conn.sendall(b"unique")
conn.close()
assert f.voidresp().startswith("226")
assert f.quit().startswith("221")
print("ok")
"#;
    let out = Command::new("/usr/bin/python3")
        .args(["-c", script, "127.0.0.1", &s.addr.port().to_string()])
        .output()
        .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && text.contains("ok"), "{text}");
    assert!(std::fs::read_dir(s.dir.join("root")).unwrap().any(|e| {
        let e = e.unwrap();
        e.file_name().to_string_lossy().starts_with("file") && std::fs::read(e.path()).unwrap() == b"unique"
    }));
}

#[test]
fn lftp_mirrors_a_tree() {
    let found = Command::new("sh").args(["-c", "command -v lftp"]).output().unwrap();
    assert!(found.status.success(), "lftp is missing: run scripts/test.sh");
    let s = serve("lftp", 100_000);
    let local = s.dir.join("mirror");
    let cmd = format!(
        "set ftp:ssl-allow no; set net:max-retries 1; open -u alice,secret ftp://{}; mirror / {}; bye",
        s.addr,
        local.display()
    );
    let out = Command::new("lftp").args(["-c", &cmd]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(std::fs::read(local.join("sub/in-sub.txt")).unwrap(), b"sub\n");
    assert_eq!(
        std::fs::read(local.join("big.bin")).unwrap(),
        std::fs::read(s.dir.join("root/big.bin")).unwrap()
    );
}

/// Forty clients at once, each logging in, listing and downloading, on every shard; the same
/// user many times over.
/// lftp (GnuTLS) over explicit FTPS, TLS required on both connections and data sessions
/// resumed: a mirror and an upload.
#[test]
fn lftp_over_ftps() {
    let dir = std::env::temp_dir().join(format!("zero-ftp-lftp-certs-{}", std::process::id()));
    let (cert, key) = certificate(&dir);
    let (cert_s, key_s) = (cert.to_string_lossy().into_owned(), key.to_string_lossy().into_owned());
    let s = serve_with("lftp-tls", 1_000_000, &["--tls-cert", &cert_s, "--tls-key", &key_s, "--require-tls"]);
    let local = s.dir.join("mirror");
    let cmd = format!(
        "set ssl:ca-file {cert_s}; set ftp:ssl-force yes; set ftp:ssl-protect-data yes; \
         set net:max-retries 1; open -u alice,secret ftp://localhost:{}; mirror / {}; \
         put {cert_s} -o sub/up.pem; bye",
        s.addr.port(),
        local.display()
    );
    let out = Command::new("lftp").args(["-c", &cmd]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(
        std::fs::read(local.join("big.bin")).unwrap(),
        std::fs::read(s.dir.join("root/big.bin")).unwrap()
    );
    assert_eq!(std::fs::read(s.dir.join("root/sub/up.pem")).unwrap(), std::fs::read(&cert).unwrap());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn many_clients_at_once() {
    let log = std::env::temp_dir().join(format!("zero-ftp-xferlog-{}", std::process::id()));
    let _ = std::fs::remove_file(&log);
    let s = serve_with("many", 200_000, &["--xferlog", log.to_str().unwrap()]);
    let want = std::fs::read(s.dir.join("root/big.bin")).unwrap();
    let threads: Vec<_> = (0..40)
        .map(|i| {
            let addr = s.addr;
            std::thread::spawn(move || {
                let user = if i % 2 == 0 { "alice:secret" } else { "anonymous:x" };
                let url = format!("ftp://{addr}/big.bin");
                let out = Command::new("curl")
                    .args(["-s", "-S", "--max-time", "30", "-u", user, &url])
                    .output()
                    .unwrap();
                (out.status.code(), out.stdout)
            })
        })
        .collect();
    for t in threads {
        let (code, body) = t.join().unwrap();
        assert_eq!(code, Some(0));
        assert!(body == want);
    }
    // Every download in the transfer log (xferlog format), from both shards.
    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 40, "{text}");
    assert!(
        lines.iter().all(|l| l.contains(" 127.0.0.1 200000 /big.bin b _ o ") && l.ends_with(" ftp 0 * c")),
        "{text}"
    );
    assert_eq!(lines.iter().filter(|l| l.contains(" o a anonymous ")).count(), 20, "{text}");
    let _ = std::fs::remove_file(&log);
}

/// A client that talks nonsense, sends a line too long, or vanishes mid-transfer: the server
/// answers, and serves the next client.
#[test]
fn bad_clients_leave_the_server_serving() {
    let s = serve("bad", 20_000_000);
    let mut c = TcpStream::connect(s.addr).unwrap();
    c.set_read_timeout(Some(std::time::Duration::from_secs(5))).unwrap();
    let mut r = BufReader::new(c.try_clone().unwrap());
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    assert!(line.starts_with("220 "), "{line}");
    c.write_all(&vec![b'A'; 100_000]).unwrap();
    c.write_all(b"\r\nNOOP\r\n\xff\xfe\x00\r\n").unwrap();
    for want in ["500 Command line too long.", "200 NOOP ok.", "500 Unknown command."] {
        line.clear();
        r.read_line(&mut line).unwrap();
        assert!(line.starts_with(want), "{want}: {line}");
    }
    // A download whose client disappears.
    c.write_all(b"USER alice\r\nPASS secret\r\nEPSV\r\n").unwrap();
    let mut port = 0;
    for _ in 0..3 {
        line.clear();
        r.read_line(&mut line).unwrap();
        if let Some(p) = line.strip_prefix("229 Entering Extended Passive Mode (|||") {
            port = p.trim_end().trim_end_matches("|)").parse().unwrap();
        }
    }
    let mut data = TcpStream::connect(("127.0.0.1", port)).unwrap();
    c.write_all(b"RETR big.bin\r\n").unwrap();
    let mut some = [0u8; 1000];
    data.read_exact(&mut some).unwrap();
    drop(data);
    drop(r);
    drop(c);
    // The next client is served.
    let (rc, out, err) = curl(&[&format!("ftp://{}/a.txt", s.addr)]);
    assert_eq!((rc, out.as_slice()), (0, &b"hello\n"[..]), "{err}");
}

/// A data connection that never comes is `425` after the accept timeout; a download nobody
/// reads is `426` after the data timeout; the session goes on after both.
#[test]
fn data_timeouts() {
    let s = serve_with("timeouts", 50_000_000, &["--accept-timeout", "1", "--data-timeout", "1"]);
    let c = TcpStream::connect(s.addr).unwrap();
    c.set_read_timeout(Some(std::time::Duration::from_secs(10))).unwrap();
    let mut w = c.try_clone().unwrap();
    let mut r = BufReader::new(c);
    let mut expect = |want: &str| {
        let mut line = String::new();
        r.read_line(&mut line).unwrap();
        assert!(line.starts_with(want), "{want}: {line}");
        line
    };
    expect("220 ");
    // Timed from before RETR is sent: the server's deadline starts later than that, never
    // earlier (timing from the 229 read, as before, could start after it under load).
    let started = std::time::Instant::now();
    w.write_all(b"USER alice\r\nPASS secret\r\nEPSV\r\nRETR a.txt\r\n").unwrap();
    expect("331 ");
    expect("230 ");
    expect("229 ");
    expect("425 ");
    assert!(started.elapsed() >= std::time::Duration::from_millis(900), "{:?}", started.elapsed());
    w.write_all(b"EPSV\r\n").unwrap();
    let line = expect("229 ");
    let port: u16 = line.trim_end().trim_end_matches("|)").rsplit('|').next().unwrap().parse().unwrap();
    let data = TcpStream::connect(("127.0.0.1", port)).unwrap();
    w.write_all(b"RETR big.bin\r\n").unwrap();
    expect("150 ");
    expect("426 ");
    drop(data);
    w.write_all(b"NOOP\r\n").unwrap();
    expect("200 ");
}

/// A self-signed certificate for localhost and 127.0.0.1 (not a CA: webpki, which zero's
/// client uses, refuses a CA certificate as a server's), and its key, made by openssl in `dir`.
fn certificate(dir: &std::path::Path) -> (PathBuf, PathBuf) {
    std::fs::create_dir_all(dir).unwrap();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let made = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=localhost"])
        .args(["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
        .args(["-addext", "basicConstraints=critical,CA:FALSE", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .unwrap();
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    (cert, key)
}

/// FTPS: explicit (AUTH TLS) and implicit, with logins and transfers required to be under
/// TLS; a data connection that does not resume the control connection's session is refused
/// (522), and an upload whose TLS ends without close_notify does not count (426).
#[test]
fn ftps_explicit_implicit_session_reuse_and_close_notify() {
    let dir = std::env::temp_dir().join(format!("zero-ftp-certs-{}", std::process::id()));
    let (cert, key) = certificate(&dir);
    let implicit = format!("127.0.0.1:{}", spare_port());
    let (cert_s, key_s) = (cert.to_string_lossy().into_owned(), key.to_string_lossy().into_owned());
    let flags = ["--tls-cert", &cert_s, "--tls-key", &key_s, "--implicit", &implicit, "--require-tls"];
    let s = serve_with("tls", 3_000_000, &flags);
    let big = std::fs::read(s.dir.join("root/big.bin")).unwrap();
    // Without TLS a user may not log in (anonymous may, read only).
    let (rc, _, _) = curl(&["-u", "alice:secret", &format!("ftp://{}/a.txt", s.addr)]);
    assert_ne!(rc, 0, "a user logged in without TLS");
    assert_eq!(curl(&[&format!("ftp://{}/a.txt", s.addr)]).1, b"hello\n");
    // curl: explicit FTPS both ways, implicit FTPS.
    let url = format!("ftp://{}/big.bin", s.addr);
    let (rc, out, err) = curl(&["--ssl-reqd", "--cacert", &cert_s, "-u", "alice:secret", &url]);
    assert!(rc == 0 && out == big, "explicit download: {rc} {err}");
    let source = s.dir.join("root/big.bin").to_string_lossy().into_owned();
    let up = format!("ftp://{}/sub/up.bin", s.addr);
    let (rc, _, err) = curl(&["--ssl-reqd", "--cacert", &cert_s, "-u", "alice:secret", "-T", &source, &up]);
    assert_eq!(rc, 0, "explicit upload: {err}");
    assert!(std::fs::read(s.dir.join("root/sub/up.bin")).unwrap() == big);
    let (rc, out, err) =
        curl(&["--cacert", &cert_s, "-u", "alice:secret", &format!("ftps://{implicit}/a.txt")]);
    assert_eq!((rc, out.as_slice()), (0, &b"hello\n"[..]), "implicit: {err}");
    // Python's ftplib, which does not resume sessions by itself, and a subclass that does.
    let script = r#"
import ftplib, ssl, io, sys
port, ca = int(sys.argv[1]), sys.argv[2]
ctx = ssl.create_default_context(cafile=ca)
class Reuse(ftplib.FTP_TLS):
    def ntransfercmd(self, cmd, rest=None):
        conn, size = ftplib.FTP.ntransfercmd(self, cmd, rest)
        if self._prot_p:
            conn = self.context.wrap_socket(conn, server_hostname=self.host, session=self.sock.session)
        return conn, size
f = ftplib.FTP_TLS(context=ctx)
f.connect("127.0.0.1", port)
f.auth(); f.login("alice", "secret")
try:
    f.retrbinary("RETR a.txt", lambda b: None)
    raise SystemExit("a clear transfer under --require-tls")
except ftplib.error_perm as e:
    assert str(e).startswith("521"), e
f.prot_p()
try:
    f.retrbinary("RETR a.txt", lambda b: None)
    raise SystemExit("a data connection without session reuse was served")
except ftplib.error_perm as e:
    assert str(e).startswith("522"), e
except (ssl.SSLError, OSError):
    # Depending on when the client sees the refusal: the handshake, or the reply after it.
    try:
        f.voidresp()
        raise SystemExit("no refusal")
    except ftplib.error_perm as e:
        assert str(e).startswith("522"), e
f.close()
g = Reuse(context=ctx)
g.connect("127.0.0.1", port)
g.auth(); g.login("alice", "secret"); g.prot_p()
for i in range(3):
    buf = io.BytesIO()
    g.retrbinary("RETR a.txt", buf.write)
    assert buf.getvalue() == b"hello\n", buf.getvalue()
g.storbinary("STOR py.bin", io.BytesIO(b"x" * 100000))
assert g.size("py.bin") == 100000
g.voidcmd("TYPE I")
conn, _ = g.ntransfercmd("STOR cut.bin")
conn.sendall(b"y" * 50000)
conn.close()  # no unwrap: no close_notify
try:
    g.voidresp()
    raise SystemExit("an upload cut without close_notify was complete")
except ftplib.error_temp as e:
    assert str(e).startswith("426"), e
g.quit()
print("ok")
"#;
    let out = Command::new("/usr/bin/python3")
        .args(["-c", script, &s.addr.port().to_string(), &cert_s])
        .output()
        .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && text.contains("ok"), "{text}");
    let _ = std::fs::remove_dir_all(&dir);
}

fn zero<S: AsRef<std::ffi::OsStr>>(args: &[S], cwd: &std::path::Path) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_zero")).args(args).current_dir(cwd).output().unwrap();
    let text = |b: Vec<u8>| String::from_utf8_lossy(&b).into_owned();
    (out.status.code().unwrap_or(-1), text(out.stdout), text(out.stderr))
}

/// `zero ftp ls|get|put|mirror` against `zero ftp serve`: plain, explicit FTPS and implicit
/// FTPS, passive and active, resumed both ways; progress as plain lines (no terminal).
#[test]
fn zero_ftp_client_commands() {
    let certs = std::env::temp_dir().join(format!("zero-ftp-client-certs-{}", std::process::id()));
    let (cert, key) = certificate(&certs);
    let implicit = format!("127.0.0.1:{}", spare_port());
    let (cert_s, key_s) = (cert.to_string_lossy().into_owned(), key.to_string_lossy().into_owned());
    let s = serve_with(
        "client",
        3_000_000,
        &["--tls-cert", &cert_s, "--tls-key", &key_s, "--implicit", &implicit],
    );
    let root = s.dir.join("root");
    let big = std::fs::read(root.join("big.bin")).unwrap();
    let work = s.dir.join("work");
    std::fs::create_dir_all(&work).unwrap();
    let base = format!("ftp://alice:secret@{}", s.addr);
    let tls = ["--tls", "--ca", &cert_s];
    for (prefix, extra) in [
        (base.clone(), &[][..]),
        (base.clone(), &tls[..]),
        (format!("ftp://alice:secret@{}", s.addr), &["--tls", "--ca", &cert_s, "--active"][..]),
        (format!("ftps://alice:secret@{implicit}"), &["--ca", &cert_s][..]),
    ] {
        let with =
            |args: &[&str]| -> Vec<String> { args.iter().chain(extra).map(|a| a.to_string()).collect() };
        let (rc, out, err) = zero(&with(&["ftp", "ls", &format!("{prefix}/")]), &work);
        assert_eq!(rc, 0, "{extra:?}: {err}");
        assert!(out.lines().any(|l| l.ends_with(" big.bin")), "{out}");
        let (rc, out, err) =
            zero(&with(&["ftp", "ls", "--format", "facts", &format!("{prefix}/sub")]), &work);
        assert_eq!(rc, 0, "{err}");
        assert!(out.contains("type=file;size=4;") && out.contains(" in-sub.txt"), "{out}");
        // A download: the file, and a last line saying what moved.
        let _ = std::fs::remove_file(work.join("big.bin"));
        let (rc, _, err) = zero(&with(&["ftp", "get", &format!("{prefix}/big.bin")]), &work);
        assert_eq!(rc, 0, "{extra:?}: {err}");
        assert!(std::fs::read(work.join("big.bin")).unwrap() == big);
        assert!(err.contains("big.bin: 2.9 MiB in"), "{err}");
        // Resumed from a third.
        std::fs::write(work.join("big.bin"), &big[..1_000_000]).unwrap();
        let (rc, _, err) = zero(&with(&["ftp", "get", "-c", &format!("{prefix}/big.bin")]), &work);
        assert_eq!(rc, 0, "{err}");
        assert!(std::fs::read(work.join("big.bin")).unwrap() == big, "resumed download");
        // An upload into a directory, then one resumed with APPE.
        let _ = std::fs::remove_file(root.join("sub/big.bin"));
        let (rc, _, err) = zero(&with(&["ftp", "put", "big.bin", &format!("{prefix}/sub/")]), &work);
        assert_eq!(rc, 0, "{err}");
        assert!(std::fs::read(root.join("sub/big.bin")).unwrap() == big);
        std::fs::write(root.join("sub/big.bin"), &big[..2_000_000]).unwrap();
        let (rc, _, err) =
            zero(&with(&["ftp", "put", "-c", "big.bin", &format!("{prefix}/sub/big.bin")]), &work);
        assert_eq!(rc, 0, "{err}");
        assert!(std::fs::read(root.join("sub/big.bin")).unwrap() == big, "resumed upload");
        // A mirror of the whole tree (the symlink out of the root is not followed).
        let _ = std::fs::remove_dir_all(work.join("copy"));
        let (rc, out, err) = zero(&with(&["ftp", "mirror", &format!("{prefix}/"), "copy"]), &work);
        assert_eq!(rc, 0, "{err}");
        assert!(out.contains("5 files downloaded"), "{out}");
        assert!(std::fs::read(work.join("copy/sub/big.bin")).unwrap() == big);
        assert_eq!(std::fs::read(work.join("copy/a.txt")).unwrap(), b"hello\n");
        assert!(!work.join("copy/escape").exists());
    }
    // Errors name what failed, and exit non-zero.
    let (rc, _, err) = zero(&["ftp", "get", &format!("{base}/none.txt")], &work);
    assert!(rc != 0 && err.contains("550"), "{err}");
    let (rc, _, err) = zero(&["ftp", "ls", &format!("ftp://alice:wrong@{}/", s.addr)], &work);
    assert!(rc != 0 && err.contains("login failed: 530"), "{err}");
    let (rc, _, err) = zero(&["ftp", "ls", "http://x/"], &work);
    assert!(rc != 0 && err.contains("not an FTP URL"), "{err}");
    let _ = std::fs::remove_dir_all(&certs);
}

/// `--max-rate` holds one transfer to its rate both ways (a download spliced in rate-sized
/// pieces, an upload's reads held), and `--max-total-rate` holds all of them together.
#[test]
fn rate_limits() {
    let s = serve_with("rate", 3_000_000, &["--max-rate", "1000000", "--max-total-rate", "3000000"]);
    let url = |p: &str| format!("ftp://alice:secret@{}/{p}", s.addr);
    let big = std::fs::read(s.dir.join("root/big.bin")).unwrap();
    // 3 MB at 1 MB/s, less the quarter-second burst (and, uploading, what the kernel held):
    // at least two seconds.
    let began = std::time::Instant::now();
    let (rc, out, err) = curl(&[&url("big.bin")]);
    let took = began.elapsed().as_secs_f64();
    assert!(rc == 0 && out == big, "{err}");
    assert!((2.0..10.0).contains(&took), "a 3 MB download at 1 MB/s took {took:.2} s");
    let source = s.dir.join("root/big.bin").to_string_lossy().into_owned();
    let began = std::time::Instant::now();
    let (rc, _, err) = curl(&["-T", &source, &url("sub/up.bin")]);
    let took = began.elapsed().as_secs_f64();
    assert_eq!(rc, 0, "{err}");
    assert!(std::fs::read(s.dir.join("root/sub/up.bin")).unwrap() == big);
    assert!((2.0..10.0).contains(&took), "a 3 MB upload at 1 MB/s took {took:.2} s");
    // Three at once: 9 MB at 3 MB/s in all (each shard 1.5 MB/s, each transfer 1 MB/s), at
    // least two seconds.
    let began = std::time::Instant::now();
    let all: Vec<_> = (0..3)
        .map(|_| {
            let u = url("big.bin");
            std::thread::spawn(move || curl(&[&u]))
        })
        .collect();
    for t in all {
        let (rc, out, err) = t.join().unwrap();
        assert!(rc == 0 && out.len() == big.len(), "{err}");
    }
    let took = began.elapsed().as_secs_f64();
    assert!((2.0..15.0).contains(&took), "9 MB at 3 MB/s in all took {took:.2} s");
}

#[test]
fn quotas() {
    let s = serve("quota", 0);
    let url = |p: &str| format!("ftp://limited:secret@{}/{p}", s.addr);
    let q = s.dir.join("root/q");
    let file = |name: &str, size: usize| {
        let path = s.dir.join(name);
        std::fs::write(&path, vec![7u8; size]).unwrap();
        path.to_string_lossy().into_owned()
    };
    let stored =
        || -> u64 { std::fs::read_dir(&q).unwrap().map(|e| e.unwrap().metadata().unwrap().len()).sum() };
    // 100,000 bytes were there before the server started; 600,000 more fit in 1 MiB.
    let (rc, _, err) = curl(&["-T", &file("six", 600_000), &url("a.bin")]);
    assert_eq!(rc, 0, "{err}");
    // 600,000 more do not: 552 (curl's 70, "Exceeded storage allocation"), and the new file
    // is gone.
    let (rc, _, err) = curl(&["-T", &file("six", 600_000), &url("b.bin")]);
    assert_eq!(rc, 70, "over quota: {err}");
    assert!(!q.join("b.bin").exists(), "an upload over quota is removed");
    // Nor appended: the file keeps what it had.
    let (rc, _, err) = curl(&["--append", "-T", &file("six", 600_000), &url("a.bin")]);
    assert_eq!(rc, 70, "append over quota: {err}");
    assert_eq!(std::fs::metadata(q.join("a.bin")).unwrap().len(), 600_000, "nothing it held is lost");
    // Two at once, on whichever shards: together they cannot pass the limit.
    let both: Vec<_> = ["c.bin", "d.bin"]
        .into_iter()
        .map(|name| {
            let (source, target) = (file(name, 200_000), url(name));
            std::thread::spawn(move || curl(&["-T", &source, &target]).0)
        })
        .collect();
    let ok = both.into_iter().map(|t| t.join().unwrap()).filter(|rc| *rc == 0).count();
    assert_eq!(ok, 1, "one of the two fits (700,000 + 2 x 200,000 > 1 MiB)");
    assert!(stored() <= 1 << 20, "{} bytes stored under a 1 MiB quota", stored());
    // Deleting frees room; overwriting a file counts its new size only.
    // ("*": curl goes on when one of c.bin and d.bin is not there.)
    let (rc, _, err) = curl(&["-Q", "DELE a.bin", "-Q", "*DELE c.bin", "-Q", "*DELE d.bin", &url("")]);
    assert_eq!(rc, 0, "{err}");
    for _ in 0..3 {
        let (rc, _, err) = curl(&["-T", &file("nine", 900_000), &url("a.bin")]);
        assert_eq!(rc, 0, "{err}");
    }
    assert_eq!(stored(), 1_000_000);
    // The other users have no quota.
    let (rc, _, err) =
        curl(&["-T", &file("two", 2_000_000), &format!("ftp://alice:secret@{}/two.bin", s.addr)]);
    assert_eq!(rc, 0, "{err}");
}

/// A tmpfs of `size` mounted at `dir`, unmounted on drop.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &std::path::Path, size: &str) -> Tmpfs {
        std::fs::create_dir_all(dir).unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .status();
        assert!(
            status.is_ok_and(|s| s.success()),
            "mounting a tmpfs needs root (the test suite runs as root)"
        );
        Tmpfs(dir.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn a_full_disk_is_552_and_the_server_goes_on() {
    let s = serve("full", 3_000_000);
    let _disk = Tmpfs::mount(&s.dir.join("root/full"), "1m");
    let url = |p: &str| format!("ftp://alice:secret@{}/{p}", s.addr);
    let big = s.dir.join("root/big.bin").to_string_lossy().into_owned();
    let (rc, _, err) = curl(&["-T", &big, &url("full/big.bin")]);
    assert_eq!(rc, 70, "a 3 MB upload to a 1 MiB disk: {err}");
    // What fitted is kept (a client may look and decide); the server serves on.
    let (rc, _, err) = curl(&["-Q", "DELE full/big.bin", "-T", &big, &url("copy.bin")]);
    assert_eq!(rc, 0, "{err}");
    let (rc, out, err) = curl(&[&url("copy.bin")]);
    assert!(rc == 0 && out.len() == 3_000_000, "{err}");
}

/// `zero conformance ftp` against `zero ftp serve` offering FTPS: every check, the FTPS ones
/// included, passes.
#[test]
fn zero_conformance_ftp_with_ftps() {
    let dir = std::env::temp_dir().join(format!("zero-ftp-conf-certs-{}", std::process::id()));
    let (cert, key) = certificate(&dir);
    let (cert_s, key_s) = (cert.to_string_lossy().into_owned(), key.to_string_lossy().into_owned());
    let s = serve_with("conformance", 20_000_000, &["--tls-cert", &cert_s, "--tls-key", &key_s]);
    let local = s.dir.join("root/a.txt").to_string_lossy().into_owned();
    let target = s.addr.to_string();
    let (rc, out, err) = zero(
        &[
            "conformance",
            "ftp",
            "--target",
            &target,
            "--user",
            "alice",
            "--password",
            "secret",
            "--file",
            "a.txt",
            "--local",
            &local,
            "--big",
            "big.bin",
            "--dir",
            "sub",
            "--tls-name",
            "localhost",
            "--tls-ca",
            &cert_s,
        ],
        &s.dir,
    );
    assert!(rc == 0 && out.contains("33 checks, 33 passed"), "{out}{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
