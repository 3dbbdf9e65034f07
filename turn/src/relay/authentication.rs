//! The relay's credential check, and why it sits in front of the TURN server.
//!
//! webrtc-rs's `turn` 0.9 server checks a request's long-term credential in
//! `Request::authenticate_request`: without MESSAGE-INTEGRITY it answers 401 Unauthorized with a
//! fresh NONCE and the REALM (the challenge), but when the [`AuthHandler`] refuses the username,
//! or the MESSAGE-INTEGRITY does not match the key it returned, it answers 400 Bad Request with
//! no nonce and returns an error, which its read loop logs at ERROR, one line per datagram.
//! RFC 8489 §9.2.4 and RFC 8656 want 401 with a fresh nonce there (as coturn answers), and a log
//! line per datagram lets anyone who can send UDP flood the log.
//!
//! The crate takes its socket as a `webrtc_util::Conn` trait object, so the relay hands it a
//! [`CheckedConn`]: the UDP socket, whose `recv_from` checks every Allocate, Refresh,
//! CreatePermission and ChannelBind request that carries MESSAGE-INTEGRITY before the server sees
//! it, with the same rule as the [`AuthHandler`] ([`CredentialCheck`]). A request whose
//! credential is refused is counted and logged sampled ([`RelayAuthFailures`]) and handed on
//! without its MESSAGE-INTEGRITY (and the FINGERPRINT after it), so the server does what it does
//! for an unauthenticated request: it answers 401 with a nonce it generated and remembers, which
//! the client's next attempt may use, and logs nothing. Requests that pass, and everything
//! else, reach the server unchanged; the server still checks them itself.
//!
//! The other options were worse. Rewriting the server's 400 into a 401 on the way out cannot
//! give a nonce the server knows (its nonce table is private), so the client's retry would be
//! answered 438 Stale Nonce. Answering with a key that cannot match still gets a 400 from this
//! crate. A patched copy of the crate is a fork to keep up. This relies on one documented
//! behaviour of the crate, the challenge for a request without MESSAGE-INTEGRITY, which RFC 8489
//! requires of every TURN server; the relay tests check the 401 and the nonce.
//!
//! Requests with MESSAGE-INTEGRITY but without USERNAME, REALM or NONCE are counted as malformed
//! and handed on unchanged: the server answers 400, as RFC 8489 asks. A refused credential is
//! answered 401 even when its nonce is also stale (where the server would have said 438); the
//! 401 carries a fresh nonce either way.

use std::net::SocketAddr;
use std::sync::Arc;

use stun::attributes::{ATTR_MESSAGE_INTEGRITY, ATTR_NONCE, ATTR_REALM, ATTR_USERNAME};
use stun::integrity::MessageIntegrity;
use stun::message::{
    CLASS_REQUEST, METHOD_ALLOCATE, METHOD_CHANNEL_BIND, METHOD_CREATE_PERMISSION, METHOD_REFRESH,
    Message, MessageType, is_message,
};
use stun::textattrs::TextAttribute;
use switchboard_engine::ports::Clock;
use tokio::net::UdpSocket;
use turn::auth::{AuthHandler, generate_auth_key};
use webrtc_util::Conn;

use super::failures::{RefusalReason, RelayAuthFailures};
use crate::credentials::{CredentialError, password_for};
use crate::service::TurnService;

/// Derives a request's long-term key (RFC 8489 §9.2.2: `MD5(username ":" realm ":" password)`)
/// from the REST API credential its username names.
pub(crate) struct CredentialCheck {
    pub(crate) secrets: TurnService,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) failures: Arc<RelayAuthFailures>,
}

impl CredentialCheck {
    /// The key `username`'s password gives in `realm`, now.
    fn key(&self, username: &str, realm: &str) -> Result<Vec<u8>, CredentialError> {
        let secret = self.secrets.password_key(username, self.clock.now())?;
        Ok(generate_auth_key(
            username,
            realm,
            &password_for(secret, username),
        ))
    }

    /// What the server is to see of `datagram` from `source`: `None` to hand it on as it is,
    /// or the request to hand on instead (the same request without its MESSAGE-INTEGRITY) when
    /// its credential is refused.
    fn screen(&self, datagram: &[u8], source: SocketAddr) -> Option<Vec<u8>> {
        // Relayed data (ChannelData, Send indications) is most of the traffic: tell it apart by
        // the header alone, before copying or decoding anything.
        if !is_message(datagram) {
            return None;
        }
        let mut message_type = MessageType::default();
        message_type.read_value(u16::from_be_bytes([datagram[0], datagram[1]]));
        let authenticated_method = [
            METHOD_ALLOCATE,
            METHOD_REFRESH,
            METHOD_CREATE_PERMISSION,
            METHOD_CHANNEL_BIND,
        ]
        .contains(&message_type.method);
        if message_type.class != CLASS_REQUEST || !authenticated_method {
            return None;
        }
        let mut request = Message::new();
        request.raw = datagram.to_vec();
        request.decode().ok()?;
        if !request.contains(ATTR_MESSAGE_INTEGRITY) {
            return None;
        }
        let text = |attribute| TextAttribute::get_from_as(&request, attribute).ok();
        let (Some(username), Some(realm), Some(_)) =
            (text(ATTR_USERNAME), text(ATTR_REALM), text(ATTR_NONCE))
        else {
            self.failures.record(RefusalReason::Malformed, source);
            return None;
        };
        let refusal = match self.key(&username.text, &realm.text) {
            Ok(key) => MessageIntegrity(key)
                .check(&mut request.clone())
                .err()
                .map(|_| RefusalReason::BadPassword),
            Err(error) => Some(RefusalReason::from(error)),
        };
        let reason = refusal?;
        self.failures.record(reason, source);
        Some(without_message_integrity(&request))
    }
}

/// `request` with every attribute from its MESSAGE-INTEGRITY on left out: what an
/// unauthenticated client sends, which the server challenges.
fn without_message_integrity(request: &Message) -> Vec<u8> {
    let mut stripped = Message::new();
    stripped.typ = request.typ;
    stripped.transaction_id = request.transaction_id;
    stripped.write_header();
    for attribute in request
        .attributes
        .0
        .iter()
        .take_while(|attribute| attribute.typ != ATTR_MESSAGE_INTEGRITY)
    {
        stripped.add(attribute.typ, &attribute.value);
    }
    stripped.raw
}

/// The server's authentication step. Requests reach it only when [`CheckedConn`] found their
/// credential good, so it refuses only at the edge of an expiry crossed in between; it counts
/// that refusal too (the server then answers 400 and logs it, see the module docs).
pub(crate) struct RestApiAuthentication(pub(crate) Arc<CredentialCheck>);

impl AuthHandler for RestApiAuthentication {
    fn auth_handle(
        &self,
        username: &str,
        realm: &str,
        source: SocketAddr,
    ) -> Result<Vec<u8>, turn::Error> {
        self.0.key(username, realm).map_err(|error| {
            self.0.failures.record(RefusalReason::from(error), source);
            turn::Error::Other(error.to_string())
        })
    }
}

/// The relay's UDP socket as the TURN server sees it: received requests whose credential is
/// refused arrive without their MESSAGE-INTEGRITY (see the module docs); everything else passes
/// through.
pub(crate) struct CheckedConn {
    pub(crate) socket: UdpSocket,
    pub(crate) check: Arc<CredentialCheck>,
}

#[async_trait::async_trait]
impl Conn for CheckedConn {
    async fn connect(&self, address: SocketAddr) -> webrtc_util::Result<()> {
        Ok(self.socket.connect(address).await?)
    }

    async fn recv(&self, buffer: &mut [u8]) -> webrtc_util::Result<usize> {
        Ok(self.recv_from(buffer).await?.0)
    }

    async fn recv_from(&self, buffer: &mut [u8]) -> webrtc_util::Result<(usize, SocketAddr)> {
        let (n_bytes, source) = self.socket.recv_from(buffer).await?;
        match self.check.screen(&buffer[..n_bytes], source) {
            // The replacement is the request less at least its MESSAGE-INTEGRITY, so shorter.
            Some(replacement) if replacement.len() <= n_bytes => {
                buffer[..replacement.len()].copy_from_slice(&replacement);
                Ok((replacement.len(), source))
            }
            _ => Ok((n_bytes, source)),
        }
    }

    async fn send(&self, buffer: &[u8]) -> webrtc_util::Result<usize> {
        Ok(self.socket.send(buffer).await?)
    }

    async fn send_to(&self, buffer: &[u8], target: SocketAddr) -> webrtc_util::Result<usize> {
        Ok(self.socket.send_to(buffer, target).await?)
    }

    fn local_addr(&self) -> webrtc_util::Result<SocketAddr> {
        Ok(self.socket.local_addr()?)
    }

    fn remote_addr(&self) -> Option<SocketAddr> {
        None
    }

    async fn close(&self) -> webrtc_util::Result<()> {
        Ok(())
    }

    fn as_any(&self) -> &(dyn std::any::Any + Send + Sync) {
        self
    }
}

#[cfg(test)]
mod tests;
