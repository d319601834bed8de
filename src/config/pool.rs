//! What a configuration is built from: pools of workers and the kernel's limits.

pub use crate::launch::Stderr;

/// One worker pool: `instances` copies of `command args…`, addressed by `id`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Pool<'a> {
    /// Unique, non-empty name of the pool.
    pub id: &'a str,
    /// Program the kernel executes for each worker; a NUL byte cannot be passed to exec.
    /// In the id, the command and the arguments, control characters other than `\n`, `\r`
    /// and `\t` are refused: the kernel cannot carry them (see
    /// [`ConfigError::UnsupportedCharacter`](super::ConfigError::UnsupportedCharacter)).
    pub command: &'a str,
    /// Arguments after the program name.
    pub args: &'a [&'a str],
    /// Number of workers, at least 1.
    pub instances: u32,
    /// Environment variables the workers get, `(name, value)`: added to the host's
    /// environment (a same-named host variable is replaced), or the whole environment when
    /// `inherit_env` is false. A name is non-empty and holds no `=`; neither holds a NUL.
    /// Written as the JSON object `"env"`; the bus applies it at exec (the kernel ignores
    /// it).
    pub env: &'a [(&'a str, &'a str)],
    /// Whether the workers start with the host's environment (plus `env`); `false` gives
    /// them `env` alone. Written as `"inherit_env": false` when false.
    pub inherit_env: bool,
    /// The workers' working directory (`"cwd"`); `None` keeps the host's. A relative
    /// command is looked up from the host's directory on the `PATH` as usual, but a
    /// command with a `/` in it is relative to this directory.
    pub cwd: Option<&'a str>,
    /// What becomes of the workers' stderr (`"stderr"`: `"inherit"`, `"tagged"`, `"null"`).
    pub stderr: Stderr,
}

impl<'a> Pool<'a> {
    /// A pool of one worker with no arguments; `const` so pool tables can be constants.
    pub const fn new(id: &'a str, command: &'a str) -> Self {
        Self {
            id,
            command,
            args: &[],
            instances: 1,
            env: &[],
            inherit_env: true,
            cwd: None,
            stderr: Stderr::Inherit,
        }
    }

    /// The same pool with these arguments.
    pub const fn args(self, args: &'a [&'a str]) -> Self {
        Self { args, ..self }
    }

    /// The same pool with this many workers.
    pub const fn instances(self, instances: u32) -> Self {
        Self { instances, ..self }
    }

    /// The same pool with these environment variables, added to the host's.
    pub const fn env(self, env: &'a [(&'a str, &'a str)]) -> Self {
        Self { env, ..self }
    }

    /// The same pool starting with the host's environment (`true`, the default) or with
    /// its `env` alone (`false`).
    pub const fn inherit_env(self, inherit_env: bool) -> Self {
        Self {
            inherit_env,
            ..self
        }
    }

    /// The same pool with this working directory.
    pub const fn cwd(self, cwd: &'a str) -> Self {
        Self {
            cwd: Some(cwd),
            ..self
        }
    }

    /// The same pool with this stderr mode.
    pub const fn stderr(self, stderr: Stderr) -> Self {
        Self { stderr, ..self }
    }
}

/// The six optional kernel limits; `None` leaves the kernel's default (the field is left
/// out of the JSON).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Limits {
    /// The longest line, its newline included, the kernel takes from a worker (or a
    /// listener client), in bytes; by default 1 MiB with the 1.1.1 archive and 10 MiB with
    /// 2.2.1. A longer worker line is dropped and reported
    /// ([`Event::LineTooLong`](crate::Event::LineTooLong)).
    pub max_input_buffer: Option<u32>,
    /// Largest output queue per worker, in bytes.
    pub max_output_queue: Option<u32>,
    /// Restarts allowed per worker within `restart_window_sec`.
    pub max_restarts: Option<u32>,
    /// Window over which restarts are counted, in seconds.
    pub restart_window_sec: Option<u32>,
    /// How long a stop waits for workers to drain, in seconds.
    pub drain_timeout_sec: Option<u32>,
    /// How long back-pressure may last before the kernel gives up, in seconds.
    pub backpressure_timeout_sec: Option<u32>,
}

/// The limit names in the kernel's JSON, in the order they are written.
pub(super) const LIMIT_NAMES: [&str; 6] = [
    "max_input_buffer",
    "max_output_queue",
    "max_restarts",
    "restart_window_sec",
    "drain_timeout_sec",
    "backpressure_timeout_sec",
];

impl Limits {
    /// All limits at the kernel's defaults; unlike `Default::default`, usable in a `const`.
    pub const fn new() -> Self {
        Self {
            max_input_buffer: None,
            max_output_queue: None,
            max_restarts: None,
            restart_window_sec: None,
            drain_timeout_sec: None,
            backpressure_timeout_sec: None,
        }
    }

    pub(super) fn values(&self) -> [Option<u32>; 6] {
        [
            self.max_input_buffer,
            self.max_output_queue,
            self.max_restarts,
            self.restart_window_sec,
            self.drain_timeout_sec,
            self.backpressure_timeout_sec,
        ]
    }
}
