//! Finding conversations by title, description and members, and users by id: the same
//! words, phrases, exclusions and prefixes as messages, and the filters refused.

use super::*;
use crate::ids::{ConversationId, TenantId};
use crate::model::{ConversationKind, ConversationProfile, Member, Role};
use crate::time::Timestamp;

fn user(id: &str) -> UserId {
    UserId::parse(id).expect("valid")
}

fn snapshot(number: u64, title: &str, description: &str, members: &[&str]) -> ConversationSnapshot {
    let mut conversation = Conversation::new(
        ConversationId::from_parts(1, number.into()),
        TenantId::parse("acme").expect("valid"),
        ConversationKind::Group,
        Some(title.to_owned()).filter(|title| !title.is_empty()),
        user(members[0]),
        Timestamp(1),
    );
    conversation.profile = ConversationProfile {
        description: Some(description.to_owned()).filter(|text| !text.is_empty()),
        avatar_url: None,
    };
    ConversationSnapshot {
        conversation,
        members: members
            .iter()
            .map(|id| Member {
                user_id: user(id),
                role: Role::Member,
                joined_at: Timestamp(1),
            })
            .collect(),
    }
}

fn matcher(query: &str) -> NameMatcher {
    NameMatcher::new(&SearchQuery::parse(query).expect("parses"))
}

#[test]
fn a_conversation_is_found_by_title_description_or_member() {
    let launch = snapshot(
        1,
        "Rocket Launches",
        "Planning the next flights",
        &["alice", "bob"],
    );
    let by_title = matcher("launch").conversation(&launch).expect("title");
    assert_eq!(by_title.field, ConversationField::Title);
    assert_eq!(by_title.title_matches, vec![7..15]);
    assert!(by_title.description_matches.is_empty());

    let by_description = matcher("flight plan*")
        .conversation(&launch)
        .expect("description");
    assert_eq!(by_description.field, ConversationField::Description);
    assert_eq!(by_description.description_matches, vec![0..8, 18..25]);

    let by_member = matcher("bob").conversation(&launch).expect("member");
    assert_eq!(by_member.field, ConversationField::Members);
    assert_eq!(by_member.matching_members, vec![user("bob")]);
    assert_eq!(by_member.member_count, 2);

    assert!(
        matcher("rocket alice").conversation(&launch).is_some(),
        "words may be found in different fields"
    );
    assert!(
        matcher("rocket -bob").conversation(&launch).is_none(),
        "excluded member"
    );
    assert!(
        matcher("\"launches rocket\"")
            .conversation(&launch)
            .is_none(),
        "phrase order"
    );
    assert!(matcher("carol").conversation(&launch).is_none());
}

#[test]
fn a_user_is_found_by_words_of_the_id_or_its_start() {
    let found = matcher("ali*")
        .user(&user("alice.smith"), 3)
        .expect("prefix of the id");
    assert_eq!(found.matches, vec![0..11]);
    assert_eq!(found.shared_conversations, 3);
    assert!(
        matcher("smith").user(&user("alice-smith"), 1).is_some(),
        "a word of the id"
    );
    assert!(
        matcher("smi*").user(&user("alice.smith"), 1).is_none(),
        "not a word start"
    );
    assert!(matcher("bob").user(&user("alice"), 1).is_none());
}

#[test]
fn rankings_put_titles_and_shared_users_first() {
    let mut found = vec![
        matcher("ops")
            .conversation(&snapshot(1, "", "", &["ops"]))
            .expect("member"),
        matcher("ops")
            .conversation(&snapshot(2, "zeta", "ops team", &["a"]))
            .expect("description"),
        matcher("ops")
            .conversation(&snapshot(3, "Ops", "", &["a"]))
            .expect("title"),
    ];
    rank_conversations(&mut found);
    let order: Vec<u64> = found
        .iter()
        .map(|found| found.conversation.conversation_id.to_bytes()[15].into())
        .collect();
    assert_eq!(order, vec![3, 2, 1]);

    let mut users = vec![
        matcher("a").user(&user("a-my"), 1).expect("found"),
        matcher("a").user(&user("a-nn"), 4).expect("found"),
        matcher("a").user(&user("a-be"), 1).expect("found"),
    ];
    rank_users(&mut users);
    let order: Vec<&str> = users.iter().map(|found| found.user_id.as_str()).collect();
    assert_eq!(order, vec!["a-nn", "a-be", "a-my"]);
}

#[test]
fn filters_are_refused_and_a_word_is_needed() {
    let refused = |query: &str| {
        words_only(&SearchQuery::parse(query).expect("parses"), "conversations")
            .expect_err("refused")
            .to_string()
    };
    assert!(refused("ops from:alice").contains("from:"));
    assert!(refused("ops has:attachment").contains("has:attachment"));
    assert!(refused("ops before:2026-01-01").contains("before:"));
    assert!(refused("in:00000000010000000000000001").contains("at least one"));
    words_only(
        &SearchQuery::parse("ops in:00000000010000000000000001").expect("parses"),
        "conversations",
    )
    .expect("in: narrows");
}
