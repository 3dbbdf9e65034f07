//! The conversation actor's calls: it owns the conversation's [`CallBoard`](switchboard_engine::call::CallBoard) (the pure rules in
//! `engine::call`) and does what the rules decide. Notices go only to the sessions they
//! concern: ringing to the invitees, joins, departures and refusals to the call's participants,
//! offers, answers and ICE candidates to the one participant they are for. The start and end of
//! every call are stored in the conversation's seq stream (`call.started`, `call.ended`), so
//! every member sees them in history. Recording consent and metadata live next door, in
//! `recordings`. Timers are messages to the actor itself ([`CallMsg`]): the ringing time, the
//! consent deadline of a recording, and the grace period of a participant whose sessions all
//! went away.
//!
//! Calls are not an actor of their own: [`CallMsg`] travels in the conversation's mailbox, so
//! every call notice is ordered with the joins, leaves, membership changes and stored entries
//! around it, and the board reads the conversation's subscribers and members directly.

use std::collections::BTreeSet;

use ractor::ActorRef;
use switchboard_engine::Error;
use switchboard_engine::call::{CallAction, CallEnded, CallNotice, Departure};
use switchboard_engine::event::ServerEvent;
use switchboard_engine::ids::{CallId, ClientId, RecordingId, RequestId, UserId};
use switchboard_engine::operations::ConversationEventBody;

use tokio::time::Instant;

use super::{AckGuard, AckTarget, ConversationActor, ConversationMsg, Ready};
use crate::outbound::Outbound;

/// A call action from a member's session.
pub struct CallRequest {
    /// Who acts.
    pub user_id: UserId,
    /// What.
    pub action: CallAction,
    /// The session's queue (for the reply or an error frame) and the request id.
    pub reply_to: (Outbound, Option<RequestId>),
}

/// The conversation actor's call messages: a member's action and the call timers, which the
/// actor sends itself with `send_after`. They arrive through the conversation's own mailbox
/// (as [`ConversationMsg::Call`]), so they are ordered with its joins, leaves and stored
/// entries: a call notice never overtakes the subscription or membership change it depends on.
pub enum CallMsg {
    /// A member's call action (passed on to the sessions it concerns; a call's start and end
    /// are stored).
    Request(Box<CallRequest>),
    /// A call's ringing time is up.
    RingingExpired {
        /// Which call.
        call_id: CallId,
    },
    /// A recording's consent deadline passed.
    RecordingDeadline {
        /// Which call.
        call_id: CallId,
        /// Which recording.
        recording_id: RecordingId,
    },
    /// A call participant's grace period after losing every session is over.
    GraceExpired {
        /// Which call.
        call_id: CallId,
        /// Who.
        user_id: UserId,
    },
}

impl ConversationActor {
    /// Handles one call message.
    pub(super) fn handle_call_msg(
        &self,
        myself: &ActorRef<ConversationMsg>,
        ready: &mut Ready,
        message: CallMsg,
    ) {
        match message {
            CallMsg::Request(request) => {
                ready.last_activity = Instant::now();
                self.handle_call(myself, ready, *request);
            }
            CallMsg::RingingExpired { call_id } => {
                self.handle_call_ringing_expired(myself, ready, call_id);
            }
            CallMsg::RecordingDeadline {
                call_id,
                recording_id,
            } => self.handle_recording_deadline(myself, ready, call_id, recording_id),
            CallMsg::GraceExpired { call_id, user_id } => {
                self.handle_call_grace_expired(myself, ready, call_id, user_id);
            }
        }
    }

    /// Applies a member's call action.
    pub(super) fn handle_call(
        &self,
        myself: &ActorRef<ConversationMsg>,
        ready: &mut Ready,
        request: CallRequest,
    ) {
        let CallRequest {
            user_id,
            action,
            reply_to: (outbound, request_id),
        } = request;
        if let Err(error) = ready.core.check_reader(&user_id) {
            self.push_call_error(&outbound, request_id.as_ref(), &error);
            return;
        }
        // Call notices reach joined sessions only, and a participant with none leaves after
        // the grace period: calling or answering takes a joined session.
        let joins_the_call = matches!(
            action,
            CallAction::Invite { .. } | CallAction::Accept { .. }
        );
        if joins_the_call && !ready.links.values().any(|link| link.user_id == user_id) {
            let error = Error::invalid(
                "conversation_id",
                "join the conversation before calling or answering",
            );
            self.push_call_error(&outbound, request_id.as_ref(), &error);
            return;
        }
        let now = self.context.clock.now();
        // Who is in the call before this action, so that a call the action ends still tells them.
        let participants: BTreeSet<UserId> = ready
            .calls
            .active()
            .map(|call| call.participants.clone())
            .unwrap_or_default();
        let result = match action {
            CallAction::Invite { kind } => {
                let call_id = CallId::from_parts(now.as_millis(), fastrand::u128(..));
                let members: Vec<UserId> = ready
                    .core
                    .snapshot()
                    .members
                    .iter()
                    .map(|member| member.user_id.clone())
                    .collect();
                let ringing_ms = millis(self.context.settings.call_ringing_timeout);
                match ready
                    .calls
                    .invite(call_id, user_id.clone(), kind, members, now, ringing_ms)
                {
                    Ok(call) => {
                        let ringing: Vec<UserId> = call.ringing.iter().cloned().collect();
                        let invited = CallNotice::Invited {
                            kind,
                            ringing: ringing.clone(),
                        };
                        let _ = outbound.push(self.context.encoder.encode(&ServerEvent::Call {
                            request_id: request_id.as_ref(),
                            conversation_id: self.conversation_id(),
                            call_id,
                            from: &user_id,
                            notice: &invited,
                        }));
                        let ringing_notice = CallNotice::Ringing {
                            kind,
                            expires_in_ms: ringing_ms,
                        };
                        self.notify(ready, call_id, &user_id, &ringing_notice, &ringing);
                        self.store_call_record(
                            myself,
                            ready,
                            user_id.clone(),
                            call_id,
                            "started",
                            ConversationEventBody::CallStarted { call_id, kind },
                        );
                        myself.send_after(self.context.settings.call_ringing_timeout, move || {
                            ConversationMsg::Call(CallMsg::RingingExpired { call_id })
                        });
                        Ok(())
                    }
                    Err(error) => Err(error),
                }
            }
            CallAction::Accept { call_id } => {
                ready.calls.accept(call_id, &user_id, now).map(|recording| {
                    let told: Vec<UserId> = ready
                        .calls
                        .active()
                        .map(|call| call.participants.iter().cloned().collect())
                        .unwrap_or_default();
                    self.notify(ready, call_id, &user_id, &CallNotice::Accepted, &told);
                    if let Some(recording_id) = recording {
                        // A recorded call: the newcomer must consent too.
                        let requested_by = ready
                            .calls
                            .active()
                            .and_then(|call| call.recording.as_ref())
                            .map_or_else(
                                || user_id.clone(),
                                |recording| recording.requested_by.clone(),
                            );
                        self.ask_consent(
                            myself,
                            ready,
                            call_id,
                            recording_id,
                            &requested_by,
                            std::slice::from_ref(&user_id),
                        );
                    }
                })
            }
            CallAction::RequestRecording { call_id } => {
                let recording_id = RecordingId::from_parts(now.as_millis(), fastrand::u128(..));
                let consent_ms = millis(self.context.settings.call_recording_consent_timeout);
                ready
                    .calls
                    .request_recording(call_id, &user_id, recording_id, now, consent_ms)
                    .map(|asked| {
                        let requested = CallNotice::RecordingRequested {
                            recording_id,
                            asked: asked.clone(),
                        };
                        let _ = outbound.push(self.context.encoder.encode(&ServerEvent::Call {
                            request_id: request_id.as_ref(),
                            conversation_id: self.conversation_id(),
                            call_id,
                            from: &user_id,
                            notice: &requested,
                        }));
                        self.ask_consent(myself, ready, call_id, recording_id, &user_id, &asked);
                    })
            }
            CallAction::AnswerRecording {
                call_id,
                recording_id,
                granted,
            } => ready
                .calls
                .answer_recording(call_id, recording_id, &user_id, granted, now)
                .map(|change| {
                    if let Some(change) = change {
                        self.store_recording_change(
                            myself,
                            ready,
                            call_id,
                            user_id.clone(),
                            change,
                        );
                    }
                }),
            CallAction::StopRecording {
                call_id,
                recording_id,
            } => ready
                .calls
                .stop_recording(call_id, recording_id, &user_id, now)
                .map(|change| {
                    self.store_recording_change(myself, ready, call_id, user_id.clone(), change);
                }),
            CallAction::Reject { call_id } => {
                ready.calls.reject(call_id, &user_id, now).map(|ended| {
                    let mut told: Vec<UserId> = participants.into_iter().collect();
                    told.push(user_id.clone());
                    self.notify(ready, call_id, &user_id, &CallNotice::Rejected, &told);
                    if let Some(ended) = ended {
                        self.store_call_end(myself, ready, user_id.clone(), ended);
                    }
                })
            }
            CallAction::Cancel { call_id } => ready
                .calls
                .cancel(call_id, &user_id, now)
                .map(|ended| self.store_call_end(myself, ready, user_id.clone(), ended)),
            CallAction::HangUp { call_id } => {
                ready
                    .calls
                    .hang_up(call_id, &user_id, now)
                    .map(|departure| {
                        self.after_departure(
                            myself,
                            ready,
                            call_id,
                            &user_id,
                            participants,
                            departure,
                        );
                    })
            }
            CallAction::Signal {
                call_id,
                to,
                payload,
            } => ready.calls.check_signal(call_id, &user_id, &to).map(|()| {
                let notice = CallNotice::Signal(payload);
                self.notify(ready, call_id, &user_id, &notice, std::slice::from_ref(&to));
            }),
        };
        if let Err(error) = result {
            self.push_call_error(&outbound, request_id.as_ref(), &error);
        }
    }

    /// The ringing time of `call_id` is up.
    pub(super) fn handle_call_ringing_expired(
        &self,
        myself: &ActorRef<ConversationMsg>,
        ready: &mut Ready,
        call_id: CallId,
    ) {
        let Some(initiator) = ready
            .calls
            .active()
            .filter(|call| call.call_id == call_id)
            .map(|call| call.initiator.clone())
        else {
            return;
        };
        let (_, ended) = ready
            .calls
            .ringing_expired(call_id, self.context.clock.now());
        if let Some(ended) = ended {
            self.store_call_end(myself, ready, initiator, ended);
        }
    }

    /// Starts the grace period of every participant of the active call who has no session
    /// joined here any more (once each).
    pub(super) fn watch_call_participants(
        &self,
        myself: &ActorRef<ConversationMsg>,
        ready: &mut Ready,
    ) {
        let Some(call) = ready.calls.active() else {
            return;
        };
        let call_id = call.call_id;
        let absent: Vec<UserId> = call
            .participants
            .iter()
            .filter(|user_id| !ready.links.values().any(|link| link.user_id == **user_id))
            .cloned()
            .collect();
        for user_id in absent {
            if ready.call_grace.insert(user_id.clone()) {
                myself.send_after(self.context.settings.call_disconnect_grace, move || {
                    ConversationMsg::Call(CallMsg::GraceExpired { call_id, user_id })
                });
            }
        }
    }

    /// A participant's grace period is over: if they are still without a session here, they
    /// leave the call.
    pub(super) fn handle_call_grace_expired(
        &self,
        myself: &ActorRef<ConversationMsg>,
        ready: &mut Ready,
        call_id: CallId,
        user_id: UserId,
    ) {
        ready.call_grace.remove(&user_id);
        if ready.links.values().any(|link| link.user_id == user_id) {
            return;
        }
        let participants: BTreeSet<UserId> = ready
            .calls
            .active()
            .map(|call| call.participants.clone())
            .unwrap_or_default();
        if let Ok(departure) = ready
            .calls
            .hang_up(call_id, &user_id, self.context.clock.now())
        {
            self.after_departure(myself, ready, call_id, &user_id, participants, departure);
        }
    }

    /// Whether the actor must stay loaded for a call (its timers and record).
    pub(super) fn has_active_call(ready: &Ready) -> bool {
        ready.calls.active().is_some()
    }

    pub(super) fn after_departure(
        &self,
        myself: &ActorRef<ConversationMsg>,
        ready: &mut Ready,
        call_id: CallId,
        user_id: &UserId,
        participants: BTreeSet<UserId>,
        departure: Departure,
    ) {
        match departure {
            Departure::Left => {
                let told: Vec<UserId> = participants.into_iter().collect();
                self.notify(ready, call_id, user_id, &CallNotice::Left, &told);
            }
            Departure::Ended(ended) => self.store_call_end(myself, ready, user_id.clone(), ended),
        }
    }

    /// Pushes a call notice to every joined session of `users`; a full queue drops it (the
    /// session is being disconnected as a slow consumer anyway).
    pub(super) fn notify(
        &self,
        ready: &Ready,
        call_id: CallId,
        from: &UserId,
        notice: &CallNotice,
        users: &[UserId],
    ) {
        let frame = self.context.encoder.encode(&ServerEvent::Call {
            request_id: None,
            conversation_id: self.conversation_id(),
            call_id,
            from,
            notice,
        });
        for link in ready.links.values() {
            if users.contains(&link.user_id) {
                link.outbound.push_if_room(frame.clone());
            }
        }
    }

    pub(super) fn push_call_error(
        &self,
        outbound: &Outbound,
        request_id: Option<&RequestId>,
        error: &Error,
    ) {
        let _ = outbound.push(
            self.context
                .encoder
                .encode(&ServerEvent::Error { request_id, error }),
        );
    }

    pub(super) fn store_call_end(
        &self,
        myself: &ActorRef<ConversationMsg>,
        ready: &mut Ready,
        actor_id: UserId,
        ended: CallEnded,
    ) {
        ready.call_grace.clear();
        let call_id = ended.call_id;
        if let Some(change) = ended.recording {
            self.store_recording_change(myself, ready, call_id, actor_id.clone(), change);
        }
        self.store_call_record(
            myself,
            ready,
            actor_id,
            call_id,
            "ended",
            ConversationEventBody::CallEnded {
                call_id,
                kind: ended.kind,
                reason: ended.reason,
                duration_ms: ended.duration_ms,
                participants: ended.participants,
            },
        );
    }

    /// Appends a call's start or end to the seq stream; its idempotency key is the call's.
    pub(super) fn store_call_record(
        &self,
        myself: &ActorRef<ConversationMsg>,
        ready: &mut Ready,
        actor_id: UserId,
        call_id: CallId,
        what: &str,
        body: ConversationEventBody,
    ) {
        self.store_record(
            myself,
            ready,
            actor_id,
            &format!("call.{call_id}.{what}"),
            body,
        );
    }

    /// Appends a record the actor makes itself, with `key` as its idempotency key; nobody waits
    /// for the acknowledgement (a failure is logged).
    pub(super) fn store_record(
        &self,
        myself: &ActorRef<ConversationMsg>,
        ready: &mut Ready,
        actor_id: UserId,
        key: &str,
        body: ConversationEventBody,
    ) {
        let Ok(client_id) = ClientId::parse(key) else {
            tracing::error!(key, "a record's key is not a valid client id");
            return;
        };
        self.append_event(
            myself,
            ready,
            actor_id,
            client_id,
            body,
            AckGuard::new(AckTarget::Record("a call or recording record")),
        );
    }
}

pub(super) fn millis(duration: std::time::Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}
