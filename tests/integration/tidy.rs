//! Tidy checks that keep the tree and the documentation honest: every Rust file opens with a
//! `//!` paragraph, there are no `mod.rs` files and no ignored tests, every wire code and close
//! code is documented, and the server serves exactly the routes its OpenAPI document lists.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use switchboard_transport::wire_error::{ALL_CODES, close_code};

fn repository_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn rust_files(directory: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(directory).expect("readable directory") {
        let path = entry.expect("readable entry").path();
        let name = path
            .file_name()
            .and_then(|name| name.to_str())
            .unwrap_or_default();
        if path.is_dir() {
            if !matches!(
                name,
                "target" | ".git" | "node_modules" | "proptest-regressions"
            ) {
                rust_files(&path, found);
            }
        } else if name.ends_with(".rs") {
            found.push(path);
        }
    }
}

fn all_rust_files() -> Vec<PathBuf> {
    let mut found = Vec::new();
    rust_files(&repository_root(), &mut found);
    assert!(found.len() > 20, "the walk found the sources");
    found
}

#[test]
fn every_rust_file_opens_with_a_module_doc_paragraph() {
    let undocumented: Vec<PathBuf> = all_rust_files()
        .into_iter()
        .filter(|path| {
            let text = std::fs::read_to_string(path).expect("readable");
            !text.trim_start().starts_with("//!")
        })
        .collect();
    assert!(
        undocumented.is_empty(),
        "files without a leading //! paragraph: {undocumented:?}"
    );
}

#[test]
fn no_mod_rs_and_no_ignored_tests() {
    let ignore_attribute = ["#[", "ignore"].concat();
    for path in all_rust_files() {
        assert_ne!(
            path.file_name().and_then(|name| name.to_str()),
            Some("mod.rs"),
            "{path:?}: use foo.rs + foo/"
        );
        let text = std::fs::read_to_string(&path).expect("readable");
        assert!(!text.contains(&ignore_attribute), "{path:?} ignores a test");
    }
}

fn read_doc(relative: &str) -> String {
    std::fs::read_to_string(repository_root().join(relative)).expect("the document exists")
}

#[test]
fn every_wire_code_and_close_code_is_documented() {
    let protocol = read_doc("docs/PROTOCOL.md");
    let openapi = read_doc("docs/openapi.json");
    for code in ALL_CODES {
        let quoted = format!("`{code}`");
        let in_json = format!("\"{code}\"");
        assert!(
            protocol.contains(&quoted) || openapi.contains(&in_json),
            "wire code {code} is documented nowhere"
        );
    }
    for code in [
        close_code::NORMAL,
        close_code::GOING_AWAY,
        close_code::POLICY_VIOLATION,
        close_code::MESSAGE_TOO_BIG,
        close_code::INTERNAL_ERROR,
        close_code::UNAUTHORIZED,
        close_code::SLOW_CONSUMER,
        close_code::TOO_MANY_CONNECTIONS,
        close_code::IDLE_TIMEOUT,
    ] {
        assert!(
            protocol.contains(&format!("| `{code}` |")),
            "close code {code} is not in PROTOCOL.md"
        );
    }
}

/// The served router answers exactly the routes the served document lists: every documented
/// `(method, path)` reaches a handler (anything but the router's own 404 and 405 answers), and
/// every other method on a documented path gets the router's 405. The router and the document
/// are the two halves of one `OpenApiRouter` (transport's `http::router::api`), and the
/// transport crate checks that its resources register routes only through `routes!`, so no
/// route can be served without being documented.
#[tokio::test]
async fn the_served_router_answers_exactly_the_documented_routes() {
    let server = crate::support::TestServer::start().await;
    let spec: serde_json::Value = server
        .get_without_token("/v1/openapi.json")
        .await
        .json()
        .await
        .expect("the document is JSON");
    let mut documented = BTreeSet::new();
    for (path, operations) in spec["paths"].as_object().expect("paths") {
        for method in operations.as_object().expect("operations").keys() {
            documented.insert((method.clone(), path.clone()));
        }
    }
    assert!(documented.len() > 30, "the document lists the API");
    let paths: BTreeSet<&String> = documented.iter().map(|(_, path)| path).collect();
    for path in paths {
        let concrete = path
            .split('/')
            .map(|segment| {
                if segment.starts_with('{') {
                    "01ARZ3NDEKTSV4RRFFQ69G5FAV"
                } else {
                    segment
                }
            })
            .collect::<Vec<_>>()
            .join("/");
        for method in ["get", "post", "put", "patch", "delete"] {
            let response = server
                .http
                .request(
                    reqwest::Method::from_bytes(method.to_uppercase().as_bytes())
                        .expect("a method"),
                    server.url(&concrete),
                )
                .send()
                .await
                .expect("sent");
            let status = response.status().as_u16();
            let body: serde_json::Value = response.json().await.unwrap_or_default();
            let by_router_fallback = (status == 404 && body["message"] == "no such endpoint")
                || (status == 405 && body["code"] == "method_not_allowed");
            if documented.contains(&(method.to_owned(), path.clone())) {
                assert!(
                    !by_router_fallback,
                    "{method} {path} is documented but not served ({status} {body})"
                );
            } else {
                assert!(
                    status == 405 && body["code"] == "method_not_allowed",
                    "{method} {path} is served ({status} {body}) but not documented"
                );
            }
        }
    }
    // Every error code the spec names is one the server can send.
    for code in spec["components"]["schemas"]["ErrorBody"]["properties"]["code"]["enum"]
        .as_array()
        .expect("an enum of codes")
    {
        let code = code.as_str().expect("a string");
        assert!(
            ALL_CODES.contains(&code),
            "the spec names unknown code {code}"
        );
    }
}

/// Every `SWITCHBOARD__…` setting in compose.yaml is a configuration key with a value of the
/// right type (unknown keys are refused), and the topology it describes is the one
/// docs/DEPLOY.md documents.
#[test]
#[allow(clippy::result_large_err)] // The error type is figment's, fixed by `Jail`.
fn compose_settings_are_configuration_keys() {
    use figment::Figment;
    use figment::providers::{Env, Serialized};
    use switchboard::config::{Config, StorageBackend};

    let compose = read_doc("compose.yaml");
    let settings: Vec<(String, String)> = compose
        .lines()
        .filter_map(|line| {
            let (key, value) = line.trim().split_once(": ")?;
            key.starts_with("SWITCHBOARD__")
                .then(|| (key.to_owned(), value.trim().to_owned()))
        })
        .collect();
    assert!(settings.len() >= 10, "compose.yaml configures the nodes");
    figment::Jail::expect_with(|jail| {
        for (key, value) in &settings {
            let value = if value.starts_with("${") {
                // Compose fills these in from the operator's environment.
                "a-secret-given-at-deploy-time-0123456789".to_owned()
            } else {
                value
                    .trim_matches(|quote| quote == '\'' || quote == '"')
                    .to_owned()
            };
            jail.set_env(key, value);
        }
        let config: Config = Figment::from(Serialized::defaults(Config::default()))
            .merge(Env::prefixed("SWITCHBOARD__").split("__"))
            .extract()?;
        assert!(matches!(config.storage.backend, StorageBackend::Mongodb(_)));
        assert!(config.kafka.brokers.is_some());
        assert!(config.cluster.redis_url.is_some());
        assert_eq!(config.turn.uris.len(), 2);
        Ok(())
    });
    let deploy = read_doc("docs/DEPLOY.md");
    for service in [
        "switchboard-a",
        "switchboard-b",
        "lb",
        "mongodb",
        "kafka",
        "redis",
        "s3",
        "coturn",
    ] {
        assert!(
            compose.contains(&format!("\n  {service}:")),
            "compose.yaml has {service}"
        );
        assert!(
            deploy.contains(&format!("`{service}`")),
            "docs/DEPLOY.md describes {service}"
        );
    }
}
