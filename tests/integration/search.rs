//! Message search against the real server on its embedded default (tantivy under the data
//! directory): what members find, with snippets; what they never find (another conversation,
//! another tenant, a message hidden for them or deleted for everyone, anything once they are
//! removed); and the documented refusals of bad queries.

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{TestServer, eventually, token};

/// A server whose search rate limit is off: these tests search more often than a user may.
async fn unlimited() -> TestServer {
    TestServer::start_with(|config| config.limits.search_per_minute = 0).await
}

/// `GET /v1/search/messages` with `parameters` as `user` of `tenant`: status and body.
async fn search(server: &TestServer, tenant: &str, user: &str, parameters: &str) -> (u16, Value) {
    let response = server
        .request(
            Method::GET,
            &format!("/v1/search/messages?{parameters}"),
            &token(tenant, user),
            None,
        )
        .await;
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// The texts of the hits' snippets, in order.
pub(crate) fn snippets(body: &Value) -> Vec<String> {
    body["hits"]
        .as_array()
        .expect("hits")
        .iter()
        .map(|hit| hit["snippet"]["text"].as_str().expect("text").to_owned())
        .collect()
}

async fn post(
    server: &TestServer,
    user: &str,
    conversation_id: &str,
    client_id: &str,
    text: &str,
) -> Value {
    let (status, _, body) = server
        .post_as(
            user,
            &format!("/v1/conversations/{conversation_id}/messages"),
            json!({"client_id": client_id, "text": text}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    body
}

/// Waits until `user`'s search for `parameters` has `n_hits` hits; returns the body.
async fn found_eventually(
    server: &TestServer,
    user: &str,
    parameters: &str,
    n_hits: usize,
) -> Value {
    eventually("the index has the messages", || async {
        let (status, body) = search(server, "acme", user, parameters).await;
        assert_eq!(status, 200, "{body}");
        (body["hits"].as_array().map(Vec::len) == Some(n_hits)).then_some(body)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_find_their_messages_with_snippets_and_nothing_else() {
    let server = unlimited().await;
    let team = server.create_conversation("acme", "alice", &["bob"]).await;
    let private = server
        .create_conversation("acme", "alice", &["carol"])
        .await;
    let elsewhere = server
        .create_conversation("globex", "alice", &["bob"])
        .await;
    let plan = post(&server, "alice", &team, "m1", "The <launch> plan is Friday").await;
    post(
        &server,
        "bob",
        &team,
        "m2",
        "Launching went well, café after",
    )
    .await;
    post(&server, "alice", &private, "m3", "launch secrets for carol").await;
    let other_tenant = server
        .request(
            Method::POST,
            &format!("/v1/conversations/{elsewhere}/messages"),
            &token("globex", "alice"),
            Some(&json!({"client_id": "g1", "text": "launch in another tenant"})),
        )
        .await;
    assert_eq!(other_tenant.status().as_u16(), 201);

    // Bob finds the team's two messages, newest first, with their matches marked.
    let body = found_eventually(&server, "bob", "q=launch&sort=newest", 2).await;
    assert_eq!(
        snippets(&body),
        [
            "Launching went well, café after",
            "The <launch> plan is Friday"
        ]
    );
    let first = &body["hits"][1];
    assert_eq!(first["message_id"], plan["message_id"]);
    assert_eq!(first["conversation_id"], team.as_str());
    assert_eq!(first["sender_id"], "alice");
    assert_eq!(first["snippet"]["highlights"], json!([[5, 11]]));
    assert_eq!(
        first["snippet"]["html"],
        "The &lt;<mark>launch</mark>&gt; plan is Friday"
    );
    // Alice finds her private conversation's too; Carol only that one.
    found_eventually(&server, "alice", "q=launch", 3).await;
    let (_, body) = search(&server, "acme", "carol", "q=launch").await;
    assert_eq!(snippets(&body), ["launch secrets for carol"]);
    // Filters, accents, and an `in:` Bob is not in (nothing, and no error).
    let (_, body) = search(&server, "acme", "bob", "q=launch%20from:bob").await;
    assert_eq!(snippets(&body), ["Launching went well, café after"]);
    let (_, body) = search(&server, "acme", "bob", "q=CAFE").await;
    assert_eq!(snippets(&body).len(), 1);
    let (status, body) = search(&server, "acme", "bob", &format!("q=launch%20in:{private}")).await;
    assert_eq!((status, snippets(&body).len()), (200, 0), "{body}");
    let (_, body) = search(&server, "globex", "bob", "q=launch").await;
    assert_eq!(snippets(&body), ["launch in another tenant"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hidden_deleted_and_removed_end_what_a_member_finds() {
    let server = unlimited().await;
    let team = server.create_conversation("acme", "alice", &["bob"]).await;
    let hidden = post(&server, "alice", &team, "m1", "budget draft one").await;
    let deleted = post(&server, "alice", &team, "m2", "budget draft two").await;
    post(&server, "alice", &team, "m3", "budget final").await;
    found_eventually(&server, "bob", "q=budget", 3).await;

    // Hidden for Bob: Bob no longer finds it, Alice still does.
    let hidden_id = hidden["message_id"].as_str().expect("an id");
    let (status, _, body) = server
        .delete_as(
            "bob",
            &format!("/v1/conversations/{team}/messages/{hidden_id}?client_id=h1&mode=for_me"),
        )
        .await;
    assert!(status == 204 || status == 200, "{status} {body}");
    let (_, body) = search(&server, "acme", "bob", "q=budget").await;
    assert_eq!(snippets(&body).len(), 2, "at once: {body}");
    let (_, body) = search(&server, "acme", "alice", "q=budget").await;
    assert_eq!(snippets(&body).len(), 3);

    // Deleted for everyone: gone for all once indexed.
    let deleted_id = deleted["message_id"].as_str().expect("an id");
    let (status, _, body) = server
        .delete_as(
            "alice",
            &format!("/v1/conversations/{team}/messages/{deleted_id}?client_id=d1"),
        )
        .await;
    assert!(status < 300, "{status} {body}");
    found_eventually(&server, "alice", "q=draft", 1).await;

    // Removed: Bob finds nothing at once.
    let (status, _, body) = server
        .delete_as(
            "alice",
            &format!("/v1/conversations/{team}/members/bob?client_id=rm"),
        )
        .await;
    assert!(status < 300, "{status} {body}");
    let (status, body) = search(&server, "acme", "bob", "q=budget").await;
    assert_eq!((status, snippets(&body).len()), (200, 0), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_searches_are_refused_with_a_reason() {
    let server = unlimited().await;
    for (parameters, field, reason) in [
        ("q=%22unclosed", "q", "character 1"),
        ("q=*", "q", "lone *"),
        ("q=a*", "q", "too short"),
        ("q=", "q", "empty"),
        ("q=x%20before:2026-02-30", "q", "not a date"),
        ("q=x&limit=0", "limit", "1 to 100"),
        ("q=x&limit=101", "limit", "1 to 100"),
        ("q=x&sort=oldest", "sort", "relevance or newest"),
        ("q=x&cursor=nonsense", "cursor", "not a cursor"),
    ] {
        let (status, body) = search(&server, "acme", "alice", parameters).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (400, Some("invalid")),
            "{parameters}: {body}"
        );
        let message = body.to_string();
        assert!(
            message.contains(field) && message.contains(reason),
            "{parameters}: {body}"
        );
    }
    let long = format!("q={}", "a".repeat(1_100));
    let (status, _) = search(&server, "acme", "alice", &long).await;
    assert_eq!(status, 400);
    let (status, body) = search(&server, "acme", "alice", "q=x&limit=-1").await;
    assert_eq!((status, body["code"].as_str()), (400, Some("invalid")));
    let (status, _) = search(&server, "acme", "alice", "q=x&unknown=1").await;
    assert_eq!(status, 400);
    let response = server.get_without_token("/v1/search/messages?q=x").await;
    assert_eq!(response.status().as_u16(), 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consistent_search_finds_what_was_just_sent_and_searches_are_rate_limited() {
    // The indexer would not look at the log again for an hour on its own.
    let server = TestServer::start_with(|config| {
        config.search.index_interval_ms = 3_600_000;
        config.limits.search_per_minute = 60;
        config.limits.search_burst = 3;
    })
    .await;
    let team = server.create_conversation("acme", "alice", &["bob"]).await;
    post(&server, "alice", &team, "m1", "freshly sent").await;
    let (status, body) = search(&server, "acme", "bob", "q=freshly").await;
    assert_eq!(
        (status, snippets(&body).len()),
        (200, 0),
        "not indexed yet: {body}"
    );
    let (status, body) = search(&server, "acme", "bob", "q=freshly&consistent=true").await;
    assert_eq!(
        (status, snippets(&body)),
        (200, vec!["freshly sent".to_owned()]),
        "{body}"
    );
    // The third search of the burst is the last one allowed.
    let (status, _) = search(&server, "acme", "bob", "q=freshly").await;
    assert_eq!(status, 200);
    let (status, body) = search(&server, "acme", "bob", "q=freshly").await;
    assert_eq!(
        (status, body["code"].as_str()),
        (429, Some("rate_limited")),
        "{body}"
    );
    // Alice has a budget of her own.
    let (status, _) = search(&server, "acme", "alice", "q=freshly").await;
    assert_eq!(status, 200);
    // The indexer's work is at /metrics.
    let metrics = server
        .get_without_token("/metrics")
        .await
        .text()
        .await
        .expect("text");
    let value = |name: &str| -> f64 {
        metrics
            .lines()
            .find_map(|line| line.strip_prefix(&format!("{name} ")))
            .and_then(|value| value.trim().parse().ok())
            .unwrap_or_else(|| panic!("{name} in {metrics}"))
    };
    assert!(value("switchboard_search_indexed_changes_total") >= 1.0);
    assert!(value("switchboard_search_commits_total") >= 1.0);
    assert!(value("switchboard_search_checkpoint") >= 1.0);
    assert_eq!(value("switchboard_search_indexing_failures_total"), 0.0);
    assert!(value("switchboard_search_commit_seconds_sum") > 0.0);
    let commits = value("switchboard_search_commits_total");
    assert_eq!(
        value("switchboard_search_commit_seconds_count"),
        commits,
        "every commit is in the histogram"
    );
    assert_eq!(
        value("switchboard_search_commit_seconds_bucket{le=\"+Inf\"}"),
        commits
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suggestions_complete_words_the_caller_can_read_only() {
    let server = unlimited().await;
    let team = server.create_conversation("acme", "alice", &["bob"]).await;
    let private = server
        .create_conversation("acme", "alice", &["carol"])
        .await;
    post(
        &server,
        "alice",
        &team,
        "m1",
        "Budget review, budget approved",
    )
    .await;
    post(&server, "bob", &team, "m2", "the Bügeleisen is broken").await;
    post(&server, "alice", &private, "m3", "bucket list for carol").await;
    found_eventually(&server, "alice", "q=bu*", 3).await;
    let suggest = |user: &'static str, parameters: &'static str| {
        let server = &server;
        async move {
            let (status, _, body) = server
                .get_as(user, &format!("/v1/search/suggestions?{parameters}"))
                .await;
            (status, body)
        }
    };
    let (status, body) = suggest("bob", "prefix=BU").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["suggestions"],
        json!(["budget", "bugeleisen"]),
        "Carol's words are not Bob's"
    );
    let (_, body) = suggest("carol", "prefix=bu&limit=5").await;
    assert_eq!(body["suggestions"], json!(["bucket"]));
    let (_, body) = suggest("bob", "prefix=bu&limit=1").await;
    assert_eq!(
        body["suggestions"],
        json!(["budget"]),
        "the most frequent first"
    );
    for parameters in [
        "prefix=b",
        "prefix=bu&limit=0",
        "prefix=bu&limit=21",
        "limit=3",
    ] {
        let (status, body) = suggest("bob", parameters).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (400, Some("invalid")),
            "{parameters}: {body}"
        );
    }
}
