//! One query: answered from the container's networks, or to be forwarded.
use super::names::Names;
use hickory_proto::op::{Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::{
    rdata::A, rdata::AAAA, rdata::PTR, DNSClass, Name, RData, Record, RecordType,
};
use std::net::IpAddr;

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
/// IPv4 addresses for A, IPv6 ones (networks made with `--ipv6`) for AAAA, both for ANY; an
/// empty NOERROR for any other type, or a family it has no address of.
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
    let qname = q.name().to_ascii();
    if q.query_type() == RecordType::PTR {
        return reverse(&msg, names);
    }
    let ips = names.lookup(&qname);
    if ips.is_empty() {
        return Outcome::Forward;
    }
    let mut r = response(&msg);
    let (want_a, want_aaaa) = match q.query_type() {
        RecordType::A => (true, false),
        RecordType::AAAA => (false, true),
        RecordType::ANY => (true, true),
        _ => (false, false),
    };
    for ip in ips {
        let data = match ip {
            IpAddr::V4(v4) if want_a => RData::A(A(v4)),
            IpAddr::V6(v6) if want_aaaa => RData::AAAA(AAAA(v6)),
            _ => continue,
        };
        r.add_answer(Record::from_rdata(q.name().clone(), TTL, data));
    }
    match r.to_vec() {
        Ok(b) => Outcome::Reply(b),
        Err(_) => Outcome::Drop,
    }
}

/// A PTR query for an address of the container's networks: its containers' names.
fn reverse(msg: &Message, names: &mut Names) -> Outcome {
    let q = &msg.queries()[0];
    let Some(ip) = super::names::arpa(&q.name().to_ascii()) else {
        return Outcome::Forward;
    };
    let owners = names.reverse(ip);
    if owners.is_empty() {
        return Outcome::Forward;
    }
    let mut r = response(msg);
    for n in owners {
        if let Ok(name) = Name::from_ascii(format!("{n}.")) {
            r.add_answer(Record::from_rdata(
                q.name().clone(),
                TTL,
                RData::PTR(PTR(name)),
            ));
        }
    }
    match r.to_vec() {
        Ok(b) => Outcome::Reply(b),
        Err(_) => Outcome::Drop,
    }
}

/// An empty NOERROR answer to `msg` (one question), authoritative.
fn response(msg: &Message) -> Message {
    let mut r = Message::new();
    r.set_id(msg.id())
        .set_message_type(MessageType::Response)
        .set_op_code(OpCode::Query)
        .set_authoritative(true)
        .set_recursion_desired(msg.recursion_desired())
        .set_recursion_available(true)
        .set_response_code(ResponseCode::NoError)
        .add_queries(msg.queries().iter().cloned());
    r
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

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::Query;
    use hickory_proto::rr::Name;

    fn names() -> (tempfile::TempDir, Names) {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(
            d.path().join("n.json"),
            r#"[{"name":"web","aliases":[],"ipv4":"10.1.0.2"}]"#,
        )
        .unwrap();
        let n = Names::new(d.path(), &["n".into()], None);
        (d, n)
    }

    fn q(name: &str, t: RecordType) -> Message {
        let mut m = Message::new();
        m.set_id(7)
            .add_query(Query::query(Name::from_ascii(name).unwrap(), t));
        m
    }

    fn reply(o: Outcome) -> Message {
        match o {
            Outcome::Reply(b) => Message::from_vec(&b).unwrap(),
            _ => panic!("not answered here"),
        }
    }

    #[test]
    fn known_names_are_answered_per_type() {
        let (_d, mut n) = names();
        for t in [RecordType::A, RecordType::ANY] {
            let m = reply(answer(&q("web.", t).to_vec().unwrap(), &mut n));
            assert_eq!((m.id(), m.answers().len()), (7, 1));
            assert_eq!(m.message_type(), MessageType::Response);
        }
        let m = reply(answer(
            &q("2.0.1.10.in-addr.arpa.", RecordType::PTR)
                .to_vec()
                .unwrap(),
            &mut n,
        ));
        match m.answers()[0].data() {
            RData::PTR(p) => assert_eq!(p.0.to_ascii(), "web."),
            o => panic!("{o:?}"),
        }
        for t in [RecordType::AAAA, RecordType::MX, RecordType::TXT] {
            let m = reply(answer(&q("web.", t).to_vec().unwrap(), &mut n));
            assert_eq!(m.response_code(), ResponseCode::NoError);
            assert!(m.answers().is_empty());
        }
    }

    #[test]
    fn aaaa_on_ipv6_networks() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(
            d.path().join("n.json"),
            r#"[{"name":"web","aliases":[],"ipv4":"10.1.0.2","ipv6":"fd12::2"}]"#,
        )
        .unwrap();
        let mut n = Names::new(d.path(), &["n".into()], None);
        let m = reply(answer(
            &q("web.", RecordType::AAAA).to_vec().unwrap(),
            &mut n,
        ));
        match m.answers() {
            [a] => assert_eq!(a.data(), &RData::AAAA(AAAA("fd12::2".parse().unwrap()))),
            o => panic!("{o:?}"),
        }
        let m = reply(answer(&q("web.", RecordType::A).to_vec().unwrap(), &mut n));
        assert_eq!(m.answers().len(), 1);
        let m = reply(answer(
            &q("web.", RecordType::ANY).to_vec().unwrap(),
            &mut n,
        ));
        assert_eq!(m.answers().len(), 2);
    }

    /// Garbage and mutated queries (a fixed xorshift sequence) never panic.
    #[test]
    fn no_input_panics() {
        let (_d, mut n) = names();
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let seeds: Vec<Vec<u8>> = [
            ("web.", RecordType::A),
            ("2.0.1.10.in-addr.arpa.", RecordType::PTR),
            ("other.", RecordType::AAAA),
        ]
        .iter()
        .map(|(name, t)| q(name, *t).to_vec().unwrap())
        .collect();
        for i in 0..20_000 {
            let mut b = seeds[i % seeds.len()].clone();
            for _ in 0..(next() % 4 + 1) {
                let at = (next() as usize) % b.len();
                b[at] ^= next() as u8;
            }
            b.truncate((next() as usize) % (b.len() + 1) + i % 2 * b.len());
            let _ = answer(&b, &mut n);
            let _ = servfail(&b);
        }
    }

    #[test]
    fn others_are_forwarded_or_dropped() {
        let (_d, mut n) = names();
        let fwd = |m: &Message, n: &mut Names| {
            matches!(answer(&m.to_vec().unwrap(), n), Outcome::Forward)
        };
        assert!(fwd(&q("other.", RecordType::A), &mut n));
        let mut two = q("web.", RecordType::A);
        two.add_query(Query::query(Name::from_ascii("x.").unwrap(), RecordType::A));
        assert!(fwd(&two, &mut n));
        let mut ch = q("web.", RecordType::A);
        ch.queries_mut()[0].set_query_class(DNSClass::CH);
        assert!(fwd(&ch, &mut n));
        assert!(fwd(&q("3.0.1.10.in-addr.arpa.", RecordType::PTR), &mut n));
        assert!(matches!(answer(b"\x00\x01garbage", &mut n), Outcome::Drop));
        let mut resp = q("web.", RecordType::A);
        resp.set_message_type(MessageType::Response);
        assert!(matches!(
            answer(&resp.to_vec().unwrap(), &mut n),
            Outcome::Drop
        ));
        let sf = Message::from_vec(&servfail(&q("x.", RecordType::A).to_vec().unwrap()).unwrap())
            .unwrap();
        assert_eq!((sf.id(), sf.response_code()), (7, ResponseCode::ServFail));
    }
}
