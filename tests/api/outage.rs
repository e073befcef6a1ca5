//! Qdrant outages, through a TCP proxy the test controls between the service and Qdrant: the
//! proxy refuses connections, resets them, or stalls them (accepts, then never answers), and
//! then lets traffic through again. While Qdrant is away, reads and writes answer UNAVAILABLE
//! with a retry hint (or DEADLINE_EXCEEDED when it stalls past the caller's deadline), never
//! INTERNAL; the gate answers its fail decision within its own bound; health is NOT_SERVING.
//! When Qdrant is back, the service is SERVING again within 5 s by itself.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pertinent::grpc::pb;
use pertinent::grpc::pb::gate_service_client::GateServiceClient;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tonic::Code;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_types::StatusExt;

use crate::helpers::*;

/// What the proxy does with connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    /// Traffic passes.
    None,
    /// The port is closed: connections are refused.
    Refuse,
    /// Connections are accepted and closed at once.
    Reset,
    /// Connections are accepted and never answered.
    Stall,
}

struct Proxy {
    addr: std::net::SocketAddr,
    target: String,
    fault: Arc<Mutex<Fault>>,
    accept: Mutex<Option<JoinHandle<()>>>,
    /// Connections being piped, and connections held stalled.
    pipes: Arc<Mutex<Vec<JoinHandle<()>>>>,
    held: Arc<Mutex<Vec<TcpStream>>>,
}

impl Proxy {
    async fn new(target: String) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let proxy = Proxy {
            addr: listener.local_addr().unwrap(),
            target,
            fault: Arc::new(Mutex::new(Fault::None)),
            accept: Mutex::new(None),
            pipes: Arc::default(),
            held: Arc::default(),
        };
        proxy.listen(listener);
        proxy
    }

    fn listen(&self, listener: TcpListener) {
        let (fault, pipes, held, target) = (
            self.fault.clone(),
            self.pipes.clone(),
            self.held.clone(),
            self.target.clone(),
        );
        let accept = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let now = *fault.lock().unwrap();
                match now {
                    Fault::None | Fault::Refuse => {
                        let target = target.clone();
                        pipes.lock().unwrap().push(tokio::spawn(async move {
                            if let Ok(mut outbound) = TcpStream::connect(&target).await {
                                let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound)
                                    .await;
                            }
                        }));
                    }
                    Fault::Reset => drop(inbound),
                    Fault::Stall => held.lock().unwrap().push(inbound),
                }
            }
        });
        *self.accept.lock().unwrap() = Some(accept);
    }

    /// Cuts every connection through the proxy and applies `fault` to new ones.
    async fn set(&self, fault: Fault) {
        *self.fault.lock().unwrap() = fault;
        for pipe in self.pipes.lock().unwrap().drain(..) {
            pipe.abort();
        }
        self.held.lock().unwrap().clear();
        let accepting = self.accept.lock().unwrap().take();
        match (fault, accepting) {
            (Fault::Refuse, Some(task)) => task.abort(),
            (Fault::Refuse, None) => {}
            (_, Some(task)) => *self.accept.lock().unwrap() = Some(task),
            (_, None) => {
                // Listening again on the same port.
                let listener = loop {
                    match TcpListener::bind(self.addr).await {
                        Ok(l) => break l,
                        Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
                    }
                };
                self.listen(listener);
            }
        }
    }
}

/// Waits (at most `within`) for the named service's health to be `want`.
async fn health_becomes(app: &TestApp, want: ServingStatus, within: Duration) -> Duration {
    let started = Instant::now();
    let mut updates = app
        .health()
        .watch(HealthCheckRequest {
            service: "pertinent.v1.ScoringService".into(),
        })
        .await
        .expect("health watch")
        .into_inner();
    let wait = async {
        while let Some(update) = updates.message().await.expect("health stream") {
            if update.status == want as i32 {
                return;
            }
        }
    };
    tokio::time::timeout(within, wait)
        .await
        .unwrap_or_else(|_| panic!("health was not {want:?} within {within:?}"));
    started.elapsed()
}

/// A read, a write, a Score and a Check while Qdrant is away.
async fn while_away(app: &TestApp, fault: Fault, n: u32) {
    let mut get = tonic::Request::new(pb::GetProspectRequest {
        tenant: "t".into(),
        id: "ben".into(),
    });
    get.set_timeout(Duration::from_secs(3));
    let started = Instant::now();
    let read = app
        .prospects()
        .get_prospect(get)
        .await
        .expect_err("no store");
    let waited = started.elapsed();
    let stalled = fault == Fault::Stall;
    let expected = |e: &tonic::Status| {
        e.code() == Code::Unavailable || (stalled && e.code() == Code::DeadlineExceeded)
    };
    assert!(expected(&read), "{fault:?}: GetProspect {read:?}");
    if read.code() == Code::Unavailable {
        assert!(read.get_details_retry_info().is_some(), "{read:?}");
    }
    assert!(
        waited < Duration::from_millis(3_500),
        "{fault:?}: {waited:?}"
    );

    let added = app
        .prospects()
        .add_signals(pb::AddSignalsRequest {
            tenant: "t".into(),
            prospect_id: "ben".into(),
            signals: vec![signal(
                &format!("away-{n}"),
                pb::SignalSource::CallNote,
                "We review user access every quarter by hand.",
            )],
        })
        .await
        .expect_err("no store");
    assert!(expected(&added), "{fault:?}: AddSignals {added:?}");

    let scored = score(app, "t", "ben", by_content("access-reviews"))
        .await
        .expect_err("no store");
    assert!(expected(&scored), "{fault:?}: Score {scored:?}");

    let mut request = tonic::Request::new(pb::CheckRequest {
        tenant: "t".into(),
        prospect_id: "ben".into(),
        candidate: by_content("access-reviews"),
        send_id: format!("away-{n}"),
        channel: "email".into(),
        planned_at: None,
        dry_run: false,
    });
    request.set_timeout(Duration::from_secs(3));
    let started = Instant::now();
    let decided = GateServiceClient::new(app.channel.clone())
        .check(request)
        .await
        .unwrap_or_else(|e| panic!("{fault:?}: Check must answer its fail decision, not {e:?}"))
        .into_inner();
    assert!(
        decided
            .reasons
            .iter()
            .any(|r| r.code == pb::ReasonCode::StoreUnavailable as i32),
        "{fault:?}: {decided:?}"
    );
    assert!(
        started.elapsed() < Duration::from_millis(1_500),
        "{fault:?}: the fail decision took {:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs QDRANT_URL"]
async fn qdrant_away_refused_reset_or_stalled_then_back() {
    let url = crate::store_contract::qdrant_url();
    let target = url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    let proxy = Proxy::new(target).await;
    let dir = tempfile::tempdir().unwrap();
    let collection = crate::store_contract::unique("pertinent-outage");
    let app = spawn_app_in(dir.path(), |s| {
        s.store.qdrant_url = Some(format!("http://{}", proxy.addr));
        s.store.qdrant_collection = collection.clone();
        s.store.qdrant_timeout_ms = 2_000;
    })
    .await;
    seed_tenant(&app, "t").await;
    for (n, fault) in [Fault::Refuse, Fault::Reset, Fault::Stall]
        .into_iter()
        .enumerate()
    {
        proxy.set(fault).await;
        while_away(&app, fault, n as u32).await;
        health_becomes(&app, ServingStatus::NotServing, Duration::from_secs(10)).await;
        proxy.set(Fault::None).await;
        let back = health_becomes(&app, ServingStatus::Serving, Duration::from_secs(5)).await;
        println!("{fault:?}: SERVING again {back:?} after Qdrant came back");
        let p = app
            .prospects()
            .get_prospect(pb::GetProspectRequest {
                tenant: "t".into(),
                id: "ben".into(),
            })
            .await
            .unwrap_or_else(|e| panic!("after {fault:?}, reads work again: {e:?}"));
        assert_eq!(p.into_inner().id, "ben");
    }
}
