//! The thumbnailer: one supervised actor that makes the thumbnails of images after their
//! upload completed, off the request path.
//!
//! The media service asks for an image's thumbnails when its upload completes
//! ([`ThumbnailerHandle::request`]); the request is dropped, with a warning, while more than
//! [`MAX_PENDING`] wait (the queue is bounded; a later read of the thumbnail asks again). Each
//! job reads the record (media deleted, already done, or not an image of a thumbnailed type is
//! skipped), reads the file whole if it is within `max_source_bytes`, renders on the blocking
//! pool (`render.rs`: a decompression bomb or a corrupt file yields a reason, never a crash:
//! a panic in a decoder is caught and recorded as a reason too), stores each thumbnail under
//! its own key, then records dimensions, thumbnails or the reason on the media. If the media
//! was deleted meanwhile, it deletes the thumbnails it stored: they are never left without a
//! record that names them. One job at a time, so memory stays within one image's.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use switchboard_engine::Error;
use switchboard_engine::blob::ChunksSource;
use switchboard_engine::ids::{MediaId, TenantId};
use switchboard_engine::media::thumbnail::{
    ThumbnailSettings, awaits_thumbnails, check_source_size,
};
use switchboard_engine::media::{MediaUpdate, Thumbnail, media_object_key, thumbnail_object_key};

use super::MediaService;
use crate::reply::call_within;
use crate::uploads::{OBJECT_TIMEOUT, bounded};

mod render;

pub use render::{Rendered, RenderedThumbnail, render};

/// How many requests may wait for the thumbnailer before new ones are dropped.
pub const MAX_PENDING: usize = 1024;

/// What the thumbnailer runs with.
pub struct ThumbnailerArgs {
    /// The service whose media it thumbnails.
    pub service: Arc<MediaService>,
    /// What to make, and of what.
    pub settings: ThumbnailSettings,
}

/// One image to thumbnail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThumbnailJob {
    /// Its tenant.
    pub tenant_id: TenantId,
    /// The media.
    pub media_id: MediaId,
}

/// What a job did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ThumbnailOutcome {
    /// The image was measured and this many thumbnails stored (none for a small image).
    Made(usize),
    /// No thumbnails, for this recorded reason.
    Refused(String),
    /// Nothing to do: gone, not a thumbnailed image, or done before.
    Skipped,
}

/// The thumbnailer's messages.
pub enum ThumbnailerMsg {
    /// Make an image's thumbnails (counted in the pending requests).
    Make(ThumbnailJob),
    /// Make them now and answer what happened.
    MakeNow(ThumbnailJob, RpcReplyPort<Result<ThumbnailOutcome, Error>>),
}

/// Makes thumbnails, one image at a time.
pub struct ThumbnailerActor;

/// The thumbnailer's state.
pub struct ThumbnailerState {
    args: ThumbnailerArgs,
    pending: Arc<AtomicUsize>,
}

/// A running thumbnailer.
#[derive(Clone)]
pub struct ThumbnailerHandle {
    actor: ActorRef<ThumbnailerMsg>,
    pending: Arc<AtomicUsize>,
}

impl ThumbnailerHandle {
    /// Starts the thumbnailer.
    ///
    /// # Errors
    /// If the actor cannot be spawned.
    pub async fn start(args: ThumbnailerArgs) -> Result<Self, ractor::SpawnErr> {
        let pending = Arc::new(AtomicUsize::new(0));
        let (actor, _) = Actor::spawn(None, ThumbnailerActor, (args, Arc::clone(&pending))).await?;
        Ok(Self { actor, pending })
    }

    /// Asks for an image's thumbnails; `false` if the request was dropped (too many waiting,
    /// or the thumbnailer stopped).
    pub fn request(&self, tenant_id: TenantId, media_id: MediaId) -> bool {
        if self.pending.fetch_add(1, Ordering::AcqRel) >= MAX_PENDING {
            self.pending.fetch_sub(1, Ordering::AcqRel);
            tracing::warn!(%tenant_id, %media_id, "the thumbnailer is busy; a thumbnail request was dropped");
            return false;
        }
        let sent = self
            .actor
            .cast(ThumbnailerMsg::Make(ThumbnailJob {
                tenant_id,
                media_id,
            }))
            .is_ok();
        if !sent {
            self.pending.fetch_sub(1, Ordering::AcqRel);
        }
        sent
    }

    /// Makes an image's thumbnails now (after whatever waits before it).
    ///
    /// # Errors
    /// The job's error, or [`Error::Unavailable`] if the thumbnailer does not answer within
    /// `timeout`.
    pub async fn make_now(
        &self,
        job: ThumbnailJob,
        timeout: Duration,
    ) -> Result<ThumbnailOutcome, Error> {
        call_within(
            &self.actor,
            |reply| ThumbnailerMsg::MakeNow(job, reply),
            timeout,
            "the thumbnailer",
        )
        .await
        .map_err(|error| Error::unavailable(error.to_string()))?
    }

    /// Stops the thumbnailer.
    pub fn stop(&self) {
        self.actor.stop(None);
    }
}

impl Actor for ThumbnailerActor {
    type Msg = ThumbnailerMsg;
    type State = ThumbnailerState;
    type Arguments = (ThumbnailerArgs, Arc<AtomicUsize>);

    async fn pre_start(
        &self,
        _myself: ActorRef<ThumbnailerMsg>,
        (args, pending): (ThumbnailerArgs, Arc<AtomicUsize>),
    ) -> Result<ThumbnailerState, ActorProcessingErr> {
        Ok(ThumbnailerState { args, pending })
    }

    async fn handle(
        &self,
        _myself: ActorRef<ThumbnailerMsg>,
        message: ThumbnailerMsg,
        state: &mut ThumbnailerState,
    ) -> Result<(), ActorProcessingErr> {
        let service = &state.args.service;
        match message {
            ThumbnailerMsg::Make(job) => {
                let outcome = service.make_thumbnails(&job, &state.args.settings).await;
                state.pending.fetch_sub(1, Ordering::AcqRel);
                if let Err(error) = outcome {
                    tracing::warn!(tenant_id = %job.tenant_id, media_id = %job.media_id, %error, "thumbnails were not made");
                }
            }
            ThumbnailerMsg::MakeNow(job, reply) => {
                let outcome = service.make_thumbnails(&job, &state.args.settings).await;
                let _ = reply.send(outcome);
            }
        }
        Ok(())
    }
}

impl MediaService {
    /// Makes and records the thumbnails of one image; see the module's documentation.
    ///
    /// # Errors
    /// [`Error::Unavailable`] if a store fails (nothing is recorded; asking again retries).
    pub async fn make_thumbnails(
        &self,
        job: &ThumbnailJob,
        settings: &ThumbnailSettings,
    ) -> Result<ThumbnailOutcome, Error> {
        let tenant_id = &job.tenant_id;
        let record = match self.stored(tenant_id, job.media_id).await {
            Ok(record) => record,
            Err(Error::NotFound) => return Ok(ThumbnailOutcome::Skipped),
            Err(error) => return Err(error),
        };
        if !awaits_thumbnails(&record) {
            return Ok(ThumbnailOutcome::Skipped);
        }
        let mime = record
            .media_type
            .as_ref()
            .map(|media_type| media_type.mime.clone())
            .unwrap_or_default();
        let rendered = match check_source_size(record.size_bytes, settings) {
            Ok(()) => {
                let body = bounded(
                    OBJECT_TIMEOUT,
                    "reading an image to thumbnail",
                    self.ports
                        .objects
                        .get_object(tenant_id, &media_object_key(job.media_id)),
                )
                .await?
                .ok_or_else(|| Error::unavailable("the image's bytes are missing"))?;
                let settings = settings.clone();
                tokio::task::spawn_blocking(move || render(&body.bytes, &mime, &settings))
                    .await
                    .unwrap_or_else(|_| {
                        Err("the image could not be read (its decoder failed)".to_owned())
                    })
            }
            Err(reason) => Err(reason),
        };
        let (update, stored, outcome) = match rendered {
            Ok(rendered) => {
                let stored = self
                    .store_thumbnails(tenant_id, job.media_id, &rendered)
                    .await?;
                let outcome = ThumbnailOutcome::Made(stored.len());
                (
                    MediaUpdate::Thumbnailed {
                        dimensions: Some(rendered.dimensions),
                        thumbnails: stored.clone(),
                        failure: None,
                    },
                    stored,
                    outcome,
                )
            }
            Err(reason) => (
                MediaUpdate::Thumbnailed {
                    dimensions: None,
                    thumbnails: Vec::new(),
                    failure: Some(reason.clone()),
                },
                Vec::new(),
                ThumbnailOutcome::Refused(reason),
            ),
        };
        match self.update(tenant_id, job.media_id, update).await {
            Ok(_) => Ok(outcome),
            Err(error) => {
                // Deleted meanwhile (or the store failed): the thumbnails must not outlive the
                // record that would have named them.
                for thumbnail in &stored {
                    if let Err(error) = self.delete_object(tenant_id, &thumbnail.object_key).await {
                        tracing::warn!(%tenant_id, media_id = %job.media_id, %error, "a thumbnail of deleted media was left behind");
                    }
                }
                match error {
                    Error::NotFound | Error::Conflict { .. } => Ok(ThumbnailOutcome::Skipped),
                    error => Err(error),
                }
            }
        }
    }

    /// Stores each rendered thumbnail under its key; on a failure, deletes those stored.
    async fn store_thumbnails(
        &self,
        tenant_id: &TenantId,
        media_id: MediaId,
        rendered: &Rendered,
    ) -> Result<Vec<Thumbnail>, Error> {
        let mut stored = Vec::with_capacity(rendered.thumbnails.len());
        for thumbnail in &rendered.thumbnails {
            let object_key = thumbnail_object_key(media_id, thumbnail.size);
            let mut source = ChunksSource::split(thumbnail.bytes.clone(), 0);
            let written = self
                .ports
                .objects
                .put_stream(
                    tenant_id,
                    &object_key,
                    thumbnail.mime,
                    &mut source,
                    thumbnail.bytes.len() as u64,
                )
                .await;
            match written {
                Ok(written) => stored.push(Thumbnail {
                    size: thumbnail.size,
                    dimensions: thumbnail.dimensions,
                    mime: thumbnail.mime.to_owned(),
                    object_key,
                    bytes: written.bytes,
                }),
                Err(error) => {
                    for done in &stored {
                        let _ = self.delete_object(tenant_id, &done.object_key).await;
                    }
                    let _ = self.delete_object(tenant_id, &object_key).await;
                    return Err(Error::unavailable(format!(
                        "could not store a thumbnail: {error}"
                    )));
                }
            }
        }
        Ok(stored)
    }
}

#[cfg(test)]
mod tests;
