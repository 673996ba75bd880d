//! `zero mdns register` and `zero mdns browse`: DNS-SD over multicast DNS on one interface.

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use clap::{Args, Subcommand};
use zero_core::{Config, Event as IoEvent, Handler, Io, Ops};
use zero_dns::mdns::browser::{self, Browser};
use zero_dns::mdns::responder::{self, Responder};
use zero_dns::mdns::{Endpoint, MdnsDriver, MdnsSocket, Service};

/// `zero mdns` commands.
#[derive(Subcommand, Debug)]
pub enum MdnsCommand {
    /// Announce a service (`zero mdns register "My Printer" _ipp._tcp 631 rp=queue`) until
    /// stopped (or `--for` seconds), then say goodbye.
    Register(RegisterArgs),
    /// Print the instances of a service type as they come and go.
    Browse(BrowseArgs),
    /// Resolve one instance (`zero mdns resolve "My Printer" _ipp._tcp`) to its host, port,
    /// addresses and TXT, or fail after `--for` seconds.
    Resolve(ResolveArgs),
}

/// Where on the link mDNS runs.
#[derive(Args, Debug)]
pub struct Link {
    /// The interface (its IPv4 address) for IPv4 mDNS (224.0.0.251).
    #[arg(long, default_value = "127.0.0.1")]
    interface: Ipv4Addr,
    /// An interface (its name, `eth0`) for IPv6 mDNS (ff02::fb) as well.
    #[arg(long, value_name = "NAME")]
    ipv6: Option<String>,
    /// No IPv4: with `--ipv6`, IPv6 only.
    #[arg(long, requires = "ipv6")]
    no_ipv4: bool,
}

impl Link {
    /// Opens the link's sockets on a shard.
    fn open(&self, ops: &mut Ops) -> Result<Vec<MdnsSocket>, String> {
        let mut sockets = Vec::new();
        if !self.no_ipv4 {
            let interface = self.interface;
            sockets.push(MdnsSocket::open(ops, interface).map_err(|e| format!("mDNS on {interface}: {e}"))?);
        }
        if let Some(name) = &self.ipv6 {
            let path = format!("/sys/class/net/{name}/ifindex");
            let index = std::fs::read_to_string(&path)
                .ok()
                .and_then(|i| i.trim().parse().ok())
                .ok_or_else(|| format!("{name}: no such interface ({path})"))?;
            sockets.push(MdnsSocket::open_v6(ops, index).map_err(|e| format!("IPv6 mDNS on {name}: {e}"))?);
        }
        Ok(sockets)
    }

    /// The host's addresses on the link: the IPv4 interface's, and the IPv6 interface's as
    /// `/proc/net/if_inet6` lists them.
    fn addresses(&self) -> Vec<IpAddr> {
        let mut addresses = Vec::new();
        if !self.no_ipv4 {
            addresses.push(IpAddr::V4(self.interface));
        }
        if let Some(name) = &self.ipv6 {
            let table = std::fs::read_to_string("/proc/net/if_inet6").unwrap_or_default();
            addresses.extend(table.lines().filter_map(|line| {
                let fields: Vec<&str> = line.split_whitespace().collect();
                let hex = u128::from_str_radix(fields.first()?, 16).ok()?;
                (fields.last() == Some(&name.as_str())).then(|| IpAddr::V6(hex.into()))
            }));
        }
        addresses
    }
}

/// Options of `zero mdns resolve`.
#[derive(Args, Debug)]
pub struct ResolveArgs {
    /// The instance name.
    name: String,
    /// The service type, `_http._tcp`.
    service_type: String,
    #[command(flatten)]
    link: Link,
    /// Seconds to wait for it.
    #[arg(long = "for", default_value_t = 5.0)]
    duration: f64,
}

/// Options of `zero mdns register`.
#[derive(Args, Debug)]
pub struct RegisterArgs {
    /// The instance name.
    name: String,
    /// The service type, `_http._tcp`.
    service_type: String,
    /// The port.
    port: u16,
    /// TXT strings, `key=value`.
    txt: Vec<String>,
    #[command(flatten)]
    link: Link,
    /// The host name announced (`NAME.local.`).
    #[arg(long, default_value = "zero")]
    host: String,
    /// The host's addresses (the interfaces' by default).
    #[arg(long)]
    address: Vec<IpAddr>,
    /// Seconds to stay before the goodbye (forever by default).
    #[arg(long = "for")]
    duration: Option<f64>,
}

/// Options of `zero mdns browse`.
#[derive(Args, Debug)]
pub struct BrowseArgs {
    /// The service type, `_http._tcp`.
    service_type: String,
    #[command(flatten)]
    link: Link,
    /// Seconds to browse (forever by default).
    #[arg(long = "for")]
    duration: Option<f64>,
}

/// Runs a `zero mdns` command.
pub fn run(command: MdnsCommand) -> Result<(), String> {
    match command {
        MdnsCommand::Register(args) => register(args),
        MdnsCommand::Browse(args) => browse(args),
        MdnsCommand::Resolve(args) => resolve(args),
    }
}

/// An endpoint on a shard for a while, printing its events (`print` says when it is done).
struct Run<E> {
    driver: MdnsDriver<E>,
    until: Option<Instant>,
    print: Box<dyn FnMut(&mut E) -> bool>,
}

impl<E: Endpoint> Handler for Run<E> {
    fn on_event(&mut self, ops: &mut Ops, event: IoEvent<'_>) {
        self.driver.on_event(ops, &event);
    }

    fn on_batch_end(&mut self, ops: &mut Ops) {
        let done = (self.print)(self.driver.endpoint());
        if done || self.until.is_some_and(|t| ops.now() >= t) {
            ops.stop();
        }
        self.driver.pump(ops);
    }
}

fn run_endpoint<E: Endpoint>(
    link: &Link,
    endpoint: impl FnOnce(Instant) -> E,
    duration: Option<f64>,
    print: impl FnMut(&mut E) -> bool + 'static,
) -> Result<(Io, Run<E>), String> {
    let mut io = Io::new(Config::default()).map_err(|e| e.to_string())?;
    let sockets = link.open(&mut io)?;
    let now = Instant::now();
    let until = duration.map(|s| now + Duration::from_secs_f64(s));
    if let Some(s) = duration {
        io.timer(Duration::from_secs_f64(s), u64::MAX);
    }
    let mut run = Run { driver: MdnsDriver::new(endpoint(now), &sockets, 0), until, print: Box::new(print) };
    run.on_batch_end(&mut io);
    io.run(&mut run).map_err(|e| e.to_string())?;
    Ok((io, run))
}

fn register(args: RegisterArgs) -> Result<(), String> {
    let addresses = if args.address.is_empty() { args.link.addresses() } else { args.address.clone() };
    let service = Service {
        instance: args.name.clone(),
        service_type: args.service_type.clone(),
        port: args.port,
        txt: args.txt.clone(),
    };
    let print = |r: &mut Responder| {
        while let Some(event) = r.poll_event() {
            match event {
                responder::Event::Registered { name, .. } => println!("registered {name}"),
                responder::Event::Renamed { from, to, .. } => {
                    println!("renamed {from} -> {to} (name conflict)")
                }
                responder::Event::HostRenamed { from, to } => {
                    println!("host renamed {from} -> {to} (name conflict)")
                }
                _ => {}
            }
        }
        false
    };
    let (mut io, mut run) = run_endpoint(
        &args.link,
        |now| {
            let mut r = Responder::new(now, &args.host, &addresses, crate::random_seed());
            r.register(now, service);
            r
        },
        args.duration,
        print,
    )?;
    // The goodbye.
    run.driver.endpoint().shutdown(Instant::now());
    run.driver.pump(&mut io);
    io.run_once(&mut run, Some(Duration::from_millis(50))).map_err(|e| e.to_string())?;
    Ok(())
}

fn browse(args: BrowseArgs) -> Result<(), String> {
    let print = |b: &mut Browser| {
        while let Some(event) = b.poll_event() {
            match event {
                browser::Event::Added(i) => {
                    println!("added {} at {}:{} {:?} txt {:?}", i.name, i.host, i.port, i.addresses, i.txt)
                }
                browser::Event::Updated(i) => {
                    println!("updated {} at {}:{} {:?} txt {:?}", i.name, i.host, i.port, i.addresses, i.txt)
                }
                browser::Event::Removed(name) => println!("removed {name}"),
                _ => {}
            }
        }
        false
    };
    let browser = Browser::new(&args.service_type, Instant::now())
        .ok_or_else(|| format!("{}: not a service type", args.service_type))?;
    run_endpoint(&args.link, move |_| browser, args.duration, print)?;
    Ok(())
}

fn resolve(args: ResolveArgs) -> Result<(), String> {
    let browser = Browser::new(&args.service_type, Instant::now())
        .ok_or_else(|| format!("{}: not a service type", args.service_type))?;
    // Browsing ends once the instance is resolved.
    let name = args.name.clone();
    let found = std::rc::Rc::new(std::cell::RefCell::new(None));
    let keep = found.clone();
    let print = move |b: &mut Browser| {
        while b.poll_event().is_some() {}
        *keep.borrow_mut() = b.instances().find(|i| i.name == name).cloned();
        keep.borrow().is_some()
    };
    run_endpoint(&args.link, move |_| browser, Some(args.duration), print)?;
    let found = found.borrow_mut().take();
    match found {
        Some(i) => {
            println!("{} at {}:{} {:?} txt {:?}", i.name, i.host, i.port, i.addresses, i.txt);
            Ok(())
        }
        None => Err(format!("{} ({}): no answer in {} s", args.name, args.service_type, args.duration)),
    }
}
