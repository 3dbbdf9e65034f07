//! Unit tests for the key encoding: tenants never alias, and byte order is seq order.

use switchboard_engine::ids::{ClientId, ConversationId, MessageId, Seq, TenantId, UserId};

use super::*;

fn tenant(name: &str) -> TenantId {
    TenantId::parse(name).expect("test tenant ids are valid")
}

fn user(name: &str) -> UserId {
    UserId::parse(name).expect("test user ids are valid")
}

fn client(name: &str) -> ClientId {
    ClientId::parse(name).expect("test client ids are valid")
}

fn conversation(first_byte: u8, last_byte: u8) -> ConversationId {
    let mut bytes = [0_u8; 16];
    bytes[0] = first_byte;
    bytes[15] = last_byte;
    ConversationId::from_bytes(bytes)
}

/// Every key that belongs to one (tenant, conversation) in any conversation-scoped table.
fn conversation_scoped_keys(tenant_id: &TenantId, conversation_id: ConversationId) -> Vec<Vec<u8>> {
    vec![
        conversation_key(tenant_id, conversation_id),
        member_key(tenant_id, conversation_id, &user("bob")),
        message_key(tenant_id, conversation_id, Seq(1)),
        message_key(tenant_id, conversation_id, Seq(u64::MAX)),
        client_id_key(tenant_id, conversation_id, &user("bob"), &client("c-1")),
        message_id_key(
            tenant_id,
            conversation_id,
            MessageId::from_bytes([0xff; 16]),
        ),
    ]
}

#[test]
fn a_tenant_that_is_a_prefix_of_another_never_shares_a_conversation_prefix() {
    // With plain concatenation, tenant "a" with a conversation id starting with b'b' would be
    // a byte prefix of tenant "ab"'s keys; the length byte must prevent that.
    let short_tenant = tenant("a");
    let long_tenant = tenant("ab");
    let short_tenant_conversation = conversation(b'b', 0);
    let long_tenant_conversation = conversation(0, 0);
    let short_tenant_prefix = conversation_key(&short_tenant, short_tenant_conversation);
    for key in conversation_scoped_keys(&long_tenant, long_tenant_conversation) {
        assert!(
            !key.starts_with(&short_tenant_prefix),
            "{key:?} starts with {short_tenant_prefix:?}"
        );
    }
    let long_tenant_prefix = conversation_key(&long_tenant, long_tenant_conversation);
    for key in conversation_scoped_keys(&short_tenant, short_tenant_conversation) {
        assert!(!key.starts_with(&long_tenant_prefix));
    }
}

#[test]
fn no_key_of_one_tenant_and_conversation_starts_with_the_prefix_of_another() {
    let tenants = [tenant("a"), tenant("ab"), tenant("b"), tenant("abc")];
    let conversations = [
        conversation(0, 0),
        conversation(0, 1),
        conversation(b'b', 0),
        conversation(b'c', 7),
    ];
    let mut n_pairs_checked = 0;
    for owner_tenant in &tenants {
        for owner_conversation in conversations {
            let prefix = conversation_key(owner_tenant, owner_conversation);
            for other_tenant in &tenants {
                for other_conversation in conversations {
                    let same_owner =
                        owner_tenant == other_tenant && owner_conversation == other_conversation;
                    for key in conversation_scoped_keys(other_tenant, other_conversation) {
                        assert_eq!(
                            key.starts_with(&prefix),
                            same_owner,
                            "key {key:?} against prefix {prefix:?}"
                        );
                        n_pairs_checked += 1;
                    }
                }
            }
        }
    }
    assert_eq!(n_pairs_checked, 16 * 16 * 6);
}

#[test]
fn a_user_that_is_a_prefix_of_another_has_a_separate_user_index() {
    let tenant_id = tenant("acme");
    let conversation_id = conversation(b'i', 1);
    let short_user_prefix = user_conversations_prefix(&tenant_id, &user("al"));
    let long_user_key = user_conversation_key(&tenant_id, &user("alice"), conversation_id);
    assert!(!long_user_key.starts_with(&short_user_prefix));
    let short_user_key = user_conversation_key(&tenant_id, &user("al"), conversation_id);
    assert!(short_user_key.starts_with(&short_user_prefix));
    assert_eq!(
        conversation_id_from_user_conversation_key(&short_user_key),
        Some(conversation_id)
    );
}

#[test]
fn the_same_user_in_two_tenants_has_separate_user_indexes() {
    let user_id = user("alice");
    let prefix_in_a = user_conversations_prefix(&tenant("a"), &user_id);
    let key_in_ab = user_conversation_key(&tenant("ab"), &user_id, conversation(0, 0));
    assert!(!key_in_ab.starts_with(&prefix_in_a));
}

#[test]
fn message_keys_sort_in_seq_order() {
    let tenant_id = tenant("acme");
    let conversation_id = conversation(1, 2);
    let seqs = [
        0,
        1,
        2,
        255,
        256,
        257,
        65_535,
        65_536,
        1 << 40,
        (1 << 56) + 1,
        u64::MAX - 1,
        u64::MAX,
    ];
    let mut shuffled: Vec<u64> = seqs.iter().rev().copied().collect();
    shuffled.swap(0, 5);
    shuffled.swap(3, 9);
    let mut keys: Vec<Vec<u8>> = shuffled
        .iter()
        .map(|seq| message_key(&tenant_id, conversation_id, Seq(*seq)))
        .collect();
    keys.sort();
    let sorted_seqs: Vec<u64> = keys
        .iter()
        .map(|key| {
            seq_from_message_key(key)
                .expect("message keys end with a seq")
                .get()
        })
        .collect();
    assert_eq!(sorted_seqs, seqs);
}

#[test]
fn message_keys_are_the_conversation_key_followed_by_the_big_endian_seq() {
    let tenant_id = tenant("t1");
    let conversation_id = conversation(9, 8);
    let key = message_key(&tenant_id, conversation_id, Seq(0x0102_0304_0506_0708));
    let mut expected = vec![2, b't', b'1'];
    expected.extend_from_slice(&conversation_id.to_bytes());
    expected.extend_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8]);
    assert_eq!(key, expected);
}

#[test]
fn decoding_a_too_short_key_gives_none() {
    assert_eq!(seq_from_message_key(&[1, 2, 3]), None);
    assert_eq!(conversation_id_from_user_conversation_key(&[0; 15]), None);
}

#[test]
fn idempotency_keys_of_different_authors_never_collide() {
    // The author and the client id are each length-prefixed, so moving bytes from one to the
    // other always changes the key, and the same client id of two authors is two keys.
    let tenant_id = tenant("acme");
    let conversation_id = conversation(1, 2);
    let keys = [
        client_id_key(&tenant_id, conversation_id, &user("ab"), &client("c")),
        client_id_key(&tenant_id, conversation_id, &user("a"), &client("bc")),
        client_id_key(&tenant_id, conversation_id, &user("a"), &client("c")),
        client_id_key(&tenant_id, conversation_id, &user("b"), &client("c")),
    ];
    for (index, key) in keys.iter().enumerate() {
        for other in &keys[index + 1..] {
            assert_ne!(key, other);
        }
        assert_eq!(
            conversation_key_prefix(key),
            Some(conversation_key(&tenant_id, conversation_id).as_slice())
        );
    }
    assert_eq!(conversation_key_prefix(&[3, b'a']), None);
}
