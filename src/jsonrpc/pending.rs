//! A fixed-capacity table of requests in flight, completed by the messages, overflow
//! markers and deadlines the host feeds it.

use core::fmt;
use core::time::Duration;

use super::{Id, Kind, Message, MessageId, RpcError, ScanError};
use crate::{Event, Overflow};

/// How a request ended. Every registered request ends exactly once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Outcome<'a> {
    /// The peer answered with `result` (raw JSON).
    Result(&'a str),
    /// The peer answered with `error`.
    Error(RpcError<'a>),
    /// The deadline passed first (see [`Pending::expire`]). A response arriving later is
    /// no longer recognised: [`Pending::message`] reports it as [`Fed::Unmatched`].
    TimedOut,
    /// The response arrived but was lost to a full ring: its id was among
    /// [`Overflow::lost_ids`].
    Lost,
    /// A full ring lost more responses than it could name
    /// ([`Overflow::more_ids_lost`]), so this request's response may be among them.
    ///
    /// The table cannot tell, and waiting for a response that will never come is worse
    /// than failing early, so [`Pending::lost`] completes *every* request still pending
    /// with this outcome. A response that does arrive afterwards is reported as
    /// [`Fed::Unmatched`]; a host that would rather keep waiting registers the id again.
    MaybeLost,
}

/// A request that ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Completion<'a> {
    /// The id it was registered with.
    pub id: Id<'a>,
    /// How it ended.
    pub outcome: Outcome<'a>,
}

/// What [`Pending::message`] or [`Pending::event`] made of what it was given.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Fed<'a> {
    /// A response that completed a pending request; the callback ran once.
    Completed,
    /// A valid message that completes nothing: a request or notification from a worker,
    /// or a response to an id that is not pending (never registered, timed out, lost).
    Unmatched(Message<'a>),
    /// A message that is not JSON-RPC.
    Invalid(ScanError),
    /// An overflow marker; the callback ran this many times.
    Overflow {
        /// Requests completed as [`Outcome::Lost`] or [`Outcome::MaybeLost`].
        completed: usize,
    },
    /// Another kind of event; the table ignores it.
    Other,
}

/// Why an id could not be registered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum RegisterError {
    /// Every slot holds a pending request.
    Full {
        /// The table's capacity.
        capacity: usize,
    },
    /// The id is already pending.
    Duplicate,
    /// A string id longer than the table stores.
    IdTooLong {
        /// The id's length in bytes of UTF-8.
        len: usize,
        /// The longest the table stores.
        max: usize,
    },
}

impl fmt::Display for RegisterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Full { capacity } => {
                write!(f, "all {capacity} pending-request slots are in use")
            }
            Self::Duplicate => f.write_str("a request with this id is already pending"),
            Self::IdTooLong { len, max } => {
                write!(
                    f,
                    "the id is {len} bytes long; the table stores at most {max}"
                )
            }
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for RegisterError {}

#[derive(Clone, Copy, Debug)]
enum Key {
    Free,
    Int(i64),
    /// A string id: its length in `Slot::bytes`.
    Str(usize),
}

#[derive(Clone, Copy, Debug)]
struct Slot<const L: usize> {
    key: Key,
    bytes: [u8; L],
    deadline: Duration,
}

impl<const L: usize> Slot<L> {
    const FREE: Self = Self {
        key: Key::Free,
        bytes: [0; L],
        deadline: Duration::ZERO,
    };

    fn id(&self) -> Option<Id<'_>> {
        match self.key {
            Key::Free => None,
            Key::Int(n) => Some(Id::Int(n)),
            Key::Str(len) => core::str::from_utf8(self.bytes.get(..len)?)
                .ok()
                .map(Id::Str),
        }
    }

    fn is(&self, id: Id<'_>) -> bool {
        self.id() == Some(id)
    }

    fn answers(&self, id: &MessageId<'_>) -> bool {
        self.id().is_some_and(|own| id.matches(own))
    }
}

/// A fixed-capacity table of up to `N` requests in flight, with deadlines: register an
/// id before sending the request, feed the table every event, call
/// [`expire`](Pending::expire) regularly, and each request completes exactly once through
/// a callback with an [`Outcome`].
///
/// String ids are stored decoded in `ID_LEN` bytes each (default 32). Keep them at most 30
/// bytes (32 with their quotes) for a lost response to be reported by id
/// ([`Overflow::lost_ids`] carries ids of at most 32 raw bytes); longer ones are covered
/// by [`Outcome::MaybeLost`]. Integer ids are `i64`. A response matches when its id has
/// the same value: `"\u0061"` answers `"a"`, but `"1"` does not answer `1`.
///
/// No clock is read: deadlines and `now` are [`Duration`]s on one monotonic clock of the
/// caller's choosing. Every operation is a linear scan of the `N` slots, which for the
/// tens of requests a bare loop keeps in flight costs less than hashing would; nothing
/// allocates, and the table can live in a `static` or on the stack.
///
/// ```
/// use core::time::Duration;
/// use stdiobus_embed::jsonrpc::{Completion, Fed, Outcome, Pending};
///
/// let mut pending = Pending::<4>::new();
/// pending.register("a", Duration::from_millis(100))?;
/// pending.register(2, Duration::from_millis(500))?;
///
/// let fed = pending.message(br#"{"jsonrpc":"2.0","id":"a","error":{"code":-1,"message":"no"}}"#, |c| {
///     assert!(matches!(c.outcome, Outcome::Error(e) if e.code == Some(-1)));
/// });
/// assert_eq!(fed, Fed::Completed);
///
/// // Later: the clock passed the second deadline.
/// let mut timed_out = 0;
/// pending.expire(Duration::from_millis(600), |c: Completion<'_>| {
///     assert_eq!(c.outcome, Outcome::TimedOut);
///     timed_out += 1;
/// });
/// assert_eq!(timed_out, 1);
/// assert!(pending.is_empty());
/// # Ok::<(), stdiobus_embed::jsonrpc::RegisterError>(())
/// ```
///
/// With a listener, the responses to clients' requests reach the host too (observed), so a
/// client's id can complete the host's request of the same id: give the host's requests
/// ids no client uses, such as prefixed strings. A response that is not valid JSON-RPC
/// (`"params":null`, say) completes nothing; its request ends by timeout.
#[derive(Clone, Debug)]
pub struct Pending<const N: usize, const ID_LEN: usize = 32> {
    slots: [Slot<ID_LEN>; N],
    len: usize,
}

impl<const N: usize, const ID_LEN: usize> Default for Pending<N, ID_LEN> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize, const ID_LEN: usize> Pending<N, ID_LEN> {
    /// An empty table.
    pub const fn new() -> Self {
        Self {
            slots: [Slot::FREE; N],
            len: 0,
        }
    }

    /// How many requests the table holds at most.
    pub const fn capacity(&self) -> usize {
        N
    }

    /// How many requests are pending.
    pub const fn len(&self) -> usize {
        self.len
    }

    /// Whether no request is pending.
    pub const fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether every slot is in use.
    pub const fn is_full(&self) -> bool {
        self.len == N
    }

    /// Records that a request with `id` is in flight and must complete by `deadline`: a
    /// point on the same clock as the `now` given to [`Pending::expire`] (such as
    /// `now + timeout`), not a timeout. Register before sending, so that no response can
    /// arrive unrecognised; [`Pending::cancel`] it if the send then fails.
    pub fn register<'i>(
        &mut self,
        id: impl Into<Id<'i>>,
        deadline: Duration,
    ) -> Result<(), RegisterError> {
        let id = id.into();
        let key = match id {
            Id::Int(n) => Key::Int(n),
            Id::Str(s) if s.len() > ID_LEN => {
                return Err(RegisterError::IdTooLong {
                    len: s.len(),
                    max: ID_LEN,
                });
            }
            Id::Str(s) => Key::Str(s.len()),
        };
        if self.contains(id) {
            return Err(RegisterError::Duplicate);
        }
        let slot = self
            .slots
            .iter_mut()
            .find(|slot| matches!(slot.key, Key::Free))
            .ok_or(RegisterError::Full { capacity: N })?;
        if let Id::Str(s) = id
            && let Some(dst) = slot.bytes.get_mut(..s.len())
        {
            dst.copy_from_slice(s.as_bytes());
        }
        slot.key = key;
        slot.deadline = deadline;
        self.len += 1;
        Ok(())
    }

    /// Whether a request with `id` is pending.
    pub fn contains<'i>(&self, id: impl Into<Id<'i>>) -> bool {
        let id = id.into();
        self.slots.iter().any(|slot| slot.is(id))
    }

    /// The deadline of the pending request with `id`.
    pub fn deadline<'i>(&self, id: impl Into<Id<'i>>) -> Option<Duration> {
        let id = id.into();
        self.slots
            .iter()
            .find(|slot| slot.is(id))
            .map(|slot| slot.deadline)
    }

    /// The earliest deadline of all pending requests: how long the loop may wait in
    /// [`Bus::poll`](crate::Bus::poll) before it must call [`Pending::expire`].
    pub fn next_deadline(&self) -> Option<Duration> {
        self.slots
            .iter()
            .filter(|slot| !matches!(slot.key, Key::Free))
            .map(|slot| slot.deadline)
            .min()
    }

    /// Forgets the pending request with `id` without completing it (a host that gave up
    /// on it, or whose send failed). Returns whether it was pending.
    pub fn cancel<'i>(&mut self, id: impl Into<Id<'i>>) -> bool {
        let id = id.into();
        match self.slots.iter().position(|slot| slot.is(id)) {
            Some(index) => {
                self.free(index);
                true
            }
            None => false,
        }
    }

    /// Forgets every pending request without completing any.
    pub fn clear(&mut self) {
        self.slots = [Slot::FREE; N];
        self.len = 0;
    }

    fn free(&mut self, index: usize) -> Option<Slot<ID_LEN>> {
        let slot = self.slots.get_mut(index)?;
        if matches!(slot.key, Key::Free) {
            return None;
        }
        let taken = *slot;
        slot.key = Key::Free;
        self.len -= 1;
        Some(taken)
    }

    /// Reads one message a worker wrote. If it is a response to a pending request, that
    /// request completes: `f` runs once and the result is [`Fed::Completed`]. Otherwise
    /// the message is handed back, parsed, or the reason it is not JSON-RPC.
    pub fn message<'a>(&mut self, line: &'a [u8], f: impl FnOnce(Completion<'_>)) -> Fed<'a> {
        let message = match Message::parse(line) {
            Ok(message) => message,
            Err(error) => return Fed::Invalid(error),
        };
        let outcome = match (message.kind(), message.result(), message.error()) {
            (Kind::Result, Some(result), _) => Outcome::Result(result),
            (Kind::Error, _, Some(error)) => Outcome::Error(error),
            _ => return Fed::Unmatched(message),
        };
        let Some(id) = message.id() else {
            return Fed::Unmatched(message);
        };
        let Some(index) = self.slots.iter().position(|slot| slot.answers(&id)) else {
            return Fed::Unmatched(message);
        };
        if let Some(slot) = self.free(index)
            && let Some(id) = slot.id()
        {
            f(Completion { id, outcome });
        }
        Fed::Completed
    }

    /// Completes the requests whose responses an overflow marker names as lost
    /// ([`Outcome::Lost`]), and, if it lost more than it names, every other pending
    /// request too ([`Outcome::MaybeLost`]). Returns how many completed.
    pub fn lost(&mut self, overflow: &Overflow<'_>, f: impl FnMut(Completion<'_>)) -> usize {
        self.lost_ids(
            overflow.lost_ids().map(|id| id.as_bytes()),
            overflow.more_ids_lost(),
            f,
        )
    }

    pub(crate) fn lost_ids<'r>(
        &mut self,
        ids: impl Iterator<Item = &'r [u8]>,
        more: bool,
        mut f: impl FnMut(Completion<'_>),
    ) -> usize {
        let mut completed = 0;
        for raw in ids {
            let Some(id) = MessageId::parse(raw) else {
                continue;
            };
            let Some(index) = self.slots.iter().position(|slot| slot.answers(&id)) else {
                continue;
            };
            completed += self.complete(index, Outcome::Lost, &mut f);
        }
        if more {
            for index in 0..N {
                completed += self.complete(index, Outcome::MaybeLost, &mut f);
            }
        }
        completed
    }

    /// Completes every request whose deadline is at or before `now` as
    /// [`Outcome::TimedOut`]. Returns how many completed.
    pub fn expire(&mut self, now: Duration, mut f: impl FnMut(Completion<'_>)) -> usize {
        let mut completed = 0;
        for index in 0..N {
            let due = self
                .slots
                .get(index)
                .is_some_and(|slot| !matches!(slot.key, Key::Free) && slot.deadline <= now);
            if due {
                completed += self.complete(index, Outcome::TimedOut, &mut f);
            }
        }
        completed
    }

    fn complete(
        &mut self,
        index: usize,
        outcome: Outcome<'_>,
        f: &mut impl FnMut(Completion<'_>),
    ) -> usize {
        match self.free(index) {
            Some(slot) => {
                if let Some(id) = slot.id() {
                    f(Completion { id, outcome });
                }
                1
            }
            None => 0,
        }
    }

    /// Feeds one event from the ring: a message goes to [`Pending::message`], an overflow
    /// marker to [`Pending::lost`], anything else is [`Fed::Other`].
    ///
    /// ```no_run
    /// # use core::time::Duration;
    /// # use stdiobus_embed::{Bus, Consumer, Running, jsonrpc::{Fed, Pending}};
    /// # fn run(bus: &mut Bus<'_, Running>, events: &mut Consumer<'_>, now: impl Fn() -> Duration)
    /// # -> Result<(), stdiobus_embed::Error> {
    /// let mut pending = Pending::<64>::new();
    /// // ... register and send ...
    /// while !pending.is_empty() {
    ///     let wait = pending.next_deadline().map_or(Duration::from_millis(100), |d| d.saturating_sub(now()));
    ///     bus.poll(wait)?;
    ///     while let Some(event) = events.read() {
    ///         match pending.event(event.event(), |done| println!("{}: {:?}", done.id, done.outcome)) {
    ///             Fed::Unmatched(message) => println!("from a worker: {:?}", message.method()),
    ///             _ => {}
    ///         }
    ///     }
    ///     pending.expire(now(), |done| println!("{}: {:?}", done.id, done.outcome));
    /// }
    /// # Ok(()) }
    /// ```
    pub fn event<'a>(&mut self, event: Event<'a>, mut f: impl FnMut(Completion<'_>)) -> Fed<'a> {
        match event {
            Event::Message { line, .. } => self.message(line.as_bytes(), f),
            Event::Overflow(overflow) => Fed::Overflow {
                completed: self.lost(&overflow, &mut f),
            },
            _ => Fed::Other,
        }
    }
}
