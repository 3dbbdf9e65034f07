//! Unit tests of the filesystem object store's naming: the tenant directory encoding.
//! The store's behaviour is checked by the conformance suite in `storage/tests/object_store.rs`.

use switchboard_engine::ids::TenantId;

use super::tenant_directory;

fn directory_of(tenant: &str) -> String {
    tenant_directory(&TenantId::parse(tenant).expect("a valid tenant id"))
}

#[test]
fn tenant_directories_are_rfc_4648_base32_lowercase_unpadded() {
    // The test vectors of RFC 4648 section 10, lowercased and without padding.
    assert_eq!(directory_of("f"), "my");
    assert_eq!(directory_of("fo"), "mzxq");
    assert_eq!(directory_of("foo"), "mzxw6");
    assert_eq!(directory_of("foob"), "mzxw6yq");
    assert_eq!(directory_of("fooba"), "mzxw6ytb");
    assert_eq!(directory_of("foobar"), "mzxw6ytboi");
    assert_eq!(directory_of(".."), "fyxa");
}

#[test]
fn the_longest_tenant_fits_in_a_file_name() {
    let longest = "x".repeat(switchboard_engine::ids::MAX_NAME_ID_BYTES);
    assert_eq!(directory_of(&longest).len(), 205);
}
