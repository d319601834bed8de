//! Which worker a host message goes to.
//!
//! The kernel's `ingest` writes every message to the first running worker (archive 1.1.1)
//! or to the first running worker of the pool a `"pool"` member names, falling back to any
//! other pool (2.2.1). The bus decides instead, and `interpose` sends the kernel's write
//! there:
//! - a message goes to a pool: the one named by the call ([`Bus::send_to_pool`]), else the
//!   only pool there is, else the one its top-level `"pool"` string names. With two or
//!   more pools, a message that names none, or names one that does not exist, is refused;
//! - within the pool, a message with a top-level `"sessionId"` string goes to the worker
//!   that took the first message of that session, while that worker lives, when the bus
//!   has a session table ([`Bus::set_session_table`]);
//! - any other message goes to the next live worker of the pool, round-robin. Round-robin
//!   needs nothing from the responses, so it costs no parsing of worker output, and it
//!   spreads requests evenly over workers that serve at the same speed.
//!
//! [`Bus::send_to_pool`]: crate::Bus::send_to_pool
//! [`Bus::set_session_table`]: crate::Bus::set_session_table

mod fields;
mod pools;
mod table;
#[cfg(test)]
mod tests;

pub use table::{RequestSlot, SessionSlot, Slot};

pub(crate) use fields::destination;
pub(crate) use pools::Pools;

use crate::Error;
use crate::interpose::Children;
use crate::limits::{MAX_REQUEST_ID, MAX_SESSION_ID};
pub(crate) use table::Binding;
use table::{Requests, SessionKey, Sessions};

/// What a caller asked for.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Target<'a> {
    /// Whatever the message says.
    Message,
    /// A pool, by id.
    Pool(&'a str),
}

/// A session that had to leave its worker, which is gone: the host learns of it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Moved {
    pub(crate) from: usize,
    pub(crate) to: usize,
}

/// The bus's routing state.
pub(crate) struct Router<'r> {
    pub(crate) pools: Pools,
    sessions: Option<Sessions<'r>>,
    requests: Option<Requests<'r>>,
}

impl<'r> Router<'r> {
    pub(crate) fn new(pools: Pools) -> Self {
        Self {
            pools,
            sessions: None,
            requests: None,
        }
    }

    pub(crate) fn set_sessions(&mut self, slots: &'r mut [SessionSlot]) {
        self.sessions = Some(Sessions::new(slots));
    }

    pub(crate) fn set_requests(&mut self, slots: &'r mut [RequestSlot]) {
        self.requests = Some(Requests::new(slots));
    }

    /// Whether responses must be matched to requests, in the kernel's callbacks.
    pub(crate) fn tracks_requests(&self) -> bool {
        self.requests.is_some()
    }

    /// Whether `send` must read the message to route it.
    /// Whether a message's `pool` and its `sessionId` decide where it goes: two or more
    /// pools; a session table.
    pub(crate) fn routes_by(&self) -> (bool, bool) {
        (self.pools.len() > 1, self.sessions.is_some())
    }

    /// Whether a message's `pool`, `sessionId` or `id` decide anything: two or more pools,
    /// a session table or a request table.
    pub(crate) fn reads_messages(&self) -> bool {
        self.pools.len() > 1 || self.sessions.is_some() || self.requests.is_some()
    }

    /// Notes that the requests in `message` (each of its lines with an `id` and a
    /// `method`) go to `to`: their responses are awaited from there. Refuses them all if
    /// one cannot be noted. Call [`Router::unsent`] if they do not go after all.
    pub(crate) fn sending(&mut self, message: &[u8], to: Binding) -> Result<(), Error> {
        let Some(requests) = self.requests.as_mut() else {
            return Ok(());
        };
        for (noted, id) in request_ids(message).enumerate() {
            let refused = if id.len() > MAX_REQUEST_ID {
                Some(Error::RequestIdTooLong {
                    len: id.len(),
                    max: MAX_REQUEST_ID,
                })
            } else if requests.get(0, id).is_some() {
                Some(Error::RequestIdInFlight)
            } else if !requests.bind(0, id, to) {
                Some(Error::RequestTableFull {
                    capacity: requests.capacity(),
                })
            } else {
                None
            };
            if let Some(error) = refused {
                for id in request_ids(message).take(noted) {
                    requests.remove(0, id);
                }
                return Err(error);
            }
        }
        Ok(())
    }

    /// Takes back what [`Router::sending`] noted for `message`.
    pub(crate) fn unsent(&mut self, message: &[u8]) {
        if let Some(requests) = self.requests.as_mut() {
            for id in request_ids(message) {
                requests.remove(0, id);
            }
        }
    }

    /// Notes a line `worker` wrote: if it answers a request in flight to it, that request
    /// is no longer awaited.
    pub(crate) fn received(&mut self, worker: usize, line: &[u8]) {
        if self.requests.is_some()
            && let Some(id) = crate::jsonrpc::response_id::response_id(line)
        {
            self.answered(worker, id);
        }
    }

    /// Notes that `worker` answered request `id` (raw JSON): it is no longer awaited.
    pub(crate) fn answered(&mut self, worker: usize, id: &[u8]) {
        if let Some(requests) = self.requests.as_mut()
            && requests.get(0, id).is_some_and(|to| to.worker == worker)
        {
            requests.remove(0, id);
        }
    }

    /// Calls `lost` with the id of every request in flight to `worker`'s process of
    /// `generation`, which has ended, and forgets them.
    pub(crate) fn abandon(&mut self, worker: usize, generation: u32, mut lost: impl FnMut(&[u8])) {
        let Some(requests) = self.requests.as_mut() else {
            return;
        };
        let mut at = 0;
        while at < requests.capacity() {
            let mut id = [0u8; MAX_REQUEST_ID];
            let found = requests.entry(at).and_then(|(key, to)| {
                let ours = to.worker == worker && to.generation == generation;
                ours.then(|| {
                    id[..key.len()].copy_from_slice(key);
                    key.len()
                })
            });
            match found {
                Some(len) => {
                    lost(&id[..len]);
                    // Removing shifts later entries up, possibly into `at`: look again.
                    requests.remove(0, &id[..len]);
                }
                None => at += 1,
            }
        }
    }

    /// Whether a request is in flight to `worker`'s process of `generation`: a scan of the
    /// table, made at liveness checks only.
    pub(crate) fn awaits(&self, worker: usize, generation: u32) -> bool {
        let Some(requests) = self.requests.as_ref() else {
            return false;
        };
        (0..requests.capacity()).any(|at| {
            requests
                .entry(at)
                .is_some_and(|(_, to)| to.worker == worker && to.generation == generation)
        })
    }

    /// Requests in flight.
    pub(crate) fn requests_in_flight(&self) -> usize {
        self.requests.as_ref().map_or(0, Requests::len)
    }

    /// The worker `message` goes to, and the session that moved to it if one had to.
    pub(crate) fn choose(
        &mut self,
        message: &[u8],
        target: Target<'_>,
        children: &Children,
    ) -> Result<(usize, Option<(Moved, SessionKey)>), Error> {
        let found = if self.reads_messages() {
            destination(message)
        } else {
            Default::default()
        };
        let pool = match target {
            Target::Pool(name) => self.pools.find(name.chars()).ok_or(Error::UnknownPool)?,
            // With one pool there is nothing to choose: the member is not read.
            Target::Message if self.pools.len() == 1 => 0,
            Target::Message => match found.pool {
                Some(name) => self.pools.find(name.chars()).ok_or(Error::UnknownPool)?,
                None => return Err(Error::PoolNotNamed),
            },
        };
        let (Some(session), Some(sessions)) = (found.session, self.sessions.as_mut()) else {
            return Ok((next_live(&mut self.pools, pool, children)?, None));
        };
        let key = SessionKey::decode(session.chars()).map_err(|len| Error::SessionIdTooLong {
            len,
            max: MAX_SESSION_ID,
        })?;
        let bound = sessions.get(pool, key.as_bytes());
        if let Some(binding) = bound
            && children.serves(binding.worker, binding.generation)
        {
            return Ok((binding.worker, None));
        }
        let worker = next_live(&mut self.pools, pool, children)?;
        let binding = Binding {
            worker,
            generation: children.generation(worker),
        };
        if !sessions.bind(pool, key.as_bytes(), binding) {
            return Err(Error::SessionTableFull {
                capacity: sessions.capacity(),
            });
        }
        let moved = bound.map(|old| Moved {
            from: old.worker,
            to: worker,
        });
        Ok((worker, moved.map(|moved| (moved, key))))
    }

    /// Forgets a session; whether the table had it.
    pub(crate) fn end_session(&mut self, pool: Option<&str>, id: &str) -> Result<bool, Error> {
        let pool = match pool {
            Some(name) => self.pools.find(name.chars()).ok_or(Error::UnknownPool)?,
            None if self.pools.len() == 1 => 0,
            None => return Err(Error::PoolNotNamed),
        };
        Ok(self
            .sessions
            .as_mut()
            .is_some_and(|sessions| sessions.remove(pool, id.as_bytes())))
    }

    /// Sessions in the table.
    pub(crate) fn session_count(&self) -> usize {
        self.sessions.as_ref().map_or(0, Sessions::len)
    }
}

/// The raw ids of the requests among the lines of `message`.
fn request_ids(message: &[u8]) -> impl Iterator<Item = &[u8]> {
    message
        .split(|&byte| byte == b'\n')
        .filter_map(|line| destination(line).request_id)
}

/// The next worker of `pool` that serves, round-robin.
fn next_live(pools: &mut Pools, pool: usize, children: &Children) -> Result<usize, Error> {
    let range = pools.get_mut(pool).ok_or(Error::UnknownPool)?;
    let (first, count) = (usize::from(range.first), usize::from(range.count));
    for step in 0..count {
        let offset = (usize::from(range.next) + step) % count;
        let worker = first + offset;
        if children.is_serving(worker) {
            range.next = ((offset + 1) % count) as u16;
            return Ok(worker);
        }
    }
    Err(Error::NoWorker)
}
