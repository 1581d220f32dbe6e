//! Prometheus: an instant query (`GET /api/v1/query`) compared with a
//! threshold. `op` and `threshold` state the failing condition (error rate
//! above 0.05): any sample that meets it is down; `warn_threshold` gives
//! degraded. An empty result is ok (nothing crosses the line), as in
//! alerting rules.

use serde::Deserialize;
use serde_json::Value;

use crate::spec::CheckSpec;
use crate::{Found, Outcome};

#[derive(Deserialize)]
struct Answer {
    status: String,
    #[serde(default)]
    data: Option<Data>,
    #[serde(default, rename = "errorType")]
    error_type: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Deserialize)]
struct Data {
    #[serde(rename = "resultType")]
    result_type: String,
    result: Value,
}

/// `[<unix time>, "<value>"]` → the value.
fn sample_value(v: &Value) -> Result<f64, String> {
    let text = v
        .get(1)
        .and_then(Value::as_str)
        .ok_or_else(|| format!("sample {v} is not [time, \"value\"]"))?;
    text.parse::<f64>()
        .map_err(|_| format!("sample value {text:?} is not a number"))
}

/// Samples of a vector or scalar result, each with its labels shown.
pub(crate) fn samples(body: &[u8]) -> Result<Vec<(String, f64)>, String> {
    let a: Answer = serde_json::from_slice(body).map_err(|e| format!("not a Prometheus API answer: {e}"))?;
    if a.status != "success" {
        return Err(format!(
            "query failed: {} {}",
            a.error_type.unwrap_or_default(),
            a.error.unwrap_or_default()
        ));
    }
    let d = a.data.ok_or("answer without data")?;
    match d.result_type.as_str() {
        "scalar" => Ok(vec![(String::new(), sample_value(&d.result)?)]),
        "vector" => d
            .result
            .as_array()
            .ok_or("vector result is not an array")?
            .iter()
            .map(|s| {
                let labels = s
                    .get("metric")
                    .and_then(Value::as_object)
                    .map(|m| {
                        m.iter()
                            .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                            .collect::<Vec<_>>()
                            .join(",")
                    })
                    .unwrap_or_default();
                Ok((labels, sample_value(s.get("value").unwrap_or(&Value::Null))?))
            })
            .collect(),
        other => Err(format!("result type {other} (expected vector or scalar)")),
    }
}

pub(crate) async fn probe(spec: &CheckSpec) -> Found {
    let base = spec.url.as_deref().ok_or("url is not set")?;
    let query = spec.query.as_deref().ok_or("query is not set")?;
    let op = spec.op.ok_or("op is not set")?;
    let threshold = spec.threshold.ok_or("threshold is not set")?;
    let url = format!("{}/api/v1/query", base.trim_end_matches('/'));
    let http = crate::http::client(spec)?;
    let mut rb = http.get(&url).query(&[("query", query)]);
    for (k, v) in &spec.headers {
        rb = rb.header(k, v);
    }
    let resp = rb.send().await.map_err(|e| format!("GET {url}: {e}"))?;
    let status = resp.status();
    let body = resp.bytes().await.map_err(|e| format!("GET {url}: {e}"))?;
    if !status.is_success() && status.as_u16() != 422 && status.as_u16() != 400 {
        return Err(format!("GET {url}: status {status}"));
    }
    let found = samples(&body)?;
    let shown = |l: &str, v: f64| {
        if l.is_empty() {
            v.to_string()
        } else {
            format!("{{{l}}} {v}")
        }
    };
    let cond = |t: f64| format!("{} {t}", op.as_str());
    if let Some((l, v)) = found.iter().find(|(_, v)| op.holds(*v, threshold)) {
        return Err(format!("{query}: {} {}", shown(l, *v), cond(threshold)));
    }
    if let Some(w) = spec.warn_threshold
        && let Some((l, v)) = found.iter().find(|(_, v)| op.holds(*v, w))
    {
        return Ok((Outcome::Degraded, format!("{query}: {} {}", shown(l, *v), cond(w))));
    }
    let values = found.iter().map(|(l, v)| shown(l, *v)).collect::<Vec<_>>().join(", ");
    if found.is_empty() {
        return Ok((Outcome::Ok, format!("{query}: no samples")));
    }
    Ok((
        Outcome::Ok,
        format!("{query}: {values} (fails when {})", cond(threshold)),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vector_and_scalar_results() {
        let v = br#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{"job":"api"},"value":[1435781451.781,"0.07"]}]}}"#;
        assert_eq!(samples(v).ok(), Some(vec![("job=api".to_string(), 0.07)]));
        let s = br#"{"status":"success","data":{"resultType":"scalar","result":[1435781451.781,"12"]}}"#;
        assert_eq!(samples(s).ok(), Some(vec![(String::new(), 12.0)]));
        let e = br#"{"status":"error","errorType":"bad_data","error":"parse error"}"#;
        assert!(samples(e).is_err_and(|m| m.contains("bad_data")));
    }
}
