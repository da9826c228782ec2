//! `allowly`: the Allowly engine on an embedded data directory, for people and scripts.

mod args;
mod commands;
mod output;
mod verify;

use clap::Parser;

fn main() {
    // clap prints usage errors itself and exits with 2.
    let cli = args::Cli::parse();
    std::process::exit(commands::run(&cli));
}
