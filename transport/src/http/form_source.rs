//! A `multipart/form-data` upload's file as a [`ByteSource`]: the browser form's way to send a
//! file (`<form enctype="multipart/form-data">`, `FormData`). The form is read with `multer`
//! as it arrives: text fields before the file may name it (`file_name`) and its conversation
//! (`conversation_id`); the first part with a file name (or the part named `file`) is the file,
//! streamed part chunk by part chunk; whatever follows the file is not read. A form's file has
//! no length of its own, so the upload is declared with the form's `Content-Length` (an upper
//! bound, for the size limit and the quotas) and settles at the file's length once it ends.

use async_trait::async_trait;
use axum::body::Body;
use bytes::Bytes;
use switchboard_engine::blob::ByteSource;
use switchboard_engine::{Error, SourceError};

/// The most text fields (each at most [`MAX_TEXT_FIELD_BYTES`]) read before the file.
const MAX_TEXT_FIELDS: usize = 8;

/// The longest text field read before the file.
const MAX_TEXT_FIELD_BYTES: usize = 1024;

/// What the fields before the file said, and the file itself.
pub(crate) struct FormUpload {
    /// The `file_name` field, or else the file part's own file name.
    pub(crate) file_name: Option<String>,
    /// The `conversation_id` field.
    pub(crate) conversation_id: Option<String>,
    /// The file's bytes.
    pub(crate) file: FormFileSource,
}

/// The file part of a form, as the object store pulls it.
pub(crate) struct FormFileSource {
    field: multer::Field<'static>,
}

#[async_trait]
impl ByteSource for FormFileSource {
    async fn next_chunk(&mut self) -> Result<Option<Bytes>, SourceError> {
        self.field
            .chunk()
            .await
            .map_err(|error| SourceError::new(format!("the form could not be read: {error}")))
    }
}

fn invalid_form(reason: impl std::fmt::Display) -> Error {
    Error::invalid("body", format!("the multipart form {reason}"))
}

/// Reads a form up to its file part.
///
/// # Errors
/// [`Error::Invalid`] (`body`) for a malformed form, too many or too long text fields, or a
/// form without a file.
pub(crate) async fn read_form(body: Body, boundary: String) -> Result<FormUpload, Error> {
    let mut form = multer::Multipart::new(body.into_data_stream(), boundary);
    let mut file_name = None;
    let mut conversation_id = None;
    let mut n_text_fields = 0;
    loop {
        let Some(field) = form
            .next_field()
            .await
            .map_err(|error| invalid_form(format!("is malformed: {error}")))?
        else {
            return Err(invalid_form("has no file part"));
        };
        if field.file_name().is_some() || field.name() == Some("file") {
            let file_name = file_name.or_else(|| field.file_name().map(str::to_owned));
            return Ok(FormUpload {
                file_name,
                conversation_id,
                file: FormFileSource { field },
            });
        }
        n_text_fields += 1;
        if n_text_fields > MAX_TEXT_FIELDS {
            return Err(invalid_form(format!(
                "has more than {MAX_TEXT_FIELDS} fields before its file"
            )));
        }
        let name = field.name().map(str::to_owned);
        let mut field = field;
        let mut value = Vec::new();
        while let Some(chunk) = field
            .chunk()
            .await
            .map_err(|error| invalid_form(format!("is malformed: {error}")))?
        {
            value.extend_from_slice(&chunk);
            if value.len() > MAX_TEXT_FIELD_BYTES {
                return Err(invalid_form(format!(
                    "has a field over {MAX_TEXT_FIELD_BYTES} bytes before its file"
                )));
            }
        }
        let value = String::from_utf8(value)
            .map_err(|_| invalid_form("has a field before its file that is not UTF-8"))?;
        match name.as_deref() {
            Some("file_name") => file_name = Some(value),
            Some("conversation_id") => conversation_id = Some(value),
            _ => {}
        }
    }
}
