//! Content pieces: requests in, records out.

use super::*;

fn content_kind(v: &mut Violations, field: &str, raw: i32) -> Option<ContentKind> {
    match pb::ContentKind::try_from(raw) {
        Ok(pb::ContentKind::Unspecified | pb::ContentKind::Other) => Some(ContentKind::Other),
        Ok(pb::ContentKind::CaseStudy) => Some(ContentKind::CaseStudy),
        Ok(pb::ContentKind::BlogPost) => Some(ContentKind::BlogPost),
        Ok(pb::ContentKind::Ebook) => Some(ContentKind::Ebook),
        Ok(pb::ContentKind::Webinar) => Some(ContentKind::Webinar),
        Ok(pb::ContentKind::ProductUpdate) => Some(ContentKind::ProductUpdate),
        Ok(pb::ContentKind::Newsletter) => Some(ContentKind::Newsletter),
        Ok(pb::ContentKind::EmailTemplate) => Some(ContentKind::EmailTemplate),
        Err(_) => {
            v.add(field, format!("unknown ContentKind value {raw}"));
            None
        }
    }
}

/// A content piece to register.
pub fn content(
    v: &mut Violations,
    raw: Option<pb::Content>,
    limits: &RequestLimits,
) -> Option<NewContent> {
    let Some(pb::Content {
        id,
        kind,
        title,
        body,
        tags,
    }) = raw
    else {
        v.add("content", "is required");
        return None;
    };
    let id = content_id(v, "content.id", id);
    let kind = content_kind(v, "content.kind", kind);
    let title = short_text(v, "content.title", title);
    let body = keep(v, "content.body", Text::parse(body, limits.max_text_bytes));
    if tags.len() > MAX_TAGS {
        v.add(
            "content.tags",
            format!("at most {MAX_TAGS} tags are accepted"),
        );
    }
    for (i, tag) in tags.iter().enumerate() {
        if tag.trim().is_empty() || tag.len() > 128 || tag.chars().any(char::is_control) {
            v.add(
                format!("content.tags[{i}]"),
                "tags must be 1 to 128 bytes without control characters",
            );
        }
    }
    match (id, kind, title, body) {
        (Some(id), Some(kind), Some(title), Some(body)) if v.is_empty() => Some(NewContent {
            id,
            kind,
            title,
            body,
            tags,
        }),
        _ => None,
    }
}

fn content_kind_to_pb(k: ContentKind) -> pb::ContentKind {
    match k {
        ContentKind::CaseStudy => pb::ContentKind::CaseStudy,
        ContentKind::BlogPost => pb::ContentKind::BlogPost,
        ContentKind::Ebook => pb::ContentKind::Ebook,
        ContentKind::Webinar => pb::ContentKind::Webinar,
        ContentKind::ProductUpdate => pb::ContentKind::ProductUpdate,
        ContentKind::Newsletter => pb::ContentKind::Newsletter,
        ContentKind::EmailTemplate => pb::ContentKind::EmailTemplate,
        ContentKind::Other => pb::ContentKind::Other,
    }
}

/// A stored content piece as the API returns it.
pub fn content_to_pb(c: ContentRecord) -> pb::Content {
    pb::Content {
        id: c.id.to_string(),
        kind: content_kind_to_pb(c.kind) as i32,
        title: c.title,
        body: c.body.into_string(),
        tags: c.tags,
    }
}
