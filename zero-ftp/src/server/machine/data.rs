//! Choosing the data connection: `PASV`, `EPSV` (RFC 2428), `PORT`, `EPRT`, with their
//! rules (RFC 2577 3: no bounce; `EPSV ALL`).

use super::{Event, Phase, Session};
use crate::codec::command::{self, Verb};
use crate::server::DataMode;

impl Session {
    pub(super) fn passive(&mut self, verb: Verb, arg: &str) {
        let v6 = self.peer.local.ip().to_canonical().is_ipv6();
        if verb == Verb::Epsv {
            match arg.trim().to_ascii_uppercase().as_str() {
                "ALL" => {
                    self.epsv_all = true;
                    return self.reply(200, "EPSV ALL ok.");
                }
                "" => {}
                "1" if !v6 => {}
                "2" if v6 => {}
                _ => {
                    return self.reply(
                        522,
                        if v6 {
                            "Network protocol not supported, use (2)"
                        } else {
                            "Network protocol not supported, use (1)"
                        },
                    )
                }
            }
        } else if self.epsv_all {
            return self.reply(503, "EPSV ALL is in force: use EPSV.");
        } else if v6 {
            return self.reply(500, "PASV is IPv4 only: use EPSV.");
        }
        if self.data.take().is_some() {
            self.events.push_back(Event::DropData);
        }
        self.events.push_back(Event::Passive { tls: self.private });
        self.phase = Phase::Passive { extended: verb == Verb::Epsv };
    }

    pub(super) fn active(&mut self, verb: Verb, arg: &str) {
        if self.epsv_all {
            return self.reply(503, "EPSV ALL is in force: use EPSV.");
        }
        let addr = if verb == Verb::Port { command::parse_port(arg) } else { command::parse_eprt(arg) };
        let Some(addr) = addr else {
            return self.reply(501, "Illegal PORT command.");
        };
        if addr.is_ipv6() != self.peer.remote.is_ipv6() && verb == Verb::Eprt {
            return self.reply(522, "Network protocol not supported.");
        }
        // RFC 2577 3: only to the client itself, and not to a privileged port.
        if !self.is_client(addr.ip()) || addr.port() < 1024 {
            return self.reply(500, "Illegal PORT command.");
        }
        if self.data.replace(DataMode::Active(addr)) == Some(DataMode::Passive) {
            self.events.push_back(Event::DropData);
        }
        let name = if verb == Verb::Port { "PORT" } else { "EPRT" };
        self.reply(200, format!("{name} command successful. Consider using PASV."));
    }
}
