//! The client machine on a simulated clock, against scripted server replies.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use zero_core::machine::{Closed, Machine};

use super::{Client, ClientConfig, Error, Event, Listing, Request, RequestId, Security, TlsClient};
use crate::codec::reply::Reply;

const SERVER: &str = "10.0.0.1";

fn client(config: ClientConfig) -> (Client, Instant) {
    let now = Instant::now();
    let mut c = Client::new(config, SERVER.parse().unwrap());
    assert!(c.wants_connect(now));
    c.handle_connected(now);
    (c, now)
}

/// What the client sent since the last look.
fn sent(c: &mut Client) -> String {
    let mut out = String::new();
    while let Some(bytes) = c.poll_transmit() {
        out.push_str(&String::from_utf8_lossy(bytes));
    }
    out
}

fn events(c: &mut Client) -> Vec<Event> {
    std::iter::from_fn(|| c.poll_event()).collect()
}

/// Logged in, plain: greeting, USER, PASS, FEAT (with `feat`), TYPE I.
fn ready(feat: &str) -> (Client, Instant) {
    let (mut c, now) = client(ClientConfig::new("bob", "pw"));
    c.handle_input(now, b"220 hi\r\n");
    assert_eq!(sent(&mut c), "USER bob\r\n");
    c.handle_input(now, b"331 pw?\r\n");
    assert_eq!(sent(&mut c), "PASS pw\r\n");
    c.handle_input(now, b"230 in\r\n");
    assert_eq!(sent(&mut c), "FEAT\r\n");
    c.handle_input(now, feat.as_bytes());
    let utf8 = feat.contains("UTF8");
    if utf8 {
        assert_eq!(sent(&mut c), "OPTS UTF8 ON\r\n");
        c.handle_input(now, b"200 ok\r\n");
    }
    assert_eq!(sent(&mut c), "TYPE I\r\n");
    c.handle_input(now, b"200 binary\r\n");
    assert_eq!(events(&mut c), [Event::Ready]);
    (c, now)
}

fn done(c: &mut Client) -> (RequestId, Result<Reply, Error>) {
    let evs = events(c);
    match evs.as_slice() {
        [Event::Done { id, result }] => (*id, result.clone()),
        other => panic!("not one Done: {other:?}"),
    }
}

#[test]
fn logs_in_and_reads_features() {
    let (c, _) =
        ready("211-Features:\r\n MLST type*;size*;\r\n EPSV\r\n UTF8\r\n REST STREAM\r\n211 End\r\n");
    let f = c.features();
    assert!(f.mlst && f.epsv && f.utf8 && f.rest_stream && !f.size);
}

#[test]
fn a_greeting_may_be_preceded_by_120_and_login_may_need_no_password() {
    let (mut c, now) = client(ClientConfig::anonymous());
    c.handle_input(now, b"120 wait a moment\r\n");
    assert_eq!(sent(&mut c), "");
    c.handle_input(now, b"220 now\r\n230 no password needed\r\n");
    assert_eq!(sent(&mut c), "USER anonymous\r\nFEAT\r\n");
}

#[test]
fn a_refused_login_ends_the_session() {
    let (mut c, now) = client(ClientConfig::new("bob", "wrong"));
    let id = c.request(now, Request::PrintDir);
    c.handle_input(now, b"220 hi\r\n331 pw?\r\n530 Login incorrect.\r\n");
    assert_eq!(done(&mut c), (id, Err(Error::Login(Reply::new(530, "Login incorrect.")))));
    assert!(c.poll_close());
    c.handle_closed(now, Closed::Requested);
    assert!(c.is_drained());
    let later = c.request(now, Request::PrintDir);
    assert!(matches!(done(&mut c), (i, Err(Error::Login(_))) if i == later));
}

fn tls() -> TlsClient {
    let config =
        zero_core::tls::SelfSigned::generate(&["localhost"]).unwrap().client().unwrap().build().unwrap();
    TlsClient { server_name: "localhost".into(), config }
}

#[test]
fn explicit_tls_never_sends_the_password_in_plaintext() {
    let mut config = ClientConfig::new("bob", "pw");
    config.security = Security::Explicit(tls());
    let (mut c, now) = client(config.clone());
    c.handle_input(now, b"220 hi\r\n");
    assert_eq!(sent(&mut c), "AUTH TLS\r\n");
    c.handle_input(now, b"500 AUTH not understood\r\n");
    assert!(matches!(c.ended(), Some(Error::TlsRefused(_))));
    assert_eq!(sent(&mut c), "");
    assert!(c.poll_close());

    // Accepted: the upgrade, and what came after 234 in plaintext is ignored.
    let (mut c, now) = client(config);
    c.handle_input(now, b"220 hi\r\n");
    sent(&mut c);
    c.handle_input(now, b"234 go ahead\r\n230 injected\r\n");
    assert!(c.poll_upgrade().is_some());
    c.handle_upgraded(now);
    assert_eq!(sent(&mut c), "USER bob\r\n");
    c.handle_input(now, b"331 pw?\r\n230 in\r\n");
    assert_eq!(sent(&mut c), "PASS pw\r\nPBSZ 0\r\n");
    c.handle_input(now, b"200 PBSZ=0\r\n200 PROT now Private\r\n211 no features\r\n200 binary\r\n");
    assert_eq!(sent(&mut c), "PROT P\r\nFEAT\r\nTYPE I\r\n");
    assert_eq!(events(&mut c), [Event::Ready]);
    c.request(now, Request::List { path: None, format: Listing::Long });
    assert_eq!(sent(&mut c), "EPSV\r\n");
    c.handle_input(now, b"229 Entering Extended Passive Mode (|||40000|)\r\n");
    assert_eq!(
        events(&mut c),
        [Event::Connect { addr: SocketAddr::new(SERVER.parse().unwrap(), 40000), tls: true }]
    );
    // The data connection's handshake begins after the 1xx (vsftpd begins it only then).
    c.data_connected(now);
    assert_eq!(sent(&mut c), "LIST\r\n");
    assert_eq!(events(&mut c), []);
    c.handle_input(now, b"150 listing\r\n");
    assert_eq!(events(&mut c), [Event::Secure]);
    c.data_opened(now);
    c.data_closed(now, true);
    c.handle_input(now, b"226 done\r\n");
    assert!(matches!(done(&mut c), (_, Ok(_))));
}

#[test]
fn a_download_ends_with_both_the_reply_and_the_data_connections_end() {
    let (mut c, now) = ready("211 none\r\n");
    let id = c.request(now, Request::Retrieve { path: "a file".into(), offset: 0 });
    assert_eq!(sent(&mut c), "EPSV\r\n");
    c.handle_input(now, b"229 ok (|||5000|)\r\n");
    assert!(matches!(events(&mut c).as_slice(), [Event::Connect { tls: false, .. }]));
    assert_eq!(sent(&mut c), "", "the command waits for the data connection");
    c.data_connected(now);
    assert_eq!(sent(&mut c), "RETR a file\r\n");
    c.handle_input(now, b"150 here it comes\r\n226 done\r\n");
    assert_eq!(events(&mut c), [], "the data connection has not ended yet");
    c.data_closed(now, true);
    assert_eq!(done(&mut c), (id, Ok(Reply::new(226, "done"))));

    // The other order, and a data connection that broke: the 226 is not believed.
    let id = c.request(now, Request::Retrieve { path: "f".into(), offset: 0 });
    c.handle_input(now, b"229 ok (|||5001|)\r\n");
    events(&mut c);
    c.data_connected(now);
    c.handle_input(now, b"150 go\r\n");
    c.data_closed(now, false);
    assert_eq!(events(&mut c), []);
    c.handle_input(now, b"226 done\r\n");
    assert_eq!(done(&mut c), (id, Err(Error::DataLost(Reply::new(226, "done")))));
}

#[test]
fn resume_rest_and_a_refused_transfer() {
    let (mut c, now) = ready("211 none\r\n");
    let id = c.request(now, Request::Retrieve { path: "f".into(), offset: 1000 });
    sent(&mut c);
    c.handle_input(now, b"229 ok (|||5000|)\r\n");
    events(&mut c);
    c.data_connected(now);
    assert_eq!(sent(&mut c), "REST 1000\r\n");
    c.handle_input(now, b"350 Restarting at 1000\r\n");
    assert_eq!(sent(&mut c), "RETR f\r\n");
    c.handle_input(now, b"550 No such file\r\n");
    assert_eq!(
        events(&mut c),
        [Event::DropData, Event::Done { id, result: Err(Error::Refused(Reply::new(550, "No such file"))) }]
    );
}

#[test]
fn epsv_refused_falls_back_to_pasv_whose_address_is_not_used() {
    let (mut c, now) = ready("211 none\r\n");
    c.request(now, Request::List { path: Some("dir".into()), format: Listing::Facts });
    assert_eq!(sent(&mut c), "EPSV\r\n");
    c.handle_input(now, b"500 Unknown command\r\n");
    assert_eq!(sent(&mut c), "PASV\r\n");
    // The server names another host: the client goes to the control connection's server.
    c.handle_input(now, b"227 Entering Passive Mode (192,168,1,9,19,137).\r\n");
    let server: IpAddr = SERVER.parse().unwrap();
    assert_eq!(events(&mut c), [Event::Connect { addr: SocketAddr::new(server, 5001), tls: false }]);
    c.data_connected(now);
    assert_eq!(sent(&mut c), "MLSD dir\r\n");
    c.handle_input(now, b"150 ok\r\n");
    c.data_closed(now, true);
    c.handle_input(now, b"226 ok\r\n");
    assert!(matches!(done(&mut c), (_, Ok(_))));
    // PASV from here on.
    c.request(now, Request::List { path: None, format: Listing::Names });
    assert_eq!(sent(&mut c), "PASV\r\n");
}

#[test]
fn an_upload_sends_after_the_go_ahead_active_mode() {
    let mut config = ClientConfig::new("bob", "pw");
    config.passive = false;
    let (mut c, now) = client(config);
    c.handle_input(now, b"220 hi\r\n230 in\r\n211 none\r\n200 binary\r\n");
    sent(&mut c);
    assert_eq!(events(&mut c), [Event::Ready]);
    let id = c.request(now, Request::Store { path: "up".into(), append: true });
    assert_eq!(events(&mut c), [Event::Listen { tls: false }]);
    c.listening(now, Ok("10.0.0.2:40001".parse().unwrap()));
    assert_eq!(sent(&mut c), "PORT 10,0,0,2,156,65\r\n");
    c.handle_input(now, b"200 PORT ok\r\n");
    assert_eq!(sent(&mut c), "APPE up\r\n");
    assert!(c.is_server(SERVER.parse().unwrap()) && !c.is_server("10.0.0.3".parse().unwrap()));
    c.handle_input(now, b"150 send it\r\n");
    assert_eq!(events(&mut c), [], "no data connection yet");
    c.data_connected(now);
    assert_eq!(events(&mut c), [Event::Send]);
    c.data_closed(now, true);
    c.handle_input(now, b"226 stored\r\n");
    assert_eq!(done(&mut c), (id, Ok(Reply::new(226, "stored"))));
    c.request(now, Request::Store { path: "v6".into(), append: false });
    events(&mut c);
    c.listening(now, Ok("[::1]:40002".parse().unwrap()));
    assert_eq!(sent(&mut c), "EPRT |2|::1|40002|\r\n");
}

#[test]
fn simple_requests_rename_and_a_smuggled_command() {
    let (mut c, now) = ready("211 none\r\n");
    let id = c.request(now, Request::Rename { from: "a".into(), to: "b".into() });
    assert_eq!(sent(&mut c), "RNFR a\r\n");
    c.handle_input(now, b"350 ready\r\n");
    assert_eq!(sent(&mut c), "RNTO b\r\n");
    c.handle_input(now, b"250 renamed\r\n");
    assert_eq!(done(&mut c), (id, Ok(Reply::new(250, "renamed"))));
    let id = c.request(now, Request::Delete("x\r\nDELE y".into()));
    assert!(matches!(done(&mut c), (i, Err(Error::BadArgument(_))) if i == id));
    assert_eq!(sent(&mut c), "");
    let id = c.request(now, Request::PrintDir);
    c.handle_input(now, b"257 \"/home/a \"\"q\"\"\" is current\r\n");
    let (got, reply) = done(&mut c);
    assert_eq!((got, reply.unwrap().quoted().as_deref()), (id, Some("/home/a \"q\"")));
}

#[test]
fn timeouts_end_the_session() {
    let (mut c, now) = ready("211 none\r\n");
    let id = c.request(now, Request::Size("f".into()));
    let due = c.poll_timeout().unwrap();
    assert_eq!(due, now + Duration::from_secs(60));
    c.handle_timeout(due);
    assert_eq!(done(&mut c), (id, Err(Error::Timeout("the server's reply"))));
    assert!(c.poll_close());

    // A stalled transfer: the data timeout, from the last byte moved.
    let (mut c, now) = ready("211 none\r\n");
    let id = c.request(now, Request::Retrieve { path: "f".into(), offset: 0 });
    c.handle_input(now, b"229 ok (|||5000|)\r\n");
    events(&mut c);
    c.data_connected(now);
    c.handle_input(now, b"150 go\r\n");
    let later = now + Duration::from_secs(50);
    c.data_progress(later);
    c.handle_timeout(now + Duration::from_secs(60));
    assert_eq!(events(&mut c), []);
    assert_eq!(c.poll_timeout(), Some(later + Duration::from_secs(60)));
    c.handle_timeout(later + Duration::from_secs(60));
    assert_eq!(
        events(&mut c),
        [Event::DropData, Event::Done { id, result: Err(Error::Timeout("the data connection to move")) }]
    );
}

#[test]
fn a_lost_connection_fails_what_is_pending_and_garbage_ends_the_session() {
    let (mut c, now) = ready("211 none\r\n");
    let a = c.request(now, Request::Size("f".into()));
    let b = c.request(now, Request::Size("g".into()));
    c.handle_closed(now, Closed::Lost(zero_core::CloseReason::Reset));
    let evs = events(&mut c);
    assert!(
        matches!(&evs[..], [Event::Done { id: x, result: Err(Error::Closed(_)) }, Event::Done { id: y, result: Err(Error::Closed(_)) }] if *x == a && *y == b)
    );

    let (mut c, now) = ready("211 none\r\n");
    c.handle_input(now, b"garbage\r\n");
    assert!(matches!(c.ended(), Some(Error::Protocol(_))));
    let (mut c, now) = ready("211 none\r\n");
    c.handle_input(now, b"200 unasked\r\n");
    assert!(matches!(c.ended(), Some(Error::Protocol(_))));
}
