//! Table tests for the direct-pair rule: each member list with the pair it makes, if any.

use expect_test::{Expect, expect};

use super::*;
use crate::model::Role;
use crate::time::Timestamp;

fn check(kind: ConversationKind, member_names: &[&str], expect: Expect) {
    let members: Vec<Member> = member_names
        .iter()
        .map(|name| Member {
            user_id: UserId::parse(name).expect("valid user"),
            role: Role::Member,
            joined_at: Timestamp(0),
        })
        .collect();
    let verdict = match direct_pair(kind, &members) {
        Some((first, second)) => format!("{first} {second}"),
        None => "none".to_owned(),
    };
    expect.assert_eq(&verdict);
}

#[test]
fn direct_pairs() {
    use ConversationKind::*;
    check(Direct, &["alice", "bob"], expect!["alice bob"]);
    check(Direct, &["bob", "alice"], expect!["alice bob"]);
    check(Direct, &["alice", "alice"], expect!["alice alice"]);
    check(Direct, &["alice"], expect!["none"]);
    check(Direct, &["alice", "bob", "carol"], expect!["none"]);
    check(Group, &["alice", "bob"], expect!["none"]);
    check(Channel, &["alice", "bob"], expect!["none"]);
}
