//! `zero dns query`: a lookup through zero-dns's resolver, printed the way dig prints it.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::str::FromStr;
use std::time::Instant;

use clap::{Args, Subcommand};
use zero_core::tls::ClientTls;
use zero_dns::resolver::{lookup_blocking, Answer};
use zero_dns::{DnsTls, Hosts, RecordType, ResolveError, ResolverConfig, Source};

/// `zero dns` commands.
#[derive(Subcommand, Debug)]
pub enum DnsCommand {
    /// Look a name up and print the answer like dig: `zero dns query NAME [TYPE] [@SERVER[:PORT]]
    /// [+tcp] [+search] [+0x20]`.
    Query(QueryArgs),
}

/// Options of `zero dns query`.
#[derive(Args, Debug)]
pub struct QueryArgs {
    /// NAME, TYPE (A by default), @SERVER[:PORT] (the resolv.conf servers by default), +tcp
    /// (TCP only), +tls (DNS over TLS, port 853; +tls-name=NAME for the certificate, the
    /// server's address by default; +tls-ca=FILE to trust, the system's roots by default), +search (apply the search list; the name is absolute otherwise), +0x20
    /// (randomise the name's case), +time=N (seconds per try), +tries=N, in any order.
    #[arg(required = true, num_args = 1..)]
    words: Vec<String>,
    /// The resolver configuration read when no @SERVER is given.
    #[arg(long, default_value = "/etc/resolv.conf")]
    resolv_conf: PathBuf,
}

/// Runs a `zero dns` command.
pub fn run(command: DnsCommand) -> Result<ExitCode, String> {
    match command {
        DnsCommand::Query(args) => query(args),
    }
}

/// What the words of `zero dns query` say.
struct Query {
    name: String,
    rtype: RecordType,
    server: Option<SocketAddr>,
    tcp: bool,
    search: bool,
    mixed_case: bool,
    /// +time=N: seconds per try.
    time: Option<u64>,
    /// +tries=N: rounds over the servers.
    tries: Option<u32>,
    /// +tls: DNS over TLS (port 853 unless the server names one).
    tls: bool,
    /// +tls-name=NAME: the name the server's certificate must carry.
    tls_name: Option<String>,
    /// +tls-ca=FILE: the CA to trust instead of the system's.
    tls_ca: Option<PathBuf>,
}

fn words(words: &[String]) -> Result<Query, String> {
    let mut q = Query {
        name: String::new(),
        rtype: RecordType::A,
        server: None,
        tcp: false,
        search: false,
        mixed_case: false,
        time: None,
        tries: None,
        tls: false,
        tls_name: None,
        tls_ca: None,
    };
    let mut server: Option<String> = None;
    for word in words {
        if let Some(at) = word.strip_prefix('@') {
            server = Some(at.to_string());
        } else if let Some(option) = word.strip_prefix('+') {
            match option {
                "tcp" | "vc" => q.tcp = true,
                "search" => q.search = true,
                "0x20" => q.mixed_case = true,
                "tls" => q.tls = true,
                other => match other.split_once('=') {
                    Some(("time", n)) => {
                        q.time = Some(n.parse().map_err(|_| format!("+time={n}: not a number"))?)
                    }
                    Some(("tls-name", name)) => q.tls_name = Some(name.to_string()),
                    Some(("tls-ca", file)) => q.tls_ca = Some(file.into()),
                    Some(("tries", n)) => {
                        q.tries = Some(n.parse().map_err(|_| format!("+tries={n}: not a number"))?)
                    }
                    _ => {
                        return Err(format!(
                            "+{other}: not an option (+tcp, +tls, +tls-name=NAME, +tls-ca=FILE, +search, +0x20, +time=N, +tries=N)"
                        ))
                    }
                },
            }
        } else if q.name.is_empty() {
            // The first plain word is the name, the second the type.
            q.name = word.clone();
        } else {
            q.rtype = RecordType::from_str(&word.to_ascii_uppercase())
                .map_err(|_| format!("{word}: not a record type"))?;
        }
    }
    if q.name.is_empty() {
        return Err("no name to look up".into());
    }
    let port = if q.tls { 853 } else { 53 };
    q.server = server.map(|s| server_addr(&s, port)).transpose()?;
    Ok(q)
}

/// `1.2.3.4`, `1.2.3.4:5300`, `::1`, `[::1]:5300` (`port` if none is given).
fn server_addr(text: &str, port: u16) -> Result<SocketAddr, String> {
    text.parse::<SocketAddr>()
        .or_else(|_| text.parse::<IpAddr>().map(|ip| SocketAddr::new(ip, port)))
        .map_err(|_| format!("@{text}: not an address (IP or IP:PORT)"))
}

fn query(args: QueryArgs) -> Result<ExitCode, String> {
    let q = words(&args.words)?;
    let mut config = match q.server {
        Some(server) => ResolverConfig::with_servers(&[server]),
        None => {
            let text = std::fs::read_to_string(&args.resolv_conf)
                .map_err(|e| format!("{}: {e}", args.resolv_conf.display()))?;
            let mut config = ResolverConfig::from_resolv_conf(&text);
            config.hosts = Hosts::parse(&std::fs::read_to_string("/etc/hosts").unwrap_or_default());
            config
        }
    };
    config.tcp_only = q.tcp;
    if q.tls {
        let tls = match &q.tls_ca {
            Some(ca) => ClientTls::with_ca_file(ca),
            None => ClientTls::system_roots(),
        }
        .and_then(ClientTls::build)
        .map_err(|e| e.to_string())?;
        let name = q.tls_name.clone().or_else(|| q.server.map(|s| s.ip().to_string()));
        let server_name = name.ok_or("+tls needs @SERVER or +tls-name=NAME")?;
        config.tls = Some(DnsTls { server_name, config: tls });
    }
    if let Some(secs) = q.time {
        config.timeout = std::time::Duration::from_secs(secs.max(1));
    }
    if let Some(tries) = q.tries {
        config.attempts = tries.max(1);
    }
    config.case_randomization = q.mixed_case;
    config.cache_size = 0;
    let name = if q.search || q.name.ends_with('.') { q.name.clone() } else { format!("{}.", q.name) };
    println!("\n; <<>> zero dns query <<>> {}", args.words.join(" "));
    let started = Instant::now();
    let result = lookup_blocking(config, &name, q.rtype);
    let took = started.elapsed();
    let code = match &result {
        Ok(answer) => {
            print_answer(answer);
            ExitCode::SUCCESS
        }
        Err(e @ (ResolveError::NxDomain { .. } | ResolveError::NoData { .. })) => {
            let status =
                if matches!(e, ResolveError::NxDomain { .. }) { "NXDOMAIN" } else { "NOERROR (no data)" };
            println!(";; ->>HEADER<<- status: {status}\n;; {e}");
            ExitCode::SUCCESS
        }
        Err(e @ ResolveError::Timeout { .. }) => {
            println!(";; communications error: {e}");
            ExitCode::from(9)
        }
        Err(e) => {
            println!(";; {e}");
            ExitCode::from(1)
        }
    };
    println!("\n;; Query time: {} msec", took.as_millis());
    if let Ok(Answer { source, .. }) = &result {
        let via = if q.tls {
            "TLS"
        } else if q.tcp {
            "TCP"
        } else {
            "UDP"
        };
        match source {
            Source::Server(addr) => {
                println!(";; SERVER: {}#{}({}) ({via})", addr.ip(), addr.port(), addr.ip())
            }
            other => println!(";; FROM: {other}"),
        }
    }
    Ok(code)
}

fn print_answer(answer: &Answer) {
    let Some(m) = &answer.response else {
        println!(";; ANSWER SECTION:");
        for r in &answer.records {
            print_record(r);
        }
        return;
    };
    let h = &m.metadata;
    let status = format!("{:?}", h.response_code).to_ascii_uppercase();
    println!(";; ->>HEADER<<- opcode: {:?}, status: {status}, id: {}", h.op_code, h.id);
    let flags: Vec<&str> = [
        (true, "qr"),
        (h.authoritative, "aa"),
        (h.truncation, "tc"),
        (h.recursion_desired, "rd"),
        (h.recursion_available, "ra"),
        (h.authentic_data, "ad"),
        (h.checking_disabled, "cd"),
    ]
    .into_iter()
    .filter_map(|(on, name)| on.then_some(name))
    .collect();
    let additional = m.additionals.len() + usize::from(m.edns.is_some());
    println!(
        ";; flags: {}; QUERY: {}, ANSWER: {}, AUTHORITY: {}, ADDITIONAL: {additional}",
        flags.join(" "),
        m.queries.len(),
        m.answers.len(),
        m.authorities.len()
    );
    if let Some(edns) = &m.edns {
        println!(
            "\n;; OPT PSEUDOSECTION:\n; EDNS: version: {}, flags:; udp: {}",
            edns.version(),
            edns.max_payload()
        );
    }
    println!("\n;; QUESTION SECTION:");
    for q in &m.queries {
        println!(";{}\t\t\t{}\t{}", q.name(), q.query_class(), q.query_type());
    }
    for (title, records) in
        [("ANSWER", &answer.records), ("AUTHORITY", &m.authorities), ("ADDITIONAL", &m.additionals)]
    {
        if !records.is_empty() {
            println!("\n;; {title} SECTION:");
            records.iter().for_each(print_record);
        }
    }
}

fn print_record(r: &zero_dns::Record) {
    println!("{}\t\t{}\t{}\t{}\t{}", r.name, r.ttl, r.dns_class, r.record_type(), r.data);
}
