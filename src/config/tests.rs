//! Configuration: the example file documents every key with its default, sources merge in the
//! documented order, bad values fail fast, and the development secret is generated once.

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};

use super::*;

fn example() -> Config {
    let text = include_str!("../../config.example.toml");
    toml::from_str(text).expect("config.example.toml parses with deny_unknown_fields")
}

#[test]
fn the_example_file_is_exactly_the_defaults() {
    assert_eq!(example(), Config::default());
}

#[test]
fn the_example_file_mentions_every_key() {
    let text = include_str!("../../config.example.toml");
    let defaults = toml::Value::try_from(Config::default()).expect("serializes");
    let mut missing = Vec::new();
    for (section, table) in defaults.as_table().expect("a table") {
        assert!(
            text.contains(&format!("[{section}]")),
            "section [{section}] is missing"
        );
        for key in table.as_table().expect("sections are tables").keys() {
            if !text.contains(&format!("\n{key} = ")) {
                missing.push(format!("{section}.{key}"));
            }
        }
    }
    // Optional keys have no default value; they must still be documented (commented out).
    for (section, optional) in [
        ("auth", "hs256_secret"),
        ("auth", "audience"),
        ("turn", "secret"),
    ] {
        if !text.contains(&format!("# {optional} = ")) {
            missing.push(format!("{section}.{optional}"));
        }
    }
    assert!(missing.is_empty(), "undocumented keys: {missing:?}");
}

#[test]
fn unknown_keys_and_bad_values_fail_fast() {
    let unknown: Result<Config, _> = toml::from_str("[limits]\nmesages_per_minute = 5\n");
    assert!(unknown.is_err());
    let mut config = Config::default();
    config.limits.history_default_limit = 500;
    assert!(config.validate().is_err());
    let mut config = Config::default();
    config.server.listen = "not an address".to_owned();
    assert!(config.validate().is_err());
    let mut config = Config::default();
    config.websocket.idle_timeout_ms = config.websocket.heartbeat_ms;
    assert!(config.validate().is_err());
    assert!(Config::default().validate().is_ok());
}

#[test]
#[allow(clippy::result_large_err)] // The error type is figment's, fixed by `Jail`.
fn file_then_environment_then_flags() {
    figment::Jail::expect_with(|jail| {
        jail.create_file(
            "switchboard.toml",
            "[server]\nlisten = \"127.0.0.1:9000\"\ndata_dir = \"/from/file\"\n[limits]\nmessages_per_minute = 5\nmax_members = 7\n",
        )?;
        jail.set_env("SWITCHBOARD__LIMITS__MESSAGES_PER_MINUTE", "0");
        jail.set_env("SWITCHBOARD__SERVER__LISTEN", "127.0.0.1:9001");
        let overrides = CliOverrides {
            listen: Some("127.0.0.1:9002".to_owned()),
            ..CliOverrides::default()
        };
        let config = Config::load(Some(Path::new("switchboard.toml")), &overrides)
            .map_err(|error| error.to_string())?;
        assert_eq!(config.limits.messages_per_minute, 0, "env beats file");
        assert_eq!(config.limits.max_members, 7, "file beats defaults");
        assert_eq!(config.server.listen, "127.0.0.1:9002", "flags beat env");
        assert_eq!(config.server.data_dir, PathBuf::from("/from/file"));
        assert_eq!(config.limits.messages_burst, 10, "defaults fill the rest");
        Ok(())
    });
}

#[test]
fn a_missing_config_file_is_an_error() {
    let result = Config::load(
        Some(Path::new("/definitely/not/here.toml")),
        &CliOverrides::default(),
    );
    assert!(result.is_err());
}

#[test]
fn the_development_secret_is_generated_once_and_kept_private() {
    let data_dir = tempfile::tempdir().expect("temp dir");
    let auth = AuthConfig::default();
    let first = development_secret(&auth, data_dir.path()).expect("generated");
    let second = development_secret(&auth, data_dir.path()).expect("read back");
    assert_eq!(first, second);
    assert_eq!(first.len(), 64);
    let other_dir = tempfile::tempdir().expect("temp dir");
    assert_ne!(
        development_secret(&auth, other_dir.path()).expect("generated"),
        first
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(data_dir.path().join(DEV_SECRET_FILE))
            .expect("file exists")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let configured = AuthConfig {
        hs256_secret: Some("configured-secret-of-at-least-32-bytes".to_owned()),
        ..AuthConfig::default()
    };
    assert_eq!(
        development_secret(&configured, data_dir.path()).expect("configured"),
        "configured-secret-of-at-least-32-bytes"
    );
}

#[test]
fn an_s3_object_store_names_what_it_is_missing() {
    let error = toml::from_str::<Config>("[objects]\nbackend = \"s3\"\n")
        .expect_err("s3 without settings")
        .to_string();
    for key in [
        "objects.s3_endpoint",
        "objects.s3_access_key",
        "objects.s3_secret_key",
    ] {
        assert!(error.contains(key), "{error}");
    }
    let config: Config = toml::from_str(
        "[objects]\nbackend = \"s3\"\ns3_endpoint = \"http://127.0.0.1:9000\"\n\
         s3_access_key = \"key\"\ns3_secret_key = \"secret\"\n",
    )
    .expect("s3 with its settings");
    if cfg!(feature = "s3") {
        assert!(config.validate().is_ok());
        let mut config = config;
        if let ObjectStoreConfig::S3(s3) = &mut config.objects.store {
            s3.access_key.clear();
        }
        let error = config.validate().expect_err("an empty key").to_string();
        assert!(error.contains("objects.s3_access_key"), "{error}");
    } else {
        let error = config.validate().expect_err("no S3 adapter").to_string();
        assert!(error.contains("--features s3"), "{error}");
    }
    let mut config = Config::default();
    config.limits.max_recording_bytes = 0;
    assert!(config.validate().is_err());
}

#[test]
fn media_tenants_override_quotas_and_types_and_bad_entries_are_named() {
    let config: Config = toml::from_str(
        "[media]\nuser_quota_bytes = 100\n\n[[media.tenants]]\ntenant = \"acme\"\n\
         tenant_quota_bytes = 5000\nallowed_types = [\"image/*\"]\n",
    )
    .expect("parses");
    config.validate().expect("valid");
    let settings = config
        .media
        .media_settings(std::time::Duration::from_secs(1))
        .expect("settings");
    let acme = switchboard_engine::ids::TenantId::parse("acme").expect("valid");
    let quotas = settings.tenant_quotas.get(&acme).expect("acme's quotas");
    assert_eq!(quotas.tenant_bytes, Some(5000));
    assert_eq!(
        quotas.user_bytes,
        Some(100),
        "the global value where it names none"
    );
    let allowed = settings
        .tenant_allowed_types
        .get(&acme)
        .expect("acme's types");
    assert!(allowed.allows("image/png"));
    assert!(!allowed.allows("application/pdf"));
    assert!(
        settings.allowed_types.allows("application/pdf"),
        "others keep the default"
    );

    for (toml_text, named) in [
        (
            "[[media.tenants]]\ntenant = \"no spaces\"\n",
            "media.tenants",
        ),
        (
            "[[media.tenants]]\ntenant = \"acme\"\nallowed_types = [\"png\"]\n",
            "allowed_types",
        ),
        ("[media]\nallowed_types = [\"*\"]\n", "media.allowed_types"),
        (
            "[media]\nlink_ttl_secs = 10\nlink_max_ttl_secs = 5\n",
            "link_max_ttl_secs",
        ),
        (
            "[[media.tenants]]\ntenant = \"acme\"\nretired_link_secrets = [\"old\"]\n",
            "retired_link_secrets but no link_secret",
        ),
        (
            "[[media.tenants]]\ntenant = \"acme\"\nlink_secret = \"\"\n",
            "link_secret of acme is empty",
        ),
        ("[media]\nthumbnail_sizes = [8]\n", "media.thumbnail_sizes"),
    ] {
        let config: Config = toml::from_str(toml_text).expect("parses");
        let error = format!("{:#}", config.validate().expect_err("invalid"));
        assert!(error.contains(named), "{toml_text}: {error}");
    }
}

mod example;

#[test]
#[allow(clippy::result_large_err)] // The error type is figment's, fixed by `Jail`.
fn the_flat_keys_choose_the_modes() {
    figment::Jail::expect_with(|jail| {
        jail.create_file(
            "switchboard.toml",
            "[storage]\nbackend = \"mongodb\"\nmongodb_database = \"from_file\"\n\
             [turn]\nsecret = \"a-shared-secret\"\nrelay_enabled = false\nrelay_realm = \"\"\n\
             [objects]\nbackend = \"memory\"\ns3_bucket = \"ignored\"\n",
        )?;
        jail.set_env("SWITCHBOARD__STORAGE__MONGODB_URI", "mongodb://db:27017");
        let config: Config = Figment::from(Serialized::defaults(Config::default()))
            .merge(Toml::file("switchboard.toml"))
            .merge(Env::prefixed("SWITCHBOARD__").split("__"))
            .extract()?;
        assert_eq!(
            config.storage.backend,
            StorageBackend::Mongodb(MongodbStorageConfig {
                uri: "mongodb://db:27017".to_owned(),
                database: "from_file".to_owned(),
                ..MongodbStorageConfig::default()
            })
        );
        assert_eq!(
            config.turn.secret,
            TurnSharedSecret::Configured("a-shared-secret".to_owned())
        );
        // The relay's keys are not checked while it is off, as before.
        assert_eq!(config.turn.relay, TurnRelay::Off);
        assert_eq!(config.objects.store, ObjectStoreConfig::Memory);
        // Written back, the typed tree gives the same keys.
        let again: Config = Figment::from(Serialized::defaults(config.clone())).extract()?;
        assert_eq!(again, config);
        Ok(())
    });
}

#[test]
fn keys_of_a_mode_not_chosen_are_still_checked_as_before() {
    // Zero is refused whatever the backend and the object store, as it always was.
    for (section, key) in [
        ("storage", "mongodb_server_timeout_ms"),
        ("storage", "mongodb_breaker_failures"),
        ("objects", "s3_request_timeout_ms"),
    ] {
        let error = toml::from_str::<Config>(&format!("[{section}]\n{key} = 0\n"))
            .expect_err("zero is refused")
            .to_string();
        assert!(
            error.contains(&format!("{section}.{key} must be greater than 0")),
            "{error}"
        );
    }
}

#[test]
fn the_old_recordings_section_is_refused_naming_its_new_keys() {
    let data_dir = tempfile::tempdir().expect("a directory");
    let path = data_dir.path().join("switchboard.toml");
    std::fs::write(
        &path,
        "[recordings]\nobject_store = \"s3\"\ns3_endpoint = \"http://127.0.0.1:9000\"\n",
    )
    .expect("written");
    let error = Config::load(Some(&path), &CliOverrides::default())
        .expect_err("the old section")
        .to_string();
    for named in ["[objects]", "objects.backend", "SWITCHBOARD__OBJECTS__"] {
        assert!(error.contains(named), "{error}");
    }
    std::fs::write(&path, "[objects]\nbackend = \"memory\"\n").expect("written");
    let config = Config::load(Some(&path), &CliOverrides::default()).expect("the new section");
    assert_eq!(config.objects.store, ObjectStoreConfig::Memory);
}
