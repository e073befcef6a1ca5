//! Bad input at volume, over gRPC: random and mutated requests to every RPC (bit flips,
//! truncations, inserted and duplicated bytes, huge varints, fields swapped for edge values:
//! control characters, strings at and past each limit, NaN, negative and unknown enum values,
//! empty oneofs, long repeated fields; and raw garbage bodies). Asserted: no answer is INTERNAL
//! or UNKNOWN, every refused request changed nothing stored, and the server is SERVING at the
//! end. `PERTINENT_FUZZ_REQUESTS` sets how many (2,000 here); the seed is fixed, so a failure
//! repeats.

use prost::Message as _;
use prost::bytes::{Buf, BufMut};
use tonic::Code;
use tonic::codec::{BufferSettings, Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::transport::Channel;

use pertinent::grpc::pb;

use crate::helpers::*;

/// Sends and receives raw bytes as gRPC messages, whatever they hold.
#[derive(Clone, Default)]
struct Raw;

impl Codec for Raw {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = Raw;
    type Decoder = Raw;
    fn encoder(&mut self) -> Raw {
        Raw
    }
    fn decoder(&mut self) -> Raw {
        Raw
    }
}

impl Encoder for Raw {
    type Item = Vec<u8>;
    type Error = tonic::Status;
    fn encode(&mut self, item: Vec<u8>, buf: &mut EncodeBuf<'_>) -> Result<(), tonic::Status> {
        buf.put_slice(&item);
        Ok(())
    }
    fn buffer_settings(&self) -> BufferSettings {
        BufferSettings::default()
    }
}

impl Decoder for Raw {
    type Item = Vec<u8>;
    type Error = tonic::Status;
    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, tonic::Status> {
        let mut out = vec![0; buf.remaining()];
        buf.copy_to_slice(&mut out);
        Ok(Some(out))
    }
    fn buffer_settings(&self) -> BufferSettings {
        BufferSettings::default()
    }
}

/// A small deterministic generator (SplitMix64).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// Strings that sit on or past an edge.
fn edge_string(rng: &mut Rng) -> String {
    match rng.below(10) {
        0 => String::new(),
        1 => "   ".into(),
        2 => "\u{0}\u{1}\u{7f}".into(),
        3 => "x".repeat(128),
        4 => "x".repeat(129),
        5 => "é".repeat(20_000),
        6 => "\u{202e}rtl\u{feff}zero-width\u{200b}".into(),
        7 => "{{first_name}} [FNAME] %%name%%".into(),
        8 => "p0".into(),
        _ => "🙂".repeat(300),
    }
}

fn edge_f32(rng: &mut Rng) -> f32 {
    *rng.pick(&[f32::NAN, -1.0, f32::INFINITY, 1e30, 0.0, 10.0, 10.5, -0.0])
}

fn edge_enum(rng: &mut Rng) -> i32 {
    *rng.pick(&[0, 1, 7, 99, -1, i32::MAX, i32::MIN])
}

fn candidate(rng: &mut Rng) -> Option<pb::Candidate> {
    match rng.below(4) {
        0 => None,
        1 => Some(pb::Candidate { item: None }),
        2 => Some(pb::Candidate {
            item: Some(pb::candidate::Item::ContentId(if rng.below(2) == 0 {
                "c0".into()
            } else {
                edge_string(rng)
            })),
        }),
        _ => Some(pb::Candidate {
            item: Some(pb::candidate::Item::Draft(pb::Draft {
                title: edge_string(rng),
                body: edge_string(rng),
                id: edge_string(rng),
            })),
        }),
    }
}

fn tenant(rng: &mut Rng) -> String {
    if rng.below(3) == 0 {
        edge_string(rng)
    } else {
        "f".into()
    }
}

fn prospect_id(rng: &mut Rng) -> String {
    if rng.below(3) == 0 {
        edge_string(rng)
    } else {
        format!("p{}", rng.below(3))
    }
}

/// A request for RPC number `rpc`, its fields drawn from the edges, encoded; and its path.
fn structured(rng: &mut Rng, rpc: usize) -> (&'static str, Vec<u8>) {
    let ts = |rng: &mut Rng| {
        (rng.below(2) == 0).then(|| prost_types::Timestamp {
            seconds: *rng.pick(&[-1, 0, i64::MAX, i64::MIN, 1_700_000_000]),
            nanos: *rng.pick(&[0, -1, 1_000_000_000, i32::MAX]),
        })
    };
    let signals = |rng: &mut Rng| {
        let n = *rng.pick(&[0usize, 1, 3, 257]);
        (0..n)
            .map(|i| pb::Signal {
                id: if i % 2 == 0 {
                    format!("s{i}")
                } else {
                    edge_string(rng)
                },
                source: edge_enum(rng),
                polarity: edge_enum(rng),
                observed_at: ts(rng),
                text: edge_string(rng),
                weight: edge_f32(rng),
            })
            .collect()
    };
    let p = |rng: &mut Rng| pb::Prospect {
        id: prospect_id(rng),
        name: edge_string(rng),
        company: edge_string(rng),
        role: edge_string(rng),
        attributes: (0..rng.below(3))
            .map(|_| (edge_string(rng), edge_string(rng)))
            .collect(),
        ..Default::default()
    };
    match rpc {
        0 => (
            "/pertinent.v1.ProspectService/UpsertProspect",
            pb::UpsertProspectRequest {
                tenant: tenant(rng),
                prospect: (rng.below(4) != 0).then(|| p(rng)),
            }
            .encode_to_vec(),
        ),
        1 => (
            "/pertinent.v1.ProspectService/GetProspect",
            pb::GetProspectRequest {
                tenant: tenant(rng),
                id: prospect_id(rng),
            }
            .encode_to_vec(),
        ),
        2 => (
            "/pertinent.v1.ProspectService/DeleteProspect",
            pb::DeleteProspectRequest {
                tenant: tenant(rng),
                id: edge_string(rng),
            }
            .encode_to_vec(),
        ),
        3 => (
            "/pertinent.v1.ProspectService/AddSignals",
            pb::AddSignalsRequest {
                tenant: tenant(rng),
                prospect_id: prospect_id(rng),
                signals: signals(rng),
            }
            .encode_to_vec(),
        ),
        4 => (
            "/pertinent.v1.ProspectService/DeleteSignals",
            pb::DeleteSignalsRequest {
                tenant: tenant(rng),
                prospect_id: prospect_id(rng),
                ids: (0..*rng.pick(&[0usize, 1, 300]))
                    .map(|_| edge_string(rng))
                    .collect(),
            }
            .encode_to_vec(),
        ),
        5 => (
            "/pertinent.v1.ContentService/RegisterContent",
            pb::RegisterContentRequest {
                tenant: tenant(rng),
                content: (rng.below(4) != 0).then(|| pb::Content {
                    id: if rng.below(2) == 0 {
                        "c0".into()
                    } else {
                        edge_string(rng)
                    },
                    kind: edge_enum(rng),
                    title: edge_string(rng),
                    body: edge_string(rng),
                    tags: (0..rng.below(3)).map(|_| edge_string(rng)).collect(),
                }),
            }
            .encode_to_vec(),
        ),
        6 => (
            "/pertinent.v1.ContentService/GetContent",
            pb::GetContentRequest {
                tenant: tenant(rng),
                id: edge_string(rng),
            }
            .encode_to_vec(),
        ),
        7 => (
            "/pertinent.v1.ContentService/DeleteContent",
            pb::DeleteContentRequest {
                tenant: tenant(rng),
                id: edge_string(rng),
            }
            .encode_to_vec(),
        ),
        8 => (
            "/pertinent.v1.ScoringService/Score",
            pb::ScoreRequest {
                tenant: tenant(rng),
                prospect_id: prospect_id(rng),
                candidate: candidate(rng),
            }
            .encode_to_vec(),
        ),
        9 => (
            "/pertinent.v1.ScoringService/Rank",
            pb::RankRequest {
                tenant: tenant(rng),
                prospect_id: prospect_id(rng),
                candidates: (0..*rng.pick(&[0usize, 2, 257]))
                    .filter_map(|_| candidate(rng))
                    .collect(),
                top_k: *rng.pick(&[0, 1, u32::MAX]),
            }
            .encode_to_vec(),
        ),
        10 => (
            "/pertinent.v1.ScoringService/FindAudience",
            pb::FindAudienceRequest {
                tenant: tenant(rng),
                candidate: candidate(rng),
                limit: *rng.pick(&[0, 1, 1_000, 1_001, u32::MAX]),
            }
            .encode_to_vec(),
        ),
        11 => (
            "/pertinent.v1.GateService/Check",
            pb::CheckRequest {
                tenant: tenant(rng),
                prospect_id: prospect_id(rng),
                candidate: candidate(rng),
                send_id: edge_string(rng),
                channel: edge_string(rng),
                planned_at: ts(rng),
                dry_run: rng.below(2) == 0,
            }
            .encode_to_vec(),
        ),
        12 => (
            "/pertinent.v1.GateService/RecordEngagement",
            pb::EngagementRequest {
                tenant: tenant(rng),
                prospect_id: prospect_id(rng),
                send_id: edge_string(rng),
                kind: edge_enum(rng),
                at: ts(rng),
                text: edge_string(rng),
            }
            .encode_to_vec(),
        ),
        13 => (
            "/pertinent.v1.GateService/History",
            pb::HistoryRequest {
                tenant: tenant(rng),
                prospect_id: prospect_id(rng),
            }
            .encode_to_vec(),
        ),
        14 => (
            "/pertinent.v1.GateService/RecordSend",
            pb::RecordSendRequest {
                tenant: tenant(rng),
                prospect_id: prospect_id(rng),
                send_id: edge_string(rng),
                candidate: candidate(rng),
                decision_id: edge_string(rng),
                channel: edge_string(rng),
                sent_at: ts(rng),
            }
            .encode_to_vec(),
        ),
        15 => (
            "/pertinent.v1.GateService/LiftSuppression",
            pb::LiftSuppressionRequest {
                tenant: tenant(rng),
                prospect_id: edge_string(rng),
            }
            .encode_to_vec(),
        ),
        16 => (
            "/pertinent.v1.GateService/SetPolicy",
            pb::SetPolicyRequest {
                tenant: tenant(rng),
                policy: (rng.below(3) != 0).then(|| pb::Policy {
                    max_sends: *rng.pick(&[0, 1, u32::MAX]),
                    window_seconds: *rng.pick(&[0, 1, u64::MAX]),
                    min_gap_seconds: *rng.pick(&[0, u64::MAX]),
                    repeat_similarity: edge_f32(rng),
                    repeat_window_seconds: *rng.pick(&[0, u64::MAX]),
                    cooldown_seconds: *rng.pick(&[0, u64::MAX]),
                    opt_out_seconds: *rng.pick(&[0, u64::MAX]),
                    ..Default::default()
                }),
            }
            .encode_to_vec(),
        ),
        _ => (
            "/pertinent.v1.GateService/GetPolicy",
            pb::GetPolicyRequest {
                tenant: tenant(rng),
            }
            .encode_to_vec(),
        ),
    }
}

/// `bytes` damaged in one of several ways.
fn mutate(rng: &mut Rng, mut bytes: Vec<u8>) -> Vec<u8> {
    let at = |rng: &mut Rng, len: usize| rng.below(len.max(1));
    match rng.below(6) {
        0 if !bytes.is_empty() => {
            let i = at(rng, bytes.len());
            bytes[i] ^= 1 << rng.below(8);
        }
        1 => {
            let keep = at(rng, bytes.len());
            bytes.truncate(keep);
        }
        2 => {
            let i = at(rng, bytes.len() + 1).min(bytes.len());
            let junk: Vec<u8> = (0..rng.below(16) + 1).map(|_| rng.next() as u8).collect();
            bytes.splice(i..i, junk);
        }
        3 => {
            // A field with a huge length prefix, or an unknown tag.
            bytes.extend_from_slice(&[0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f]);
        }
        4 => {
            let copy = bytes.clone();
            bytes.extend_from_slice(&copy);
        }
        _ => {
            bytes = (0..rng.below(64)).map(|_| rng.next() as u8).collect();
        }
    }
    bytes
}

/// What tenant `f` holds, for telling whether a refused request changed it.
async fn snapshot(channel: &Channel) -> String {
    let mut prospects = pb::prospect_service_client::ProspectServiceClient::new(channel.clone());
    let mut content = pb::content_service_client::ContentServiceClient::new(channel.clone());
    let mut gate = pb::gate_service_client::GateServiceClient::new(channel.clone());
    let mut out = String::new();
    for i in 0..3 {
        let id = format!("p{i}");
        let p = prospects
            .get_prospect(pb::GetProspectRequest {
                tenant: "f".into(),
                id: id.clone(),
            })
            .await
            .map(|r| {
                let p = r.into_inner();
                // Attributes in a fixed order: a map's own order differs between answers.
                let attributes: std::collections::BTreeMap<_, _> =
                    p.attributes.clone().into_iter().collect();
                (p.id, p.name, p.company, p.role, p.signal_count, attributes)
            });
        let h = gate
            .history(pb::HistoryRequest {
                tenant: "f".into(),
                prospect_id: id,
            })
            .await
            .map(|r| r.into_inner().events.len());
        let c = content
            .get_content(pb::GetContentRequest {
                tenant: "f".into(),
                id: format!("c{i}"),
            })
            .await
            .map(|r| r.into_inner());
        out.push_str(&format!(
            "{:?}|{:?}|{:?}\n",
            p.map_err(|e| e.code()),
            h.map_err(|e| e.code()),
            c.map_err(|e| e.code())
        ));
    }
    let policy = gate
        .get_policy(pb::GetPolicyRequest { tenant: "f".into() })
        .await
        .map(|r| r.into_inner())
        .map_err(|e| e.code());
    out.push_str(&format!("{policy:?}"));
    out
}

#[tokio::test]
async fn random_and_mutated_requests_never_break_the_service_or_the_store() {
    let total: usize = std::env::var("PERTINENT_FUZZ_REQUESTS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(2_000);
    let app = spawn_plumbing_app().await;
    for i in 0..3 {
        upsert(
            &app,
            "f",
            prospect(&format!("p{i}"), "Ana Ruiz", "Northwind", "VP Ops"),
        )
        .await;
        add_signals(
            &app,
            "f",
            &format!("p{i}"),
            vec![signal(
                "s0",
                pb::SignalSource::CallNote,
                "Pick paths at night.",
            )],
        )
        .await;
        register(
            &app,
            "f",
            content_piece(
                &format!("c{i}"),
                pb::ContentKind::BlogPost,
                "Pick paths",
                "A guide.",
            ),
        )
        .await;
    }
    let mut grpc = tonic::client::Grpc::new(app.channel.clone());
    let mut rng = Rng(0x5eed_f00d);
    let mut codes: std::collections::BTreeMap<String, usize> = Default::default();
    let mut failures = Vec::new();
    let mut before = snapshot(&app.channel).await;
    for n in 0..total {
        let rpc = rng.below(18);
        let (path, mut body) = structured(&mut rng, rpc);
        if rng.below(2) == 0 {
            body = mutate(&mut rng, body);
        }
        grpc.ready().await.expect("the connection is up");
        let answer = grpc
            .unary(
                tonic::Request::new(body),
                http::uri::PathAndQuery::from_static(path),
                Raw,
            )
            .await;
        let code = answer.as_ref().err().map_or(Code::Ok, |s| s.code());
        *codes.entry(format!("{code:?}")).or_default() += 1;
        if matches!(code, Code::Internal | Code::Unknown) {
            failures.push(format!("request {n} to {path}: {answer:?}"));
        }
        let after = snapshot(&app.channel).await;
        if code != Code::Ok && after != before {
            failures.push(format!(
                "request {n} to {path} was refused ({code:?}) but changed the store:\n{before}\n->\n{after}"
            ));
        }
        before = after;
    }
    app.wait_serving("pertinent.v1.ScoringService").await;
    println!("fuzz: {total} requests, answers by code: {codes:?}");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(
        codes.get("Ok").is_some_and(|&n| n > 0),
        "nothing was accepted: {codes:?}"
    );
    assert!(
        codes
            .get("InvalidArgument")
            .is_some_and(|&n| n > total / 10),
        "too little was refused to have tested refusals: {codes:?}"
    );
}
