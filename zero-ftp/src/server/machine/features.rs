//! What the server says of itself: `FEAT` (RFC 2389), `OPTS`, `HELP`, and `HOST` (RFC 7151).

use super::{Login, Session};
use crate::codec::reply::Reply;

impl Session {
    pub(super) fn host(&mut self, arg: String) {
        // RFC 7151 3: before USER, and once; one virtual host here, any name is taken.
        if self.login != Login::None {
            return self.reply(503, "HOST must come before USER.");
        }
        if arg.is_empty() {
            return self.reply(501, "HOST takes a name.");
        }
        self.reply(220, "HOST accepted.");
    }

    pub(super) fn feat(&mut self) {
        let tls = self.config.tls.is_some();
        let features = [
            "EPRT",
            "EPSV",
            "HOST",
            "MDTM",
            "MLST type*;size*;modify*;perm*;UNIX.mode*;",
            "PASV",
            "REST STREAM",
            "SIZE",
            "TVFS",
            "UTF8",
        ];
        let secure = ["AUTH TLS", "PBSZ", "PROT"];
        let lines = features.iter().chain(secure.iter().filter(|_| tls)).map(|f| f.to_string()).collect();
        Reply::multi(211, "Features:", lines, "End").write(&mut self.out);
    }

    pub(super) fn help(&mut self) {
        let lines = vec![
            "ABOR ACCT ALLO APPE CDUP CWD  DELE EPRT EPSV FEAT HELP HOST LIST MDTM MKD".to_string(),
            "MLSD MLST MODE NLST NOOP OPTS PASS PASV PORT PWD  QUIT REST RETR RMD  RNFR".to_string(),
            "RNTO SITE SIZE STAT STOR STOU STRU SYST TYPE USER XCUP XCWD XMKD XPWD XRMD".to_string(),
        ];
        Reply::multi(214, "The following commands are recognized.", lines, "Help OK.").write(&mut self.out);
    }

    pub(super) fn opts(&mut self, arg: &str) {
        let upper = arg.to_ascii_uppercase();
        if upper == "UTF8 ON" || upper == "UTF-8 ON" {
            self.reply(200, "Always in UTF8 mode.");
        } else if upper.starts_with("MLST") {
            // RFC 3659 7.9: every fact is always sent; the list asked for is acknowledged.
            self.reply(200, "MLST OPTS type;size;modify;perm;UNIX.mode;");
        } else {
            self.reply(501, "Option not understood.");
        }
    }
}
