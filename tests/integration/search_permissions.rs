//! The permission matrix of search: every search endpoint (messages, the grouped search,
//! suggestions, conversations, users, recent searches) asked by users of every standing (owner,
//! admin, moderator, member, a member who hid a message, a kicked member, a banned member, a
//! member of another conversation only, a tenant administrator who is in no conversation, and
//! a user of the same id in another tenant), after a delete for everyone, a hide for one, a
//! kick and a ban. Each finds exactly what it could read in the conversations themselves.

use std::collections::BTreeMap;

use reqwest::Method;
use serde_json::{Value, json};

use crate::search::snippets;
use crate::support::{TestServer, eventually, token, token_with_roles};

/// Who asks: a name for messages, and the token.
struct Caller {
    name: &'static str,
    bearer: String,
}

fn caller(name: &'static str, tenant: &'static str, user: &str) -> Caller {
    Caller {
        name,
        bearer: token(tenant, user),
    }
}

async fn get(server: &TestServer, caller: &Caller, path: &str) -> Value {
    let response = server
        .request(Method::GET, path, &caller.bearer, None)
        .await;
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    assert_eq!(status, 200, "{} {path}: {body}", caller.name);
    body
}

async fn post_message(
    server: &TestServer,
    tenant: &str,
    user: &str,
    conversation_id: &str,
    client_id: &str,
    text: &str,
) -> String {
    let response = server
        .request(
            Method::POST,
            &format!("/v1/conversations/{conversation_id}/messages"),
            &token(tenant, user),
            Some(&json!({"client_id": client_id, "text": text})),
        )
        .await;
    assert_eq!(response.status().as_u16(), 201);
    let body: Value = response.json().await.expect("json");
    body["message_id"].as_str().expect("an id").to_owned()
}

async fn titled(
    server: &TestServer,
    tenant: &str,
    creator: &str,
    members: &[&str],
    title: &str,
) -> String {
    let id = server.create_conversation(tenant, creator, members).await;
    let response = server
        .request(
            Method::PATCH,
            &format!("/v1/conversations/{id}"),
            &token(tenant, creator),
            Some(&json!({"client_id": "title", "title": title})),
        )
        .await;
    assert_eq!(response.status().as_u16(), 200);
    id
}

async fn as_user(server: &TestServer, user: &str, method: Method, path: &str, body: Value) {
    let response = server
        .request(method, path, &token("acme", user), Some(&body))
        .await;
    let status = response.status().as_u16();
    assert!(
        status < 300,
        "{user} {path}: {status} {}",
        response.text().await.unwrap_or_default()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_search_endpoint_finds_exactly_what_each_caller_can_read() {
    let server = TestServer::start_with(|config| config.limits.search_per_minute = 0).await;
    let orchard = titled(
        &server,
        "acme",
        "alice",
        &["adam", "mo", "bob", "carol", "eve"],
        "Orchard",
    )
    .await;
    let tropical = titled(&server, "acme", "dave", &["frank"], "Tropical").await;
    let elsewhere = titled(&server, "globex", "bob", &["zed"], "Orchard").await;
    let roles = format!("/v1/conversations/{orchard}/members");
    as_user(
        &server,
        "alice",
        Method::PUT,
        &format!("{roles}/adam/role"),
        json!({"client_id": "r1", "role": "admin"}),
    )
    .await;
    as_user(
        &server,
        "alice",
        Method::PUT,
        &format!("{roles}/mo/role"),
        json!({"client_id": "r2", "role": "moderator"}),
    )
    .await;

    post_message(&server, "acme", "alice", &orchard, "m1", "apple pie").await;
    let banana = post_message(&server, "acme", "bob", &orchard, "m2", "banana split").await;
    let cherry = post_message(&server, "acme", "alice", &orchard, "m3", "cherry tart").await;
    post_message(&server, "acme", "carol", &orchard, "m4", "coconut cream").await;
    post_message(&server, "acme", "dave", &tropical, "m5", "durian smoothie").await;
    post_message(&server, "globex", "bob", &elsewhere, "m6", "apple cider").await;

    // A delete for everyone, a hide for Bob only, a kick and a ban.
    let messages = format!("/v1/conversations/{orchard}/messages");
    let response = server
        .request(
            Method::DELETE,
            &format!("{messages}/{banana}?client_id=d1"),
            &token("acme", "bob"),
            None,
        )
        .await;
    assert!(response.status().is_success());
    let response = server
        .request(
            Method::DELETE,
            &format!("{messages}/{cherry}?client_id=h1&mode=for_me"),
            &token("acme", "bob"),
            None,
        )
        .await;
    assert!(response.status().is_success());
    as_user(
        &server,
        "alice",
        Method::POST,
        &format!("/v1/conversations/{orchard}/moderation"),
        json!({"client_id": "k1", "action": "kick", "user_id": "carol"}),
    )
    .await;
    as_user(
        &server,
        "mo",
        Method::POST,
        &format!("/v1/conversations/{orchard}/moderation"),
        json!({"client_id": "b1", "action": "ban", "user_id": "eve"}),
    )
    .await;

    // Everything, the delete included, is in the index.
    let alice = caller("owner alice", "acme", "alice");
    eventually("the index has taken every entry", || async {
        let body = get(
            &server,
            &alice,
            "/v1/search/messages?q=apple%20OR&consistent=true",
        )
        .await;
        let banana = get(&server, &alice, "/v1/search/messages?q=banana").await;
        (snippets(&body).is_empty() && snippets(&banana).is_empty()).then_some(())
    })
    .await;

    let root = Caller {
        name: "tenant admin root (in no conversation)",
        bearer: token_with_roles("acme", "root", &["admin"]),
    };
    let matrix: Vec<(Caller, &[&str], Option<&str>)> = vec![
        (
            alice,
            &["apple pie", "cherry tart", "coconut cream"],
            Some(&orchard),
        ),
        (
            caller("admin adam", "acme", "adam"),
            &["apple pie", "cherry tart", "coconut cream"],
            Some(&orchard),
        ),
        (
            caller("moderator mo", "acme", "mo"),
            &["apple pie", "cherry tart", "coconut cream"],
            Some(&orchard),
        ),
        (
            caller("member bob, who hid cherry", "acme", "bob"),
            &["apple pie", "coconut cream"],
            Some(&orchard),
        ),
        (caller("kicked carol", "acme", "carol"), &[], None),
        (caller("banned eve", "acme", "eve"), &[], None),
        (
            caller("dave, of the other conversation", "acme", "dave"),
            &["durian smoothie"],
            Some(&tropical),
        ),
        (root, &[], None),
        (
            caller("bob of another tenant", "globex", "bob"),
            &["apple cider"],
            Some(&elsewhere),
        ),
    ];
    let words = ["apple", "banana", "cherry", "coconut", "durian"];
    for (caller, readable, conversation) in &matrix {
        let mut found = Vec::new();
        for word in words {
            let body = get(&server, caller, &format!("/v1/search/messages?q={word}")).await;
            let grouped = get(&server, caller, &format!("/v1/search?q={word}")).await;
            assert_eq!(
                snippets(&body),
                snippets(&grouped["messages"]),
                "{} {word}: grouped",
                caller.name
            );
            let suggested = get(
                &server,
                caller,
                &format!("/v1/search/suggestions?prefix={}", &word[..3]),
            )
            .await;
            let suggests = suggested["suggestions"]
                .as_array()
                .expect("suggestions")
                .contains(&json!(word));
            let found_word = snippets(&body);
            assert_eq!(
                suggests,
                !found_word.is_empty(),
                "{} {word}: suggestions {suggested}",
                caller.name
            );
            found.extend(found_word);
        }
        found.sort();
        assert_eq!(
            found,
            readable.to_vec(),
            "{} finds exactly what it can read",
            caller.name
        );

        // `in:` another conversation finds nothing, nor says anything of it.
        for other in [&orchard, &tropical] {
            if Some(other.as_str()) != *conversation {
                let body = get(
                    &server,
                    caller,
                    &format!("/v1/search/messages?q=apple%20in:{other}"),
                )
                .await;
                assert!(snippets(&body).is_empty(), "{} in:{other}", caller.name);
            }
        }
        // Conversations by title: only its own.
        for title in ["orchard", "tropical"] {
            let body = get(
                &server,
                caller,
                &format!("/v1/search/conversations?q={title}"),
            )
            .await;
            let ids: Vec<&str> = body["conversations"]
                .as_array()
                .expect("list")
                .iter()
                .map(|found| found["conversation_id"].as_str().expect("id"))
                .collect();
            let expected: Vec<&str> = conversation
                .iter()
                .copied()
                .filter(|id| (title == "orchard") == (*id == orchard || *id == elsewhere))
                .collect();
            assert_eq!(ids, expected, "{} conversations {title}", caller.name);
        }
        // Users: only those who share a conversation with the caller now.
        let mut users: BTreeMap<String, bool> = BTreeMap::new();
        for user in ["alice", "bob", "carol", "dave", "eve", "frank", "zed"] {
            let body = get(&server, caller, &format!("/v1/search/users?q={user}")).await;
            users.insert(
                user.to_owned(),
                !body["users"].as_array().expect("users").is_empty(),
            );
        }
        let shared: Vec<&str> = users
            .iter()
            .filter(|(_, found)| **found)
            .map(|(user, _)| user.as_str())
            .collect();
        let expected: &[&str] = match caller.name {
            "owner alice" => &["bob"],
            "admin adam" | "moderator mo" => &["alice", "bob"],
            "member bob, who hid cherry" => &["alice"],
            "dave, of the other conversation" => &["frank"],
            "bob of another tenant" => &["zed"],
            _ => &[],
        };
        assert_eq!(shared, expected, "{} users", caller.name);
    }

    // Recent searches are each caller's own, in its own tenant.
    let globex_bob = caller("bob of another tenant", "globex", "bob");
    get(&server, &globex_bob, "/v1/search/messages?q=onlyinglobex").await;
    let acme_bob = caller("member bob", "acme", "bob");
    let recent = get(&server, &acme_bob, "/v1/search/recent").await;
    let queries: Vec<&str> = recent["searches"]
        .as_array()
        .expect("searches")
        .iter()
        .map(|search| search["query"].as_str().expect("query"))
        .collect();
    assert!(!queries.contains(&"onlyinglobex"), "{recent}");
    assert!(queries.contains(&"durian"), "{recent}");
    let response = server
        .request(
            Method::DELETE,
            "/v1/search/recent",
            &globex_bob.bearer,
            None,
        )
        .await;
    assert!(response.status().is_success());
    let recent = get(&server, &acme_bob, "/v1/search/recent").await;
    assert!(
        !recent["searches"].as_array().expect("searches").is_empty(),
        "another tenant's erase leaves Bob's"
    );
}
