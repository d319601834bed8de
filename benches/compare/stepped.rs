//! What raw sys and this crate have in common: the kernel runs only inside an explicit
//! step, which delivers the replies that came in meanwhile, and the host counts them.

use std::time::Instant;

use crate::measure::Contender;

/// A kernel driven by hand, step by step.
pub trait Kernel {
    /// A request in the form `ingest` takes.
    type Message;

    /// Hands one request to the kernel.
    fn ingest(&mut self, message: &Self::Message) -> Result<(), String>;

    /// Hands a batch of newline-separated requests to the kernel in one call.
    fn ingest_batch(&mut self, _batch: &Self::Message) -> Result<(), String> {
        Err("no batch call".into())
    }

    /// One kernel step of at most `STEP_MS`; it returns as soon as a worker writes.
    fn step(&mut self) -> Result<(), String>;

    /// Replies counted so far.
    fn replies(&self) -> u64;

    /// The id of the latest reply (`u64::MAX` when it could not be read).
    fn last_id(&self) -> u64;
}

/// A [`Kernel`] as a [`Contender`]: a reply is waited for by stepping until the count
/// moves past where it stood when the request was sent.
pub struct Stepped<K> {
    kernel: K,
    replies_at_send: u64,
}

impl<K: Kernel> Stepped<K> {
    pub fn new(kernel: K) -> Self {
        let replies_at_send = kernel.replies();
        Stepped {
            kernel,
            replies_at_send,
        }
    }

    pub fn into_inner(self) -> K {
        self.kernel
    }
}

impl<K: Kernel> Contender for Stepped<K> {
    type Message = K::Message;

    #[inline]
    fn send(&mut self, message: &K::Message) -> Result<(), String> {
        self.replies_at_send = self.kernel.replies();
        self.kernel.ingest(message)
    }

    #[inline]
    fn send_batch(&mut self, batch: &K::Message) -> Result<(), String> {
        self.replies_at_send = self.kernel.replies();
        self.kernel.ingest_batch(batch)
    }

    #[inline]
    fn wait_for(&mut self, id: u64, deadline: Instant) -> Result<bool, String> {
        while self.kernel.replies() <= self.replies_at_send {
            if Instant::now() >= deadline {
                return Ok(false);
            }
            self.kernel.step()?;
        }
        let got = self.kernel.last_id();
        if got != id {
            return Err(format!("failed: sent request {id}, got reply {got}"));
        }
        Ok(true)
    }

    #[inline]
    fn collect(&mut self, deadline: Instant) -> Result<bool, String> {
        self.kernel.step()?;
        Ok(Instant::now() < deadline)
    }

    #[inline]
    fn replies(&self) -> u64 {
        self.kernel.replies()
    }
}
