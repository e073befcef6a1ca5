//! Plain data shared by every layer: validated identifiers and texts, the enums of the API in
//! domain form, and the records the store keeps.
//!
//! Constructors parse, they do not merely check: a `ProspectId` in hand is known to be valid.
//! Uses nothing but std and serde; no clock (times are passed in as `Millis`).

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// Why a value was refused. The caller knows which field it came from and adds the name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid(pub String);

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Milliseconds since the Unix epoch.
pub type Millis = i64;

/// Longest identifier, in bytes.
pub const MAX_ID_BYTES: usize = 128;

fn parse_id(raw: String) -> Result<String, Invalid> {
    if raw.is_empty() {
        return Err(Invalid("must not be empty".into()));
    }
    if raw.len() > MAX_ID_BYTES {
        return Err(Invalid(format!("must be at most {MAX_ID_BYTES} bytes")));
    }
    if raw.chars().any(char::is_control) {
        return Err(Invalid("must not contain control characters".into()));
    }
    if raw.trim() != raw {
        return Err(Invalid("must not start or end with white space".into()));
    }
    Ok(raw)
}

macro_rules! identifier {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub struct $name(String);

        impl $name {
            /// Accepts 1 to `MAX_ID_BYTES` bytes with no control characters and no outer white space.
            pub fn parse(raw: impl Into<String>) -> Result<Self, Invalid> {
                parse_id(raw.into()).map(Self)
            }

            /// The identifier as sent by the client.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

identifier!(
    /// A workspace of one sender. Nothing of one tenant is visible to another.
    Tenant
);
identifier!(
    /// A prospect, unique within a tenant.
    ProspectId
);
identifier!(
    /// A signal, unique within a prospect.
    SignalId
);
identifier!(
    /// A registered content piece, unique within a tenant.
    ContentId
);
identifier!(
    /// A pipeline's id for one send, unique within a tenant.
    SendId
);

/// Free text that is embedded: non-blank and at most a configured number of bytes.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Text(String);

impl Text {
    /// Accepts text with at least one non-blank character, at most `max_bytes` bytes, no NUL.
    pub fn parse(raw: String, max_bytes: usize) -> Result<Self, Invalid> {
        if raw.trim().is_empty() {
            return Err(Invalid("must not be empty".into()));
        }
        if raw.len() > max_bytes {
            return Err(Invalid(format!(
                "is {} bytes; at most {max_bytes} are accepted",
                raw.len()
            )));
        }
        if raw.contains('\0') {
            return Err(Invalid("must not contain NUL characters".into()));
        }
        Ok(Self(raw))
    }

    /// The text itself. Personal data: never log it.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Takes the text out.
    pub fn into_string(self) -> String {
        self.0
    }
}

/// Texts are personal data; Debug shows only their size so that a stray `{:?}` leaks nothing.
impl fmt::Debug for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Text({} bytes)", self.0.len())
    }
}

/// A signal's relative strength, in (0, `Weight::MAX`].
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Serialize, Deserialize)]
pub struct Weight(f32);

impl Weight {
    /// The largest weight accepted.
    pub const MAX: f32 = 10.0;

    /// 0 means "not given" and becomes 1; NaN, infinities, negatives and values over MAX are refused.
    pub fn parse(raw: f32) -> Result<Self, Invalid> {
        if !raw.is_finite() {
            return Err(Invalid("must be a finite number".into()));
        }
        if raw < 0.0 {
            return Err(Invalid("must not be negative".into()));
        }
        if raw > Self::MAX {
            return Err(Invalid(format!("must be at most {}", Self::MAX)));
        }
        Ok(Self(if raw == 0.0 { 1.0 } else { raw }))
    }

    /// The weight as a number.
    pub fn get(self) -> f32 {
        self.0
    }
}

impl Default for Weight {
    fn default() -> Self {
        Self(1.0)
    }
}

/// Where a piece of evidence came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SignalSource {
    ForumPost,
    CallNote,
    CaseStudyRead,
    EmailReply,
    Survey,
    WebVisit,
    Other,
}

impl SignalSource {
    /// Every source, for tables and iteration.
    pub const ALL: [SignalSource; 7] = [
        Self::ForumPost,
        Self::CallNote,
        Self::CaseStudyRead,
        Self::EmailReply,
        Self::Survey,
        Self::WebVisit,
        Self::Other,
    ];

    /// A stable name for storage.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ForumPost => "forum_post",
            Self::CallNote => "call_note",
            Self::CaseStudyRead => "case_study_read",
            Self::EmailReply => "email_reply",
            Self::Survey => "survey",
            Self::WebVisit => "web_visit",
            Self::Other => "other",
        }
    }

    /// The inverse of `as_str`.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == name)
    }
}

/// Whether a signal says "more of this" or "stop sending me this".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Polarity {
    Positive,
    Negative,
}

impl Polarity {
    /// A stable name for storage.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Positive => "positive",
            Self::Negative => "negative",
        }
    }

    /// The inverse of `as_str`.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "positive" => Some(Self::Positive),
            "negative" => Some(Self::Negative),
            _ => None,
        }
    }
}

/// What kind of piece a registered content is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ContentKind {
    CaseStudy,
    BlogPost,
    Ebook,
    Webinar,
    ProductUpdate,
    Newsletter,
    EmailTemplate,
    Other,
}

impl ContentKind {
    /// Every kind, for iteration.
    pub const ALL: [ContentKind; 8] = [
        Self::CaseStudy,
        Self::BlogPost,
        Self::Ebook,
        Self::Webinar,
        Self::ProductUpdate,
        Self::Newsletter,
        Self::EmailTemplate,
        Self::Other,
    ];

    /// A stable name for storage.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::CaseStudy => "case_study",
            Self::BlogPost => "blog_post",
            Self::Ebook => "ebook",
            Self::Webinar => "webinar",
            Self::ProductUpdate => "product_update",
            Self::Newsletter => "newsletter",
            Self::EmailTemplate => "email_template",
            Self::Other => "other",
        }
    }

    /// The inverse of `as_str`.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == name)
    }
}

/// A prospect's descriptive fields, as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct ProspectRecord {
    pub id: ProspectId,
    pub name: String,
    pub company: String,
    pub role: String,
    pub attributes: BTreeMap<String, String>,
}

/// One piece of evidence with its embedding, as stored.
#[derive(Clone, PartialEq)]
pub struct SignalRecord {
    pub id: SignalId,
    pub source: SignalSource,
    pub polarity: Polarity,
    pub observed_at: Millis,
    pub weight: Weight,
    pub text: Text,
    pub vector: Vec<f32>,
}

impl fmt::Debug for SignalRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignalRecord")
            .field("id", &self.id)
            .field("source", &self.source)
            .field("polarity", &self.polarity)
            .field("observed_at", &self.observed_at)
            .field("weight", &self.weight)
            .field("text", &self.text)
            .field("dims", &self.vector.len())
            .finish()
    }
}

/// A registered content piece with its embedding, as stored.
#[derive(Clone, PartialEq)]
pub struct ContentRecord {
    pub id: ContentId,
    pub kind: ContentKind,
    pub title: String,
    pub body: Text,
    pub tags: Vec<String>,
    pub vector: Vec<f32>,
}

impl fmt::Debug for ContentRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ContentRecord")
            .field("id", &self.id)
            .field("kind", &self.kind)
            .field("tags", &self.tags.len())
            .field("dims", &self.vector.len())
            .finish()
    }
}

/// How a prospect reacted to a send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EngagementKind {
    Opened,
    Clicked,
    RepliedPositive,
    RepliedNegative,
    Unsubscribed,
    Complained,
    /// The prospect asked to hear from the tenant again: lifts an earlier opt-out.
    Resubscribed,
}

impl EngagementKind {
    /// Every kind, for iteration.
    pub const ALL: [EngagementKind; 7] = [
        Self::Opened,
        Self::Clicked,
        Self::RepliedPositive,
        Self::RepliedNegative,
        Self::Unsubscribed,
        Self::Complained,
        Self::Resubscribed,
    ];

    /// A stable name for storage.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Opened => "opened",
            Self::Clicked => "clicked",
            Self::RepliedPositive => "replied_positive",
            Self::RepliedNegative => "replied_negative",
            Self::Unsubscribed => "unsubscribed",
            Self::Complained => "complained",
            Self::Resubscribed => "resubscribed",
        }
    }

    /// The inverse of `as_str`.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == name)
    }

    /// Whether this reaction opts the prospect out (a state the gate keeps, docs/gate.md).
    pub fn opts_out(self) -> bool {
        match self {
            Self::Unsubscribed | Self::Complained => true,
            Self::Opened
            | Self::Clicked
            | Self::RepliedPositive
            | Self::RepliedNegative
            | Self::Resubscribed => false,
        }
    }
}

/// A message the gate let through and the pipeline sent, as stored.
#[derive(Clone, PartialEq)]
pub struct SendRecord {
    pub send_id: SendId,
    pub decision_id: String,
    /// The content id, or the draft's id.
    pub candidate_id: String,
    pub channel: String,
    pub sent_at: Millis,
    /// What was sent (title and body), kept so a negative reply can become a signal.
    pub text: String,
    pub vector: Vec<f32>,
}

impl fmt::Debug for SendRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SendRecord")
            .field("send_id", &self.send_id)
            .field("candidate_id", &self.candidate_id)
            .field("channel", &self.channel)
            .field("sent_at", &self.sent_at)
            .finish()
    }
}

/// A reaction to a send, as stored. One per (send, kind): recording it again replaces it.
#[derive(Debug, Clone, PartialEq)]
pub struct EngagementRecord {
    pub send_id: SendId,
    pub kind: EngagementKind,
    pub at: Millis,
}

/// The text that represents a piece for embedding: title and body together.
pub fn embedding_text(title: &str, body: &str) -> String {
    if title.trim().is_empty() {
        body.to_owned()
    } else {
        format!("{title}\n\n{body}")
    }
}

/// Cosine similarity of two unit-length vectors, which is their dot product; 0 when the
/// lengths differ (vectors of another model).
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    if a.len() != b.len() {
        return 0.0;
    }
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_refuse_empty_long_and_control_characters() {
        assert!(ProspectId::parse("p-1").is_ok());
        assert!(ProspectId::parse("").is_err());
        assert!(ProspectId::parse(" p").is_err());
        assert!(ProspectId::parse("a\nb").is_err());
        assert!(ProspectId::parse("x".repeat(MAX_ID_BYTES)).is_ok());
        assert!(ProspectId::parse("x".repeat(MAX_ID_BYTES + 1)).is_err());
    }

    #[test]
    fn weight_defaults_zero_and_refuses_nan_negative_and_huge() {
        assert_eq!(Weight::parse(0.0).unwrap().get(), 1.0);
        assert_eq!(Weight::parse(2.5).unwrap().get(), 2.5);
        assert!(Weight::parse(f32::NAN).is_err());
        assert!(Weight::parse(f32::INFINITY).is_err());
        assert!(Weight::parse(-0.1).is_err());
        assert!(Weight::parse(10.5).is_err());
    }

    #[test]
    fn text_refuses_blank_and_oversize_and_hides_itself_in_debug() {
        assert!(Text::parse("  \n".into(), 10).is_err());
        assert!(Text::parse("12345678901".into(), 10).is_err());
        let t = Text::parse("secret words".into(), 100).unwrap();
        assert_eq!(format!("{t:?}"), "Text(12 bytes)");
    }

    #[test]
    fn enum_names_round_trip() {
        for s in SignalSource::ALL {
            assert_eq!(SignalSource::from_name(s.as_str()), Some(s));
        }
        for k in ContentKind::ALL {
            assert_eq!(ContentKind::from_name(k.as_str()), Some(k));
        }
        for k in EngagementKind::ALL {
            assert_eq!(EngagementKind::from_name(k.as_str()), Some(k));
        }
    }
}

/// A secret that Debug never prints.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(secret: impl Into<String>) -> Self {
        Self(secret.into())
    }

    /// The secret itself, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl std::str::FromStr for Secret {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self(s.to_owned()))
    }
}

/// The domain of every `google.rpc.ErrorInfo` pertinent sends.
pub const ERROR_DOMAIN: &str = "pertinent.v1";
