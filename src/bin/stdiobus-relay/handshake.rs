//! The client's MCP handshake, kept so that every server process behind the relay has had
//! it: the client sends `initialize` and `notifications/initialized` once, but a worker
//! restarted after a crash is a new process, and a pool of several instances has several.
//! A server that has not had them refuses the client's requests (the Python SDK's answer
//! is "Invalid request parameters"), as the same server would never do to a direct client.
//!
//! Each worker that did not get the client's own `initialize` gets a copy under an id of
//! the relay's (one per copy, [`REPLAY_PREFIX`] and a number, as several may be in flight
//! at once), whose answer the client never sees, then the client's
//! `notifications/initialized` if it came.

use stdiobus_embed::WorkerId;
use stdiobus_embed::jsonrpc::Message;

/// How the ids of the relay's own copies of the client's `initialize` begin: a JSON string,
/// `"stdiobus-relay:initialize:N"`.
pub const REPLAY_PREFIX: &str = r#""stdiobus-relay:initialize:"#;

#[derive(Default)]
pub struct Handshake {
    /// The client's `initialize` params, once it came.
    params: Option<Box<str>>,
    /// The client's `notifications/initialized`, once it came.
    initialized: Option<Vec<u8>>,
    /// How many of the handshake's lines each worker (by id) has had: 0, 1 (`initialize`)
    /// or 2.
    had: Vec<usize>,
    /// Copies sent so far, for their ids.
    copies: u64,
}

/// What a line from the client is to the handshake.
pub enum Step {
    /// The client's `initialize`: it goes to one worker, and a copy to each other.
    Initialize,
    /// The client's `notifications/initialized`: every worker is to have it.
    Initialized,
    /// Anything else.
    Other,
}

impl Handshake {
    /// Notes `line` from the client, parsed as `message`: what it is to the handshake.
    pub fn note(&mut self, line: &[u8], message: &Message<'_>) -> Step {
        let method = message.method();
        let is = |name: &str| method.is_some_and(|m| m.eq_str(name));
        if message.raw_id().is_some() && is("initialize") {
            self.params = Some(message.params().unwrap_or("{}").into());
            self.initialized = None;
            self.had.iter_mut().for_each(|had| *had = 0);
            Step::Initialize
        } else if message.raw_id().is_none() && is("notifications/initialized") {
            self.initialized = Some(line.to_vec());
            Step::Initialized
        } else {
            Step::Other
        }
    }

    /// Worker `id` has had the first `lines` lines of the handshake.
    pub fn had(&mut self, id: WorkerId, lines: usize) {
        let id = id.index();
        if self.had.len() <= id {
            self.had.resize(id + 1, 0);
        }
        self.had[id] = lines;
    }

    /// How many lines of the handshake worker `id` has had.
    pub fn progress(&self, id: WorkerId) -> usize {
        self.had.get(id.index()).copied().unwrap_or(0)
    }

    /// Worker `id` is a new process: it has had nothing.
    pub fn restarted(&mut self, id: WorkerId) {
        self.had(id, 0);
    }

    /// How many lines the handshake has so far: 0 before the client's `initialize`.
    pub fn len(&self) -> usize {
        usize::from(self.params.is_some()) + usize::from(self.initialized.is_some())
    }

    /// Line `index` of the handshake as a worker that has not had it is to get it: a copy
    /// of `initialize` under an id of its own, or `notifications/initialized`.
    pub fn line(&mut self, index: usize) -> Option<Vec<u8>> {
        match index {
            0 => {
                let params = self.params.as_deref()?;
                self.copies += 1;
                let id = format!("{REPLAY_PREFIX}{}\"", self.copies);
                let copy = format!(
                    r#"{{"jsonrpc":"2.0","id":{id},"method":"initialize","params":{params}}}"#
                );
                Some(copy.into_bytes())
            }
            1 => self.initialized.clone(),
            _ => None,
        }
    }
}

/// Whether a raw JSON-RPC id is one of the relay's copies' (see [`REPLAY_PREFIX`]).
pub fn is_replay_id(id: &str) -> bool {
    id.starts_with(REPLAY_PREFIX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn note(handshake: &mut Handshake, line: &str) -> Step {
        handshake.note(line.as_bytes(), &Message::parse(line.as_bytes()).unwrap())
    }

    #[test]
    fn a_new_process_gets_what_the_client_sent_under_ids_of_its_own() {
        let mut handshake = Handshake::default();
        assert_eq!(handshake.len(), 0, "nothing before the client's initialize");
        let init = r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18"}}"#;
        assert!(matches!(note(&mut handshake, init), Step::Initialize));
        let (first_worker, second_worker) = (WorkerId::new(0), WorkerId::new(1));
        handshake.had(first_worker, 1);
        assert_eq!(
            (
                handshake.len(),
                handshake.progress(first_worker),
                handshake.progress(second_worker)
            ),
            (1, 1, 0)
        );
        let initialized = r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;
        assert!(matches!(
            note(&mut handshake, initialized),
            Step::Initialized
        ));
        assert_eq!(handshake.len(), 2);
        let first = String::from_utf8(handshake.line(0).unwrap()).unwrap();
        let second = String::from_utf8(handshake.line(0).unwrap()).unwrap();
        assert_eq!(
            first,
            r#"{"jsonrpc":"2.0","id":"stdiobus-relay:initialize:1","method":"initialize","params":{"protocolVersion":"2025-06-18"}}"#
        );
        assert_ne!(first, second, "each copy has an id of its own");
        assert!(is_replay_id(r#""stdiobus-relay:initialize:2""#));
        assert!(!is_replay_id("2"));
        assert_eq!(handshake.line(1).unwrap(), initialized.as_bytes());
        handshake.restarted(first_worker);
        assert_eq!(handshake.progress(first_worker), 0);
        let call = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call"}"#;
        assert!(matches!(note(&mut handshake, call), Step::Other));
    }
}
