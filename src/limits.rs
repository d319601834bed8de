//! The fixed bounds the modules share: how many workers a bus tracks, how long a line or an
//! id may be. Every other module sits above this one; it imports nothing of the crate.

/// Worker processes tracked per bus; the configuration writer refuses more.
pub(crate) const MAX_WORKERS: usize = 256;

/// The longest worker line the kernel takes, newline included, when the configuration
/// leaves `max_input_buffer` unset: the archive's default (observed).
pub(crate) const DEFAULT_MAX_INPUT_BUFFER: u32 = if cfg!(stdio_bus_embedded_api) {
    10 << 20
} else {
    1 << 20
};

/// The longest session id a table keeps, in bytes of its decoded text.
pub const MAX_SESSION_ID: usize = 64;

/// The longest request id the request table keeps, in bytes of raw JSON (`"req-42"` with
/// its quotes, or `42`): room for a UUID in a string (38).
pub const MAX_REQUEST_ID: usize = 64;

/// Bytes for every pool's launch settings together: each environment variable as
/// `NAME=VALUE` plus one, each working directory plus one, and the id of each pool with
/// tagged stderr. The configuration checks refuse more.
pub const LAUNCH_BYTES: usize = 8192;

/// The most environment variables a worker with `env` settings starts with, the host's
/// that it keeps included; a worker with more fails to start with `E2BIG`. (The array is
/// built on the forked child's stack, where nothing may be allocated.)
pub const MAX_WORKER_ENV: usize = 1024;

/// Bytes of a worker's tagged stderr line written at once, prefix included: a longer line
/// is cut into pieces, each prefixed.
pub(crate) const STDERR_LINE: usize = 1024;
