//! RFC 8463 Appendix A's worked example, byte for byte, and the verifier's refusals.

use super::canon::Canon;
use super::sign::signature_for;
use super::*;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use std::collections::HashMap;

const ED25519_SEED: &str = "nWGxne/9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A=";
const ED25519_PUBLIC: &str = "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=";
const RSA_KEY: &str = "-----BEGIN RSA PRIVATE KEY-----
MIICXQIBAAKBgQDkHlOQoBTzWRiGs5V6NpP3idY6Wk08a5qhdR6wy5bdOKb2jLQi
Y/J16JYi0Qvx/byYzCNb3W91y3FutACDfzwQ/BC/e/8uBsCR+yz1Lxj+PL6lHvqM
KrM3rG4hstT5QjvHO9PzoxZyVYLzBfO2EeC3Ip3G+2kryOTIKT+l/K4w3QIDAQAB
AoGAH0cxOhFZDgzXWhDhnAJDw5s4roOXN4OhjiXa8W7Y3rhX3FJqmJSPuC8N9vQm
6SVbaLAE4SG5mLMueHlh4KXffEpuLEiNp9Ss3O4YfLiQpbRqE7Tm5SxKjvvQoZZe
zHorimOaChRL2it47iuWxzxSiRMv4c+j70GiWdxXnxe4UoECQQDzJB/0U58W7RZy
6enGVj2kWF732CoWFZWzi1FicudrBFoy63QwcowpoCazKtvZGMNlPWnC7x/6o8Gc
uSe0ga2xAkEA8C7PipPm1/1fTRQvj1o/dDmZp243044ZNyxjg+/OPN0oWCbXIGxy
WvmZbXriOWoSALJTjExEgraHEgnXssuk7QJBALl5ICsYMu6hMxO73gnfNayNgPxd
WFV6Z7ULnKyV7HSVYF0hgYOHjeYe9gaMtiJYoo0zGN+L3AAtNP9huqkWlzECQE1a
licIeVlo1e+qJ6Mgqr0Q7Aa7falZ448ccbSFYEPD6oFxiOl9Y9se9iYHZKKfIcst
o7DUw1/hz2Ck4N5JrgUCQQCyKveNvjzkkd8HjYs0SwM0fPjK16//5qDZ2UiDGnOe
uEzxBDAr518Z8VFbR41in3W4Y3yCDgQlLlcETrS+zYcL
-----END RSA PRIVATE KEY-----";
const RSA_PUBLIC: &str = "MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDkHlOQoBTzWRiGs5V6NpP3idY6Wk08a5qhdR6wy5bdOKb2jLQiY/J16JYi0Qvx/byYzCNb3W91y3FutACDfzwQ/BC/e/8uBsCR+yz1Lxj+PL6lHvqMKrM3rG4hstT5QjvHO9PzoxZyVYLzBfO2EeC3Ip3G+2kryOTIKT+l/K4w3QIDAQAB";

/// The unsigned message of RFC 8463 A.3.
const MESSAGE: &str = "From: Joe SixPack <joe@football.example.com>\r
To: Suzie Q <suzie@shopping.example.net>\r
Subject: Is dinner ready?\r
Date: Fri, 11 Jul 2003 21:00:37 -0700 (PDT)\r
Message-ID: <20030712040037.46341.5F8J@football.example.com>\r
\r
Hi.\r
\r
We lost the game.  Are you hungry yet?\r
\r
Joe.\r
";

const ED25519_B: &str =
    "/gCrinpcQOoIfuHNQIbq4pgh9kyIK3AQUdt9OdqQehSwhEIug4D11BusFa3bT3FY5OsU7ZbnKELq+eXdp1Q1Dw==";
const RSA_B: &str = "F45dVWDfMbQDGHJFlXUNB2HKfbCeLRyhDXgFpEL8GwpsRe0IeIixNTe3DhCVlUrSjV4BwcVcOF6+FF3Zo9Rpo1tFOeS9mPYQTnGdaSGsgeefOsk2JzdA+L10TeYt9BgDfQNZtKdN1WO//KgIqXP7OdEFE4LjFYNcUxZQ4FADY+8=";

/// The RFC's DKIM-Signature field for `alg` and `selector`, with `b=` holding `b`.
fn rfc_field(alg: &str, selector: &str, b: &str) -> String {
    format!(
        "DKIM-Signature: v=1; a={alg}; c=relaxed/relaxed;\r\n d=football.example.com; i=@football.example.com;\r\n q=dns/txt; s={selector}; t=1528637909; h=from : to :\r\n subject : date : message-id : from : subject : date;\r\n bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=;\r\n b={b}\r\n"
    )
}

fn names() -> Vec<String> {
    ["from", "to", "subject", "date", "message-id", "from", "subject", "date"].map(String::from).to_vec()
}

fn ed25519_key() -> SigningKey {
    let seed: [u8; 32] = B64.decode(ED25519_SEED).unwrap().try_into().unwrap();
    SigningKey::ed25519_from_seed(&seed)
}

fn rfc_keys() -> HashMap<String, String> {
    HashMap::from([
        (
            "brisbane._domainkey.football.example.com".into(),
            format!("v=DKIM1; k=ed25519; p={ED25519_PUBLIC}"),
        ),
        ("test._domainkey.football.example.com".into(), format!("v=DKIM1; k=rsa; p={RSA_PUBLIC}")),
    ])
}

#[test]
fn rfc_8463_body_hash() {
    let (_, body) = canon::split(MESSAGE.as_bytes());
    assert_eq!(B64.encode(body_hash(Canon::Relaxed, body)), "2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=");
}

#[test]
fn rfc_8463_signatures_come_out_byte_for_byte() {
    let ed = signature_for(
        &ed25519_key(),
        Canon::Relaxed,
        MESSAGE.as_bytes(),
        &rfc_field("ed25519-sha256", "brisbane", ""),
        &names(),
    );
    assert_eq!(B64.encode(ed), ED25519_B);
    let rsa = SigningKey::from_pem(RSA_KEY).unwrap();
    let sig = signature_for(
        &rsa,
        Canon::Relaxed,
        MESSAGE.as_bytes(),
        &rfc_field("rsa-sha256", "test", ""),
        &names(),
    );
    assert_eq!(B64.encode(sig), RSA_B);
}

#[test]
fn rfc_8463_signed_message_verifies() {
    let signed = format!(
        "{}{}{MESSAGE}",
        rfc_field("ed25519-sha256", "brisbane", ED25519_B),
        rfc_field("rsa-sha256", "test", RSA_B)
    );
    let outcomes = verify(signed.as_bytes(), &rfc_keys(), 1528637909);
    assert_eq!(
        outcomes.iter().map(|o| o.verdict).collect::<Vec<_>>(),
        [Verdict::Pass, Verdict::Pass],
        "{outcomes:?}"
    );
    assert_eq!(outcomes[0].algorithm, Some(Algorithm::Ed25519Sha256));
    assert_eq!(outcomes[1].selector, "test");
    assert_eq!(
        key_names(signed.as_bytes()),
        ["brisbane._domainkey.football.example.com", "test._domainkey.football.example.com"]
    );
    // The public records our keys publish are the RFC's.
    assert_eq!(ed25519_key().dns_record(), rfc_keys()["brisbane._domainkey.football.example.com"]);
    assert_eq!(
        SigningKey::from_pem(RSA_KEY).unwrap().dns_record(),
        rfc_keys()["test._domainkey.football.example.com"]
    );

    let tampered = signed.replace("hungry", "thirsty");
    let outcomes = verify(tampered.as_bytes(), &rfc_keys(), 1528637909);
    assert!(outcomes.iter().all(|o| o.verdict == Verdict::Fail && o.reason.contains("body hash")));
    let retitled = signed.replace("Is dinner ready?", "Is lunch ready?");
    let outcomes = verify(retitled.as_bytes(), &rfc_keys(), 1528637909);
    assert!(outcomes.iter().all(|o| o.verdict == Verdict::Fail && o.reason.contains("signature")));
}

fn signed_by(signer: &Signer, message: &str) -> String {
    format!("{}{message}", signer.sign(message.as_bytes(), 1_700_000_000))
}

#[test]
fn our_signatures_verify_and_resist_additions() {
    for (selector, key) in [("brisbane", ed25519_key()), ("test", SigningKey::from_pem(RSA_KEY).unwrap())] {
        for canon in [Canon::Simple, Canon::Relaxed] {
            let signer =
                Signer::new("football.example.com", selector, key.clone()).canonicalization(canon, canon);
            let signed = signed_by(&signer, MESSAGE);
            assert!(!signed.contains("l="), "{signed}");
            assert!(signed.contains("h=From:From:Subject:Subject:Date:To:Message-ID;"), "{signed}");
            assert!(signed.lines().all(|l| l.len() <= 78), "{signed}");
            let outcomes = verify(signed.as_bytes(), &rfc_keys(), 1_700_000_000);
            assert_eq!(outcomes[0].verdict, Verdict::Pass, "{canon:?} {outcomes:?}\n{signed}");
            // A second From or Subject added on top (oversigned) breaks it.
            for added in ["From: mallory@evil.example\r\n", "Subject: Urgent\r\n"] {
                let forged = signed.replacen("From: Joe", &format!("{added}From: Joe"), 1);
                assert_eq!(verify(forged.as_bytes(), &rfc_keys(), 0)[0].verdict, Verdict::Fail, "{added}");
            }
            // A field not signed may be added.
            let received = format!("Received: from somewhere\r\n{signed}");
            assert_eq!(verify(received.as_bytes(), &rfc_keys(), 0)[0].verdict, Verdict::Pass);
        }
    }
}

#[test]
fn the_verifier_refuses_what_it_must() {
    let signer = Signer::new("football.example.com", "brisbane", ed25519_key());
    let signed = signed_by(&signer, MESSAGE);
    let verdict =
        |message: &str, keys: &HashMap<String, KeyAnswer>| verify(message.as_bytes(), keys, 10)[0].clone();
    let with = |record: &str| {
        HashMap::from([(
            "brisbane._domainkey.football.example.com".to_string(),
            KeyAnswer::Records(vec![record.into()]),
        )])
    };
    let good = with(&format!("v=DKIM1; k=ed25519; p={ED25519_PUBLIC}"));
    assert_eq!(verdict(&signed, &good).verdict, Verdict::Pass);
    assert_eq!(verdict(&signed, &HashMap::new()).verdict, Verdict::PermError);
    let down =
        HashMap::from([("brisbane._domainkey.football.example.com".to_string(), KeyAnswer::Unavailable)]);
    assert_eq!(verdict(&signed, &down).verdict, Verdict::TempError);
    for (record, why) in [
        ("v=DKIM1; k=ed25519; p=", "revoked"),
        ("v=DKIM1; k=rsa; p=AAAA", "type rsa"),
        (&format!("v=DKIM1; k=ed25519; s=tlsrpt; p={ED25519_PUBLIC}"), "not for email"),
        (&format!("v=DKIM1; k=ed25519; h=sha1; p={ED25519_PUBLIC}"), "sha256"),
    ] {
        let outcome = verdict(&signed, &with(record));
        assert_eq!(outcome.verdict, Verdict::PermError, "{record}");
        assert!(outcome.reason.contains(why), "{record}: {}", outcome.reason);
    }
    for (from, to, why) in [
        ("a=ed25519-sha256", "a=rsa-sha1", "rsa-sha1"),
        ("h=From:From:", "h=To:To:", "From"),
        ("d=football.example.com", "d=football.example.com; i=@elsewhere.example", "i="),
        ("v=1", "v=1; x=1", "expired"),
    ] {
        let outcome = verdict(&signed.replacen(from, to, 1), &good);
        assert_eq!(outcome.verdict, Verdict::PermError, "{to}");
        assert!(outcome.reason.contains(why), "{to}: {}", outcome.reason);
    }
    assert!(verify(MESSAGE.as_bytes(), &good, 0).is_empty());
    let results = crate::results::header("mx.example.org", None, &verify(signed.as_bytes(), &good, 0));
    assert!(results.starts_with("Authentication-Results: mx.example.org;\r\n\tdkim=pass header.d=football.example.com header.s=brisbane header.a=ed25519-sha256 header.b=\""), "{results}");
    assert_eq!(crate::results::header("mx", None, &[]), "Authentication-Results: mx;\r\n\tdkim=none\r\n");
}

#[test]
fn rsa_keys_under_1024_bits_are_refused() {
    let short = "-----BEGIN RSA PRIVATE KEY-----
MIIBOQIBAAJBAN6q4SEMlhPguGZ5apKoZcCD8GcJ83uH0arW3dvcBQ08Pg8RUzmZ
1rqMfd3S+WVn2kwA2bzK/2T0yiL6DEFbuCECAwEAAQJAAzbQPRvjZrINt1z1Ttyj
a138MGCSZSwWuLKVTUElyYUYMBMiEVRWmHzqn7HsfkF2ZJ5Chv4nm52B8akJqvcd
gQIhAP6OZu1QLbDG8VuaHVcFkMSj5Ic4h+gXMrH9hlmTHVF5AiEA3+4tVhdRG3HX
/dY7zrTTHtXwLEq1IJEcDqEgh+xF2ekCIGhLKcqDNiUebVbNfsXfpt+aEpCATdZ+
YqvgJoJerv1pAiBSScEJOOpKLoyTr+0saZCHbVCjxhRHUmvACH/e0vlcOQIgFllI
uWC7YgyuDxJd7/5TTmjjvGjuVp9BIHNjAtsOAmg=
-----END RSA PRIVATE KEY-----";
    assert!(matches!(SigningKey::from_pem(short), Err(KeyError::TooShort(512))));
    // Its public half in a key record is refused too.
    let key = rsa::RsaPrivateKey::from_pkcs1_pem(short).unwrap();
    let signer = Signer::new("football.example.com", "test", SigningKey::Rsa(key.clone()));
    let signed = signed_by(&signer, MESSAGE);
    let record = SigningKey::Rsa(key).dns_record();
    let keys = HashMap::from([("test._domainkey.football.example.com".to_string(), record)]);
    let outcome = &verify(signed.as_bytes(), &keys, 0)[0];
    assert_eq!(outcome.verdict, Verdict::PermError);
    assert!(outcome.reason.contains("512 bits"), "{}", outcome.reason);
    assert!(matches!(SigningKey::from_pem("not a key"), Err(KeyError::Unreadable)));
}

use rsa::pkcs1::DecodeRsaPrivateKey as _;

#[test]
fn author_domains() {
    for (from, domain) in [
        ("From: Joe SixPack <joe@Football.Example.com>\r\n", Some("football.example.com")),
        ("From: joe@example.org\r\n", Some("example.org")),
        ("From: \"a@b\" <joe@example.net> (comment)\r\n", Some("example.net")),
        ("From: nobody\r\n", None),
        ("To: joe@example.org\r\n", None),
    ] {
        assert_eq!(author_domain(format!("{from}\r\nbody").as_bytes()).as_deref(), domain, "{from}");
    }
}
