//! Loopback sockets for the runtime tests: a UDP socket and a TCP listener
//! on the same free port.

/// Binds UDP on a free loopback port and TCP on the same port. The UDP
/// port is free only for UDP: another test's TCP socket may hold the same
/// number, so on `AddrInUse` this tries another port (as the daemon's
/// `SipSockets::bind` does).
pub async fn udp_and_tcp() -> (tokio::net::UdpSocket, tokio::net::TcpListener) {
    const ATTEMPTS: usize = 20;
    for _ in 0..ATTEMPTS {
        let udp = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let address = udp.local_addr().unwrap();
        match tokio::net::TcpListener::bind(address).await {
            Ok(tcp) => return (udp, tcp),
            Err(error) if error.kind() == std::io::ErrorKind::AddrInUse => continue,
            Err(error) => panic!("bind tcp {address}: {error}"),
        }
    }
    panic!("no loopback port free for both UDP and TCP in {ATTEMPTS} tries");
}
