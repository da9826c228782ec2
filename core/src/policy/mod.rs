//! Policies: the `allowly.policy.v1` definition format, its validator, and the native
//! `allowly.basic.v1` evaluator.
//!
//! Validation accepts what the official Python client (0.8.0) accepts, plus one engine extension
//! (`guards.rate_limit`), and lets authors leave out the keys that have an obvious value (see
//! [`Definition::parse`]); definitions are kept in the full form the client reads back. It reports
//! every error of a document at once. Evaluation works on typed structures built once at parse time,
//! so a check never re-reads or re-canonicalizes policy JSON.

mod definition;
mod eval;
mod glob;

use std::fmt;

use crate::error::FieldError;

pub use definition::{
    ActionEntry, BasicPolicy, Condition, Definition, EvidenceMode, ExecutableGrant, Guards, Op, PolicyCreate,
    PolicyRef, RateLimit, Rule, Scalar, MAX_DEFINITION_BYTES,
};
pub use eval::{EvalError, Evaluation, BASIC_PROFILE};
pub use glob::glob_match;

/// A policy decision. Serializes as its lowercase wire name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "typescript", derive(ts_rs::TS))]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    Allow,
    Deny,
    Confirm,
    Escalate,
}

impl Decision {
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Allow => "allow",
            Decision::Deny => "deny",
            Decision::Confirm => "confirm",
            Decision::Escalate => "escalate",
        }
    }

    /// Fixed priority used to combine decisions: deny 4 > escalate 3 > confirm 2 > allow 1.
    pub fn strength(self) -> u8 {
        match self {
            Decision::Allow => 1,
            Decision::Confirm => 2,
            Decision::Escalate => 3,
            Decision::Deny => 4,
        }
    }

    pub fn parse(s: &str) -> Option<Decision> {
        match s {
            "allow" => Some(Decision::Allow),
            "deny" => Some(Decision::Deny),
            "confirm" => Some(Decision::Confirm),
            "escalate" => Some(Decision::Escalate),
            _ => None,
        }
    }
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The declared type of a context field (`fields` of a basic policy).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldType {
    String,
    Integer,
    Boolean,
    Null,
    List,
}

impl FieldType {
    pub fn as_str(self) -> &'static str {
        match self {
            FieldType::String => "string",
            FieldType::Integer => "integer",
            FieldType::Boolean => "boolean",
            FieldType::Null => "null",
            FieldType::List => "list",
        }
    }

    /// The JSON a value of this type must be, for error messages ("must be {expected}").
    pub(crate) fn expected(self) -> &'static str {
        match self {
            FieldType::String => "a string",
            FieldType::Integer => "a safe integer",
            FieldType::Boolean => "a boolean",
            FieldType::Null => "null",
            FieldType::List => "an array of strings, integers, booleans or nulls",
        }
    }

    pub fn parse(s: &str) -> Option<FieldType> {
        match s {
            "string" => Some(FieldType::String),
            "integer" => Some(FieldType::Integer),
            "boolean" => Some(FieldType::Boolean),
            "null" => Some(FieldType::Null),
            "list" => Some(FieldType::List),
            _ => None,
        }
    }
}

impl fmt::Display for FieldType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The most field errors one answer lists; the message still counts the rest.
pub const MAX_REPORTED_ERRORS: usize = 100;

/// A definition or request that does not validate: every invalid field found in one pass, each
/// named by its path (e.g. `actions[0].policy.rules[1].conditions[0].value`), in document order.
/// Never empty.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyError {
    fields: Vec<FieldError>,
    /// Errors found beyond the [`MAX_REPORTED_ERRORS`] listed.
    unreported: usize,
}

impl PolicyError {
    pub(crate) fn new(fields: Vec<FieldError>, unreported: usize) -> PolicyError {
        PolicyError { fields, unreported }
    }

    /// The invalid fields, in the order of the document (at most [`MAX_REPORTED_ERRORS`]).
    pub fn fields(&self) -> &[FieldError] {
        &self.fields
    }

    /// How many errors were found in all, listed or not.
    pub fn count(&self) -> usize {
        self.fields.len() + self.unreported
    }

    pub fn into_fields(self) -> Vec<FieldError> {
        self.fields
    }
}

/// One error: ``invalid `field`: message``. Several: ``the policy has 3 errors: `a`: ...; `b`: ...``.
impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let ([only], 0) = (self.fields.as_slice(), self.unreported) {
            return write!(f, "invalid `{}`: {}", only.field, only.message);
        }
        write!(f, "the policy has {} errors", self.count())?;
        if self.unreported > 0 {
            write!(f, " (the first {} are listed)", self.fields.len())?;
        }
        for (i, error) in self.fields.iter().enumerate() {
            let separator = if i == 0 { ": " } else { "; " };
            write!(f, "{separator}`{}`: {}", error.field, error.message)?;
        }
        Ok(())
    }
}

impl std::error::Error for PolicyError {}

impl From<PolicyError> for crate::Error {
    fn from(err: PolicyError) -> crate::Error {
        crate::Error::InvalidRequest { message: err.to_string(), fields: err.fields }
    }
}
