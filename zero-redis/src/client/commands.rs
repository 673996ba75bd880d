//! Typed helpers for the common commands, on every driver: [`Commands`] for the blocking
//! client, [`AsyncCommands`] for the Tokio one. Each helper builds a [`Cmd`] and converts the
//! reply into the `T` the caller names (`let n: i64 = client.incr("hits")?;`), as
//! [`Commands::query`] does for any other command.

use crate::cmd::{cmd, Cmd, ToArg};
use crate::error::Error;
use crate::value::FromValue;

/// How long a blocking command that waits `seconds` (0: for ever) may take to reply.
fn blocking(seconds: f64) -> Option<std::time::Duration> {
    (seconds > 0.0).then(|| std::time::Duration::from_secs_f64(seconds) + std::time::Duration::from_secs(5))
}

macro_rules! commands {
    ($( $(#[$doc:meta])* fn $name:ident($($arg:ident : $ty:ty),*) = $build:expr; )*) => {
        /// The blocking client's commands.
        pub trait Commands {
            /// Runs `cmd` and converts its reply.
            fn query<T: FromValue>(&self, cmd: Cmd) -> Result<T, Error>;
            $(
                $(#[$doc])*
                fn $name<T: FromValue>(&self, $($arg: $ty),*) -> Result<T, Error> {
                    self.query($build)
                }
            )*
        }

        /// The async client's commands.
        #[cfg(feature = "tokio")]
        pub trait AsyncCommands {
            /// Runs `cmd` and converts its reply.
            fn query<T: FromValue + Send + 'static>(&self, cmd: Cmd)
                -> impl std::future::Future<Output = Result<T, Error>> + Send;
            $(
                $(#[$doc])*
                fn $name<T: FromValue + Send + 'static>(&self, $($arg: $ty),*)
                    -> impl std::future::Future<Output = Result<T, Error>> + Send {
                    self.query($build)
                }
            )*
        }
    };
}

commands! {
    /// `PING`.
    fn ping() = cmd("PING");
    /// `GET key`.
    fn get(key: impl ToArg) = cmd("GET").arg(key);
    /// `SET key value`.
    fn set(key: impl ToArg, value: impl ToArg) = cmd("SET").arg(key).arg(value);
    /// `SET key value PX ms`.
    fn set_px(key: impl ToArg, value: impl ToArg, ms: u64) = cmd("SET").arg(key).arg(value).arg("PX").arg(ms);
    /// `SET key value NX`: nil if the key existed.
    fn set_nx(key: impl ToArg, value: impl ToArg) = cmd("SET").arg(key).arg(value).arg("NX");
    /// `MGET key...`.
    fn mget(keys: impl ToArg) = cmd("MGET").arg(keys);
    /// `MSET key value ...` from pairs.
    fn mset(pairs: impl ToArg) = cmd("MSET").arg(pairs);
    /// `INCR key`.
    fn incr(key: impl ToArg) = cmd("INCR").arg(key);
    /// `INCRBY key delta`.
    fn incr_by(key: impl ToArg, delta: i64) = cmd("INCRBY").arg(key).arg(delta);
    /// `APPEND key value`.
    fn append(key: impl ToArg, value: impl ToArg) = cmd("APPEND").arg(key).arg(value);
    /// `STRLEN key`.
    fn strlen(key: impl ToArg) = cmd("STRLEN").arg(key);
    /// `DEL key...`.
    fn del(keys: impl ToArg) = cmd("DEL").arg(keys);
    /// `EXISTS key...`.
    fn exists(keys: impl ToArg) = cmd("EXISTS").arg(keys);
    /// `EXPIRE key seconds`.
    fn expire(key: impl ToArg, seconds: i64) = cmd("EXPIRE").arg(key).arg(seconds);
    /// `PEXPIRE key ms`.
    fn pexpire(key: impl ToArg, ms: i64) = cmd("PEXPIRE").arg(key).arg(ms);
    /// `TTL key`.
    fn ttl(key: impl ToArg) = cmd("TTL").arg(key);
    /// `PTTL key`.
    fn pttl(key: impl ToArg) = cmd("PTTL").arg(key);
    /// `PERSIST key`.
    fn persist(key: impl ToArg) = cmd("PERSIST").arg(key);
    /// `TYPE key`.
    fn key_type(key: impl ToArg) = cmd("TYPE").arg(key);
    /// `RENAME key newkey`.
    fn rename(key: impl ToArg, new: impl ToArg) = cmd("RENAME").arg(key).arg(new);
    /// `SCAN cursor MATCH pattern COUNT n`: `(next cursor, keys)`.
    fn scan_match(cursor: u64, pattern: impl ToArg, count: u64) = cmd("SCAN").arg(cursor).arg("MATCH").arg(pattern).arg("COUNT").arg(count);
    /// `HSET key field value`.
    fn hset(key: impl ToArg, field: impl ToArg, value: impl ToArg) = cmd("HSET").arg(key).arg(field).arg(value);
    /// `HSET key field value ...` from pairs.
    fn hset_multiple(key: impl ToArg, pairs: impl ToArg) = cmd("HSET").arg(key).arg(pairs);
    /// `HGET key field`.
    fn hget(key: impl ToArg, field: impl ToArg) = cmd("HGET").arg(key).arg(field);
    /// `HMGET key field...`.
    fn hmget(key: impl ToArg, fields: impl ToArg) = cmd("HMGET").arg(key).arg(fields);
    /// `HGETALL key` (into a map).
    fn hgetall(key: impl ToArg) = cmd("HGETALL").arg(key);
    /// `HDEL key field...`.
    fn hdel(key: impl ToArg, fields: impl ToArg) = cmd("HDEL").arg(key).arg(fields);
    /// `HEXISTS key field`.
    fn hexists(key: impl ToArg, field: impl ToArg) = cmd("HEXISTS").arg(key).arg(field);
    /// `HINCRBY key field delta`.
    fn hincr_by(key: impl ToArg, field: impl ToArg, delta: i64) = cmd("HINCRBY").arg(key).arg(field).arg(delta);
    /// `HLEN key`.
    fn hlen(key: impl ToArg) = cmd("HLEN").arg(key);
    /// `HKEYS key`.
    fn hkeys(key: impl ToArg) = cmd("HKEYS").arg(key);
    /// `LPUSH key value...`.
    fn lpush(key: impl ToArg, values: impl ToArg) = cmd("LPUSH").arg(key).arg(values);
    /// `RPUSH key value...`.
    fn rpush(key: impl ToArg, values: impl ToArg) = cmd("RPUSH").arg(key).arg(values);
    /// `LPOP key`.
    fn lpop(key: impl ToArg) = cmd("LPOP").arg(key);
    /// `RPOP key`.
    fn rpop(key: impl ToArg) = cmd("RPOP").arg(key);
    /// `LRANGE key start stop`.
    fn lrange(key: impl ToArg, start: i64, stop: i64) = cmd("LRANGE").arg(key).arg(start).arg(stop);
    /// `LLEN key`.
    fn llen(key: impl ToArg) = cmd("LLEN").arg(key);
    /// `LTRIM key start stop`.
    fn ltrim(key: impl ToArg, start: i64, stop: i64) = cmd("LTRIM").arg(key).arg(start).arg(stop);
    /// `BLPOP key... timeout` (seconds; 0 blocks for ever). The reply may take that long,
    /// so the command's own timeout is that plus 5 s (none for 0).
    fn blpop(keys: impl ToArg, timeout: f64) = cmd("BLPOP").arg(keys).arg(timeout).timeout(blocking(timeout));
    /// `SADD key member...`.
    fn sadd(key: impl ToArg, members: impl ToArg) = cmd("SADD").arg(key).arg(members);
    /// `SREM key member...`.
    fn srem(key: impl ToArg, members: impl ToArg) = cmd("SREM").arg(key).arg(members);
    /// `SMEMBERS key`.
    fn smembers(key: impl ToArg) = cmd("SMEMBERS").arg(key);
    /// `SISMEMBER key member`.
    fn sismember(key: impl ToArg, member: impl ToArg) = cmd("SISMEMBER").arg(key).arg(member);
    /// `SCARD key`.
    fn scard(key: impl ToArg) = cmd("SCARD").arg(key);
    /// `ZADD key score member`.
    fn zadd(key: impl ToArg, score: f64, member: impl ToArg) = cmd("ZADD").arg(key).arg(score).arg(member);
    /// `ZREM key member...`.
    fn zrem(key: impl ToArg, members: impl ToArg) = cmd("ZREM").arg(key).arg(members);
    /// `ZSCORE key member`.
    fn zscore(key: impl ToArg, member: impl ToArg) = cmd("ZSCORE").arg(key).arg(member);
    /// `ZINCRBY key delta member`.
    fn zincr_by(key: impl ToArg, delta: f64, member: impl ToArg) = cmd("ZINCRBY").arg(key).arg(delta).arg(member);
    /// `ZRANGE key start stop`.
    fn zrange(key: impl ToArg, start: i64, stop: i64) = cmd("ZRANGE").arg(key).arg(start).arg(stop);
    /// `ZRANGE key start stop WITHSCORES` (into `Vec<(member, score)>`).
    fn zrange_withscores(key: impl ToArg, start: i64, stop: i64) = cmd("ZRANGE").arg(key).arg(start).arg(stop).arg("WITHSCORES");
    /// `ZRANK key member`.
    fn zrank(key: impl ToArg, member: impl ToArg) = cmd("ZRANK").arg(key).arg(member);
    /// `ZCARD key`.
    fn zcard(key: impl ToArg) = cmd("ZCARD").arg(key);
    /// `EVAL script numkeys key... arg...`.
    fn eval(script: impl ToArg, keys: &[&str], args: impl ToArg) = cmd("EVAL").arg(script).arg(keys.len()).arg(keys).arg(args);
    /// `EVALSHA sha numkeys key... arg...`.
    fn evalsha(sha: impl ToArg, keys: &[&str], args: impl ToArg) = cmd("EVALSHA").arg(sha).arg(keys.len()).arg(keys).arg(args);
    /// `SCRIPT LOAD script`: its SHA1.
    fn script_load(script: impl ToArg) = cmd("SCRIPT").arg("LOAD").arg(script);
    /// `PUBLISH channel message`: how many subscribers got it.
    fn publish(channel: impl ToArg, message: impl ToArg) = cmd("PUBLISH").arg(channel).arg(message);
    /// `DBSIZE`.
    fn dbsize() = cmd("DBSIZE");
    /// `FLUSHDB`.
    fn flushdb() = cmd("FLUSHDB");
}
