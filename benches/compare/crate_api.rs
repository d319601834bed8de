//! Contender 2: this crate's `Bus::send`, `Bus::poll` and `Consumer::read` of every event.

use std::time::Duration;

use stdiobus_embed::{
    Bus, ConfigBuffer, Consumer, Event, EventMask, EventRing, Limits, Options, Pool, Running,
    WorkerEvent,
};

use crate::measure::{Outcome, measure};
use crate::messages::{Messages, response_id};
use crate::placement::place_workers;
use crate::processes::children;
use crate::settings::{MAX_INPUT_BUFFER, STEP_MS, Settings, WORKER, Workload};
use crate::stepped::{Kernel, Stepped};

/// One round of `workload` on a fresh bus and worker.
pub fn round(workload: Workload, s: &Settings, m: &Messages, counting: bool) -> Outcome {
    // 256-byte slots hold a small reply each; the large workload needs room for 1 MiB.
    let result = match workload {
        Workload::Large => run::<512, 8192>(workload, s, m, counting),
        _ => run::<1024, 256>(workload, s, m, counting),
    };
    result.unwrap_or_else(Outcome::failed)
}

fn run<const SLOTS: usize, const SLOT_SIZE: usize>(
    workload: Workload,
    s: &Settings,
    m: &Messages,
    counting: bool,
) -> Result<Outcome, String> {
    let ring = EventRing::<SLOTS, SLOT_SIZE>::boxed();
    let (producer, mut events) = ring.split().map_err(|e| e.to_string())?;
    let mut json = ConfigBuffer::<4096>::new();
    let limits = Limits {
        max_input_buffer: Some(MAX_INPUT_BUFFER),
        ..Limits::new()
    };
    let config = json
        .write(&[Pool::new("echo", WORKER).instances(s.workers)], &limits)
        .map_err(|e| e.to_string())?;
    let options = Options::new().events(EventMask::ALL - EventMask::LOG);
    let bus = Bus::create(config, options, producer).map_err(|f| f.error.to_string())?;
    let before = children();
    let mut bus = bus.start().map_err(|f| f.error.to_string())?;
    let pids: Vec<i32> = children().difference(&before).copied().collect();
    place_workers(s, &pids);
    let mut contender = Stepped::new(CrateBus {
        bus: &mut bus,
        events: &mut events,
        replies: 0,
        last_id: 0,
    });
    let result = measure(&mut contender, &pids, workload, s, m, counting);
    if let Err(f) = bus.stop(Duration::from_secs(1)) {
        return Err(format!("failed: stop: {}", f.error));
    }
    result
}

/// The running bus and the reading end of its ring, with the replies read so far.
struct CrateBus<'b, 'r> {
    bus: &'b mut Bus<'r, Running>,
    events: &'b mut Consumer<'r>,
    replies: u64,
    last_id: u64,
}

impl Kernel for CrateBus<'_, '_> {
    type Message = Vec<u8>;

    #[inline]
    fn ingest(&mut self, message: &Vec<u8>) -> Result<(), String> {
        self.bus.send(message).map_err(|e| e.to_string())
    }

    #[inline]
    fn ingest_batch(&mut self, batch: &Vec<u8>) -> Result<(), String> {
        self.bus
            .send_batch(batch)
            .map(drop)
            .map_err(|e| e.to_string())
    }

    /// Polls once, then reads every event in the ring: counts replies, remembers the last
    /// id.
    #[inline]
    fn step(&mut self) -> Result<(), String> {
        self.bus
            .poll(Duration::from_millis(STEP_MS as u64))
            .map_err(|e| format!("failed: poll: {e}"))?;
        while let Some(event) = self.events.read() {
            match event.event() {
                Event::Message { line, .. } => {
                    self.replies += 1;
                    self.last_id = response_id(line.as_bytes()).unwrap_or(u64::MAX);
                }
                Event::Worker {
                    event: WorkerEvent::Started,
                    ..
                } => {}
                other => return Err(format!("failed: unexpected event {other:?}")),
            }
        }
        Ok(())
    }

    #[inline]
    fn replies(&self) -> u64 {
        self.replies
    }

    #[inline]
    fn last_id(&self) -> u64 {
        self.last_id
    }
}
