//! The embedded TURN relay: a UDP TURN server inside `serve`, so WebRTC callers on a single
//! node get a working relay with no setup.
//!
//! It is the `turn` crate of webrtc-rs (allocations, permissions, channels, relayed ports from a
//! configured range) with an authentication step that speaks the same TURN REST API credentials
//! Switchboard hands out: the username must read as exactly one
//! [`SwitchboardUsername`](crate::credentials::SwitchboardUsername),
//! `<expiry>:<tenant>:<user>:<key id>` with tenant and user percent-encoded (anything else is
//! refused), its expiry must be in the future, and its key id names the secret (the current one
//! of some realm, or a retired one still accepted) that the password is derived from.
//! Rotation therefore works for credentials already handed out. Time comes from the engine's
//! [`Clock`] port.
//!
//! A credential that is malformed, expired, signed by a secret no longer accepted or tampered
//! with is refused with 401 Unauthorized and a fresh nonce, as RFC 8489 and RFC 8656 ask and
//! coturn does (`relay/authentication.rs` explains how, since the crate itself would answer
//! 400).
//! Refusals are counted by reason and logged sampled ([`failures`]): the metric
//! `switchboard_turn_relay_auth_failures_total` at `GET /metrics`
//! ([`EmbeddedRelay::auth_failures`]), and at most one WARN line per
//! [`LOG_INTERVAL`](failures::LOG_INTERVAL).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use switchboard_engine::ports::Clock;
use tokio::net::UdpSocket;
use turn::relay::relay_range::RelayAddressGeneratorRanges;
use turn::server::Server;
use turn::server::config::{ConnConfig, ServerConfig};
use webrtc_util::vnet::net::Net;

use crate::service::TurnService;
use authentication::{CheckedConn, CredentialCheck, RestApiAuthentication};
use failures::RelayAuthFailures;

mod authentication;
pub mod failures;

/// Where the relay listens and which ports it relays from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelaySettings {
    /// The UDP address TURN clients send to (`127.0.0.1:3478`; port 0 picks a free one).
    pub listen: SocketAddr,
    /// The address clients are told to reach the relay and its relayed ports at.
    pub public_ip: IpAddr,
    /// The first port relayed allocations may use.
    pub min_port: u16,
    /// The last port relayed allocations may use.
    pub max_port: u16,
    /// The TURN realm named in challenges.
    pub realm: String,
}

/// Why the relay did not start.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    /// The listening socket could not be bound.
    #[error("the TURN relay could not bind {address}: {source}")]
    Bind {
        /// What was asked for.
        address: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The settings are not usable.
    #[error("the TURN relay could not start: {0}")]
    Start(String),
}

/// The running relay.
pub struct EmbeddedRelay {
    server: Server,
    local_addr: SocketAddr,
    uri: String,
    auth_failures: Arc<RelayAuthFailures>,
}

impl EmbeddedRelay {
    /// Binds the relay and starts serving; `secrets` is the credential service whose realms'
    /// secrets it accepts.
    ///
    /// # Errors
    /// [`RelayError`] if the socket cannot be bound or the port range is empty.
    pub async fn start(
        settings: &RelaySettings,
        secrets: TurnService,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, RelayError> {
        if settings.min_port == 0 || settings.max_port < settings.min_port {
            return Err(RelayError::Start(format!(
                "the relay port range {}..={} is empty",
                settings.min_port, settings.max_port
            )));
        }
        let socket = UdpSocket::bind(settings.listen)
            .await
            .map_err(|source| RelayError::Bind {
                address: settings.listen,
                source,
            })?;
        let local_addr = socket.local_addr().map_err(|source| RelayError::Bind {
            address: settings.listen,
            source,
        })?;
        let auth_failures = Arc::new(RelayAuthFailures::new(Arc::clone(&clock)));
        let check = Arc::new(CredentialCheck {
            secrets,
            clock,
            failures: Arc::clone(&auth_failures),
        });
        let server = Server::new(ServerConfig {
            conn_configs: vec![ConnConfig {
                conn: Arc::new(CheckedConn {
                    socket,
                    check: Arc::clone(&check),
                }),
                relay_addr_generator: Box::new(RelayAddressGeneratorRanges {
                    relay_address: settings.public_ip,
                    min_port: settings.min_port,
                    max_port: settings.max_port,
                    max_retries: 0,
                    address: settings.listen.ip().to_string(),
                    net: Arc::new(Net::new(None)),
                }),
            }],
            realm: settings.realm.clone(),
            auth_handler: Arc::new(RestApiAuthentication(check)),
            channel_bind_timeout: std::time::Duration::ZERO,
            alloc_close_notify: None,
        })
        .await
        .map_err(|error| RelayError::Start(error.to_string()))?;
        let uri = format!(
            "turn:{}?transport=udp",
            SocketAddr::new(settings.public_ip, local_addr.port())
        );
        tracing::info!(relay_addr = %local_addr, %uri, "embedded TURN relay listening");
        Ok(Self {
            server,
            local_addr,
            uri,
            auth_failures,
        })
    }

    /// The bound UDP address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The URI clients are given (`turn:<public ip>:<port>?transport=udp`).
    pub fn uri(&self) -> &str {
        &self.uri
    }

    /// The credentials it refused, by reason (for `GET /metrics`, see
    /// [`RelayAuthFailures::register_metrics`]).
    pub fn auth_failures(&self) -> Arc<RelayAuthFailures> {
        Arc::clone(&self.auth_failures)
    }

    /// Closes every allocation and stops serving.
    pub async fn close(&self) {
        if let Err(error) = self.server.close().await {
            tracing::warn!(%error, "the embedded TURN relay did not close cleanly");
        }
    }
}
