//! The HTTP API: health, conversations, posting, history pagination and error bodies.

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{TestServer, seqs, token};

#[tokio::test]
async fn health_and_readiness() {
    let server = TestServer::start().await;
    let health = server.get_without_token("/health").await;
    assert_eq!(health.status(), 200);
    let ready = server.get_without_token("/ready").await;
    assert_eq!(ready.status(), 200);
    assert_eq!(
        ready.json::<Value>().await.expect("json")["status"],
        "ready"
    );
    assert!(ready_has_request_id(&server).await);
}

async fn ready_has_request_id(server: &TestServer) -> bool {
    let response = server.get_without_token("/health").await;
    response.headers().contains_key("x-request-id")
}

#[tokio::test]
async fn conversations_are_created_and_read_by_members_only() {
    let server = TestServer::start().await;
    let response = server
        .request(Method::POST, "/v1/conversations", &token("acme", "alice"), Some(&json!({"kind": "group", "title": "Launch", "members": ["bob", "carol", "bob", "alice"]})))
        .await;
    assert_eq!(response.status(), 201);
    let created: Value = response.json().await.expect("json");
    assert_eq!(created["kind"], "group");
    assert_eq!(created["title"], "Launch");
    assert_eq!(created["created_by"], "alice");
    let members: Vec<(String, String)> = created["members"]
        .as_array()
        .expect("members")
        .iter()
        .map(|member| {
            (
                member["user_id"].as_str().expect("id").to_owned(),
                member["role"].as_str().expect("role").to_owned(),
            )
        })
        .collect();
    assert_eq!(
        members,
        [
            ("alice".into(), "owner".into()),
            ("bob".into(), "member".into()),
            ("carol".into(), "member".into())
        ]
    );
    let id = created["conversation_id"].as_str().expect("id");
    let read = server.read_conversation_over_http("bob", id).await;
    assert_eq!(read.status(), 200);
    let mut expected = created.clone();
    expected["head"] = json!(0);
    expected["me"] = json!({"role": "member", "read": 0, "delivered": 0, "unread_count": 0, "archived": false, "pinned": false});
    assert_eq!(read.json::<Value>().await.expect("json"), expected);
    let outsider = server.read_conversation_over_http("mallory", id).await;
    assert_eq!(outsider.status(), 403);
    assert_eq!(
        outsider.json::<Value>().await.expect("json")["code"],
        "not_member"
    );
}

async fn expect_error(response: reqwest::Response, status: u16, code: &str) -> Value {
    assert_eq!(response.status(), status);
    let body: Value = response.json().await.expect("errors are JSON");
    assert_eq!(body["code"], code, "{body}");
    assert!(body["message"].is_string());
    body
}

#[tokio::test]
async fn bad_requests_get_json_errors_with_the_right_status() {
    let server = TestServer::start_with(|config| config.limits.max_body_bytes = 1024).await;
    let alice = token("acme", "alice");
    let post = |path: &str| server.http.post(server.url(path)).bearer_auth(&alice);
    expect_error(
        post("/v1/conversations")
            .body("{nope")
            .send()
            .await
            .expect("sent"),
        400,
        "invalid",
    )
    .await;
    expect_error(
        post("/v1/conversations")
            .json(&json!({"kind": "party"}))
            .send()
            .await
            .expect("sent"),
        400,
        "invalid",
    )
    .await;
    expect_error(
        post("/v1/conversations")
            .json(&json!({"kind": "direct", "members": ["b", "c"]}))
            .send()
            .await
            .expect("sent"),
        400,
        "invalid",
    )
    .await;
    expect_error(
        post("/v1/conversations")
            .json(&json!({"kind": "group", "title": "x".repeat(2000)}))
            .send()
            .await
            .expect("sent"),
        413,
        "too_large",
    )
    .await;
    expect_error(
        server
            .http
            .post(server.url("/v1/conversations"))
            .json(&json!({"kind": "group"}))
            .send()
            .await
            .expect("sent"),
        401,
        "token_missing",
    )
    .await;
    expect_error(
        server
            .http
            .get(server.url("/v1/conversations/not-an-id"))
            .bearer_auth(&alice)
            .send()
            .await
            .expect("sent"),
        400,
        "invalid",
    )
    .await;
    expect_error(
        server.get_without_token("/v1/nothing-here").await,
        404,
        "not_found",
    )
    .await;
    expect_error(
        server
            .http
            .delete(server.url("/health"))
            .send()
            .await
            .expect("sent"),
        405,
        "method_not_allowed",
    )
    .await;

    let id = server.create_conversation("acme", "alice", &[]).await;
    let messages = format!("/v1/conversations/{id}/messages");
    expect_error(
        post(&messages)
            .json(&json!({"client_id": "c", "text": "  "}))
            .send()
            .await
            .expect("sent"),
        400,
        "invalid",
    )
    .await;
    expect_error(
        post(&messages)
            .json(&json!({"client_id": "bad id!", "text": "hi"}))
            .send()
            .await
            .expect("sent"),
        400,
        "invalid",
    )
    .await;
    expect_error(
        post(&messages)
            .json(&json!({"text": "hi"}))
            .send()
            .await
            .expect("sent"),
        400,
        "invalid",
    )
    .await;
    expect_error(
        post(&messages)
            .json(
                &json!({"client_id": "c", "text": "hi", "reply_to": "01HZZZZZZZZZZZZZZZZZZZZZZZ"}),
            )
            .send()
            .await
            .expect("sent"),
        400,
        "invalid",
    )
    .await;
    let get = |query: &str| {
        server
            .http
            .get(server.url(&format!("{messages}?{query}")))
            .bearer_auth(&alice)
    };
    expect_error(get("limit=0").send().await.expect("sent"), 400, "invalid").await;
    expect_error(get("limit=abc").send().await.expect("sent"), 400, "invalid").await;
    expect_error(
        get("cursor=garbage").send().await.expect("sent"),
        400,
        "invalid",
    )
    .await;
    expect_error(
        get("cursor=x&after_seq=1").send().await.expect("sent"),
        400,
        "invalid",
    )
    .await;
}

#[tokio::test]
async fn history_pages_backward_with_cursors_and_forward_with_after_seq() {
    let server = TestServer::start().await;
    let id = server.create_conversation("acme", "alice", &["bob"]).await;
    let alice = token("acme", "alice");
    let mut first_message: Option<Value> = None;
    for n in 1..=7 {
        let response = server
            .request(
                Method::POST,
                &format!("/v1/conversations/{id}/messages"),
                &alice,
                Some(&json!({"client_id": format!("c{n}"), "text": format!("message {n}")})),
            )
            .await;
        assert_eq!(response.status(), 201);
        let body: Value = response.json().await.expect("json");
        assert_eq!(body["seq"], n);
        first_message.get_or_insert(body);
    }
    // A reply to the first message.
    let reply_to = first_message.expect("sent")["message_id"].clone();
    let response = server
        .request(
            Method::POST,
            &format!("/v1/conversations/{id}/messages"),
            &alice,
            Some(&json!({"client_id": "c8", "text": "replying", "reply_to": reply_to})),
        )
        .await;
    assert_eq!(response.status(), 201);
    assert_eq!(
        response.json::<Value>().await.expect("json")["reply_to"],
        reply_to
    );

    let page = |query: String| {
        let server = &server;
        let alice = alice.clone();
        let id = id.clone();
        async move {
            let response = server
                .request(
                    Method::GET,
                    &format!("/v1/conversations/{id}/messages?{query}"),
                    &alice,
                    None,
                )
                .await;
            assert_eq!(response.status(), 200);
            response.json::<Value>().await.expect("json")
        }
    };
    // Backward, newest first, three at a time.
    let mut seen = Vec::new();
    let mut query = "limit=3".to_owned();
    loop {
        let body = page(query).await;
        seen.extend(seqs(body["items"].as_array().expect("items")));
        match body["next_cursor"].as_str() {
            Some(cursor) => query = format!("limit=3&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(seen, [8, 7, 6, 5, 4, 3, 2, 1]);
    // Forward from a seq, oldest first, and the forward cursor continues it.
    let body = page("after_seq=2&limit=4".to_owned()).await;
    assert_eq!(seqs(body["items"].as_array().expect("items")), [3, 4, 5, 6]);
    let cursor = body["next_cursor"]
        .as_str()
        .expect("a full page has a cursor")
        .to_owned();
    let body = page(format!("limit=4&cursor={cursor}")).await;
    assert_eq!(seqs(body["items"].as_array().expect("items")), [7, 8]);
    assert!(body["next_cursor"].is_null());
    // Limits above the maximum are clamped to it.
    let body = page("limit=100000".to_owned()).await;
    assert_eq!(body["items"].as_array().expect("items").len(), 8);
    // A cursor from one conversation is refused in another.
    let other = server.create_conversation("acme", "alice", &[]).await;
    let response = server
        .http
        .get(server.url(&format!(
            "/v1/conversations/{other}/messages?cursor={cursor}"
        )))
        .bearer_auth(&alice)
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), 400);
}

#[tokio::test]
async fn the_served_openapi_document_is_the_committed_one() {
    let server = TestServer::start().await;
    let response = server.get_without_token("/v1/openapi.json").await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response
            .headers()
            .get("content-type")
            .and_then(|value| value.to_str().ok()),
        Some("application/json")
    );
    let served = response.text().await.expect("a body");
    let committed = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/openapi.json"),
    )
    .expect("docs/openapi.json exists");
    assert_eq!(served.trim_end(), committed.trim_end());
}

#[tokio::test]
async fn validation_errors_name_the_field_and_reason() {
    let server = TestServer::start().await;
    let id = server.create_conversation("acme", "alice", &["bob"]).await;
    let response = server
        .send_message_over_http("alice", &id, "c1", "   ")
        .await;
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["code"], "invalid");
    assert_eq!(body["details"]["field"], "text");
    assert_eq!(body["details"]["reason"], "must not be empty");

    let response = server
        .http
        .get(server.url(&format!(
            "/v1/conversations/{id}/messages?limit=5&colour=red"
        )))
        .bearer_auth(token("acme", "alice"))
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["details"]["field"], "query");
    assert!(
        body["message"]
            .as_str()
            .expect("message")
            .contains("colour"),
        "{body}"
    );
}

#[tokio::test]
async fn creating_a_direct_conversation_again_returns_the_existing_one() {
    let server = TestServer::start().await;
    let create = |creator: &'static str, other: &'static str| {
        let server = &server;
        async move {
            let response = server
                .request(
                    Method::POST,
                    "/v1/conversations",
                    &token("acme", creator),
                    Some(&json!({"kind": "direct", "members": [other]})),
                )
                .await;
            let status = response.status().as_u16();
            let body: Value = response.json().await.expect("json");
            (
                status,
                body["conversation_id"].as_str().expect("id").to_owned(),
            )
        }
    };
    let (status, first) = create("alice", "bob").await;
    assert_eq!(status, 201);
    let (status, again) = create("alice", "bob").await;
    assert_eq!((status, &again), (200, &first));
    let (status, reversed) = create("bob", "alice").await;
    assert_eq!((status, &reversed), (200, &first));
    let (status, other) = create("alice", "carol").await;
    assert_eq!(status, 201);
    assert_ne!(other, first);
}
