//! The shared flags `--home`, `--json`, `--url` and `--api-key`: each command takes (and its help
//! lists) only those it uses, before or after the command, and refuses the others with exit 2.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::Command;

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_allowly");

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Runs `allowly ARGS...` in `dir`, with none of the shared flags' environment variables set
/// except those in `env`.
fn allowly(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut command = Command::new(BIN);
    command.current_dir(dir).args(args);
    for name in ["ALLOWLY_HOME", "ALLOWLY_URL", "ALLOWLY_API_KEY", "ALLOWLY_DATABASE_URL"] {
        command.env_remove(name);
    }
    command.envs(env.iter().copied());
    let output = command.output().expect("run allowly");
    Run {
        code: output.status.code().expect("exit code"),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

fn help(args: &[&str]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let mut all = args.to_vec();
    all.push("--help");
    let run = allowly(dir.path(), &all, &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    run.stdout
}

/// The long flags a help text lists.
fn flags(help: &str) -> Vec<String> {
    help.split_whitespace()
        .filter(|word| word.starts_with("--"))
        .map(|word| word.trim_end_matches(|c: char| !c.is_ascii_alphanumeric()).to_string())
        .collect()
}

#[test]
fn flags_a_command_does_not_use_are_refused_wherever_they_are_typed() {
    let dir = tempfile::tempdir().unwrap();
    let verify_args =
        ["r.json", "--keys", "k.json", "--workspace-id", "ws_x", "--trusted-key-fingerprint", "sha256:00"];
    let mut verify_url = vec!["verify", "--url", "http://127.0.0.1:1"];
    verify_url.extend(verify_args);
    let mut home_verify = vec!["--home", "h", "verify"];
    home_verify.extend(verify_args);
    let cases: Vec<(Vec<&str>, &str, &str)> = vec![
        (vec!["init", "--url", "http://x"], "`allowly init` does not take --url", "init"),
        (vec!["--url", "http://x", "init"], "`allowly init` does not take --url", "init"),
        (vec!["init", "--api-key=k"], "`allowly init` does not take --api-key", "init"),
        (vec!["serve", "--url", "http://x"], "`allowly serve` does not take --url", "serve"),
        (vec!["--url", "http://x", "serve"], "`allowly serve` does not take --url", "serve"),
        (vec!["serve", "--json"], "`allowly serve` does not take --json: it has no JSON output", "serve"),
        (verify_url, "`allowly verify` does not take --url", "verify"),
        // Even when another argument is missing, the message names the flag and the command.
        (vec!["verify", "--url", "http://x"], "`allowly verify` does not take --url", "verify"),
        (home_verify, "`allowly verify` does not take --home: it needs no data directory", "verify"),
        (vec!["receipts", "export", "--out", "x", "--url", "http://x"], "does not take --url", "receipts export"),
        (vec!["checkpoints", "create", "--url", "http://x"], "does not take --url", "checkpoints create"),
        (vec!["api-keys", "list", "--url", "http://x"], "does not take --url", "api-keys list"),
        (vec!["--api-key", "k", "workspaces", "create"], "does not take --api-key", "workspaces create"),
        // The forms that work locally only, of commands that otherwise take --url.
        (
            vec!["--url", "http://127.0.0.1:1", "receipts", "show"],
            "`allowly receipts show` without a RECEIPT_ID (the recent receipts) works on the local data directory only",
            "receipts show",
        ),
        (
            vec!["policies", "show", "p", "--version", "2", "--url", "http://127.0.0.1:1"],
            "`allowly policies show --version` works on the local data directory only",
            "policies show",
        ),
        (vec!["--home", "a", "init", "--home", "b"], "--home is given both before and after `allowly init`", "init"),
    ];
    for (args, message, usage) in cases {
        let run = allowly(dir.path(), &args, &[]);
        assert_eq!(run.code, 2, "allowly {args:?}: {}", run.stderr);
        let first = run.stderr.lines().next().unwrap_or_default();
        assert!(first.starts_with("error: ") && first.contains(message), "allowly {args:?}: {}", run.stderr);
        assert!(run.stderr.contains(&format!("Usage: allowly {usage}")), "{}", run.stderr);
        assert!(!run.stderr.contains("similar argument") && !run.stderr.contains("-- --"), "{}", run.stderr);
        assert!(run.stdout.is_empty(), "{}", run.stdout);
    }
    // Nothing ran: no workspace was created anywhere.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);

    // The environment variables of a flag a command does not take are not its business.
    let env = [("ALLOWLY_URL", "http://127.0.0.1:1"), ("ALLOWLY_API_KEY", "k"), ("ALLOWLY_HOME", "home")];
    let run = allowly(dir.path(), &["--json", "init"], &env);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(dir.path().join("home/allowly.db").is_file());
    // ...but a form of a command that takes --url and cannot use it refuses it from the environment too.
    let run = allowly(dir.path(), &["receipts", "show"], &env);
    assert!(run.code == 2 && run.stderr.contains("unset $ALLOWLY_URL"), "{}", run.stderr);
}

#[test]
fn help_lists_only_the_flags_a_command_takes() {
    let shared = ["--home", "--json", "--url", "--api-key"];
    let expected: [(&[&str], &[&str]); 12] = [
        (&["init"], &["--home", "--json"]),
        (&["check"], &["--home", "--json", "--url", "--api-key"]),
        (&["policies", "apply"], &["--home", "--json", "--url", "--api-key"]),
        (&["authorizations", "create"], &["--home", "--json", "--url", "--api-key"]),
        (&["receipts", "show"], &["--home", "--json", "--url", "--api-key"]),
        (&["receipts", "export"], &["--home", "--json"]),
        (&["keys", "rotate"], &["--home", "--json", "--url", "--api-key"]),
        (&["keys", "document"], &["--home", "--json", "--url", "--api-key"]),
        (&["checkpoints", "create"], &["--home", "--json"]),
        (&["verify"], &["--json"]),
        (&["serve"], &["--home"]),
        (&["api-keys", "create"], &["--home", "--json"]),
    ];
    for (command, takes) in expected {
        let listed = flags(&help(command));
        for flag in shared {
            assert_eq!(
                listed.iter().any(|f| f == flag),
                takes.contains(&flag),
                "allowly {command:?} --help and {flag}"
            );
        }
    }
    assert!(!help(&["init"]).contains("--url"));
    // The top-level help says they go before or after the command.
    let top = help(&[]);
    assert!(shared.iter().all(|flag| top.contains(flag)) && top.contains("go before or after the command"), "{top}");
}

#[test]
fn shared_flags_work_before_and_after_the_command() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let home = home.to_str().unwrap();
    let init = allowly(dir.path(), &["init", "--home", home, "--json"], &[]);
    assert_eq!(init.code, 0, "{}", init.stderr);
    let workspace: Value = serde_json::from_str(&init.stdout).unwrap();
    assert_eq!(workspace["created"], true);
    let policy = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/policies/support-agent.json");
    let applied = allowly(dir.path(), &["policies", "apply", policy.to_str().unwrap(), "--home", home], &[]);
    assert_eq!(applied.code, 0, "{}", applied.stderr);
    let created = allowly(
        dir.path(),
        &["--json", "authorizations", "create", "--user-id", "u", "--policy-id", "support_agent", "--home", home],
        &[],
    );
    assert_eq!(created.code, 0, "{}", created.stderr);
    let auth: Value = serde_json::from_str(&created.stdout).unwrap();
    let auth = auth["authorization_id"].as_str().unwrap();
    let deny = ["check", "--authorization-id", auth, "--action", "account.delete"];
    for args in [
        [&["--json", "--home", home][..], &deny[..]].concat(),
        [&deny[..], &["--json", "--home", home][..]].concat(),
        [&["--home", home][..], &deny[..], &["--json"][..]].concat(),
    ] {
        let run = allowly(dir.path(), &args, &[]);
        assert_eq!(run.code, 3, "allowly {args:?}: {}", run.stderr);
        let answer: Value = serde_json::from_str(&run.stdout).unwrap();
        assert_eq!(answer["results"]["account.delete"]["reason"], "action_denied_by_policy");
    }
    // Typed after the command, --home is repeated in the follow-ups we suggest.
    let run =
        allowly(dir.path(), &["check", "--authorization-id", auth, "--action", "refund.issue", "--home", home], &[]);
    assert_eq!(run.code, 5, "{}", run.stderr);
    assert!(run.stdout.contains(&format!("allowly --home {home} escalations approve")), "{}", run.stdout);
    // From the environment, the commands that take the flag read it.
    let run = allowly(dir.path(), &["keys", "list"], &[("ALLOWLY_HOME", home)]);
    assert!(run.code == 0 && run.stdout.contains("(current)"), "{}", run.stderr);
}
