//! The conformance suite for every [`ObjectStore`] adapter: the in-memory test double, the
//! filesystem store (in a temporary directory that lives as long as the test), and (with the
//! `s3` feature) the S3 store against the service named by `SWITCHBOARD_TEST_S3_ENDPOINT`,
//! `SWITCHBOARD_TEST_S3_ACCESS_KEY` and `SWITCHBOARD_TEST_S3_SECRET_KEY`
//! (`scripts/test-services start s3`).
//!
//! Each test is written once, as an `async fn` over `Arc<dyn ObjectStore>`, and the
//! `object_store!` macro runs it against every adapter. Every S3 test gets a bucket of its
//! own, so tests sharing one server cannot see each other's objects.
//! The suite checks the port's contract: a roundtrip keeps the bytes and the content type, a
//! replace is whole, missing objects read as `None`, deletes report whether the object existed,
//! and tenants (`..` and `a:b` among them) never see each other's objects. Every object is
//! written through the streaming put, whose own cases come with a [`Leftovers`] probe of the
//! adapter's backend: many small chunks make one object with the right size and SHA-256, a body
//! of several S3 parts roundtrips, and a stream over its limit, a source that fails midway and
//! a put cancelled midway each store nothing, keep the object the key held before, and leave
//! nothing behind (no temporary file; on S3, no unfinished multipart upload, looked for in
//! s3s-fs's directory, `SWITCHBOARD_TEST_S3_DATA_DIR`, since s3s-fs does not list them).
//! Tests after the macro cover what only one adapter can show: for the filesystem store,
//! surviving a reopen, nothing written outside the root, damaged files reported as corrupt, and
//! `ping` failing when the root is gone; for S3, a second connect to an existing bucket, and
//! that a missing bucket or wrong credentials are errors naming the S3 error code, never an
//! empty store.

#![allow(clippy::disallowed_methods)] // Tests read the clock to name their buckets.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use sha2::Digest as _;
use switchboard_engine::blob::{
    ByteRange, ByteSource, ChunksSource, ObjectBody, ObjectKey, ObjectStore, WrittenObject,
};
use switchboard_engine::ids::TenantId;
use switchboard_engine::{PutError, SourceError, StoreError};
use switchboard_storage::object_files::FilesystemObjectStore;
use tempfile::TempDir;

mod support;

use support::tenant;

// ---------------------------------------------------------------------------------------------
// Fixtures.

fn key(value: &str) -> ObjectKey {
    ObjectKey::parse(value).expect("test object keys are valid")
}

fn body(bytes: &[u8], content_type: &str) -> ObjectBody {
    ObjectBody {
        bytes: bytes.to_vec(),
        content_type: content_type.to_owned(),
    }
}

/// Bytes that differ at every offset from a shifted copy of themselves, so a truncated,
/// reordered or partly rewritten object never compares equal.
fn patterned_bytes(n_bytes: usize, seed: u8) -> Vec<u8> {
    (0..n_bytes)
        .map(|index| {
            let index = index as u64;
            (index
                .wrapping_mul(2_654_435_761)
                .wrapping_add(index >> 13)
                .wrapping_add(u64::from(seed))
                % 251) as u8
        })
        .collect()
}

const MIB: usize = 1024 * 1024;

/// The limit of the puts that are not about limits: large enough for every object here, and
/// small enough that S3 uses its usual 8 MiB parts.
const GENEROUS_LIMIT: u64 = 1 << 30;

/// What a put of `bytes` must report.
fn written(bytes: &[u8]) -> WrittenObject {
    WrittenObject {
        bytes: bytes.len() as u64,
        sha256: hex::encode(sha2::Sha256::digest(bytes)),
    }
}

/// Stores `body` through the streaming put, in chunks of 64 KiB, and checks what it reports.
async fn put(
    store: &Arc<dyn ObjectStore>,
    tenant_id: &TenantId,
    key: &ObjectKey,
    body: ObjectBody,
) {
    let expected = written(&body.bytes);
    let mut source = ChunksSource::split(body.bytes, 64 * 1024);
    let reported = store
        .put_stream(
            tenant_id,
            key,
            &body.content_type,
            &mut source,
            GENEROUS_LIMIT,
        )
        .await
        .expect("put_stream succeeds");
    assert_eq!(reported, expected, "the put reports the size and SHA-256");
}

async fn get(
    store: &Arc<dyn ObjectStore>,
    tenant_id: &TenantId,
    key: &ObjectKey,
) -> Option<ObjectBody> {
    store
        .get_object(tenant_id, key)
        .await
        .expect("get_object succeeds")
}

async fn delete(store: &Arc<dyn ObjectStore>, tenant_id: &TenantId, key: &ObjectKey) -> bool {
    store
        .delete_object(tenant_id, key)
        .await
        .expect("delete_object succeeds")
}

/// Reads a range through [`ObjectStore::get_range`]: its bounds as reported and its bytes, read
/// to the end of the stream. `None` when there is no object.
async fn read_range(
    store: &Arc<dyn ObjectStore>,
    tenant_id: &TenantId,
    key: &ObjectKey,
    range: ByteRange,
) -> Option<(u64, u64, u64, String, Vec<u8>)> {
    let mut object_range = store
        .get_range(tenant_id, key, range)
        .await
        .expect("get_range succeeds")?;
    let mut bytes = Vec::new();
    while let Some(chunk) = object_range
        .bytes
        .next_chunk()
        .await
        .expect("the range streams to its end")
    {
        bytes.extend_from_slice(&chunk);
    }
    Some((
        object_range.start,
        object_range.end,
        object_range.total_bytes,
        object_range.content_type,
        bytes,
    ))
}

// ---------------------------------------------------------------------------------------------
// The contract, for every adapter.

async fn ranges_stream_the_bytes_they_cover(store: Arc<dyn ObjectStore>) {
    let acme = tenant("acme");
    let media = key("recordings/ranges");
    // Longer than one read chunk of the filesystem store (64 KiB), so a range spans several.
    let bytes = patterned_bytes(200 * 1024 + 7, 3);
    let total = bytes.len() as u64;
    put(&store, &acme, &media, body(&bytes, "video/webm")).await;
    let cases: [(&str, ByteRange, u64, u64); 9] = [
        ("the whole object", ByteRange::ALL, 0, total),
        ("a middle part", ByteRange::new(10, 70_000), 10, 70_000),
        ("one byte", ByteRange::new(5, 6), 5, 6),
        (
            "open-ended from the middle",
            ByteRange::from(100_000),
            100_000,
            total,
        ),
        (
            "open-ended from the last byte",
            ByteRange::from(total - 1),
            total - 1,
            total,
        ),
        (
            "an end past the object",
            ByteRange::new(150_000, total + 1000),
            150_000,
            total,
        ),
        ("a start at the end", ByteRange::from(total), total, total),
        (
            "a start past the end",
            ByteRange::new(total + 5, total + 10),
            total,
            total,
        ),
        ("an end before the start", ByteRange::new(20, 10), 10, 10),
    ];
    for (name, range, start, end) in cases {
        let read = read_range(&store, &acme, &media, range).await;
        let expected = bytes[start as usize..end as usize].to_vec();
        assert_eq!(
            read,
            Some((start, end, total, "video/webm".to_owned(), expected)),
            "{name}"
        );
    }
}

async fn ranges_of_missing_and_empty_objects(store: Arc<dyn ObjectStore>) {
    let acme = tenant("acme");
    let globex = tenant("globex");
    let empty = key("recordings/empty-range");
    assert_eq!(
        read_range(&store, &acme, &empty, ByteRange::ALL).await,
        None
    );
    put(&store, &acme, &empty, body(b"", "audio/ogg")).await;
    assert_eq!(
        read_range(&store, &acme, &empty, ByteRange::ALL).await,
        Some((0, 0, 0, "audio/ogg".to_owned(), Vec::new()))
    );
    assert_eq!(
        read_range(&store, &acme, &empty, ByteRange::new(3, 9)).await,
        Some((0, 0, 0, "audio/ogg".to_owned(), Vec::new()))
    );
    assert_eq!(
        read_range(&store, &globex, &empty, ByteRange::ALL).await,
        None,
        "another tenant's object is no object"
    );
    assert!(delete(&store, &acme, &empty).await);
    assert_eq!(
        read_range(&store, &acme, &empty, ByteRange::ALL).await,
        None
    );
}

async fn roundtrip_keeps_bytes_and_content_type(store: Arc<dyn ObjectStore>) {
    let acme = tenant("acme");
    let recording = key("recordings/01HZY3V5K8M2Q4R6S8T0V2W4X6");
    put(&store, &acme, &recording, body(b"OggS media", "audio/ogg")).await;
    assert_eq!(
        get(&store, &acme, &recording).await,
        Some(body(b"OggS media", "audio/ogg"))
    );

    // Parameters of the media type are kept as given.
    let with_codec = key("recordings/with-codec.opus");
    put(
        &store,
        &acme,
        &with_codec,
        body(b"opus", "audio/ogg; codecs=opus"),
    )
    .await;
    assert_eq!(
        get(&store, &acme, &with_codec).await,
        Some(body(b"opus", "audio/ogg; codecs=opus"))
    );
    // The first object is untouched by the second.
    assert_eq!(
        get(&store, &acme, &recording).await,
        Some(body(b"OggS media", "audio/ogg"))
    );
}

async fn replace_is_whole(store: Arc<dyn ObjectStore>) {
    let acme = tenant("acme");
    let object = key("recordings/replaced");
    let long = patterned_bytes(64 * 1024, 1);
    put(&store, &acme, &object, body(&long, "video/webm")).await;
    put(&store, &acme, &object, body(b"short", "audio/ogg")).await;
    // No tail of the longer old object, and the new content type.
    assert_eq!(
        get(&store, &acme, &object).await,
        Some(body(b"short", "audio/ogg"))
    );

    let longer = patterned_bytes(128 * 1024, 2);
    put(&store, &acme, &object, body(&longer, "video/mp4")).await;
    assert_eq!(
        get(&store, &acme, &object).await,
        Some(body(&longer, "video/mp4"))
    );
}

async fn missing_objects_read_as_none(store: Arc<dyn ObjectStore>) {
    let acme = tenant("acme");
    assert_eq!(
        get(&store, &acme, &key("recordings/never-stored")).await,
        None
    );

    put(
        &store,
        &acme,
        &key("recordings/stored"),
        body(b"x", "audio/ogg"),
    )
    .await;
    // Neighbours of a stored key are not it. Its parent `recordings` is left out: s3s-fs keeps
    // keys as paths and answers 500 for a key that is a directory there. The filesystem store's
    // own test covers keys that are prefixes of one another.
    for missing in [
        "recordings/store",
        "recordings/stored2",
        "Recordings/stored",
    ] {
        assert_eq!(
            get(&store, &acme, &key(missing)).await,
            None,
            "{missing} was never stored"
        );
    }
}

async fn delete_reports_existence_and_removes(store: Arc<dyn ObjectStore>) {
    let acme = tenant("acme");
    let object = key("recordings/deleted");
    let kept = key("recordings/kept");
    put(&store, &acme, &object, body(b"to delete", "audio/ogg")).await;
    put(&store, &acme, &kept, body(b"to keep", "audio/ogg")).await;

    assert!(
        delete(&store, &acme, &object).await,
        "the first delete finds the object"
    );
    assert_eq!(get(&store, &acme, &object).await, None);
    assert!(
        !delete(&store, &acme, &object).await,
        "a second delete finds nothing"
    );
    assert!(
        !delete(&store, &acme, &key("recordings/never-stored")).await,
        "deleting a key never stored finds nothing"
    );
    assert_eq!(
        get(&store, &acme, &kept).await,
        Some(body(b"to keep", "audio/ogg"))
    );

    // The key can be stored again after a delete.
    put(&store, &acme, &object, body(b"again", "audio/ogg")).await;
    assert_eq!(
        get(&store, &acme, &object).await,
        Some(body(b"again", "audio/ogg"))
    );
}

/// Tenant names chosen to break naive mappings: path segments (`..`, `.`), a `:`, case, and
/// names equal to another tenant's encoding in each adapter (`2e2e` is `..` in hex, `fyxa` in
/// base32).
const TRICKY_TENANTS: &[&str] = &[
    "..", ".", "...", "a:b", "a", "A", "ab", "a.b", "2e2e", "fyxa", "a@b+c", "acme",
];

async fn tenants_never_see_each_other(store: Arc<dyn ObjectStore>) {
    let shared_key = key("recordings/shared");
    for (index, name) in TRICKY_TENANTS.iter().enumerate() {
        put(
            &store,
            &tenant(name),
            &shared_key,
            body(name.as_bytes(), &format!("audio/x-tenant-{index}")),
        )
        .await;
    }
    for (index, name) in TRICKY_TENANTS.iter().enumerate() {
        assert_eq!(
            get(&store, &tenant(name), &shared_key).await,
            Some(body(name.as_bytes(), &format!("audio/x-tenant-{index}"))),
            "tenant {name} reads its own object"
        );
    }
    // A key only one tenant stored is missing for every other.
    put(
        &store,
        &tenant(".."),
        &key("only/dotdot"),
        body(b"..", "audio/ogg"),
    )
    .await;
    for name in TRICKY_TENANTS.iter().filter(|name| **name != "..") {
        assert_eq!(get(&store, &tenant(name), &key("only/dotdot")).await, None);
        assert!(!delete(&store, &tenant(name), &key("only/dotdot")).await);
    }
    // A delete by one tenant leaves the others' objects.
    assert!(delete(&store, &tenant("a:b"), &shared_key).await);
    assert_eq!(get(&store, &tenant("a:b"), &shared_key).await, None);
    for (index, name) in TRICKY_TENANTS.iter().enumerate() {
        if *name != "a:b" {
            assert_eq!(
                get(&store, &tenant(name), &shared_key).await,
                Some(body(name.as_bytes(), &format!("audio/x-tenant-{index}"))),
                "tenant {name} keeps its object after a:b deleted its own"
            );
        }
    }
    assert_eq!(
        get(&store, &tenant(".."), &key("only/dotdot")).await,
        Some(body(b"..", "audio/ogg"))
    );
}

async fn large_object_roundtrips_byte_exact(store: Arc<dyn ObjectStore>) {
    let acme = tenant("acme");
    let object = key("recordings/large.webm");
    let large = patterned_bytes(5 * 1024 * 1024 + 3, 7);
    put(&store, &acme, &object, body(&large, "video/webm")).await;
    let read = get(&store, &acme, &object)
        .await
        .expect("the object exists");
    assert_eq!(read.content_type, "video/webm");
    assert_eq!(read.bytes.len(), large.len());
    assert!(read.bytes == large, "the bytes read are the bytes stored");
}

async fn empty_object_roundtrips(store: Arc<dyn ObjectStore>) {
    let acme = tenant("acme");
    let object = key("recordings/empty");
    put(&store, &acme, &object, body(b"", "audio/ogg")).await;
    assert_eq!(
        get(&store, &acme, &object).await,
        Some(body(b"", "audio/ogg"))
    );
    assert!(
        delete(&store, &acme, &object).await,
        "an empty object exists"
    );
    assert_eq!(get(&store, &acme, &object).await, None);
}

async fn location_names_the_backend_and_the_object(store: Arc<dyn ObjectStore>) {
    // Whether the location is a path or URL, where a `.` or `..` segment would be resolved.
    let (scheme, is_path) = match store.backend() {
        "filesystem" => ("file:", true),
        "s3" => ("s3://", true),
        "memory" => ("memory:", false),
        other => panic!("unknown backend {other}"),
    };
    let mut locations = Vec::new();
    for name in TRICKY_TENANTS {
        for object in ["recordings/a", "recordings/b"] {
            let location = store.location(&tenant(name), &key(object));
            assert!(
                location.starts_with(scheme),
                "{location} starts with {scheme}"
            );
            assert!(
                !is_path
                    || !location
                        .split('/')
                        .any(|segment| segment == ".." || segment == "."),
                "{location} has no . or .. segment"
            );
            locations.push(location);
        }
    }
    let n_locations = locations.len();
    locations.sort();
    locations.dedup();
    assert_eq!(
        locations.len(),
        n_locations,
        "every object has its own location"
    );
    assert_eq!(
        store.location(&tenant("acme"), &key("recordings/a")),
        store.location(&tenant("acme"), &key("recordings/a")),
        "a location is deterministic"
    );
}

async fn ping_succeeds(store: Arc<dyn ObjectStore>) {
    store.ping().await.expect("the store answers");
}

// ---------------------------------------------------------------------------------------------
// The streaming put, for every adapter.

/// Lists what failed puts may have left in an adapter's backend: for the filesystem store its
/// temporary files, for S3 unfinished multipart uploads, for memory nothing. Each test that
/// takes one ends by asserting the list is empty.
type Leftovers = Box<dyn Fn() -> Vec<String> + Send + Sync>;

/// Waits (polling, with a deadline) until nothing is left behind: a cancelled put cleans up
/// from a task of its own.
async fn nothing_left_behind(leftovers: &Leftovers) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let left = leftovers();
        if left.is_empty() {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "failed puts left these behind: {left:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `bytes` cut into chunks whose sizes cycle through `sizes` (zeros included).
fn chunks_of(bytes: &[u8], sizes: &[usize]) -> VecDeque<Bytes> {
    let mut chunks = VecDeque::new();
    let mut offset = 0;
    for size in sizes.iter().cycle() {
        if offset == bytes.len() {
            break;
        }
        let end = (offset + size).min(bytes.len());
        chunks.push_back(Bytes::copy_from_slice(&bytes[offset..end]));
        offset = end;
    }
    chunks
}

/// A source giving `bytes` in chunks whose sizes cycle through `sizes`.
fn chunked(bytes: &[u8], sizes: &[usize]) -> ChunksSource {
    ChunksSource::new(chunks_of(bytes, sizes))
}

/// A source that gives its chunks and then fails, as an upload whose client goes away does.
struct FailingSource {
    chunks: VecDeque<Bytes>,
}

impl FailingSource {
    fn after(n_bytes: usize) -> Self {
        Self {
            chunks: chunks_of(&patterned_bytes(n_bytes, 21), &[MIB / 2 + 1]),
        }
    }
}

#[async_trait::async_trait]
impl ByteSource for FailingSource {
    async fn next_chunk(&mut self) -> Result<Option<Bytes>, SourceError> {
        match self.chunks.pop_front() {
            Some(chunk) => Ok(Some(chunk)),
            None => Err(SourceError::new("the client went away")),
        }
    }
}

/// A source that gives its chunks, says so, and then waits forever: a put of it can only end
/// by being cancelled.
struct StallingSource {
    chunks: VecDeque<Bytes>,
    stalled: Option<tokio::sync::oneshot::Sender<()>>,
}

#[async_trait::async_trait]
impl ByteSource for StallingSource {
    async fn next_chunk(&mut self) -> Result<Option<Bytes>, SourceError> {
        if let Some(chunk) = self.chunks.pop_front() {
            return Ok(Some(chunk));
        }
        if let Some(stalled) = self.stalled.take() {
            let _ = stalled.send(());
        }
        std::future::pending().await
    }
}

async fn many_small_chunks_make_one_object(store: Arc<dyn ObjectStore>, leftovers: Leftovers) {
    let acme = tenant("acme");
    let object = key("recordings/small-chunks");
    let bytes = patterned_bytes(200_003, 11);
    let mut source = chunked(&bytes, &[1, 0, 7, 4096, 3, 65_536, 0, 2]);
    let reported = store
        .put_stream(&acme, &object, "audio/ogg", &mut source, GENEROUS_LIMIT)
        .await
        .expect("put_stream succeeds");
    assert_eq!(reported, written(&bytes));
    let read = get(&store, &acme, &object)
        .await
        .expect("the object exists");
    assert_eq!(read.content_type, "audio/ogg");
    assert!(read.bytes == bytes, "the chunks are stored in order, whole");

    // A source with no chunk at all, or only empty ones, is an empty object.
    let empty = key("recordings/no-chunks");
    for mut source in [
        ChunksSource::new([]),
        ChunksSource::new([Bytes::new(), Bytes::new()]),
    ] {
        let reported = store
            .put_stream(&acme, &empty, "audio/ogg", &mut source, GENEROUS_LIMIT)
            .await
            .expect("put_stream succeeds");
        assert_eq!(reported, written(b""));
        assert_eq!(
            get(&store, &acme, &empty).await,
            Some(body(b"", "audio/ogg"))
        );
    }
    nothing_left_behind(&leftovers).await;
}

/// More than two of S3's 8 MiB parts, cut at no part boundary.
const SEVERAL_PARTS_BYTES: usize = 2 * 8 * MIB + 12_345;

async fn an_object_of_several_parts_roundtrips(store: Arc<dyn ObjectStore>, leftovers: Leftovers) {
    let acme = tenant("acme");
    let object = key("recordings/several-parts.webm");
    let bytes = patterned_bytes(SEVERAL_PARTS_BYTES, 13);
    let mut source = chunked(&bytes, &[100_003]);
    let reported = store
        .put_stream(&acme, &object, "video/webm", &mut source, 64 * MIB as u64)
        .await
        .expect("put_stream succeeds");
    assert_eq!(reported, written(&bytes));
    let read = get(&store, &acme, &object)
        .await
        .expect("the object exists");
    assert_eq!(read.content_type, "video/webm");
    assert_eq!(read.bytes.len(), bytes.len());
    assert!(read.bytes == bytes, "the bytes read are the bytes stored");

    // Exactly the limit is taken.
    let at_limit = key("recordings/at-limit");
    let bytes = patterned_bytes(8 * MIB, 14);
    let mut source = chunked(&bytes, &[MIB]);
    let reported = store
        .put_stream(
            &acme,
            &at_limit,
            "video/webm",
            &mut source,
            bytes.len() as u64,
        )
        .await
        .expect("a body of exactly the limit is stored");
    assert_eq!(reported, written(&bytes));
    nothing_left_behind(&leftovers).await;
}

/// Puts `before` under a key, then runs a put that must fail as `expected`, and checks the key
/// still holds `before` and a key never stored is still missing.
async fn failed_put_keeps_what_was_there(
    store: &Arc<dyn ObjectStore>,
    source: &mut dyn ByteSource,
    max_bytes: u64,
    expected: impl Fn(&PutError) -> bool,
) {
    let acme = tenant("acme");
    let kept = key("recordings/kept");
    let fresh = key("recordings/fresh");
    put(store, &acme, &kept, body(b"the old media", "audio/ogg")).await;
    let error = store
        .put_stream(&acme, &kept, "video/webm", source, max_bytes)
        .await
        .expect_err("the put fails");
    assert!(expected(&error), "unexpected error {error:?}");
    assert_eq!(
        get(store, &acme, &kept).await,
        Some(body(b"the old media", "audio/ogg")),
        "a failed put leaves the object it would have replaced"
    );
    assert!(delete(store, &acme, &kept).await);
    let _ = store
        .put_stream(
            &acme,
            &fresh,
            "video/webm",
            &mut FailingSource::after(0),
            max_bytes,
        )
        .await
        .expect_err("the put fails");
    assert_eq!(get(store, &acme, &fresh).await, None);
}

/// 1 GiB, generated a MiB at a time as it is pulled (the test never holds it whole): MiB `n` is
/// a fixed pattern rotated by `n` bytes. Hashed with ring's SHA-256, which is fast in test
/// builds too.
struct GibSource {
    pattern: Vec<u8>,
    n_given: usize,
    digest: ring::digest::Context,
}

const GIB: usize = 1 << 30;

fn gib_chunk(pattern: &[u8], index: usize) -> Vec<u8> {
    let rotation = index % pattern.len();
    [&pattern[rotation..], &pattern[..rotation]].concat()
}

fn hex_of(digest: ring::digest::Digest) -> String {
    digest
        .as_ref()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

#[async_trait::async_trait]
impl ByteSource for GibSource {
    async fn next_chunk(&mut self) -> Result<Option<Bytes>, SourceError> {
        if self.n_given == GIB {
            return Ok(None);
        }
        let chunk = gib_chunk(&self.pattern, self.n_given / MIB);
        self.digest.update(&chunk);
        self.n_given += MIB;
        Ok(Some(Bytes::from(chunk)))
    }
}

async fn a_one_gib_object_streams_in_and_out(store: Arc<dyn ObjectStore>, leftovers: Leftovers) {
    let acme = tenant("acme");
    let object = key("media/one-gib");
    let pattern = patterned_bytes(MIB, 3);
    let mut source = GibSource {
        pattern: pattern.clone(),
        n_given: 0,
        digest: ring::digest::Context::new(&ring::digest::SHA256),
    };
    let written = store
        .put_stream(&acme, &object, "video/mp4", &mut source, GIB as u64)
        .await
        .expect("1 GiB is stored");
    let expected = hex_of(source.digest.finish());
    assert_eq!(written.bytes, GIB as u64);
    assert_eq!(written.sha256, expected);
    // The last MiB, read as a range, is the last MiB given.
    let (start, end, total, _, tail) =
        read_range(&store, &acme, &object, ByteRange::from((GIB - MIB) as u64))
            .await
            .expect("the object exists");
    assert_eq!(
        (start, end, total),
        ((GIB - MIB) as u64, GIB as u64, GIB as u64)
    );
    assert!(tail == gib_chunk(&pattern, GIB / MIB - 1), "the last MiB");
    // The whole object streams back with the same hash.
    let mut whole = store
        .get_range(&acme, &object, ByteRange::ALL)
        .await
        .expect("read")
        .expect("the object exists");
    let mut digest = ring::digest::Context::new(&ring::digest::SHA256);
    let mut n_read = 0;
    while let Some(chunk) = whole.bytes.next_chunk().await.expect("a chunk") {
        n_read += chunk.len();
        digest.update(&chunk);
    }
    assert_eq!(n_read, GIB);
    assert_eq!(hex_of(digest.finish()), expected);
    assert!(delete(&store, &acme, &object).await);
    nothing_left_behind(&leftovers).await;
}

async fn a_stream_over_its_limit_stores_nothing(store: Arc<dyn ObjectStore>, leftovers: Leftovers) {
    // Within the first chunk past the limit: refused when it arrives.
    let mut source = chunked(&patterned_bytes(1001, 15), &[100]);
    failed_put_keeps_what_was_there(&store, &mut source, 1000, |error| {
        *error
            == PutError::TooLarge {
                limit: 1000,
                received: 1001,
            }
    })
    .await;
    // Past the first 8 MiB part, which S3 has already received by then.
    let mut source = chunked(&patterned_bytes(20 * MIB, 16), &[MIB]);
    failed_put_keeps_what_was_there(&store, &mut source, 12 * MIB as u64 + 1, |error| {
        *error
            == PutError::TooLarge {
                limit: 12 * MIB as u64 + 1,
                received: 13 * MIB as u64,
            }
    })
    .await;
    nothing_left_behind(&leftovers).await;
}

async fn a_source_that_fails_midway_stores_nothing(
    store: Arc<dyn ObjectStore>,
    leftovers: Leftovers,
) {
    let is_source_error =
        |error: &PutError| *error == PutError::Source(SourceError::new("the client went away"));
    for n_bytes in [1000, 10 * MIB, 17 * MIB] {
        failed_put_keeps_what_was_there(
            &store,
            &mut FailingSource::after(n_bytes),
            GENEROUS_LIMIT,
            is_source_error,
        )
        .await;
    }
    nothing_left_behind(&leftovers).await;
}

async fn a_put_cancelled_midway_stores_nothing(store: Arc<dyn ObjectStore>, leftovers: Leftovers) {
    let acme = tenant("acme");
    for n_bytes in [1000, 10 * MIB] {
        let object = key(&format!("recordings/cancelled-{n_bytes}"));
        let (stalled, mut stalled_rx) = tokio::sync::oneshot::channel();
        let mut source = StallingSource {
            chunks: chunks_of(&patterned_bytes(n_bytes, 17), &[MIB]),
            stalled: Some(stalled),
        };
        let put = store.put_stream(&acme, &object, "video/webm", &mut source, GENEROUS_LIMIT);
        tokio::select! {
            result = put => panic!("a put of a stalled source cannot end: {result:?}"),
            _ = &mut stalled_rx => {}
        }
        // The put future is dropped here, with every byte of the source handed over.
        nothing_left_behind(&leftovers).await;
        assert_eq!(get(&store, &acme, &object).await, None);
    }
}

// ---------------------------------------------------------------------------------------------
// Running the suite against every adapter.

/// A filesystem store under a fresh temporary directory, with the directory (which must
/// outlive the store).
fn filesystem_store() -> (FilesystemObjectStore, TempDir) {
    let directory = TempDir::new().expect("a temporary directory can be created");
    let store = FilesystemObjectStore::open(directory.path().join("objects"))
        .expect("the filesystem object store opens");
    (store, directory)
}

/// The settings for a bucket of its own on the S3 service named by
/// `SWITCHBOARD_TEST_S3_ENDPOINT`, `_ACCESS_KEY` and `_SECRET_KEY`
/// (`scripts/test-services start s3` starts one and prints the variables).
#[cfg(feature = "s3")]
fn s3_settings() -> switchboard_storage::s3::S3Settings {
    let variable = support::s3_variable;
    // The clock separates runs against a server that kept the buckets of an earlier one.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("the clock is after 1970")
        .as_nanos();
    let bucket = format!("{}-{nanos}", support::unique("sbtest"));
    let mut settings = switchboard_storage::s3::S3Settings::new(
        variable("SWITCHBOARD_TEST_S3_ENDPOINT"),
        bucket,
        variable("SWITCHBOARD_TEST_S3_ACCESS_KEY"),
        variable("SWITCHBOARD_TEST_S3_SECRET_KEY"),
    );
    settings.key_prefix = "switchboard/objects/".to_owned();
    settings
}

#[cfg(feature = "s3")]
async fn s3_store() -> switchboard_storage::s3::S3ObjectStore {
    switchboard_storage::s3::S3ObjectStore::connect(s3_settings())
        .await
        .expect("the S3 object store connects")
}

/// Temporary files under a filesystem store's root (every name starting with `.`).
fn temporary_files(root: &Path) -> Vec<String> {
    if !root.exists() {
        return Vec::new();
    }
    files_under(root)
        .into_iter()
        .filter(|file| {
            file.file_name()
                .and_then(|name| name.to_str())
                .is_some_and(|name| name.starts_with('.'))
        })
        .map(|file| file.display().to_string())
        .collect()
}

/// Unfinished multipart uploads on the s3s-fs server: it keeps each as a `.upload-<id>.json`
/// file, its parts as `.upload_id-<id>.part-<n>` and its media type as
/// `.bucket-….upload-<id>.metadata.json`, all in its data directory.
#[cfg(feature = "s3")]
fn unfinished_s3_uploads() -> Vec<String> {
    let directory = support::s3_variable("SWITCHBOARD_TEST_S3_DATA_DIR");
    std::fs::read_dir(&directory)
        .unwrap_or_else(|error| panic!("s3s-fs's directory {directory} is readable: {error}"))
        .map(|entry| entry.expect("a directory entry").file_name())
        .filter_map(|name| name.to_str().map(str::to_owned))
        .filter(|name| name.starts_with(".upload") || name.contains(".upload-"))
        .collect()
}

/// Unfinished multipart uploads on the s3s-fs server that were not there when it was called
/// (a server kept from an earlier run may hold some).
#[cfg(feature = "s3")]
fn new_unfinished_s3_uploads() -> Leftovers {
    let earlier = unfinished_s3_uploads();
    Box::new(move || {
        unfinished_s3_uploads()
            .into_iter()
            .filter(|name| !earlier.contains(name))
            .collect()
    })
}

/// The streaming tests that start multipart uploads on S3 run one at a time, so that one test's
/// upload in progress is not taken for another's leftover.
#[cfg(feature = "s3")]
static S3_MULTIPART: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

macro_rules! object_store {
    (contract: [$($test:ident),* $(,)?], streaming: [$($stream_test:ident),* $(,)?] $(,)?) => {
        mod memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    let store = switchboard_storage::MemoryObjectStore::new();
                    super::$test(std::sync::Arc::new(store)).await;
                }
            )*
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $stream_test() {
                    let store = switchboard_storage::MemoryObjectStore::new();
                    super::$stream_test(std::sync::Arc::new(store), Box::new(Vec::new)).await;
                }
            )*
        }

        mod filesystem {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    let (store, _directory) = super::filesystem_store();
                    super::$test(std::sync::Arc::new(store)).await;
                }
            )*
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $stream_test() {
                    let (store, _directory) = super::filesystem_store();
                    let root = store.root().to_path_buf();
                    super::$stream_test(
                        std::sync::Arc::new(store),
                        Box::new(move || super::temporary_files(&root)),
                    )
                    .await;
                }
            )*
        }

        #[cfg(feature = "s3")]
        mod s3 {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    let store = super::s3_store().await;
                    super::$test(std::sync::Arc::new(store)).await;
                }
            )*
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $stream_test() {
                    let _alone = super::S3_MULTIPART.lock().await;
                    let store = super::s3_store().await;
                    super::$stream_test(
                        std::sync::Arc::new(store),
                        super::new_unfinished_s3_uploads(),
                    )
                    .await;
                }
            )*
        }
    };
}

object_store!(
    contract: [
        roundtrip_keeps_bytes_and_content_type,
        replace_is_whole,
        missing_objects_read_as_none,
        delete_reports_existence_and_removes,
        tenants_never_see_each_other,
        large_object_roundtrips_byte_exact,
        empty_object_roundtrips,
        location_names_the_backend_and_the_object,
        ping_succeeds,
        ranges_stream_the_bytes_they_cover,
        ranges_of_missing_and_empty_objects,
    ],
    streaming: [
        many_small_chunks_make_one_object,
        an_object_of_several_parts_roundtrips,
        a_stream_over_its_limit_stores_nothing,
        a_source_that_fails_midway_stores_nothing,
        a_put_cancelled_midway_stores_nothing,
        a_one_gib_object_streams_in_and_out,
    ],
);

// ---------------------------------------------------------------------------------------------
// The filesystem store only.

/// Every file under `directory`, recursively.
fn files_under(directory: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut pending = vec![directory.to_path_buf()];
    while let Some(next) = pending.pop() {
        for entry in std::fs::read_dir(&next).expect("the directory is readable") {
            let path = entry.expect("the directory entry is readable").path();
            if path.is_dir() {
                pending.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// The file a `file:` location names.
fn file_of(store: &FilesystemObjectStore, location: &str) -> PathBuf {
    store.root().join(
        location
            .strip_prefix("file:")
            .expect("a filesystem location starts with file:"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filesystem_objects_survive_a_reopen() {
    let (store, directory) = filesystem_store();
    let root = store.root().to_path_buf();
    let store: Arc<dyn ObjectStore> = Arc::new(store);
    let large = patterned_bytes(300_000, 3);
    put(
        &store,
        &tenant(".."),
        &key("recordings/kept"),
        body(&large, "video/webm"),
    )
    .await;
    put(
        &store,
        &tenant("a:b"),
        &key("recordings/gone"),
        body(b"gone", "audio/ogg"),
    )
    .await;
    assert!(delete(&store, &tenant("a:b"), &key("recordings/gone")).await);
    drop(store);

    let reopened: Arc<dyn ObjectStore> =
        Arc::new(FilesystemObjectStore::open(&root).expect("the store reopens"));
    assert_eq!(
        get(&reopened, &tenant(".."), &key("recordings/kept")).await,
        Some(body(&large, "video/webm"))
    );
    assert_eq!(
        get(&reopened, &tenant("a:b"), &key("recordings/gone")).await,
        None
    );
    assert!(delete(&reopened, &tenant(".."), &key("recordings/kept")).await);
    drop(directory);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filesystem_writes_nothing_outside_the_root() {
    let (store, directory) = filesystem_store();
    let concrete = store.clone();
    let store: Arc<dyn ObjectStore> = Arc::new(store);
    let keys = ["recordings/a", "a", "a/b", "a/b/c", ".hidden", "-x_y.z"];
    for name in TRICKY_TENANTS {
        for object in keys {
            put(
                &store,
                &tenant(name),
                &key(object),
                body(object.as_bytes(), "audio/ogg"),
            )
            .await;
        }
    }
    store.ping().await.expect("the store answers");

    let files = files_under(directory.path());
    let root = concrete.root();
    for file in &files {
        assert!(
            file.starts_with(root),
            "{} is under the root",
            file.display()
        );
    }
    // One file per object: no temporary or probe file is left behind.
    let mut expected: Vec<PathBuf> = TRICKY_TENANTS
        .iter()
        .flat_map(|name| {
            keys.iter()
                .map(|object| file_of(&concrete, &concrete.location(&tenant(name), &key(object))))
        })
        .collect();
    expected.sort();
    assert_eq!(files, expected);

    // A key that is a prefix of another is its own object, and each location names its file.
    for name in TRICKY_TENANTS {
        for object in keys {
            assert_eq!(
                get(&store, &tenant(name), &key(object)).await,
                Some(body(object.as_bytes(), "audio/ogg"))
            );
        }
    }

    for name in TRICKY_TENANTS {
        for object in keys {
            assert!(delete(&store, &tenant(name), &key(object)).await);
        }
    }
    assert_eq!(files_under(directory.path()), Vec::<PathBuf>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filesystem_reports_a_damaged_object_as_corrupt() {
    let (store, _directory) = filesystem_store();
    let concrete = store.clone();
    let store: Arc<dyn ObjectStore> = Arc::new(store);
    let acme = tenant("acme");
    let object = key("recordings/damaged");
    put(&store, &acme, &object, body(b"media", "audio/ogg")).await;
    let file = file_of(&concrete, &concrete.location(&acme, &object));

    std::fs::write(&file, b"not an object file").expect("the object file can be overwritten");
    assert!(matches!(
        store.get_object(&acme, &object).await,
        Err(StoreError::Corrupt(_))
    ));

    // A file holding another key (a file copied or renamed by hand) is not this object.
    put(
        &store,
        &acme,
        &key("recordings/other"),
        body(b"other", "audio/ogg"),
    )
    .await;
    let other = file_of(
        &concrete,
        &concrete.location(&acme, &key("recordings/other")),
    );
    std::fs::copy(&other, &file).expect("the object file can be copied");
    assert!(matches!(
        store.get_object(&acme, &object).await,
        Err(StoreError::Corrupt(_))
    ));

    // A truncated header.
    let valid = std::fs::read(&other).expect("the object file is readable");
    std::fs::write(&file, &valid[..10]).expect("the object file can be overwritten");
    assert!(matches!(
        store.get_object(&acme, &object).await,
        Err(StoreError::Corrupt(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filesystem_ping_and_open_fail_without_a_writable_directory() {
    let (store, directory) = filesystem_store();
    store.ping().await.expect("the store answers");

    std::fs::remove_dir(store.root()).expect("the empty root can be removed");
    std::fs::write(store.root(), b"a file, not a directory").expect("a file can be written");
    assert!(matches!(
        store.ping().await,
        Err(StoreError::Unavailable(_))
    ));
    assert!(matches!(
        store
            .put_stream(
                &tenant("acme"),
                &key("recordings/x"),
                "audio/ogg",
                &mut ChunksSource::split(b"x".to_vec(), 0),
                GENEROUS_LIMIT,
            )
            .await,
        Err(PutError::Store(StoreError::Unavailable(_)))
    ));
    assert!(matches!(
        FilesystemObjectStore::open(store.root()),
        Err(StoreError::Unavailable(_))
    ));
    drop(directory);
}

// ---------------------------------------------------------------------------------------------
// The S3 store only.

#[cfg(feature = "s3")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_connects_to_a_bucket_that_exists() {
    let settings = s3_settings();
    let first: Arc<dyn ObjectStore> = Arc::new(
        switchboard_storage::s3::S3ObjectStore::connect(settings.clone())
            .await
            .expect("the first connect creates the bucket"),
    );
    put(
        &first,
        &tenant("acme"),
        &key("recordings/x"),
        body(b"x", "audio/ogg"),
    )
    .await;
    let second: Arc<dyn ObjectStore> = Arc::new(
        switchboard_storage::s3::S3ObjectStore::connect(settings)
            .await
            .expect("a second connect finds the bucket"),
    );
    assert_eq!(
        get(&second, &tenant("acme"), &key("recordings/x")).await,
        Some(body(b"x", "audio/ogg")),
        "the second connect kept the bucket's objects"
    );
}

#[cfg(feature = "s3")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_missing_bucket_is_an_error_not_an_empty_store() {
    // `new` does not create the bucket.
    let store =
        switchboard_storage::s3::S3ObjectStore::new(s3_settings()).expect("the settings are valid");
    let acme = tenant("acme");
    let object = key("recordings/x");
    let Err(StoreError::Unavailable(message)) = store.get_object(&acme, &object).await else {
        panic!("reading from a missing bucket is unavailable");
    };
    assert!(
        message.contains("404") && message.contains("NoSuchBucket"),
        "the error names the status and the S3 error code: {message}"
    );
    assert!(matches!(
        store.delete_object(&acme, &object).await,
        Err(StoreError::Unavailable(_))
    ));
    assert!(matches!(
        store.ping().await,
        Err(StoreError::Unavailable(_))
    ));
    // No write is tried: s3s-fs makes the bucket's directory for a PUT into a missing bucket,
    // where S3 answers NoSuchBucket.
}

#[cfg(feature = "s3")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_wrong_credentials_are_an_error_naming_the_code() {
    let settings = s3_settings();
    let good = switchboard_storage::s3::S3ObjectStore::connect(settings.clone())
        .await
        .expect("the S3 object store connects");
    let good: Arc<dyn ObjectStore> = Arc::new(good);
    put(
        &good,
        &tenant("acme"),
        &key("recordings/x"),
        body(b"x", "audio/ogg"),
    )
    .await;

    let mut wrong = settings;
    wrong.secret_key = format!("{}-wrong", wrong.secret_key);
    let store = switchboard_storage::s3::S3ObjectStore::new(wrong).expect("the settings are valid");
    let Err(StoreError::Unavailable(message)) = store
        .get_object(&tenant("acme"), &key("recordings/x"))
        .await
    else {
        panic!("a read with a wrong secret is unavailable");
    };
    assert!(
        message.contains("403") && message.contains("SignatureDoesNotMatch"),
        "the error names the status and the S3 error code: {message}"
    );
    assert!(matches!(
        store.ping().await,
        Err(StoreError::Unavailable(_))
    ));
}

#[cfg(feature = "s3")]
#[test]
fn s3_settings_are_checked_and_the_secret_is_not_logged() {
    use switchboard_storage::s3::{S3ObjectStore, S3Settings};
    let valid = || S3Settings::new("http://127.0.0.1:9", "bucket", "key", "the-secret");
    assert!(S3ObjectStore::new(valid()).is_ok());
    assert!(!format!("{:?}", valid()).contains("the-secret"));

    for prefix in ["../", "a/../", "./", "/a/", "a//b/"] {
        let mut settings = valid();
        settings.key_prefix = prefix.to_owned();
        assert!(
            S3ObjectStore::new(settings).is_err(),
            "the key prefix {prefix:?} is refused"
        );
    }
    let mut settings = valid();
    settings.endpoint = "not a url".to_owned();
    assert!(S3ObjectStore::new(settings).is_err());
    let mut settings = valid();
    settings.region = "<LocationConstraint>".to_owned();
    assert!(S3ObjectStore::new(settings).is_err());
}

/// An `https://` endpoint gets a TLS client (OpenSSL, the system's roots): building the
/// store needs no network, and a TLS handshake with a plain-HTTP server fails cleanly as
/// unavailable rather than hanging or panicking.
#[cfg(feature = "s3")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_https_endpoints_get_a_tls_client() {
    use switchboard_engine::recording::ObjectStore;
    let mut settings = s3_settings();
    settings.endpoint = settings.endpoint.replacen("http://", "https://", 1);
    settings.request_timeout = std::time::Duration::from_secs(5);
    let store = switchboard_storage::s3::S3ObjectStore::new(settings)
        .expect("an https endpoint builds a client");
    let error = store
        .ping()
        .await
        .expect_err("the server speaks plain HTTP");
    assert!(
        matches!(error, switchboard_engine::StoreError::Unavailable(_)),
        "{error:?}"
    );
}

/// A body longer than one part goes up as a multipart upload of 8 MiB parts, one that fits in
/// a part as one PutObject: S3 (and s3s-fs) give a multipart object the ETag `<md5>-<parts>`.
#[cfg(feature = "s3")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_a_long_object_is_stored_in_parts_and_a_short_one_whole() {
    let _alone = S3_MULTIPART.lock().await;
    let leftovers = new_unfinished_s3_uploads();
    let settings = s3_settings();
    let store: Arc<dyn ObjectStore> = Arc::new(
        switchboard_storage::s3::S3ObjectStore::connect(settings.clone())
            .await
            .expect("the S3 object store connects"),
    );
    assert_eq!(switchboard_storage::s3::PART_BYTES, 8 * MIB);
    let acme = tenant("acme");
    let http = reqwest::Client::new();
    let bucket = rusty_s3::Bucket::new(
        settings.endpoint.parse().expect("the endpoint is a URL"),
        rusty_s3::UrlStyle::Path,
        settings.bucket.clone(),
        settings.region.clone(),
    )
    .expect("the bucket settings are valid");
    let credentials = rusty_s3::Credentials::new(&settings.access_key, &settings.secret_key);
    for (name, n_bytes, etag_suffix) in [
        ("recordings/long", SEVERAL_PARTS_BYTES, Some("-3")),
        ("recordings/one-part", 8 * MIB, None),
        ("recordings/short", 1000, None),
    ] {
        let object = key(name);
        put(
            &store,
            &acme,
            &object,
            body(&patterned_bytes(n_bytes, 19), "video/webm"),
        )
        .await;
        let location = store.location(&acme, &object);
        let object_name = location
            .strip_prefix(&format!("s3://{}/", settings.bucket))
            .expect("the location names the bucket");
        let url = rusty_s3::S3Action::sign(
            &bucket.head_object(Some(&credentials), object_name),
            Duration::from_secs(60),
        );
        let head = http.head(url).send().await.expect("s3s-fs answers");
        assert!(head.status().is_success(), "{name}: {}", head.status());
        assert_eq!(
            head.headers()["content-length"].to_str().expect("ascii"),
            n_bytes.to_string()
        );
        let etag = head.headers()["etag"]
            .to_str()
            .expect("ascii")
            .trim_matches('"');
        match etag_suffix {
            Some(suffix) => assert!(etag.ends_with(suffix), "{name}: ETag {etag}"),
            None => assert!(!etag.contains('-'), "{name}: ETag {etag}"),
        }
    }
    assert_eq!(leftovers(), Vec::<String>::new());
}
