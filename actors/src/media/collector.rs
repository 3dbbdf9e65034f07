//! The media garbage collector: one actor that, every interval, asks the media store what is
//! due ([`MediaStore::media_to_collect`](switchboard_engine::media::MediaStore::media_to_collect):
//! deleted media, unfinished uploads past their expiry, and, when `orphan_ttl` is set, complete
//! media nobody attached for that long) and removes each: the record is marked deleted (so it
//! stops counting against the quotas at once), its objects are deleted (the media, an upload's
//! parts, the thumbnails), then the record is removed.
//!
//! Every step is idempotent and all its state is in the store, so a collector that crashed or
//! a node that restarted simply finds the same records again on the next round; several nodes'
//! collectors may race on one record and each step still holds. A round takes at most
//! [`COLLECT_BATCH`] records; a backlog drains over the following rounds.

use std::sync::Arc;
use std::time::Duration;

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};

use super::MediaService;
use crate::reply::call_within;

/// How many records one round removes at most.
pub const COLLECT_BATCH: usize = 256;

/// What the collector runs with.
pub struct MediaCollectorArgs {
    /// The service whose media it collects.
    pub service: Arc<MediaService>,
    /// How often it runs.
    pub interval: Duration,
}

/// The collector's messages.
pub enum MediaCollectorMsg {
    /// Run a round (the interval's tick).
    Collect,
    /// Run a round now and answer how many records it removed.
    CollectNow(RpcReplyPort<usize>),
}

/// Removes what the media store says is due, every interval.
pub struct MediaCollectorActor;

/// The collector's state: what it was started with.
pub struct MediaCollectorState {
    args: MediaCollectorArgs,
}

/// A running collector.
pub struct MediaCollectorHandle {
    actor: ActorRef<MediaCollectorMsg>,
}

impl MediaCollectorHandle {
    /// Starts collecting.
    ///
    /// # Errors
    /// If the actor cannot be spawned.
    pub async fn start(args: MediaCollectorArgs) -> Result<Self, ractor::SpawnErr> {
        let (actor, _) = Actor::spawn(None, MediaCollectorActor, args).await?;
        Ok(Self { actor })
    }

    /// Runs a round now; returns how many records it removed.
    ///
    /// # Errors
    /// [`crate::Error::Timeout`] or [`crate::Error::Stopped`] if the collector does not answer
    /// within `timeout`.
    pub async fn collect_now(&self, timeout: Duration) -> crate::Result<usize> {
        call_within(
            &self.actor,
            MediaCollectorMsg::CollectNow,
            timeout,
            "the media collector",
        )
        .await
    }

    /// Stops collecting.
    pub fn stop(&self) {
        self.actor.stop(None);
    }
}

impl Actor for MediaCollectorActor {
    type Msg = MediaCollectorMsg;
    type State = MediaCollectorState;
    type Arguments = MediaCollectorArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<MediaCollectorMsg>,
        args: MediaCollectorArgs,
    ) -> Result<MediaCollectorState, ActorProcessingErr> {
        myself.send_interval(args.interval, || MediaCollectorMsg::Collect);
        Ok(MediaCollectorState { args })
    }

    async fn handle(
        &self,
        _myself: ActorRef<MediaCollectorMsg>,
        message: MediaCollectorMsg,
        state: &mut MediaCollectorState,
    ) -> Result<(), ActorProcessingErr> {
        let n_removed = match state.args.service.collect(COLLECT_BATCH).await {
            Ok(n_removed) => n_removed,
            Err(error) => {
                tracing::warn!(%error, "the media collector's round failed; the next one retries");
                0
            }
        };
        if n_removed > 0 {
            tracing::info!(n_removed, "the media collector removed media");
        }
        if let MediaCollectorMsg::CollectNow(reply) = message {
            let _ = reply.send(n_removed);
        }
        Ok(())
    }
}
