//! The multipart upload of the S3 object store: a put longer than one part (8 MiB by default)
//! is sent one part at a time, read from the source into a buffer of one part, and completed
//! from the parts' ETags; whenever anything fails, or the put is cancelled, the upload is
//! aborted (from a task of its own on cancellation), so no unfinished upload is left behind.

use bytes::Bytes;
use reqwest::header::{CONTENT_LENGTH, CONTENT_TYPE, ETAG};
use rusty_s3::S3Action;
use rusty_s3::actions::{CompleteMultipartUploadResponse, CreateMultipartUpload};
use switchboard_engine::{PutError, StoreError};

use super::*;
use crate::blob::stream::{Checksum, Intake};

impl S3ObjectStore {
    /// Starts a multipart upload; the object's media type is given here.
    pub(super) async fn create_multipart_upload(
        &self,
        name: &str,
        location: &str,
        content_type: &str,
    ) -> Result<MultipartUpload<'_>, StoreError> {
        let mut action = self
            .bucket
            .create_multipart_upload(Some(&self.credentials), name);
        action
            .headers_mut()
            .insert("content-type", content_type.to_owned());
        let url = action.sign(PRESIGNED_URL_VALIDITY);
        let action_name = format!("starting a multipart upload of {location}");
        let response = self
            .send(
                &action_name,
                self.http
                    .post(url)
                    .header(CONTENT_TYPE, content_type)
                    .header(CONTENT_LENGTH, 0),
            )
            .await?;
        if !response.status().is_success() {
            return Err(S3Failure::read(response).await.into_error(&action_name));
        }
        let body = response.text().await.map_err(|error| {
            StoreError::Unavailable(format!("s3 {action_name}: the answer broke off: {error}"))
        })?;
        let created = CreateMultipartUpload::parse_response(&body).map_err(|error| {
            StoreError::Unavailable(format!("s3 {action_name}: unreadable answer: {error}"))
        })?;
        Ok(MultipartUpload {
            store: self,
            name: name.to_owned(),
            location: location.to_owned(),
            upload_id: created.upload_id().to_owned(),
            finished: false,
        })
    }

    /// Uploads one part; returns its ETag.
    pub(super) async fn upload_part(
        &self,
        upload: &MultipartUpload<'_>,
        part_number: u16,
        bytes: Vec<u8>,
    ) -> Result<String, StoreError> {
        let url = self
            .bucket
            .upload_part(
                Some(&self.credentials),
                &upload.name,
                part_number,
                &upload.upload_id,
            )
            .sign(PRESIGNED_URL_VALIDITY);
        let action_name = format!("uploading part {part_number} of {}", upload.location);
        let response = self
            .send(
                &action_name,
                self.http
                    .put(url)
                    .header(CONTENT_LENGTH, bytes.len())
                    .body(bytes),
            )
            .await?;
        if !response.status().is_success() {
            return Err(S3Failure::read(response).await.into_error(&action_name));
        }
        response
            .headers()
            .get(ETAG)
            .and_then(|etag| etag.to_str().ok())
            .map(str::to_owned)
            .ok_or_else(|| StoreError::Unavailable(format!("s3 {action_name}: no ETag")))
    }

    /// Completes a multipart upload from its parts' ETags, in part order.
    pub(super) async fn complete_multipart_upload(
        &self,
        upload: &MultipartUpload<'_>,
        etags: &[String],
    ) -> Result<(), StoreError> {
        let action = self.bucket.complete_multipart_upload(
            Some(&self.credentials),
            &upload.name,
            &upload.upload_id,
            etags.iter().map(String::as_str),
        );
        let url = action.sign(PRESIGNED_URL_VALIDITY);
        let body = action.body();
        let action_name = format!("completing the multipart upload of {}", upload.location);
        let response = self
            .send(
                &action_name,
                self.http
                    .post(url)
                    .header(CONTENT_LENGTH, body.len())
                    .body(body),
            )
            .await?;
        if !response.status().is_success() {
            return Err(S3Failure::read(response).await.into_error(&action_name));
        }
        // S3 may answer 200 and still fail: the body then holds an error, not the result.
        let answer = response.text().await.map_err(|error| {
            StoreError::Unavailable(format!("s3 {action_name}: the answer broke off: {error}"))
        })?;
        if CompleteMultipartUploadResponse::parse(&answer).is_ok() {
            return Ok(());
        }
        let code = xml_element(&answer, "Code").unwrap_or("an unreadable answer");
        Err(StoreError::Unavailable(format!(
            "s3 {action_name}: status 200, {code}"
        )))
    }

    /// Aborts a multipart upload so S3 drops its parts, and waits for the answer. A failure is
    /// logged, not returned: the put has failed already, and saying so matters more.
    pub(super) async fn abort_multipart_upload(&self, mut upload: MultipartUpload<'_>) {
        upload.finished = true;
        let action_name = format!("aborting the multipart upload of {}", upload.location);
        match self.send(&action_name, upload.abort_request()).await {
            Ok(response) if response.status().is_success() => {}
            Ok(response) => {
                let error = S3Failure::read(response).await.into_error(&action_name);
                tracing::warn!(%error, "an unfinished s3 multipart upload may be left behind");
            }
            Err(error) => {
                tracing::warn!(%error, "an unfinished s3 multipart upload may be left behind");
            }
        }
    }
}

/// The size of a multipart upload's part for objects of at most `max_bytes`: [`PART_BYTES`],
/// or larger when S3's 10,000 parts would not hold `max_bytes` (above about 78 GiB), up to
/// S3's largest part.
pub(super) fn part_bytes_for(max_bytes: u64) -> usize {
    let needed = max_bytes.div_ceil(MAX_PARTS).min(MAX_PART_BYTES);
    usize::try_from(needed).map_or(PART_BYTES, |needed| needed.max(PART_BYTES))
}

/// Cuts a source into parts of `part_bytes`, hashing every byte as it arrives.
pub(super) struct PartFiller<'source> {
    pub(super) intake: Intake<'source>,
    pub(super) checksum: Checksum,
    /// What is left of the last chunk, which did not fit in the part before.
    pub(super) carry: Bytes,
    pub(super) part_bytes: usize,
}

impl PartFiller<'_> {
    /// Fills `part` (empty) up to the part size; returns whether more bytes follow it. When
    /// they do, the part is full and the next byte is already read (in `carry`), so a last part
    /// is never empty and a part is never sent before it is known whether it is the last.
    pub(super) async fn fill(&mut self, part: &mut Vec<u8>) -> Result<bool, PutError> {
        loop {
            if self.carry.is_empty() {
                match self.intake.next_chunk().await? {
                    Some(chunk) => {
                        self.checksum.update(&chunk);
                        self.carry = chunk;
                        continue;
                    }
                    None => return Ok(false),
                }
            }
            if part.len() == self.part_bytes {
                return Ok(true);
            }
            let n_bytes = (self.part_bytes - part.len()).min(self.carry.len());
            part.extend_from_slice(&self.carry.split_to(n_bytes));
        }
    }
}

/// A multipart upload in progress. If it is dropped before it is completed or aborted (the put
/// was cancelled), it asks S3 to abort it from a task of its own, so no unfinished upload (whose
/// parts S3 keeps, and bills, until then) outlives the put.
pub(super) struct MultipartUpload<'store> {
    pub(super) store: &'store S3ObjectStore,
    pub(super) name: String,
    pub(super) location: String,
    pub(super) upload_id: String,
    pub(super) finished: bool,
}

impl MultipartUpload<'_> {
    /// The upload was completed: nothing to abort.
    pub(super) fn disarm(mut self) {
        self.finished = true;
    }

    pub(super) fn abort_request(&self) -> reqwest::RequestBuilder {
        let url = self
            .store
            .bucket
            .abort_multipart_upload(Some(&self.store.credentials), &self.name, &self.upload_id)
            .sign(PRESIGNED_URL_VALIDITY);
        self.store.http.delete(url)
    }
}

impl Drop for MultipartUpload<'_> {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        // Only a cancelled put gets here (every other path aborts and waits). The request must
        // outlive the cancelled future, so it runs as a task of its own: bounded by the
        // client's request timeout, and best effort, like an abort that fails.
        let request = self.abort_request();
        let location = self.location.clone();
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                if let Err(error) = request.send().await {
                    tracing::warn!(%location, %error, "could not abort a cancelled s3 multipart upload");
                }
            });
        }
    }
}
