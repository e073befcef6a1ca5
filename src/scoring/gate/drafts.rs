//! Checks of unsaved drafts: merge fields left in, no reference to the reader, self-focus; and
//! the line a draft's score must reach after them.

use std::sync::LazyLock;

use regex::Regex;

use crate::scoring::{Assessment, Decision, Reason, ReasonCode};

use super::{GateFindings, GatePolicy};

/// Unrendered merge fields of the common mail tools and templating syntaxes: Handlebars and
/// Liquid {{first_name}}, {FirstName}, Salesforce {!Contact.FirstName}, ${name} and #{name},
/// [COMPANY], [First Name] and [first_name], <FIRST_NAME>, %FNAME% and %%First Name%%,
/// <<Name>>, ##FIRSTNAME##, Mailchimp *|FNAME|*. (In verbose mode white space is ignored even
/// inside classes, hence \x20.)
static PLACEHOLDER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?x)
        \{\{[^{}]{1,64}\}\}
        | [$\#]?\{!?[A-Za-z_][A-Za-z0-9_.\-\x20]{0,40}\}
        | \[[A-Z][A-Za-z_\x20]{1,30}\]
        | \[[a-z][a-z0-9]*(?:_[a-z0-9]+)+\]
        | <[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+>
        | %%[A-Za-z_][A-Za-z0-9_\x20]{0,38}%%
        | %[A-Za-z_][A-Za-z0-9_]{1,30}%
        | <<[^<>]{1,40}>>
        | \#\#[A-Za-z_][A-Za-z0-9_]{1,30}\#\#
        | \*\|[A-Za-z0-9_:]{1,30}\|\*
        ",
    )
    .expect("a valid pattern")
});

/// Capitalised tokens that may be a bare merge field: `FIRST_NAME`, `COMPANYNAME`,
/// `$FIRSTNAME`, `<COMPANY>`. Only those naming a field of a contact record count (see
/// `FIELD_WORDS`), so that `ASC_606`, `SPRING_SALE`, `$USD` or `<TITLE>` do not.
static BARE_FIELD: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"[$<]?\b[A-Z][A-Z_]{3,30}\b>?").expect("a valid pattern"));

/// The fields of a contact record that mail-merge templates fill in.
const FIELD_WORDS: [&str; 8] = [
    "NAME", "FIRST", "LAST", "COMPANY", "EMAIL", "PHONE", "CITY", "INSERT",
];

/// Whether a capitalised token is a bare merge field: it names a contact field and is
/// written as a template writes one (`$X`, `<X>`, `FIELD_NAME` or `...NAME` run together).
fn is_bare_field(token: &str) -> bool {
    let marked = token.starts_with('$') || (token.starts_with('<') && token.ends_with('>'));
    let word = token.trim_matches(|c| c == '$' || c == '<' || c == '>');
    let names_field = FIELD_WORDS.iter().any(|f| word.contains(f));
    let run_together = word.len() > 4 && word.ends_with("NAME");
    names_field && (marked || word.contains('_') || run_together)
}

/// The merge fields left in `text`.
fn merge_fields(text: &str) -> Vec<&str> {
    let mut found: Vec<&str> = PLACEHOLDER.find_iter(text).map(|m| m.as_str()).collect();
    found.extend(
        BARE_FIELD
            .find_iter(text)
            .map(|m| m.as_str())
            .filter(|t| is_bare_field(t)),
    );
    found
}

fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphanumeric() && c != '\'')
        .filter(|w| !w.is_empty())
        .map(|w| w.trim_matches('\'').to_lowercase())
}

/// Whether `text` names the prospect (a name part) or their company (its full name or its
/// first distinctive word). `None` when nothing is known to look for.
fn names_reader(text: &str, name: &str, company: &str) -> Option<bool> {
    let honorifics = ["dr", "mr", "mrs", "ms", "prof", "st", "the"];
    let mut keys: Vec<String> = words(name)
        .filter(|w| w.chars().count() >= 2 && !honorifics.contains(&w.as_str()))
        .collect();
    if let Some(first) =
        words(company).find(|w| w.chars().count() >= 3 && !honorifics.contains(&w.as_str()))
    {
        keys.push(first);
    }
    if keys.is_empty() {
        return None;
    }
    let lowered = text.to_lowercase();
    let found: std::collections::HashSet<String> = words(&lowered).collect();
    let company_full = company.trim().to_lowercase();
    Some(
        keys.iter()
            .any(|k| found.contains(k) || found.contains(&format!("{k}'s")))
            || (!company_full.is_empty() && lowered.contains(&company_full)),
    )
}

/// Checks of an unsaved draft: merge fields left unrendered, no reference to the reader, and
/// talk about "we/our/us" with little about "you/your". Returns the findings as reasons.
pub fn draft_checks(title: &str, body: &str, name: &str, company: &str) -> Vec<Reason> {
    let text = format!("{title}\n{body}");
    let mut out = Vec::new();
    let fields = merge_fields(&text);
    if !fields.is_empty() {
        let shown: Vec<&str> = fields.iter().take(3).copied().collect();
        out.push(Reason {
            code: ReasonCode::Placeholder,
            message: format!("Unrendered merge field(s): {}.", shown.join(", ")),
        });
    }
    let names = names_reader(&text, name, company);
    if names == Some(false) {
        out.push(Reason {
            code: ReasonCode::NoPersonalReference,
            message: "The draft names neither the prospect nor their company.".into(),
        });
    }
    let (mut sender, mut reader) = (0usize, 0usize);
    for w in words(&text) {
        match w.as_str() {
            "we" | "our" | "ours" | "us" | "ourselves" | "we're" | "we've" | "we'll" => sender += 1,
            "you" | "your" | "yours" | "yourself" | "you're" | "you've" | "you'll" => reader += 1,
            _ => {}
        }
    }
    if names == Some(true) {
        reader += 1;
    }
    if sender >= 2 && sender >= 2 * reader {
        out.push(Reason {
            code: ReasonCode::SelfFocused,
            message: format!(
                "About the sender, not the reader: {sender} mentions of we/our/us against {reader} of the reader."
            ),
        });
    }
    out
}

/// Applies draft-check findings to the gate's findings as the policy says.
pub fn apply_draft_checks(findings: &mut GateFindings, checks: Vec<Reason>, policy: &GatePolicy) {
    for reason in checks {
        let decision = if reason.code == ReasonCode::Placeholder {
            // A merge-field left in is always a mail-merge mistake: never send it.
            Decision::Reject
        } else {
            policy.draft_check_action
        };
        findings.score_factor *= policy.draft_check_factor;
        findings.cap(decision, reason.code, reason.message);
    }
}

/// Holds a draft to its line: its score after the findings' factors must reach
/// `draft_min_score`, or the draft is REJECT. Not applied to a draft scoring already rejected
/// (its reasons say why) or to a prospect of whom nothing is known yet (score 0 claims
/// nothing: a first-touch draft goes to review).
pub fn apply_draft_line(findings: &mut GateFindings, scored: &Assessment, policy: &GatePolicy) {
    let unknown = scored
        .reasons
        .iter()
        .any(|r| r.code == ReasonCode::InsufficientProfile);
    if unknown || scored.decision == Decision::Reject {
        return;
    }
    let adjusted = scored.score * findings.score_factor;
    if adjusted < policy.draft_min_score {
        findings.cap(
            Decision::Reject,
            ReasonCode::LowRelevance,
            format!(
                "A draft must be clearly about this person: it scores {adjusted:.2} after its \
                 checks, under the draft line {:.2}.",
                policy.draft_min_score
            ),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Millis;
    use crate::scoring::gate::history_rules;

    const NOW: Millis = 100 * 86_400_000;

    fn v(x: f32) -> Vec<f32> {
        vec![x, (1.0 - x * x).sqrt()]
    }

    #[test]
    fn merge_fields_of_every_common_tool_are_found() {
        for draft in [
            "Hi {{first_name}}, about Acme",
            "Hi {FirstName}, about Acme",
            "Dear [COMPANY] team, Ana",
            "Hi [First Name], Acme",
            "Dear %FNAME%, Acme",
            "Hello <<Name>>, Acme",
            "Hi *|FNAME|*, Acme",
            "Hi ${name}, Acme",
            "Hi #{name}, Acme",
            "Hi {!Contact.FirstName}, Acme",
            "Hello [first_name], Acme",
            "Dear <FIRST_NAME>, Acme",
            "Dear <COMPANY> team, Ana",
            "Dear %%First Name%%, Acme",
            "Hi ##FIRSTNAME##, Acme",
            "Hi $FIRSTNAME, Acme",
            "Hi FIRSTNAME, Acme",
            "We help teams like Acme in INSERT_COUNTRY",
            "We help COMPANY_NAME, Ana",
        ] {
            let r = draft_checks("", draft, "Ana Ruiz", "Acme");
            assert_eq!(
                r.first().map(|r| r.code),
                Some(ReasonCode::Placeholder),
                "{draft}"
            );
        }
        let clean = draft_checks(
            "Ana, your pick paths",
            "Hi Ana, you said Acme's pickers [see notes] lose hours; the SOX audit costs $40k, \
             ASC_606 and ISO_27001 are due in Q3_2024, the SPRING_SALE code works in USD ($USD), \
             <b>ASC 606</b> and <TITLE> are a NAME you know, and we grew 40%% to 60%%, Ana.",
            "Ana Ruiz",
            "Acme",
        );
        assert!(clean.is_empty(), "{clean:?}");
    }

    #[test]
    fn impersonal_and_self_focused_drafts_are_found() {
        let r = draft_checks(
            "Our platform",
            "We are the leading provider. Our award-winning team helps us help companies grow.",
            "Ana Ruiz",
            "Northwind Logistics",
        );
        let codes: Vec<ReasonCode> = r.iter().map(|r| r.code).collect();
        assert_eq!(
            codes,
            vec![ReasonCode::NoPersonalReference, ReasonCode::SelfFocused]
        );
        let personal = draft_checks(
            "",
            "Hi Dr. Marsh, you said St. Aldric's ED boards patients.",
            "Dr. Kevin Marsh",
            "St. Aldric Medical Center",
        );
        assert!(personal.is_empty(), "{personal:?}");
    }

    #[test]
    fn placeholders_reject_and_other_findings_follow_the_policy() {
        let policy = GatePolicy::default();
        let mut f = history_rules(&v(1.0), NOW, &[], &[], &policy);
        apply_draft_checks(
            &mut f,
            draft_checks("", "We at our company love us.", "Ana", "Acme"),
            &policy,
        );
        assert_eq!(f.decision, Decision::Review);
        assert!(f.score_factor < 1.0);
        let mut g = history_rules(&v(1.0), NOW, &[], &[], &policy);
        apply_draft_checks(
            &mut g,
            draft_checks("", "Hi {{first_name}} at Acme", "Ana", "Acme"),
            &policy,
        );
        assert_eq!(g.decision, Decision::Reject);
    }
}
