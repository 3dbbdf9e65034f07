//! The conversations service behind [`System`]: creating a conversation (one per direct pair),
//! a member's view of one (cursors, unread count, settings), the list of a user's conversations,
//! changes to a conversation, receipts and a member's own settings. Reads go to the store;
//! membership is checked by the conversation's actor, the metadata cache.

use switchboard_engine::StoreError;
use switchboard_engine::direct::direct_pair;
use switchboard_engine::membership::{ConversationChange, Patch};
use switchboard_engine::model::{
    Conversation, ConversationKind, ConversationSnapshot, MAX_COUNTED_UNREAD, Member,
    MemberSettings, Message, MessageRef, ReadCursors, Role,
};
use switchboard_engine::rate_limit::ActionClass;
use switchboard_engine::time::Timestamp;
use switchboard_engine::validate::validate_new_conversation;

use crate::conversation::{ReceiptRequest, SendReceipt, Submission};
use switchboard_engine::Error;
use switchboard_engine::ids::{ClientId, ConversationId, Seq, UserId};

use super::System;
use crate::session::Identity;

/// A conversation as one of its members sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberView {
    /// The conversation and its members.
    pub snapshot: ConversationSnapshot,
    /// The member's receipt cursors.
    pub cursors: ReadCursors,
    /// Messages of others after the read cursor that are not deleted, counted up to
    /// [`MAX_COUNTED_UNREAD`].
    pub unread_count: usize,
    /// The newest seq.
    pub head: Seq,
    /// The member's own settings.
    pub settings: MemberSettings,
}

/// One conversation in a member's list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConversationListing {
    /// The conversation with the member's cursors, unread count and settings.
    pub view: MemberView,
    /// The newest message, if any.
    pub last_message: Option<Message>,
}

/// A change to a member's own settings; fields left `None` (or [`Patch::Keep`]) stay as they
/// are.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SettingsChange {
    /// Mute notifications until a time, or unmute.
    pub notifications_muted_until: Patch<Timestamp>,
    /// Archive or unarchive for oneself.
    pub archived: Option<bool>,
    /// Pin or unpin.
    pub pinned: Option<bool>,
}

/// What a change to a conversation over HTTP produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeResult {
    /// The event's reference in the seq stream.
    pub event: MessageRef,
    /// The conversation as it is now.
    pub snapshot: ConversationSnapshot,
    /// False when the `client_id` had been used before and nothing new was stored.
    pub created: bool,
}

/// [`System::conversation`]: membership is checked by the conversation's actor.
pub(super) async fn conversation(
    system: &System,
    identity: &Identity,
    conversation_id: ConversationId,
) -> Result<ConversationSnapshot, Error> {
    system
        .handles
        .conversations
        .inspect(
            System::key(identity, conversation_id),
            identity.user_id.clone(),
            system.wait(),
        )
        .await
}

/// How [`System::create_conversation`] does it.
pub(super) async fn create_conversation(
    system: &System,
    creator: &Identity,
    kind: ConversationKind,
    title: Option<String>,
    member_ids: Vec<switchboard_engine::ids::UserId>,
) -> Result<(ConversationSnapshot, bool), Error> {
    let mut others: Vec<switchboard_engine::ids::UserId> = Vec::new();
    let mut creator_listed = false;
    for user_id in member_ids {
        if user_id == creator.user_id {
            creator_listed = true;
        } else if !others.contains(&user_id) {
            others.push(user_id);
        }
    }
    validate_new_conversation(
        kind,
        title.as_deref(),
        others.len(),
        creator_listed && kind == ConversationKind::Direct,
        system.settings.max_members,
    )?;
    let now = system.ids.clock().now();
    let conversation = Conversation::new(
        system.ids.conversation_id(),
        creator.tenant_id.clone(),
        kind,
        title,
        creator.user_id.clone(),
        now,
    );
    let mut members = vec![Member {
        user_id: creator.user_id.clone(),
        role: Role::Owner,
        joined_at: now,
    }];
    members.extend(others.into_iter().map(|user_id| Member {
        user_id,
        role: Role::Member,
        joined_at: now,
    }));
    members.sort_by(|left, right| left.user_id.cmp(&right.user_id));
    let direct_with = direct_pair(kind, &members);
    if let Some((first, second)) = &direct_with
        && let Some(existing) = existing_direct(system, creator, first, second).await?
    {
        return Ok((existing, false));
    }
    match system
        .store
        .create_conversation(&conversation, &members)
        .await
    {
        Ok(()) => {}
        // Another request created this pair's conversation first: answer with it.
        Err(StoreError::AlreadyExists) if direct_with.is_some() => {
            let (first, second) = direct_with.as_ref().ok_or(Error::NotFound)?;
            let existing = existing_direct(system, creator, first, second).await?;
            return existing
                .map(|existing| (existing, false))
                .ok_or_else(|| Error::unavailable("the direct conversation could not be read"));
        }
        Err(error) => return Err(error.into()),
    }
    Ok((
        ConversationSnapshot {
            conversation,
            members,
        },
        true,
    ))
}

pub(super) async fn existing_direct(
    system: &System,
    creator: &Identity,
    first: &UserId,
    second: &UserId,
) -> Result<Option<ConversationSnapshot>, Error> {
    let Some(conversation_id) = system
        .store
        .direct_conversation(&creator.tenant_id, first, second)
        .await?
    else {
        return Ok(None);
    };
    Ok(system
        .store
        .load_conversation(&creator.tenant_id, conversation_id)
        .await?)
}

/// How [`System::member_view`] does it.
pub(super) async fn member_view(
    system: &System,
    identity: &Identity,
    conversation_id: ConversationId,
) -> Result<MemberView, Error> {
    let snapshot = system.conversation(identity, conversation_id).await?;
    let cursors = system
        .store
        .read_cursors(&identity.tenant_id, conversation_id, &identity.user_id)
        .await?;
    view_with(system, identity, snapshot, cursors).await
}

pub(super) async fn view_with(
    system: &System,
    identity: &Identity,
    snapshot: ConversationSnapshot,
    cursors: ReadCursors,
) -> Result<MemberView, Error> {
    let conversation_id = snapshot.conversation.conversation_id;
    let unread_count = system
        .store
        .count_unread(
            &identity.tenant_id,
            conversation_id,
            &identity.user_id,
            cursors.read,
            MAX_COUNTED_UNREAD,
        )
        .await?;
    let head = system
        .store
        .head(&identity.tenant_id, conversation_id)
        .await?;
    let settings = system
        .store
        .member_settings(&identity.tenant_id, conversation_id, &identity.user_id)
        .await?;
    Ok(MemberView {
        snapshot,
        cursors,
        unread_count,
        head,
        settings,
    })
}

/// How [`System::mark`] does it.
pub(super) async fn mark(
    system: &System,
    identity: &Identity,
    conversation_id: ConversationId,
    read: Option<Seq>,
    delivered: Option<Seq>,
) -> Result<MemberView, Error> {
    system.take_budget(identity, ActionClass::Signals).await?;
    let request = ReceiptRequest {
        user_id: identity.user_id.clone(),
        read,
        delivered,
        session_id: None,
    };
    let cursors = system
        .handles
        .conversations
        .receipt(
            System::key(identity, conversation_id),
            request,
            system.wait(),
        )
        .await?;
    let snapshot = system.conversation(identity, conversation_id).await?;
    view_with(system, identity, snapshot, cursors).await
}

/// How [`System::change`] does it.
pub(super) async fn change(
    system: &System,
    identity: &Identity,
    conversation_id: ConversationId,
    client_id: ClientId,
    change: ConversationChange,
) -> Result<ChangeResult, Error> {
    let SendReceipt {
        message_ref,
        created,
    } = super::messages::submit(
        system,
        identity,
        conversation_id,
        ActionClass::Changes,
        |actor_id, ack| Submission::change(actor_id, client_id, change, ack),
    )
    .await?;
    let snapshot = system
        .store
        .load_conversation(&identity.tenant_id, conversation_id)
        .await?
        .ok_or(Error::NotFound)?;
    Ok(ChangeResult {
        event: message_ref,
        snapshot,
        created,
    })
}

/// How [`System::my_conversations`] does it.
pub(super) async fn my_conversations(
    system: &System,
    identity: &Identity,
    after: Option<ConversationId>,
    limit: usize,
) -> Result<Vec<ConversationListing>, Error> {
    let tenant_id = &identity.tenant_id;
    let ids = system
        .store
        .conversations_of_user(tenant_id, &identity.user_id, after, limit)
        .await?;
    let mut listings = Vec::with_capacity(ids.len());
    for conversation_id in ids {
        // The index and the conversation are written in one batch, so a listed
        // conversation exists; skip rather than fail if it somehow does not.
        let Some(snapshot) = system
            .store
            .load_conversation(tenant_id, conversation_id)
            .await?
        else {
            continue;
        };
        let cursors = system
            .store
            .read_cursors(tenant_id, conversation_id, &identity.user_id)
            .await?;
        let view = view_with(system, identity, snapshot, cursors).await?;
        let last_message = system
            .store
            .messages_before(tenant_id, conversation_id, None, 1)
            .await?
            .pop();
        listings.push(ConversationListing { view, last_message });
    }
    Ok(listings)
}

/// How [`System::update_settings`] does it.
pub(super) async fn update_settings(
    system: &System,
    identity: &Identity,
    conversation_id: ConversationId,
    change: SettingsChange,
) -> Result<MemberSettings, Error> {
    system.conversation(identity, conversation_id).await?;
    let tenant_id = &identity.tenant_id;
    let mut settings = system
        .store
        .member_settings(tenant_id, conversation_id, &identity.user_id)
        .await?;
    settings.notifications_muted_until = match change.notifications_muted_until {
        Patch::Keep => settings.notifications_muted_until,
        Patch::Clear => None,
        Patch::Set(until) => Some(until),
    };
    settings.archived = change.archived.unwrap_or(settings.archived);
    settings.pinned = change.pinned.unwrap_or(settings.pinned);
    system
        .store
        .set_member_settings(tenant_id, conversation_id, &identity.user_id, settings)
        .await?;
    Ok(settings)
}
