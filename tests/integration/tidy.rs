//! Tidy checks that keep the tree and the documentation honest: every Rust file opens with a
//! `//!` paragraph, there are no `mod.rs` files and no ignored tests, every wire code and close
//! code is documented, and the OpenAPI spec lists exactly the routes the server serves.

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

#[test]
fn the_openapi_spec_lists_exactly_the_served_routes() {
    let spec: serde_json::Value =
        serde_json::from_str(&read_doc("docs/openapi.json")).expect("valid JSON");
    let mut documented = BTreeSet::new();
    for (path, operations) in spec["paths"].as_object().expect("paths") {
        for method in operations.as_object().expect("operations").keys() {
            documented.insert((method.clone(), path.clone()));
        }
    }
    let served: BTreeSet<(String, String)> = switchboard_transport::http::ROUTES
        .iter()
        .map(|(method, path)| ((*method).to_owned(), (*path).to_owned()))
        .collect();
    assert_eq!(documented, served);
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
