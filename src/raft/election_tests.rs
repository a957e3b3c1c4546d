//! Unit tests of [`Election`]: each rule on its own, asserting the exact actions.

use std::collections::BTreeSet;
use std::time::Duration;

use super::election::*;
use super::message::*;
use crate::raft::read::ReadLevel;
use crate::types::{LogId, LogIndex, MonoTime, NodeId, Term};

const N1: NodeId = NodeId(1);
const N2: NodeId = NodeId(2);
const N3: NodeId = NodeId(3);

fn config(id: NodeId, voters: u64) -> ElectionConfig {
    ElectionConfig {
        id,
        voters: (1..=voters).map(NodeId).collect::<BTreeSet<_>>(),
        election_timeout_min: Duration::from_millis(150),
        election_timeout_max: Duration::from_millis(300),
        heartbeat_interval: Duration::from_millis(50),
        pre_vote: true,
        check_quorum: true,
        lease_reads: true,
        clock_drift_max: 0.05,
        reads_max: 16,
        read_timeout: Duration::from_secs(1),
        jitter_seed: 1,
        overrides: SafetyOverrides::default(),
    }
}

fn ms(v: u64) -> MonoTime {
    MonoTime(v * 1000)
}

fn log(term: u64, index: u64) -> LogId {
    LogId::new(Term(term), LogIndex(index))
}

fn msg(from: NodeId, to: NodeId, term: u64, body: MessageBody) -> Action {
    Action::Send(PeerMessage {
        from,
        to,
        term: Term(term),
        body,
    })
}

fn vote_req(pre_vote: bool, last_log: LogId) -> VoteRequest {
    VoteRequest {
        pre_vote,
        last_log,
        transfer: false,
    }
}

fn vote_resp(pre_vote: bool, granted: bool) -> VoteResponse {
    VoteResponse { pre_vote, granted }
}

fn role(term: u64, role: Role, leader: Option<NodeId>) -> Action {
    Action::RoleChanged(RoleState {
        term: Term(term),
        role,
        leader,
    })
}

fn persist(term: u64, voted_for: Option<NodeId>) -> Action {
    Action::PersistHardState(HardState {
        term: Term(term),
        voted_for,
    })
}

/// A node at `term` that has been left alone long enough to campaign.
fn follower(id: NodeId, term: u64) -> Election {
    Election::new(
        config(id, 3),
        HardState {
            term: Term(term),
            voted_for: None,
        },
        ms(0),
    )
}

/// Drives n1 through PreVote and vote to leadership of term 2 at t=1000ms.
fn leader_n1() -> Election {
    let mut e = follower(N1, 1);
    let mut out = vec![];
    e.on_election_timeout(ms(1000), log(1, 5), &mut out);
    e.on_vote_response(
        ms(1000),
        N2,
        Term(2),
        &vote_resp(true, true),
        log(1, 5),
        &mut out,
    );
    e.on_vote_response(
        ms(1001),
        N2,
        Term(2),
        &vote_resp(false, true),
        log(1, 5),
        &mut out,
    );
    assert_eq!(e.role(), Role::Leader);
    e
}

#[test]
fn timeout_starts_a_pre_vote_without_changing_the_term() {
    let mut e = follower(N1, 1);
    let mut out = vec![];
    e.on_election_timeout(ms(100), log(1, 5), &mut out);
    assert!(out.is_empty(), "not due before the minimum timeout");
    e.on_election_timeout(ms(1000), log(1, 5), &mut out);
    assert_eq!(
        out,
        vec![
            role(1, Role::PreCandidate, None),
            msg(
                N1,
                N2,
                2,
                MessageBody::VoteRequest(vote_req(true, log(1, 5)))
            ),
            msg(
                N1,
                N3,
                2,
                MessageBody::VoteRequest(vote_req(true, log(1, 5)))
            ),
        ]
    );
    assert_eq!(e.term(), Term(1));
}

#[test]
fn pre_vote_majority_starts_a_real_election_persisting_first() {
    let mut e = follower(N1, 1);
    let mut out = vec![];
    e.on_election_timeout(ms(1000), log(1, 5), &mut out);
    out.clear();
    e.on_vote_response(
        ms(1001),
        N3,
        Term(2),
        &vote_resp(true, true),
        log(1, 5),
        &mut out,
    );
    assert_eq!(
        out,
        vec![
            persist(2, Some(N1)),
            role(2, Role::Candidate, None),
            msg(
                N1,
                N2,
                2,
                MessageBody::VoteRequest(vote_req(false, log(1, 5)))
            ),
            msg(
                N1,
                N3,
                2,
                MessageBody::VoteRequest(vote_req(false, log(1, 5)))
            ),
        ]
    );
}

#[test]
fn vote_majority_makes_a_leader_that_heartbeats_at_once() {
    let mut e = follower(N1, 1);
    let mut out = vec![];
    e.on_election_timeout(ms(1000), log(1, 5), &mut out);
    e.on_vote_response(
        ms(1000),
        N2,
        Term(2),
        &vote_resp(true, true),
        log(1, 5),
        &mut out,
    );
    out.clear();
    e.on_vote_response(
        ms(1001),
        N2,
        Term(2),
        &vote_resp(false, true),
        log(1, 5),
        &mut out,
    );
    let hb = |to| {
        msg(
            N1,
            to,
            2,
            MessageBody::Heartbeat(Heartbeat {
                commit: LogIndex(0),
                round: 1,
            }),
        )
    };
    assert_eq!(out, vec![role(2, Role::Leader, Some(N1)), hb(N2), hb(N3)]);
}

#[test]
fn a_majority_of_rejections_ends_the_campaign() {
    let mut e = follower(N1, 1);
    let mut out = vec![];
    e.on_election_timeout(ms(1000), log(1, 5), &mut out);
    out.clear();
    e.on_vote_response(
        ms(1001),
        N2,
        Term(1),
        &vote_resp(true, false),
        log(1, 5),
        &mut out,
    );
    e.on_vote_response(
        ms(1001),
        N3,
        Term(1),
        &vote_resp(true, false),
        log(1, 5),
        &mut out,
    );
    assert_eq!(out, vec![role(1, Role::Follower, None)]);
}

#[test]
fn one_vote_per_term() {
    let mut e = follower(N3, 1);
    let mut out = vec![];
    e.on_vote_request(
        ms(1000),
        N1,
        Term(2),
        &vote_req(false, log(1, 5)),
        log(1, 5),
        &mut out,
    );
    assert_eq!(
        out,
        vec![
            persist(2, None),
            role(2, Role::Follower, None),
            persist(2, Some(N1)),
            msg(N3, N1, 2, MessageBody::VoteResponse(vote_resp(false, true))),
        ]
    );
    out.clear();
    e.on_vote_request(
        ms(1001),
        N2,
        Term(2),
        &vote_req(false, log(1, 9)),
        log(1, 5),
        &mut out,
    );
    assert_eq!(
        out,
        vec![msg(
            N3,
            N2,
            2,
            MessageBody::VoteResponse(vote_resp(false, false))
        )]
    );
    out.clear();
    // Asking again (a retransmission) gets the same answer, without persisting anything new.
    e.on_vote_request(
        ms(1002),
        N1,
        Term(2),
        &vote_req(false, log(1, 5)),
        log(1, 5),
        &mut out,
    );
    assert_eq!(
        out,
        vec![msg(
            N3,
            N1,
            2,
            MessageBody::VoteResponse(vote_resp(false, true))
        )]
    );
}

#[test]
fn up_to_date_rule_compares_last_term_then_index() {
    let cases = [
        (log(1, 9), log(2, 3), false), // candidate's last term is older: reject however long
        (log(2, 2), log(2, 3), false), // same term, shorter: reject
        (log(2, 3), log(2, 3), true),
        (log(3, 1), log(2, 3), true), // newer last term wins even if shorter
    ];
    for (candidate_last, own_last, granted) in cases {
        let mut e = follower(N3, 1);
        let mut out = vec![];
        e.on_vote_request(
            ms(1000),
            N1,
            Term(5),
            &vote_req(false, candidate_last),
            own_last,
            &mut out,
        );
        let reply = msg(
            N3,
            N1,
            5,
            MessageBody::VoteResponse(vote_resp(false, granted)),
        );
        assert_eq!(out.last(), Some(&reply), "{candidate_last} vs {own_last}");
        assert_eq!(e.hard_state().voted_for, granted.then_some(N1));
    }
}

#[test]
fn the_up_to_date_check_can_be_broken_for_tests() {
    let mut cfg = config(N3, 3);
    cfg.overrides.skip_up_to_date_check = true;
    let mut e = Election::new(
        cfg,
        HardState {
            term: Term(1),
            voted_for: None,
        },
        ms(0),
    );
    let mut out = vec![];
    e.on_vote_request(
        ms(1000),
        N1,
        Term(2),
        &vote_req(false, log(1, 1)),
        log(1, 9),
        &mut out,
    );
    assert_eq!(e.hard_state().voted_for, Some(N1));
}

#[test]
fn pre_vote_changes_nothing_on_the_voter() {
    let mut e = follower(N3, 4);
    let mut out = vec![];
    e.on_vote_request(
        ms(1000),
        N1,
        Term(5),
        &vote_req(true, log(4, 5)),
        log(4, 5),
        &mut out,
    );
    assert_eq!(
        out,
        vec![msg(
            N3,
            N1,
            5,
            MessageBody::VoteResponse(vote_resp(true, true))
        )]
    );
    assert_eq!(
        e.hard_state(),
        HardState {
            term: Term(4),
            voted_for: None
        }
    );
    out.clear();
    e.on_vote_request(
        ms(1000),
        N2,
        Term(5),
        &vote_req(true, log(3, 9)),
        log(4, 5),
        &mut out,
    );
    assert_eq!(
        out,
        vec![msg(
            N3,
            N2,
            4,
            MessageBody::VoteResponse(vote_resp(true, false))
        )]
    );
}

#[test]
fn votes_are_withheld_while_a_leader_is_live() {
    let mut e = follower(N3, 2);
    let mut out = vec![];
    let hb = Heartbeat {
        commit: LogIndex(0),
        round: 1,
    };
    e.on_heartbeat(ms(1000), N1, Term(2), &hb, &mut out);
    out.clear();
    e.on_vote_request(
        ms(1100),
        N2,
        Term(3),
        &vote_req(false, log(2, 9)),
        log(2, 1),
        &mut out,
    );
    e.on_vote_request(
        ms(1100),
        N2,
        Term(3),
        &vote_req(true, log(2, 9)),
        log(2, 1),
        &mut out,
    );
    assert!(
        out.is_empty(),
        "ignored within the minimum election timeout"
    );
    assert_eq!(e.term(), Term(2));
    e.on_vote_request(
        ms(1150),
        N2,
        Term(3),
        &vote_req(false, log(2, 9)),
        log(2, 1),
        &mut out,
    );
    assert_eq!(
        e.hard_state(),
        HardState {
            term: Term(3),
            voted_for: Some(N2)
        }
    );
}

#[test]
fn a_restarted_node_withholds_votes_for_the_minimum_election_timeout() {
    let mut e = follower(N3, 2);
    let mut out = vec![];
    e.on_vote_request(
        ms(149),
        N2,
        Term(3),
        &vote_req(false, log(2, 9)),
        log(2, 1),
        &mut out,
    );
    assert!(out.is_empty());
    e.on_vote_request(
        ms(150),
        N2,
        Term(3),
        &vote_req(false, log(2, 9)),
        log(2, 1),
        &mut out,
    );
    assert_eq!(e.hard_state().voted_for, Some(N2));
}

#[test]
fn stale_messages_are_answered_with_the_current_term() {
    let mut e = follower(N3, 5);
    let mut out = vec![];
    e.on_vote_request(
        ms(1000),
        N1,
        Term(4),
        &vote_req(false, log(4, 9)),
        log(4, 1),
        &mut out,
    );
    assert_eq!(
        out,
        vec![msg(
            N3,
            N1,
            5,
            MessageBody::VoteResponse(vote_resp(false, false))
        )]
    );
    out.clear();
    assert_eq!(
        e.on_append_entries(ms(1000), N2, Term(3), &mut out),
        AppendGate::Reject
    );
    assert_eq!(
        out,
        vec![msg(
            N3,
            N2,
            5,
            MessageBody::HeartbeatResponse(HeartbeatResponse { round: 0 })
        )]
    );
}

#[test]
fn a_higher_term_anywhere_makes_a_follower() {
    let mut e = leader_n1();
    let mut out = vec![];
    e.on_heartbeat_response(
        ms(1010),
        N2,
        Term(7),
        &HeartbeatResponse { round: 0 },
        &mut out,
    );
    assert_eq!(out, vec![persist(7, None), role(7, Role::Follower, None)]);

    let mut e = leader_n1();
    out.clear();
    e.on_higher_term(ms(1010), Term(3), &mut out);
    assert_eq!(out, vec![persist(3, None), role(3, Role::Follower, None)]);

    let mut e = follower(N2, 1);
    out.clear();
    assert_eq!(
        e.on_append_entries(ms(10), N1, Term(4), &mut out),
        AppendGate::Accept
    );
    assert_eq!(
        out,
        vec![persist(4, None), role(4, Role::Follower, Some(N1))]
    );
}

#[test]
fn a_candidate_yields_to_a_leader_of_its_term() {
    let mut e = follower(N1, 1);
    let mut out = vec![];
    e.on_election_timeout(ms(1000), log(1, 5), &mut out);
    e.on_vote_response(
        ms(1000),
        N2,
        Term(2),
        &vote_resp(true, true),
        log(1, 5),
        &mut out,
    );
    assert_eq!(e.role(), Role::Candidate);
    out.clear();
    let hb = Heartbeat {
        commit: LogIndex(3),
        round: 4,
    };
    e.on_heartbeat(ms(1001), N3, Term(2), &hb, &mut out);
    assert_eq!(
        out,
        vec![
            role(2, Role::Follower, Some(N3)),
            Action::LearnedCommit(LogIndex(3)),
            msg(
                N1,
                N3,
                2,
                MessageBody::HeartbeatResponse(HeartbeatResponse { round: 4 })
            ),
        ]
    );
}

#[test]
fn check_quorum_steps_down_a_leader_nobody_answers() {
    let mut e = leader_n1();
    let mut out = vec![];
    e.on_leader_tick(ms(1100), &mut out);
    out.clear();
    e.on_leader_tick(ms(1151), &mut out);
    assert_eq!(out, vec![role(2, Role::Follower, None)]);
}

#[test]
fn check_quorum_keeps_a_leader_a_majority_answers() {
    let mut e = leader_n1();
    let mut out = vec![];
    e.on_heartbeat_response(
        ms(1005),
        N3,
        Term(2),
        &HeartbeatResponse { round: 1 },
        &mut out,
    );
    e.on_leader_tick(ms(1151), &mut out);
    assert_eq!(e.role(), Role::Leader);
    assert!(out.iter().all(|a| matches!(a, Action::Send(_))));
}

#[test]
fn the_leader_commits_through_matches_and_tells_followers_only_what_they_hold() {
    let mut e = leader_n1();
    let mut out = vec![];
    e.on_term_first_index(ms(1002), Term(2), LogIndex(6), &mut out);
    e.on_match(ms(1002), Term(2), N1, LogIndex(8), &mut out);
    assert!(out.is_empty());
    e.on_match(ms(1002), Term(2), N2, LogIndex(7), &mut out);
    assert_eq!(out, vec![Action::Committed(LogIndex(7))]);
    out.clear();
    e.on_match(ms(1002), Term(1), N3, LogIndex(8), &mut out);
    assert!(
        out.is_empty(),
        "a match reported for another term is ignored"
    );
    e.on_leader_tick(ms(1051), &mut out);
    let hb = |to, commit| {
        msg(
            N1,
            to,
            2,
            MessageBody::Heartbeat(Heartbeat {
                commit: LogIndex(commit),
                round: 2,
            }),
        )
    };
    assert_eq!(out, vec![hb(N2, 7), hb(N3, 0)]);
}

#[test]
fn a_single_node_cluster_elects_itself() {
    let mut e = Election::new(config(N1, 1), HardState::default(), ms(0));
    let mut out = vec![];
    e.on_election_timeout(ms(1000), log(0, 0), &mut out);
    assert_eq!(e.role(), Role::Leader);
    assert_eq!(out[0], role(0, Role::PreCandidate, None));
    assert_eq!(out[1], persist(1, Some(N1)));
    assert_eq!(out.last(), Some(&role(1, Role::Leader, Some(N1))));
}

#[test]
#[should_panic(expected = "two leaders")]
fn two_leaders_in_one_term_is_fatal() {
    let mut e = leader_n1();
    e.on_append_entries(ms(1010), N2, Term(2), &mut vec![]);
}

#[test]
fn leadership_is_handed_over_once_the_target_is_caught_up() {
    let mut e = leader_n1();
    let mut out = vec![];
    e.on_term_first_index(ms(1002), Term(2), LogIndex(6), &mut out);
    out.clear();
    e.on_transfer_leadership(ms(1003), N3, LogIndex(8), &mut out)
        .unwrap();
    assert!(out.is_empty(), "n3 is not caught up yet");
    e.on_match(ms(1004), Term(2), N3, LogIndex(7), &mut out);
    assert!(out.is_empty());
    e.on_match(ms(1005), Term(2), N3, LogIndex(8), &mut out);
    assert_eq!(out, vec![msg(N1, N3, 2, MessageBody::TimeoutNow)]);
}

#[test]
fn a_transfer_target_campaigns_at_once_and_is_granted_votes_inside_the_lease() {
    let mut target = follower(N3, 2);
    let mut out = vec![];
    target.on_heartbeat(
        ms(1000),
        N1,
        Term(2),
        &Heartbeat {
            commit: LogIndex(0),
            round: 1,
        },
        &mut out,
    );
    out.clear();
    target.on_timeout_now(ms(1001), N1, Term(2), log(2, 8), &mut out);
    let request = VoteRequest {
        pre_vote: false,
        last_log: log(2, 8),
        transfer: true,
    };
    assert_eq!(
        out,
        vec![
            persist(3, Some(N3)),
            role(3, Role::Candidate, None),
            msg(N3, N1, 3, MessageBody::VoteRequest(request.clone())),
            msg(N3, N2, 3, MessageBody::VoteRequest(request.clone())),
        ]
    );
    // n2 heard from n1 a moment ago, yet grants the transfer's vote.
    let mut voter = follower(N2, 2);
    out.clear();
    voter.on_heartbeat(
        ms(1000),
        N1,
        Term(2),
        &Heartbeat {
            commit: LogIndex(0),
            round: 1,
        },
        &mut out,
    );
    out.clear();
    voter.on_vote_request(ms(1001), N3, Term(3), &request, log(2, 8), &mut out);
    assert_eq!(
        voter.hard_state(),
        HardState {
            term: Term(3),
            voted_for: Some(N3)
        }
    );
}

#[test]
fn timeout_now_from_anyone_but_the_leader_is_ignored() {
    let mut e = follower(N3, 2);
    let mut out = vec![];
    e.on_heartbeat(
        ms(1000),
        N1,
        Term(2),
        &Heartbeat {
            commit: LogIndex(0),
            round: 1,
        },
        &mut out,
    );
    out.clear();
    e.on_timeout_now(ms(1001), N2, Term(2), log(2, 8), &mut out);
    e.on_timeout_now(ms(1001), N1, Term(1), log(2, 8), &mut out);
    assert!(out.is_empty());
}

#[test]
fn an_unfinished_transfer_is_abandoned_after_the_maximum_election_timeout() {
    let mut e = leader_n1();
    let mut out = vec![];
    e.on_transfer_leadership(ms(1003), N3, LogIndex(8), &mut out)
        .unwrap();
    // n2 answers every heartbeat round, so CheckQuorum keeps n1 leading meanwhile.
    for now in (1050..=1303).step_by(50).chain([1303]) {
        out.clear();
        e.on_leader_tick(ms(now), &mut out);
        for action in &out.clone() {
            if let Action::Send(m) = action {
                if let (N2, MessageBody::Heartbeat(h)) = (m.to, &m.body) {
                    let response = HeartbeatResponse { round: h.round };
                    e.on_heartbeat_response(ms(now), N2, Term(2), &response, &mut out);
                }
            }
        }
    }
    assert_eq!(e.role(), Role::Leader);
    out.clear();
    e.on_match(ms(1304), Term(2), N3, LogIndex(8), &mut out);
    assert!(!out
        .iter()
        .any(|a| matches!(a, Action::Send(m) if m.body == MessageBody::TimeoutNow)));
    assert_eq!(e.role(), Role::Leader);
}

#[test]
fn a_resigning_leader_steps_down_and_waits_before_campaigning() {
    let mut e = leader_n1();
    let mut out = vec![];
    e.on_resign(ms(1010), &mut out);
    assert_eq!(out, vec![role(2, Role::Follower, None)]);
    assert!(!e.election_due(ms(1010) + Duration::from_millis(300)));
    assert_eq!(
        e.on_transfer_leadership(ms(1011), N2, LogIndex(1), &mut out),
        Err(TransferError::NotLeader { leader: None })
    );
}

#[test]
fn a_campaign_times_out_only_an_election_timeout_after_its_vote_is_durable() {
    let mut e = follower(N1, 1);
    let mut out = vec![];
    e.on_election_timeout(ms(1000), log(1, 5), &mut out);
    let granted = vote_resp(true, true);
    e.on_vote_response(ms(1000), N2, Term(2), &granted, log(1, 5), &mut out);
    assert_eq!(e.role(), Role::Candidate);
    // Saving the vote for itself took longer than any election timeout: the campaign's
    // vote requests only now go out, and its voters get a whole timeout to answer.
    e.on_hard_state_saved(ms(1400));
    assert!(!e.election_due(ms(1400) + Duration::from_millis(149)));
    out.clear();
    e.on_election_timeout(ms(1549), log(1, 5), &mut out);
    assert_eq!(e.role(), Role::Candidate);
    assert!(out.is_empty());
    // A save on a follower leaves its timer alone.
    let mut f = follower(N2, 1);
    let deadline_before = f.next_wakeup();
    f.on_hard_state_saved(ms(900));
    assert_eq!(f.next_wakeup(), deadline_before);
}

#[test]
fn a_transfer_campaign_waits_longer_for_its_voters_than_an_ordinary_one() {
    let mut target = follower(N3, 2);
    let mut out = vec![];
    let heartbeat = Heartbeat {
        commit: LogIndex(0),
        round: 1,
    };
    target.on_heartbeat(ms(1000), N1, Term(2), &heartbeat, &mut out);
    target.on_timeout_now(ms(1001), N1, Term(2), log(2, 8), &mut out);
    assert_eq!(target.role(), Role::Candidate);
    target.on_hard_state_saved(ms(1002));
    // Its voters' durable votes may take longer than any election timeout (300 ms here):
    // the campaign still runs at 1002 + 899 ms, and ends at three maximum timeouts.
    out.clear();
    target.on_election_timeout(ms(1901), log(2, 8), &mut out);
    assert_eq!(target.role(), Role::Candidate);
    assert!(out.is_empty());
    target.on_election_timeout(ms(1902), log(2, 8), &mut out);
    assert_eq!(target.role(), Role::PreCandidate);
    // Its next campaign, an ordinary one, times out after an ordinary timeout again.
    let votes = vote_resp(true, true);
    target.on_vote_response(ms(1903), N2, Term(4), &votes, log(2, 8), &mut out);
    assert_eq!(target.role(), Role::Candidate);
    target.on_hard_state_saved(ms(1904));
    assert!(target.election_due(ms(1904) + Duration::from_millis(300)));
}

/// n1 leads term 2 and has committed its own no-op (index 6) with n2's help; the heartbeat
/// round 1 that n2 answered at 1003 ms holds the lease.
fn leader_n1_with_own_term_committed() -> Election {
    let mut e = leader_n1();
    let mut out = vec![];
    e.on_term_first_index(ms(1002), Term(2), LogIndex(6), &mut out);
    e.on_match(ms(1002), Term(2), N1, LogIndex(6), &mut out);
    e.on_match(ms(1002), Term(2), N2, LogIndex(6), &mut out);
    let answered = HeartbeatResponse { round: 1 };
    e.on_heartbeat_response(ms(1003), N2, Term(2), &answered, &mut out);
    e
}

fn read_ready(out: &[Action]) -> Vec<(u64, LogIndex, u32)> {
    let ready = out.iter().filter_map(|a| match a {
        Action::ReadReady {
            id,
            index,
            round_trips,
        } => Some((*id, *index, *round_trips)),
        _ => None,
    });
    ready.collect()
}

#[test]
fn a_lease_read_under_the_lease_costs_no_round_trip() {
    let mut e = leader_n1_with_own_term_committed();
    let mut out = vec![];
    e.on_read(ms(1010), 7, ReadLevel::Lease, &mut out);
    assert_eq!(
        out,
        vec![Action::ReadReady {
            id: 7,
            index: LogIndex(6),
            round_trips: 0
        }]
    );
}

#[test]
fn a_read_index_read_waits_for_one_shared_heartbeat_round() {
    let round_of = |out: &[Action]| {
        out.iter().find_map(|a| match a {
            Action::Send(m) => match &m.body {
                MessageBody::Heartbeat(h) => Some(h.round),
                _ => None,
            },
            _ => None,
        })
    };
    let mut e = leader_n1_with_own_term_committed();
    let mut out = vec![];
    e.on_read(ms(1010), 7, ReadLevel::ReadIndex, &mut out);
    assert_eq!(out[0], Action::ReadRoundStarted);
    let first = round_of(&out).expect("the round's heartbeats");
    // Reads arriving while that round is out need a round started after them: the next one,
    // which they share.
    out.clear();
    e.on_read(ms(1011), 8, ReadLevel::ReadIndex, &mut out);
    e.on_read(ms(1011), 9, ReadLevel::Lease, &mut out);
    assert_eq!(
        read_ready(&out),
        vec![(9, LogIndex(6), 0)],
        "the lease serves 9 at once"
    );
    assert!(
        !out.contains(&Action::ReadRoundStarted),
        "a round is already out"
    );
    e.on_heartbeat_response(
        ms(1012),
        N3,
        Term(2),
        &HeartbeatResponse { round: first },
        &mut out,
    );
    assert_eq!(
        read_ready(&out),
        vec![(9, LogIndex(6), 0), (7, LogIndex(6), 1)]
    );
    let rounds = out
        .iter()
        .filter(|a| **a == Action::ReadRoundStarted)
        .count();
    assert_eq!(rounds, 1, "one round for the reads that waited");
    let second = round_of(&out).expect("the next round's heartbeats");
    out.clear();
    e.on_heartbeat_response(
        ms(1013),
        N2,
        Term(2),
        &HeartbeatResponse { round: second },
        &mut out,
    );
    assert_eq!(read_ready(&out), vec![(8, LogIndex(6), 1)]);
}

#[test]
fn a_follower_read_adds_its_round_trip_to_the_leaders() {
    let mut f = follower(N2, 2);
    let mut out = vec![];
    f.on_heartbeat(
        ms(1000),
        N1,
        Term(2),
        &Heartbeat {
            commit: LogIndex(6),
            round: 1,
        },
        &mut out,
    );
    out.clear();
    f.on_read(ms(1001), 3, ReadLevel::Lease, &mut out);
    let request = ReadIndexRequest {
        id: 3,
        level: ReadLevel::Lease,
    };
    assert_eq!(
        out,
        vec![msg(N2, N1, 2, MessageBody::ReadIndexRequest(request))]
    );
    out.clear();
    let response = ReadIndexResponse {
        id: 3,
        index: Some(LogIndex(6)),
        round_trips: 0,
    };
    f.on_read_index_response(ms(1002), Term(2), &response, &mut out);
    assert_eq!(read_ready(&out), vec![(3, LogIndex(6), 1)]);
}

#[test]
fn a_leader_that_sent_timeout_now_serves_no_lease_read_even_after_giving_up() {
    let mut e = leader_n1_with_own_term_committed();
    let mut out = vec![];
    // n2 holds everything (index 6): TimeoutNow goes out at once.
    e.on_transfer_leadership(ms(1004), N2, LogIndex(6), &mut out)
        .unwrap();
    assert!(out
        .iter()
        .any(|a| matches!(a, Action::Send(m) if m.body == MessageBody::TimeoutNow)));
    // The transfer is given up, and a fresh round renews what would be the lease...
    out.clear();
    e.on_leader_tick(ms(1305), &mut out);
    let round = out.iter().find_map(|a| match a {
        Action::Send(m) => match &m.body {
            MessageBody::Heartbeat(h) => Some(h.round),
            _ => None,
        },
        _ => None,
    });
    let answered = HeartbeatResponse {
        round: round.expect("a heartbeat round"),
    };
    e.on_heartbeat_response(ms(1306), N3, Term(2), &answered, &mut out);
    assert_eq!(e.role(), Role::Leader);
    // ...but n2 may still campaign on that TimeoutNow, and its voters would not wait for
    // the lease: the read needs a round.
    out.clear();
    e.on_read(ms(1307), 1, ReadLevel::Lease, &mut out);
    assert!(read_ready(&out).is_empty(), "{out:?}");
    assert!(out.contains(&Action::ReadRoundStarted));
}
