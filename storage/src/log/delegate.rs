//! One `MessageStore` impl that hands every method to an inner store, for the adapters that
//! stand in front of another store (the circuit breaker, the Kafka pipeline).
//!
//! [`delegating_message_store!`] writes the impl block: every method but `append` and `ping`
//! calls the same method of `self.$inner`, passed through `self.$wrap(future)` (the breaker's
//! guard, or a plain await); the caller writes `append` and `ping`, which differ. The
//! [`EventLog`](switchboard_engine::ports::EventLog) supertrait is delegated the same way.
//! Written once here, the twenty delegations cannot drift from the port or from each other.

/// Implements [`MessageStore`](switchboard_engine::ports::MessageStore) for `$type` by
/// delegation; see the module documentation.
macro_rules! delegating_message_store {
    (
        impl[$($generics:tt)*] for $type:ty,
        inner: $inner:ident,
        wrap: $wrap:ident,
        { $($own:tt)* }
    ) => {
        #[async_trait::async_trait]
        impl<$($generics)*> switchboard_engine::ports::MessageStore for $type {
            $($own)*

    async fn create_conversation(
        &self,
        conversation: &switchboard_engine::model::Conversation,
        members: &[switchboard_engine::model::Member],
    ) -> Result<(), switchboard_engine::StoreError> {
        self.$wrap(self.$inner.create_conversation(conversation, members))
            .await
    }

    async fn direct_conversation(
        &self,
        tenant_id: &switchboard_engine::ids::TenantId,
        first: &switchboard_engine::ids::UserId,
        second: &switchboard_engine::ids::UserId,
    ) -> Result<Option<switchboard_engine::ids::ConversationId>, switchboard_engine::StoreError> {
        self.$wrap(self.$inner.direct_conversation(tenant_id, first, second))
            .await
    }

    async fn load_conversation(
        &self,
        tenant_id: &switchboard_engine::ids::TenantId,
        conversation_id: switchboard_engine::ids::ConversationId,
    ) -> Result<Option<switchboard_engine::model::ConversationSnapshot>, switchboard_engine::StoreError> {
        self.$wrap(self.$inner.load_conversation(tenant_id, conversation_id))
            .await
    }

    async fn conversations_of_user(
        &self,
        tenant_id: &switchboard_engine::ids::TenantId,
        user_id: &switchboard_engine::ids::UserId,
        after: Option<switchboard_engine::ids::ConversationId>,
        limit: usize,
    ) -> Result<Vec<switchboard_engine::ids::ConversationId>, switchboard_engine::StoreError> {
        self.$wrap(self.$inner.conversations_of_user(tenant_id, user_id, after, limit),
        )
        .await
    }

    async fn head(
        &self,
        tenant_id: &switchboard_engine::ids::TenantId,
        conversation_id: switchboard_engine::ids::ConversationId,
    ) -> Result<switchboard_engine::ids::Seq, switchboard_engine::StoreError> {
        self.$wrap(self.$inner.head(tenant_id, conversation_id))
            .await
    }

    async fn entry_by_client_id(
        &self,
        tenant_id: &switchboard_engine::ids::TenantId,
        conversation_id: switchboard_engine::ids::ConversationId,
        author: &switchboard_engine::ids::UserId,
        client_id: &switchboard_engine::ids::ClientId,
    ) -> Result<Option<switchboard_engine::operations::LogEntry>, switchboard_engine::StoreError> {
        self.$wrap(self.$inner.entry_by_client_id(tenant_id, conversation_id, author, client_id),
        )
        .await
    }

    async fn message_by_id(
        &self,
        tenant_id: &switchboard_engine::ids::TenantId,
        conversation_id: switchboard_engine::ids::ConversationId,
        message_id: switchboard_engine::ids::MessageId,
    ) -> Result<Option<switchboard_engine::model::Message>, switchboard_engine::StoreError> {
        self.$wrap(self.$inner.message_by_id(tenant_id, conversation_id, message_id),
        )
        .await
    }

    async fn entries_after(
        &self,
        tenant_id: &switchboard_engine::ids::TenantId,
        conversation_id: switchboard_engine::ids::ConversationId,
        after: switchboard_engine::ids::Seq,
        limit: usize,
    ) -> Result<Vec<switchboard_engine::operations::LogEntry>, switchboard_engine::StoreError> {
        self.$wrap(self.$inner.entries_after(tenant_id, conversation_id, after, limit),
        )
        .await
    }

    async fn thread_replies(
        &self,
        tenant_id: &switchboard_engine::ids::TenantId,
        conversation_id: switchboard_engine::ids::ConversationId,
        root: switchboard_engine::ids::MessageId,
        after: switchboard_engine::ids::Seq,
        limit: usize,
    ) -> Result<Vec<switchboard_engine::model::Message>, switchboard_engine::StoreError> {
        self.$wrap(self.$inner.thread_replies(tenant_id, conversation_id, root, after, limit),
        )
        .await
    }

    async fn messages_after(
        &self,
        tenant_id: &switchboard_engine::ids::TenantId,
        conversation_id: switchboard_engine::ids::ConversationId,
        after: switchboard_engine::ids::Seq,
        limit: usize,
    ) -> Result<Vec<switchboard_engine::model::Message>, switchboard_engine::StoreError> {
        self.$wrap(self.$inner.messages_after(tenant_id, conversation_id, after, limit),
        )
        .await
    }

    async fn messages_before(
        &self,
        tenant_id: &switchboard_engine::ids::TenantId,
        conversation_id: switchboard_engine::ids::ConversationId,
        before: Option<switchboard_engine::ids::Seq>,
        limit: usize,
    ) -> Result<Vec<switchboard_engine::model::Message>, switchboard_engine::StoreError> {
        self.$wrap(self.$inner.messages_before(tenant_id, conversation_id, before, limit),
        )
        .await
    }

    async fn moderation_log(
        &self,
        tenant_id: &switchboard_engine::ids::TenantId,
        conversation_id: switchboard_engine::ids::ConversationId,
        before: Option<switchboard_engine::ids::Seq>,
        limit: usize,
    ) -> Result<Vec<switchboard_engine::operations::ConversationEvent>, switchboard_engine::StoreError> {
        self.$wrap(self.$inner.moderation_log(tenant_id, conversation_id, before, limit),
        )
        .await
    }

    async fn hide_message(
        &self,
        tenant_id: &switchboard_engine::ids::TenantId,
        conversation_id: switchboard_engine::ids::ConversationId,
        user_id: &switchboard_engine::ids::UserId,
        message_id: switchboard_engine::ids::MessageId,
    ) -> Result<(), switchboard_engine::StoreError> {
        self.$wrap(self.$inner.hide_message(tenant_id, conversation_id, user_id, message_id),
        )
        .await
    }

    async fn hidden_messages(
        &self,
        tenant_id: &switchboard_engine::ids::TenantId,
        conversation_id: switchboard_engine::ids::ConversationId,
        user_id: &switchboard_engine::ids::UserId,
    ) -> Result<::std::collections::BTreeSet<switchboard_engine::ids::MessageId>, switchboard_engine::StoreError> {
        self.$wrap(self.$inner.hidden_messages(tenant_id, conversation_id, user_id),
        )
        .await
    }

    async fn member_settings(
        &self,
        tenant_id: &switchboard_engine::ids::TenantId,
        conversation_id: switchboard_engine::ids::ConversationId,
        user_id: &switchboard_engine::ids::UserId,
    ) -> Result<switchboard_engine::model::MemberSettings, switchboard_engine::StoreError> {
        self.$wrap(self.$inner.member_settings(tenant_id, conversation_id, user_id),
        )
        .await
    }

    async fn set_member_settings(
        &self,
        tenant_id: &switchboard_engine::ids::TenantId,
        conversation_id: switchboard_engine::ids::ConversationId,
        user_id: &switchboard_engine::ids::UserId,
        settings: switchboard_engine::model::MemberSettings,
    ) -> Result<(), switchboard_engine::StoreError> {
        self.$wrap(self.$inner.set_member_settings(tenant_id, conversation_id, user_id, settings),
        )
        .await
    }

    async fn read_cursors(
        &self,
        tenant_id: &switchboard_engine::ids::TenantId,
        conversation_id: switchboard_engine::ids::ConversationId,
        user_id: &switchboard_engine::ids::UserId,
    ) -> Result<switchboard_engine::model::ReadCursors, switchboard_engine::StoreError> {
        self.$wrap(self.$inner.read_cursors(tenant_id, conversation_id, user_id))
            .await
    }

    async fn set_read_cursors(
        &self,
        tenant_id: &switchboard_engine::ids::TenantId,
        conversation_id: switchboard_engine::ids::ConversationId,
        user_id: &switchboard_engine::ids::UserId,
        cursors: switchboard_engine::model::ReadCursors,
    ) -> Result<(), switchboard_engine::StoreError> {
        self.$wrap(self.$inner.set_read_cursors(tenant_id, conversation_id, user_id, cursors),
        )
        .await
    }

    async fn count_unread(
        &self,
        tenant_id: &switchboard_engine::ids::TenantId,
        conversation_id: switchboard_engine::ids::ConversationId,
        user_id: &switchboard_engine::ids::UserId,
        after: switchboard_engine::ids::Seq,
        limit: usize,
    ) -> Result<usize, switchboard_engine::StoreError> {
        self.$wrap(self.$inner.count_unread(tenant_id, conversation_id, user_id, after, limit),
        )
        .await
    }
        }

        /// The event log is the inner store's: the wrapper adds no entry of its own.
        #[async_trait::async_trait]
        impl<$($generics)*> switchboard_engine::ports::EventLog for $type {
            async fn tail(
                &self,
                scope: &switchboard_engine::ports::TailScope,
                from: switchboard_engine::ports::LogCursor,
                limit: usize,
            ) -> Result<Vec<switchboard_engine::ports::TailEntry>, switchboard_engine::StoreError> {
                self.$wrap(self.$inner.tail(scope, from, limit)).await
            }
        }
    };
}

pub(crate) use delegating_message_store;
