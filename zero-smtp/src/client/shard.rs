//! The client on a shard of its own, blocking until its messages are done: what
//! `zero smtp send` and tests use. (A relay runs [`Client`]s inline on its shard, each in a
//! zero-core [`Driver`].)

use std::time::{Duration, Instant};

use zero_core::machine::{Driver, Machine};
use zero_core::{Config, Event as IoEvent, Handler, Io, Ops, Target};

use super::{Client, ClientConfig, Event, Failure, Outgoing};
use crate::codec::reply::Reply;

/// Per message, per recipient: the server's acceptance or why not.
pub type Outcomes = Vec<Vec<Result<Reply, Failure>>>;

/// Delivers `messages` to `target` over one connection, waiting at most `within`; returns
/// each message's outcome, in order. Whether TLS was used is the second value.
pub fn send_blocking(
    target: Target,
    config: ClientConfig,
    messages: Vec<Outgoing>,
    within: Duration,
) -> Result<(Outcomes, bool), String> {
    struct Run {
        driver: Driver<Client>,
        outcomes: Vec<Option<Vec<Result<Reply, Failure>>>>,
        tls: bool,
    }
    impl Handler for Run {
        fn on_event(&mut self, ops: &mut Ops, event: IoEvent<'_>) {
            if let IoEvent::Timer { token: u64::MAX, .. } = event {
                let now = ops.now();
                self.driver.machine().handle_timeout(now + Duration::from_secs(86_400));
            }
            self.driver.on_event(ops, &event);
        }
        fn on_batch_end(&mut self, ops: &mut Ops) {
            while let Some(event) = self.driver.machine().poll_event() {
                if let Event::Outcome { id, recipients } = event {
                    self.tls |= self.driver.machine_ref().is_tls();
                    if let Some(slot) = self.outcomes.get_mut(id.0 as usize - 1) {
                        *slot = Some(recipients);
                    }
                }
            }
            if self.outcomes.iter().all(Option::is_some) {
                self.driver.machine().quit(ops.now());
            }
            self.driver.pump(ops);
            if self.driver.machine_ref().is_drained()
                || self.driver.conn().is_none() && self.outcomes.iter().all(Option::is_some)
            {
                ops.stop();
            }
        }
    }
    let mut io = Io::new(Config::default()).map_err(|e| e.to_string())?;
    let now = Instant::now();
    let mut client = Client::new(config);
    let count = messages.len();
    for m in messages {
        client.send(now, m);
    }
    let mut run = Run { driver: Driver::new(client, target, 0), outcomes: vec![None; count], tls: false };
    // The overall deadline: whatever is not done by then fails as timed out.
    io.timer(within, u64::MAX);
    run.on_batch_end(&mut io);
    io.run(&mut run).map_err(|e| e.to_string())?;
    let outcomes = run.outcomes.into_iter().map(|o| o.unwrap_or_default()).collect();
    Ok((outcomes, run.tls))
}
