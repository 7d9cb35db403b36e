//! `herald bench`: load scenarios against a server process, with the server's CPU time
//! and memory read from `/proc`.

mod load;
mod proc;
mod publish;
mod report;
mod target;

use clap::Subcommand;

#[derive(Subcommand, Debug)]
pub enum BenchCommand {
    /// Durable publishes over HTTP keep-alive at several in-flight depths.
    Publish(publish::PublishArgs),
}

pub async fn run(cmd: BenchCommand) -> anyhow::Result<()> {
    match cmd {
        BenchCommand::Publish(a) => publish::run(a).await,
    }
}
