//! How a session runs: who it is, who it talks to, its timers and its checks.

use std::sync::Arc;
use std::time::Duration;

use super::schedule::Schedule;
use crate::codec::{Message, Precision};
use crate::dict::{Dictionary, Validation};

/// Which side opens the connection and sends the first Logon.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Connects and logs on.
    Initiator,
    /// Accepts, and answers a Logon.
    Acceptor,
}

/// Decides whether a stored application message is resent (`true`) or gap-filled over
/// (`false`), e.g. to not resend orders that went stale while the link was down.
pub type ResendFilter = Arc<dyn Fn(&Message<'_>) -> bool + Send + Sync>;

/// A session's settings (QuickFIX's names in parentheses).
#[derive(Clone)]
pub struct SessionConfig {
    /// `FIX.4.2`, `FIX.4.4` or `FIXT.1.1` (BeginString).
    pub begin_string: String,
    /// Ours (SenderCompID).
    pub sender_comp_id: String,
    /// Theirs (TargetCompID).
    pub target_comp_id: String,
    /// Initiator or acceptor (ConnectionType).
    pub role: Role,
    /// The heartbeat interval an initiator asks for; an acceptor takes the initiator's
    /// (HeartBtInt).
    pub heart_bt_int: Duration,
    /// How long a Logon may go unanswered (LogonTimeout).
    pub logon_timeout: Duration,
    /// How long a Logout may go unanswered before the connection is closed (LogoutTimeout).
    pub logout_timeout: Duration,
    /// The first wait before an initiator reconnects; it doubles on every failure up to 16x
    /// (ReconnectInterval).
    pub reconnect_interval: Duration,
    /// Reset both sequence numbers at every Logon (ResetOnLogon): the initiator asks with
    /// ResetSeqNumFlag.
    pub reset_on_logon: bool,
    /// The precision of the timestamps written (TimeStampPrecision).
    pub precision: Precision,
    /// The dictionary application messages are checked against (`None`: only the session
    /// layer's checks) (DataDictionary).
    pub dictionary: Option<Arc<Dictionary>>,
    /// What is checked (ValidateFieldsOutOfOrder, ValidateUserDefinedFields, ...).
    pub validation: Validation,
    /// The highest sequence number used: sending stops before it, with an error, rather than
    /// wrap (many engines keep sequence numbers in 32 bits).
    pub max_seq_num: u64,
    /// FIXT 1.1 only: DefaultApplVerID sent on Logon (`None`: `9`, FIX 5.0 SP2).
    pub default_appl_ver_id: Option<String>,
    /// Which stored application messages are resent; `None`: all.
    pub resend_filter: Option<ResendFilter>,
    /// How far a received SendingTime may be from our clock before the message is rejected
    /// (reason 10) and the session logged out; `None`: not checked (CheckLatency,
    /// MaxLatency).
    pub max_latency: Option<Duration>,
    /// When the session runs (StartTime, EndTime, StartDay, EndDay, Weekdays, TimeZone);
    /// `None`: always, never starting over by itself (NonStopSession).
    pub schedule: Option<Schedule>,
}

impl std::fmt::Debug for SessionConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionConfig")
            .field("begin_string", &self.begin_string)
            .field("sender_comp_id", &self.sender_comp_id)
            .field("target_comp_id", &self.target_comp_id)
            .field("role", &self.role)
            .field("heart_bt_int", &self.heart_bt_int)
            .finish_non_exhaustive()
    }
}

impl SessionConfig {
    /// A FIX 4.4 session from `sender` to `target` with the usual settings: 30 s heartbeats,
    /// 10 s to log on, 2 s to log out, millisecond timestamps, SendingTime within 120 s, no
    /// dictionary.
    pub fn new(role: Role, sender: &str, target: &str) -> SessionConfig {
        SessionConfig {
            begin_string: "FIX.4.4".into(),
            sender_comp_id: sender.into(),
            target_comp_id: target.into(),
            role,
            heart_bt_int: Duration::from_secs(30),
            logon_timeout: Duration::from_secs(10),
            logout_timeout: Duration::from_secs(2),
            reconnect_interval: Duration::from_secs(5),
            reset_on_logon: false,
            precision: Precision::Millis,
            dictionary: None,
            validation: Validation::default(),
            max_seq_num: i32::MAX as u64,
            default_appl_ver_id: None,
            resend_filter: None,
            schedule: None,
            max_latency: Some(Duration::from_secs(120)),
        }
    }
}
