//! Generations of the search index: which whole index is current, and new ones for rebuilds
//! (the [`SearchIndexGenerations`] port).
//!
//! The embedded layout under the search directory (`<data_dir>/search`): one directory per
//! generation, `v<schema>-g<number>`, and a `CURRENT` file naming the current one. Promoting a
//! generation rewrites `CURRENT` atomically (written aside, synced, renamed over, the directory
//! synced), so a crash leaves the old generation current or the new one, never neither. At
//! open, a `CURRENT` of another schema version (or none) starts a new, empty generation of this
//! build's version: the indexer then rebuilds it from the start of the event log. Generations
//! that are not current are removed at open; the one a promotion replaced is removed at the next
//! promotion or open (it may still be answering a search when it is replaced).
//!
//! In memory, a generation is a new [`MemorySearchIndex`] and nothing is recorded.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::PoisonError;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use switchboard_engine::StoreError;
use switchboard_engine::ids::TenantId;
use switchboard_engine::search::index::{IndexGeneration, SearchIndexGenerations};

use super::embedded::{EmbeddedSearchIndex, SCHEMA_VERSION};
use super::memory::MemorySearchIndex;

/// The file naming the current generation.
const CURRENT: &str = "CURRENT";

fn unavailable(action: &str, error: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(format!("{action}: {error}"))
}

/// A generation's directory name.
fn generation_name(schema: u32, number: u64) -> String {
    format!("v{schema}-g{number}")
}

/// The schema version and number of a generation's directory name.
fn parse_generation(name: &str) -> Option<(u32, u64)> {
    let (schema, number) = name.strip_prefix('v')?.split_once("-g")?;
    Some((schema.parse().ok()?, number.parse().ok()?))
}

/// What opening the generations found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpenedGeneration {
    /// The current generation, as it was.
    Current,
    /// A new, empty generation, to be rebuilt from the log: there was none, or the current
    /// one was of another schema version (said here).
    Rebuilding(String),
}

/// The generations of an embedded index in one directory. Cloning is cheap.
#[derive(Clone)]
pub struct EmbeddedSearchGenerations {
    inner: Arc<GenerationsInner>,
}

struct GenerationsInner {
    root: PathBuf,
    next: AtomicU64,
    /// The current generation and the one it replaced (removed at the next promotion).
    current: Mutex<(u64, Option<u64>)>,
    /// The niceness new generations write at.
    writer_nice: i32,
}

impl EmbeddedSearchGenerations {
    /// Opens the generations in `root` and the current one (a new one if there is none of
    /// this schema version), each writing at niceness `writer_nice`
    /// ([`EmbeddedSearchIndex::open_with_writer_nice`]). Blocks on file I/O: call it at startup.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] if the directory cannot be used, [`StoreError::Corrupt`] if
    /// `CURRENT` names a generation of this version that is not there.
    pub fn open(
        root: &Path,
        writer_nice: i32,
    ) -> Result<(Self, IndexGeneration, OpenedGeneration), StoreError> {
        std::fs::create_dir_all(root)
            .map_err(|error| unavailable("creating the search directory", error))?;
        let named = match std::fs::read_to_string(root.join(CURRENT)) {
            Ok(text) => Some(text.trim().to_owned()),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => None,
            Err(error) => return Err(unavailable("reading the search index's CURRENT", error)),
        };
        let mut highest = 0;
        let mut entries = Vec::new();
        for entry in std::fs::read_dir(root)
            .map_err(|error| unavailable("listing the search directory", error))?
        {
            let entry =
                entry.map_err(|error| unavailable("listing the search directory", error))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some((_, number)) = parse_generation(&name) {
                highest = highest.max(number);
            }
            entries.push((name, entry.path()));
        }
        let current = named
            .as_deref()
            .and_then(parse_generation)
            .filter(|(schema, _)| *schema == SCHEMA_VERSION);
        let (number, opened) = match current {
            Some((_, number)) => {
                if !root.join(generation_name(SCHEMA_VERSION, number)).is_dir() {
                    return Err(StoreError::Corrupt(format!(
                        "the search index's CURRENT names {}, which is missing",
                        generation_name(SCHEMA_VERSION, number)
                    )));
                }
                (number, OpenedGeneration::Current)
            }
            None => {
                let reason = match &named {
                    None => "there was no search index".to_owned(),
                    Some(name) => format!(
                        "the search index was {name}; this build reads schema version {SCHEMA_VERSION}"
                    ),
                };
                (highest + 1, OpenedGeneration::Rebuilding(reason))
            }
        };
        let keep = generation_name(SCHEMA_VERSION, number);
        for (name, path) in entries {
            // Every other generation, and the files of the layout before generations (an index
            // directly in `root`), which the new generation rebuilds.
            if name == keep || name == CURRENT {
                continue;
            }
            let removed = if path.is_dir() {
                if parse_generation(&name).is_none() {
                    continue;
                }
                std::fs::remove_dir_all(&path)
            } else {
                std::fs::remove_file(&path)
            };
            removed.map_err(|error| unavailable("removing an old search index", error))?;
        }
        let index = EmbeddedSearchIndex::open_with_writer_nice(&root.join(&keep), writer_nice)?;
        let generations = Self {
            inner: Arc::new(GenerationsInner {
                root: root.to_path_buf(),
                next: AtomicU64::new(number + 1),
                current: Mutex::new((number, None)),
                writer_nice,
            }),
        };
        if opened != OpenedGeneration::Current {
            generations.inner.write_current(number)?;
        }
        Ok((
            generations,
            IndexGeneration {
                number,
                index: Arc::new(index),
            },
            opened,
        ))
    }
}

impl GenerationsInner {
    fn write_current(&self, number: u64) -> Result<(), StoreError> {
        use std::io::Write as _;
        let aside = self.root.join("CURRENT.new");
        let mut file = std::fs::File::create(&aside)
            .map_err(|error| unavailable("writing the search index's CURRENT", error))?;
        writeln!(file, "{}", generation_name(SCHEMA_VERSION, number))
            .and_then(|()| file.sync_all())
            .map_err(|error| unavailable("writing the search index's CURRENT", error))?;
        std::fs::rename(&aside, self.root.join(CURRENT))
            .and_then(|()| std::fs::File::open(&self.root)?.sync_all())
            .map_err(|error| unavailable("replacing the search index's CURRENT", error))
    }

    fn directory(&self, number: u64) -> PathBuf {
        self.root.join(generation_name(SCHEMA_VERSION, number))
    }
}

#[async_trait]
impl SearchIndexGenerations for EmbeddedSearchGenerations {
    async fn create(&self) -> Result<IndexGeneration, StoreError> {
        let number = self.inner.next.fetch_add(1, Ordering::Relaxed);
        let directory = self.inner.directory(number);
        let nice = self.inner.writer_nice;
        let index = tokio::task::spawn_blocking(move || {
            EmbeddedSearchIndex::open_with_writer_nice(&directory, nice)
        })
        .await
        .map_err(|error| unavailable("opening a new search index", error))??;
        Ok(IndexGeneration {
            number,
            index: Arc::new(index),
        })
    }

    async fn create_without_tenant(
        &self,
        source: u64,
        tenant_id: &TenantId,
    ) -> Result<IndexGeneration, StoreError> {
        let number = self.inner.next.fetch_add(1, Ordering::Relaxed);
        let target = self.inner.directory(number);
        let copied = EmbeddedSearchIndex::copy_without_tenant(
            self.inner.directory(source),
            target.clone(),
            tenant_id.clone(),
            self.inner.writer_nice,
        )
        .await;
        match copied {
            Ok(index) => Ok(IndexGeneration {
                number,
                index: Arc::new(index),
            }),
            Err(error) => {
                let _ = tokio::task::spawn_blocking(move || std::fs::remove_dir_all(target)).await;
                Err(error)
            }
        }
    }

    async fn promote(&self, number: u64) -> Result<(), StoreError> {
        let generations = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || {
            generations.write_current(number)?;
            let replaced = {
                let mut current = generations
                    .current
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner);
                let older = current.1;
                *current = (number, Some(current.0));
                older
            };
            if let Some(older) = replaced {
                let _ = std::fs::remove_dir_all(generations.directory(older));
            }
            Ok(())
        })
        .await
        .map_err(|error| unavailable("promoting a search index", error))?
    }

    async fn discard(&self, number: u64) -> Result<(), StoreError> {
        let directory = self.inner.directory(number);
        tokio::task::spawn_blocking(move || std::fs::remove_dir_all(directory))
            .await
            .map_err(|error| unavailable("discarding a search index", error))?
            .map_err(|error| unavailable("discarding a search index", error))
    }
}

/// Generations in memory: each a new [`MemorySearchIndex`]; the ones not discarded are kept
/// by number, so that a tenant's rebuild can start from a copy of the live one.
pub struct MemorySearchGenerations {
    next: AtomicU64,
    kept: Mutex<std::collections::HashMap<u64, Arc<MemorySearchIndex>>>,
}

impl MemorySearchGenerations {
    /// Generations numbered from 1, and the first (empty) one.
    pub fn new() -> (Self, IndexGeneration) {
        Self::starting_with(Arc::new(MemorySearchIndex::new()))
    }

    /// Generations numbered from 1, the first being `first`.
    pub fn starting_with(first: Arc<MemorySearchIndex>) -> (Self, IndexGeneration) {
        let generations = Self {
            next: AtomicU64::new(2),
            kept: Mutex::new(std::collections::HashMap::from([(1, Arc::clone(&first))])),
        };
        (
            generations,
            IndexGeneration {
                number: 1,
                index: first,
            },
        )
    }

    fn keep(&self, index: MemorySearchIndex) -> IndexGeneration {
        let number = self.next.fetch_add(1, Ordering::Relaxed);
        let index = Arc::new(index);
        self.kept
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(number, Arc::clone(&index));
        IndexGeneration { number, index }
    }
}

#[async_trait]
impl SearchIndexGenerations for MemorySearchGenerations {
    async fn create(&self) -> Result<IndexGeneration, StoreError> {
        Ok(self.keep(MemorySearchIndex::new()))
    }

    async fn create_without_tenant(
        &self,
        source: u64,
        tenant_id: &TenantId,
    ) -> Result<IndexGeneration, StoreError> {
        let source = self
            .kept
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&source)
            .cloned()
            .ok_or_else(|| {
                unavailable("copying a search index", format!("no generation {source}"))
            })?;
        Ok(self.keep(source.copy_without_tenant(tenant_id)))
    }

    async fn promote(&self, number: u64) -> Result<(), StoreError> {
        self.kept
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|kept, _| *kept >= number);
        Ok(())
    }

    async fn discard(&self, number: u64) -> Result<(), StoreError> {
        self.kept
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&number);
        Ok(())
    }
}

#[cfg(test)]
mod tests;
