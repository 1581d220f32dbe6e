//! TCP: connect to `address` (host:port).

use crate::spec::CheckSpec;
use crate::{Found, Outcome};

pub(crate) async fn probe(spec: &CheckSpec) -> Found {
    let (host, port) = spec.host_port().ok_or("address is not host:port")?;
    let stream = tokio::net::TcpStream::connect((host, port))
        .await
        .map_err(|e| format!("connect {host}:{port}: {e}"))?;
    let peer = stream.peer_addr().map(|a| a.to_string()).unwrap_or_default();
    Ok((Outcome::Ok, format!("connected to {host}:{port} ({peer})")))
}
