//! The shared conformance suite for every [`MessageStore`] adapter.
//!
//! Each test is written once, as an `async fn` over `Arc<dyn MessageStore>`, and the
//! `conformance!` macro at the bottom runs it against every adapter: the in-memory store and
//! the embedded store (in a temporary directory that lives as long as the test).
//! The suite checks the whole contract of the port: tenant isolation for every method,
//! conversations and their members, and above all `append`, where the store (not the caller)
//! assigns each stored message the seq after its conversation's head, atomically with the
//! client-id duplicate check. Entries therefore carry seqs the store must ignore, and the tests
//! check that outcomes, reads and lookups all report the assigned seq, that a duplicate stores
//! nothing and consumes no seq, and that concurrent appends leave no gap and no reuse.
//! Tests at the end of the file cover what only a durable store can do: surviving a reopen (and
//! continuing at the stored head), refusing a directory that is already open, refusing an
//! unknown format version, and reporting damaged data as corrupt.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use switchboard_engine::ids::{ConversationId, Emoji, MediaId, MessageId, Seq, TenantId};
use switchboard_engine::media::{Attachment, Dimensions};
use switchboard_engine::membership::ModerationAction;
use switchboard_engine::model::{
    Conversation, ConversationKind, ConversationSnapshot, DeleteMode, EditVersion, Member,
    MemberSettings, Message, MessageRef, MessageState, Reaction, ReadCursors, Role,
};
use switchboard_engine::operations::{ConversationEvent, ConversationEventBody, LogEntry};
use switchboard_engine::ports::{
    AppendEntry, AppendOutcome, LogCursor, MessageStore, TailEntry, TailScope,
};
use switchboard_engine::time::Timestamp;
use switchboard_engine::{Error, StoreError};
use switchboard_storage::{EmbeddedMessageStore, MemoryMessageStore};
use tempfile::TempDir;

mod support;

use support::{BASE_MILLIS, client, conversation_id, tenant, user};

// ---------------------------------------------------------------------------------------------
// Fixtures.

/// The seq that messages built by [`message`] carry. The store must ignore it, and no test
/// stores enough messages to reach it, so a store that kept the caller's seq fails every check
/// of an outcome, a read or a lookup.
const CALLER_SEQ: Seq = Seq(1_000_000);

fn conversation(
    tenant_id: &TenantId,
    conversation_id: ConversationId,
    title: &str,
) -> Conversation {
    Conversation::new(
        conversation_id,
        tenant_id.clone(),
        ConversationKind::Group,
        Some(title.to_owned()),
        user("alice"),
        Timestamp(BASE_MILLIS),
    )
}

fn member(name: &str, role: Role) -> Member {
    Member {
        user_id: user(name),
        role,
        joined_at: Timestamp(BASE_MILLIS + 1),
    }
}

/// A fresh number for every message built by the tests, so message ids, texts and timestamps
/// are unique and lookups by id are unambiguous.
fn next_message_number() -> u64 {
    static NEXT_MESSAGE_NUMBER: AtomicU64 = AtomicU64::new(1);
    NEXT_MESSAGE_NUMBER.fetch_add(1, Ordering::Relaxed)
}

fn message_id_for(number: u64) -> MessageId {
    MessageId::from_parts(BASE_MILLIS + number, u128::from(number))
}

/// A message id that no test message has.
fn unused_message_id() -> MessageId {
    message_id_for(next_message_number())
}

/// A message that carries `carried_seq`, which the store must ignore. Its text is a function
/// of its client id, so two messages with one client id are a send and its retry.
fn message_carrying(conversation_id: ConversationId, carried_seq: u64, client_id: &str) -> Message {
    let number = next_message_number();
    Message {
        conversation_id,
        seq: Seq(carried_seq),
        message_id: message_id_for(number),
        sender_id: user("alice"),
        client_id: client(client_id),
        text: format!("the message sent with client id {client_id}"),
        reply_to: None,
        thread_root: None,
        forwarded_from: None,
        ts: Timestamp(BASE_MILLIS + 1000 + number),
        state: MessageState::default(),
        attachments: Vec::new(),
    }
}

/// A message that carries [`CALLER_SEQ`].
fn message(conversation_id: ConversationId, client_id: &str) -> Message {
    message_carrying(conversation_id, CALLER_SEQ.get(), client_id)
}

/// `message` as the store must hold it once stored at `seq`: unchanged but for the seq.
fn stored_as(message: &Message, seq: u64) -> Message {
    Message {
        seq: Seq(seq),
        ..message.clone()
    }
}

/// The reference of `message` once stored at `seq`.
fn reference_at(message: &Message, seq: u64) -> MessageRef {
    stored_as(message, seq).reference()
}

fn stored(seq: u64) -> AppendOutcome {
    AppendOutcome::Stored {
        seq: Seq(seq),
        completed: None,
        rewritten: Vec::new(),
    }
}

fn duplicate_of(message: &Message, seq: u64) -> AppendOutcome {
    AppendOutcome::DuplicateClientId {
        existing: reference_at(message, seq),
    }
}

fn entry(tenant_id: &TenantId, message: &Message) -> AppendEntry {
    AppendEntry {
        tenant_id: tenant_id.clone(),
        entry: LogEntry::Message(message.clone()),
    }
}

fn entries(tenant_id: &TenantId, messages: &[&Message]) -> Vec<AppendEntry> {
    messages
        .iter()
        .map(|message| entry(tenant_id, message))
        .collect()
}

async fn append(store: &Arc<dyn MessageStore>, entries: Vec<AppendEntry>) -> Vec<AppendOutcome> {
    store.append(entries).await.expect("append succeeds")
}

/// Appends `n_messages` messages with client ids `c-1`, `c-2`, … in one batch to a conversation
/// that has none yet, checks that they are stored at seqs `1..=n_messages`, and returns them as
/// stored.
async fn append_sequence(
    store: &Arc<dyn MessageStore>,
    tenant_id: &TenantId,
    conversation_id: ConversationId,
    n_messages: u64,
) -> Vec<Message> {
    let messages: Vec<Message> = (1..=n_messages)
        .map(|number| message(conversation_id, &format!("c-{number}")))
        .collect();
    let outcomes = append(
        store,
        messages
            .iter()
            .map(|message| entry(tenant_id, message))
            .collect(),
    )
    .await;
    assert_eq!(outcomes, (1..=n_messages).map(stored).collect::<Vec<_>>());
    messages
        .iter()
        .zip(1..)
        .map(|(message, seq)| stored_as(message, seq))
        .collect()
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

/// Every message of a conversation, oldest first.
async fn all_messages(
    store: &Arc<dyn MessageStore>,
    tenant_id: &TenantId,
    conversation_id: ConversationId,
) -> Vec<Message> {
    store
        .messages_after(tenant_id, conversation_id, Seq::ZERO, 1000)
        .await
        .expect("messages_after succeeds")
}

/// What alice's (the test messages' sender's) `client_name` resolves to.
async fn by_client_id(
    store: &Arc<dyn MessageStore>,
    tenant_id: &TenantId,
    conversation_id: ConversationId,
    client_name: &str,
) -> Option<MessageRef> {
    by_author_client_id(store, tenant_id, conversation_id, "alice", client_name)
        .await
        .map(|entry| entry.reference())
}

/// What `author`'s `client_name` resolves to.
async fn by_author_client_id(
    store: &Arc<dyn MessageStore>,
    tenant_id: &TenantId,
    conversation_id: ConversationId,
    author: &str,
    client_name: &str,
) -> Option<LogEntry> {
    store
        .entry_by_client_id(
            tenant_id,
            conversation_id,
            &user(author),
            &client(client_name),
        )
        .await
        .expect("entry_by_client_id succeeds")
}

async fn by_message_id(
    store: &Arc<dyn MessageStore>,
    tenant_id: &TenantId,
    conversation_id: ConversationId,
    message_id: MessageId,
) -> Option<MessageRef> {
    store
        .message_by_id(tenant_id, conversation_id, message_id)
        .await
        .expect("message_by_id succeeds")
        .map(|message| message.reference())
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

/// The seq of a `Stored` outcome; panics on any other outcome.
fn stored_seq(outcome: &AppendOutcome) -> u64 {
    match outcome {
        AppendOutcome::Stored { seq, .. } => seq.get(),
        other => panic!("expected a Stored outcome, got {other:?}"),
    }
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

    let first_in_a = message(shared_conversation_id, "shared");
    let second_in_a = message(shared_conversation_id, "only-a");
    let first_in_ab = message(shared_conversation_id, "shared");
    let outcomes = append(
        &store,
        vec![
            entry(&tenant_a, &first_in_a),
            entry(&tenant_a, &second_in_a),
            // Same conversation id and client id, other tenant: a separate conversation, so
            // neither a duplicate nor a continuation of tenant a's seqs.
            entry(&tenant_ab, &first_in_ab),
        ],
    )
    .await;
    assert_eq!(outcomes, vec![stored(1), stored(2), stored(1)]);
    let first_in_a = stored_as(&first_in_a, 1);
    let second_in_a = stored_as(&second_in_a, 2);
    let first_in_ab = stored_as(&first_in_ab, 1);

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
    // Seqs are assigned from the tenant's own head (1 in "ab"), not from tenant a's (2).
    let second_in_ab = message(shared_conversation_id, "second-in-ab");
    assert_eq!(
        append(&store, vec![entry(&tenant_ab, &second_in_ab)]).await,
        vec![stored(2)]
    );
    let second_in_ab = stored_as(&second_in_ab, 2);
    assert_eq!(
        head(&store, &tenant_a, shared_conversation_id).await,
        Seq(2)
    );

    assert_eq!(
        by_client_id(&store, &tenant_a, shared_conversation_id, "only-a").await,
        Some(second_in_a.reference())
    );
    assert_eq!(
        by_client_id(&store, &tenant_ab, shared_conversation_id, "only-a").await,
        None
    );
    assert_eq!(
        by_client_id(&store, &tenant_ab, shared_conversation_id, "shared").await,
        Some(first_in_ab.reference())
    );
    assert_eq!(
        by_client_id(&store, &tenant_a, shared_conversation_id, "shared").await,
        Some(first_in_a.reference())
    );
    assert_eq!(
        by_client_id(&store, &tenant_a, shared_conversation_id, "second-in-ab").await,
        None
    );
    assert_eq!(
        by_client_id(
            &store,
            &never_written_tenant,
            shared_conversation_id,
            "shared"
        )
        .await,
        None
    );

    assert_eq!(
        by_message_id(
            &store,
            &tenant_ab,
            shared_conversation_id,
            second_in_a.message_id
        )
        .await,
        None
    );
    assert_eq!(
        by_message_id(
            &store,
            &tenant_a,
            shared_conversation_id,
            second_in_a.message_id
        )
        .await,
        Some(second_in_a.reference())
    );

    assert_eq!(
        all_messages(&store, &tenant_ab, shared_conversation_id).await,
        vec![first_in_ab.clone(), second_in_ab.clone()]
    );
    assert_eq!(
        store
            .messages_before(&tenant_ab, shared_conversation_id, None, 10)
            .await
            .expect("messages_before succeeds"),
        vec![second_in_ab, first_in_ab]
    );
    assert_eq!(
        all_messages(&store, &tenant_a, shared_conversation_id).await,
        vec![first_in_a, second_in_a]
    );
    assert_eq!(
        seqs_after(&store, &never_written_tenant, shared_conversation_id, 0, 10).await,
        Vec::<u64>::new()
    );
    assert_eq!(
        seqs_before(
            &store,
            &never_written_tenant,
            shared_conversation_id,
            None,
            10
        )
        .await,
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

async fn the_store_assigns_seqs_one_two_three_whatever_seq_the_entries_carry(
    store: Arc<dyn MessageStore>,
) {
    let tenant_id = tenant("acme");
    let id = conversation_id(1);
    assert_eq!(head(&store, &tenant_id, id).await, Seq::ZERO);

    // Carried seqs that are too low, too high and out of order: all ignored.
    let carrying_zero = message_carrying(id, 0, "carrying-0");
    let carrying_seven = message_carrying(id, 7, "carrying-7");
    let carrying_two = message_carrying(id, 2, "carrying-2");
    assert_eq!(
        append(
            &store,
            entries(
                &tenant_id,
                &[&carrying_zero, &carrying_seven, &carrying_two]
            ),
        )
        .await,
        vec![stored(1), stored(2), stored(3)]
    );
    assert_eq!(head(&store, &tenant_id, id).await, Seq(3));
    assert_eq!(
        all_messages(&store, &tenant_id, id).await,
        vec![
            stored_as(&carrying_zero, 1),
            stored_as(&carrying_seven, 2),
            stored_as(&carrying_two, 3),
        ]
    );
    assert_eq!(
        store
            .messages_before(&tenant_id, id, None, 10)
            .await
            .expect("messages_before succeeds"),
        vec![
            stored_as(&carrying_two, 3),
            stored_as(&carrying_seven, 2),
            stored_as(&carrying_zero, 1),
        ]
    );
    // Nothing is stored at the carried seq 7: reads by seq see only the assigned positions.
    assert_eq!(
        seqs_after(&store, &tenant_id, id, 6, 10).await,
        Vec::<u64>::new()
    );

    // A later call continues at the head, even when entries carry a seq that is already used
    // (1, 3), equal to the next one (4), or far ahead (u64::MAX).
    let carrying_one = message_carrying(id, 1, "carrying-1");
    let carrying_three = message_carrying(id, 3, "carrying-3");
    let carrying_four = message_carrying(id, 4, "carrying-4");
    let carrying_max = message_carrying(id, u64::MAX, "carrying-max");
    assert_eq!(
        append(
            &store,
            entries(
                &tenant_id,
                &[
                    &carrying_one,
                    &carrying_three,
                    &carrying_four,
                    &carrying_max
                ]
            ),
        )
        .await,
        vec![stored(4), stored(5), stored(6), stored(7)]
    );
    assert_eq!(head(&store, &tenant_id, id).await, Seq(7));
    assert_eq!(
        all_messages(&store, &tenant_id, id).await,
        vec![
            stored_as(&carrying_zero, 1),
            stored_as(&carrying_seven, 2),
            stored_as(&carrying_two, 3),
            stored_as(&carrying_one, 4),
            stored_as(&carrying_three, 5),
            stored_as(&carrying_four, 6),
            stored_as(&carrying_max, 7),
        ]
    );
}

async fn single_entry_appends_with_gapped_or_reused_seqs_are_stored_at_the_next_seq_without_gap(
    store: Arc<dyn MessageStore>,
) {
    let tenant_id = tenant("acme");
    let id = conversation_id(1);
    let mut expected = append_sequence(&store, &tenant_id, id, 3).await;

    // Each of these would have been a gap or a reuse if the store honoured the carried seq.
    for (carried_seq, client_name, assigned_seq) in
        [(5, "x-5", 4), (3, "x-3", 5), (1, "x-1", 6), (0, "x-0", 7)]
    {
        let carrying = message_carrying(id, carried_seq, client_name);
        assert_eq!(
            append(&store, vec![entry(&tenant_id, &carrying)]).await,
            vec![stored(assigned_seq)],
            "carried seq {carried_seq}"
        );
        assert_eq!(head(&store, &tenant_id, id).await, Seq(assigned_seq));
        expected.push(stored_as(&carrying, assigned_seq));
    }
    assert_eq!(all_messages(&store, &tenant_id, id).await, expected);
    assert_eq!(
        seqs_before(&store, &tenant_id, id, None, 100).await,
        vec![7, 6, 5, 4, 3, 2, 1]
    );
}

async fn one_batch_gives_each_conversation_of_each_tenant_its_own_contiguous_seqs(
    store: Arc<dyn MessageStore>,
) {
    let tenant_a = tenant("a");
    let tenant_b = tenant("b");
    let conversation_x = conversation_id(10);
    let conversation_y = conversation_id(11);
    // Interleaved, and every entry carries seq 1: only the store can number them.
    let x1 = message_carrying(conversation_x, 1, "x1");
    let y1 = message_carrying(conversation_y, 1, "y1");
    let x2 = message_carrying(conversation_x, 1, "x2");
    let bx1 = message_carrying(conversation_x, 1, "bx1");
    let y2 = message_carrying(conversation_y, 1, "y2");
    let x3 = message_carrying(conversation_x, 1, "x3");
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
    assert_eq!(
        outcomes,
        vec![
            stored(1),
            stored(1),
            stored(2),
            stored(1),
            stored(2),
            stored(3)
        ]
    );
    assert_eq!(head(&store, &tenant_a, conversation_x).await, Seq(3));
    assert_eq!(head(&store, &tenant_a, conversation_y).await, Seq(2));
    assert_eq!(head(&store, &tenant_b, conversation_x).await, Seq(1));
    assert_eq!(head(&store, &tenant_b, conversation_y).await, Seq::ZERO);
    assert_eq!(
        all_messages(&store, &tenant_a, conversation_x).await,
        vec![stored_as(&x1, 1), stored_as(&x2, 2), stored_as(&x3, 3)]
    );
    assert_eq!(
        all_messages(&store, &tenant_a, conversation_y).await,
        vec![stored_as(&y1, 1), stored_as(&y2, 2)]
    );
    assert_eq!(
        all_messages(&store, &tenant_b, conversation_x).await,
        vec![stored_as(&bx1, 1)]
    );

    // Outcomes are per entry: a duplicate in one conversation neither stops the others nor
    // consumes a seq in its own.
    let x4 = message(conversation_x, "x4");
    let y1_retry = message(conversation_y, "y1");
    let y3 = message(conversation_y, "y3");
    let bx2 = message(conversation_x, "bx2");
    assert_eq!(
        append(
            &store,
            vec![
                entry(&tenant_a, &x4),
                entry(&tenant_a, &y1_retry),
                entry(&tenant_b, &bx2),
                entry(&tenant_a, &y3),
            ],
        )
        .await,
        vec![stored(4), duplicate_of(&y1, 1), stored(2), stored(3)]
    );
    assert_eq!(head(&store, &tenant_a, conversation_x).await, Seq(4));
    assert_eq!(head(&store, &tenant_a, conversation_y).await, Seq(3));
    assert_eq!(head(&store, &tenant_b, conversation_x).await, Seq(2));
    assert_eq!(
        all_messages(&store, &tenant_a, conversation_y).await,
        vec![stored_as(&y1, 1), stored_as(&y2, 2), stored_as(&y3, 3)]
    );
    assert_eq!(
        all_messages(&store, &tenant_b, conversation_x).await,
        vec![stored_as(&bx1, 1), stored_as(&bx2, 2)]
    );
}

async fn a_stored_client_id_is_reported_as_duplicate_stores_nothing_and_consumes_no_seq(
    store: Arc<dyn MessageStore>,
) {
    let tenant_id = tenant("acme");
    let id = conversation_id(1);
    let original = message(id, "hello");
    assert_eq!(
        append(&store, vec![entry(&tenant_id, &original)]).await,
        vec![stored(1)]
    );

    // A retry is a new message value (new message id, text and timestamp) with the same client
    // id; whatever seq it carries, it resolves to the original as stored.
    for carried_seq in [2, 1, 0, CALLER_SEQ.get()] {
        let retry = message_carrying(id, carried_seq, "hello");
        assert_eq!(
            append(&store, vec![entry(&tenant_id, &retry)]).await,
            vec![duplicate_of(&original, 1)],
            "retry carrying seq {carried_seq}"
        );
        assert_eq!(
            by_message_id(&store, &tenant_id, id, retry.message_id).await,
            None
        );
    }
    assert_eq!(head(&store, &tenant_id, id).await, Seq(1));
    assert_eq!(
        all_messages(&store, &tenant_id, id).await,
        vec![stored_as(&original, 1)]
    );
    assert_eq!(
        by_client_id(&store, &tenant_id, id, "hello").await,
        Some(reference_at(&original, 1))
    );

    // The duplicates consumed no seq: the next new client id is stored at 2.
    let next = message(id, "other");
    assert_eq!(
        append(&store, vec![entry(&tenant_id, &next)]).await,
        vec![stored(2)]
    );
    assert_eq!(seqs_after(&store, &tenant_id, id, 0, 10).await, vec![1, 2]);

    // Client ids are unique per conversation, not per tenant.
    let elsewhere = message(conversation_id(2), "hello");
    assert_eq!(
        append(&store, vec![entry(&tenant_id, &elsewhere)]).await,
        vec![stored(1)]
    );
    assert_eq!(
        by_client_id(&store, &tenant_id, conversation_id(2), "hello").await,
        Some(reference_at(&elsewhere, 1))
    );
    assert_eq!(
        by_client_id(&store, &tenant_id, id, "hello").await,
        Some(reference_at(&original, 1))
    );
}

async fn a_client_id_repeated_within_a_batch_is_reported_as_duplicate_and_consumes_no_seq(
    store: Arc<dyn MessageStore>,
) {
    let tenant_id = tenant("acme");
    let id = conversation_id(1);
    let first = message(id, "a");
    let repeat = message(id, "a");
    let second = message(id, "b");
    assert_eq!(
        append(&store, entries(&tenant_id, &[&first, &repeat, &second])).await,
        vec![stored(1), duplicate_of(&first, 1), stored(2)]
    );
    assert_eq!(head(&store, &tenant_id, id).await, Seq(2));
    assert_eq!(
        all_messages(&store, &tenant_id, id).await,
        vec![stored_as(&first, 1), stored_as(&second, 2)]
    );
    assert_eq!(
        by_client_id(&store, &tenant_id, id, "a").await,
        Some(reference_at(&first, 1))
    );
    assert_eq!(
        by_message_id(&store, &tenant_id, id, repeat.message_id).await,
        None
    );

    // The repeat names the entry stored earlier in the batch, at the seq that entry was given,
    // even when it is not the batch's first; a repeat of an older message names that one.
    let third = message(id, "c");
    let fourth = message(id, "d");
    let third_again = message(id, "c");
    let first_again = message(id, "a");
    let fifth = message(id, "e");
    assert_eq!(
        append(
            &store,
            entries(
                &tenant_id,
                &[&third, &fourth, &third_again, &first_again, &fifth]
            ),
        )
        .await,
        vec![
            stored(3),
            stored(4),
            duplicate_of(&third, 3),
            duplicate_of(&first, 1),
            stored(5),
        ]
    );
    assert_eq!(head(&store, &tenant_id, id).await, Seq(5));
    assert_eq!(
        seqs_after(&store, &tenant_id, id, 0, 10).await,
        vec![1, 2, 3, 4, 5]
    );

    // A batch of nothing but duplicates stores nothing and leaves the head alone.
    let only_duplicates = [message(id, "b"), message(id, "e"), message(id, "b")];
    assert_eq!(
        append(
            &store,
            only_duplicates
                .iter()
                .map(|message| entry(&tenant_id, message))
                .collect(),
        )
        .await,
        vec![
            duplicate_of(&second, 2),
            duplicate_of(&fifth, 5),
            duplicate_of(&second, 2),
        ]
    );
    assert_eq!(head(&store, &tenant_id, id).await, Seq(5));
    let sixth = message(id, "f");
    assert_eq!(
        append(&store, vec![entry(&tenant_id, &sixth)]).await,
        vec![stored(6)]
    );
}

async fn head_is_the_highest_assigned_seq(store: Arc<dyn MessageStore>) {
    let tenant_id = tenant("acme");
    let id = conversation_id(1);
    assert_eq!(head(&store, &tenant_id, id).await, Seq::ZERO);
    for (batch_number, (batch_size, expected_head)) in
        [(1, 1), (2, 3), (2, 5)].into_iter().enumerate()
    {
        let batch = (0..batch_size)
            .map(|offset| {
                entry(
                    &tenant_id,
                    &message(id, &format!("batch-{batch_number}-{offset}")),
                )
            })
            .collect();
        let outcomes = append(&store, batch).await;
        assert_eq!(
            outcomes.iter().map(stored_seq).collect::<Vec<u64>>(),
            ((expected_head - batch_size + 1)..=expected_head).collect::<Vec<u64>>()
        );
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

async fn lookups_by_client_id_and_by_message_id_return_the_assigned_seq(
    store: Arc<dyn MessageStore>,
) {
    let tenant_id = tenant("acme");
    let id = conversation_id(1);
    let neighbour = conversation_id(2);
    let stored_messages = append_sequence(&store, &tenant_id, id, 3).await;
    append_sequence(&store, &tenant_id, neighbour, 1).await;

    for (message, assigned_seq) in stored_messages.iter().zip(1..) {
        let by_client = by_client_id(&store, &tenant_id, id, message.client_id.as_str())
            .await
            .expect("a stored client id resolves");
        let by_id = by_message_id(&store, &tenant_id, id, message.message_id)
            .await
            .expect("a stored message id resolves");
        // The entries carried CALLER_SEQ; the lookups must report where the store put them.
        assert_eq!(by_client.seq, Seq(assigned_seq));
        assert_eq!(by_client, message.reference());
        assert_eq!(by_id.seq, Seq(assigned_seq));
        assert_eq!(by_id, message.reference());
        assert_eq!(
            by_message_id(&store, &tenant_id, neighbour, message.message_id).await,
            None
        );
    }
    assert_eq!(by_client_id(&store, &tenant_id, id, "unknown").await, None);
    assert_eq!(
        by_message_id(&store, &tenant_id, id, unused_message_id()).await,
        None
    );
    // "c-3" exists in `id` only; the neighbour has just "c-1".
    assert_eq!(
        by_client_id(&store, &tenant_id, neighbour, "c-3").await,
        None
    );
    assert_eq!(
        by_client_id(&store, &tenant_id, neighbour, "c-1")
            .await
            .map(|reference| reference.seq),
        Some(Seq(1))
    );

    // A message stored after a duplicate resolves to the seq after the head, not to the seq it
    // carried or one the duplicate might have taken.
    let retry = message_carrying(id, 4, "c-2");
    let fourth = message_carrying(id, 9, "c-4");
    assert_eq!(
        append(&store, entries(&tenant_id, &[&retry, &fourth])).await,
        vec![
            AppendOutcome::DuplicateClientId {
                existing: stored_messages[1].reference()
            },
            stored(4),
        ]
    );
    assert_eq!(
        by_client_id(&store, &tenant_id, id, "c-4").await,
        Some(reference_at(&fourth, 4))
    );
    assert_eq!(
        by_message_id(&store, &tenant_id, id, fourth.message_id).await,
        Some(reference_at(&fourth, 4))
    );
}

async fn messages_after_is_ascending_bounded_and_limited(store: Arc<dyn MessageStore>) {
    let tenant_id = tenant("acme");
    let id = conversation_id(5);
    // Direct neighbours on both sides, so a scan that overruns its conversation shows up.
    append_sequence(&store, &tenant_id, conversation_id(4), 3).await;
    let stored_messages = append_sequence(&store, &tenant_id, id, 10).await;
    append_sequence(&store, &tenant_id, conversation_id(6), 3).await;

    assert_eq!(
        store
            .messages_after(&tenant_id, id, Seq::ZERO, 100)
            .await
            .expect("messages_after succeeds"),
        stored_messages
    );
    assert_eq!(
        store
            .messages_after(&tenant_id, id, Seq(3), 4)
            .await
            .expect("messages_after succeeds"),
        stored_messages[3..7].to_vec()
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
    let stored_messages = append_sequence(&store, &tenant_id, id, 10).await;
    append_sequence(&store, &tenant_id, conversation_id(6), 3).await;

    let newest_first: Vec<Message> = stored_messages.iter().rev().cloned().collect();
    assert_eq!(
        store
            .messages_before(&tenant_id, id, None, 100)
            .await
            .expect("messages_before succeeds"),
        newest_first
    );
    assert_eq!(
        store
            .messages_before(&tenant_id, id, Some(Seq(8)), 3)
            .await
            .expect("messages_before succeeds"),
        newest_first[3..6].to_vec()
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
    // An empty append consumed no seq either.
    let first = message(conversation_id(1), "first");
    assert_eq!(
        append(&store, vec![entry(&tenant("acme"), &first)]).await,
        vec![stored(1)]
    );
}

async fn ping_answers(store: Arc<dyn MessageStore>) {
    assert_eq!(store.ping().await, Ok(()));
}

async fn concurrent_appends_with_distinct_client_ids_store_everything_at_seqs_one_to_n_without_gap_or_reuse(
    store: Arc<dyn MessageStore>,
) {
    const N_TASKS: usize = 8;
    const N_BATCHES_PER_TASK: usize = 6;
    const N_ENTRIES_PER_BATCH: usize = 2;
    const N_MESSAGES: usize = N_TASKS * N_BATCHES_PER_TASK * N_ENTRIES_PER_BATCH;
    let tenant_id = tenant("acme");
    let id = conversation_id(1);
    // Every task starts appending only once all of them are ready, so their appends overlap.
    let start_line = Arc::new(tokio::sync::Barrier::new(N_TASKS));
    let mut tasks = tokio::task::JoinSet::new();
    for task in 0..N_TASKS {
        let store = Arc::clone(&store);
        let start_line = Arc::clone(&start_line);
        let tenant_id = tenant_id.clone();
        tasks.spawn(async move {
            start_line.wait().await;
            let mut batches = Vec::with_capacity(N_BATCHES_PER_TASK);
            for batch in 0..N_BATCHES_PER_TASK {
                // Every task claims the same seqs, as racing writers with stale heads would.
                let messages: Vec<Message> = (0..N_ENTRIES_PER_BATCH)
                    .map(|position| {
                        message_carrying(
                            id,
                            (batch * N_ENTRIES_PER_BATCH + position + 1) as u64,
                            &format!("task-{task}-batch-{batch}-entry-{position}"),
                        )
                    })
                    .collect();
                let outcomes = store
                    .append(
                        messages
                            .iter()
                            .map(|message| entry(&tenant_id, message))
                            .collect(),
                    )
                    .await
                    .expect("append succeeds");
                batches.push((messages, outcomes));
            }
            batches
        });
    }

    let mut all_stored = Vec::with_capacity(N_MESSAGES);
    while let Some(result) = tasks.join_next().await {
        let batches = result.expect("appending task completes");
        let mut last_seq_of_task = 0;
        for (messages, outcomes) in batches {
            let seqs: Vec<u64> = outcomes.iter().map(stored_seq).collect();
            assert_eq!(seqs.len(), N_ENTRIES_PER_BATCH);
            // One batch's entries of one conversation are assigned together, back to back.
            assert_eq!(
                seqs,
                (seqs[0]..seqs[0] + N_ENTRIES_PER_BATCH as u64).collect::<Vec<u64>>(),
                "the seqs of one batch are contiguous"
            );
            // A task's next append starts after its previous one returned, so it lands later.
            assert!(
                seqs[0] > last_seq_of_task,
                "seq {} assigned after {last_seq_of_task} was returned",
                seqs[0]
            );
            last_seq_of_task = seqs[N_ENTRIES_PER_BATCH - 1];
            all_stored.extend(
                messages
                    .iter()
                    .zip(seqs)
                    .map(|(message, seq)| stored_as(message, seq)),
            );
        }
    }
    all_stored.sort_by_key(|message| message.seq);
    assert_eq!(
        all_stored
            .iter()
            .map(|message| message.seq.get())
            .collect::<Vec<u64>>(),
        (1..=N_MESSAGES as u64).collect::<Vec<u64>>(),
        "the assigned seqs are exactly 1..=N: no gap, no reuse"
    );
    assert_eq!(head(&store, &tenant_id, id).await, Seq(N_MESSAGES as u64));
    assert_eq!(all_messages(&store, &tenant_id, id).await, all_stored);
}

async fn concurrent_appends_of_the_same_client_id_store_it_exactly_once_and_name_the_winner(
    store: Arc<dyn MessageStore>,
) {
    const N_RACERS: usize = 8;
    let tenant_id = tenant("acme");
    let id = conversation_id(1);
    let start_line = Arc::new(tokio::sync::Barrier::new(N_RACERS));
    let mut racers = tokio::task::JoinSet::new();
    for racer in 0..N_RACERS {
        let store = Arc::clone(&store);
        let start_line = Arc::clone(&start_line);
        // Each racer sends the same client id (with its own message id) and then a message of
        // its own, so a duplicate that consumed a seq would leave a gap among the others.
        let contested = message_carrying(id, 1, "contested");
        let own = message_carrying(id, 2, &format!("racer-{racer}"));
        let racing_entries = entries(&tenant_id, &[&contested, &own]);
        racers.spawn(async move {
            start_line.wait().await;
            let outcomes = store.append(racing_entries).await.expect("append succeeds");
            (contested, own, outcomes)
        });
    }

    let mut winners = Vec::new();
    let mut duplicates = Vec::new();
    let mut all_stored = Vec::new();
    while let Some(result) = racers.join_next().await {
        let (contested, own, outcomes) = result.expect("racer task completes");
        let [contested_outcome, own_outcome] = outcomes.as_slice() else {
            panic!("expected two outcomes, got {outcomes:?}");
        };
        let own_seq = stored_seq(own_outcome);
        all_stored.push(stored_as(&own, own_seq));
        match contested_outcome {
            AppendOutcome::Stored { seq, .. } => {
                // The racer's own message came right after, in the same batch.
                assert_eq!(own_seq, seq.get() + 1);
                let winner = stored_as(&contested, seq.get());
                winners.push(winner.clone());
                all_stored.push(winner);
            }
            AppendOutcome::DuplicateClientId { existing } => duplicates.push(*existing),
            AppendOutcome::Refused { error } => panic!("a plain message was refused: {error}"),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one racer stores the client id");
    let winner = &winners[0];
    assert_eq!(
        duplicates,
        vec![winner.reference(); N_RACERS - 1],
        "every other racer is told about the winner, at its assigned seq"
    );
    assert_eq!(
        by_client_id(&store, &tenant_id, id, "contested").await,
        Some(winner.reference())
    );

    all_stored.sort_by_key(|message| message.seq);
    assert_eq!(
        all_stored
            .iter()
            .map(|message| message.seq.get())
            .collect::<Vec<u64>>(),
        (1..=N_RACERS as u64 + 1).collect::<Vec<u64>>(),
        "the losers' duplicates consumed no seq"
    );
    assert_eq!(head(&store, &tenant_id, id).await, Seq(N_RACERS as u64 + 1));
    assert_eq!(all_messages(&store, &tenant_id, id).await, all_stored);
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

/// A fresh database on the MongoDB server named by `SWITCHBOARD_TEST_MONGODB_URI`
/// (`scripts/test-services start mongodb` starts one and prints the variable).
#[cfg(feature = "mongodb")]
async fn mongodb_store() -> switchboard_storage::MongoMessageStore {
    support::mongodb_message_store("conformance").await
}

/// The Kafka pipeline over a fresh MongoDB database, with topics and a consumer group of its
/// own, on the brokers named by `SWITCHBOARD_TEST_KAFKA_BROKERS`
/// (`scripts/test-services start kafka`).
#[cfg(all(feature = "kafka", feature = "mongodb"))]
async fn kafka_pipeline_store() -> (
    switchboard_storage::kafka::KafkaPipelineStore,
    switchboard_storage::MongoMessageStore,
) {
    let brokers = support::kafka_brokers();
    let mongodb = mongodb_store().await;
    let name = support::unique("conformance");
    let pipeline = switchboard_storage::kafka::KafkaPipelineStore::start(
        Arc::new(mongodb.clone()),
        switchboard_storage::kafka::KafkaSettings {
            brokers,
            messages_topic: format!("{name}.messages"),
            replies_topic: format!("{name}.replies"),
            group_id: format!("{name}.persisters"),
            node_id: name.clone(),
            partitions: 4,
            replication_factor: 1,
            linger_ms: 1,
            session_timeout_ms: 2000,
            reply_timeout: std::time::Duration::from_secs(20),
            max_batch: 256,
        },
    )
    .await
    .expect("the Kafka pipeline starts");
    // As the binary does at start-up: the pipeline is used once it says it is ready (topics
    // made, reply reader positioned).
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
    while let Err(error) = pipeline.ping().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the Kafka pipeline is not ready within a minute: {error}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    (pipeline, mongodb)
}

macro_rules! conformance {
    ($($test:ident),* $(,)?) => {
        #[cfg(all(feature = "kafka", feature = "mongodb"))]
        mod kafka {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    let (pipeline, mongodb) = super::kafka_pipeline_store().await;
                    super::$test(std::sync::Arc::new(pipeline)).await;
                    mongodb.database().drop().await.expect("the test database is dropped");
                }
            )*
        }

        #[cfg(feature = "mongodb")]
        mod mongodb {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    let store = super::mongodb_store().await;
                    super::$test(std::sync::Arc::new(store.clone())).await;
                    store.database().drop().await.expect("the test database is dropped");
                }
            )*
        }

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

// ---------------------------------------------------------------------------------------------
// Events: operations on messages in the seq stream, applied to the message view atomically.

fn event(
    conversation_id: ConversationId,
    actor: &str,
    client_id: &str,
    body: ConversationEventBody,
) -> ConversationEvent {
    let number = next_message_number();
    ConversationEvent {
        conversation_id,
        seq: CALLER_SEQ,
        event_id: message_id_for(number),
        actor_id: user(actor),
        client_id: client(client_id),
        ts: Timestamp(BASE_MILLIS + 1000 + number),
        body,
    }
}

/// An outcome in one line: `stored 2`, `stored 2 completed`, `duplicate 2`, `refused <error>`.
fn summary(outcome: &AppendOutcome) -> String {
    match outcome {
        AppendOutcome::Stored {
            seq,
            completed: None,
            ..
        } => format!("stored {seq}"),
        AppendOutcome::Stored {
            seq,
            completed: Some(entry),
            ..
        } => {
            assert_eq!(entry.seq(), *seq, "a completed entry carries its seq");
            format!("stored {seq} completed")
        }
        AppendOutcome::DuplicateClientId { existing } => format!("duplicate {}", existing.seq),
        AppendOutcome::Refused { error } => format!("refused {error}"),
    }
}

fn summaries(outcomes: &[AppendOutcome]) -> Vec<String> {
    outcomes.iter().map(summary).collect()
}

fn event_entry(tenant_id: &TenantId, event: &ConversationEvent) -> AppendEntry {
    AppendEntry {
        tenant_id: tenant_id.clone(),
        entry: LogEntry::Event(event.clone()),
    }
}

fn edited(message_id: MessageId, text: &str) -> ConversationEventBody {
    ConversationEventBody::MessageEdited {
        message_id,
        text: Some(text.to_owned()),
    }
}

fn reacted(message_id: MessageId, emoji: &str) -> ConversationEventBody {
    ConversationEventBody::ReactionAdded {
        message_id,
        emoji: Emoji::parse(emoji).expect("valid emoji"),
        count: 0,
    }
}

fn deleted(message_id: MessageId, mode: DeleteMode) -> ConversationEventBody {
    ConversationEventBody::MessageDeleted { message_id, mode }
}

async fn current(
    store: &Arc<dyn MessageStore>,
    tenant_id: &TenantId,
    conversation_id: ConversationId,
    message_id: MessageId,
) -> Message {
    store
        .message_by_id(tenant_id, conversation_id, message_id)
        .await
        .expect("message_by_id succeeds")
        .expect("the message exists")
}

async fn log(
    store: &Arc<dyn MessageStore>,
    tenant_id: &TenantId,
    conversation_id: ConversationId,
) -> Vec<LogEntry> {
    store
        .entries_after(tenant_id, conversation_id, Seq::ZERO, 1000)
        .await
        .expect("entries_after succeeds")
}

fn event_seqs_and_bodies(entries: &[LogEntry]) -> Vec<(u64, Option<ConversationEventBody>)> {
    entries
        .iter()
        .map(|entry| match entry {
            LogEntry::Message(message) => (message.seq.get(), None),
            LogEntry::Event(event) => (event.seq.get(), Some(event.body.clone())),
        })
        .collect()
}

/// `message` sent by `sender` instead of alice, with `text`.
fn message_from(
    conversation_id: ConversationId,
    sender: &str,
    client_id: &str,
    text: &str,
) -> Message {
    Message {
        sender_id: user(sender),
        text: text.to_owned(),
        ..message(conversation_id, client_id)
    }
}

async fn the_same_client_id_of_two_authors_is_two_entries(store: Arc<dyn MessageStore>) {
    let tenant_id = tenant("acme");
    let id = conversation_id(1);
    // Predictable keys (counters) collide between members; each one's request is their own.
    let from_idem = message_from(id, "idem", "K", "first body");
    let from_bob = message_from(id, "bob", "K", "bob's own words");
    assert_eq!(
        append(&store, vec![entry(&tenant_id, &from_idem)]).await,
        vec![stored(1)]
    );
    assert_eq!(
        append(&store, vec![entry(&tenant_id, &from_bob)]).await,
        vec![stored(2)]
    );
    assert_eq!(
        all_messages(&store, &tenant_id, id).await,
        vec![stored_as(&from_idem, 1), stored_as(&from_bob, 2)]
    );
    assert_eq!(
        by_author_client_id(&store, &tenant_id, id, "idem", "K").await,
        Some(LogEntry::Message(stored_as(&from_idem, 1)))
    );
    assert_eq!(
        by_author_client_id(&store, &tenant_id, id, "bob", "K").await,
        Some(LogEntry::Message(stored_as(&from_bob, 2)))
    );
    assert_eq!(
        by_author_client_id(&store, &tenant_id, id, "carol", "K").await,
        None
    );

    // Each one's retry resolves to their own message, in a batch of its own or in one batch.
    let idem_retry = message_from(id, "idem", "K", "first body");
    let bob_retry = message_from(id, "bob", "K", "bob's own words");
    assert_eq!(
        append(&store, entries(&tenant_id, &[&bob_retry, &idem_retry])).await,
        vec![duplicate_of(&from_bob, 2), duplicate_of(&from_idem, 1)]
    );

    // Within one batch too, and for events: carol and dave both use "E" for an edit of their
    // own message, and both are stored.
    let from_carol = message_from(id, "carol", "M", "carol's");
    let from_dave = message_from(id, "dave", "M", "dave's");
    let carol_edit = event(
        id,
        "carol",
        "E",
        edited(from_carol.message_id, "carol's, edited"),
    );
    let dave_edit = event(
        id,
        "dave",
        "E",
        edited(from_dave.message_id, "dave's, edited"),
    );
    let outcomes = append(
        &store,
        vec![
            entry(&tenant_id, &from_carol),
            entry(&tenant_id, &from_dave),
            event_entry(&tenant_id, &carol_edit),
            event_entry(&tenant_id, &dave_edit),
        ],
    )
    .await;
    assert_eq!(
        summaries(&outcomes),
        vec![
            "stored 3",
            "stored 4",
            "stored 5 completed",
            "stored 6 completed"
        ]
    );
    assert_eq!(
        current(&store, &tenant_id, id, from_dave.message_id)
            .await
            .text,
        "dave's, edited"
    );
    assert_eq!(head(&store, &tenant_id, id).await, Seq(6));
}

async fn a_client_id_reused_by_its_author_for_another_request_is_a_conflict(
    store: Arc<dyn MessageStore>,
) {
    let tenant_id = tenant("acme");
    let id = conversation_id(1);
    let original = message_from(id, "alice", "K", "first body");
    assert_eq!(
        append(&store, vec![entry(&tenant_id, &original)]).await,
        vec![stored(1)]
    );
    let conflict = "refused conflict: this client_id was already used for a different request; use a new client_id";

    // Another text, another reply, an event: not a retry. Nothing is stored, no seq consumed.
    let other_text = message_from(id, "alice", "K", "second body");
    let other_reply = Message {
        reply_to: Some(original.message_id),
        ..message_from(id, "alice", "K", "first body")
    };
    let an_edit = event(id, "alice", "K", edited(original.message_id, "new"));
    let outcomes = append(
        &store,
        vec![
            entry(&tenant_id, &other_text),
            entry(&tenant_id, &other_reply),
            event_entry(&tenant_id, &an_edit),
        ],
    )
    .await;
    assert_eq!(summaries(&outcomes), vec![conflict, conflict, conflict]);
    assert_eq!(head(&store, &tenant_id, id).await, Seq(1));

    // Within one batch: the second use of a key staged earlier in the batch is judged the same.
    let fresh = message_from(id, "alice", "F", "fresh");
    let fresh_retry = message_from(id, "alice", "F", "fresh");
    let fresh_other = message_from(id, "alice", "F", "not the same");
    let outcomes = append(
        &store,
        entries(&tenant_id, &[&fresh, &fresh_retry, &fresh_other]),
    )
    .await;
    assert_eq!(
        summaries(&outcomes),
        vec!["stored 2", "duplicate 2", conflict]
    );

    // A retry after the message was edited still matches its original text (kept in the edit
    // history); a retry of the edit matches the edit.
    let edit = event(id, "alice", "E", edited(original.message_id, "edited body"));
    assert_eq!(
        summaries(&append(&store, vec![event_entry(&tenant_id, &edit)]).await),
        vec!["stored 3 completed"]
    );
    let retry = message_from(id, "alice", "K", "first body");
    let edit_retry = event(id, "alice", "E", edited(original.message_id, "edited body"));
    let other_edit = event(id, "alice", "E", edited(original.message_id, "other edit"));
    let outcomes = append(
        &store,
        vec![
            entry(&tenant_id, &retry),
            event_entry(&tenant_id, &edit_retry),
            event_entry(&tenant_id, &other_edit),
        ],
    )
    .await;
    assert_eq!(
        summaries(&outcomes),
        vec!["duplicate 1", "duplicate 3", conflict]
    );

    // Once a hard delete removed the text and its history, a repeat of the key cannot be told
    // from a retry: it is answered with the original.
    let hard_delete = event(
        id,
        "alice",
        "D",
        deleted(original.message_id, DeleteMode::Hard),
    );
    assert_eq!(
        summaries(&append(&store, vec![event_entry(&tenant_id, &hard_delete)]).await),
        vec!["stored 4 completed"]
    );
    let after_delete = message_from(id, "alice", "K", "anything");
    assert_eq!(
        summaries(&append(&store, vec![entry(&tenant_id, &after_delete)]).await),
        vec!["duplicate 1"]
    );
    assert_eq!(head(&store, &tenant_id, id).await, Seq(4));
}

/// The seqs an outcome says it rewrote, after checking that each rewritten entry is exactly
/// what the store now holds at its seq.
async fn rewritten_as_stored(
    store: &Arc<dyn MessageStore>,
    tenant_id: &TenantId,
    conversation_id: ConversationId,
    outcome: &AppendOutcome,
) -> Vec<u64> {
    let AppendOutcome::Stored { rewritten, .. } = outcome else {
        panic!("expected a stored outcome, got {outcome:?}");
    };
    let mut seqs = Vec::new();
    for entry in rewritten {
        let previous = entry.seq().get() - 1;
        let now = store
            .entries_after(tenant_id, conversation_id, Seq(previous), 1)
            .await
            .expect("entries_after succeeds");
        assert_eq!(now.as_slice(), std::slice::from_ref(entry));
        seqs.push(entry.seq().get());
    }
    seqs
}

async fn a_stored_entry_reports_the_entries_it_rewrote_as_they_now_are(
    store: Arc<dyn MessageStore>,
) {
    let tenant_id = tenant("acme");
    let id = conversation_id(1);
    let root = message(id, "root");
    let plain = message(id, "plain");
    let outcomes = append(&store, entries(&tenant_id, &[&root, &plain])).await;
    assert_eq!(
        outcomes,
        vec![stored(1), stored(2)],
        "plain messages rewrite nothing"
    );
    let edit = event(id, "alice", "e-1", edited(root.message_id, "root, edited"));
    let reply = Message {
        thread_root: Some(root.message_id),
        ..message(id, "reply")
    };
    let delete = event(
        id,
        "alice",
        "d-1",
        deleted(root.message_id, DeleteMode::ForEveryone),
    );
    let react = event(id, "bob", "r-1", reacted(plain.message_id, "👍"));
    let outcomes = append(&store, vec![event_entry(&tenant_id, &edit)]).await;
    assert_eq!(
        rewritten_as_stored(&store, &tenant_id, id, &outcomes[0]).await,
        [1],
        "an edit rewrites its message"
    );
    let outcomes = append(&store, vec![entry(&tenant_id, &reply)]).await;
    assert_eq!(
        rewritten_as_stored(&store, &tenant_id, id, &outcomes[0]).await,
        [1],
        "a thread reply rewrites its root"
    );
    let outcomes = append(&store, vec![event_entry(&tenant_id, &delete)]).await;
    assert_eq!(
        rewritten_as_stored(&store, &tenant_id, id, &outcomes[0]).await,
        [1, 3],
        "a delete rewrites its message and scrubs the edit"
    );
    let outcomes = append(&store, vec![event_entry(&tenant_id, &react)]).await;
    assert_eq!(
        rewritten_as_stored(&store, &tenant_id, id, &outcomes[0]).await,
        [2],
        "a reaction rewrites its message"
    );
}

async fn events_get_their_own_seqs_and_keep_the_message_current(store: Arc<dyn MessageStore>) {
    let tenant_id = tenant("acme");
    let id = conversation_id(1);
    let original = append_sequence(&store, &tenant_id, id, 1).await.remove(0);
    let message_id = original.message_id;
    let edit = event(id, "alice", "e-1", edited(message_id, "second"));
    let reaction = event(id, "bob", "r-1", reacted(message_id, "👍"));
    let outcomes = append(
        &store,
        vec![
            event_entry(&tenant_id, &edit),
            event_entry(&tenant_id, &reaction),
        ],
    )
    .await;
    assert_eq!(
        summaries(&outcomes),
        ["stored 2 completed", "stored 3 completed"]
    );
    let AppendOutcome::Stored {
        completed: Some(completed),
        ..
    } = &outcomes[1]
    else {
        panic!("the reaction is reported completed: {outcomes:?}");
    };
    let LogEntry::Event(completed_reaction) = completed.as_ref() else {
        panic!("the completed entry is the event: {completed:?}");
    };
    assert_eq!(
        completed_reaction.body,
        ConversationEventBody::ReactionAdded {
            message_id,
            emoji: Emoji::parse("👍").expect("valid emoji"),
            count: 1,
        }
    );
    assert_eq!(head(&store, &tenant_id, id).await, Seq(3));

    let now = current(&store, &tenant_id, id, message_id).await;
    assert_eq!(now.seq, Seq(1));
    assert_eq!(now.text, "second");
    assert_eq!(now.state.edited_at, Some(edit.ts));
    assert_eq!(
        now.state.previous_versions,
        vec![EditVersion {
            text: original.text.clone(),
            replaced_at: edit.ts,
            replaced_by_seq: Seq(2),
        }]
    );
    assert_eq!(
        now.state.reactions,
        vec![Reaction {
            emoji: Emoji::parse("👍").expect("valid emoji"),
            user_ids: vec![user("bob")],
        }]
    );

    // The log holds the message in its current state, then the two events with their own
    // seqs and the state they produced.
    let entries = log(&store, &tenant_id, id).await;
    assert_eq!(entries[0], LogEntry::Message(now.clone()));
    assert_eq!(
        event_seqs_and_bodies(&entries[1..]),
        vec![
            (2, Some(edited(message_id, "second"))),
            (
                3,
                Some(ConversationEventBody::ReactionAdded {
                    message_id,
                    emoji: Emoji::parse("👍").expect("valid emoji"),
                    count: 1,
                })
            ),
        ]
    );
    // History is messages only; the client id of an event resolves to the event.
    assert_eq!(all_messages(&store, &tenant_id, id).await, vec![now]);
    assert_eq!(
        by_client_id(&store, &tenant_id, id, "e-1").await,
        Some(MessageRef {
            message_id: edit.event_id,
            seq: Seq(2),
            ts: edit.ts,
        })
    );
    // A repeated event client id stores nothing.
    assert_eq!(
        append(&store, vec![event_entry(&tenant_id, &edit)]).await,
        vec![AppendOutcome::DuplicateClientId {
            existing: MessageRef {
                message_id: edit.event_id,
                seq: Seq(2),
                ts: edit.ts,
            }
        }]
    );
    assert_eq!(head(&store, &tenant_id, id).await, Seq(3));
}

async fn a_refused_event_stores_nothing_and_consumes_no_seq(store: Arc<dyn MessageStore>) {
    let tenant_id = tenant("acme");
    let id = conversation_id(1);
    let stored_message = append_sequence(&store, &tenant_id, id, 1).await.remove(0);
    let message_id = stored_message.message_id;
    let first = event(id, "bob", "r-1", reacted(message_id, "👍"));
    let again = event(id, "bob", "r-2", reacted(message_id, "👍"));
    let unknown_target = event(id, "bob", "r-3", reacted(unused_message_id(), "👍"));
    let outcomes = append(
        &store,
        vec![
            event_entry(&tenant_id, &first),
            event_entry(&tenant_id, &again),
            event_entry(&tenant_id, &unknown_target),
        ],
    )
    .await;
    assert_eq!(
        summaries(&outcomes),
        [
            "stored 2 completed",
            "refused conflict: you already reacted with this emoji",
            "refused not found",
        ]
    );
    assert!(matches!(
        &outcomes[2],
        AppendOutcome::Refused {
            error: Error::NotFound
        }
    ));
    assert_eq!(head(&store, &tenant_id, id).await, Seq(2));
    // Refused client ids were not claimed: they may be used again.
    assert_eq!(by_client_id(&store, &tenant_id, id, "r-2").await, None);
    let next = message(id, "r-2");
    assert_eq!(
        append(&store, entries(&tenant_id, &[&next])).await,
        vec![stored(3)]
    );
    assert_eq!(
        current(&store, &tenant_id, id, message_id)
            .await
            .state
            .reactions[0]
            .user_ids,
        vec![user("bob")]
    );
}

async fn a_delete_in_the_same_batch_as_edits_scrubs_their_text(store: Arc<dyn MessageStore>) {
    let tenant_id = tenant("acme");
    let id = conversation_id(1);
    let original = message(id, "m-1");
    let message_id = original.message_id;
    let first_edit = event(id, "alice", "e-1", edited(message_id, "secret one"));
    let second_edit = event(id, "alice", "e-2", edited(message_id, "secret two"));
    let reaction = event(id, "bob", "r-1", reacted(message_id, ":eyes:"));
    let delete = event(
        id,
        "alice",
        "d-1",
        deleted(message_id, DeleteMode::ForEveryone),
    );
    let edit_after_delete = event(id, "alice", "e-3", edited(message_id, "too late"));
    let outcomes = append(
        &store,
        vec![
            entry(&tenant_id, &original),
            event_entry(&tenant_id, &first_edit),
            event_entry(&tenant_id, &second_edit),
            event_entry(&tenant_id, &reaction),
            event_entry(&tenant_id, &delete),
            event_entry(&tenant_id, &edit_after_delete),
        ],
    )
    .await;
    assert_eq!(
        summaries(&outcomes),
        [
            "stored 1",
            "stored 2 completed",
            "stored 3 completed",
            "stored 4 completed",
            "stored 5 completed",
            "refused conflict: the message was deleted",
        ]
    );
    let now = current(&store, &tenant_id, id, message_id).await;
    assert_eq!(now.text, "");
    assert!(now.state.reactions.is_empty());
    assert_eq!(
        now.state.deleted.as_ref().map(|deletion| deletion.mode),
        Some(DeleteMode::ForEveryone)
    );
    // The edit history stays (for moderators) after a delete for everyone...
    assert_eq!(now.state.previous_versions.len(), 2);
    // ...but the edit events in the log no longer carry the text.
    let entries = log(&store, &tenant_id, id).await;
    let bodies = event_seqs_and_bodies(&entries);
    assert_eq!(
        bodies[1..3],
        [
            (
                2,
                Some(ConversationEventBody::MessageEdited {
                    message_id,
                    text: None
                })
            ),
            (
                3,
                Some(ConversationEventBody::MessageEdited {
                    message_id,
                    text: None
                })
            ),
        ]
    );

    // A hard delete afterwards purges the history too.
    let hard = event(id, "admin", "d-2", deleted(message_id, DeleteMode::Hard));
    assert_eq!(
        summaries(&append(&store, vec![event_entry(&tenant_id, &hard)]).await),
        ["stored 6 completed"]
    );
    let now = current(&store, &tenant_id, id, message_id).await;
    assert!(now.state.previous_versions.is_empty());
    assert_eq!(
        now.state.deleted.as_ref().map(|deletion| deletion.mode),
        Some(DeleteMode::Hard)
    );
}

async fn attachments_are_stored_with_their_message_and_removed_by_a_delete(
    store: Arc<dyn MessageStore>,
) {
    let tenant_id = tenant("acme");
    let id = conversation_id(1);
    let mut with_attachments = message(id, "m-1");
    with_attachments.attachments = (1..=2)
        .map(|number| Attachment {
            media_id: MediaId::from_parts(BASE_MILLIS, number),
            file_name: format!("photo-{number}.jpg"),
            mime: "image/jpeg".to_owned(),
            size_bytes: 1_000 * u64::try_from(number).expect("small"),
            dimensions: Some(Dimensions {
                width: 1_024,
                height: 768,
            }),
            thumbnails: Vec::new(),
            deleted: false,
        })
        .collect();
    let plain = message(id, "m-2");
    let outcomes = append(
        &store,
        vec![
            entry(&tenant_id, &with_attachments),
            entry(&tenant_id, &plain),
        ],
    )
    .await;
    assert_eq!(summaries(&outcomes), ["stored 1", "stored 2"]);
    let read = current(&store, &tenant_id, id, with_attachments.message_id).await;
    assert_eq!(read.attachments, with_attachments.attachments);
    assert!(
        current(&store, &tenant_id, id, plain.message_id)
            .await
            .attachments
            .is_empty()
    );
    let page = store
        .messages_after(&tenant_id, id, Seq::ZERO, 10)
        .await
        .expect("history reads");
    assert_eq!(page[0].attachments, with_attachments.attachments);

    let delete = event(
        id,
        "alice",
        "d-1",
        deleted(with_attachments.message_id, DeleteMode::ForEveryone),
    );
    assert_eq!(
        summaries(&append(&store, vec![event_entry(&tenant_id, &delete)]).await),
        ["stored 3 completed"]
    );
    let now = current(&store, &tenant_id, id, with_attachments.message_id).await;
    assert!(
        now.attachments.is_empty(),
        "a deleted message no longer carries its media"
    );
}

async fn thread_replies_count_on_their_root_and_list_in_order(store: Arc<dyn MessageStore>) {
    let tenant_id = tenant("acme");
    let id = conversation_id(1);
    let other = conversation_id(2);
    let root = append_sequence(&store, &tenant_id, id, 1).await.remove(0);
    let reply = |client_id: &str| {
        let mut reply = message(id, client_id);
        reply.thread_root = Some(root.message_id);
        reply
    };
    let (first, second, third) = (reply("t-1"), reply("t-2"), reply("t-3"));
    assert_eq!(
        summaries(&append(&store, entries(&tenant_id, &[&first, &second])).await),
        ["stored 2 completed", "stored 3 completed"]
    );
    let unrelated = message(id, "plain");
    assert_eq!(
        summaries(&append(&store, entries(&tenant_id, &[&unrelated, &third])).await),
        ["stored 4", "stored 5 completed"]
    );
    // Threads do not nest, and a root must be in the same conversation.
    let mut nested = message(id, "nested");
    nested.thread_root = Some(first.message_id);
    let mut elsewhere = message(other, "elsewhere");
    elsewhere.thread_root = Some(root.message_id);
    let outcomes = append(&store, entries(&tenant_id, &[&nested, &elsewhere])).await;
    assert!(
        matches!(
            outcomes.as_slice(),
            [
                AppendOutcome::Refused {
                    error: Error::Invalid { field: first, .. }
                },
                AppendOutcome::Refused {
                    error: Error::Invalid { field: second, .. }
                }
            ] if first == "thread_root" && second == "thread_root"
        ),
        "{outcomes:?}"
    );

    let now = current(&store, &tenant_id, id, root.message_id).await;
    assert_eq!(now.state.thread_reply_count, 3);
    assert_eq!(now.state.thread_last_reply_at, Some(third.ts));
    let page = store
        .thread_replies(&tenant_id, id, root.message_id, Seq::ZERO, 2)
        .await
        .expect("thread_replies succeeds");
    let numbered = |reply: &Message, seq: u64, position: u32| {
        let mut stored = stored_as(reply, seq);
        stored.state.thread_position = position;
        stored
    };
    assert_eq!(page, vec![numbered(&first, 2, 1), numbered(&second, 3, 2)]);
    let page = store
        .thread_replies(&tenant_id, id, root.message_id, Seq(3), 2)
        .await
        .expect("thread_replies succeeds");
    assert_eq!(page, vec![numbered(&third, 5, 3)]);
    let other_tenant = store
        .thread_replies(&tenant("other"), id, root.message_id, Seq::ZERO, 10)
        .await
        .expect("thread_replies succeeds");
    assert!(other_tenant.is_empty());
}

// ---------------------------------------------------------------------------------------------
// Receipts: read cursors and unread counts.

async fn read_cursors_start_at_zero_are_stored_per_member_and_tenant_scoped(
    store: Arc<dyn MessageStore>,
) {
    let tenant_id = tenant("acme");
    let id = conversation_id(1);
    let cursors = |read: u64, delivered: u64| ReadCursors {
        read: Seq(read),
        delivered: Seq(delivered),
    };
    let read = |store: Arc<dyn MessageStore>, tenant_id: TenantId, name: &'static str| async move {
        store
            .read_cursors(&tenant_id, id, &user(name))
            .await
            .expect("read_cursors succeeds")
    };
    assert_eq!(
        read(store.clone(), tenant_id.clone(), "bob").await,
        cursors(0, 0)
    );
    store
        .set_read_cursors(&tenant_id, id, &user("bob"), cursors(3, 5))
        .await
        .expect("set_read_cursors succeeds");
    assert_eq!(
        read(store.clone(), tenant_id.clone(), "bob").await,
        cursors(3, 5)
    );
    assert_eq!(
        read(store.clone(), tenant_id.clone(), "carol").await,
        cursors(0, 0)
    );
    assert_eq!(
        read(store.clone(), tenant("other"), "bob").await,
        cursors(0, 0)
    );
    store
        .set_read_cursors(&tenant_id, id, &user("bob"), cursors(4, 5))
        .await
        .expect("set_read_cursors succeeds");
    assert_eq!(read(store, tenant_id, "bob").await, cursors(4, 5));
}

async fn unread_counts_others_messages_that_are_not_deleted(store: Arc<dyn MessageStore>) {
    let tenant_id = tenant("acme");
    let id = conversation_id(1);
    let from = |sender: &str, client_id: &str| {
        let mut message = message(id, client_id);
        message.sender_id = user(sender);
        message
    };
    let (first, own, third, fourth) = (
        from("alice", "m-1"),
        from("bob", "m-2"),
        from("alice", "m-3"),
        from("alice", "m-4"),
    );
    append(
        &store,
        entries(&tenant_id, &[&first, &own, &third, &fourth]),
    )
    .await;
    let reaction = event(id, "bob", "r-1", reacted(first.message_id, "👍"));
    let delete = event(
        id,
        "alice",
        "d-1",
        deleted(third.message_id, DeleteMode::ForEveryone),
    );
    append(
        &store,
        vec![
            event_entry(&tenant_id, &reaction),
            event_entry(&tenant_id, &delete),
        ],
    )
    .await;
    let unread = |after: u64, limit: usize, name: &'static str| {
        let store = Arc::clone(&store);
        let tenant_id = tenant_id.clone();
        async move {
            store
                .count_unread(&tenant_id, id, &user(name), Seq(after), limit)
                .await
                .expect("count_unread succeeds")
        }
    };
    // bob: alice's 1 and 4 (3 is deleted, 2 is his own, 5 and 6 are events).
    assert_eq!(unread(0, 100, "bob").await, 2);
    assert_eq!(unread(1, 100, "bob").await, 1);
    assert_eq!(unread(4, 100, "bob").await, 0);
    assert_eq!(unread(0, 1, "bob").await, 1, "counting stops at the limit");
    // alice: only bob's message 2.
    assert_eq!(unread(0, 100, "alice").await, 1);
    assert_eq!(
        store
            .count_unread(&tenant("other"), id, &user("bob"), Seq::ZERO, 100)
            .await
            .expect("count_unread succeeds"),
        0
    );
}

// ---------------------------------------------------------------------------------------------
// Changes to the conversation itself: members, roles, moderation.

async fn conversation_changes_update_the_conversation_its_members_and_the_moderation_log(
    store: Arc<dyn MessageStore>,
) {
    let tenant_id = tenant("acme");
    let id = conversation_id(1);
    let original = conversation(&tenant_id, id, "team");
    create(
        &store,
        &original,
        &[member("alice", Role::Owner), member("bob", Role::Member)],
    )
    .await;
    let change = |client_id: &str, body: ConversationEventBody| event(id, "alice", client_id, body);
    let added = change(
        "add",
        ConversationEventBody::MembersAdded {
            members: vec![member("carol", Role::Member), member("dave", Role::Member)],
        },
    );
    let promoted = change(
        "promote",
        ConversationEventBody::RoleChanged {
            user_id: user("bob"),
            role: Role::Admin,
        },
    );
    let banned = change(
        "ban",
        ConversationEventBody::Moderated {
            action: ModerationAction::Ban,
            user_id: user("carol"),
            until: Some(Timestamp(BASE_MILLIS + 10_000_000)),
            reason: Some("spam".to_owned()),
        },
    );
    let muted = change(
        "mute",
        ConversationEventBody::Moderated {
            action: ModerationAction::Mute,
            user_id: user("dave"),
            until: None,
            reason: None,
        },
    );
    let renamed = change(
        "rename",
        ConversationEventBody::ConversationUpdated {
            title: Some("renamed".to_owned()),
            description: None,
            avatar_url: None,
        },
    );
    // One batch for the first three, so later entries see earlier ones; then two more.
    let outcomes = append(
        &store,
        vec![
            event_entry(&tenant_id, &added),
            event_entry(&tenant_id, &promoted),
            event_entry(&tenant_id, &banned),
        ],
    )
    .await;
    assert_eq!(summaries(&outcomes), ["stored 1", "stored 2", "stored 3"]);
    let outcomes = append(
        &store,
        vec![
            event_entry(&tenant_id, &muted),
            event_entry(&tenant_id, &renamed),
        ],
    )
    .await;
    assert_eq!(summaries(&outcomes), ["stored 4", "stored 5"]);

    let snapshot = load(&store, &tenant_id, id)
        .await
        .expect("the conversation exists");
    let roles: Vec<(String, Role)> = snapshot
        .members
        .iter()
        .map(|member| (member.user_id.to_string(), member.role))
        .collect();
    assert_eq!(
        roles,
        [
            ("alice".to_owned(), Role::Owner),
            ("bob".to_owned(), Role::Admin),
            ("dave".to_owned(), Role::Member),
        ]
    );
    let conversation = &snapshot.conversation;
    assert_eq!(conversation.title.as_deref(), Some("renamed"));
    assert_eq!(conversation.bans.len(), 1);
    assert_eq!(conversation.bans[0].user_id, user("carol"));
    assert_eq!(conversation.bans[0].reason.as_deref(), Some("spam"));
    assert_eq!(conversation.mutes.len(), 1);
    assert_eq!(conversation.mutes[0].user_id, user("dave"));
    // The user index follows the members.
    assert_eq!(
        conversations_of(&store, &tenant_id, "carol", None, 10).await,
        []
    );
    assert_eq!(
        conversations_of(&store, &tenant_id, "dave", None, 10).await,
        [id]
    );

    let log = store
        .moderation_log(&tenant_id, id, None, 10)
        .await
        .expect("moderation_log succeeds");
    let seqs: Vec<u64> = log.iter().map(|event| event.seq.get()).collect();
    assert_eq!(seqs, [4, 3], "moderation events only, newest first");
    let older = store
        .moderation_log(&tenant_id, id, Some(Seq(4)), 10)
        .await
        .expect("moderation_log succeeds");
    assert_eq!(older.len(), 1);
    assert_eq!(older[0].body, banned.body);
    assert!(
        store
            .moderation_log(&tenant("other"), id, None, 10)
            .await
            .expect("moderation_log succeeds")
            .is_empty()
    );
    // A change to a conversation that does not exist is refused and consumes nothing.
    let elsewhere = event(conversation_id(9), "alice", "ghost", renamed.body.clone());
    let outcomes = append(&store, vec![event_entry(&tenant_id, &elsewhere)]).await;
    assert_eq!(summaries(&outcomes), ["refused not found"]);
    assert_eq!(
        head(&store, &tenant_id, conversation_id(9)).await,
        Seq::ZERO
    );
}

async fn a_direct_pair_has_one_conversation(store: Arc<dyn MessageStore>) {
    let tenant_id = tenant("acme");
    let mut direct = conversation(&tenant_id, conversation_id(1), "dm");
    direct.kind = ConversationKind::Direct;
    create(
        &store,
        &direct,
        &[member("bob", Role::Member), member("alice", Role::Owner)],
    )
    .await;
    let lookup = |first: &'static str, second: &'static str, tenant_id: TenantId| {
        let store = Arc::clone(&store);
        async move {
            store
                .direct_conversation(&tenant_id, &user(first), &user(second))
                .await
                .expect("direct_conversation succeeds")
        }
    };
    assert_eq!(
        lookup("alice", "bob", tenant_id.clone()).await,
        Some(conversation_id(1))
    );
    assert_eq!(
        lookup("bob", "alice", tenant_id.clone()).await,
        Some(conversation_id(1))
    );
    assert_eq!(lookup("alice", "carol", tenant_id.clone()).await, None);
    assert_eq!(lookup("alice", "bob", tenant("other")).await, None);
    let mut again = conversation(&tenant_id, conversation_id(2), "dm again");
    again.kind = ConversationKind::Direct;
    let refused = store
        .create_conversation(
            &again,
            &[member("alice", Role::Member), member("bob", Role::Owner)],
        )
        .await;
    assert_eq!(refused, Err(StoreError::AlreadyExists));
    assert_eq!(load(&store, &tenant_id, conversation_id(2)).await, None);
    // Groups of the same two users are not direct conversations.
    create(
        &store,
        &conversation(&tenant_id, conversation_id(3), "group"),
        &[member("alice", Role::Owner), member("bob", Role::Member)],
    )
    .await;
}

async fn member_settings_start_empty_are_stored_per_member_and_tenant_scoped(
    store: Arc<dyn MessageStore>,
) {
    let tenant_id = tenant("acme");
    let id = conversation_id(1);
    let settings = MemberSettings {
        notifications_muted_until: Some(Timestamp(BASE_MILLIS + 60_000)),
        archived: true,
        pinned: false,
    };
    let read = |tenant_id: TenantId, name: &'static str| {
        let store = Arc::clone(&store);
        async move {
            store
                .member_settings(&tenant_id, id, &user(name))
                .await
                .expect("member_settings succeeds")
        }
    };
    assert_eq!(
        read(tenant_id.clone(), "bob").await,
        MemberSettings::default()
    );
    store
        .set_member_settings(&tenant_id, id, &user("bob"), settings)
        .await
        .expect("set_member_settings succeeds");
    assert_eq!(read(tenant_id.clone(), "bob").await, settings);
    assert_eq!(read(tenant_id, "carol").await, MemberSettings::default());
    assert_eq!(
        read(tenant("other"), "bob").await,
        MemberSettings::default()
    );
}

async fn hidden_messages_are_per_member_and_tenant_scoped(store: Arc<dyn MessageStore>) {
    let tenant_id = tenant("acme");
    let id = conversation_id(1);
    let (first, second) = (unused_message_id(), unused_message_id());
    let hidden = |tenant_id: TenantId, name: &'static str| {
        let store = Arc::clone(&store);
        async move {
            store
                .hidden_messages(&tenant_id, id, &user(name))
                .await
                .expect("hidden_messages succeeds")
        }
    };
    assert!(hidden(tenant_id.clone(), "bob").await.is_empty());
    for message_id in [first, second, first] {
        store
            .hide_message(&tenant_id, id, &user("bob"), message_id)
            .await
            .expect("hide_message succeeds");
    }
    assert_eq!(
        hidden(tenant_id.clone(), "bob").await,
        std::collections::BTreeSet::from([first, second])
    );
    assert!(hidden(tenant_id.clone(), "bo").await.is_empty());
    assert!(hidden(tenant("other"), "bob").await.is_empty());
    assert!(
        store
            .hidden_messages(&tenant_id, conversation_id(2), &user("bob"))
            .await
            .expect("hidden_messages succeeds")
            .is_empty()
    );
}

// ---------------------------------------------------------------------------------------------
// The event log.

/// Where a tail entry sits: its tenant, conversation and seq.
type Place = (TenantId, ConversationId, Seq);

fn place(tail_entry: &TailEntry) -> Place {
    (
        tail_entry.tenant_id.clone(),
        tail_entry.entry.conversation_id(),
        tail_entry.entry.seq(),
    )
}

/// Reads the whole tail of `scope` after `from`, `page` entries at a time, each read resuming
/// from the cursor of the last entry of the one before.
async fn tail_in_pages(
    store: &Arc<dyn MessageStore>,
    scope: &TailScope,
    from: LogCursor,
    page: usize,
) -> Vec<TailEntry> {
    let mut cursor = from;
    let mut tail = Vec::new();
    loop {
        let read = store
            .tail(scope, cursor, page)
            .await
            .expect("tail succeeds");
        assert!(read.len() <= page, "a tail read returns at most its limit");
        let Some(last) = read.last() else {
            return tail;
        };
        cursor = last.cursor;
        tail.extend(read);
    }
}

/// Checks `tail` against the appends that made it: `calls` holds, per append call in the order
/// they returned, the places it stored. Entries of one call may be in any order across
/// conversations (the Kafka pipeline persists conversations in parallel), but each
/// conversation's are in seq order, a later call's come after an earlier one's, every place
/// is there exactly once, and cursors only grow.
fn check_tail(tail: &[TailEntry], calls: &[Vec<Place>]) {
    assert!(
        tail.windows(2).all(|pair| pair[0].cursor < pair[1].cursor),
        "cursors grow: {:?}",
        tail.iter().map(|entry| entry.cursor).collect::<Vec<_>>()
    );
    let mut rest = tail;
    for (call, places) in calls.iter().enumerate() {
        assert!(rest.len() >= places.len(), "call {call} is in the tail");
        let (this_call, later) = rest.split_at(places.len());
        let mut found: Vec<Place> = this_call.iter().map(place).collect();
        let mut expected = places.clone();
        let in_order = |places: &[Place]| {
            places
                .iter()
                .enumerate()
                .all(|(index, (tenant_id, conversation_id, seq))| {
                    places[..index]
                        .iter()
                        .filter(|(other_tenant, other_conversation, _)| {
                            other_tenant == tenant_id && other_conversation == conversation_id
                        })
                        .all(|(_, _, earlier)| earlier < seq)
                })
        };
        assert!(
            in_order(&found),
            "call {call}: each conversation in seq order: {found:?}"
        );
        found.sort();
        expected.sort();
        assert_eq!(
            found, expected,
            "call {call}: each stored entry exactly once"
        );
        rest = later;
    }
    assert!(
        rest.is_empty(),
        "nothing else is in the tail: {:?}",
        rest.iter().map(place).collect::<Vec<_>>()
    );
}

async fn the_event_log_tails_every_stored_entry_once_in_store_order(store: Arc<dyn MessageStore>) {
    let acme = tenant("acme");
    let globex = tenant("globex");
    let (first, second, third) = (conversation_id(1), conversation_id(2), conversation_id(3));
    let at =
        |tenant_id: &TenantId, conversation_id, seq| (tenant_id.clone(), conversation_id, Seq(seq));
    let empty = store
        .tail(&TailScope::AllTenants, LogCursor::START, 10)
        .await
        .expect("tail succeeds");
    assert_eq!(empty, [], "a new store's log is empty");

    let first_hello = message(first, "hello");
    let outcomes = append(
        &store,
        vec![
            entry(&acme, &first_hello),
            entry(&acme, &message(second, "hello")),
            entry(&globex, &message(third, "hello")),
            entry(&acme, &message(first, "again")),
        ],
    )
    .await;
    assert_eq!(
        summaries(&outcomes),
        ["stored 1", "stored 1", "stored 1", "stored 2"]
    );
    // A duplicate and a refusal store nothing, so they are not in the log.
    let outcomes = append(
        &store,
        vec![
            entry(&acme, &first_hello),
            event_entry(
                &acme,
                &event(
                    first,
                    "alice",
                    "edit-missing",
                    edited(unused_message_id(), "x"),
                ),
            ),
            entry(&globex, &message(third, "more")),
        ],
    )
    .await;
    assert_eq!(summaries(&outcomes)[2], "stored 2");
    append(&store, vec![entry(&acme, &message(second, "later"))]).await;
    let calls = vec![
        vec![
            at(&acme, first, 1),
            at(&acme, second, 1),
            at(&globex, third, 1),
            at(&acme, first, 2),
        ],
        vec![at(&globex, third, 2)],
        vec![at(&acme, second, 2)],
    ];

    let whole = tail_in_pages(&store, &TailScope::AllTenants, LogCursor::START, 100).await;
    check_tail(&whole, &calls);
    for page in [1, 2, 3] {
        let paged = tail_in_pages(&store, &TailScope::AllTenants, LogCursor::START, page).await;
        assert_eq!(
            paged, whole,
            "reading in pages of {page} gives the same tail"
        );
    }
    let first_in_tail = whole
        .iter()
        .find(|tail_entry| place(tail_entry) == at(&acme, first, 1))
        .expect("the first message is in the tail");
    assert_eq!(
        first_in_tail.entry,
        LogEntry::Message(stored_as(&first_hello, 1)),
        "an entry reads as the store holds it"
    );

    let acme_only = tail_in_pages(
        &store,
        &TailScope::Tenant(acme.clone()),
        LogCursor::START,
        2,
    )
    .await;
    let whole_of_acme: Vec<TailEntry> = whole
        .iter()
        .filter(|entry| entry.tenant_id == acme)
        .cloned()
        .collect();
    assert_eq!(
        acme_only, whole_of_acme,
        "a tenant's tail is its part of the whole"
    );

    // Resuming from the last cursor finds exactly what was appended since.
    let last = whole.last().expect("the log has entries").cursor;
    assert_eq!(
        tail_in_pages(&store, &TailScope::AllTenants, last, 10).await,
        []
    );
    append(&store, vec![entry(&globex, &message(first, "new"))]).await;
    let since = tail_in_pages(&store, &TailScope::AllTenants, last, 10).await;
    check_tail(&since, &[vec![at(&globex, first, 1)]]);
}

async fn concurrent_appends_each_get_one_place_in_the_event_log(store: Arc<dyn MessageStore>) {
    let acme = tenant("acme");
    let n_tasks: u64 = 4;
    let n_messages: u64 = 5;
    let mut tasks = tokio::task::JoinSet::new();
    for task in 0..n_tasks {
        let store = Arc::clone(&store);
        let acme = acme.clone();
        tasks.spawn(async move {
            for number in 0..n_messages {
                let conversation = conversation_id(u128::from(task % 2 + 1));
                let client_id = format!("t{task}-{number}");
                store
                    .append(vec![entry(&acme, &message(conversation, &client_id))])
                    .await
                    .expect("append succeeds");
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.expect("the appending task completes");
    }
    let tail = tail_in_pages(&store, &TailScope::AllTenants, LogCursor::START, 3).await;
    let mut places: Vec<Place> = tail.iter().map(place).collect();
    let per_conversation = n_tasks * n_messages / 2;
    for conversation in [conversation_id(1), conversation_id(2)] {
        let seqs: Vec<u64> = places
            .iter()
            .filter(|(_, id, _)| *id == conversation)
            .map(|(_, _, seq)| seq.get())
            .collect();
        assert_eq!(
            seqs,
            (1..=per_conversation).collect::<Vec<_>>(),
            "seq order, no gap, no repeat"
        );
    }
    places.dedup();
    assert_eq!(
        places.len(),
        usize::try_from(n_tasks * n_messages).expect("small")
    );
}

conformance!(
    tenants_are_isolated_for_every_method,
    creating_an_existing_conversation_fails_and_changes_nothing,
    load_returns_the_conversation_with_members_in_user_id_order,
    conversations_of_user_are_in_id_order_and_paginate,
    the_store_assigns_seqs_one_two_three_whatever_seq_the_entries_carry,
    single_entry_appends_with_gapped_or_reused_seqs_are_stored_at_the_next_seq_without_gap,
    one_batch_gives_each_conversation_of_each_tenant_its_own_contiguous_seqs,
    a_stored_client_id_is_reported_as_duplicate_stores_nothing_and_consumes_no_seq,
    a_client_id_repeated_within_a_batch_is_reported_as_duplicate_and_consumes_no_seq,
    the_same_client_id_of_two_authors_is_two_entries,
    a_client_id_reused_by_its_author_for_another_request_is_a_conflict,
    a_stored_entry_reports_the_entries_it_rewrote_as_they_now_are,
    head_is_the_highest_assigned_seq,
    lookups_by_client_id_and_by_message_id_return_the_assigned_seq,
    messages_after_is_ascending_bounded_and_limited,
    messages_before_is_descending_bounded_and_limited,
    an_empty_append_stores_nothing,
    ping_answers,
    concurrent_appends_with_distinct_client_ids_store_everything_at_seqs_one_to_n_without_gap_or_reuse,
    concurrent_appends_of_the_same_client_id_store_it_exactly_once_and_name_the_winner,
    events_get_their_own_seqs_and_keep_the_message_current,
    a_refused_event_stores_nothing_and_consumes_no_seq,
    a_delete_in_the_same_batch_as_edits_scrubs_their_text,
    attachments_are_stored_with_their_message_and_removed_by_a_delete,
    thread_replies_count_on_their_root_and_list_in_order,
    read_cursors_start_at_zero_are_stored_per_member_and_tenant_scoped,
    unread_counts_others_messages_that_are_not_deleted,
    conversation_changes_update_the_conversation_its_members_and_the_moderation_log,
    a_direct_pair_has_one_conversation,
    member_settings_start_empty_are_stored_per_member_and_tenant_scoped,
    hidden_messages_are_per_member_and_tenant_scoped,
    the_event_log_tails_every_stored_entry_once_in_store_order,
    concurrent_appends_each_get_one_place_in_the_event_log,
);

// ---------------------------------------------------------------------------------------------
// Embedded store only: what must survive a restart, and how damage is reported.

fn open_embedded(directory: &TempDir) -> Arc<dyn MessageStore> {
    Arc::new(EmbeddedMessageStore::open(directory.path()).expect("the embedded store opens"))
}

/// The embedded directory opened with fjall directly, to write what an earlier version wrote or
/// damage it.
fn raw_database(directory: &TempDir) -> fjall::Database {
    fjall::Database::builder(directory.path())
        .open()
        .expect("the embedded directory opens with fjall")
}

/// One table of a [`raw_database`].
fn raw_table(database: &fjall::Database, table: &str) -> fjall::Keyspace {
    database
        .keyspace(table, fjall::KeyspaceCreateOptions::default)
        .expect("the table opens")
}

/// Rewrites an embedded directory's idempotency keys into the layout versions before keys
/// were scoped by author wrote: `client_ids`, `[tenant][conversation][client id]` -> seq.
fn rewrite_into_legacy_client_ids(directory: &TempDir) -> usize {
    let database = raw_database(directory);
    let scoped = raw_table(&database, "author_client_ids");
    let legacy = raw_table(&database, "client_ids");
    let mut n_rewritten = 0;
    let mut batch = database
        .batch()
        .durability(Some(fjall::PersistMode::SyncAll));
    for guard in scoped.iter() {
        let (key, value) = guard.into_inner().expect("a key can be read");
        // [tenant length][tenant][16-byte conversation][author length][author][client id part]
        let prefix_length = 1 + usize::from(key[0]) + 16;
        let author_length = usize::from(key[prefix_length]);
        let mut legacy_key = key[..prefix_length].to_vec();
        legacy_key.extend_from_slice(&key[prefix_length + 1 + author_length..]);
        batch.remove(&scoped, key.clone());
        batch.insert(&legacy, legacy_key, value);
        n_rewritten += 1;
    }
    batch.commit().expect("the legacy layout is written");
    n_rewritten
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_client_ids_written_before_keys_were_scoped_by_author_are_read_as_their_authors() {
    let directory = TempDir::new().expect("a temporary directory can be created");
    let tenant_id = tenant("acme");
    let id = conversation_id(1);
    let from_alice = message_from(id, "alice", "K", "alice's words");
    let from_bob = message_from(id, "bob", "L", "bob's words");
    let store = open_embedded(&directory);
    let edit = event(id, "bob", "E", edited(from_bob.message_id, "bob's edit"));
    let outcomes = append(
        &store,
        vec![
            entry(&tenant_id, &from_alice),
            entry(&tenant_id, &from_bob),
            event_entry(&tenant_id, &edit),
        ],
    )
    .await;
    assert_eq!(
        summaries(&outcomes),
        vec!["stored 1", "stored 2", "stored 3 completed"]
    );
    drop(store);
    assert_eq!(rewrite_into_legacy_client_ids(&directory), 3);

    // Opening migrates every legacy key to its entry's author, once.
    let store = open_embedded(&directory);
    assert_eq!(
        by_author_client_id(&store, &tenant_id, id, "alice", "K")
            .await
            .map(|entry| entry.seq()),
        Some(Seq(1))
    );
    assert_eq!(
        by_author_client_id(&store, &tenant_id, id, "bob", "E")
            .await
            .map(|entry| entry.seq()),
        Some(Seq(3))
    );
    assert_eq!(
        by_author_client_id(&store, &tenant_id, id, "alice", "L").await,
        None
    );
    // Retries are answered with the originals; bob may now use alice's key, and alice may not
    // reuse hers for another text.
    let alice_retry = message_from(id, "alice", "K", "alice's words");
    let bob_with_alices_key = message_from(id, "bob", "K", "bob's own");
    let alice_other = message_from(id, "alice", "K", "another text");
    let outcomes = append(
        &store,
        entries(
            &tenant_id,
            &[&alice_retry, &bob_with_alices_key, &alice_other],
        ),
    )
    .await;
    assert_eq!(
        summaries(&outcomes),
        vec![
            "duplicate 1",
            "stored 4",
            "refused conflict: this client_id was already used for a different request; use a new client_id"
        ]
    );
    drop(store);
    // The emptied legacy table is gone, and the migrated keys stay.
    let database = raw_database(&directory);
    assert!(!database.keyspace_exists("client_ids"));
    drop(database);
    let store = open_embedded(&directory);
    assert_eq!(
        by_author_client_id(&store, &tenant_id, id, "bob", "K")
            .await
            .map(|entry| entry.seq()),
        Some(Seq(4))
    );
    assert_eq!(
        by_author_client_id(&store, &tenant_id, id, "alice", "K")
            .await
            .map(|entry| entry.seq()),
        Some(Seq(1))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_event_log_survives_a_reopen_and_continues_after_its_last_position() {
    let directory = TempDir::new().expect("a temporary directory can be created");
    let acme = tenant("acme");
    let store = open_embedded(&directory);
    append_sequence(&store, &acme, conversation_id(1), 3).await;
    let before = tail_in_pages(&store, &TailScope::AllTenants, LogCursor::START, 2).await;
    drop(store);

    let store = open_embedded(&directory);
    let after = tail_in_pages(&store, &TailScope::AllTenants, LogCursor::START, 2).await;
    assert_eq!(after, before, "the log is durable");
    let last = after.last().expect("the log has entries").cursor;
    append_sequence(&store, &acme, conversation_id(2), 2).await;
    let since = tail_in_pages(&store, &TailScope::AllTenants, last, 10).await;
    let at = |conversation: u128, seq: u64| (acme.clone(), conversation_id(conversation), Seq(seq));
    check_tail(&since, &[vec![at(2, 1), at(2, 2)]]);
    assert!(
        since[0].cursor > last,
        "positions continue after the reopen"
    );
}

/// Rewrites an embedded directory's event log into the layout it first had, one record per
/// entry: `event_log`, big-endian position -> (tenant, conversation, seq) as version byte 2 and
/// postcard. Positions are 1, 2, 3… in the order `tail` gives.
fn rewrite_into_legacy_event_log(directory: &TempDir, tail: &[TailEntry]) {
    let database = raw_database(directory);
    let records = raw_table(&database, "event_log_records");
    let legacy = raw_table(&database, "event_log");
    let mut batch = database
        .batch()
        .durability(Some(fjall::PersistMode::SyncAll));
    for guard in records.iter() {
        batch.remove(&records, guard.key().expect("a key can be read"));
    }
    for (position, tail_entry) in (1_u64..).zip(tail) {
        let (tenant_id, conversation_id, seq) = place(tail_entry);
        let value = postcard::to_extend(&(tenant_id, conversation_id, seq), vec![2])
            .expect("a legacy record encodes");
        batch.insert(&legacy, position.to_be_bytes(), value);
    }
    batch.commit().expect("the legacy layout is written");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_event_log_written_one_record_per_entry_is_migrated_in_order() {
    let directory = TempDir::new().expect("a temporary directory can be created");
    let acme = tenant("acme");
    let store = open_embedded(&directory);
    append_sequence(&store, &acme, conversation_id(1), 2).await;
    append_sequence(&store, &tenant("other"), conversation_id(2), 2).await;
    append_sequence(&store, &acme, conversation_id(4), 1).await;
    let before = tail_in_pages(&store, &TailScope::AllTenants, LogCursor::START, 100).await;
    assert_eq!(before.len(), 5);
    drop(store);
    rewrite_into_legacy_event_log(&directory, &before);

    let store = open_embedded(&directory);
    let migrated = tail_in_pages(&store, &TailScope::AllTenants, LogCursor::START, 2).await;
    assert_eq!(
        migrated.iter().map(place).collect::<Vec<_>>(),
        before.iter().map(place).collect::<Vec<_>>(),
        "the same entries, in the same order"
    );
    let last = migrated.last().expect("the log has entries").cursor;
    append_sequence(&store, &acme, conversation_id(3), 2).await;
    let since = tail_in_pages(&store, &TailScope::AllTenants, last, 10).await;
    let at = |conversation: u128, seq: u64| (acme.clone(), conversation_id(conversation), Seq(seq));
    check_tail(&since, &[vec![at(3, 1), at(3, 2)]]);
    drop(store);
    let database = raw_database(&directory);
    assert!(
        !database.keyspace_exists("event_log"),
        "the emptied legacy table is gone"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_data_heads_and_client_ids_survive_a_reopen_and_appends_continue_at_the_head() {
    let directory = TempDir::new().expect("a temporary directory can be created");
    let tenant_id = tenant("acme");
    let id = conversation_id(1);
    let untouched_since_open = conversation_id(2);
    let stored_conversation = conversation(&tenant_id, id, "durable");
    let members = [member("alice", Role::Owner), member("bob", Role::Member)];

    let store = open_embedded(&directory);
    create(&store, &stored_conversation, &members).await;
    let stored_messages = append_sequence(&store, &tenant_id, id, 3).await;
    let other_stored = append_sequence(&store, &tenant_id, untouched_since_open, 2).await;
    // The writer's head cache is now warm; dropping the store must not lose anything.
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
    // The assigned seqs (not the carried ones) are what was written.
    assert_eq!(all_messages(&store, &tenant_id, id).await, stored_messages);
    assert_eq!(
        by_message_id(&store, &tenant_id, id, stored_messages[1].message_id).await,
        Some(stored_messages[1].reference())
    );
    assert_eq!(
        by_client_id(&store, &tenant_id, id, "c-3").await,
        Some(stored_messages[2].reference())
    );
    assert_eq!(
        store
            .create_conversation(&stored_conversation, &members)
            .await,
        Err(StoreError::AlreadyExists)
    );

    // The first append after a reopen loads the head (cold cache) and the client-id index: a
    // retry resolves to the stored message, and new entries continue at head + 1 whatever seq
    // they carry, with the duplicate consuming no seq.
    let retry = message_carrying(id, 4, "c-2");
    let carrying_one = message_carrying(id, 1, "new");
    let carrying_head = message_carrying(id, 3, "newer");
    assert_eq!(
        append(
            &store,
            entries(&tenant_id, &[&retry, &carrying_one, &carrying_head]),
        )
        .await,
        vec![
            AppendOutcome::DuplicateClientId {
                existing: stored_messages[1].reference()
            },
            stored(4),
            stored(5),
        ]
    );
    assert_eq!(head(&store, &tenant_id, id).await, Seq(5));
    drop(store);

    let store = open_embedded(&directory);
    assert_eq!(head(&store, &tenant_id, id).await, Seq(5));
    assert_eq!(
        by_client_id(&store, &tenant_id, id, "new").await,
        Some(reference_at(&carrying_one, 4))
    );
    // The second conversation was never appended to while the store was open in between: its
    // head also comes from disk, and its next seq is 3.
    let other_next = message_carrying(untouched_since_open, 1, "other-next");
    let after_newer = message_carrying(id, 0, "after-newer");
    assert_eq!(
        append(
            &store,
            vec![
                entry(&tenant_id, &carrying_one),
                entry(&tenant_id, &other_next),
                entry(&tenant_id, &after_newer),
            ],
        )
        .await,
        vec![duplicate_of(&carrying_one, 4), stored(3), stored(6)]
    );
    assert_eq!(
        seqs_before(&store, &tenant_id, id, None, 10).await,
        vec![6, 5, 4, 3, 2, 1]
    );
    let mut expected_other = other_stored;
    expected_other.push(stored_as(&other_next, 3));
    assert_eq!(
        all_messages(&store, &tenant_id, untouched_since_open).await,
        expected_other
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
        let database = raw_database(&directory);
        let meta = raw_table(&database, "meta");
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
                supported: 2
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
        let database = raw_database(&directory);
        let messages = raw_table(&database, "messages");
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

// ---------------------------------------------------------------------------------------------
// MongoDB store only: what two engine nodes sharing one database must see.

/// Two stores with their own clients on one database, as two engine nodes have: concurrent
/// appends to one conversation through both still get seqs 1..=N, each exactly once, and each
/// store reads everything the other wrote, including after a reconnect.
#[cfg(feature = "mongodb")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mongodb_two_nodes_appending_to_one_conversation_share_one_gapless_seq_stream() {
    const N_TASKS_PER_NODE: usize = 4;
    const N_APPENDS_PER_TASK: usize = 8;
    const N_MESSAGES: usize = 2 * N_TASKS_PER_NODE * N_APPENDS_PER_TASK;
    let first = mongodb_store().await;
    let database_name = first.database().name().to_owned();
    let uri = support::mongodb_uri();
    let second = switchboard_storage::MongoMessageStore::connect(&uri, &database_name)
        .await
        .expect("the second node's store connects");
    let nodes: [Arc<dyn MessageStore>; 2] = [Arc::new(first.clone()), Arc::new(second)];
    let tenant_id = tenant("acme");
    let id = conversation_id(1);

    let start_line = Arc::new(tokio::sync::Barrier::new(2 * N_TASKS_PER_NODE));
    let mut tasks = tokio::task::JoinSet::new();
    for (node_number, node) in nodes.iter().enumerate() {
        for task in 0..N_TASKS_PER_NODE {
            let store = Arc::clone(node);
            let start_line = Arc::clone(&start_line);
            let tenant_id = tenant_id.clone();
            tasks.spawn(async move {
                start_line.wait().await;
                let mut stored = Vec::new();
                for append in 0..N_APPENDS_PER_TASK {
                    let message = message_carrying(
                        id,
                        1,
                        &format!("node-{node_number}-task-{task}-append-{append}"),
                    );
                    let outcomes = store
                        .append(vec![entry(&tenant_id, &message)])
                        .await
                        .expect("append succeeds");
                    stored.push((stored_seq(&outcomes[0]), message.client_id.clone()));
                }
                stored
            });
        }
    }
    let mut seqs = Vec::with_capacity(N_MESSAGES);
    let mut client_ids = std::collections::BTreeSet::new();
    while let Some(result) = tasks.join_next().await {
        for (seq, client_id) in result.expect("appending task completes") {
            seqs.push(seq);
            assert!(
                client_ids.insert(client_id),
                "every client id is stored once"
            );
        }
    }
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=N_MESSAGES as u64).collect::<Vec<u64>>());

    // Each node reads the whole stream the other wrote, and so does a node that reconnects.
    let reconnected: Arc<dyn MessageStore> = Arc::new(
        switchboard_storage::MongoMessageStore::connect(&uri, &database_name)
            .await
            .expect("a reconnecting node's store connects"),
    );
    for store in nodes.iter().chain([&reconnected]) {
        assert_eq!(head(store, &tenant_id, id).await, Seq(N_MESSAGES as u64));
        let stored = all_messages(store, &tenant_id, id).await;
        assert_eq!(
            stored
                .iter()
                .map(|message| message.seq.get())
                .collect::<Vec<u64>>(),
            (1..=N_MESSAGES as u64).collect::<Vec<u64>>()
        );
    }
    first
        .database()
        .drop()
        .await
        .expect("the test database is dropped");
}

/// Entries written before idempotency keys were scoped by author have no `author` field and sit
/// under a unique index on `(tenant, conversation, client_id)`; a store that reaches such a
/// database fills the field in from each entry, builds the author-scoped index and drops the old
/// one, after which each author's keys are their own.
#[cfg(feature = "mongodb")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mongodb_entries_written_before_keys_were_scoped_by_author_are_read_as_their_authors() {
    use ::mongodb::IndexModel;
    use ::mongodb::bson::{Document, doc};
    use ::mongodb::options::IndexOptions;

    let first = mongodb_store().await;
    let tenant_id = tenant("acme");
    let id = conversation_id(1);
    let from_alice = message_from(id, "alice", "K", "alice's words");
    let from_bob = message_from(id, "bob", "L", "bob's words");
    let store: Arc<dyn MessageStore> = Arc::new(first.clone());
    assert_eq!(
        append(&store, entries(&tenant_id, &[&from_alice, &from_bob])).await,
        vec![stored(1), stored(2)]
    );
    // Make the database look as an earlier version left it.
    let database = first.database();
    let entries_collection = database.collection::<Document>("entries");
    entries_collection
        .update_many(doc! {}, doc! {"$unset": {"author": ""}})
        .await
        .expect("the author fields are removed");
    entries_collection
        .drop_index("conversation_author_client_id")
        .await
        .expect("the author-scoped index is dropped");
    entries_collection
        .create_index(
            IndexModel::builder()
                .keys(doc! {"tenant": 1, "conversation": 1, "client_id": 1})
                .options(
                    IndexOptions::builder()
                        .unique(true)
                        .name("conversation_client_id".to_owned())
                        .build(),
                )
                .build(),
        )
        .await
        .expect("the legacy index is built");

    // A store that starts on this database (a node of the new version) migrates it.
    let uri = support::mongodb_uri();
    let upgraded = switchboard_storage::MongoMessageStore::connect(&uri, database.name())
        .await
        .expect("the upgraded node's store connects");
    let store: Arc<dyn MessageStore> = Arc::new(upgraded);
    assert_eq!(
        by_author_client_id(&store, &tenant_id, id, "alice", "K")
            .await
            .map(|entry| entry.seq()),
        Some(Seq(1))
    );
    assert_eq!(
        entries_collection
            .count_documents(doc! {"author": {"$exists": false}})
            .await
            .expect("countable"),
        0
    );
    let index_names = entries_collection
        .list_index_names()
        .await
        .expect("the indexes can be listed");
    assert!(
        index_names.contains(&"conversation_author_client_id".to_owned())
            && !index_names.contains(&"conversation_client_id".to_owned()),
        "{index_names:?}"
    );
    let alice_retry = message_from(id, "alice", "K", "alice's words");
    let bob_with_alices_key = message_from(id, "bob", "K", "bob's own");
    assert_eq!(
        summaries(
            &append(
                &store,
                entries(&tenant_id, &[&alice_retry, &bob_with_alices_key])
            )
            .await
        ),
        vec!["duplicate 1", "stored 3"]
    );
    first
        .database()
        .drop()
        .await
        .expect("the test database is dropped");
}
