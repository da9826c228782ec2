//! `allowly`: the Allowly engine on an embedded data directory, for people and scripts.

mod args;
mod commands;
mod output;
mod progress;
mod serve;
mod settings;
mod verify;

fn main() {
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    // clap prints usage errors itself and exits with 2.
    let (command, settings) = settings::parse(&argv).unwrap_or_else(|err| err.exit());
    std::process::exit(commands::run(&command, &settings));
}
