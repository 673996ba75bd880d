//! Commands: [`cmd`] starts one, [`ToArg`] writes its arguments straight into RESP, and
//! [`Pipeline`] sends several at once (optionally as a `MULTI`/`EXEC` transaction).
//!
//! Each command knows whether it may be sent again after a connection failure: the read-only
//! commands in [`READ_ONLY`] may (by the client's retry policy), anything else may not, since
//! running a write twice is worse than reporting that it may have run. [`Cmd::retry`] overrides
//! this for a command the caller knows to be idempotent.

use std::time::Duration;

use crate::codec::encode::{blob, decimal, header};

/// One command, encoded as it is built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cmd {
    /// The arguments, each already written as a RESP bulk string.
    args: Vec<u8>,
    /// How many arguments (the name included).
    count: usize,
    /// Whether the command may be resent after the connection failed while it was out, if
    /// set; by default, whether it is read-only (worked out when asked: a command answered
    /// from the client-side cache never is).
    retry: Option<bool>,
    /// Its own reply timeout (`Some(None)`: none), instead of the client's.
    timeout: Option<Option<Duration>>,
    /// Whether the client-side cache may answer it.
    cached: bool,
}

/// Starts the command `name` (e.g. `cmd("SET").arg("k").arg("v")`).
pub fn cmd(name: &str) -> Cmd {
    let mut c =
        Cmd { args: Vec::with_capacity(64 + name.len()), count: 0, retry: None, timeout: None, cached: true };
    c.push(name.as_bytes());
    c
}

impl Cmd {
    /// Adds an argument.
    pub fn arg(mut self, arg: impl ToArg) -> Cmd {
        self.count += arg.write_args(&mut self.args);
        self
    }

    /// Adds an argument in place.
    pub fn push(&mut self, arg: impl ToArg) -> &mut Cmd {
        self.count += arg.write_args(&mut self.args);
        self
    }

    /// Whether the command may be sent again on a new connection if the old one failed after
    /// sending it (the default: only for [`READ_ONLY`] commands).
    pub fn retry(mut self, allowed: bool) -> Cmd {
        self.retry = Some(allowed);
        self
    }

    /// Whether the command may be sent again after a connection failure.
    pub fn retries(&self) -> bool {
        self.retry.unwrap_or_else(|| is_read_only(self.name()))
    }

    /// The command's name: its first argument.
    fn name(&self) -> &[u8] {
        Args(Some(&self.args)).next().unwrap_or_default()
    }

    /// Whether the client-side cache may answer this read (the default), or it must reach
    /// the server (its fresh reply still refreshes the cache).
    pub fn cached(mut self, allowed: bool) -> Cmd {
        self.cached = allowed;
        self
    }

    /// Whether the client-side cache may answer the command.
    pub fn caches(&self) -> bool {
        self.cached
    }

    /// Gives the command its own reply timeout (`None`: wait as long as it takes), e.g. for
    /// a blocking `BLPOP` that outlasts the client's `command_timeout`.
    pub fn timeout(mut self, timeout: Option<Duration>) -> Cmd {
        self.timeout = Some(timeout);
        self
    }

    /// The command's own timeout, if it has one (`Some(None)`: none at all).
    pub fn own_timeout(&self) -> Option<Option<Duration>> {
        self.timeout
    }

    /// The arguments as encoded, without the array header: what tells one command from
    /// another.
    pub(crate) fn encoded_args(&self) -> &[u8] {
        &self.args
    }

    /// Appends the command to `out` as a RESP array.
    pub fn write(&self, out: &mut Vec<u8>) {
        header(out, b'*', self.count);
        out.extend_from_slice(&self.args);
    }
}

/// A value that can be a command argument (or several: a slice writes each element).
pub trait ToArg {
    /// Writes the argument(s) as RESP bulk strings; returns how many.
    fn write_args(&self, out: &mut Vec<u8>) -> usize;
}

impl<T: ToArg + ?Sized> ToArg for &T {
    fn write_args(&self, out: &mut Vec<u8>) -> usize {
        (**self).write_args(out)
    }
}

impl ToArg for [u8] {
    fn write_args(&self, out: &mut Vec<u8>) -> usize {
        blob(out, b'$', self);
        1
    }
}

impl<const N: usize> ToArg for [u8; N] {
    fn write_args(&self, out: &mut Vec<u8>) -> usize {
        self[..].write_args(out)
    }
}

impl ToArg for Vec<u8> {
    fn write_args(&self, out: &mut Vec<u8>) -> usize {
        self[..].write_args(out)
    }
}

impl ToArg for str {
    fn write_args(&self, out: &mut Vec<u8>) -> usize {
        self.as_bytes().write_args(out)
    }
}

impl ToArg for String {
    fn write_args(&self, out: &mut Vec<u8>) -> usize {
        self.as_bytes().write_args(out)
    }
}

impl<T: ToArg> ToArg for [T] {
    fn write_args(&self, out: &mut Vec<u8>) -> usize {
        self.iter().map(|a| a.write_args(out)).sum()
    }
}

impl<T: ToArg> ToArg for Vec<T> {
    fn write_args(&self, out: &mut Vec<u8>) -> usize {
        self[..].write_args(out)
    }
}

impl<A: ToArg, B: ToArg> ToArg for (A, B) {
    fn write_args(&self, out: &mut Vec<u8>) -> usize {
        self.0.write_args(out) + self.1.write_args(out)
    }
}

macro_rules! unsigned_args {
    ($($t:ty),*) => {$(
        impl ToArg for $t {
            fn write_args(&self, out: &mut Vec<u8>) -> usize {
                let mut digits = Vec::with_capacity(20);
                decimal(&mut digits, *self as u64);
                digits.write_args(out)
            }
        }
    )*};
}
unsigned_args!(u16, u32, u64, usize);

macro_rules! signed_args {
    ($($t:ty),*) => {$(
        impl ToArg for $t {
            fn write_args(&self, out: &mut Vec<u8>) -> usize {
                let mut digits = Vec::with_capacity(21);
                if *self < 0 {
                    digits.push(b'-');
                }
                decimal(&mut digits, (*self as i64).unsigned_abs());
                digits.write_args(out)
            }
        }
    )*};
}
signed_args!(i16, i32, i64, isize);

impl ToArg for f64 {
    /// Redis reads `inf`, `-inf` and the shortest decimal that round-trips.
    fn write_args(&self, out: &mut Vec<u8>) -> usize {
        let text = match *self {
            f64::INFINITY => "inf".to_string(),
            f64::NEG_INFINITY => "-inf".to_string(),
            d => format!("{d:?}"),
        };
        text.write_args(out)
    }
}

/// Several commands sent together, their replies returned together.
#[derive(Debug, Clone, Default)]
pub struct Pipeline {
    cmds: Vec<Cmd>,
    atomic: bool,
}

impl Pipeline {
    /// An empty, non-atomic pipeline.
    pub fn new() -> Pipeline {
        Pipeline::default()
    }

    /// Wraps the commands in `MULTI`/`EXEC`: they run as one transaction, and the reply is
    /// `EXEC`'s (nil if a `WATCH`ed key changed). A transaction is never resent after a
    /// connection failure: its parts could otherwise run outside it.
    pub fn atomic(mut self) -> Pipeline {
        self.atomic = true;
        self
    }

    /// Adds a command.
    pub fn with(mut self, cmd: Cmd) -> Pipeline {
        self.cmds.push(cmd);
        self
    }

    /// Adds a command in place.
    pub fn push(&mut self, cmd: Cmd) -> &mut Pipeline {
        self.cmds.push(cmd);
        self
    }

    /// The commands as they go on the wire (with `MULTI` and `EXEC` when atomic).
    pub fn commands(&self) -> impl Iterator<Item = Cmd> + '_ {
        let wrap = |name| self.atomic.then(|| cmd(name).retry(false));
        let body =
            self.cmds.iter().map(move |c| if self.atomic { c.clone().retry(false) } else { c.clone() });
        wrap("MULTI").into_iter().chain(body).chain(wrap("EXEC"))
    }

    /// How many of the replies are the caller's: all of them, or only `EXEC`'s.
    pub fn is_atomic(&self) -> bool {
        self.atomic
    }

    /// How many commands were added.
    pub fn len(&self) -> usize {
        self.cmds.len()
    }

    /// Whether no command was added.
    pub fn is_empty(&self) -> bool {
        self.cmds.is_empty()
    }
}

/// Commands that only read, and so may be sent again after a connection failure without
/// changing anything twice. Upper case, sorted.
pub const READ_ONLY: &[&str] = &[
    "BITCOUNT",
    "BITPOS",
    "DBSIZE",
    "ECHO",
    "EXISTS",
    "EXPIRETIME",
    "GEODIST",
    "GEOHASH",
    "GEOPOS",
    "GEOSEARCH",
    "GET",
    "GETBIT",
    "GETRANGE",
    "HEXISTS",
    "HGET",
    "HGETALL",
    "HKEYS",
    "HLEN",
    "HMGET",
    "HRANDFIELD",
    "HSCAN",
    "HSTRLEN",
    "HVALS",
    "INFO",
    "KEYS",
    "LINDEX",
    "LLEN",
    "LPOS",
    "LRANGE",
    "MGET",
    "PEXPIRETIME",
    "PING",
    "PTTL",
    "PUBSUB",
    "RANDOMKEY",
    "SCAN",
    "SCARD",
    "SDIFF",
    "SINTER",
    "SINTERCARD",
    "SISMEMBER",
    "SMEMBERS",
    "SMISMEMBER",
    "SRANDMEMBER",
    "SSCAN",
    "STRLEN",
    "SUNION",
    "TIME",
    "TTL",
    "TYPE",
    "XLEN",
    "XRANGE",
    "XREAD",
    "XREVRANGE",
    "ZCARD",
    "ZCOUNT",
    "ZLEXCOUNT",
    "ZMSCORE",
    "ZRANDMEMBER",
    "ZRANGE",
    "ZRANGEBYLEX",
    "ZRANGEBYSCORE",
    "ZRANK",
    "ZREVRANGE",
    "ZREVRANGEBYLEX",
    "ZREVRANGEBYSCORE",
    "ZREVRANK",
    "ZSCAN",
    "ZSCORE",
];

/// A command the client encoded, without its `*<count>` header: its arguments.
pub(crate) fn without_header(command: &[u8]) -> &[u8] {
    command.iter().position(|&b| b == b'\n').map_or(&[], |n| &command[n + 1..])
}

/// The arguments of a command the client encoded itself (`$<len>\r\n<bytes>\r\n` each).
pub(crate) struct Args<'a>(pub(crate) Option<&'a [u8]>);

impl<'a> Iterator for Args<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let rest = self.0.take()?.strip_prefix(b"$")?;
        let digits = rest.iter().position(|&b| b == b'\r')?;
        let len: usize = std::str::from_utf8(&rest[..digits]).ok()?.parse().ok()?;
        let body = rest.get(digits + 2..)?;
        let (arg, tail) = (body.get(..len)?, body.get(len + 2..)?);
        self.0 = Some(tail);
        Some(arg)
    }
}

/// Whether `name` (any case) is in [`READ_ONLY`].
pub fn is_read_only(name: &[u8]) -> bool {
    is_listed(READ_ONLY, name)
}

/// Whether the command `name` (any case) is in `list` (upper case, sorted).
pub(crate) fn is_listed(list: &[&str], name: &[u8]) -> bool {
    let mut upper = [0u8; 24];
    let Some(upper) = upper.get_mut(..name.len()) else { return false };
    for (u, c) in upper.iter_mut().zip(name) {
        *u = c.to_ascii_uppercase();
    }
    list.binary_search_by(|probe| short_cmp(probe.as_bytes(), upper)).is_ok()
}

/// The order of two short byte strings, compared inline: for command names a call to
/// `memcmp` per probe costs more than the comparison.
fn short_cmp(a: &[u8], b: &[u8]) -> std::cmp::Ordering {
    for (x, y) in a.iter().zip(b) {
        if x != y {
            return x.cmp(y);
        }
    }
    a.len().cmp(&b.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_encode_as_arrays_of_bulk_strings() {
        let mut out = Vec::new();
        cmd("SET").arg("k").arg(-12i64).arg(1.5f64).arg(&["a", "b"][..]).write(&mut out);
        assert_eq!(out, b"*6\r\n$3\r\nSET\r\n$1\r\nk\r\n$3\r\n-12\r\n$3\r\n1.5\r\n$1\r\na\r\n$1\r\nb\r\n");
    }

    #[test]
    fn arguments_are_read_back_from_their_encoding() {
        let mut out = Vec::new();
        cmd("HGET").arg("h").arg("").arg(&b"a\r\nb"[..]).write(&mut out);
        let args: Vec<&[u8]> = Args(Some(without_header(&out))).collect();
        assert_eq!(args, [&b"HGET"[..], b"h", b"", b"a\r\nb"]);
    }

    #[test]
    fn only_reads_retry_by_default() {
        assert!(READ_ONLY.windows(2).all(|w| w[0] < w[1]), "READ_ONLY must stay sorted");
        assert!(cmd("get").retries() && cmd("HGETALL").retries());
        assert!(!cmd("SET").retries() && !cmd("INCR").retries() && !cmd("x".repeat(40).as_str()).retries());
        assert!(cmd("INCR").retry(true).retries());
    }

    #[test]
    fn transactions_wrap_and_never_retry() {
        let p = Pipeline::new().with(cmd("GET").arg("a")).with(cmd("INCR").arg("b")).atomic();
        let names: Vec<_> = p.commands().map(|c| (c.args[4..9].to_vec(), c.retries())).collect();
        assert_eq!(names.len(), 4);
        assert!(names.iter().all(|(_, r)| !r));
        assert_eq!(&names[0].0, b"MULTI");
    }
}
