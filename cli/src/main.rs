//! `allowly`: the Allowly engine on an embedded data directory, for people and scripts.

mod args;
mod commands;
mod output;
mod serve;
mod verify;

use clap::parser::ValueSource;
use clap::{CommandFactory, FromArgMatches};

fn main() {
    // clap prints usage errors itself and exits with 2.
    let matches = args::Cli::command().get_matches();
    let mut cli = args::Cli::from_arg_matches(&matches).unwrap_or_else(|err| err.exit());
    cli.home_from_flag = matches.value_source("home") == Some(ValueSource::CommandLine);
    std::process::exit(commands::run(&cli));
}
