//! Thumbnails against the real server: a photo uploaded over HTTP is measured and thumbnailed
//! off the request path (the test polls its record with a deadline), each thumbnail is served
//! with its type and tag (304 on a match) to whoever may read the photo, through a signed link
//! too, and a message that attaches the photo shows them in history; a corrupt image records
//! why it has none.

use reqwest::{Method, StatusCode, header};
use serde_json::{Value, json};

use crate::support::{TestServer, eventually, jpeg, token};

async fn upload(server: &TestServer, user: &str, file_name: &str, bytes: Vec<u8>) -> String {
    let response = reqwest::Client::new()
        .post(server.url(&format!("/v1/media?file_name={file_name}")))
        .bearer_auth(token("acme", user))
        .body(bytes)
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), StatusCode::CREATED);
    let record: Value = response.json().await.expect("json");
    record["media_id"].as_str().expect("an id").to_owned()
}

/// The record once the thumbnailer has been at it: thumbnails or a reason.
async fn thumbnailed(server: &TestServer, media_id: &str) -> Value {
    eventually("the thumbnailer", || async {
        let (status, _, record) = server
            .get_as("alice", &format!("/v1/media/{media_id}/info"))
            .await;
        assert_eq!(status, 200, "{record}");
        (record.get("thumbnails").is_some() || record.get("thumbnail_failure").is_some())
            .then_some(record)
    })
    .await
}

async fn thumbnail(
    server: &TestServer,
    user: &str,
    path: &str,
    if_none_match: Option<&str>,
) -> reqwest::Response {
    let mut request = reqwest::Client::new()
        .get(server.url(path))
        .bearer_auth(token("acme", user));
    if let Some(tag) = if_none_match {
        request = request.header(header::IF_NONE_MATCH, tag);
    }
    request.send().await.expect("sent")
}

fn dimensions_of(bytes: &[u8]) -> (u32, u32) {
    let image = image::load_from_memory(bytes).expect("an image");
    (image.width(), image.height())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_photo_is_thumbnailed_and_its_thumbnails_served_to_its_readers() {
    let server = TestServer::start().await;
    let conversation_id = server.create_conversation("acme", "alice", &["bob"]).await;
    let media_id = upload(&server, "alice", "photo.jpg", jpeg(1200, 900)).await;
    let record = thumbnailed(&server, &media_id).await;
    assert_eq!(record["dimensions"], json!({"width": 1200, "height": 900}));
    let made: Vec<(u64, Value, &str)> = record["thumbnails"]
        .as_array()
        .expect("thumbnails")
        .iter()
        .map(|thumbnail| {
            (
                thumbnail["size"].as_u64().expect("size"),
                thumbnail["dimensions"].clone(),
                thumbnail["content_type"].as_str().expect("type"),
            )
        })
        .collect();
    assert_eq!(
        made,
        vec![
            (256, json!({"width": 256, "height": 192}), "image/jpeg"),
            (1024, json!({"width": 1024, "height": 768}), "image/jpeg"),
        ]
    );

    let path = format!("/v1/media/{media_id}/thumbnail");
    let response = thumbnail(&server, "alice", &format!("{path}?size=1024"), None).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()[header::CONTENT_TYPE], "image/jpeg");
    let tag = response.headers()[header::ETAG]
        .to_str()
        .expect("a tag")
        .to_owned();
    assert_eq!(
        dimensions_of(&response.bytes().await.expect("body")),
        (1024, 768)
    );
    let response = thumbnail(&server, "alice", &format!("{path}?size=1024"), Some(&tag)).await;
    assert_eq!(response.status(), StatusCode::NOT_MODIFIED);
    // No size: the smallest. A size not made: 404. Not a number: 400.
    let response = thumbnail(&server, "alice", &path, None).await;
    assert_eq!(
        dimensions_of(&response.bytes().await.expect("body")),
        (256, 192)
    );
    for (query, status) in [("?size=512", 404), ("?size=big", 400)] {
        let response = thumbnail(&server, "alice", &format!("{path}{query}"), None).await;
        assert_eq!(response.status().as_u16(), status, "{query}");
    }
    // Bob may not, until a message he can read attaches the photo.
    assert_eq!(
        thumbnail(&server, "bob", &path, None).await.status(),
        StatusCode::NOT_FOUND
    );
    let body = json!({"client_id": "p", "text": "", "attachments": [media_id]});
    let (status, _, message) = server
        .post_as(
            "alice",
            &format!("/v1/conversations/{conversation_id}/messages"),
            body,
        )
        .await;
    assert_eq!(status, 201, "{message}");
    assert_eq!(
        message["attachments"][0]["thumbnails"][0]["size"], 256,
        "{message}"
    );
    assert_eq!(
        thumbnail(&server, "bob", &path, None).await.status(),
        StatusCode::OK
    );
    let history = server.history("acme", "bob", &conversation_id).await;
    assert_eq!(
        history[0]["attachments"][0]["dimensions"],
        record["dimensions"]
    );
    assert_eq!(
        thumbnail(&server, "mallory", &path, None).await.status(),
        StatusCode::NOT_FOUND
    );

    // A signed link serves the thumbnails too.
    let (status, _, link) = server
        .post_as("bob", &format!("/v1/media/{media_id}/links"), json!({}))
        .await;
    assert_eq!(status, 201, "{link}");
    let url = format!("{}&thumbnail=256", link["url"].as_str().expect("a url"));
    let response = reqwest::get(server.url(&url)).await.expect("sent");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        dimensions_of(&response.bytes().await.expect("body")),
        (256, 192)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_image_records_why_it_has_no_thumbnails() {
    let server = TestServer::start().await;
    let mut corrupt = jpeg(600, 400);
    let half = corrupt.len() / 2;
    corrupt.truncate(half);
    // JPEG decoders fill a truncated scan with grey; a broken header is what they refuse.
    corrupt[2..6].copy_from_slice(&[0xFF, 0xC0, 0x00, 0x02]);
    let media_id = upload(&server, "alice", "broken.jpg", corrupt).await;
    let record = thumbnailed(&server, &media_id).await;
    assert!(record.get("thumbnails").is_none(), "{record}");
    assert!(
        record["thumbnail_failure"]
            .as_str()
            .is_some_and(|reason| !reason.is_empty()),
        "{record}"
    );
    let response = server
        .request(
            Method::GET,
            &format!("/v1/media/{media_id}/thumbnail"),
            &token("acme", "alice"),
            None,
        )
        .await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}
