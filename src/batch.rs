//! The checks of [`Bus::send_batch`](crate::Bus::send_batch): the kernel checks only the
//! first message of an `ingest` and hands the rest on unread, so the bus reads each.

use crate::Error;
use crate::json;
use crate::routing::destination;

/// Checks every message of `batch` (newline-separated, without a trailing newline, no
/// NUL): each is one JSON value, and each names the pool (if `by_pool`) and the session
/// (if `by_session`) the first names. Returns how many there are.
pub(crate) fn check(batch: &[u8], (by_pool, by_session): (bool, bool)) -> Result<usize, Error> {
    let mut first = None;
    let mut count = 0;
    for (index, message) in lines(batch).enumerate() {
        let valid = core::str::from_utf8(message).is_ok_and(|text| json::validate(text).is_ok());
        if !valid {
            return Err(Error::BatchNotJson { message: index });
        }
        if by_pool || by_session {
            let found = destination(message);
            let (pool, session) = (found.pool, found.session);
            let (first_pool, first_session) = *first.get_or_insert((pool, session));
            let same = |a: Option<json::JStr<'_>>, b: Option<json::JStr<'_>>| match (a, b) {
                (Some(a), Some(b)) => a.same(b),
                (a, b) => a.is_none() && b.is_none(),
            };
            let moved = (by_pool && !same(pool, first_pool))
                || (by_session && !same(session, first_session));
            if moved {
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

    /// One pool, no session table.
    const NOT_ROUTED: (bool, bool) = (false, false);

    #[test]
    fn every_message_is_checked_not_only_the_first() {
        assert_eq!(check(br#"{"a":1}"#, NOT_ROUTED), Ok(1));
        assert_eq!(check(b"{\"a\":1}\n[2]\n\"three\"\r", NOT_ROUTED), Ok(3));
        for (batch, bad) in [
            (&b"{\"a\":1}\n{\"b\":"[..], 1),
            (b"{\"a\":1}\n\n{\"c\":3}", 1),
            (b"{\"a\":1} {\"b\":2}", 0),
            (b"{\"a\":1}\n{\"b\":\"\xff\"}", 1),
            (b"{\"a\":1}\n{\"b\":2}\nnot json", 2),
        ] {
            assert_eq!(
                check(batch, NOT_ROUTED),
                Err(Error::BatchNotJson { message: bad })
            );
        }
    }

    #[test]
    fn with_routing_every_message_goes_where_the_first_does() {
        let same = b"{\"pool\":\"a\",\"id\":1}\n{\"id\":2,\"pool\":\"\\u0061\"}";
        assert_eq!(check(same, (true, false)), Ok(2));
        let other = b"{\"pool\":\"a\",\"id\":1}\n{\"pool\":\"b\",\"id\":2}";
        assert_eq!(
            check(other, (true, false)),
            Err(Error::MixedBatch { message: 1 })
        );
        assert_eq!(
            check(other, (false, true)),
            Ok(2),
            "one pool: its name routes nothing"
        );
        let unnamed = b"{\"pool\":\"a\",\"id\":1}\n{\"id\":2}";
        assert_eq!(
            check(unnamed, (true, false)),
            Err(Error::MixedBatch { message: 1 })
        );
        let sessions = b"{\"sessionId\":\"s1\"}\n{\"sessionId\":\"s2\"}";
        assert_eq!(
            check(sessions, (false, true)),
            Err(Error::MixedBatch { message: 1 })
        );
        assert_eq!(check(sessions, NOT_ROUTED), Ok(2), "nothing routes by them");
    }
}
