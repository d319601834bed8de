//! Where the kernel accepts clients besides the host, and the checks made before it binds
//! there: the kernel reports a refusal with nothing but a generic error, and it unlinks
//! whatever is at a Unix socket path. The checks look at the system (`lstat`, a test
//! `connect`) when the bus is created.

use core::ffi::CStr;

use crate::Error;

/// Longest Unix socket path the kernel can bind, NUL excluded (`sun_path` is 104 bytes on
/// macOS, 108 on Linux).
const MAX_UNIX_PATH: usize = 103;

/// Where the kernel accepts clients that speak newline-delimited JSON-RPC to the workers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Listener<'a> {
    /// Embedded mode: only the host talks to the workers, through `send`.
    #[default]
    None,
    /// A TCP socket.
    Tcp {
        /// Address to bind: a numeric IPv4 address such as `c"127.0.0.1"`, the only kind
        /// the kernel takes (`create` refuses names and IPv6).
        host: &'a CStr,
        /// Port to bind; not 0, since the kernel cannot say which port it would pick.
        port: u16,
    },
    /// A Unix domain socket. The kernel unlinks whatever is at the path before it binds,
    /// so `create` refuses a path where something other than a socket exists, or where
    /// another server listens; what appears there between `create` and `start` is not
    /// protected.
    Unix {
        /// Path of the socket file.
        path: &'a CStr,
    },
}

impl Listener<'_> {
    /// Refuses what the kernel would refuse with nothing but a generic error.
    pub(crate) fn validate(&self) -> Result<(), Error> {
        match self {
            Self::None => Ok(()),
            Self::Tcp { host, .. } if host.is_empty() => {
                Err(Error::Listener("the TCP host is empty"))
            }
            Self::Tcp { port: 0, .. } => Err(Error::Listener(
                "TCP port 0 would bind a port the kernel cannot report",
            )),
            Self::Tcp { host, .. } if !is_ipv4(host) => Err(Error::Listener(
                "the kernel takes only a numeric IPv4 address as the TCP host, such as 127.0.0.1 (not a name, not IPv6)",
            )),
            Self::Tcp { .. } => Ok(()),
            Self::Unix { path } if path.is_empty() => {
                Err(Error::Listener("the Unix socket path is empty"))
            }
            Self::Unix { path } if path.to_bytes().len() > MAX_UNIX_PATH => Err(Error::Listener(
                "the Unix socket path is longer than the 103 bytes a socket address holds",
            )),
            Self::Unix { path } if exists_as_non_socket(path) => Err(Error::Listener(
                "something other than a socket is at the Unix socket path, and the kernel would delete it",
            )),
            Self::Unix { path } if someone_listens(path) => Err(Error::Listener(
                "another server listens at the Unix socket path, and the kernel would take the path from it",
            )),
            Self::Unix { .. } => Ok(()),
        }
    }
}

/// Whether `host` is what the kernel's `inet_pton(AF_INET, ...)` takes: a dotted-quad
/// IPv4 address. It looks up no names and binds no IPv6.
fn is_ipv4(host: &CStr) -> bool {
    host.to_str()
        .is_ok_and(|text| text.parse::<core::net::Ipv4Addr>().is_ok())
}

/// Whether a server accepts connections on the Unix socket at `path`: the kernel unlinks
/// the path before it binds, which would cut that server off from every new client. A
/// socket file nobody listens on (left by a server that ended) refuses the connection,
/// and the kernel may take its place.
fn someone_listens(path: &CStr) -> bool {
    // SAFETY: a zeroed `sockaddr_un` is valid; the path fits (checked by the caller).
    let mut address: libc::sockaddr_un = unsafe { core::mem::zeroed() };
    address.sun_family = libc::AF_UNIX as libc::sa_family_t;
    for (to, &from) in address.sun_path.iter_mut().zip(path.to_bytes()) {
        *to = from as libc::c_char;
    }
    #[cfg(any(target_os = "linux", target_os = "android"))]
    let flags = libc::SOCK_STREAM | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK;
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    let flags = libc::SOCK_STREAM;
    // SAFETY: plain system call; the descriptor is closed below.
    let fd = unsafe { libc::socket(libc::AF_UNIX, flags, 0) };
    if fd < 0 {
        return false;
    }
    // Where the socket cannot be made so at once: close-on-exec and non-blocking now.
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    // SAFETY: setting flags on the descriptor just made.
    unsafe {
        libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
        libc::fcntl(fd, libc::F_SETFL, libc::O_NONBLOCK);
    }
    let len = core::mem::size_of::<libc::sockaddr_un>() as libc::socklen_t;
    // SAFETY: `address` is a valid `sockaddr_un` of `len` bytes.
    let rc = unsafe { libc::connect(fd, (&raw const address).cast::<libc::sockaddr>(), len) };
    // A full backlog (EAGAIN) is a listener too.
    let listening = rc == 0 || crate::os::errno() == libc::EAGAIN;
    // SAFETY: `fd` was opened above and is closed once.
    unsafe { libc::close(fd) };
    listening
}

/// Whether `path` names an existing file that is not a socket: the kernel unlinks
/// whatever is at the path before it binds (observed), which would destroy that file.
fn exists_as_non_socket(path: &CStr) -> bool {
    // SAFETY: zeroed `stat` is a valid out-parameter; `path` is NUL-terminated.
    let mut status: libc::stat = unsafe { core::mem::zeroed() };
    // SAFETY: as above; lstat does not follow a final symlink, as unlink would not.
    let exists = unsafe { libc::lstat(path.as_ptr(), &mut status) } == 0;
    exists && status.st_mode & libc::S_IFMT != libc::S_IFSOCK
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tcp_hosts_must_be_numeric_ipv4() {
        let tcp = |host| Listener::Tcp { host, port: 9 }.validate();
        assert_eq!(tcp(c"127.0.0.1"), Ok(()));
        assert_eq!(tcp(c"0.0.0.0"), Ok(()));
        for host in [
            c"localhost",
            c"::1",
            c"127.0.0",
            c"127.0.0.1 ",
            c"256.0.0.1",
        ] {
            assert!(
                matches!(tcp(host), Err(Error::Listener(reason)) if reason.contains("IPv4")),
                "{host:?}"
            );
        }
    }

    #[test]
    fn listener_validation_names_the_problem() {
        assert_eq!(Listener::None.validate(), Ok(()));
        assert_eq!(
            Listener::Tcp { host: c"", port: 1 }.validate(),
            Err(Error::Listener("the TCP host is empty"))
        );
        assert!(
            Listener::Tcp {
                host: c"127.0.0.1",
                port: 0
            }
            .validate()
            .is_err()
        );
        assert_eq!(
            Listener::Tcp {
                host: c"127.0.0.1",
                port: 80
            }
            .validate(),
            Ok(())
        );
        assert!(Listener::Unix { path: c"" }.validate().is_err());
        let long = [b'a'; 104];
        let mut with_nul = [0u8; 105];
        with_nul[..104].copy_from_slice(&long);
        let path = CStr::from_bytes_with_nul(&with_nul).unwrap();
        assert!(Listener::Unix { path }.validate().is_err());
        assert_eq!(
            Listener::Unix {
                path: c"/tmp/bus.sock"
            }
            .validate(),
            Ok(())
        );
    }
}

#[cfg(feature = "defmt")]
impl defmt::Format for Listener<'_> {
    fn format(&self, f: defmt::Formatter<'_>) {
        match self {
            Self::None => defmt::write!(f, "None"),
            Self::Tcp { host, port } => {
                defmt::write!(f, "Tcp({=[u8]:a}:{=u16})", host.to_bytes(), port)
            }
            Self::Unix { path } => defmt::write!(f, "Unix({=[u8]:a})", path.to_bytes()),
        }
    }
}
