//! The command line.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

pub const USAGE: &str = "\
usage: stdiobus-relay CONFIG.json [--max-line BYTES] [--term-grace SECONDS]
                      [--kill-grace SECONDS] [--request-timeout SECONDS]
                      [--ping-interval SECONDS]

Serves JSON-RPC on stdin and stdout, like the stdio MCP or ACP server it stands in for,
with the workers of CONFIG.json behind it: the bus's \"pools\", or an MCP client's
\"mcpServers\" block naming one server.

  --max-line BYTES         the longest line taken either way (default 67108864, 64 MiB)
  --term-grace SECONDS     at the end of input, or on SIGTERM, SIGINT or SIGHUP, the server
                           processes' stdin closes at once; those still running after this
                           long get SIGTERM (default 0.5; --drain-timeout is the old name)
  --kill-grace SECONDS     and SIGKILL this long after the SIGTERM (default 1)
  --request-timeout SECONDS
                           answer a request with an error (-32005) when no answer came
                           in that time, and drop the late answer (default: no limit)
  --ping-interval SECONDS  send an MCP ping to a server process silent that long, and
                           restart it when no answer comes within the request timeout
                           (10 s without one) (default: off)
  --help                   print this and exit";

/// The longest line, either way, when the command line does not say.
pub const DEFAULT_MAX_LINE: usize = 64 << 20;

/// `--term-grace` when the command line does not say: with [`DEFAULT_KILL_GRACE`], a busy
/// server and whatever it started are gone 1.5 s after the end of input, before the 2 s
/// after which the MCP TypeScript SDK SIGKILLs the relay.
pub const DEFAULT_TERM_GRACE: Duration = Duration::from_millis(500);
/// `--kill-grace` when the command line does not say.
pub const DEFAULT_KILL_GRACE: Duration = Duration::from_secs(1);

/// What the relay was asked to do.
#[derive(Debug)]
pub struct Args {
    pub config: PathBuf,
    pub max_line: usize,
    /// From the end of input (or a signal) to the servers' SIGTERM.
    pub term_grace: Duration,
    /// From their SIGTERM to their SIGKILL.
    pub kill_grace: Duration,
    pub request_timeout: Option<Duration>,
    pub ping_interval: Option<Duration>,
}

/// Why there is nothing to run.
#[derive(Debug)]
pub enum NotRun {
    /// `--help`.
    Help,
    /// The command line is wrong, for this reason.
    Bad(String),
}

pub fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Args, NotRun> {
    let mut config = None;
    let mut max_line = DEFAULT_MAX_LINE;
    let mut term_grace = DEFAULT_TERM_GRACE;
    let mut kill_grace = DEFAULT_KILL_GRACE;
    let mut request_timeout = None;
    let mut ping_interval = None;
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let mut value = |name: &str| {
            let value = args
                .next()
                .ok_or_else(|| NotRun::Bad(format!("{name} needs a value")))?;
            value
                .into_string()
                .map_err(|_| NotRun::Bad(format!("{name}: the value is not UTF-8")))
        };
        match arg.to_str() {
            Some("--help" | "-h") => return Err(NotRun::Help),
            Some("--max-line") => {
                let text = value("--max-line")?;
                max_line = text
                    .parse()
                    .ok()
                    .filter(|&bytes| bytes >= 2)
                    .ok_or_else(|| {
                        NotRun::Bad(format!("--max-line {text}: not a byte count of 2 or more"))
                    })?;
            }
            Some(
                name @ ("--term-grace" | "--drain-timeout" | "--kill-grace" | "--request-timeout"
                | "--ping-interval"),
            ) => {
                let text = value(name)?;
                let seconds = text
                    .parse()
                    .ok()
                    .and_then(|seconds| Duration::try_from_secs_f64(seconds).ok())
                    .filter(|seconds| {
                        name.ends_with("-grace") || name == "--drain-timeout" || !seconds.is_zero()
                    })
                    .ok_or_else(|| {
                        NotRun::Bad(format!("{name} {text}: not a number of seconds"))
                    })?;
                match name {
                    "--term-grace" | "--drain-timeout" => term_grace = seconds,
                    "--kill-grace" => kill_grace = seconds,
                    "--request-timeout" => request_timeout = Some(seconds),
                    _ => ping_interval = Some(seconds),
                }
            }
            Some(flag) if flag.starts_with('-') => {
                return Err(NotRun::Bad(format!("unknown option {flag}")));
            }
            _ if config.is_none() => config = Some(PathBuf::from(arg)),
            _ => return Err(NotRun::Bad("only one configuration file".into())),
        }
    }
    let config = config.ok_or_else(|| NotRun::Bad("the configuration file is missing".into()))?;
    Ok(Args {
        config,
        max_line,
        term_grace,
        kill_grace,
        request_timeout,
        ping_interval,
    })
}
