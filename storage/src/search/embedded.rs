//! The embedded search index: a tantivy index in a directory of its own (the server opens
//! `<data_dir>/search`), with the engine's analyzer as its tokenizer, so its terms are exactly
//! the in-memory reference's.
//!
//! Each message is one document keyed by tenant, conversation and message (`doc_key`): a
//! `Put` deletes the key and adds the new document in the same commit, a `Remove` deletes it.
//! Its text is analysed once and indexed twice, pre-tokenized: as stems with positions
//! (`stems`: words and phrases) and as folded words (`words`: prefixes and suggestions), and
//! stored whole (for highlights). The
//! event-log position the index reflects is the commit's payload, so it is stored atomically
//! with the documents: after a crash the index and its checkpoint agree.
//!
//! A search is one boolean query: the tenant and the filters must match, the caller's hidden
//! messages and the excluded clauses must not, and each required clause must (a term, a phrase
//! with the analyzer's offsets, or a regex prefix on `words`). The scope is checked on each
//! candidate, not expanded into postings: a collector keeps the documents whose `scope_hash`
//! fast field (an xxHash64 of the conversation id) is one of the scope's, and every hit read is
//! checked again against the scope itself, so a hash collision can cost a hit but never show
//! one from outside the scope (profiling showed that expanding the postings of every
//! conversation in scope was half of a query's time, and grew with the caller's conversations).
//! Newest-first pages sort on `sent_at` as a fast field and read stored documents only for the
//! page (and for ties of the same millisecond, ordered by message id); relevance is tantivy's
//! BM25. Highlights come from running the engine's matcher on the stored text of the page's
//! hits. Searches run on tokio's blocking pool. Writes run on a thread of the index's own, at
//! the niceness it was opened with ([`EmbeddedSearchIndex::open_with_writer_nice`]): tantivy's
//! indexing and merging threads are started from it and inherit it, so at a niceness of 19
//! indexing takes only the CPU that serving leaves (the load matrix showed indexing at normal
//! priority halving a saturated core's message throughput), and the index lags, visibly in
//! the lag metrics, until the load drops.

use std::collections::HashSet;
use std::ops::Bound;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use switchboard_engine::StoreError;
use switchboard_engine::ids::{ConversationId, MessageId, Seq, TenantId, UserId};
use switchboard_engine::ports::LogCursor;
use switchboard_engine::search::analyzer::{Analyzer, Purpose, fold};
use switchboard_engine::search::index::{
    IndexChange, ReadableConversation, SearchCursor, SearchDocument, SearchHit, SearchIndex,
    SearchPage, SearchRequest, SearchSort, most_frequent,
};
use switchboard_engine::search::matching::{CompiledClause, CompiledQuery};
use switchboard_engine::time::Timestamp;
use tantivy::collector::{Collector, FilterCollector, TopDocs};
use tantivy::directory::MmapDirectory;
use tantivy::query::{
    AllQuery, BooleanQuery, EmptyQuery, Occur, PhraseQuery, Query, RangeQuery, RegexQuery,
    TermQuery, TermSetQuery,
};
use tantivy::schema::{
    FAST, Field, INDEXED, IndexRecordOption, STORED, STRING, Schema, TextFieldIndexing,
    TextOptions, Value as _,
};
use tantivy::tokenizer::{PreTokenizedString, Token as TantivyToken, TokenStream, Tokenizer};
use tantivy::{
    DocAddress, Index, IndexReader, IndexWriter, Order, ReloadPolicy, TantivyDocument, Term,
};

/// The version of the schema and of the analysis; an index of another version is refused at
/// open (and rebuilt from the log by the indexer).
pub(crate) const SCHEMA_VERSION: u32 = 2;

mod copy;

/// The writer's indexing memory budget.
const WRITER_HEAP_BYTES: usize = 64 * 1024 * 1024;

/// How many more hits than a newest-first page needs are read, so that hits sent in the same
/// millisecond as the cursor's are ordered by message id before the page is cut.
const SAME_MILLISECOND_SLACK: usize = 256;

/// How many of the newest matching documents suggestions are read from.
const SUGGESTION_SOURCE_DOCUMENTS: usize = 200;

const STEM_TOKENIZER: &str = "switchboard_stems";
const WORD_TOKENIZER: &str = "switchboard_words";

#[derive(Clone, Copy)]
struct Fields {
    doc_key: Field,
    scope_hash: Field,
    tenant: Field,
    conversation: Field,
    message: Field,
    seq: Field,
    sender: Field,
    sent_at: Field,
    has_attachment: Field,
    text: Field,
    stems: Field,
    words: Field,
}

fn schema() -> (Schema, Fields) {
    let mut builder = Schema::builder();
    // `words` serves prefixes (constant score), so only `stems` keeps field norms for BM25.
    let analysed = |tokenizer: &str, positions: IndexRecordOption, norms: bool| {
        TextOptions::default().set_indexing_options(
            TextFieldIndexing::default()
                .set_tokenizer(tokenizer)
                .set_index_option(positions)
                .set_fieldnorms(norms),
        )
    };
    let fields = Fields {
        doc_key: builder.add_bytes_field("doc_key", INDEXED),
        scope_hash: builder.add_u64_field("scope_hash", FAST),
        tenant: builder.add_text_field("tenant", STRING | STORED),
        conversation: builder.add_text_field("conversation", STORED),
        message: builder.add_text_field("message", STORED),
        seq: builder.add_u64_field("seq", STORED),
        sender: builder.add_text_field("sender", STRING | STORED),
        sent_at: builder.add_u64_field("sent_at", INDEXED | FAST | STORED),
        has_attachment: builder.add_u64_field("has_attachment", INDEXED | STORED),
        text: builder.add_text_field("text", STORED),
        stems: builder.add_text_field(
            "stems",
            analysed(
                STEM_TOKENIZER,
                IndexRecordOption::WithFreqsAndPositions,
                true,
            ),
        ),
        words: builder.add_text_field(
            "words",
            analysed(WORD_TOKENIZER, IndexRecordOption::Basic, false),
        ),
    };
    (builder.build(), fields)
}

/// The engine's analyzer as a tantivy tokenizer: stems, or folded words.
#[derive(Clone)]
struct EngineTokenizer {
    analyzer: Arc<Analyzer>,
    stems: bool,
}

struct EngineTokens {
    tokens: Vec<TantivyToken>,
    next: usize,
}

impl TokenStream for EngineTokens {
    fn advance(&mut self) -> bool {
        if self.next < self.tokens.len() {
            self.next += 1;
            true
        } else {
            false
        }
    }

    fn token(&self) -> &TantivyToken {
        &self.tokens[self.next - 1]
    }

    fn token_mut(&mut self) -> &mut TantivyToken {
        &mut self.tokens[self.next - 1]
    }
}

impl Tokenizer for EngineTokenizer {
    type TokenStream<'a> = EngineTokens;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> EngineTokens {
        let tokens = self
            .analyzer
            .tokens(text, Purpose::Index)
            .into_iter()
            .map(|token| TantivyToken {
                offset_from: token.bytes.start,
                offset_to: token.bytes.end,
                position: token.position as usize,
                text: if self.stems { token.stem } else { token.folded },
                position_length: 1,
            })
            .collect();
        EngineTokens { tokens, next: 0 }
    }
}

/// The conversations a search may find documents in: their hashes, checked by a collector on
/// every candidate, and the ids themselves, checked on every document read.
struct Scope {
    hashes: Arc<HashSet<u64>>,
    conversations: HashSet<ConversationId>,
}

impl Scope {
    /// `collector`, given only the candidates whose `scope_hash` is in the scope.
    fn filter<C: Collector + Send + Sync>(
        &self,
        collector: C,
    ) -> FilterCollector<C, impl Fn(u64) -> bool + Clone + Send + Sync + 'static, u64> {
        let hashes = Arc::clone(&self.hashes);
        FilterCollector::new(
            "scope_hash".to_owned(),
            move |hash: u64| hashes.contains(&hash),
            collector,
        )
    }
}

/// Work for the writer thread.
type WriterJob = Box<dyn FnOnce() + Send>;

struct Inner {
    reader: IndexReader,
    writer: Mutex<IndexWriter>,
    /// The writer thread's queue; the thread ends when the index is dropped.
    writer_jobs: Mutex<std::sync::mpsc::Sender<WriterJob>>,
    checkpoint: Mutex<LogCursor>,
    fields: Fields,
    analyzer: Arc<Analyzer>,
}

/// The tantivy [`SearchIndex`].
#[derive(Clone)]
pub struct EmbeddedSearchIndex {
    inner: Arc<Inner>,
}

fn unavailable(what: &str, error: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(format!("{what}: {error}"))
}

/// Starts the thread every write of the index runs on, at niceness `nice`, and the index's
/// writer from it (so that tantivy's indexing and merge threads, which the writer starts from
/// the thread that makes it or commits, inherit the niceness). The thread ends when its queue's
/// sender is dropped with the index.
fn start_writer_thread(
    index: &Index,
    nice: i32,
) -> Result<(IndexWriter, std::sync::mpsc::Sender<WriterJob>), StoreError> {
    let (jobs, queue) = std::sync::mpsc::channel::<WriterJob>();
    let (made, writer) = std::sync::mpsc::channel();
    let index = index.clone();
    std::thread::Builder::new()
        .name("search-writer".to_owned())
        .spawn(move || {
            if nice != 0
                && let Err(error) = rustix::process::setpriority_process(None, nice)
            {
                tracing::warn!(%error, nice, "the search index's writer keeps the default niceness");
            }
            let _ = made.send(
                index
                    .writer(WRITER_HEAP_BYTES)
                    .map_err(|error| unavailable("starting the search index's writer", error)),
            );
            for job in queue {
                job();
            }
        })
        .map_err(|error| unavailable("starting the search index's writer thread", error))?;
    let writer = writer
        .recv()
        .map_err(|error| unavailable("starting the search index's writer", error))??;
    Ok((writer, jobs))
}

/// The commit payload: the schema version and the checkpoint.
#[derive(serde::Serialize, serde::Deserialize)]
struct Payload {
    schema: u32,
    checkpoint: u64,
}

impl EmbeddedSearchIndex {
    /// Opens the index in `directory`, creating it if it is empty.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] if the directory cannot be used; [`StoreError::Corrupt`]
    /// if it holds an index of another schema version.
    pub fn open(directory: &Path) -> Result<Self, StoreError> {
        Self::open_with_writer_nice(directory, 0)
    }

    /// Opens the index in `directory` as [`EmbeddedSearchIndex::open`] does, its writes run at
    /// niceness `writer_nice` (0 to 19; 19 yields the CPU to everything else).
    ///
    /// # Errors
    /// As [`EmbeddedSearchIndex::open`].
    pub fn open_with_writer_nice(directory: &Path, writer_nice: i32) -> Result<Self, StoreError> {
        std::fs::create_dir_all(directory)
            .map_err(|error| unavailable("creating the search directory", error))?;
        let mmap = MmapDirectory::open(directory)
            .map_err(|error| unavailable("opening the search directory", error))?;
        let (schema, fields) = schema();
        let index = Index::open_or_create(mmap, schema)
            .map_err(|error| unavailable("opening the search index", error))?;
        Self::with_index(index, fields, writer_nice)
    }

    /// An index in memory (tests).
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] if tantivy cannot start it.
    pub fn in_memory() -> Result<Self, StoreError> {
        let (schema, fields) = schema();
        Self::with_index(Index::create_in_ram(schema), fields, 0)
    }

    fn with_index(index: Index, fields: Fields, writer_nice: i32) -> Result<Self, StoreError> {
        let analyzer = Arc::new(Analyzer::new());
        for (name, stems) in [(STEM_TOKENIZER, true), (WORD_TOKENIZER, false)] {
            index.tokenizers().register(
                name,
                EngineTokenizer {
                    analyzer: Arc::clone(&analyzer),
                    stems,
                },
            );
        }
        let metas = index
            .load_metas()
            .map_err(|error| unavailable("reading the search index's metadata", error))?;
        let checkpoint = match metas.payload.as_deref() {
            None => LogCursor::START,
            Some(text) => {
                let payload: Payload = serde_json::from_str(text).map_err(|error| {
                    StoreError::Corrupt(format!("the search index's payload: {error}"))
                })?;
                if payload.schema != SCHEMA_VERSION {
                    return Err(StoreError::Corrupt(format!(
                        "the search index has schema version {}, this build reads {SCHEMA_VERSION}",
                        payload.schema
                    )));
                }
                LogCursor(payload.checkpoint)
            }
        };
        let (writer, writer_jobs) = start_writer_thread(&index, writer_nice)?;
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()
            .map_err(|error| unavailable("starting the search index's reader", error))?;
        Ok(Self {
            inner: Arc::new(Inner {
                reader,
                writer: Mutex::new(writer),
                writer_jobs: Mutex::new(writer_jobs),
                checkpoint: Mutex::new(checkpoint),
                fields,
                analyzer,
            }),
        })
    }

    /// How many documents the last commit holds.
    pub fn n_documents(&self) -> u64 {
        self.inner.reader.searcher().num_docs()
    }

    async fn on_writer_thread<Output: Send + 'static>(
        &self,
        work: impl FnOnce(&Inner) -> Result<Output, StoreError> + Send + 'static,
    ) -> Result<Output, StoreError> {
        let inner = Arc::clone(&self.inner);
        let (answer, answered) = tokio::sync::oneshot::channel();
        let job: WriterJob = Box::new(move || {
            let result = work(&inner);
            // Let go of the index before answering: a caller that drops it on the answer must
            // find the writer (and its directory lock) gone, not held a moment longer here.
            drop(inner);
            let _ = answer.send(result);
        });
        self.inner
            .writer_jobs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .send(job)
            .map_err(|_| {
                unavailable("writing the search index", "its writer thread has stopped")
            })?;
        answered
            .await
            .map_err(|_| unavailable("writing the search index", "its writer thread has stopped"))?
    }

    async fn blocking<Output: Send + 'static>(
        &self,
        work: impl FnOnce(&Inner) -> Result<Output, StoreError> + Send + 'static,
    ) -> Result<Output, StoreError> {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || work(&inner))
            .await
            .map_err(|error| unavailable("the search index's worker", error))?
    }
}

impl Inner {
    /// Commits what `writer` holds with `checkpoint` as the payload, if `staged` (the staging
    /// of the changes) succeeded, and lets searches see it; else rolls the writer back, so that
    /// nothing of a failed batch stays pending for the next commit.
    fn commit(
        &self,
        mut writer: std::sync::MutexGuard<'_, IndexWriter>,
        staged: Result<(), StoreError>,
        checkpoint: LogCursor,
    ) -> Result<(), StoreError> {
        let committed = staged.and_then(|()| {
            let payload = serde_json::to_string(&Payload {
                schema: SCHEMA_VERSION,
                checkpoint: checkpoint.0,
            })
            .map_err(|error| unavailable("writing the checkpoint", error))?;
            let mut prepared = writer
                .prepare_commit()
                .map_err(|error| unavailable("committing the search index", error))?;
            prepared.set_payload(&payload);
            prepared
                .commit()
                .map_err(|error| unavailable("committing the search index", error))?;
            Ok(())
        });
        if let Err(error) = committed {
            let _ = writer.rollback();
            return Err(error);
        }
        drop(writer);
        self.reader
            .reload()
            .map_err(|error| unavailable("reloading the search index", error))?;
        *self
            .checkpoint
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = checkpoint;
        Ok(())
    }
}

/// The term that names one message's document: the tenant, then the conversation's and the
/// message's ids as bytes (deletes and hidden messages name it).
fn doc_key(
    fields: &Fields,
    tenant_id: &TenantId,
    conversation_id: ConversationId,
    message_id: MessageId,
) -> Term {
    let tenant = tenant_id.as_str().as_bytes();
    let mut key = Vec::with_capacity(tenant.len() + 1 + 32);
    key.extend_from_slice(tenant);
    key.push(0);
    key.extend_from_slice(&conversation_id.to_bytes());
    key.extend_from_slice(&message_id.to_bytes());
    Term::from_field_bytes(fields.doc_key, &key)
}

/// The conversation's hash in the scope filter: stable across builds (xxHash64, seed 0), so a
/// stored index keeps its meaning.
fn scope_hash(conversation_id: ConversationId) -> u64 {
    twox_hash::XxHash64::oneshot(0, &conversation_id.to_bytes())
}

/// A regex that matches words starting with `prefix` (tantivy-fst's syntax, metacharacters
/// escaped).
fn prefix_pattern(prefix: &str) -> String {
    let mut pattern = String::with_capacity(prefix.len() + 4);
    for character in prefix.chars() {
        if "\\.+*?()|[]{}^$#&-~\"<>@".contains(character) {
            pattern.push('\\');
        }
        pattern.push(character);
    }
    pattern.push_str(".*");
    pattern
}

impl Inner {
    fn document(&self, document: &SearchDocument) -> TantivyDocument {
        let fields = &self.fields;
        let mut stored = TantivyDocument::new();
        let key = doc_key(
            fields,
            &document.tenant_id,
            document.conversation_id,
            document.message_id,
        );
        stored.add_bytes(fields.doc_key, key.serialized_value_bytes());
        stored.add_u64(fields.scope_hash, scope_hash(document.conversation_id));
        stored.add_text(fields.tenant, document.tenant_id.as_str());
        stored.add_text(fields.conversation, document.conversation_id.to_string());
        stored.add_text(fields.message, document.message_id.to_string());
        stored.add_u64(fields.seq, document.seq.0);
        stored.add_text(fields.sender, document.sender_id.as_str());
        stored.add_u64(fields.sent_at, document.sent_at.0);
        stored.add_u64(fields.has_attachment, u64::from(document.has_attachment));
        stored.add_text(fields.text, &document.text);
        // Analysed once: each token's stem goes to `stems`, its folded word to `words`.
        let tokens = self.analyzer.tokens(&document.text, Purpose::Index);
        let mut stems = Vec::with_capacity(tokens.len());
        let mut words = Vec::with_capacity(tokens.len());
        for token in tokens {
            let tantivy_token = |text: String| TantivyToken {
                offset_from: token.bytes.start,
                offset_to: token.bytes.end,
                position: token.position as usize,
                text,
                position_length: 1,
            };
            words.push(tantivy_token(token.folded));
            stems.push(tantivy_token(token.stem));
        }
        stored.add_pre_tokenized_text(
            fields.stems,
            PreTokenizedString {
                text: String::new(),
                tokens: stems,
            },
        );
        stored.add_pre_tokenized_text(
            fields.words,
            PreTokenizedString {
                text: String::new(),
                tokens: words,
            },
        );
        stored
    }

    fn read_document(&self, stored: &TantivyDocument) -> Result<SearchDocument, StoreError> {
        let fields = &self.fields;
        let text = |field: Field| {
            stored
                .get_first(field)
                .and_then(|value| value.as_str().map(str::to_owned))
                .ok_or_else(|| StoreError::Corrupt("a search document lacks a field".to_owned()))
        };
        let number = |field: Field| {
            stored
                .get_first(field)
                .and_then(|value| value.as_u64())
                .ok_or_else(|| StoreError::Corrupt("a search document lacks a field".to_owned()))
        };
        let corrupt = |what: &str| StoreError::Corrupt(format!("a search document's {what}"));
        Ok(SearchDocument {
            tenant_id: TenantId::parse(&text(fields.tenant)?).map_err(|_| corrupt("tenant"))?,
            conversation_id: ConversationId::parse(&text(fields.conversation)?)
                .map_err(|_| corrupt("conversation"))?,
            message_id: MessageId::parse(&text(fields.message)?).map_err(|_| corrupt("message"))?,
            seq: Seq(number(fields.seq)?),
            sender_id: UserId::parse(&text(fields.sender)?).map_err(|_| corrupt("sender"))?,
            sent_at: Timestamp(number(fields.sent_at)?),
            text: text(fields.text)?,
            has_attachment: number(fields.has_attachment)? == 1,
        })
    }

    fn clause(&self, clause: &CompiledClause) -> Result<Box<dyn Query>, StoreError> {
        Ok(match clause {
            CompiledClause::Nothing => Box::new(EmptyQuery),
            CompiledClause::Prefix(prefix) => Box::new(
                RegexQuery::from_pattern(&prefix_pattern(prefix), self.fields.words)
                    .map_err(|error| unavailable("building a prefix query", error))?,
            ),
            CompiledClause::Terms(terms) if terms.len() == 1 => Box::new(TermQuery::new(
                Term::from_field_text(self.fields.stems, &terms[0].1),
                IndexRecordOption::WithFreqs,
            )),
            CompiledClause::Terms(terms) => Box::new(PhraseQuery::new_with_offset(
                terms
                    .iter()
                    .map(|(offset, stem)| {
                        (
                            *offset as usize,
                            Term::from_field_text(self.fields.stems, stem),
                        )
                    })
                    .collect(),
            )),
        })
    }

    /// The query for `request` and the scope its candidates must be in, or `None` when the
    /// scope is empty.
    fn query(
        &self,
        request: &SearchRequest,
        compiled: &CompiledQuery,
    ) -> Result<Option<(BooleanQuery, Scope)>, StoreError> {
        let fields = &self.fields;
        let tenant_id = &request.tenant_id;
        let mut scope: Vec<&ReadableConversation> = request.scope.iter().collect();
        if !request.query.conversations.is_empty() {
            scope.retain(|readable| {
                request
                    .query
                    .conversations
                    .contains(&readable.conversation_id)
            });
        }
        if scope.is_empty() {
            return Ok(None);
        }
        let filter = Scope {
            hashes: Arc::new(
                scope
                    .iter()
                    .map(|readable| scope_hash(readable.conversation_id))
                    .collect(),
            ),
            conversations: scope
                .iter()
                .map(|readable| readable.conversation_id)
                .collect(),
        };
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = vec![(
            Occur::Must,
            Box::new(TermQuery::new(
                Term::from_field_text(fields.tenant, tenant_id.as_str()),
                IndexRecordOption::Basic,
            )),
        )];
        let hidden: Vec<Term> = scope
            .iter()
            .flat_map(|readable| {
                readable.hidden.iter().map(|message_id| {
                    doc_key(fields, tenant_id, readable.conversation_id, *message_id)
                })
            })
            .collect();
        if !hidden.is_empty() {
            clauses.push((Occur::MustNot, Box::new(TermSetQuery::new(hidden))));
        }
        for clause in &compiled.required {
            clauses.push((Occur::Must, self.clause(clause)?));
        }
        for clause in &compiled.excluded {
            clauses.push((Occur::MustNot, self.clause(clause)?));
        }
        if compiled.required.is_empty() {
            clauses.push((Occur::Must, Box::new(AllQuery)));
        }
        if !request.query.from.is_empty() {
            clauses.push((
                Occur::Must,
                Box::new(TermSetQuery::new(
                    request
                        .query
                        .from
                        .iter()
                        .map(|user| Term::from_field_text(fields.sender, user.as_str())),
                )),
            ));
        }
        if request.query.has_attachment {
            clauses.push((
                Occur::Must,
                Box::new(TermQuery::new(
                    Term::from_field_u64(fields.has_attachment, 1),
                    IndexRecordOption::Basic,
                )),
            ));
        }
        let mut upper = request
            .query
            .before
            .map(|before| Bound::Excluded(Term::from_field_u64(fields.sent_at, before.0)));
        if let (SearchSort::Newest, Some(SearchCursor::Before { sent_at, .. })) =
            (request.sort, request.cursor)
        {
            let at_cursor = Term::from_field_u64(fields.sent_at, sent_at.0);
            upper = Some(match upper {
                Some(Bound::Excluded(before)) if before.value().as_u64() <= Some(sent_at.0) => {
                    Bound::Excluded(before)
                }
                _ => Bound::Included(at_cursor),
            });
        }
        let lower = request
            .query
            .after
            .map(|after| Bound::Included(Term::from_field_u64(fields.sent_at, after.0)));
        if lower.is_some() || upper.is_some() {
            clauses.push((
                Occur::Must,
                Box::new(RangeQuery::new(
                    lower.unwrap_or(Bound::Unbounded),
                    upper.unwrap_or(Bound::Unbounded),
                )),
            ));
        }
        Ok(Some((BooleanQuery::new(clauses), filter)))
    }

    fn search(&self, request: &SearchRequest) -> Result<SearchPage, StoreError> {
        let compiled = CompiledQuery::new(&self.analyzer, &request.query);
        let Some((query, scope)) = self.query(request, &compiled)? else {
            return Ok(SearchPage {
                hits: Vec::new(),
                next: None,
            });
        };
        let searcher = self.reader.searcher();
        let limit = request.limit.max(1);
        let failed = |error: tantivy::TantivyError| unavailable("searching", error);
        let read = |address: DocAddress| -> Result<Option<SearchDocument>, StoreError> {
            let stored: TantivyDocument = searcher.doc(address).map_err(failed)?;
            let document = self.read_document(&stored)?;
            // A scope hash that collided with another conversation's: not the caller's.
            Ok(scope
                .conversations
                .contains(&document.conversation_id)
                .then_some(document))
        };
        let (documents, offset): (Vec<(f32, SearchDocument)>, usize) = match request.sort {
            SearchSort::Relevance => {
                let offset = match request.cursor {
                    Some(SearchCursor::Offset(offset)) => offset,
                    _ => 0,
                };
                let found = searcher
                    .search(
                        &query,
                        &scope.filter(TopDocs::with_limit(limit + 1).and_offset(offset)),
                    )
                    .map_err(failed)?;
                let mut documents = Vec::with_capacity(found.len());
                for (score, address) in found {
                    if let Some(document) = read(address)? {
                        documents.push((score, document));
                    }
                }
                (documents, offset)
            }
            SearchSort::Newest => {
                let found: Vec<(u64, DocAddress)> = searcher
                    .search(
                        &query,
                        &scope.filter(
                            TopDocs::with_limit(limit + 1 + SAME_MILLISECOND_SLACK)
                                .order_by_fast_field::<u64>("sent_at", Order::Desc),
                        ),
                    )
                    .map_err(failed)?;
                let cursor = match request.cursor {
                    Some(SearchCursor::Before {
                        sent_at,
                        message_id,
                    }) => Some((sent_at, message_id)),
                    _ => None,
                };
                // Newest first, ties of one millisecond by message id: stored documents are
                // read group by group (a group is one `sent_at`) until the page and one more
                // are known, so a page reads about `limit + 1` documents, not the slack.
                let mut documents = Vec::with_capacity(limit + 1);
                for group in found.chunk_by(|left, right| left.0 == right.0) {
                    let mut members = Vec::with_capacity(group.len());
                    for (_, address) in group {
                        if let Some(document) = read(*address)? {
                            members.push(document);
                        }
                    }
                    members.sort_by_key(|document| std::cmp::Reverse(document.message_id));
                    documents.extend(
                        members
                            .into_iter()
                            .filter(|document| {
                                cursor.is_none_or(|cursor| {
                                    (document.sent_at, document.message_id) < cursor
                                })
                            })
                            .map(|document| (0.0, document)),
                    );
                    if documents.len() > limit {
                        break;
                    }
                }
                (documents, 0)
            }
        };
        let hits = documents
            .into_iter()
            .map(|(score, document)| {
                let tokens = self.analyzer.tokens(&document.text, Purpose::Index);
                let matches = compiled.matches(&tokens).unwrap_or_default();
                SearchHit {
                    document,
                    score,
                    matches,
                }
            })
            .collect();
        Ok(SearchPage::cut(hits, request.sort, offset, limit))
    }

    fn suggest(
        &self,
        tenant_id: &TenantId,
        scope: &[ReadableConversation],
        prefix: &str,
        limit: usize,
    ) -> Result<Vec<String>, StoreError> {
        let prefix = fold(prefix);
        if prefix.is_empty() {
            return Ok(Vec::new());
        }
        let request = SearchRequest {
            tenant_id: tenant_id.clone(),
            query: switchboard_engine::search::SearchQuery::default(),
            scope: scope.to_vec(),
            sort: SearchSort::Newest,
            limit: SUGGESTION_SOURCE_DOCUMENTS,
            cursor: None,
        };
        let compiled = CompiledQuery {
            required: vec![CompiledClause::Prefix(prefix.clone())],
            excluded: Vec::new(),
        };
        let Some((query, scope)) = self.query(&request, &compiled)? else {
            return Ok(Vec::new());
        };
        let searcher = self.reader.searcher();
        let found: Vec<(u64, DocAddress)> = searcher
            .search(
                &query,
                &scope.filter(
                    TopDocs::with_limit(SUGGESTION_SOURCE_DOCUMENTS)
                        .order_by_fast_field::<u64>("sent_at", Order::Desc),
                ),
            )
            .map_err(|error| unavailable("suggesting", error))?;
        let mut words = Vec::new();
        for (_, address) in found {
            let stored: TantivyDocument = searcher
                .doc(address)
                .map_err(|error| unavailable("suggesting", error))?;
            if !self
                .read_document(&stored)
                .is_ok_and(|document| scope.conversations.contains(&document.conversation_id))
            {
                continue;
            }
            let text = stored
                .get_first(self.fields.text)
                .and_then(|value| value.as_str().map(str::to_owned))
                .unwrap_or_default();
            words.extend(
                self.analyzer
                    .tokens(&text, Purpose::Index)
                    .into_iter()
                    .filter(|token| token.folded.starts_with(prefix.as_str()))
                    .map(|token| token.folded),
            );
        }
        Ok(most_frequent(words, limit))
    }
}

#[async_trait]
impl SearchIndex for EmbeddedSearchIndex {
    async fn apply(
        &self,
        changes: Vec<IndexChange>,
        checkpoint: LogCursor,
    ) -> Result<(), StoreError> {
        self.on_writer_thread(move |inner| {
            let fields = inner.fields;
            let writer = inner.writer.lock().unwrap_or_else(PoisonError::into_inner);
            let result = (|| {
                for change in &changes {
                    match change {
                        IndexChange::Put(document) => {
                            writer.delete_term(doc_key(
                                &fields,
                                &document.tenant_id,
                                document.conversation_id,
                                document.message_id,
                            ));
                            writer
                                .add_document(inner.document(document))
                                .map_err(|error| unavailable("indexing a message", error))?;
                        }
                        IndexChange::Remove {
                            tenant_id,
                            conversation_id,
                            message_id,
                        } => {
                            writer.delete_term(doc_key(
                                &fields,
                                tenant_id,
                                *conversation_id,
                                *message_id,
                            ));
                        }
                    }
                }
                Ok(())
            })();
            inner.commit(writer, result, checkpoint)
        })
        .await
    }

    async fn checkpoint(&self) -> Result<LogCursor, StoreError> {
        Ok(*self
            .inner
            .checkpoint
            .lock()
            .unwrap_or_else(PoisonError::into_inner))
    }

    async fn search(&self, request: &SearchRequest) -> Result<SearchPage, StoreError> {
        let request = request.clone();
        self.blocking(move |inner| inner.search(&request)).await
    }

    async fn suggest(
        &self,
        tenant_id: &TenantId,
        scope: &[ReadableConversation],
        prefix: &str,
        limit: usize,
    ) -> Result<Vec<String>, StoreError> {
        let (tenant_id, scope, prefix) = (tenant_id.clone(), scope.to_vec(), prefix.to_owned());
        self.blocking(move |inner| inner.suggest(&tenant_id, &scope, &prefix, limit))
            .await
    }
}
