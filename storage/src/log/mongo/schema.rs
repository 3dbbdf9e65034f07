//! The MongoDB store's indexes, and the migration of documents an earlier version wrote, run by
//! the first operation that reaches a server (see [`MongoMessageStore::ready`]).

use mongodb::IndexModel;
use mongodb::bson::{Bson, Document, doc};
use mongodb::options::IndexOptions;
use switchboard_engine::StoreError;

use super::*;

impl MongoMessageStore {
    /// Gives every entry written before idempotency keys were scoped by author its `author`
    /// field, read from the entry itself, in pages. Runs before the unique index on the author's
    /// keys is built; entries written meanwhile by this version already carry the field.
    pub(super) async fn fill_in_authors(&self) -> Result<(), StoreError> {
        const PAGE: i64 = 1000;
        loop {
            let cursor = self
                .entries
                .find(doc! {"author": {"$exists": false}})
                .limit(PAGE)
                .await
                .map_err(|error| unavailable("could not read entries without an author", &error))?;
            let documents = collect(cursor).await?;
            if documents.is_empty() {
                return Ok(());
            }
            for document in &documents {
                let entry = decode_entry(document)?;
                let id = document.get("_id").cloned().unwrap_or(Bson::Null);
                self.entries
                    .update_one(
                        doc! {"_id": id},
                        doc! {"$set": {"author": entry.author().as_str()}},
                    )
                    .await
                    .map_err(|error| unavailable("could not fill in an entry's author", &error))?;
            }
        }
    }

    pub(super) async fn create_indexes(&self) -> Result<(), StoreError> {
        self.fill_in_authors().await?;
        let unique = |keys: Document, name: &str| {
            IndexModel::builder()
                .keys(keys)
                .options(
                    IndexOptions::builder()
                        .unique(true)
                        .name(name.to_owned())
                        .build(),
                )
                .build()
        };
        let plain = |keys: Document, name: &str| {
            IndexModel::builder()
                .keys(keys)
                .options(IndexOptions::builder().name(name.to_owned()).build())
                .build()
        };
        self.entries
            .create_indexes([
                unique(
                    doc! {"tenant": 1, "conversation": 1, "seq": 1},
                    "conversation_seq",
                ),
                unique(
                    doc! {"tenant": 1, "conversation": 1, "author": 1, "client_id": 1},
                    "conversation_author_client_id",
                ),
                unique(
                    doc! {"tenant": 1, "conversation": 1, "entry_id": 1},
                    "conversation_entry_id",
                ),
                plain(
                    doc! {"tenant": 1, "conversation": 1, "kind": 1, "seq": 1},
                    "conversation_kind_seq",
                ),
                plain(
                    doc! {"tenant": 1, "conversation": 1, "thread_root": 1, "seq": 1},
                    "conversation_thread_seq",
                ),
                plain(doc! {"log_position": 1}, "log_position"),
            ])
            .await
            .map_err(|error| unavailable("could not create the entries indexes", &error))?;
        // Idempotency keys were unique per conversation before they were scoped by author.
        const LEGACY_CLIENT_ID_INDEX: &str = "conversation_client_id";
        let index_names = self
            .entries
            .list_index_names()
            .await
            .map_err(|error| unavailable("could not list the entries indexes", &error))?;
        if index_names
            .iter()
            .any(|name| name == LEGACY_CLIENT_ID_INDEX)
        {
            self.entries
                .drop_index(LEGACY_CLIENT_ID_INDEX)
                .await
                .map_err(|error| {
                    unavailable("could not drop the legacy client id index", &error)
                })?;
        }
        self.conversations
            .create_indexes([plain(
                doc! {"tenant": 1, "member_ids": 1, "conversation": 1},
                "membership_by_user",
            )])
            .await
            .map_err(|error| unavailable("could not create the conversations indexes", &error))?;
        self.hidden
            .create_indexes([plain(
                doc! {"tenant": 1, "conversation": 1, "user": 1},
                "hidden_by_member",
            )])
            .await
            .map_err(|error| unavailable("could not create the hidden indexes", &error))?;
        Ok(())
    }
}
