//! Copying an embedded index without one tenant: where a rebuild of that one tenant starts
//! ([`SearchIndexGenerations::create_without_tenant`]).
//!
//! Tantivy never changes a file once written (a commit writes new segment and delete files
//! and replaces `meta.json` by a rename), so a copy of the last commit is a set of hard links
//! to the files its `meta.json` names: instant, and no bigger on disk until the two indexes
//! part ways. The links are made while holding the source's meta lock, which the source's
//! writer takes before it removes files nobody uses any more, so no file the copied
//! `meta.json` names can go while it is linked. The copy's `.managed.json` lists the linked
//! files, so that its own writer removes them once its merges no longer need them. Then the
//! tenant's documents are deleted from the copy in one commit carrying the source's
//! checkpoint.
//!
//! [`SearchIndexGenerations::create_without_tenant`]:
//! switchboard_engine::search::index::SearchIndexGenerations::create_without_tenant

use std::path::{Path, PathBuf};
use std::sync::PoisonError;

use switchboard_engine::StoreError;
use switchboard_engine::ids::TenantId;
use tantivy::directory::{Directory as _, META_LOCK, MmapDirectory};
use tantivy::{Index, Term};

use super::{EmbeddedSearchIndex, unavailable};

/// The file tantivy lists the files it manages in (and so may remove).
const MANAGED_FILES: &str = ".managed.json";
/// The file naming the segments of the last commit.
const META_FILE: &str = "meta.json";

impl EmbeddedSearchIndex {
    /// A new index in `target` (an empty or missing directory) holding what the index in
    /// `source` last committed, at its checkpoint, except every document of `tenant_id`; its
    /// writes run at niceness `writer_nice`. The index in `source` may be open and writing
    /// meanwhile; it is not changed.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] if the files cannot be linked or the copy cannot be opened
    /// or committed.
    pub async fn copy_without_tenant(
        source: PathBuf,
        target: PathBuf,
        tenant_id: TenantId,
        writer_nice: i32,
    ) -> Result<Self, StoreError> {
        let copy = tokio::task::spawn_blocking(move || {
            link_last_commit(&source, &target)?;
            Self::open_with_writer_nice(&target, writer_nice)
        })
        .await
        .map_err(|error| unavailable("copying the search index", error))??;
        copy.remove_tenant(tenant_id).await?;
        Ok(copy)
    }

    /// Deletes every document of `tenant_id`, in one commit at the index's checkpoint.
    async fn remove_tenant(&self, tenant_id: TenantId) -> Result<(), StoreError> {
        self.on_writer_thread(move |inner| {
            let writer = inner.writer.lock().unwrap_or_else(PoisonError::into_inner);
            writer.delete_term(Term::from_field_text(
                inner.fields.tenant,
                tenant_id.as_str(),
            ));
            let checkpoint = *inner
                .checkpoint
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            inner.commit(writer, Ok(()), checkpoint)
        })
        .await
    }
}

/// Links into `target` the files of the last commit of the index in `source`, and writes the
/// copy's `meta.json` and `.managed.json`.
fn link_last_commit(source: &Path, target: &Path) -> Result<(), StoreError> {
    let failed = |error: &dyn std::fmt::Display| unavailable("copying the search index", error);
    std::fs::create_dir_all(target).map_err(|error| failed(&error))?;
    let source_directory = MmapDirectory::open(source).map_err(|error| failed(&error))?;
    // Held until every file is linked: the source's writer cannot remove files meanwhile.
    let _meta_lock = source_directory
        .acquire_lock(&META_LOCK)
        .map_err(|error| failed(&error))?;
    let meta = std::fs::read(source.join(META_FILE)).map_err(|error| failed(&error))?;
    std::fs::write(target.join(META_FILE), &meta).map_err(|error| failed(&error))?;
    let segments = Index::open_in_dir(target)
        .and_then(|copy| copy.searchable_segment_metas())
        .map_err(|error| failed(&error))?;
    let mut linked: Vec<PathBuf> = Vec::new();
    for segment in segments {
        for file in segment.list_files() {
            match std::fs::hard_link(source.join(&file), target.join(&file)) {
                Ok(()) => linked.push(file),
                // A segment names every component it may have; one without deletes has no
                // delete file, for example.
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
                Err(error) => return Err(failed(&error)),
            }
        }
    }
    let mut managed = serde_json::to_vec(&linked).map_err(|error| failed(&error))?;
    managed.push(b'\n');
    std::fs::write(target.join(MANAGED_FILES), managed).map_err(|error| failed(&error))
}
