//! The shared flags `--home`, `--json`, `--url` and `--api-key`: each command takes only those it
//! uses (the `Home`, `Remote` and `Json` groups of `args` flattened into it), after the command or
//! before it (`allowly --json check ...`), and refuses the others with a usage error (exit 2).

use std::ffi::OsString;
use std::path::PathBuf;

use clap::error::ErrorKind;
use clap::parser::ValueSource;
use clap::{ArgMatches, CommandFactory, FromArgMatches};

use crate::args::{Cli, Command};

/// The shared flags of one invocation, wherever they were typed.
#[derive(Debug)]
pub struct Settings {
    /// The data directory: --home, else $ALLOWLY_HOME, else ./.allowly (unused by a command
    /// that takes no --home).
    pub home: PathBuf,
    /// Whether --home was typed (then the follow-up commands we suggest must repeat it).
    pub home_typed: bool,
    pub json: bool,
    pub url: Option<String>,
    pub api_key: Option<String>,
}

/// One shared flag: its id on the commands (the `args` groups), its id before the command
/// (`args::Before`), how it is typed, and why a command that refuses it does not take it.
struct Shared {
    id: &'static str,
    before: &'static str,
    flag: &'static str,
    takes_value: bool,
    why_not: &'static str,
}

const SHARED: [Shared; 4] = [
    Shared {
        id: "home",
        before: "before_home",
        flag: "--home",
        takes_value: true,
        why_not: "it needs no data directory",
    },
    Shared { id: "json", before: "before_json", flag: "--json", takes_value: false, why_not: "it has no JSON output" },
    Shared {
        id: "url",
        before: "before_url",
        flag: "--url",
        takes_value: true,
        why_not: "it does not run against an `allowly serve` runtime",
    },
    Shared {
        id: "api_key",
        before: "before_api_key",
        flag: "--api-key",
        takes_value: true,
        why_not: "it does not run against an `allowly serve` runtime",
    },
];

/// Parses the command line: the command, and its shared flags.
pub fn parse(argv: &[OsString]) -> Result<(Command, Settings), clap::Error> {
    let matches = match Cli::command().try_get_matches_from(argv) {
        Ok(matches) => matches,
        Err(err) => return Err(explain_refused(err, argv)),
    };
    let cli = Cli::from_arg_matches(&matches)?;
    let settings = resolve(&matches)?;
    if let (Some(_), Some(form)) = (&settings.url, cli.command.local_only_form()) {
        let message = format!("{form} works on the local data directory only: drop --url (or unset $ALLOWLY_URL)");
        return Err(usage_error(&command_given(&matches).0, ErrorKind::ArgumentConflict, message));
    }
    Ok((cli.command, settings))
}

/// Merges the shared flags typed before the command into the command's own.
fn resolve(matches: &ArgMatches) -> Result<Settings, clap::Error> {
    let (path, leaf) = command_given(matches);
    // Not `leaf.try_contains_id`: it only knows unknown ids in debug builds.
    let command = command_at(&path);
    let takes = |id: &str| command.get_arguments().any(|arg| arg.get_id() == id);
    let typed_after = |id: &str| takes(id) && leaf.value_source(id) == Some(ValueSource::CommandLine);
    let typed_before = |id: &str| matches.value_source(id) == Some(ValueSource::CommandLine);
    for shared in &SHARED {
        if !typed_before(shared.before) {
            continue;
        }
        if !takes(shared.id) {
            return Err(refused(&path, shared));
        }
        if typed_after(shared.id) {
            let message = format!("{} is given both before and after `{}`: give it once", shared.flag, path.join(" "));
            return Err(usage_error(&path, ErrorKind::ArgumentConflict, message));
        }
    }
    let before_home = matches.get_one::<PathBuf>("before_home");
    let after_home = leaf.try_get_one::<PathBuf>("home").ok().flatten();
    let string = |before: &str, after: &str| {
        matches.get_one::<String>(before).or_else(|| leaf.try_get_one::<String>(after).ok().flatten()).cloned()
    };
    Ok(Settings {
        home: before_home.or(after_home).cloned().unwrap_or_else(|| PathBuf::from(".allowly")),
        home_typed: typed_before("before_home") || typed_after("home"),
        json: matches.get_flag("before_json") || leaf.try_get_one::<bool>("json").ok().flatten() == Some(&true),
        url: string("before_url", "url"),
        api_key: string("before_api_key", "api_key"),
    })
}

/// The path of the command given (`["allowly", "keys", "rotate"]`) and its matches.
fn command_given(matches: &ArgMatches) -> (Vec<String>, &ArgMatches) {
    let mut path = vec!["allowly".to_string()];
    let mut leaf = matches;
    while let Some((name, sub)) = leaf.subcommand() {
        path.push(name.to_string());
        leaf = sub;
    }
    (path, leaf)
}

/// clap refuses a shared flag typed after a command that does not take it as an unexpected
/// argument, and sometimes suggests a look-alike (`serve --url`: "a similar argument exists:
/// '--public-url'"). Say instead which command refused which flag and why, as for a flag typed
/// before the command: parse again without the flag to learn the command.
fn explain_refused(err: clap::Error, argv: &[OsString]) -> clap::Error {
    use clap::error::{ContextKind, ContextValue};
    if err.kind() != ErrorKind::UnknownArgument {
        return err;
    }
    let Some(ContextValue::String(typed)) = err.get(ContextKind::InvalidArg) else { return err };
    let Some(shared) = SHARED.iter().find(|shared| shared.flag == typed) else { return err };
    let mut without = Vec::with_capacity(argv.len());
    let mut tokens = argv.iter();
    while let Some(token) = tokens.next() {
        let text = token.to_string_lossy();
        if text == shared.flag {
            if shared.takes_value {
                tokens.next();
            }
        } else if !text.starts_with(&format!("{}=", shared.flag)) {
            without.push(token.clone());
        }
    }
    // Other mistakes (a missing argument) do not hide which command it is.
    match Cli::command().ignore_errors(true).try_get_matches_from(&without) {
        Ok(matches) if matches.subcommand().is_some() => refused(&command_given(&matches).0, shared),
        _ => err,
    }
}

fn refused(path: &[String], shared: &Shared) -> clap::Error {
    let message = format!("`{}` does not take {}: {}", path.join(" "), shared.flag, shared.why_not);
    usage_error(path, ErrorKind::UnknownArgument, message)
}

/// A usage error (exit 2) with the usage line of the command at `path`.
fn usage_error(path: &[String], kind: ErrorKind, message: String) -> clap::Error {
    command_at(path).error(kind, message)
}

/// The definition of the command at `path` (`["allowly", "keys", "rotate"]`).
fn command_at(path: &[String]) -> clap::Command {
    let mut command = Cli::command();
    for name in path.iter().skip(1) {
        match command.find_subcommand(name) {
            Some(sub) => command = sub.clone(),
            None => break,
        }
    }
    command.bin_name(path.join(" "))
}
