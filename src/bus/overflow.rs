//! Events that do not fit in the ring: handed to the host's handler, for the bus's lifetime
//! or for one call, instead of being counted lost.

use super::Bus;
use crate::Event;
use crate::ring::OverflowHandler;
use crate::state::State;

impl<'r, S: State> Bus<'r, S> {
    /// Hands every event that does not fit in the ring to `handler`, synchronously inside
    /// the kernel call that produced it, instead of dropping it: with a handler, nothing
    /// is lost. The handler sees those events as they arrive, ahead of older events still
    /// waiting in the ring. It runs inside a kernel callback, so it must not block, and a
    /// panic in it aborts the process. It stays in place until replaced or the bus ends.
    ///
    /// To share state with the handler without lending it for the bus's whole life, give
    /// it for one call instead: [`Bus::poll_with`], [`Bus::poll_stop_with`].
    pub fn set_overflow_handler(&mut self, handler: &'r mut OverflowHandler<'r>) {
        // SAFETY: the handler lives for 'r, which the bus cannot outlive, and the bus
        // clears it whenever it lets go of the producer (dropping the kernel does).
        unsafe { self.producer.set_overflow_handler(Some(handler)) };
    }

    /// Goes back to counting events that do not fit as lost.
    pub fn clear_overflow_handler(&mut self) {
        // SAFETY: clearing cannot dangle.
        unsafe { self.producer.set_overflow_handler(None) };
    }

    /// Runs `call` with `handler` taking the events that do not fit in the ring, in place
    /// of the handler set for the bus's lifetime, which comes back afterwards, however
    /// `call` ends.
    pub(super) fn with_overflow_handler<T>(
        &mut self,
        handler: &mut dyn FnMut(Event<'_>),
        call: impl FnOnce(&mut Self) -> T,
    ) -> T {
        // SAFETY: `lent` is dropped at the end of this function, panics included, while
        // `handler` is still borrowed, and after `call`, so no kernel call or push runs
        // then.
        let lent = unsafe { self.producer.lend_overflow_handler(handler) };
        let result = call(self);
        drop(lent);
        result
    }
}
