//! The committed `docs/openapi.json` is exactly the generated document (regenerate with
//! `UPDATE_EXPECT=1 cargo test -p switchboard-transport openapi`), and every error response it
//! documents names codes whose status, in the wire-code table, is that response's.

use super::*;

#[test]
fn the_committed_document_is_the_generated_one() {
    expect_test::expect_file!["../../../docs/openapi.json"]
        .assert_eq(&format!("{}\n", document_json()));
    let document: serde_json::Value =
        serde_json::from_str(document_json()).expect("the document is JSON");
    assert_eq!(document["openapi"], "3.1.0");
}

#[test]
fn every_documented_error_response_names_codes_of_its_status() {
    use crate::wire_error::WireCode;

    let document: serde_json::Value =
        serde_json::from_str(document_json()).expect("the document is JSON");
    let mut checked = 0;
    for (path, operations) in document["paths"].as_object().expect("paths") {
        for (method, operation) in operations.as_object().expect("operations") {
            for (status, response) in operation["responses"].as_object().expect("responses") {
                let status: u16 = status.parse().expect("a numeric status");
                if status < 400 {
                    continue;
                }
                // The upgrade answers a request that is not one with 426 and `invalid`; the tus
                // endpoints answer with tus's statuses: 412 (no `Tus-Resumable`) and 415 (a
                // PATCH that is not `application/offset+octet-stream`) with `invalid`, 460
                // with `checksum_mismatch`.
                let tus = path.starts_with("/v1/media/uploads");
                let expected_status = |code: WireCode| {
                    let tus_status = match (code, status) {
                        (WireCode::Invalid, 412 | 415) | (WireCode::ChecksumMismatch, 460) => tus,
                        _ => false,
                    };
                    if (method.as_str(), path.as_str(), status) == ("get", "/v1/ws", 426)
                        || tus_status
                    {
                        status
                    } else {
                        code.status().as_u16()
                    }
                };
                let description = response["description"].as_str().expect("a description");
                let named: Vec<&str> = description
                    .split('`')
                    .skip(1)
                    .step_by(2)
                    .filter(|word| {
                        *word == "token_*"
                            || WireCode::ALL.iter().any(|code| code.as_str() == *word)
                    })
                    .collect();
                assert!(
                    !named.is_empty(),
                    "{method} {path} {status} names no wire code: {description}"
                );
                for word in named {
                    let codes: Vec<WireCode> = WireCode::ALL
                        .iter()
                        .copied()
                        .filter(|code| match word.strip_suffix('*') {
                            Some(prefix) => code.as_str().starts_with(prefix),
                            None => code.as_str() == word,
                        })
                        .collect();
                    for code in codes {
                        assert_eq!(
                            expected_status(code),
                            status,
                            "{method} {path} documents `{word}` under {status}"
                        );
                    }
                }
                checked += 1;
            }
        }
    }
    assert!(checked > 100, "the error responses were read");
}
