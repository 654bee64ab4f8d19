//! One query: answered from the container's networks, or to be forwarded.
use super::names::Names;
use hickory_proto::op::{Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::{rdata::A, DNSClass, RData, Record, RecordType};

/// The TTL of the names the resolver answers (Docker's).
const TTL: u32 = 600;

pub(crate) enum Outcome {
    /// The answer, ready to send.
    Reply(Vec<u8>),
    /// Not one of ours: ask the upstream resolvers.
    Forward,
    /// Not a query we can read: dropped.
    Drop,
}

/// The answer to `query` from `names`, if it is a name on the container's networks: its
/// addresses for A (or ANY), an empty NOERROR for any other type (AAAA: the networks are
/// IPv4).
pub(crate) fn answer(query: &[u8], names: &mut Names) -> Outcome {
    let Ok(msg) = Message::from_vec(query) else {
        return Outcome::Drop;
    };
    if msg.message_type() != MessageType::Query {
        return Outcome::Drop;
    }
    let [q] = msg.queries() else {
        return Outcome::Forward;
    };
    if msg.op_code() != OpCode::Query || q.query_class() != DNSClass::IN {
        return Outcome::Forward;
    }
    let ips = names.lookup(&q.name().to_ascii());
    if ips.is_empty() {
        return Outcome::Forward;
    }
    let mut r = Message::new();
    r.set_id(msg.id())
        .set_message_type(MessageType::Response)
        .set_op_code(OpCode::Query)
        .set_authoritative(true)
        .set_recursion_desired(msg.recursion_desired())
        .set_recursion_available(true)
        .set_response_code(ResponseCode::NoError)
        .add_query(q.clone());
    if matches!(q.query_type(), RecordType::A | RecordType::ANY) {
        for ip in ips {
            r.add_answer(Record::from_rdata(q.name().clone(), TTL, RData::A(A(ip))));
        }
    }
    match r.to_vec() {
        Ok(b) => Outcome::Reply(b),
        Err(_) => Outcome::Drop,
    }
}

/// A SERVFAIL for `query` (no upstream answered); None if it cannot be read.
pub(crate) fn servfail(query: &[u8]) -> Option<Vec<u8>> {
    let msg = Message::from_vec(query).ok()?;
    let mut r = Message::new();
    r.set_id(msg.id())
        .set_message_type(MessageType::Response)
        .set_op_code(msg.op_code())
        .set_recursion_desired(msg.recursion_desired())
        .set_recursion_available(true)
        .set_response_code(ResponseCode::ServFail)
        .add_queries(msg.queries().iter().cloned());
    r.to_vec().ok()
}
