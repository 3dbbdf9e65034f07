//! The `switchboard` package's library: wires the crates into a running server.
//!
//! The binary (`src/main.rs`) and the integration tests both call [`start`], so tests exercise
//! exactly what ships. This is the composition root: it opens storage, starts the actor system,
//! builds the authenticator and binds the listener. Nothing else depends on all the crates.

#![warn(missing_docs)]

pub mod config;
pub mod listener;
pub mod logging;
pub mod process;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use switchboard_actors::clock::{IdGenerator, SystemClock};
use switchboard_actors::media::collector::{MediaCollectorArgs, MediaCollectorHandle};
use switchboard_actors::media::thumbnailer::{ThumbnailerArgs, ThumbnailerHandle};
use switchboard_actors::media::{MediaPorts, MediaService};
use switchboard_actors::search::indexer::{IndexerArgs, IndexerStats, SearchIndexerHandle};
use switchboard_actors::search::live::LiveSearchIndex;
use switchboard_actors::search::service::{SearchPorts, SearchService};
use switchboard_actors::system::{ClusterPorts, RecordingPorts, System, SystemPorts};
use switchboard_engine::backoff::Backoff;
use switchboard_engine::media::MediaStore;
use switchboard_engine::ports::{Clock, MessageStore};
use switchboard_engine::recording::{ObjectStore, RecordingStore};
use switchboard_engine::search::index::{IndexGeneration, SearchIndexGenerations};
use switchboard_engine::search::recent::RecentSearches;
use switchboard_storage::{EmbeddedMessageStore, MemoryMessageStore};
use switchboard_transport::auth::Authenticator;
use switchboard_transport::codec::JsonEventEncoder;
use switchboard_transport::server::{App, serve};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_util::task::TaskTracker;

use crate::config::{
    Config, ObjectStoreConfig, StorageBackend, TurnRelay, development_secret, media_link_secret,
    turn_secret,
};
use switchboard_transport::link_signing::MediaLinkSigner;
use switchboard_transport::metrics::MetricsSource;
use switchboard_turn::health::{HealthBoard, HealthChecker, HealthCheckerArgs};
use switchboard_turn::relay::EmbeddedRelay;
use switchboard_turn::relay::failures::RelayAuthFailures;

/// The directory under `server.data_dir` that holds the embedded store.
pub const STORE_DIR: &str = "store";
/// The recording metadata store's directory inside `server.data_dir` (embedded storage).
pub const RECORDINGS_DIR: &str = "recordings";
/// The recorded media's directory inside `server.data_dir` (filesystem object store).
pub const OBJECTS_DIR: &str = "objects";
/// The media records' directory inside `server.data_dir`.
pub const MEDIA_DIR: &str = "media";
/// The search index's directory under `server.data_dir`.
pub const SEARCH_DIR: &str = "search";

/// The subdirectory of `server.data_dir` that holds users' recent searches (embedded backend).
pub const RECENT_SEARCHES_DIR: &str = "recent-searches";

/// A running server.
pub struct Server {
    local_addr: SocketAddr,
    system: Arc<System>,
    app: Arc<App>,
    stop_accepting: Option<oneshot::Sender<()>>,
    serve_task: JoinHandle<switchboard_transport::Result<()>>,
    shutdown_timeout: Duration,
    /// Probes the TURN and STUN servers, when any are configured.
    turn_health: Option<HealthChecker>,
    /// The embedded TURN relay, unless turned off.
    relay: Option<EmbeddedRelay>,
    /// Removes deleted media, expired uploads and orphans.
    media_collector: Option<MediaCollectorHandle>,
    thumbnailer: Option<ThumbnailerHandle>,
    /// Follows the event log into the search index, when search is on.
    search_indexer: Option<SearchIndexerHandle>,
    /// Brings remote stores up at start-up (see [`prepare_store`] and [`open_objects`]).
    preparations: Vec<JoinHandle<()>>,
}

/// The TURN health board's metrics, for `GET /metrics`.
struct TurnHealthMetrics(Arc<HealthBoard>);

impl MetricsSource for TurnHealthMetrics {
    fn register(&self, registry: &mut prometheus_client::registry::Registry) {
        self.0.register_metrics(registry);
    }
}

/// The search indexer's counters, for `GET /metrics`.
struct SearchMetrics(Arc<IndexerStats>);

impl MetricsSource for SearchMetrics {
    fn register(&self, registry: &mut prometheus_client::registry::Registry) {
        use prometheus_client::metrics::counter::Counter;
        use prometheus_client::metrics::gauge::Gauge;
        use std::sync::atomic::Ordering;
        let stats = &self.0;
        let counter = |value: u64| {
            let counter: Counter = Counter::default();
            counter.inc_by(value);
            counter
        };
        registry.register(
            "switchboard_search_indexed_changes",
            "Documents put into or removed from the search index",
            counter(stats.changes.load(Ordering::Relaxed)),
        );
        registry.register(
            "switchboard_search_commits",
            "Commits of the search index (one per batch of the event log)",
            counter(stats.commits.load(Ordering::Relaxed)),
        );
        #[allow(clippy::cast_precision_loss)] // Microseconds of commits fit an f64 for ages.
        let commit_seconds = CountedHistogram {
            sum: stats.commit_micros.load(Ordering::Relaxed) as f64 / 1e6,
            count: stats.commits.load(Ordering::Relaxed),
            buckets: switchboard_actors::search::indexer::COMMIT_SECONDS_BOUNDS
                .iter()
                .copied()
                .chain(std::iter::once(f64::INFINITY))
                .zip(&stats.commit_buckets)
                .map(|(bound, count)| (bound, count.load(Ordering::Relaxed)))
                .collect(),
        };
        registry.register(
            "switchboard_search_commit_seconds",
            "How long commits of the search index take (reading a batch of the event log and committing it)",
            commit_seconds,
        );
        registry.register(
            "switchboard_search_indexing_failures",
            "Batches of the event log the indexer failed to apply (each retried)",
            counter(stats.failures.load(Ordering::Relaxed)),
        );
        let checkpoint: Gauge = Gauge::default();
        checkpoint.set(i64::try_from(stats.checkpoint.load(Ordering::Relaxed)).unwrap_or(i64::MAX));
        registry.register(
            "switchboard_search_checkpoint",
            "The event-log position the search index reflects",
            checkpoint,
        );
        let gauge = |value: u64| {
            let gauge: Gauge = Gauge::default();
            gauge.set(i64::try_from(value).unwrap_or(i64::MAX));
            gauge
        };
        registry.register(
            "switchboard_search_generation",
            "The generation of the search index that answers searches (a rebuild makes a new one)",
            gauge(stats.generation.load(Ordering::Relaxed)),
        );
        registry.register(
            "switchboard_search_lag_entries",
            "Event-log entries the search index had not yet taken when the indexer last looked (counted up to 10000)",
            gauge(stats.lag_entries.load(Ordering::Relaxed)),
        );
        let lag_seconds: Gauge<f64, std::sync::atomic::AtomicU64> = Gauge::default();
        #[allow(clippy::cast_precision_loss)] // Milliseconds of lag fit an f64 exactly.
        lag_seconds.set(stats.lag_millis.load(Ordering::Relaxed) as f64 / 1e3);
        registry.register(
            "switchboard_search_lag_seconds",
            "How long ago the oldest event-log entry the search index had not yet taken was stored (0 when it had caught up)",
            lag_seconds,
        );
    }
}

/// A histogram counted elsewhere (by the search indexer, in atomics), encoded as it stands at
/// a scrape: the sum, the count, and each bucket's own count with its upper bound.
#[derive(Debug)]
struct CountedHistogram {
    sum: f64,
    count: u64,
    buckets: Vec<(f64, u64)>,
}

impl prometheus_client::metrics::TypedMetric for CountedHistogram {
    const TYPE: prometheus_client::metrics::MetricType =
        prometheus_client::metrics::MetricType::Histogram;
}

impl prometheus_client::encoding::EncodeMetric for CountedHistogram {
    fn encode(
        &self,
        mut encoder: prometheus_client::encoding::MetricEncoder<'_>,
    ) -> Result<(), std::fmt::Error> {
        encoder.encode_histogram::<prometheus_client::encoding::NoLabelSet>(
            self.sum,
            self.count,
            &self.buckets,
            None,
        )
    }

    fn metric_type(&self) -> prometheus_client::metrics::MetricType {
        prometheus_client::metrics::MetricType::Histogram
    }
}

/// The embedded relay's refused credentials, for `GET /metrics`.
struct TurnRelayMetrics(Arc<RelayAuthFailures>);

impl MetricsSource for TurnRelayMetrics {
    fn register(&self, registry: &mut prometheus_client::registry::Registry) {
        self.0.register_metrics(registry);
    }
}

/// Opens the configured store.
///
/// # Errors
/// If the embedded store cannot be opened, or the MongoDB URI is malformed. A MongoDB server
/// that is not reachable yet is not an error: the store connects when it can, and `/ready`
/// reports it until then.
pub async fn open_store(config: &Config) -> anyhow::Result<Arc<dyn MessageStore>> {
    Ok(match &config.storage.backend {
        StorageBackend::Memory => Arc::new(MemoryMessageStore::new()),
        StorageBackend::Embedded => {
            let path = config.server.data_dir.join(STORE_DIR);
            std::fs::create_dir_all(&path)
                .with_context(|| format!("creating {}", path.display()))?;
            Arc::new(
                EmbeddedMessageStore::open(&path)
                    .with_context(|| format!("opening the embedded store in {}", path.display()))?,
            )
        }
        #[cfg(feature = "mongodb")]
        // Behind a circuit breaker: when MongoDB goes away, calls fail at once instead of each
        // waiting for the server selection timeout, and a probe finds it when it is back.
        StorageBackend::Mongodb(mongodb) => {
            Arc::new(switchboard_storage::breaker::BreakerStore::new(
                switchboard_storage::MongoMessageStore::open(
                    &mongodb.uri,
                    &mongodb.database,
                    mongodb.server_timeout(),
                )
                .await
                .context("opening the MongoDB store")?,
                mongodb.breaker_settings(),
            ))
        }
        #[cfg(not(feature = "mongodb"))]
        StorageBackend::Mongodb(_) => anyhow::bail!(
            "storage.backend = \"mongodb\" needs a build with the MongoDB adapter: \
             cargo build --release --features mongodb"
        ),
    })
}

/// Opens the store of recordings' metadata (consents, start and stop, quality, the audit log):
/// the one that matches `[storage]`. Their media goes to the object store media uses
/// ([`open_objects`]).
///
/// # Errors
/// If the directory cannot be created or opened, or the MongoDB URI is malformed.
pub async fn open_recording_store(config: &Config) -> anyhow::Result<Arc<dyn RecordingStore>> {
    Ok(match &config.storage.backend {
        StorageBackend::Memory => Arc::new(switchboard_storage::MemoryRecordingStore::new()),
        StorageBackend::Embedded => {
            let path = config.server.data_dir.join(RECORDINGS_DIR);
            std::fs::create_dir_all(&path)
                .with_context(|| format!("creating {}", path.display()))?;
            Arc::new(
                switchboard_storage::EmbeddedRecordingStore::open(&path).with_context(|| {
                    format!("opening the recording store in {}", path.display())
                })?,
            )
        }
        #[cfg(feature = "mongodb")]
        StorageBackend::Mongodb(mongodb) => {
            Arc::new(switchboard_storage::MongoRecordingStore::new(
                &switchboard_storage::MongoMessageStore::open(
                    &mongodb.uri,
                    &mongodb.database,
                    mongodb.server_timeout(),
                )
                .await
                .context("opening the MongoDB recording store")?,
            ))
        }
        #[cfg(not(feature = "mongodb"))]
        StorageBackend::Mongodb(_) => anyhow::bail!(
            "storage.backend = \"mongodb\" needs a build with the MongoDB adapter: \
             cargo build --release --features mongodb"
        ),
    })
}

/// A task that brings a remote store up at start-up, if the store needs one.
pub type Preparation = Option<JoinHandle<()>>;

/// Opens the object store `[objects]` names, which keeps the bytes of media and of recordings'
/// media. Like MongoDB, S3 may be away at start: the returned task keeps asking it (and
/// creates the bucket) until it answers, and `/ready` says what is missing meanwhile.
///
/// # Errors
/// If the directory cannot be created or opened, or an S3 setting is malformed.
pub fn open_objects(config: &Config) -> anyhow::Result<(Arc<dyn ObjectStore>, Preparation)> {
    // Only a remote object store needs bringing up.
    #[cfg_attr(not(feature = "s3"), allow(unused_mut))]
    let mut preparation = None;
    let objects: Arc<dyn ObjectStore> = match &config.objects.store {
        ObjectStoreConfig::Memory => Arc::new(switchboard_storage::MemoryObjectStore::new()),
        ObjectStoreConfig::Filesystem => {
            let path = config.server.data_dir.join(OBJECTS_DIR);
            Arc::new(
                switchboard_storage::object_files::FilesystemObjectStore::open(&path)
                    .with_context(|| format!("opening the object store in {}", path.display()))?,
            )
        }
        #[cfg(feature = "s3")]
        ObjectStoreConfig::S3(s3) => {
            let settings = s3.s3_settings();
            let store = switchboard_storage::s3::S3ObjectStore::new(settings.clone())
                .context("the S3 object store's settings (objects.s3_*)")?;
            preparation = Some(keep_trying(
                "the S3 object store (bucket in place)",
                move || {
                    let settings = settings.clone();
                    async move {
                        switchboard_storage::s3::S3ObjectStore::connect(settings)
                            .await
                            .map(drop)
                    }
                },
            ));
            Arc::new(store)
        }
        #[cfg(not(feature = "s3"))]
        ObjectStoreConfig::S3(_) => anyhow::bail!(
            "objects.backend = \"s3\" needs a build with the S3 adapter: \
             cargo build --release --features s3"
        ),
    };
    Ok((objects, preparation))
}

/// The search index `[search]` asks for: its current generation and where new generations
/// are made.
pub struct OpenedSearchIndex {
    /// The generation searches read at start.
    pub live: IndexGeneration,
    /// Makes and promotes generations (rebuilds).
    pub generations: Arc<dyn SearchIndexGenerations>,
}

/// Opens the search index `[search]` asks for: none when search is off, in memory with the
/// memory backend, else the tantivy index's current generation in `<data_dir>/search` (each
/// node keeps its own, fed from the shared log). An index of another schema version (or none)
/// is replaced by a new, empty generation, which the indexer rebuilds from the event log.
///
/// # Errors
/// If the directory cannot be used.
pub fn open_search_index(config: &Config) -> anyhow::Result<Option<OpenedSearchIndex>> {
    if !config.search.enabled {
        return Ok(None);
    }
    Ok(Some(match config.storage.backend {
        StorageBackend::Memory => {
            let (generations, live) = switchboard_storage::MemorySearchGenerations::new();
            OpenedSearchIndex {
                live,
                generations: Arc::new(generations),
            }
        }
        _ => {
            let path = config.server.data_dir.join(SEARCH_DIR);
            let (generations, live, opened) = switchboard_storage::EmbeddedSearchGenerations::open(
                &path,
                config.search.indexer_nice,
            )
            .with_context(|| format!("opening the search index in {}", path.display()))?;
            if let switchboard_storage::OpenedGeneration::Rebuilding(reason) = opened {
                tracing::warn!(
                    generation = live.number,
                    "{reason}: indexing the event log into a new search index from its start"
                );
            }
            OpenedSearchIndex {
                live,
                generations: Arc::new(generations),
            }
        }
    }))
}

/// Opens the store of users' recent searches that matches `[storage]`: in memory, a fjall
/// database in `<data_dir>/recent-searches`, or the MongoDB database (shared by every node).
///
/// # Errors
/// If the directory cannot be created or opened, or the MongoDB URI is malformed.
pub async fn open_recent_searches(config: &Config) -> anyhow::Result<Arc<dyn RecentSearches>> {
    Ok(match &config.storage.backend {
        StorageBackend::Memory => Arc::new(switchboard_storage::MemoryRecentSearches::new()),
        StorageBackend::Embedded => {
            let path = config.server.data_dir.join(RECENT_SEARCHES_DIR);
            std::fs::create_dir_all(&path)
                .with_context(|| format!("creating {}", path.display()))?;
            Arc::new(
                switchboard_storage::EmbeddedRecentSearches::open(&path).with_context(|| {
                    format!("opening the recent searches in {}", path.display())
                })?,
            )
        }
        #[cfg(feature = "mongodb")]
        StorageBackend::Mongodb(mongodb) => {
            Arc::new(switchboard_storage::MongoRecentSearches::new(
                &switchboard_storage::MongoMessageStore::open(
                    &mongodb.uri,
                    &mongodb.database,
                    mongodb.server_timeout(),
                )
                .await
                .context("opening the MongoDB recent searches")?,
            ))
        }
        #[cfg(not(feature = "mongodb"))]
        StorageBackend::Mongodb(_) => anyhow::bail!(
            "storage.backend = \"mongodb\" needs a build with the MongoDB adapter: \
             cargo build --release --features mongodb"
        ),
    })
}

/// Opens the media records' store: in memory with the memory backend, a fjall database in
/// `<data_dir>/media` with the embedded one, and collections in the MongoDB database with
/// MongoDB (shared by every node, so an upload begun on one continues on another). The bytes
/// are wherever `[objects]` puts objects.
///
/// # Errors
/// If the directory cannot be created or opened, or the MongoDB URI is malformed.
pub async fn open_media_store(config: &Config) -> anyhow::Result<Arc<dyn MediaStore>> {
    match &config.storage.backend {
        StorageBackend::Memory => Ok(Arc::new(switchboard_storage::MemoryMediaStore::new())),
        StorageBackend::Embedded => {
            let path = config.server.data_dir.join(MEDIA_DIR);
            std::fs::create_dir_all(&path)
                .with_context(|| format!("creating {}", path.display()))?;
            let store = switchboard_storage::EmbeddedMediaStore::open(&path)
                .with_context(|| format!("opening the media store in {}", path.display()))?;
            Ok(Arc::new(store))
        }
        #[cfg(feature = "mongodb")]
        StorageBackend::Mongodb(mongodb) => {
            Ok(Arc::new(switchboard_storage::MongoMediaStore::new(
                &switchboard_storage::MongoMessageStore::open(
                    &mongodb.uri,
                    &mongodb.database,
                    mongodb.server_timeout(),
                )
                .await
                .context("opening the MongoDB media store")?,
            )))
        }
        #[cfg(not(feature = "mongodb"))]
        StorageBackend::Mongodb(_) => anyhow::bail!(
            "storage.backend = \"mongodb\" needs a build with the MongoDB adapter: \
             cargo build --release --features mongodb"
        ),
    }
}

/// Where completed uploads are announced: the media topic, when a Kafka pipeline is
/// configured (`kafka.brokers`); else nowhere.
///
/// # Errors
/// If the Kafka client cannot be configured.
pub fn open_media_events(
    config: &Config,
) -> anyhow::Result<Option<Arc<dyn switchboard_engine::media::MediaEvents>>> {
    let Some(brokers) = &config.kafka.brokers else {
        return Ok(None);
    };
    #[cfg(feature = "kafka")]
    {
        let events = switchboard_storage::KafkaMediaEvents::start(
            brokers,
            &config.kafka.media_topic,
            config.kafka.partitions,
            config.kafka.replication_factor,
        )
        .context("starting the media events producer")?;
        Ok(Some(Arc::new(events)))
    }
    #[cfg(not(feature = "kafka"))]
    {
        let _ = brokers;
        Ok(None)
    }
}

/// Starts what the nodes of a deployment share through Redis (`[cluster] redis_url`): the
/// bus, the rate-limit budgets and the presence directory. `None` for a single node.
///
/// # Errors
/// If the Redis URL is malformed. A Redis server that is not reachable yet is not an error:
/// the adapters connect when they can, and `/ready` reports it until then.
pub fn open_cluster(config: &Config) -> anyhow::Result<Option<ClusterPorts>> {
    let Some(url) = &config.cluster.redis_url else {
        return Ok(None);
    };
    let node_id = node_id(config);
    #[cfg(feature = "redis")]
    {
        let prefix = config.cluster.key_prefix.as_str();
        tracing::info!(%node_id, "cluster over Redis");
        Ok(Some(ClusterPorts {
            bus: Arc::new(
                switchboard_storage::RedisClusterBus::start(url, prefix, node_id.clone())
                    .context("starting the Redis cluster bus")?,
            ),
            rate_limiter: Arc::new(
                switchboard_storage::RedisRateLimiter::new(url, prefix)
                    .context("starting the shared rate limits")?,
            ),
            presence: Arc::new(
                switchboard_storage::RedisPresenceDirectory::start(url, prefix, node_id)
                    .context("starting the presence directory")?,
            ),
        }))
    }
    #[cfg(not(feature = "redis"))]
    {
        let _ = (url, node_id);
        anyhow::bail!(
            "cluster.redis_url needs a build with the Redis cluster bus: \
             cargo build --release --features redis"
        )
    }
}

/// Puts the Kafka pipeline in front of `store` when `[kafka] brokers` is set.
///
/// # Errors
/// If a Kafka client cannot be configured. Brokers that are away are not an error: the
/// pipeline connects when it can, and `/ready` reports it until then.
pub async fn with_pipeline(
    config: &Config,
    store: Arc<dyn MessageStore>,
) -> anyhow::Result<Arc<dyn MessageStore>> {
    let Some(brokers) = &config.kafka.brokers else {
        return Ok(store);
    };
    #[cfg(feature = "kafka")]
    {
        let settings = config.kafka.kafka_settings(brokers, node_id(config));
        Ok(Arc::new(
            switchboard_storage::kafka::KafkaPipelineStore::start(store, settings)
                .await
                .context("starting the Kafka pipeline")?,
        ))
    }
    #[cfg(not(feature = "kafka"))]
    {
        let _ = (brokers, store);
        anyhow::bail!(
            "kafka.brokers needs a build with the Kafka pipeline: cargo build --release --features kafka"
        )
    }
}

/// This node's id: `cluster.node_id`, or one drawn at random once per process.
fn node_id(config: &Config) -> String {
    static RANDOM_NODE_ID: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    if let Some(node_id) = &config.cluster.node_id {
        return node_id.clone();
    }
    RANDOM_NODE_ID
        .get_or_init(|| {
            let mut bytes = [0u8; 6];
            // Without randomness from the OS, the time still tells nodes apart in practice.
            if getrandom::fill(&mut bytes).is_err() {
                bytes.copy_from_slice(&SystemClock.now().as_millis().to_be_bytes()[2..]);
            }
            format!("node-{}", hex::encode(bytes))
        })
        .clone()
}

/// Asks a remote store to answer at start-up, retrying with capped, jittered backoff until it
/// does, so that its indexes are created (and the Kafka topics exist) before the first request
/// needs them, and the log says when the store is ready. The engine serves meanwhile; `/ready`
/// tells what is missing.
fn prepare_store(store: Arc<dyn MessageStore>) -> JoinHandle<()> {
    keep_trying("storage (indexes in place)", move || {
        let store = Arc::clone(&store);
        async move { store.ping().await }
    })
}

/// Runs `attempt` until it succeeds, with capped, jittered backoff, logging the first failure
/// and every tenth; `what` names the backend in the log.
fn keep_trying<Attempt, Attempting>(what: &'static str, mut attempt: Attempt) -> JoinHandle<()>
where
    Attempt: FnMut() -> Attempting + Send + 'static,
    Attempting: Future<Output = Result<(), switchboard_engine::StoreError>> + Send,
{
    const PREPARE_BACKOFF: Backoff = Backoff {
        base: Duration::from_millis(100),
        max: Duration::from_millis(6_400),
    };
    #[allow(clippy::disallowed_methods)] // Owned by `Server`, aborted at shutdown.
    tokio::spawn(async move {
        let mut n_attempts = 0u32;
        loop {
            match attempt().await {
                Ok(()) => {
                    tracing::info!(what, "ready");
                    return;
                }
                Err(error) => {
                    if n_attempts.is_multiple_of(10) {
                        tracing::warn!(%error, what, attempt = n_attempts, "not ready yet; retrying");
                    }
                    let mut random = [0u8; 1];
                    let jitter = if getrandom::fill(&mut random).is_ok() {
                        f64::from(random[0]) / 255.0
                    } else {
                        0.5
                    };
                    tokio::time::sleep(PREPARE_BACKOFF.delay(n_attempts, jitter)).await;
                    n_attempts = n_attempts.saturating_add(1);
                }
            }
        }
    })
}

/// Adapters given to [`start_with_ports`] instead of the ones the configuration names: how
/// tests run several nodes in one process on one in-memory store.
#[derive(Default)]
pub struct Ports {
    /// The store, instead of `[storage]`'s.
    pub store: Option<Arc<dyn MessageStore>>,
    /// What the nodes share (bus, rate limits, presence), instead of `[cluster]`'s.
    pub cluster: Option<ClusterPorts>,
    /// Where recordings are kept, instead of what `[storage]` and `[objects]` name.
    pub recordings: Option<RecordingPorts>,
}

/// Starts everything and begins accepting connections.
///
/// # Errors
/// If storage cannot be opened, the auth configuration is invalid, the actor system fails to
/// start or the address cannot be bound.
pub async fn start(config: Config) -> anyhow::Result<Server> {
    start_with_ports(config, Ports::default()).await
}

/// [`start`], with some adapters given rather than opened from the configuration.
///
/// # Errors
/// As [`start`].
pub async fn start_with_ports(config: Config, ports: Ports) -> anyhow::Result<Server> {
    config.validate()?;
    let secret = development_secret(&config.auth, &config.server.data_dir)?;
    let authenticator =
        Authenticator::new(&config.auth_settings(secret)?).context("invalid auth configuration")?;
    let store = match ports.store {
        Some(store) => store,
        None => open_store(&config).await?,
    };
    let store = with_pipeline(&config, store).await?;
    let store_preparation = config
        .storage
        .is_shared()
        .then(|| prepare_store(Arc::clone(&store)));
    let cluster = match ports.cluster {
        Some(cluster) => Some(cluster),
        None => open_cluster(&config)?,
    };
    // One object store keeps every stored file: recordings' media lives next to media's.
    let (objects, recordings, objects_preparation) = match ports.recordings {
        Some(recordings) => (Arc::clone(&recordings.objects), recordings, None),
        None => {
            let (objects, preparation) = open_objects(&config)?;
            let recordings = RecordingPorts {
                store: open_recording_store(&config).await?,
                objects: Arc::clone(&objects),
            };
            (objects, recordings, preparation)
        }
    };
    let mut turn = config
        .turn_service(turn_secret(&config.turn, &config.server.data_dir)?)
        .context("invalid turn configuration")?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let relay = if let TurnRelay::Embedded(relay) = &config.turn.relay {
        let relay =
            EmbeddedRelay::start(&relay.relay_settings()?, turn.clone(), Arc::clone(&clock))
                .await
                .context(
                    "starting the embedded TURN relay (turn.relay_enabled = false turns it off)",
                )?;
        turn = turn.with_relay_uri(relay.uri());
        Some(relay)
    } else {
        None
    };
    let mut turn_health = None;
    let mut turn_health_board = None;
    if config.turn.health_check_interval_ms > 0 && !turn.all_uris().is_empty() {
        let board = Arc::new(HealthBoard::default());
        let checker = HealthChecker::start(HealthCheckerArgs {
            board: Arc::clone(&board),
            uris: turn.all_uris(),
            interval: Duration::from_millis(config.turn.health_check_interval_ms),
            timeout: Duration::from_millis(config.turn.health_check_timeout_ms),
        })
        .await
        .context("starting the TURN health checker")?;
        turn = turn.with_health(Arc::clone(&board));
        turn_health = Some(checker);
        turn_health_board = Some(board);
    }
    let media_store = open_media_store(&config).await?;
    let media = Arc::new(MediaService::new(
        MediaPorts {
            store: Arc::clone(&media_store),
            objects,
        },
        Arc::clone(&store),
        config
            .media
            .media_settings(Duration::from_millis(config.conversations.call_timeout_ms))?,
        IdGenerator::new(Arc::clone(&clock)),
    ));
    let thumbnailer = ThumbnailerHandle::start(ThumbnailerArgs {
        service: Arc::clone(&media),
        settings: config.media.thumbnail_settings(),
    })
    .await
    .context("starting the thumbnailer")?;
    media.use_thumbnailer(thumbnailer.clone());
    if let Some(events) = open_media_events(&config)? {
        media.use_events(events);
    }
    let media_collector = MediaCollectorHandle::start(MediaCollectorArgs {
        service: Arc::clone(&media),
        interval: Duration::from_millis(config.media.collect_interval_ms),
    })
    .await
    .context("starting the media garbage collector")?;
    let indexer_stats = Arc::new(IndexerStats::default());
    let (search, search_indexer) = match open_search_index(&config)? {
        Some(opened) => {
            let index = Arc::new(LiveSearchIndex::new(opened.live));
            let indexer = SearchIndexerHandle::start(IndexerArgs {
                store: Arc::clone(&store),
                index: Arc::clone(&index),
                generations: opened.generations,
                clock: Arc::clone(&clock),
                batch: config.search.index_batch,
                interval: config.search.index_interval(),
                stats: Arc::clone(&indexer_stats),
                nice: config.search.indexer_nice,
            })
            .await
            .context("starting the search indexer")?;
            let service = SearchService::new(
                SearchPorts {
                    store: Arc::clone(&store),
                    index,
                    recent: open_recent_searches(&config).await?,
                    clock: Arc::clone(&clock),
                },
                config
                    .search
                    .search_settings(Duration::from_millis(config.conversations.call_timeout_ms)),
            );
            service.use_indexer(indexer.clone());
            (Some(Arc::new(service)), Some(indexer))
        }
        None => (None, None),
    };
    let system = Arc::new(
        System::start(
            config.system_settings(),
            SystemPorts {
                store,
                encoder: Arc::new(JsonEventEncoder),
                clock: Arc::clone(&clock),
                ice: Some(Arc::new(turn)),
                cluster,
                recordings,
                media: media_store,
            },
        )
        .await
        .context("starting the actor system")?,
    );
    let app = Arc::new(App {
        system: Arc::clone(&system),
        authenticator: Arc::new(authenticator),
        clock,
        websocket: config.websocket_settings(),
        http: config.http_settings(),
        connections: TaskTracker::new(),
        recording_transfers: Arc::new(tokio::sync::Semaphore::new(
            config.limits.max_concurrent_recording_transfers,
        )),
        media,
        search,
        search_latency: switchboard_transport::metrics::SearchLatency::new(),
        media_links: Arc::new(config.media.tenant_link_secrets()?.into_iter().fold(
            MediaLinkSigner::new(
                &media_link_secret(&config.media, &config.server.data_dir)?,
                &config.media.retired_link_secrets,
                config.media.link_ttl_secs,
                config.media.link_max_ttl_secs,
            ),
            |signer, (tenant_id, current, retired)| {
                signer.with_tenant(tenant_id, &current, &retired)
            },
        )),
        metrics: turn_health_board
            .map(|board| Arc::new(TurnHealthMetrics(board)) as Arc<dyn MetricsSource>)
            .into_iter()
            .chain(relay.as_ref().map(|relay| {
                Arc::new(TurnRelayMetrics(relay.auth_failures())) as Arc<dyn MetricsSource>
            }))
            .chain(
                search_indexer
                    .is_some()
                    .then(|| Arc::new(SearchMetrics(indexer_stats)) as Arc<dyn MetricsSource>),
            )
            .collect(),
    });
    let listen_address: SocketAddr =
        config.server.listen.parse().with_context(|| {
            format!("server.listen {:?} is not an address", config.server.listen)
        })?;
    let listener = listener::bind_listener(listen_address, config.server.listen_backlog)?;
    let local_addr = listener.local_addr()?;
    let (stop_accepting, stop_signal) = oneshot::channel::<()>();
    let serve_app = Arc::clone(&app);
    #[allow(clippy::disallowed_methods)]
    // The server task is owned by `Server` and joined on shutdown.
    let serve_task = tokio::spawn(serve(listener, serve_app, async move {
        let _ = stop_signal.await;
    }));
    tracing::info!(%local_addr, "switchboard listening: http://{local_addr} and ws://{local_addr}/v1/ws");
    Ok(Server {
        local_addr,
        system,
        app,
        stop_accepting: Some(stop_accepting),
        serve_task,
        shutdown_timeout: Duration::from_millis(config.server.shutdown_timeout_ms),
        turn_health,
        relay,
        media_collector: Some(media_collector),
        thumbnailer: Some(thumbnailer),
        search_indexer,
        preparations: store_preparation
            .into_iter()
            .chain(objects_preparation)
            .collect(),
    })
}

impl Server {
    /// The bound address (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The actor system (for tests that inspect it).
    pub fn system(&self) -> &Arc<System> {
        &self.system
    }

    /// Resolves if the actor system stops on its own (a fatal failure).
    pub async fn failed(&self) {
        self.system.stopped().await;
    }

    /// The embedded TURN relay's URI, when it runs.
    pub fn relay_uri(&self) -> Option<&str> {
        self.relay.as_ref().map(EmbeddedRelay::uri)
    }

    /// Graceful shutdown: stop accepting, close every connection with "going away", drain the
    /// conversations and the writer so every accepted message is committed, then stop.
    pub async fn shutdown(mut self) {
        if let Some(stop_accepting) = self.stop_accepting.take() {
            let _ = stop_accepting.send(());
        }
        self.system.shutdown(self.shutdown_timeout).await;
        self.app.connections.close();
        if tokio::time::timeout(self.shutdown_timeout, self.app.connections.wait())
            .await
            .is_err()
        {
            tracing::warn!("some connections did not close before the deadline");
        }
        match tokio::time::timeout(self.shutdown_timeout, &mut self.serve_task).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(error))) => tracing::error!(%error, "the server failed"),
            Ok(Err(error)) => tracing::error!(%error, "the server task panicked"),
            Err(_) => {
                tracing::warn!("in-flight HTTP requests did not finish before the deadline");
                self.serve_task.abort();
            }
        }
        for preparation in self.preparations.drain(..) {
            preparation.abort();
        }
        if let Some(checker) = self.turn_health.take() {
            checker.stop();
        }
        if let Some(collector) = self.media_collector.take() {
            collector.stop();
        }
        if let Some(thumbnailer) = self.thumbnailer.take() {
            thumbnailer.stop();
        }
        if let Some(indexer) = self.search_indexer.take() {
            indexer.stop();
        }
        if let Some(relay) = self.relay.take() {
            relay.close().await;
        }
        tracing::info!("switchboard stopped");
    }
}
