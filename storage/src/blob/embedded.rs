//! [`FilesystemObjectStore`]: the embedded default [`ObjectStore`], keeping each object (a
//! call recording's media) as one file under a root directory, so a single-node deployment
//! needs no object server.
//!
//! # Layout
//!
//! ```text
//! <root>/<tenant>/<shard>/<name>
//! ```
//!
//! - `<tenant>` is the tenant id's bytes in lowercase, unpadded base32 (RFC 4648). It is
//!   injective, uses only `a-z` and `2-7` (so a tenant named `..` or `a:b` is a plain name, and
//!   case-insensitive filesystems cannot fold two tenants together), and the longest tenant id
//!   (128 bytes) gives 205 characters, within the usual 255-byte limit on a file name, which
//!   lowercase hex (256 characters) would exceed.
//! - `<name>` is the lowercase hex SHA-256 of the object key, and `<shard>` its first two
//!   characters (so no directory grows past a few thousand entries). Hashing gives every key a
//!   short, case-proof file name, even a key whose single segment is longer than a file name
//!   may be, and keys that are prefixes of one another (`a` and `a/b`) never collide as a file
//!   and a directory. Nothing of the key reaches the path but hex digits, so no key can leave
//!   its tenant's directory.
//!
//! # File format (version 1)
//!
//! `SBOBJ` then the format version byte `1`; the key's length (u16, big-endian) and bytes; the
//! content type's length (u16, big-endian) and bytes; then the object's bytes. The key is kept
//! so that a read checks the file is the one it asked for, and the content type lives in the
//! same file as the bytes so that a replace swaps both at once.
//!
//! # Durability
//!
//! A write streams into a temporary file (`.tmp-…`, a name no object file can have) in the
//! object's own directory: the caller's task reads the source and hands each chunk to a writer
//! on tokio's blocking pool through a channel of `CHUNKS_IN_FLIGHT` chunks, and the writer
//! appends it and feeds the SHA-256, so a put holds a few chunks in memory whatever the size
//! of the object. Once the source has ended within its limit, the file is fsynced, renamed over
//! the object file, and then the object's directory and its parents up to the root are
//! fsynced: a reader sees the old object or the new, never a mix, and once `put_stream` returns
//! the object survives a crash. If the source fails, passes its limit or the put is cancelled,
//! the writer removes the temporary file (a failed put waits for that before it returns). A
//! crash during a write can leave a temporary file behind; it is never read. A delete fsyncs
//! the directory it removed the file from. All file I/O runs on tokio's blocking pool.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use bytes::Bytes;
use sha2::{Digest, Sha256};
use switchboard_engine::blob::{
    ByteRange, ByteSource, ObjectBody, ObjectKey, ObjectRange, ObjectStore, WrittenObject,
};
use switchboard_engine::ids::TenantId;
use switchboard_engine::{PutError, StoreError};
use tokio::sync::mpsc;

use crate::blob::stream::{Checksum, Intake};

mod range;

/// What every object file starts with: a tag, then the format version.
const MAGIC: &[u8; 6] = b"SBOBJ\x01";

/// The alphabet of the tenant directory names (RFC 4648 base32, lowercased).
const BASE32_ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";

/// How many chunks of a streamed put may wait for the writer. With hyper's bodies a chunk is at
/// most its read buffer (about 400 KiB), so a put holds a few MiB at most, whatever the size of
/// the object.
const CHUNKS_IN_FLIGHT: usize = 4;

/// Numbers temporary and probe files, so concurrent writers in one process never share one
/// (the process id in the name separates processes).
static NEXT_TEMPORARY: AtomicU64 = AtomicU64::new(0);

/// Objects as files under a root directory; see the module documentation for the layout, the
/// file format and the durability guarantees.
#[derive(Debug, Clone)]
pub struct FilesystemObjectStore {
    root: PathBuf,
}

/// Where one object lives, relative to the root.
struct ObjectPath {
    tenant: String,
    shard: String,
    name: String,
}

impl ObjectPath {
    fn new(tenant_id: &TenantId, key: &ObjectKey) -> Self {
        let name = hex::encode(Sha256::digest(key.as_str().as_bytes()));
        Self {
            tenant: tenant_directory(tenant_id),
            shard: name[..2].to_owned(),
            name,
        }
    }

    fn relative(&self) -> String {
        format!("{}/{}/{}", self.tenant, self.shard, self.name)
    }
}

/// The directory name of a tenant: its bytes in lowercase, unpadded base32. Unpadded base32 is
/// injective: the length of the name gives the length of the id, and equal lengths decode the
/// same way.
fn tenant_directory(tenant_id: &TenantId) -> String {
    let bytes = tenant_id.as_str().as_bytes();
    let mut name = String::with_capacity((bytes.len() * 8).div_ceil(5));
    // At most 4 bits wait in `pending` between bytes, so 12 bits of it are ever used.
    let mut pending: u16 = 0;
    let mut n_pending_bits = 0;
    for &byte in bytes {
        pending = (pending << 8) | u16::from(byte);
        n_pending_bits += 8;
        while n_pending_bits >= 5 {
            n_pending_bits -= 5;
            name.push(char::from(
                BASE32_ALPHABET[usize::from((pending >> n_pending_bits) & 0x1f)],
            ));
        }
        pending &= (1 << n_pending_bits) - 1;
    }
    if n_pending_bits > 0 {
        name.push(char::from(
            BASE32_ALPHABET[usize::from((pending << (5 - n_pending_bits)) & 0x1f)],
        ));
    }
    name
}

fn unavailable(action: &str, path: &Path, error: &io::Error) -> StoreError {
    StoreError::Unavailable(format!("{action} {}: {error}", path.display()))
}

fn corrupt(path: &Path, reason: &str) -> StoreError {
    StoreError::Corrupt(format!("object file {}: {reason}", path.display()))
}

/// Makes a directory's entries (a rename, a new or removed file) durable.
fn sync_directory(path: &Path) -> Result<(), StoreError> {
    File::open(path)
        .and_then(|directory| directory.sync_all())
        .map_err(|error| unavailable("could not fsync the directory", path, &error))
}

/// A name for a temporary file, unique within the process and across processes.
fn temporary_name(purpose: &str) -> String {
    format!(
        ".{purpose}-{}-{}",
        std::process::id(),
        NEXT_TEMPORARY.fetch_add(1, Ordering::Relaxed)
    )
}

/// The header of an object file.
fn encode_header(key: &ObjectKey, content_type: &str) -> Result<Vec<u8>, StoreError> {
    let key_length = u16::try_from(key.as_str().len())
        .map_err(|_| StoreError::Unavailable("the object key is too long to store".to_owned()))?;
    let content_type_length = u16::try_from(content_type.len())
        .map_err(|_| StoreError::Unavailable("the content type is too long to store".to_owned()))?;
    let mut header = Vec::with_capacity(MAGIC.len() + 4 + key.as_str().len() + content_type.len());
    header.extend_from_slice(MAGIC);
    header.extend_from_slice(&key_length.to_be_bytes());
    header.extend_from_slice(key.as_str().as_bytes());
    header.extend_from_slice(&content_type_length.to_be_bytes());
    header.extend_from_slice(content_type.as_bytes());
    Ok(header)
}

/// Reads a length-prefixed field at `offset`; returns it and the offset after it.
fn read_field<'file>(
    file: &'file [u8],
    offset: usize,
    path: &Path,
) -> Result<(&'file [u8], usize), StoreError> {
    let length_bytes = file
        .get(offset..offset + 2)
        .ok_or_else(|| corrupt(path, "the header is truncated"))?;
    let length = usize::from(u16::from_be_bytes([length_bytes[0], length_bytes[1]]));
    let start = offset + 2;
    let field = file
        .get(start..start + length)
        .ok_or_else(|| corrupt(path, "the header is truncated"))?;
    Ok((field, start + length))
}

/// Decodes an object file read whole, checking it holds `key`.
fn decode_object(
    mut file: Vec<u8>,
    key: &ObjectKey,
    path: &Path,
) -> Result<ObjectBody, StoreError> {
    if !file.starts_with(MAGIC) {
        return Err(corrupt(
            path,
            "not an object file of format version 1 (bad magic bytes)",
        ));
    }
    let (stored_key, offset) = read_field(&file, MAGIC.len(), path)?;
    if stored_key != key.as_str().as_bytes() {
        return Err(corrupt(path, "the file holds another key"));
    }
    let (content_type, offset) = read_field(&file, offset, path)?;
    let content_type = std::str::from_utf8(content_type)
        .map_err(|_| corrupt(path, "the content type is not UTF-8"))?
        .to_owned();
    file.drain(..offset);
    Ok(ObjectBody {
        bytes: file,
        content_type,
    })
}

/// What the reading side of a streamed put hands the writing side.
enum ToWriter {
    /// The next bytes of the object.
    Chunk(Bytes),
    /// Every byte was handed over: make the object durable and visible.
    Commit,
}

/// Why the writing side of a streamed put stored nothing.
enum WriteFailure {
    /// The file system failed.
    Io(io::Error),
    /// The reading side went away without a commit (the source failed, went past its limit,
    /// or the put was cancelled).
    Abandoned,
}

impl From<io::Error> for WriteFailure {
    fn from(error: io::Error) -> Self {
        WriteFailure::Io(error)
    }
}

/// Writes `header` and then the chunks that arrive on `chunks` to a new temporary file in
/// `directory`, hashing them as they go, and on [`ToWriter::Commit`] fsyncs it and renames it
/// to `target`. The temporary file is removed if anything fails or the sender goes away first.
fn write_streamed(
    directory: &Path,
    target: &Path,
    header: &[u8],
    chunks: &mut mpsc::Receiver<ToWriter>,
) -> Result<WrittenObject, StoreError> {
    let temporary = directory.join(temporary_name("tmp"));
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&temporary)
        .map_err(|error| unavailable("could not create the object", target, &error))?;
    let mut write = || -> Result<WrittenObject, WriteFailure> {
        file.write_all(header)?;
        let mut checksum = Checksum::default();
        loop {
            match chunks.blocking_recv() {
                Some(ToWriter::Chunk(chunk)) => {
                    file.write_all(&chunk)?;
                    checksum.update(&chunk);
                }
                Some(ToWriter::Commit) => break,
                None => return Err(WriteFailure::Abandoned),
            }
        }
        file.sync_all()?;
        fs::rename(&temporary, target)?;
        Ok(checksum.finish())
    };
    let written = write();
    drop(file);
    written.map_err(|failure| {
        // Best effort: a leftover is never read.
        let _ = fs::remove_file(&temporary);
        match failure {
            WriteFailure::Io(error) => unavailable("could not write the object", target, &error),
            WriteFailure::Abandoned => {
                StoreError::Unavailable("the object's bytes stopped before their end".to_owned())
            }
        }
    })
}

/// Whether the object root is a directory this process can read.
fn check_root(root: &Path) -> Result<(), StoreError> {
    let metadata = fs::metadata(root)
        .map_err(|error| unavailable("could not read the object root", root, &error))?;
    if !metadata.is_dir() {
        return Err(StoreError::Unavailable(format!(
            "the object root {} is not a directory",
            root.display()
        )));
    }
    Ok(())
}

impl FilesystemObjectStore {
    /// A store under `root`, created (with its parents) if missing. The server passes
    /// `<data_dir>/objects`.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] if `root` cannot be created or is not a directory.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self, StoreError> {
        let root = root.into();
        fs::create_dir_all(&root)
            .map_err(|error| unavailable("could not create the object root", &root, &error))?;
        check_root(&root)?;
        // The root may have just been created: make its entry in the parent durable too.
        if let Some(parent) = root
            .parent()
            .filter(|parent| !parent.as_os_str().is_empty())
        {
            sync_directory(parent)?;
        }
        Ok(Self { root })
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Runs file I/O on tokio's blocking pool. If the caller stops waiting, the work still runs
    /// to completion, so a write is never left half done by a cancelled request.
    async fn run_blocking<Output, Work>(work: Work) -> Result<Output, StoreError>
    where
        Output: Send + 'static,
        Work: FnOnce() -> Result<Output, StoreError> + Send + 'static,
    {
        tokio::task::spawn_blocking(work)
            .await
            .map_err(|error| StoreError::Unavailable(format!("object file task failed: {error}")))?
    }
}

#[async_trait]
impl ObjectStore for FilesystemObjectStore {
    fn backend(&self) -> &'static str {
        "filesystem"
    }

    fn location(&self, tenant_id: &TenantId, key: &ObjectKey) -> String {
        format!("file:{}", ObjectPath::new(tenant_id, key).relative())
    }

    async fn put_stream(
        &self,
        tenant_id: &TenantId,
        key: &ObjectKey,
        content_type: &str,
        source: &mut dyn ByteSource,
        max_bytes: u64,
    ) -> Result<WrittenObject, PutError> {
        let object_path = ObjectPath::new(tenant_id, key);
        let header = encode_header(key, content_type)?;
        let root = self.root.clone();
        // The file is written on the blocking pool while this task reads the source: at most
        // `CHUNKS_IN_FLIGHT` chunks wait between the two, which is all the memory a put holds.
        let (to_writer, mut chunks) = mpsc::channel(CHUNKS_IN_FLIGHT);
        // Spawned now, not when awaited: the writer must drain the channel while this task
        // fills it.
        let writer = tokio::task::spawn_blocking(move || -> Result<WrittenObject, StoreError> {
            let tenant_directory = root.join(&object_path.tenant);
            let shard_directory = tenant_directory.join(&object_path.shard);
            fs::create_dir_all(&shard_directory).map_err(|error| {
                unavailable(
                    "could not create the object directory",
                    &shard_directory,
                    &error,
                )
            })?;
            let target = shard_directory.join(&object_path.name);
            let written = write_streamed(&shard_directory, &target, &header, &mut chunks)?;
            // The rename, and the directories it may have needed, are durable only once every
            // directory up to the root is fsynced.
            sync_directory(&shard_directory)?;
            sync_directory(&tenant_directory)?;
            sync_directory(&root)?;
            Ok(written)
        });
        let mut intake = Intake::new(source, max_bytes);
        let read: Result<(), PutError> = async {
            while let Some(chunk) = intake.next_chunk().await? {
                if to_writer.send(ToWriter::Chunk(chunk)).await.is_err() {
                    // The writer failed; its error says why.
                    return Ok(());
                }
            }
            let _ = to_writer.send(ToWriter::Commit).await;
            Ok(())
        }
        .await;
        // Without a commit, closing the channel makes the writer remove its temporary file;
        // waiting for it means nothing of a failed put is left once this returns.
        drop(to_writer);
        let written = writer
            .await
            .map_err(|error| StoreError::Unavailable(format!("object file task failed: {error}")));
        read?;
        Ok(written??)
    }

    async fn get_object(
        &self,
        tenant_id: &TenantId,
        key: &ObjectKey,
    ) -> Result<Option<ObjectBody>, StoreError> {
        let path = self.root.join(ObjectPath::new(tenant_id, key).relative());
        let key = key.clone();
        Self::run_blocking(move || {
            // Once open, the file is the object as it was: a concurrent replace renames a new
            // file over the name and leaves this one whole.
            let mut file = match File::open(&path) {
                Ok(file) => file,
                Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
                Err(error) => return Err(unavailable("could not open the object", &path, &error)),
            };
            let length = file
                .metadata()
                .map_err(|error| unavailable("could not read the object", &path, &error))?
                .len();
            let mut contents = Vec::with_capacity(usize::try_from(length).unwrap_or_default());
            file.read_to_end(&mut contents)
                .map_err(|error| unavailable("could not read the object", &path, &error))?;
            decode_object(contents, &key, &path).map(Some)
        })
        .await
    }

    async fn get_range(
        &self,
        tenant_id: &TenantId,
        key: &ObjectKey,
        range: ByteRange,
    ) -> Result<Option<ObjectRange>, StoreError> {
        let path = self.root.join(ObjectPath::new(tenant_id, key).relative());
        let key = key.clone();
        Self::run_blocking(move || range::open_range(path, &key, range)).await
    }

    async fn delete_object(
        &self,
        tenant_id: &TenantId,
        key: &ObjectKey,
    ) -> Result<bool, StoreError> {
        let object_path = ObjectPath::new(tenant_id, key);
        let root = self.root.clone();
        Self::run_blocking(move || {
            let shard_directory = root.join(&object_path.tenant).join(&object_path.shard);
            let path = shard_directory.join(&object_path.name);
            match fs::remove_file(&path) {
                Ok(()) => {
                    sync_directory(&shard_directory)?;
                    Ok(true)
                }
                Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(false),
                Err(error) => Err(unavailable("could not delete the object", &path, &error)),
            }
        })
        .await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        let root = self.root.clone();
        Self::run_blocking(move || {
            check_root(&root)?;
            // Permission bits do not say whether this process may write (root ignores them, a
            // read-only mount keeps them): create and remove a probe file instead.
            let probe = root.join(temporary_name("ping"));
            OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&probe)
                .map_err(|error| unavailable("the object root is not writable", &root, &error))?;
            fs::remove_file(&probe)
                .map_err(|error| unavailable("could not remove the probe file", &probe, &error))
        })
        .await
    }
}

#[cfg(test)]
mod tests;
