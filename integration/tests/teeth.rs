//! The suite's teeth: runs that really lose writes or really serve stale reads must fail the
//! checks, end to end — real processes, the real recorder, convergence, `check_history`.
//! Without these, a green suite could mean the pipeline checks nothing.

use std::time::Duration;

use raftlog::testing::{check_history, ClientId, Consistency, Outcome, Property};
use raftlog_integration::client::{read_recorded, ReadAt, Recording};
use raftlog_integration::cluster::{Cluster, ClusterSpec};
use raftlog_integration::http::request;
use raftlog_integration::nemesis::{Fault, NemesisConfig};
use raftlog_integration::run::{run, RunConfig};
use raftlog_integration::view::block_on;

/// Every node forgets everything mid-run: acknowledged appends vanish, and the run must
/// fail on exactly that.
#[test]
#[ignore = "needs the release binary (and root for namespaces): scripts/test-integration"]
fn total_amnesia_fails_the_acknowledged_appends_check() {
    let mut nemesis = NemesisConfig::new(&[Fault::WipeAll]);
    nemesis.interval_ms = (3_000, 3_000);
    let mut config = RunConfig::new("teeth_amnesia", 3, 1, nemesis);
    config.duration = Duration::from_secs(5);
    config.expect_failure = true;
    let failure = run(&config).expect_err("wiping every node must lose acknowledged writes");
    assert!(
        failure.contains("acknowledged appends violated"),
        "the run failed, but not on lost acknowledged appends:\n{failure}"
    );
}

/// A follower cut off from the others serves its local state at `stale`; recorded as if it
/// were a linearizable read, it must fail real-time order and the WGL check.
#[test]
#[ignore = "needs the release binary (and root for namespaces): scripts/test-integration"]
fn a_stale_read_recorded_as_linearizable_fails_the_checks() {
    let mut cluster = Cluster::start(ClusterSpec::new("teeth_stale", 3)).expect("cluster");
    let view = cluster.view();
    let recording = Recording::new();
    let (leader, _) = block_on(view.leader()).expect("a leader");
    let follower = view
        .ids()
        .into_iter()
        .find(|&id| id != leader)
        .expect("a follower");
    cluster.faults().isolate(follower).expect("isolate");

    let body = br#"{"records": [{"value": "fresh"}]}"#;
    let call = raftlog::testing::Call::Append(raftlog::testing::AppendCall {
        stream: "t".into(),
        values: vec![bytes::Bytes::from_static(b"fresh")],
        producer: None,
        expected_offset: None,
    });
    let op = recording
        .recorder
        .invoke(ClientId(1), call, recording.now());
    let result = block_on(request(
        view.endpoint(leader),
        "POST",
        "/v1/streams/t/records",
        Some(("application/json", body)),
        Duration::from_secs(5),
    ));
    let outcome = raftlog_integration::client::append_outcome(&result);
    assert!(matches!(outcome, Outcome::Appended { .. }), "{result:?}");
    recording.recorder.complete(op, outcome, recording.now());

    // Stale at the isolated follower, recorded as linearizable: a lie the checks must see.
    let lie = ReadAt {
        asked: Consistency::Stale,
        ..ReadAt::new(
            follower,
            "t",
            Consistency::Linearizable,
            Duration::from_secs(5),
        )
    };
    let read = block_on(read_recorded(&view, &recording, ClientId(2), lie));
    assert!(
        matches!(read, Outcome::Read { ref records, .. } if records.is_empty()),
        "{read:?}"
    );

    cluster.heal().expect("heal");
    let final_log =
        block_on(view.converge(&["t".to_string()], Duration::from_secs(30))).expect("convergence");
    let violations = check_history(&recording.recorder.finish(), &final_log)
        .expect_err("a stale read passed as linearizable must be caught");
    let found: Vec<Property> = violations.iter().map(|v| v.property).collect();
    assert!(found.contains(&Property::RealTimeOrder), "{violations:?}");
    assert!(found.contains(&Property::Linearizability), "{violations:?}");
    cluster.mark_passed();
}
