//! The conversation actor's subscribers and membership: joining a session (with its hidden
//! messages and a replay from `since`), hiding a message for one member, re-reading membership
//! when another node may have changed it, the cluster bus's notices, and dropping subscribers.
//!
//! # Several nodes
//!
//! With a shared store (MongoDB) each node may run an actor for the same conversation. They
//! keep each other current through the `ClusterBus` port: an actor publishes `Stored { head }`
//! for every entry its own appends stored (including one a resync had already read past before
//! the append returned, `PersistReport::stored`: the appending node is the only one that
//! announces a seq, and one a failed append turns out to have stored) and `Typing` for every
//! typing signal it passes on, and it subscribes, before it reads anything at load, to the
//! other nodes' notices. A `Stored` notice above its durable head makes it resync: read the head
//! and the conversation from the store (so member and role changes made elsewhere apply here)
//! and catch its subscribers up from the store, in seq order; a session that catches up to the
//! head after its user was removed elsewhere is unsubscribed once the removal event has been
//! delivered. A join, a send or a read refused as `not_member` re-reads the conversation first,
//! since the member may have been added through another node whose notice has not arrived.
//! When the bus reconnects, every actor resyncs (notices are at most once). The actor is the
//! conversation-metadata cache, and these notices are its invalidation.

use ractor::ActorRef;
use switchboard_engine::Error;
use switchboard_engine::event::ServerEvent;
use switchboard_engine::ids::{MessageId, SessionId, UserId};
use switchboard_engine::ports::ClusterNotice;

use super::{ConversationActor, ConversationMsg, JoinReply, JoinRequest, Ready, SubscriberLink};

impl ConversationActor {
    /// In a deployment of several nodes, reads the conversation again before refusing someone
    /// as not a member: they may have been added through another node whose notice has not
    /// arrived yet. Returns whether it read (on a single node this actor's view is complete).
    pub(super) async fn refresh_membership(
        &self,
        myself: &ActorRef<ConversationMsg>,
        ready: &mut Ready,
    ) -> bool {
        if self.context.cluster.is_none() {
            return false;
        }
        self.resync(myself, ready).await;
        true
    }

    /// What another node of the deployment published about this conversation.
    pub(super) async fn handle_cluster(
        &self,
        myself: &ActorRef<ConversationMsg>,
        ready: &mut Ready,
        notice: ClusterNotice,
    ) {
        match notice {
            // Read from the shared store what this actor has not seen (resync also reloads the
            // conversation, so member and role changes made on other nodes apply here). A
            // notice at or below the durable head changes nothing.
            ClusterNotice::Stored { head } => {
                if head > ready.core.durable_head() {
                    self.resync(myself, ready).await;
                }
            }
            // The typist's node checked membership and coalesced; a user who is no longer a
            // member here (a change not yet heard of) is not passed on.
            ClusterNotice::Typing { user_id, started } => {
                if ready.core.check_reader(&user_id).is_ok() {
                    self.pass_on_typing(ready, &user_id, started);
                }
            }
            ClusterNotice::Recording(notice) => self.pass_on_recording(myself, ready, &notice),
        }
    }

    /// Loads the messages `user_id` hid for themself, once per loaded conversation.
    pub(super) async fn load_hidden(
        &self,
        ready: &mut Ready,
        user_id: &UserId,
    ) -> Result<(), Error> {
        if ready.hidden.contains_key(user_id) {
            return Ok(());
        }
        let hidden = self
            .context
            .store
            .hidden_messages(self.tenant_id(), self.conversation_id(), user_id)
            .await?;
        ready.hidden.insert(user_id.clone(), hidden);
        Ok(())
    }

    pub(super) async fn handle_hide(
        &self,
        ready: &mut Ready,
        user_id: UserId,
        message_id: MessageId,
    ) -> Result<(), Error> {
        ready.core.check_reader(&user_id)?;
        self.context
            .store
            .message_by_id(self.tenant_id(), self.conversation_id(), message_id)
            .await?
            .ok_or(Error::NotFound)?;
        self.load_hidden(ready, &user_id).await?;
        self.context
            .store
            .hide_message(
                self.tenant_id(),
                self.conversation_id(),
                &user_id,
                message_id,
            )
            .await?;
        ready.hidden.entry(user_id).or_default().insert(message_id);
        Ok(())
    }

    pub(super) async fn handle_join(
        &self,
        myself: &ActorRef<ConversationMsg>,
        ready: &mut Ready,
        join: JoinRequest,
        reply: JoinReply,
    ) {
        let JoinRequest {
            session_id,
            user_id,
            since,
            request_id,
            announce,
            outbound,
            session,
        } = join;
        // A session joining again replaces its old subscription without a lost-notification.
        if let Some(mut old_link) = ready.links.remove(&session_id) {
            old_link.armed = false;
        }
        if let Err(error) = self.load_hidden(ready, &user_id).await {
            let _ = reply.send(Err(error));
            return;
        }
        let mut joined = ready.core.join(session_id, user_id.clone(), since);
        if matches!(joined, Err(Error::NotMember)) && self.refresh_membership(myself, ready).await {
            joined = ready.core.join(session_id, user_id.clone(), since);
        }
        let outcome = match joined {
            Ok(outcome) => outcome,
            Err(error) => {
                let _ = reply.send(Err(error));
                return;
            }
        };
        if announce {
            let frame = self.context.encoder.encode(&ServerEvent::Joined {
                request_id: request_id.as_ref(),
                conversation_id: self.conversation_id(),
                head: outcome.head,
            });
            if outbound.push(frame).is_err() {
                ready.core.leave(session_id);
                let _ = reply.send(Err(Error::unavailable("the connection is closing")));
                return;
            }
        }
        let start = outcome
            .catch_up
            .map_or(outcome.head, |catch_up| catch_up.after);
        ready.links.insert(
            session_id,
            SubscriberLink {
                outbound,
                user_id,
                session,
                conversation_id: self.conversation_id(),
                last_pushed: start,
                armed: true,
            },
        );
        let _ = reply.send(Ok((outcome.head, myself.clone())));
        if let Some(catch_up) = outcome.catch_up {
            self.start_catch_up(myself, ready, catch_up);
        }
    }
}

/// Removes a subscriber without telling its session (it is being disconnected anyway).
/// Ends the subscription of a session that caught up to the head when its user is no longer a
/// member: they were removed on another node, and the catch-up just delivered the event that
/// says so (a removal made through this node ends subscriptions when it is stored).
pub(super) fn end_if_no_longer_member(ready: &mut Ready, session_id: SessionId) {
    let removed = ready
        .links
        .get(&session_id)
        .is_some_and(|link| ready.core.snapshot().member(&link.user_id).is_none());
    if removed {
        drop_subscriber(ready, session_id);
    }
}

pub(super) fn drop_subscriber(ready: &mut Ready, session_id: SessionId) {
    ready.core.leave(session_id);
    if let Some(mut link) = ready.links.remove(&session_id) {
        link.armed = false;
    }
}
