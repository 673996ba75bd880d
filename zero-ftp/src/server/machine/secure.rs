//! FTPS on the control connection (RFC 4217): `AUTH TLS`, `PBSZ`, `PROT`.

use zero_core::machine::Upgrade;

use super::{Login, Phase, Session};

impl Session {
    /// `AUTH TLS` (RFC 4217 4): before login only; `234`, then nothing is read until the
    /// handshake ends, and what followed the command in plaintext is dropped (CVE-2011-0411).
    pub(super) fn auth(&mut self, arg: &str) {
        let Some(config) = self.config.tls.clone() else {
            return self.reply(502, "TLS is not configured on this server.");
        };
        if self.tls {
            return self.reply(503, "Already using TLS.");
        }
        if !matches!(self.login, Login::None) {
            return self.reply(503, "AUTH must come before USER.");
        }
        if !matches!(arg.to_ascii_uppercase().as_str(), "TLS" | "TLS-C" | "SSL") {
            return self.reply(504, "Unknown AUTH type.");
        }
        self.reply(234, "Proceed with negotiation.");
        self.input.clear();
        self.upgrade = Some(Upgrade::Server(config));
        self.phase = Phase::Upgrading;
    }

    /// `PBSZ` (RFC 4217 9): 0 is the only size a stream over TLS has.
    pub(super) fn pbsz(&mut self) {
        if !self.tls {
            return self.reply(503, "PBSZ needs a TLS session: AUTH TLS first.");
        }
        self.pbsz = true;
        self.reply(200, "PBSZ=0");
    }

    /// `PROT` (RFC 4217 9): C (clear) or P (private); S and E have no meaning over TLS.
    pub(super) fn prot(&mut self, arg: &str) {
        if !self.tls {
            return self.reply(503, "PROT needs a TLS session: AUTH TLS first.");
        }
        if !self.pbsz {
            return self.reply(503, "PBSZ first.");
        }
        match arg.trim().to_ascii_uppercase().as_str() {
            "P" => {
                self.private = true;
                self.reply(200, "PROT now Private.");
            }
            "C" => {
                self.private = false;
                self.reply(200, "PROT now Clear.");
            }
            "S" | "E" => self.reply(536, "PROT level not supported."),
            _ => self.reply(504, "Unknown PROT level."),
        }
    }
}
