//! The wire bodies shared by WebSocket events and HTTP responses: messages, reactions,
//! presence, ICE servers, members and moderation entries, and the event envelope. Each is a
//! borrowed view of an engine value, serialized once where it is sent; each derives its
//! OpenAPI schema for the HTTP document.

use serde::Serialize;
use switchboard_engine::event::PresenceEntry;
use switchboard_engine::media::{Attachment, Dimensions};
use switchboard_engine::model::{Member, Message};
use switchboard_engine::operations::{ConversationEvent, ConversationEventBody};
use switchboard_engine::ports::IceServers;
use switchboard_engine::time::Timestamp;
use utoipa::ToSchema;

fn is_zero(count: &u32) -> bool {
    *count == 0
}

/// The wire form of a deletion.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeletionBody<'a> {
    /// `for_everyone` or `hard`.
    pub mode: &'static str,
    /// Who deleted the message.
    pub deleted_by: &'a str,
    /// When, milliseconds since the epoch.
    pub deleted_at: u64,
}

/// The wire form of one emoji's reactions.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReactionBody<'a> {
    /// The emoji.
    pub emoji: &'a str,
    /// How many users reacted with it.
    pub count: usize,
    /// Who, in id order.
    pub user_ids: Vec<&'a str>,
}

/// The wire form of a forwarded message's origin.
#[derive(Debug, Serialize, ToSchema)]
pub struct ForwardedFromBody<'a> {
    /// The original's conversation.
    pub conversation_id: String,
    /// The original message.
    pub message_id: String,
    /// Who sent the original.
    pub sender_id: &'a str,
}

/// Width and height in pixels.
#[derive(Debug, Serialize, ToSchema)]
pub struct DimensionsBody {
    /// Width.
    pub width: u32,
    /// Height.
    pub height: u32,
}

impl DimensionsBody {
    /// The wire form of `dimensions`.
    pub fn new(dimensions: Dimensions) -> Self {
        DimensionsBody {
            width: dimensions.width,
            height: dimensions.height,
        }
    }
}

/// The wire form of one thumbnail of an attachment, served at
/// `GET /v1/media/{media_id}/thumbnail?size={size}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct AttachedThumbnailBody<'a> {
    /// The longest edge it was made for, in pixels.
    pub size: u32,
    /// Its width and height.
    pub dimensions: DimensionsBody,
    /// Its MIME type.
    pub content_type: &'a str,
}

/// The wire form of a media item a message attaches. Its bytes are at `GET /v1/media/{media_id}`
/// (or a signed link from `POST /v1/media/{media_id}/links`) for anyone who can read the message.
#[derive(Debug, Serialize, ToSchema)]
pub struct AttachmentBody<'a> {
    /// The media.
    pub media_id: String,
    /// Its file name.
    pub file_name: &'a str,
    /// Its MIME type, as sniffed from its bytes.
    pub content_type: &'a str,
    /// Its length in bytes.
    pub size_bytes: u64,
    /// Image or video dimensions, where known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dimensions: Option<DimensionsBody>,
    /// Its thumbnails, once made.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub thumbnails: Vec<AttachedThumbnailBody<'a>>,
    /// Present, `true`, once the media was deleted: the name and type stay for display, the
    /// bytes are gone.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub deleted: bool,
}

impl<'a> AttachmentBody<'a> {
    /// The wire form of `attachment`.
    pub fn new(attachment: &'a Attachment) -> Self {
        AttachmentBody {
            media_id: attachment.media_id.to_string(),
            file_name: &attachment.file_name,
            content_type: &attachment.mime,
            size_bytes: attachment.size_bytes,
            dimensions: attachment.dimensions.map(DimensionsBody::new),
            thumbnails: attachment
                .thumbnails
                .iter()
                .map(|thumbnail| AttachedThumbnailBody {
                    size: thumbnail.size,
                    dimensions: DimensionsBody::new(thumbnail.dimensions),
                    content_type: &thumbnail.mime,
                })
                .collect(),
            deleted: attachment.deleted,
        }
    }
}

/// The wire form of a stored message, shared by WebSocket events and HTTP responses. Optional
/// fields are absent when empty (no reply, never edited, not deleted, no reactions, no thread).
#[derive(Debug, Serialize, ToSchema)]
pub struct MessageBody<'a> {
    /// The conversation.
    pub conversation_id: String,
    /// Position in the conversation.
    pub seq: u64,
    /// Server-assigned id.
    pub message_id: String,
    /// Sender.
    pub sender_id: &'a str,
    /// Sender's idempotency key.
    pub client_id: &'a str,
    /// Body (empty once deleted).
    pub text: &'a str,
    /// Replied-to message id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<String>,
    /// The thread this message was posted in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thread_root: Option<String>,
    /// The original, for a forwarded copy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub forwarded_from: Option<ForwardedFromBody<'a>>,
    /// The media it attaches, in the order the sender listed them (gone once the message is
    /// deleted).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<AttachmentBody<'a>>,
    /// Acceptance time, milliseconds since the epoch.
    pub ts: u64,
    /// When the text was last edited.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub edited_at: Option<u64>,
    /// Present once deleted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deleted: Option<DeletionBody<'a>>,
    /// Reactions, in the order each emoji was first used.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub reactions: Vec<ReactionBody<'a>>,
    /// Replies in the thread under this message.
    #[serde(skip_serializing_if = "is_zero")]
    pub thread_reply_count: u32,
    /// When the last of them was posted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thread_last_reply_at: Option<u64>,
    /// For a reply in a thread, its number there (the root's count right after it).
    #[serde(skip_serializing_if = "is_zero")]
    pub thread_position: u32,
}

impl<'a> MessageBody<'a> {
    /// The wire form of `message`.
    pub fn new(message: &'a Message) -> Self {
        let state = &message.state;
        MessageBody {
            conversation_id: message.conversation_id.to_string(),
            seq: message.seq.get(),
            message_id: message.message_id.to_string(),
            sender_id: message.sender_id.as_str(),
            client_id: message.client_id.as_str(),
            text: &message.text,
            reply_to: message.reply_to.map(|reply_to| reply_to.to_string()),
            thread_root: message.thread_root.map(|root| root.to_string()),
            forwarded_from: message
                .forwarded_from
                .as_ref()
                .map(|origin| ForwardedFromBody {
                    conversation_id: origin.conversation_id.to_string(),
                    message_id: origin.message_id.to_string(),
                    sender_id: origin.sender_id.as_str(),
                }),
            attachments: message
                .attachments
                .iter()
                .map(AttachmentBody::new)
                .collect(),
            ts: message.ts.as_millis(),
            edited_at: state.edited_at.map(|edited_at| edited_at.as_millis()),
            deleted: state.deleted.as_ref().map(|deletion| DeletionBody {
                mode: deletion.mode.as_str(),
                deleted_by: deletion.deleted_by.as_str(),
                deleted_at: deletion.deleted_at.as_millis(),
            }),
            reactions: state
                .reactions
                .iter()
                .map(|reaction| ReactionBody {
                    emoji: reaction.emoji.as_str(),
                    count: reaction.user_ids.len(),
                    user_ids: reaction.user_ids.iter().map(|user| user.as_str()).collect(),
                })
                .collect(),
            thread_reply_count: state.thread_reply_count,
            thread_last_reply_at: state.thread_last_reply_at.map(|at| at.as_millis()),
            thread_position: state.thread_position,
        }
    }
}

/// The fields every event frame carries.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventEnvelope<'a> {
    /// The conversation.
    pub conversation_id: String,
    /// The event's position in the conversation.
    pub seq: u64,
    /// The event's id.
    pub event_id: String,
    /// Who caused it.
    pub actor_id: &'a str,
    /// The actor's idempotency key.
    pub client_id: &'a str,
    /// When, milliseconds since the epoch.
    pub ts: u64,
    /// The message it is about (events about messages only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
}

/// One entry of `iceServers`, in the shape of WebRTC's `RTCIceServer`.
#[derive(Debug, Serialize, ToSchema)]
pub struct IceServerEntry<'a> {
    /// The server URIs.
    pub urls: &'a [String],
    /// The TURN username (absent for STUN).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<&'a str>,
    /// The TURN password (absent for STUN).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credential: Option<&'a str>,
}

/// TURN credentials in both shapes clients expect: the TURN REST API's
/// `{username, password, ttl, uris}` and WebRTC's `{iceServers: [...]}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct IceServersBody<'a> {
    /// `<expiry unix seconds>:<tenant>:<user>:<key id>` (tenant and user percent-encoded, `:` as
    /// `%3A` and `%` as `%25`; the key id names the signing secret).
    pub username: &'a str,
    /// `base64(HMAC-SHA1(secret, username))`.
    pub password: &'a str,
    /// Seconds the credential is valid for.
    pub ttl: u64,
    /// TURN server URIs.
    pub uris: &'a [String],
    /// The same, as `RTCIceServer`s: the TURN servers with the credential, then the STUN
    /// servers. Entries without URIs are left out.
    #[serde(rename = "iceServers")]
    pub ice_servers: Vec<IceServerEntry<'a>>,
}

impl<'a> IceServersBody<'a> {
    /// The wire form of `servers`.
    pub fn new(servers: &'a IceServers) -> Self {
        let mut ice_servers = Vec::new();
        if !servers.turn_uris.is_empty() {
            ice_servers.push(IceServerEntry {
                urls: &servers.turn_uris,
                username: Some(&servers.username),
                credential: Some(&servers.password),
            });
        }
        if !servers.stun_uris.is_empty() {
            ice_servers.push(IceServerEntry {
                urls: &servers.stun_uris,
                username: None,
                credential: None,
            });
        }
        IceServersBody {
            username: &servers.username,
            password: &servers.password,
            ttl: servers.ttl_secs,
            uris: &servers.turn_uris,
            ice_servers,
        }
    }
}

/// The wire form of one user's presence.
#[derive(Debug, Serialize, ToSchema)]
pub struct PresenceBody<'a> {
    /// The user.
    pub user_id: &'a str,
    /// `online`, `away` or `offline`.
    pub status: &'static str,
    /// For `offline`: when the user's last session closed (ms since the epoch); absent if not
    /// seen since the server started.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_seen: Option<u64>,
}

impl<'a> PresenceBody<'a> {
    /// The wire form of `entry`.
    pub fn new(entry: &'a PresenceEntry) -> Self {
        PresenceBody {
            user_id: entry.user_id.as_str(),
            status: entry.status.as_str(),
            last_seen: entry.last_seen.map(Timestamp::as_millis),
        }
    }
}

/// The wire form of a member in `member.joined`.
#[derive(Debug, Serialize)]
pub struct MemberEventBody<'a> {
    /// The member.
    pub user_id: &'a str,
    /// Their role.
    pub role: &'static str,
    /// When they joined.
    pub joined_at: u64,
}

impl<'a> MemberEventBody<'a> {
    pub(super) fn new(member: &'a Member) -> Self {
        MemberEventBody {
            user_id: member.user_id.as_str(),
            role: member.role.as_str(),
            joined_at: member.joined_at.as_millis(),
        }
    }
}

/// The wire form of a `moderation.*` event; also an entry of the HTTP moderation log.
#[derive(Debug, Serialize, ToSchema)]
pub struct ModerationEventBody<'a> {
    /// The event's envelope: seq, event id, who (`actor_id`), when.
    #[serde(flatten)]
    #[schema(inline)]
    pub envelope: EventEnvelope<'a>,
    /// `kick`, `ban`, `unban`, `mute` or `unmute` (the event type says it too).
    pub action: &'static str,
    /// Whom.
    pub user_id: &'a str,
    /// When a ban or mute ends on its own, milliseconds since the epoch; absent until lifted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub until: Option<u64>,
    /// Why, as the moderator wrote it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'a str>,
}

impl<'a> ModerationEventBody<'a> {
    /// The wire form of a moderation event; `None` for any other event.
    pub fn from_event(event: &'a ConversationEvent) -> Option<Self> {
        let ConversationEventBody::Moderated {
            action,
            user_id,
            until,
            reason,
        } = &event.body
        else {
            return None;
        };
        Some(ModerationEventBody {
            envelope: EventEnvelope::new(event),
            action: action.as_str(),
            user_id: user_id.as_str(),
            until: until.map(|until| until.as_millis()),
            reason: reason.as_deref(),
        })
    }
}

impl<'a> EventEnvelope<'a> {
    pub(super) fn new(event: &'a ConversationEvent) -> Self {
        EventEnvelope {
            conversation_id: event.conversation_id.to_string(),
            seq: event.seq.get(),
            event_id: event.event_id.to_string(),
            actor_id: event.actor_id.as_str(),
            client_id: event.client_id.as_str(),
            ts: event.ts.as_millis(),
            message_id: event
                .body
                .message_id()
                .map(|message_id| message_id.to_string()),
        }
    }
}
