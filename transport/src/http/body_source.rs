//! An upload's body as a [`ByteSource`]: what the recordings and media uploads stream from.

use async_trait::async_trait;
use axum::body::{Body, BodyDataStream};
use bytes::Bytes;
use futures_util::StreamExt as _;
use switchboard_engine::SourceError;
use switchboard_engine::blob::ByteSource;

/// An upload's body as the object store pulls it: hyper's data frames as they arrive (each at
/// most its read buffer), and nothing before the store asks, so a refused upload leaves its body
/// unread. A body that ends short of its declared `Content-Length` (the connection was cut) is
/// an error, never a shorter object.
pub(crate) struct BodySource {
    frames: BodyDataStream,
    declared: Option<u64>,
    n_received: u64,
}

#[async_trait]
impl ByteSource for BodySource {
    async fn next_chunk(&mut self) -> Result<Option<Bytes>, SourceError> {
        match self.frames.next().await {
            Some(Ok(chunk)) => {
                self.n_received += u64::try_from(chunk.len()).unwrap_or(u64::MAX);
                Ok(Some(chunk))
            }
            Some(Err(_)) => Err(SourceError::new("the body could not be read to its end")),
            None => match self.declared {
                Some(declared) if self.n_received < declared => Err(SourceError::new(format!(
                    "the body ended after {} of its {declared} bytes",
                    self.n_received
                ))),
                _ => Ok(None),
            },
        }
    }
}

impl BodySource {
    /// The body of a request that declared `declared` bytes in its `Content-Length`, if it did.
    pub(crate) fn new(body: Body, declared: Option<u64>) -> Self {
        Self {
            frames: body.into_data_stream(),
            declared,
            n_received: 0,
        }
    }
}
