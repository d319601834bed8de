//! The measurement, once for every contender: warm-up, the three workloads, and the
//! allocation and CPU accounting around the measured part.

use std::time::{Duration, Instant};

use crate::alloc_count::alloc_calls;
use crate::messages::{Messages, large_warmup};
use crate::processes::bytes_read;
use crate::settings::{BATCH, LARGE_WITH_NEWLINE, RESPONSE_TIMEOUT, Settings, WINDOW, Workload};

/// One way of driving the bus, as the measurement loops see it. Every error is the
/// text that ends up in the table's notes.
pub trait Contender {
    /// A request in the form `send` takes.
    type Message;

    /// Hands one request to the bus.
    fn send(&mut self, message: &Self::Message) -> Result<(), String>;

    /// Hands a batch of newline-separated requests to the bus in one call.
    fn send_batch(&mut self, _batch: &Self::Message) -> Result<(), String> {
        Err("no batch call".into())
    }

    /// Waits for the reply to the request just sent, which must carry `id`: `Ok(false)`
    /// when none came before `deadline`.
    fn wait_for(&mut self, id: u64, deadline: Instant) -> Result<bool, String>;

    /// Pipelined: waits for replies once (a kernel step, or one reply), counting them in
    /// `replies`; `Ok(false)` when the contender gives up waiting (`deadline` is for the
    /// whole workload).
    fn collect(&mut self, deadline: Instant) -> Result<bool, String>;

    /// Replies received so far.
    fn replies(&self) -> u64;
}

/// What one contender did in one round of one workload.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Round-trip times (ping-pong, large).
    pub samples_ns: Vec<u64>,
    /// Messages measured and the time they took (pipelined; also set for the others).
    pub messages: u64,
    pub elapsed_ns: u64,
    /// Allocation calls during the measured part, when counting works.
    pub allocs: Option<u64>,
    /// CPU time of the host process (all its threads, user and system) while measuring.
    pub cpu_ns: u64,
    pub failure: Option<String>,
    /// Tokio only: what happened at `stop`.
    pub shutdown: Option<String>,
}

impl Outcome {
    pub fn failed(failure: String) -> Self {
        Outcome {
            failure: Some(failure),
            ..Outcome::default()
        }
    }
}

/// CPU time this process has used so far, all threads, user and system.
fn cpu_ns() -> u64 {
    // SAFETY: a zeroed rusage is a valid out-parameter.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    let ns = |t: libc::timeval| t.tv_sec as u64 * 1_000_000_000 + t.tv_usec as u64 * 1000;
    ns(usage.ru_utime) + ns(usage.ru_stime)
}

/// Why a large round trip got no reply, with what the worker actually read.
fn truncation_report(pids: &[i32], read_before: Option<u64>, timeout: Duration) -> String {
    match (read_before, bytes_read(pids)) {
        (Some(before), Some(after)) => format!(
            "failed: truncated (worker read {} of {LARGE_WITH_NEWLINE} bytes; no reply in {} ms)",
            after - before,
            timeout.as_millis()
        ),
        _ => format!("failed: no reply in {} ms", timeout.as_millis()),
    }
}

/// One round trip: `Ok(false)` when the reply did not come within `timeout`.
#[inline]
fn round_trip<C: Contender>(
    contender: &mut C,
    message: &C::Message,
    id: u64,
    timeout: Duration,
) -> Result<bool, String> {
    let deadline = Instant::now() + timeout;
    contender
        .send(message)
        .map_err(|e| format!("failed: send {id}: {e}"))?;
    contender.wait_for(id, deadline)
}

/// Warms `contender` up, then measures one workload on it. `pids` are its workers.
pub fn measure<C: Contender>(
    contender: &mut C,
    pids: &[i32],
    workload: Workload,
    s: &Settings,
    m: &Messages<C::Message>,
    counting: bool,
) -> Result<Outcome, String> {
    let mut outcome = Outcome::default();
    // Small round trips first for every workload: the worker is up and settled before
    // anything is measured (and before its read counter is sampled).
    for (id, message) in (0..).zip(&m.warmup) {
        if !round_trip(contender, message, id, RESPONSE_TIMEOUT)? {
            return Err(format!("failed: no reply to warm-up request {id}"));
        }
    }
    // Room for every sample before counting starts.
    outcome
        .samples_ns
        .reserve(m.ping_pong.len().max(m.large.len()));
    match workload {
        Workload::PingPong => accounted(&mut outcome, counting, |o| ping_pong(contender, m, o))?,
        Workload::Pipelined => accounted(&mut outcome, counting, |_| pipelined(contender, m))?,
        Workload::Batches => accounted(&mut outcome, counting, |_| batches(contender, m))?,
        Workload::Large => large(contender, pids, s, m, counting, &mut outcome)?,
    }
    Ok(outcome)
}

/// Runs `work`, which returns how many messages it measured, and accounts for the whole
/// of it: time, and the allocations and CPU time of the whole process.
#[inline]
fn accounted(
    outcome: &mut Outcome,
    counting: bool,
    work: impl FnOnce(&mut Outcome) -> Result<u64, String>,
) -> Result<(), String> {
    let allocs_before = alloc_calls(counting);
    let cpu_before = cpu_ns();
    let started = Instant::now();
    outcome.messages = work(outcome)?;
    outcome.elapsed_ns = started.elapsed().as_nanos() as u64;
    outcome.cpu_ns = cpu_ns() - cpu_before;
    outcome.allocs = allocs_before.and_then(|b| Some(alloc_calls(counting)? - b));
    Ok(())
}

/// Round trips with one request in flight, each one timed.
fn ping_pong<C: Contender>(
    contender: &mut C,
    m: &Messages<C::Message>,
    outcome: &mut Outcome,
) -> Result<u64, String> {
    for (id, message) in (m.ping_pong_base..).zip(&m.ping_pong) {
        let t = Instant::now();
        if !round_trip(contender, message, id, RESPONSE_TIMEOUT)? {
            return Err(format!("failed: no reply to request {id}"));
        }
        outcome.samples_ns.push(t.elapsed().as_nanos() as u64);
    }
    Ok(m.ping_pong.len() as u64)
}

/// Up to `WINDOW` requests in flight, one message per `send`, until every reply is in.
fn pipelined<C: Contender>(contender: &mut C, m: &Messages<C::Message>) -> Result<u64, String> {
    in_flight(
        contender,
        m.pipelined.len(),
        &m.pipelined,
        1,
        |c, message| c.send(message).map_err(|e| format!("failed: send: {e}")),
    )
}

/// [`pipelined`], the requests handed over [`BATCH`] at a time.
fn batches<C: Contender>(contender: &mut C, m: &Messages<C::Message>) -> Result<u64, String> {
    in_flight(
        contender,
        m.pipelined.len(),
        &m.batches,
        BATCH,
        |c, batch| {
            c.send_batch(batch)
                .map_err(|e| format!("failed: send_batch: {e}"))
        },
    )
}

/// Sends `sends`, each `per_send` of the `total` requests (the last one the rest), keeping
/// up to `WINDOW` requests in flight, until every reply is in.
fn in_flight<C: Contender>(
    contender: &mut C,
    total: usize,
    sends: &[C::Message],
    per_send: usize,
    send: impl Fn(&mut C, &C::Message) -> Result<(), String>,
) -> Result<u64, String> {
    let base = contender.replies();
    let (mut sent, mut received, mut next) = (0usize, 0usize, 0usize);
    let deadline = Instant::now() + RESPONSE_TIMEOUT * 10;
    while received < total {
        while next < sends.len() && sent - received + per_send <= WINDOW {
            send(contender, &sends[next])?;
            sent += per_send.min(total - sent);
            next += 1;
        }
        let waiting = contender.collect(deadline)?;
        received = (contender.replies() - base) as usize;
        if !waiting {
            return Err(format!("failed: {received} of {total} replies"));
        }
    }
    Ok(total as u64)
}

/// 1 MiB round trips after a few unmeasured ones. CPU time and allocations are summed over
/// the measured round trips alone: reading the worker's counter in between allocates.
fn large<C: Contender>(
    contender: &mut C,
    pids: &[i32],
    s: &Settings,
    m: &Messages<C::Message>,
    counting: bool,
    outcome: &mut Outcome,
) -> Result<(), String> {
    let started = Instant::now();
    let warm = large_warmup(s);
    let (mut large_allocs, mut large_cpu) = (Some(0u64), 0u64);
    for (i, (id, message)) in (m.large_base..).zip(&m.large).enumerate() {
        let read_before = bytes_read(pids);
        let allocs_at = alloc_calls(counting);
        let cpu_at = cpu_ns();
        let t = Instant::now();
        if !round_trip(contender, message, id, s.large_timeout)? {
            return Err(truncation_report(pids, read_before, s.large_timeout));
        }
        if i >= warm {
            outcome.samples_ns.push(t.elapsed().as_nanos() as u64);
            large_cpu += cpu_ns() - cpu_at;
            large_allocs = large_allocs
                .zip(allocs_at)
                .and_then(|(sum, at)| Some(sum + alloc_calls(counting)? - at));
        }
    }
    outcome.messages = outcome.samples_ns.len() as u64;
    outcome.elapsed_ns = started.elapsed().as_nanos() as u64;
    outcome.cpu_ns = large_cpu;
    outcome.allocs = large_allocs;
    Ok(())
}
