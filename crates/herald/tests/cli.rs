//! The `herald` binary as users run it: a real server process, killed with SIGKILL.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn herald() -> Command {
    Command::new(env!("CARGO_BIN_EXE_herald"))
}

/// Starts `herald serve` and returns it with its URL (from its one startup line).
fn serve(data_dir: &std::path::Path) -> (Proc, String) {
    serve_with(data_dir, &[])
}

/// Like [`serve`], with more arguments.
fn serve_with(data_dir: &std::path::Path, extra: &[&str]) -> (Proc, String) {
    let mut child = herald()
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data_dir)
        .args(extra)
        .env("HERALD_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn herald serve");
    let stdout = child.stdout.take().expect("stdout");
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("startup line");
    let url = line
        .strip_prefix("herald listening on ")
        .and_then(|r| r.split_whitespace().next())
        .unwrap_or_else(|| panic!("unexpected startup line {line:?}"))
        .to_owned();
    (Proc(child), url)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_publish_survives_sigkill_exactly_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut server, url) = serve(dir.path());
    let http = herald_testkit::http_client();
    // Concurrent publishers; every 201 is an acknowledgement that must survive.
    let mut tasks = Vec::new();
    for w in 0..8 {
        let http = http.clone();
        let url = url.clone();
        tasks.push(tokio::spawn(async move {
            let mut acked = Vec::new();
            for i in 0.. {
                let res = http
                    .post(format!("{url}/v1/topics/crash.w{w}/messages"))
                    .header("content-type", "application/json")
                    .body(format!("{{\"w\":{w},\"i\":{i}}}"))
                    .send()
                    .await;
                match res {
                    Ok(r) if r.status() == 201 => {
                        let v: serde_json::Value = match r.json().await {
                            Ok(v) => v,
                            Err(_) => break,
                        };
                        acked.push(v["id"].as_str().expect("id").to_owned());
                    }
                    _ => break,
                }
            }
            acked
        }));
    }
    tokio::time::sleep(Duration::from_millis(700)).await;
    server.0.kill().expect("SIGKILL");
    let _ = server.0.wait();
    let mut acked = Vec::new();
    for t in tasks {
        acked.extend(t.await.expect("publisher"));
    }
    assert!(
        acked.len() > 50,
        "only {} publishes were acknowledged",
        acked.len()
    );

    let (_second, url) = serve(dir.path());
    let mut stored = Vec::new();
    let mut after = "earliest".to_owned();
    loop {
        let page: serde_json::Value = http
            .get(format!(
                "{url}/v1/messages?topic=crash.*&after={after}&limit=1000"
            ))
            .send()
            .await
            .expect("read")
            .json()
            .await
            .expect("json");
        let msgs = page["messages"].as_array().expect("messages").clone();
        if msgs.is_empty() {
            break;
        }
        stored.extend(
            msgs.iter()
                .map(|m| m["id"].as_str().expect("id").to_owned()),
        );
        after = page["next"].as_str().expect("next").to_owned();
    }
    let mut unique = stored.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), stored.len(), "no message is stored twice");
    for id in &acked {
        assert!(
            stored.binary_search(id).is_ok() || stored.contains(id),
            "acknowledged {id} was lost"
        );
    }
}

#[test]
fn publish_read_and_poll_from_the_command_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_server, url) = serve(dir.path());
    let out = herald()
        .args([
            "publish",
            "cli.t",
            "{\"n\":1}",
            "--event",
            "made",
            "--key",
            "k1",
            "--server",
            &url,
        ])
        .output()
        .expect("publish");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let published: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let mut child = herald()
        .args(["publish", "cli.t", "--server", &url])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("publish from stdin");
    use std::io::Write;
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"plain text")
        .expect("write");
    assert!(child.wait_with_output().expect("wait").status.success());

    let out = herald()
        .args(["read", "cli.*", "--server", &url])
        .output()
        .expect("read");
    assert!(out.status.success());
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("ndjson"))
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["id"], published["id"]);
    assert_eq!(lines[0]["event"], "made");
    assert_eq!(lines[0]["data"]["n"], 1);
    assert_eq!(lines[1]["data"], "plain text");
    assert!(String::from_utf8_lossy(&out.stderr).contains(lines[1]["id"].as_str().expect("id")));

    let out = herald()
        .args(["read", "cli.t", "--after", "bogus", "--server", &url])
        .output()
        .expect("read");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid_cursor"));

    // subscribe --via poll prints NDJSON from the cursor on.
    let mut sub = Proc(
        herald()
            .args([
                "subscribe",
                "cli.*",
                "--via",
                "poll",
                "--interval",
                "0.05",
                "--after",
                "earliest",
                "--server",
                &url,
            ])
            .stdout(Stdio::piped())
            .spawn()
            .expect("subscribe"),
    );
    let mut reader = BufReader::new(sub.0.stdout.take().expect("stdout"));
    let mut got = Vec::new();
    for _ in 0..2 {
        let mut line = String::new();
        reader.read_line(&mut line).expect("line");
        let v: serde_json::Value = serde_json::from_str(&line).expect("json");
        got.push(v["id"].as_str().expect("id").to_owned());
    }
    assert_eq!(got[0], published["id"].as_str().expect("id"));
}

#[test]
fn serve_refuses_bad_configuration_clearly() {
    let out = herald()
        .args(["serve", "--memory", "--listen", "127.0.0.1:0"])
        .env("HERALD_LIMITS__MAX_PAYLOAD_BYTES", "0")
        .output()
        .expect("serve");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("max_payload_bytes"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_answers_long_polls_and_exits_zero() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut server, url) = serve(dir.path());
    let http = herald_testkit::http_client();
    let first: serde_json::Value = http
        .post(format!("{url}/v1/topics/term/messages"))
        .body("1")
        .send()
        .await
        .expect("publish")
        .json()
        .await
        .expect("json");
    let after = first["id"].as_str().expect("id").to_owned();
    let poll = tokio::spawn({
        let http = http.clone();
        let url = format!("{url}/v1/topics/term/messages?after={after}&wait=30");
        async move {
            http.get(url)
                .send()
                .await
                .expect("poll")
                .json::<serde_json::Value>()
                .await
                .expect("json")
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let status = Command::new("kill")
        .args(["-TERM", &server.0.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let answer = tokio::time::timeout(Duration::from_secs(5), poll)
        .await
        .expect("the parked long poll is answered")
        .expect("join");
    assert_eq!(answer["messages"], serde_json::json!([]));
    assert_eq!(answer["next"], after.as_str());
    let exit = tokio::task::spawn_blocking(move || server.0.wait().expect("wait"))
        .await
        .expect("join");
    assert_eq!(exit.code(), Some(0), "graceful shutdown exits 0");
    let (_again, url) = serve(dir.path());
    let page: serde_json::Value = http
        .get(format!("{url}/v1/topics/term/messages"))
        .send()
        .await
        .expect("read")
        .json()
        .await
        .expect("json");
    assert_eq!(page["messages"][0]["id"], after.as_str());
}

#[test]
fn subscribe_over_every_push_transport_prints_ndjson() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_server, url) = serve(dir.path());
    let out = herald()
        .args(["publish", "via.t", "{\"n\":1}", "--server", &url])
        .output()
        .expect("publish");
    assert!(out.status.success());
    let first: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    for via in ["sse", "ws", "long-poll", "grpc"] {
        let mut sub = Proc(
            herald()
                .args([
                    "subscribe",
                    "via.*",
                    "--via",
                    via,
                    "--after",
                    "earliest",
                    "--no-fallback",
                    "--server",
                    &url,
                ])
                .stdout(Stdio::piped())
                .spawn()
                .expect("subscribe"),
        );
        let mut reader = BufReader::new(sub.0.stdout.take().expect("stdout"));
        let mut line = String::new();
        reader.read_line(&mut line).expect("line");
        let v: serde_json::Value =
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("{via}: {e}: {line:?}"));
        assert_eq!(v["id"], first["id"], "{via}");
        assert_eq!(v["data"]["n"], 1, "{via}");
    }
}

/// Runs `herald` with args and parses its stdout as JSON.
fn json_out(args: &[&str]) -> serde_json::Value {
    let out = herald().args(args).output().expect("run herald");
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{args:?}: {e}: {}", String::from_utf8_lossy(&out.stdout)))
}

#[test]
fn consume_exec_acks_on_success_and_retries_failures() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_server, url) = serve(dir.path());
    for i in 1..=3 {
        json_out(&[
            "publish",
            "work.q",
            &format!("{{\"n\":{i}}}"),
            "--server",
            &url,
        ]);
    }
    let out_file = dir.path().join("done.txt");
    let script = format!(
        "if [ \"$HERALD_ATTEMPT\" = 1 ]; then echo first try fails >&2; exit 1; fi; cat >> {}; echo >> {}",
        out_file.display(),
        out_file.display()
    );
    let _consumer = Proc(
        herald()
            .args([
                "consume", "work.q", "--group", "g", "--exec", &script, "--server", &url,
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("consume"),
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let lines = loop {
        let text = std::fs::read_to_string(&out_file).unwrap_or_default();
        let lines: Vec<String> = text.lines().map(str::to_owned).collect();
        if lines.len() >= 3 {
            break lines;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "processed only {lines:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(
        lines,
        vec!["{\"n\":1}", "{\"n\":2}", "{\"n\":3}"],
        "each processed once, on its second attempt"
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let stats: serde_json::Value = serde_json::from_slice(
            &herald()
                .args(["read", "work.q.dlq", "--server", &url])
                .output()
                .expect("read")
                .stdout,
        )
        .unwrap_or(serde_json::Value::Null);
        assert!(stats.is_null(), "nothing was dead-lettered");
        let http = std::process::Command::new("curl")
            .arg("-s")
            .arg(format!("{url}/v1/topics/work.q/groups/g"))
            .output();
        match http {
            Ok(o) if String::from_utf8_lossy(&o.stdout).contains("\"lag\":0") => break,
            Ok(_) if std::time::Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(50))
            }
            Ok(o) => panic!(
                "group never drained: {}",
                String::from_utf8_lossy(&o.stdout)
            ),
            Err(_) => break, // no curl on this machine: the file check above suffices
        }
    }
}

#[test]
fn jobs_work_submit_and_wait_from_the_command_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_server, url) = serve(dir.path());
    let _worker = Proc(
        herald()
            .args([
                "jobs", "work", "upper", "--server", &url, "--", "tr", "a-z", "A-Z",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("worker"),
    );
    let doc = json_out(&[
        "jobs",
        "submit",
        "upper",
        "\"hello\"",
        "--wait",
        "15",
        "--server",
        &url,
    ]);
    assert_eq!(doc["status"], "succeeded", "{doc}");
    assert_eq!(doc["result"], "HELLO");
    assert_eq!(doc["attempt"], 1);
    let again = json_out(&[
        "jobs",
        "status",
        "upper",
        doc["id"].as_str().expect("id"),
        "--server",
        &url,
    ]);
    assert_eq!(again, doc);
    let hook = json_out(&[
        "webhooks",
        "add",
        "upper.>",
        "https://93.184.216.34/hook",
        "--server",
        &url,
    ]);
    assert!(
        hook["secret"]
            .as_str()
            .expect("secret")
            .starts_with("whsec_")
    );
    let list = json_out(&["webhooks", "list", "--server", &url]);
    assert_eq!(list["webhooks"][0]["id"], hook["id"]);
}

#[test]
fn rpc_serve_runs_a_command_per_request_and_call_prints_the_reply() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_server, url) = serve(dir.path());
    let _responder = Proc(
        herald()
            .args([
                "rpc", "serve", "upper", "--server", &url, "--", "tr", "a-z", "A-Z",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("rpc serve"),
    );
    let _failing = Proc(
        herald()
            .args(["rpc", "serve", "fails", "--server", &url, "--", "sh", "-c"])
            .arg("echo broken >&2; exit 3")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("rpc serve"),
    );
    // The responders connect in the background: call until they answer.
    let call = |service: &str| {
        herald()
            .args(["rpc", "call", service, "hello there", "--server", &url])
            .output()
            .expect("rpc call")
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let out = loop {
        let out = call("upper");
        if out.status.success() {
            break out;
        }
        let err = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(err.contains("no_responder"), "unexpected failure: {err}");
        assert!(std::time::Instant::now() < deadline, "no responder came up");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(String::from_utf8_lossy(&out.stdout), "HELLO THERE\n");
    let out = loop {
        let out = call("fails");
        let err = String::from_utf8_lossy(&out.stderr).to_string();
        if !err.contains("no_responder") {
            break out;
        }
        assert!(std::time::Instant::now() < deadline, "no responder came up");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(!out.status.success(), "a 500 reply fails the call command");
    assert!(String::from_utf8_lossy(&out.stdout).contains("broken"));
    assert!(String::from_utf8_lossy(&out.stderr).contains("500"));
}

/// Runs `herald ARGS` and returns (success, stdout, stderr).
fn run(args: &[&str]) -> (bool, String, String) {
    let out = herald().args(args).output().expect("run herald");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).trim().to_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn tokens_keys_and_reload_from_the_command_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (ok, hash, err) = run(&["token", "hash", "ops-key"]);
    assert!(
        ok && hash.starts_with("sha256:") && hash.len() == 71,
        "{hash} {err}"
    );
    let config = dir.path().join("herald.toml");
    let auth = |with_key: bool| {
        let mut c =
            "[auth.jwt]\nhs256_secret = \"cli-test-secret-0123456789abcdef0123\"\n".to_owned();
        if with_key {
            c.push_str(&format!(
                "[[auth.api_keys]]\nname = \"ops\"\nhash = \"{hash}\"\npublish = [\">\"]\nsubscribe = [\">\"]\n"
            ));
        }
        c
    };
    std::fs::write(&config, auth(true)).expect("write config");
    let cfg = config.to_str().expect("utf-8 path");
    let (server, url) = serve_with(&dir.path().join("data"), &["--config", cfg]);
    let (ok, token, err) = run(&[
        "token",
        "create",
        "--config",
        cfg,
        "--publish",
        "cli.>",
        "--subscribe",
        "cli.>",
        "--ttl",
        "1h",
        "--subject",
        "tester",
    ]);
    assert!(ok && token.split('.').count() == 3, "{token} {err}");

    let (ok, _, err) = run(&["publish", "cli.x", "1", "--server", &url, "--token", &token]);
    assert!(ok, "{err}");
    let (ok, _, err) = run(&["publish", "other", "1", "--server", &url, "--token", &token]);
    assert!(!ok && err.contains("forbidden"), "{err}");
    let (ok, _, err) = run(&["read", "cli.x", "--server", &url]);
    assert!(!ok && err.contains("unauthorized"), "{err}");
    let out = herald()
        .args(["read", "cli.x", "--server", &url])
        .env("HERALD_TOKEN", &token)
        .output()
        .expect("read");
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 1);
    let (ok, _, err) = run(&[
        "publish", "other", "2", "--server", &url, "--token", "ops-key",
    ]);
    assert!(ok, "{err}");

    // SIGHUP applies the new [auth]: the removed key stops working.
    std::fs::write(&config, auth(false)).expect("rewrite config");
    let hup = Command::new("kill")
        .args(["-HUP", &server.0.id().to_string()])
        .status()
        .expect("kill -HUP");
    assert!(hup.success());
    let mut refused = false;
    for _ in 0..100 {
        let (ok, _, err) = run(&["read", "other", "--server", &url, "--token", "ops-key"]);
        if !ok && err.contains("unauthorized") {
            refused = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(refused, "the removed key still works after SIGHUP");
    let (ok, _, err) = run(&["publish", "cli.y", "1", "--server", &url, "--token", &token]);
    assert!(ok, "JWTs still work: {err}");
}

#[test]
fn serve_refuses_anonymous_access_off_loopback() {
    let out = herald()
        .args(["serve", "--memory", "--listen", "0.0.0.0:0"])
        .output()
        .expect("serve");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--allow-anonymous") && err.contains("[auth]"),
        "{err}"
    );
}

#[test]
fn bench_publish_measures_a_server_it_starts() {
    let out = herald()
        .args([
            "bench",
            "publish",
            "--inflight",
            "1,4",
            "--duration",
            "0.3",
            "--warmup",
            "0.1",
            "--json",
        ])
        .env("HERALD_LOG", "warn")
        .output()
        .expect("bench publish");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_str(&stdout).expect("JSON report");
    assert!(
        report["parameters"]
            .as_array()
            .is_some_and(|p| p.iter().any(|kv| kv[0] == "client_threads" && kv[1] == "1")),
        "{report}"
    );
    let rows = report["rows"].as_array().expect("rows");
    assert_eq!(rows.len(), 2, "{report}");
    for row in rows {
        let rate: f64 = row[2]
            .as_str()
            .expect("msgs/s")
            .replace(',', "")
            .parse()
            .expect("a rate");
        assert!(rate > 0.0, "{row}");
        assert_eq!(row[8], "0", "errors: {row}");
    }
}
