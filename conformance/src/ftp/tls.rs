//! The FTPS checks (RFC 4217, RFC 2228): `AUTH TLS`, `PBSZ`/`PROT`, data connections under
//! TLS that resume the control connection's session, and uploads that must end with
//! close_notify. They run when the suite is given TLS settings (`Ctx::tls`).

use std::io::Write;
use std::net::{Shutdown, TcpStream};
use std::sync::Arc;

use zero_core::rustls::client::Resumption;
use zero_core::rustls::{ClientConfig, HandshakeKind};

use super::checks::{expect, log_in};
use super::raw::{one_line, read_tls, Conn, Tls, WAIT};
use super::Ctx;

type Check = crate::Check<Ctx>;

type R = Result<(), String>;

/// The TLS settings, or why the check cannot run.
fn settings(cx: &Ctx) -> Result<(Arc<ClientConfig>, String), String> {
    cx.tls.clone().ok_or_else(|| "no TLS settings for this target (--tls-ca, --tls-name)".into())
}

/// A control connection through `AUTH TLS` and its handshake, not logged in.
fn secured(cx: &Ctx) -> Result<(Conn, Arc<ClientConfig>, String), String> {
    let (config, name) = settings(cx)?;
    let (mut c, greeting) = Conn::open(cx.target)?;
    expect(&greeting, &[220], "greeting")?;
    expect(&c.cmd("AUTH TLS")?, &[234], "AUTH TLS")?;
    c.handshake(config.clone(), &name)?;
    Ok((c, config, name))
}

/// A session logged in under TLS, with `PBSZ 0` and `PROT P`.
fn private(cx: &Ctx) -> Result<(Conn, Arc<ClientConfig>, String), String> {
    let (mut c, config, name) = secured(cx)?;
    log_in(&mut c, cx)?;
    expect(&c.cmd("PBSZ 0")?, &[200], "PBSZ 0")?;
    expect(&c.cmd("PROT P")?, &[200], "PROT P")?;
    Ok((c, config, name))
}

/// Opens a passive data connection and sends `command`; after the server's `1xx`, the data
/// connection's TLS handshake (RFC 4217 7: the client begins it; vsftpd and pyftpdlib wait
/// for the command first). With the control connection's `config` it resumes that session
/// (rustls keeps the tickets).
fn open_data(c: &mut Conn, command: &str, config: Arc<ClientConfig>, name: &str) -> Result<Tls, String> {
    c.cmd("TYPE I")?;
    let addr = c.pasv()?;
    let tcp = TcpStream::connect_timeout(&addr, WAIT).map_err(|e| format!("data connection: {e}"))?;
    tcp.set_read_timeout(Some(WAIT)).map_err(|e| e.to_string())?;
    expect(&c.cmd(command)?, &[125, 150], command)?;
    crate::tls_handshake(tcp, config, name).map_err(|e| format!("the data connection's {e}"))
}

/// Closes a data connection as a client does once the server's close_notify came: its own,
/// then the TCP close (vsftpd waits for them before `226`).
fn close(mut data: Tls) {
    data.conn.send_close_notify();
    let _ = data.flush();
}

/// A download under `PROT P`: its bytes, whether it ended with close_notify, whether its TLS
/// resumed the control connection's session, and the final reply.
fn fetch(cx: &Ctx) -> Result<(Vec<u8>, bool, bool), String> {
    let (mut c, config, name) = private(cx)?;
    let mut data = open_data(&mut c, &format!("RETR {}", cx.file.0), config, &name)?;
    let resumed = data.conn.handshake_kind() == Some(HandshakeKind::Resumed);
    let (bytes, notified) = read_tls(&mut data)?;
    close(data);
    expect(&c.reply()?, &[226, 250], "after RETR")?;
    Ok((bytes, notified, resumed))
}

fn auth_tls(cx: &Ctx) -> R {
    let (mut c, ..) = secured(cx)?;
    log_in(&mut c, cx)?;
    expect(&c.cmd("PWD")?, &[257], "PWD under TLS")
}

/// CVE-2011-0411: a command sent in plain right behind `AUTH TLS` must not be run as if it
/// came under TLS.
fn auth_injection(cx: &Ctx) -> R {
    let (config, name) = settings(cx)?;
    let (mut c, _) = Conn::open(cx.target)?;
    c.send_raw(b"AUTH TLS\r\nFEAT\r\n")?;
    expect(&c.reply()?, &[234], "AUTH TLS")?;
    if c.handshake(config, &name).is_err() {
        return Ok(()); // the plaintext spoilt the handshake: nothing was run
    }
    let r = c.cmd("NOOP")?;
    if r.code != 200 {
        return Err(format!("the FEAT sent in plain before the handshake was answered: {}", one_line(&r)));
    }
    Ok(())
}

fn pbsz_prot(cx: &Ctx) -> R {
    let (mut c, ..) = secured(cx)?;
    log_in(&mut c, cx)?;
    expect(&c.cmd("PROT P")?, &[503], "PROT before PBSZ")?;
    expect(&c.cmd("PBSZ 0")?, &[200], "PBSZ 0")?;
    expect(&c.cmd("PROT P")?, &[200], "PROT P")?;
    expect(&c.cmd("PROT S")?, &[504, 534, 536], "PROT S (no integrity-only level under TLS)")?;
    expect(&c.cmd("PROT X")?, &[501, 504, 536], "PROT X")
}

fn prot_p_retr(cx: &Ctx) -> R {
    let (bytes, notified, _) = fetch(cx)?;
    if bytes != cx.file.1 {
        return Err(format!(
            "RETR under PROT P gave {} bytes, not the file's {}",
            bytes.len(),
            cx.file.1.len()
        ));
    }
    if !notified {
        return Err("the download ended without close_notify: a truncation looks the same".into());
    }
    Ok(())
}

fn data_resumes(cx: &Ctx) -> R {
    for n in 1..=3 {
        let (_, _, resumed) = fetch(cx)?;
        if !resumed {
            return Err(format!("data connection {n}'s TLS did not resume the control connection's session"));
        }
    }
    Ok(())
}

/// RFC 4217 10.2: a data connection whose TLS is a new session may be anyone's who learnt the
/// port; the transfer must not go to it.
fn reuse_required(cx: &Ctx) -> R {
    let (mut c, config, name) = private(cx)?;
    let mut fresh = (*config).clone();
    fresh.resumption = Resumption::disabled();
    let data = open_data(&mut c, &format!("RETR {}", cx.file.0), Arc::new(fresh), &name);
    let got = match data {
        Ok(mut tls) => {
            let got = read_tls(&mut tls).map(|(bytes, _)| bytes.len()).unwrap_or(0);
            close(tls);
            got
        }
        Err(_) => 0,
    };
    let r = c.reply()?;
    if got > 0 || r.code == 226 {
        return Err(format!(
            "a data connection in a new TLS session was served ({got} bytes, {})",
            one_line(&r)
        ));
    }
    Ok(())
}

/// An upload under `PROT P`: `bytes`, then close_notify if `notify`, then the TCP close; the
/// final reply.
fn upload(
    cx: &Ctx,
    name: &str,
    bytes: &[u8],
    notify: bool,
) -> Result<(Conn, zero_ftp::codec::Reply), String> {
    let (mut c, config, server) = private(cx)?;
    let mut data = open_data(&mut c, &format!("STOR {name}"), config, &server)?;
    data.write_all(bytes).map_err(|e| format!("writing the data: {e}"))?;
    if notify {
        data.conn.send_close_notify();
    }
    data.flush().map_err(|e| format!("writing the data: {e}"))?;
    let _ = data.sock.shutdown(Shutdown::Write);
    let _ = read_tls(&mut data);
    drop(data);
    let r = c.reply()?;
    Ok((c, r))
}

fn prot_p_stor(cx: &Ctx) -> R {
    if !cx.writable {
        return Err("the user may not write (run with a writable account)".into());
    }
    let name = format!("{}/zero-conformance-tls-{}.bin", cx.dir, std::process::id());
    let (mut c, r) = upload(cx, &name, &cx.file.1, true)?;
    expect(&r, &[226, 250], "after STOR under PROT P")?;
    let size = c.cmd(&format!("SIZE {name}"))?;
    let _ = c.cmd(&format!("DELE {name}"));
    if size.code != 213 || size.text().trim() != cx.file.1.len().to_string() {
        return Err(format!("SIZE after STOR under PROT P: {}", one_line(&size)));
    }
    Ok(())
}

/// Truncation (RFC 5246 7.2.1, closure alerts): an upload whose TLS ends without
/// close_notify may have been cut short by an attacker; it must not be reported complete.
fn stor_truncated(cx: &Ctx) -> R {
    if !cx.writable {
        return Err("the user may not write (run with a writable account)".into());
    }
    let name = format!("{}/zero-conformance-cut-{}.bin", cx.dir, std::process::id());
    let (mut c, r) = upload(cx, &name, &cx.file.1, false)?;
    let _ = c.cmd(&format!("DELE {name}"));
    if r.code == 226 || r.code == 250 {
        return Err(format!("an upload without close_notify was taken as complete: {}", one_line(&r)));
    }
    Ok(())
}

/// The FTPS checks, in order.
pub const CHECKS: &[Check] = &[
    Check { name: "auth-tls", rule: "RFC 4217 4: AUTH TLS, 234, login", run: auth_tls },
    Check { name: "auth-injection", rule: "CVE-2011-0411: no plaintext after 234", run: auth_injection },
    Check { name: "pbsz-prot", rule: "RFC 4217 9, RFC 2228: PBSZ before PROT", run: pbsz_prot },
    Check { name: "prot-p-retr", rule: "RFC 4217 9, RFC 5246 7.2.1: RETR", run: prot_p_retr },
    Check { name: "data-resumes", rule: "RFC 4217 10.2: data resumes session", run: data_resumes },
    Check { name: "reuse-required", rule: "RFC 4217 10.2: no new session on data", run: reuse_required },
    Check { name: "prot-p-stor", rule: "RFC 4217 9: STOR under PROT P", run: prot_p_stor },
    Check { name: "stor-truncated", rule: "RFC 5246 7.2.1: no close_notify, no 226", run: stor_truncated },
];
