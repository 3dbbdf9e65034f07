//! Range reads of the S3 object store: a HEAD finds the object's size, media type and ETag,
//! then a ranged GET (`Range: bytes=<first>-<last>`, `If-Match` the ETag) streams the bytes as
//! reqwest receives them, so a read holds one network chunk in memory whatever the range's
//! size. A range that is empty within the object sends no GET (S3 refuses an unsatisfiable
//! range with 416 instead of an empty body). An object replaced between the HEAD and the GET
//! fails the `If-Match` (412) and the read starts over, a few times at most.

use async_trait::async_trait;
use bytes::Bytes;
use reqwest::header::{CONTENT_LENGTH, CONTENT_TYPE, ETAG, IF_MATCH, RANGE};
use reqwest::{Response, StatusCode};
use rusty_s3::S3Action;
use switchboard_engine::StoreError;
use switchboard_engine::blob::{
    ByteRange, ByteStream, ChunksStream, ObjectKey, ObjectRange, ObjectStore,
};
use switchboard_engine::ids::TenantId;

use super::{FALLBACK_CONTENT_TYPE, PRESIGNED_URL_VALIDITY, S3Failure, S3ObjectStore};

/// How many times a range read starts over when the object changed under it.
const MAX_RANGE_ATTEMPTS: usize = 3;

/// What a HEAD says of an object.
struct Head {
    total_bytes: u64,
    content_type: String,
    etag: Option<String>,
}

impl S3ObjectStore {
    /// The object's size, media type and ETag; `None` if there is no such key.
    async fn head_object(&self, name: &str, action: &str) -> Result<Option<Head>, StoreError> {
        let url = self
            .bucket
            .head_object(Some(&self.credentials), name)
            .sign(PRESIGNED_URL_VALIDITY);
        let head = self.send(action, self.http.head(url)).await?;
        if head.status() == StatusCode::NOT_FOUND {
            // A HEAD answer has no error code: tell a missing key from a missing bucket.
            return self.ping().await.map(|()| None);
        }
        if !head.status().is_success() {
            return Err(S3Failure::read(head).await.into_error(action));
        }
        let header = |name| {
            head.headers()
                .get(name)
                .and_then(|value| value.to_str().ok())
                .map(str::to_owned)
        };
        let total_bytes = header(CONTENT_LENGTH)
            .and_then(|length| length.parse().ok())
            .ok_or_else(|| {
                StoreError::Unavailable(format!("s3 {action}: the answer has no content length"))
            })?;
        Ok(Some(Head {
            total_bytes,
            content_type: header(CONTENT_TYPE).unwrap_or_else(|| FALLBACK_CONTENT_TYPE.to_owned()),
            etag: header(ETAG),
        }))
    }

    /// Streams a range of an object (see the module documentation).
    pub(super) async fn read_range(
        &self,
        tenant_id: &TenantId,
        key: &ObjectKey,
        range: ByteRange,
    ) -> Result<Option<ObjectRange>, StoreError> {
        let name = self.object_name(tenant_id, key);
        let action = format!("reading {}", self.location(tenant_id, key));
        for _ in 0..MAX_RANGE_ATTEMPTS {
            let Some(head) = self.head_object(&name, &action).await? else {
                return Ok(None);
            };
            let (start, end) = range.within(head.total_bytes);
            let object_range = |bytes: Box<dyn ByteStream>| ObjectRange {
                content_type: head.content_type.clone(),
                total_bytes: head.total_bytes,
                start,
                end,
                bytes,
            };
            if start == end {
                return Ok(Some(object_range(Box::<ChunksStream>::default())));
            }
            let url = self
                .bucket
                .get_object(Some(&self.credentials), &name)
                .sign(PRESIGNED_URL_VALIDITY);
            let mut request = self
                .streaming_http
                .get(url)
                .header(RANGE, format!("bytes={start}-{}", end - 1));
            if let Some(etag) = &head.etag {
                request = request.header(IF_MATCH, etag);
            }
            let response = self.send(&action, request).await?;
            match response.status() {
                // Replaced (412) or shortened (416) since the HEAD: start over.
                StatusCode::PRECONDITION_FAILED | StatusCode::RANGE_NOT_SATISFIABLE => continue,
                StatusCode::NOT_FOUND => return self.ping().await.map(|()| None),
                status if !status.is_success() => {
                    return Err(S3Failure::read(response).await.into_error(&action));
                }
                _ => {}
            }
            return Ok(Some(object_range(Box::new(S3RangeStream {
                response: Some(response),
                action,
            }))));
        }
        Err(StoreError::Unavailable(format!(
            "s3 {action}: the object kept changing while it was read"
        )))
    }
}

/// The body of a ranged GET, chunk by chunk as it arrives.
struct S3RangeStream {
    /// `None` once the body ended or broke off.
    response: Option<Response>,
    action: String,
}

#[async_trait]
impl ByteStream for S3RangeStream {
    async fn next_chunk(&mut self) -> Result<Option<Bytes>, StoreError> {
        let Some(response) = self.response.as_mut() else {
            return Ok(None);
        };
        match response.chunk().await {
            Ok(Some(chunk)) => Ok(Some(chunk)),
            Ok(None) => {
                self.response = None;
                Ok(None)
            }
            Err(error) => {
                self.response = None;
                Err(StoreError::Unavailable(format!(
                    "s3 {}: the body broke off: {error}",
                    self.action
                )))
            }
        }
    }
}
