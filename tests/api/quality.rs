//! The quality regression test: `pertinent eval` on the development set, through the gRPC API
//! with the real model, must stay at or above the floors below. The floors sit at the measured
//! values (docs/scoring.md), so any regression fails the build; this is not a timing test.

use pertinent::eval::{evaluate, read_dataset};

use crate::helpers::*;

#[tokio::test]
async fn the_development_set_meets_its_floors() {
    let app = spawn_app().await;
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/dev.json");
    let dataset = read_dataset(&path).expect("the development set parses");
    let report = evaluate(&app.channel, &dataset, "quality")
        .await
        .expect("evaluation runs");
    println!("{}", report.table());
    for miss in &report.misses {
        println!("miss: {miss}");
    }
    let floors = [
        ("precision@1", report.precision_at_1.value(), 1.0),
        (
            "generic blasts rejected",
            report.generic_rejected.value(),
            1.0,
        ),
        ("on-target accepted", report.on_target_accepted.value(), 1.0),
        (
            "personal draft above generic",
            report.drafts_personal_higher.value(),
            1.0,
        ),
        ("FindAudience top-1", report.audience_at_1.value(), 1.0),
        (
            "gate: placeholder drafts rejected",
            report.gate_placeholder_rejected.value(),
            1.0,
        ),
        (
            "gate: personalized drafts allowed",
            report.gate_personal_allowed.value(),
            1.0,
        ),
    ];
    for (name, value, floor) in floors {
        assert!(
            value >= floor,
            "{name}: {value:.3} fell below its floor {floor:.3}\n{}",
            report.table()
        );
    }
    assert_eq!(
        report.negative_violations.hits,
        0,
        "negative-topic violations\n{}",
        report.table()
    );
    assert!(
        report.negative_violations.total >= 7,
        "the refused pairs were not all scored"
    );
    assert!(report.precision_at_1.total >= 20 && report.generic_rejected.total >= 100);
    assert!(
        report.gate_placeholder_rejected.total >= 3 && report.gate_personal_allowed.total >= 20
    );
}
