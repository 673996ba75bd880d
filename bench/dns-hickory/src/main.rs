//! hickory-resolver on a current-thread Tokio runtime (one core, like zero's one shard),
//! cache off, `CONCURRENCY` lookups of distinct names in flight until `QUERIES` are done.
//! Prints `RESULT impl=hickory ...` for bench/dns.sh.
//!
//! Usage: dns-hickory-bench SERVER:PORT QUERIES CONCURRENCY ZONE
//!        dns-hickory-bench codec ITERATIONS   (what hickory-proto, which zero-dns encodes and
//!                                              decodes with, costs per query and per answer)

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig, ResolverOpts};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::RecordType;
use hickory_resolver::Resolver;
use tokio::task::JoinSet;

/// This process's CPU time, all threads, from the scheduler's statistics (as `zero bench`
/// measures its own).
fn cpu() -> Duration {
    let mut total = 0u64;
    for task in std::fs::read_dir("/proc/self/task").unwrap() {
        let stat = std::fs::read_to_string(task.unwrap().path().join("schedstat")).unwrap_or_default();
        total += stat.split_whitespace().next().and_then(|n| n.parse::<u64>().ok()).unwrap_or(0);
    }
    Duration::from_nanos(total)
}

/// ns to encode an A query with EDNS and to decode a two-record answer with hickory-proto.
fn codec(iterations: u32) {
    use hickory_resolver::proto::op::{Edns, Message, MessageType, OpCode, Query};
    use hickory_resolver::proto::rr::rdata::A;
    use hickory_resolver::proto::rr::{Name, RData, Record};
    use std::hint::black_box;
    use std::str::FromStr;
    let name = Name::from_str("www.zero.test.").unwrap();
    let query = || {
        let mut m = Message::new(7, MessageType::Query, OpCode::Query);
        m.metadata.recursion_desired = true;
        m.add_query(Query::query(name.clone(), RecordType::A));
        let mut edns = Edns::new();
        edns.set_max_payload(1232);
        m.set_edns(edns);
        m.to_vec().unwrap()
    };
    let mut answer = Message::from_vec(&query()).unwrap();
    answer.metadata.message_type = MessageType::Response;
    for ip in ["10.0.0.1", "10.0.0.2"] {
        answer.answers.push(Record::from_rdata(name.clone(), 300, RData::A(A::from_str(ip).unwrap())));
    }
    let answer = answer.to_vec().unwrap();
    let time = |f: &dyn Fn()| {
        let at = Instant::now();
        for _ in 0..iterations {
            f();
        }
        at.elapsed().as_nanos() as f64 / f64::from(iterations)
    };
    let encode = time(&|| drop(black_box(query())));
    let decode = time(&|| drop(black_box(Message::from_vec(black_box(&answer)).unwrap())));
    println!("RESULT impl=hickory-proto encode_query_ns={encode:.0} decode_answer_ns={decode:.0}");
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("codec") {
        return codec(args.get(1).map_or(1_000_000, |n| n.parse().unwrap()));
    }
    assert_eq!(args.len(), 4, "usage: dns-hickory-bench SERVER:PORT QUERIES CONCURRENCY ZONE");
    let server: SocketAddr = args[0].parse().unwrap();
    let queries: u64 = args[1].parse().unwrap();
    let concurrency: u64 = args[2].parse().unwrap();
    let zone = args[3].trim_end_matches('.').to_string();
    let mut udp = ConnectionConfig::udp();
    udp.port = server.port();
    let mut tcp = ConnectionConfig::tcp();
    tcp.port = server.port();
    let mut ns = NameServerConfig::udp_and_tcp(server.ip());
    ns.connections = vec![udp, tcp];
    let mut opts = ResolverOpts::default();
    opts.cache_size = 0;
    let resolver = Resolver::builder_with_config(ResolverConfig::from_name_servers(vec![ns]), TokioRuntimeProvider::default())
        .with_options(opts)
        .build()
        .unwrap();
    let mut histogram = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).unwrap();
    let mut tasks = JoinSet::new();
    let (mut next, mut errors) = (0u64, 0u64);
    let (started, cpu_start) = (Instant::now(), cpu());
    loop {
        while next < queries && (tasks.len() as u64) < concurrency {
            let r = resolver.clone();
            let name = format!("q{next}.{zone}.");
            next += 1;
            tasks.spawn(async move {
                let at = Instant::now();
                let ok = r.lookup(name.as_str(), RecordType::A).await.is_ok();
                (at.elapsed(), ok)
            });
        }
        let Some(done) = tasks.join_next().await else { break };
        let (took, ok) = done.unwrap();
        if ok {
            let _ = histogram.record(took.as_nanos() as u64);
        } else {
            errors += 1;
        }
    }
    let (secs, cpu_s) = (started.elapsed().as_secs_f64(), (cpu() - cpu_start).as_secs_f64());
    let us = |q: f64| histogram.value_at_quantile(q) as f64 / 1000.0;
    println!(
        "RESULT impl=hickory queries={queries} errors={errors} seconds={secs:.2} qps={:.0} cpu_s={cpu_s:.2} q_per_cpu_s={:.0} p50_us={:.1} p99_us={:.1}",
        queries as f64 / secs,
        queries as f64 / cpu_s.max(0.01),
        us(0.5),
        us(0.99)
    );
}
