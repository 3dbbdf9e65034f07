//! The shared conformance suite for every [`RecentSearches`] adapter: the in-memory store, the
//! embedded store (in a temporary directory) and, with the `mongodb` feature, the MongoDB store
//! on the server named by `SWITCHBOARD_TEST_MONGODB_URI`.
//!
//! It checks the contract of the port: newest first, a query run again moves to the front, the
//! cap, users and tenants apart (for reading and erasing), concurrent searches of one user all
//! remembered, and (the embedded store) that the lists survive a reopen.

#![allow(clippy::disallowed_methods)] // Tests spawn concurrent callers.

use std::sync::Arc;

use switchboard_engine::search::recent::{MAX_RECENT_SEARCHES, RecentSearch, RecentSearches};
use switchboard_engine::time::Timestamp;
use switchboard_storage::{EmbeddedRecentSearches, MemoryRecentSearches};

mod support;

use support::{BASE_MILLIS, tenant, user};

fn search(query: &str, offset: u64) -> RecentSearch {
    RecentSearch {
        query: query.to_owned(),
        at: Timestamp(BASE_MILLIS + offset),
    }
}

fn queries(list: &[RecentSearch]) -> Vec<&str> {
    list.iter().map(|search| search.query.as_str()).collect()
}

async fn searches_are_newest_first_once_each_and_capped(store: Arc<dyn RecentSearches>) {
    let (acme, alice) = (tenant("acme"), user("alice"));
    assert!(store.recent(&acme, &alice).await.expect("read").is_empty());
    for (offset, query) in ["deploy", "\"release notes\"", "deploy"].iter().enumerate() {
        store
            .remember(&acme, &alice, search(query, offset as u64))
            .await
            .expect("remembered");
    }
    let recent = store.recent(&acme, &alice).await.expect("read");
    assert_eq!(queries(&recent), vec!["deploy", "\"release notes\""]);
    assert_eq!(recent[0].at, Timestamp(BASE_MILLIS + 2), "the latest run");

    for number in 0..(MAX_RECENT_SEARCHES + 3) {
        store
            .remember(
                &acme,
                &alice,
                search(&format!("q{number}"), 10 + number as u64),
            )
            .await
            .expect("remembered");
    }
    let recent = store.recent(&acme, &alice).await.expect("read");
    assert_eq!(recent.len(), MAX_RECENT_SEARCHES);
    assert_eq!(recent[0].query, format!("q{}", MAX_RECENT_SEARCHES + 2));
    assert_eq!(recent[MAX_RECENT_SEARCHES - 1].query, "q3");
}

async fn users_and_tenants_are_apart(store: Arc<dyn RecentSearches>) {
    let (acme, globex) = (tenant("acme"), tenant("globex"));
    let (alice, bob) = (user("alice"), user("bob"));
    store
        .remember(&acme, &alice, search("acme alice", 1))
        .await
        .expect("remembered");
    store
        .remember(&acme, &bob, search("acme bob", 2))
        .await
        .expect("remembered");
    store
        .remember(&globex, &alice, search("globex alice", 3))
        .await
        .expect("remembered");
    assert_eq!(
        queries(&store.recent(&acme, &alice).await.expect("read")),
        vec!["acme alice"]
    );
    assert_eq!(
        queries(&store.recent(&acme, &bob).await.expect("read")),
        vec!["acme bob"]
    );
    assert_eq!(
        queries(&store.recent(&globex, &alice).await.expect("read")),
        vec!["globex alice"]
    );

    assert_eq!(store.forget(&acme, &alice).await.expect("erased"), 1);
    assert!(store.recent(&acme, &alice).await.expect("read").is_empty());
    assert_eq!(
        store.forget(&acme, &alice).await.expect("erased"),
        0,
        "nothing left"
    );
    assert_eq!(
        queries(&store.recent(&acme, &bob).await.expect("read")),
        vec!["acme bob"]
    );
    assert_eq!(
        queries(&store.recent(&globex, &alice).await.expect("read")),
        vec!["globex alice"],
        "another tenant's user of the same id keeps theirs"
    );
    store
        .remember(&acme, &alice, search("again", 4))
        .await
        .expect("remembered");
    assert_eq!(
        queries(&store.recent(&acme, &alice).await.expect("read")),
        vec!["again"]
    );
}

async fn concurrent_searches_of_one_user_are_all_remembered(store: Arc<dyn RecentSearches>) {
    let (acme, alice) = (tenant("acme"), user("alice"));
    let tasks: Vec<_> = (0..8u64)
        .map(|number| {
            let store = Arc::clone(&store);
            let (acme, alice) = (acme.clone(), alice.clone());
            tokio::spawn(async move {
                store
                    .remember(&acme, &alice, search(&format!("q{number}"), number))
                    .await
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("the task ran").expect("remembered");
    }
    let mut found = queries(&store.recent(&acme, &alice).await.expect("read"))
        .into_iter()
        .map(str::to_owned)
        .collect::<Vec<_>>();
    found.sort();
    assert_eq!(
        found,
        (0..8)
            .map(|number| format!("q{number}"))
            .collect::<Vec<_>>()
    );
}

macro_rules! conformance {
    ($($test:ident),* $(,)?) => {
        #[cfg(feature = "mongodb")]
        mod mongodb {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    let messages = support::mongodb_message_store("recent").await;
                    let store = switchboard_storage::MongoRecentSearches::new(&messages);
                    super::$test(std::sync::Arc::new(store)).await;
                    messages.database().drop().await.expect("the test database is dropped");
                }
            )*
            use super::support;
        }

        mod memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    super::$test(std::sync::Arc::new(super::MemoryRecentSearches::new())).await;
                }
            )*
        }

        mod embedded {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    let directory = tempfile::tempdir().expect("a temporary directory");
                    let store = super::EmbeddedRecentSearches::open(directory.path())
                        .expect("the store opens");
                    super::$test(std::sync::Arc::new(store)).await;
                }
            )*
        }
    };
}

conformance!(
    searches_are_newest_first_once_each_and_capped,
    users_and_tenants_are_apart,
    concurrent_searches_of_one_user_are_all_remembered,
);

#[tokio::test]
async fn embedded_recent_searches_survive_a_reopen() {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let (acme, alice) = (tenant("acme"), user("alice"));
    {
        let store = EmbeddedRecentSearches::open(directory.path()).expect("the store opens");
        store
            .remember(&acme, &alice, search("kept", 1))
            .await
            .expect("remembered");
    }
    let store = EmbeddedRecentSearches::open(directory.path()).expect("the store reopens");
    assert_eq!(
        queries(&store.recent(&acme, &alice).await.expect("read")),
        vec!["kept"]
    );
}
