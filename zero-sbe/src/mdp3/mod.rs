//! CME MDP 3.0: the packet framing, A/B arbitration, and (to come) recovery and books.

pub mod arbiter;
pub mod packet;
