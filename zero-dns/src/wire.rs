//! DNS messages on the wire, through hickory-proto: the query the resolver sends, and the
//! checks a response must pass before anything in it is believed (RFC 5452: the id, the
//! question, and the server it came from; the last is the driver's, which knows the socket).

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query};
use hickory_proto::rr::{Name, RecordType};

/// Why a received message is not the answer to a query (dropped and counted, never
/// believed: a spoofing attempt or a stray reply looks like this).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Mismatch {
    /// It does not parse (truncated, a compression loop, a pointer past the end, absurd
    /// counts).
    #[error("malformed message")]
    Malformed,
    /// It is a query, not a response.
    #[error("not a response")]
    NotResponse,
    /// Its id is not the query's.
    #[error("wrong id")]
    Id,
    /// Its question is not the query's (name, case included under 0x20, type or class).
    #[error("wrong question")]
    Question,
}

/// The bytes of a recursive query for `name` `rtype` with id `id`, offering `edns_size`
/// bytes of UDP payload (0: no EDNS).
pub fn query(id: u16, name: &Name, rtype: RecordType, edns_size: u16) -> Vec<u8> {
    let mut m = Message::new(id, MessageType::Query, OpCode::Query);
    m.metadata.recursion_desired = true;
    m.add_query(Query::query(name.clone(), rtype));
    if edns_size > 0 {
        let mut edns = Edns::new();
        edns.set_max_payload(edns_size.max(512));
        m.set_edns(edns);
    }
    m.to_vec().expect("a query of a valid name encodes")
}

/// The response in `bytes`, if it answers query `id` for `name` `rtype` (with the name's case
/// exactly as sent when `exact_case`).
pub fn response(
    bytes: &[u8],
    id: u16,
    name: &Name,
    rtype: RecordType,
    exact_case: bool,
) -> Result<Message, Mismatch> {
    let m = Message::from_vec(bytes).map_err(|_| Mismatch::Malformed)?;
    if m.metadata.message_type != MessageType::Response {
        return Err(Mismatch::NotResponse);
    }
    if m.metadata.id != id {
        return Err(Mismatch::Id);
    }
    // A FORMERR or NOTIMP may come without the question; any other answer carries it back.
    match m.queries.as_slice() {
        [] if m.metadata.response_code != hickory_proto::op::ResponseCode::NoError => {}
        [q] if q.query_type() == rtype && same_name(q.name(), name, exact_case) => {}
        _ => return Err(Mismatch::Question),
    }
    Ok(m)
}

fn same_name(a: &Name, b: &Name, exact_case: bool) -> bool {
    if exact_case {
        a.eq_case(b)
    } else {
        a == b
    }
}

/// `message` with its two-byte length, as TCP carries it (RFC 1035 4.2.2).
pub fn tcp_frame(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + 2);
    out.extend_from_slice(&(message.len() as u16).to_be_bytes());
    out.extend_from_slice(message);
    out
}

/// The first whole message in TCP `input`, and the bytes it took with its length.
pub fn tcp_unframe(input: &[u8]) -> Option<(&[u8], usize)> {
    let len = usize::from(u16::from_be_bytes([*input.first()?, *input.get(1)?]));
    input.get(2..2 + len).map(|m| (m, 2 + len))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_response_must_match_id_question_and_case() {
        let name = Name::from_ascii("WwW.Zero.Test.").unwrap();
        let q = query(7, &name, RecordType::A, 1232);
        let mut m = Message::from_vec(&q).unwrap();
        m.metadata.message_type = MessageType::Response;
        let reply = m.to_vec().unwrap();
        assert!(response(&reply, 7, &name, RecordType::A, true).is_ok());
        assert_eq!(response(&reply, 8, &name, RecordType::A, true).unwrap_err(), Mismatch::Id);
        assert_eq!(response(&reply, 7, &name, RecordType::AAAA, true).unwrap_err(), Mismatch::Question);
        let lower = Name::from_ascii("www.zero.test.").unwrap();
        assert_eq!(response(&reply, 7, &lower, RecordType::A, true).unwrap_err(), Mismatch::Question);
        assert!(response(&reply, 7, &lower, RecordType::A, false).is_ok());
        assert_eq!(response(&q, 7, &name, RecordType::A, true).unwrap_err(), Mismatch::NotResponse);
        assert_eq!(response(&reply[..5], 7, &name, RecordType::A, true).unwrap_err(), Mismatch::Malformed);
    }

    #[test]
    fn tcp_framing() {
        let framed = tcp_frame(b"abc");
        assert_eq!(tcp_unframe(&framed), Some((&b"abc"[..], 5)));
        assert_eq!(tcp_unframe(&framed[..4]), None);
    }
}
