//! The checks, each naming the statement it holds the server to.

use std::io::Read;
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use super::raw::{one_line, Conn, WAIT};
use super::Ctx;
use zero_ftp::codec::Reply;

type Check = crate::Check<Ctx>;

type R = Result<(), String>;

/// `reply` has one of `codes`, or an error naming `what`.
pub(super) fn expect(reply: &Reply, codes: &[u16], what: &str) -> R {
    if codes.contains(&reply.code) {
        Ok(())
    } else {
        Err(format!("{what}: {} (expected {codes:?})", one_line(reply)))
    }
}

/// A logged-in session.
fn session(cx: &Ctx) -> Result<Conn, String> {
    let (mut c, greeting) = Conn::open(cx.target)?;
    expect(&greeting, &[220], "greeting")?;
    log_in(&mut c, cx)?;
    Ok(c)
}

/// `USER` and `PASS`.
pub(super) fn log_in(c: &mut Conn, cx: &Ctx) -> R {
    let r = c.cmd(&format!("USER {}", cx.user))?;
    expect(&r, &[331, 230], "USER")?;
    if r.code == 331 {
        expect(&c.cmd(&format!("PASS {}", cx.password))?, &[230, 202], "PASS")?;
    }
    Ok(())
}

fn greeting(cx: &Ctx) -> R {
    let (_, r) = Conn::open(cx.target)?;
    expect(&r, &[220], "greeting")
}

fn login(cx: &Ctx) -> R {
    session(cx).map(|_| ())
}

fn login_wrong(cx: &Ctx) -> R {
    let (mut c, _) = Conn::open(cx.target)?;
    // Refused at USER (an anonymous-only server) or at PASS.
    if c.cmd("USER no-such-user-zero")?.code == 530 {
        return Ok(());
    }
    expect(&c.cmd("PASS wrong")?, &[530], "PASS for an unknown user")
}

fn before_login(cx: &Ctx) -> R {
    let (mut c, _) = Conn::open(cx.target)?;
    expect(&c.cmd("PWD")?, &[530], "PWD before login")?;
    expect(&c.cmd(&format!("RETR {}", cx.file.0))?, &[530], "RETR before login")
}

fn cwd_pwd(cx: &Ctx) -> R {
    let mut c = session(cx)?;
    expect(&c.cmd(&format!("CWD {}", cx.dir))?, &[250], "CWD")?;
    let r = c.cmd("PWD")?;
    expect(&r, &[257], "PWD")?;
    if !r.text().contains(&format!("/{}\"", cx.dir)) {
        return Err(format!("PWD does not name the directory: {}", one_line(&r)));
    }
    expect(&c.cmd("CDUP")?, &[200, 250], "CDUP")
}

fn dotdot_stays_in_root(cx: &Ctx) -> R {
    let mut c = session(cx)?;
    let _ = c.cmd("CWD ../../../../..")?;
    let r = c.cmd("PWD")?;
    if !r.text().starts_with("\"/\"") {
        return Err(format!("after CWD ../../..: {}", one_line(&r)));
    }
    // The root's own listing, not the system's.
    let (listing, _) = c.fetch("NLST")?;
    let text = String::from_utf8_lossy(&listing);
    if text.lines().any(|l| l.trim_end() == "etc" || l.trim_end() == "/etc") && !text.contains(&cx.file.0) {
        return Err("the listing after CWD ../.. is the system's root".into());
    }
    Ok(())
}

fn retr_escape(cx: &Ctx) -> R {
    let mut c = session(cx)?;
    for path in ["../../../../../../etc/passwd", "/../../etc/passwd", "..\\..\\..\\etc\\passwd"] {
        if let Ok((bytes, r)) = c.fetch(&format!("RETR {path}")) {
            if String::from_utf8_lossy(&bytes).contains("root:") {
                return Err(format!("RETR {path} gave the system's password file ({})", one_line(&r)));
            }
        }
    }
    Ok(())
}

fn port_bounce(cx: &Ctx) -> R {
    let mut c = session(cx)?;
    let r = c.cmd("PORT 10,1,2,3,31,144")?;
    if r.code < 400 {
        return Err(format!("PORT to another host was taken: {}", one_line(&r)));
    }
    Ok(())
}

fn port_privileged(cx: &Ctx) -> R {
    let mut c = session(cx)?;
    let ip = match cx.target.ip() {
        std::net::IpAddr::V4(v4) => v4.octets(),
        std::net::IpAddr::V6(_) => return Err("an IPv4 target is needed".into()),
    };
    let r = c.cmd(&format!("PORT {},{},{},{},0,25", ip[0], ip[1], ip[2], ip[3]))?;
    if r.code < 400 {
        return Err(format!("PORT to port 25 was taken: {}", one_line(&r)));
    }
    Ok(())
}

fn eprt_bounce(cx: &Ctx) -> R {
    let mut c = session(cx)?;
    let r = c.cmd("EPRT |1|10.1.2.3|8080|")?;
    if r.code < 400 {
        return Err(format!("EPRT to another host was taken: {}", one_line(&r)));
    }
    Ok(())
}

fn pasv_theft(cx: &Ctx) -> R {
    let thief_ip = cx.thief.ok_or("no second local address for the thief (--thief)")?;
    let mut c = session(cx)?;
    c.cmd("TYPE I")?;
    let addr = c.pasv()?;
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)
        .map_err(|e| e.to_string())?;
    sock.bind(&SocketAddr::new(thief_ip, 0).into()).map_err(|e| format!("bind {thief_ip}: {e}"))?;
    sock.connect_timeout(&addr.into(), WAIT).map_err(|e| format!("the thief's connect: {e}"))?;
    let mut thief: TcpStream = sock.into();
    thief.set_read_timeout(Some(Duration::from_secs(1))).map_err(|e| e.to_string())?;
    std::thread::sleep(Duration::from_millis(200));
    c.send(&format!("RETR {}", cx.file.0))?;
    let mut stolen = Vec::new();
    let _ = thief.read_to_end(&mut stolen);
    if !stolen.is_empty() {
        return Err(format!("a connection from {thief_ip} got {} bytes of the file", stolen.len()));
    }
    Ok(())
}

fn retr(cx: &Ctx) -> R {
    let mut c = session(cx)?;
    let (bytes, r) = c.fetch(&format!("RETR {}", cx.file.0))?;
    expect(&r, &[226, 250], "after RETR")?;
    if bytes != cx.file.1 {
        return Err(format!("RETR gave {} bytes, not the file's {}", bytes.len(), cx.file.1.len()));
    }
    Ok(())
}

fn rest_retr(cx: &Ctx) -> R {
    let mut c = session(cx)?;
    c.cmd("TYPE I")?;
    let addr = c.pasv()?;
    let mut data = TcpStream::connect_timeout(&addr, WAIT).map_err(|e| e.to_string())?;
    data.set_read_timeout(Some(WAIT)).map_err(|e| e.to_string())?;
    expect(&c.cmd("REST 2")?, &[350], "REST 2")?;
    let first = c.cmd(&format!("RETR {}", cx.file.0))?;
    expect(&first, &[125, 150], "RETR after REST")?;
    let mut bytes = Vec::new();
    data.read_to_end(&mut bytes).map_err(|e| e.to_string())?;
    expect(&c.reply()?, &[226, 250], "after RETR")?;
    if bytes != cx.file.1[2..] {
        return Err(format!("RETR after REST 2 gave {:?}", String::from_utf8_lossy(&bytes)));
    }
    Ok(())
}

fn size(cx: &Ctx) -> R {
    let mut c = session(cx)?;
    c.cmd("TYPE I")?;
    let r = c.cmd(&format!("SIZE {}", cx.file.0))?;
    expect(&r, &[213], "SIZE")?;
    if r.text().trim() != cx.file.1.len().to_string() {
        return Err(format!("SIZE: {} (the file has {})", one_line(&r), cx.file.1.len()));
    }
    Ok(())
}

fn mdtm(cx: &Ctx) -> R {
    let mut c = session(cx)?;
    let r = c.cmd(&format!("MDTM {}", cx.file.0))?;
    expect(&r, &[213], "MDTM")?;
    if zero_ftp::codec::list::parse_timeval(r.text().trim()).is_none() {
        return Err(format!("MDTM is not YYYYMMDDHHMMSS: {}", one_line(&r)));
    }
    Ok(())
}

fn mlsd(cx: &Ctx) -> R {
    let mut c = session(cx)?;
    let (bytes, r) = c.fetch("MLSD")?;
    expect(&r, &[226, 250], "after MLSD")?;
    let text = String::from_utf8_lossy(&bytes);
    let entry = text
        .lines()
        .filter_map(zero_ftp::codec::list::parse_mlsx)
        .find(|e| e.name == cx.file.0)
        .ok_or_else(|| format!("MLSD does not list {}: {text:?}", cx.file.0))?;
    if entry.size != cx.file.1.len() as u64 || entry.kind != zero_ftp::codec::list::Kind::File {
        return Err(format!("MLSD's facts for {}: {entry:?}", cx.file.0));
    }
    Ok(())
}

fn mlst(cx: &Ctx) -> R {
    let mut c = session(cx)?;
    let r = c.cmd(&format!("MLST {}", cx.file.0))?;
    expect(&r, &[250], "MLST")?;
    if r.lines.len() < 3 || !r.lines[1].to_ascii_lowercase().contains("type=file") {
        return Err(format!("MLST: {}", one_line(&r)));
    }
    Ok(())
}

fn feat(cx: &Ctx) -> R {
    let mut c = session(cx)?;
    let r = c.cmd("FEAT")?;
    expect(&r, &[211], "FEAT")?;
    for f in ["EPSV", "MDTM", "SIZE", "REST STREAM", "MLST"] {
        if !r.lines.iter().any(|l| l.trim().to_ascii_uppercase().starts_with(f)) {
            return Err(format!("FEAT does not list {f}: {}", one_line(&r)));
        }
    }
    Ok(())
}

fn epsv(cx: &Ctx) -> R {
    let mut c = session(cx)?;
    c.cmd("TYPE I")?;
    let addr = c.epsv()?;
    let mut data = TcpStream::connect_timeout(&addr, WAIT).map_err(|e| e.to_string())?;
    data.set_read_timeout(Some(WAIT)).map_err(|e| e.to_string())?;
    expect(&c.cmd(&format!("RETR {}", cx.file.0))?, &[125, 150], "RETR")?;
    let mut bytes = Vec::new();
    data.read_to_end(&mut bytes).map_err(|e| e.to_string())?;
    expect(&c.reply()?, &[226, 250], "after RETR")?;
    if bytes != cx.file.1 {
        return Err("the file differs over EPSV".into());
    }
    Ok(())
}

fn abor(cx: &Ctx) -> R {
    let mut c = session(cx)?;
    c.cmd("TYPE I")?;
    let addr = c.pasv()?;
    let mut data = TcpStream::connect_timeout(&addr, WAIT).map_err(|e| e.to_string())?;
    data.set_read_timeout(Some(WAIT)).map_err(|e| e.to_string())?;
    expect(&c.cmd(&format!("RETR {}", cx.big))?, &[125, 150], "RETR")?;
    let mut some = [0u8; 4096];
    data.read_exact(&mut some).map_err(|e| format!("reading the start: {e}"))?;
    c.abort()?;
    // As ftp(1) does: the data connection is closed too (a server blocked writing to it, as
    // vsftpd in sendfile, notices the abort then).
    drop(data);
    let first = c.reply()?;
    // RFC 959 4.1.3: 426 for the broken transfer, then 226; or 226 alone if it was done.
    match first.code {
        426 => expect(&c.reply()?, &[226, 225], "after 426")?,
        225 | 226 => {}
        _ => return Err(format!("ABOR: {}", one_line(&first))),
    }
    expect(&c.cmd("NOOP")?, &[200], "NOOP after ABOR")
}

fn stor_dele(cx: &Ctx) -> R {
    if !cx.writable {
        return Err("the user may not write (run with a writable account)".into());
    }
    let mut c = session(cx)?;
    let name = format!("{}/zero-conformance-{}.bin", cx.dir, std::process::id());
    expect(&c.upload(&format!("STOR {name}"), b"0123456789")?, &[226, 250], "after STOR")?;
    expect(&c.upload(&format!("APPE {name}"), b"AB")?, &[226, 250], "after APPE")?;
    let r = c.cmd(&format!("SIZE {name}"))?;
    if r.code != 213 || r.text().trim() != "12" {
        return Err(format!("SIZE after STOR and APPE: {}", one_line(&r)));
    }
    expect(&c.cmd(&format!("DELE {name}"))?, &[250], "DELE")?;
    expect(&c.cmd(&format!("SIZE {name}"))?, &[550], "SIZE of a deleted file")
}

fn mkd_rnfr_rmd(cx: &Ctx) -> R {
    if !cx.writable {
        return Err("the user may not write (run with a writable account)".into());
    }
    let mut c = session(cx)?;
    let pid = std::process::id();
    let (a, b) = (format!("{}/zero-conf-a-{pid}", cx.dir), format!("{}/zero-conf-b-{pid}", cx.dir));
    expect(&c.cmd(&format!("MKD {a}"))?, &[257], "MKD")?;
    expect(&c.cmd(&format!("RNFR {a}"))?, &[350], "RNFR")?;
    expect(&c.cmd(&format!("RNTO {b}"))?, &[250], "RNTO")?;
    expect(&c.cmd(&format!("CWD /{b}"))?, &[250], "CWD into the renamed directory")?;
    c.cmd("CWD /")?;
    expect(&c.cmd(&format!("RMD {b}"))?, &[250], "RMD")
}

fn rnto_alone(cx: &Ctx) -> R {
    let mut c = session(cx)?;
    expect(&c.cmd("RNTO somewhere")?, &[503], "RNTO without RNFR")
}

fn unknown_command(cx: &Ctx) -> R {
    let mut c = session(cx)?;
    expect(&c.cmd("XYZZY plugh")?, &[500, 502], "an unknown command")
}

fn noop_syst_quit(cx: &Ctx) -> R {
    let mut c = session(cx)?;
    expect(&c.cmd("NOOP")?, &[200], "NOOP")?;
    expect(&c.cmd("SYST")?, &[215], "SYST")?;
    expect(&c.cmd("QUIT")?, &[221], "QUIT")
}

/// Every check, in order.
pub const CHECKS: &[Check] = &[
    Check { name: "greeting", rule: "RFC 959 5.4: 220 on connection", run: greeting },
    Check { name: "login", rule: "RFC 959 4.1.1: USER, PASS, 230", run: login },
    Check { name: "login-wrong", rule: "RFC 959 5.4: 530 for a bad login", run: login_wrong },
    Check { name: "before-login", rule: "RFC 959 5.4: 530 before login", run: before_login },
    Check { name: "cwd-pwd", rule: "RFC 959 4.1.1, appendix II: CWD, PWD 257", run: cwd_pwd },
    Check { name: "dotdot-root", rule: "RFC 2577 4: .. stays in the root", run: dotdot_stays_in_root },
    Check { name: "retr-escape", rule: "RFC 2577 4: no file outside the root", run: retr_escape },
    Check { name: "port-bounce", rule: "RFC 2577 3: no PORT to another host", run: port_bounce },
    Check { name: "port-privileged", rule: "RFC 2577 3: no PORT below 1024", run: port_privileged },
    Check { name: "eprt-bounce", rule: "RFC 2428 2, 2577 3: no EPRT elsewhere", run: eprt_bounce },
    Check { name: "pasv-theft", rule: "RFC 2577 5: data only to the client", run: pasv_theft },
    Check { name: "retr", rule: "RFC 959 4.1.3: RETR, 150 then 226", run: retr },
    Check { name: "rest-retr", rule: "RFC 3659 5: REST then RETR", run: rest_retr },
    Check { name: "size", rule: "RFC 3659 4: SIZE", run: size },
    Check { name: "mdtm", rule: "RFC 3659 3: MDTM is a timeval", run: mdtm },
    Check { name: "mlsd", rule: "RFC 3659 7: MLSD facts", run: mlsd },
    Check { name: "mlst", rule: "RFC 3659 7: MLST on the control link", run: mlst },
    Check { name: "feat", rule: "RFC 2389 3: FEAT lists the extensions", run: feat },
    Check { name: "epsv", rule: "RFC 2428 3: EPSV (|||port|)", run: epsv },
    Check { name: "abor", rule: "RFC 959 4.1.3: ABOR, 426 then 226", run: abor },
    Check { name: "stor-appe-dele", rule: "RFC 959 4.1.3: STOR, APPE, DELE", run: stor_dele },
    Check { name: "mkd-rnfr-rmd", rule: "RFC 959 4.1.3: MKD, RNFR/RNTO, RMD", run: mkd_rnfr_rmd },
    Check { name: "rnto-alone", rule: "RFC 959 5.4: 503 RNTO without RNFR", run: rnto_alone },
    Check { name: "unknown-command", rule: "RFC 959 5.4: 500/502 unknown", run: unknown_command },
    Check { name: "noop-syst-quit", rule: "RFC 959 4.1.3: NOOP, SYST, QUIT", run: noop_syst_quit },
];
