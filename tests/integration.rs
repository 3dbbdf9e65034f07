//! End-to-end tests over real sockets on 127.0.0.1: the server runs in-process through
//! `switchboard::start` (the same entry point as the binary), except in `crash`, which spawns the
//! real binary and kills it with SIGKILL, and `recordings_rss`, which measures the real binary's
//! memory under concurrent uploads. Clients are tokio-tungstenite and reqwest.
//!
//! One test binary holds every module so the crate graph is linked once.

#![allow(clippy::disallowed_methods)] // Tests may read the wall clock and spawn helper tasks.

#[path = "integration/support.rs"]
mod support;

#[path = "integration/attachments.rs"]
mod attachments;
#[path = "integration/calls.rs"]
mod calls;
#[path = "integration/cluster.rs"]
mod cluster;
#[path = "integration/crash.rs"]
mod crash;
#[path = "integration/http_api.rs"]
mod http_api;
#[path = "integration/idempotency.rs"]
mod idempotency;
#[path = "integration/limits.rs"]
mod limits;
#[path = "integration/logs.rs"]
mod logs;
#[path = "integration/media.rs"]
mod media;
#[path = "integration/media_invariant.rs"]
mod media_invariant;
#[path = "integration/media_uploads.rs"]
mod media_uploads;
#[path = "integration/membership.rs"]
mod membership;
#[path = "integration/message_ops.rs"]
mod message_ops;
#[cfg(feature = "mongodb")]
#[path = "integration/mongodb.rs"]
mod mongodb;
#[cfg(all(feature = "mongodb", feature = "s3"))]
#[path = "integration/mongodb_media.rs"]
mod mongodb_media;
#[path = "integration/protocol.rs"]
mod protocol;
#[path = "integration/receipts.rs"]
mod receipts;
#[path = "integration/recordings.rs"]
mod recordings;
#[path = "integration/recordings_rss.rs"]
mod recordings_rss;
#[path = "integration/resume.rs"]
mod resume;
#[path = "integration/search.rs"]
mod search;
#[path = "integration/search_admin.rs"]
mod search_admin;
#[path = "integration/search_crash.rs"]
mod search_crash;
#[path = "integration/search_directory.rs"]
mod search_directory;
#[path = "integration/search_permissions.rs"]
mod search_permissions;
#[path = "integration/security.rs"]
mod security;
#[path = "integration/signals.rs"]
mod signals;
#[path = "integration/tenancy.rs"]
mod tenancy;
#[path = "integration/thumbnails.rs"]
mod thumbnails;
#[path = "integration/tidy.rs"]
mod tidy;
#[path = "integration/turn.rs"]
mod turn;
