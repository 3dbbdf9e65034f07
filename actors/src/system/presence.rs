//! The presence service behind [`System`]: the presence of the users who share a
//! conversation with the caller (the others are named as refused).

use switchboard_engine::rate_limit::ActionClass;

use crate::presence::{MAX_WATCHED_PER_REQUEST, PresenceEntry, shares_a_conversation};
use switchboard_engine::Error;
use switchboard_engine::ids::UserId;

use super::System;
use crate::session::Identity;

/// How [`System::presence`] does it.
pub(super) async fn presence(
    system: &System,
    identity: &Identity,
    user_ids: Vec<UserId>,
) -> Result<(Vec<PresenceEntry>, Vec<UserId>), Error> {
    if user_ids.len() > MAX_WATCHED_PER_REQUEST {
        return Err(Error::TooLarge {
            what: "user_ids".into(),
            limit: MAX_WATCHED_PER_REQUEST,
            actual: user_ids.len(),
        });
    }
    system.take_budget(identity, ActionClass::Signals).await?;
    let mut visible = Vec::new();
    let mut refused = Vec::new();
    for user_id in user_ids {
        if shares_a_conversation(
            system.store.as_ref(),
            &identity.tenant_id,
            &identity.user_id,
            &user_id,
        )
        .await?
        {
            visible.push(
                system
                    .session_context
                    .presence
                    .view(&identity.tenant_id, &user_id)
                    .await,
            );
        } else {
            refused.push(user_id);
        }
    }
    Ok((visible, refused))
}
