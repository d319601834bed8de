//! Which kinds of event a bus records in its ring.

bitflags::bitflags! {
    /// Which kinds of event a bus records. Events of other kinds are skipped where they
    /// arise (they are not counted as lost); the kernel still handles them.
    ///
    /// ```
    /// use stdiobus_embed::EventMask;
    /// let quiet = EventMask::ALL - EventMask::LOG;
    /// assert!(quiet.contains(EventMask::MESSAGE | EventMask::WORKER));
    /// ```
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub struct EventMask: u8 {
        /// Lines from workers, and lines dropped as too long.
        const MESSAGE = 1 << 0;
        /// Kernel errors.
        const ERROR = 1 << 1;
        /// Kernel log lines.
        const LOG = 1 << 2;
        /// Worker lifecycle, sessions that moved and requests left unanswered.
        const WORKER = 1 << 3;
        /// Listener clients connecting.
        const CLIENT_CONNECTED = 1 << 4;
        /// Listener clients going away.
        const CLIENT_DISCONNECTED = 1 << 5;
        /// Every kind.
        const ALL = Self::MESSAGE.bits()
            | Self::ERROR.bits()
            | Self::LOG.bits()
            | Self::WORKER.bits()
            | Self::CLIENT_CONNECTED.bits()
            | Self::CLIENT_DISCONNECTED.bits();
    }
}

impl Default for EventMask {
    fn default() -> Self {
        Self::ALL
    }
}

#[cfg(feature = "defmt")]
impl defmt::Format for EventMask {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(f, "EventMask({=u8:#x})", self.bits());
    }
}
