//! The committed `docs/openapi.json` is exactly the generated document (regenerate with
//! `UPDATE_EXPECT=1 cargo test -p switchboard-transport openapi`), and every served route is in
//! it.

use std::collections::BTreeSet;

use super::*;

#[test]
fn the_committed_document_is_the_generated_one() {
    expect_test::expect_file!["../../../docs/openapi.json"]
        .assert_eq(&format!("{}\n", document_json()));
}

#[test]
fn every_served_route_is_documented_and_nothing_else() {
    let document: serde_json::Value =
        serde_json::from_str(document_json()).expect("the document is JSON");
    let mut documented = BTreeSet::new();
    for (path, operations) in document["paths"].as_object().expect("paths") {
        for method in operations.as_object().expect("operations").keys() {
            documented.insert((method.clone(), path.clone()));
        }
    }
    let served: BTreeSet<(String, String)> = crate::http::ROUTES
        .iter()
        .map(|(method, path)| ((*method).to_owned(), (*path).to_owned()))
        .collect();
    assert_eq!(documented, served);
    assert_eq!(document["openapi"], "3.1.0");
}
