//! Media across two nodes (built with `mongodb` and `s3`; `./scripts/test` runs these against
//! the servers `scripts/test-services` starts): both nodes keep media records in one MongoDB
//! database and the bytes in one S3 bucket. A tus upload begun on one node continues on the
//! other from the offset that node reports, and the first node serves the finished file; a
//! photo uploaded to one node is thumbnailed there, and the other node lists and serves its
//! thumbnails. With `media.redirect_links_to_object_store`, a signed link answers 302 to a
//! presigned S3 URL, from which S3 itself serves the file and its ranges. With `kafka` too,
//! every completed upload is one `media.uploaded` record on the media topic, whichever node
//! completed it.

use reqwest::{Method, StatusCode};
use serde_json::Value;
use switchboard::config::{
    Config, MongodbStorageConfig, ObjectStoreConfig, S3ObjectStoreConfig, StorageBackend,
};
use switchboard_testing::{mongodb_uri, s3_variable};

use crate::mongodb::drop_database;
use crate::support::{TestServer, eventually, header_value, jpeg, token};

/// A node on MongoDB database `database` with its objects in the S3 bucket of the same name.
fn on_mongodb_and_s3(database: &str) -> impl FnOnce(&mut Config) + use<> {
    let database = database.to_owned();
    move |config| {
        config.storage.backend = StorageBackend::Mongodb(MongodbStorageConfig {
            uri: mongodb_uri(),
            database: database.clone(),
            ..MongodbStorageConfig::default()
        });
        config.objects.store = ObjectStoreConfig::S3(S3ObjectStoreConfig::new(
            s3_variable("SWITCHBOARD_TEST_S3_ENDPOINT"),
            database.replace('_', "-"),
            s3_variable("SWITCHBOARD_TEST_S3_ACCESS_KEY"),
            s3_variable("SWITCHBOARD_TEST_S3_SECRET_KEY"),
        ));
    }
}

async fn two_nodes(database: &str) -> (TestServer, TestServer) {
    two_nodes_with(database, |_| {}).await
}

/// [`two_nodes`], each node's configuration changed by `also` as well.
async fn two_nodes_with(
    database: &str,
    also: impl Fn(&mut Config) + Clone + Send + 'static,
) -> (TestServer, TestServer) {
    let node = || {
        let on_mongodb_and_s3 = on_mongodb_and_s3(database);
        let also = also.clone();
        move |config: &mut Config| {
            on_mongodb_and_s3(config);
            also(config);
        }
    };
    let first = TestServer::start_with(node()).await;
    let second = TestServer::start_with(node()).await;
    for node in [&first, &second] {
        eventually("the node is ready", || async {
            let response = node.get_without_token("/ready").await;
            (response.status() == StatusCode::OK).then_some(())
        })
        .await;
    }
    (first, second)
}

fn tus(node: &TestServer, method: Method, path: &str) -> reqwest::RequestBuilder {
    reqwest::Client::new()
        .request(method, node.url(path))
        .bearer_auth(token("acme", "alice"))
        .header("tus-resumable", "1.0.0")
}

fn database_name(test: &str) -> String {
    format!("media_{test}_{}", std::process::id())
}

/// Uploads `file` with tus, the first half to `first` and the rest to `second` from the offset
/// `second` reports; the media id.
async fn upload_across(first: &TestServer, second: &TestServer, file: &[u8]) -> String {
    let half = file.len() / 2;

    let created = tus(first, Method::POST, "/v1/media/uploads")
        .header("upload-length", file.len().to_string())
        .header("upload-metadata", "filename bm90ZXMudHh0")
        .send()
        .await
        .expect("sent");
    assert_eq!(created.status(), StatusCode::CREATED);
    let location = header_value(&created, "location");
    let media_id = location.rsplit('/').next().expect("an id").to_owned();
    let patched = tus(first, Method::PATCH, &location)
        .header("content-type", "application/offset+octet-stream")
        .header("upload-offset", "0")
        .body(file[..half].to_vec())
        .send()
        .await
        .expect("sent");
    assert_eq!(patched.status(), StatusCode::NO_CONTENT);

    // The other node knows where the upload stands, and takes the rest.
    let head = tus(second, Method::HEAD, &location)
        .send()
        .await
        .expect("sent");
    assert_eq!(head.status(), StatusCode::OK);
    assert_eq!(header_value(&head, "upload-offset"), half.to_string());
    let (status, _, progress) = second
        .get_as("alice", &format!("/v1/media/uploads/{media_id}"))
        .await;
    assert_eq!(status, 200, "{progress}");
    let patched = tus(second, Method::PATCH, &location)
        .header("content-type", "application/offset+octet-stream")
        .header("upload-offset", half.to_string())
        .body(file[half..].to_vec())
        .send()
        .await
        .expect("sent");
    assert_eq!(patched.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        header_value(&patched, "upload-offset"),
        file.len().to_string()
    );

    media_id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_begun_on_one_node_continues_on_the_other_and_either_serves_it() {
    let database = database_name("resume");
    let (first, second) = two_nodes(&database).await;
    let file: Vec<u8> = (0..200_000u32).map(|n| b'a' + (n % 26) as u8).collect();
    let media_id = upload_across(&first, &second, &file).await;

    for node in [&first, &second] {
        let response = node
            .request(
                Method::GET,
                &format!("/v1/media/{media_id}"),
                &token("acme", "alice"),
                None,
            )
            .await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.bytes().await.expect("body").as_ref(), &file[..]);
    }
    drop_database(&database).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_photo_thumbnailed_on_one_node_is_served_by_the_other() {
    let database = database_name("thumbnails");
    let (first, second) = two_nodes(&database).await;
    let response = reqwest::Client::new()
        .post(first.url("/v1/media?file_name=photo.jpg"))
        .bearer_auth(token("acme", "alice"))
        .body(jpeg(800, 600))
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), StatusCode::CREATED);
    let record: Value = response.json().await.expect("json");
    let media_id = record["media_id"].as_str().expect("an id").to_owned();

    let record = eventually("the thumbnail, seen from the other node", || async {
        let (status, _, record) = second
            .get_as("alice", &format!("/v1/media/{media_id}/info"))
            .await;
        assert_eq!(status, 200, "{record}");
        record.get("thumbnails").is_some().then_some(record)
    })
    .await;
    assert_eq!(record["thumbnails"][0]["size"], 256);
    let response = second
        .request(
            Method::GET,
            &format!("/v1/media/{media_id}/thumbnail?size=256"),
            &token("acme", "alice"),
            None,
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let thumbnail =
        image::load_from_memory(&response.bytes().await.expect("body")).expect("a thumbnail");
    assert_eq!((thumbnail.width(), thumbnail.height()), (256, 192));
    drop_database(&database).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_link_redirects_to_s3_when_set_to_and_s3_serves_the_bytes_and_ranges() {
    let database = database_name("redirect");
    let on_mongodb_and_s3 = on_mongodb_and_s3(&database);
    let node = TestServer::start_with(move |config| {
        on_mongodb_and_s3(config);
        config.media.redirect_links_to_object_store = true;
    })
    .await;
    eventually("the node is ready", || async {
        let response = node.get_without_token("/ready").await;
        (response.status() == StatusCode::OK).then_some(())
    })
    .await;
    let file: Vec<u8> = (0..50_000u32).map(|n| b'a' + (n % 26) as u8).collect();
    let response = reqwest::Client::new()
        .post(node.url("/v1/media?file_name=notes.txt"))
        .bearer_auth(token("acme", "alice"))
        .body(file.clone())
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), StatusCode::CREATED);
    let record: Value = response.json().await.expect("json");
    let media_id = record["media_id"].as_str().expect("an id");
    let (status, _, link) = node
        .post_as(
            "alice",
            &format!("/v1/media/{media_id}/links"),
            serde_json::json!({"ttl_secs": 300}),
        )
        .await;
    assert_eq!(status, 201, "{link}");

    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("a client");
    let redirect = no_redirects
        .get(node.url(link["url"].as_str().expect("a url")))
        .send()
        .await
        .expect("sent");
    assert_eq!(redirect.status(), StatusCode::FOUND);
    let location = header_value(&redirect, "location");
    assert!(
        location.starts_with(&s3_variable("SWITCHBOARD_TEST_S3_ENDPOINT")),
        "{location}"
    );
    let whole = no_redirects.get(&location).send().await.expect("sent");
    assert_eq!(whole.status(), StatusCode::OK);
    assert_eq!(header_value(&whole, "content-type"), "text/plain");
    assert_eq!(whole.bytes().await.expect("body").as_ref(), &file[..]);
    let part = no_redirects
        .get(&location)
        .header("range", "bytes=100-199")
        .send()
        .await
        .expect("sent");
    assert_eq!(part.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(part.bytes().await.expect("body").as_ref(), &file[100..200]);
    // A changed link is still refused by the node, before any redirect.
    let tampered = no_redirects
        .get(node.url(&format!("{}x", link["url"].as_str().expect("a url"))))
        .send()
        .await
        .expect("sent");
    assert_eq!(tampered.status(), StatusCode::FORBIDDEN);
    drop_database(&database).await;
}

/// In the Kafka build every completed upload is one `media.uploaded` record on
/// `kafka.media_topic`, whichever node completes it: a tus upload begun on one node and
/// finished on the other, and a whole upload to the first node.
#[cfg(feature = "kafka")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_completed_upload_is_one_media_uploaded_record_whichever_node_completes_it() {
    use rdkafka::Message as _;
    use rdkafka::config::ClientConfig;
    use rdkafka::consumer::{Consumer, StreamConsumer};
    use sha2::Digest as _;

    let database = database_name("events");
    let media_topic = format!("{database}.media");
    let kafka = crate::mongodb::on_kafka(&database);
    let topic = media_topic.clone();
    let (first, second) = two_nodes_with(&database, move |config| {
        crate::mongodb::apply_kafka(config, kafka.clone());
        config.kafka.media_topic.clone_from(&topic);
    })
    .await;
    let file: Vec<u8> = (0..100_000u32).map(|n| b'a' + (n % 26) as u8).collect();
    let resumed = upload_across(&first, &second, &file).await;
    let response = reqwest::Client::new()
        .post(first.url("/v1/media?file_name=photo.jpg"))
        .bearer_auth(token("acme", "alice"))
        .body(jpeg(64, 48))
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), StatusCode::CREATED);
    let whole: Value = response.json().await.expect("json");
    let whole_id = whole["media_id"].as_str().expect("an id").to_owned();

    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", switchboard_testing::kafka_brokers())
        .set("group.id", format!("{database}.reader"))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .expect("a consumer");
    consumer.subscribe(&[&media_topic]).expect("subscribed");
    let mut events: Vec<Value> = Vec::new();
    let read = async {
        while !(events
            .iter()
            .any(|event| event["media_id"] == resumed.as_str())
            && events
                .iter()
                .any(|event| event["media_id"] == whole_id.as_str()))
        {
            let message = consumer.recv().await.expect("a record");
            let key = String::from_utf8_lossy(message.key().expect("a key")).into_owned();
            let event: Value =
                serde_json::from_slice(message.payload().expect("a payload")).expect("JSON");
            assert_eq!(
                key,
                format!("acme/{}", event["media_id"].as_str().expect("an id"))
            );
            events.push(event);
        }
    };
    tokio::time::timeout(3 * crate::support::DEADLINE, read)
        .await
        .expect("both records within the deadline");
    let of = |media_id: &str| {
        let found: Vec<&Value> = events
            .iter()
            .filter(|event| event["media_id"] == media_id)
            .collect();
        assert_eq!(found.len(), 1, "one record for {media_id}: {events:?}");
        found[0].clone()
    };
    let resumed_event = of(&resumed);
    assert_eq!(resumed_event["type"], "media.uploaded");
    assert_eq!(resumed_event["tenant_id"], "acme");
    assert_eq!(resumed_event["uploader_id"], "alice");
    assert_eq!(resumed_event["file_name"], "notes.txt");
    assert_eq!(resumed_event["content_type"], "text/plain");
    assert_eq!(resumed_event["size_bytes"], file.len());
    let digest = sha2::Sha256::digest(&file);
    let hex: String = digest.iter().map(|byte| format!("{byte:02x}")).collect();
    assert_eq!(resumed_event["sha256"], hex.as_str());
    let whole_event = of(&whole_id);
    assert_eq!(whole_event["content_type"], "image/jpeg");
    assert_eq!(whole_event["sha256"], whole["sha256"]);
    drop((first, second));
    drop_database(&database).await;
}
