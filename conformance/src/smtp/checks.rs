//! The checks, each naming the statement it holds the server to.

use super::raw::{offers, one_line, Conn};
use super::Ctx;
use zero_smtp::codec::reply::Reply;

type Check = crate::Check<Ctx>;

type R = Result<(), String>;

fn expect(reply: &Reply, codes: &[u16], what: &str) -> R {
    if codes.contains(&reply.code) {
        Ok(())
    } else {
        Err(format!("{what}: {} (expected {codes:?})", one_line(reply)))
    }
}

/// A connection that said EHLO, and the capabilities.
fn session(cx: &Ctx) -> Result<(Conn, Vec<String>), String> {
    let (mut c, greeting) = Conn::open(cx.target)?;
    expect(&greeting, &[220], "greeting")?;
    let caps = c.ehlo()?;
    Ok((c, caps))
}

/// A session in a transaction: MAIL and one RCPT accepted.
fn transaction(cx: &Ctx) -> Result<(Conn, Vec<String>), String> {
    let (mut c, caps) = session(cx)?;
    expect(&c.cmd("MAIL FROM:<sender@client.zero.test>")?, &[250], "MAIL")?;
    expect(&c.cmd(&cx.rcpt("one"))?, &[250, 251], "RCPT")?;
    Ok((c, caps))
}

fn needs(caps: &[String], keyword: &str) -> R {
    if offers(caps, keyword) {
        Ok(())
    } else {
        Err(format!("{keyword} is not offered"))
    }
}

/// Says STARTTLS and completes the handshake, then EHLO again (the capabilities after TLS).
fn secure(cx: &Ctx, c: &mut Conn, caps: &[String]) -> Result<Vec<String>, String> {
    needs(caps, "STARTTLS")?;
    let (config, name) = cx.tls.clone().ok_or("no TLS settings for this target (--tls-ca, --tls-name)")?;
    expect(&c.cmd("STARTTLS")?, &[220], "STARTTLS")?;
    c.handshake(config, &name)?;
    c.ehlo()
}

fn greeting(cx: &Ctx) -> R {
    let (_, greeting) = Conn::open(cx.target)?;
    expect(&greeting, &[220], "greeting")
}

fn ehlo(cx: &Ctx) -> R {
    let (mut c, _) = Conn::open(cx.target)?;
    let reply = c.cmd("EHLO client.zero.test")?;
    expect(&reply, &[250], "EHLO")?;
    if reply.lines.len() < 2 {
        return Err("an EHLO reply with no extensions".into());
    }
    Ok(())
}

fn helo(cx: &Ctx) -> R {
    let (mut c, _) = Conn::open(cx.target)?;
    expect(&c.cmd("HELO client.zero.test")?, &[250], "HELO")?;
    expect(&c.cmd("MAIL FROM:<sender@client.zero.test>")?, &[250], "MAIL after HELO")
}

fn noop_rset(cx: &Ctx) -> R {
    let (mut c, _) = session(cx)?;
    expect(&c.cmd("NOOP")?, &[250], "NOOP")?;
    expect(&c.cmd("RSET")?, &[250], "RSET")
}

fn quit(cx: &Ctx) -> R {
    let (mut c, _) = session(cx)?;
    expect(&c.cmd("QUIT")?, &[221], "QUIT")?;
    c.closes()
}

fn vrfy(cx: &Ctx) -> R {
    let (mut c, _) = session(cx)?;
    let reply = c.cmd(&format!("VRFY postmaster@{}", cx.domain))?;
    // 4.5.1 and 3.5.3: 250/251/252 when it can say, 252 when it will not; 502 if off.
    expect(&reply, &[250, 251, 252, 502, 550, 551, 553], "VRFY")
}

fn unknown_command(cx: &Ctx) -> R {
    let (mut c, _) = session(cx)?;
    expect(&c.cmd("FROB now")?, &[500, 502], "an unknown command")?;
    expect(&c.cmd("NOOP")?, &[250], "NOOP after it")
}

fn rcpt_before_mail(cx: &Ctx) -> R {
    let (mut c, _) = session(cx)?;
    expect(&c.cmd(&cx.rcpt("early"))?, &[503], "RCPT before MAIL")
}

fn data_before_rcpt(cx: &Ctx) -> R {
    let (mut c, _) = session(cx)?;
    expect(&c.cmd("MAIL FROM:<sender@client.zero.test>")?, &[250], "MAIL")?;
    expect(&c.cmd("DATA")?, &[503, 554], "DATA without a recipient")
}

fn nested_mail(cx: &Ctx) -> R {
    let (mut c, _) = transaction(cx)?;
    expect(&c.cmd("MAIL FROM:<again@client.zero.test>")?, &[503], "a second MAIL")
}

fn rset_clears(cx: &Ctx) -> R {
    let (mut c, _) = transaction(cx)?;
    expect(&c.cmd("RSET")?, &[250], "RSET")?;
    expect(&c.cmd("DATA")?, &[503, 554], "DATA after RSET")
}

fn mail_syntax(cx: &Ctx) -> R {
    let (mut c, _) = session(cx)?;
    expect(&c.cmd("MAIL FROM:sender@client.zero.test>")?, &[501, 553, 555], "a broken reverse-path")?;
    expect(&c.cmd("MAIL FROM:<sender@client.zero.test>")?, &[250], "MAIL after it")
}

fn null_sender(cx: &Ctx) -> R {
    let (mut c, _) = session(cx)?;
    expect(&c.cmd("MAIL FROM:<>")?, &[250], "the null reverse-path")?;
    expect(&c.cmd(&cx.rcpt("bounce"))?, &[250, 251], "RCPT")
}

/// Sends a whole message (text with CRLF line ends, unstuffed) with DATA.
fn data(c: &mut Conn, text: &str) -> Result<Reply, String> {
    expect(&c.cmd("DATA")?, &[354], "DATA")?;
    let stuffed = text.replace("\r\n.", "\r\n..");
    c.send(format!("{stuffed}\r\n.\r\n").as_bytes())?;
    c.reply()
}

fn message(cx: &Ctx) -> R {
    let (mut c, _) = transaction(cx)?;
    let reply = data(&mut c, "Subject: conformance\r\n\r\nHello.\r\n.starts with a dot\r\n..two dots")?;
    expect(&reply, &[250], "end of data")?;
    expect(&c.cmd("QUIT")?, &[221], "QUIT")
}

fn text_line_1000(cx: &Ctx) -> R {
    let (mut c, _) = transaction(cx)?;
    let line = "x".repeat(998);
    expect(&data(&mut c, &format!("Subject: long line\r\n\r\n{line}"))?, &[250], "a 1000-octet text line")
}

/// 512 octets is what a client may send (4.5.3.1.4), so a server takes that; it may take
/// more (4.5.3.1), but a line of 10,000 must get its 500 without ending the session.
fn command_line_long(cx: &Ctx) -> R {
    let (mut c, _) = session(cx)?;
    expect(&c.cmd(&format!("NOOP {}", "x".repeat(505)))?, &[250], "a 512-octet command line")?;
    expect(&c.cmd(&format!("NOOP {}", "x".repeat(10_000)))?, &[500], "a 10,006-octet command line")?;
    expect(&c.cmd("NOOP")?, &[250], "NOOP after it")
}

fn recipients_100(cx: &Ctx) -> R {
    let (mut c, _) = session(cx)?;
    expect(&c.cmd("MAIL FROM:<sender@client.zero.test>")?, &[250], "MAIL")?;
    for n in 0..100 {
        expect(&c.cmd(&cx.rcpt(&format!("r{n}")))?, &[250, 251], &format!("recipient {}", n + 1))?;
    }
    expect(&data(&mut c, "Subject: 100 recipients\r\n\r\nHello.")?, &[250], "end of data")
}

fn pipelining(cx: &Ctx) -> R {
    let (mut c, caps) = session(cx)?;
    needs(&caps, "PIPELINING")?;
    let batch =
        format!("MAIL FROM:<sender@client.zero.test>\r\n{}\r\n{}\r\nDATA\r\n", cx.rcpt("p1"), cx.rcpt("p2"));
    c.send(batch.as_bytes())?;
    for (what, codes) in
        [("MAIL", &[250][..]), ("RCPT 1", &[250, 251]), ("RCPT 2", &[250, 251]), ("DATA", &[354])]
    {
        expect(&c.reply()?, codes, what)?;
    }
    c.send(b"Subject: pipelined\r\n\r\nHello.\r\n.\r\nQUIT\r\n")?;
    expect(&c.reply()?, &[250], "end of data")?;
    expect(&c.reply()?, &[221], "QUIT")
}

fn size(cx: &Ctx) -> R {
    let (mut c, caps) = session(cx)?;
    needs(&caps, "SIZE")?;
    let limit: u64 = caps
        .iter()
        .find_map(|c| c.strip_prefix("SIZE ").and_then(|n| n.trim().parse().ok()))
        .ok_or("SIZE without a limit")?;
    if limit == 0 {
        return Err("SIZE 0: no limit to check".into());
    }
    expect(
        &c.cmd(&format!("MAIL FROM:<sender@client.zero.test> SIZE={}", limit + 1))?,
        &[552],
        "MAIL over SIZE",
    )
}

fn eight_bit(cx: &Ctx) -> R {
    let (mut c, caps) = session(cx)?;
    needs(&caps, "8BITMIME")?;
    expect(&c.cmd("MAIL FROM:<sender@client.zero.test> BODY=8BITMIME")?, &[250], "BODY=8BITMIME")?;
    expect(&c.cmd(&cx.rcpt("eight"))?, &[250, 251], "RCPT")?;
    expect(&data(&mut c, "Subject: 8bit\r\n\r\nGr\u{fc}\u{df}e")?, &[250], "8-bit text")
}

fn smtputf8(cx: &Ctx) -> R {
    let (mut c, caps) = session(cx)?;
    needs(&caps, "SMTPUTF8")?;
    expect(&c.cmd("MAIL FROM:<j\u{f8}e@client.zero.test> SMTPUTF8")?, &[250], "a UTF-8 reverse-path")
}

fn bdat(cx: &Ctx) -> R {
    let (mut c, caps) = transaction(cx)?;
    needs(&caps, "CHUNKING")?;
    let first = "Subject: chunks\r\n\r\nHel";
    c.send(format!("BDAT {}\r\n{first}", first.len()).as_bytes())?;
    expect(&c.reply()?, &[250], "BDAT")?;
    c.send(b"BDAT 4 LAST\r\nlo\r\n")?;
    expect(&c.reply()?, &[250], "BDAT LAST")
}

fn bdat_then_data(cx: &Ctx) -> R {
    let (mut c, caps) = transaction(cx)?;
    needs(&caps, "CHUNKING")?;
    c.send(b"BDAT 5\r\nHello")?;
    expect(&c.reply()?, &[250], "BDAT")?;
    expect(&c.cmd("DATA")?, &[503], "DATA after BDAT")
}

/// A message whose text holds `hidden` and then a whole second transaction: the server
/// must end the data only at the real CRLF.CRLF (it may refuse the message), so the
/// smuggled commands are never run. RFC 5321 2.3.8, 4.1.1.4; CVE-2023-51764/5/6.
fn smuggle(cx: &Ctx, hidden: &[u8]) -> R {
    let (mut c, _) = transaction(cx)?;
    expect(&c.cmd("DATA")?, &[354], "DATA")?;
    let mut text = b"Subject: smuggling\r\n\r\nfirst".to_vec();
    text.extend_from_slice(hidden);
    text.extend_from_slice(
        format!(
            "MAIL FROM:<smuggled@client.zero.test>\r\n{}\r\nDATA\r\nSubject: smuggled\r\n\r\nsecond\r\n.\r\n",
            cx.rcpt("smuggled")
        )
        .as_bytes(),
    );
    c.send(&text)?;
    let end = c.reply()?;
    if end.code >= 500 {
        return Ok(()); // refused (bare line endings): nothing was smuggled
    }
    expect(&end, &[250], "end of data")?;
    c.send(b"QUIT\r\n")?;
    match c.reply() {
        Ok(r) if r.code == 221 => Ok(()),
        Ok(r) => Err(format!("the smuggled commands were run: the reply to QUIT was {}", one_line(&r))),
        Err(e) => Err(e),
    }
}

fn starttls(cx: &Ctx) -> R {
    let (mut c, caps) = session(cx)?;
    let caps = secure(cx, &mut c, &caps)?;
    if offers(&caps, "STARTTLS") {
        return Err("STARTTLS is still offered over TLS".into());
    }
    expect(&c.cmd("MAIL FROM:<sender@client.zero.test>")?, &[250], "MAIL over TLS")?;
    expect(&c.cmd(&cx.rcpt("tls"))?, &[250, 251], "RCPT")?;
    expect(&data(&mut c, "Subject: over TLS\r\n\r\nHello.")?, &[250], "end of data")
}

/// RFC 3207 4.2 and 5; CVE-2011-0411: what came after STARTTLS in the same packet is
/// discarded, and the session starts over (EHLO needed again).
fn starttls_injection(cx: &Ctx) -> R {
    let (mut c, caps) = session(cx)?;
    needs(&caps, "STARTTLS")?;
    let (config, name) = cx.tls.clone().ok_or("no TLS settings for this target")?;
    c.send(b"STARTTLS\r\nNOOP\r\n")?;
    expect(&c.reply()?, &[220], "STARTTLS")?;
    if !c.unread().is_empty() {
        return Err(format!(
            "it answered the injected command in plaintext: {:?}",
            String::from_utf8_lossy(c.unread())
        ));
    }
    c.handshake(config, &name)?;
    let reply = c.cmd("EHLO client.zero.test")?;
    if reply.code != 250 || reply.lines.len() < 2 {
        return Err(format!("the first reply over TLS was {} (the injected NOOP's?)", one_line(&reply)));
    }
    Ok(())
}

fn starttls_resets(cx: &Ctx) -> R {
    let (mut c, caps) = session(cx)?;
    needs(&caps, "STARTTLS")?;
    let (config, name) = cx.tls.clone().ok_or("no TLS settings for this target")?;
    expect(&c.cmd("STARTTLS")?, &[220], "STARTTLS")?;
    c.handshake(config, &name)?;
    expect(&c.cmd("MAIL FROM:<sender@client.zero.test>")?, &[503], "MAIL before a new EHLO")
}

/// A TLS session that says EHLO, and whether AUTH is offered (over TLS, or without TLS).
fn auth_session(cx: &Ctx) -> Result<(Conn, Vec<String>), String> {
    let (mut c, caps) = session(cx)?;
    let caps = if offers(&caps, "STARTTLS") && cx.tls.is_some() { secure(cx, &mut c, &caps)? } else { caps };
    needs(&caps, "AUTH")?;
    Ok((c, caps))
}

fn plain(user: &str, password: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(format!("\0{user}\0{password}"))
}

fn auth_wrong(cx: &Ctx) -> R {
    let (mut c, _) = auth_session(cx)?;
    expect(&c.cmd(&format!("AUTH PLAIN {}", plain("nobody", "wrong")))?, &[535], "wrong credentials")?;
    expect(&c.cmd("NOOP")?, &[250], "NOOP after it")
}

fn auth_cancel(cx: &Ctx) -> R {
    let (mut c, _) = auth_session(cx)?;
    expect(&c.cmd("AUTH LOGIN")?, &[334], "AUTH LOGIN")?;
    expect(&c.cmd("*")?, &[501], "a cancelled exchange")
}

fn auth_mechanism(cx: &Ctx) -> R {
    let (mut c, _) = auth_session(cx)?;
    expect(&c.cmd("AUTH NO-SUCH-MECHANISM")?, &[504], "an unknown mechanism")
}

fn auth_good(cx: &Ctx) -> R {
    let (user, password) = cx.auth.clone().ok_or("no credentials for this target (--user, --password)")?;
    let (mut c, _) = auth_session(cx)?;
    expect(&c.cmd(&format!("AUTH PLAIN {}", plain(&user, &password)))?, &[235], "good credentials")?;
    expect(&c.cmd(&format!("AUTH PLAIN {}", plain(&user, &password)))?, &[503], "AUTH twice")
}

fn error_budget(cx: &Ctx) -> R {
    let (mut c, _) = session(cx)?;
    for n in 0..50 {
        let reply = match c.cmd("FROB") {
            Ok(reply) => reply,
            Err(e) if e.contains("closed") || e.contains("reset") || e.contains("pipe") => return Ok(()),
            Err(e) => return Err(e),
        };
        if reply.code == 421 {
            return c.closes();
        }
        if !matches!(reply.code, 500 | 502) {
            return Err(format!("a bad command got {}", one_line(&reply)));
        }
        if n == 49 {
            return Err("50 bad commands and still talking".into());
        }
    }
    Ok(())
}

/// Every check, in order.
pub const CHECKS: &[Check] = &[
    Check { name: "greeting", rule: "RFC 5321 3.1, 4.3.2: 220 on connect", run: greeting },
    Check { name: "ehlo", rule: "RFC 5321 4.1.1.1: EHLO, multiline 250", run: ehlo },
    Check { name: "helo", rule: "RFC 5321 4.1.1.1: HELO still works", run: helo },
    Check { name: "noop-rset", rule: "RFC 5321 4.1.1.5, 4.1.1.9", run: noop_rset },
    Check { name: "quit", rule: "RFC 5321 4.1.1.10: 221, then close", run: quit },
    Check { name: "vrfy", rule: "RFC 5321 3.5.3, 7.3: VRFY answered", run: vrfy },
    Check { name: "unknown-command", rule: "RFC 5321 4.2.4: 500 or 502", run: unknown_command },
    Check { name: "rcpt-before-mail", rule: "RFC 5321 4.1.4: 503", run: rcpt_before_mail },
    Check { name: "data-before-rcpt", rule: "RFC 5321 3.3: 503 or 554", run: data_before_rcpt },
    Check { name: "nested-mail", rule: "RFC 5321 4.1.4: 503", run: nested_mail },
    Check { name: "rset-clears", rule: "RFC 5321 4.1.1.5", run: rset_clears },
    Check { name: "mail-syntax", rule: "RFC 5321 4.1.2: 501", run: mail_syntax },
    Check { name: "null-sender", rule: "RFC 5321 4.5.5: MAIL FROM:<>", run: null_sender },
    Check { name: "message", rule: "RFC 5321 4.1.1.4, 4.5.2: dot-stuffing", run: message },
    Check { name: "text-line-1000", rule: "RFC 5321 4.5.3.1.6", run: text_line_1000 },
    Check {
        name: "command-line-long",
        rule: "RFC 5321 4.5.3.1.4: 500, session kept",
        run: command_line_long,
    },
    Check { name: "recipients-100", rule: "RFC 5321 4.5.3.1.8: >= 100", run: recipients_100 },
    Check { name: "pipelining", rule: "RFC 2920 3", run: pipelining },
    Check { name: "size", rule: "RFC 1870 6: 552 over SIZE", run: size },
    Check { name: "8bitmime", rule: "RFC 6152", run: eight_bit },
    Check { name: "smtputf8", rule: "RFC 6531 3.4", run: smtputf8 },
    Check { name: "bdat", rule: "RFC 3030 2", run: bdat },
    Check { name: "bdat-then-data", rule: "RFC 3030 2: 503", run: bdat_then_data },
    Check {
        name: "smuggle-lf.lf",
        rule: "RFC 5321 4.1.1.4; CVE-2023-51764",
        run: |cx| smuggle(cx, b"\n.\n"),
    },
    Check {
        name: "smuggle-crlf.lf",
        rule: "RFC 5321 4.1.1.4; CVE-2023-51765",
        run: |cx| smuggle(cx, b"\r\n.\n"),
    },
    Check {
        name: "smuggle-lf.crlf",
        rule: "RFC 5321 4.1.1.4; CVE-2023-51766",
        run: |cx| smuggle(cx, b"\n.\r\n"),
    },
    Check {
        name: "smuggle-cr.cr",
        rule: "RFC 5321 4.1.1.4; CVE-2024-27305",
        run: |cx| smuggle(cx, b"\r.\r"),
    },
    Check { name: "smuggle-crlf.cr", rule: "RFC 5321 4.1.1.4", run: |cx| smuggle(cx, b"\r\n.\r") },
    Check { name: "smuggle-cr.crlf", rule: "RFC 5321 4.1.1.4", run: |cx| smuggle(cx, b"\r.\r\n") },
    Check { name: "smuggle-nul", rule: "RFC 5321 4.1.1.4", run: |cx| smuggle(cx, b"\r\n\x00.\r\n") },
    Check { name: "starttls", rule: "RFC 3207 4, 4.2", run: starttls },
    Check { name: "starttls-injection", rule: "RFC 3207 5; CVE-2011-0411", run: starttls_injection },
    Check { name: "starttls-resets", rule: "RFC 3207 4.2: EHLO asked again", run: starttls_resets },
    Check { name: "auth-wrong", rule: "RFC 4954 6: 535", run: auth_wrong },
    Check { name: "auth-cancel", rule: "RFC 4954 4: '*' gives 501", run: auth_cancel },
    Check { name: "auth-mechanism", rule: "RFC 4954 6: 504", run: auth_mechanism },
    Check { name: "auth-good", rule: "RFC 4954 6: 235, then 503", run: auth_good },
    Check { name: "error-budget", rule: "abuse defence: bad commands end it", run: error_budget },
];
