//! The CLI verbs against a fake node served on a loopback port, checking what they print
//! and their exit codes.

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;

use super::{run, Cli, CliError};
use crate::config::LimitsConfig;
use crate::http::fake::{FakeLogService, FakeServer, Mode};
use crate::http::HttpContext;
use crate::types::NodeId;

fn server(mode: Mode) -> FakeServer {
    let context = HttpContext::new(NodeId(1), LimitsConfig::default(), Duration::from_secs(2));
    FakeServer::start(FakeLogService::new(mode), context)
}

/// Runs `raftlog ARGS` with `stdin`; returns what it printed, or its error.
async fn raftlog(args: &[&str], stdin: &str) -> Result<String, CliError> {
    let cli = Cli::try_parse_from(std::iter::once("raftlog").chain(args.iter().copied()))
        .map_err(|error| CliError::Usage(error.to_string()))?;
    let mut output = Vec::new();
    run(cli.command, &mut stdin.as_bytes(), &mut output).await?;
    Ok(String::from_utf8(output).expect("the CLI prints UTF-8"))
}

#[track_caller]
fn assert_exit(result: Result<String, CliError>, code: u8) -> CliError {
    let error = result.expect_err("the command fails");
    assert_eq!(error.exit_code(), ExitCode::from(code), "{error}");
    error
}

#[actix_rt::test]
async fn append_prints_one_offset_per_value() {
    let node = server(Mode::Leader);
    let printed = raftlog(&["append", "s", "a", "b", "--url", &node.url], "")
        .await
        .unwrap();
    assert_eq!(printed, "0\n1\n");
    let printed = raftlog(&["append", "s", "c", "--url", &node.url], "")
        .await
        .unwrap();
    assert_eq!(printed, "2\n");
    assert_eq!(node.service.records("s").len(), 3);
}

#[actix_rt::test]
async fn append_without_values_sends_stdin_lines_in_batches() {
    let node = server(Mode::Leader);
    let lines: String = (0..2_500).map(|n| format!("line {n}\n")).collect();
    let printed = raftlog(&["append", "s", "--url", &node.url], &lines)
        .await
        .unwrap();
    let offsets: Vec<u64> = printed.lines().map(|line| line.parse().unwrap()).collect();
    assert_eq!(offsets, (0..2_500).collect::<Vec<u64>>());
    let records = node.service.records("s");
    assert_eq!(records[2_499].as_ref(), b"line 2499");

    let printed = raftlog(
        &["append", "s", "--url", &node.url],
        "last\r\nlast but not \\n\n",
    )
    .await
    .unwrap();
    assert_eq!(printed, "2500\n2501\n");
    assert_eq!(node.service.records("s")[2_500].as_ref(), b"last");
}

#[actix_rt::test]
async fn append_with_a_producer_is_idempotent_and_a_conditional_conflict_exits_1() {
    let node = server(Mode::Leader);
    let args = [
        "append",
        "s",
        "x",
        "--producer",
        "p",
        "--seq",
        "5",
        "--url",
        &node.url,
    ];
    assert_eq!(raftlog(&args, "").await.unwrap(), "0\n");
    assert_eq!(
        raftlog(&args, "").await.unwrap(),
        "0\n",
        "a retry gets the original offset"
    );
    assert_eq!(node.service.records("s").len(), 1);

    let error = assert_exit(
        raftlog(
            &[
                "append",
                "s",
                "y",
                "--expected-offset",
                "7",
                "--url",
                &node.url,
            ],
            "",
        )
        .await,
        1,
    );
    assert!(error.to_string().contains("offset_mismatch"), "{error}");
    let stale = [
        "append",
        "s",
        "x",
        "--producer",
        "p",
        "--seq",
        "4",
        "--url",
        &node.url,
    ];
    let error = assert_exit(raftlog(&stale, "").await, 1);
    assert!(
        error.to_string().starts_with("stale_producer_seq (409)"),
        "{error}"
    );
}

#[actix_rt::test]
async fn read_prints_offset_tab_value_lines_up_to_the_end() {
    let node = server(Mode::Leader);
    raftlog(
        &["append", "s", "a", "two\nlines", "c", "--url", &node.url],
        "",
    )
    .await
    .unwrap();
    let printed = raftlog(&["read", "s", "--from", "1", "--url", &node.url], "")
        .await
        .unwrap();
    assert_eq!(printed, "1\ttwo\\nlines\n2\tc\n");
    let printed = raftlog(
        &[
            "read",
            "s",
            "--limit",
            "1",
            "--consistency",
            "stale",
            "--url",
            &node.url,
        ],
        "",
    )
    .await
    .unwrap();
    assert_eq!(printed, "0\ta\n");
    assert_eq!(
        raftlog(&["read", "empty", "--url", &node.url], "")
            .await
            .unwrap(),
        ""
    );
}

#[actix_rt::test]
async fn read_follow_waits_for_new_records() {
    let node = server(Mode::Leader);
    raftlog(&["append", "s", "old", "--url", &node.url], "")
        .await
        .unwrap();
    let url = node.url.clone();
    let args = ["read", "s", "--follow", "--limit", "3", "--url", &url];
    let follow = raftlog(&args, "");
    let write = async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        raftlog(&["append", "s", "new1", "new2", "--url", &node.url], "")
            .await
            .unwrap();
    };
    let (printed, ()) = futures::join!(follow, write);
    assert_eq!(printed.unwrap(), "0\told\n1\tnew1\n2\tnew2\n");
}

#[actix_rt::test]
async fn tail_starts_at_the_end_unless_given_from() {
    let node = server(Mode::Leader);
    raftlog(&["append", "s", "before", "--url", &node.url], "")
        .await
        .unwrap();
    let from_start = raftlog(
        &[
            "tail", "s", "--from", "0", "--limit", "1", "--url", &node.url,
        ],
        "",
    )
    .await
    .unwrap();
    assert_eq!(from_start, "0\tbefore\n");
    let nothing = raftlog(&["tail", "s", "--limit", "0", "--url", &node.url], "").await;
    assert_eq!(nothing.unwrap(), "");

    let url = node.url.clone();
    let args = ["tail", "s", "--limit", "2", "--url", &url];
    let tail = raftlog(&args, "");
    let write = async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        raftlog(&["append", "s", "after", "--url", &node.url], "")
            .await
            .unwrap();
        let raw = awc::Client::default()
            .post(format!("{}/v1/streams/s/records", node.url))
            .content_type("application/octet-stream")
            .send_body(vec![0xffu8, b'!']);
        assert!(raw.await.unwrap().status().is_success());
    };
    let (printed, ()) = futures::join!(tail, write);
    assert_eq!(printed.unwrap(), "1\tafter\n2\t\\xff!\n");
}

#[actix_rt::test]
async fn status_prints_the_leader_term_and_a_members_table() {
    let leader = server(Mode::Leader);
    for value in ["a", "b", "c"] {
        raftlog(&["append", "s", value, "--url", &leader.url], "")
            .await
            .unwrap();
    }
    let printed = raftlog(&["status", "--url", &leader.url], "")
        .await
        .unwrap();
    assert!(printed.contains("leader, term 3"), "{printed}");
    assert!(
        printed.contains("commit index 3, applied index 3"),
        "{printed}"
    );
    let table: Vec<&str> = printed
        .lines()
        .skip_while(|line| !line.starts_with("MEMBER"))
        .collect();
    assert_eq!(table[0], "MEMBER  ROLE    KIND   MATCH  LAG  LAST ACK");
    assert_eq!(table[1], "1       leader  voter  3      0    0 ms");
    assert_eq!(table[3], "3               voter  1      2    24 ms");

    // A follower's view, with the table fetched from the leader it names.
    let follower = server(Mode::Follower {
        leader_http: leader.url.clone(),
    });
    let printed = raftlog(&["status", "--url", &follower.url], "")
        .await
        .unwrap();
    assert!(printed.contains("follower, term 3"), "{printed}");
    assert!(
        printed.contains(&format!("leader: node 1 at {}", leader.url)),
        "{printed}"
    );
    assert!(
        printed.contains("3               voter  1      2    24 ms"),
        "{printed}"
    );
}

#[actix_rt::test]
async fn exit_codes_tell_usage_from_refusal_from_unavailability() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let nobody = format!("http://{closed}");
    assert_exit(
        raftlog(&["append", "s", "x", "--url", &nobody], "").await,
        3,
    );
    assert_exit(raftlog(&["status", "--url", &nobody], "").await, 3);

    let no_quorum = server(Mode::NoQuorum);
    let error = assert_exit(
        raftlog(&["append", "s", "x", "--url", &no_quorum.url], "").await,
        3,
    );
    assert!(error.to_string().starts_with("unavailable: "), "{error}");

    let leader = server(Mode::Leader);
    assert_exit(
        raftlog(&["append", "bad name", "x", "--url", &leader.url], "").await,
        2,
    );
    assert_exit(
        raftlog(&["append", "s", "x", "--url", "localhost:7001"], "").await,
        2,
    );
    assert_exit(raftlog(&["read"], "").await, 2);
    assert_exit(raftlog(&["append", "s", "--producer", "p"], "").await, 2);
    let error = assert_exit(
        raftlog(
            &[
                "read",
                "s",
                "--from",
                "0",
                "--url",
                &leader.url,
                "--consistency",
                "strong",
            ],
            "",
        )
        .await,
        2,
    );
    assert!(error.to_string().contains("strong"), "{error}");
}

#[actix_rt::test]
async fn serve_lists_every_config_problem_and_exits_2() {
    let dir = std::env::temp_dir().join(format!("raftlog-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("bad.toml");
    std::fs::write(
        &file,
        "id = 4\ncluster_id = \"x\"\ndata_dir = \"d\"\n[http]\nlisten = \"nowhere\"\n[peer]\nlisten = \"127.0.0.1:1\"\n\
         [[members]]\nid = 1\npeer = \"127.0.0.1:1\"\nhttp = \"http://127.0.0.1:2\"\n[raft]\nheartbeat_interval_ms = 100\n",
    )
    .unwrap();
    let error = assert_exit(
        raftlog(&["serve", "--config", file.to_str().unwrap()], "").await,
        2,
    );
    let text = error.to_string();
    assert!(text.contains("has 3 problems"), "{text}");
    assert!(
        text.contains("http.listen") && text.contains("own id 4") && text.contains("heartbeat"),
        "{text}"
    );

    assert_exit(
        raftlog(&["serve", "--config", "/nonexistent/raftlog.toml"], "").await,
        2,
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A base port for a `raftlog dev` of `nodes` nodes whose HTTP and peer ports (1000 above)
/// were all free a moment ago.
fn free_dev_base_port(nodes: u16) -> u16 {
    let offset = crate::config::DEV_PEER_PORT_OFFSET;
    for _ in 0..100 {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let base = probe.local_addr().unwrap().port();
        drop(probe);
        if u32::from(base) + u32::from(offset) + u32::from(nodes) > 65_535 {
            continue;
        }
        let ports = (0..nodes).flat_map(|n| [base + n, base + n + offset]);
        let held: Result<Vec<_>, _> = ports
            .map(|port| std::net::TcpListener::bind(("127.0.0.1", port)))
            .collect();
        if held.is_ok() {
            return base;
        }
    }
    panic!("no free ports for a dev cluster");
}

#[actix_rt::test]
async fn dev_runs_a_cluster_the_client_verbs_use_stops_cleanly_and_keeps_its_data() {
    let data = std::env::temp_dir().join(format!("raftlog-cli-dev-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data);
    let base_port = free_dev_base_port(3);
    let url = format!("http://127.0.0.1:{base_port}");
    let args = || super::dev::DevArgs {
        nodes: 3,
        data: data.clone(),
        base_port,
        set: vec!["limits.long_poll_ms_max=200".to_string()],
    };
    // Runs `raftlog dev` until `session` is done, then stops it as Ctrl-C would; returns
    // what dev printed and what the session returned.
    async fn with_dev<T>(
        args: super::dev::DevArgs,
        session: impl std::future::Future<Output = T>,
    ) -> (String, T) {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let shutdown = Box::pin(async move {
            let _ = stopped.await;
        });
        let mut printed = Vec::new();
        let dev = super::dev::run_until(args, &mut printed, shutdown);
        let session = async {
            let value = session.await;
            let _ = stop.send(());
            value
        };
        let (outcome, value) = futures::join!(dev, session);
        outcome.expect("dev stops cleanly (exit 0)");
        (String::from_utf8(printed).unwrap(), value)
    }
    async fn ready(url: &str) {
        let client = awc::Client::default();
        let deadline = std::time::Instant::now() + Duration::from_secs(15);
        loop {
            let answer = client.get(format!("{url}/readyz")).send().await;
            if answer.is_ok_and(|answer| answer.status().is_success()) {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{url} never got ready"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    let (printed, (appended, status, waited)) = with_dev(args(), async {
        ready(&url).await;
        let appended = raftlog(&["append", "demo", "hello", "world", "--url", &url], "").await;
        let status = raftlog(&["status", "--url", &url], "").await;
        // `--set limits.long_poll_ms_max=200` cuts a long-poll's wait to 200 ms.
        let started = std::time::Instant::now();
        let read = "/v1/streams/demo/records?from=2&wait_ms=60000&consistency=stale";
        let mut answer = awc::Client::default()
            .get(format!("{url}{read}"))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 200);
        let _ = answer.body().await;
        (appended, status, started.elapsed())
    })
    .await;
    for line in [
        format!("node 1  http://127.0.0.1:{base_port}"),
        format!("node 3  http://127.0.0.1:{}", base_port + 2),
        format!("curl -s -X POST http://127.0.0.1:{base_port}/v1/streams/demo/records"),
    ] {
        assert!(printed.contains(&line), "{printed}");
    }
    assert_eq!(appended.unwrap(), "0\n1\n");
    let status = status.unwrap();
    let table: Vec<&str> = status
        .lines()
        .skip_while(|line| !line.starts_with("MEMBER"))
        .collect();
    assert_eq!(table.len(), 4, "{status}");
    assert_eq!(
        table.iter().filter(|row| row.contains("leader")).count(),
        1,
        "{status}"
    );
    assert!(waited < Duration::from_secs(5), "waited {waited:?}");

    // A second run finds the data again.
    let (_, read) = with_dev(args(), async {
        ready(&url).await;
        raftlog(&["read", "demo", "--url", &url], "").await
    })
    .await;
    assert_eq!(read.unwrap(), "0\thello\n1\tworld\n");

    // A bad --set is a config error (exit 2), and nothing starts.
    let mut bad = args();
    bad.set = vec!["data_dir=\"/\"".to_string()];
    let outcome = super::dev::run_until(bad, &mut Vec::new(), Box::pin(async {})).await;
    let error = assert_exit(outcome.map(|()| String::new()), 2);
    assert!(
        error.to_string().contains("cannot be overridden"),
        "{error}"
    );
    std::fs::remove_dir_all(&data).unwrap();
}
