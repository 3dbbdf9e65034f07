//! Finding conversations and people, grouped search, and recent searches, against the real
//! server on its embedded default: a member finds their conversations by title, description
//! and member, and users they share a conversation with, never anyone else's; message filters
//! are refused where they mean nothing; `GET /v1/search` groups the three; recent searches are
//! the caller's own, newest first, once each, and erased on request.

use serde_json::{Value, json};

use crate::support::{TestServer, eventually};

async fn unlimited() -> TestServer {
    TestServer::start_with(|config| config.limits.search_per_minute = 0).await
}

/// A group conversation of `creator` and `members` in acme, titled and described.
async fn conversation(
    server: &TestServer,
    creator: &str,
    members: &[&str],
    title: &str,
    description: &str,
) -> String {
    let id = server.create_conversation("acme", creator, members).await;
    let mut profile = json!({"client_id": format!("profile-{id}"), "title": title});
    if !description.is_empty() {
        profile["description"] = json!(description);
    }
    let (status, _, body) = server
        .patch_as(creator, &format!("/v1/conversations/{id}"), profile)
        .await;
    assert_eq!(status, 200, "{body}");
    id
}

fn ids(body: &Value, group: &str, field: &str) -> Vec<String> {
    body[group]
        .as_array()
        .unwrap_or_else(|| panic!("{group} in {body}"))
        .iter()
        .map(|found| found[field].as_str().expect("id").to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conversations_are_found_by_title_description_and_member_among_the_callers_own() {
    let server = unlimited().await;
    let launch = conversation(
        &server,
        "alice",
        &["bob"],
        "Rocket launches",
        "Flight planning",
    )
    .await;
    let ops = conversation(
        &server,
        "alice",
        &["dave"],
        "Ops",
        "Pager rota and launch checklists",
    )
    .await;
    let secret = conversation(&server, "carol", &["dave"], "Launch secrets", "carol only").await;

    let (status, _, body) = server
        .get_as("alice", "/v1/search/conversations?q=launch")
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        ids(&body, "conversations", "conversation_id"),
        [launch.clone(), ops.clone()]
    );
    let first = &body["conversations"][0];
    assert_eq!(first["matched_in"], "title");
    assert_eq!(first["title"]["html"], "Rocket <mark>launches</mark>");
    assert_eq!(first["member_count"], 2);
    assert_eq!(body["conversations"][1]["matched_in"], "description");

    let (_, _, by_member) = server
        .get_as("alice", "/v1/search/conversations?q=dave")
        .await;
    assert_eq!(
        ids(&by_member, "conversations", "conversation_id"),
        std::slice::from_ref(&ops)
    );
    assert_eq!(
        by_member["conversations"][0]["matching_members"],
        json!(["dave"])
    );

    let (_, _, theirs) = server
        .get_as("dave", "/v1/search/conversations?q=launch")
        .await;
    assert_eq!(
        ids(&theirs, "conversations", "conversation_id"),
        [secret.clone(), ops.clone()],
        "title before description"
    );
    let (_, _, narrowed) = server
        .get_as(
            "alice",
            &format!("/v1/search/conversations?q=launch in:{secret}"),
        )
        .await;
    assert_eq!(
        ids(&narrowed, "conversations", "conversation_id"),
        Vec::<String>::new(),
        "in: of another's conversation finds nothing"
    );

    let (_, _, first_page) = server
        .get_as("alice", "/v1/search/conversations?q=launch&limit=1")
        .await;
    assert_eq!(
        ids(&first_page, "conversations", "conversation_id"),
        [launch]
    );
    let cursor = first_page["next_cursor"].as_str().expect("a next page");
    let (_, _, second_page) = server
        .get_as(
            "alice",
            &format!("/v1/search/conversations?q=launch&limit=1&cursor={cursor}"),
        )
        .await;
    assert_eq!(ids(&second_page, "conversations", "conversation_id"), [ops]);
    assert!(second_page["next_cursor"].is_null());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_are_those_who_share_a_conversation_with_the_caller() {
    let server = unlimited().await;
    conversation(&server, "alice", &["bob.smith", "bobby"], "one", "").await;
    conversation(&server, "alice", &["bobby"], "two", "").await;
    conversation(&server, "carol", &["bob.stranger"], "theirs", "").await;

    let (status, _, body) = server.get_as("alice", "/v1/search/users?q=bob*").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        ids(&body, "users", "user_id"),
        ["bobby", "bob.smith"],
        "most shared first; never a stranger"
    );
    assert_eq!(body["users"][0]["shared_conversations"], 2);
    assert_eq!(body["users"][1]["highlights"], json!([[0, 9]]));
    let (_, _, itself) = server.get_as("alice", "/v1/search/users?q=alice").await;
    assert_eq!(
        ids(&itself, "users", "user_id"),
        Vec::<String>::new(),
        "not the caller"
    );
    let (_, _, carol) = server.get_as("carol", "/v1/search/users?q=bob*").await;
    assert_eq!(ids(&carol, "users", "user_id"), ["bob.stranger"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn message_filters_are_refused_where_they_mean_nothing() {
    let server = unlimited().await;
    for (path, reason) in [
        ("/v1/search/conversations?q=ops%20from:bob", "from:"),
        ("/v1/search/users?q=ops%20has:attachment", "has:attachment"),
        ("/v1/search/users?q=-ops", "only excludes"),
        (
            "/v1/search/conversations?q=in:00000000010000000000000001",
            "at least one",
        ),
        ("/v1/search/conversations?q=ops&limit=51", "limit"),
        ("/v1/search/users?q=ops&cursor=nope", "cursor"),
        ("/v1/search?q=ops&limit=0", "limit"),
        ("/v1/search?q=%22open", "character 1"),
    ] {
        let (status, _, body) = server.get_as("alice", path).await;
        assert_eq!(status, 400, "{path}: {body}");
        assert!(body.to_string().contains(reason), "{path}: {body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grouped_search_finds_messages_conversations_and_users_and_is_remembered() {
    let server = unlimited().await;
    let team = conversation(&server, "alice", &["rocketeer"], "Rocket team", "").await;
    let (status, _, _) = server
        .post_as(
            "rocketeer",
            &format!("/v1/conversations/{team}/messages"),
            json!({"client_id": "m1", "text": "the rocket is ready"}),
        )
        .await;
    assert_eq!(status, 201);

    let body = eventually("the message is indexed", || async {
        let (status, _, body) = server.get_as("alice", "/v1/search?q=rocket*").await;
        assert_eq!(status, 200, "{body}");
        (body["messages"]["hits"].as_array().map(Vec::len) == Some(1)).then_some(body)
    })
    .await;
    assert_eq!(
        body["messages"]["hits"][0]["snippet"]["html"],
        "the <mark>rocket</mark> is ready"
    );
    assert_eq!(
        ids(&body["conversations"], "conversations", "conversation_id"),
        [team]
    );
    assert_eq!(body["users"]["users"][0]["user_id"], "rocketeer");
    let (_, _, filtered) = server
        .get_as("alice", "/v1/search?q=rocket%20from:rocketeer")
        .await;
    assert_eq!(
        filtered["messages"]["hits"].as_array().map(Vec::len),
        Some(1)
    );

    let (status, _, recent) = server.get_as("alice", "/v1/search/recent").await;
    assert_eq!(status, 200, "{recent}");
    let queries: Vec<&str> = recent["searches"]
        .as_array()
        .expect("searches")
        .iter()
        .map(|search| search["query"].as_str().expect("query"))
        .collect();
    assert_eq!(
        queries,
        ["rocket from:rocketeer", "rocket*"],
        "newest first, each once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recent_searches_are_the_callers_own_and_erasable() {
    let server = unlimited().await;
    for query in ["deploy", "invoice", "deploy"] {
        let (status, _, body) = server
            .get_as("alice", &format!("/v1/search/messages?q={query}"))
            .await;
        assert_eq!(status, 200, "{body}");
    }
    let (status, _, body) = server.get_as("bob", "/v1/search/messages?q=bobs").await;
    assert_eq!(status, 200, "{body}");
    let (_, _, next_page) = server
        .get_as("alice", "/v1/search/messages?q=paged&cursor=AQAAAAAAAAAAFA")
        .await;
    assert!(next_page["hits"].is_array(), "{next_page}");

    let queries = |body: &Value| -> Vec<String> {
        body["searches"]
            .as_array()
            .expect("searches")
            .iter()
            .map(|search| search["query"].as_str().expect("query").to_owned())
            .collect()
    };
    let (_, _, alice) = server.get_as("alice", "/v1/search/recent").await;
    assert_eq!(
        queries(&alice),
        ["deploy", "invoice"],
        "a later page is not a new search"
    );
    let (status, _, erased) = server.delete_as("alice", "/v1/search/recent").await;
    assert_eq!(status, 200);
    assert_eq!(erased["erased"], 2);
    let (_, _, alice) = server.get_as("alice", "/v1/search/recent").await;
    assert!(queries(&alice).is_empty());
    let (_, _, bob) = server.get_as("bob", "/v1/search/recent").await;
    assert_eq!(queries(&bob), ["bobs"], "another user's are untouched");
}
