//! The checks of [`Bus::send_batch`](crate::Bus::send_batch): the kernel checks only the
//! first message of an `ingest` and hands the rest on unread, so the bus reads each.

use crate::Error;
use crate::json;
use crate::routing::destination;

/// Checks every message of `batch` (newline-separated, without a trailing newline, no
/// NUL): each is one JSON value, and with `same_destination` each names the pool and
/// session the first names. Returns how many there are.
pub(crate) fn check(batch: &[u8], same_destination: bool) -> Result<usize, Error> {
    let mut first = None;
    let mut count = 0;
    for (index, message) in lines(batch).enumerate() {
        let valid = core::str::from_utf8(message).is_ok_and(|text| json::validate(text).is_ok());
        if !valid {
            return Err(Error::BatchNotJson { message: index });
        }
        if same_destination {
            let found = destination(message);
            let (pool, session) = (found.pool, found.session);
            let (first_pool, first_session) = *first.get_or_insert((pool, session));
            let same = |a: Option<json::JStr<'_>>, b: Option<json::JStr<'_>>| match (a, b) {
                (Some(a), Some(b)) => a.same(b),
                (a, b) => a.is_none() && b.is_none(),
            };
            if !same(pool, first_pool) || !same(session, first_session) {
                return Err(Error::MixedBatch { message: index });
            }
        }
        count = index + 1;
    }
    Ok(count)
}

/// The lines of `batch`.
fn lines(batch: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = Some(batch);
    core::iter::from_fn(move || {
        let text = rest?;
        match crate::memchr::find(b'\n', text) {
            Some(at) => {
                rest = Some(&text[at + 1..]);
                Some(&text[..at])
            }
            None => {
                rest = None;
                Some(text)
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_message_is_checked_not_only_the_first() {
        assert_eq!(check(br#"{"a":1}"#, false), Ok(1));
        assert_eq!(check(b"{\"a\":1}\n[2]\n\"three\"\r", false), Ok(3));
        for (batch, bad) in [
            (&b"{\"a\":1}\n{\"b\":"[..], 1),
            (b"{\"a\":1}\n\n{\"c\":3}", 1),
            (b"{\"a\":1} {\"b\":2}", 0),
            (b"{\"a\":1}\n{\"b\":\"\xff\"}", 1),
            (b"{\"a\":1}\n{\"b\":2}\nnot json", 2),
        ] {
            assert_eq!(
                check(batch, false),
                Err(Error::BatchNotJson { message: bad })
            );
        }
    }

    #[test]
    fn with_routing_every_message_goes_where_the_first_does() {
        let same = b"{\"pool\":\"a\",\"id\":1}\n{\"id\":2,\"pool\":\"\\u0061\"}";
        assert_eq!(check(same, true), Ok(2));
        let other = b"{\"pool\":\"a\",\"id\":1}\n{\"pool\":\"b\",\"id\":2}";
        assert_eq!(check(other, true), Err(Error::MixedBatch { message: 1 }));
        let unnamed = b"{\"pool\":\"a\",\"id\":1}\n{\"id\":2}";
        assert_eq!(check(unnamed, true), Err(Error::MixedBatch { message: 1 }));
        let sessions = b"{\"sessionId\":\"s1\"}\n{\"sessionId\":\"s2\"}";
        assert_eq!(check(sessions, true), Err(Error::MixedBatch { message: 1 }));
        assert_eq!(check(sessions, false), Ok(2), "nothing routes by them");
    }
}
