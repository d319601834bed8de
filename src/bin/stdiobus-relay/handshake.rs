//! The client's MCP handshake, kept so that every server process behind the relay has had
//! it: the client sends `initialize` and `notifications/initialized` once, but a worker
//! restarted after a crash is a new process, and a pool of several instances has several.
//! A server that has not had them refuses the client's requests (the Python SDK's answer
//! is "Invalid request parameters"), as the same server would never do to a direct client.
//!
//! Each worker that did not get the client's own `initialize` gets a copy under the relay's
//! id [`REPLAY_ID`], whose answer the client never sees, then the client's
//! `notifications/initialized` if it came.

use stdiobus_embed::jsonrpc::Message;

/// The id of the relay's own copies of the client's `initialize`.
pub const REPLAY_ID: &str = r#""stdiobus-relay:initialize""#;

#[derive(Default)]
pub struct Handshake {
    /// The client's `initialize` under [`REPLAY_ID`], once it came.
    initialize: Option<Vec<u8>>,
    /// The client's `notifications/initialized`, once it came.
    initialized: Option<Vec<u8>>,
    /// Workers (by id) that have had the handshake as far as the client has gone.
    done: Vec<bool>,
}

/// What a line from the client is to the handshake.
pub enum Step {
    /// The client's `initialize`: it goes to one worker, and a copy to each other.
    Initialize,
    /// The client's `notifications/initialized`: it goes to every worker.
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
            let params = message.params().unwrap_or("{}");
            let copy = format!(
                r#"{{"jsonrpc":"2.0","id":{REPLAY_ID},"method":"initialize","params":{params}}}"#
            );
            self.initialize = Some(copy.into_bytes());
            self.initialized = None;
            self.done.iter_mut().for_each(|done| *done = false);
            Step::Initialize
        } else if message.raw_id().is_none() && is("notifications/initialized") {
            self.initialized = Some(line.to_vec());
            Step::Initialized
        } else {
            Step::Other
        }
    }

    /// Worker `id` has had the handshake as far as the client has gone.
    pub fn had(&mut self, id: i32) {
        let Ok(id) = usize::try_from(id) else {
            return;
        };
        if self.done.len() <= id {
            self.done.resize(id + 1, false);
        }
        self.done[id] = true;
    }

    /// Worker `id` is a new process: it has had nothing.
    pub fn restarted(&mut self, id: i32) {
        if let Some(done) = usize::try_from(id)
            .ok()
            .and_then(|id| self.done.get_mut(id))
        {
            *done = false;
        }
    }

    /// Whether worker `id` is still to get the handshake.
    pub fn owed(&self, id: i32) -> bool {
        self.initialize.is_some()
            && !usize::try_from(id)
                .ok()
                .and_then(|id| self.done.get(id))
                .is_some_and(|&done| done)
    }

    /// The lines that bring a worker up to where the client is: the `initialize` copy,
    /// then `notifications/initialized` if it came.
    pub fn lines(&self) -> impl Iterator<Item = &[u8]> {
        self.initialize
            .iter()
            .chain(self.initialized.iter())
            .map(Vec::as_slice)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn note(handshake: &mut Handshake, line: &str) -> Step {
        handshake.note(line.as_bytes(), &Message::parse(line.as_bytes()).unwrap())
    }

    #[test]
    fn a_new_process_is_owed_the_handshake_the_client_made() {
        let mut handshake = Handshake::default();
        assert!(!handshake.owed(0), "nothing before the client's initialize");
        let init = r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18"}}"#;
        assert!(matches!(note(&mut handshake, init), Step::Initialize));
        handshake.had(0);
        assert!(!handshake.owed(0));
        assert!(handshake.owed(1), "another instance has not had it");
        let initialized = r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;
        assert!(matches!(
            note(&mut handshake, initialized),
            Step::Initialized
        ));
        handshake.restarted(0);
        assert!(handshake.owed(0));
        let lines: Vec<&[u8]> = handshake.lines().collect();
        assert_eq!(
            lines,
            [
                &br#"{"jsonrpc":"2.0","id":"stdiobus-relay:initialize","method":"initialize","params":{"protocolVersion":"2025-06-18"}}"#[..],
                initialized.as_bytes(),
            ]
        );
        let call = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call"}"#;
        assert!(matches!(note(&mut handshake, call), Step::Other));
    }
}
