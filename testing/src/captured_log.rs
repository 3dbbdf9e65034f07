//! A `tracing` writer that keeps what it is given, so a test can read the log lines back.

use std::io::Write;
use std::sync::{Arc, Mutex, PoisonError};

use tracing_subscriber::fmt::MakeWriter;

/// Every byte a subscriber wrote, shared by its clones (the subscriber gets one, the test
/// keeps another and reads [`CapturedLog::lines`]).
#[derive(Clone, Default)]
pub struct CapturedLog(Arc<Mutex<Vec<u8>>>);

impl CapturedLog {
    /// The lines written so far.
    pub fn lines(&self) -> Vec<String> {
        let bytes = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        String::from_utf8_lossy(&bytes)
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

impl Write for CapturedLog {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for CapturedLog {
    type Writer = CapturedLog;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// Makes `subscriber` the calling thread's default until the guard drops, without racing the
/// other tests of the binary.
///
/// `tracing` caches, per call site and for the whole process, whether anyone listens, and it
/// decides that on whichever thread reaches the call site first. A test that set only its own
/// thread's subscriber (`set_default`) therefore lost every line of a call site that a test on
/// another thread, with no subscriber, had reached first. So this first installs, once per
/// process, an inert global subscriber that listens to everything (every thread then registers
/// call sites as "someone may listen"), and rebuilds the cache after setting the thread's
/// default, which decides each event on the thread that records it.
pub fn set_thread_subscriber<Subscriber>(
    subscriber: Subscriber,
) -> tracing::dispatcher::DefaultGuard
where
    Subscriber: tracing_subscriber::util::SubscriberInitExt + Into<tracing::Dispatch>,
{
    static ANCHOR: std::sync::Once = std::sync::Once::new();
    ANCHOR.call_once(|| {
        use tracing_subscriber::util::SubscriberInitExt as _;
        // Another global subscriber already listening serves as well.
        let _ = tracing_subscriber::registry().try_init();
    });
    let guard = subscriber.set_default();
    tracing::callsite::rebuild_interest_cache();
    guard
}
