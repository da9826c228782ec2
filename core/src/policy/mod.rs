//! Policies: the `allowly.policy.v1` definition format, its strict validator, and the native
//! `allowly.basic.v1` evaluator.
//!
//! Validation accepts exactly what the official Python client (0.8.0) accepts, plus one engine
//! extension (`guards.rate_limit`). Evaluation works on typed structures built once at parse time,
//! so a check never re-reads or re-canonicalizes policy JSON.

mod definition;
mod eval;
mod glob;

use std::fmt;

pub use definition::{
    ActionEntry, BasicPolicy, Condition, Definition, EvidenceMode, ExecutableGrant, Guards, Op, PolicyCreate,
    PolicyRef, RateLimit, Rule, Scalar, MAX_DEFINITION_BYTES,
};
pub use eval::{EvalError, Evaluation, BASIC_PROFILE};
pub use glob::glob_match;

/// A policy decision. Serializes as its lowercase wire name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
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

/// A definition or request that does not validate, with the path of the first offending field
/// (e.g. `actions[0].policy.rules[1].conditions[0].value`).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid `{field}`: {message}")]
pub struct PolicyError {
    pub field: String,
    pub message: String,
}

impl From<PolicyError> for crate::Error {
    fn from(err: PolicyError) -> crate::Error {
        crate::Error::invalid(err.field, err.message)
    }
}
