//! Generational ids for the sockets of a shard. An id names one slot *and* one occupancy of it:
//! once a socket closes its id goes stale for good, so a late command can never reach the
//! connection that reuses the slot.

use std::fmt;

macro_rules! slot_id {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name {
            pub(crate) index: u32,
            pub(crate) gen: u32,
        }

        impl $name {
            pub(crate) fn new(index: u32, gen: u32) -> Self {
                Self { index, gen }
            }

            /// The slot it names. Slots are small and dense (a closed socket's slot is
            /// reused), so a table indexed by slot can stand in for a map keyed by id: a slot
            /// is given to a new socket only after the handler has been handed the event that
            /// ended its previous one (`Closed`, `Detached`, `ConnectFailed`), so such a table
            /// never finds a slot taken while it still holds the slot's last occupant.
            pub fn slot(self) -> usize {
                self.index as usize
            }

            /// A compact form, unique within the shard, e.g. for use as a map key.
            pub fn to_u64(self) -> u64 {
                (self.gen as u64) << 32 | self.index as u64
            }

            /// Reads the form it is displayed in (`conn#12.3`), or just `12.3`.
            pub fn parse(s: &str) -> Option<Self> {
                let s = s.strip_prefix(concat!($prefix, "#")).unwrap_or(s);
                let (index, gen) = s.split_once('.')?;
                Some(Self { index: index.parse().ok()?, gen: gen.parse().ok()? })
            }

            /// The inverse of [`Self::to_u64`].
            pub fn from_u64(v: u64) -> Self {
                Self { index: v as u32, gen: (v >> 32) as u32 }
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!($prefix, "#{}.{}"), self.index, self.gen)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(self, f)
            }
        }
    };
}

slot_id!(
    /// A TCP or Unix stream connection, accepted or connected.
    ConnId,
    "conn"
);
slot_id!(
    /// A listening TCP or Unix stream socket.
    ListenerId,
    "listener"
);
slot_id!(
    /// A bound UDP socket.
    UdpId,
    "udp"
);
