//! Attachments against the real server: media uploaded over HTTP and attached to a message sent
//! over WebSocket or HTTP reaches every member in the `message` event and in history, and each
//! of them may then download it; non-members and other tenants still see nothing. The checks a
//! send makes (the sender's own complete media, each once, at most `media.max_attachments`),
//! forwarding (the copy carries the references, its readers may read the media), and the ends
//! of access: a message deleted for everyone no longer grants it, and deleted media shows as
//! deleted in history.

use reqwest::{Method, StatusCode, header};
use serde_json::{Value, json};

use crate::support::{TestServer, next_of, token};

/// A 1×1 PNG.
const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89\0\0\0\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05\x18\xd8N\x00\x00\x00\x00IEND\xaeB`\x82";

/// Uploads `bytes` as `user` of `tenant`; returns the media id.
async fn upload(
    server: &TestServer,
    tenant: &str,
    user: &str,
    file_name: &str,
    bytes: &'static [u8],
) -> String {
    let response = reqwest::Client::new()
        .post(server.url(&format!("/v1/media?file_name={file_name}")))
        .bearer_auth(token(tenant, user))
        .body(bytes)
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), StatusCode::CREATED);
    let record: Value = response.json().await.expect("json");
    record["media_id"].as_str().expect("an id").to_owned()
}

/// `GET /v1/media/{media_id}` as `user` of `tenant`: the status and the body.
async fn download(
    server: &TestServer,
    tenant: &str,
    user: &str,
    media_id: &str,
) -> (StatusCode, Vec<u8>) {
    let response = server
        .request(
            Method::GET,
            &format!("/v1/media/{media_id}"),
            &token(tenant, user),
            None,
        )
        .await;
    let status = response.status();
    (status, response.bytes().await.expect("body").to_vec())
}

/// Posts a message with `body` (its `client_id` and fields) as `user`: status and answer.
async fn post_message(
    server: &TestServer,
    user: &str,
    conversation_id: &str,
    body: Value,
) -> (u16, Value) {
    let (status, _, answer) = server
        .post_as(
            user,
            &format!("/v1/conversations/{conversation_id}/messages"),
            body,
        )
        .await;
    (status, answer)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_photo_sent_over_websocket_reaches_members_in_events_and_history_and_they_may_read_it() {
    let server = TestServer::start().await;
    let (conversation_id, mut alice, mut bob) = server.conversation_of_two("alice", "bob").await;
    let media_id = upload(&server, "acme", "alice", "pixel.png", PNG).await;
    // Before it is attached, only its uploader may read it.
    assert_eq!(
        download(&server, "acme", "bob", &media_id).await.0,
        StatusCode::NOT_FOUND
    );
    alice.join(&conversation_id, None).await;
    bob.join(&conversation_id, None).await;

    // A photo without a caption: no `text` at all.
    alice
        .send_json(json!({
            "type": "send", "id": "p1", "conversation_id": conversation_id,
            "client_id": "p1", "attachments": [media_id],
        }))
        .await;
    let ack = loop {
        let frame = next_of(&mut alice, "ack").await;
        if frame["status"] != "pending" {
            break frame;
        }
    };
    assert_eq!(
        (ack["client_id"].as_str(), ack["status"].as_str()),
        (Some("p1"), Some("delivered")),
        "{ack}"
    );
    let event = next_of(&mut bob, "message").await;
    assert_eq!(event["text"], "");
    let attachment = &event["attachments"][0];
    assert_eq!(attachment["media_id"], media_id.as_str(), "{event}");
    assert_eq!(attachment["file_name"], "pixel.png");
    assert_eq!(attachment["content_type"], "image/png");
    assert_eq!(attachment["size_bytes"], PNG.len());
    assert!(attachment.get("deleted").is_none(), "{attachment}");

    let history = server.history("acme", "bob", &conversation_id).await;
    assert_eq!(history.len(), 1);
    assert_eq!(history[0]["attachments"], event["attachments"]);

    // Bob reads it now, by token and by a link of his own; strangers and other tenants do not.
    assert_eq!(
        download(&server, "acme", "bob", &media_id).await,
        (StatusCode::OK, PNG.to_vec())
    );
    let (status, _, link) = server
        .post_as("bob", &format!("/v1/media/{media_id}/links"), json!({}))
        .await;
    assert_eq!(status, 201, "{link}");
    for (tenant, user) in [("acme", "mallory"), ("other", "bob")] {
        assert_eq!(
            download(&server, tenant, user, &media_id).await.0,
            StatusCode::NOT_FOUND,
            "{tenant}/{user}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_send_attaches_only_the_senders_own_complete_media_each_once_within_the_limit() {
    let server = TestServer::start_with(|config| config.media.max_attachments = 2).await;
    let conversation_id = server.create_conversation("acme", "alice", &["bob"]).await;
    let alices = upload(&server, "acme", "alice", "a.txt", b"alice's").await;
    let bobs = upload(&server, "acme", "bob", "b.txt", b"bob's").await;
    let elsewhere = upload(&server, "other", "alice", "c.txt", b"other tenant's").await;
    let unfinished = {
        let response = reqwest::Client::new()
            .post(server.url("/v1/media/uploads"))
            .bearer_auth(token("acme", "alice"))
            .header("tus-resumable", "1.0.0")
            .header("upload-length", "10")
            .send()
            .await
            .expect("sent");
        assert_eq!(response.status(), StatusCode::CREATED);
        let location = response.headers()[header::LOCATION]
            .to_str()
            .expect("text")
            .to_owned();
        location.rsplit('/').next().expect("an id").to_owned()
    };
    let never = "01HF7YAT000000000000000000";
    let refusals = [
        (json!([bobs]), 400, "invalid"),
        (json!([elsewhere]), 400, "invalid"),
        (json!([never]), 400, "invalid"),
        (json!([unfinished]), 409, "conflict"),
        (json!([alices, alices]), 400, "invalid"),
        (json!([alices, bobs, never]), 413, "too_large"),
        (json!(["not-a-media-id"]), 400, "invalid"),
    ];
    for (n, (attachments, status, code)) in refusals.into_iter().enumerate() {
        let body = json!({"client_id": format!("r{n}"), "text": "see", "attachments": attachments});
        let (got, answer) = post_message(&server, "alice", &conversation_id, body).await;
        assert_eq!(
            (got, answer["code"].as_str()),
            (status, Some(code)),
            "{n}: {answer}"
        );
    }
    // No text and nothing attached is still an empty message.
    let (status, answer) = post_message(
        &server,
        "alice",
        &conversation_id,
        json!({"client_id": "e"}),
    )
    .await;
    assert_eq!((status, answer["code"].as_str()), (400, Some("invalid")));
    // Nothing was stored by any refusal, and none of them let bob read alice's file.
    assert!(
        server
            .history("acme", "alice", &conversation_id)
            .await
            .is_empty()
    );
    assert_eq!(
        download(&server, "acme", "bob", &alices).await.0,
        StatusCode::NOT_FOUND
    );

    let body = json!({"client_id": "ok", "text": "see", "attachments": [alices]});
    let (status, message) = post_message(&server, "alice", &conversation_id, body.clone()).await;
    assert_eq!(status, 201, "{message}");
    assert_eq!(message["attachments"][0]["media_id"], alices.as_str());
    // A retry with the same client_id is the same message; with other attachments, a conflict.
    let (status, replayed) = post_message(&server, "alice", &conversation_id, body).await;
    assert_eq!(
        (status, &replayed["message_id"]),
        (201, &message["message_id"])
    );
    let body = json!({"client_id": "ok", "text": "see", "attachments": []});
    let (status, answer) = post_message(&server, "alice", &conversation_id, body).await;
    assert_eq!((status, answer["code"].as_str()), (409, Some("conflict")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forwarded_copy_carries_the_attachment_to_readers_of_the_target() {
    let server = TestServer::start().await;
    let source = server.create_conversation("acme", "alice", &["bob"]).await;
    let target = server.create_conversation("acme", "bob", &["carol"]).await;
    let media_id = upload(&server, "acme", "alice", "pixel.png", PNG).await;
    let body = json!({"client_id": "m1", "text": "a dot", "attachments": [media_id]});
    let (status, original) = post_message(&server, "alice", &source, body).await;
    assert_eq!(status, 201, "{original}");
    assert_eq!(
        download(&server, "acme", "carol", &media_id).await.0,
        StatusCode::NOT_FOUND
    );

    let forward =
        json!({"client_id": "fw", "message_ids": [original["message_id"]], "to": [target]});
    let (status, _, answer) = server
        .post_as(
            "bob",
            &format!("/v1/conversations/{source}/forward"),
            forward,
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    let copy = &answer["results"][0]["messages"][0];
    assert_eq!(copy["sender_id"], "bob", "{answer}");
    assert_eq!(copy["attachments"], original["attachments"]);
    assert_eq!(
        download(&server, "acme", "carol", &media_id).await,
        (StatusCode::OK, PNG.to_vec())
    );
    // Bob could forward it, but cannot attach alice's media to a message of his own.
    let body = json!({"client_id": "b1", "text": "mine now", "attachments": [media_id]});
    let (status, _) = post_message(&server, "bob", &target, body).await;
    assert_eq!(status, 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_the_message_ends_readers_access_and_deleted_media_shows_as_deleted() {
    let server = TestServer::start().await;
    let conversation_id = server.create_conversation("acme", "alice", &["bob"]).await;
    let photo = upload(&server, "acme", "alice", "pixel.png", PNG).await;
    let notes = upload(&server, "acme", "alice", "notes.txt", b"some notes").await;
    let body = json!({"client_id": "m1", "text": "photo", "attachments": [photo]});
    let (status, first) = post_message(&server, "alice", &conversation_id, body).await;
    assert_eq!(status, 201, "{first}");
    let body = json!({"client_id": "m2", "text": "notes", "attachments": [notes]});
    let (status, _) = post_message(&server, "alice", &conversation_id, body).await;
    assert_eq!(status, 201);
    assert_eq!(
        download(&server, "acme", "bob", &photo).await.0,
        StatusCode::OK
    );

    // Deleted for everyone: the message carries nothing, bob may no longer read the photo, its
    // uploader still may.
    let message_id = first["message_id"].as_str().expect("an id");
    let (status, _, _) = server
        .delete_as(
            "alice",
            &format!("/v1/conversations/{conversation_id}/messages/{message_id}?client_id=d1"),
        )
        .await;
    assert_eq!(status, 200);
    let history = server.history("acme", "bob", &conversation_id).await;
    assert!(history[0].get("attachments").is_none(), "{}", history[0]);
    assert_eq!(
        download(&server, "acme", "bob", &photo).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        download(&server, "acme", "alice", &photo).await.0,
        StatusCode::OK
    );

    // The uploader deletes the notes: the message keeps their name and type, marked deleted.
    let (status, _, _) = server
        .delete_as("alice", &format!("/v1/media/{notes}"))
        .await;
    assert_eq!(status, 204);
    let history = server.history("acme", "bob", &conversation_id).await;
    let attachment = &history[1]["attachments"][0];
    assert_eq!(attachment["media_id"], notes.as_str(), "{}", history[1]);
    assert_eq!(attachment["file_name"], "notes.txt");
    assert_eq!(attachment["deleted"], true);
    assert_eq!(
        download(&server, "acme", "bob", &notes).await.0,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_of_one_copy_among_many_forwarded_copies_may_read_the_media() {
    let server = TestServer::start_with(|config| config.limits.forward_max_targets = 50).await;
    let source = server.create_conversation("acme", "alice", &[]).await;
    let media_id = upload(&server, "acme", "alice", "pixel.png", PNG).await;
    let body = json!({"client_id": "m1", "text": "a dot", "attachments": [media_id]});
    let (status, original) = post_message(&server, "alice", &source, body).await;
    assert_eq!(status, 201, "{original}");
    // Copies in 69 conversations of alice's alone, then Bob's, then 70 more of alice's: Bob's
    // copy is neither among the first 64 attachments nor among the last 64.
    let mut targets = Vec::new();
    for _ in 0..69 {
        targets.push(server.create_conversation("acme", "alice", &[]).await);
    }
    targets.push(server.create_conversation("acme", "alice", &["bob"]).await);
    for _ in 0..70 {
        targets.push(server.create_conversation("acme", "alice", &[]).await);
    }
    for (n, chunk) in targets.chunks(50).enumerate() {
        let forward = json!({"client_id": format!("fw{n}"),
            "message_ids": [original["message_id"]], "to": chunk});
        let (status, _, answer) = server
            .post_as(
                "alice",
                &format!("/v1/conversations/{source}/forward"),
                forward,
            )
            .await;
        assert_eq!(status, 200, "{answer}");
    }
    assert_eq!(
        download(&server, "acme", "bob", &media_id).await,
        (StatusCode::OK, PNG.to_vec())
    );
    assert_eq!(
        download(&server, "acme", "carol", &media_id).await.0,
        StatusCode::NOT_FOUND
    );
}
