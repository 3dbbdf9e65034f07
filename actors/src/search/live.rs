//! The live search index: the generation that answers searches and takes the indexer's
//! changes now, replaced whole when a rebuild's generation has caught up (by the indexer, the
//! one writer, so no change is ever applied to a generation that is about to be dropped).
//! Searches take the current generation at their start and keep it to their end; its number
//! keys the result cache, so a new generation invalidates every cached page at once.

use std::sync::{PoisonError, RwLock};

use switchboard_engine::search::index::IndexGeneration;

/// The generation searches read now.
#[derive(Debug)]
pub struct LiveSearchIndex {
    current: RwLock<IndexGeneration>,
}

impl LiveSearchIndex {
    /// Starts with `generation`.
    pub fn new(generation: IndexGeneration) -> Self {
        Self {
            current: RwLock::new(generation),
        }
    }

    /// The current generation.
    pub fn current(&self) -> IndexGeneration {
        // Replacing never panics half-way, so a poisoned lock still holds a whole generation.
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The current generation's number.
    pub fn generation(&self) -> u64 {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .number
    }

    /// Makes `generation` the current one (the indexer, once it has caught up).
    pub(crate) fn replace(&self, generation: IndexGeneration) {
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = generation;
    }
}
