//! Finding conversations and people by name: what `GET /v1/search/conversations` and
//! `GET /v1/search/users` mean, over the caller's own conversations (the service loads them;
//! nothing else is ever a candidate).
//!
//! A conversation is found by its title, its description and its members' ids; a user (who
//! shares a conversation with the caller) by their id, the only name Switchboard knows of
//! them. Both go through the same analyzer and matcher as messages, so words, phrases,
//! exclusions and prefixes mean the same everywhere; a prefix also matches a whole user id
//! from its start (`ali*` finds `alice.smith`, which is one word to Unicode segmentation).
//! Only words apply here: the filters are about messages, and [`words_only`] refuses them.
//! Results rank title matches before description and member matches, and users by how many
//! conversations they share with the caller.

use std::ops::Range;

use super::analyzer::{Analyzer, Purpose, fold};
use super::matching::{CompiledClause, CompiledQuery, merged};
use super::query::SearchQuery;
use crate::Error;
use crate::ids::UserId;
use crate::model::{Conversation, ConversationSnapshot};

/// Where a conversation matched, best first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ConversationField {
    /// Its title.
    Title,
    /// Its description.
    Description,
    /// One or more of its members' ids.
    Members,
}

/// A conversation found, with where the query's words are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConversationMatch {
    /// The conversation.
    pub conversation: Conversation,
    /// How many members it has.
    pub member_count: usize,
    /// The best field a word was found in.
    pub field: ConversationField,
    /// Matches in the title, as byte ranges of it.
    pub title_matches: Vec<Range<usize>>,
    /// Matches in the description, as byte ranges of it.
    pub description_matches: Vec<Range<usize>>,
    /// The members whose ids matched, in id order.
    pub matching_members: Vec<UserId>,
}

/// A user found, with where the query's words are in their id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserMatch {
    /// The user.
    pub user_id: UserId,
    /// How many of the caller's conversations (among those looked at) they are in.
    pub shared_conversations: usize,
    /// Matches in the id, as byte ranges of it.
    pub matches: Vec<Range<usize>>,
}

/// Checks that `query` has words and no filter, as conversations and users are found by
/// words only.
///
/// # Errors
/// [`Error::Invalid`] (field `q`) naming the first filter, or saying that a word is needed.
pub fn words_only(query: &SearchQuery, what: &str) -> crate::Result<()> {
    let filter = if !query.from.is_empty() {
        Some("from:")
    } else if query.has_attachment {
        Some("has:attachment")
    } else if query.before.is_some() {
        Some("before:")
    } else if query.after.is_some() {
        Some("after:")
    } else {
        None
    };
    if let Some(filter) = filter {
        return Err(Error::invalid(
            "q",
            format!("{filter} filters messages; {what} are found by words only (and in:)"),
        ));
    }
    if query.required.is_empty() {
        return Err(Error::invalid(
            "q",
            format!("{what} are found by words: give at least one that is not excluded"),
        ));
    }
    Ok(())
}

/// The query's words, compiled for matching names.
pub struct NameMatcher {
    analyzer: Analyzer,
    compiled: CompiledQuery,
}

impl NameMatcher {
    /// A matcher of `query`'s words (its filters are not looked at).
    pub fn new(query: &SearchQuery) -> Self {
        let analyzer = Analyzer::new();
        let compiled = CompiledQuery::new(&analyzer, query);
        Self { analyzer, compiled }
    }

    /// Where `snapshot` matches, if it does: every required clause is found in its title,
    /// description or member ids (any of them), and no excluded clause in any.
    pub fn conversation(&self, snapshot: &ConversationSnapshot) -> Option<ConversationMatch> {
        let conversation = &snapshot.conversation;
        let title = conversation.title.as_deref().unwrap_or("");
        let description = conversation.profile.description.as_deref().unwrap_or("");
        let fields: Vec<&str> = [title, description]
            .into_iter()
            .chain(
                snapshot
                    .members
                    .iter()
                    .map(|member| member.user_id.as_str()),
            )
            .collect();
        let found = self.all_fields(&fields)?;
        let title_matches = found[0].clone();
        let description_matches = found[1].clone();
        let matching_members: Vec<UserId> = snapshot
            .members
            .iter()
            .zip(&found[2..])
            .filter(|(_, ranges)| !ranges.is_empty())
            .map(|(member, _)| member.user_id.clone())
            .collect();
        let field = if !title_matches.is_empty() {
            ConversationField::Title
        } else if !description_matches.is_empty() {
            ConversationField::Description
        } else {
            ConversationField::Members
        };
        Some(ConversationMatch {
            conversation: conversation.clone(),
            member_count: snapshot.members.len(),
            field,
            title_matches,
            description_matches,
            matching_members,
        })
    }

    /// Where `user_id` matches, if it does.
    pub fn user(&self, user_id: &UserId, shared_conversations: usize) -> Option<UserMatch> {
        let found = self.all_fields(&[user_id.as_str()])?;
        Some(UserMatch {
            user_id: user_id.clone(),
            shared_conversations,
            matches: found.into_iter().next().unwrap_or_default(),
        })
    }

    /// The ranges each required clause matches in each field, if every required clause
    /// matches in at least one field and no excluded clause in any.
    fn all_fields(&self, fields: &[&str]) -> Option<Vec<Vec<Range<usize>>>> {
        let tokens: Vec<_> = fields
            .iter()
            .map(|text| self.analyzer.tokens(text, Purpose::Index))
            .collect();
        let one_clause = |clause: &CompiledClause| -> Vec<Vec<Range<usize>>> {
            let single = CompiledQuery {
                required: vec![clause.clone()],
                excluded: Vec::new(),
            };
            fields
                .iter()
                .zip(&tokens)
                .map(|(text, tokens)| {
                    let mut found = single.matches(tokens).unwrap_or_default();
                    if found.is_empty()
                        && let CompiledClause::Prefix(prefix) = clause
                        && fold(text).starts_with(prefix.as_str())
                    {
                        found.push(0..text.len());
                    }
                    found
                })
                .collect()
        };
        if self
            .compiled
            .excluded
            .iter()
            .any(|clause| one_clause(clause).iter().any(|found| !found.is_empty()))
        {
            return None;
        }
        let mut per_field: Vec<Vec<Range<usize>>> = vec![Vec::new(); fields.len()];
        for clause in &self.compiled.required {
            let found = one_clause(clause);
            if found.iter().all(Vec::is_empty) {
                return None;
            }
            for (field, ranges) in per_field.iter_mut().zip(found) {
                field.extend(ranges);
            }
        }
        for ranges in &mut per_field {
            *ranges = merged(std::mem::take(ranges));
        }
        Some(per_field)
    }
}

/// Orders conversations found: best field first, then title, then id.
pub fn rank_conversations(found: &mut [ConversationMatch]) {
    found.sort_by(|left, right| {
        left.field
            .cmp(&right.field)
            .then_with(|| {
                let title = |found: &ConversationMatch| {
                    found
                        .conversation
                        .title
                        .as_deref()
                        .map(fold)
                        .unwrap_or_default()
                };
                title(left).cmp(&title(right))
            })
            .then_with(|| {
                left.conversation
                    .conversation_id
                    .cmp(&right.conversation.conversation_id)
            })
    });
}

/// Orders users found: most shared conversations first, then id.
pub fn rank_users(found: &mut [UserMatch]) {
    found.sort_by(|left, right| {
        right
            .shared_conversations
            .cmp(&left.shared_conversations)
            .then_with(|| left.user_id.cmp(&right.user_id))
    });
}

#[cfg(test)]
mod tests;
