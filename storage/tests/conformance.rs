//! The shared conformance suite for every [`MessageStore`] adapter.
//!
//! Each test is written once, as an `async fn` over `Arc<dyn MessageStore>`, and the
//! `conformance!` macro at the bottom runs it against every adapter: the in-memory store and
//! the embedded store (in a temporary directory that lives as long as the test).
//! Tests at the end of the file cover what only a durable store can do: surviving a reopen,
//! refusing a directory that is already open, and reporting damaged data as corrupt.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use switchboard_engine::StoreError;
use switchboard_engine::ids::{ClientId, ConversationId, MessageId, Seq, TenantId, UserId};
use switchboard_engine::model::{
    Conversation, ConversationKind, ConversationSnapshot, Member, Message, Role,
};
use switchboard_engine::ports::{AppendEntry, AppendOutcome, MessageStore};
use switchboard_engine::time::Timestamp;
use switchboard_storage::{EmbeddedMessageStore, MemoryMessageStore};
use tempfile::TempDir;

// ---------------------------------------------------------------------------------------------
// Fixtures.

const BASE_MILLIS: u64 = 1_700_000_000_000;

fn tenant(name: &str) -> TenantId {
    TenantId::parse(name).expect("test tenant ids are valid")
}

fn user(name: &str) -> UserId {
    UserId::parse(name).expect("test user ids are valid")
}

fn client(name: &str) -> ClientId {
    ClientId::parse(name).expect("test client ids are valid")
}

/// Conversation ids that sort like `number` and are adjacent for adjacent numbers, so range
/// scans of one conversation are checked against direct neighbours.
fn conversation_id(number: u128) -> ConversationId {
    ConversationId::from_parts(BASE_MILLIS, number)
}

fn conversation(
    tenant_id: &TenantId,
    conversation_id: ConversationId,
    title: &str,
) -> Conversation {
    Conversation {
        conversation_id,
        tenant_id: tenant_id.clone(),
        kind: ConversationKind::Group,
        title: Some(title.to_owned()),
        created_by: user("alice"),
        created_at: Timestamp(BASE_MILLIS),
    }
}

fn member(name: &str, role: Role) -> Member {
    Member {
        user_id: user(name),
        role,
        joined_at: Timestamp(BASE_MILLIS + 1),
    }
}

/// A fresh message id for every message built by the tests, so lookups by id are unambiguous.
fn next_message_id() -> MessageId {
    static NEXT_MESSAGE_NUMBER: AtomicU64 = AtomicU64::new(1);
    let number = NEXT_MESSAGE_NUMBER.fetch_add(1, Ordering::Relaxed);
    MessageId::from_parts(BASE_MILLIS + number, u128::from(number))
}

fn message(conversation_id: ConversationId, seq: u64, client_id: &str) -> Message {
    Message {
        conversation_id,
        seq: Seq(seq),
        message_id: next_message_id(),
        sender_id: user("alice"),
        client_id: client(client_id),
        text: format!("message {seq} with client id {client_id}"),
        reply_to: None,
        ts: Timestamp(BASE_MILLIS + 1000 + seq),
    }
}

fn entry(tenant_id: &TenantId, message: &Message) -> AppendEntry {
    AppendEntry {
        tenant_id: tenant_id.clone(),
        message: message.clone(),
    }
}

async fn append(store: &Arc<dyn MessageStore>, entries: Vec<AppendEntry>) -> Vec<AppendOutcome> {
    store.append(entries).await.expect("append succeeds")
}

/// Appends messages `1..=last_seq` with client ids `c-<seq>` in one batch and returns them.
async fn append_sequence(
    store: &Arc<dyn MessageStore>,
    tenant_id: &TenantId,
    conversation_id: ConversationId,
    last_seq: u64,
) -> Vec<Message> {
    let messages: Vec<Message> = (1..=last_seq)
        .map(|seq| message(conversation_id, seq, &format!("c-{seq}")))
        .collect();
    let outcomes = append(
        store,
        messages
            .iter()
            .map(|message| entry(tenant_id, message))
            .collect(),
    )
    .await;
    assert_eq!(outcomes, vec![AppendOutcome::Stored; messages.len()]);
    messages
}

async fn create(store: &Arc<dyn MessageStore>, conversation: &Conversation, members: &[Member]) {
    store
        .create_conversation(conversation, members)
        .await
        .expect("creating a new conversation succeeds");
}

async fn load(
    store: &Arc<dyn MessageStore>,
    tenant_id: &TenantId,
    conversation_id: ConversationId,
) -> Option<ConversationSnapshot> {
    store
        .load_conversation(tenant_id, conversation_id)
        .await
        .expect("load succeeds")
}

async fn conversations_of(
    store: &Arc<dyn MessageStore>,
    tenant_id: &TenantId,
    user_name: &str,
    after: Option<ConversationId>,
    limit: usize,
) -> Vec<ConversationId> {
    store
        .conversations_of_user(tenant_id, &user(user_name), after, limit)
        .await
        .expect("conversations_of_user succeeds")
}

async fn head(
    store: &Arc<dyn MessageStore>,
    tenant_id: &TenantId,
    conversation_id: ConversationId,
) -> Seq {
    store
        .head(tenant_id, conversation_id)
        .await
        .expect("head succeeds")
}

async fn seqs_after(
    store: &Arc<dyn MessageStore>,
    tenant_id: &TenantId,
    conversation_id: ConversationId,
    after: u64,
    limit: usize,
) -> Vec<u64> {
    store
        .messages_after(tenant_id, conversation_id, Seq(after), limit)
        .await
        .expect("messages_after succeeds")
        .iter()
        .map(|message| message.seq.get())
        .collect()
}

async fn seqs_before(
    store: &Arc<dyn MessageStore>,
    tenant_id: &TenantId,
    conversation_id: ConversationId,
    before: Option<u64>,
    limit: usize,
) -> Vec<u64> {
    store
        .messages_before(tenant_id, conversation_id, before.map(Seq), limit)
        .await
        .expect("messages_before succeeds")
        .iter()
        .map(|message| message.seq.get())
        .collect()
}

// ---------------------------------------------------------------------------------------------
// The shared suite.

async fn tenants_are_isolated_for_every_method(store: Arc<dyn MessageStore>) {
    // "a" is a byte prefix of "ab": a key encoding without length prefixes could mix them.
    let tenant_a = tenant("a");
    let tenant_ab = tenant("ab");
    let never_written_tenant = tenant("c");
    let shared_conversation_id = conversation_id(1);

    let conversation_in_a = conversation(&tenant_a, shared_conversation_id, "in a");
    let conversation_in_ab = conversation(&tenant_ab, shared_conversation_id, "in ab");
    create(
        &store,
        &conversation_in_a,
        &[member("alice", Role::Owner), member("bob", Role::Member)],
    )
    .await;
    create(
        &store,
        &conversation_in_ab,
        &[member("alice", Role::Owner), member("carol", Role::Member)],
    )
    .await;

    let snapshot_in_a = load(&store, &tenant_a, shared_conversation_id)
        .await
        .expect("the conversation exists in tenant a");
    assert_eq!(snapshot_in_a.conversation, conversation_in_a);
    assert_eq!(
        snapshot_in_a.members,
        vec![member("alice", Role::Owner), member("bob", Role::Member)]
    );
    let snapshot_in_ab = load(&store, &tenant_ab, shared_conversation_id)
        .await
        .expect("the conversation exists in tenant ab");
    assert_eq!(snapshot_in_ab.conversation, conversation_in_ab);
    assert_eq!(
        snapshot_in_ab.members,
        vec![member("alice", Role::Owner), member("carol", Role::Member)]
    );
    assert_eq!(
        load(&store, &never_written_tenant, shared_conversation_id).await,
        None
    );

    assert_eq!(
        conversations_of(&store, &tenant_a, "bob", None, 10).await,
        vec![shared_conversation_id]
    );
    assert_eq!(
        conversations_of(&store, &tenant_ab, "bob", None, 10).await,
        Vec::new()
    );
    assert_eq!(
        conversations_of(&store, &tenant_ab, "carol", None, 10).await,
        vec![shared_conversation_id]
    );
    assert_eq!(
        conversations_of(&store, &tenant_a, "carol", None, 10).await,
        Vec::new()
    );
    assert_eq!(
        conversations_of(&store, &never_written_tenant, "alice", None, 10).await,
        Vec::new()
    );

    let first_in_a = message(shared_conversation_id, 1, "shared");
    let second_in_a = message(shared_conversation_id, 2, "only-a");
    let first_in_ab = message(shared_conversation_id, 1, "shared");
    let outcomes = append(
        &store,
        vec![
            entry(&tenant_a, &first_in_a),
            entry(&tenant_a, &second_in_a),
            // Same conversation id, seq and client id, other tenant: a separate conversation.
            entry(&tenant_ab, &first_in_ab),
        ],
    )
    .await;
    assert_eq!(outcomes, vec![AppendOutcome::Stored; 3]);

    assert_eq!(
        head(&store, &tenant_a, shared_conversation_id).await,
        Seq(2)
    );
    assert_eq!(
        head(&store, &tenant_ab, shared_conversation_id).await,
        Seq(1)
    );
    assert_eq!(
        head(&store, &never_written_tenant, shared_conversation_id).await,
        Seq::ZERO
    );
    // The seq check uses the tenant's own head.
    let third_in_ab = message(shared_conversation_id, 3, "third");
    assert_eq!(
        append(&store, vec![entry(&tenant_ab, &third_in_ab)]).await,
        vec![AppendOutcome::SeqConflict { head: Seq(1) }]
    );

    let lookup_client = |tenant_id: TenantId, client_name: &'static str| {
        let store = Arc::clone(&store);
        async move {
            store
                .message_by_client_id(&tenant_id, shared_conversation_id, &client(client_name))
                .await
                .expect("message_by_client_id succeeds")
        }
    };
    assert_eq!(
        lookup_client(tenant_a.clone(), "only-a").await,
        Some(second_in_a.reference())
    );
    assert_eq!(lookup_client(tenant_ab.clone(), "only-a").await, None);
    assert_eq!(
        lookup_client(tenant_ab.clone(), "shared").await,
        Some(first_in_ab.reference())
    );
    assert_eq!(
        lookup_client(tenant_a.clone(), "shared").await,
        Some(first_in_a.reference())
    );

    assert_eq!(
        store
            .message_by_id(&tenant_ab, shared_conversation_id, second_in_a.message_id)
            .await
            .expect("message_by_id succeeds"),
        None
    );
    assert_eq!(
        store
            .message_by_id(&tenant_a, shared_conversation_id, second_in_a.message_id)
            .await
            .expect("message_by_id succeeds"),
        Some(second_in_a.reference())
    );

    assert_eq!(
        store
            .messages_after(&tenant_ab, shared_conversation_id, Seq::ZERO, 10)
            .await
            .expect("messages_after succeeds"),
        vec![first_in_ab.clone()]
    );
    assert_eq!(
        store
            .messages_before(&tenant_ab, shared_conversation_id, None, 10)
            .await
            .expect("messages_before succeeds"),
        vec![first_in_ab]
    );
    assert_eq!(
        store
            .messages_after(&tenant_a, shared_conversation_id, Seq::ZERO, 10)
            .await
            .expect("messages_after succeeds"),
        vec![first_in_a, second_in_a]
    );
    assert_eq!(
        seqs_after(&store, &never_written_tenant, shared_conversation_id, 0, 10).await,
        Vec::<u64>::new()
    );
}

async fn creating_an_existing_conversation_fails_and_changes_nothing(store: Arc<dyn MessageStore>) {
    let tenant_id = tenant("acme");
    let id = conversation_id(7);
    let original = conversation(&tenant_id, id, "first");
    create(&store, &original, &[member("alice", Role::Owner)]).await;

    let second_attempt = conversation(&tenant_id, id, "second");
    assert_eq!(
        store
            .create_conversation(&second_attempt, &[member("bob", Role::Owner)])
            .await,
        Err(StoreError::AlreadyExists)
    );

    let snapshot = load(&store, &tenant_id, id)
        .await
        .expect("the original conversation is still there");
    assert_eq!(snapshot.conversation, original);
    assert_eq!(snapshot.members, vec![member("alice", Role::Owner)]);
    assert_eq!(
        conversations_of(&store, &tenant_id, "bob", None, 10).await,
        Vec::new()
    );
}

async fn load_returns_the_conversation_with_members_in_user_id_order(store: Arc<dyn MessageStore>) {
    let tenant_id = tenant("acme");
    let id = conversation_id(3);
    let stored = conversation(&tenant_id, id, "team");
    // "zoe" and "bob" are shorter than "alice": a length-prefixed key order would differ from
    // user id order.
    create(
        &store,
        &stored,
        &[
            member("zoe", Role::Member),
            member("alice", Role::Owner),
            member("bob", Role::Admin),
        ],
    )
    .await;

    assert_eq!(
        load(&store, &tenant_id, id).await,
        Some(ConversationSnapshot {
            conversation: stored,
            members: vec![
                member("alice", Role::Owner),
                member("bob", Role::Admin),
                member("zoe", Role::Member),
            ],
        })
    );
    assert_eq!(load(&store, &tenant_id, conversation_id(4)).await, None);
}

async fn conversations_of_user_are_in_id_order_and_paginate(store: Arc<dyn MessageStore>) {
    let tenant_id = tenant("acme");
    // Created out of order; "al" (a prefix of "alice") is a member of 9 only.
    for number in [5, 3, 9, 1, 7] {
        let members = if number == 9 {
            vec![member("al", Role::Owner)]
        } else {
            vec![member("alice", Role::Owner), member("bob", Role::Member)]
        };
        create(
            &store,
            &conversation(&tenant_id, conversation_id(number), "room"),
            &members,
        )
        .await;
    }
    let ids = |numbers: &[u128]| -> Vec<ConversationId> {
        numbers
            .iter()
            .map(|number| conversation_id(*number))
            .collect()
    };

    assert_eq!(
        conversations_of(&store, &tenant_id, "alice", None, 10).await,
        ids(&[1, 3, 5, 7])
    );
    assert_eq!(
        conversations_of(&store, &tenant_id, "alice", None, 2).await,
        ids(&[1, 3])
    );
    assert_eq!(
        conversations_of(&store, &tenant_id, "alice", Some(conversation_id(3)), 2).await,
        ids(&[5, 7])
    );
    assert_eq!(
        conversations_of(&store, &tenant_id, "alice", Some(conversation_id(7)), 2).await,
        ids(&[])
    );
    // `after` need not be one of the user's conversations.
    assert_eq!(
        conversations_of(&store, &tenant_id, "alice", Some(conversation_id(4)), 10).await,
        ids(&[5, 7])
    );
    assert_eq!(
        conversations_of(&store, &tenant_id, "alice", Some(conversation_id(0)), 10).await,
        ids(&[1, 3, 5, 7])
    );
    assert_eq!(
        conversations_of(&store, &tenant_id, "alice", None, 0).await,
        ids(&[])
    );
    assert_eq!(
        conversations_of(&store, &tenant_id, "al", None, 10).await,
        ids(&[9])
    );
    assert_eq!(
        conversations_of(&store, &tenant_id, "bob", Some(conversation_id(1)), 10).await,
        ids(&[3, 5, 7])
    );
    assert_eq!(
        conversations_of(&store, &tenant_id, "nobody", None, 10).await,
        ids(&[])
    );
}

async fn the_first_append_must_have_seq_one(store: Arc<dyn MessageStore>) {
    let tenant_id = tenant("acme");
    let id = conversation_id(1);
    let too_high = message(id, 2, "c-2");
    let zero = message(id, 0, "c-0");
    assert_eq!(
        append(
            &store,
            vec![entry(&tenant_id, &too_high), entry(&tenant_id, &zero)]
        )
        .await,
        vec![
            AppendOutcome::SeqConflict { head: Seq::ZERO },
            AppendOutcome::SeqConflict { head: Seq::ZERO },
        ]
    );
    assert_eq!(head(&store, &tenant_id, id).await, Seq::ZERO);
    assert_eq!(
        seqs_after(&store, &tenant_id, id, 0, 10).await,
        Vec::<u64>::new()
    );
    assert_eq!(
        store
            .message_by_client_id(&tenant_id, id, &client("c-2"))
            .await
            .expect("message_by_client_id succeeds"),
        None
    );
    assert_eq!(
        store
            .message_by_id(&tenant_id, id, too_high.message_id)
            .await
            .expect("message_by_id succeeds"),
        None
    );

    // A rejected entry did not claim its client id.
    let first = message(id, 1, "c-2");
    assert_eq!(
        append(&store, vec![entry(&tenant_id, &first)]).await,
        vec![AppendOutcome::Stored]
    );
    assert_eq!(head(&store, &tenant_id, id).await, Seq(1));
}

async fn append_rejects_gaps_and_reused_seqs(store: Arc<dyn MessageStore>) {
    let tenant_id = tenant("acme");
    let id = conversation_id(1);
    let stored = append_sequence(&store, &tenant_id, id, 3).await;

    for (seq, client_name) in [(5, "x-5"), (3, "x-3"), (1, "x-1"), (0, "x-0")] {
        let rejected = message(id, seq, client_name);
        assert_eq!(
            append(&store, vec![entry(&tenant_id, &rejected)]).await,
            vec![AppendOutcome::SeqConflict { head: Seq(3) }],
            "seq {seq}"
        );
    }
    assert_eq!(head(&store, &tenant_id, id).await, Seq(3));
    assert_eq!(
        store
            .messages_after(&tenant_id, id, Seq::ZERO, 10)
            .await
            .expect("messages_after succeeds"),
        stored
    );
    assert_eq!(
        store
            .message_by_client_id(&tenant_id, id, &client("x-3"))
            .await
            .expect("message_by_client_id succeeds"),
        None
    );
}

async fn one_batch_can_span_conversations_and_tenants(store: Arc<dyn MessageStore>) {
    let tenant_a = tenant("a");
    let tenant_b = tenant("b");
    let conversation_x = conversation_id(10);
    let conversation_y = conversation_id(11);
    let x1 = message(conversation_x, 1, "x1");
    let y1 = message(conversation_y, 1, "y1");
    let x2 = message(conversation_x, 2, "x2");
    let bx1 = message(conversation_x, 1, "bx1");
    let y2 = message(conversation_y, 2, "y2");
    let x3 = message(conversation_x, 3, "x3");
    let outcomes = append(
        &store,
        vec![
            entry(&tenant_a, &x1),
            entry(&tenant_a, &y1),
            entry(&tenant_a, &x2),
            entry(&tenant_b, &bx1),
            entry(&tenant_a, &y2),
            entry(&tenant_a, &x3),
        ],
    )
    .await;
    assert_eq!(outcomes, vec![AppendOutcome::Stored; 6]);
    assert_eq!(head(&store, &tenant_a, conversation_x).await, Seq(3));
    assert_eq!(head(&store, &tenant_a, conversation_y).await, Seq(2));
    assert_eq!(head(&store, &tenant_b, conversation_x).await, Seq(1));
    assert_eq!(head(&store, &tenant_b, conversation_y).await, Seq::ZERO);
    assert_eq!(
        store
            .messages_after(&tenant_a, conversation_x, Seq::ZERO, 10)
            .await
            .expect("messages_after succeeds"),
        vec![x1, x2, x3]
    );
    assert_eq!(
        store
            .messages_after(&tenant_a, conversation_y, Seq::ZERO, 10)
            .await
            .expect("messages_after succeeds"),
        vec![y1, y2]
    );

    // Outcomes are per entry: one conversation's conflict does not stop the others.
    let x4 = message(conversation_x, 4, "x4");
    let y4 = message(conversation_y, 4, "y4");
    let bx2 = message(conversation_x, 2, "bx2");
    assert_eq!(
        append(
            &store,
            vec![
                entry(&tenant_a, &x4),
                entry(&tenant_a, &y4),
                entry(&tenant_b, &bx2),
            ],
        )
        .await,
        vec![
            AppendOutcome::Stored,
            AppendOutcome::SeqConflict { head: Seq(2) },
            AppendOutcome::Stored,
        ]
    );
    assert_eq!(head(&store, &tenant_a, conversation_x).await, Seq(4));
    assert_eq!(head(&store, &tenant_a, conversation_y).await, Seq(2));
    assert_eq!(head(&store, &tenant_b, conversation_x).await, Seq(2));
}

async fn entries_of_one_batch_must_be_contiguous(store: Arc<dyn MessageStore>) {
    let tenant_id = tenant("acme");
    let id = conversation_id(1);
    let first = message(id, 1, "c-1");
    let second = message(id, 2, "c-2");
    let fourth = message(id, 4, "c-4");
    let third = message(id, 3, "c-3");
    assert_eq!(
        append(
            &store,
            vec![
                entry(&tenant_id, &first),
                entry(&tenant_id, &second),
                entry(&tenant_id, &fourth),
                entry(&tenant_id, &third),
            ],
        )
        .await,
        vec![
            AppendOutcome::Stored,
            AppendOutcome::Stored,
            AppendOutcome::SeqConflict { head: Seq(2) },
            AppendOutcome::Stored,
        ]
    );
    assert_eq!(head(&store, &tenant_id, id).await, Seq(3));
    assert_eq!(
        store
            .messages_after(&tenant_id, id, Seq::ZERO, 10)
            .await
            .expect("messages_after succeeds"),
        vec![first, second, third]
    );

    let fourth_first_try = message(id, 4, "d-4");
    let fourth_second_try = message(id, 4, "e-4");
    assert_eq!(
        append(
            &store,
            vec![
                entry(&tenant_id, &fourth_first_try),
                entry(&tenant_id, &fourth_second_try),
            ],
        )
        .await,
        vec![
            AppendOutcome::Stored,
            AppendOutcome::SeqConflict { head: Seq(4) },
        ]
    );
    assert_eq!(
        store
            .messages_after(&tenant_id, id, Seq(3), 10)
            .await
            .expect("messages_after succeeds"),
        vec![fourth_first_try]
    );
}

async fn a_stored_client_id_is_reported_as_duplicate(store: Arc<dyn MessageStore>) {
    let tenant_id = tenant("acme");
    let id = conversation_id(1);
    let original = message(id, 1, "hello");
    append(&store, vec![entry(&tenant_id, &original)]).await;

    let retry = message(id, 2, "hello");
    assert_eq!(
        append(&store, vec![entry(&tenant_id, &retry)]).await,
        vec![AppendOutcome::DuplicateClientId {
            existing: original.reference()
        }]
    );
    // The duplicate check comes first, so a retry with a stale seq still resolves.
    let stale_retry = message(id, 1, "hello");
    assert_eq!(
        append(&store, vec![entry(&tenant_id, &stale_retry)]).await,
        vec![AppendOutcome::DuplicateClientId {
            existing: original.reference()
        }]
    );
    assert_eq!(head(&store, &tenant_id, id).await, Seq(1));
    assert_eq!(
        store
            .message_by_id(&tenant_id, id, retry.message_id)
            .await
            .expect("message_by_id succeeds"),
        None
    );

    let next = message(id, 2, "other");
    assert_eq!(
        append(&store, vec![entry(&tenant_id, &next)]).await,
        vec![AppendOutcome::Stored]
    );
    // Client ids are unique per conversation, not per tenant.
    let elsewhere = message(conversation_id(2), 1, "hello");
    assert_eq!(
        append(&store, vec![entry(&tenant_id, &elsewhere)]).await,
        vec![AppendOutcome::Stored]
    );
}

async fn a_client_id_repeated_within_a_batch_is_reported_as_duplicate(
    store: Arc<dyn MessageStore>,
) {
    let tenant_id = tenant("acme");
    let id = conversation_id(1);
    let first = message(id, 1, "a");
    let repeat = message(id, 2, "a");
    let second = message(id, 2, "b");
    assert_eq!(
        append(
            &store,
            vec![
                entry(&tenant_id, &first),
                entry(&tenant_id, &repeat),
                entry(&tenant_id, &second),
            ],
        )
        .await,
        vec![
            AppendOutcome::Stored,
            AppendOutcome::DuplicateClientId {
                existing: first.reference()
            },
            AppendOutcome::Stored,
        ]
    );
    assert_eq!(head(&store, &tenant_id, id).await, Seq(2));
    assert_eq!(
        store
            .message_by_client_id(&tenant_id, id, &client("a"))
            .await
            .expect("message_by_client_id succeeds"),
        Some(first.reference())
    );

    // Only Stored entries claim a client id: after a rejected entry the same id is still free.
    let rejected = message(id, 9, "c");
    let accepted = message(id, 3, "c");
    assert_eq!(
        append(
            &store,
            vec![entry(&tenant_id, &rejected), entry(&tenant_id, &accepted)],
        )
        .await,
        vec![
            AppendOutcome::SeqConflict { head: Seq(2) },
            AppendOutcome::Stored,
        ]
    );
    assert_eq!(
        store
            .message_by_client_id(&tenant_id, id, &client("c"))
            .await
            .expect("message_by_client_id succeeds"),
        Some(accepted.reference())
    );
}

async fn head_is_the_highest_stored_seq(store: Arc<dyn MessageStore>) {
    let tenant_id = tenant("acme");
    let id = conversation_id(1);
    assert_eq!(head(&store, &tenant_id, id).await, Seq::ZERO);
    let mut next_seq = 1;
    for (batch_size, expected_head) in [(1, 1), (2, 3), (2, 5)] {
        let entries = (0..batch_size)
            .map(|offset| {
                let seq = next_seq + offset;
                entry(&tenant_id, &message(id, seq, &format!("c-{seq}")))
            })
            .collect();
        next_seq += batch_size;
        append(&store, entries).await;
        assert_eq!(head(&store, &tenant_id, id).await, Seq(expected_head));
    }
    assert_eq!(
        head(&store, &tenant_id, conversation_id(2)).await,
        Seq::ZERO
    );
    assert_eq!(
        head(&store, &tenant_id, conversation_id(0)).await,
        Seq::ZERO
    );
}

async fn messages_resolve_by_client_id_and_by_message_id(store: Arc<dyn MessageStore>) {
    let tenant_id = tenant("acme");
    let id = conversation_id(1);
    let neighbour = conversation_id(2);
    let stored = append_sequence(&store, &tenant_id, id, 3).await;
    append_sequence(&store, &tenant_id, neighbour, 1).await;

    for message in &stored {
        assert_eq!(
            store
                .message_by_client_id(&tenant_id, id, &message.client_id)
                .await
                .expect("message_by_client_id succeeds"),
            Some(message.reference())
        );
        assert_eq!(
            store
                .message_by_id(&tenant_id, id, message.message_id)
                .await
                .expect("message_by_id succeeds"),
            Some(message.reference())
        );
        assert_eq!(
            store
                .message_by_id(&tenant_id, neighbour, message.message_id)
                .await
                .expect("message_by_id succeeds"),
            None
        );
    }
    assert_eq!(
        store
            .message_by_client_id(&tenant_id, id, &client("unknown"))
            .await
            .expect("message_by_client_id succeeds"),
        None
    );
    assert_eq!(
        store
            .message_by_id(&tenant_id, id, next_message_id())
            .await
            .expect("message_by_id succeeds"),
        None
    );
    // "c-3" exists in `id` only; the neighbour has just "c-1".
    assert_eq!(
        store
            .message_by_client_id(&tenant_id, neighbour, &client("c-3"))
            .await
            .expect("message_by_client_id succeeds"),
        None
    );
}

async fn messages_after_is_ascending_bounded_and_limited(store: Arc<dyn MessageStore>) {
    let tenant_id = tenant("acme");
    let id = conversation_id(5);
    // Direct neighbours on both sides, so a scan that overruns its conversation shows up.
    append_sequence(&store, &tenant_id, conversation_id(4), 3).await;
    let stored = append_sequence(&store, &tenant_id, id, 10).await;
    append_sequence(&store, &tenant_id, conversation_id(6), 3).await;

    assert_eq!(
        store
            .messages_after(&tenant_id, id, Seq::ZERO, 100)
            .await
            .expect("messages_after succeeds"),
        stored
    );
    assert_eq!(
        seqs_after(&store, &tenant_id, id, 3, 4).await,
        vec![4, 5, 6, 7]
    );
    assert_eq!(seqs_after(&store, &tenant_id, id, 9, 100).await, vec![10]);
    assert_eq!(
        seqs_after(&store, &tenant_id, id, 10, 100).await,
        Vec::<u64>::new()
    );
    assert_eq!(
        seqs_after(&store, &tenant_id, id, 1000, 100).await,
        Vec::<u64>::new()
    );
    assert_eq!(
        seqs_after(&store, &tenant_id, id, u64::MAX, 100).await,
        Vec::<u64>::new()
    );
    assert_eq!(
        seqs_after(&store, &tenant_id, id, 0, 0).await,
        Vec::<u64>::new()
    );
    assert_eq!(
        seqs_after(&store, &tenant_id, conversation_id(7), 0, 100).await,
        Vec::<u64>::new()
    );
}

async fn messages_before_is_descending_bounded_and_limited(store: Arc<dyn MessageStore>) {
    let tenant_id = tenant("acme");
    let id = conversation_id(5);
    append_sequence(&store, &tenant_id, conversation_id(4), 3).await;
    let stored = append_sequence(&store, &tenant_id, id, 10).await;
    append_sequence(&store, &tenant_id, conversation_id(6), 3).await;

    let newest_first: Vec<Message> = stored.iter().rev().cloned().collect();
    assert_eq!(
        store
            .messages_before(&tenant_id, id, None, 100)
            .await
            .expect("messages_before succeeds"),
        newest_first
    );
    assert_eq!(
        seqs_before(&store, &tenant_id, id, None, 3).await,
        vec![10, 9, 8]
    );
    assert_eq!(
        seqs_before(&store, &tenant_id, id, Some(8), 3).await,
        vec![7, 6, 5]
    );
    assert_eq!(
        seqs_before(&store, &tenant_id, id, Some(2), 100).await,
        vec![1]
    );
    assert_eq!(
        seqs_before(&store, &tenant_id, id, Some(1), 100).await,
        Vec::<u64>::new()
    );
    assert_eq!(
        seqs_before(&store, &tenant_id, id, Some(0), 100).await,
        Vec::<u64>::new()
    );
    assert_eq!(
        seqs_before(&store, &tenant_id, id, Some(1000), 100).await,
        vec![10, 9, 8, 7, 6, 5, 4, 3, 2, 1]
    );
    assert_eq!(
        seqs_before(&store, &tenant_id, id, Some(u64::MAX), 2).await,
        vec![10, 9]
    );
    assert_eq!(
        seqs_before(&store, &tenant_id, id, None, 0).await,
        Vec::<u64>::new()
    );
    assert_eq!(
        seqs_before(&store, &tenant_id, conversation_id(7), None, 100).await,
        Vec::<u64>::new()
    );
}

async fn an_empty_append_stores_nothing(store: Arc<dyn MessageStore>) {
    assert_eq!(append(&store, Vec::new()).await, Vec::new());
    assert_eq!(
        head(&store, &tenant("acme"), conversation_id(1)).await,
        Seq::ZERO
    );
}

async fn ping_answers(store: Arc<dyn MessageStore>) {
    assert_eq!(store.ping().await, Ok(()));
}

async fn concurrent_appends_of_the_same_seq_store_exactly_one(store: Arc<dyn MessageStore>) {
    const N_RACERS: usize = 8;
    let tenant_id = tenant("acme");
    let id = conversation_id(1);
    let mut racers = tokio::task::JoinSet::new();
    for racer in 0..N_RACERS {
        let store = Arc::clone(&store);
        let racing_entry = entry(&tenant_id, &message(id, 1, &format!("racer-{racer}")));
        racers.spawn(async move {
            let outcomes = store
                .append(vec![racing_entry.clone()])
                .await
                .expect("append succeeds");
            (racing_entry.message, outcomes)
        });
    }
    let mut winners = Vec::new();
    let mut n_conflicts = 0;
    while let Some(result) = racers.join_next().await {
        let (racing_message, outcomes) = result.expect("racer task completes");
        match outcomes.as_slice() {
            [AppendOutcome::Stored] => winners.push(racing_message),
            [AppendOutcome::SeqConflict { head }] => {
                assert_eq!(*head, Seq(1));
                n_conflicts += 1;
            }
            other => panic!("unexpected outcomes {other:?}"),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one racer stores seq 1");
    assert_eq!(n_conflicts, N_RACERS - 1);
    assert_eq!(head(&store, &tenant_id, id).await, Seq(1));
    assert_eq!(
        store
            .messages_after(&tenant_id, id, Seq::ZERO, 100)
            .await
            .expect("messages_after succeeds"),
        winners
    );
}

// ---------------------------------------------------------------------------------------------
// Running the suite against every adapter.

/// A store under test, with whatever must outlive it (the embedded store's directory).
struct Harness {
    store: Arc<dyn MessageStore>,
    _directory: Option<TempDir>,
}

fn memory_harness() -> Harness {
    Harness {
        store: Arc::new(MemoryMessageStore::new()),
        _directory: None,
    }
}

fn embedded_harness() -> Harness {
    let directory = TempDir::new().expect("a temporary directory can be created");
    let store = EmbeddedMessageStore::open(directory.path()).expect("the embedded store opens");
    Harness {
        store: Arc::new(store),
        _directory: Some(directory),
    }
}

macro_rules! conformance {
    ($($test:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    let harness = super::memory_harness();
                    super::$test(std::sync::Arc::clone(&harness.store)).await;
                }
            )*
        }

        mod embedded {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    let harness = super::embedded_harness();
                    super::$test(std::sync::Arc::clone(&harness.store)).await;
                }
            )*
        }
    };
}

conformance!(
    tenants_are_isolated_for_every_method,
    creating_an_existing_conversation_fails_and_changes_nothing,
    load_returns_the_conversation_with_members_in_user_id_order,
    conversations_of_user_are_in_id_order_and_paginate,
    the_first_append_must_have_seq_one,
    append_rejects_gaps_and_reused_seqs,
    one_batch_can_span_conversations_and_tenants,
    entries_of_one_batch_must_be_contiguous,
    a_stored_client_id_is_reported_as_duplicate,
    a_client_id_repeated_within_a_batch_is_reported_as_duplicate,
    head_is_the_highest_stored_seq,
    messages_resolve_by_client_id_and_by_message_id,
    messages_after_is_ascending_bounded_and_limited,
    messages_before_is_descending_bounded_and_limited,
    an_empty_append_stores_nothing,
    ping_answers,
    concurrent_appends_of_the_same_seq_store_exactly_one,
);

// ---------------------------------------------------------------------------------------------
// Embedded store only: what must survive a restart, and how damage is reported.

fn open_embedded(directory: &TempDir) -> Arc<dyn MessageStore> {
    Arc::new(EmbeddedMessageStore::open(directory.path()).expect("the embedded store opens"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_data_heads_and_client_ids_survive_a_reopen() {
    let directory = TempDir::new().expect("a temporary directory can be created");
    let tenant_id = tenant("acme");
    let id = conversation_id(1);
    let stored_conversation = conversation(&tenant_id, id, "durable");
    let members = [member("alice", Role::Owner), member("bob", Role::Member)];

    let store = open_embedded(&directory);
    create(&store, &stored_conversation, &members).await;
    let stored = append_sequence(&store, &tenant_id, id, 3).await;
    // The writer's head cache is now warm at 3; dropping the store must not lose anything.
    drop(store);

    let store = open_embedded(&directory);
    assert_eq!(
        load(&store, &tenant_id, id).await,
        Some(ConversationSnapshot {
            conversation: stored_conversation.clone(),
            members: members.to_vec(),
        })
    );
    assert_eq!(
        conversations_of(&store, &tenant_id, "bob", None, 10).await,
        vec![id]
    );
    assert_eq!(head(&store, &tenant_id, id).await, Seq(3));
    assert_eq!(
        store
            .messages_after(&tenant_id, id, Seq::ZERO, 10)
            .await
            .expect("messages_after succeeds"),
        stored
    );
    assert_eq!(
        store
            .message_by_id(&tenant_id, id, stored[1].message_id)
            .await
            .expect("message_by_id succeeds"),
        Some(stored[1].reference())
    );
    assert_eq!(
        store
            .create_conversation(&stored_conversation, &members)
            .await,
        Err(StoreError::AlreadyExists)
    );

    // The first append after a reopen loads the head (cold cache) and the client-id index.
    let retry = message(id, 4, "c-2");
    let gap = message(id, 5, "new");
    let reused = message(id, 3, "new");
    let next = message(id, 4, "new");
    assert_eq!(
        append(
            &store,
            vec![
                entry(&tenant_id, &retry),
                entry(&tenant_id, &gap),
                entry(&tenant_id, &reused),
                entry(&tenant_id, &next),
            ],
        )
        .await,
        vec![
            AppendOutcome::DuplicateClientId {
                existing: stored[1].reference()
            },
            AppendOutcome::SeqConflict { head: Seq(3) },
            AppendOutcome::SeqConflict { head: Seq(3) },
            AppendOutcome::Stored,
        ]
    );
    drop(store);

    let store = open_embedded(&directory);
    assert_eq!(head(&store, &tenant_id, id).await, Seq(4));
    let after_next = message(id, 5, "after-next");
    assert_eq!(
        append(
            &store,
            vec![entry(&tenant_id, &next), entry(&tenant_id, &after_next)],
        )
        .await,
        vec![
            AppendOutcome::DuplicateClientId {
                existing: next.reference()
            },
            AppendOutcome::Stored,
        ]
    );
    assert_eq!(
        seqs_before(&store, &tenant_id, id, None, 10).await,
        vec![5, 4, 3, 2, 1]
    );
}

#[test]
fn embedded_store_refuses_a_directory_that_is_already_open() {
    let directory = TempDir::new().expect("a temporary directory can be created");
    let _first = EmbeddedMessageStore::open(directory.path()).expect("the first open succeeds");
    let second = EmbeddedMessageStore::open(directory.path());
    assert!(
        matches!(second, Err(switchboard_storage::Error::Open { .. })),
        "the second open must fail with Error::Open, got {:?}",
        second.err()
    );
}

#[test]
fn embedded_store_refuses_an_unknown_format_version() {
    let directory = TempDir::new().expect("a temporary directory can be created");
    {
        let database = fjall::Database::builder(directory.path())
            .open()
            .expect("a raw database opens");
        let meta = database
            .keyspace("meta", fjall::KeyspaceCreateOptions::default)
            .expect("the meta keyspace opens");
        meta.insert("format_version", [9_u8])
            .expect("the marker is written");
        database
            .persist(fjall::PersistMode::SyncAll)
            .expect("the marker is persisted");
    }
    let opened = EmbeddedMessageStore::open(directory.path());
    assert!(
        matches!(
            opened,
            Err(switchboard_storage::Error::UnsupportedFormat {
                found: 9,
                supported: 1
            })
        ),
        "got {:?}",
        opened.err()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_store_reports_undecodable_values_as_corrupt() {
    let directory = TempDir::new().expect("a temporary directory can be created");
    let tenant_id = tenant("acme");
    let id = conversation_id(1);
    drop(open_embedded(&directory));
    {
        // A message key as the store writes it: [length][tenant][conversation][seq].
        let mut message_key = vec![4];
        message_key.extend_from_slice(b"acme");
        message_key.extend_from_slice(&id.to_bytes());
        message_key.extend_from_slice(&1_u64.to_be_bytes());
        let database = fjall::Database::builder(directory.path())
            .open()
            .expect("a raw database opens");
        let messages = database
            .keyspace("messages", fjall::KeyspaceCreateOptions::default)
            .expect("the messages keyspace opens");
        messages
            .insert(message_key, [1_u8, 0xff, 0xff])
            .expect("the damaged value is written");
        database
            .persist(fjall::PersistMode::SyncAll)
            .expect("the damaged value is persisted");
    }
    let store = open_embedded(&directory);
    assert_eq!(head(&store, &tenant_id, id).await, Seq(1));
    assert!(matches!(
        store.messages_after(&tenant_id, id, Seq::ZERO, 10).await,
        Err(StoreError::Corrupt(_))
    ));
    assert!(matches!(
        store.messages_before(&tenant_id, id, None, 10).await,
        Err(StoreError::Corrupt(_))
    ));
}
