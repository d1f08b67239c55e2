//! Readiness and draining, for the admin listener's probes and the shutdown sequence.
//!
//! `/readyz` is 200 once the first generation is loaded and the listeners are bound, and 503
//! from the moment a drain starts (SIGTERM): the endpoints controller stops sending traffic
//! while the gateway still serves what arrives, answering HTTP/1.1 with `Connection: close`
//! and sending HTTP/2 connections a GOAWAY, so that keep-alive callers move elsewhere.

use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::watch;

#[derive(Debug)]
pub struct Health {
    ready: AtomicBool,
    /// Read on every response (HTTP/1.1 gets `Connection: close` while draining).
    draining_now: AtomicBool,
    draining: watch::Sender<bool>,
}

impl Default for Health {
    fn default() -> Self {
        Health {
            ready: AtomicBool::new(false),
            draining_now: AtomicBool::new(false),
            draining: watch::Sender::new(false),
        }
    }
}

impl Health {
    /// The listeners are bound and serving.
    pub fn set_ready(&self) {
        self.ready.store(true, Ordering::Release);
    }

    /// Ready, and not draining.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire) && !self.is_draining()
    }

    /// Starts the drain: readiness turns false at once. Idempotent.
    pub fn start_drain(&self) {
        self.draining_now.store(true, Ordering::Release);
        self.draining
            .send_if_modified(|d| !std::mem::replace(d, true));
    }

    pub fn is_draining(&self) -> bool {
        self.draining_now.load(Ordering::Relaxed)
    }

    /// A receiver that sees the drain start.
    pub fn draining(&self) -> watch::Receiver<bool> {
        self.draining.subscribe()
    }
}
