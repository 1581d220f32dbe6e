//! Redis: `PING` over RESP, expecting `+PONG` (what `redis-cli ping` does).
//! `redis://[:password@]host[:port]` sends `AUTH` first.

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use crate::spec::CheckSpec;
use crate::{Found, Outcome};

/// Host, port and password of the check's url or address.
fn target(spec: &CheckSpec) -> Result<(String, u16, Option<String>), String> {
    if let Some((h, p)) = spec.host_port() {
        return Ok((h.to_string(), p, None));
    }
    let url = spec.url.as_deref().ok_or("url or address is not set")?;
    let rest = url.strip_prefix("redis://").ok_or("url is not redis://")?;
    let authority = rest.split('/').next().unwrap_or(rest);
    let (password, hostport) = match authority.rsplit_once('@') {
        Some((cred, hp)) => {
            let pw = cred.split_once(':').map(|(_, p)| p).unwrap_or(cred);
            (Some(pw.to_string()).filter(|p| !p.is_empty()), hp)
        }
        None => (None, authority),
    };
    let (host, port) = match hostport.rsplit_once(':') {
        Some((h, p)) => (h, p.parse().map_err(|_| format!("bad port in {hostport:?}"))?),
        None => (hostport, 6379),
    };
    Ok((
        host.trim_start_matches('[').trim_end_matches(']').to_string(),
        port,
        password,
    ))
}

fn command(args: &[&str]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n{a}\r\n", a.len()).as_bytes());
    }
    out
}

pub(crate) async fn probe(spec: &CheckSpec) -> Found {
    let (host, port, password) = target(spec)?;
    let stream = tokio::net::TcpStream::connect((host.as_str(), port))
        .await
        .map_err(|e| format!("connect {host}:{port}: {e}"))?;
    let mut conn = BufReader::new(stream);
    let mut line = String::new();
    if let Some(pw) = password {
        conn.get_mut()
            .write_all(&command(&["AUTH", &pw]))
            .await
            .map_err(|e| format!("send AUTH: {e}"))?;
        conn.read_line(&mut line)
            .await
            .map_err(|e| format!("read AUTH reply: {e}"))?;
        if line.trim_end() != "+OK" {
            return Err(format!("AUTH refused: {}", line.trim_end()));
        }
        line.clear();
    }
    conn.get_mut()
        .write_all(&command(&["PING"]))
        .await
        .map_err(|e| format!("send PING: {e}"))?;
    let n = conn
        .read_line(&mut line)
        .await
        .map_err(|e| format!("read PING reply: {e}"))?;
    let reply = line.trim_end();
    if n == 0 {
        return Err("connection closed before the PING reply".into());
    }
    if reply != "+PONG" {
        return Err(format!("PING answered {reply:?}, expected +PONG"));
    }
    Ok((Outcome::Ok, format!("{host}:{port} answered PONG")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::Kind;

    #[test]
    fn urls_give_host_port_password() {
        let mut s = CheckSpec::new("r", Kind::Redis);
        s.url = Some("redis://:pw@127.0.0.1:6380/0".into());
        assert_eq!(target(&s).ok(), Some(("127.0.0.1".into(), 6380, Some("pw".into()))));
        s.url = Some("redis://cache".into());
        assert_eq!(target(&s).ok(), Some(("cache".into(), 6379, None)));
        assert_eq!(command(&["PING"]), b"*1\r\n$4\r\nPING\r\n");
    }
}
