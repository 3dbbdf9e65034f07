//! The server's listening socket, bound with a backlog sized for reconnect storms.
//!
//! `tokio::net::TcpListener::bind` asks the kernel for a backlog of 128, the standard library's
//! value. When thousands of clients reconnect at once (a deploy, a network blip) the server
//! accepts more slowly than they arrive, the queue fills, and the kernel drops each further SYN:
//! that client waits a full second for its retry. The load harness measured it: 72 of 10,000
//! connects in a storm of 256 at a time stalled for a second each, and the storm ran at half
//! speed. `[server] listen_backlog` sets the queue instead (the kernel caps it at
//! `net.core.somaxconn`, 4096 by default since Linux 5.4).

use std::net::SocketAddr;

use anyhow::Context;
use tokio::net::{TcpListener, TcpSocket};

/// Binds `address` with `SO_REUSEADDR` (as `TcpListener::bind` does, so a restart does not wait
/// for old connections in `TIME_WAIT`) and listens with a queue of `backlog` connections.
///
/// # Errors
/// The socket, bind or listen failure, naming the address.
pub fn bind_listener(address: SocketAddr, backlog: u32) -> anyhow::Result<TcpListener> {
    let socket = if address.is_ipv4() {
        TcpSocket::new_v4()
    } else {
        TcpSocket::new_v6()
    }
    .with_context(|| format!("creating a socket for {address}"))?;
    socket
        .set_reuseaddr(true)
        .with_context(|| format!("setting SO_REUSEADDR for {address}"))?;
    socket
        .bind(address)
        .with_context(|| format!("binding {address}"))?;
    socket
        .listen(backlog)
        .with_context(|| format!("listening on {address}"))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// Far more connections than the default queue of 128 complete their handshake while the
    /// server accepts none of them: the kernel holds them all. With a queue of 128 the 130th
    /// connect hangs (its SYN is dropped and retried after a second, then three), which the
    /// per-connect deadline turns into a failure.
    #[tokio::test]
    async fn queues_the_backlog_it_was_given_without_accepting() {
        let listener = bind_listener("127.0.0.1:0".parse().unwrap(), 1024).unwrap();
        let address = listener.local_addr().unwrap();
        let mut streams = Vec::new();
        for index in 0..600 {
            let stream = tokio::time::timeout(
                Duration::from_secs(5),
                tokio::net::TcpStream::connect(address),
            )
            .await
            .unwrap_or_else(|_| panic!("connect {index} was not queued"))
            .unwrap();
            streams.push(stream);
        }
        let (_accepted, peer) = listener.accept().await.unwrap();
        assert_eq!(peer, streams[0].local_addr().unwrap(), "queued in order");
    }

    #[tokio::test]
    async fn binds_ipv6_and_refuses_an_address_in_use() {
        let listener = bind_listener("[::1]:0".parse().unwrap(), 16).unwrap();
        let address = listener.local_addr().unwrap();
        assert!(address.is_ipv6());
        let error = bind_listener(address, 16).unwrap_err();
        assert!(format!("{error:#}").contains("binding"), "{error:#}");
    }
}
