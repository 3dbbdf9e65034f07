//! Server lists ordered by health, URI parsing, and a probe of a port nothing listens on.
//! (Probes of a real coturn are in `tests/interop.rs`.)

use super::*;

fn uris(list: &[&str]) -> Vec<String> {
    list.iter().map(|uri| (*uri).to_owned()).collect()
}

#[test]
fn reachable_servers_come_first_fastest_first_and_unreachable_ones_are_left_out() {
    let board = HealthBoard::default();
    let all = uris(&["turn:a", "turn:b", "turn:c", "turn:d"]);
    assert_eq!(
        board.order(&all),
        all,
        "nothing probed: the configured order"
    );
    board.record("turn:a", Err(ProbeError::Timeout));
    board.record("turn:b", Ok(Duration::from_millis(30)));
    board.record("turn:c", Ok(Duration::from_millis(10)));
    assert_eq!(board.order(&all), uris(&["turn:c", "turn:b", "turn:d"]));
    board.record("turn:b", Err(ProbeError::Timeout));
    board.record("turn:c", Err(ProbeError::Timeout));
    board.record("turn:d", Err(ProbeError::Timeout));
    assert_eq!(
        board.order(&all),
        all,
        "all unreachable: offer them all anyway"
    );
    let health = board.get("turn:b").expect("probed");
    assert_eq!((health.n_probes, health.n_failures), (2, 1));
}

#[test]
fn uris_name_an_address_and_a_transport() {
    let cases = [
        (
            "turn:127.0.0.1:3479?transport=udp",
            Some(("127.0.0.1:3479", ProbeTransport::Udp)),
        ),
        (
            "turn:turn.example.com?transport=tcp",
            Some(("turn.example.com:3478", ProbeTransport::Tcp)),
        ),
        (
            "stun:stun.example.com",
            Some(("stun.example.com:3478", ProbeTransport::Udp)),
        ),
        (
            "turns:turn.example.com:443?transport=tcp",
            Some(("turn.example.com:443", ProbeTransport::Tcp)),
        ),
        (
            "turns:turn.example.com",
            Some(("turn.example.com:5349", ProbeTransport::Tcp)),
        ),
        ("http://example.com", None),
        ("turn:", None),
        ("turn:host?transport=sctp", None),
    ];
    for (uri, expected) in cases {
        let parsed = probe_target(uri);
        let expected = expected.map(|(address, transport)| (address.to_owned(), transport));
        assert_eq!(parsed, expected, "{uri}");
    }
}

#[tokio::test]
async fn a_server_that_does_not_answer_fails_its_probe() {
    let port = std::net::UdpSocket::bind("127.0.0.1:0")
        .and_then(|socket| socket.local_addr())
        .map(|address| address.port())
        .expect("a free port");
    let outcome = probe(
        &format!("stun:127.0.0.1:{port}"),
        Duration::from_millis(500),
    )
    .await;
    assert!(outcome.is_err(), "{outcome:?}");
    assert!(matches!(
        probe("ftp:x", Duration::from_millis(10)).await,
        Err(ProbeError::BadUri)
    ));
}
