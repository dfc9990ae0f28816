//! coturn's own test client, `turnutils_uclient`, against the server under test: relay over
//! channels, over Send indications (`-s`), client-to-client (`-y`), through RFC 6062 TCP
//! relays (`-T`) and dual-family allocations (`-Z`), with TURN REST auth
//! (`-W <secret>`) for a Matrix user and several clients (`-m 4`); and a wrong secret.
//! Each test parses uclient's summary and asserts every message sent came back.

mod support;

use std::collections::HashSet;
use std::time::Duration;

use support::{EchoPeer, MATRIX_USER, RunOutput, Summary, TurnServer, parse_summary, run_bounded};

const UCLIENT: &str = "turnutils_uclient";
/// Clients per run (`-m`).
const CLIENTS: u64 = 4;
/// Messages per client (`-n`).
const MESSAGES: u64 = 30;
/// Message length (`-l`).
const LENGTH: u64 = 120;
/// uclient needs about 5 s per run; kill it after this.
const LIMIT: Duration = Duration::from_secs(30);

/// Runs uclient against `server` with REST auth for [`MATRIX_USER`] plus `flags`.
fn uclient(server: &TurnServer, secret: &str, flags: &[&str]) -> RunOutput {
    let mut args: Vec<String> = flags.iter().map(|f| (*f).to_owned()).collect();
    args.extend(
        [
            "-u",
            MATRIX_USER,
            "-W",
            secret,
            "-m",
            &CLIENTS.to_string(),
            "-n",
            &MESSAGES.to_string(),
            "-l",
            &LENGTH.to_string(),
            "-z",
            "5",
            "-p",
            &server.addr.port().to_string(),
            "127.0.0.1",
        ]
        .map(str::to_owned),
    );
    run_bounded(UCLIENT, &args, LIMIT)
}

/// Asserts a successful run in which every message came back.
fn assert_all_relayed(run: &RunOutput) {
    assert!(
        run.status.success(),
        "uclient failed with {}:\n{}",
        run.status,
        run.output
    );
    let summary = parse_summary(&run.output)
        .unwrap_or_else(|| panic!("no summary in uclient output:\n{}", run.output));
    let total = CLIENTS * MESSAGES;
    assert_eq!(
        summary,
        Summary {
            sent_msgs: total,
            recv_msgs: total,
            sent_bytes: total * LENGTH,
            recv_bytes: total * LENGTH,
            lost: 0,
        },
        "uclient summary; output:\n{}",
        run.output
    );
}

/// Asserts the peer got every message once, from relay addresses of `server`.
fn assert_peer_saw_relays(server: &TurnServer, peer: &EchoPeer) {
    let received = peer.received();
    assert_eq!(
        received.len() as u64,
        CLIENTS * MESSAGES,
        "datagrams at the peer"
    );
    assert!(
        received
            .iter()
            .all(|r| server.slot.is_relay_addr(r.from) && r.data.len() as u64 == LENGTH),
        "the peer must only get {LENGTH}-byte datagrams from relay addresses"
    );
    let relays: HashSet<_> = received.iter().map(|r| r.from).collect();
    assert_eq!(relays.len() as u64, CLIENTS, "one relay address per client");
}

#[test]
fn uclient_relays_rtp_and_rtcp_over_channels() {
    // Four shards: a client's RTCP Allocate comes from another port than its RTP one, so
    // its RESERVATION-TOKEN usually names another shard's reservation.
    let server = TurnServer::builder().arg("--relay-threads=4").start();
    let peer = EchoPeer::start_pair();
    let port = peer.addr.port().to_string();
    // No -c: each client also allocates an RTCP relay (EVEN-PORT with the R bit and a
    // RESERVATION-TOKEN); data goes over channels.
    let run = uclient(
        &server,
        server.secret.expose_str().unwrap(),
        &["-e", "127.0.0.1", "-r", &port],
    );
    assert_all_relayed(&run);
    assert_peer_saw_relays(&server, &peer);
    // The RTCP sessions relayed to the peer's port + 1.
    let ports: HashSet<_> = peer.received().iter().map(|r| r.to.port()).collect();
    assert_eq!(
        ports,
        HashSet::from([peer.addr.port(), peer.addr.port() + 1]),
        "RTP and RTCP sessions must both reach the peer"
    );
    server.assert_no_secrets_logged(&[]);
}

#[test]
fn uclient_relays_over_send_indications() {
    let server = TurnServer::start();
    let peer = EchoPeer::start();
    let port = peer.addr.port().to_string();
    let run = uclient(
        &server,
        server.secret.expose_str().unwrap(),
        &["-s", "-c", "-e", "127.0.0.1", "-r", &port],
    );
    assert_all_relayed(&run);
    assert_peer_saw_relays(&server, &peer);
}

#[test]
fn uclient_mobility_moves_allocations_and_keeps_relaying() {
    // Four shards: a client's new port usually hashes to another shard than its
    // allocation's, which hands it over.
    let server = TurnServer::builder()
        .arg("--mobility")
        .arg("--relay-threads=4")
        .start();
    let peer = EchoPeer::start();
    let port = peer.addr.port().to_string();
    // -M: each client asks for a MOBILITY-TICKET, then refreshes from a new local port
    // with it (RFC 8016) while relaying. uclient 4.6 sometimes sends its mobility Refresh
    // with a 4-byte placeholder instead of the ticket it was given (seen in about one run
    // in six, only when its last client moves within milliseconds of allocating); the
    // server must answer that with 437, and the run is repeated, at most three times.
    let mut last = None;
    for _ in 0..3 {
        let run = uclient(
            &server,
            server.secret.expose_str().unwrap(),
            &["-M", "-c", "-e", "127.0.0.1", "-r", &port],
        );
        if run.status.success() {
            last = Some(run);
            break;
        }
        last = Some(run);
    }
    assert_all_relayed(&last.expect("at least one run"));
    if server.kind == support::ServerKind::Ours {
        let moved = server
            .output()
            .matches("allocation moved (mobility)")
            .count();
        assert!(moved > 0, "no allocation moved:\n{}", server.output());
    }
}

#[test]
fn uclient_client_to_client_through_two_relays() {
    let server = TurnServer::start();
    let run = uclient(&server, server.secret.expose_str().unwrap(), &["-y", "-c"]);
    assert_all_relayed(&run);
}

#[test]
fn uclient_tcp_relays_client_to_client() {
    // -T: RFC 6062 TCP allocations (implies -t, -y and -c): each pair of clients
    // allocates two TCP relays over TCP, one Connects to the other's relayed address, the
    // other gets a ConnectionAttempt, and both ConnectionBind a data connection.
    let server = TurnServer::builder().tcp().start();
    let run = uclient(&server, server.secret.expose_str().unwrap(), &["-T"]);
    assert_all_relayed(&run);
}

#[test]
fn uclient_dual_allocations_relay_over_either_family() {
    assert!(
        std::net::UdpSocket::bind("[::1]:0").is_ok(),
        "this test needs IPv6 on loopback (::1)"
    );
    let server = TurnServer::builder().arg("--relay-ip=::1").start();
    // -Z: ADDITIONAL-ADDRESS-FAMILY (RFC 8656 §7.2, at coturn's draft attribute number):
    // each client gets an IPv4 and an IPv6 relay address and relays client to client over
    // the IPv4 ones, then with -x over the IPv6 ones.
    for family in [&["-Z", "-y"][..], &["-Z", "-x", "-y"]] {
        let run = uclient(&server, server.secret.expose_str().unwrap(), family);
        assert_all_relayed(&run);
    }
}

#[test]
fn uclient_with_a_wrong_secret_cannot_allocate() {
    let server = TurnServer::start();
    let peer = EchoPeer::start();
    let port = peer.addr.port().to_string();
    let run = uclient(
        &server,
        "not-the-server-secret",
        &["-c", "-e", "127.0.0.1", "-r", &port],
    );
    assert!(
        !run.status.success(),
        "uclient must fail with a wrong secret:\n{}",
        run.output
    );
    assert!(
        run.output.contains("Cannot complete Allocation"),
        "uclient must report the refused allocation:\n{}",
        run.output
    );
    assert!(
        parse_summary(&run.output).is_none(),
        "no traffic may flow:\n{}",
        run.output
    );
    assert_eq!(peer.count(), 0, "the peer received data");
}

#[test]
fn summary_parser_reads_uclient_output() {
    let output = "5: : start_mclient: msz=4, tot_send_msgs=60, tot_recv_msgs=60, \
                  tot_send_bytes ~ 7200, tot_recv_bytes ~ 7200\n\
                  5: : start_mclient: tot_send_msgs=80, tot_recv_msgs=79\n\
                  5: : start_mclient: tot_send_bytes ~ 9600, tot_recv_bytes ~ 9480\n\
                  5: : Total transmit time is 5\n\
                  5: : Total lost packets 1 (1.250000%), total send dropped 0 (0.000000%)\n";
    assert_eq!(
        parse_summary(output),
        Some(Summary {
            sent_msgs: 80,
            recv_msgs: 79,
            sent_bytes: 9600,
            recv_bytes: 9480,
            lost: 1,
        })
    );
    assert_eq!(
        parse_summary("0: : ERROR: Cannot complete Allocation\n"),
        None
    );
}
