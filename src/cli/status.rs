//! `raftlog status`: the cluster as one node sees it (role, term, leader, indexes), and each
//! member's replication progress as a table. Progress is known only on the leader, so when
//! the node asked is not the leader the table comes from the leader it names.

use std::io::Write;

use clap::Args;

use super::client::{Client, REQUEST_TIMEOUT};
use super::exit::CliError;
use super::ClientArgs;
use crate::http::wire::{ClusterResponse, RoleJson};

#[derive(Args, Debug)]
pub struct StatusArgs {
    #[command(flatten)]
    pub client: ClientArgs,
}

pub async fn run(args: StatusArgs, stdout: &mut dyn Write) -> Result<(), CliError> {
    let client = Client::new(&args.client.url)?;
    let node: ClusterResponse = client.get("/v1/cluster", REQUEST_TIMEOUT).await?;
    let role = role_name(node.role);
    writeln!(
        stdout,
        "node {} at {}: {role}, term {}",
        node.node_id,
        client.base(),
        node.term
    )?;
    match &node.leader {
        Some(leader) => writeln!(stdout, "leader: node {} at {}", leader.id, leader.http)?,
        None => writeln!(stdout, "leader: none known (an election may be under way)")?,
    }
    writeln!(
        stdout,
        "commit index {}, applied index {}",
        node.commit_index, node.applied_index
    )?;

    // The members' progress, from the leader.
    let progress = match &node.leader {
        Some(leader) if node.role != RoleJson::Leader => {
            let leader_client = Client::new(&leader.http)?;
            match leader_client
                .get::<ClusterResponse>("/v1/cluster", REQUEST_TIMEOUT)
                .await
            {
                Ok(view) => view,
                Err(error) => {
                    writeln!(
                        stdout,
                        "(the leader's progress table is unavailable: {error})"
                    )?;
                    node
                }
            }
        }
        _ => node,
    };
    writeln!(stdout)?;
    write_members(&progress, stdout)?;
    Ok(())
}

fn role_name(role: RoleJson) -> &'static str {
    match role {
        RoleJson::Leader => "leader",
        RoleJson::Follower => "follower",
        RoleJson::Candidate => "candidate",
        RoleJson::Learner => "learner",
    }
}

/// The members table; `-` where the answer has no progress (not from the leader).
fn write_members(view: &ClusterResponse, stdout: &mut dyn Write) -> std::io::Result<()> {
    let leader = view.leader.as_ref().map(|leader| leader.id);
    let rows: Vec<[String; 6]> = view
        .members
        .iter()
        .map(|member| {
            let or_dash = |value: Option<u64>| value.map_or("-".to_string(), |v| v.to_string());
            [
                member.id.to_string(),
                if leader == Some(member.id) {
                    "leader".to_string()
                } else {
                    String::new()
                },
                if member.voter { "voter" } else { "learner" }.to_string(),
                or_dash(member.match_index),
                or_dash(member.lag),
                member
                    .last_ack_ms
                    .map_or("-".to_string(), |ms| format!("{ms} ms")),
            ]
        })
        .collect();
    let header = ["MEMBER", "ROLE", "KIND", "MATCH", "LAG", "LAST ACK"].map(str::to_string);
    let mut widths = header.clone().map(|cell| cell.len());
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.len());
        }
    }
    for row in std::iter::once(&header).chain(&rows) {
        let cells: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        writeln!(stdout, "{}", cells.join("  ").trim_end())?;
    }
    Ok(())
}
