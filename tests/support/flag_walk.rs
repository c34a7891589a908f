//! Walks every numeric flag of a tool's commands with values outside its range, on
//! the real binary: each must end in a non-zero exit whose message names the flag,
//! never a panic. A value inside the range must parse.
//!
//! The flags come from the tool's own `--help`: a value-taking flag that is in neither
//! the walked table nor the list of non-numeric flags fails the test, so a new flag
//! cannot be left unchecked by accident. Each tool crate includes this file from
//! `tests/flags.rs` with `#[path]`; not every tool uses every item.
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::process::Command;

/// A numeric flag and values outside its range (`nan` is always tried as well).
pub struct Flag {
    pub name: &'static str,
    pub bad: &'static [&'static str],
    /// A value inside the range.
    pub good: &'static str,
}

/// Flags several tools share, with the same ranges (nullclass::flag_ranges).
pub const SEED: Flag = Flag {
    name: "--seed",
    bad: &["-1", "1000000001", "1.5"],
    good: "3",
};
pub const SETS: Flag = Flag {
    name: "--sets",
    bad: &["0", "-1", "1001"],
    good: "2",
};
pub const CHUNK: Flag = Flag {
    name: "--chunk",
    bad: &["0", "-1"],
    good: "1",
};
pub const THREADS: Flag = Flag {
    name: "--threads",
    bad: &["0", "-1", "1025"],
    good: "1",
};

/// One command of a tool (`sub` None for a tool without subcommands).
pub struct Walk<'a> {
    pub bin: &'a str,
    pub sub: Option<&'a str>,
    /// Flags the command needs to parse, with values (an artifacts root that holds
    /// nothing, so that a value no check catches fails on a missing file instead).
    pub required: Vec<(&'a str, String)>,
    pub numeric: &'a [Flag],
    /// The command's other value-taking flags (paths, names, choices): not walked.
    pub other: &'a [&'a str],
}

/// An argument no command has: clap stops on it after parsing everything before it,
/// so a value that parses is seen to parse without the command running.
const END: &str = "--zz-end-of-flags";

fn run(bin: &str, args: &[String]) -> (Option<i32>, String) {
    let out = Command::new(bin)
        .args(args)
        .env("RUST_BACKTRACE", "0")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {bin}: {e}"));
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn help(bin: &str, sub: Option<&str>) -> String {
    let mut args: Vec<String> = sub.iter().map(|s| s.to_string()).collect();
    args.push("--help".into());
    let out = Command::new(bin).args(&args).output().unwrap();
    assert!(out.status.success(), "{bin} {args:?} failed");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A set of names, to compare with [`subcommands`].
pub fn names(list: &[&str]) -> BTreeSet<String> {
    list.iter().map(|s| s.to_string()).collect()
}

/// The subcommands `bin --help` lists (without `help`).
pub fn subcommands(bin: &str) -> BTreeSet<String> {
    let text = help(bin, None);
    text.lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter(|l| l.starts_with("  ") && !l.starts_with("   "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_string)
        .collect()
}

/// The long flags that take a value, from the command's `--help`.
pub fn value_flags(bin: &str, sub: Option<&str>) -> BTreeSet<String> {
    let text = help(bin, sub);
    let mut flags = BTreeSet::new();
    for line in text.lines() {
        let line = line.trim_start();
        let line = match line.strip_prefix('-') {
            Some(rest) if !rest.starts_with('-') => match line.find(", --") {
                Some(i) => &line[i + 2..],
                None => continue,
            },
            Some(_) => line,
            None => continue,
        };
        let name: String = line
            .chars()
            .take_while(|c| !c.is_whitespace() && *c != '=')
            .collect();
        if line[name.len()..].starts_with(" <") {
            flags.insert(name);
        }
    }
    flags
}

impl Walk<'_> {
    fn args_with(&self, flag: &str, value: &str, end: bool) -> Vec<String> {
        let mut args: Vec<String> = self.sub.iter().map(|s| s.to_string()).collect();
        for (name, v) in &self.required {
            if *name != flag {
                args.push(name.to_string());
                args.push(v.clone());
            }
        }
        // `--flag=value`, so that a negative value is the flag's and not an argument.
        args.push(format!("{flag}={value}"));
        if end {
            args.push(END.into());
        }
        args
    }

    /// Checks the table against `--help`, then every flag's bad and good values.
    pub fn check(&self) {
        let what = format!("{} {}", self.bin, self.sub.unwrap_or(""));
        let listed: BTreeSet<String> = self
            .numeric
            .iter()
            .map(|f| f.name)
            .chain(self.other.iter().copied())
            .map(str::to_string)
            .collect();
        assert_eq!(
            listed.len(),
            self.numeric.len() + self.other.len(),
            "{what}: a flag is listed twice"
        );
        let shown = value_flags(self.bin, self.sub);
        assert_eq!(
            listed, shown,
            "{what}: the flags of --help (right) differ from the walked and non-numeric lists (left); \
             give a new numeric flag a range (nullclass::flag_ranges) and a row here"
        );
        for flag in self.numeric {
            let bad = flag.bad.iter().copied().chain(["nan"]);
            for value in bad {
                let args = self.args_with(flag.name, value, false);
                let (code, stderr) = run(self.bin, &args);
                assert!(
                    !stderr.contains("panicked"),
                    "{what} {args:?} panicked:\n{stderr}"
                );
                assert!(
                    code.is_some_and(|c| c != 0),
                    "{what} {args:?} exited with {code:?}:\n{stderr}"
                );
                assert!(
                    stderr.contains(&format!("{} ", flag.name)),
                    "{what} {args:?}: the message does not name {}:\n{stderr}",
                    flag.name
                );
            }
            let args = self.args_with(flag.name, flag.good, true);
            let (_, stderr) = run(self.bin, &args);
            assert!(
                stderr.contains(&format!("unexpected argument '{END}'")),
                "{what} {args:?}: {} {} is in range but did not parse:\n{stderr}",
                flag.name,
                flag.good
            );
        }
    }
}
