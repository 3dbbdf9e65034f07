//! Range reads of the filesystem object store: the header is read and checked, then the file
//! is read from the range's start one chunk at a time on the blocking pool, so a read holds at
//! most one chunk in memory whatever the range's size.
//!
//! The open file is the object as it was when the read began: a concurrent replace renames a
//! new file over the name and leaves this one whole, and a delete unlinks the name only.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use switchboard_engine::StoreError;
use switchboard_engine::blob::{ByteRange, ByteStream, ObjectKey, ObjectRange};

use super::{MAGIC, corrupt, unavailable};

/// The most bytes one [`FileRangeStream::next_chunk`] reads.
const RANGE_CHUNK_BYTES: u64 = 64 * 1024;

/// Reads one length-prefixed header field.
fn read_field(file: &mut File, path: &Path) -> Result<Vec<u8>, StoreError> {
    let mut length = [0; 2];
    read_header_bytes(file, &mut length, path)?;
    let mut field = vec![0; usize::from(u16::from_be_bytes(length))];
    read_header_bytes(file, &mut field, path)?;
    Ok(field)
}

fn read_header_bytes(file: &mut File, buffer: &mut [u8], path: &Path) -> Result<(), StoreError> {
    file.read_exact(buffer).map_err(|error| match error.kind() {
        io::ErrorKind::UnexpectedEof => corrupt(path, "the header is truncated"),
        _ => unavailable("could not read the object", path, &error),
    })
}

/// Opens the object file at `path` and positions it at the start of `range`: `None` if there is
/// no such file.
pub(super) fn open_range(
    path: PathBuf,
    key: &ObjectKey,
    range: ByteRange,
) -> Result<Option<ObjectRange>, StoreError> {
    let mut file = match File::open(&path) {
        Ok(file) => file,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(unavailable("could not open the object", &path, &error)),
    };
    let file_bytes = file
        .metadata()
        .map_err(|error| unavailable("could not read the object", &path, &error))?
        .len();
    let mut magic = [0; MAGIC.len()];
    read_header_bytes(&mut file, &mut magic, &path)?;
    if magic != *MAGIC {
        return Err(corrupt(
            &path,
            "not an object file of format version 1 (bad magic bytes)",
        ));
    }
    if read_field(&mut file, &path)? != key.as_str().as_bytes() {
        return Err(corrupt(&path, "the file holds another key"));
    }
    let content_type = String::from_utf8(read_field(&mut file, &path)?)
        .map_err(|_| corrupt(&path, "the content type is not UTF-8"))?;
    let header_bytes = file
        .stream_position()
        .map_err(|error| unavailable("could not read the object", &path, &error))?;
    let total_bytes = file_bytes.saturating_sub(header_bytes);
    let (start, end) = range.within(total_bytes);
    file.seek(SeekFrom::Start(header_bytes + start))
        .map_err(|error| unavailable("could not read the object", &path, &error))?;
    Ok(Some(ObjectRange {
        content_type,
        total_bytes,
        start,
        end,
        bytes: Box::new(FileRangeStream {
            file: Some(file),
            remaining: end - start,
            path,
        }),
    }))
}

/// The rest of a range of an object file.
struct FileRangeStream {
    /// `None` only while a read is on the blocking pool, or after one failed.
    file: Option<File>,
    /// Bytes of the range not yet given.
    remaining: u64,
    path: PathBuf,
}

#[async_trait]
impl ByteStream for FileRangeStream {
    async fn next_chunk(&mut self) -> Result<Option<Bytes>, StoreError> {
        if self.remaining == 0 {
            return Ok(None);
        }
        let Some(mut file) = self.file.take() else {
            return Err(StoreError::Unavailable(
                "an earlier read of this object failed".to_owned(),
            ));
        };
        let n_bytes = usize::try_from(self.remaining.min(RANGE_CHUNK_BYTES))
            .expect("a chunk is at most 64 KiB");
        let path = self.path.clone();
        let (file, chunk) = tokio::task::spawn_blocking(move || {
            let mut chunk = BytesMut::zeroed(n_bytes);
            match file.read_exact(&mut chunk) {
                Ok(()) => Ok((file, chunk.freeze())),
                Err(error) if error.kind() == io::ErrorKind::UnexpectedEof => {
                    Err(corrupt(&path, "the object is shorter than its file was"))
                }
                Err(error) => Err(unavailable("could not read the object", &path, &error)),
            }
        })
        .await
        .map_err(|error| StoreError::Unavailable(format!("object file task failed: {error}")))??;
        self.file = Some(file);
        self.remaining -= u64::try_from(chunk.len()).expect("a chunk is at most 64 KiB");
        Ok(Some(chunk))
    }
}
