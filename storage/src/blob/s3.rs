//! [`S3ObjectStore`]: the [`ObjectStore`] of scale-out deployments, keeping recorded media in a
//! bucket of an S3-compatible service, so that every engine node reads what any node stored.
//!
//! Requests are signed with SigV4 as presigned URLs (rusty-s3, valid for
//! [`PRESIGNED_URL_VALIDITY`]) and sent with reqwest; nothing else of an SDK is needed.
//! An object's key in the bucket is `<key_prefix><hex(tenant)>/<key>`: the tenant id in
//! lowercase hex has no `/`, so the mapping is injective and a tenant named `..` or `a:b` is a
//! plain segment, and [`ObjectKey`]s have no `.`, `..` or empty segment that a URL could
//! resolve. The media type travels as the object's `Content-Type`.
//!
//! A put streams: the source is cut into parts of [`PART_BYTES`] (8 MiB; larger only when
//! S3's 10,000 parts would not hold the caller's limit), one part in memory at a time. An
//! object that ends within its first part is stored with one PutObject; a longer one with a
//! multipart upload (CreateMultipartUpload, UploadPart per part in turn,
//! CompleteMultipartUpload). Whatever fails after the upload was created (the source, the
//! limit, a part, the completion), the upload is aborted before the put returns, so S3 keeps no
//! parts of it; a put cancelled mid-way aborts it from a task of its own. S3 makes the object
//! visible only when the upload completes, so a reader never sees part of it.
//!
//! Every answer outside 2xx is [`StoreError::Unavailable`] naming the operation, the HTTP
//! status and the S3 error code, except the ones the port defines: a read of a missing key
//! (`404 NoSuchKey`) is `None`. S3's DELETE answers 204 whether or not the object existed, so
//! [`ObjectStore::delete_object`] asks with a HEAD first; two concurrent deletes of one object
//! may then both report that it existed. A missing bucket is an outage, never an empty store.
//! The credentials need `s3:ListBucket` on the bucket: without it S3 answers a read of a
//! missing key with 403, which this adapter reports as unavailable.
//!
//! The endpoint may be `http://` or `https://`: TLS is the system's OpenSSL (through reqwest's
//! `native-tls`), verifying servers against the system's CA roots. (reqwest's rustls needs
//! either aws-lc-rs, a C build of its own, or a process-wide crypto provider installed before
//! any client is built, which every other reqwest client in the build would then depend on.)

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use reqwest::header::{CONTENT_LENGTH, CONTENT_TYPE};
use reqwest::{Response, StatusCode};
use rusty_s3::{Bucket, Credentials, S3Action, UrlStyle};
use switchboard_engine::blob::{
    ByteRange, ByteSource, DirectReadHeaders, ObjectBody, ObjectKey, ObjectRange, ObjectStore,
    WrittenObject, validate_content_type,
};
use switchboard_engine::ids::TenantId;
use switchboard_engine::{PutError, StoreError};

use crate::blob::stream::{Checksum, Intake};

mod multipart;

mod range;

use multipart::{PartFiller, part_bytes_for};

/// How long each signed request URL stays valid; it is signed just before it is sent.
pub const PRESIGNED_URL_VALIDITY: Duration = Duration::from_secs(60);

/// The longest a presigned URL handed to a client may work: SigV4's limit, 7 days.
pub const MAX_PRESIGNED_VALIDITY: Duration = Duration::from_secs(7 * 24 * 3_600);

/// The size of each part of a multipart upload (the last one may be shorter), and so about the
/// most of an object one put holds in memory. S3 takes parts of 5 MiB to 5 GiB, the last one
/// excepted; 8 MiB is what the AWS CLI uses. An object that fits in one part is stored with one
/// PutObject instead.
pub const PART_BYTES: usize = 8 * 1024 * 1024;

/// The most parts S3 takes in one multipart upload.
const MAX_PARTS: u64 = 10_000;

/// The largest part S3 takes (5 GiB).
const MAX_PART_BYTES: u64 = 5 * 1024 * 1024 * 1024;

/// The region used when none is configured (what most S3-compatible servers expect).
pub const DEFAULT_REGION: &str = "us-east-1";

/// The content type reported for an object stored without one (by another client).
const FALLBACK_CONTENT_TYPE: &str = "application/octet-stream";

/// The longest S3 error message kept in a [`StoreError`], in bytes.
const MAX_ERROR_MESSAGE_BYTES: usize = 200;

/// How to reach the bucket.
#[derive(Clone)]
pub struct S3Settings {
    /// The service's base URL, such as `http://127.0.0.1:9000`.
    pub endpoint: String,
    /// The bucket; [`S3ObjectStore::connect`] creates it if it does not exist.
    pub bucket: String,
    /// The region requests are signed for. Default: `us-east-1`.
    pub region: String,
    /// The access key id.
    pub access_key: String,
    /// The secret access key.
    pub secret_key: String,
    /// Path-style URLs (`<endpoint>/<bucket>/<key>`) rather than virtual-hosted ones
    /// (`<bucket>.<endpoint host>/<key>`). Default: `true`, which every S3-compatible server and
    /// an endpoint given as an IP address need.
    pub path_style: bool,
    /// Prepended to every object key in the bucket, such as `switchboard/`: empty, or
    /// `/`-separated segments none of which is empty, `.` or `..`. Default: empty.
    pub key_prefix: String,
    /// The longest one request may take, body included; for a range read (a download that
    /// streams at its reader's pace), the longest wait to connect or for the next bytes.
    /// Default: 30 s.
    pub request_timeout: Duration,
}

impl S3Settings {
    /// Settings with the defaults: region `us-east-1`, path-style URLs, no key prefix, a 30 s
    /// request timeout.
    pub fn new(
        endpoint: impl Into<String>,
        bucket: impl Into<String>,
        access_key: impl Into<String>,
        secret_key: impl Into<String>,
    ) -> Self {
        Self {
            endpoint: endpoint.into(),
            bucket: bucket.into(),
            region: DEFAULT_REGION.to_owned(),
            access_key: access_key.into(),
            secret_key: secret_key.into(),
            path_style: true,
            key_prefix: String::new(),
            request_timeout: Duration::from_secs(30),
        }
    }
}

/// Leaves the secret key out, so settings can be logged.
impl fmt::Debug for S3Settings {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("S3Settings")
            .field("endpoint", &self.endpoint)
            .field("bucket", &self.bucket)
            .field("region", &self.region)
            .field("access_key", &self.access_key)
            .field("secret_key", &"<redacted>")
            .field("path_style", &self.path_style)
            .field("key_prefix", &self.key_prefix)
            .field("request_timeout", &self.request_timeout)
            .finish()
    }
}

/// Objects in an S3 bucket; see the module documentation for the key mapping and the errors.
pub struct S3ObjectStore {
    bucket: Bucket,
    credentials: Credentials,
    http: reqwest::Client,
    /// For range reads, whose bodies stream to a client at the client's pace: no limit on the
    /// whole request, only on connecting and on each wait for the next bytes.
    streaming_http: reqwest::Client,
    key_prefix: String,
}

/// Leaves the credentials out.
impl fmt::Debug for S3ObjectStore {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("S3ObjectStore")
            .field("bucket_url", &self.bucket.base_url().as_str())
            .field("region", &self.bucket.region())
            .field("key_prefix", &self.key_prefix)
            .finish_non_exhaustive()
    }
}

fn invalid_setting(setting: &str, reason: impl fmt::Display) -> StoreError {
    StoreError::Unavailable(format!("invalid s3 setting {setting}: {reason}"))
}

/// Checks the key prefix: no segment that a URL would resolve (`.`, `..`) or that would make
/// the mapping ambiguous (empty), no control characters.
fn validate_key_prefix(key_prefix: &str) -> Result<(), StoreError> {
    if key_prefix.is_empty() {
        return Ok(());
    }
    let segments = key_prefix.strip_suffix('/').unwrap_or(key_prefix);
    let valid = segments
        .split('/')
        .all(|segment| !segment.is_empty() && segment != "." && segment != "..")
        && !key_prefix.chars().any(char::is_control);
    if valid {
        Ok(())
    } else {
        Err(invalid_setting(
            "key_prefix",
            "must be /-separated segments, none of them empty, . or ..",
        ))
    }
}

/// The text of the first `<name>` element of an S3 error document.
fn xml_element<'body>(body: &'body str, name: &str) -> Option<&'body str> {
    let open = format!("<{name}>");
    let close = format!("</{name}>");
    let start = body.find(&open)? + open.len();
    let length = body[start..].find(&close)?;
    Some(body[start..start + length].trim())
}

/// What an S3 error answer said: its status, error code and message.
struct S3Failure {
    status: StatusCode,
    code: Option<String>,
    message: Option<String>,
}

impl S3Failure {
    /// Reads the error document of an answer outside 2xx (HEAD answers have none).
    async fn read(response: Response) -> Self {
        let status = response.status();
        let body = response.text().await.unwrap_or_default();
        let code = xml_element(&body, "Code").map(str::to_owned);
        let message = xml_element(&body, "Message").map(|message| {
            let mut end = message.len().min(MAX_ERROR_MESSAGE_BYTES);
            while !message.is_char_boundary(end) {
                end -= 1;
            }
            message[..end].to_owned()
        });
        Self {
            status,
            code,
            message,
        }
    }

    fn into_error(self, action: &str) -> StoreError {
        let code = self.code.as_deref().unwrap_or("no error code");
        let message = match &self.message {
            Some(message) => format!(": {message}"),
            None => String::new(),
        };
        StoreError::Unavailable(format!(
            "s3 {action}: status {}, {code}{message}",
            self.status
        ))
    }
}

impl S3ObjectStore {
    /// A store for the bucket in `settings`, without contacting the service.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] if a setting is malformed (the endpoint URL, the region, the
    /// key prefix) or the HTTP client cannot be built.
    pub fn new(settings: S3Settings) -> Result<Self, StoreError> {
        let endpoint = settings
            .endpoint
            .parse()
            .map_err(|error| invalid_setting("endpoint", error))?;
        if settings.region.is_empty()
            || !settings
                .region
                .bytes()
                .all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_'))
        {
            return Err(invalid_setting(
                "region",
                "must be letters, digits, - and _, such as us-east-1",
            ));
        }
        validate_key_prefix(&settings.key_prefix)?;
        let url_style = if settings.path_style {
            UrlStyle::Path
        } else {
            UrlStyle::VirtualHost
        };
        let bucket = Bucket::new(endpoint, url_style, settings.bucket, settings.region)
            .map_err(|error| invalid_setting("endpoint or bucket", error))?;
        let http = reqwest::Client::builder()
            .timeout(settings.request_timeout)
            .build()
            .map_err(|error| {
                StoreError::Unavailable(format!("could not build the s3 http client: {error}"))
            })?;
        let streaming_http = reqwest::Client::builder()
            .connect_timeout(settings.request_timeout)
            .read_timeout(settings.request_timeout)
            .build()
            .map_err(|error| {
                StoreError::Unavailable(format!("could not build the s3 http client: {error}"))
            })?;
        Ok(Self {
            bucket,
            credentials: Credentials::new(settings.access_key, settings.secret_key),
            http,
            streaming_http,
            key_prefix: settings.key_prefix,
        })
    }

    /// [`Self::new`], then makes sure the bucket exists: creates it when the service says it
    /// does not, and accepts one that exists already (created meanwhile by another node).
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] if a setting is malformed, the service does not answer, or
    /// the bucket can be neither found nor created with these credentials.
    pub async fn connect(settings: S3Settings) -> Result<Self, StoreError> {
        let store = Self::new(settings)?;
        store.ensure_bucket().await?;
        Ok(store)
    }

    /// The bucket's name.
    pub fn bucket(&self) -> &str {
        self.bucket.name()
    }

    async fn ensure_bucket(&self) -> Result<(), StoreError> {
        let head = self.head_bucket().await?;
        if head.status().is_success() {
            return Ok(());
        }
        if head.status() != StatusCode::NOT_FOUND {
            return Err(S3Failure::read(head)
                .await
                .into_error("checking the bucket"));
        }
        let url = self
            .bucket
            .create_bucket(&self.credentials)
            .sign(PRESIGNED_URL_VALIDITY);
        // Outside us-east-1, S3 wants the region as the bucket's location constraint.
        let body = if self.bucket.region() == DEFAULT_REGION {
            String::new()
        } else {
            format!(
                "<CreateBucketConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\
                 <LocationConstraint>{}</LocationConstraint></CreateBucketConfiguration>",
                self.bucket.region()
            )
        };
        let created = self
            .send(
                "creating the bucket",
                self.http
                    .put(url)
                    .header(CONTENT_LENGTH, body.len())
                    .body(body),
            )
            .await?;
        if created.status().is_success() {
            return Ok(());
        }
        if created.status() == StatusCode::CONFLICT {
            // BucketAlreadyOwnedByYou, or BucketAlreadyExists from a node that created it
            // meanwhile (or from another owner): the bucket is usable if it answers to us.
            return self.ping().await;
        }
        Err(S3Failure::read(created)
            .await
            .into_error("creating the bucket"))
    }

    async fn head_bucket(&self) -> Result<Response, StoreError> {
        let url = self
            .bucket
            .head_bucket(Some(&self.credentials))
            .sign(PRESIGNED_URL_VALIDITY);
        self.send("checking the bucket", self.http.head(url)).await
    }

    /// The object's key in the bucket.
    fn object_name(&self, tenant_id: &TenantId, key: &ObjectKey) -> String {
        format!(
            "{}{}/{}",
            self.key_prefix,
            hex::encode(tenant_id.as_str()),
            key.as_str()
        )
    }

    /// Sends a request; a transport failure (refused, timed out) is unavailable.
    async fn send(
        &self,
        action: &str,
        request: reqwest::RequestBuilder,
    ) -> Result<Response, StoreError> {
        request
            .send()
            .await
            .map_err(|error| StoreError::Unavailable(format!("s3 {action}: {error}")))
    }

    /// Stores an object that fits in one part with one PutObject.
    async fn put_whole(
        &self,
        name: &str,
        location: &str,
        content_type: &str,
        bytes: Vec<u8>,
    ) -> Result<(), StoreError> {
        let mut action = self.bucket.put_object(Some(&self.credentials), name);
        action
            .headers_mut()
            .insert("content-type", content_type.to_owned());
        let url = action.sign(PRESIGNED_URL_VALIDITY);
        let action_name = format!("storing {location}");
        // Content-Length is set even for an empty body, which reqwest would leave out and S3
        // refuses with 411.
        let response = self
            .send(
                &action_name,
                self.http
                    .put(url)
                    .header(CONTENT_TYPE, content_type)
                    .header(CONTENT_LENGTH, bytes.len())
                    .body(bytes),
            )
            .await?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(S3Failure::read(response).await.into_error(&action_name))
        }
    }
}

#[async_trait]
impl ObjectStore for S3ObjectStore {
    fn backend(&self) -> &'static str {
        "s3"
    }

    fn location(&self, tenant_id: &TenantId, key: &ObjectKey) -> String {
        format!(
            "s3://{}/{}",
            self.bucket.name(),
            self.object_name(tenant_id, key)
        )
    }

    async fn put_stream(
        &self,
        tenant_id: &TenantId,
        key: &ObjectKey,
        content_type: &str,
        source: &mut dyn ByteSource,
        max_bytes: u64,
    ) -> Result<WrittenObject, PutError> {
        // A header value must be visible ASCII; the engine checks this before it gets here.
        validate_content_type(content_type).map_err(|error| {
            StoreError::Unavailable(format!("s3 refused to store the object: {error}"))
        })?;
        let name = self.object_name(tenant_id, key);
        let location = self.location(tenant_id, key);
        let part_bytes = part_bytes_for(max_bytes);
        let mut parts = PartFiller {
            intake: Intake::new(source, max_bytes),
            checksum: Checksum::default(),
            carry: Bytes::new(),
            part_bytes,
        };
        // Parts grow past 8 MiB only for limits above about 78 GiB; reserve no more up front.
        let mut part = Vec::with_capacity(part_bytes.min(PART_BYTES));
        let mut more = parts.fill(&mut part).await?;
        if !more {
            // The whole object fits in one part: one PutObject, nothing to clean up on failure.
            self.put_whole(&name, &location, content_type, part).await?;
            return Ok(parts.checksum.finish());
        }
        let upload = self
            .create_multipart_upload(&name, &location, content_type)
            .await?;
        let uploaded: Result<(), PutError> = async {
            let mut etags = Vec::new();
            loop {
                let part_number = u16::try_from(etags.len() + 1).map_err(|_| {
                    StoreError::Unavailable(format!("s3 storing {location}: too many parts"))
                })?;
                etags.push(self.upload_part(&upload, part_number, part).await?);
                if !more {
                    break;
                }
                part = Vec::with_capacity(part_bytes.min(PART_BYTES));
                more = parts.fill(&mut part).await?;
            }
            self.complete_multipart_upload(&upload, &etags).await?;
            Ok(())
        }
        .await;
        match uploaded {
            Ok(()) => {
                upload.disarm();
                Ok(parts.checksum.finish())
            }
            Err(error) => {
                self.abort_multipart_upload(upload).await;
                Err(error)
            }
        }
    }

    async fn get_object(
        &self,
        tenant_id: &TenantId,
        key: &ObjectKey,
    ) -> Result<Option<ObjectBody>, StoreError> {
        let name = self.object_name(tenant_id, key);
        let url = self
            .bucket
            .get_object(Some(&self.credentials), &name)
            .sign(PRESIGNED_URL_VALIDITY);
        let action_name = format!("reading {}", self.location(tenant_id, key));
        let response = self.send(&action_name, self.http.get(url)).await?;
        if !response.status().is_success() {
            let failure = S3Failure::read(response).await;
            // Only a missing key is an absent object; a missing bucket is not. Some servers
            // (s3s-fs) answer NoSuchKey for a missing bucket too, so the bucket is checked.
            if failure.status == StatusCode::NOT_FOUND
                && failure.code.as_deref() == Some("NoSuchKey")
            {
                return self.ping().await.map(|()| None);
            }
            return Err(failure.into_error(&action_name));
        }
        let content_type = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .unwrap_or(FALLBACK_CONTENT_TYPE)
            .to_owned();
        let bytes = response.bytes().await.map_err(|error| {
            StoreError::Unavailable(format!("s3 {action_name}: the body broke off: {error}"))
        })?;
        Ok(Some(ObjectBody {
            bytes: bytes.to_vec(),
            content_type,
        }))
    }

    async fn get_range(
        &self,
        tenant_id: &TenantId,
        key: &ObjectKey,
        range: ByteRange,
    ) -> Result<Option<ObjectRange>, StoreError> {
        self.read_range(tenant_id, key, range).await
    }

    async fn delete_object(
        &self,
        tenant_id: &TenantId,
        key: &ObjectKey,
    ) -> Result<bool, StoreError> {
        let name = self.object_name(tenant_id, key);
        let location = self.location(tenant_id, key);
        let head_url = self
            .bucket
            .head_object(Some(&self.credentials), &name)
            .sign(PRESIGNED_URL_VALIDITY);
        let checking = format!("checking {location}");
        let head = self.send(&checking, self.http.head(head_url)).await?;
        if head.status() == StatusCode::NOT_FOUND {
            // A HEAD answer has no error code: tell a missing key from a missing bucket.
            return self.ping().await.map(|()| false);
        }
        if !head.status().is_success() {
            return Err(S3Failure::read(head).await.into_error(&checking));
        }
        let delete_url = self
            .bucket
            .delete_object(Some(&self.credentials), &name)
            .sign(PRESIGNED_URL_VALIDITY);
        let deleting = format!("deleting {location}");
        let deleted = self.send(&deleting, self.http.delete(delete_url)).await?;
        if deleted.status().is_success() {
            Ok(true)
        } else {
            Err(S3Failure::read(deleted).await.into_error(&deleting))
        }
    }

    fn direct_read_url(
        &self,
        tenant_id: &TenantId,
        key: &ObjectKey,
        valid_for: Duration,
        response_headers: DirectReadHeaders<'_>,
    ) -> Option<String> {
        let name = self.object_name(tenant_id, key);
        let mut action = self.bucket.get_object(Some(&self.credentials), &name);
        let query = action.query_mut();
        query.insert("response-content-type", response_headers.content_type);
        query.insert(
            "response-content-disposition",
            response_headers.content_disposition,
        );
        Some(
            action
                .sign(valid_for.min(MAX_PRESIGNED_VALIDITY))
                .to_string(),
        )
    }

    async fn ping(&self) -> Result<(), StoreError> {
        let head = self.head_bucket().await?;
        if head.status().is_success() {
            return Ok(());
        }
        let mut failure = S3Failure::read(head).await;
        // A HEAD answer has no error document, and HeadBucket answers 404 only for a missing
        // bucket: name it, so a missing bucket reads the same from every operation.
        if failure.status == StatusCode::NOT_FOUND {
            failure.code = Some("NoSuchBucket".to_owned());
        }
        Err(failure.into_error(&format!("checking the bucket {}", self.bucket.name())))
    }
}
