//! Media over HTTP against the real server: a file uploaded with curl's shape of request
//! (raw body, `Content-Length`) is sniffed, hashed and served back whole, in ranges and
//! conditionally; bad input gets its documented code and stores nothing; other users and
//! tenants see nothing; the uploader or an admin deletes.

use reqwest::{Method, StatusCode, header};
use serde_json::Value;

use crate::support::{TestServer, token, token_with_roles};

/// A 1×1 PNG.
const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89\0\0\0\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05\x18\xd8N\x00\x00\x00\x00IEND\xaeB`\x82";

async fn upload(
    server: &TestServer,
    user_token: &str,
    query: &str,
    bytes: &'static [u8],
) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(server.url(&format!("/v1/media?{query}")))
        .bearer_auth(user_token)
        .header(header::CONTENT_TYPE, "image/png")
        .body(bytes)
        .send()
        .await
        .expect("sent");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn download(
    server: &TestServer,
    user_token: &str,
    media_id: &str,
    headers: &[(header::HeaderName, &str)],
) -> reqwest::Response {
    let mut request = reqwest::Client::new()
        .get(server.url(&format!("/v1/media/{media_id}")))
        .bearer_auth(user_token);
    for (name, value) in headers {
        request = request.header(name.clone(), *value);
    }
    request.send().await.expect("sent")
}

fn header_text(response: &reqwest::Response, name: header::HeaderName) -> &str {
    response
        .headers()
        .get(name)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_photo_is_uploaded_sniffed_and_served_whole_in_ranges_and_conditionally() {
    let server = TestServer::start().await;
    let alice = token("acme", "alice");
    let (status, record) = upload(&server, &alice, "file_name=pixel.png", PNG).await;
    assert_eq!(status, 201, "{record}");
    assert_eq!(record["content_type"], "image/png");
    assert_eq!(record["family"], "image");
    assert_eq!(record["state"], "complete");
    assert_eq!(record["size_bytes"], PNG.len());
    let sha256 = record["sha256"].as_str().expect("a hash").to_owned();
    assert_eq!(sha256.len(), 64);
    let media_id = record["media_id"].as_str().expect("an id").to_owned();

    let (status, _, info) = server
        .get_as("alice", &format!("/v1/media/{media_id}/info"))
        .await;
    assert_eq!(status, 200);
    // The same record, except for what the thumbnailer may have added since (this PNG's pixel
    // data is not valid, so it records why it has no thumbnails).
    let mut info = info;
    for field in ["dimensions", "thumbnails", "thumbnail_failure"] {
        info.as_object_mut().expect("an object").remove(field);
    }
    assert_eq!(info, record);

    let whole = download(&server, &alice, &media_id, &[]).await;
    assert_eq!(whole.status(), StatusCode::OK);
    assert_eq!(header_text(&whole, header::CONTENT_TYPE), "image/png");
    assert_eq!(header_text(&whole, header::ETAG), format!("\"{sha256}\""));
    assert_eq!(header_text(&whole, header::ACCEPT_RANGES), "bytes");
    assert_eq!(
        header_text(&whole, header::X_CONTENT_TYPE_OPTIONS),
        "nosniff"
    );
    assert_eq!(
        header_text(&whole, header::CONTENT_DISPOSITION),
        "inline; filename=\"pixel.png\"; filename*=UTF-8''pixel.png"
    );
    assert_eq!(whole.bytes().await.expect("body").as_ref(), PNG);

    let etag = format!("\"{sha256}\"");
    let cached = download(
        &server,
        &alice,
        &media_id,
        &[(header::IF_NONE_MATCH, &etag)],
    )
    .await;
    assert_eq!(cached.status(), StatusCode::NOT_MODIFIED);

    let part = download(&server, &alice, &media_id, &[(header::RANGE, "bytes=1-3")]).await;
    assert_eq!(part.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        header_text(&part, header::CONTENT_RANGE),
        format!("bytes 1-3/{}", PNG.len())
    );
    assert_eq!(part.bytes().await.expect("body").as_ref(), &PNG[1..=3]);

    let tail = download(&server, &alice, &media_id, &[(header::RANGE, "bytes=-4")]).await;
    assert_eq!(tail.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        tail.bytes().await.expect("body").as_ref(),
        &PNG[PNG.len() - 4..]
    );

    let thousand = format!(
        "bytes={}",
        (0..1_000)
            .map(|n| format!("{n}-{n}"))
            .collect::<Vec<_>>()
            .join(",")
    );
    let many = download(&server, &alice, &media_id, &[(header::RANGE, &thousand)]).await;
    assert_eq!(
        many.status(),
        StatusCode::OK,
        "several ranges get the whole file"
    );
    assert_eq!(many.bytes().await.expect("body").as_ref(), PNG);

    for unsatisfiable in ["bytes=-0", "bytes=5-1", "bytes=1000-"] {
        let refused = download(
            &server,
            &alice,
            &media_id,
            &[(header::RANGE, unsatisfiable)],
        )
        .await;
        assert_eq!(
            refused.status(),
            StatusCode::RANGE_NOT_SATISFIABLE,
            "{unsatisfiable}"
        );
        assert_eq!(
            header_text(&refused, header::CONTENT_RANGE),
            format!("bytes */{}", PNG.len())
        );
        let body: Value = refused.json().await.expect("an error body");
        assert_eq!(body["code"], "range_not_satisfiable");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_uploads_get_their_codes_and_store_nothing() {
    let server = TestServer::start_with(|config| {
        config.media.max_file_bytes = 1_000;
        config.media.user_quota_bytes = Some(100);
    })
    .await;
    let alice = token("acme", "alice");
    let elf: &'static [u8] = b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0\x02\0\x3e\0\x01\0\0\0\x78\0\x40\0\0\0\0\0\x40\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\x40\0\x38\0\x01\0\0\0\0\0\0\0";
    let too_big: &'static [u8] = &[b'a'; 1_001];
    let over_quota: &'static [u8] = &[b'a'; 101];
    for (query, bytes, status, code) in [
        (
            "file_name=..%2Fetc%2Fpasswd",
            b"abc".as_slice(),
            400,
            "invalid",
        ),
        ("file_name=bell%07.txt", b"abc".as_slice(), 400, "invalid"),
        (
            "file_name=a.txt&conversation_id=nope",
            b"abc".as_slice(),
            400,
            "invalid",
        ),
        (
            "file_name=a.txt&surprise=1",
            b"abc".as_slice(),
            400,
            "invalid",
        ),
        ("file_name=big.txt", too_big, 413, "too_large"),
        ("file_name=quota.txt", over_quota, 413, "quota_exceeded"),
        ("file_name=pixel.exe", PNG, 415, "unsupported_media_type"),
        ("file_name=tool.png", elf, 415, "unsupported_media_type"),
        ("file_name=tool", elf, 415, "unsupported_media_type"),
    ] {
        let (got, body) = upload(&server, &alice, query, bytes).await;
        assert_eq!(
            (got, body["code"].as_str()),
            (status, Some(code)),
            "{query}: {body}"
        );
    }
    let (_, body) = upload(&server, &alice, "file_name=quota.txt", over_quota).await;
    assert_eq!(body["details"]["field"], "user");
    assert_eq!(body["details"]["remaining"], 100);
    // Nothing of the refused uploads counts: the whole quota is still free.
    let fits: &'static [u8] = &[b'a'; 100];
    let (status, body) = upload(&server, &alice, "file_name=fits.txt", fits).await;
    assert_eq!(status, 201, "{body}");
    // The empty file is a file.
    let (status, body) = upload(&server, &token("acme", "bob"), "file_name=empty.txt", b"").await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["size_bytes"], 0);

    // A chunked body declares no length: refused before it is read.
    let status_line = raw_request(
        &server,
        &format!(
            "POST /v1/media?file_name=stream.txt HTTP/1.1\r\nHost: 127.0.0.1\r\n\
             Authorization: Bearer {alice}\r\nTransfer-Encoding: chunked\r\n\
             Connection: close\r\n\r\n7\r\nchunked\r\n0\r\n\r\n"
        ),
    )
    .await;
    assert!(status_line.starts_with("HTTP/1.1 400"), "{status_line}");
}

/// Sends `request` as it is and returns the answer's status line.
async fn raw_request(server: &TestServer, request: &str) -> String {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut stream = tokio::net::TcpStream::connect(server.server().local_addr())
        .await
        .expect("connects");
    stream.write_all(request.as_bytes()).await.expect("written");
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.expect("read");
    String::from_utf8_lossy(&answer)
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_users_and_tenants_see_nothing_and_the_uploader_or_an_admin_deletes() {
    let server = TestServer::start().await;
    let (status, record) =
        upload(&server, &token("acme", "alice"), "file_name=a.txt", b"abc").await;
    assert_eq!(status, 201);
    let media_id = record["media_id"].as_str().expect("an id").to_owned();
    for user_token in [token("acme", "bob"), token("other", "alice")] {
        let response = download(&server, &user_token, &media_id, &[]).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        let response = server
            .request(
                Method::DELETE,
                &format!("/v1/media/{media_id}"),
                &user_token,
                None,
            )
            .await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
    }
    let response = server
        .request(
            Method::GET,
            "/v1/media/not-a-ulid",
            &token("acme", "alice"),
            None,
        )
        .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);

    let admin = token_with_roles("acme", "carol", &["admin"]);
    let response = server
        .request(
            Method::DELETE,
            &format!("/v1/media/{media_id}"),
            &admin,
            None,
        )
        .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let response = download(&server, &token("acme", "alice"), &media_id, &[]).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);

    let (_, record) = upload(&server, &token("acme", "alice"), "file_name=b.txt", b"abc").await;
    let media_id = record["media_id"].as_str().expect("an id").to_owned();
    let (status, _, _) = server
        .delete_as("alice", &format!("/v1/media/{media_id}"))
        .await;
    assert_eq!(status, 204);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn media_for_a_conversation_needs_its_membership() {
    let server = TestServer::start().await;
    let conversation_id = server.create_conversation("acme", "alice", &["bob"]).await;
    let query = format!("file_name=a.txt&conversation_id={conversation_id}");
    let (status, record) = upload(&server, &token("acme", "bob"), &query, b"abc").await;
    assert_eq!(status, 201, "{record}");
    assert_eq!(record["conversation_id"], conversation_id.as_str());
    let (status, body) = upload(&server, &token("acme", "mallory"), &query, b"abc").await;
    assert_eq!((status, body["code"].as_str()), (403, Some("not_member")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_link_serves_without_a_token_until_changed() {
    let server = TestServer::start().await;
    let alice = token("acme", "alice");
    let (_, record) = upload(&server, &alice, "file_name=pixel.png", PNG).await;
    let media_id = record["media_id"].as_str().expect("an id").to_owned();
    let (status, _, link) = server
        .post_as(
            "alice",
            &format!("/v1/media/{media_id}/links"),
            serde_json::json!({"ttl_secs": 600}),
        )
        .await;
    assert_eq!(status, 201, "{link}");
    let url = link["url"].as_str().expect("a url").to_owned();
    assert!(link["expires_at"].as_u64().is_some());

    let client = reqwest::Client::new();
    let whole = client.get(server.url(&url)).send().await.expect("sent");
    assert_eq!(whole.status(), StatusCode::OK);
    assert_eq!(whole.bytes().await.expect("body").as_ref(), PNG);
    let part = client
        .get(server.url(&url))
        .header(header::RANGE, "bytes=0-7")
        .send()
        .await
        .expect("sent");
    assert_eq!(part.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(part.bytes().await.expect("body").as_ref(), &PNG[..8]);

    let tampered = [
        url.replace("tenant=acme", "tenant=other"),
        url.replace("&expires=", "&expires=9"),
        format!("{url}x"),
        url.replace(&media_id, "01HF7YAT000000000000000000"),
    ];
    for changed in tampered {
        let response = client.get(server.url(&changed)).send().await.expect("sent");
        assert!(
            matches!(
                response.status(),
                StatusCode::FORBIDDEN | StatusCode::BAD_REQUEST
            ),
            "{changed}: {}",
            response.status()
        );
        assert_ne!(response.status(), StatusCode::OK);
    }

    // Only those who may read the media get a link; a ttl must be within the limits.
    let (status, _, _) = server
        .post_as(
            "bob",
            &format!("/v1/media/{media_id}/links"),
            serde_json::json!({}),
        )
        .await;
    assert_eq!(status, 404);
    let (status, _, _) = server
        .post_as(
            "alice",
            &format!("/v1/media/{media_id}/links"),
            serde_json::json!({"ttl_secs": 0}),
        )
        .await;
    assert_eq!(status, 400);
}

/// A `multipart/form-data` body as a browser builds it: `fields` as text parts, then `file` as
/// a file part named `file_name`.
fn form(boundary: &str, fields: &[(&str, &str)], file: Option<(&str, &[u8])>) -> Vec<u8> {
    let mut body = Vec::new();
    for (name, value) in fields {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
            )
            .as_bytes(),
        );
    }
    if let Some((file_name, bytes)) = file {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{file_name}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    body
}

async fn upload_form(server: &TestServer, query: &str, body: Vec<u8>) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(server.url(&format!("/v1/media{query}")))
        .bearer_auth(token("acme", "alice"))
        .header(
            header::CONTENT_TYPE,
            "multipart/form-data; boundary=sb-test-boundary",
        )
        .body(body)
        .send()
        .await
        .expect("sent");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_form_uploads_a_file_whose_record_has_the_files_own_length() {
    let server = TestServer::start().await;
    let boundary = "sb-test-boundary";
    let body = form(boundary, &[("note", "ignored")], Some(("pixel.png", PNG)));
    let form_length = body.len();
    let (status, record) = upload_form(&server, "", body).await;
    assert_eq!(status, 201, "{record}");
    assert_eq!(record["file_name"], "pixel.png");
    assert_eq!(record["content_type"], "image/png");
    assert_eq!(
        record["size_bytes"],
        PNG.len(),
        "not the form's {form_length}"
    );
    let media_id = record["media_id"].as_str().expect("an id").to_owned();
    let whole = download(&server, &token("acme", "alice"), &media_id, &[]).await;
    assert_eq!(whole.bytes().await.expect("body").as_ref(), PNG);
    let (_, _, usage_probe) = server
        .get_as("alice", &format!("/v1/media/{media_id}/info"))
        .await;
    assert_eq!(usage_probe["received_bytes"], PNG.len());

    // A file_name field names it, before the file; the query may name it too.
    let body = form(
        boundary,
        &[("file_name", "renamed.png")],
        Some(("x.png", PNG)),
    );
    let (status, record) = upload_form(&server, "", body).await;
    assert_eq!(
        (status, record["file_name"].as_str()),
        (201, Some("renamed.png"))
    );

    // A form without a file, a raw body without a name, a form whose text is too long.
    let (status, answer) = upload_form(&server, "", form(boundary, &[("a", "b")], None)).await;
    assert_eq!(
        (status, answer["code"].as_str()),
        (400, Some("invalid")),
        "{answer}"
    );
    let (status, answer) = upload(&server, &token("acme", "alice"), "", PNG).await;
    assert_eq!(
        (status, answer["code"].as_str()),
        (400, Some("invalid")),
        "{answer}"
    );
    let long = "x".repeat(5_000);
    let body = form(boundary, &[("file_name", &long)], Some(("x.png", PNG)));
    let (status, answer) = upload_form(&server, "", body).await;
    assert_eq!(
        (status, answer["code"].as_str()),
        (400, Some("invalid")),
        "{answer}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_with_its_own_link_secret_gets_links_only_its_secret_verifies() {
    let server = TestServer::start_with(|config| {
        config.media.tenants = vec![switchboard::config::TenantMediaConfig {
            tenant: "acme".to_owned(),
            link_secret: Some("acme's own link secret".to_owned()),
            ..Default::default()
        }];
    })
    .await;
    let mut keys = Vec::new();
    for tenant in ["acme", "other"] {
        let user_token = token(tenant, "alice");
        let (status, record) = upload(&server, &user_token, "file_name=pixel.png", PNG).await;
        assert_eq!(status, 201, "{record}");
        let media_id = record["media_id"].as_str().expect("an id");
        let response = server
            .request(
                Method::POST,
                &format!("/v1/media/{media_id}/links"),
                &user_token,
                Some(&serde_json::json!({})),
            )
            .await;
        assert_eq!(response.status(), StatusCode::CREATED);
        let link: Value = response.json().await.expect("json");
        let url = link["url"].as_str().expect("a url").to_owned();
        let served = reqwest::get(server.url(&url)).await.expect("sent");
        assert_eq!(served.status(), StatusCode::OK, "{tenant}");
        let key = url
            .split('&')
            .find_map(|pair| pair.strip_prefix("key="))
            .expect("a key")
            .to_owned();
        keys.push(key);
    }
    assert_ne!(keys[0], keys[1], "each tenant's links name its own key");
}
