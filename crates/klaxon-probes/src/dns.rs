//! DNS: resolve `hostname` with the system resolver (so `/etc/hosts`
//! counts) and check the expected A or AAAA addresses are among the answers.

use std::collections::BTreeSet;
use std::net::IpAddr;

use crate::spec::{CheckSpec, RecordType};
use crate::{Found, Outcome};

pub(crate) async fn probe(spec: &CheckSpec) -> Found {
    let name = spec.hostname.as_deref().ok_or("hostname is not set")?;
    let want_v6 = spec.record_type == Some(RecordType::Aaaa);
    let rtype = if want_v6 { "AAAA" } else { "A" };
    let answers: BTreeSet<IpAddr> = tokio::net::lookup_host((name, 0))
        .await
        .map_err(|e| format!("resolve {name}: {e}"))?
        .map(|a| a.ip())
        .filter(|ip| ip.is_ipv6() == want_v6)
        .collect();
    if answers.is_empty() {
        return Err(format!("{name} has no {rtype} record"));
    }
    let shown = answers.iter().map(|a| a.to_string()).collect::<Vec<_>>().join(", ");
    let missing: Vec<&str> = spec
        .expected
        .iter()
        .filter(|e| e.parse::<IpAddr>().map(|ip| !answers.contains(&ip)).unwrap_or(true))
        .map(String::as_str)
        .collect();
    if !missing.is_empty() {
        return Err(format!(
            "{name} {rtype}: expected {} among the answers, got {shown}",
            missing.join(", ")
        ));
    }
    Ok((Outcome::Ok, format!("{name} {rtype} {shown}")))
}
