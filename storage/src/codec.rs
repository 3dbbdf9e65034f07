//! Value encoding for the embedded store: one format-version byte, then postcard.
//!
//! The version byte lets a later build change a record's layout and still read (or at least
//! recognize) what an older build wrote.
//! Postcard is compact and has no schema of its own, so the version byte is the only thing that
//! says how to read the rest; anything that does not decode cleanly, including trailing bytes,
//! is reported as [`StoreError::Corrupt`] rather than guessed at.

use serde::Serialize;
use serde::de::DeserializeOwned;
use switchboard_engine::StoreError;

/// The version of every record this build writes.
pub(crate) const FORMAT_VERSION: u8 = 2;

/// Encodes a record as the version byte followed by its postcard bytes.
///
/// # Errors
/// [`StoreError::Unavailable`] if serde refuses the value, which the engine's plain data types
/// never do.
pub(crate) fn encode<Record: Serialize>(record: &Record) -> Result<Vec<u8>, StoreError> {
    postcard::to_extend(record, vec![FORMAT_VERSION])
        .map_err(|error| StoreError::Unavailable(format!("could not encode a record: {error}")))
}

/// Decodes a record written by [`encode`].
///
/// # Errors
/// [`StoreError::Corrupt`] if the bytes are empty, carry another version, do not decode, or
/// have bytes left over after the record.
pub(crate) fn decode<Record: DeserializeOwned>(
    table: &'static str,
    bytes: &[u8],
) -> Result<Record, StoreError> {
    let Some((&version, body)) = bytes.split_first() else {
        return Err(StoreError::Corrupt(format!("empty record in {table}")));
    };
    if version != FORMAT_VERSION {
        return Err(StoreError::Corrupt(format!(
            "record in {table} has format version {version}, expected {FORMAT_VERSION}"
        )));
    }
    let (record, rest) = postcard::take_from_bytes(body)
        .map_err(|error| StoreError::Corrupt(format!("undecodable record in {table}: {error}")))?;
    if !rest.is_empty() {
        return Err(StoreError::Corrupt(format!(
            "record in {table} has {} trailing bytes",
            rest.len()
        )));
    }
    Ok(record)
}

#[cfg(test)]
mod tests;
