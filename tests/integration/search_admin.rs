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

/// How many of `tenant`'s messages `user` finds for `query`.
async fn hits_in(server: &TestServer, tenant: &str, user: &str, query: &str) -> usize {
    let (status, body) = call(
        server,
        Method::GET,
        &format!("/v1/search/messages?q={query}"),
        &token(tenant, user),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body["hits"].as_array().expect("hits").len()
}

async fn post_in(server: &TestServer, tenant: &str, conversation_id: &str, client_id: &str) {
    let response = server
        .request(
            Method::POST,
            &format!("/v1/conversations/{conversation_id}/messages"),
            &token(tenant, "alice"),
            Some(&json!({"client_id": client_id, "text": format!("launch {client_id}")})),
        )
        .await;
    assert_eq!(response.status().as_u16(), 201);
}

/// Polls the progress of `scope`'s rebuild as `bearer` until it is done.
async fn rebuilt(server: &TestServer, bearer: &str, scope: &str) -> Value {
    eventually("the rebuild finishes", || async {
        let (status, progress) = call(
            server,
            Method::GET,
            &format!("/v1/admin/search/reindex?scope={scope}"),
            bearer,
        )
        .await;
        assert_eq!(status, 200, "{progress}");
        (progress["rebuild"]["state"] == "done").then_some(progress)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_admin_rebuilds_only_their_tenant_and_only_an_operator_rebuilds_every_tenant() {
    let server = TestServer::start_with(|config| {
        config.limits.search_per_minute = 0;
        config.search.operator_tenants = vec!["ops".to_owned()];
    })
    .await;
    let acme_team = server.create_conversation("acme", "alice", &["bob"]).await;
    let globex_team = server
        .create_conversation("globex", "alice", &["carol"])
        .await;
    for number in 1..=3 {
        post_in(&server, "acme", &acme_team, &format!("a{number}")).await;
    }
    for number in 1..=5 {
        post_in(&server, "globex", &globex_team, &format!("g{number}")).await;
    }
    eventually("indexed", || async {
        (hits_in(&server, "acme", "bob", "launch").await == 3
            && hits_in(&server, "globex", "carol", "launch").await == 5)
            .then_some(())
    })
    .await;

    let acme_admin = token_with_roles("acme", "root", &["admin"]);
    let globex_admin = token_with_roles("globex", "root", &["admin"]);
    let operator = token_with_roles("ops", "root", &["admin"]);
    let path = "/v1/admin/search/reindex";
    let every_tenant = "/v1/admin/search/reindex?scope=all";
    let (status, body) = call(&server, Method::POST, every_tenant, &acme_admin).await;
    assert_eq!(
        status, 403,
        "a customer's admin cannot rebuild every tenant: {body}"
    );
    assert_eq!(body["code"], "forbidden", "{body}");
    assert_eq!(
        call(&server, Method::GET, every_tenant, &acme_admin)
            .await
            .0,
        403
    );
    for malformed in ["?scope=everyone", "?tenant=globex"] {
        let (status, body) = call(
            &server,
            Method::POST,
            &format!("{path}{malformed}"),
            &acme_admin,
        )
        .await;
        assert_eq!(status, 400, "{malformed}: {body}");
        assert_eq!(body["code"], "invalid", "{body}");
    }

    let (status, started) = call(&server, Method::POST, path, &acme_admin).await;
    assert_eq!(status, 202, "{started}");
    assert_eq!(started["scope"], "tenant");
    let acme_done = rebuilt(&server, &acme_admin, "tenant").await;
    let (status, globex_view) = call(&server, Method::GET, path, &globex_admin).await;
    assert_eq!(status, 200);
    assert!(
        globex_view["rebuild"].is_null(),
        "another tenant does not see acme's rebuild: {globex_view}"
    );
    assert_eq!(
        globex_view["live_generation"], acme_done["live_generation"],
        "one index on the node"
    );
    assert_eq!(hits_in(&server, "acme", "bob", "launch").await, 3);
    assert_eq!(
        hits_in(&server, "globex", "carol", "launch").await,
        5,
        "globex's documents were kept"
    );
    post_in(&server, "globex", &globex_team, "g6").await;
    eventually(
        "the new generation takes every tenant's messages",
        || async { (hits_in(&server, "globex", "carol", "launch").await == 6).then_some(()) },
    )
    .await;

    let (status, started) = call(
        &server,
        Method::POST,
        &format!("{path}?scope=all"),
        &operator,
    )
    .await;
    assert_eq!(status, 202, "{started}");
    assert_eq!(started["scope"], "all");
    let all_done = rebuilt(&server, &operator, "all").await;
    let (acme_entries, all_entries) = (
        acme_done["rebuild"]["entries"].as_u64().expect("entries"),
        all_done["rebuild"]["entries"].as_u64().expect("entries"),
    );
    assert!(
        acme_entries >= 3 && acme_entries + 6 <= all_entries,
        "acme's rebuild read acme's entries only ({acme_entries}); everyone's read all \
         ({all_entries})"
    );
    assert_eq!(hits_in(&server, "acme", "bob", "launch").await, 3);
    assert_eq!(hits_in(&server, "globex", "carol", "launch").await, 6);
}
