//! The wire-code table is the one source: `docs/PROTOCOL.md` lists exactly its codes, with the
//! same HTTP statuses and meanings, in the same order.

use super::*;

#[test]
fn the_protocol_error_table_is_the_wire_code_table() {
    let protocol = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/PROTOCOL.md"),
    )
    .expect("docs/PROTOCOL.md is readable");
    let section = protocol
        .split("\n## Error codes\n")
        .nth(1)
        .expect("PROTOCOL.md has an Error codes section");
    let section = section.split("\n## ").next().unwrap_or(section);
    let documented: Vec<(String, String, String)> = section
        .lines()
        .filter(|line| line.starts_with("| `"))
        .map(|line| {
            let cells: Vec<&str> = line.trim_matches('|').split(" | ").map(str::trim).collect();
            assert_eq!(cells.len(), 3, "a row of code, status and meaning: {line}");
            (
                cells[0].trim_matches('`').to_owned(),
                cells[1].to_owned(),
                cells[2].to_owned(),
            )
        })
        .collect();
    let source: Vec<(String, String, String)> = WireCode::ALL
        .iter()
        .map(|code| {
            (
                code.as_str().to_owned(),
                code.status().as_u16().to_string(),
                code.meaning().to_owned(),
            )
        })
        .collect();
    assert_eq!(documented, source);
}

#[test]
fn every_code_is_listed_once_and_token_codes_share_one_status() {
    let mut seen = std::collections::BTreeSet::new();
    for code in WireCode::ALL {
        assert!(seen.insert(code.as_str()), "{} twice", code.as_str());
        if code.as_str().starts_with("token_") {
            // The OpenAPI document describes them as one response (`token_*` codes).
            assert_eq!(code.status(), WireCode::TokenMissing.status());
        }
    }
    assert_eq!(
        ALL_CODES,
        WireCode::ALL
            .iter()
            .map(|code| code.as_str())
            .collect::<Vec<_>>()
    );
}

#[test]
fn errors_take_their_status_from_the_table() {
    let cases = [
        WireError::from(Error::NotFound),
        WireError::from(Error::invalid("text", "is required")),
        WireError::from(&AuthError::Expired),
        WireError::from(&ProtocolError::BinaryFrame),
        WireError::route_not_found(),
        WireError::method_not_allowed(),
        WireError::body_too_large(10),
    ];
    for wire in cases {
        let code = WireCode::ALL
            .iter()
            .find(|code| code.as_str() == wire.code)
            .expect("a code of the table");
        assert_eq!(wire.status, code.status(), "{}", wire.code);
    }
}
