//! The real binary: `klaxon serve` and the CLI verbs against it.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use crate::support::TestDb;

pub const BIN: &str = env!("CARGO_BIN_EXE_klaxon");
const TOKEN: &str = "kx_cli_admin_secret_abcdefghijklmnop";

pub struct Server {
    pub child: Child,
    pub url: String,
    stdout: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(cwd: &Path, db_url: Option<&str>, admin_token: Option<&str>, extra: &[&str]) -> Server {
    serve_env(cwd, db_url, admin_token, extra, &[])
}

/// `klaxon serve` with extra environment variables.
pub fn serve_env(
    cwd: &Path,
    db_url: Option<&str>,
    admin_token: Option<&str>,
    extra: &[&str],
    envs: &[(&str, &str)],
) -> Server {
    let mut cmd = Command::new(BIN);
    cmd.current_dir(cwd)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args(extra);
    cmd.env_remove("KLAXON_DATABASE_URL")
        .env_remove("KLAXON_ADMIN_TOKEN")
        .env_remove("KLAXON_CONFIG")
        .env("KLAXON_LOG", "warn");
    if let Some(u) = db_url {
        cmd.args(["--database-url", u]);
    }
    if let Some(t) = admin_token {
        cmd.env("KLAXON_ADMIN_TOKEN", t);
    }
    cmd.envs(envs.iter().copied());
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn klaxon serve");
    let stderr = child.stderr.take().expect("stderr");
    let mut url = None;
    let mut seen = String::new();
    for line in BufReader::new(stderr).lines() {
        let line = line.expect("line");
        seen.push_str(&line);
        seen.push('\n');
        if let Some(rest) = line.split("listening on ").nth(1) {
            url = Some(rest.split_whitespace().next().expect("url").to_string());
            break;
        }
    }
    let url = url.unwrap_or_else(|| panic!("klaxon serve did not start:\n{seen}"));
    // The first-start banner (if any) was written to stdout before the
    // listening line went to stderr; collect it without blocking on a pipe
    // that stays open.
    let out = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut stdout = String::new();
    if admin_token.is_none() {
        while let Ok(line) = rx.recv_timeout(std::time::Duration::from_millis(500)) {
            stdout.push_str(&line);
            stdout.push('\n');
            if line.contains("KLAXON_TOKEN=") {
                break;
            }
        }
    }
    Server { child, url, stdout }
}

pub fn klaxon(url: &str, token: Option<&str>, args: &[&str]) -> (i32, String, String) {
    let mut cmd = Command::new(BIN);
    cmd.args(args).env("KLAXON_URL", url).env_remove("KLAXON_TOKEN");
    if let Some(t) = token {
        cmd.env("KLAXON_TOKEN", t);
    }
    let out = cmd.output().expect("run klaxon");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn walkthrough(url: &str) {
    let ok = |args: &[&str]| {
        let (code, out, err) = klaxon(url, Some(TOKEN), args);
        assert_eq!(code, 0, "klaxon {args:?} failed:\n{out}\n{err}");
        out
    };
    let out = ok(&[
        "incident",
        "declare",
        "--title",
        "API returning 500s",
        "--severity",
        "SEV-1",
        "--service",
        "api",
        "--role",
        "ic=alice",
        "--user-impact",
        "Uploads fail",
        "--json",
    ]);
    let inc: serde_json::Value = serde_json::from_str(&out).expect("json");
    let id = inc["id"].as_str().expect("id").to_string();
    assert!(id.starts_with("INC-") && id.ends_with("-001"), "{id}");
    assert_eq!(inc["roles"]["incident_commander"], "alice");

    let table = ok(&["incident", "list", "--status", "open"]);
    assert!(
        table.contains(&id) && table.contains("API returning 500s") && table.contains("alice"),
        "{table}"
    );
    ok(&["ack", &id, "--message", "on it"]);
    ok(&["incident", "status", &id, "identified", "--message", "bad deploy"]);
    ok(&["incident", "role", &id, "scribe", "bob"]);
    ok(&["incident", "note", &id, "rolling back"]);
    ok(&["incident", "update", &id, "--workaround", "use the EU endpoint"]);
    let shown = ok(&["incident", "show", &id]);
    assert!(
        shown.contains("identified") && shown.contains("use the EU endpoint"),
        "{shown}"
    );
    let tl = ok(&["timeline", &id]);
    assert!(
        tl.contains("status triggered → acknowledged: on it") && tl.contains("note: rolling back"),
        "{tl}"
    );
    let verified = ok(&["timeline", &id, "--verify"]);
    assert!(verified.contains("timeline intact — 6 events"), "{verified}");

    let (code, _, err) = klaxon(url, Some(TOKEN), &["incident", "status", &id, "triggered"]);
    assert_ne!(code, 0);
    assert!(err.contains("409") && err.contains("allowed"), "{err}");
    let (code, _, err) = klaxon(
        url,
        Some(TOKEN),
        &["incident", "declare", "--title", "x", "--severity", "SEV-9"],
    );
    assert_ne!(code, 0);
    assert!(err.contains("field: severity"), "{err}");
    let (code, _, err) = klaxon(url, None, &["incident", "declare", "--title", "x"]);
    assert_ne!(code, 0);
    assert!(err.contains("401"), "{err}");

    let tok = ok(&[
        "token",
        "create",
        "--name",
        "pager-bot",
        "--role",
        "responder",
        "--json",
    ]);
    let tok: serde_json::Value = serde_json::from_str(&tok).expect("json");
    let list = ok(&["token", "list"]);
    assert!(
        list.contains("pager-bot") && !list.contains(tok["token"].as_str().expect("secret")),
        "{list}"
    );
    ok(&["token", "revoke", "pager-bot"]);
}

#[test]
fn cli_walkthrough_on_sqlite() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = format!("sqlite://{}", dir.path().join("cli.db").display());
    let server = serve(dir.path(), Some(&db), Some(TOKEN), &[]);
    walkthrough(&server.url);
}

#[test]
fn cli_walkthrough_on_postgres() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let db = rt.block_on(TestDb::new("postgres"));
    let dir = tempfile::tempdir().expect("tempdir");
    let server = serve(dir.path(), Some(db.url()), Some(TOKEN), &[]);
    walkthrough(&server.url);
    drop(server);
    drop(db);
}

#[test]
fn first_start_creates_klaxon_db_in_wal_mode_and_prints_the_admin_token() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = serve(dir.path(), None, None, &[]);
    assert!(dir.path().join("klaxon.db").exists(), "./klaxon.db is created");
    let line = server
        .stdout
        .lines()
        .find(|l| l.contains("export KLAXON_TOKEN="))
        .unwrap_or_else(|| panic!("no token banner: {}", server.stdout));
    let token = line.split('=').nth(1).expect("token").trim().to_string();
    let (code, out, err) = klaxon(
        &server.url,
        Some(&token),
        &["incident", "declare", "--title", "first", "--json"],
    );
    assert_eq!(code, 0, "{out}{err}");
    let wal = std::fs::read(dir.path().join("klaxon.db")).expect("db");
    // SQLite header bytes 18-19 are 2 in WAL mode.
    assert_eq!((wal[18], wal[19]), (2, 2), "journal_mode is WAL");
    drop(server);
    // Restarting on the same file prints no new token and keeps the data.
    let again = serve(dir.path(), None, None, &[]);
    assert!(!again.stdout.contains("KLAXON_TOKEN"), "{}", again.stdout);
    let (code, out, _) = klaxon(&again.url, Some(&token), &["incident", "list", "--json"]);
    assert_eq!(code, 0);
    assert!(out.contains("first"));
}

#[test]
fn config_check_reports_file_line_and_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let good = dir.path().join("good.yaml");
    std::fs::write(
        &good,
        "listen: 127.0.0.1:9090\nseverities:\n  preset: p0-p3\nservices:\n  - key: api\n    name: Public API\n",
    )
    .expect("write");
    let (code, out, err) = klaxon(
        "http://unused",
        None,
        &["config", "check", good.to_str().expect("path")],
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("P0, P1, P2, P3"), "{out}");

    let bad = dir.path().join("bad.yaml");
    std::fs::write(
        &bad,
        "listen: 127.0.0.1:9090\ncategories:\n  - key: availability\n  - key: availability\n",
    )
    .expect("write");
    let (code, _, err) = klaxon("http://unused", None, &["config", "check", bad.to_str().expect("path")]);
    assert_eq!(code, 1);
    assert!(err.contains("bad.yaml:4: categories[1].key"), "{err}");

    let typo = dir.path().join("typo.yaml");
    std::fs::write(&typo, "listen: 127.0.0.1:9090\nseverity:\n  preset: sev\n").expect("write");
    let (code, _, err) = klaxon(
        "http://unused",
        None,
        &["config", "check", typo.to_str().expect("path")],
    );
    assert_eq!(code, 1);
    assert!(err.contains("typo.yaml:2") && err.contains("severity"), "{err}");

    // A backlog too small to take a burst, or not a number; a wait for room
    // longer than senders wait, or not a duration.
    for (body, needle) in [
        ("ingest:\n  max_backlog: 10\n", "ingest.max_backlog: 10: at least 1000"),
        ("ingest:\n  max_backlog: lots\n", "backlog.yaml:2: ingest.max_backlog"),
        ("ingest:\n  backlog_wait: 5m\n", "ingest.backlog_wait: 5m: at most 30s"),
        ("ingest:\n  backlog_wait: soon\n", "backlog.yaml:2: ingest.backlog_wait"),
    ] {
        let f = dir.path().join("backlog.yaml");
        std::fs::write(&f, body).expect("write");
        let (code, _, err) = klaxon("http://unused", None, &["config", "check", f.to_str().expect("path")]);
        assert_eq!(code, 1, "{body}");
        assert!(err.contains(needle), "{err}");
    }

    // A server refuses to start on a broken file.
    let out = Command::new(BIN)
        .args([
            "serve",
            "--config",
            bad.to_str().expect("path"),
            "--listen",
            "127.0.0.1:0",
        ])
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("categories[1].key"));
}

/// `serve_env` stops reading the server's stderr once it listens, as a log
/// pipe whose reader went away would. A request whose handler logs a warning
/// (a Twilio callback with a bad signature) still gets its answer, twice, and
/// the server still takes alerts.
#[tokio::test]
async fn a_closed_stderr_does_not_break_what_logs() {
    klaxon_client::install_crypto_provider();
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = dir.path().join("klaxon.yaml");
    std::fs::write(
        &cfg,
        "engine:\n  public_url: http://klaxon.test\nchannels:\n  twilio:\n    account_sid: AC0123456789abcdef0123456789abcdef\n    auth_token: twilio-token\n    from: \"+15005550006\"\n",
    )
    .unwrap();
    let server = serve_env(dir.path(), None, Some(TOKEN), &["--config", cfg.to_str().unwrap()], &[]);
    let http = reqwest::Client::new();
    for _ in 0..2 {
        let r = http
            .post(format!("{}/hooks/twilio/voice?incident=INC-1&user=bob", server.url))
            .header("x-twilio-signature", "not-a-signature")
            .form(&[("AccountSid", "AC0123456789abcdef0123456789abcdef"), ("Digits", "1")])
            .send()
            .await
            .expect("an answer, not a dropped connection");
        assert_eq!(r.status(), reqwest::StatusCode::FORBIDDEN);
    }
    let (code, out, err) = klaxon(
        &server.url,
        Some(TOKEN),
        &[
            "integration",
            "create",
            "--name",
            "prom",
            "--format",
            "generic",
            "--json",
        ],
    );
    assert_eq!(code, 0, "{out}{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let key = v["key"].as_str().unwrap();
    let r = http
        .post(format!("{}/ingest/generic/{key}", server.url))
        .json(&serde_json::json!({"title": "Disk full", "dedup_key": "disk", "status": "firing"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::ACCEPTED);
}

#[test]
fn serve_uses_the_config_file_catalog() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = dir.path().join("klaxon.yaml");
    std::fs::write(
        &cfg,
        "severities:\n  preset: p0-p3\nid_format: \"OPS-{yyyy}-{seq:4}\"\n",
    )
    .expect("write");
    let db = format!("sqlite://{}", dir.path().join("k.db").display());
    let server = serve(
        dir.path(),
        Some(&db),
        Some(TOKEN),
        &["--config", cfg.to_str().expect("path")],
    );
    let (code, out, err) = klaxon(
        &server.url,
        Some(TOKEN),
        &["incident", "declare", "--title", "p0", "--severity", "P0", "--json"],
    );
    assert_eq!(code, 0, "{err}");
    let inc: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert!(inc["id"].as_str().expect("id").ends_with("-0001"), "{inc}");
    assert!(inc["id"].as_str().expect("id").starts_with("OPS-"), "{inc}");
    assert_eq!(inc["severity"], "P0");
}

#[test]
fn serve_applies_people_and_schedules_from_the_config_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = dir.path().join("klaxon.yaml");
    std::fs::write(
        &cfg,
        "users:\n  - {id: alice, name: Alice, email: alice@example.com}\nschedules:\n  - name: dba\n    time_zone: UTC\n    roles:\n      primary:\n        - {participants: [alice], shift: {weeks: 1}, start: 2026-01-05}\n",
    )
    .expect("write");
    let db = format!("sqlite://{}", dir.path().join("k.db").display());
    let server = serve(
        dir.path(),
        Some(&db),
        Some(TOKEN),
        &["--config", cfg.to_str().expect("path")],
    );
    let (code, out, err) = klaxon(
        &server.url,
        Some(TOKEN),
        &[
            "oncall",
            "now",
            "--schedule",
            "dba",
            "--at",
            "2026-11-23T12:00:00Z",
            "--json",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("\"primary\": \"alice\""), "{out}");
    let (code, out, _) = klaxon(&server.url, Some(TOKEN), &["user", "list"]);
    assert_eq!(code, 0);
    assert!(out.contains("alice@example.com"), "{out}");
}

/// README's "Page the on-call" block, run as written by `sh` against a real server.
#[test]
fn readme_paging_walkthrough_runs() {
    let readme = include_str!("../../../../README.md");
    let block = readme
        .split("### Page the on-call")
        .nth(1)
        .and_then(|r| r.split("```sh\n").nth(1))
        .and_then(|r| r.split("```").next())
        .expect("the paging block in README.md");
    // The acknowledged ID depends on the day; the rest runs verbatim.
    let script: String = block
        .lines()
        .filter(|l| !l.starts_with("klaxon ack "))
        .map(|l| format!("{l}\n"))
        .collect();
    let dir = tempfile::tempdir().expect("tempdir");
    let db = format!("sqlite://{}", dir.path().join("k.db").display());
    let server = serve(dir.path(), Some(&db), Some(TOKEN), &[]);
    let bin_dir = Path::new(BIN).parent().expect("bin dir");
    let path = format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap_or_default());
    let out = Command::new("sh")
        .arg("-ec")
        .arg(&script)
        .current_dir(dir.path())
        .env("PATH", path)
        .env("KLAXON_URL", &server.url)
        .env("KLAXON_TOKEN", TOKEN)
        .output()
        .expect("sh");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{script}\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let declared = stdout
        .split_whitespace()
        .find(|w| w.starts_with("INC-"))
        .expect("the declare prints the ID")
        .to_string();
    let (code, out, err) = klaxon(&server.url, Some(TOKEN), &["incident", "show", &declared, "--json"]);
    assert_eq!(code, 0, "{err}");
    let inc: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(inc["escalation_policy"], "primary");
    let (code, _, err) = klaxon(&server.url, Some(TOKEN), &["ack", &declared]);
    assert_eq!(code, 0, "{err}");
}

#[test]
fn templates_are_checked_by_config_check_and_previewed_by_the_cli() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bad = dir.path().join("bad.yaml");
    std::fs::write(
        &bad,
        "listen: 127.0.0.1:9090\ntemplates:\n  status-update:\n    subject: \"{{ severity }} {{ titel }}\"\n    body: x\n    short: y\n",
    )
    .expect("write");
    let (code, _, err) = klaxon("http://unused", None, &["config", "check", bad.to_str().expect("path")]);
    assert_eq!(code, 1);
    assert!(err.contains("bad.yaml:3: templates.status-update.subject"), "{err}");

    let good = dir.path().join("good.yaml");
    std::fs::write(
        &good,
        "templates:\n  resolution:\n    subject: \"Fixed: {{ title }}\"\n    body: \"{{ id }} is fixed after {{ duration }}.\"\n    short: \"{{ id }} fixed\"\n",
    )
    .expect("write");
    let db = format!("sqlite://{}", dir.path().join("k.db").display());
    let server = serve(
        dir.path(),
        Some(&db),
        Some(TOKEN),
        &["--config", good.to_str().expect("path")],
    );
    let (code, out, err) = klaxon(
        &server.url,
        Some(TOKEN),
        &["incident", "declare", "--title", "Disk full", "--json"],
    );
    assert_eq!(code, 0, "{err}");
    let id = serde_json::from_str::<serde_json::Value>(&out).expect("json")["id"]
        .as_str()
        .expect("id")
        .to_string();
    let (code, out, err) = klaxon(
        &server.url,
        Some(TOKEN),
        &["template", "render", "resolution", "--incident", &id],
    );
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("Subject: Fixed: Disk full") && out.contains(&format!("{id} is fixed after 0 minutes.")),
        "{out}"
    );
    let (code, out, _) = klaxon(&server.url, Some(TOKEN), &["template", "list"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("escalation-request") && out.contains("Fixed: {{ title }}"),
        "{out}"
    );
    let (code, _, err) = klaxon(&server.url, Some(TOKEN), &["template", "show", "gossip"]);
    assert!(code != 0 && err.contains("not found"), "{err}");
    let (code, out, err) = klaxon(
        &server.url,
        Some(TOKEN),
        &[
            "incident",
            "post-update",
            &id,
            "Cleared old logs",
            "--public",
            "--status",
            "monitoring",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("Posted update #1") && out.contains("INCIDENT UPDATE #1"),
        "{out}"
    );
    let (code, out, _) = klaxon(&server.url, Some(TOKEN), &["incident", "updates", &id]);
    assert_eq!(code, 0);
    assert!(
        out.contains("Cleared old logs") && out.contains("monitoring") && out.contains("yes"),
        "{out}"
    );
}

/// README's "Tell the world" block, run by `sh` against a real server (the
/// incident ID it names is the one its first line declares).
#[test]
fn readme_tell_the_world_runs() {
    let readme = include_str!("../../../../README.md");
    let block = readme
        .split("### Tell the world")
        .nth(1)
        .and_then(|r| r.split("```sh\n").nth(1))
        .and_then(|r| r.split("```").next())
        .expect("the block in README.md");
    let dir = tempfile::tempdir().expect("tempdir");
    let db = format!("sqlite://{}", dir.path().join("k.db").display());
    let server = serve(dir.path(), Some(&db), Some(TOKEN), &[]);
    let bin_dir = Path::new(BIN).parent().expect("bin dir");
    let path = format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap_or_default());
    let sh = |script: &str| {
        Command::new("sh")
            .arg("-ec")
            .arg(script)
            .current_dir(dir.path())
            .env("PATH", &path)
            .env("KLAXON_URL", &server.url)
            .env("KLAXON_TOKEN", TOKEN)
            .output()
            .expect("sh")
    };
    let mut lines = block.lines();
    let first = sh(lines.next().expect("a declare line"));
    assert!(first.status.success(), "{}", String::from_utf8_lossy(&first.stderr));
    let stdout = String::from_utf8_lossy(&first.stdout);
    let id = stdout
        .split_whitespace()
        .find(|w| w.starts_with("INC-"))
        .expect("the declare prints the ID")
        .trim_end_matches([',', '.', ':'])
        .to_string();
    let rest: String = lines
        .map(|l| format!("{}\n", l.replace("INC-2026-11-23-003", &id)))
        .collect();
    let out = sh(&rest);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{rest}\n{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains(&id) && text.contains("Payments failing") && text.contains("critical"),
        "{text}"
    );
}
