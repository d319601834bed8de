//! The two top-level members of a message that decide where it goes: `pool` and
//! `sessionId`. Read only when the bus needs them, in one pass over the first object.

use crate::json::{JStr, Kind, Scanner};

/// What the first JSON object of a message says about its destination.
#[derive(Clone, Copy, Default)]
pub(crate) struct Destination<'a> {
    /// The `pool` member, when it is a string.
    pub(crate) pool: Option<JStr<'a>>,
    /// The `sessionId` member, when it is a string.
    pub(crate) session: Option<JStr<'a>>,
    /// The raw text of the `id` member, when there is a `method` too: a request.
    pub(crate) request_id: Option<&'a [u8]>,
}

/// Reads `pool` and `sessionId` from the top level of the first object in `message`. A
/// later duplicate wins, as in the kernel's own reader; anything that is not a JSON object
/// names nothing (the kernel refuses it anyway).
pub(crate) fn destination(message: &[u8]) -> Destination<'_> {
    let mut found = Destination::default();
    let Ok(text) = core::str::from_utf8(message) else {
        return found;
    };
    let mut sc = Scanner::new(text);
    if sc.peek_kind() != Some(Kind::Object) {
        return found;
    }
    sc.enter();
    let (mut id, mut method) = (None, false);
    let mut first = true;
    while let Ok(Some((key, _))) = sc.next_key(first) {
        first = false;
        if key.is_key("id") || key.is_key("method") {
            method |= key.is_key("method");
            let _ = sc.peek_kind();
            let start = sc.offset();
            if sc.skip_value(1).is_err() {
                break;
            }
            if key.is_key("id") {
                id = text
                    .get(start..sc.offset())
                    .map(|raw| raw.trim_end().as_bytes());
            }
            continue;
        }
        let slot = if key.is_key("pool") {
            Some(&mut found.pool)
        } else if key.is_key("sessionId") {
            Some(&mut found.session)
        } else {
            None
        };
        match slot {
            Some(slot) if sc.peek_kind() == Some(Kind::String) => match sc.string() {
                Ok(value) => *slot = Some(value),
                Err(_) => break,
            },
            Some(slot) => {
                *slot = None;
                if sc.skip_value(1).is_err() {
                    break;
                }
            }
            None => {
                if sc.skip_value(1).is_err() {
                    break;
                }
            }
        }
    }
    if method {
        found.request_id = id;
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(message: &str) -> (Option<String>, Option<String>) {
        let found = destination(message.as_bytes());
        let text = |s: Option<JStr<'_>>| s.map(|s| s.chars().collect());
        (text(found.pool), text(found.session))
    }

    #[test]
    fn finds_top_level_strings_only() {
        assert_eq!(
            read(r#"{"id":1,"pool":"a","params":{"sessionId":"inner"},"sessionId":"s\u00e9"}"#),
            (Some("a".into()), Some("sé".into()))
        );
        assert_eq!(read(r#"{"pool":7,"sessionId":null}"#), (None, None));
        assert_eq!(read(r#"{"pool":"a","pool":"b"}"#), (Some("b".into()), None));
        assert_eq!(read(r#"[{"pool":"a"}]"#), (None, None));
        assert_eq!(read("not json"), (None, None));
        assert_eq!(
            read(r#"{"pool":"a"}{"pool":"b"}"#),
            (Some("a".into()), None)
        );
    }

    #[test]
    fn finds_the_raw_id_of_requests_only() {
        let id = |message: &str| {
            destination(message.as_bytes())
                .request_id
                .map(<[u8]>::to_vec)
        };
        assert_eq!(
            id(r#"{"id": "r-1" ,"method":"m"}"#),
            Some(br#""r-1""#.to_vec())
        );
        assert_eq!(id(r#"{"method":"m","id":42}"#), Some(b"42".to_vec()));
        assert_eq!(id(r#"{"method":"m"}"#), None);
        assert_eq!(id(r#"{"id":1,"result":{}}"#), None);
    }
}
