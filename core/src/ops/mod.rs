//! The operation catalog: every call of the Allowly API as one serde type that knows its HTTP
//! route. Every surface is built from this one list:
//!
//! - the embedded engine answers any [`Request`] through one match ([`crate::Allowly::execute`]);
//! - the remote client sends any of them through one function that reads the [`Route`];
//! - `allowly serve` mounts one generic handler per route of [`CATALOG`];
//! - the bindings call operations by name ([`Request::from_value`]) with the same JSON the HTTP
//!   API takes, and answer the same JSON the HTTP API answers.
//!
//! An operation's serde form is its HTTP request merged into one object: the path's id under its
//! field name, then the query (for `GET`) or the JSON body, and `idempotency_key` for the
//! `Idempotency-Key` header. Adding an operation: its type and [`Operation`] impl in one of the
//! files below, a line in the [`catalog!`] list, and an arm in [`crate::Allowly::execute`].

mod approvals;
mod authorizations;
mod keys;
mod policies;
mod receipts;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use approvals::{
    ConfirmationStatus, EscalationStatus, ListConfirmations, ListEscalations, ResolveConfirmation, ResolveEscalation,
};
pub use authorizations::{GetAuthorization, ListAuthorizations, RevokeAuthorization};
pub use keys::{ApiKeyList, CreateApiKey, GetKeyDocument, ListApiKeys, RevokeApiKey, RotateSigningKey};
pub use policies::{ArchivePolicy, CreatePolicy, GetPolicy, ListPolicies, PreviewPolicy, PublishPolicy};
pub use receipts::{GetReceipt, ListReceipts, SettleBudget, VerifyReceipts};

use crate::error::{Error, Result};
use crate::model::{AuthorizationCreate, CheckRequest};

/// The HTTP method of a route.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "typescript", derive(ts_rs::TS))]
#[serde(rename_all = "UPPERCASE")]
pub enum Method {
    Get,
    Post,
    Delete,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Delete => "DELETE",
        }
    }
}

/// Which credential a route takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "typescript", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum Access {
    /// None: anyone may call it (the public key document).
    Public,
    /// A runtime or a setup key.
    Runtime,
    /// A setup key.
    Setup,
}

/// Whether a route takes an `Idempotency-Key`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "typescript", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum Idempotency {
    /// It has no effect a retry could repeat.
    None,
    /// A retry under the same key gets the first answer.
    Optional,
    /// As `Optional`, and the server refuses the call without one (a remote client makes one up).
    Required,
}

/// Where an operation's fields (other than the path id and the idempotency key) travel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "typescript", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum Body {
    /// In the query string (`GET`).
    Query,
    /// Nowhere: the operation has no other field.
    None,
    /// A JSON object body, left out when it would be empty.
    Optional,
    /// A JSON object body.
    Json,
}

/// How an operation is reached over HTTP, and what its success status is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "typescript", derive(ts_rs::TS))]
pub struct Route {
    /// The operation's name in every binding (`create_authorization`).
    pub operation: &'static str,
    pub method: Method,
    /// The path template; `{id}` stands for [`Route::path_field`].
    pub path: &'static str,
    /// The field the path's `{id}` carries.
    pub path_field: Option<&'static str>,
    pub access: Access,
    pub idempotency: Idempotency,
    pub body: Body,
    /// The status of a success (204: no body).
    pub status: u16,
    /// A policy definition travels in the body: the larger body limit applies.
    pub large_body: bool,
}

impl Route {
    /// Whether a retry of this operation could repeat an effect (it changes state).
    pub fn writes(&self) -> bool {
        self.method != Method::Get
    }

    /// The path with `id` in place of `{id}` (percent-encoded).
    pub fn path_with(&self, id: Option<&str>) -> String {
        match id {
            Some(id) => self.path.replacen("{id}", &percent_encode(id), 1),
            None => self.path.to_string(),
        }
    }
}

/// One operation of the catalog.
pub trait Operation: Serialize + DeserializeOwned + Into<Request> {
    const ROUTE: Route;
    /// What a success answers (its JSON is the HTTP answer's body).
    type Answer: Serialize + DeserializeOwned;

    /// The answer of this operation out of a catalog answer.
    fn answer_of(answer: Answer) -> Option<Self::Answer>;

    /// The caller's idempotency key, if the operation takes one.
    fn idempotency_key(&self) -> Option<&str> {
        None
    }

    /// Whether an answer from a remote runtime is about what was asked (its ids match); the
    /// reason it is not, otherwise.
    fn check_answer(&self, _answer: &Self::Answer) -> Result<(), String> {
        Ok(())
    }
}

/// `Operation::answer_of` for the type of catalog variant `$variant`.
macro_rules! answer_of {
    ($variant:ident) => {
        fn answer_of(answer: $crate::ops::Answer) -> Option<Self::Answer> {
            match answer {
                $crate::ops::Answer::$variant(answer) => Some(answer),
                #[allow(unreachable_patterns)]
                _ => None,
            }
        }
    };
}
pub(crate) use answer_of;

/// Declares the catalog: the [`Request`] and [`Answer`] enums and [`CATALOG`], one variant and
/// one entry per operation type.
macro_rules! catalog {
    ($($variant:ident($op:ty)),* $(,)?) => {
        /// Any operation of the catalog.
        #[derive(Clone, Debug, PartialEq)]
        pub enum Request {
            $($variant($op)),*
        }

        /// The answer of any operation of the catalog; serializes as the HTTP answer's body.
        #[derive(Clone, Debug, Serialize)]
        #[serde(untagged)]
        pub enum Answer {
            $($variant(<$op as Operation>::Answer)),*
        }

        /// The route of every operation, in catalog order.
        pub const CATALOG: &[Route] = &[$(<$op as Operation>::ROUTE),*];

        impl Request {
            pub fn route(&self) -> &'static Route {
                let index = match self {
                    $(Request::$variant(_) => catalog_index(<$op as Operation>::ROUTE.operation)),*
                };
                &CATALOG[index]
            }

            /// The operation named `name`, from its serde form; an unknown name or a wrong
            /// shape is `invalid_request` naming the field.
            pub fn from_value(name: &str, value: Value) -> Result<Request> {
                $(if name == <$op as Operation>::ROUTE.operation {
                    return decode::<$op>(value).map(Request::$variant);
                })*
                Err(Error::invalid("operation", format!("unknown operation `{name}`")))
            }

            /// The serde form (the merged HTTP request).
            pub fn to_value(&self) -> Result<Value> {
                let encoded = match self {
                    $(Request::$variant(op) => serde_json::to_value(op)),*
                };
                encoded.map_err(|err| Error::invalid("request", format!("cannot be encoded: {err}")))
            }

            pub fn idempotency_key(&self) -> Option<&str> {
                match self {
                    $(Request::$variant(op) => op.idempotency_key()),*
                }
            }

            /// This operation's answer from its JSON (an HTTP answer's body).
            pub fn decode_answer(&self, value: Value) -> Result<Answer, serde_json::Error> {
                Ok(match self {
                    $(Request::$variant(_) => Answer::$variant(serde_json::from_value(value)?)),*
                })
            }

            /// [`Operation::check_answer`] of this operation.
            pub fn check_answer(&self, answer: &Answer) -> Result<(), String> {
                match (self, answer) {
                    $((Request::$variant(op), Answer::$variant(answer)) => op.check_answer(answer),)*
                    #[allow(unreachable_patterns)]
                    _ => Err(format!("the answer is not one of `{}`", self.route().operation)),
                }
            }
        }

        $(impl From<$op> for Request {
            fn from(op: $op) -> Request {
                Request::$variant(op)
            }
        })*

        impl Answer {
            /// The answer as JSON (`null` for an operation answered with 204).
            pub fn to_value(&self) -> Result<Value> {
                serde_json::to_value(self).map_err(|err| Error::internal(format!("cannot encode the answer: {err}")))
            }
        }

    };
}

catalog! {
    Check(CheckRequest),
    CreateAuthorization(AuthorizationCreate),
    ListAuthorizations(ListAuthorizations),
    GetAuthorization(GetAuthorization),
    RevokeAuthorization(RevokeAuthorization),
    ConfirmationStatus(ConfirmationStatus),
    ListConfirmations(ListConfirmations),
    ResolveConfirmation(ResolveConfirmation),
    EscalationStatus(EscalationStatus),
    ListEscalations(ListEscalations),
    ResolveEscalation(ResolveEscalation),
    SettleBudget(SettleBudget),
    GetReceipt(GetReceipt),
    ListReceipts(ListReceipts),
    VerifyReceipts(VerifyReceipts),
    CreatePolicy(CreatePolicy),
    ListPolicies(ListPolicies),
    GetPolicy(GetPolicy),
    ArchivePolicy(ArchivePolicy),
    PreviewPolicy(PreviewPolicy),
    PublishPolicy(PublishPolicy),
    ListApiKeys(ListApiKeys),
    CreateApiKey(CreateApiKey),
    RevokeApiKey(RevokeApiKey),
    RotateSigningKey(RotateSigningKey),
    GetKeyDocument(GetKeyDocument),
}

/// The catalog entry of operation `name`.
pub fn route_of(name: &str) -> Option<&'static Route> {
    CATALOG.iter().find(|route| route.operation == name)
}

/// The catalog entry answering `method` on path template `path`.
pub fn route_at(method: &str, path: &str) -> Option<&'static Route> {
    CATALOG.iter().find(|route| route.path == path && route.method.as_str() == method)
}

fn catalog_index(name: &str) -> usize {
    CATALOG.iter().position(|route| route.operation == name).unwrap_or(0)
}

/// Runs a typed operation through any `call` of the catalog.
pub fn run<O: Operation>(call: impl FnOnce(Request) -> Result<Answer>, op: O) -> Result<O::Answer> {
    let name = O::ROUTE.operation;
    O::answer_of(call(op.into())?)
        .ok_or_else(|| Error::internal(format!("`{name}` was answered with another operation's answer")))
}

/// An operation from its serde form. A wrong shape is `invalid_request` naming the member: serde
/// names a missing, unknown or repeated member itself; a member of the wrong type (`"budget_limit_micros":
/// 1e30`, a number no integer type holds) it does not, so that member is found by leaving each out in turn.
pub fn decode<T: DeserializeOwned>(value: Value) -> Result<T> {
    T::deserialize(&value).map_err(|err| {
        let text = err.to_string();
        let field = ["missing field `", "unknown field `", "duplicate field `"]
            .iter()
            .find_map(|prefix| text.split_once(prefix).and_then(|(_, rest)| rest.split_once('`')).map(|(f, _)| f))
            .map(str::to_string)
            .or_else(|| wrong_member::<T>(&value, &text))
            .unwrap_or_else(|| "body".into());
        Error::invalid(field, text.clone())
    })
}

/// The first member whose absence changes the complaint `text` (it goes away, becomes that the
/// member is missing, or is about another member): the one the complaint is about. Only on the
/// error path, over the few members a request type knows.
fn wrong_member<T: DeserializeOwned>(value: &Value, text: &str) -> Option<String> {
    let members = value.as_object()?;
    members
        .keys()
        .find(|member| {
            let mut without = members.clone();
            without.remove(member.as_str());
            match T::deserialize(&Value::Object(without)) {
                Ok(_) => true,
                Err(err) => err.to_string() != text,
            }
        })
        .cloned()
}

/// A path segment, percent-encoded except for RFC 3986 unreserved characters.
pub fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// An integer field that arrives as a JSON number from a body or a binding, or as text from a
/// query string (`?limit=10`).
pub(crate) mod query_int {
    use serde::{Deserialize, Deserializer, Serializer};

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum NumberOrText {
        Number(i64),
        Text(String),
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<i64>, D::Error> {
        match Option::<NumberOrText>::deserialize(deserializer)? {
            None => Ok(None),
            Some(NumberOrText::Number(n)) => Ok(Some(n)),
            Some(NumberOrText::Text(text)) => text
                .trim()
                .parse::<i64>()
                .map(Some)
                .map_err(|_| serde::de::Error::custom(format!("`{text}` is not an integer"))),
        }
    }

    pub fn serialize<S: Serializer>(value: &Option<i64>, serializer: S) -> Result<S::Ok, S::Error> {
        match value {
            Some(n) => serializer.serialize_i64(*n),
            None => serializer.serialize_none(),
        }
    }
}

/// The fields `limit` (1 to 100, default 100) and `cursor` of a list operation.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "typescript", derive(ts_rs::TS))]
pub struct PageArgs {
    #[serde(default, with = "query_int", skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "typescript", ts(as = "Option<i64>", optional))]
    pub limit: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
}

impl PageArgs {
    pub fn new(limit: usize, cursor: Option<&str>) -> PageArgs {
        PageArgs { limit: Some(i64::try_from(limit).unwrap_or(i64::MAX)), cursor: cursor.map(str::to_string) }
    }

    /// The page size (a limit outside 1 to 100 is an invalid request) and the cursor.
    pub fn validate(&self) -> Result<(usize, Option<&str>)> {
        let limit = match self.limit {
            None => crate::api::DEFAULT_PAGE_SIZE,
            Some(n) => usize::try_from(n)
                .ok()
                .filter(|n| (1..=crate::engine::MAX_PAGE_SIZE).contains(n))
                .ok_or_else(|| Error::invalid("limit", "must be an integer from 1 to 100"))?,
        };
        Ok((limit, self.cursor.as_deref().filter(|cursor| !cursor.is_empty())))
    }
}

// -------------------------------------------------------------------------------------------------
// The two operations whose request types are the model's own.

impl Operation for CheckRequest {
    const ROUTE: Route = Route {
        operation: "check",
        method: Method::Post,
        path: "/v1/check",
        path_field: None,
        access: Access::Runtime,
        idempotency: Idempotency::Optional,
        body: Body::Json,
        status: 200,
        large_body: false,
    };
    type Answer = crate::model::CheckResponse;
    answer_of!(Check);

    fn idempotency_key(&self) -> Option<&str> {
        self.idempotency_key.as_deref()
    }
}

impl Operation for AuthorizationCreate {
    const ROUTE: Route = Route {
        operation: "create_authorization",
        method: Method::Post,
        path: "/v1/authorizations",
        path_field: None,
        access: Access::Runtime,
        idempotency: Idempotency::Optional,
        body: Body::Json,
        status: 201,
        large_body: false,
    };
    type Answer = crate::model::AuthorizationCreated;
    answer_of!(CreateAuthorization);

    fn idempotency_key(&self) -> Option<&str> {
        self.idempotency_key.as_deref()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn every_route_is_unique_and_well_formed() {
        for (n, route) in CATALOG.iter().enumerate() {
            assert_eq!(route_of(route.operation), Some(route), "{}", route.operation);
            assert_eq!(route_at(route.method.as_str(), route.path), Some(route), "{}", route.operation);
            assert_eq!(route.path.contains("{id}"), route.path_field.is_some(), "{}", route.operation);
            assert_eq!(route.method == Method::Get, route.body == Body::Query, "{}", route.operation);
            assert!(route.method != Method::Get || route.idempotency == Idempotency::None, "{}", route.operation);
            assert!(CATALOG[..n].iter().all(|other| other.operation != route.operation));
        }
    }

    #[test]
    fn requests_round_trip_by_name() {
        let value = serde_json::json!({"authorization_id": "auth_1", "revoked_by": "ops", "idempotency_key": "k1"});
        let request = Request::from_value("revoke_authorization", value.clone()).unwrap();
        assert_eq!(request.route().path, "/v1/authorizations/{id}");
        assert_eq!(request.idempotency_key(), Some("k1"));
        assert_eq!(request.to_value().unwrap(), value);
        let err = Request::from_value("revoke_authorization", serde_json::json!({"authorization": "x"})).unwrap_err();
        assert_eq!(err.fields()[0].field, "authorization");
        let err = Request::from_value(
            "settle_budget",
            serde_json::json!({"check_receipt_id": "rcpt_1", "actual_cost_micros": 1e30}),
        )
        .unwrap_err();
        assert_eq!(err.fields()[0].field, "actual_cost_micros");
        let err = Request::from_value("revoke_authorization", serde_json::json!({"authorization": "x"})).unwrap_err();
        assert_eq!(err.fields()[0].field, "authorization");
        assert_eq!(Request::from_value("launch", serde_json::json!({})).unwrap_err().code(), "invalid_request");
    }

    #[test]
    fn page_args_accept_query_text() {
        let args: PageArgs = serde_json::from_value(serde_json::json!({"limit": "10"})).unwrap();
        assert_eq!(args.validate().unwrap(), (10, None));
        let args: PageArgs = serde_json::from_value(serde_json::json!({"limit": 0})).unwrap();
        assert_eq!(args.validate().unwrap_err().fields()[0].field, "limit");
        assert!(serde_json::from_value::<PageArgs>(serde_json::json!({"limit": "ten"})).is_err());
        assert_eq!(PageArgs::default().validate().unwrap(), (100, None));
    }
}
