//! The command line.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

pub const USAGE: &str = "\
usage: stdiobus-relay CONFIG.json [--max-line BYTES] [--drain-timeout SECONDS]
                      [--request-timeout SECONDS] [--ping-interval SECONDS]

Serves JSON-RPC on stdin and stdout, like the stdio MCP or ACP server it stands in for,
with the workers of CONFIG.json behind it: the bus's \"pools\", or an MCP client's
\"mcpServers\" block naming one server.

  --max-line BYTES         the longest line taken either way (default 67108864, 64 MiB)
  --drain-timeout SECONDS  at the end of input, how long to wait for the answers still due,
                           and then for each step of stopping the workers (default 5)
  --request-timeout SECONDS
                           answer a request with an error (-32005) when no answer came
                           in that time, and drop the late answer (default: no limit)
  --ping-interval SECONDS  send an MCP ping to a server process silent that long, and
                           restart it when no answer comes within the request timeout
                           (10 s without one) (default: off)
  --help                   print this and exit";

/// The longest line, either way, when the command line does not say.
pub const DEFAULT_MAX_LINE: usize = 64 << 20;

/// What the relay was asked to do.
#[derive(Debug)]
pub struct Args {
    pub config: PathBuf,
    pub max_line: usize,
    pub drain_timeout: Duration,
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
    let mut drain_timeout = Duration::from_secs(5);
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
            Some(name @ ("--drain-timeout" | "--request-timeout" | "--ping-interval")) => {
                let text = value(name)?;
                let seconds = text
                    .parse()
                    .ok()
                    .and_then(|seconds| Duration::try_from_secs_f64(seconds).ok())
                    .filter(|seconds| name == "--drain-timeout" || !seconds.is_zero())
                    .ok_or_else(|| {
                        NotRun::Bad(format!("{name} {text}: not a number of seconds"))
                    })?;
                match name {
                    "--drain-timeout" => drain_timeout = seconds,
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
        drain_timeout,
        request_timeout,
        ping_interval,
    })
}
