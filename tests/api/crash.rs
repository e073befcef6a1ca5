//! Crash safety of the embedded store, with the real binary: concurrent writes of every kind,
//! SIGKILL at a random moment, a restart on the same data directory, and then every write that
//! was acknowledged before the kill must be there and whole, and no write half done. Rounds:
//! 3 here, `PERTINENT_CRASH_ROUNDS` for more (scripts/crash-test runs 20; docs/reliability.md has
//! the figures). Also SIGTERM: calls in flight finish, then the process exits cleanly.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pertinent::grpc::pb;
use pertinent::grpc::pb::content_service_client::ContentServiceClient;
use pertinent::grpc::pb::gate_service_client::GateServiceClient;
use pertinent::grpc::pb::prospect_service_client::ProspectServiceClient;
use pertinent::grpc::pb::scoring_service_client::ScoringServiceClient;
use tonic::Code;
use tonic::transport::Channel;

use crate::child::Child;
use crate::helpers::*;

/// What the store must hold after the crash, from the writes that were acknowledged.
#[derive(Debug, Default)]
struct Acked {
    /// Prospect id -> (name, acknowledged signal count); None once its erasure was acknowledged.
    prospects: BTreeMap<String, Option<(String, u32)>>,
    /// Prospects whose AddSignals of `SIGNALS` signals was sent and not acknowledged.
    unsure_signals: Vec<String>,
    /// Content id -> title.
    contents: BTreeMap<String, String>,
    /// Send id -> (prospect, decision id) of each acknowledged recorded Check.
    decisions: BTreeMap<String, (String, String)>,
    /// (prospect, send id) of each acknowledged engagement.
    engagements: Vec<(String, String)>,
    /// Acknowledged writes in all.
    writes: u64,
}

/// Signals per AddSignals call: a half-done call would leave fewer.
const SIGNALS: usize = 3;

async fn connect(addr: &str) -> Channel {
    Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .expect("the service accepts connections")
}

/// One writer: prospects with signals, content, recorded Checks, engagements and erasures, in
/// turn, until a call fails (the kill).
async fn writer(channel: Channel, round: u32, w: u32, acked: Arc<Mutex<Acked>>) {
    let mut i = 0u32;
    while write_one(&channel, round, w, i, &acked).await.is_ok() {
        i += 1;
    }
}

/// Writer `w`'s writes number `i`, each recorded in `acked` once acknowledged; the first
/// failure ends them.
async fn write_one(
    channel: &Channel,
    round: u32,
    w: u32,
    i: u32,
    acked: &Mutex<Acked>,
) -> Result<(), tonic::Status> {
    let mut prospects = ProspectServiceClient::new(channel.clone());
    let mut content = ContentServiceClient::new(channel.clone());
    let mut gate = GateServiceClient::new(channel.clone());
    {
        let id = format!("r{round}-w{w}-p{i}");
        let name = format!("Person {round}.{w}.{i}");
        let upserted = prospects
            .upsert_prospect(pb::UpsertProspectRequest {
                tenant: "t".into(),
                prospect: Some(prospect(&id, &name, "Northwind", "VP Operations")),
            })
            .await;
        upserted?;
        {
            let mut a = acked.lock().unwrap();
            a.prospects.insert(id.clone(), Some((name.clone(), 0)));
            a.writes += 1;
            a.unsure_signals.push(id.clone());
        }
        let signals = (0..SIGNALS)
            .map(|k| {
                signal(
                    &format!("s{k}"),
                    pb::SignalSource::CallNote,
                    "Pick-path travel in our warehouse eats the night shift.",
                )
            })
            .collect();
        let added = prospects
            .add_signals(pb::AddSignalsRequest {
                tenant: "t".into(),
                prospect_id: id.clone(),
                signals,
            })
            .await;
        added?;
        {
            let mut a = acked.lock().unwrap();
            a.prospects
                .insert(id.clone(), Some((name.clone(), SIGNALS as u32)));
            a.unsure_signals.retain(|p| p != &id);
            a.writes += 1;
        }
        let piece = format!("r{round}-w{w}-c{i}");
        let title = format!("Guide {round}.{w}.{i} to pick paths");
        let registered = content
            .register_content(pb::RegisterContentRequest {
                tenant: "t".into(),
                content: Some(content_piece(
                    &piece,
                    pb::ContentKind::BlogPost,
                    &title,
                    "Pick-path travel in warehouses, and how to cut it.",
                )),
            })
            .await;
        registered?;
        {
            let mut a = acked.lock().unwrap();
            a.contents.insert(piece.clone(), title);
            a.writes += 1;
        }
        let send_id = format!("r{round}-w{w}-send{i}");
        let checked = gate
            .check(pb::CheckRequest {
                tenant: "t".into(),
                prospect_id: id.clone(),
                candidate: by_content(&piece),
                send_id: send_id.clone(),
                channel: "email".into(),
                planned_at: None,
                dry_run: false,
            })
            .await;
        let decided = checked?;
        {
            let mut a = acked.lock().unwrap();
            a.decisions.insert(
                send_id.clone(),
                (id.clone(), decided.into_inner().decision_id),
            );
            a.writes += 1;
        }
        let engaged = gate
            .record_engagement(pb::EngagementRequest {
                tenant: "t".into(),
                prospect_id: id.clone(),
                send_id: send_id.clone(),
                kind: pb::EngagementKind::Opened as i32,
                at: None,
                text: String::new(),
            })
            .await;
        engaged?;
        {
            let mut a = acked.lock().unwrap();
            a.engagements.push((id.clone(), send_id));
            a.writes += 1;
        }
        // Every third prospect is erased again.
        if i % 3 == 2 {
            let erased = prospects
                .delete_prospect(pb::DeleteProspectRequest {
                    tenant: "t".into(),
                    id: id.clone(),
                })
                .await;
            erased?;
            let mut a = acked.lock().unwrap();
            a.prospects.insert(id.clone(), None);
            a.decisions.retain(|_, (p, _)| p != &id);
            a.engagements.retain(|(p, _)| p != &id);
            a.writes += 1;
        }
    }
    Ok(())
}

/// Every acknowledged write is there and whole; the unacknowledged AddSignals is all or nothing.
async fn verify(channel: Channel, acked: &Acked) -> Vec<String> {
    let mut prospects = ProspectServiceClient::new(channel.clone());
    let mut content = ContentServiceClient::new(channel.clone());
    let mut gate = GateServiceClient::new(channel.clone());
    let mut lost = Vec::new();
    for (id, expected) in &acked.prospects {
        let got = prospects
            .get_prospect(pb::GetProspectRequest {
                tenant: "t".into(),
                id: id.clone(),
            })
            .await;
        match (expected, got) {
            (None, Err(e)) if e.code() == Code::NotFound => {}
            (None, other) => lost.push(format!("{id}: erased, but {other:?}")),
            (Some((name, signals)), Ok(p)) => {
                let p = p.into_inner();
                let whole = if acked.unsure_signals.contains(id) {
                    p.signal_count == 0 || p.signal_count == SIGNALS as u32
                } else {
                    p.signal_count == *signals
                };
                if &p.name != name || !whole {
                    lost.push(format!("{id}: {} with {} signals", p.name, p.signal_count));
                }
            }
            (Some(_), Err(e)) => lost.push(format!("{id}: acknowledged, now {e:?}")),
        }
    }
    for (id, title) in &acked.contents {
        match content
            .get_content(pb::GetContentRequest {
                tenant: "t".into(),
                id: id.clone(),
            })
            .await
        {
            Ok(c) if &c.get_ref().title == title => {}
            other => lost.push(format!("content {id}: {other:?}")),
        }
    }
    for (send_id, (prospect_id, decision_id)) in &acked.decisions {
        // The same Check again must replay the stored decision, not decide afresh.
        let piece = send_id.replace("send", "c");
        let again = gate
            .check(pb::CheckRequest {
                tenant: "t".into(),
                prospect_id: prospect_id.clone(),
                candidate: by_content(&piece),
                send_id: send_id.clone(),
                channel: "email".into(),
                planned_at: None,
                dry_run: false,
            })
            .await;
        match again {
            Ok(d) if d.get_ref().replayed && &d.get_ref().decision_id == decision_id => {}
            other => lost.push(format!("decision {send_id}: {other:?}")),
        }
    }
    for (prospect_id, send_id) in &acked.engagements {
        let history = gate
            .history(pb::HistoryRequest {
                tenant: "t".into(),
                prospect_id: prospect_id.clone(),
            })
            .await;
        let found = history.is_ok_and(|h| {
            h.into_inner().events.iter().any(|e| {
                matches!(&e.event, Some(pb::history_event::Event::Engagement(g)) if &g.send_id == send_id)
            })
        });
        if !found {
            lost.push(format!("engagement of {send_id}"));
        }
    }
    lost
}

// Multi-threaded: writers run while the test kills the child.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_acknowledged_write_is_lost_to_sigkill() {
    let rounds: u32 = std::env::var("PERTINENT_CRASH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(3);
    let data = tempfile::tempdir().unwrap();
    let dir = data.path().to_str().unwrap().to_owned();
    // Every decision written, so that every acknowledged Check can be checked after the crash.
    let args = ["--data-dir", dir.as_str(), "--record-decisions", "all"];
    let acked = Arc::new(Mutex::new(Acked::default()));
    let mut seed = 0x9e37_79b9_u64;
    for round in 0..rounds {
        let child = Child::start(&args);
        let channel = connect(&child.addr).await;
        let writers: Vec<_> = (0..4)
            .map(|w| tokio::spawn(writer(channel.clone(), round, w, acked.clone())))
            .collect();
        // A moment between 0.3 and 1.5 s into the writes.
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let after = Duration::from_millis(300 + (seed >> 33) % 1200);
        tokio::time::sleep(after).await;
        let killer = std::thread::spawn(move || child.kill());
        for w in writers {
            let _ = w.await;
        }
        killer.join().unwrap();
        drop(channel);
        // The store opens again, and holds what it acknowledged.
        let child = Child::start(&args);
        let channel = connect(&child.addr).await;
        let snapshot = std::mem::take(&mut *acked.lock().unwrap());
        let lost = verify(channel.clone(), &snapshot).await;
        assert!(
            lost.is_empty(),
            "round {round}: {} of {} acknowledged writes lost or torn:\n{}",
            lost.len(),
            snapshot.writes,
            lost.join("\n")
        );
        println!(
            "crash round {round}: killed after {} ms, {} acknowledged writes, all present",
            after.as_millis(),
            snapshot.writes
        );
        *acked.lock().unwrap() = snapshot;
        drop(channel);
        child.kill();
    }
    let total = acked.lock().unwrap().writes;
    println!("crash rounds: {rounds}, acknowledged writes: {total}, lost: 0");
    assert!(total > 0, "nothing was written");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_calls_in_flight_finish_then_exits() {
    let data = tempfile::tempdir().unwrap();
    let mut child = Child::start(&["--data-dir", data.path().to_str().unwrap()]);
    let channel = connect(&child.addr).await;
    let mut prospects = ProspectServiceClient::new(channel.clone());
    prospects
        .upsert_prospect(pb::UpsertProspectRequest {
            tenant: "t".into(),
            prospect: Some(prospect("ana", "Ana Ruiz", "Northwind", "VP Operations")),
        })
        .await
        .unwrap();
    // Eight new drafts: the model takes a while over them, so they are in flight at the signal.
    let calls: Vec<_> = (0..8)
        .map(|i| {
            let mut scoring = ScoringServiceClient::new(channel.clone());
            tokio::spawn(async move {
                scoring
                    .score(pb::ScoreRequest {
                        tenant: "t".into(),
                        prospect_id: "ana".into(),
                        candidate: by_draft(
                            &format!("Draft {i}"),
                            &format!("Note {i} on pick paths, slotting and the night shift."),
                        ),
                    })
                    .await
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let stopping = std::thread::spawn(move || child.terminate());
    let mut answered = 0;
    for call in calls {
        let answer = call.await.unwrap();
        // A call that had not reached the server before the signal may be refused; one that had
        // is answered.
        match answer {
            Ok(_) => answered += 1,
            Err(e) => assert!(
                matches!(e.code(), Code::Unavailable | Code::Cancelled),
                "{e:?}"
            ),
        }
    }
    drop(prospects);
    drop(channel);
    let status = stopping.join().unwrap().expect("the process exits");
    assert!(status.success(), "exit status {status:?}");
    assert!(answered >= 1, "no call in flight was answered");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_ends_after_its_grace_even_with_a_call_that_never_ends() {
    use tonic_health::pb::HealthCheckRequest;
    use tonic_health::pb::health_client::HealthClient;
    let data = tempfile::tempdir().unwrap();
    let mut child = Child::start(&[
        "--data-dir",
        data.path().to_str().unwrap(),
        "--shutdown-grace-secs",
        "1",
    ]);
    let channel = connect(&child.addr).await;
    // A health Watch never ends by itself: draining would wait for it forever.
    let mut watch = HealthClient::new(channel.clone())
        .watch(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .expect("a watch")
        .into_inner();
    watch.message().await.expect("the first status");
    let started = std::time::Instant::now();
    let stopping = std::thread::spawn(move || child.terminate());
    let status = stopping.join().unwrap().expect("the process exits");
    assert!(status.success(), "exit status {status:?}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "shutdown took {:?}",
        started.elapsed()
    );
    drop(watch);
}
