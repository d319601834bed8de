#![cfg_attr(not(feature = "std"), no_std)]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![doc = include_str!("../README.md")]
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

mod backpressure;
mod batch;
mod bus;
mod clock;
pub mod config;
mod digits;
mod error;
mod event;
mod event_mask;
mod ids;
mod interpose;
mod json;
pub mod jsonrpc;
mod launch;
mod limits;
mod listener;
mod memchr;
mod options;
mod os;
mod ring;
mod routing;
mod sigpipe;
mod state;
mod stats;
mod supervise;
pub mod sys;

#[cfg(test)]
mod test_support;

#[cfg(feature = "embedded-workers")]
pub use bus::EmbeddedWorker;
pub use bus::{Bus, Failed};
pub use config::{Config, ConfigBuffer, ConfigError, Limits, Pool};
pub use error::{Error, ErrorCode, Retry};
pub use event::{Bytes, Event, ExitStatus, LogLevel, Loss, Overflow, RestartRefused, WorkerEvent};
pub use event_mask::EventMask;
pub use ids::{ClientId, WorkerId};
pub use launch::Stderr;
pub use limits::{LAUNCH_BYTES, MAX_REQUEST_ID, MAX_SESSION_ID, MAX_WORKER_ENV};
pub use listener::Listener;
pub use options::Options;
pub use ring::{AlreadySplit, Consumer, EventRef, EventRing, OverflowHandler, Producer, RingStats};
pub use routing::{RequestSlot, SessionSlot, Slot};
pub use state::{Created, KernelState, Running, State, Stopped, Stopping};
pub use stats::Stats;
