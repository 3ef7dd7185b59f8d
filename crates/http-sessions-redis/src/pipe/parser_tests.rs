//! Tests of the pipe's [`ReplyParser`] fed as its reader feeds it, a piece
//! at a time: its replies against redis-rs's own parser on generated
//! streams cut anywhere, and its work against the size of large replies.

use deadpool_redis::redis::{self, Value};
use proptest::prelude::*;
use proptest::sample::Index;

use super::{EXAMINED, ReplyParser};

/// What a parser fed piece by piece made of the pieces.
struct Fed {
    /// Every reply completed, in order.
    replies: Vec<Value>,
    /// How many replies were complete after each piece.
    after_each: Vec<usize>,
}

/// Feeds `pieces` to a new parser as the reader does: the bytes it parsed
/// are dropped, the rest kept in front of the next piece.
fn feed<'a>(pieces: impl IntoIterator<Item = &'a [u8]>) -> Result<Fed, &'static str> {
    let mut parser = ReplyParser::default();
    let mut buf = Vec::new();
    let mut fed = Fed {
        replies: Vec::new(),
        after_each: Vec::new(),
    };
    for piece in pieces {
        buf.extend_from_slice(piece);
        let used = parser.parse(&buf, &mut fed.replies)?;
        buf.drain(..used);
        fed.after_each.push(fed.replies.len());
    }
    assert_eq!(buf, b"", "bytes left once every reply is complete");
    Ok(fed)
}

/// A RESP2 reply of a kind the store can meet.
#[derive(Debug, Clone)]
enum Reply {
    Simple(String),
    Error(String),
    Int(i64),
    Bulk(Vec<u8>),
    NilBulk,
    Array(Vec<Reply>),
    NilArray,
}

impl Reply {
    /// The reply as Redis sends it.
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Reply::Simple(line) => out.extend(format!("+{line}\r\n").bytes()),
            Reply::Error(line) => out.extend(format!("-{line}\r\n").bytes()),
            Reply::Int(n) => out.extend(format!(":{n}\r\n").bytes()),
            Reply::Bulk(bytes) => {
                out.extend(format!("${}\r\n", bytes.len()).bytes());
                out.extend_from_slice(bytes);
                out.extend_from_slice(b"\r\n");
            }
            Reply::NilBulk => out.extend_from_slice(b"$-1\r\n"),
            Reply::Array(items) => {
                out.extend(format!("*{}\r\n", items.len()).bytes());
                for item in items {
                    item.encode(out);
                }
            }
            Reply::NilArray => out.extend_from_slice(b"*-1\r\n"),
        }
    }
}

/// Replies nested a few arrays deep at most (the store meets flat arrays).
fn reply() -> impl Strategy<Value = Reply> {
    let line = "[^\r\n]{0,12}";
    let error = prop_oneof![
        "(ERR|WRONGTYPE|NOSCRIPT|BUSY|LOADING|READONLY|EXECABORT|NOPERM|OOM|NOAUTH)( [^\r\n]{0,12})?",
        "(MOVED|ASK) [0-9]{1,5} 127\\.0\\.0\\.1:[0-9]{4}",
        line,
    ];
    let leaf = prop_oneof![
        prop_oneof![Just("OK".to_owned()), line].prop_map(Reply::Simple),
        error.prop_map(Reply::Error),
        any::<i64>().prop_map(Reply::Int),
        prop::collection::vec(any::<u8>(), 0..24).prop_map(Reply::Bulk),
        Just(Reply::NilBulk),
        Just(Reply::NilArray),
    ];
    leaf.prop_recursive(4, 64, 6, |item| {
        prop::collection::vec(item, 0..6).prop_map(Reply::Array)
    })
}

/// A stream of `replies` back to back, where each ends in it, and what
/// redis-rs's parser makes of each.
fn stream(replies: &[Reply]) -> (Vec<u8>, Vec<usize>, Vec<Value>) {
    let mut bytes = Vec::new();
    let mut ends = Vec::new();
    let mut expected = Vec::new();
    for reply in replies {
        let start = bytes.len();
        reply.encode(&mut bytes);
        ends.push(bytes.len());
        let value = redis::parse_redis_value(&bytes[start..]);
        expected.push(value.unwrap_or_else(|e| panic!("redis-rs refuses {reply:?}: {e}")));
    }
    (bytes, ends, expected)
}

/// Checks what a parser made of `bytes` fed in pieces ending at `cuts`
/// (ascending) and then at the end: after each piece, exactly the replies
/// the bytes fed so far hold whole, each equal to redis-rs's.
fn check(replies: &[Reply], cuts: &[usize]) -> Result<(), TestCaseError> {
    let (bytes, ends, expected) = stream(replies);
    let mut bounds = cuts.to_vec();
    bounds.push(bytes.len());
    let mut start = 0;
    let pieces = bounds.iter().map(|&end| {
        let piece = &bytes[start..end];
        start = end;
        piece
    });
    let fed = feed(pieces).map_err(|e| TestCaseError::fail(format!("refused: {e}")))?;
    prop_assert_eq!(&fed.replies, &expected);
    for (&fed_to, &complete) in bounds.iter().zip(&fed.after_each) {
        let whole = ends.iter().filter(|&&end| end <= fed_to).count();
        prop_assert_eq!(complete, whole, "after {} bytes", fed_to);
    }
    Ok(())
}

proptest! {
    #[test]
    fn a_stream_cut_at_any_one_byte_parses_as_redis_rs_parses_it(
        replies in prop::collection::vec(reply(), 1..4),
    ) {
        let (bytes, _, _) = stream(&replies);
        for cut in 0..=bytes.len() {
            check(&replies, &[cut])?;
        }
    }

    #[test]
    fn a_stream_cut_into_many_pieces_parses_as_redis_rs_parses_it(
        replies in prop::collection::vec(reply(), 1..6),
        cuts in prop::collection::vec(any::<Index>(), 0..24),
    ) {
        let (bytes, _, _) = stream(&replies);
        let mut cuts: Vec<usize> = cuts.iter().map(|cut| cut.index(bytes.len() + 1)).collect();
        cuts.sort_unstable();
        check(&replies, &cuts)?;
    }
}

/// How many bytes the parser examines to parse `reply` fed in pieces of
/// `piece` bytes, after checking that it made `reply` of them, in one
/// reply that came with the last piece.
fn examined_by(reply: &[u8], piece: usize) -> usize {
    EXAMINED.with(|n| n.set(0));
    let fed = feed(reply.chunks(piece)).unwrap();
    let examined = EXAMINED.with(std::cell::Cell::get);
    assert_eq!(fed.replies, [redis::parse_redis_value(reply).unwrap()]);
    assert_eq!(
        fed.after_each.iter().filter(|&&n| n == 0).count(),
        fed.after_each.len() - 1
    );
    examined
}

#[test]
fn a_large_array_in_small_reads_is_examined_about_once() {
    // An HGETALL of 100 000 fields: 200 000 bulk strings.
    let mut reply = b"*200000\r\n".to_vec();
    for i in 0..100_000 {
        for item in [format!("field:{i}"), format!("value of field {i}")] {
            reply.extend(format!("${}\r\n{item}\r\n", item.len()).bytes());
        }
    }
    let examined = examined_by(&reply, 1024);
    assert!(
        examined <= 2 * reply.len(),
        "{examined} bytes examined for {}",
        reply.len()
    );
}

#[test]
fn a_large_bulk_string_in_small_reads_is_examined_about_once() {
    let mut reply = b"$4194304\r\n".to_vec();
    reply.resize(reply.len() + 4 * 1024 * 1024, b'x');
    reply.extend_from_slice(b"\r\n");
    let examined = examined_by(&reply, 1024);
    assert!(
        examined <= 2 * reply.len(),
        "{examined} bytes examined for {}",
        reply.len()
    );
}

#[test]
fn a_long_line_in_one_byte_reads_is_examined_about_once() {
    let mut reply = b"+".to_vec();
    reply.resize(64 * 1024, b'x');
    reply.extend_from_slice(b"\r\n");
    let examined = examined_by(&reply, 1);
    // Each piece's search for the CRLF looks at the byte before it again
    // (it may be the CR), and the line is read once more when complete.
    assert!(
        examined <= 3 * reply.len(),
        "{examined} bytes examined for {}",
        reply.len()
    );
}
