//! The committed `docs/openapi.json` is exactly the generated document (regenerate with
//! `UPDATE_EXPECT=1 cargo test -p switchboard-transport openapi`).

use super::*;

#[test]
fn the_committed_document_is_the_generated_one() {
    expect_test::expect_file!["../../../docs/openapi.json"]
        .assert_eq(&format!("{}\n", document_json()));
    let document: serde_json::Value =
        serde_json::from_str(document_json()).expect("the document is JSON");
    assert_eq!(document["openapi"], "3.1.0");
}
