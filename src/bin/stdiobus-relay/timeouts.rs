//! The relay's deadlines: the client's requests that must be answered in time
//! (`--request-timeout`), and the MCP `ping` of server processes that have been silent
//! (`--ping-interval`). Plain values with `now` fed in; the main loop waits no longer than
//! the next deadline and acts on what is due.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use stdiobus_embed::WorkerId;

/// How long a ping waits for its answer when no request timeout is set.
pub const DEFAULT_PING_TIMEOUT: Duration = Duration::from_secs(10);

/// The start of the relay's own ping ids: never one of the client's, whose ids the relay
/// passes on as they are.
pub const PING_PREFIX: &str = r#""stdiobus-relay:ping:"#;

/// Whether a raw JSON-RPC id is one of the relay's pings'.
pub fn is_ping_id(id: &str) -> bool {
    id.starts_with(PING_PREFIX)
}

/// The client's requests that are answered with an error once their time is up.
#[derive(Debug, Default)]
pub struct RequestDeadlines {
    limit: Option<Duration>,
    /// Requests by raw id, in the order sent (the limit is the same for all, so the
    /// earliest deadline is first), with a number telling one use of an id from the next.
    due: VecDeque<(Instant, Box<str>, u64)>,
    current: HashMap<Box<str>, u64>,
    sent: u64,
    /// Requests answered with an error at their deadline, whose late answer is dropped.
    expired: HashSet<Box<str>>,
    /// Late answers dropped.
    pub late: u64,
}

impl RequestDeadlines {
    pub fn new(limit: Option<Duration>) -> Self {
        Self {
            limit,
            ..Self::default()
        }
    }

    /// Request `id` went at `now`.
    pub fn sent(&mut self, id: &str, now: Instant) {
        let Some(limit) = self.limit else {
            return;
        };
        self.sent += 1;
        self.expired.remove(id);
        self.current.insert(id.into(), self.sent);
        self.due.push_back((now + limit, id.into(), self.sent));
    }

    /// Request `id` is settled (answered, refused, cancelled): no deadline any more.
    pub fn settled(&mut self, id: &str) {
        self.current.remove(id);
    }

    /// The requests whose deadline has come by `now`, once each; their late answers are
    /// to be dropped ([`Self::is_late`]).
    pub fn expire(&mut self, now: Instant) -> Vec<Box<str>> {
        let mut expired = Vec::new();
        while let Some((at, _, _)) = self.due.front()
            && *at <= now
        {
            let (_, id, number) = self.due.pop_front().expect("a front");
            if self.current.get(&id) == Some(&number) {
                self.current.remove(&id);
                self.expired.insert(id.clone());
                expired.push(id);
            }
        }
        expired
    }

    /// Whether an answer with `id` is late (its request was answered at its deadline); the
    /// first call says so and counts it.
    pub fn is_late(&mut self, id: &str) -> bool {
        let late = self.expired.remove(id);
        self.late += u64::from(late);
        late
    }

    /// Forgets a late answer that can no longer come (its worker ended).
    pub fn forget(&mut self, id: &str) {
        self.expired.remove(id);
    }

    /// The next deadline still to come.
    pub fn next(&self) -> Option<Instant> {
        self.due
            .iter()
            .find(|(_, id, number)| self.current.get(id) == Some(number))
            .map(|(at, _, _)| *at)
    }
}

/// Where the ping of one server process stands.
#[derive(Clone, Copy, Debug)]
struct Server {
    /// When it last wrote something, or started.
    heard: Instant,
    /// The ping waiting for its answer: its number, and when it is too late.
    ping: Option<(u64, Instant)>,
}

/// What the pings ask the relay to do now.
#[derive(Debug, PartialEq, Eq)]
pub enum PingAction {
    /// Send this line to this worker.
    Send(WorkerId, String),
    /// This worker did not answer its ping in time: restart it.
    Restart(WorkerId),
}

/// The `--ping-interval` probe of silent server processes.
#[derive(Debug)]
pub struct Pings {
    interval: Option<Duration>,
    timeout: Duration,
    servers: HashMap<WorkerId, Server>,
    sent: u64,
}

impl Pings {
    pub fn new(interval: Option<Duration>, timeout: Option<Duration>) -> Self {
        Self {
            interval,
            timeout: timeout.unwrap_or(DEFAULT_PING_TIMEOUT),
            servers: HashMap::new(),
            sent: 0,
        }
    }

    /// Worker `id` wrote something (or a new process started) at `now`.
    pub fn heard(&mut self, id: WorkerId, now: Instant) {
        if self.interval.is_some() {
            let server = self.servers.entry(id).or_insert(Server {
                heard: now,
                ping: None,
            });
            server.heard = now;
        }
    }

    /// Worker `id` answered the ping `raw` id, or a new process took its place: no ping
    /// is waited for.
    pub fn answered(&mut self, id: WorkerId, now: Instant) {
        if let Some(server) = self.servers.get_mut(&id) {
            server.ping = None;
            server.heard = now;
        }
    }

    /// Worker `id` is gone (ended, or being restarted): nothing to ping until it starts.
    pub fn gone(&mut self, id: WorkerId) {
        self.servers.remove(&id);
    }

    /// What is due at `now`, for the workers that `serving` says run.
    pub fn due(&mut self, now: Instant, serving: impl Fn(WorkerId) -> bool) -> Vec<PingAction> {
        let Some(interval) = self.interval else {
            return Vec::new();
        };
        let mut actions = Vec::new();
        let mut ids: Vec<WorkerId> = self.servers.keys().copied().collect();
        ids.sort_unstable_by_key(|id| id.get());
        for id in ids.into_iter().filter(|&id| serving(id)) {
            let server = self.servers.get_mut(&id).expect("listed");
            match server.ping {
                Some((_, too_late)) if now >= too_late => {
                    self.servers.remove(&id);
                    actions.push(PingAction::Restart(id));
                }
                Some(_) => {}
                None if now >= server.heard + interval => {
                    self.sent += 1;
                    server.ping = Some((self.sent, now + self.timeout));
                    let line = format!(
                        r#"{{"jsonrpc":"2.0","id":{PING_PREFIX}{}","method":"ping"}}"#,
                        self.sent
                    );
                    actions.push(PingAction::Send(id, line));
                }
                None => {}
            }
        }
        actions
    }

    /// The next instant something is due.
    pub fn next(&self) -> Option<Instant> {
        let interval = self.interval?;
        self.servers
            .values()
            .map(|server| match server.ping {
                Some((_, too_late)) => too_late,
                None => server.heard + interval,
            })
            .min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_expires_once_unless_settled_and_its_late_answer_is_dropped() {
        let start = Instant::now();
        let second = Duration::from_secs(1);
        let mut deadlines = RequestDeadlines::new(Some(second));
        deadlines.sent("1", start);
        deadlines.sent("2", start + second / 2);
        deadlines.settled("2");
        assert_eq!(deadlines.next(), Some(start + second));
        assert!(deadlines.expire(start + second / 2).is_empty());
        assert_eq!(deadlines.expire(start + second * 2), [Box::from("1")]);
        assert!(deadlines.expire(start + second * 3).is_empty(), "once");
        assert_eq!(deadlines.next(), None);
        assert!(deadlines.is_late("1"));
        assert!(!deadlines.is_late("1"), "dropped once");
        assert!(!deadlines.is_late("2"));
        assert_eq!(deadlines.late, 1);
    }

    #[test]
    fn an_id_used_again_has_the_deadline_of_its_new_request() {
        let start = Instant::now();
        let second = Duration::from_secs(1);
        let mut deadlines = RequestDeadlines::new(Some(second));
        deadlines.sent("1", start);
        deadlines.settled("1");
        deadlines.sent("1", start + second / 2);
        assert!(deadlines.expire(start + second).is_empty());
        assert_eq!(deadlines.expire(start + second * 2), [Box::from("1")]);
    }

    #[test]
    fn no_limit_no_deadline() {
        let mut deadlines = RequestDeadlines::new(None);
        deadlines.sent("1", Instant::now());
        assert_eq!(deadlines.next(), None);
        assert!(
            deadlines
                .expire(Instant::now() + Duration::from_secs(99))
                .is_empty()
        );
    }

    #[test]
    fn a_silent_server_is_pinged_then_restarted_if_it_does_not_answer() {
        let start = Instant::now();
        let second = Duration::from_secs(1);
        let mut pings = Pings::new(Some(second), Some(second * 2));
        let w = WorkerId::new(0);
        pings.heard(w, start);
        assert_eq!(pings.next(), Some(start + second));
        assert!(pings.due(start, |_| true).is_empty());
        let sent = pings.due(start + second, |_| true);
        let [PingAction::Send(to, line)] = &sent[..] else {
            panic!("{sent:?}");
        };
        assert_eq!(*to, w);
        assert!(line.contains(r#""method":"ping""#) && line.contains(PING_PREFIX));
        assert!(
            pings.due(start + second * 2, |_| true).is_empty(),
            "one ping"
        );
        assert_eq!(
            pings.due(start + second * 3, |_| true),
            [PingAction::Restart(w)]
        );
        assert_eq!(pings.next(), None);
    }

    #[test]
    fn an_answered_ping_and_output_keep_a_server_alone() {
        let start = Instant::now();
        let second = Duration::from_secs(1);
        let mut pings = Pings::new(Some(second), None);
        let w = WorkerId::new(3);
        pings.heard(w, start);
        assert_eq!(pings.due(start + second, |_| true).len(), 1);
        pings.answered(w, start + second * 2);
        assert!(pings.due(start + second * 2, |_| true).is_empty());
        pings.heard(w, start + second * 5 / 2);
        assert!(pings.due(start + second * 3, |_| true).is_empty());
        assert!(
            pings.due(start + second * 9, |_| false).is_empty(),
            "not serving"
        );
        assert!(is_ping_id(r#""stdiobus-relay:ping:4""#));
        assert!(!is_ping_id("4"));
    }
}
