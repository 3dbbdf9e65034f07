//! Operating search on the real server: a cached page never hides a newer message, an
//! administrator rebuilds the index into a new generation while searches go on (and only an
//! administrator may), `/ready` says where the index stands, and `/metrics` has the
//! generation, the lag and the query latency.

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{TestServer, eventually, token, token_with_roles};

async fn hits(server: &TestServer, query: &str) -> usize {
    let (status, _, body) = server
        .get_as("bob", &format!("/v1/search/messages?q={query}"))
        .await;
    assert_eq!(status, 200, "{body}");
    body["hits"].as_array().expect("hits").len()
}

async fn post(server: &TestServer, conversation_id: &str, client_id: &str, text: &str) {
    let (status, _, body) = server
        .post_as(
            "alice",
            &format!("/v1/conversations/{conversation_id}/messages"),
            json!({"client_id": client_id, "text": text}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
}

async fn call(server: &TestServer, method: Method, path: &str, bearer: &str) -> (u16, Value) {
    let response = server.request(method, path, bearer, None).await;
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_rebuilds_the_index_while_searches_go_on_and_caches_never_hide_new_messages() {
    let server = TestServer::start_with(|config| config.limits.search_per_minute = 0).await;
    let team = server.create_conversation("acme", "alice", &["bob"]).await;
    post(&server, &team, "m1", "launch plan").await;
    post(&server, &team, "m2", "launch party").await;
    eventually("indexed", || async {
        (hits(&server, "launch").await == 2).then_some(())
    })
    .await;
    assert_eq!(
        hits(&server, "launch").await,
        2,
        "the same page again (from the cache)"
    );
    post(&server, &team, "m3", "launch review").await;
    eventually("a cached page gives way to the new commit", || async {
        (hits(&server, "launch").await == 3).then_some(())
    })
    .await;

    let admin = token_with_roles("acme", "root", &["admin"]);
    let path = "/v1/admin/search/reindex";
    assert_eq!(
        call(&server, Method::POST, path, &token("acme", "bob"))
            .await
            .0,
        403
    );
    assert_eq!(
        call(&server, Method::GET, path, &token("acme", "bob"))
            .await
            .0,
        403
    );
    let (status, before) = call(&server, Method::GET, path, &admin).await;
    assert_eq!(status, 200, "{before}");
    assert!(before["rebuild"].is_null(), "{before}");
    let first_generation = before["live_generation"].as_u64().expect("a generation");

    let (status, started) = call(&server, Method::POST, path, &admin).await;
    assert_eq!(status, 202, "{started}");
    assert_eq!(started["generation"].as_u64(), Some(first_generation + 1));
    // Searches go on while it runs, and find everything after.
    assert_eq!(hits(&server, "launch").await, 3);
    let done = eventually("the rebuild finishes", || async {
        let (status, progress) = call(&server, Method::GET, path, &admin).await;
        assert_eq!(status, 200, "{progress}");
        (progress["rebuild"]["state"] == "done").then_some(progress)
    })
    .await;
    assert_eq!(done["live_generation"].as_u64(), Some(first_generation + 1));
    assert!(
        done["rebuild"]["entries"].as_u64().expect("entries") >= 3,
        "{done}"
    );
    assert!(done["rebuild"]["finished_at"].is_u64(), "{done}");
    assert_eq!(
        hits(&server, "launch").await,
        3,
        "the new generation has every message"
    );
    post(&server, &team, "m4", "launch retro").await;
    eventually("the new generation takes new messages", || async {
        (hits(&server, "launch").await == 4).then_some(())
    })
    .await;

    let ready: Value = server
        .get_without_token("/ready")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(ready["status"], "ready");
    assert_eq!(
        ready["search"]["generation"].as_u64(),
        Some(first_generation + 1),
        "{ready}"
    );
    assert!(
        ready["search"]["checkpoint"].as_u64().expect("checkpoint") > 0,
        "{ready}"
    );

    let metrics = server
        .get_without_token("/metrics")
        .await
        .text()
        .await
        .expect("text");
    assert!(
        metrics.contains(&format!(
            "switchboard_search_generation {}",
            first_generation + 1
        )),
        "{metrics}"
    );
    assert!(
        metrics.contains("switchboard_search_lag_entries "),
        "{metrics}"
    );
    assert!(
        metrics.contains("switchboard_search_lag_seconds "),
        "{metrics}"
    );
    let searches = metrics
        .lines()
        .find(|line| {
            line.starts_with("switchboard_search_query_seconds_count{endpoint=\"messages\"}")
        })
        .unwrap_or_else(|| panic!("the latency histogram in {metrics}"));
    let counted: u64 = searches
        .rsplit(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .expect("a count");
    assert!(counted >= 6, "{searches}");
}
