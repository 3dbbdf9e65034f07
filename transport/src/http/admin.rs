//! Administration: the tenant's audit log (admin role).

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use switchboard_engine::ids::AuditId;
use switchboard_engine::recording::{AuditAction, AuditRecord};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::server::App;
use crate::wire_error::{ErrorBody, WireError};

use super::documented_errors::{AdminRoleRequired, TokenRefused};
use super::extract::{Admin, page_limit, parse_query};

/// The administration routes.
pub(super) fn routes() -> OpenApiRouter<Arc<App>> {
    OpenApiRouter::new().routes(routes!(audit_log))
}

/// One audit record. It names ids only, never what was erased.
#[derive(Serialize, ToSchema)]
pub(crate) struct AuditBody<'a> {
    /// The record's ULID.
    audit_id: String,
    /// When, in Unix milliseconds.
    at: u64,
    /// Who did it (the administrator's user id).
    actor_id: &'a str,
    /// What was done: `recording.erased`.
    action: &'static str,
    /// The erased recording's ULID.
    recording_id: String,
    /// Its call's ULID.
    call_id: String,
    /// Its conversation's ULID.
    conversation_id: String,
    /// Whether a media object was found and deleted.
    object_erased: bool,
}

impl<'a> AuditBody<'a> {
    pub(super) fn new(record: &'a AuditRecord) -> Self {
        let AuditAction::RecordingErased {
            recording_id,
            call_id,
            conversation_id,
            object_erased,
        } = &record.action;
        Self {
            audit_id: record.audit_id.to_string(),
            at: record.at.as_millis(),
            actor_id: record.actor_id.as_str(),
            action: "recording.erased",
            recording_id: recording_id.to_string(),
            call_id: call_id.to_string(),
            conversation_id: conversation_id.to_string(),
            object_erased: *object_erased,
        }
    }
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct AuditQuery {
    /// Records older than this one (a previous page's `next_before`).
    before: Option<String>,
    /// Page size, as for history.
    limit: Option<usize>,
}

/// A page of the audit log, newest first.
#[derive(Serialize, ToSchema)]
pub(crate) struct AuditPageBody<'a> {
    /// The records.
    items: Vec<AuditBody<'a>>,
    /// Pass as `before` for the next page; absent on the last page.
    next_before: Option<String>,
}

/// Read the tenant's audit log.
///
/// Admin role. Every recording erase, newest first.
#[utoipa::path(get, path = "/v1/audit", tag = "recordings",
    params(AuditQuery),
    responses(
        (status = 200, description = "A page of the audit log.", body = AuditPageBody<'_>),
        (status = 400, description = "Bad id, limit or unknown parameter (`invalid`).", body = ErrorBody),
        TokenRefused,
        AdminRoleRequired,
        (status = 503, description = "The recording store is unavailable (`unavailable`).", body = ErrorBody),
    ))]
pub(crate) async fn audit_log(
    State(app): State<Arc<App>>,
    Admin(identity): Admin,
    query: Result<Query<AuditQuery>, QueryRejection>,
) -> Result<Response, WireError> {
    let query = parse_query(query)?;
    let limit = page_limit(&app, query.limit)?;
    let before = query.before.as_deref().map(AuditId::parse).transpose()?;
    let page = app.system.audit_log(&identity, before, limit).await?;
    Ok(Json(AuditPageBody {
        items: page.records.iter().map(AuditBody::new).collect(),
        next_before: page.next.map(|id| id.to_string()),
    })
    .into_response())
}
