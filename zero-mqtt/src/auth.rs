//! Password and ACL files for the MQTT broker, compatible with mosquitto 2.x.
//!
//! * [`PasswordFile`] reads the `mosquitto_passwd` format: one `username:hash` per line, where the
//!   hash is `$7$<iterations>$<salt b64>$<hash b64>` (PBKDF2-HMAC-SHA512, 64-byte key; written by
//!   mosquitto 2.0 with a 12-byte salt and 101 iterations, by later versions with a 64-byte salt) or
//!   the legacy `$6$<salt b64>$<hash b64>` (SHA-512 of password then salt, mosquitto 1.x). Plaintext
//!   passwords are refused. New hashes come from [`hash_password`].
//! * [`AclFile`] reads the `acl_file` format (`user`, `topic`, `pattern` lines) and answers
//!   [`AclFile::check`] for publish/receive and [`AclFile::check_subscribe`] for subscriptions.

use std::collections::HashMap;
use std::fmt;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;
use ring::rand::{SecureRandom, SystemRandom};
use ring::{digest, pbkdf2};

use crate::topic;

/// PBKDF2 rounds used by [`hash_password`] callers that do not choose their own.
///
/// 210,000 is OWASP's recommendation for PBKDF2-HMAC-SHA512 (Password Storage Cheat Sheet, 2023)
/// and the default in newer mosquitto sources (after 2.0, which used only 101). It costs roughly
/// 0.1–0.2 s of one core per verification in a release build, so the broker should verify on a
/// blocking thread and limit concurrent CONNECT attempts.
pub const DEFAULT_ITERATIONS: u32 = 210_000;

/// [`DEFAULT_ITERATIONS`] as the type ring wants.
const DEFAULT_ITERATIONS_NZ: NonZeroU32 = match NonZeroU32::new(DEFAULT_ITERATIONS) {
    Some(n) => n,
    None => panic!("DEFAULT_ITERATIONS must not be 0"),
};

/// Salt length written by [`hash_password`], as mosquitto 2.0 does.
const SALT_LEN: usize = 12;
/// Salt length written by mosquitto releases after 2.0 (also accepted when reading).
const LONG_SALT_LEN: usize = 64;
/// Length of both the PBKDF2-HMAC-SHA512 derived key and a SHA-512 digest.
const HASH_LEN: usize = 64;

/// Base64 decoder that accepts input with or without `=` padding.
const LENIENT_B64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Where a line-numbered error was found: `file line N` or just `line N` for parsed text.
fn at(file: &Option<PathBuf>, line: &usize) -> String {
    match file {
        Some(path) => format!("{} line {line}", path.display()),
        None => format!("line {line}"),
    }
}

/// Errors from reading password and ACL files.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// The file could not be read.
    #[error("cannot read {}: {source}; check that the path exists and is readable", path.display())]
    Io {
        /// File that failed.
        path: PathBuf,
        /// Underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A password file line holds a plaintext password instead of a hash.
    #[error(
        "{}: password for '{user}' is not a hash; create the file with `zero mqtt passwd` or mosquitto_passwd",
        at(.file, .line)
    )]
    PlaintextPassword {
        /// File, when known.
        file: Option<PathBuf>,
        /// 1-based line number.
        line: usize,
        /// User whose entry is plaintext.
        user: String,
    },
    /// A password hash uses a scheme this broker does not implement (e.g. `$argon2id$`).
    #[error(
        "{}: password for '{user}' uses unsupported hash scheme '{scheme}'; re-create it with \
         `zero mqtt passwd` or `mosquitto_passwd -H sha512-pbkdf2`",
        at(.file, .line)
    )]
    UnsupportedHash {
        /// File, when known.
        file: Option<PathBuf>,
        /// 1-based line number.
        line: usize,
        /// User whose entry is affected.
        user: String,
        /// The scheme prefix found, e.g. `$argon2id$`.
        scheme: String,
    },
    /// A user name cannot go into a password file.
    #[error("user name '{0}' must be non-empty and contain no ':'")]
    InvalidUser(String),
    /// A password file line is malformed.
    #[error("{}: {reason}; fix the line or re-create the file with `zero mqtt passwd`", at(.file, .line))]
    PasswordSyntax {
        /// File, when known.
        file: Option<PathBuf>,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// An ACL file line is malformed.
    #[error(
        "{}: {reason}; expected `user <name>`, `topic [read|write|readwrite|deny] <filter>` or \
         `pattern [read|write|readwrite|deny] <filter>`",
        at(.file, .line)
    )]
    AclSyntax {
        /// File, when known.
        file: Option<PathBuf>,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        reason: String,
    },
}

impl AuthError {
    /// Attaches the file path to a line-numbered error produced by `parse`.
    fn in_file(mut self, path: &Path) -> Self {
        match &mut self {
            AuthError::PlaintextPassword { file, .. }
            | AuthError::UnsupportedHash { file, .. }
            | AuthError::PasswordSyntax { file, .. }
            | AuthError::AclSyntax { file, .. } => *file = Some(path.to_path_buf()),
            AuthError::Io { .. } | AuthError::InvalidUser(_) => {}
        }
        self
    }
}

/// The (1-based line number, trimmed text) of each line that is neither blank nor a `#` comment.
fn content_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines()
        .enumerate()
        .map(|(i, raw)| (i + 1, raw.trim()))
        .filter(|(_, c)| !c.is_empty() && !c.starts_with('#'))
}

fn read_file(path: &Path) -> Result<String, AuthError> {
    std::fs::read_to_string(path).map_err(|source| AuthError::Io { path: path.to_path_buf(), source })
}

// ---------------------------------------------------------------------------------------------
// Passwords
// ---------------------------------------------------------------------------------------------

/// One decoded password hash.
#[derive(Clone)]
enum PasswordHash {
    /// `$7$`: PBKDF2-HMAC-SHA512.
    Pbkdf2 { iterations: NonZeroU32, salt: Vec<u8>, hash: [u8; HASH_LEN] },
    /// `$6$`: SHA-512(password || salt).
    Sha512 { salt: Vec<u8>, hash: [u8; HASH_LEN] },
}

impl PasswordHash {
    fn verify(&self, password: &[u8]) -> bool {
        match self {
            PasswordHash::Pbkdf2 { iterations, salt, hash } => {
                pbkdf2::verify(pbkdf2::PBKDF2_HMAC_SHA512, *iterations, salt, password, hash).is_ok()
            }
            PasswordHash::Sha512 { salt, hash } => {
                let mut ctx = digest::Context::new(&digest::SHA512);
                ctx.update(password);
                ctx.update(salt);
                constant_time_eq(ctx.finish().as_ref(), hash)
            }
        }
    }
}

/// Compares two byte strings without an early exit on the first difference.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | std::hint::black_box(x ^ y));
    std::hint::black_box(diff) == 0
}

/// Why a hash string could not be decoded (turned into an [`AuthError`] with the line).
enum HashProblem {
    Plaintext,
    Unsupported(String),
    Malformed(&'static str),
}

fn decode_b64(text: &str, what: &'static str) -> Result<Vec<u8>, HashProblem> {
    LENIENT_B64.decode(text).map_err(|_| HashProblem::Malformed(what))
}

fn decode_salt(text: &str) -> Result<Vec<u8>, HashProblem> {
    let salt = decode_b64(text, "salt is not valid base64")?;
    if salt.len() != SALT_LEN && salt.len() != LONG_SALT_LEN {
        return Err(HashProblem::Malformed("salt must decode to 12 or 64 bytes"));
    }
    Ok(salt)
}

fn decode_hash(text: &str) -> Result<[u8; HASH_LEN], HashProblem> {
    let bytes = decode_b64(text, "hash is not valid base64")?;
    bytes.try_into().map_err(|_| HashProblem::Malformed("hash must decode to 64 bytes"))
}

/// The `$name$` prefix of a well-known crypt-style hash that is not supported, e.g. `$argon2id$`.
///
/// Only known names count, so a plaintext password that merely starts with `$` is reported as
/// plaintext and never echoed in an error.
fn scheme_prefix(text: &str) -> Option<&str> {
    const KNOWN: [&str; 9] = ["argon2id", "argon2i", "argon2d", "1", "2a", "2b", "2y", "5", "8"];
    let rest = text.strip_prefix('$')?;
    let end = rest.find('$')?;
    KNOWN.contains(&&rest[..end]).then(|| &text[..end + 2])
}

/// Decodes a `$6$...` or `$7$...` hash string.
fn decode_password_hash(text: &str) -> Result<PasswordHash, HashProblem> {
    if let Some(rest) = text.strip_prefix("$7$") {
        let parts: Vec<&str> = rest.split('$').collect();
        let [iterations, salt, hash] = parts[..] else {
            return Err(HashProblem::Malformed("a $7$ hash must be $7$<iterations>$<salt>$<hash>"));
        };
        let iterations = if iterations.bytes().all(|b| b.is_ascii_digit()) {
            iterations.parse::<u32>().ok().and_then(NonZeroU32::new)
        } else {
            None
        };
        let iterations =
            iterations.ok_or(HashProblem::Malformed("iteration count must be a whole number from 1"))?;
        Ok(PasswordHash::Pbkdf2 { iterations, salt: decode_salt(salt)?, hash: decode_hash(hash)? })
    } else if let Some(rest) = text.strip_prefix("$6$") {
        let parts: Vec<&str> = rest.split('$').collect();
        let [salt, hash] = parts[..] else {
            return Err(HashProblem::Malformed("a $6$ hash must be $6$<salt>$<hash>"));
        };
        Ok(PasswordHash::Sha512 { salt: decode_salt(salt)?, hash: decode_hash(hash)? })
    } else if let Some(scheme) = scheme_prefix(text) {
        Err(HashProblem::Unsupported(scheme.to_string()))
    } else {
        Err(HashProblem::Plaintext)
    }
}

/// Users and their password hashes, read from a mosquitto-compatible password file.
#[derive(Clone)]
pub struct PasswordFile {
    users: HashMap<String, PasswordHash>,
    /// Hash checked for unknown users so that they cost as much time as known ones.
    dummy: PasswordHash,
}

impl fmt::Debug for PasswordFile {
    /// Lists user names only; hashes are never printed.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut names: Vec<&str> = self.users.keys().map(String::as_str).collect();
        names.sort_unstable();
        f.debug_struct("PasswordFile").field("users", &names).finish_non_exhaustive()
    }
}

impl PasswordFile {
    /// Parses password file text; errors name the 1-based line.
    ///
    /// Blank lines and lines starting with `#` are skipped; surrounding whitespace is ignored. The
    /// user name is everything before the first `:`. Plaintext passwords, unknown hash schemes,
    /// malformed hashes and duplicate users are errors.
    pub fn parse(text: &str) -> Result<PasswordFile, AuthError> {
        let mut users = HashMap::new();
        let mut max_iterations = None::<NonZeroU32>;
        for (line, content) in content_lines(text) {
            let syntax = |reason: String| AuthError::PasswordSyntax { file: None, line, reason };
            let Some((user, hash_text)) = content.split_once(':') else {
                return Err(syntax("expected `username:hash`, found no ':'".to_string()));
            };
            if user.is_empty() {
                return Err(syntax("user name is empty".to_string()));
            }
            let hash = decode_password_hash(hash_text).map_err(|problem| match problem {
                HashProblem::Plaintext => {
                    AuthError::PlaintextPassword { file: None, line, user: user.to_string() }
                }
                HashProblem::Unsupported(scheme) => {
                    AuthError::UnsupportedHash { file: None, line, user: user.to_string(), scheme }
                }
                HashProblem::Malformed(reason) => syntax(format!("password hash for '{user}': {reason}")),
            })?;
            if let PasswordHash::Pbkdf2 { iterations, .. } = &hash {
                max_iterations = max_iterations.max(Some(*iterations));
            }
            if users.insert(user.to_string(), hash).is_some() {
                return Err(syntax(format!("user '{user}' appears more than once")));
            }
        }
        let iterations = max_iterations.unwrap_or(DEFAULT_ITERATIONS_NZ);
        let dummy = PasswordHash::Pbkdf2 { iterations, salt: random_salt().to_vec(), hash: [0; HASH_LEN] };
        Ok(PasswordFile { users, dummy })
    }

    /// Reads and parses a password file; errors name the file and line.
    pub fn load(path: &Path) -> Result<PasswordFile, AuthError> {
        PasswordFile::parse(&read_file(path)?).map_err(|e| e.in_file(path))
    }

    /// Checks a password; `false` for a wrong password or unknown user.
    ///
    /// An unknown user still costs one PBKDF2 run with the highest iteration count in the file, so
    /// response time does not reveal which user names exist. All bytes of `password` are hashed
    /// (mosquitto stops at the first NUL byte, which its own tools never write).
    pub fn verify(&self, username: &str, password: &[u8]) -> bool {
        match self.users.get(username) {
            Some(hash) => hash.verify(password),
            None => {
                let _ = std::hint::black_box(self.dummy.verify(password));
                false
            }
        }
    }

    /// Number of users.
    pub fn len(&self) -> usize {
        self.users.len()
    }

    /// Whether the file has no users.
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }
}

fn random_salt() -> [u8; SALT_LEN] {
    let mut salt = [0u8; SALT_LEN];
    SystemRandom::new().fill(&mut salt).expect("the operating system's random number generator failed");
    salt
}

/// Makes a `$7$<iterations>$<salt>$<hash>` value for a password file line (`username:` + this).
///
/// Uses PBKDF2-HMAC-SHA512 with a random 12-byte salt and a 64-byte key, base64 with padding,
/// exactly as `mosquitto_passwd` 2.0 writes it. An `iterations` of 0 is raised to 1; use
/// [`DEFAULT_ITERATIONS`] unless there is a reason not to.
///
/// # Panics
/// If the operating system's random number generator fails.
pub fn hash_password(password: &[u8], iterations: u32) -> String {
    let iterations = NonZeroU32::new(iterations).unwrap_or(NonZeroU32::MIN);
    let salt = random_salt();
    let mut hash = [0u8; HASH_LEN];
    pbkdf2::derive(pbkdf2::PBKDF2_HMAC_SHA512, iterations, &salt, password, &mut hash);
    format!("$7${iterations}${}${}", STANDARD.encode(salt), STANDARD.encode(hash))
}

/// Password file text with `user`'s line set to a fresh hash of `password` (appended if the
/// user is new); every other line is kept as it was.
pub fn set_password(text: &str, user: &str, password: &[u8], iterations: u32) -> Result<String, AuthError> {
    if user.is_empty() || user.contains(':') {
        return Err(AuthError::InvalidUser(user.to_string()));
    }
    let mut out = String::new();
    for line in text.lines().filter(|l| l.trim().split_once(':').is_none_or(|(u, _)| u != user)) {
        out.push_str(line);
        out.push('\n');
    }
    out.push_str(&format!("{user}:{}\n", hash_password(password, iterations)));
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// ACLs
// ---------------------------------------------------------------------------------------------

/// Kind of access being checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Subscribe to, or receive a message on, a topic.
    Read,
    /// Publish to a topic.
    Write,
}

/// Access a rule line grants or denies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RuleAccess {
    Read,
    Write,
    ReadWrite,
    Deny,
}

impl RuleAccess {
    fn grants(self, access: Access) -> bool {
        matches!(
            (self, access),
            (RuleAccess::ReadWrite, _)
                | (RuleAccess::Read, Access::Read)
                | (RuleAccess::Write, Access::Write)
        )
    }
}

#[derive(Debug, Clone)]
struct Rule {
    access: RuleAccess,
    filter: String,
}

/// Per-user, anonymous and pattern access rules, read from a mosquitto-compatible `acl_file`.
///
/// Supported lines (blank lines and `#` comments are skipped):
/// * `user <name>`: following `topic` lines apply to that user, until the next `user` line.
/// * `topic [read|write|readwrite|deny] <filter>`: access defaults to `readwrite`; lines before any
///   `user` line apply to anonymous clients only.
/// * `pattern [read|write|readwrite|deny] <filter>`: applies to every client, with `%u` replaced by
///   the user name and `%c` by the client id.
///
/// A request is allowed when some applicable rule grants the access and no applicable `deny` rule
/// matches. Unlike mosquitto, where a granting `user` rule wins before patterns are read, a matching
/// `deny` anywhere (user, anonymous or pattern rule) always wins.
#[derive(Debug, Clone, Default)]
pub struct AclFile {
    anonymous: Vec<Rule>,
    users: HashMap<String, Vec<Rule>>,
    patterns: Vec<Rule>,
}

/// Outcome of substituting `%u` / `%c` into a pattern.
enum Substituted {
    Filter(String),
    /// The pattern uses `%u` and the client is anonymous: it does not apply.
    NotApplicable,
    /// A substituted value contains `+`, `#` or `/`.
    Unsafe,
}

fn substitute(template: &str, client_id: &str, username: Option<&str>) -> Substituted {
    let dangerous = |value: &str| value.contains(['+', '#', '/']);
    let mut out = template.to_string();
    if template.contains("%u") {
        match username {
            None => return Substituted::NotApplicable,
            Some(user) if dangerous(user) => return Substituted::Unsafe,
            Some(user) => out = out.replace("%u", user),
        }
    }
    if template.contains("%c") {
        if dangerous(client_id) {
            return Substituted::Unsafe;
        }
        out = out.replace("%c", client_id);
    }
    Substituted::Filter(out)
}

impl AclFile {
    /// Parses ACL file text; errors name the 1-based line.
    ///
    /// User names and filters are the rest of the line (they may contain spaces), trimmed. Filters
    /// must be valid MQTT topic filters; an unknown directive is an error.
    pub fn parse(text: &str) -> Result<AclFile, AuthError> {
        let mut acl = AclFile::default();
        let mut current_user: Option<String> = None;
        for (line, content) in content_lines(text) {
            let err = |reason: String| AuthError::AclSyntax { file: None, line, reason };
            let (directive, rest) = content.split_once([' ', '\t']).unwrap_or((content, ""));
            let rest = rest.trim();
            match directive {
                "user" => {
                    if rest.is_empty() {
                        return Err(err("`user` needs a user name".to_string()));
                    }
                    acl.users.entry(rest.to_string()).or_default();
                    current_user = Some(rest.to_string());
                }
                "topic" | "pattern" => {
                    let (keyword, after) = rest.split_once([' ', '\t']).unwrap_or((rest, ""));
                    let (access, filter) = match keyword {
                        "read" => (RuleAccess::Read, after.trim()),
                        "write" => (RuleAccess::Write, after.trim()),
                        "readwrite" => (RuleAccess::ReadWrite, after.trim()),
                        "deny" => (RuleAccess::Deny, after.trim()),
                        _ => (RuleAccess::ReadWrite, rest),
                    };
                    if filter.is_empty() {
                        return Err(err(format!("`{directive}` needs a topic filter")));
                    }
                    if !topic::valid_topic_filter(filter) {
                        return Err(err(format!(
                            "'{filter}' is not a valid topic filter ('+' and '#' must fill a whole \
                             level, '#' only as the last level)"
                        )));
                    }
                    let rule = Rule { access, filter: filter.to_string() };
                    if directive == "pattern" {
                        acl.patterns.push(rule);
                    } else if let Some(user) = &current_user {
                        acl.users.entry(user.clone()).or_default().push(rule);
                    } else {
                        acl.anonymous.push(rule);
                    }
                }
                other => return Err(err(format!("unknown directive '{other}'"))),
            }
        }
        Ok(acl)
    }

    /// Reads and parses an ACL file; errors name the file and line.
    pub fn load(path: &Path) -> Result<AclFile, AuthError> {
        AclFile::parse(&read_file(path)?).map_err(|e| e.in_file(path))
    }

    /// Whether the client may publish to (`Write`) or receive from (`Read`) the concrete `topic`.
    ///
    /// Applicable rules: the user's `topic` rules (the anonymous ones when `username` is `None`)
    /// plus every `pattern`. Patterns using `%u` do not apply to anonymous clients. If the user name
    /// or client id contains `+`, `#` or `/`, a pattern that would substitute it is refused rather
    /// than expanded (that would let a client inject wildcards or extra levels into the filter):
    /// such an allow pattern grants nothing and such a deny pattern denies the request. A topic name
    /// that is empty or contains wildcards is refused.
    pub fn check(&self, client_id: &str, username: Option<&str>, topic: &str, access: Access) -> bool {
        if topic.is_empty() || topic.contains(['+', '#']) {
            return false;
        }
        self.decide(client_id, username, access, |filter| topic::matches(filter, topic))
    }

    /// Whether the client may subscribe to the topic filter `filter`.
    ///
    /// The request is allowed when a `read`/`readwrite` rule covers the whole filter: comparing
    /// level by level, a rule `#` covers everything from there on (including the parent level), a
    /// rule `+` covers any one level including a requested `+` (but not `#`), and a literal rule
    /// level covers only the same literal. So rule `a/#` allows `a/+/b` and `a/#`, and rule `a/+`
    /// allows `a/b` and `a/+` but not `a/#`. A `deny` rule refuses the subscription only when it
    /// covers the filter the same way; narrower denials (rule `a/secret` under a request `a/#`) are
    /// enforced per message, so the broker must still call [`AclFile::check`] with [`Access::Read`]
    /// before delivering each message. Pattern handling is as in [`AclFile::check`]. Strip a
    /// `$share/<group>/` prefix before calling; an invalid filter is refused.
    pub fn check_subscribe(&self, client_id: &str, username: Option<&str>, filter: &str) -> bool {
        if !topic::valid_topic_filter(filter) {
            return false;
        }
        self.decide(client_id, username, Access::Read, |rule| filter_covers(rule, filter))
    }

    /// Applies the allow/deny rules with `matches(rule_filter)` deciding whether a rule applies.
    fn decide(
        &self,
        client_id: &str,
        username: Option<&str>,
        access: Access,
        matches: impl Fn(&str) -> bool,
    ) -> bool {
        let own = match username {
            Some(user) => self.users.get(user).map_or(&[][..], Vec::as_slice),
            None => &self.anonymous[..],
        };
        let mut allowed = false;
        for rule in own {
            if matches(&rule.filter) {
                if rule.access == RuleAccess::Deny {
                    return false;
                }
                allowed |= rule.access.grants(access);
            }
        }
        for rule in &self.patterns {
            match substitute(&rule.filter, client_id, username) {
                Substituted::Filter(filter) => {
                    if matches(&filter) {
                        if rule.access == RuleAccess::Deny {
                            return false;
                        }
                        allowed |= rule.access.grants(access);
                    }
                }
                Substituted::NotApplicable => {}
                Substituted::Unsafe => {
                    if rule.access == RuleAccess::Deny {
                        return false;
                    }
                }
            }
        }
        allowed
    }
}

/// Whether the rule filter `rule` covers every topic the requested filter `requested` can
/// match: as [`topic::matches`], with the requested filter's `+` and `#` as levels that only a
/// rule's `+` (for `+`) or `#` covers.
fn filter_covers(rule: &str, requested: &str) -> bool {
    if requested.starts_with('$') && matches!(rule.split('/').next(), Some("+" | "#")) {
        return false;
    }
    let mut rule_levels = rule.split('/');
    let mut requested_levels = requested.split('/');
    loop {
        match (rule_levels.next(), requested_levels.next()) {
            (Some("#"), _) => return true,
            (Some("+"), Some(level)) if level != "#" => {}
            (Some(want), Some(level)) if want == level => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A file under the system temp directory, removed on drop.
    struct TempFile(PathBuf);

    impl TempFile {
        fn new(tag: &str) -> TempFile {
            static COUNTER: AtomicUsize = AtomicUsize::new(0);
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            let nanos =
                std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
            TempFile(
                std::env::temp_dir().join(format!("zero-mqtt-auth-{tag}-{}-{n}-{nanos}", std::process::id())),
            )
        }
    }

    impl Drop for TempFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    // Vectors computed independently with Python's hashlib (see the summary in each test).

    /// `python3 -c "import hashlib,base64; s=bytes(range(1,13)); ...sha512(b'correct horse'+s)"`.
    const SHA512_LINE: &str = "carol:$6$AQIDBAUGBwgJCgsM$k4h6DJTPKKgPqwiLW87w0j5t6eo2nkDOCc72xNQ6goxbMrAMEDvsnYteF9SSd1cyXtc8SuF5I0GVPt7YRi6Wdw==";
    /// `hashlib.pbkdf2_hmac('sha512', b'hunter2', b'zero-mqtt-12', 1000)`.
    const PBKDF2_LINE: &str = "dave:$7$1000$emVyby1tcXR0LTEy$liv9yfJexXcdujfAdMGsX7b1V0gCqioAObMv8i4PT/jQ+GXpJNk5FW13bFv7kqHczJSaCsOO2dInSj1XVhJl3g==";
    /// `hashlib.pbkdf2_hmac('sha512', b'long-salt', bytes(range(64)), 101)`: newer mosquitto's salt size.
    const PBKDF2_LONG_SALT_LINE: &str = "erin:$7$101$AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7PD0+Pw==$HzK4GBH+HFlv+o+QFOAAdu+KAzaZl8VsWQkliy02L0tvEBXODewCWIa3DSMv8zx7hAwHMkRUjfP0aJ/SyBYc4g==";
    /// Written by mosquitto_passwd 2.0.11 (`-b -c FILE alice secret`), checked with hashlib too.
    const MOSQUITTO_LINE: &str = "alice:$7$101$3xqndjCORJFOv+Ic$hEJFtz60oePOc+qFNuopoieORX3AmbBZ7RBxQPMNSjlosJqSNR8d2BKRFjcSs6C0Mk6m5hJuyb9UfNoRjMggxg==";

    #[test]
    fn hash_password_round_trip() {
        let line = format!("bob:{}", hash_password(b"s3cret", 1000));
        let file = PasswordFile::parse(&line).unwrap();
        assert_eq!(file.len(), 1);
        assert!(!file.is_empty());
        assert!(file.verify("bob", b"s3cret"));
        assert!(!file.verify("bob", b"s3cret "));
        assert!(!file.verify("bob", b""));
    }

    #[test]
    fn hash_password_format_matches_mosquitto() {
        let value = hash_password(b"pw", 101);
        let parts: Vec<&str> = value.split('$').collect();
        assert_eq!(parts[..3], ["", "7", "101"]);
        assert_eq!(STANDARD.decode(parts[3]).unwrap().len(), 12);
        assert_eq!(parts[4].len(), 88, "64 bytes in padded base64");
        assert!(parts[4].ends_with("=="));
        assert_ne!(hash_password(b"pw", 101), value, "salts are random");
        assert!(hash_password(b"pw", 0).starts_with("$7$1$"));
    }

    #[test]
    fn default_iterations_round_trip() {
        let value = hash_password(b"pw", DEFAULT_ITERATIONS);
        assert!(value.starts_with("$7$210000$"));
        let file = PasswordFile::parse(&format!("u:{value}")).unwrap();
        assert!(file.verify("u", b"pw"));
    }

    #[test]
    fn wrong_password_and_unknown_user_fail() {
        let file = PasswordFile::parse(PBKDF2_LINE).unwrap();
        assert!(!file.verify("dave", b"hunter3"));
        assert!(!file.verify("mallory", b"hunter2"));
        assert!(!file.verify("", b""));
        assert!(!PasswordFile::parse("").unwrap().verify("anyone", b"x"));
    }

    #[test]
    fn pbkdf2_vector_from_python() {
        let file = PasswordFile::parse(PBKDF2_LINE).unwrap();
        assert!(file.verify("dave", b"hunter2"));
    }

    #[test]
    fn pbkdf2_long_salt_vector_from_python() {
        let file = PasswordFile::parse(PBKDF2_LONG_SALT_LINE).unwrap();
        assert!(file.verify("erin", b"long-salt"));
    }

    #[test]
    fn legacy_sha512_vector_from_python() {
        let file = PasswordFile::parse(SHA512_LINE).unwrap();
        assert!(file.verify("carol", b"correct horse"));
        assert!(!file.verify("carol", b"correct horse!"));
    }

    #[test]
    fn recorded_mosquitto_passwd_line_verifies() {
        let file = PasswordFile::parse(MOSQUITTO_LINE).unwrap();
        assert!(file.verify("alice", b"secret"));
        assert!(!file.verify("alice", b"Secret"));
    }

    #[test]
    fn comments_blank_lines_and_crlf() {
        let text = format!("# users\r\n\r\n{PBKDF2_LINE}\r\n   \n  # indented comment\n{SHA512_LINE}\n");
        let file = PasswordFile::parse(&text).unwrap();
        assert_eq!(file.len(), 2);
        assert!(file.verify("dave", b"hunter2"));
        assert!(file.verify("carol", b"correct horse"));
        let debug = format!("{file:?}");
        assert!(debug.contains("carol") && !debug.contains("$6$"), "{debug}");
    }

    #[test]
    fn plaintext_password_rejected_with_line() {
        let text = format!("# header\n{PBKDF2_LINE}\nbob:hunter2\n");
        let err = PasswordFile::parse(&text).unwrap_err();
        assert!(matches!(&err, AuthError::PlaintextPassword { line: 3, user, .. } if user == "bob"));
        let msg = err.to_string();
        assert!(msg.starts_with("line 3: password for 'bob' is not a hash"), "{msg}");
        assert!(msg.contains("mosquitto_passwd"), "{msg}");
        assert!(!msg.contains("hunter2"), "never echo the password: {msg}");
        assert!(matches!(PasswordFile::parse("bob:"), Err(AuthError::PlaintextPassword { line: 1, .. })));
        let msg = PasswordFile::parse("bob:$ecret$pass word").unwrap_err().to_string();
        assert!(msg.contains("is not a hash") && !msg.contains("ecret"), "{msg}");
    }

    #[test]
    fn malformed_lines_rejected_with_line() {
        let cases = [
            "nocolon",
            ":$7$101$3xqndjCORJFOv+Ic$AAAA",
            "u:$7$0$3xqndjCORJFOv+Ic$hEJFtz60oePOc+qFNuopoieORX3AmbBZ7RBxQPMNSjlosJqSNR8d2BKRFjcSs6C0Mk6m5hJuyb9UfNoRjMggxg==",
            "u:$7$-5$3xqndjCORJFOv+Ic$hEJFtz60oePOc+qFNuopoieORX3AmbBZ7RBxQPMNSjlosJqSNR8d2BKRFjcSs6C0Mk6m5hJuyb9UfNoRjMggxg==",
            "u:$7$101$3xqndjCORJFOv+Ic$AAAA",
            "u:$7$101$AAAA$hEJFtz60oePOc+qFNuopoieORX3AmbBZ7RBxQPMNSjlosJqSNR8d2BKRFjcSs6C0Mk6m5hJuyb9UfNoRjMggxg==",
            "u:$7$101$3xqndjCORJFOv+Ic",
            "u:$7$101$!!!$hEJFtz60oePOc+qFNuopoieORX3AmbBZ7RBxQPMNSjlosJqSNR8d2BKRFjcSs6C0Mk6m5hJuyb9UfNoRjMggxg==",
            "u:$6$3xqndjCORJFOv+Ic",
        ];
        for case in cases {
            let text = format!("\n{case}");
            match PasswordFile::parse(&text) {
                Err(AuthError::PasswordSyntax { line: 2, .. }) => {}
                other => panic!("{case}: {other:?}"),
            }
        }
        let dup = format!("{PBKDF2_LINE}\n{PBKDF2_LINE}");
        let err = PasswordFile::parse(&dup).unwrap_err();
        assert!(err.to_string().contains("line 2: user 'dave' appears more than once"), "{err}");
    }

    #[test]
    fn unsupported_scheme_rejected() {
        let err = PasswordFile::parse("x:$argon2id$v=19$m=47104,t=1,p=1$c2FsdA$aGFzaA").unwrap_err();
        assert!(matches!(&err, AuthError::UnsupportedHash { line: 1, scheme, .. } if scheme == "$argon2id$"));
    }

    #[test]
    fn load_reads_file_and_names_it_in_errors() {
        let good = TempFile::new("passwd-good");
        std::fs::write(&good.0, format!("{PBKDF2_LINE}\n")).unwrap();
        assert!(PasswordFile::load(&good.0).unwrap().verify("dave", b"hunter2"));

        let bad = TempFile::new("passwd-bad");
        std::fs::write(&bad.0, "a:plain\n").unwrap();
        let msg = PasswordFile::load(&bad.0).unwrap_err().to_string();
        assert!(msg.starts_with(&format!("{} line 1:", bad.0.display())), "{msg}");

        let missing = TempFile::new("passwd-missing");
        let err = PasswordFile::load(&missing.0).unwrap_err();
        assert!(matches!(err, AuthError::Io { .. }));
        assert!(err.to_string().contains(&missing.0.display().to_string()));
    }

    /// Hashes made by the real `mosquitto_passwd` (installed by scripts/test.sh).
    #[test]
    fn mosquitto_passwd_interop() {
        for (algorithm, tag) in [(None, "pbkdf2"), (Some("sha512"), "sha512")] {
            let file = TempFile::new(tag);
            let mut cmd = std::process::Command::new("mosquitto_passwd");
            if let Some(algorithm) = algorithm {
                cmd.args(["-H", algorithm]);
            }
            cmd.arg("-b").arg("-c").arg(&file.0).args(["alice", "secret"]);
            let status = cmd.status().unwrap_or_else(|e| {
                panic!("mosquitto_passwd is missing ({e}): run scripts/test.sh, which installs mosquitto")
            });
            assert!(status.success(), "mosquitto_passwd failed: {status}");
            let passwords = PasswordFile::load(&file.0).unwrap();
            assert!(passwords.verify("alice", b"secret"), "{tag}");
            assert!(!passwords.verify("alice", b"wrong"), "{tag}");
            assert!(!passwords.verify("bob", b"secret"), "{tag}");
        }
    }

    // ---- ACL ----

    #[test]
    fn wildcard_matching() {
        assert!(topic::matches("a/b", "a/b"));
        assert!(!topic::matches("a/b", "a/b/c"));
        assert!(!topic::matches("a/b/c", "a/b"));
        assert!(topic::matches("a/+/c", "a/x/c"));
        assert!(!topic::matches("a/+", "a/x/c"));
        assert!(topic::matches("a/+", "a/"));
        assert!(topic::matches("a/#", "a"));
        assert!(topic::matches("a/#", "a/b/c"));
        assert!(topic::matches("#", "a/b"));
        assert!(topic::matches("+/+", "/x"));
        assert!(!topic::matches("#", "$SYS/broker"));
        assert!(!topic::matches("+/broker", "$SYS/broker"));
        assert!(topic::matches("$SYS/#", "$SYS/broker"));
    }

    #[test]
    fn covers_matching() {
        assert!(filter_covers("a/#", "a/+/b"));
        assert!(filter_covers("a/#", "a/#"));
        assert!(filter_covers("a/#", "a"));
        assert!(filter_covers("a/+", "a/b"));
        assert!(filter_covers("a/+", "a/+"));
        assert!(!filter_covers("a/+", "a/#"));
        assert!(!filter_covers("a/b", "a/+"));
        assert!(!filter_covers("a/#", "#"));
        assert!(filter_covers("#", "#"));
        assert!(!filter_covers("#", "$SYS/#"));
    }

    const ACL: &str = "\
# anonymous clients
topic read public/#
topic write public/anon/in

user alice
topic readwrite alice/#
topic read shared/+/status
topic deny alice/private/#

user bob
topic bob/#
topic write sensors/bob

pattern read devices/%c/config
pattern write devices/%u/%c/state
pattern deny secret/%u/#
";

    #[test]
    fn user_rules() {
        let acl = AclFile::parse(ACL).unwrap();
        assert!(acl.check("c1", Some("alice"), "alice/x", Access::Write));
        assert!(acl.check("c1", Some("alice"), "alice/x/y", Access::Read));
        assert!(acl.check("c1", Some("alice"), "shared/kitchen/status", Access::Read));
        assert!(!acl.check("c1", Some("alice"), "shared/kitchen/status", Access::Write));
        assert!(!acl.check("c1", Some("alice"), "bob/x", Access::Read));
        // `topic bob/#` defaults to readwrite.
        assert!(acl.check("c2", Some("bob"), "bob/x", Access::Write));
        assert!(acl.check("c2", Some("bob"), "bob/x", Access::Read));
        assert!(acl.check("c2", Some("bob"), "sensors/bob", Access::Write));
        assert!(!acl.check("c2", Some("bob"), "sensors/bob", Access::Read));
        // Named users do not get the anonymous rules; unknown users only get patterns.
        assert!(!acl.check("c1", Some("alice"), "public/news", Access::Read));
        assert!(!acl.check("c3", Some("carol"), "public/news", Access::Read));
        // Topic names with wildcards are never allowed.
        assert!(!acl.check("c1", Some("alice"), "alice/#", Access::Write));
        assert!(!acl.check("c1", Some("alice"), "", Access::Write));
    }

    #[test]
    fn anonymous_rules() {
        let acl = AclFile::parse(ACL).unwrap();
        assert!(acl.check("anon", None, "public/news", Access::Read));
        assert!(acl.check("anon", None, "public", Access::Read));
        assert!(!acl.check("anon", None, "public/news", Access::Write));
        assert!(acl.check("anon", None, "public/anon/in", Access::Write));
        assert!(!acl.check("anon", None, "alice/x", Access::Read));
        // Patterns with %c still apply to anonymous clients; %u patterns do not.
        assert!(acl.check("anon", None, "devices/anon/config", Access::Read));
        assert!(!acl.check("anon", None, "devices//anon/state", Access::Write));
    }

    #[test]
    fn patterns_substitute_user_and_client_id() {
        let acl = AclFile::parse(ACL).unwrap();
        assert!(acl.check("lamp1", Some("carol"), "devices/lamp1/config", Access::Read));
        assert!(!acl.check("lamp1", Some("carol"), "devices/lamp2/config", Access::Read));
        assert!(!acl.check("lamp1", Some("carol"), "devices/lamp1/config", Access::Write));
        assert!(acl.check("lamp1", Some("carol"), "devices/carol/lamp1/state", Access::Write));
        assert!(!acl.check("lamp1", Some("dave"), "devices/carol/lamp1/state", Access::Write));
        // `%u` in a `topic` line is literal.
        let literal = AclFile::parse("user x\ntopic read a/%u").unwrap();
        assert!(literal.check("c", Some("x"), "a/%u", Access::Read));
        assert!(!literal.check("c", Some("x"), "a/x", Access::Read));
    }

    #[test]
    fn deny_takes_precedence() {
        let acl = AclFile::parse(ACL).unwrap();
        assert!(!acl.check("c1", Some("alice"), "alice/private/diary", Access::Read));
        assert!(!acl.check("c1", Some("alice"), "alice/private", Access::Write));
        // A pattern deny overrides a user allow, whatever the order of lines.
        let acl = AclFile::parse("pattern deny home/%u/secret\nuser eve\ntopic home/#").unwrap();
        assert!(acl.check("c", Some("eve"), "home/eve/open", Access::Write));
        assert!(!acl.check("c", Some("eve"), "home/eve/secret", Access::Write));
        assert!(acl.check("c", Some("eve"), "home/bob/secret", Access::Write));
        // An allow after a deny for the same topic does not win either.
        let acl = AclFile::parse("topic deny a/b\ntopic a/#").unwrap();
        assert!(!acl.check("c", None, "a/b", Access::Read));
        assert!(acl.check("c", None, "a/c", Access::Read));
    }

    #[test]
    fn wildcard_injection_refused() {
        let acl = AclFile::parse(ACL).unwrap();
        // A user named "+" must not read every device's state via devices/+/...
        assert!(!acl.check("lamp1", Some("+"), "devices/carol/lamp1/state", Access::Write));
        assert!(!acl.check("+", Some("carol"), "devices/x/config", Access::Read));
        assert!(!acl.check("a/b", Some("carol"), "devices/a/b/config", Access::Read));
        assert!(!acl.check("lamp1", Some("carol/x"), "devices/carol/x/lamp1/state", Access::Write));
        // A deny pattern that cannot be expanded safely denies instead of being skipped.
        let acl = AclFile::parse("user alice\ntopic #\nuser a/b\ntopic #\npattern deny secret/%u/#").unwrap();
        assert!(acl.check("c", Some("alice"), "x", Access::Read));
        assert!(!acl.check("c", Some("a/b"), "x", Access::Read));
        // Patterns that do not use the dangerous value still apply.
        let acl = AclFile::parse("pattern read devices/%c/#").unwrap();
        assert!(acl.check("lamp", Some("we+ird"), "devices/lamp/x", Access::Read));
    }

    #[test]
    fn subscribe_checks() {
        let acl = AclFile::parse(ACL).unwrap();
        assert!(acl.check_subscribe("c1", Some("alice"), "alice/#"));
        assert!(acl.check_subscribe("c1", Some("alice"), "alice/+/temp"));
        assert!(acl.check_subscribe("c1", Some("alice"), "shared/+/status"));
        assert!(acl.check_subscribe("c1", Some("alice"), "shared/kitchen/status"));
        assert!(!acl.check_subscribe("c1", Some("alice"), "shared/#"));
        assert!(!acl.check_subscribe("c1", Some("alice"), "shared/+/+"));
        assert!(!acl.check_subscribe("c1", Some("alice"), "#"));
        // Deny covering the request refuses it; a narrower deny is left to per-message checks.
        assert!(!acl.check_subscribe("c1", Some("alice"), "alice/private/#"));
        assert!(!acl.check_subscribe("c1", Some("alice"), "alice/private/+"));
        assert!(acl.check_subscribe("c1", Some("alice"), "alice/+"));
        // write-only rules do not allow subscribing.
        assert!(!acl.check_subscribe("c2", Some("bob"), "sensors/bob"));
        assert!(acl.check_subscribe("anon", None, "public/#"));
        assert!(acl.check_subscribe("lamp1", Some("carol"), "devices/lamp1/config"));
        assert!(!acl.check_subscribe("lamp1", Some("carol"), "devices/+/config"));
        assert!(!acl.check_subscribe("+", Some("carol"), "devices/+/config"));
        // Invalid filters are refused.
        assert!(!acl.check_subscribe("c1", Some("alice"), "alice/#/x"));
        assert!(!acl.check_subscribe("c1", Some("alice"), "alice/a+"));
        assert!(!acl.check_subscribe("c1", Some("alice"), ""));
        // `#` rules do not hand out $SYS.
        let all = AclFile::parse("topic read #").unwrap();
        assert!(all.check_subscribe("c", None, "#"));
        assert!(!all.check_subscribe("c", None, "$SYS/#"));
    }

    #[test]
    fn acl_parse_details() {
        let acl = AclFile::parse("user  name with spaces \ntopic   read   a b/c \n").unwrap();
        assert!(acl.check("c", Some("name with spaces"), "a b/c", Access::Read));
        // A filter that happens to start with an access-like word is only a keyword when alone.
        let acl = AclFile::parse("topic readings/#").unwrap();
        assert!(acl.check("c", None, "readings/x", Access::Write));
        assert!(AclFile::parse("").unwrap().users.is_empty());
    }

    #[test]
    fn acl_errors_name_line() {
        let cases = [
            ("# c\n\nsubscribe a/b", 3, "unknown directive 'subscribe'"),
            ("user", 1, "`user` needs a user name"),
            ("user a\ntopic read", 2, "`topic` needs a topic filter"),
            ("pattern", 1, "`pattern` needs a topic filter"),
            ("topic read a/#/b", 1, "is not a valid topic filter"),
            ("topic a/b+", 1, "is not a valid topic filter"),
            ("topicread a", 1, "unknown directive 'topicread'"),
        ];
        for (text, line, needle) in cases {
            let err = AclFile::parse(text).unwrap_err();
            assert!(matches!(err, AuthError::AclSyntax { line: l, .. } if l == line), "{text}: {err:?}");
            let msg = err.to_string();
            assert!(msg.starts_with(&format!("line {line}: ")) && msg.contains(needle), "{msg}");
        }
    }

    #[test]
    fn acl_load_names_file() {
        let good = TempFile::new("acl-good");
        std::fs::write(&good.0, ACL).unwrap();
        assert!(AclFile::load(&good.0).unwrap().check("c", Some("bob"), "bob/1", Access::Read));
        let bad = TempFile::new("acl-bad");
        std::fs::write(&bad.0, "user a\nbogus\n").unwrap();
        let msg = AclFile::load(&bad.0).unwrap_err().to_string();
        assert!(msg.starts_with(&format!("{} line 2: unknown directive", bad.0.display())), "{msg}");
    }

    #[test]
    fn set_password_replaces_one_user_and_keeps_the_rest() {
        let text = set_password("# users\n", "bob", b"one", 1000).unwrap();
        let text = set_password(&text, "carol", b"two", 1000).unwrap();
        let text = set_password(&text, "bob", b"three", 1000).unwrap();
        assert!(text.starts_with("# users\ncarol:"), "{text}");
        let file = PasswordFile::parse(&text).unwrap();
        assert_eq!(file.len(), 2);
        assert!(file.verify("bob", b"three") && !file.verify("bob", b"one") && file.verify("carol", b"two"));
        assert!(matches!(set_password("", "a:b", b"x", 1), Err(AuthError::InvalidUser(_))));
    }
}
