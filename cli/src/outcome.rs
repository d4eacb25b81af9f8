//! How a run ends, as the process exit code (the table is in `taglock --help`).

use std::process::ExitCode;

/// The result of a subcommand that ran to its end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// 0: the policy is valid, or the evaluation ran (whatever it decided).
    Success,
    /// 1: the policy is invalid; its problems have been printed.
    InvalidPolicy,
    /// 2: unusable input; the message has been printed.
    UnusableInput,
}

impl Outcome {
    /// The numeric exit code.
    pub fn code(self) -> u8 {
        match self {
            Outcome::Success => 0,
            Outcome::InvalidPolicy => 1,
            Outcome::UnusableInput => 2,
        }
    }
}

impl From<Outcome> for ExitCode {
    fn from(outcome: Outcome) -> ExitCode {
        ExitCode::from(outcome.code())
    }
}
