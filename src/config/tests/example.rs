//! `config.example.toml` is generated from the sections' declarations (each key's doc comment
//! and default, see `config_section!`), and the settings table of docs/DEPLOY.md names only keys
//! that exist. `UPDATE_EXPECT=1 cargo test -p switchboard --lib config` rewrites the example.

use std::fmt::Write as _;

use super::super::section::SectionDoc;
use super::super::{Config, SECTIONS};

/// What the example file says before its first section.
const PREAMBLE: &str = "\
# Switchboard configuration: every key, with its default value.
#
# Generated from the sections in src/config/*.rs (their doc comments and
# defaults); a test fails when this file is out of step, and
# `UPDATE_EXPECT=1 cargo test -p switchboard --lib config` rewrites it.
#
# Sources merge in this order, later winning:
#   built-in defaults -> this file (`switchboard serve --config FILE`)
#   -> environment variables SWITCHBOARD__SECTION__KEY (for example
#      SWITCHBOARD__LIMITS__MESSAGES_PER_MINUTE=0) -> command-line flags
#      (--listen, --data-dir, --log-format).
# Unknown keys are an error. Keys without a default are shown commented out.
";

/// Writes `doc` as comment lines, leaving out the code fences of examples.
fn write_comment(out: &mut String, doc: &[&str]) {
    for line in doc {
        if line.trim_start().starts_with("```") {
            continue;
        }
        let line = line.strip_prefix(' ').unwrap_or(line);
        if line.is_empty() {
            out.push_str("#\n");
        } else {
            let _ = writeln!(out, "# {line}");
        }
    }
}

/// The example file: every section's doc comment, then each key's doc comment and its default
/// (or, for a key without one, its example, commented out).
fn render_example() -> String {
    let defaults = toml::Value::try_from(Config::default()).expect("the defaults serialize");
    let mut out = PREAMBLE.to_owned();
    for SectionDoc { name, doc, keys } in SECTIONS {
        let values = defaults
            .get(name)
            .and_then(toml::Value::as_table)
            .unwrap_or_else(|| panic!("[{name}] serializes as a table"));
        out.push('\n');
        write_comment(&mut out, doc);
        let _ = writeln!(out, "[{name}]");
        for key in *keys {
            write_comment(&mut out, key.doc);
            match (values.get(key.name), key.example) {
                (Some(value), None) => {
                    let _ = writeln!(out, "{} = {value}", key.name);
                }
                (None, Some(example)) => {
                    let _ = writeln!(out, "# {} = {example}", key.name);
                }
                (Some(_), Some(_)) => panic!("{name}.{} has a default and an example", key.name),
                (None, None) => panic!("{name}.{} has neither default nor example", key.name),
            }
        }
    }
    out
}

#[test]
fn the_example_file_is_generated_from_the_sections() {
    expect_test::expect_file!["../../../config.example.toml"].assert_eq(&render_example());
}

#[test]
fn every_serialized_key_is_documented_and_every_documented_key_exists() {
    let defaults = toml::Value::try_from(Config::default()).expect("the defaults serialize");
    let sections = defaults.as_table().expect("a table");
    assert_eq!(
        sections
            .keys()
            .map(String::as_str)
            .collect::<std::collections::BTreeSet<_>>(),
        SECTIONS.iter().map(|section| section.name).collect(),
        "every section of Config is in SECTIONS"
    );
    for SectionDoc { name, keys, .. } in SECTIONS {
        for (key, _) in sections[*name].as_table().expect("a table") {
            assert!(
                keys.iter().any(|documented| documented.name == key),
                "{name}.{key} is not documented"
            );
        }
    }
}

/// The keys the first column of docs/DEPLOY.md's "Settings that matter" table names, each as
/// `section.key` (a trailing `*` stands for any ending).
fn deploy_table_keys() -> Vec<String> {
    let deploy = include_str!("../../../docs/DEPLOY.md");
    let table = deploy
        .split("## Settings that matter")
        .nth(1)
        .expect("docs/DEPLOY.md has its settings table")
        .split("\n## ")
        .next()
        .unwrap_or_default();
    let mut keys = Vec::new();
    for row in table.lines().filter(|line| line.starts_with("| `")) {
        let first_column = row.split('|').nth(1).unwrap_or_default();
        let mut section = "";
        for (index, code) in first_column.split('`').enumerate() {
            if index % 2 == 0 {
                continue;
            }
            let key = code.split(" = ").next().unwrap_or_default().trim();
            match key.split_once('.') {
                Some((named, rest)) => {
                    section = named;
                    keys.push(format!("{named}.{rest}"));
                }
                None => keys.push(format!("{section}.{key}")),
            }
        }
    }
    keys
}

#[test]
fn the_deploy_settings_table_names_only_keys_that_exist() {
    let keys = deploy_table_keys();
    assert!(keys.len() >= 10, "the table was found: {keys:?}");
    for key in keys {
        let (section, name) = key.split_once('.').expect("section.key");
        let documented = SECTIONS
            .iter()
            .find(|documented| documented.name == section)
            .unwrap_or_else(|| panic!("docs/DEPLOY.md names [{section}], which does not exist"));
        let exists = documented
            .keys
            .iter()
            .any(|documented| match name.strip_suffix('*') {
                Some(prefix) => documented.name.starts_with(prefix),
                None => documented.name == name,
            });
        assert!(exists, "docs/DEPLOY.md names {key}, which does not exist");
    }
}
