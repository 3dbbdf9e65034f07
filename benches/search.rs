//! The search benchmark: `EmbeddedSearchIndex` (tantivy) on a corpus of real chat-length text,
//! with SQLite FTS5 as the reference (`benches/search-fts5.py`, same corpus, same queries).
//!
//! It reads the corpus and the query set `benches/search-corpus` writes (real text from
//! Debian's fortune databases, cut into messages over 10,000 conversations and 50,000 users;
//! that script says how), indexes the messages into a fresh index in a directory under the
//! cache directory in batches of 1,024 changes, one `apply` (one commit) each, as the search
//! indexer does, and reports the indexing rate, its wall and CPU time, and the index's size on
//! disk per message once background merges have settled. Then, for each kind of query
//! (one word, a phrase, a prefix, a word with a `from:`, `after:` or `in:` filter), it runs
//! every query once to warm up and once timed, each as one user's search over the
//! conversations that user is a member of, limit 20, by relevance (and one-word queries
//! newest-first too), and reports p50, p99 and max latency and the mean number of hits.
//! A search is timed as a caller awaits it on a current-thread tokio runtime, so the hand-off
//! to the blocking pool and reading the page's stored documents (with highlights) count. It
//! measures the index alone, below the search service (no result cache, no membership lookup).
//!
//! Run it with `benches/run-search [N]`, which makes the corpus, runs this and the FTS5
//! reference pinned to one core and compares them; or alone with
//! `SEARCH_BENCH_MESSAGES=N cargo bench --bench search` (N defaults to 1,000,000), which runs
//! `benches/search-corpus N` first if the corpus of that size is not there yet.
//! Settings (environment): `SEARCH_BENCH_DIR` (the cache directory, default
//! `target/search-bench`), `SEARCH_BENCH_RESULTS` (the JSON-lines file results are appended to,
//! default `benches/results/<date>-search.jsonl`), `SEARCH_BENCH_RUN` (a label stored with each
//! line). Each query's latency and hits are also written to `<dir>/hits-switchboard-N.tsv`
//! (kind, sort, number within its kind, ms, hit count, message ids), so that the driver can
//! check that both engines find the same messages.

#![allow(clippy::print_stdout)] // Printing the report is the program's job.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::json;
use switchboard_engine::ids::{ConversationId, MessageId, Seq, TenantId, UserId};
use switchboard_engine::ports::LogCursor;
use switchboard_engine::search::SearchQuery;
use switchboard_engine::search::index::{
    IndexChange, ReadableConversation, SearchDocument, SearchIndex, SearchRequest, SearchSort,
};
use switchboard_engine::time::Timestamp;
use switchboard_storage::EmbeddedSearchIndex;
// tokio's clock, not `std::time::Instant` (which clippy.toml forbids): nothing here pauses time,
// so it reads the same monotonic clock.
use tokio::time::Instant;

/// Changes per `apply` (one commit each) unless `SEARCH_BENCH_BATCH` says otherwise: what the
/// search indexer commits at most at once by default (`search.index_batch`).
const BATCH_SIZE: usize = 1024;

/// The batch size: `SEARCH_BENCH_BATCH`, or [`BATCH_SIZE`].
fn batch_size() -> usize {
    std::env::var("SEARCH_BENCH_BATCH")
        .ok()
        .and_then(|text| text.parse().ok())
        .filter(|size| *size > 0)
        .unwrap_or(BATCH_SIZE)
}
/// Hits per page.
const LIMIT: usize = 20;
const DEFAULT_MESSAGES: usize = 1_000_000;
const TENANT: &str = "bench";
const QUERY_KINDS: [&str; 4] = ["one-word", "phrase", "prefix", "filtered"];
/// How long the index directory must stay unchanged before background merges count as done,
/// and the longest the benchmark waits for that.
const SETTLED_AFTER: Duration = Duration::from_secs(5);
const SETTLE_AT_MOST: Duration = Duration::from_secs(300);
/// The unit of `/proc/<pid>/stat` CPU times (`USER_HZ`, 100 on Linux).
const TICKS_PER_SECOND: f64 = 100.0;

struct Settings {
    n_messages: usize,
    directory: PathBuf,
    results: PathBuf,
    run: String,
}

impl Settings {
    fn from_environment() -> anyhow::Result<Self> {
        // `cargo bench` passes `--bench`; a bare number is the corpus size.
        let argument = std::env::args()
            .skip(1)
            .find(|argument| !argument.starts_with('-'));
        let n_messages = match argument.or_else(|| std::env::var("SEARCH_BENCH_MESSAGES").ok()) {
            Some(text) => text
                .replace('_', "")
                .parse()
                .with_context(|| format!("the corpus size {text:?} is not a number"))?,
            None => DEFAULT_MESSAGES,
        };
        let directory = match std::env::var_os("SEARCH_BENCH_DIR") {
            Some(directory) => PathBuf::from(directory),
            None => std::env::var_os("CARGO_TARGET_DIR")
                .map_or_else(|| PathBuf::from("target"), PathBuf::from)
                .join("search-bench"),
        };
        let results = std::env::var_os("SEARCH_BENCH_RESULTS").map_or_else(
            || PathBuf::from(format!("benches/results/{}-search.jsonl", today())),
            PathBuf::from,
        );
        let run = std::env::var("SEARCH_BENCH_RUN").unwrap_or_default();
        Ok(Self {
            n_messages,
            directory,
            results,
            run,
        })
    }
}

/// Today's date (UTC) as `YYYY-MM-DD`, for the default results file.
fn today() -> String {
    #[allow(clippy::disallowed_methods)] // The results file is named after the day of the run.
    let seconds = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs());
    // Howard Hinnant's `civil_from_days`.
    let days = (seconds / 86_400) as i64 + 719_468;
    let era = days.div_euclid(146_097);
    let day_of_era = days - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

/// This process's CPU time so far (user + system, every thread), in seconds.
fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return f64::NAN;
    };
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or(Vec::new(), |(_, rest)| rest.split_whitespace().collect());
    let ticks = |index: usize| {
        fields
            .get(index)
            .and_then(|field| field.parse::<f64>().ok())
            .unwrap_or(f64::NAN)
    };
    (ticks(11) + ticks(12)) / TICKS_PER_SECOND
}

fn tenant_id() -> TenantId {
    TenantId::parse(TENANT).expect("the bench tenant is a valid id")
}

/// Runs `benches/search-corpus` to write the corpus and the queries of this size.
fn make_corpus(settings: &Settings) -> anyhow::Result<()> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/search-corpus");
    eprintln!("==> no corpus yet: running {}", script.display());
    let status = std::process::Command::new(&script)
        .arg(settings.n_messages.to_string())
        .env("SEARCH_BENCH_DIR", &settings.directory)
        .stdout(std::process::Stdio::null())
        .status()
        .with_context(|| format!("running {}", script.display()))?;
    if !status.success() {
        bail!("{} failed ({status})", script.display());
    }
    Ok(())
}

fn read_corpus(path: &Path) -> anyhow::Result<(Vec<SearchDocument>, u64)> {
    let content = std::fs::read_to_string(path)
        .with_context(|| format!("reading the corpus {}", path.display()))?;
    let tenant_id = tenant_id();
    let mut documents = Vec::new();
    let mut text_bytes = 0u64;
    for (number, line) in content.lines().enumerate() {
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.splitn(7, '\t').collect();
        let [
            conversation,
            message,
            seq,
            sender,
            sent_at,
            attachment,
            text,
        ] = fields[..]
        else {
            bail!("line {} of the corpus has not 7 fields", number + 1);
        };
        let malformed = || format!("line {} of the corpus", number + 1);
        text_bytes += text.len() as u64;
        documents.push(SearchDocument {
            tenant_id: tenant_id.clone(),
            conversation_id: ConversationId::parse(conversation).with_context(malformed)?,
            message_id: MessageId::parse(message).with_context(malformed)?,
            seq: Seq(seq.parse().with_context(malformed)?),
            sender_id: UserId::parse(sender).with_context(malformed)?,
            sent_at: Timestamp(sent_at.parse().with_context(malformed)?),
            text: text.to_owned(),
            has_attachment: attachment == "1",
        });
    }
    Ok((documents, text_bytes))
}

struct BenchQuery {
    kind: String,
    request: SearchRequest,
}

fn read_queries(path: &Path) -> anyhow::Result<Vec<BenchQuery>> {
    let content = std::fs::read_to_string(path)
        .with_context(|| format!("reading the queries {}", path.display()))?;
    let mut queries = Vec::new();
    for (number, line) in content.lines().enumerate() {
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split('\t').collect();
        let [kind, _user, _terms, _filter, query, scope] = fields[..] else {
            bail!("line {} of the queries has not 6 fields", number + 1);
        };
        let query = SearchQuery::parse(query)
            .map_err(|error| anyhow::anyhow!("query {query:?} does not parse: {error}"))?;
        let scope = scope
            .split(',')
            .map(|conversation| {
                Ok(ReadableConversation {
                    conversation_id: ConversationId::parse(conversation)
                        .with_context(|| format!("line {} of the queries", number + 1))?,
                    hidden: Vec::new(),
                })
            })
            .collect::<anyhow::Result<_>>()?;
        queries.push(BenchQuery {
            kind: kind.to_owned(),
            request: SearchRequest {
                tenant_id: tenant_id(),
                query,
                scope,
                sort: SearchSort::Relevance,
                limit: LIMIT,
                cursor: None,
            },
        });
    }
    Ok(queries)
}

/// The bytes of the files under `path`.
fn directory_bytes(path: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(path) else {
        return 0;
    };
    entries
        .flatten()
        .map(|entry| match entry.metadata() {
            Ok(metadata) if metadata.is_dir() => directory_bytes(&entry.path()),
            Ok(metadata) => metadata.len(),
            Err(_) => 0,
        })
        .sum()
}

/// The bytes of the index's files by kind (tantivy's file extensions: `store` the stored
/// documents, `term` the term dictionaries, `idx` the postings, `pos` the positions, `fast`
/// the fast fields, ...).
fn bytes_by_kind(path: &Path) -> std::collections::BTreeMap<String, u64> {
    let mut kinds = std::collections::BTreeMap::new();
    for entry in std::fs::read_dir(path).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let kind = match name.rsplit_once('.') {
            Some((_, extension)) if !name.starts_with('.') => extension.to_owned(),
            _ => name,
        };
        *kinds.entry(kind).or_insert(0) += entry.metadata().map_or(0, |metadata| metadata.len());
    }
    kinds
}

/// The number of segments of the index's last saved metadata.
fn segment_count(path: &Path) -> usize {
    std::fs::read_to_string(path.join("meta.json"))
        .ok()
        .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
        .and_then(|meta| meta["segments"].as_array().map(Vec::len))
        .unwrap_or(0)
}

/// The names and sizes of the index's files: what changes while a merge runs.
fn directory_state(path: &Path) -> Vec<(String, u64)> {
    let mut state: Vec<(String, u64)> = std::fs::read_dir(path)
        .map(|entries| {
            entries
                .flatten()
                .map(|entry| {
                    let size = entry.metadata().map_or(0, |metadata| metadata.len());
                    (entry.file_name().to_string_lossy().into_owned(), size)
                })
                .collect()
        })
        .unwrap_or_default();
    state.sort();
    state
}

/// Whether the directory holds files of segments the last saved metadata does not list: a
/// merge is writing its new segment, or merged segments await deletion.
fn unlisted_segment_files(path: &Path) -> bool {
    let listed: Vec<String> = std::fs::read_to_string(path.join("meta.json"))
        .ok()
        .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
        .and_then(|meta| {
            meta["segments"].as_array().map(|segments| {
                segments
                    .iter()
                    .filter_map(|segment| segment["segment_id"].as_str())
                    .map(|id| id.replace('-', ""))
                    .collect()
            })
        })
        .unwrap_or_default();
    directory_state(path).iter().any(|(name, _)| {
        name.split_once('.').is_some_and(|(id, _)| {
            id.len() == 32
                && id.bytes().all(|byte| byte.is_ascii_hexdigit())
                && !listed.iter().any(|listed| listed == id)
        })
    })
}

/// Waits until tantivy's background merges are done (no segment files outside the saved
/// metadata, and the directory unchanged for [`SETTLED_AFTER`]), at most [`SETTLE_AT_MOST`];
/// returns how long that took, less the quiet time.
async fn settle(path: &Path) -> Duration {
    let started = Instant::now();
    let mut state = directory_state(path);
    let mut unchanged_since = Instant::now();
    while (unchanged_since.elapsed() < SETTLED_AFTER || unlisted_segment_files(path))
        && started.elapsed() < SETTLE_AT_MOST
    {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let now = directory_state(path);
        if now != state {
            state = now;
            unchanged_since = Instant::now();
        }
    }
    started.elapsed().saturating_sub(SETTLED_AFTER)
}

struct Sample {
    milliseconds: f64,
    message_ids: Vec<MessageId>,
}

/// Runs every query once (timed).
async fn run_queries(
    index: &EmbeddedSearchIndex,
    queries: &[&BenchQuery],
    sort: SearchSort,
) -> anyhow::Result<Vec<Sample>> {
    let mut samples = Vec::with_capacity(queries.len());
    for query in queries {
        let mut request = query.request.clone();
        request.sort = sort;
        let started = Instant::now();
        let page = index.search(&request).await.context("searching")?;
        let elapsed = started.elapsed();
        samples.push(Sample {
            milliseconds: elapsed.as_secs_f64() * 1000.0,
            message_ids: page
                .hits
                .iter()
                .map(|hit| hit.document.message_id)
                .collect(),
        });
    }
    Ok(samples)
}

/// The value at quantile `quantile` of sorted `values` (nearest rank).
fn quantile(sorted: &[f64], quantile: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (quantile * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn round3(value: f64) -> f64 {
    (value * 1000.0).round() / 1000.0
}

struct QueryFigures {
    kind: String,
    sort: &'static str,
    n: usize,
    p50: f64,
    p99: f64,
    max: f64,
    mean: f64,
    mean_hits: f64,
    zero_hit_queries: usize,
    cpu_seconds: f64,
}

fn query_figures(
    kind: &str,
    sort: &'static str,
    samples: &[Sample],
    cpu_seconds: f64,
) -> QueryFigures {
    let mut latencies: Vec<f64> = samples.iter().map(|sample| sample.milliseconds).collect();
    latencies.sort_by(f64::total_cmp);
    let n = samples.len().max(1) as f64;
    QueryFigures {
        kind: kind.to_owned(),
        sort,
        n: samples.len(),
        p50: quantile(&latencies, 0.50),
        p99: quantile(&latencies, 0.99),
        max: latencies.last().copied().unwrap_or(f64::NAN),
        mean: latencies.iter().sum::<f64>() / n,
        mean_hits: samples
            .iter()
            .map(|sample| sample.message_ids.len())
            .sum::<usize>() as f64
            / n,
        zero_hit_queries: samples
            .iter()
            .filter(|sample| sample.message_ids.is_empty())
            .count(),
        cpu_seconds,
    }
}

fn main() -> anyhow::Result<()> {
    let settings = Settings::from_environment()?;
    // One thread drives the searches; the index does its work on tokio's blocking pool, as in
    // the server.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting tokio")?;
    runtime.block_on(run(settings))
}

async fn run(settings: Settings) -> anyhow::Result<()> {
    let n_messages = settings.n_messages;
    let corpus_path = settings.directory.join(format!("corpus-{n_messages}.tsv"));
    let queries_path = settings.directory.join(format!("queries-{n_messages}.tsv"));
    if !corpus_path.exists() || !queries_path.exists() {
        make_corpus(&settings)?;
    }
    let (documents, text_bytes) = read_corpus(&corpus_path)?;
    if documents.len() != n_messages {
        bail!(
            "{} holds {} messages, not {n_messages}",
            corpus_path.display(),
            documents.len()
        );
    }
    let queries = read_queries(&queries_path)?;
    let batch_size = batch_size();
    let mut batches: Vec<Vec<IndexChange>> = Vec::new();
    let mut documents = documents.into_iter().peekable();
    while documents.peek().is_some() {
        batches.push(
            documents
                .by_ref()
                .take(batch_size)
                .map(IndexChange::Put)
                .collect(),
        );
    }

    let index_directory = tempfile::Builder::new()
        .prefix("tantivy-")
        .tempdir_in(&settings.directory)
        .context("creating the index directory")?;
    let index = EmbeddedSearchIndex::open(index_directory.path()).context("opening the index")?;
    eprintln!(
        "==> indexing {n_messages} messages in {} batches of {batch_size}",
        batches.len()
    );
    let cpu_before = cpu_seconds();
    let started = Instant::now();
    for (number, batch) in batches.into_iter().enumerate() {
        index
            .apply(batch, LogCursor(number as u64 + 1))
            .await
            .context("indexing a batch")?;
    }
    let indexing_seconds = started.elapsed().as_secs_f64();
    let indexing_cpu_seconds = cpu_seconds() - cpu_before;
    let segments_after_indexing = segment_count(index_directory.path());
    eprintln!("==> indexed in {indexing_seconds:.1} s; waiting for merges to settle");
    let settle_seconds = settle(index_directory.path()).await.as_secs_f64();
    let settled_cpu_seconds = cpu_seconds() - cpu_before;
    let index_bytes = directory_bytes(index_directory.path());
    let index_bytes_by_kind = bytes_by_kind(index_directory.path());
    let segments = segment_count(index_directory.path());
    if index.n_documents() != n_messages as u64 {
        bail!(
            "the index holds {} documents, not {n_messages}",
            index.n_documents()
        );
    }

    eprintln!("==> warming up: every query once");
    for query in &queries {
        index.search(&query.request).await.context("searching")?;
        if query.kind == "one-word" {
            let mut request = query.request.clone();
            request.sort = SearchSort::Newest;
            index.search(&request).await.context("searching")?;
        }
    }
    let mut figures = Vec::new();
    let mut hits_dump = String::new();
    let runs = QUERY_KINDS
        .iter()
        .map(|kind| (*kind, SearchSort::Relevance, "relevance"))
        .chain([("one-word", SearchSort::Newest, "newest")]);
    for (kind, sort, sort_name) in runs {
        let of_kind: Vec<&BenchQuery> = queries.iter().filter(|query| query.kind == kind).collect();
        let cpu_before = cpu_seconds();
        let samples = run_queries(&index, &of_kind, sort).await?;
        figures.push(query_figures(
            kind,
            sort_name,
            &samples,
            cpu_seconds() - cpu_before,
        ));
        for (number, sample) in samples.iter().enumerate() {
            let ids: Vec<String> = sample.message_ids.iter().map(ToString::to_string).collect();
            writeln!(
                hits_dump,
                "{kind}\t{sort_name}\t{number}\t{:.3}\t{}\t{}",
                sample.milliseconds,
                ids.len(),
                ids.join(",")
            )
            .expect("writing to a string cannot fail");
        }
    }
    std::fs::write(
        settings
            .directory
            .join(format!("hits-switchboard-{n_messages}.tsv")),
        hits_dump,
    )
    .context("writing the hits")?;

    // The report: a table, then one JSON line per figure.
    let messages_per_second = n_messages as f64 / indexing_seconds;
    let bytes_per_message = index_bytes as f64 / n_messages as f64;
    println!(
        "\nSwitchboard search (EmbeddedSearchIndex, tantivy), {n_messages} messages \
         ({:.0} bytes of text each)",
        text_bytes as f64 / n_messages as f64
    );
    println!(
        "indexing: {messages_per_second:.0} messages/s, {indexing_seconds:.1} s wall, \
         {indexing_cpu_seconds:.1} s CPU ({settled_cpu_seconds:.1} s with merges); \
         merges settled {settle_seconds:.1} s later"
    );
    println!(
        "index: {index_bytes} bytes on disk, {bytes_per_message:.0} bytes per message, \
         {segments} segments ({segments_after_indexing} right after the last commit)"
    );
    let kinds: Vec<String> = index_bytes_by_kind
        .iter()
        .map(|(kind, bytes)| format!("{kind} {:.0}", *bytes as f64 / n_messages as f64))
        .collect();
    println!("bytes per message by file kind: {}", kinds.join(", "));
    println!(
        "\n| query | sort | n | p50 ms | p99 ms | max ms | mean ms | mean hits | no hit | CPU s |"
    );
    println!("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    for figure in &figures {
        println!(
            "| {} | {} | {} | {:.3} | {:.3} | {:.3} | {:.3} | {:.1} | {} | {:.2} |",
            figure.kind,
            figure.sort,
            figure.n,
            figure.p50,
            figure.p99,
            figure.max,
            figure.mean,
            figure.mean_hits,
            figure.zero_hit_queries,
            figure.cpu_seconds
        );
    }

    let common = json!({
        "bench": "search",
        "run": settings.run,
        "target": "switchboard",
        "engine": "tantivy 0.25 (EmbeddedSearchIndex)",
        "messages": n_messages,
        "text_bytes_per_message": round3(text_bytes as f64 / n_messages as f64),
    });
    let mut lines = vec![json!({
        "figure": "indexing",
        "batch": batch_size,
        "seconds": round3(indexing_seconds),
        "messages_per_s": messages_per_second.round() as u64,
        "cpu_s": round3(indexing_cpu_seconds),
        "cpu_s_with_merges": round3(settled_cpu_seconds),
        "settle_seconds": round3(settle_seconds),
        "index_bytes": index_bytes,
        "bytes_per_message": round3(bytes_per_message),
        "index_bytes_by_kind": index_bytes_by_kind,
        "segments": segments,
        "segments_after_indexing": segments_after_indexing,
    })];
    for figure in &figures {
        lines.push(json!({
            "figure": "query",
            "kind": figure.kind,
            "sort": figure.sort,
            "limit": LIMIT,
            "latency_ms": {
                "n": figure.n,
                "p50": round3(figure.p50),
                "p99": round3(figure.p99),
                "max": round3(figure.max),
                "mean": round3(figure.mean),
            },
            "mean_hits": round3(figure.mean_hits),
            "zero_hit_queries": figure.zero_hit_queries,
            "cpu_s": round3(figure.cpu_seconds),
        }));
    }
    if let Some(parent) = settings.results.parent() {
        std::fs::create_dir_all(parent).context("creating the results directory")?;
    }
    let mut results = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&settings.results)
        .with_context(|| format!("opening {}", settings.results.display()))?;
    for mut line in lines {
        if let (Some(line), Some(common)) = (line.as_object_mut(), common.as_object()) {
            for (key, value) in common {
                line.insert(key.clone(), value.clone());
            }
        }
        writeln!(results, "{line}").context("writing a result")?;
    }
    println!("\nresults appended to {}", settings.results.display());
    drop(index);
    drop(index_directory);
    Ok(())
}
