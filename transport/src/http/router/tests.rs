//! The router and the document come from the same registrations: resources register routes only
//! through utoipa-axum's `routes!` (which documents them), never through a bare axum `.route`.
//! (`tests/integration/tidy.rs` probes the served router against the served document.)

#[test]
fn resources_register_routes_only_through_routes_macro() {
    let directory = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/http");
    let mut checked = 0;
    for entry in std::fs::read_dir(&directory).expect("src/http is readable") {
        let path = entry.expect("a readable entry").path();
        if path.extension().is_none_or(|extension| extension != "rs") {
            continue;
        }
        let source = std::fs::read_to_string(&path).expect("a readable source");
        for bare in [".route(", ".route_service(", ".nest_service(", ".fallback("] {
            assert!(
                !source.contains(bare),
                "{} registers a route with `{bare}`, which leaves it out of the document",
                path.display()
            );
        }
        checked += 1;
    }
    assert!(checked >= 10, "the resource modules were read");
}
