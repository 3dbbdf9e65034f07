//! The history service behind [`System`]: pages of a conversation's messages in either
//! direction, one message, a thread's replies and the moderation log, all read from the store
//! after the conversation's actor confirmed membership, each without the messages the caller
//! deleted for themself; and that deletion ("delete for me") itself.

use foldhash::HashMap;
use switchboard_engine::Error;
use switchboard_engine::ids::{ConversationId, MediaId, MessageId, Seq};
use switchboard_engine::media::MediaRecord;
use switchboard_engine::model::{Message, Role};
use switchboard_engine::operations::ConversationEvent;
use switchboard_engine::permissions::{self, Action};
use switchboard_engine::rate_limit::ActionClass;

use super::System;
use crate::session::Identity;
use crate::uploads::bounded;

/// A page of history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryPage {
    /// The messages, in the page's direction.
    pub messages: Vec<Message>,
    /// Where the next page starts (the last seq read), when there may be one.
    pub next: Option<Seq>,
}

/// How [`System::moderation_log`] does it.
pub(super) async fn moderation_log(
    system: &System,
    identity: &Identity,
    conversation_id: ConversationId,
    before: Option<Seq>,
    limit: usize,
) -> Result<Vec<ConversationEvent>, Error> {
    let snapshot = system.conversation(identity, conversation_id).await?;
    let role = snapshot
        .member(&identity.user_id)
        .map(|member| member.role)
        .ok_or(Error::NotMember)?;
    permissions::check(
        snapshot.conversation.kind,
        role,
        Action::ReadModerationLog,
        None,
        None,
    )?;
    Ok(system
        .store
        .moderation_log(&identity.tenant_id, conversation_id, before, limit)
        .await?)
}

/// How [`System::message`] does it.
pub(super) async fn message(
    system: &System,
    identity: &Identity,
    conversation_id: ConversationId,
    message_id: MessageId,
) -> Result<(Message, Role), Error> {
    let snapshot = system.conversation(identity, conversation_id).await?;
    let role = snapshot
        .member(&identity.user_id)
        .map(|member| member.role)
        .ok_or(Error::NotMember)?;
    let message = system
        .store
        .message_by_id(&identity.tenant_id, conversation_id, message_id)
        .await?
        .ok_or(Error::NotFound)?;
    let hidden = system
        .store
        .hidden_messages(&identity.tenant_id, conversation_id, &identity.user_id)
        .await?;
    if hidden.contains(&message_id) {
        return Err(Error::NotFound);
    }
    let mut messages = [message];
    refresh_attachments(system, identity, &mut messages).await?;
    let [message] = messages;
    Ok((message, role))
}

/// How [`System::thread`] does it.
pub(super) async fn thread(
    system: &System,
    identity: &Identity,
    conversation_id: ConversationId,
    root: MessageId,
    after: Seq,
    limit: usize,
) -> Result<(Message, HistoryPage), Error> {
    let (root_message, _) = system.message(identity, conversation_id, root).await?;
    let replies = system
        .store
        .thread_replies(&identity.tenant_id, conversation_id, root, after, limit)
        .await?;
    let page = without_hidden(system, identity, conversation_id, replies, limit).await?;
    Ok((root_message, page))
}

/// Where a page of history starts, and so which way it reads.
pub(super) enum PageStart {
    /// Newest first, below this seq (or from the newest).
    Before(Option<Seq>),
    /// Oldest first, after this seq.
    After(Seq),
}

/// How [`System::history_before`] and [`System::history_after`] do it.
pub(super) async fn page(
    system: &System,
    identity: &Identity,
    conversation_id: ConversationId,
    start: PageStart,
    limit: usize,
) -> Result<HistoryPage, Error> {
    system.conversation(identity, conversation_id).await?;
    let (store, tenant_id) = (&system.store, &identity.tenant_id);
    let messages = match start {
        PageStart::Before(before) => {
            store
                .messages_before(tenant_id, conversation_id, before, limit)
                .await?
        }
        PageStart::After(after) => {
            store
                .messages_after(tenant_id, conversation_id, after, limit)
                .await?
        }
    };
    without_hidden(system, identity, conversation_id, messages, limit).await
}

/// A page read from storage, minus the caller's hidden messages; `next` is where the next
/// page starts, when the page read was full.
pub(super) async fn without_hidden(
    system: &System,
    identity: &Identity,
    conversation_id: ConversationId,
    mut messages: Vec<Message>,
    limit: usize,
) -> Result<HistoryPage, Error> {
    let next = if messages.len() == limit {
        messages.last().map(|last| last.seq)
    } else {
        None
    };
    let hidden = system
        .store
        .hidden_messages(&identity.tenant_id, conversation_id, &identity.user_id)
        .await?;
    messages.retain(|message| !hidden.contains(&message.message_id));
    refresh_attachments(system, identity, &mut messages).await?;
    Ok(HistoryPage { messages, next })
}

/// Brings the attachments of `messages` up to date with their media records: thumbnails made
/// since, and media deleted since (shown as deleted). Each media item is read once.
///
/// # Errors
/// [`Error::Unavailable`] if the media store fails or is slow.
pub(super) async fn refresh_attachments(
    system: &System,
    identity: &Identity,
    messages: &mut [Message],
) -> Result<(), Error> {
    let mut current: HashMap<MediaId, Option<MediaRecord>> = HashMap::default();
    for message in messages.iter_mut() {
        for attachment in &mut message.attachments {
            let record = match current.get(&attachment.media_id) {
                Some(record) => record,
                None => {
                    let record = bounded(
                        system.settings.call_timeout,
                        "reading an attachment's media",
                        system.media.media(&identity.tenant_id, attachment.media_id),
                    )
                    .await?;
                    current.entry(attachment.media_id).or_insert(record)
                }
            };
            attachment.refresh(record.as_ref());
        }
    }
    Ok(())
}

/// How [`System::hide_for_me`] does it.
pub(super) async fn hide_for_me(
    system: &System,
    identity: &Identity,
    conversation_id: ConversationId,
    message_id: MessageId,
) -> Result<(), Error> {
    system
        .take_budget(identity, ActionClass::Operations)
        .await?;
    system
        .handles
        .conversations
        .hide(
            System::key(identity, conversation_id),
            identity.user_id.clone(),
            message_id,
            system.wait(),
        )
        .await
}
